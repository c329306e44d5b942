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

/// Calls a tool as a 2026-07-28 client (one stateless request).
async fn touch(gateway: &Gateway, tool: &str, uri: &str) {
    let body = json!({ "jsonrpc": "2.0", "id": 9, "method": "tools/call",
                       "params": { "name": tool, "arguments": { "uri": uri },
                                   "_meta": support::security::meta() } });
    let answer = post(
        &gateway.mcp(),
        &modern_headers("tools/call", Some(tool)),
        &body.to_string(),
    )
    .await
    .json();
    assert!(answer.get("result").is_some(), "{tool} {uri}: {answer}");
}

/// The URIs of the next updates on `stream`, until `count` came or none
/// comes for a while; each must carry the listen request's id.
async fn next_updates(stream: &mut EventStream, count: usize, listen_id: &str) -> Vec<String> {
    let mut uris = Vec::new();
    while uris.len() < count {
        let Some(message) = stream.next(std::time::Duration::from_secs(10)).await else {
            break;
        };
        if message["method"] != "notifications/resources/updated" {
            continue;
        }
        assert_eq!(
            message.pointer("/params/_meta/io.modelcontextprotocol~1subscriptionId"),
            Some(&json!(listen_id)),
            "{message}"
        );
        uris.push(
            message["params"]["uri"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    uris
}

#[tokio::test(flavor = "multi_thread")]
async fn a_modern_clients_listen_stream_gets_updates_of_the_resources_it_names() {
    // A 2025 upstream (TS SDK 1.x, updates on each subscribed session's
    // standalone stream) and a 2026-07-28 one (updates on listen streams).
    let (_sdk1, sdk1_url) = ts_sdk1_server();
    let (_v2, v2_url) = ts_v2_server();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: sdk1\n    url: \"{sdk1_url}\"\n  - name: v2\n    url: \"{v2_url}\"\n"
    ));
    gateway.wait_for_tools(&["sdk1_touch", "v2_touch"]).await;
    let (doc, a, b) = ("demo://sdk1/doc", "demo://watched/a", "demo://watched/b");

    let listen = json!({ "jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
        "params": { "notifications": { "resourceSubscriptions": [doc, a, "demo://nobody/x"] },
                    "_meta": support::security::meta() } });
    let mut stream = EventStream::open(
        "POST",
        &gateway.mcp(),
        &modern_headers("subscriptions/listen", None),
        &listen.to_string(),
    )
    .await;
    assert_eq!(stream.status, 200);
    let ack = stream
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("an acknowledgement");
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    // What an upstream owns is honoured; a URI nobody serves is not.
    assert_eq!(
        ack["params"]["notifications"]["resourceSubscriptions"],
        json!([doc, a]),
        "{ack}"
    );

    // Once acknowledged, no update is missed; one not named never comes.
    touch(&gateway, "v2_touch", b).await;
    touch(&gateway, "v2_touch", a).await;
    assert_eq!(next_updates(&mut stream, 1, "listen-1").await, [a]);
    touch(&gateway, "sdk1_touch", doc).await;
    assert_eq!(next_updates(&mut stream, 1, "listen-1").await, [doc]);

    // On /servers/{name}/mcp the one upstream owns every URI named.
    let listen = json!({ "jsonrpc": "2.0", "id": 2, "method": "subscriptions/listen",
        "params": { "notifications": { "resourceSubscriptions": [doc] },
                    "_meta": support::security::meta() } });
    let mut scoped = EventStream::open(
        "POST",
        &gateway.server_mcp("sdk1"),
        &modern_headers("subscriptions/listen", None),
        &listen.to_string(),
    )
    .await;
    let ack = scoped
        .next(std::time::Duration::from_secs(10))
        .await
        .expect("an acknowledgement");
    assert_eq!(
        ack["params"]["notifications"]["resourceSubscriptions"],
        json!([doc]),
        "{ack}"
    );
    touch(&gateway, "sdk1_touch", doc).await;
    let mut ids = Vec::new();
    while ids.is_empty() {
        let Some(message) = scoped.next(std::time::Duration::from_secs(10)).await else {
            break;
        };
        if message["method"] == "notifications/resources/updated" {
            ids.push(
                message
                    .pointer("/params/_meta/io.modelcontextprotocol~1subscriptionId")
                    .cloned(),
            );
        }
    }
    assert_eq!(ids, [Some(json!(2))]);
    // Both streams got the one touch that concerned them both.
    assert_eq!(next_updates(&mut stream, 1, "listen-1").await, [doc]);
}
