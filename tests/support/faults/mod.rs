//! Shared by the `faults_*` tests (issue 21, part 5): faults under load.
//! Eight clients, half of them 2025 sessions (`initialize`,
//! `Mcp-Session-Id`) and half stateless 2026-07-28 clients, keep calling a
//! tool on each of two upstreams while one part of the system fails (one
//! test file per fault: an upstream killed, the gateway killed, an upstream
//! hung).
//!
//! Each time: no client session is lost, the upstream that did not fail
//! sees no error, every client is served again within a couple of seconds
//! of the recovery, and the only failures are calls in flight to (or tried
//! on) the failed part while it was down, each with a clear error.
//!
//! Every call is recorded with when it started and ended and what came of
//! it; each test prints how many calls to each upstream went through or
//! failed before, during and after the fault:
//!
//! ```text
//! cargo test --test 'faults_*' -- --nocapture
//! ```
//!
//! Here: the clients, their calls and what came of each; `load` runs them,
//! `run` holds a finished run's assertions and figures.

mod load;
mod run;

pub use load::*;
pub use run::Run;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Clients of each era in the load.
const CLIENTS_PER_ERA: usize = 4;
/// The pause between two calls of one client to one upstream (client `i`
/// pauses `3 * i` ms longer, so that the loops do not run in lockstep).
const PACE: Duration = Duration::from_millis(25);
/// How long the load runs before the fault, and on after the recovery once
/// every client has been served again.
pub const STEADY: Duration = Duration::from_millis(1500);
/// How soon after the failed part is back every client must be served
/// again. The gateway takes well under a second; the rest is for a loaded
/// machine.
pub const RECOVERY: Duration = Duration::from_secs(2);
/// The longest a call waits for its answer (then it counts as a transport
/// failure).
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// Bounds on each client loop, whatever happens to the test.
const MAX_CALLS: usize = 2000;
const MAX_RUN: Duration = Duration::from_secs(45);

/// The tests take turns: they measure recovery times, and two loads at
/// once on a small machine would measure each other. Each is a test binary
/// of its own, and cargo runs those one after another; the lock keeps two
/// tests in one binary apart.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The call the load makes on one upstream.
#[derive(Clone, Copy)]
pub struct Target {
    upstream: &'static str,
    /// `None`: `echo`, answered at once; `Some(ms)`: `sleep` that long, so
    /// that calls are in flight when the fault strikes.
    sleep_ms: Option<u64>,
}

impl Target {
    pub fn echo(upstream: &'static str) -> Target {
        Target {
            upstream,
            sleep_ms: None,
        }
    }

    pub fn sleep(upstream: &'static str, ms: u64) -> Target {
        Target {
            upstream,
            sleep_ms: Some(ms),
        }
    }

    /// The tool's name, and the arguments of call `n` of `client` with the
    /// text its answer must carry.
    fn call(&self, client: usize, n: usize) -> (String, Value, String) {
        match self.sleep_ms {
            None => {
                let text = format!("client {client} call {n}");
                (
                    format!("{}_echo", self.upstream),
                    json!({ "text": text }),
                    text,
                )
            }
            Some(ms) => (
                format!("{}_sleep", self.upstream),
                json!({ "ms": ms }),
                format!("slept {ms} ms"),
            ),
        }
    }
}

/// One client: a 2025 session (its id) or a stateless 2026-07-28 client.
#[derive(Clone)]
pub struct Client {
    index: usize,
    session: Option<String>,
}

impl Client {
    fn era(&self) -> &'static str {
        if self.session.is_some() {
            "2025"
        } else {
            "2026"
        }
    }
}

/// What came of one call.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The tool's answer, as expected.
    Ok,
    /// A JSON-RPC error, and the upstream its `data` names.
    Rpc {
        status: u16,
        code: i64,
        message: String,
        upstream: Option<String>,
    },
    /// Another HTTP answer.
    Other { status: u16, body: String },
    /// No HTTP answer: refused, reset, or none within [`CALL_DEADLINE`].
    Transport(String),
}

impl Outcome {
    fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// `-32001` in a 200, naming `upstream` in its message and its data,
    /// and saying more than the name.
    pub fn is_upstream_error(&self, upstream: &str) -> bool {
        let Outcome::Rpc {
            status: 200,
            code: -32001,
            message,
            upstream: named,
        } = self
        else {
            return false;
        };
        let prefix = format!("upstream {upstream} ");
        message.starts_with(&prefix)
            && message.len() > prefix.len() + 5
            && named.as_deref() == Some(upstream)
    }

    /// A JSON-RPC error's message.
    pub fn message(&self) -> &str {
        match self {
            Outcome::Rpc { message, .. } => message,
            _ => "",
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            Outcome::Ok => Some(200),
            Outcome::Rpc { status, .. } | Outcome::Other { status, .. } => Some(*status),
            Outcome::Transport(_) => None,
        }
    }

    /// One line, cut short so that the same error with other details
    /// (ports, ids) is counted once in the summary.
    fn kind(&self) -> String {
        let short = |s: &str| s.chars().take(90).collect::<String>();
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Rpc {
                status,
                code,
                message,
                ..
            } => format!("HTTP {status}, {code}: {}", short(message)),
            Outcome::Other { status, body } => format!("HTTP {status}: {}", short(body)),
            Outcome::Transport(error) => format!("transport: {}", short(error)),
        }
    }
}

/// One call of the load.
pub struct Record {
    client: usize,
    era: &'static str,
    upstream: &'static str,
    started: Instant,
    ended: Instant,
    outcome: Outcome,
}

/// Each 2025 client's index and session id.
pub fn sessions(clients: &[Client]) -> Vec<(usize, String)> {
    clients
        .iter()
        .filter_map(|c| Some((c.index, c.session.clone()?)))
        .collect()
}

/// A loopback port nothing listens on now, for a process that will be
/// started again on it.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
