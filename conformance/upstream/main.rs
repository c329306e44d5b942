//! An MCP server, built on rmcp, that passes the official conformance suite's
//! server scenarios on its own.
//!
//! It is the baseline for Switchboard's conformance runs: the suite is run
//! against it directly, then through the gateway, and any difference is the
//! gateway's doing. Integration tests also start it as an ordinary rmcp
//! upstream, which is why it carries a few tools of its own (`echo`,
//! `session_info`, `sleep`, `--extra-tool`) besides the ones the suite calls.
//!
//! ```text
//! conformance-upstream --http 127.0.0.1:0 [--stateless] [--legacy-only] [--unrelated-requests]
//!                      [--list-changed] [--strip-prefix P] [--extra-tool NAME]...
//! conformance-upstream --stdio [--legacy-only] [--list-changed] [--strip-prefix P] [--extra-tool NAME]...
//! ```
//!
//! `--strip-prefix P` serves every tool and prompt named `P<rest>` as
//! `<rest>` (calls and gets by `<rest>` reach it): behind a gateway that
//! prefixes this upstream's names with `P`, the aggregated endpoint then
//! shows the suite's own names. `--list-changed` declares `listChanged` for
//! tools and prompts and serves the suite's hooks that change those lists
//! (`changes`). `--unrelated-requests` makes a 2025 session ask the client
//! for input (sampling, elicitation) on the session's standalone GET stream,
//! as a TS SDK 1.x server does when a handler asks without its related
//! request id, instead of on the call's stream as rmcp and the Python SDK do.
//!
//! With `--http` it prints exactly one line on stdout once it is bound,
//! `listening on http://ADDR/mcp`, so a parent can start it on port 0 and read
//! the address back. Diagnostics go to stderr (`RUST_LOG`, default `warn`).
//!
//! The tool, resource and prompt names, arguments and texts in these files
//! are the ones the suite's scenarios ask for (its `--scenario` descriptions
//! spell them out); changing one makes a scenario fail. Suite 0.1.16 tests
//! the 2025 revisions only; the `test_input_required_result_*` and other
//! 2026-07-28 fixtures are for its 0.2.0 line (`--requirements 2026-07-28`).
//!
//! One file per part of what it serves: `transport` (HTTP, TLS and stdio),
//! `server` (the instance and its `ServerHandler`), `tools` (the catalogue
//! and `tools/call`), `logging` (log and progress notifications), `input`
//! (sampling and elicitation), `mrtr` (the 2026-07-28 input fixtures),
//! `changes` (`--list-changed`), `resources`, and `prompts` (with
//! completions).

// The 2025 revisions the suite tests rely on logging, sampling and
// server-to-client requests, which rmcp marks deprecated by SEP-2577.
#![allow(deprecated)]

mod changes;
mod input;
mod logging;
mod mrtr;
mod prompts;
mod resources;
mod server;
mod tools;
mod transport;

use std::sync::Arc;

use mrtr::RequestStates;
use server::Shared;
use tools::SleepStats;
use transport::{serve_http, serve_stdio};

/// A 1x1 red PNG (8-bit RGB, one zlib-compressed scanline), base64.
const RED_PIXEL_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mP4z8AAAAMBAQD3A0FDAAAAAElFTkSuQmCC";

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

enum Transport {
    Http { addr: String, stateless: bool },
    Stdio,
}

struct Options {
    transport: Transport,
    extra_tools: Vec<String>,
    /// Speak only the 2025 revisions: a 2025-era upstream with sessions,
    /// for the gateway's affinity and era-bridging tests.
    legacy_only: bool,
    /// Serve HTTPS with this PEM certificate chain and key.
    tls: Option<(String, String)>,
    /// Serve tools and prompts named `<prefix><rest>` as `<rest>`.
    strip_prefix: Option<String>,
    /// Declare `listChanged` and serve the suite's list-change triggers.
    list_changed: bool,
    /// Ask for input on the session's GET stream (TS SDK 1.x style).
    unrelated_requests: bool,
}

const USAGE: &str = "usage: conformance-upstream (--http ADDR [--stateless] [--tls CERT KEY] | --stdio) \
                     [--legacy-only] [--unrelated-requests] [--list-changed] [--strip-prefix PREFIX] [--extra-tool NAME]...";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut http = None;
    let mut stdio = false;
    let mut stateless = false;
    let mut extra_tools = Vec::new();
    let mut legacy_only = false;
    let mut tls = None;
    let mut strip_prefix = None;
    let mut list_changed = false;
    let mut unrelated_requests = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--http" => http = Some(args.next().ok_or("--http needs an address")?),
            "--stdio" => stdio = true,
            "--stateless" => stateless = true,
            "--legacy-only" => legacy_only = true,
            "--list-changed" => list_changed = true,
            "--unrelated-requests" => unrelated_requests = true,
            "--tls" => {
                let cert = args.next().ok_or("--tls needs a certificate file")?;
                let key = args.next().ok_or("--tls needs a key file")?;
                tls = Some((cert, key));
            }
            "--extra-tool" => extra_tools.push(args.next().ok_or("--extra-tool needs a name")?),
            "--strip-prefix" => {
                strip_prefix = Some(args.next().ok_or("--strip-prefix needs a prefix")?)
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let transport = match (http, stdio) {
        (Some(addr), false) => Transport::Http { addr, stateless },
        (None, true) if !stateless => Transport::Stdio,
        (None, true) => return Err("--stateless only applies to --http".into()),
        _ => return Err(format!("give exactly one of --http and --stdio\n{USAGE}")),
    };
    Ok(Options {
        transport,
        extra_tools,
        legacy_only,
        tls,
        strip_prefix,
        list_changed,
        unrelated_requests,
    })
}

fn main() {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    // Logs on stderr: stdout is the address line (HTTP) or the protocol (stdio).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let stateless = matches!(
        options.transport,
        Transport::Http {
            stateless: true,
            ..
        }
    );
    input::UNRELATED_REQUESTS.store(
        options.unrelated_requests,
        std::sync::atomic::Ordering::Relaxed,
    );
    let shared = Arc::new(Shared {
        extra_tools: options.extra_tools,
        sleeps: SleepStats::default(),
        legacy_only: options.legacy_only,
        stateless,
        states: RequestStates::default(),
        strip_prefix: options.strip_prefix,
        changes: changes::ListChanges::new(options.list_changed),
    });
    let result = runtime.block_on(async move {
        match options.transport {
            Transport::Http { addr, stateless } => {
                serve_http(&addr, stateless, options.tls, shared).await
            }
            Transport::Stdio => serve_stdio(shared).await,
        }
    });
    if let Err(error) = result {
        eprintln!("conformance-upstream: {error}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_args(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn command_line() {
        let options =
            parse(&["--http", "127.0.0.1:0", "--stateless", "--extra-tool", "a"]).unwrap();
        assert!(matches!(
            options.transport,
            Transport::Http {
                stateless: true,
                ..
            }
        ));
        assert_eq!(options.extra_tools, ["a"]);
        assert!(matches!(
            parse(&["--stdio"]).unwrap().transport,
            Transport::Stdio
        ));
        assert!(parse(&[]).is_err());
        assert!(parse(&["--stdio", "--http", "x"]).is_err());
        assert!(parse(&["--stdio", "--stateless"]).is_err());
        assert!(parse(&["--extra-tool"]).is_err());
        assert_eq!(
            parse(&["--stdio", "--strip-prefix", "test_"])
                .unwrap()
                .strip_prefix
                .as_deref(),
            Some("test_")
        );
        assert!(parse(&["--stdio", "--strip-prefix"]).is_err());
    }
}
