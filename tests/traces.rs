//! OpenTelemetry traces: the gateway exports spans to an OTLP/HTTP
//! collector written here (each export parsed by the official OpenTelemetry
//! protobuf definitions, `tests/peers/parse_otlp.py`), and W3C trace context
//! travels from the client through the gateway to the rmcp upstream, whose
//! `session_info` tool reports the `traceparent` header and `_meta` it got.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use support::*;

/// An OTLP/HTTP trace collector: records each export's spans (as parsed by
/// the OpenTelemetry Python definitions) and the headers it came with.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Value>>>,
    authorizations: Arc<Mutex<Vec<String>>>,
    /// Requests that were not an OTLP/HTTP JSON trace export.
    problems: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    async fn start() -> Collector {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (spans_in, authorizations_in, problems_in) =
            (spans.clone(), authorizations.clone(), problems.clone());
        let url = serve_http(move |request: http::Request<hyper::body::Incoming>| {
            let (spans, authorizations, problems) = (
                spans_in.clone(),
                authorizations_in.clone(),
                problems_in.clone(),
            );
            async move {
                let headers = request.headers();
                let is_export = request.method() == "POST"
                    && request.uri().path() == "/v1/traces"
                    && headers
                        .get("content-type")
                        .is_some_and(|v| v == "application/json");
                if !is_export {
                    problems.lock().unwrap().push(format!(
                        "{} {} {:?}",
                        request.method(),
                        request.uri(),
                        headers.get("content-type")
                    ));
                }
                if let Some(value) = headers.get("authorization") {
                    authorizations
                        .lock()
                        .unwrap()
                        .push(value.to_str().unwrap().to_string());
                }
                let body = request.into_body().collect().await.unwrap().to_bytes();
                spans.lock().unwrap().extend(parse_otlp(&body));
                http::Response::new(Full::new(Bytes::from("{}")))
            }
        })
        .await;
        Collector {
            url,
            spans,
            authorizations,
            problems,
        }
    }

    /// Waits until the spans of `trace_id` number `count`.
    async fn trace(&self, trace_id: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let spans: Vec<Value> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s["traceId"] == trace_id)
                .cloned()
                .collect();
            let problems = self.problems.lock().unwrap().clone();
            assert!(problems.is_empty(), "not trace exports: {problems:?}");
            if spans.len() >= count {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "{count} spans of trace {trace_id} not exported; have {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn parse_otlp(body: &[u8]) -> Vec<Value> {
    let spans = python_check("parse_otlp.py", body, "an OTLP export");
    serde_json::from_value(spans).unwrap()
}

fn traceparent(trace: &str, parent: &str, sampled: bool) -> String {
    format!("00-{trace}-{parent}-{}", if sampled { "01" } else { "00" })
}

/// A 2026-07-28 `tools/call` of `tool` through the gateway, with these
/// trace headers.
async fn call_tool(gateway: &Gateway, tool: &str, trace_headers: &[(&str, &str)]) -> HttpResponse {
    let mut headers = modern_headers("tools/call", Some(tool));
    headers.extend(
        trace_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": tool, "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}});
    post(&gateway.mcp(), &headers, &body.to_string()).await
}

/// `session_info` through the gateway as a 2026-07-28 client, with
/// `traceparent` (and a `tracestate`) as HTTP headers; returns what the
/// upstream saw.
async fn modern_call(gateway: &Gateway, traceparent: &str) -> Value {
    let trace_headers = [("traceparent", traceparent), ("tracestate", "vendor=blue")];
    let response = call_tool(gateway, "up_session_info", &trace_headers).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    seen_by_upstream(&response.json())
}

fn seen_by_upstream(response: &Value) -> Value {
    let text = response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no tool result: {response}"));
    serde_json::from_str(text).unwrap()
}

fn span_named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
}

