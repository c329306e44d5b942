//! One client per upstream MCP server: probes its era once, keeps the
//! gateway's own session with it (for lists and for callers without a
//! session), and forwards calls over its transport.
//!
//! `http`, `legacy_sse` and `stdio` move bytes; the rest owns the
//! protocol: `connect` (the era probe, the `initialize` handshake, the
//! lists), `request` (one message through the right session, with the one
//! retry after a lost session), `shared` (which session a caller uses),
//! `watch` (change notifications), `cancel` (telling the upstream a request
//! was dropped).

mod cancel;
mod connect;
mod duplex;
pub mod endpoints;
pub mod http;
pub mod in_process;
pub mod legacy_sse;
mod request;
pub mod session;
mod shared;
pub mod stdio;
mod watch;

pub use cancel::InFlight;
pub use in_process::InProcessServer;
pub use watch::{Signal, WatchEnd};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ::http::{HeaderName, HeaderValue, StatusCode};
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{LegacySse, TransportSpec, UpstreamSpec};
use crate::jsonrpc;
use crate::protocol::{self, Era, Relayable};
use session::{SessionSlot, UpstreamSession};
use shared::AskingSession;

/// Why a call to an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("unreachable: {0}")]
    Connect(String),
    #[error("did not answer in time")]
    Timeout,
    #[error("session expired upstream")]
    SessionLost,
    #[error("answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// A JSON-RPC error in answer to one of the gateway's own requests.
    #[error("answered with an error: {0}")]
    Rpc(Value),
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection broke after the request was sent: it may have run.
    #[error("connection lost mid-call (the call may have run): {0}")]
    Broken(String),
    #[error("not ready: {0}")]
    NotReady(String),
}

/// An upstream's answer, with ids already those of the caller.
pub enum Reply {
    /// One JSON-RPC response, serialised, with the HTTP status it came
    /// with (a 2026 upstream answers some errors with 400 or 404).
    Json {
        body: Bytes,
        status: StatusCode,
        session_id: Option<HeaderValue>,
    },
    /// Messages in order (notifications, then the response).
    Stream {
        messages: mpsc::Receiver<Result<Value, UpstreamError>>,
        session_id: Option<HeaderValue>,
    },
    /// A notification or response was accepted.
    Accepted,
}

/// Who is calling, as far as the upstream needs to know.
/// The default is the gateway itself: the shared session, no client.
#[derive(Default)]
pub struct Caller<'a> {
    /// The client's own session slot with this upstream (legacy client
    /// sessions); `None` uses the gateway's shared session.
    pub slot: Option<&'a SessionSlot>,
    /// The client's `clientInfo`, passed on so upstream logs name it.
    pub client_info: Option<&'a Value>,
    /// The level a 2025 client set with `logging/setLevel`, which a modern
    /// upstream takes per request.
    pub log_level: Option<&'a str>,
    /// What a 2025 client declared it can answer; a modern client's
    /// per-request `_meta` already says so.
    pub client_capabilities: Option<&'a Value>,
    /// What the caller can be asked: a caller without a session of its
    /// own (a 2026-07-28 client, the gateway's lists for such clients)
    /// goes on the shared session that declares the same.
    pub asks: Relayable,
}

/// One call to forward.
pub struct Call<'a> {
    /// The JSON-RPC request or notification as the upstream must see it.
    pub message: Value,
    /// `Mcp-Param-*` headers from the client, forwarded untouched.
    pub forwarded: &'a [(HeaderName, HeaderValue)],
    pub caller: Caller<'a>,
}

enum Link {
    Http(http::HttpLink),
    /// The gateway's own cluster tools, answered in-process.
    Builtin(Arc<dyn InProcessServer>),
    Sse(legacy_sse::SseLink),
    Stdio(stdio::StdioLink),
}

impl Link {
    /// Sends a notification (best effort, bounded): on a 2025 session its
    /// id goes along; a stdio child has one session anyway.
    async fn notify(&self, notification: &Value, session: Option<&UpstreamSession>) {
        let deadline = Instant::now() + Duration::from_secs(5);
        match self {
            Link::Http(link) => {
                let headers = http::PostHeaders {
                    version: session.map(|s| &s.version),
                    session: session.and_then(|s| s.id.as_ref()),
                    method: notification.get("method").and_then(Value::as_str),
                    name: None,
                    forwarded: &[],
                    endpoint: session.and_then(|s| s.endpoint),
                };
                let body = Bytes::from(notification.to_string());
                let _ = link.post(body, &headers, None, deadline, None).await;
            }
            Link::Sse(_) => {
                if let Some(connection) = session.and_then(|s| s.sse.as_ref()) {
                    let _ = connection
                        .duplex
                        .call(&**connection, notification, None, deadline, None)
                        .await;
                }
            }
            Link::Stdio(link) => {
                let _ = link.send(notification, None, deadline, None, None).await;
            }
            Link::Builtin(_) => {}
        }
    }
}

pub struct Upstream {
    pub spec: UpstreamSpec,
    pub name: Arc<str>,
    pub prefix: Arc<str>,
    link: Arc<Link>,
    /// For a URL ending in `/sse` with no `transport`: HTTP+SSE, used once
    /// the Streamable HTTP probe has failed.
    sse_fallback: Option<Arc<Link>>,
    on_fallback: AtomicBool,
    /// The era found by the last successful probe.
    era: ArcSwapOption<Era>,
    /// The gateway's own session (legacy upstreams).
    shared: SessionSlot,
    /// The gateway's sessions that declare what their callers can answer:
    /// one per non-empty set of relayable capabilities (sampling,
    /// elicitation, roots; see [`Relayable`]), opened on first use and
    /// shared by every caller without a session of its own (2026-07-28
    /// clients) that declares that set, so that the upstream asks them what
    /// it would ask them directly (`relay::input` carries the asking).
    asking: [AskingSession; Relayable::SETS - 1],
    /// The ready pods of a Kubernetes Service upstream.
    endpoints: Option<Arc<endpoints::Endpoints>>,
    /// Source of ids for requests the gateway originates or re-numbers.
    next_id: AtomicU64,
    /// Slots for client requests in flight (`maxConcurrency`).
    pub slots: Arc<tokio::sync::Semaphore>,
}

