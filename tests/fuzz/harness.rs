//! The request-path fuzz harness: one input is one HTTP request, served by
//! the real gateway (assembled as `switchboard serve` assembles it, with
//! API keys, JWT, authorization rules and sealed sessions) over an
//! in-memory connection, in front of an upstream that runs in this process.
//!
//! Shared by the libFuzzer target (`fuzz_targets/edge.rs`, run with
//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz edge`) and by the stable
//! test `tests/fuzz_corpus.rs`, which replays the committed corpus.
//!
//! An input is a request written as text, so the corpus reads like HTTP:
//!
//! ```text
//! POST /mcp
//! content-type: application/json
//! authorization: Bearer {key}
//!
//! {"jsonrpc":"2.0","id":1,"method":"tools/list"}
//! ```
//!
//! `{key}`, `{jwt}`, `{bob}` (another subject's key) and `{session}` (a live
//! legacy session of `{key}`'s subject) are replaced wherever they appear.
//!
//! What must hold for every input (a panic otherwise): an answer arrives
//! (no hang, no connection dropped without one), never a 500, every JSON
//! error body is a JSON-RPC error with a code and a message, a 401 says how
//! to authenticate, a 405 says what is allowed, and the gateway keeps
//! serving a well-formed call afterwards.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use switchboard::server::{self, Edge};

const API_KEY: &str = "fuzz-key-alice-0123456789";
const BOB_KEY: &str = "fuzz-key-bob-0123456789ab";
const JWT_SECRET: &str = "fuzz-jwt-secret-0123456789abcdef0123";
const MODERN: &str = "2026-07-28";
/// Longer than any answer may take: the upstream answers at once.
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

struct Harness {
    runtime: tokio::runtime::Runtime,
    edge: Arc<Edge>,
    http1: hyper::server::conn::http1::Builder,
    connections: GracefulShutdown,
    jwt: String,
    /// A legacy session opened by alice at start.
    session: String,
    runs: AtomicU64,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

/// Serves one input; panics when the gateway breaks a promise.
pub fn run(data: &[u8]) {
    let harness = HARNESS.get_or_init(Harness::start);
    let Some(request) = harness.request(data) else {
        return;
    };
    harness.runtime.block_on(async {
        harness.check(request).await;
        // Everyone else is still served: a well-formed call, now and then
        // (every time would halve the fuzzer's speed).
        if harness
            .runs
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(256)
        {
            harness.check_still_serving().await;
        }
    });
}

impl Harness {
    fn start() -> Harness {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (edge, limits) = runtime.block_on(async {
            let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind the upstream");
            let address = upstream.local_addr().expect("upstream address");
            tokio::spawn(serve_upstream(upstream));
            let yaml = format!(
                r#"
listen: "127.0.0.1:0"
sessionIdleTimeout: 2s
sessions:
  key: "fuzz-sealing-key-0123456789abcdef0123"
upstreams:
  - name: echo
    url: "http://{address}/mcp"
auth:
  apiKeys:
    - subject: alice
      key: "{API_KEY}"
      groups: [platform]
    - subject: bob
      key: "{BOB_KEY}"
  jwt:
    - issuer: fuzz
      audiences: [switchboard]
      secret: "{JWT_SECRET}"
authorization:
  - subjects: ["bob"]
    deny: ["echo_fail"]
    allow: ["echo_*"]
  - subjects: ["group:platform", "carol"]
    allow: ["*"]
"#
            );
            let config = switchboard::config::parse(&yaml, "fuzz.yaml", &|_| None)
                .unwrap_or_else(|e| panic!("the harness config: {e}"));
            let edge = server::assemble(&config, true, false)
                .await
                .expect("assemble the gateway");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while edge.front.pool.catalog().tool("echo_echo").is_none() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the upstream's tools never arrived"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (edge, config.security.limits)
        });
        let jwt = switchboard::auth::jwt::mint(
            JWT_SECRET,
            "carol",
            Duration::from_secs(24 * 3600),
            Some("switchboard"),
            Some("fuzz"),
            &[],
        )
        .expect("mint a JWT");
        let mut harness = Harness {
            runtime,
            http1: server::http1(&limits),
            edge,
            connections: GracefulShutdown::new(),
            jwt,
            session: String::new(),
            runs: AtomicU64::new(0),
        };
        harness.session = harness.runtime.block_on(harness.open_session());
        harness
    }

