//! Session affinity: each legacy client session gets its own upstream
//! session, reused by all of its calls; different client sessions never
//! share one. The upstream (rmcp, 2025-only, session mode) reports the
//! `Mcp-Session-Id` each call arrived with.

mod support;

use serde_json::{Value, json};
use support::*;

async fn upstream_session_seen(gateway: &Gateway, session: &str, id: u32) -> String {
    let body = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "aff_session_info", "arguments": {} }
    });
    let response = post(
        &gateway.mcp(),
        &legacy_headers(Some(session)),
        &body.to_string(),
    )
    .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let message = response.json();
    let text = message
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text in {message}"));
    let info: Value = serde_json::from_str(text).unwrap();
    info["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("upstream saw no session: {info}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_upstream_session_per_client_session() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let gateway = Gateway::start(&format!("upstreams:\n  - name: aff\n    url: \"{url}\"\n"));
    gateway.wait_for_tools(&["aff_session_info"]).await;

    let a = initialize(&gateway.mcp()).await;
    let b = initialize(&gateway.mcp()).await;
    let a1 = upstream_session_seen(&gateway, &a, 1).await;
    let b1 = upstream_session_seen(&gateway, &b, 1).await;
    let a2 = upstream_session_seen(&gateway, &a, 2).await;
    let b2 = upstream_session_seen(&gateway, &b, 2).await;
    assert_eq!(
        a1, a2,
        "two calls of one client session share an upstream session"
    );
    assert_eq!(b1, b2);
    assert_ne!(
        a1, b1,
        "two client sessions never share an upstream session"
    );

    // Concurrent first calls of a new session still create exactly one.
    let c = initialize(&gateway.mcp()).await;
    let seen =
        futures_util::future::join_all((0..8).map(|i| upstream_session_seen(&gateway, &c, i)))
            .await;
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
    assert!(seen[0] != a1 && seen[0] != b1);

    // Ending the client session ends it for good: the id is now unknown.
    let deleted = request("DELETE", &gateway.mcp(), &legacy_headers(Some(&a)), "").await;
    assert_eq!(deleted.status, 200);
    let after = post(
        &gateway.mcp(),
        &legacy_headers(Some(&a)),
        r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(after.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_third_party_client_keeps_one_upstream_session() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let gateway = Gateway::start(&format!("upstreams:\n  - name: aff\n    url: \"{url}\"\n"));
    gateway.wait_for_tools(&["aff_session_info"]).await;
    let plan = json!({ "calls": [
        { "name": "aff_session_info", "arguments": {} },
        { "name": "aff_session_info", "arguments": {} },
    ]});
    let first = py_client(&gateway.mcp(), &plan);
    let second = py_client(&gateway.mcp(), &plan);
    let session = |output: &Value, i: usize| -> String {
        let info: Value = serde_json::from_str(call_text(output, i)).unwrap();
        info["sessionId"]
            .as_str()
            .expect("upstream session")
            .to_string()
    };
    assert_eq!(session(&first, 0), session(&first, 1));
    assert_eq!(session(&second, 0), session(&second, 1));
    assert_ne!(session(&first, 0), session(&second, 0));
}
