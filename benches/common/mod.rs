//! What the load and churn harnesses share: the upstream MCP server they
//! run as a child process (both eras, answering from memory), the
//! plumbing to serve it, and the child processes and their memory.

#![allow(dead_code)] // each harness uses its part

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const MODERN: &str = "2026-07-28";
pub const LEGACY: &str = "2025-11-25";

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The upstream: a fast MCP server of either era (`legacy_only`: 2025
/// only, with sessions), on a loopback port it prints.
pub async fn upstream(legacy_only: bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    announce(listener.local_addr().expect("address"));
    let sessions = Arc::new(AtomicU64::new(1));
    serve(listener, move |request| {
        let sessions = sessions.clone();
        async move { upstream_answer(request, legacy_only, &sessions).await }
    })
    .await;
}

async fn upstream_answer(
    request: Request<Incoming>,
    legacy_only: bool,
    sessions: &AtomicU64,
) -> Response<Full<Bytes>> {
    match *request.method() {
        hyper::Method::POST => {}
        hyper::Method::DELETE => return status(StatusCode::OK),
        // No GET stream: the gateway then follows nothing.
        _ => return status(StatusCode::METHOD_NOT_ALLOWED),
    }
    let modern = !legacy_only
        && request
            .headers()
            .get("mcp-protocol-version")
            .is_some_and(|v| v == MODERN);
    let Ok(body) = request.into_body().collect().await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let message: Value = serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null);
    let Some(id) = message.get("id").cloned() else {
        return status(StatusCode::ACCEPTED);
    };
    let mut session = None;
    let mut result = match message["method"].as_str().unwrap_or_default() {
        "server/discover" if modern => json!({
            "supportedVersions": [MODERN, LEGACY],
            "capabilities": { "tools": {} },
            "serverInfo": { "name": "bench-upstream", "version": "0" },
            "ttlMs": 0, "cacheScope": "public",
        }),
        "initialize" => {
            session = Some(sessions.fetch_add(1, Ordering::Relaxed).to_string());
            json!({
                "protocolVersion": LEGACY,
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "bench-upstream", "version": "0" },
            })
        }
        "tools/list" => {
            json!({ "tools": [{ "name": "work", "inputSchema": { "type": "object" } }] })
        }
        "tools/call" => json!({ "content": [{ "type": "text", "text": "ok" }], "isError": false }),
        "ping" => json!({}),
        _ => {
            let error = json!({ "jsonrpc": "2.0", "id": id,
                "error": { "code": -32601, "message": "Method not found" } });
            let mut response = Response::new(Full::new(Bytes::from(error.to_string())));
            *response.status_mut() = if modern {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            return response;
        }
    };
    if modern {
        result["resultType"] = "complete".into();
    }
    let body = json!({ "jsonrpc": "2.0", "id": id, "result": result }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Some(session) = session.and_then(|s| s.parse().ok()) {
        response.headers_mut().insert("mcp-session-id", session);
    }
    response
}

pub fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

pub fn announce(address: SocketAddr) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {address}").unwrap();
    stdout.flush().unwrap();
}

pub async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A child process, killed on drop.
pub struct Proc {
    pub child: Child,
    pub address: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn start(mut command: Command, marker: &str) -> Proc {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a bench process");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("the process printed its address")
                .unwrap();
            if let Some(at) = line.find(marker) {
                let rest = &line[at + marker.len()..];
                break rest
                    .trim_start_matches("http://")
                    .split(['/', ' '])
                    .next()
                    .unwrap()
                    .to_string();
            }
        };
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Proc { child, address }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

pub fn role(role: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.arg("--role").arg(role).args(extra);
    command
}

/// Resident memory of a process, in bytes (`VmRSS`).
pub fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}