/// Time allowed for the probe and list fetches of one upstream.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

impl Upstream {
    pub fn new(
        spec: UpstreamSpec,
        client: crate::net::HttpClient,
        builtin: Option<&Arc<dyn InProcessServer>>,
    ) -> Result<Upstream, String> {
        let mut sse_fallback = None;
        let mut pods = None;
        let link = match &spec.transport {
            TransportSpec::Http {
                url,
                headers,
                legacy_sse,
                ca_pem,
                dial_pods,
            } => {
                pods = dial_pods.then(Arc::default);
                let https = url.starts_with("https:");
                // Dialing a pod by address, TLS still verifies the name the
                // URL gives (the Service's certificate).
                let server_name = if https && *dial_pods {
                    url.parse::<::http::Uri>()
                        .ok()
                        .and_then(|u| u.host().map(str::to_owned))
                } else {
                    None
                };
                let client = if ca_pem.is_some() || server_name.is_some() {
                    crate::net::client::client_with(ca_pem.as_deref(), server_name.as_deref())
                        .map_err(|e| format!("{}: {e}", spec.name))?
                } else {
                    client
                };
                let http = http::HttpLink::new(client, url, headers, pods.clone())?;
                let sse = || Link::Sse(legacy_sse::SseLink::beside(&http, spec.name.clone()));
                match legacy_sse {
                    LegacySse::Always => sse(),
                    LegacySse::Detect => {
                        sse_fallback = Some(Arc::new(sse()));
                        Link::Http(http)
                    }
                    LegacySse::Never => Link::Http(http),
                }
            }
            TransportSpec::Builtin => Link::Builtin(
                builtin
                    .cloned()
                    .ok_or_else(|| format!("{}: the cluster tools are not running", spec.name))?,
            ),
            TransportSpec::Stdio { command, args, env } => Link::Stdio(stdio::StdioLink::new(
                spec.name.clone(),
                command.clone(),
                args.clone(),
                env.clone(),
            )),
        };
        Ok(Upstream {
            name: Arc::from(spec.name.as_str()),
            prefix: Arc::from(spec.prefix.as_str()),
            slots: Arc::new(tokio::sync::Semaphore::new(spec.max_concurrency)),
            spec,
            link: Arc::new(link),
            sse_fallback,
            on_fallback: AtomicBool::new(false),
            era: ArcSwapOption::empty(),
            shared: SessionSlot::shared(),
            asking: Default::default(),
            endpoints: pods,
            next_id: AtomicU64::new(1),
        })
    }

    /// Updates the ready pods of a Kubernetes Service upstream; true when
    /// the set changed (a rollout: the caller re-fetches the lists).
    pub fn set_endpoints(&self, ready: Vec<SocketAddr>) -> bool {
        self.endpoints.as_ref().is_some_and(|e| e.set(ready))
    }

    /// A pod for a new session (None when the upstream is not a Service).
    fn pick_endpoint(&self) -> Result<Option<SocketAddr>, UpstreamError> {
        self.endpoints.as_ref().map(|e| e.pick()).transpose()
    }

    /// False when the session's pod has left the ready set.
    fn on_ready_endpoint(&self, session: &UpstreamSession) -> bool {
        match (&self.endpoints, session.endpoint) {
            (Some(endpoints), Some(endpoint)) => endpoints.is_ready(endpoint),
            _ => true,
        }
    }

    pub fn era(&self) -> Option<Arc<Era>> {
        self.era.load_full()
    }

    /// The transport in use (HTTP+SSE once detection chose it).
    fn link(&self) -> &Arc<Link> {
        match &self.sse_fallback {
            Some(sse) if self.on_fallback.load(Ordering::Acquire) => sse,
            _ => &self.link,
        }
    }
}

/// The `_meta` keys the gateway sends as a 2026-07-28 client of its own.
fn gateway_meta() -> Value {
    json!({
        protocol::META_PROTOCOL_VERSION: protocol::MODERN,
        protocol::META_CLIENT_CAPABILITIES: {},
        protocol::META_CLIENT_INFO: protocol::implementation(),
    })
}

/// Waits for the response to `id` in a reply (skipping notifications).
pub async fn single_response(reply: Reply, id: &Value) -> Result<Value, UpstreamError> {
    match reply {
        Reply::Json { body, .. } => serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::Protocol(format!("response is not JSON: {e}"))),
        Reply::Accepted => Err(UpstreamError::Protocol(
            "202 where a response was due".into(),
        )),
        Reply::Stream { mut messages, .. } => {
            while let Some(message) = messages.recv().await {
                let message = message?;
                if jsonrpc::is_response(&message) && message.get("id") == Some(id) {
                    return Ok(message);
                }
            }
            Err(UpstreamError::Broken(
                "stream ended without a response".into(),
            ))
        }
    }
}

fn response_result(response: Value) -> Result<Value, UpstreamError> {
    if let Some(error) = response.get("error") {
        return Err(UpstreamError::Rpc(error.clone()));
    }
    response
        .get("result")
        .cloned()
        .ok_or_else(|| UpstreamError::Protocol("response has neither result nor error".into()))
}
