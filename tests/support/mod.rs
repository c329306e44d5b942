//! Shared by the integration tests: start real processes on port 0 (the
//! gateway, rmcp upstreams, third-party peers), wait for them with a
//! deadline, and talk real HTTP to them. Every process is killed when its
//! guard drops.

#![allow(dead_code)]

pub mod kube_api;

use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// How long any process may take to come up.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn peers() -> PathBuf {
    repo().join("tests/peers")
}

/// A child process, killed on drop.
pub struct Proc {
    pub child: Child,
    /// Lines the process printed (stdout and stderr), not yet looked at.
    lines: mpsc::Receiver<String>,
    /// Lines read while waiting for the ready line, kept for later looks.
    backlog: std::sync::Mutex<Vec<String>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts `command` and waits until one of its output lines contains
    /// `ready`; returns that line.
    pub fn start(mut command: Command, ready: &str) -> (Proc, String) {
        let description = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        let (tx, rx) = mpsc::channel();
        forward_lines(child.stdout.take().unwrap(), tx.clone());
        forward_lines(child.stderr.take().unwrap(), tx);
        let mut proc = Proc {
            child,
            lines: rx,
            backlog: Default::default(),
        };
        let deadline = Instant::now() + START_DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match proc.lines.recv_timeout(left) {
                Ok(line) if line.contains(ready) => {
                    *proc.backlog.lock().unwrap() = seen;
                    return (proc, line);
                }
                Ok(line) => seen.push(line),
                Err(_) => {
                    let status = proc.child.try_wait().ok().flatten();
                    panic!(
                        "{description} did not print {ready:?} in time (exit: {status:?}); it printed:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    /// Everything printed since start (or the last call), waiting up to `wait`.
    pub fn drain(&self, wait: Duration) -> Vec<String> {
        let mut out = std::mem::take(&mut *self.backlog.lock().unwrap());
        let deadline = Instant::now() + wait;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            out.push(line);
        }
        out
    }

    /// Waits until a line containing `needle` appears.
    pub fn wait_for(&self, needle: &str, wait: Duration) -> String {
        {
            let mut backlog = self.backlog.lock().unwrap();
            if let Some(i) = backlog.iter().position(|l| l.contains(needle)) {
                let line = backlog[i].clone();
                backlog.drain(..=i);
                return line;
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {needle:?} within {wait:?}"),
            }
        }
    }
}

fn forward_lines(stream: impl Read + Send + 'static, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                // Nobody listens any more; keep draining so the child never
                // blocks on a full pipe.
                continue;
            }
        }
    });
}

