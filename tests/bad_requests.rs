//! Every bad request gets the spec's HTTP status and JSON-RPC error, and
//! the gateway keeps serving: the table ends with good requests that still
//! succeed.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(String, String)>,
    body: String,
    status: u16,
    /// Expected JSON-RPC error code, when the response carries one.
    code: Option<i64>,
    /// A fragment the error message must contain.
    says: Option<&'static str>,
}

fn modern_body(method: &str, params: Value) -> String {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }).to_string()
}

fn with(mut headers: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    headers.retain(|(n, _)| n != name);
    headers.push((name.into(), value.into()));
    headers
}

fn without(mut headers: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    headers.retain(|(n, _)| n != name);
    headers
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_clear_errors_and_the_gateway_keeps_serving() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let gateway = Gateway::start(&format!(
        "maxBodyBytes: 4096\nupstreams:\n  - name: up\n    url: \"{url}\"\n"
    ));
    gateway.wait_for_tools(&["up_echo"]).await;
    let session = initialize(&gateway.mcp()).await;
    let legacy = legacy_headers(Some(&session));
    let call = |name: &str| {
        modern_body(
            "tools/call",
            json!({ "name": name, "arguments": { "text": "x" } }),
        )
    };
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_string();

    let cases = vec![
        Case { what: "malformed JSON", method: "POST", path: "/mcp", headers: legacy.clone(),
            body: "{\"jsonrpc\":".into(), status: 400, code: Some(-32700), says: None },
        Case { what: "a batch array", method: "POST", path: "/mcp", headers: legacy.clone(),
            body: format!("[{list}]"), status: 400, code: Some(-32600), says: Some("batch") },
        Case { what: "not an object", method: "POST", path: "/mcp", headers: legacy.clone(),
            body: "42".into(), status: 400, code: Some(-32600), says: None },
        Case { what: "no jsonrpc member", method: "POST", path: "/mcp", headers: legacy.clone(),
            body: r#"{"id":1,"method":"tools/list"}"#.into(), status: 400, code: Some(-32600), says: None },
        Case { what: "wrong Content-Type", method: "POST", path: "/mcp",
            headers: with(legacy.clone(), "content-type", "text/plain"),
            body: list.clone(), status: 415, code: Some(-32600), says: Some("Content-Type") },
        Case { what: "Accept without event streams", method: "POST", path: "/mcp",
            headers: with(legacy.clone(), "accept", "application/json"),
            body: list.clone(), status: 406, code: Some(-32600), says: Some("Accept") },
        Case { what: "no Accept", method: "POST", path: "/mcp", headers: without(legacy.clone(), "accept"),
            body: list.clone(), status: 406, code: Some(-32600), says: None },
        Case { what: "oversized body", method: "POST", path: "/mcp", headers: legacy.clone(),
            body: format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(8192)),
            status: 413, code: Some(-32600), says: Some("4096") },
        Case { what: "unsupported protocol version", method: "POST", path: "/mcp",
            headers: with(modern_headers("tools/list", None), "mcp-protocol-version", "1999-01-01"),
            body: modern_body("tools/list", json!({})), status: 400, code: Some(-32022), says: None },
        Case { what: "Mcp-Method differs from the body", method: "POST", path: "/mcp",
            headers: modern_headers("prompts/list", None),
            body: modern_body("tools/list", json!({})), status: 400, code: Some(-32020), says: Some("Mcp-Method") },
        Case { what: "no Mcp-Method", method: "POST", path: "/mcp",
            headers: without(modern_headers("tools/list", None), "mcp-method"),
            body: modern_body("tools/list", json!({})), status: 400, code: Some(-32020), says: None },
        Case { what: "tools/call without Mcp-Name", method: "POST", path: "/mcp",
            headers: modern_headers("tools/call", None),
            body: call("up_echo"), status: 400, code: Some(-32020), says: Some("Mcp-Name") },
        Case { what: "Mcp-Name differs from params.name", method: "POST", path: "/mcp",
            headers: modern_headers("tools/call", Some("up_other")),
            body: call("up_echo"), status: 400, code: Some(-32020), says: Some("up_other") },
        Case { what: "_meta without clientCapabilities", method: "POST", path: "/mcp",
            headers: modern_headers("tools/list", None),
            body: r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#.into(),
            status: 400, code: Some(-32602), says: Some("clientCapabilities") },
        Case { what: "modern _meta without the version header", method: "POST", path: "/mcp",
            headers: without(modern_headers("tools/list", None), "mcp-protocol-version"),
            body: modern_body("tools/list", json!({})), status: 400, code: Some(-32020), says: None },
        Case { what: "modern unknown method", method: "POST", path: "/mcp",
            headers: modern_headers("no/such", None),
            body: modern_body("no/such", json!({})), status: 404, code: Some(-32601), says: Some("no/such") },
        Case { what: "modern unknown tool", method: "POST", path: "/mcp",
            headers: modern_headers("tools/call", Some("up_nope")),
            body: call("up_nope"), status: 200, code: Some(-32602), says: Some("up_nope") },
        Case { what: "unknown prefix", method: "POST", path: "/mcp",
            headers: modern_headers("tools/call", Some("zzz_echo")),
            body: call("zzz_echo"), status: 200, code: Some(-32602), says: Some("zzz_echo") },
        Case { what: "invalid cursor", method: "POST", path: "/mcp",
            headers: modern_headers("tools/list", None),
            body: modern_body("tools/list", json!({ "cursor": "bogus" })), status: 200, code: Some(-32602), says: Some("cursor") },
        Case { what: "legacy request without a session", method: "POST", path: "/mcp",
            headers: legacy_headers(None), body: list.clone(), status: 400, code: Some(-32600), says: Some("Mcp-Session-Id") },
        Case { what: "unknown session", method: "POST", path: "/mcp",
            headers: legacy_headers(Some("not-a-session")), body: list.clone(), status: 404, code: Some(-32600), says: Some("Session not found") },
        Case { what: "session used on another endpoint", method: "POST", path: "/servers/up/mcp",
            headers: legacy.clone(), body: list.clone(), status: 404, code: Some(-32600), says: None },
        Case { what: "session with an unsupported protocol version", method: "POST", path: "/mcp",
            headers: with(legacy.clone(), "mcp-protocol-version", "2025-01-01"), body: list.clone(), status: 400, code: Some(-32022), says: None },
        Case { what: "legacy unknown method", method: "POST", path: "/mcp", headers: legacy.clone(),
            body: r#"{"jsonrpc":"2.0","id":3,"method":"no/such"}"#.into(), status: 200, code: Some(-32601), says: None },
        Case { what: "tools/call without a name", method: "POST", path: "/mcp", headers: legacy.clone(),
            body: r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{}}"#.into(), status: 200, code: Some(-32602), says: Some("name") },
        Case { what: "GET without a session", method: "GET", path: "/mcp",
            headers: vec![("accept".into(), "text/event-stream".into())], body: String::new(), status: 400, code: Some(-32600), says: None },
        Case { what: "GET for an unknown session", method: "GET", path: "/mcp",
            headers: vec![("accept".into(), "text/event-stream".into()), ("mcp-session-id".into(), "nope".into())],
            body: String::new(), status: 404, code: Some(-32600), says: None },
        Case { what: "GET in the stateless era", method: "GET", path: "/mcp",
            headers: vec![("accept".into(), "text/event-stream".into()), ("mcp-protocol-version".into(), "2026-07-28".into())],
            body: String::new(), status: 405, code: Some(-32600), says: None },
        Case { what: "DELETE for an unknown session", method: "DELETE", path: "/mcp",
            headers: vec![("mcp-session-id".into(), "nope".into())], body: String::new(), status: 404, code: Some(-32600), says: None },
        Case { what: "PUT", method: "PUT", path: "/mcp", headers: legacy.clone(), body: list.clone(), status: 405, code: Some(-32600), says: None },
        Case { what: "a foreign Origin", method: "POST", path: "/mcp",
            headers: with(legacy.clone(), "origin", "https://evil.example"), body: list.clone(), status: 403, code: Some(-32600), says: Some("Origin") },
        Case { what: "a foreign Host (DNS rebinding)", method: "POST", path: "/mcp",
            headers: with(legacy.clone(), "host", "evil.example"), body: list.clone(), status: 403, code: Some(-32600), says: Some("Host") },
        Case { what: "an unknown path", method: "POST", path: "/nope", headers: legacy.clone(), body: list.clone(), status: 404, code: None, says: None },
        Case { what: "an unknown server", method: "POST", path: "/servers/nope/mcp", headers: legacy.clone(), body: list.clone(), status: 404, code: None, says: None },
    ];

    let mut failures = Vec::new();
    for case in &cases {
        let url = format!("{}{}", gateway.base, case.path);
        let response = request(case.method, &url, &case.headers, &case.body).await;
        let message = response.json();
        let code = message.pointer("/error/code").and_then(Value::as_i64);
        let text = message
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("");
        let says_ok = case.says.is_none_or(|s| text.contains(s));
        if response.status != case.status || (case.code.is_some() && code != case.code) || !says_ok
        {
            failures.push(format!(
                "{}: got {} {:?} {text:?}, want {} {:?} containing {:?}",
                case.what, response.status, code, case.status, case.code, case.says
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // A data field lists the supported versions.
    let response = post(
        &gateway.mcp(),
        &with(
            modern_headers("tools/list", None),
            "mcp-protocol-version",
            "1999-01-01",
        ),
        &modern_body("tools/list", json!({})),
    )
    .await;
    let data = &response.json()["error"]["data"];
    assert_eq!(data["requested"], "1999-01-01");
    assert!(
        data["supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "2026-07-28")
    );

    // Still serving, in both eras.
    let good = post(
        &gateway.mcp(),
        &modern_headers("tools/call", Some("up_echo")),
        &call("up_echo"),
    )
    .await;
    assert_eq!(good.status, 200);
    assert_eq!(
        good.json().pointer("/result/content/0/text"),
        Some(&json!("x"))
    );
    assert_eq!(
        good.json().pointer("/result/resultType"),
        Some(&json!("complete"))
    );
    let good = post(
        &gateway.mcp(),
        &legacy,
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"up_echo","arguments":{"text":"y"}}}"#,
    )
    .await;
    assert_eq!(
        good.json().pointer("/result/content/0/text"),
        Some(&json!("y")),
        "{:?}",
        good.body
    );
    // A supported version other than the session's is served, as the SDKs'
    // servers serve it (the conformance suite's multiple-streams scenario).
    for version in ["2025-03-26", "2025-06-18"] {
        let other = post(
            &gateway.mcp(),
            &with(legacy.clone(), "mcp-protocol-version", version),
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"up_echo","arguments":{"text":"z"}}}"#,
        )
        .await;
        assert_eq!(
            other.json().pointer("/result/content/0/text"),
            Some(&json!("z")),
            "{version}: {:?}",
            other.body
        );
    }
    let health = request("GET", &format!("{}/healthz", gateway.base), &[], "").await;
    assert_eq!(health.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_upstream_times_out_without_disturbing_the_others() {
    let (_slow, slow_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let (_fast, fast_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: slow\n    url: \"{slow_url}\"\n    timeout: 500ms\n  - name: fast\n    url: \"{fast_url}\"\n"
    ));
    gateway.wait_for_tools(&["slow_sleep", "fast_echo"]).await;

    let sleeping = tokio::spawn({
        let url = gateway.mcp();
        async move {
            let body = modern_body(
                "tools/call",
                json!({ "name": "slow_sleep", "arguments": { "ms": 10000 } }),
            );
            let started = Instant::now();
            let response = post(
                &url,
                &modern_headers("tools/call", Some("slow_sleep")),
                &body,
            )
            .await;
            (response, started.elapsed())
        }
    });
    // While that call hangs, the other upstream answers normally.
    for i in 0..5 {
        let body = modern_body(
            "tools/call",
            json!({ "name": "fast_echo", "arguments": { "text": format!("n{i}") } }),
        );
        let response = post(
            &gateway.mcp(),
            &modern_headers("tools/call", Some("fast_echo")),
            &body,
        )
        .await;
        assert_eq!(
            response.json().pointer("/result/content/0/text"),
            Some(&json!(format!("n{i}")))
        );
    }
    let (response, elapsed) = sleeping.await.unwrap();
    let message = response.json();
    let error = message["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{message}"));
    assert!(
        error.contains("slow") && error.contains("in time"),
        "{error}"
    );
    assert_eq!(message["error"]["data"]["upstream"], "slow");
    assert!(
        elapsed < Duration::from_secs(8),
        "the 500ms timeout held ({elapsed:?})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_went_away_is_named_in_the_error() {
    let (gone, gone_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let (_kept, kept_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: gone\n    url: \"{gone_url}\"\n  - name: kept\n    url: \"{kept_url}\"\n"
    ));
    gateway.wait_for_tools(&["gone_echo", "kept_echo"]).await;
    drop(gone);

    let call = |name: &str| {
        modern_body(
            "tools/call",
            json!({ "name": name, "arguments": { "text": "t" } }),
        )
    };
    let response = post(
        &gateway.mcp(),
        &modern_headers("tools/call", Some("gone_echo")),
        &call("gone_echo"),
    )
    .await;
    let message = response.json();
    let error = message["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{message}"));
    assert!(
        error.contains("gone") && error.contains("unreachable"),
        "{error}"
    );
    assert_eq!(message["error"]["data"]["upstream"], "gone");

    let response = post(
        &gateway.mcp(),
        &modern_headers("tools/call", Some("kept_echo")),
        &call("kept_echo"),
    )
    .await;
    assert_eq!(
        response.json().pointer("/result/content/0/text"),
        Some(&json!("t"))
    );
}
