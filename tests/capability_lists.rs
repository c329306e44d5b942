//! Lists as the client would see them directly. A server may offer a tool
//! only to clients that declare what it asks of them (server-everything
//! registers `trigger-sampling-request`, `trigger-elicitation-request` and
//! `get-roots-list` only for clients declaring sampling, elicitation or
//! roots): through the gateway each client sees what it would see
//! directly with its own capabilities, in both eras, and can call it.

mod support;

use serde_json::{Value, json};
use support::*;

const GATED: [&str; 3] = [
    "trigger-sampling-request",
    "trigger-elicitation-request",
    "get-roots-list",
];

fn capable(calls: Value) -> Value {
    json!({
        "sampling": { "role": "assistant", "model": "test-model",
                      "content": { "type": "text", "text": "a sample" } },
        "elicitation": { "action": "decline" },
        "roots": [{ "uri": "file:///work", "name": "work" }],
        "calls": calls,
    })
}

fn gated_listed(output: &Value, prefix: &str) -> Vec<String> {
    let tools = tool_names(output);
    GATED
        .iter()
        .map(|name| format!("{prefix}{name}"))
        .filter(|name| tools.contains(&name.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_client_sees_the_tools_its_capabilities_unlock_and_can_call_them() {
    let (_everything, url) = everything();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: ev\n    url: \"{url}\"\n    timeout: \"20s\"\n"
    ));
    gateway.wait_for_tools(&["ev_echo"]).await;

    // Directly: the gated tools for a capable client only.
    let direct = ts_client(&url, "legacy", &capable(json!([])));
    assert_eq!(gated_listed(&direct, "").len(), 3, "directly: {direct}");
    let direct_plain = ts_client(&url, "legacy", &json!({}));
    assert!(gated_listed(&direct_plain, "").is_empty(), "{direct_plain}");

    for (endpoint, prefix) in [(gateway.mcp(), "ev_"), (gateway.server_mcp("ev"), "")] {
        let sample = json!([{ "name": format!("{prefix}trigger-sampling-request"),
                              "arguments": { "prompt": "hi", "maxTokens": 5 } }]);
        // 2025 (TS SDK 1.x) and 2026-07-28 (TS SDK v2 pinned) clients.
        for mode in ["legacy", "modern"] {
            let through = ts_client(&endpoint, mode, &capable(sample.clone()));
            assert_eq!(
                gated_listed(&through, prefix).len(),
                3,
                "{mode} {endpoint}: {through}"
            );
            let text = call_text(&through, 0);
            assert!(text.contains("a sample"), "{mode} {endpoint}: {through}");
            assert_eq!(through["samplings"], 1, "{mode} {endpoint}: {through}");

            let plain = ts_client(&endpoint, mode, &json!({}));
            assert!(
                gated_listed(&plain, prefix).is_empty(),
                "{mode} {endpoint}: a client without the capabilities: {plain}"
            );
        }
    }

    // The roots of a 2025 client reach the tool that asks for them.
    let roots = ts_client(
        &gateway.mcp(),
        "legacy",
        &capable(json!([{ "name": "ev_get-roots-list", "arguments": {} }])),
    );
    assert!(call_text(&roots, 0).contains("file:///work"), "{roots}");
}
