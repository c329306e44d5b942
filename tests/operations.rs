//! `/status` and `/metrics` after a known sequence of calls, with one
//! upstream that cannot be reached. The metrics are parsed by the official
//! Prometheus Python client's parser (`tests/peers/parse_metrics.py`).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

async fn call(gateway: &Gateway, tool: &str, id: u32) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": tool, "arguments": {"text": "hi"},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    post(
        &gateway.mcp(),
        &modern_headers("tools/call", Some(tool)),
        &body.to_string(),
    )
    .await
    .json()
}

fn parse_metrics(text: &str) -> Vec<Value> {
    let samples = python_check("parse_metrics.py", text.as_bytes(), "Prometheus text");
    serde_json::from_value(samples).unwrap()
}

fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .and_then(|s| s["value"].as_f64())
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_metrics_report_a_known_sequence() {
    let (_upstream, url) = rmcp_upstream(&["--http", "127.0.0.1:0"]);
    let gateway = Gateway::start(&format!(
        "health:\n  probeInterval: 1s\n  gracePeriod: 1s\nupstreams:\n  - name: good\n    url: \"{url}\"\n  - name: down\n    url: \"http://127.0.0.1:1/mcp\"\n"
    ));
    gateway.wait_for_tools(&["good_echo"]).await;

    // Three calls that work, one to a tool nobody has, one listing, one
    // legacy session.
    for id in 1..=3 {
        let answer = call(&gateway, "good_echo", id).await;
        assert!(answer.get("result").is_some(), "{answer}");
    }
    let unknown = call(&gateway, "nobody_has_this", 4).await;
    assert!(unknown.get("error").is_some(), "{unknown}");
    let session = initialize(&gateway.mcp()).await;

    // The unreachable upstream is reported failing, with its error.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = request("GET", &format!("{}/status", gateway.base), &[], "").await;
        assert_eq!(status.status, 200);
        let status = status.json();
        let down = status["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == "down")
            .cloned();
        if down.is_some_and(|d| d["health"] == "failing") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "down never reported failing: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("{}", serde_json::to_string_pretty(&status).unwrap());
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["protocolVersions"][0], "2026-07-28");
    assert_eq!(status["ready"], true);
    assert!(
        status["sessions"].as_u64().unwrap() >= 1,
        "{session} is open"
    );
    let upstreams = status["upstreams"].as_array().unwrap();
    let good = upstreams.iter().find(|u| u["name"] == "good").unwrap();
    let down = upstreams.iter().find(|u| u["name"] == "down").unwrap();
    assert_eq!(good["health"], "ready");
    assert_eq!(good["era"], "2026-07-28");
    assert_eq!(good["source"], "config file");
    assert_eq!(good["transport"], "streamable-http");
    assert_eq!(good["prefix"], "good_");
    assert_eq!(good["calls"], 3);
    assert_eq!(good["callErrors"], 0);
    assert!(good["tools"].as_u64().unwrap() > 5);
    assert!(good["latencyMs"]["p50"].as_f64().unwrap() > 0.0);
    assert!(
        good["latencyMs"]["p99"].as_f64().unwrap() >= good["latencyMs"]["p50"].as_f64().unwrap()
    );
    assert_eq!(down["tools"], 0);
    assert!(
        down["lastError"].as_str().unwrap().contains("refused"),
        "{down}"
    );
    assert!(down["since"].as_str().unwrap().ends_with('Z'));
    assert_eq!(status["catalog"]["tools"], good["tools"]);
    // What the gateway holds now: the one session, nothing else a client
    // opened (the session called nothing, so it holds no upstream session).
    let live = &status["live"];
    assert_eq!(
        live["clientSessions"],
        json!({ "streamableHttp": 1, "sse": 0 })
    );
    assert_eq!(
        live["clientStreams"],
        json!({ "get": 0, "listen": 0, "sse": 0 })
    );
    assert_eq!(live["upstreamSessions"]["client"], 0);
    assert_eq!(live["upstreamStreams"]["client"], 0);
    assert_eq!(live["awaitingClientAnswers"], 0);
    assert_eq!(live["callsInFlight"], 0);

    let metrics = request("GET", &format!("{}/metrics", gateway.base), &[], "").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.content_type().starts_with("text/plain"));
    let samples = parse_metrics(&String::from_utf8_lossy(&metrics.body));
    let requests = |method: &str, outcome: &str| {
        sample(
            &samples,
            "switchboard_requests_total",
            &[("method", method), ("outcome", outcome)],
        )
    };
    assert_eq!(requests("tools/call", "ok"), Some(3.0));
    assert_eq!(requests("tools/call", "error"), Some(1.0));
    assert_eq!(requests("initialize", "ok"), Some(1.0));
    assert!(requests("tools/list", "ok").unwrap() >= 1.0);
    assert_eq!(
        sample(
            &samples,
            "switchboard_tool_call_duration_seconds_count",
            &[("upstream", "good")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &samples,
            "switchboard_tool_call_duration_seconds_bucket",
            &[("upstream", "good"), ("le", "+Inf")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(&samples, "switchboard_upstream_up", &[("upstream", "good")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&samples, "switchboard_upstream_up", &[("upstream", "down")]),
        Some(0.0)
    );
    assert!(sample(&samples, "switchboard_sessions", &[]).unwrap() >= 1.0);
    // The live gauges, as the official parser reads them.
    let gauge = |name: &str, labels: &[(&str, &str)]| {
        sample(&samples, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}"))
    };
    assert_eq!(
        gauge(
            "switchboard_client_sessions",
            &[("transport", "streamable-http")]
        ),
        1.0
    );
    assert_eq!(
        gauge("switchboard_client_sessions", &[("transport", "sse")]),
        0.0
    );
    for kind in ["get", "listen", "sse"] {
        assert_eq!(gauge("switchboard_client_streams", &[("kind", kind)]), 0.0);
    }
    assert_eq!(
        gauge("switchboard_upstream_sessions", &[("holder", "client")]),
        0.0
    );
    assert!(gauge("switchboard_upstream_streams", &[("kind", "watch")]) <= 1.0);
    assert_eq!(gauge("switchboard_awaiting_client_answers", &[]), 0.0);
    assert_eq!(gauge("switchboard_calls_in_flight", &[]), 0.0);
    assert!(sample(&samples, "switchboard_catalog_rebuilds_total", &[]).unwrap() >= 1.0);
    // Labels come from bounded sets: the unknown tool's name is nowhere.
    assert!(!String::from_utf8_lossy(&metrics.body).contains("nobody_has_this"));
}