fn upstream_config() -> (Proc, String) {
    rmcp_upstream(&["--http", "127.0.0.1:0"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_join_the_clients_trace_and_parent_the_upstreams() {
    let collector = Collector::start().await;
    let (_upstream, upstream_url) = upstream_config();
    let gateway = Gateway::start_with_env(
        &format!(
            "upstreams:\n  - name: up\n    url: \"{upstream_url}\"\n\
             traces:\n  otlpEndpoint: \"{}\"\n  serviceName: sb-test\n  headers:\n    Authorization: \"Bearer ${{COLLECTOR_TOKEN}}\"\n",
            collector.url
        ),
        &[("COLLECTOR_TOKEN", "collector-secret")],
    );
    gateway.wait_for_tools(&["up_session_info"]).await;

    // A 2026-07-28 client, trace context in the HTTP header.
    let trace = "4bf92f3577b68a0d3c3e6e8e4a7e6c0f";
    let client_span = "00f067aa0ba902b7";
    let seen = modern_call(&gateway, &traceparent(trace, client_span, true)).await;
    let spans = collector.trace(trace, 2).await;
    let server = span_named(&spans, "tools/call up_session_info");
    let upstream_call = span_named(&spans, "tools/call session_info");
    assert_eq!(server["kind"], "SPAN_KIND_SERVER");
    assert_eq!(server["parentSpanId"], client_span);
    assert_eq!(server["service"], "sb-test");
    assert_eq!(server["attributes"]["mcp.method.name"], "tools/call");
    assert_eq!(server["attributes"]["gen_ai.tool.name"], "up_session_info");
    assert_eq!(server["attributes"]["jsonrpc.request.id"], "7");
    assert_eq!(server["attributes"]["mcp.protocol.version"], "2026-07-28");
    assert_eq!(
        server["status"]["code"], 0,
        "a success leaves the status unset"
    );
    assert_eq!(upstream_call["kind"], "SPAN_KIND_CLIENT");
    assert_eq!(upstream_call["parentSpanId"], server["spanId"]);
    assert_eq!(upstream_call["attributes"]["switchboard.upstream"], "up");
    assert_eq!(
        upstream_call["attributes"]["gen_ai.tool.name"],
        "session_info"
    );
    // The upstream's parent is the gateway's call span, in both carriers,
    // and the client's tracestate goes along.
    let expected = traceparent(trace, upstream_call["spanId"].as_str().unwrap(), true);
    assert_eq!(seen["headers"]["traceparent"], expected, "{seen}");
    assert_eq!(seen["meta"]["traceparent"], expected, "{seen}");
    assert_eq!(seen["headers"]["tracestate"], "vendor=blue", "{seen}");
    assert_eq!(seen["meta"]["tracestate"], "vendor=blue", "{seen}");

    // A 2025 client, trace context in `_meta`.
    let session = initialize(&gateway.mcp()).await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let client_span = "b7ad6b7169203331";
    let body = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {
        "name": "up_session_info", "arguments": {},
        "_meta": {"traceparent": traceparent(trace, client_span, true)}}});
    let response = post(
        &gateway.mcp(),
        &legacy_headers(Some(&session)),
        &body.to_string(),
    )
    .await;
    let seen = seen_by_upstream(&response.json());
    let spans = collector.trace(trace, 2).await;
    let server = span_named(&spans, "tools/call up_session_info");
    let upstream_call = span_named(&spans, "tools/call session_info");
    assert_eq!(server["parentSpanId"], client_span);
    assert_eq!(server["attributes"]["mcp.protocol.version"], "2025-11-25");
    assert_eq!(upstream_call["parentSpanId"], server["spanId"]);
    let expected = traceparent(trace, upstream_call["spanId"].as_str().unwrap(), true);
    assert_eq!(seen["meta"]["traceparent"], expected, "{seen}");
    assert_eq!(seen["headers"]["traceparent"], expected, "{seen}");

    // A failing request: its span says so, with the JSON-RPC code.
    let trace = "11111111111111111111111111111111";
    let context = traceparent(trace, client_span, true);
    let response = call_tool(&gateway, "up_no_such_tool", &[("traceparent", &context)]).await;
    let code = response.json()["error"]["code"].as_i64().expect("an error");
    let spans = collector.trace(trace, 1).await;
    let server = span_named(&spans, "tools/call up_no_such_tool");
    assert_eq!(server["status"]["code"], 2, "{server}");
    assert_eq!(server["attributes"]["error.type"], code.to_string());

    // A tool that reports an error (`isError`) fails both spans, though
    // every other layer sees a success.
    let trace = "44444444444444444444444444444444";
    let context = traceparent(trace, client_span, true);
    let response = call_tool(
        &gateway,
        "up_test_error_handling",
        &[("traceparent", &context)],
    )
    .await;
    assert_eq!(
        response.json()["result"]["isError"],
        true,
        "{:?}",
        response.body
    );
    let spans = collector.trace(trace, 2).await;
    for span in &spans {
        assert_eq!(span["status"]["code"], 2, "{span}");
        assert_eq!(span["attributes"]["error.type"], "tool_error", "{span}");
    }

    // A trace the client did not sample: passed on untouched, not recorded.
    // Spans leave in order, so once a later sampled trace has arrived the
    // unsampled one would have too.
    let unsampled = "22222222222222222222222222222222";
    let seen = modern_call(&gateway, &traceparent(unsampled, client_span, false)).await;
    assert_eq!(
        seen["headers"]["traceparent"],
        traceparent(unsampled, client_span, false)
    );
    let later = "33333333333333333333333333333333";
    modern_call(&gateway, &traceparent(later, client_span, true)).await;
    collector.trace(later, 2).await;
    assert!(
        !collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .any(|s| s["traceId"] == unsampled),
        "an unsampled trace was recorded"
    );

    // No context from the client: the gateway starts the trace.
    let seen = modern_call_without_context(&gateway).await;
    let sent = seen["headers"]["traceparent"]
        .as_str()
        .expect("a traceparent");
    let started = &sent[3..35];
    let spans = collector.trace(started, 2).await;
    let server = span_named(&spans, "tools/call up_session_info");
    assert_eq!(server["parentSpanId"], "", "a root span");

    let authorizations = collector.authorizations.lock().unwrap().clone();
    assert!(!authorizations.is_empty());
    assert!(
        authorizations
            .iter()
            .all(|a| a == "Bearer collector-secret")
    );
}

async fn modern_call_without_context(gateway: &Gateway) -> Value {
    seen_by_upstream(&call_tool(gateway, "up_session_info", &[]).await.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_export_the_clients_context_still_reaches_the_upstream() {
    let (_upstream, upstream_url) = upstream_config();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: up\n    url: \"{upstream_url}\"\n"
    ));
    gateway.wait_for_tools(&["up_session_info"]).await;
    let context = traceparent("4bf92f3577b68a0d3c3e6e8e4a7e6c0f", "00f067aa0ba902b7", true);
    let seen = modern_call(&gateway, &context).await;
    assert_eq!(seen["headers"]["traceparent"], context, "{seen}");
    assert_eq!(seen["meta"]["traceparent"], context, "{seen}");
    // Without a client context there is nothing to pass on.
    let seen = modern_call_without_context(&gateway).await;
    assert_eq!(seen["headers"].get("traceparent"), None, "{seen}");
}

/// A collector that cannot be reached costs spans, never a request: calls
/// are answered, the failure is logged (without the collector's
/// credential), and the gateway keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_costs_spans_not_requests() {
    let (_upstream, upstream_url) = upstream_config();
    let gateway = Gateway::start_with_env(
        &format!(
            "upstreams:\n  - name: up\n    url: \"{upstream_url}\"\n\
             traces:\n  otlpEndpoint: \"http://127.0.0.1:1\"\n  headers:\n    Authorization: \"Bearer ${{COLLECTOR_TOKEN}}\"\n"
        ),
        &[("COLLECTOR_TOKEN", "unreachable-collector-secret")],
    );
    gateway.wait_for_tools(&["up_session_info"]).await;
    let context = traceparent("55555555555555555555555555555555", "00f067aa0ba902b7", true);
    let seen = modern_call(&gateway, &context).await;
    assert!(seen["headers"]["traceparent"].is_string(), "{seen}");
    let failed = gateway
        .proc
        .wait_for("trace export failed", Duration::from_secs(20));
    assert!(failed.contains("127.0.0.1:1"), "{failed}");
    for _ in 0..3 {
        modern_call(&gateway, &context).await;
    }
    let log = gateway.proc.drain(Duration::from_millis(200)).join("\n");
    assert!(!log.contains("unreachable-collector-secret"), "{log}");
    assert!(!failed.contains("unreachable-collector-secret"), "{failed}");
}
