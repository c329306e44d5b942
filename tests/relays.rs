//! Everything that belongs to a request travels with it through the
//! gateway, between any pair of eras: progress notifications, the
//! upstream's requests for user input (elicitation) and cancellation.
//! Third-party clients (TypeScript SDK, both eras) drive each case.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

struct Upstreams {
    _procs: Vec<Proc>,
    gateway: Gateway,
}

/// `old`: a 2025-only rmcp server with sessions; `new`: a 2026-07-28 one,
/// stateless; `kid`: a stdio child.
async fn start() -> Upstreams {
    let (old, old_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let (new, new_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: old\n    url: \"{old_url}\"\n  - name: new\n    url: \"{new_url}\"\n  - name: kid\n    command: \"{}\"\n    args: [\"--stdio\"]\n",
        example_path("conformance-upstream").display()
    ));
    gateway
        .wait_for_tools(&["old_sleep", "new_sleep", "kid_sleep"])
        .await;
    Upstreams {
        _procs: vec![old, new],
        gateway,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_notifications_reach_the_client_from_every_kind_of_upstream() {
    let upstreams = start().await;
    let calls: Vec<Value> = ["old", "new", "kid"]
        .iter()
        .map(|u| json!({ "name": format!("{u}_test_tool_with_progress"), "arguments": {}, "progress": true }))
        .collect();
    for mode in ["legacy", "modern"] {
        let output = ts_client(&upstreams.gateway.mcp(), mode, &json!({ "calls": calls }));
        for (i, upstream) in ["old", "new", "kid"].iter().enumerate() {
            let call = &output["calls"][i];
            assert_eq!(
                call_text(&output, i),
                "Tool with progress executed successfully"
            );
            let seen = call["progress"].as_u64().unwrap();
            assert!(
                seen >= 2,
                "{mode} client, {upstream} upstream: {seen} progress notifications: {call}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_elicitation_is_answered_by_the_client_whatever_the_eras() {
    let upstreams = start().await;
    let plan = |tools: &[&str]| {
        json!({
            "elicitation": { "action": "accept", "content": { "username": "ada", "email": "ada@example.com" } },
            "calls": tools.iter().map(|t| json!({ "name": t, "arguments": { "message": "Who are you?" } })).collect::<Vec<_>>(),
        })
    };
    // A 2025 client: the 2025 upstream's elicitation/create is relayed on
    // the call's stream; the 2026 upstream's InputRequiredResult becomes
    // the same request, and the call is retried with the answer.
    let output = ts_client(
        &upstreams.gateway.mcp(),
        "legacy",
        &plan(&["old_test_elicitation", "new_test_elicitation"]),
    );
    for i in 0..2 {
        let text = call_text(&output, i);
        assert!(
            text.contains("action=accept") && text.contains("ada@example.com"),
            "{text}"
        );
    }
    assert_eq!(output["elicitations"], 2, "{output}");

    // A 2026 client: MRTR passes through to the 2026 upstream.
    let output = ts_client(
        &upstreams.gateway.mcp(),
        "modern",
        &plan(&["new_test_elicitation"]),
    );
    assert!(
        call_text(&output, 0).contains("ada@example.com"),
        "{output}"
    );
    assert_eq!(output["elicitations"], 1);

    // A 2026 client asked by a 2025 upstream mid-call: the gateway holds
    // the call and asks through an InputRequiredResult; the client's retry
    // carries the answer to the same upstream call (relay::input).
    let output = ts_client(
        &upstreams.gateway.mcp(),
        "modern",
        &plan(&["old_test_elicitation"]),
    );
    assert!(
        call_text(&output, 0).contains("ada@example.com"),
        "{output}"
    );
    assert_eq!(output["elicitations"], 1);

    // One that declares no elicitation is not asked: a clear failure from
    // the upstream, never a hang.
    let started = Instant::now();
    let mut undeclared = plan(&["old_test_elicitation"]);
    undeclared.as_object_mut().unwrap().remove("elicitation");
    let output = ts_client(&upstreams.gateway.mcp(), "modern", &undeclared);
    let call = &output["calls"][0];
    assert!(
        call.get("error").is_some() || call["isError"] == true,
        "expected a clear failure: {call}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_call_is_cancelled_upstream() {
    let upstreams = start().await;
    let gateway = &upstreams.gateway;
    let mut expected = std::collections::HashMap::new();
    for mode in ["legacy", "modern"] {
        for upstream in ["old", "new", "kid"] {
            let plan = json!({ "calls": [{
                "name": format!("{upstream}_sleep"), "arguments": { "ms": 30000 }, "abortAfterMs": 500,
            }]});
            let started = Instant::now();
            let output = ts_client(&gateway.mcp(), mode, &plan);
            assert_eq!(
                output["calls"][0]["aborted"], true,
                "{mode}/{upstream}: {output}"
            );
            assert!(started.elapsed() < Duration::from_secs(20));
            let want = expected.entry(upstream).or_insert(0);
            *want += 1;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let stats = sleep_stats(gateway, upstream).await;
                if stats["cancelled"] == *want {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{mode} client, {upstream} upstream: the cancellation never arrived: {stats}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A call whose upstream dies mid-flight may have run: it is not retried,
/// and the client is told so; the next call reaches the restarted upstream.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_broken_mid_flight_fails_clearly_and_is_not_retried() {
    let (first, url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let gateway = Gateway::start(&format!("upstreams:\n  - name: up\n    url: \"{url}\"\n"));
    gateway.wait_for_tools(&["up_sleep"]).await;
    let session = initialize(&gateway.mcp()).await;
    let call = tokio::spawn({
        let mcp = gateway.mcp();
        let session = session.clone();
        async move {
            let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up_sleep","arguments":{"ms":20000}}}"#;
            post(&mcp, &legacy_headers(Some(&session)), body).await
        }
    });
    wait_until_sleeping(&gateway, "up", 1).await;
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_string();
    drop(first);
    let message = call.await.unwrap().json();
    let error = message["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{message}"));
    assert!(
        error.contains("up") && error.contains("may have run"),
        "{error}"
    );

    // Restarted: the same client session goes on (a new upstream session),
    // and the broken call was not replayed on it.
    let (_second, _) = rmcp_upstream(&["--http", &address, "--legacy-only"]);
    let body = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"up_echo","arguments":{"text":"again"}}}"#;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = post(&gateway.mcp(), &legacy_headers(Some(&session)), body)
            .await
            .json();
        if response.pointer("/result/content/0/text") == Some(&json!("again")) {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {response}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sleep_stats(&gateway, "up").await["started"],
        0,
        "not retried on the new process"
    );
}
