//! Load harness: the same `tools/call` traffic sent DIRECT to a fast
//! upstream, through a FORWARDER (a minimal byte-forwarding hyper proxy:
//! the floor any proxy reaches on this machine), and through the GATEWAY,
//! side by side in one run, so that ratios hold on a shared, noisy machine.
//!
//! ```text
//! cargo bench --bench load                       # 1, 16, 64 concurrent clients, 10 s each, both eras
//! cargo bench --bench load -- --duration 2 --concurrency 1,16 --era modern
//! cargo bench --bench load -- --sessions 10000   # memory of 10,000 legacy sessions
//! cargo bench --bench load -- --gateway /tmp/old-switchboard   # another build as the GATEWAY
//! ```
//!
//! The upstream, the forwarder and the gateway run as separate processes
//! (the harness re-executes itself with `--role`), so each one's CPU time
//! and RSS are read from `/proc`. The load generator speaks MCP properly:
//! a 2025 session (`initialize`, then calls with `Mcp-Session-Id`) or
//! stateless 2026-07-28 requests with their headers and `_meta`.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpListener;

mod common;
use common::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match value("--role").as_deref() {
        Some("upstream") => runtime.block_on(upstream(args.iter().any(|a| a == "--legacy-only"))),
        Some("forwarder") => runtime.block_on(forwarder(
            value("--legacy").unwrap().parse().unwrap(),
            value("--modern").unwrap().parse().unwrap(),
        )),
        _ => {
            let options = Options {
                duration: Duration::from_secs_f64(
                    value("--duration").map_or(10.0, |d| d.parse().expect("--duration seconds")),
                ),
                concurrency: value("--concurrency")
                    .unwrap_or_else(|| "1,16,64".into())
                    .split(',')
                    .map(|c| c.parse().expect("--concurrency list"))
                    .collect(),
                eras: match value("--era").as_deref() {
                    Some("modern") => vec![Era::Modern],
                    Some("legacy") => vec![Era::Legacy],
                    _ => vec![Era::Legacy, Era::Modern],
                },
                sessions: value("--sessions").map(|s| s.parse().expect("--sessions count")),
                gateway: value("--gateway")
                    .unwrap_or_else(|| env!("CARGO_BIN_EXE_switchboard").into()),
            };
            runtime.block_on(orchestrate(options));
        }
    }
}

struct Options {
    duration: Duration,
    concurrency: Vec<usize>,
    eras: Vec<Era>,
    sessions: Option<usize>,
    /// The gateway binary (this build's unless `--gateway`).
    gateway: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Era {
    Legacy,
    Modern,
}

impl Era {
    fn label(self) -> &'static str {
        match self {
            Era::Legacy => "2025",
            Era::Modern => "2026",
        }
    }
}

// ---------------------------------------------------------------------------
// The fast upstream: answers at once, does no work.
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// The forwarder: bytes in, bytes out, only the path rewritten.
// ---------------------------------------------------------------------------

async fn forwarder(legacy: SocketAddr, modern: SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    announce(listener.local_addr().unwrap());
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    serve(listener, move |request: Request<Incoming>| {
        let client = client.clone();
        async move {
            let target = if request.uri().path().starts_with("/legacy") {
                legacy
            } else {
                modern
            };
            let (mut parts, body) = request.into_parts();
            parts.uri = format!("http://{target}/mcp").parse().unwrap();
            parts.headers.remove("host");
            match client.request(Request::from_parts(parts, body)).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    Response::from_parts(parts, Full::new(body))
                }
                Err(_) => status(StatusCode::BAD_GATEWAY),
            }
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// The orchestrator: processes, load, figures.
// ---------------------------------------------------------------------------

/// CPU time (user + system) of a process so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 1000 / clock_ticks())
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// One place to send calls to.
#[derive(Clone)]
struct Target {
    name: &'static str,
    url: String,
    tool: &'static str,
    /// The process to account CPU and memory to (none for DIRECT).
    pid: Option<u32>,
}

struct Run {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<u32>,
    cpu: Option<Duration>,
    rss: Option<u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i] as f64 / 1000.0
    }
}

