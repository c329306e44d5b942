//! Resource subscriptions through the gateway: a 2025 client's
//! `resources/subscribe` reaches a 2025 upstream in the client's own
//! session, or becomes a `subscriptions/listen` naming the URI that the
//! gateway holds for it with a 2026-07-28 upstream; either way each
//! `notifications/resources/updated` reaches exactly the clients subscribed
//! to that URI, on their own stream. `/mcp` advertises `resources.subscribe`.

mod support;

use serde_json::{Value, json};
use support::*;

fn updates(output: &Value) -> Vec<&str> {
    output["resourceUpdates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribed_clients_get_updates_from_upstreams_of_either_era() {
    let (_everything, everything_url) = everything();
    let (_v2, v2_url) = ts_v2_server();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: ev\n    url: \"{everything_url}\"\n  - name: v2\n    url: \"{v2_url}\"\n"
    ));
    gateway.wait_for_tools(&["ev_echo", "v2_touch"]).await;

    // /mcp says it takes subscriptions.
    let initialized = post(
        &gateway.mcp(),
        &legacy_headers(None),
        &json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize",
                 "params": { "protocolVersion": "2025-11-25", "capabilities": {},
                             "clientInfo": { "name": "t", "version": "1" } } })
        .to_string(),
    )
    .await
    .json();
    assert_eq!(
        initialized.pointer("/result/capabilities/resources/subscribe"),
        Some(&json!(true)),
        "{initialized}"
    );

    // A 2025 upstream (server-everything): it sends updates for what a
    // session subscribed to, outside any call, once the toggle is on.
    let document = "demo://resource/static/document/architecture.md";
    let plan = json!({
        "subscribe": [document],
        "awaitUpdates": 1,
        "calls": [{ "name": "ev_toggle-subscriber-updates", "arguments": {} }],
    });
    let direct = ts_client(
        &everything_url,
        "legacy",
        &json!({ "subscribe": [document], "awaitUpdates": 1,
                 "calls": [{ "name": "toggle-subscriber-updates", "arguments": {} }] }),
    );
    assert!(updates(&direct).contains(&document), "directly: {direct}");
    let through = ts_client(&gateway.mcp(), "legacy", &plan);
    assert!(updates(&through).contains(&document), "{through}");

    // A 2026-07-28 upstream: the subscription is a listen stream the gateway
    // holds; only the subscribed URI's updates reach the client.
    let plan = json!({
        "subscribe": ["demo://watched/a"],
        "awaitUpdates": 1,
        "calls": [
            { "name": "v2_touch", "arguments": { "uri": "demo://watched/b" } },
            { "name": "v2_touch", "arguments": { "uri": "demo://watched/a" } },
        ],
    });
    let through = ts_client(&gateway.mcp(), "legacy", &plan);
    assert_eq!(updates(&through), ["demo://watched/a"], "{through}");
    let per_server = json!({
        "subscribe": ["demo://watched/b"],
        "awaitUpdates": 1,
        "calls": [{ "name": "touch", "arguments": { "uri": "demo://watched/b" } }],
    });
    let through = ts_client(&gateway.server_mcp("v2"), "legacy", &per_server);
    assert_eq!(updates(&through), ["demo://watched/b"], "{through}");
}
