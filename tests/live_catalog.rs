//! The live catalog: clients learn about new tools without reconnecting,
//! and keep working while the servers behind the gateway are redeployed,
//! reconfigured, hung or down. A third-party client's own list-changed
//! handler (TypeScript SDK, both eras) is what observes each notification.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

fn port_of(url: &str) -> u16 {
    url.trim_start_matches("http://")
        .split(['/', ':'])
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

fn names(value: &Value) -> Vec<String> {
    value["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {value}"))
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Kills the upstream mid-session and starts a new version (one more tool)
/// on the same address; the client's next call works and its handler sees
/// the new tool.
async fn redeploy(client_mode: &str, upstream_mode: &str) -> Duration {
    let (first, url) = rmcp_upstream(&["--http", "127.0.0.1:0", upstream_mode]);
    let gateway = Gateway::start(&format!("upstreams:\n  - name: up\n    url: \"{url}\"\n"));
    gateway.wait_for_tools(&["up_echo"]).await;
    let (mut client, ready) = Watcher::start(&gateway.mcp(), client_mode);
    assert!(!names(&ready).contains(&"up_brand_new".to_string()));
    let answer = client.send(r#"call up_echo {"text":"before"}"#, Duration::from_secs(10));
    assert_eq!(answer["text"], "before", "{answer}");

    drop(first);
    let address = format!("127.0.0.1:{}", port_of(&url));
    let (_second, _) = rmcp_upstream(&[
        "--http",
        &address,
        upstream_mode,
        "--extra-tool",
        "brand_new",
    ]);
    let restarted = Instant::now();

    let answer = client.send(r#"call up_echo {"text":"after"}"#, Duration::from_secs(30));
    assert_eq!(
        answer["text"], "after",
        "{client_mode}/{upstream_mode}: the same session's next call: {answer}"
    );
    let changed = client.send("wait-changed 30000", Duration::from_secs(35));
    let reached = restarted.elapsed();
    assert_eq!(
        changed["changed"], true,
        "{client_mode}/{upstream_mode}: no list_changed: {changed}"
    );
    assert!(
        names(&changed).contains(&"up_brand_new".to_string()),
        "{client_mode}/{upstream_mode}: {changed}"
    );
    let answer = client.send("call up_brand_new {}", Duration::from_secs(10));
    assert_eq!(answer["text"], "brand_new ok", "{answer}");
    drop(client);
    reached
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redeployed_upstream_is_invisible_to_clients_except_for_its_new_tool() {
    let mut report = Vec::new();
    for (client, upstream) in [
        ("legacy", "--legacy-only"),
        ("modern", "--stateless"),
        ("legacy", "--stateless"),
        ("modern", "--legacy-only"),
    ] {
        let reached = redeploy(client, upstream).await;
        report.push(format!(
            "{client} client, {upstream} upstream: list_changed handled {reached:?} after restart"
        ));
    }
    // Figures for the issue note (cargo test -- --nocapture).
    println!("{}", report.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn config_edits_apply_without_restart_and_bad_edits_are_refused() {
    let (_a, a_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let (_b, b_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let gateway = Gateway::start(&format!("upstreams:\n  - name: a\n    url: \"{a_url}\"\n"));
    gateway.wait_for_tools(&["a_echo"]).await;
    let (mut client, _) = Watcher::start(&gateway.mcp(), "legacy");
    let write = |upstreams: &str| {
        std::fs::write(
            &gateway.config.path,
            format!("listen: \"127.0.0.1:0\"\nupstreams:\n{upstreams}"),
        )
        .unwrap();
    };

    write(&format!(
        "  - name: a\n    url: \"{a_url}\"\n  - name: b\n    url: \"{b_url}\"\n"
    ));
    let changed = client.send("wait-changed 20000", Duration::from_secs(25));
    let tools = names(&changed);
    assert!(
        tools.contains(&"b_echo".to_string()) && tools.contains(&"a_echo".to_string()),
        "{changed}"
    );
    let answer = client.send(
        r#"call b_echo {"text":"new upstream"}"#,
        Duration::from_secs(10),
    );
    assert_eq!(answer["text"], "new upstream");

    // An invalid edit is logged and changes nothing.
    write("  - name: a\n    colour: red\n");
    gateway
        .proc
        .wait_for("config change rejected", Duration::from_secs(10));
    let answer = client.send(r#"call a_echo {"text":"still"}"#, Duration::from_secs(10));
    assert_eq!(answer["text"], "still");

    write(&format!("  - name: b\n    url: \"{b_url}\"\n"));
    let changed = client.send("wait-changed 20000", Duration::from_secs(25));
    let tools = names(&changed);
    assert!(
        !tools.iter().any(|t| t.starts_with("a_")) && tools.contains(&"b_echo".to_string()),
        "{changed}"
    );
    let answer = client.send(r#"call a_echo {"text":"gone"}"#, Duration::from_secs(10));
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    // The same client session went through it all.
    let answer = client.send(
        r#"call b_echo {"text":"same session"}"#,
        Duration::from_secs(10),
    );
    assert_eq!(answer["text"], "same session");
}

#[tokio::test(flavor = "multi_thread")]
async fn hung_and_dead_upstreams_leave_after_the_grace_period_and_others_never_fail() {
    let (healthy, healthy_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let (hung, hung_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let (dead, dead_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let gateway = Gateway::start(&format!(
        "health:\n  probeInterval: 200ms\n  gracePeriod: 2s\nupstreams:\n  - name: ok\n    url: \"{healthy_url}\"\n  - name: hung\n    url: \"{hung_url}\"\n    timeout: 1s\n  - name: dead\n    url: \"{dead_url}\"\n"
    ));
    gateway
        .wait_for_tools(&["ok_echo", "hung_echo", "dead_echo"])
        .await;
    let (mut client, _) = Watcher::start(&gateway.mcp(), "modern");

    // One stops answering (SIGSTOP: connections open, nothing comes back),
    // the other exits.
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &hung.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    drop(dead);

    let started = Instant::now();
    let mut calls = 0;
    let mut seen_without = false;
    while started.elapsed() < Duration::from_secs(20) {
        let answer = client.send(
            &format!(r#"call ok_echo {{"text":"n{calls}"}}"#),
            Duration::from_secs(10),
        );
        assert_eq!(
            answer["text"],
            format!("n{calls}"),
            "a healthy upstream's call failed: {answer}"
        );
        calls += 1;
        let changed = client.send("wait-changed 100", Duration::from_secs(5));
        if changed["changed"] == true {
            let tools = names(&changed);
            if !tools
                .iter()
                .any(|t| t.starts_with("hung_") || t.starts_with("dead_"))
            {
                seen_without = true;
                break;
            }
        }
    }
    assert!(
        seen_without,
        "the hung and dead upstreams' tools were never withdrawn"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "withdrawn before the grace period"
    );
    assert!(calls > 3, "calls kept flowing meanwhile ({calls})");
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &hung.child.id().to_string()])
        .status();
    drop(healthy);
}

/// `subscriptions/listen` on the wire: acknowledged first, only the kinds
/// asked for, each tagged with the listen request's id; a 2025 session's
/// GET stream gets the untagged notification.
#[tokio::test(flavor = "multi_thread")]
async fn listen_streams_honour_filters_and_tag_notifications() {
    let (_a, a_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let (_b, b_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let gateway = Gateway::start(&format!("upstreams:\n  - name: a\n    url: \"{a_url}\"\n"));
    gateway.wait_for_tools(&["a_echo"]).await;

    let listen = |id: &str, filter: serde_json::Value| {
        json!({ "jsonrpc": "2.0", "id": id, "method": "subscriptions/listen", "params": {
            "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                       "io.modelcontextprotocol/clientCapabilities": {} },
            "notifications": filter,
        }})
        .to_string()
    };
    let headers = modern_headers("subscriptions/listen", None);
    let mut tools = EventStream::open(
        "POST",
        &gateway.mcp(),
        &headers,
        &listen("L1", json!({ "toolsListChanged": true })),
    )
    .await;
    let mut nothing =
        EventStream::open("POST", &gateway.mcp(), &headers, &listen("L2", json!({}))).await;
    assert_eq!(tools.status, 200);
    let ack = tools
        .next(Duration::from_secs(5))
        .await
        .expect("acknowledgement");
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "L1"
    );
    assert_eq!(
        ack["params"]["notifications"],
        json!({ "toolsListChanged": true })
    );
    let ack = nothing
        .next(Duration::from_secs(5))
        .await
        .expect("acknowledgement");
    assert_eq!(ack["params"]["notifications"], json!({}));

    let session = initialize(&gateway.mcp()).await;
    let mut legacy = EventStream::open("GET", &gateway.mcp(), &stream_headers(&session), "").await;
    assert_eq!(legacy.status, 200);

    // Adding an upstream changes tools, prompts and resources.
    std::fs::write(
        &gateway.config.path,
        format!("listen: \"127.0.0.1:0\"\nupstreams:\n  - name: a\n    url: \"{a_url}\"\n  - name: b\n    url: \"{b_url}\"\n"),
    )
    .unwrap();
    let note = tools
        .next(Duration::from_secs(20))
        .await
        .expect("tools/list_changed");
    assert_eq!(note["method"], "notifications/tools/list_changed", "{note}");
    assert_eq!(
        note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "L1"
    );
    assert!(
        tools.next(Duration::from_millis(500)).await.is_none(),
        "only what was asked for"
    );
    assert!(nothing.next(Duration::from_millis(200)).await.is_none());

    let mut methods = Vec::new();
    while let Some(note) = legacy.next(Duration::from_millis(1500)).await {
        assert!(note["params"].get("_meta").is_none(), "{note}");
        methods.push(note["method"].as_str().unwrap().to_string());
    }
    for kind in ["tools", "prompts", "resources"] {
        let method = format!("notifications/{kind}/list_changed");
        assert_eq!(
            methods.iter().filter(|m| **m == method).count(),
            1,
            "{methods:?}"
        );
    }
}
