//! HTTP requests to the gateway and upstreams: MCP headers of each era,
//! one request read whole, and the 2025 session steps tests repeat.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// An HTTP response, fully read.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    /// The JSON-RPC message in the body: the JSON body itself, or the last
    /// `data:` of an event stream.
    pub fn json(&self) -> Value {
        let text = String::from_utf8_lossy(&self.body);
        if self.content_type().starts_with("text/event-stream") {
            let last = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .unwrap_or("null");
            return serde_json::from_str(last).unwrap_or(Value::Null);
        }
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub fn modern_headers(method: &str, name: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("content-type".into(), "application/json".into()),
        (
            "accept".into(),
            "application/json, text/event-stream".into(),
        ),
        ("mcp-protocol-version".into(), "2026-07-28".into()),
        ("mcp-method".into(), method.into()),
    ];
    if let Some(name) = name {
        headers.push(("mcp-name".into(), name.into()));
    }
    headers
}

pub fn legacy_headers(session: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("content-type".into(), "application/json".into()),
        (
            "accept".into(),
            "application/json, text/event-stream".into(),
        ),
    ];
    if let Some(session) = session {
        headers.push(("mcp-session-id".into(), session.into()));
        headers.push(("mcp-protocol-version".into(), "2025-11-25".into()));
    }
    headers
}

/// Sends one request and returns the response once its headers arrived.
pub(super) async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &str,
) -> http::Response<hyper::body::Incoming> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .expect("response in time")
        .expect("HTTP exchange")
}

/// Sends one request and reads the whole response (bounded by a deadline).
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &str,
) -> HttpResponse {
    let response = send(method, url, headers, body).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(30), response.into_body().collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    HttpResponse {
        status,
        headers,
        body,
    }
}

pub async fn post(url: &str, headers: &[(String, String)], body: &str) -> HttpResponse {
    request("POST", url, headers, body).await
}

/// Opens a 2025 session with a raw `initialize`; returns the session id.
pub async fn initialize(url: &str) -> String {
    let body = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw-test","version":"0"}}}"#;
    let response = post(url, &legacy_headers(None), body).await;
    assert_eq!(response.status, 200, "initialize: {:?}", response.body);
    let session = response.header("mcp-session-id").expect("session id");
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let accepted = post(url, &legacy_headers(Some(&session)), note).await;
    assert_eq!(accepted.status, 202);
    session
}

/// What the rmcp upstream's `session_info` tool (under `tool`, prefixed)
/// reports for one call through the 2025 client session `session`: the
/// `Mcp-Session-Id` and credential it saw, and its pid.
pub async fn session_info(url: &str, session: &str, tool: &str, id: u32) -> Value {
    let body = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": tool, "arguments": {} }
    });
    let response = post(url, &legacy_headers(Some(session)), &body.to_string()).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let message = response.json();
    let text = message
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text in {message}"));
    serde_json::from_str(text).unwrap()
}

/// Headers of a 2025 session's GET stream.
pub fn stream_headers(session: &str) -> Vec<(String, String)> {
    vec![
        ("accept".into(), "text/event-stream".into()),
        ("mcp-session-id".into(), session.into()),
        ("mcp-protocol-version".into(), "2025-11-25".into()),
    ]
}
