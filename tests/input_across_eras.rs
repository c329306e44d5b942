//! Input across eras: a 2025-era upstream that asks for input in the middle
//! of a call (on the call's own stream) serves a 2026-07-28 client through
//! the gateway as it serves a 2025 client directly. The client gets an
//! `InputRequiredResult`, retries with its answers, and the upstream's one
//! call goes on to its result, over as many rounds as it asks.

mod support;

use serde_json::{Value, json};
use support::*;

fn plan(prefix: &str) -> Value {
    json!({
        "sampling": { "role": "assistant", "model": "test-model",
                      "content": { "type": "text", "text": "a sample" } },
        "elicitation": { "action": "accept", "content": { "name": "Ada" } },
        "calls": [
            { "name": format!("{prefix}sample_related"), "arguments": { "prompt": "hi" } },
            { "name": format!("{prefix}elicit_related"), "arguments": {} },
            { "name": format!("{prefix}two_rounds_related"), "arguments": {} },
        ],
    })
}

fn modern_call(name: &str, extra: Value, capabilities: Value) -> String {
    let mut params = json!({ "name": name, "arguments": {},
        "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                   "io.modelcontextprotocol/clientCapabilities": capabilities } });
    if let Some(extra) = extra.as_object() {
        for (key, value) in extra {
            params[key] = value.clone();
        }
    }
    json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params }).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2026_client_answers_a_2025_upstreams_input_as_a_2025_client_does_directly() {
    let (_server, url) = ts_sdk1_server();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: sdk1\n    url: \"{url}\"\n    timeout: \"20s\"\n"
    ));
    gateway.wait_for_tools(&["sdk1_elicit_related"]).await;

    let direct = ts_client(&url, "legacy", &plan(""));
    let expected = vec![
        json!({ "text": "sampled: a sample", "error": null }),
        json!({ "text": "elicited: accept {\"name\":\"Ada\"}", "error": null }),
        json!({ "text": "rounds: Ada Ada", "error": null }),
    ];
    assert_eq!(call_outcomes(&direct), expected, "directly: {direct}");

    for (endpoint, prefix) in [(gateway.mcp(), "sdk1_"), (gateway.server_mcp("sdk1"), "")] {
        let through = ts_client(&endpoint, "modern", &plan(prefix));
        assert_eq!(through["protocolVersion"], "2026-07-28");
        assert_eq!(call_outcomes(&through), expected, "{endpoint}: {through}");
        assert_eq!(through["samplings"], 1, "{endpoint}: {through}");
        assert_eq!(
            through["elicitations"], 3,
            "one, then two rounds: {through}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn held_input_is_asked_once_and_a_foreign_or_undeclared_one_fails_cleanly() {
    let (_server, url) = ts_sdk1_server();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: sdk1\n    url: \"{url}\"\n    timeout: \"20s\"\n"
    ));
    gateway.wait_for_tools(&["sdk1_elicit_related"]).await;
    let headers = modern_headers("tools/call", Some("sdk1_elicit_related"));
    let elicitation = json!({ "elicitation": {} });

    // The wire shape: an InputRequiredResult naming what the upstream asks.
    let first = post(
        &gateway.mcp(),
        &headers,
        &modern_call("sdk1_elicit_related", json!({}), elicitation.clone()),
    )
    .await;
    let first = first.json();
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert_eq!(
        result["inputRequests"]["input"]["method"],
        "elicitation/create"
    );
    assert_eq!(
        result["inputRequests"]["input"]["params"]["message"],
        "Your name?"
    );
    let state = result["requestState"].as_str().unwrap().to_string();

    // The retry with the answer takes the held call to its end.
    let answer = json!({ "requestState": state,
                         "inputResponses": { "input": { "action": "accept", "content": { "name": "Grace" } } } });
    let done = post(
        &gateway.mcp(),
        &headers,
        &modern_call("sdk1_elicit_related", answer.clone(), elicitation.clone()),
    )
    .await;
    let done = done.json();
    assert_eq!(
        done.pointer("/result/content/0/text"),
        Some(&json!("elicited: accept {\"name\":\"Grace\"}")),
        "{done}"
    );
    assert_eq!(done["result"]["resultType"], "complete");

    // The same state again (or one from another replica): a clear error,
    // never a second run of the call.
    let again = post(
        &gateway.mcp(),
        &headers,
        &modern_call("sdk1_elicit_related", answer, elicitation),
    )
    .await;
    let again = again.json();
    assert_eq!(again["error"]["code"], -32602, "{again}");
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("call again"),
        "{again}"
    );

    // A client that did not declare elicitation is not asked: the upstream
    // gets an error for its request and the call ends, without hanging.
    let undeclared = post(
        &gateway.mcp(),
        &headers,
        &modern_call("sdk1_elicit_related", json!({}), json!({})),
    )
    .await;
    let undeclared = undeclared.json();
    assert_ne!(
        undeclared.pointer("/result/resultType"),
        Some(&json!("input_required")),
        "{undeclared}"
    );
    let failed = undeclared.get("error").is_some()
        || undeclared.pointer("/result/isError") == Some(&json!(true));
    assert!(failed, "{undeclared}");
}