    /// The request an input describes, or `None` when it is not one
    /// (an invalid method, target or header is hyper's to refuse, not ours).
    fn request(&self, data: &[u8]) -> Option<Request<Full<Bytes>>> {
        let text_end = find(data, b"\n\n");
        let (head, body) = match text_end {
            Some(at) => (&data[..at], &data[at + 2..]),
            None => (data, &b""[..]),
        };
        let head = self.substitute(&String::from_utf8_lossy(head));
        let mut lines = head.lines();
        let (method, target) = lines.next()?.split_once(' ')?;
        let mut builder = Request::builder()
            .method(hyper::Method::from_bytes(method.as_bytes()).ok()?)
            .uri(target.parse::<hyper::Uri>().ok()?);
        for line in lines {
            let (name, value) = line.split_once(':')?;
            let name = hyper::header::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
            let value = hyper::header::HeaderValue::from_str(value.trim()).ok()?;
            builder = builder.header(name, value);
        }
        let body = self.substitute(&String::from_utf8_lossy(body)).into_bytes();
        builder.body(Full::new(Bytes::from(body))).ok()
    }

    fn substitute(&self, text: &str) -> String {
        if !text.contains('{') {
            return text.to_string();
        }
        text.replace("{key}", API_KEY)
            .replace("{bob}", BOB_KEY)
            .replace("{jwt}", &self.jwt)
            .replace("{session}", &self.session)
    }

    /// Sends one request over a fresh in-memory connection.
    async fn send(&self, request: Request<Full<Bytes>>) -> Response<Incoming> {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
        let http1 = self.http1.clone();
        tokio::spawn(server::serve_connection(
            server_io,
            peer,
            self.edge.clone(),
            Arc::new(http1),
            self.connections.watcher(),
        ));
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(client_io))
                .await
                .expect("an in-memory handshake cannot fail");
        tokio::spawn(connection);
        let described = format!("{} {}", request.method(), request.uri());
        match tokio::time::timeout(ANSWER_DEADLINE, sender.send_request(request)).await {
            Err(_) => panic!("{described}: no answer within {ANSWER_DEADLINE:?}"),
            Ok(Err(error)) => {
                panic!("{described}: the connection ended without an answer: {error}")
            }
            Ok(Ok(response)) => response,
        }
    }

    async fn check(&self, request: Request<Full<Bytes>>) {
        let described = format!("{} {}", request.method(), request.uri());
        let response = self.send(request).await;
        let status = response.status();
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{described}: a 500"
        );
        if status == StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get(hyper::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(
                challenge.starts_with("Bearer resource_metadata="),
                "{described}: a 401 without its challenge: {challenge:?}"
            );
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(
                response.headers().contains_key(hyper::header::ALLOW),
                "{described}: a 405 without Allow"
            );
        }
        // Streams (GET, subscriptions/listen, HTTP+SSE, progress) stay open
        // by design: their head is the answer.
        if content_type.starts_with("text/event-stream") {
            trace(&described, status, b"(event stream)");
            return;
        }
        let body = match tokio::time::timeout(ANSWER_DEADLINE, response.into_body().collect()).await
        {
            Err(_) => panic!("{described}: the body did not end within {ANSWER_DEADLINE:?}"),
            Ok(Err(error)) => panic!("{described}: the body broke off: {error}"),
            Ok(Ok(body)) => body.to_bytes(),
        };
        trace(&described, status, &body);
        if !content_type.starts_with("application/json") || body.is_empty() {
            return;
        }
        let value: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{described}: JSON that does not parse ({e}): {body:?}"));
        if status.is_client_error() || status.is_server_error() {
            let error = &value["error"];
            assert!(
                value["jsonrpc"] == "2.0" && error["code"].is_i64() && error["message"].is_string(),
                "{described}: {status} without a JSON-RPC error: {value}"
            );
        } else if status.is_success() && value.get("jsonrpc").is_some() {
            assert!(
                value.get("result").is_some() != value.get("error").is_some(),
                "{described}: a response with neither or both of result and error: {value}"
            );
        }
    }

    /// A 2026-07-28 call by alice is answered by the upstream.
    async fn check_still_serving(&self) {
        let body = json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": { "name": "echo_echo", "arguments": { "text": "still here" },
                "_meta": { "io.modelcontextprotocol/protocolVersion": MODERN,
                           "io.modelcontextprotocol/clientCapabilities": {} } },
        });
        let request = Request::post("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "echo_echo")
            .header("authorization", format!("Bearer {API_KEY}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a request");
        let response = self.send(request).await;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        assert!(
            status == StatusCode::OK && find(&body, b"still here").is_some(),
            "the gateway stopped serving a well-formed call: {status} {body:?}"
        );
    }

    /// Opens alice's legacy session (its id is `{session}` in inputs).
    async fn open_session(&self) -> String {
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": { "protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": { "name": "fuzz", "version": "0" } },
        });
        let request = Request::post("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", format!("Bearer {API_KEY}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a request");
        let response = self.send(request).await;
        assert_eq!(response.status(), StatusCode::OK, "initialize");
        response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .expect("a session id")
            .to_string()
    }
}

