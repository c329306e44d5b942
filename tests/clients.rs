//! Third-party clients (TypeScript SDK in both eras, Python SDK) list and
//! call tools of every kind of upstream through the gateway: rmcp served
//! statelessly (2026-07-28), rmcp in legacy session mode (2025 only),
//! server-everything (2025, SSE answers) and a stdio child.

mod support;

use serde_json::{Value, json};
use support::*;

struct Upstreams {
    _procs: Vec<Proc>,
    gateway: Gateway,
}

async fn start() -> Upstreams {
    let (modern, modern_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let (legacy, legacy_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--legacy-only"]);
    let (everything, everything_url) = everything();
    let stdio = example_path("conformance-upstream");
    let gateway = Gateway::start(&format!(
        r#"
upstreams:
  - name: modern
    url: "{modern_url}"
  - name: legacy
    url: "{legacy_url}"
  - name: everything
    url: "{everything_url}"
    prefix: "ev_"
  - name: local
    command: "{}"
    args: ["--stdio"]
"#,
        stdio.display()
    ));
    gateway
        .wait_for_tools(&["modern_echo", "legacy_echo", "ev_echo", "local_echo"])
        .await;
    Upstreams {
        _procs: vec![modern, legacy, everything],
        gateway,
    }
}

/// One call per upstream through `/mcp`, each checked by its answer.
fn aggregate_plan() -> Value {
    json!({ "calls": [
        { "name": "modern_echo", "arguments": { "text": "to modern" } },
        { "name": "legacy_echo", "arguments": { "text": "to legacy" } },
        { "name": "ev_echo", "arguments": { "message": "to everything" } },
        { "name": "local_echo", "arguments": { "text": "to stdio" } },
    ]})
}

fn check_aggregate(output: &Value, client: &str) {
    let tools: Vec<&str> = output["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for expected in [
        "modern_echo",
        "legacy_session_info",
        "ev_get-sum",
        "local_test_simple_text",
    ] {
        assert!(
            tools.contains(&expected),
            "{client}: {expected} missing from {tools:?}"
        );
    }
    // Deterministic order: upstream name, then tool name.
    let position = |name: &str| tools.iter().position(|t| *t == name).unwrap();
    assert!(position("ev_echo") < position("legacy_echo"));
    assert!(position("legacy_echo") < position("local_echo"));
    assert!(position("local_echo") < position("modern_echo"));
    assert_eq!(call_text(output, 0), "to modern", "{client}");
    assert_eq!(call_text(output, 1), "to legacy", "{client}");
    assert_eq!(call_text(output, 2), "Echo: to everything", "{client}");
    assert_eq!(call_text(output, 3), "to stdio", "{client}");
}

fn check_single(output: &Value, client: &str, expected: &str) {
    let tools = output["tools"].as_array().unwrap();
    assert!(
        tools.iter().any(|t| t == "echo"),
        "{client}: unprefixed echo missing from {tools:?}"
    );
    assert!(
        !tools.iter().any(|t| t.as_str().unwrap().contains("_echo")),
        "{client}: prefixed names leaked into a per-server endpoint: {tools:?}"
    );
    assert_eq!(call_text(output, 0), expected, "{client}");
}

fn single_plan(server: &str) -> (Value, &'static str) {
    if server == "everything" {
        (
            json!({ "calls": [{ "name": "echo", "arguments": { "message": "direct" } }] }),
            "Echo: direct",
        )
    } else {
        (
            json!({ "calls": [{ "name": "echo", "arguments": { "text": "direct" } }] }),
            "direct",
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_clients_in_both_eras_reach_every_upstream() {
    let upstreams = start().await;
    let gateway = &upstreams.gateway;
    for mode in ["legacy", "modern"] {
        let output = ts_client(&gateway.mcp(), mode, &aggregate_plan());
        let expected_version = if mode == "modern" {
            "2026-07-28"
        } else {
            "2025-11-25"
        };
        assert_eq!(output["protocolVersion"], expected_version, "ts {mode}");
        check_aggregate(&output, &format!("ts {mode}"));
        for server in ["modern", "legacy", "everything", "local"] {
            let (plan, expected) = single_plan(server);
            let output = ts_client(&gateway.server_mcp(server), mode, &plan);
            check_single(
                &output,
                &format!("ts {mode} /servers/{server}/mcp"),
                expected,
            );
        }
    }
}

/// `resources/read` through every upstream era, JSON or SSE answers, and
/// both endpoints: each TS SDK accepts the result by its own era's schema
/// (v2 pinned to 2026-07-28 requires `resultType`, `ttlMs` and
/// `cacheScope`, which a 2025 upstream never sends), and a 2025 client
/// sees none of 2026-07-28's fields.
#[tokio::test(flavor = "multi_thread")]
async fn resource_reads_are_valid_in_the_clients_era_whatever_the_upstreams() {
    let upstreams = start().await;
    let gateway = &upstreams.gateway;
    let reads = [
        ("modern", "test://static-text"),
        ("legacy", "test://static-text"),
        ("local", "test://static-text"),
        (
            "everything",
            "demo://resource/static/document/architecture.md",
        ),
    ];
    for mode in ["legacy", "modern"] {
        for (server, uri) in reads {
            let mut urls = vec![gateway.server_mcp(server)];
            // test:// is served by three upstreams: only everything's URI
            // is unambiguous on /mcp.
            if server == "everything" {
                urls.push(gateway.mcp());
            }
            for url in urls {
                let output = ts_client(&url, mode, &json!({ "reads": [uri] }));
                let read = &output["reads"][0];
                let what = format!("ts {mode} {url} {uri}");
                assert!(read["error"].is_null(), "{what}: {read}");
                assert!(!read["text"].as_str().unwrap().is_empty(), "{what}: {read}");
                let result = &read["result"];
                // The v2 SDK's schema consumes `resultType`; that it
                // accepted the result at all is the check.
                if mode == "modern" {
                    assert!(result["ttlMs"].as_u64().is_some(), "{what}: {result}");
                    assert!(result["cacheScope"].is_string(), "{what}: {result}");
                } else {
                    for field in ["resultType", "ttlMs", "cacheScope"] {
                        assert!(result.get(field).is_none(), "{what}: {field} in {result}");
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_client_reaches_every_upstream() {
    let upstreams = start().await;
    let gateway = &upstreams.gateway;
    let output = py_client(&gateway.mcp(), &aggregate_plan());
    assert_eq!(output["protocolVersion"], "2025-11-25");
    check_aggregate(&output, "python");
    for server in ["modern", "legacy", "everything", "local"] {
        let (plan, expected) = single_plan(server);
        let output = py_client(&gateway.server_mcp(server), &plan);
        check_single(&output, &format!("python /servers/{server}/mcp"), expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_is_down_leaves_the_others_listed_and_callable() {
    // A port nothing listens on: bind, read the port, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/mcp", dead.local_addr().unwrap());
    drop(dead);
    let (up, up_url) = rmcp_upstream(&["--http", "127.0.0.1:0", "--stateless"]);
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: down\n    url: \"{dead_url}\"\n  - name: up\n    url: \"{up_url}\"\n"
    ));
    gateway.wait_for_tools(&["up_echo"]).await;
    gateway
        .proc
        .wait_for("upstream failing", std::time::Duration::from_secs(10));
    let output = ts_client(
        &gateway.mcp(),
        "legacy",
        &json!({ "calls": [{ "name": "up_echo", "arguments": { "text": "still here" } }] }),
    );
    assert_eq!(call_text(&output, 0), "still here");
    assert!(
        !output["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().starts_with("down_"))
    );
    drop(up);
}
