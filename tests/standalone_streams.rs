//! What a 2025-era upstream sends outside any call reaches the client it
//! concerns, as it would directly: requests unrelated to a client request
//! (a TS SDK 1.x server's `createMessage`, `elicitInput` and `listRoots`
//! without a related request id go on the session's GET stream) and log
//! notifications. The same calls direct and through both endpoints give the
//! same results, with the TS SDK 1.x client's own handlers answering.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::*;

/// The TypeScript SDK 1.x server of `tests/peers/ts_sdk1_server.mjs`.
fn ts_sdk1_server() -> (Proc, String) {
    let mut command = Command::new("node");
    command.arg(peers().join("ts_sdk1_server.mjs")).arg("0");
    let (proc, line) = Proc::start(command, "ts_sdk1_server ready on");
    (proc, url_in(&line))
}

fn plan(prefix: &str) -> Value {
    json!({
        "sampling": { "role": "assistant", "model": "test-model",
                      "content": { "type": "text", "text": "a sample" } },
        "elicitation": { "action": "accept", "content": { "name": "Ada" } },
        "roots": [{ "uri": "file:///work", "name": "work" }],
        "logs": 1,
        "calls": [
            { "name": format!("{prefix}sample_unrelated"), "arguments": { "prompt": "hi" } },
            { "name": format!("{prefix}elicit_unrelated"), "arguments": {} },
            { "name": format!("{prefix}roots_unrelated"), "arguments": {} },
            { "name": format!("{prefix}log_unrelated"), "arguments": { "text": "a log line" } },
        ],
    })
}

fn answers(output: &Value) -> Vec<Value> {
    output["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| json!({ "text": call["text"], "error": call["error"] }))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn unrelated_upstream_requests_reach_the_client_as_they_do_directly() {
    let (_server, url) = ts_sdk1_server();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: sdk1\n    url: \"{url}\"\n    timeout: \"20s\"\n"
    ));
    gateway.wait_for_tools(&["sdk1_sample_unrelated"]).await;

    let direct = ts_client(&url, "legacy", &plan(""));
    let expected = vec![
        json!({ "text": "sampled: a sample", "error": null }),
        json!({ "text": "elicited: accept {\"name\":\"Ada\"}", "error": null }),
        json!({ "text": "roots: file:///work", "error": null }),
        json!({ "text": "logged", "error": null }),
    ];
    assert_eq!(answers(&direct), expected, "directly: {direct}");
    assert_eq!(direct["logs"], json!(["a log line"]), "directly: {direct}");

    for (endpoint, prefix) in [(gateway.mcp(), "sdk1_"), (gateway.server_mcp("sdk1"), "")] {
        let through = ts_client(&endpoint, "legacy", &plan(prefix));
        assert_eq!(answers(&through), expected, "{endpoint}: {through}");
        assert_eq!(through["samplings"], 1, "{endpoint}: {through}");
        assert_eq!(through["elicitations"], 1, "{endpoint}: {through}");
        assert_eq!(through["rootsLists"], 1, "{endpoint}: {through}");
        assert!(
            through["logs"]
                .as_array()
                .unwrap()
                .contains(&json!("a log line")),
            "{endpoint}: the log notification sent outside the call: {through}"
        );
    }
}
