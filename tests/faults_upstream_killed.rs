//! Faults under load: an upstream killed (SIGKILL) and started again on the
//! same address costs only the calls to it while it was down; the other
//! upstream sees no error and no client session is lost (the load and what
//! is checked: `support::faults`).
//!
//! ```text
//! cargo test --test faults_upstream_killed -- --nocapture
//! ```

mod support;

use std::time::{Duration, Instant};

use support::faults::*;
use support::*;

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
