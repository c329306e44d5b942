//! Faults under load (issue 21, part 5). Eight clients, half of them 2025
//! sessions (`initialize`, `Mcp-Session-Id`) and half stateless 2026-07-28
//! clients, keep calling a tool on each of two upstreams while one part of
//! the system fails:
//!
//! 1. an upstream is killed (SIGKILL) and started again on the same address;
//! 2. the gateway is killed (SIGKILL) and started again on the same port
//!    with the same `sessions.key`;
//! 3. an upstream hangs (SIGSTOP) for longer than its `timeout`, then
//!    resumes (SIGCONT).
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
//! cargo test --test faults -- --nocapture
//! ```

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use support::*;

/// Clients of each era in the load.
const CLIENTS_PER_ERA: usize = 4;
/// The pause between two calls of one client to one upstream (client `i`
/// pauses `3 * i` ms longer, so that the loops do not run in lockstep).
const PACE: Duration = Duration::from_millis(25);
/// How long the load runs before the fault, and on after the recovery once
/// every client has been served again.
const STEADY: Duration = Duration::from_millis(1500);
/// How soon after the failed part is back every client must be served
/// again. The gateway takes well under a second; the rest is for a loaded
/// machine.
const RECOVERY: Duration = Duration::from_secs(2);
/// The longest a call waits for its answer (then it counts as a transport
/// failure).
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// Bounds on each client loop, whatever happens to the test.
const MAX_CALLS: usize = 2000;
const MAX_RUN: Duration = Duration::from_secs(45);

const SESSION_KEY: &str = "faults-test-session-key-that-is-long-enough";

