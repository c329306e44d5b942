//! One client per upstream MCP server: probes its era once, keeps the
//! gateway's own session with it (for lists and for callers without a
//! session), and forwards calls over its transport.
//!
//! `http` and `stdio` move bytes; this module owns the protocol: the era
//! probe, the `initialize` handshake, session affinity and the one retry
//! after a lost session.

mod cancel;
mod connect;
mod duplex;
pub mod endpoints;
pub mod http;
pub mod in_process;
pub mod legacy_sse;
pub mod session;
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

    /// Forwards one client call; the reply carries the client's ids.
    pub async fn call(&self, call: Call<'_>) -> Result<Reply, UpstreamError> {
        let deadline = Instant::now() + self.spec.timeout;
        let client_id = call.message.get("id").cloned();
        let (reply, sent_id) = self
            .request(call.message, call.forwarded, call.caller, deadline)
            .await?;
        match client_id {
            Some(client_id) if client_id != sent_id => Ok(renumber(reply, sent_id, client_id)),
            _ => Ok(reply),
        }
    }

    /// Sends a message in the upstream's era, through the caller's session
    /// or the shared one, re-numbering the id when the session is shared.
    /// Returns the reply and the id it was sent under.
    async fn request(
        &self,
        mut message: Value,
        forwarded: &[(HeaderName, HeaderValue)],
        caller: Caller<'_>,
        deadline: Instant,
    ) -> Result<(Reply, Value), UpstreamError> {
        let era = self
            .era()
            .ok_or_else(|| UpstreamError::NotReady("not connected yet".into()))?;
        let has_method = message.get("method").is_some_and(Value::is_string);
        let is_request = message.get("id").is_some() && has_method;
        let shared = caller.slot.is_none() || matches!(**self.link(), Link::Stdio(_));
        // Ids of different clients may collide on a shared session. A 2026
        // upstream over HTTP has none: each request is its own exchange,
        // answered on its own response, so the client's id goes as it is
        // (and the answer needs no re-writing).
        let stateless_http = *era == Era::Modern && matches!(**self.link(), Link::Http(_));
        if is_request && shared && !stateless_http {
            message["id"] = self.fresh_id();
        }
        let sent_id = message.get("id").cloned().unwrap_or(Value::Null);

        if *era == Era::Modern {
            if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
                ensure_modern_meta(params, &caller);
            } else if has_method {
                message["params"] = json!({ "_meta": gateway_meta() });
            }
            let version = HeaderValue::from_static(protocol::MODERN);
            // Over HTTP, dropping the request is the cancellation; a stdio
            // child needs to be told.
            let in_flight = (is_request && matches!(**self.link(), Link::Stdio(_)))
                .then(|| InFlight::new(self.link().clone(), sent_id.clone(), None));
            // `exchange` derives `Mcp-Name` from the (already unprefixed) body.
            return self
                .exchange(
                    &message,
                    Some(&version),
                    None,
                    forwarded,
                    deadline,
                    in_flight,
                )
                .await
                .map(|reply| (reply, sent_id));
        }

        // A 2025 upstream must not see a modern client's per-request keys:
        // the session already negotiated what they say.
        if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
            protocol::strip_modern_meta(params);
        }
        let slot = if shared {
            self.shared_for(caller.asks)
        } else {
            caller.slot.unwrap_or(&self.shared)
        };
        // A shared session that declares capabilities says so in its
        // handshake, under the gateway's own name.
        let declared = (shared && !caller.asks.is_empty())
            .then(|| (protocol::implementation(), caller.asks.declared()));
        let client = match (shared, caller.client_info, &declared) {
            (false, Some(info), _) => {
                Some((info, caller.client_capabilities.unwrap_or(&Value::Null)))
            }
            (true, _, Some((info, capabilities))) => Some((info, capabilities)),
            _ => None,
        };
        for attempt in 0..2 {
            // Boxed: a handshake happens once per session, and inline it
            // would double the size of every call's future.
            let session = slot
                .get_or_init(|| Box::pin(self.initialize(client, deadline)))
                .await?;
            if attempt == 0 && !self.on_ready_endpoint(&session) {
                // Its pod is gone (a rollout): a new session on a ready pod,
                // without the client noticing.
                tracing::info!(upstream = %self.name, "upstream session's pod left; moving the session");
                slot.invalidate(&session).await;
                continue;
            }
            let in_flight = is_request.then(|| {
                InFlight::new(self.link().clone(), sent_id.clone(), Some(session.clone()))
            });
            let result = self
                .exchange(
                    &message,
                    Some(&session.version),
                    Some(&session),
                    forwarded,
                    deadline,
                    in_flight,
                )
                .await;
            match result {
                Err(UpstreamError::SessionLost) if attempt == 0 => {
                    // Refused because the session is gone, so it never ran:
                    // open a new session and retry once.
                    tracing::info!(upstream = %self.name, "upstream session lost; re-initializing");
                    slot.invalidate(&session).await;
                }
                other => return other.map(|reply| (reply, sent_id.clone())),
            }
        }
        Err(UpstreamError::SessionLost)
    }

    /// One message over the transport, with the headers its era needs.
    async fn exchange(
        &self,
        message: &Value,
        version: Option<&HeaderValue>,
        session: Option<&UpstreamSession>,
        forwarded: &[(HeaderName, HeaderValue)],
        deadline: Instant,
        in_flight: Option<InFlight>,
    ) -> Result<Reply, UpstreamError> {
        let expect_id = if message.get("method").is_some() {
            message.get("id").cloned()
        } else {
            None
        };
        match &**self.link() {
            Link::Http(link) => {
                let method = message.get("method").and_then(Value::as_str);
                let name = method
                    .and_then(protocol::routed_name_key)
                    .and_then(|key| message.get("params")?.get(key)?.as_str());
                let headers = http::PostHeaders {
                    version,
                    session: session.and_then(|s| s.id.as_ref()),
                    method,
                    name,
                    forwarded,
                    endpoint: session.and_then(|s| s.endpoint),
                };
                // Sized for a typical call, so that writing it rarely regrows.
                let mut body = Vec::with_capacity(512);
                serde_json::to_writer(&mut body, message)
                    .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
                let body = Bytes::from(body);
                link.post(body, &headers, expect_id, deadline, in_flight)
                    .await
            }
            Link::Sse(_) => {
                let Some(connection) = session.and_then(|s| s.sse.as_ref()) else {
                    return Err(UpstreamError::NotReady("no HTTP+SSE session yet".into()));
                };
                if connection.duplex.is_closed() {
                    // The stream is the session: gone, so re-initialize.
                    if let Some(in_flight) = in_flight {
                        in_flight.done();
                    }
                    return Err(UpstreamError::SessionLost);
                }
                connection
                    .duplex
                    .call(&**connection, message, expect_id, deadline, in_flight)
                    .await
            }
            Link::Stdio(link) => {
                let generation = session.map(|s| s.generation);
                link.send(message, expect_id, deadline, generation, in_flight)
                    .await
            }
            Link::Builtin(tools) => {
                let answer = tokio::time::timeout_at(deadline, tools.handle(message))
                    .await
                    .map_err(|_| UpstreamError::Timeout)?;
                Ok(match answer {
                    Some(response) => Reply::Json {
                        body: Bytes::from(response.to_string()),
                        status: StatusCode::OK,
                        session_id: None,
                    },
                    None => Reply::Accepted,
                })
            }
        }
    }

    /// The current generation of the transport (stdio: the child process).
    fn generation(&self) -> u64 {
        match &**self.link() {
            Link::Http(_) | Link::Sse(_) | Link::Builtin(_) => 0,
            Link::Stdio(link) => link.generation(),
        }
    }

    /// Answers a server-initiated request (sampling, elicitation, roots)
    /// with an error on the session it came from: the gateway does not
    /// relay these yet, and an unanswered request would hang the call.
    pub async fn refuse_server_request(&self, slot: Option<&SessionSlot>, request: &Value) {
        let method = request.get("method").and_then(Value::as_str).unwrap_or("?");
        tracing::info!(upstream = %self.name, method, "refusing a server-initiated request");
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let error = json!({ "error": {
            "code": jsonrpc::METHOD_NOT_FOUND,
            "message": format!("the client behind switchboard cannot answer {method}"),
        }});
        self.answer_server_request(slot, id, error).await;
    }

    /// Sends the answer (`{"result": ..}` or `{"error": ..}`) to a request
    /// the upstream made, on the session the request came from.
    pub async fn answer_server_request(
        &self,
        slot: Option<&SessionSlot>,
        id: Value,
        answer: Value,
    ) {
        let mut response = json!({ "jsonrpc": "2.0", "id": id });
        if let Some(fields) = answer.as_object() {
            for (key, value) in fields {
                if key == "result" || key == "error" {
                    response[key] = value.clone();
                }
            }
        }
        let session = slot.unwrap_or(&self.shared).peek();
        let version = session
            .as_ref()
            .map(|s| s.version.clone())
            .unwrap_or_else(|| HeaderValue::from_static(protocol::MODERN));
        let deadline = Instant::now() + Duration::from_secs(5);
        let sent = self
            .exchange(
                &response,
                Some(&version),
                session.as_deref(),
                &[],
                deadline,
                None,
            )
            .await;
        if let Err(error) = sent {
            tracing::warn!(upstream = %self.name, "could not deliver an answer: {error}");
        }
    }

    /// Opens a 2025 client's own upstream session now rather than on first
    /// use (sealed session ids carry it to every replica). `None` when
    /// there is nothing to pin: a 2026 upstream has no sessions, and stdio
    /// and HTTP+SSE sessions cannot move between replicas.
    pub async fn open_client_session(
        &self,
        client_info: &Value,
        capabilities: &Value,
    ) -> Result<Option<Arc<UpstreamSession>>, UpstreamError> {
        let legacy = self.era().is_some_and(|e| *e != Era::Modern);
        if !legacy || !matches!(**self.link(), Link::Http(_)) {
            return Ok(None);
        }
        let deadline = Instant::now() + self.spec.timeout;
        let session = self
            .initialize(Some((client_info, capabilities)), deadline)
            .await?;
        Ok(Some(Arc::new(session)))
    }

    /// Calls one tool on the gateway's own session and returns the
    /// `CallToolResult` (the command line's `switchboard call`).
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<Value, UpstreamError> {
        let message = json!({
            "jsonrpc": "2.0", "id": self.fresh_id(), "method": "tools/call",
            "params": { "name": name, "arguments": arguments },
        });
        let caller = Caller {
            slot: None,
            client_info: None,
            log_level: None,
            client_capabilities: None,
            asks: Relayable::default(),
        };
        let deadline = Instant::now() + self.spec.timeout;
        let (reply, id) = self.request(message, &[], caller, deadline).await?;
        response_result(single_response(reply, &id).await?)
    }

    /// Ends a client's upstream session (client sent DELETE).
    pub async fn end_session(&self, slot: &SessionSlot) {
        let Some(session) = slot.take().await else {
            return;
        };
        if let (Link::Http(link), Some(id)) = (&**self.link(), &session.id) {
            link.delete(id, &session.version, session.endpoint).await;
        }
    }

    /// The shared session for callers that can be asked `asks` (2026-07-28
    /// clients; none for the gateway's own requests). A stdio child has
    /// one session, whoever calls.
    pub fn shared_for(&self, asks: Relayable) -> &SessionSlot {
        match self.asking(asks) {
            Some(asking) if !matches!(**self.link(), Link::Stdio(_)) => &asking.slot,
            _ => &self.shared,
        }
    }

    /// Claims the following of the stream of the shared session for
    /// `asks` (see `relay::standalone`); false when another has it, or
    /// when there is no such session.
    pub fn claim_asking_stream(&self, asks: Relayable) -> bool {
        self.asking(asks)
            .is_some_and(|asking| !asking.followed.swap(true, Ordering::AcqRel))
    }

    pub fn release_asking_stream(&self, asks: Relayable) {
        if let Some(asking) = self.asking(asks) {
            asking.followed.store(false, Ordering::Release);
        }
    }

    /// The shared session that declares `asks`; none for the empty set
    /// (that one is `shared`).
    fn asking(&self, asks: Relayable) -> Option<&AskingSession> {
        asks.index().checked_sub(1).map(|index| &self.asking[index])
    }

    /// Stops child processes and ends the shared sessions.
    pub async fn shutdown(&self) {
        self.end_session(&self.shared).await;
        for asking in &self.asking {
            self.end_session(&asking.slot).await;
        }
        if let Link::Stdio(link) = &**self.link() {
            link.stop().await;
        }
    }

    fn fresh_id(&self) -> Value {
        json!(format!(
            "sb-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        ))
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

/// A legacy client's request toward a modern upstream needs per-request
/// `_meta`; a modern client's already has it and keeps it.
fn ensure_modern_meta(params: &mut serde_json::Map<String, Value>, caller: &Caller<'_>) {
    let (client_info, log_level) = (caller.client_info, caller.log_level);
    let meta = params.entry("_meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    meta.entry(protocol::META_PROTOCOL_VERSION)
        .or_insert_with(|| protocol::MODERN.into());
    meta.entry(protocol::META_CLIENT_CAPABILITIES)
        .or_insert_with(|| match caller.client_capabilities {
            Some(capabilities) => Relayable::of_declared(capabilities),
            None => caller.asks.declared(),
        });
    if let Some(level) = log_level {
        meta.entry(protocol::META_LOG_LEVEL)
            .or_insert_with(|| level.into());
    }
    if let Some(info) = client_info {
        meta.entry(protocol::META_CLIENT_INFO)
            .or_insert_with(|| info.clone());
    } else {
        meta.entry(protocol::META_CLIENT_INFO)
            .or_insert_with(protocol::implementation);
    }
}

/// The part of a client's capabilities an upstream may use through the
/// gateway: the requests the gateway relays back to the client.
/// A shared session that declares capabilities, and whether its stream is
/// being followed.
struct AskingSession {
    slot: SessionSlot,
    followed: AtomicBool,
}

impl Default for AskingSession {
    fn default() -> Self {
        AskingSession {
            slot: SessionSlot::shared(),
            followed: AtomicBool::new(false),
        }
    }
}

/// Puts the caller's id back on a reply sent under a gateway id.
fn renumber(reply: Reply, sent: Value, client: Value) -> Reply {
    match reply {
        Reply::Json {
            body,
            status,
            session_id,
        } => {
            let body = match serde_json::from_slice::<Value>(&body) {
                Ok(mut value) if value.get("id") == Some(&sent) => {
                    value["id"] = client;
                    Bytes::from(value.to_string())
                }
                _ => body,
            };
            Reply::Json {
                body,
                status,
                session_id,
            }
        }
        Reply::Stream {
            mut messages,
            session_id,
        } => {
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(async move {
                loop {
                    // Noticing the caller leave matters: dropping `messages`
                    // is what cancels the request upstream.
                    let mut message = tokio::select! {
                        message = messages.recv() => match message {
                            Some(message) => message,
                            None => return,
                        },
                        _ = tx.closed() => return,
                    };
                    if let Ok(value) = &mut message
                        && jsonrpc::is_response(value)
                        && value.get("id") == Some(&sent)
                    {
                        value["id"] = client.clone();
                    }
                    if tx.send(message).await.is_err() {
                        return;
                    }
                }
            });
            Reply::Stream {
                messages: rx,
                session_id,
            }
        }
        Reply::Accepted => Reply::Accepted,
    }
}

/// Waits for the response to `id` in a reply (skipping notifications).
async fn single_response(reply: Reply, id: &Value) -> Result<Value, UpstreamError> {
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
