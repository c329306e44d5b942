//! Stdio upstreams: one child process shared by every client; when it
//! exits, the next call starts a new one (and, for a 2025-era server, a new
//! handshake) without the client noticing.

mod support;

use serde_json::{Value, json};
use support::*;

/// The pid of the process that answered, or the error message.
async fn try_pid_behind(gateway: &Gateway, session: &str, id: u32) -> Result<u64, String> {
    let body = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "kid_session_info", "arguments": {} }
    });
    let response = post(
        &gateway.mcp(),
        &legacy_headers(Some(session)),
        &body.to_string(),
    )
    .await;
    let message = response.json();
    match message
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
    {
        Some(text) => Ok(serde_json::from_str::<Value>(text).unwrap()["pid"]
            .as_u64()
            .unwrap()),
        None => Err(message["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()),
    }
}

async fn pid_behind(gateway: &Gateway, session: &str, id: u32) -> u64 {
    try_pid_behind(gateway, session, id)
        .await
        .unwrap_or_else(|e| panic!("call failed: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exited_stdio_upstream_is_started_again_on_the_next_call() {
    for era_args in [vec!["--stdio"], vec!["--stdio", "--legacy-only"]] {
        let args = era_args
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let gateway = Gateway::start(&format!(
            "upstreams:\n  - name: kid\n    command: \"{}\"\n    args: [{args}]\n",
            example_path("conformance-upstream").display()
        ));
        gateway.wait_for_tools(&["kid_session_info"]).await;
        let first_client = initialize(&gateway.mcp()).await;
        let second_client = initialize(&gateway.mcp()).await;
        let pid = pid_behind(&gateway, &first_client, 1).await;
        assert_eq!(
            pid,
            pid_behind(&gateway, &second_client, 1).await,
            "one process for all clients"
        );

        let status = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        // A call racing the exit may fail, with an error naming the upstream
        // (it may have reached the dying process, so it is not retried);
        // the calls after it reach a new process.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut errors = 0;
        let new_pid = loop {
            match try_pid_behind(&gateway, &first_client, 2).await {
                Ok(seen) if seen != pid => break seen,
                Ok(_) => {}
                Err(message) => {
                    assert!(message.contains("kid"), "{message}");
                    errors += 1;
                    assert!(
                        errors <= 1,
                        "{era_args:?}: more than the racing call failed: {message}"
                    );
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{era_args:?}: never restarted"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_ne!(new_pid, pid, "{era_args:?}");
        assert_eq!(pid_behind(&gateway, &second_client, 3).await, new_pid);
    }
}

/// A stdio child sees the minimal base, the names the config passes through
/// and the config's own `env`, never the gateway's secrets: checked with a
/// real server whose tool prints its whole environment (server-everything's
/// `get-env`), and with `check-config`, which names what each child gets.
#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_child_sees_only_the_environment_its_config_gives() {
    let server = peers().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(server.exists(), "run bash tests/setup");
    let config = format!(
        r#"
sessions:
  key: "${{SWITCHBOARD_SESSION_KEY}}"
upstreams:
  - name: ev
    command: "node"
    args: ["{}", "stdio"]
    inheritEnv: [PASSED_THROUGH, NOT_SET_ANYWHERE]
    env:
      GIVEN: "token ${{GIVEN_SOURCE}}"
"#,
        server.display()
    );
    let gateway_env = [
        (
            "SWITCHBOARD_SESSION_KEY",
            "canary-session-key-0123456789abcdefghij",
        ),
        ("AWS_SECRET_ACCESS_KEY", "canary-cloud-credential"),
        ("PASSED_THROUGH", "passed as is"),
        ("GIVEN_SOURCE", "from the gateway"),
    ];
    let gateway = Gateway::start_with_env(&config, &gateway_env);
    gateway.wait_for_tools(&["ev_get-env"]).await;
    let session = initialize(&gateway.mcp()).await;
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "ev_get-env", "arguments": {} }
    });
    let answer = post(
        &gateway.mcp(),
        &legacy_headers(Some(&session)),
        &body.to_string(),
    )
    .await
    .json();
    let text = answer
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{answer}"));
    let child: serde_json::Map<String, Value> = serde_json::from_str(text).unwrap();

    assert_eq!(child["GIVEN"], "token from the gateway", "env, expanded");
    assert_eq!(child["PASSED_THROUGH"], "passed as is", "inheritEnv");
    assert!(child.contains_key("PATH"), "the base: {child:?}");
    let base = ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];
    for name in child.keys() {
        assert!(
            base.contains(&name.as_str()) || name == "GIVEN" || name == "PASSED_THROUGH",
            "the child got {name}, which nothing gave it"
        );
    }
    for (_, secret) in &gateway_env[..2] {
        assert!(!text.contains(secret), "a gateway secret reached the child");
    }

    // check-config lists the names each child gets, never a value.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg(&gateway.config.path)
        .envs(gateway_env)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ev: stdio child environment: GIVEN,"),
        "{stdout}"
    );
    assert!(stdout.contains("PASSED_THROUGH"), "{stdout}");
    assert!(
        !stdout.contains("from the gateway") && !stdout.contains("passed as is"),
        "{stdout}"
    );
}