pub fn url_in(line: &str) -> String {
    let start = line
        .find("http://")
        .or_else(|| line.find("https://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    line[start..].split_whitespace().next().unwrap().to_string()
}

/// The rmcp upstream from `conformance/upstream.rs`.
pub fn rmcp_upstream(args: &[&str]) -> (Proc, String) {
    let mut command = Command::new(example_path("conformance-upstream"));
    command.args(args);
    let (proc, line) = Proc::start(command, "listening on http://");
    (proc, url_in(&line))
}

/// A cargo example binary beside the test binary (cargo test builds them).
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug_dir = exe.parent().unwrap().parent().unwrap();
    let path = debug_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test` (it builds examples)",
        path.display()
    );
    path
}

/// `@modelcontextprotocol/server-everything` in Streamable HTTP mode, on loopback.
pub fn everything() -> (Proc, String) {
    need_node_modules();
    let mut command = Command::new("bash");
    command.arg(peers().join("everything.sh")).arg("0");
    let (proc, line) = Proc::start(command, "loopback: listening on");
    let address = line.rsplit(' ').next().unwrap().to_string();
    (proc, format!("http://{address}/mcp"))
}

/// A TypeScript SDK 1.x server (`tests/peers/ts_sdk1_server.mjs`): 2025
/// era, asking for input both outside any call and on the call's stream.
pub fn ts_sdk1_server() -> (Proc, String) {
    need_node_modules();
    let mut command = Command::new("node");
    command.arg(peers().join("ts_sdk1_server.mjs")).arg("0");
    let (proc, line) = Proc::start(command, "ts_sdk1_server ready on");
    (proc, url_in(&line))
}

/// A TypeScript SDK v2 server (`tests/peers/ts_v2_server.mjs`), 2026-07-28
/// only.
pub fn ts_v2_server() -> (Proc, String) {
    need_node_modules();
    let mut command = Command::new("node");
    command.arg(peers().join("ts_v2_server.mjs")).arg("0");
    let (proc, line) = Proc::start(command, "ts_v2_server ready on");
    (proc, url_in(&line))
}

/// The Python SDK's MCPServer (`tests/peers/py_server.py`).
pub fn py_server(transport: &str, extra: &[&str]) -> (Proc, String) {
    py_server_on("0", transport, extra)
}

/// The Python SDK's MCPServer on a given port (a restart on the same address).
pub fn py_server_on(port: &str, transport: &str, extra: &[&str]) -> (Proc, String) {
    let mut command = Command::new("python3");
    command
        .arg(peers().join("py_server.py"))
        .arg(port)
        .arg(transport)
        .args(extra);
    let (proc, line) = Proc::start(command, "py_server ready on");
    (proc, url_in(&line))
}

fn need_node_modules() {
    assert!(
        peers().join("node_modules").exists(),
        "tests/peers/node_modules is missing: run `npm ci --prefix tests/peers` (bash .ci/run does)"
    );
}

/// A running gateway.
pub struct Gateway {
    pub proc: Proc,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub config: TempFile,
}

impl Gateway {
    /// Starts `switchboard serve` on `upstreams_yaml` (the `upstreams:` list
    /// and anything else but `listen`).
    pub fn start(config_yaml: &str) -> Gateway {
        Gateway::start_with_env(config_yaml, &[])
    }

    /// Like [`Gateway::start`], with extra environment variables.
    pub fn start_with_env(config_yaml: &str, env: &[(&str, &str)]) -> Gateway {
        let config = TempFile::new("yaml", &format!("listen: \"127.0.0.1:0\"\n{config_yaml}"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&config.path)
            .env("RUST_LOG", "switchboard=debug")
            .envs(env.iter().copied());
        let (proc, line) = Proc::start(command, "switchboard listening on");
        let url = url_in(&line);
        let base = url.trim_end_matches("/mcp").to_string();
        Gateway { proc, base, config }
    }

    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn server_mcp(&self, name: &str) -> String {
        format!("{}/servers/{name}/mcp", self.base)
    }

    /// Starts `switchboard serve` with `args` and no config file of ours.
    pub fn start_with_args(args: &[&str]) -> Gateway {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command.arg("serve").args(args);
        let (proc, line) = Proc::start(command, "switchboard listening on");
        let base = url_in(&line).trim_end_matches("/mcp").to_string();
        let config = TempFile::new("yaml", "");
        Gateway { proc, base, config }
    }

    /// Waits until `tools/list` through `/mcp` has every name in `tools`.
    pub async fn wait_for_tools(&self, tools: &[&str]) {
        self.wait_for_tools_within(tools, START_DEADLINE).await;
    }

    pub async fn wait_for_tools_within(&self, tools: &[&str], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let listed = list_tool_names(&self.mcp()).await;
            if tools.iter().all(|t| listed.iter().any(|l| l == t)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tools {tools:?} did not all appear; {} listed, starting {:?}",
                listed.len(),
                &listed[..listed.len().min(20)]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every name listed by stateless 2026-07-28 `tools/list`, all pages.
pub async fn list_tool_names(url: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = serde_json::json!({ "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }});
        if let Some(cursor) = &cursor {
            params["cursor"] = cursor.clone().into();
        }
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params });
        let result = post(url, &modern_headers("tools/list", None), &body.to_string())
            .await
            .json()["result"]
            .take();
        let Some(tools) = result["tools"].as_array() else {
            return names;
        };
        names.extend(
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string)),
        );
        match result["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return names,
        }
    }
}

/// Standard base64 with padding (Secret data, PEM bodies).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// base64url without padding (JWK members).
pub fn base64url(bytes: &[u8]) -> String {
    base64(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// A directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("switchboard-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A file removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(extension: &str, contents: &str) -> TempFile {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "switchboard-test-{}-{}.{extension}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).unwrap();
        TempFile { path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

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
async fn send(
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

/// Runs a third-party client script and parses its one JSON line.
fn run_client(mut command: Command, what: &str) -> Value {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{what} printed {stdout:?}: {e}"))
}

/// The TypeScript SDK client: `legacy` (sdk 1.x), `modern` (client 2.x
/// pinned to 2026-07-28) or `auto`.
pub fn ts_client(url: &str, mode: &str, plan: &Value) -> Value {
    need_node_modules();
    let mut command = Command::new("node");
    command
        .arg(peers().join("ts_client.mjs"))
        .arg(url)
        .arg(mode)
        .arg(plan.to_string());
    run_client(command, &format!("ts_client {mode} {url}"))
}

/// The Python SDK client (2025 handshake).
pub fn py_client(url: &str, plan: &Value) -> Value {
    let mut command = Command::new("python3");
    command
        .arg(peers().join("py_client.py"))
        .arg(url)
        .arg(plan.to_string());
    run_client(command, &format!("py_client {url}"))
}

/// The text of a named call in a client script's output.
/// Each call's text and error from a client script's output: what a user
/// of the tools sees, to compare direct and through the gateway.
pub fn call_outcomes(output: &Value) -> Vec<Value> {
    output["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| json!({ "text": call["text"], "error": call["error"] }))
        .collect()
}

/// The tool names a client script listed.
pub fn tool_names(output: &Value) -> Vec<&str> {
    output["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

pub fn call_text(output: &Value, index: usize) -> &str {
    let call = &output["calls"][index];
    assert!(call.get("error").is_none(), "call {index} failed: {call}");
    assert_eq!(call["isError"], false, "call {index} is an error: {call}");
    call["text"].as_str().unwrap_or_default()
}

/// `tests/peers/ts_watch.mjs`: a long-lived TypeScript SDK client driven
/// one command at a time.
pub struct Watcher {
    proc: Proc,
    stdin: std::process::ChildStdin,
}

impl Watcher {
    pub fn start(url: &str, mode: &str) -> (Watcher, Value) {
        need_node_modules();
        let mut command = Command::new("node");
        command.arg(peers().join("ts_watch.mjs")).arg(url).arg(mode);
        let description = format!("ts_watch {mode} {url}");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let (tx, rx) = mpsc::channel();
        forward_lines(child.stdout.take().unwrap(), tx.clone());
        forward_lines(child.stderr.take().unwrap(), tx);
        let watcher = Watcher {
            proc: Proc {
                child,
                lines: rx,
                backlog: Default::default(),
            },
            stdin,
        };
        let ready = watcher.next_json(START_DEADLINE);
        assert_eq!(ready["ready"], true, "{description}: {ready}");
        (watcher, ready)
    }

    /// Sends one command and returns its JSON answer.
    pub fn send(&mut self, command: &str, within: Duration) -> Value {
        use std::io::Write;
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.next_json(within)
    }

    /// The next line that is a JSON object (other lines are the script's
    /// stderr); panics with what was printed if none comes in time.
    fn next_json(&self, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        let mut other = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.proc.lines.recv_timeout(left) {
                Ok(line) => match serde_json::from_str::<Value>(&line) {
                    Ok(value) if value.is_object() => return value,
                    _ => other.push(line),
                },
                Err(_) => panic!(
                    "ts_watch answered nothing in {within:?}; it printed:\n{}",
                    other.join("\n")
                ),
            }
        }
    }
}

/// A response read event by event, for long-lived streams.
pub struct EventStream {
    body: hyper::body::Incoming,
    decoder: Vec<u8>,
    pub status: u16,
}

impl EventStream {
    /// Sends a request and returns its (unfinished) response.
    pub async fn open(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> EventStream {
        let response = send(method, url, headers, body).await;
        EventStream {
            status: response.status().as_u16(),
            body: response.into_body(),
            decoder: Vec::new(),
        }
    }

    /// The next JSON message on the stream, or `None` if none comes within
    /// `wait` (comments and keep-alives are skipped).
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let (_, data) = self.next_event(wait).await?;
        serde_json::from_str(&data).ok()
    }

    /// Whether the server ends the stream within `wait` (events before the
    /// end are skipped).
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next event with data: its `event` name and its data.
    pub async fn next_event(&mut self, wait: Duration) -> Option<(Option<String>, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = find_event_end(&self.decoder) {
                let event: Vec<u8> = self.decoder.drain(..end).collect();
                let text = String::from_utf8_lossy(&event);
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                    .collect();
                let name = text
                    .lines()
                    .find_map(|l| l.strip_prefix("event:"))
                    .map(|n| n.trim().to_string());
                if !data.is_empty() {
                    return Some((name, data.join("\n")));
                }
                continue;
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.decoder.extend_from_slice(&data);
            }
        }
    }
}

/// The end (past the blank line) of the first complete event in `buffer`.
fn find_event_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// What became of the `sleep` calls of an rmcp test upstream (its
/// `sleep_stats` tool, called through the gateway as a 2026 client).
pub async fn sleep_stats(gateway: &Gateway, upstream: &str) -> Value {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": format!("{upstream}_sleep_stats"), "arguments": {},
                    "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                               "io.modelcontextprotocol/clientCapabilities": {} } },
    });
    let name = format!("{upstream}_sleep_stats");
    let response = post(
        &gateway.mcp(),
        &modern_headers("tools/call", Some(&name)),
        &body.to_string(),
    )
    .await;
    let text = response.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("{}")
        .to_string();
    serde_json::from_str(&text).unwrap()
}

/// Waits until `count` sleep calls have started on the upstream: a call is
/// in flight there.
pub async fn wait_until_sleeping(gateway: &Gateway, upstream: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleep_stats(gateway, upstream).await["started"] != count {
        assert!(Instant::now() < deadline, "the call never started upstream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Headers of a 2025 session's GET stream.
pub fn stream_headers(session: &str) -> Vec<(String, String)> {
    vec![
        ("accept".into(), "text/event-stream".into()),
        ("mcp-session-id".into(), session.into()),
        ("mcp-protocol-version".into(), "2025-11-25".into()),
    ]
}

/// A private CA and a server certificate for `names`, made with openssl.
pub fn private_ca(
    dir: &std::path::Path,
    names: &[&str],
) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=switchboard test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    ]
    .concat());
    let san = format!(
        "subjectAltName={}",
        names
            .iter()
            .map(|n| format!("DNS:{n}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=upstream",
            "-addext",
            &san,
        ],
    ]
    .concat());
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-copy_extensions",
        "copyall",
    ]);
    (
        std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// The rmcp upstream serving HTTPS; returns it and its port.
pub fn tls_upstream(cert: &std::path::Path, key: &std::path::Path) -> (Proc, u16) {
    let mut command = std::process::Command::new(example_path("conformance-upstream"));
    command
        .args(["--http", "127.0.0.1:0", "--tls"])
        .arg(cert)
        .arg(key);
    let (proc, line) = Proc::start(command, "listening on https://");
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches("/mcp").trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (proc, port)
}

/// Runs a Python check from `tests/peers/` on `input` (its stdin) and
/// parses the JSON it prints; `what` names the format in the failure.
pub fn python_check(script: &str, input: &[u8], what: &str) -> Value {
    let mut child = Command::new("python3")
        .arg(peers().join(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "not valid {what}: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(input)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// An HTTP/1.1 server on a loopback port for the rest of the test,
/// answering every request with `handle`; returns `http://127.0.0.1:<port>`.
pub async fn serve_http<F, Fut, B>(handle: F) -> String
where
    F: Fn(http::Request<hyper::body::Incoming>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::sync::Arc::new(handle);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = handle(request);
                    async move { Ok::<_, std::convert::Infallible>(response.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}
