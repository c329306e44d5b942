//! What a 2025-era upstream sends outside any call reaches the client it
//! concerns, as it would directly: requests unrelated to a client request
//! (a TS SDK 1.x server's `createMessage`, `elicitInput` and `listRoots`
//! without a related request id go on the session's GET stream) and log
//! notifications. The same calls direct and through both endpoints give the
//! same results, with the TS SDK 1.x client's own handlers answering.

mod support;

use serde_json::{Value, json};
use support::*;

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
    assert_eq!(call_outcomes(&direct), expected, "directly: {direct}");
    assert_eq!(direct["logs"], json!(["a log line"]), "directly: {direct}");

    for (endpoint, prefix) in [(gateway.mcp(), "sdk1_"), (gateway.server_mcp("sdk1"), "")] {
        let through = ts_client(&endpoint, "legacy", &plan(prefix));
        assert_eq!(call_outcomes(&through), expected, "{endpoint}: {through}");
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

    // A 2026-07-28 client has no session: its call that may need input runs
    // in an upstream session of its own, so the request the server sends
    // on that session's GET stream is this call's, and reaches the client
    // as an input round (InputRequiredResult), at either endpoint.
    for (endpoint, prefix) in [(gateway.mcp(), "sdk1_"), (gateway.server_mcp("sdk1"), "")] {
        let modern = json!({
            "sampling": { "role": "assistant", "model": "m", "content": { "type": "text", "text": "x" } },
            "elicitation": { "action": "accept", "content": { "name": "Ada" } },
            "calls": [
                { "name": format!("{prefix}sample_unrelated"), "arguments": { "prompt": "hi" } },
                { "name": format!("{prefix}elicit_unrelated"), "arguments": {} },
            ],
        });
        let output = ts_client(&endpoint, "modern", &modern);
        assert_eq!(
            call_outcomes(&output),
            [
                json!({ "text": "sampled: x", "error": null }),
                json!({ "text": "elicited: accept {\"name\":\"Ada\"}", "error": null }),
            ],
            "{endpoint}: {output}"
        );
        assert_eq!(output["samplings"], 1, "{endpoint}: {output}");
        assert_eq!(output["elicitations"], 1, "{endpoint}: {output}");
    }
}

/// `logging/setLevel` on `/mcp` reaches every 2025-era upstream the client
/// can reach, in its own session: the upstream filters its log messages by
/// the client's level as it does directly.
#[tokio::test(flavor = "multi_thread")]
async fn a_log_level_set_on_the_aggregate_endpoint_reaches_the_upstreams() {
    let (_server, url) = ts_sdk1_server();
    let gateway = Gateway::start(&format!("upstreams:\n  - name: sdk1\n    url: \"{url}\"\n"));
    gateway.wait_for_tools(&["sdk1_log_levels"]).await;
    let plan = |name: &str| {
        json!({ "logLevel": "error", "logs": 1,
                "calls": [{ "name": name, "arguments": {} }] })
    };
    let direct = ts_client(&url, "legacy", &plan("log_levels"));
    assert_eq!(direct["logs"], json!(["an error"]), "directly: {direct}");
    for (endpoint, name) in [
        (gateway.mcp(), "sdk1_log_levels"),
        (gateway.server_mcp("sdk1"), "log_levels"),
    ] {
        let through = ts_client(&endpoint, "legacy", &plan(name));
        assert_eq!(
            through["logs"],
            json!(["an error"]),
            "{endpoint}: {through}"
        );
    }
}

/// A client that holds no GET stream of its own: a request its upstream
/// sends outside the call goes on the answer stream of the client's call
/// to that upstream, and the client's answer (a POST) reaches the upstream.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_stream_of_its_own_the_client_is_asked_on_its_calls_stream() {
    let (_server, url) = ts_sdk1_server();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: sdk1\n    url: \"{url}\"\n    timeout: \"20s\"\n"
    ));
    gateway.wait_for_tools(&["sdk1_sample_unrelated"]).await;
    let initialize = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": { "sampling": {} },
                    "clientInfo": { "name": "no-get-stream", "version": "0" } } });
    let response = post(
        &gateway.mcp(),
        &legacy_headers(None),
        &initialize.to_string(),
    )
    .await;
    let session = response.header("mcp-session-id").expect("a session id");
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    post(
        &gateway.mcp(),
        &legacy_headers(Some(&session)),
        &initialized.to_string(),
    )
    .await;

    let call = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "sdk1_sample_unrelated", "arguments": { "prompt": "hi" } } });
    let mut answer = EventStream::open(
        "POST",
        &gateway.mcp(),
        &legacy_headers(Some(&session)),
        &call.to_string(),
    )
    .await;
    let wait = std::time::Duration::from_secs(15);
    let asked = answer
        .next(wait)
        .await
        .expect("a message on the call's stream");
    assert_eq!(asked["method"], "sampling/createMessage", "{asked}");
    let reply = json!({ "jsonrpc": "2.0", "id": asked["id"], "result": {
        "role": "assistant", "model": "m",
        "content": { "type": "text", "text": "from the call's stream" } } });
    let delivered = post(
        &gateway.mcp(),
        &legacy_headers(Some(&session)),
        &reply.to_string(),
    )
    .await;
    assert_eq!(delivered.status, 202);
    let result = answer.next(wait).await.expect("the call's result");
    assert_eq!(
        result.pointer("/result/content/0/text"),
        Some(&json!("sampled: from the call's stream")),
        "{result}"
    );
}
