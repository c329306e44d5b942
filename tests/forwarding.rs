//! What crosses the gateway toward an upstream: the prefix leaves both the
//! body and `Mcp-Name`, `Mcp-Param-*` headers pass untouched, the
//! upstream's own configured credential is sent, and the client's never is.

mod support;

use serde_json::{Value, json};
use support::*;

fn seen_headers(response: &HttpResponse) -> Value {
    let message = response.json();
    let text = message
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text in {message}"));
    serde_json::from_str::<Value>(text).unwrap()["headers"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_rewritten_params_forwarded_and_credentials_kept_apart() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    // The upstream credential comes from the environment of the gateway.
    let gateway = Gateway::start_with_env(
        &format!(
            "upstreams:\n  - name: up\n    url: \"{url}\"\n    headers:\n      Authorization: \"Bearer ${{UPSTREAM_TOKEN}}\"\n"
        ),
        &[("UPSTREAM_TOKEN", "upstream-secret")],
    );
    gateway.wait_for_tools(&["up_session_info"]).await;

    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {
            "name": "up_session_info", "arguments": {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    });
    let mut headers = modern_headers("tools/call", Some("up_session_info"));
    headers.push(("mcp-param-region".into(), "eu-west".into()));
    headers.push(("authorization".into(), "Bearer client-secret".into()));
    let response = post(&gateway.mcp(), &headers, &body.to_string()).await;
    let seen = seen_headers(&response);
    assert_eq!(
        seen["mcp-name"], "session_info",
        "prefix stripped from Mcp-Name: {seen}"
    );
    assert_eq!(seen["mcp-method"], "tools/call");
    assert_eq!(seen["mcp-protocol-version"], "2026-07-28");
    assert_eq!(
        seen["mcp-param-region"], "eu-west",
        "Mcp-Param-* forwarded: {seen}"
    );
    assert_eq!(seen["authorization"], "Bearer upstream-secret", "{seen}");

    // A 2025 session's call carries the upstream's credential too, not the client's.
    let session = initialize(&gateway.mcp()).await;
    let mut headers = legacy_headers(Some(&session));
    headers.push(("authorization".into(), "Bearer client-secret".into()));
    let response = post(
        &gateway.mcp(),
        &headers,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"up_session_info","arguments":{}}}"#,
    )
    .await;
    let seen = seen_headers(&response);
    assert_eq!(seen["authorization"], "Bearer upstream-secret", "{seen}");
    assert_eq!(seen["mcp-name"], "session_info");

    // The credential never reaches the gateway's log.
    let log = gateway
        .proc
        .drain(std::time::Duration::from_millis(200))
        .join("\n");
    assert!(
        !log.contains("upstream-secret") && !log.contains("client-secret"),
        "{log}"
    );
}

/// The gateway serves from one runtime per core, each accepting on its own
/// socket of a shared port. With four of them, connections land on all
/// four (the kernel hashes each connection to one socket): a runtime that
/// did not serve its socket would leave about a quarter of these calls
/// unanswered. Calls of one 2025 session arrive on different runtimes and
/// must still reach the same upstream session.
#[tokio::test(flavor = "multi_thread")]
async fn every_runtime_serves_its_share_of_connections_and_sessions_span_them() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let gateway = Gateway::start_with_env(
        &format!("upstreams:\n  - name: up\n    url: \"{url}\"\n"),
        &[("TOKIO_WORKER_THREADS", "4")],
    );
    gateway.wait_for_tools(&["up_session_info"]).await;
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", gateway.proc.child.id()))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect();
    for index in 1..4 {
        let name = format!("switchboard-{index}");
        assert!(threads.contains(&name), "no thread {name} in {threads:?}");
    }

    let session = initialize(&gateway.mcp()).await;
    // Each call opens its own connection (support::post uses a new client).
    let calls = (0..40u32).map(|id| {
        let (mcp, session) = (gateway.mcp(), session.clone());
        tokio::spawn(async move { session_info(&mcp, &session, "up_session_info", id + 1).await })
    });
    let answers = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        futures_util::future::join_all(calls),
    )
    .await
    .expect("every connection answered, whichever runtime accepted it");
    let upstream_sessions: std::collections::BTreeSet<String> = answers
        .into_iter()
        .map(|answer| answer.unwrap()["sessionId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        upstream_sessions.len(),
        1,
        "one client session, one upstream session: {upstream_sessions:?}"
    );
}