/// The tests take turns: they measure recovery times, and two loads at
/// once on a small machine would measure each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_killed_and_restarted_costs_only_its_calls_while_down() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // The one that fails serves 2025 sessions: the restart loses them all,
    // and the gateway must open new ones behind its clients' backs.
    let address = format!("127.0.0.1:{}", free_port());
    let (mut flaky, flaky_url) = rmcp_upstream(&["--http", &address, "--legacy-only"]);
    let (_steady, steady_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let gateway = Gateway::start_with_env(
        &format!(
            "health:\n  probeInterval: 1s\nupstreams:\n  - name: flaky\n    url: \"{flaky_url}\"\n  - name: steady\n    url: \"{steady_url}\"\n"
        ),
        &[("RUST_LOG", "switchboard=info")],
    );
    gateway
        .wait_for_tools(&["flaky_sleep", "steady_echo"])
        .await;
    let flaky_target = Target::sleep("flaky", 50);
    let load = Load::start(&gateway.mcp(), &[flaky_target, Target::echo("steady")]).await;
    tokio::time::sleep(STEADY).await;

    let fault = Instant::now();
    flaky.child.kill().unwrap(); // SIGKILL
    flaky.child.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_flaky_again, _) = rmcp_upstream(&["--http", &address, "--legacy-only"]);
    let recovered = Instant::now(); // it has printed its listening line

    let run = load
        .finish(
            "an upstream killed (SIGKILL) and restarted on the same address",
            fault,
            recovered,
            &["flaky"],
        )
        .await;
    run.assert_no_session_lost();
    run.assert_all_ok("steady");
    run.assert_failures_only_while_down("flaky", RECOVERY, |outcome| {
        // -32001 naming it and saying why: refused while it was down
        // ("unreachable", "is not available"), or cut off under a call in
        // flight ("the call may have run").
        outcome.is_upstream_error("flaky")
    });
    run.assert_gateway_always_answered();
    run.assert_served_again_within("flaky", RECOVERY);
    run.assert_sessions_alive(&gateway.mcp(), flaky_target)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_killed_and_restarted_with_its_key_keeps_every_session() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (_legacy, legacy_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let (_modern, modern_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let config = format!(
        "sessions:\n  key: \"${{SWITCHBOARD_SESSION_KEY}}\"\nupstreams:\n  - name: legacy\n    url: \"{legacy_url}\"\n  - name: modern\n    url: \"{modern_url}\"\n"
    );
    let port = free_port();
    let mut gateway = gateway_on(port, &config);
    let mcp = gateway.mcp();
    gateway
        .wait_for_tools(&["legacy_sleep", "modern_echo"])
        .await;
    let legacy_target = Target::sleep("legacy", 50);
    let load = Load::start(&mcp, &[legacy_target, Target::echo("modern")]).await;
    // Each 2025 client's session with the 2025 upstream is sealed into its
    // session id: the restarted gateway must reach the same one.
    let mut upstream_sessions = BTreeMap::new();
    for (client, session) in sessions(&load.clients) {
        let info = session_info(&mcp, &session, "legacy_session_info", 900).await;
        upstream_sessions.insert(client, info["sessionId"].clone());
    }
    tokio::time::sleep(STEADY).await;

    let fault = Instant::now();
    gateway.proc.child.kill().unwrap(); // SIGKILL
    gateway.proc.child.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = gateway_on(port, &config);
    assert_eq!(restarted.mcp(), mcp, "the same address");
    wait_ready(&restarted.base, Duration::from_secs(20)).await;
    let recovered = Instant::now();

    let run = load
        .finish(
            "the gateway killed (SIGKILL) and restarted with the same session key",
            fault,
            recovered,
            &["legacy", "modern"],
        )
        .await;
    run.assert_no_session_lost();
    for upstream in ["legacy", "modern"] {
        // Refused or cut off while it was down, and nothing once /readyz
        // said it was back.
        run.assert_failures_only_while_down(upstream, Duration::ZERO, |outcome| {
            matches!(outcome, Outcome::Transport(_))
        });
        run.assert_served_again_within(upstream, RECOVERY);
    }
    run.assert_sessions_alive(&mcp, legacy_target).await;
    for (client, session) in sessions(&run.clients) {
        let info = session_info(&mcp, &session, "legacy_session_info", 901).await;
        assert_eq!(
            info["sessionId"], upstream_sessions[&client],
            "client {client}: the restarted gateway reaches the same upstream session"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_upstream_times_out_alone_and_serves_again_when_it_resumes() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (hung, hung_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let (_steady, steady_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let gateway = Gateway::start_with_env(
        &format!(
            "health:\n  probeInterval: 1s\nupstreams:\n  - name: hung\n    url: \"{hung_url}\"\n    timeout: 2s\n  - name: steady\n    url: \"{steady_url}\"\n"
        ),
        &[("RUST_LOG", "switchboard=info")],
    );
    gateway.wait_for_tools(&["hung_sleep", "steady_echo"]).await;
    let hung_target = Target::sleep("hung", 50);
    let load = Load::start(&gateway.mcp(), &[hung_target, Target::echo("steady")]).await;
    tokio::time::sleep(STEADY).await;

    // Stopped for twice its timeout: its connections stay open and nothing
    // comes back on them.
    let pid = hung.child.id().to_string();
    let fault = Instant::now();
    signal("-STOP", &pid);
    tokio::time::sleep(Duration::from_secs(4)).await;
    signal("-CONT", &pid);
    let recovered = Instant::now();

    let run = load
        .finish(
            "an upstream hung (SIGSTOP) for 4 s with a 2 s timeout, then resumed (SIGCONT)",
            fault,
            recovered,
            &["hung"],
        )
        .await;
    run.assert_no_session_lost();
    run.assert_all_ok("steady");
    let slowest = run.slowest("steady");
    assert!(
        slowest < Duration::from_secs(2),
        "the healthy upstream's calls waited for the hung one: slowest {slowest:?}"
    );
    run.assert_failures_only_while_down("hung", RECOVERY, |outcome| {
        outcome.is_upstream_error("hung") && outcome.message().ends_with("did not answer in time")
    });
    assert!(
        run.failed("hung") > 0,
        "no call to the hung upstream failed"
    );
    run.assert_gateway_always_answered();
    run.assert_served_again_within("hung", RECOVERY);
    run.assert_sessions_alive(&gateway.mcp(), hung_target).await;
}

// ---------------------------------------------------------------------------
// The load: a loop per client and upstream, recording every call.
// ---------------------------------------------------------------------------

/// The call the load makes on one upstream.
#[derive(Clone, Copy)]
struct Target {
    upstream: &'static str,
    /// `None`: `echo`, answered at once; `Some(ms)`: `sleep` that long, so
    /// that calls are in flight when the fault strikes.
    sleep_ms: Option<u64>,
}

impl Target {
    fn echo(upstream: &'static str) -> Target {
        Target {
            upstream,
            sleep_ms: None,
        }
    }

    fn sleep(upstream: &'static str, ms: u64) -> Target {
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
struct Client {
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
enum Outcome {
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
    fn is_upstream_error(&self, upstream: &str) -> bool {
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
    fn message(&self) -> &str {
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
struct Record {
    client: usize,
    era: &'static str,
    upstream: &'static str,
    started: Instant,
    ended: Instant,
    outcome: Outcome,
}

/// The running load.
struct Load {
    started: Instant,
    clients: Vec<Client>,
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Opens the 2025 clients' sessions, then starts a loop per client and
    /// target: a client calls each upstream on its own, so that a slow one
    /// does not hold up its calls to the other.
    async fn start(mcp: &str, targets: &[Target]) -> Load {
        let mut clients = Vec::new();
        for index in 0..2 * CLIENTS_PER_ERA {
            let session = if index % 2 == 0 {
                Some(initialize(mcp).await)
            } else {
                None
            };
            clients.push(Client { index, session });
        }
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut loops = Vec::new();
        for client in &clients {
            for target in targets {
                // Staggered and each at its own pace: loops in lockstep leave
                // moments with no call in flight.
                let offset = Duration::from_millis(5 * loops.len() as u64);
                let pace = PACE + Duration::from_millis(3 * client.index as u64);
                loops.push(tokio::spawn(client_loop(
                    mcp.to_string(),
                    client.clone(),
                    *target,
                    (offset, pace),
                    records.clone(),
                    stop.clone(),
                )));
            }
        }
        Load {
            started: Instant::now(),
            clients,
            records,
            stop,
            loops,
        }
    }

    /// Once every client has been served again by each of `failed` since
    /// `recovered` (waiting at most 15 s), runs on for [`STEADY`], stops,
    /// and prints the figures.
    async fn finish(self, title: &str, fault: Instant, recovered: Instant, failed: &[&str]) -> Run {
        for upstream in failed {
            self.wait_until_served(upstream, recovered, Duration::from_secs(15))
                .await;
        }
        tokio::time::sleep(STEADY).await;
        self.stop.store(true, Ordering::SeqCst);
        for client_loop in self.loops {
            client_loop.await.expect("a client loop panicked");
        }
        let mut records = std::mem::take(&mut *self.records.lock().unwrap());
        records.sort_by_key(|r| r.ended);
        let run = Run {
            start: self.started,
            fault,
            recovered,
            clients: self.clients,
            records,
        };
        run.print(title);
        run
    }

    async fn wait_until_served(&self, upstream: &str, since: Instant, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let waiting: Vec<usize> = {
                let records = self.records.lock().unwrap();
                let served = |client: usize| {
                    records.iter().any(|r| {
                        r.client == client
                            && r.upstream == upstream
                            && r.ended >= since
                            && r.outcome.is_ok()
                    })
                };
                self.clients
                    .iter()
                    .map(|c| c.index)
                    .filter(|&c| !served(c))
                    .collect()
            };
            if waiting.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let records = self.records.lock().unwrap();
                let last: Vec<String> = records
                    .iter()
                    .rev()
                    .filter(|r| r.upstream == upstream)
                    .take(5)
                    .map(|r| r.outcome.kind())
                    .collect();
                panic!(
                    "clients {waiting:?} not served by {upstream} within {within:?} of its recovery; its last outcomes: {last:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Each 2025 client's index and session id.
fn sessions(clients: &[Client]) -> Vec<(usize, String)> {
    clients
        .iter()
        .filter_map(|c| Some((c.index, c.session.clone()?)))
        .collect()
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn http_client() -> HttpClient {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

/// One client calling one upstream until told to stop, over keep-alive
/// connections of its own, as a real client would.
async fn client_loop(
    mcp: String,
    client: Client,
    target: Target,
    (offset, pace): (Duration, Duration),
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
) {
    let http = http_client();
    let begun = Instant::now();
    tokio::time::sleep(offset).await;
    for n in 0..MAX_CALLS {
        if stop.load(Ordering::SeqCst) || begun.elapsed() > MAX_RUN {
            return;
        }
        let started = Instant::now();
        let outcome = call(&http, &mcp, &client, target, n).await;
        records.lock().unwrap().push(Record {
            client: client.index,
            era: client.era(),
            upstream: target.upstream,
            started,
            ended: Instant::now(),
            outcome,
        });
        tokio::time::sleep(pace).await;
    }
}

/// One `tools/call` in the client's era.
async fn call(http: &HttpClient, mcp: &str, client: &Client, target: Target, n: usize) -> Outcome {
    let (name, arguments, expected) = target.call(client.index, n);
    let mut params = json!({ "name": name, "arguments": arguments });
    let headers = match &client.session {
        Some(session) => legacy_headers(Some(session)),
        None => {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            });
            modern_headers("tools/call", Some(&name))
        }
    };
    // A 2025 session's two loops share it: their ids must differ.
    let id = format!("{}-{n}", target.upstream);
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params });
    let mut request = http::Request::post(mcp);
    for (header, value) in &headers {
        request = request.header(header.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let exchange = async {
        let response = http.request(request).await.map_err(|e| causes(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| causes(&e))?;
        Ok::<_, String>(HttpResponse {
            status,
            headers,
            body: body.to_bytes(),
        })
    };
    match tokio::time::timeout(CALL_DEADLINE, exchange).await {
        Err(_) => Outcome::Transport(format!("no answer within {CALL_DEADLINE:?}")),
        Ok(Err(error)) => Outcome::Transport(error),
        Ok(Ok(response)) => classify(&response, &expected),
    }
}

fn classify(response: &HttpResponse, expected: &str) -> Outcome {
    let message = response.json();
    if let Some(error) = message.get("error") {
        return Outcome::Rpc {
            status: response.status,
            code: error["code"].as_i64().unwrap_or_default(),
            message: error["message"].as_str().unwrap_or_default().to_string(),
            upstream: error["data"]["upstream"].as_str().map(str::to_string),
        };
    }
    if response.status == 200
        && message.pointer("/result/content/0/text") == Some(&json!(expected))
        && message["result"]["isError"] != true
    {
        return Outcome::Ok;
    }
    let body = String::from_utf8_lossy(&response.body);
    Outcome::Other {
        status: response.status,
        body: body.chars().take(200).collect(),
    }
}

/// An error and its causes, on one line.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------
// Processes.
// ---------------------------------------------------------------------------

/// A loopback port nothing listens on now, for a process that will be
/// started again on it.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `switchboard serve` on a fixed port, with the session key in its
/// environment (where a Secret would put it).
fn gateway_on(port: u16, config_yaml: &str) -> Gateway {
    let yaml = format!("listen: \"127.0.0.1:{port}\"\n{config_yaml}");
    let config = TempFile::new("yaml", &yaml);
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .arg("serve")
        .arg("--config")
        .arg(&config.path)
        .env("RUST_LOG", "switchboard=info")
        .env("SWITCHBOARD_SESSION_KEY", SESSION_KEY);
    let (proc, line) = Proc::start(command, "switchboard listening on");
    let base = url_in(&line).trim_end_matches("/mcp").to_string();
    Gateway { proc, base, config }
}

/// Polls `/readyz` until it answers 200.
async fn wait_ready(base: &str, within: Duration) {
    let http = http_client();
    let url = format!("{base}/readyz");
    let deadline = Instant::now() + within;
    loop {
        let request = http::Request::get(&url).body(Full::default()).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(2), http.request(request))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|r| r.status().as_u16());
        if status == Some(200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} not ready within {within:?} (last: {status:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal(signal: &str, pid: &str) {
    let status = Command::new("kill").args([signal, pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

// ---------------------------------------------------------------------------
// A finished run: what must hold, and the figures.
// ---------------------------------------------------------------------------

struct Run {
    /// When the load started.
    start: Instant,
    /// When the fault struck.
    fault: Instant,
    /// When the failed part was back: listening, ready, or resumed.
    recovered: Instant,
    clients: Vec<Client>,
    /// Every call, in the order they ended.
    records: Vec<Record>,
}

impl Run {
    /// No 2025 client was ever told its session is unknown.
    fn assert_no_session_lost(&self) {
        let lost = self.list(|r| r.outcome.status() == Some(404));
        assert!(lost.is_empty(), "sessions lost:\n{}", lost.join("\n"));
    }

    fn assert_all_ok(&self, upstream: &str) {
        assert!(self.records.iter().any(|r| r.upstream == upstream));
        let failed = self.list(|r| r.upstream == upstream && !r.outcome.is_ok());
        assert!(
            failed.is_empty(),
            "{upstream}, which did not fail, saw failures:\n{}",
            failed.join("\n")
        );
    }

    /// Every failed call to `upstream` overlapped the outage — it ended
    /// after the fault and started before the recovery, or within `grace`
    /// of it — and its error is a `clear` one.
    fn assert_failures_only_while_down(
        &self,
        upstream: &str,
        grace: Duration,
        clear: impl Fn(&Outcome) -> bool,
    ) {
        for record in self
            .records
            .iter()
            .filter(|r| r.upstream == upstream && !r.outcome.is_ok())
        {
            let what = self.describe(record);
            assert!(
                record.ended >= self.fault,
                "failed before the fault: {what}"
            );
            assert!(
                record.started < self.recovered + grace,
                "failed {:.3} s after the recovery: {what}",
                self.at(record.started) - self.at(self.recovered)
            );
            assert!(clear(&record.outcome), "not the expected error: {what}");
        }
    }

    /// The gateway answered every call (only an upstream failed).
    fn assert_gateway_always_answered(&self) {
        let failed = self.list(|r| matches!(r.outcome, Outcome::Transport(_)));
        assert!(failed.is_empty(), "no answer:\n{}", failed.join("\n"));
    }

    fn assert_served_again_within(&self, upstream: &str, limit: Duration) {
        for client in &self.clients {
            let after = self.first_served_after_recovery(client.index, upstream);
            let after = after.unwrap_or_else(|| {
                panic!(
                    "client {} ({}) never served by {upstream} after the recovery",
                    client.index,
                    client.era()
                )
            });
            assert!(
                after <= limit,
                "client {} ({}) first served by {upstream} {after:?} after the recovery",
                client.index,
                client.era()
            );
        }
    }

    /// Every 2025 client's original session id still works.
    async fn assert_sessions_alive(&self, mcp: &str, target: Target) {
        let http = http_client();
        for client in self.clients.iter().filter(|c| c.session.is_some()) {
            let outcome = call(&http, mcp, client, target, MAX_CALLS).await;
            assert!(
                outcome.is_ok(),
                "client {}'s session after the fault: {outcome:?}",
                client.index
            );
        }
    }

    fn failed(&self, upstream: &str) -> usize {
        self.records
            .iter()
            .filter(|r| r.upstream == upstream && !r.outcome.is_ok())
            .count()
    }

    fn slowest(&self, upstream: &str) -> Duration {
        self.records
            .iter()
            .filter(|r| r.upstream == upstream)
            .map(|r| r.ended - r.started)
            .max()
            .unwrap_or_default()
    }

    fn first_served_after_recovery(&self, client: usize, upstream: &str) -> Option<Duration> {
        self.records
            .iter()
            .filter(|r| r.client == client && r.upstream == upstream && r.outcome.is_ok())
            .filter(|r| r.ended >= self.recovered)
            .map(|r| r.ended - self.recovered)
            .min()
    }

    /// Seconds since the load started.
    fn at(&self, instant: Instant) -> f64 {
        instant.saturating_duration_since(self.start).as_secs_f64()
    }

    fn phase(&self, record: &Record) -> &'static str {
        if record.started < self.fault {
            "before"
        } else if record.started < self.recovered {
            "during"
        } else {
            "after"
        }
    }

    fn describe(&self, record: &Record) -> String {
        format!(
            "client {} ({}) → {}: {:.3}-{:.3} s: {}",
            record.client,
            record.era,
            record.upstream,
            self.at(record.started),
            self.at(record.ended),
            record.outcome.kind()
        )
    }

    /// The first 20 calls `matching`, described.
    fn list(&self, matching: impl Fn(&Record) -> bool) -> Vec<String> {
        let matched = self.records.iter().filter(|r| matching(r));
        matched.take(20).map(|r| self.describe(r)).collect()
    }

    /// Per upstream: calls that went through / failed before, during and
    /// after the fault, the latency of those that went through, each kind
    /// of failure, and how soon every client was served again.
    fn print(&self, title: &str) {
        let stopped = self.records.last().map_or(self.recovered, |r| r.ended);
        println!("\n== {title}");
        println!(
            "   {n} clients ({CLIENTS_PER_ERA} with 2025 sessions, {CLIENTS_PER_ERA} stateless 2026-07-28); fault at {:.2} s, back at {:.2} s, load stopped at {:.2} s",
            self.at(self.fault),
            self.at(self.recovered),
            self.at(stopped),
            n = 2 * CLIENTS_PER_ERA,
        );
        println!(
            "   {:<8} {:>14} {:>14} {:>14}   latency of ok calls p50 / max",
            "upstream", "before ok/err", "during ok/err", "after ok/err"
        );
        let mut upstreams: Vec<&str> = self.records.iter().map(|r| r.upstream).collect();
        upstreams.sort();
        upstreams.dedup();
        for upstream in &upstreams {
            let of = |phase: &str, ok: bool| {
                let records = self.records.iter().filter(|r| r.upstream == *upstream);
                records
                    .filter(|r| self.phase(r) == phase && r.outcome.is_ok() == ok)
                    .count()
            };
            let cell = |phase| format!("{}/{}", of(phase, true), of(phase, false));
            let mut latencies: Vec<Duration> = self
                .records
                .iter()
                .filter(|r| r.upstream == *upstream && r.outcome.is_ok())
                .map(|r| r.ended - r.started)
                .collect();
            latencies.sort();
            let p50 = latencies
                .get(latencies.len() / 2)
                .copied()
                .unwrap_or_default();
            let max = latencies.last().copied().unwrap_or_default();
            println!(
                "   {upstream:<8} {:>14} {:>14} {:>14}   {p50:.1?} / {max:.1?}",
                cell("before"),
                cell("during"),
                cell("after"),
            );
        }
        let mut kinds: BTreeMap<(&str, String), usize> = BTreeMap::new();
        for record in self.records.iter().filter(|r| !r.outcome.is_ok()) {
            *kinds
                .entry((record.upstream, record.outcome.kind()))
                .or_default() += 1;
        }
        for ((upstream, kind), count) in &kinds {
            println!("   {count:>5} × {upstream}: {kind}");
        }
        for upstream in upstreams.iter().filter(|u| self.failed(u) > 0) {
            let struck: Vec<&Record> = self
                .records
                .iter()
                .filter(|r| r.upstream == *upstream)
                .filter(|r| r.started < self.fault && r.ended > self.fault)
                .collect();
            let last_failure = self
                .records
                .iter()
                .filter(|r| r.upstream == *upstream && !r.outcome.is_ok())
                .map(|r| r.ended)
                .max()
                .unwrap();
            let slowest_back = (self.clients.iter())
                .filter_map(|c| self.first_served_after_recovery(c.index, upstream))
                .max()
                .unwrap_or_default();
            println!(
                "   {upstream}: {} calls in flight when the fault struck ({} failed); last failure ended at {:.2} s; every client served again within {slowest_back:.0?} of the recovery",
                struck.len(),
                struck.iter().filter(|r| !r.outcome.is_ok()).count(),
                self.at(last_failure),
            );
        }
    }
}
