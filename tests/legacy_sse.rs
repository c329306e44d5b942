//! The 2024-11-05 HTTP+SSE transport on both sides: old clients through
//! `/sse`, and upstreams that only speak it, with the same affinity and
//! recovery as Streamable HTTP.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_sse_client_reaches_a_streamable_http_upstream() {
    let (_up, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let gateway = Gateway::start(&format!("upstreams:\n  - name: up\n    url: \"{url}\"\n"));
    gateway.wait_for_tools(&["up_echo"]).await;

    let plan = json!({ "calls": [
        { "name": "up_echo", "arguments": { "text": "over sse" } },
        { "name": "up_test_tool_with_progress", "arguments": {} },
    ]});
    let output = py_client(&format!("{}/sse", gateway.base), &plan);
    assert!(output["sessionId"].is_string(), "{output}");
    assert!(
        output["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "up_session_info")
    );
    assert_eq!(call_text(&output, 0), "over sse");
    assert_eq!(
        call_text(&output, 1),
        "Tool with progress executed successfully"
    );

    let plan = json!({ "calls": [{ "name": "echo", "arguments": { "text": "unprefixed" } }] });
    let output = py_client(&format!("{}/servers/up/sse", gateway.base), &plan);
    assert_eq!(call_text(&output, 0), "unprefixed");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sse_requests_get_clear_errors() {
    let gateway = Gateway::start("upstreams: []\n");
    let json_headers = vec![("content-type".to_string(), "application/json".to_string())];
    let cases = [
        (
            "GET",
            "/sse",
            vec![("accept".to_string(), "application/json".to_string())],
            "",
            406,
        ),
        ("POST", "/sse", json_headers.clone(), "{}", 405),
        ("GET", "/message", vec![], "", 405),
        (
            "POST",
            "/message?sessionId=nope",
            json_headers.clone(),
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            404,
        ),
        (
            "POST",
            "/message",
            json_headers.clone(),
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            404,
        ),
        (
            "POST",
            "/servers/nope/message?sessionId=x",
            json_headers,
            "{}",
            404,
        ),
    ];
    for (method, path, headers, body, status) in cases {
        let response = request(method, &format!("{}{path}", gateway.base), &headers, body).await;
        assert_eq!(
            response.status, status,
            "{method} {path}: {:?}",
            response.body
        );
    }
    // A message before initialize, and a malformed one, on a real stream.
    let mut stream = EventStream::open(
        "GET",
        &format!("{}/sse", gateway.base),
        &[("accept".into(), "text/event-stream".into())],
        "",
    )
    .await;
    assert_eq!(stream.status, 200);
    let endpoint = first_endpoint(&mut stream).await;
    let post_to = |body: &'static str| {
        let url = format!("{}{endpoint}", gateway.base);
        async move {
            request(
                "POST",
                &url,
                &[("content-type".into(), "application/json".into())],
                body,
            )
            .await
        }
    };
    assert_eq!(
        post_to(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .await
            .status,
        400
    );
    let malformed = post_to("{oops").await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"]["code"], -32700);
}

/// Reads the `endpoint` event the stream starts with.
async fn first_endpoint(stream: &mut EventStream) -> String {
    loop {
        let (event, data) = stream
            .next_event(Duration::from_secs(5))
            .await
            .expect("endpoint event");
        if event.as_deref() == Some("endpoint") {
            return data;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sse_upstream_serves_clients_of_both_eras_with_affinity() {
    let (_py, url) = py_server("sse", &[]);
    // Configured explicitly, and found by detection from the /sse URL.
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: said\n    url: \"{url}\"\n    transport: sse\n  - name: found\n    url: \"{url}\"\n"
    ));
    gateway.wait_for_tools(&["said_echo", "found_echo"]).await;
    gateway
        .proc
        .wait_for("trying HTTP+SSE", Duration::from_secs(10));

    let plan = json!({ "calls": [
        { "name": "said_echo", "arguments": { "text": "a" } },
        { "name": "found_echo", "arguments": { "text": "b" } },
        { "name": "said_whoami", "arguments": {} },
        { "name": "said_whoami", "arguments": {} },
    ]});
    let legacy = ts_client(&gateway.mcp(), "legacy", &plan);
    let modern = ts_client(&gateway.mcp(), "modern", &plan);
    let python = py_client(&gateway.mcp(), &plan);
    for (client, output) in [
        ("legacy", &legacy),
        ("modern", &modern),
        ("python", &python),
    ] {
        assert_eq!(call_text(output, 0), "a", "{client}");
        assert_eq!(call_text(output, 1), "b", "{client}");
        // One upstream session (one SSE connection) per client session.
        assert_eq!(call_text(output, 2), call_text(output, 3), "{client}");
        assert_ne!(call_text(output, 2), "none", "{client}");
    }
    assert_ne!(
        call_text(&legacy, 2),
        call_text(&python, 2),
        "two client sessions, two upstream sessions"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_sse_upstream_keeps_the_client_session() {
    let (first, url) = py_server("sse", &[]);
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: py\n    url: \"{url}\"\n    transport: sse\n"
    ));
    gateway.wait_for_tools(&["py_echo"]).await;
    let (mut client, _) = Watcher::start(&gateway.mcp(), "legacy");
    let answer = client.send(r#"call py_echo {"text":"before"}"#, Duration::from_secs(10));
    assert_eq!(answer["text"], "before", "{answer}");

    let port = url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    drop(first);
    let (_second, _) = py_server_on(&port, "sse", &["--extra-tool", "brand_new"]);
    let answer = client.send(r#"call py_echo {"text":"after"}"#, Duration::from_secs(30));
    assert_eq!(
        answer["text"], "after",
        "the same client session, a new upstream connection: {answer}"
    );
    let changed = client.send("wait-changed 30000", Duration::from_secs(35));
    let tools: Vec<Value> = changed["tools"].as_array().cloned().unwrap_or_default();
    assert!(tools.iter().any(|t| t == "py_brand_new"), "{changed}");
}
