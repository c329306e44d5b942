//! A configured upstream is never "unknown": right after the gateway starts
//! (a fresh replica) and while an upstream is down, a call for its tools
//! waits for it and then either goes through or fails with `-32001` naming
//! the upstream and its last error. `/readyz` keeps traffic away until every
//! configured upstream's first attempt has ended, bounded by
//! `health.startupDeadline`.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

fn call(name: &str) -> String {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": name, "arguments": { "text": "hi" },
                        "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                   "io.modelcontextprotocol/clientCapabilities": {} } } })
    .to_string()
}

async fn call_tool(gateway: &Gateway, name: &str) -> Value {
    post(
        &gateway.mcp(),
        &modern_headers("tools/call", Some(name)),
        &call(name),
    )
    .await
    .json()
}

/// A loopback port nothing listens on (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_is_down_is_named_and_used_as_soon_as_it_is_back() {
    let port = free_port();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: late\n    url: \"http://127.0.0.1:{port}/mcp\"\n"
    ));

    // While it is down: -32001 naming it and why, never "unknown tool".
    // The outage lasts long enough for the reconnect backoff to grow past
    // the few seconds a call waits (attempts at 0, 0.25, 0.75, 1.75, 3.75,
    // 7.75, then 15.75 s): only an attempt made because of the call can
    // serve the call below.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(11) {
        let answer = call_tool(&gateway, "late_echo").await;
        assert_eq!(answer["error"]["code"], -32001, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("upstream late"), "{message}");
        assert!(message.contains("unreachable"), "its last error: {message}");
        assert_eq!(answer["error"]["data"]["upstream"], "late");
    }
    // A name under no configured prefix is still unknown.
    let answer = call_tool(&gateway, "nobody_echo").await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");

    // Back on the same address: the first call makes the gateway try at
    // once instead of when its backoff ends, and goes through.
    let (_upstream, _) = rmcp_upstream(&["--http", &format!("127.0.0.1:{port}"), "--stateless"]);
    let back = Instant::now();
    let answer = call_tool(&gateway, "late_echo").await;
    assert!(
        back.elapsed() < Duration::from_secs(2),
        "served {:?} after it came back, not at once",
        back.elapsed()
    );
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("hi")),
        "{answer}"
    );
    // A tool that a ready upstream really lacks is unknown.
    let answer = call_tool(&gateway, "late_no_such_tool").await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_right_after_start_wait_for_the_first_connection() {
    // A stdio child takes a moment to start and answer its handshake: a
    // call sent before that waits for it instead of "unknown tool".
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: kid\n    command: \"{}\"\n    args: [\"--stdio\"]\n",
        example_path("conformance-upstream").display()
    ));
    let answer = call_tool(&gateway, "kid_echo").await;
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("hi")),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_waits_for_every_first_attempt_up_to_the_startup_deadline() {
    // An upstream that accepts connections and never answers: its first
    // attempt outlasts the deadline.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_port = hanging.local_addr().unwrap().port();
    let (_up, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let started = Instant::now();
    let gateway = Gateway::start(&format!(
        "health:\n  startupDeadline: \"6s\"\nupstreams:\n  - name: up\n    url: \"{url}\"\n  - name: hangs\n    url: \"http://127.0.0.1:{hanging_port}/mcp\"\n"
    ));
    let readyz = format!("{}/readyz", gateway.base);
    let first = request("GET", &readyz, &[], "").await;
    // Asked well inside the deadline (one local request after start):
    // not ready, and saying what it waits for.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?} to ask: too slow to tell readiness from the deadline",
        started.elapsed()
    );
    assert_eq!(first.status, 503, "{:?}", first.body);
    assert!(
        String::from_utf8_lossy(&first.body).contains("hangs"),
        "{:?}",
        first.body
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = request("GET", &readyz, &[], "").await;
        if response.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready: {:?}",
            response.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The deadline, not the hanging upstream, made it ready.
    assert!(started.elapsed() >= Duration::from_secs(6));
    drop(hanging);

    // With every upstream answering, ready as soon as they are connected.
    let gateway = Gateway::start(&format!("upstreams:\n  - name: up\n    url: \"{url}\"\n"));
    let readyz = format!("{}/readyz", gateway.base);
    let deadline = Instant::now() + Duration::from_secs(20);
    while request("GET", &readyz, &[], "").await.status != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tools = post(
        &gateway.mcp(),
        &modern_headers("tools/list", None),
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list",
                 "params": { "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                        "io.modelcontextprotocol/clientCapabilities": {} } } })
        .to_string(),
    )
    .await
    .json();
    assert!(
        tools["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "up_echo"),
        "ready means listed: {tools}"
    );
}
