//! Faults under load: the gateway killed (SIGKILL) and started again on the
//! same port with the same `sessions.key` keeps every client's session and
//! reaches the same upstream sessions (the load and what is checked:
//! `support::faults`).
//!
//! ```text
//! cargo test --test faults_gateway_killed -- --nocapture
//! ```

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use http_body_util::Full;
use support::faults::*;
use support::*;

const SESSION_KEY: &str = "faults-test-session-key-that-is-long-enough";

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
