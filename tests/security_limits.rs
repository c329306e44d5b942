//! Limits that keep one client from holding the gateway: slow and
//! oversized requests are cut off, and an upstream at its concurrency bound
//! refuses the excess without holding up the others.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::security::{WAIT, meta};
use support::*;

/// Reads from `stream` until it closes or `within` passes; what arrived.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_oversized_requests_are_cut_off_and_others_are_served() {
    use tokio::io::AsyncWriteExt;
    let gateway = Gateway::start(
        "limits:\n  headerReadTimeout: 1s\n  idleTimeout: 1s\n  maxHeaderBytes: 16384\n",
    );
    let address = gateway.base.trim_start_matches("http://").to_string();

    // Headers that never finish: the connection is closed.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let closed = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(
        closed.is_some(),
        "a half-sent head held the connection open"
    );

    // A kept-alive connection left idle is closed too.
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(10))
            .await
            .is_some()
    );

    // A body that stalls gets 408 with a JSON-RPC error.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stalled, Duration::from_secs(10))
        .await
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request body stalled"), "{answer}");

    // A head beyond the limit gets 431.
    let mut huge = tokio::net::TcpStream::connect(&address).await.unwrap();
    let filler = "x".repeat(20_000);
    huge.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: {filler}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut huge, Duration::from_secs(10))
        .await
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Everyone else is still served.
    assert_eq!(
        request("GET", &format!("{}/healthz", gateway.base), &[], "")
            .await
            .status,
        200
    );
}

/// One upstream at its `maxConcurrency`: a further call waits up to half
/// the call timeout for a slot, then gets an error saying so; other upstreams
/// are not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_at_its_concurrency_bound_refuses_the_excess_and_only_that() {
    let (_a, a_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let (_b, b_url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: a\n    url: \"{a_url}\"\n    maxConcurrency: 1\n    timeout: 2s\n  - name: b\n    url: \"{b_url}\"\n"
    ));
    gateway.wait_for_tools(&["a_sleep", "b_sleep"]).await;
    let url = gateway.mcp();
    let sleep = |tool: &'static str, ms: u64| {
        let url = url.clone();
        async move {
            let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": tool, "arguments": {"ms": ms}, "_meta": meta()}});
            post(
                &url,
                &modern_headers("tools/call", Some(tool)),
                &body.to_string(),
            )
            .await
        }
    };
    let holding = tokio::spawn(sleep("a_sleep", 1500));
    // Wait until the first call holds a's one slot (asking a itself: through
    // the gateway the question would need that slot).
    let deadline = Instant::now() + WAIT;
    loop {
        let body = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "sleep_stats", "arguments": {}, "_meta": meta()}});
        let stats = post(
            &a_url,
            &modern_headers("tools/call", Some("sleep_stats")),
            &body.to_string(),
        )
        .await
        .json();
        let text = stats["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or("{}")
            .to_string();
        if serde_json::from_str::<Value>(&text).unwrap_or_default()["started"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first call never started: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let (refused, other) = tokio::join!(sleep("a_sleep", 0), sleep("b_sleep", 0));
    assert_eq!(
        refused.json()["error"]["code"],
        -32001,
        "{:?}",
        refused.body
    );
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("upstream a is busy: 1 requests in flight"),
        "{message}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it waited for a slot first"
    );
    assert_eq!(other.status, 200, "b is not held up");
    assert_eq!(
        holding.await.unwrap().status,
        200,
        "the call in its slot finishes"
    );
    // The slot is free again.
    assert_eq!(sleep("a_sleep", 0).await.status, 200);
}
