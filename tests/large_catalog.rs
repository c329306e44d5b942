//! A catalog larger than one page: clients of both eras follow `nextCursor`
//! through the gateway and see every tool exactly once, in order.

mod support;

use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn clients_page_through_a_large_merged_list() {
    let extra: Vec<String> = (0..1500).map(|i| format!("bulk{i:04}")).collect();
    let mut args = vec![
        "--http".to_string(),
        "127.0.0.1:0".into(),
        "--stateless".into(),
    ];
    for name in &extra {
        args.extend(["--extra-tool".to_string(), name.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_upstream, url) = rmcp_upstream(&args);
    let gateway = Gateway::start(&format!("upstreams:\n  - name: big\n    url: \"{url}\"\n"));
    gateway.wait_for_tools(&["big_echo"]).await;

    // The first raw page is full and points on.
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {
        "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                   "io.modelcontextprotocol/clientCapabilities": {} } } });
    let first = post(
        &gateway.mcp(),
        &modern_headers("tools/list", None),
        &body.to_string(),
    )
    .await;
    let first = first.json();
    assert_eq!(first["result"]["tools"].as_array().unwrap().len(), 1000);
    assert!(first["result"]["nextCursor"].is_string());
    assert_eq!(first["result"]["cacheScope"], "public");
    assert!(first["result"]["ttlMs"].is_u64());

    let plan = json!({ "calls": [{ "name": "big_bulk1499", "arguments": {} }] });
    for (client, output) in [
        ("ts legacy", ts_client(&gateway.mcp(), "legacy", &plan)),
        ("ts modern", ts_client(&gateway.mcp(), "modern", &plan)),
        ("python", py_client(&gateway.mcp(), &plan)),
    ] {
        let tools: Vec<&str> = output["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let bulk: Vec<&&str> = tools.iter().filter(|t| t.starts_with("big_bulk")).collect();
        assert_eq!(bulk.len(), extra.len(), "{client} saw every tool once");
        let mut sorted = tools.clone();
        sorted.sort();
        assert_eq!(tools, sorted, "{client}: one upstream, so name order");
        assert_eq!(call_text(&output, 0), "bulk1499 ok", "{client}");
    }
}