async fn orchestrate(options: Options) {
    let legacy_up = Proc::start(role("upstream", &["--legacy-only"]), "listening on ");
    let modern_up = Proc::start(role("upstream", &[]), "listening on ");
    let forwarder = Proc::start(
        role(
            "forwarder",
            &[
                "--legacy",
                &legacy_up.address,
                "--modern",
                &modern_up.address,
            ],
        ),
        "listening on ",
    );
    let config =
        std::env::temp_dir().join(format!("switchboard-bench-{}.yaml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "listen: \"127.0.0.1:0\"\nsessionIdleTimeout: 1h\nupstreams:\n  - name: legacy\n    url: \"http://{}/mcp\"\n  - name: modern\n    url: \"http://{}/mcp\"\n",
            legacy_up.address, modern_up.address
        ),
    )
    .unwrap();
    let mut gateway_command = Command::new(&options.gateway);
    gateway_command
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn");
    let gateway = Proc::start(gateway_command, "listening on http://");
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http();
    wait_for_tools(&client, &gateway.address).await;
    let idle_rss = rss(gateway.pid());
    std::fs::remove_file(&config).ok();

    println!(
        "machine: {} cores, {}; upstream, forwarder, gateway and load generator share them",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    println!(
        "gateway idle RSS: {:.1} MiB; forwarder idle RSS: {:.1} MiB",
        idle_rss as f64 / 1048576.0,
        rss(forwarder.pid()) as f64 / 1048576.0
    );

    if let Some(count) = options.sessions {
        sessions_run(&client, &gateway, count).await;
        return;
    }

    println!(
        "\n{:<5} {:>4} {:<10} {:>9} {:>8} {:>8} {:>8} {:>10} {:>9} {:>9} {:>10} {:>8} {:>6}",
        "era",
        "conc",
        "path",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "+p50 ms",
        "×direct",
        "×fwd",
        "cpu ms/1k",
        "RSS MiB",
        "errors"
    );
    let mut broken = Vec::new();
    for era in &options.eras {
        let (upstream, path) = match era {
            Era::Legacy => (&legacy_up, "legacy"),
            Era::Modern => (&modern_up, "modern"),
        };
        let targets = [
            Target {
                name: "DIRECT",
                url: format!("http://{}/mcp", upstream.address),
                tool: "work",
                pid: None,
            },
            Target {
                name: "FORWARDER",
                url: format!("http://{}/{path}/mcp", forwarder.address),
                tool: "work",
                pid: Some(forwarder.pid()),
            },
            Target {
                name: "GATEWAY",
                url: format!("http://{}/mcp", gateway.address),
                tool: if *era == Era::Legacy {
                    "legacy_work"
                } else {
                    "modern_work"
                },
                pid: Some(gateway.pid()),
            },
        ];
        for &concurrency in &options.concurrency {
            let mut runs = Vec::new();
            for target in &targets {
                runs.push(load(&client, target, *era, concurrency, options.duration).await);
            }
            let (direct, forwarded) = (&runs[0], &runs[1]);
            for (target, run) in targets.iter().zip(&runs) {
                if run.errors > 0 || run.requests == 0 {
                    broken.push(format!("{} {} c={concurrency}", era.label(), target.name));
                }
                let added = run.percentile(0.5) - direct.percentile(0.5);
                let cpu_per_k = run
                    .cpu
                    .map(|cpu| {
                        format!(
                            "{:.1}",
                            cpu.as_secs_f64() * 1000.0 / run.requests as f64 * 1000.0
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                let rss = run
                    .rss
                    .map(|r| format!("{:.1}", r as f64 / 1048576.0))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<5} {:>4} {:<10} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>10.3} {:>9.2} {:>9.2} {:>10} {:>8} {:>6}",
                    era.label(),
                    concurrency,
                    target.name,
                    run.rate(),
                    run.percentile(0.5),
                    run.percentile(0.9),
                    run.percentile(0.99),
                    added,
                    run.rate() / direct.rate(),
                    run.rate() / forwarded.rate(),
                    cpu_per_k,
                    rss,
                    run.errors,
                );
            }
        }
    }
    // A smoke run (CI) fails on errors, never on speed.
    if !broken.is_empty() {
        eprintln!("calls failed in: {}", broken.join(", "));
        std::process::exit(1);
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

async fn wait_for_tools(client: &HttpClient, gateway: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = modern_body("tools/list", json!({}), 1);
        let request = modern_request(&format!("http://{gateway}/mcp"), "tools/list", None, body);
        if let Ok(response) = client.request(request).await {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&body);
            if text.contains("legacy_work") && text.contains("modern_work") {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never listed both upstreams"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn modern_body(method: &str, mut params: Value, id: u64) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "bench", "version": "0" },
    });
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

fn modern_request(
    url: &str,
    method: &str,
    name: Option<&str>,
    body: String,
) -> Request<Full<Bytes>> {
    let mut request = Request::post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    request.body(Full::new(Bytes::from(body))).unwrap()
}

fn legacy_request(url: &str, session: Option<&str>, body: String) -> Request<Full<Bytes>> {
    let mut request = Request::post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", LEGACY);
    }
    request.body(Full::new(Bytes::from(body))).unwrap()
}

/// A 2025 session: `initialize`, then `notifications/initialized`.
async fn open_session(client: &HttpClient, url: &str) -> Option<String> {
    let body = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": { "name": "bench", "version": "0" } } });
    let response = client
        .request(legacy_request(url, None, body.to_string()))
        .await
        .ok()?;
    let session = response
        .headers()
        .get("mcp-session-id")?
        .to_str()
        .ok()?
        .to_string();
    response.into_body().collect().await.ok()?;
    let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string();
    let response = client
        .request(legacy_request(url, Some(&session), note))
        .await
        .ok()?;
    response.into_body().collect().await.ok()?;
    Some(session)
}

/// One call; true when it succeeded.
async fn call(
    client: &HttpClient,
    target: &Target,
    era: Era,
    session: Option<&str>,
    id: u64,
) -> bool {
    let params = json!({ "name": target.tool, "arguments": {} });
    let request = match era {
        Era::Modern => modern_request(
            &target.url,
            "tools/call",
            Some(target.tool),
            modern_body("tools/call", params, id),
        ),
        Era::Legacy => {
            let body =
                json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params });
            legacy_request(&target.url, session, body.to_string())
        }
    };
    let Ok(response) = client.request(request).await else {
        return false;
    };
    let ok = response.status() == StatusCode::OK;
    match response.into_body().collect().await {
        Ok(body) => ok && body.to_bytes().windows(8).any(|w| w == b"\"result\""),
        Err(_) => false,
    }
}

