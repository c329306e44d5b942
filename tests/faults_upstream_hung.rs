//! Faults under load: an upstream hung (SIGSTOP) for longer than its
//! `timeout` times out alone, without holding up the other upstream, and
//! serves again when it resumes (SIGCONT) (the load and what is checked:
//! `support::faults`).
//!
//! ```text
//! cargo test --test faults_upstream_hung -- --nocapture
//! ```

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::faults::*;
use support::*;

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

fn signal(signal: &str, pid: &str) {
    let status = Command::new("kill").args([signal, pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}
