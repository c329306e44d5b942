//! Churn harness: do sessions that come and go leave memory behind?
//! Sixteen workers each loop over opening a 2025 session with the release
//! gateway, calling a tool on a 2025 upstream (which gives the session an
//! upstream session of its own) and on a 2026-07-28 one, and deleting the
//! session, for a while; the gateway's RSS is sampled every second.
//!
//! ```text
//! cargo bench --bench churn                    # 16 workers × 60 s
//! cargo bench --bench churn -- --duration 20 --workers 8
//! ```
//!
//! Printed: sessions per second, RSS after warm-up (at 10 s, or a third of
//! a shorter run) and at the end, and their ratio (flat means within 10 %),
//! and the gateway's live counts (`/status`) before and after, which must
//! be equal: the run fails if they are not, or if any request failed,
//! never on speed or memory (a smoke run in CI is too short to judge them).
//!
//! As in `benches/load.rs`, the upstreams and the gateway are separate
//! processes (the harness re-executes itself with `--role upstream`), so
//! the gateway's RSS is its own; everything listens on loopback.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

mod common;
use common::*;

/// When RSS is taken as warmed up (or a third of a shorter run).
const WARM_UP: Duration = Duration::from_secs(10);
/// RSS at the end within this share of RSS after warm-up: flat.
const FLAT: f64 = 0.10;

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
        .expect("a runtime");
    if value("--role").as_deref() == Some("upstream") {
        runtime.block_on(upstream(args.iter().any(|a| a == "--legacy-only")));
        return;
    }
    let duration = Duration::from_secs_f64(
        value("--duration").map_or(60.0, |d| d.parse().expect("--duration seconds")),
    );
    let workers = value("--workers").map_or(16, |w| w.parse().expect("--workers count"));
    let gateway = value("--gateway").unwrap_or_else(|| env!("CARGO_BIN_EXE_switchboard").into());
    let ok = runtime.block_on(churn(duration, workers, &gateway));
    if !ok {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// The upstream: answers at once; a 2025 one issues session ids and takes
// DELETE, as a real one does.
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// The orchestrator.
// ---------------------------------------------------------------------------

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// Runs the churn; false when a request failed or the gateway's live
/// counts did not come back.
async fn churn(duration: Duration, workers: usize, gateway_binary: &str) -> bool {
    let upstream = |legacy: bool| {
        let mut command = Command::new(std::env::current_exe().expect("this harness"));
        command.args(["--role", "upstream"]);
        if legacy {
            command.arg("--legacy-only");
        }
        Proc::start(command, "listening on ")
    };
    let legacy_up = upstream(true);
    let modern_up = upstream(false);
    let config =
        std::env::temp_dir().join(format!("switchboard-churn-{}.yaml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "listen: \"127.0.0.1:0\"\nsessionIdleTimeout: 1h\nupstreams:\n  - name: legacy\n    url: \"http://{}/mcp\"\n  - name: modern\n    url: \"http://{}/mcp\"\n",
            legacy_up.address, modern_up.address
        ),
    )
    .expect("write the config");
    let mut command = Command::new(gateway_binary);
    command
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn");
    let gateway = Proc::start(command, "listening on http://");
    let pid = gateway.child.id();
    let base = format!("http://{}", gateway.address);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    wait_for_tools(&client, &base).await;
    std::fs::remove_file(&config).ok();
    let before = live(&client, &base).await;

    println!(
        "machine: {} cores; upstreams, gateway and load generator share them",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("gateway idle RSS: {:.1} MiB", mib(rss(pid)));

    let sessions = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let stop = started + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let client = client.clone();
            let url = format!("{base}/mcp");
            let sessions = sessions.clone();
            let failed = failed.clone();
            tokio::spawn(async move {
                while Instant::now() < stop {
                    if one_session(&client, &url).await {
                        sessions.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // One sample a second, the last at the end of the run.
    let mut samples = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    while Instant::now() < stop {
        ticker.tick().await;
        samples.push((started.elapsed(), rss(pid)));
    }
    for task in tasks {
        task.await.expect("a worker");
    }
    let elapsed = started.elapsed();
    samples.push((elapsed, rss(pid)));

    let sessions = sessions.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "churn: {workers} workers × {:.0} s: {sessions} sessions opened, used and deleted ({:.0}/s), {failed} failed",
        elapsed.as_secs_f64(),
        sessions as f64 / elapsed.as_secs_f64()
    );
    let line: Vec<String> = samples
        .iter()
        .map(|(_, bytes)| format!("{:.1}", mib(*bytes)))
        .collect();
    println!("RSS MiB each second: {}", line.join(" "));
    let warm_at = WARM_UP.min(duration / 3);
    let warm = samples
        .iter()
        .find(|(at, _)| *at >= warm_at)
        .or(samples.first())
        .map_or(0, |(_, bytes)| *bytes);
    let (end_at, end) = samples.last().copied().unwrap_or_default();
    let peak = samples.iter().map(|(_, bytes)| *bytes).max().unwrap_or(0);
    let ratio = end as f64 / warm.max(1) as f64;
    println!(
        "RSS after warm-up ({:.0} s): {:.1} MiB; at the end ({:.0} s): {:.1} MiB; end/warm-up {ratio:.3} ({}); peak {:.1} MiB",
        warm_at.as_secs_f64(),
        mib(warm),
        end_at.as_secs_f64(),
        mib(end),
        if (ratio - 1.0).abs() <= FLAT {
            "flat within 10 %"
        } else {
            "NOT flat within 10 %"
        },
        mib(peak)
    );

    // Deleted sessions are torn down in the background: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let after = live(&client, &base).await;
        if after == before || Instant::now() >= deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("live counts before: {before}");
    println!("live counts after:  {after}");
    let mut ok = true;
    if after != before {
        eprintln!("the gateway's live counts did not return to where they were");
        ok = false;
    }
    if failed > 0 || sessions == 0 {
        eprintln!("{failed} sessions failed, {sessions} succeeded");
        ok = false;
    }
    ok
}

/// Opens a 2025 session, calls a tool on each upstream, deletes the
/// session; true when every step worked.
async fn one_session(client: &HttpClient, url: &str) -> bool {
    let initialize = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LEGACY, "capabilities": {},
        "clientInfo": { "name": "churn", "version": "0" } } });
    let Some((status, headers, _)) = exchange(client, "POST", url, None, Some(initialize)).await
    else {
        return false;
    };
    let Some(session) = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return false;
    };
    if status != StatusCode::OK {
        return false;
    }
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    if !matches!(
        exchange(client, "POST", url, Some(&session), Some(initialized)).await,
        Some((StatusCode::ACCEPTED, _, _))
    ) {
        return false;
    }
    for (id, tool) in [(1, "legacy_work"), (2, "modern_work")] {
        let call = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call",
                           "params": { "name": tool, "arguments": {} } });
        match exchange(client, "POST", url, Some(&session), Some(call)).await {
            Some((StatusCode::OK, _, body)) if body.windows(8).any(|w| w == b"\"result\"") => {}
            _ => return false,
        }
    }
    matches!(
        exchange(client, "DELETE", url, Some(&session), None).await,
        Some((StatusCode::OK, _, _))
    )
}

/// One request as a 2025 client; the status, headers and body.
async fn exchange(
    client: &HttpClient,
    method: &str,
    url: &str,
    session: Option<&str>,
    body: Option<Value>,
) -> Option<(StatusCode, http::HeaderMap, Bytes)> {
    let mut request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", LEGACY);
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let request = request.body(Full::new(body)).ok()?;
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .ok()?
        .ok()?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.ok()?.to_bytes();
    Some((parts.status, parts.headers, body))
}

/// The `live` object of the gateway's `/status`.
async fn live(client: &HttpClient, base: &str) -> Value {
    let request = Request::get(format!("{base}/status"))
        .body(Full::new(Bytes::new()))
        .expect("a request");
    let Ok(response) = client.request(request).await else {
        return Value::Null;
    };
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    serde_json::from_slice::<Value>(&body).map_or(Value::Null, |status| status["live"].clone())
}

async fn wait_for_tools(client: &HttpClient, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {} } } });
        let request = Request::post(format!("{base}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "tools/list")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a request");
        if let Ok(response) = client.request(request).await
            && let Ok(body) = response.into_body().collect().await
        {
            let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
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