async fn load(
    client: &HttpClient,
    target: &Target,
    era: Era,
    concurrency: usize,
    duration: Duration,
) -> Run {
    // Sessions are opened before the clock starts.
    let mut sessions = Vec::new();
    for _ in 0..concurrency {
        sessions.push(match era {
            Era::Legacy => Some(open_session(client, &target.url).await.expect("a session")),
            Era::Modern => None,
        });
    }
    // Warm the connections and caches, outside the measurement.
    for session in &sessions {
        call(client, target, era, session.as_deref(), 0).await;
    }
    let cpu_before = target.pid.map(cpu_time);
    let started = Instant::now();
    let stop = started + duration;
    let workers: Vec<_> = sessions
        .into_iter()
        .map(|session| {
            let client = client.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut id = 1;
                while Instant::now() < stop {
                    let sent = Instant::now();
                    if call(&client, &target, era, session.as_deref(), id).await {
                        latencies.push(sent.elapsed().as_micros() as u32);
                    } else {
                        errors += 1;
                    }
                    id += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut l, e) = worker.await.unwrap();
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let cpu = target
        .pid
        .zip(cpu_before)
        .map(|(pid, before)| cpu_time(pid).saturating_sub(before));
    latencies.sort_unstable();
    Run {
        requests: latencies.len() as u64,
        errors,
        elapsed,
        latencies,
        cpu,
        rss: target.pid.map(rss),
    }
}

/// Memory of many concurrent 2025 sessions, each having called one tool.
async fn sessions_run(client: &HttpClient, gateway: &Proc, count: usize) {
    let url = format!("http://{}/mcp", gateway.address);
    let before = rss(gateway.pid());
    let target = Target {
        name: "GATEWAY",
        url: url.clone(),
        tool: "legacy_work",
        pid: Some(gateway.pid()),
    };
    let opened = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let workers = 32;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let client = client.clone();
            let url = url.clone();
            let target = target.clone();
            let opened = opened.clone();
            let failed = failed.clone();
            tokio::spawn(async move {
                for _ in (w..count).step_by(workers) {
                    match open_session(&client, &url).await {
                        Some(session)
                            if call(&client, &target, Era::Legacy, Some(&session), 1).await =>
                        {
                            opened.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let after = rss(gateway.pid());
    let opened = opened.load(Ordering::Relaxed);
    println!(
        "sessions: {opened} opened and used ({} failed); gateway RSS {:.1} MiB before, {:.1} MiB after, {:.1} KiB per session",
        failed.load(Ordering::Relaxed),
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        (after.saturating_sub(before)) as f64 / 1024.0 / opened.max(1) as f64
    );
}