/// `FUZZ_TRACE=1`: each answer on stderr, to see what a seed reaches.
fn trace(described: &str, status: StatusCode, body: &[u8]) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some()) {
        let shown = &body[..body.len().min(300)];
        eprintln!("{described} -> {status} {}", String::from_utf8_lossy(shown));
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// The upstream: both eras, three tools, a prompt and a resource; answers at
// once.
// ---------------------------------------------------------------------------

async fn serve_upstream(listener: tokio::net::TcpListener) {
    let sessions = Arc::new(AtomicU64::new(1));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let sessions = sessions.clone();
                async move { Ok::<_, Infallible>(upstream_answer(request, &sessions).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn upstream_answer(
    request: Request<Incoming>,
    sessions: &AtomicU64,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            "content-type",
            "application/json".parse().expect("a header"),
        );
        response
    };
    if request.method() != hyper::Method::POST {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, String::new());
        response.headers_mut().remove("content-type");
        return response;
    }
    let modern = request
        .headers()
        .get("mcp-protocol-version")
        .is_some_and(|v| v == MODERN);
    let Ok(body) = request.into_body().collect().await else {
        return reply(StatusCode::BAD_REQUEST, String::new());
    };
    let message: Value = serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null);
    let Some(id) = message.get("id").cloned() else {
        return reply(StatusCode::ACCEPTED, String::new());
    };
    let params = &message["params"];
    let mut session = None;
    let result = match message["method"].as_str().unwrap_or_default() {
        "server/discover" if modern => json!({
            "supportedVersions": [MODERN, "2025-06-18"],
            "capabilities": { "tools": {}, "prompts": {}, "resources": {} },
            "serverInfo": { "name": "fuzz-upstream", "version": "0" },
        }),
        "initialize" => {
            session = Some(sessions.fetch_add(1, Ordering::Relaxed).to_string());
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": { "tools": {}, "prompts": {}, "resources": {} },
                "serverInfo": { "name": "fuzz-upstream", "version": "0" },
            })
        }
        "tools/list" => json!({ "tools": [
            { "name": "echo", "inputSchema": { "type": "object" } },
            { "name": "fail", "inputSchema": { "type": "object" } },
            { "name": "nested", "inputSchema": { "type": "object" } },
        ]}),
        "tools/call" => match params["name"].as_str() {
            Some("echo") => json!({ "content": [{ "type": "text",
                "text": params["arguments"]["text"].as_str().unwrap_or_default() }] }),
            Some("fail") => {
                json!({ "content": [{ "type": "text", "text": "failed" }], "isError": true })
            }
            Some("nested") => json!({ "content": [], "structuredContent": params["arguments"] }),
            _ => {
                let error = json!({ "jsonrpc": "2.0", "id": id,
                    "error": { "code": -32602, "message": "Unknown tool" } });
                return reply(StatusCode::OK, error.to_string());
            }
        },
        "prompts/list" => json!({ "prompts": [{ "name": "greet" }] }),
        "prompts/get" => json!({ "messages": [{ "role": "user",
            "content": { "type": "text", "text": "hello" } }] }),
        "resources/list" => json!({ "resources": [{ "uri": "fuzz://note", "name": "note" }] }),
        "resources/templates/list" => json!({ "resourceTemplates": [] }),
        "resources/read" => json!({ "contents": [{ "uri": "fuzz://note", "text": "note" }] }),
        "ping" | "logging/setLevel" => json!({}),
        "completion/complete" => json!({ "completion": { "values": [] } }),
        _ => {
            let error = json!({ "jsonrpc": "2.0", "id": id,
                "error": { "code": -32601, "message": "Method not found" } });
            let status = if modern {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            return reply(status, error.to_string());
        }
    };
    let mut result = result;
    if modern {
        result["resultType"] = "complete".into();
    }
    let mut response = reply(
        StatusCode::OK,
        json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string(),
    );
    if let Some(session) = session {
        response
            .headers_mut()
            .insert("mcp-session-id", session.parse().expect("a header"));
    }
    response
}
