//! The load: a loop per client and upstream, recording every call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::{
    CALL_DEADLINE, CLIENTS_PER_ERA, Client, MAX_CALLS, MAX_RUN, Outcome, PACE, Record, Run, STEADY,
    Target,
};
use crate::support::{HttpResponse, initialize, legacy_headers, modern_headers};

/// The running load.
pub struct Load {
    started: Instant,
    pub clients: Vec<Client>,
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Opens the 2025 clients' sessions, then starts a loop per client and
    /// target: a client calls each upstream on its own, so that a slow one
    /// does not hold up its calls to the other.
    pub async fn start(mcp: &str, targets: &[Target]) -> Load {
        let mut clients = Vec::new();
        for index in 0..2 * CLIENTS_PER_ERA {
            let session = if index % 2 == 0 {
                Some(initialize(mcp).await)
            } else {
                None
            };
            clients.push(Client { index, session });
        }
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut loops = Vec::new();
        for client in &clients {
            for target in targets {
                // Staggered and each at its own pace: loops in lockstep leave
                // moments with no call in flight.
                let offset = Duration::from_millis(5 * loops.len() as u64);
                let pace = PACE + Duration::from_millis(3 * client.index as u64);
                loops.push(tokio::spawn(client_loop(
                    mcp.to_string(),
                    client.clone(),
                    *target,
                    (offset, pace),
                    records.clone(),
                    stop.clone(),
                )));
            }
        }
        Load {
            started: Instant::now(),
            clients,
            records,
            stop,
            loops,
        }
    }

    /// Once every client has been served again by each of `failed` since
    /// `recovered` (waiting at most 15 s), runs on for [`STEADY`], stops,
    /// and prints the figures.
    pub async fn finish(
        self,
        title: &str,
        fault: Instant,
        recovered: Instant,
        failed: &[&str],
    ) -> Run {
        for upstream in failed {
            self.wait_until_served(upstream, recovered, Duration::from_secs(15))
                .await;
        }
        tokio::time::sleep(STEADY).await;
        self.stop.store(true, Ordering::SeqCst);
        for client_loop in self.loops {
            client_loop.await.expect("a client loop panicked");
        }
        let mut records = std::mem::take(&mut *self.records.lock().unwrap());
        records.sort_by_key(|r| r.ended);
        let run = Run {
            start: self.started,
            fault,
            recovered,
            clients: self.clients,
            records,
        };
        run.print(title);
        run
    }

    async fn wait_until_served(&self, upstream: &str, since: Instant, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let waiting: Vec<usize> = {
                let records = self.records.lock().unwrap();
                let served = |client: usize| {
                    records.iter().any(|r| {
                        r.client == client
                            && r.upstream == upstream
                            && r.ended >= since
                            && r.outcome.is_ok()
                    })
                };
                self.clients
                    .iter()
                    .map(|c| c.index)
                    .filter(|&c| !served(c))
                    .collect()
            };
            if waiting.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let records = self.records.lock().unwrap();
                let last: Vec<String> = records
                    .iter()
                    .rev()
                    .filter(|r| r.upstream == upstream)
                    .take(5)
                    .map(|r| r.outcome.kind())
                    .collect();
                panic!(
                    "clients {waiting:?} not served by {upstream} within {within:?} of its recovery; its last outcomes: {last:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

pub fn http_client() -> HttpClient {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

/// One client calling one upstream until told to stop, over keep-alive
/// connections of its own, as a real client would.
async fn client_loop(
    mcp: String,
    client: Client,
    target: Target,
    (offset, pace): (Duration, Duration),
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
) {
    let http = http_client();
    let begun = Instant::now();
    tokio::time::sleep(offset).await;
    for n in 0..MAX_CALLS {
        if stop.load(Ordering::SeqCst) || begun.elapsed() > MAX_RUN {
            return;
        }
        let started = Instant::now();
        let outcome = call(&http, &mcp, &client, target, n).await;
        records.lock().unwrap().push(Record {
            client: client.index,
            era: client.era(),
            upstream: target.upstream,
            started,
            ended: Instant::now(),
            outcome,
        });
        tokio::time::sleep(pace).await;
    }
}

/// One `tools/call` in the client's era.
pub(super) async fn call(
    http: &HttpClient,
    mcp: &str,
    client: &Client,
    target: Target,
    n: usize,
) -> Outcome {
    let (name, arguments, expected) = target.call(client.index, n);
    let mut params = json!({ "name": name, "arguments": arguments });
    let headers = match &client.session {
        Some(session) => legacy_headers(Some(session)),
        None => {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            });
            modern_headers("tools/call", Some(&name))
        }
    };
    // A 2025 session's two loops share it: their ids must differ.
    let id = format!("{}-{n}", target.upstream);
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params });
    let mut request = http::Request::post(mcp);
    for (header, value) in &headers {
        request = request.header(header.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let exchange = async {
        let response = http.request(request).await.map_err(|e| causes(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| causes(&e))?;
        Ok::<_, String>(HttpResponse {
            status,
            headers,
            body: body.to_bytes(),
        })
    };
    match tokio::time::timeout(CALL_DEADLINE, exchange).await {
        Err(_) => Outcome::Transport(format!("no answer within {CALL_DEADLINE:?}")),
        Ok(Err(error)) => Outcome::Transport(error),
        Ok(Ok(response)) => classify(&response, &expected),
    }
}

fn classify(response: &HttpResponse, expected: &str) -> Outcome {
    let message = response.json();
    if let Some(error) = message.get("error") {
        return Outcome::Rpc {
            status: response.status,
            code: error["code"].as_i64().unwrap_or_default(),
            message: error["message"].as_str().unwrap_or_default().to_string(),
            upstream: error["data"]["upstream"].as_str().map(str::to_string),
        };
    }
    if response.status == 200
        && message.pointer("/result/content/0/text") == Some(&json!(expected))
        && message["result"]["isError"] != true
    {
        return Outcome::Ok;
    }
    let body = String::from_utf8_lossy(&response.body);
    Outcome::Other {
        status: response.status,
        body: body.chars().take(200).collect(),
    }
}

/// An error and its causes, on one line.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
