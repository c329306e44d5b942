//! Session affinity: each legacy client session gets its own upstream
//! session, reused by all of its calls; different client sessions never
//! share one. The upstream (rmcp, 2025-only, session mode) reports the
//! `Mcp-Session-Id` each call arrived with.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

async fn upstream_session_seen(gateway: &Gateway, session: &str, id: u32) -> String {
    let info = session_info(&gateway.mcp(), session, "aff_session_info", id).await;
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

    // Ending the client session ends it for good, and its upstream session too.
    assert!(upstream_knows(&url, &a1).await);
    let deleted = request("DELETE", &gateway.mcp(), &legacy_headers(Some(&a)), "").await;
    assert_eq!(deleted.status, 200);
    let after = post(
        &gateway.mcp(),
        &legacy_headers(Some(&a)),
        r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(after.status, 404);
    wait_until_upstream_forgets(&url, &a1).await;
    assert!(
        upstream_knows(&url, &b1).await,
        "other sessions are untouched"
    );
}

/// Asks the upstream itself whether it still has a session: 200 yes, 404
/// no; anything else (a session mid-teardown) is asked again.
async fn upstream_knows(upstream: &str, session: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = post(
            upstream,
            &legacy_headers(Some(session)),
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .await;
        match response.status {
            200 => return true,
            404 => return false,
            other => assert!(
                Instant::now() < deadline,
                "upstream keeps answering {other}: {:?}",
                response.body
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until_upstream_forgets(upstream: &str, session: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream_knows(upstream, session).await {
        assert!(
            Instant::now() < deadline,
            "upstream session {session} was never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_client_session_expires_with_its_upstream_sessions() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let gateway = Gateway::start(&format!(
        "sessionIdleTimeout: 500ms\nupstreams:\n  - name: aff\n    url: \"{url}\"\n"
    ));
    gateway.wait_for_tools(&["aff_session_info"]).await;
    let session = initialize(&gateway.mcp()).await;
    let upstream_session = upstream_session_seen(&gateway, &session, 1).await;
    // Watching the upstream does not touch the client session.
    wait_until_upstream_forgets(&url, &upstream_session).await;
    let after = post(
        &gateway.mcp(),
        &legacy_headers(Some(&session)),
        r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(after.status, 404, "an expired session is unknown");
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
