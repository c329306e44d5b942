//! The protocol front: turns an HTTP request on an MCP endpoint into a
//! routed message. It decides the client's era (an `initialize` or a
//! session id means 2025; `MCP-Protocol-Version: 2026-07-28` means
//! stateless), validates what that era requires, and shapes the response
//! (JSON, event stream, 202) as the transport specifies.

pub mod legacy_sse;
pub mod modern;
pub mod notifications;
pub mod sealed;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::exchange::{self, Client, Outcome};
use crate::jsonrpc::{self, Message};
use crate::net::response::{
    accepts, content_type_is_json, empty, json_response, method_not_allowed, stream_response,
    stream_response_holding,
};
use crate::net::{Body, Rejection};
use crate::pool::Pool;
use crate::protocol::{self, HEADER_PROTOCOL_VERSION, HEADER_SESSION_ID, Relayable};
use crate::router;
use crate::sessions::{ClientSession, Opening, Sessions};
use crate::traces::{Span, Tracer};
use crate::upstream::session::UpstreamSession;
use notifications::{Filter, Listeners};

pub struct Front {
    pub pool: Arc<Pool>,
    pub sessions: Sessions,
    /// Open GET and `subscriptions/listen` streams.
    pub listeners: Arc<Listeners>,
    /// Open HTTP+SSE (2024-11-05) streams.
    pub sse_streams: legacy_sse::SseStreams,
    /// Seals client session ids when replicas share sessions.
    pub sealer: Option<sealed::Sealer>,
    pub max_body_bytes: usize,
    /// Longest silence while a request body arrives (slow senders).
    pub body_idle_timeout: Duration,
    /// Records spans when trace export is configured.
    pub tracer: Option<Arc<Tracer>>,
}

impl Front {
    /// Serves one request on `/mcp` (`scope` None) or `/servers/{name}/mcp`.
    pub async fn serve(
        &self,
        request: hyper::Request<Incoming>,
        scope: Option<&str>,
        caller: &Caller,
    ) -> Response<Body> {
        let result = match *request.method() {
            Method::POST => self.post(request, scope, caller).await,
            Method::GET => self.get(request.headers(), scope, caller),
            Method::DELETE => self.delete(request.headers(), scope, caller).await,
            _ => Ok(method_not_allowed(
                "use POST (or GET/DELETE with a 2025-era session)",
                "GET, POST, DELETE",
            )),
        };
        result.unwrap_or_else(Rejection::into_response)
    }

    async fn post(
        &self,
        request: hyper::Request<Incoming>,
        scope: Option<&str>,
        caller: &Caller,
    ) -> Result<Response<Body>, Rejection> {
        let headers = request.headers();
        if !content_type_is_json(headers) {
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                jsonrpc::INVALID_REQUEST,
                "Content-Type must be application/json",
            ));
        }
        if !accepts(headers, "application/json") || !accepts(headers, "text/event-stream") {
            return Err(Rejection::new(
                StatusCode::NOT_ACCEPTABLE,
                jsonrpc::INVALID_REQUEST,
                "Accept must list both application/json and text/event-stream",
            ));
        }
        let (parts, body) = request.into_parts();
        let message = self.read_message(body).await?;
        let mut span = Span::for_request(self.tracer.as_ref(), &parts.headers, &message);
        let result = self
            .dispatch(&parts.headers, message, scope, caller, &mut span)
            .await;
        if let Err(rejection) = &result {
            span.fail_rpc(&rejection.error);
        }
        result
    }

    /// Serves one parsed POST message in the client's era.
    async fn dispatch(
        &self,
        headers: &HeaderMap,
        message: Message,
        scope: Option<&str>,
        caller: &Caller,
        span: &mut Span,
    ) -> Result<Response<Body>, Rejection> {
        let request_id = match &message {
            Message::Request { id, .. } => Some(id.clone()),
            _ => None,
        };

        let header_version = headers
            .get(HEADER_PROTOCOL_VERSION)
            .map(|v| v.to_str().unwrap_or(""));
        if message.method() == Some("initialize") {
            // A request already speaking 2026-07-28 has no handshake to make.
            if header_version == Some(protocol::MODERN) {
                return Err(Rejection::new(
                    StatusCode::NOT_FOUND,
                    jsonrpc::METHOD_NOT_FOUND,
                    "Method not found: initialize does not exist in 2026-07-28",
                )
                .with_id(request_id.as_ref()));
            }
            let result = self.initialize(&message, scope, caller).await;
            let outcome = match &result {
                Ok(_) => crate::metrics::Outcome::Ok,
                Err(_) => crate::metrics::Outcome::Error,
            };
            self.pool.metrics.request("initialize", outcome);
            return result.map_err(|r| r.with_id(request_id.as_ref()));
        }

        let session_id = headers.get(HEADER_SESSION_ID);
        let modern = match header_version {
            Some(protocol::MODERN) => true,
            Some(v) if protocol::is_legacy(v) => false,
            Some(other) => {
                return Err(unsupported_version(other).with_id(request_id.as_ref()));
            }
            // No header: a 2025-03-26 client (the transport's default), unless
            // the body carries modern `_meta`: a modern request missing its
            // required header.
            None if session_id.is_none() && modern::meta_version(&message).is_some() => {
                return Err(Rejection::new(
                    StatusCode::BAD_REQUEST,
                    jsonrpc::HEADER_MISMATCH,
                    "Header mismatch: MCP-Protocol-Version header is required",
                )
                .with_id(request_id.as_ref()));
            }
            None => false,
        };

        let client = if modern {
            modern::validate(headers, &message).map_err(|r| r.with_id(request_id.as_ref()))?;
            if let Message::Request { id, method, params } = &message
                && method == "subscriptions/listen"
            {
                return Ok(self.listen(id, params.as_ref(), scope));
            }
            span.set("mcp.protocol.version", protocol::MODERN);
            Client::Modern
        } else {
            let session = self
                .session(headers, scope, caller)
                .map_err(|r| r.with_id(request_id.as_ref()))?;
            // Any supported version in the header is served on a session
            // negotiated to another, as the SDKs' servers do (the header
            // was checked against the supported ones above).
            span.set("mcp.protocol.version", session.version);
            Client::Legacy(session)
        };

        // What the client declares it can answer decides what some
        // upstreams list to it.
        let asks = match &client {
            Client::Legacy(session) => session.asks,
            Client::Modern => Relayable::of(modern::meta_capabilities(&message)),
        };
        let catalog = self.pool.catalog_for(asks).await;
        let routed = exchange::Request {
            pool: &self.pool,
            catalog,
            scope,
            client,
            caller,
            forwarded: modern::forwarded_params(headers),
            span,
        };
        Ok(outcome_response(router::route(routed, message).await))
    }

    /// Reads a body (bounded in size and in the silence between its
    /// chunks) and parses the one JSON-RPC message in it.
    pub async fn read_message(&self, body: Incoming) -> Result<Message, Rejection> {
        let mut body = Limited::new(body, self.max_body_bytes);
        // One chunk (the usual case) is kept as it came, without a copy.
        let mut first: Option<Bytes> = None;
        let mut joined = bytes::BytesMut::new();
        loop {
            // A body that came with the head (the usual case) is read
            // without arming the idle timer.
            let mut next = body.frame();
            let polled = match futures_util::FutureExt::now_or_never(&mut next) {
                Some(ready) => Ok(ready),
                None => tokio::time::timeout(self.body_idle_timeout, next).await,
            };
            let frame = match polled {
                Err(_) => {
                    return Err(Rejection::new(
                        StatusCode::REQUEST_TIMEOUT,
                        jsonrpc::INVALID_REQUEST,
                        format!("request body stalled for {:?}", self.body_idle_timeout),
                    ));
                }
                Ok(None) => break,
                Ok(Some(frame)) => frame,
            };
            match frame {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        match first.take() {
                            None if joined.is_empty() => first = Some(data),
                            None => joined.extend_from_slice(&data),
                            Some(previous) => {
                                joined.extend_from_slice(&previous);
                                joined.extend_from_slice(&data);
                            }
                        }
                    }
                    // A body of known length ends with its last byte: no
                    // second wait (and timer) for the end of the stream.
                    if body.is_end_stream() {
                        break;
                    }
                }
                Err(error) => {
                    if error
                        .downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        return Err(Rejection::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            jsonrpc::INVALID_REQUEST,
                            format!("request body exceeds {} bytes", self.max_body_bytes),
                        ));
                    }
                    return Err(Rejection::new(
                        StatusCode::BAD_REQUEST,
                        jsonrpc::PARSE_ERROR,
                        "request body could not be read",
                    ));
                }
            }
        }
        let body = first.unwrap_or_else(|| joined.freeze());
        Message::parse(&body)
            .map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()))
    }

    /// `subscriptions/listen`: a stream of the change notifications the
    /// client asked for, on this endpoint.
    fn listen(&self, id: &Value, params: Option<&Value>, scope: Option<&str>) -> Response<Body> {
        let wanted = |key: &str| {
            params
                .and_then(|p| p.pointer(&format!("/notifications/{key}")))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let filter = Filter {
            tools: wanted("toolsListChanged"),
            prompts: wanted("promptsListChanged"),
            resources: wanted("resourcesListChanged"),
        };
        let (rx, entry) = self
            .listeners
            .open_subscription(id.clone(), scope.map(Arc::from), filter)
            .into_parts();
        stream_response_holding(rx, entry)
    }

    /// The 2025 handshake: opens a client session.
    async fn initialize(
        &self,
        message: &Message,
        scope: Option<&str>,
        caller: &Caller,
    ) -> Result<Response<Body>, Rejection> {
        let (session, body) = self
            .handshake(message, scope, Opening::Fresh, caller)
            .await?;
        let mut response = json_response(StatusCode::OK, body);
        response.headers_mut().insert(
            HEADER_SESSION_ID,
            HeaderValue::from_str(&session.id).expect("session ids are visible ASCII"),
        );
        Ok(response)
    }

    /// Opens a 2025-era client session from an `initialize` request (under
    /// the id `opening` names, if any: a sealed one replaces a fresh one
    /// when replicas share sessions), bound to the caller's subject;
    /// returns the session and the serialised response.
    pub async fn handshake(
        &self,
        message: &Message,
        scope: Option<&str>,
        opening: Opening,
        caller: &Caller,
    ) -> Result<(Arc<ClientSession>, Bytes), Rejection> {
        let Message::Request {
            id: request_id,
            params,
            ..
        } = message
        else {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "initialize must be a request",
            ));
        };
        let params = params.as_ref();
        let requested = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str);
        let version = protocol::negotiate_legacy(requested);
        let client_info = params.and_then(|p| p.get("clientInfo")).cloned();
        let client_capabilities = params
            .and_then(|p| p.get("capabilities"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        let catalog = self.pool.catalog();
        let capabilities = match scope {
            None => {
                let mut capabilities = catalog.aggregate_capabilities();
                // Delivered for upstreams of either era (2026-07-28 ones
                // through relay::subscriptions).
                if catalog.offers_resource_subscriptions() {
                    capabilities["resources"]["subscribe"] = true.into();
                }
                capabilities
            }
            Some(name) => catalog
                .server(name)
                .and_then(|s| s.listing.as_ref())
                .map(|l| l.capabilities.clone())
                .ok_or_else(|| {
                    Rejection::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        jsonrpc::UPSTREAM_UNAVAILABLE,
                        format!("upstream {name} is not ready"),
                    )
                })?,
        };
        // Sealed ids carry the upstream sessions, so those open now.
        let (opening, pinned) = match (&self.sealer, opening) {
            (Some(sealer), Opening::Fresh) => {
                let pinned = self
                    .pin_upstream_sessions(scope, client_info.as_ref(), &client_capabilities)
                    .await;
                let sealed = sealed::SealedSession {
                    v: version.to_string(),
                    i: client_info.clone(),
                    c: client_capabilities.clone(),
                    s: scope.map(str::to_owned),
                    a: caller.subject().map(|s| s.to_string()),
                    e: sealer.expiry(),
                    u: pinned
                        .iter()
                        .filter_map(|(name, session)| {
                            let id = session.id.as_ref()?.to_str().ok()?;
                            let version = session.version.to_str().ok()?;
                            Some((name.to_string(), id.to_string(), version.to_string()))
                        })
                        .collect(),
                    p: pinned
                        .iter()
                        .filter_map(|(name, session)| {
                            Some((name.to_string(), session.endpoint?.to_string()))
                        })
                        .collect(),
                };
                (Opening::Given(Arc::from(sealer.seal(&sealed))), pinned)
            }
            (_, opening) => (opening, Vec::new()),
        };
        let session = self.sessions.open(
            opening,
            version,
            client_info,
            client_capabilities,
            scope.map(Arc::from),
            caller.subject().cloned(),
        );
        for (name, upstream_session) in pinned {
            session.slot(&name).set(upstream_session);
        }
        tracing::debug!(session = %session.id, version, "client session opened");
        let result = json!({
            "protocolVersion": version,
            "capabilities": capabilities,
            "serverInfo": protocol::implementation(),
        });
        let body = Bytes::from(jsonrpc::result_response(request_id, result).to_string());
        Ok((session, body))
    }

    /// The legacy session a request names, checked against the endpoint
    /// and the caller: another subject's session id is unknown here.
    fn session(
        &self,
        headers: &HeaderMap,
        scope: Option<&str>,
        caller: &Caller,
    ) -> Result<Arc<ClientSession>, Rejection> {
        let Some(id) = headers.get(HEADER_SESSION_ID) else {
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "missing Mcp-Session-Id: send initialize first, or use \
                 MCP-Protocol-Version: 2026-07-28 for stateless requests",
            ));
        };
        let id = id.to_str().unwrap_or("");
        let found = self.sessions.get(id).or_else(|| self.restore(id));
        match found {
            Some(session)
                if session.scope.as_deref() == scope
                    && session.subject.as_ref() == caller.subject() =>
            {
                Ok(session)
            }
            _ => Err(Rejection::new(
                StatusCode::NOT_FOUND,
                jsonrpc::INVALID_REQUEST,
                "Session not found: initialize a new session",
            )),
        }
    }

    /// GET opens the 2025 server-to-client stream; 2026 has none (405).
    fn get(
        &self,
        headers: &HeaderMap,
        scope: Option<&str>,
        caller: &Caller,
    ) -> Result<Response<Body>, Rejection> {
        if headers
            .get(HEADER_PROTOCOL_VERSION)
            .is_some_and(|v| v == protocol::MODERN)
        {
            // The endpoint still takes GET from a 2025 client, but Allow
            // names what this request could have used.
            return Ok(method_not_allowed(
                "2026-07-28 has no GET stream: use subscriptions/listen",
                "POST",
            ));
        }
        if !accepts(headers, "text/event-stream") {
            return Err(Rejection::new(
                StatusCode::NOT_ACCEPTABLE,
                jsonrpc::INVALID_REQUEST,
                "Accept must list text/event-stream",
            ));
        }
        let session = self.session(headers, scope, caller)?;
        let (opened, tx) = self
            .listeners
            .open_session_stream(session.id.clone(), session.scope.clone());
        session.set_stream(&tx);
        // The client's upstream sessions' own streams, relayed on this one.
        crate::relay::standalone::follow_all(&self.pool, &session);
        let (rx, entry) = opened.into_parts();
        Ok(stream_response_holding(rx, entry))
    }

    /// DELETE ends a legacy session and the upstream sessions pinned to it.
    async fn delete(
        &self,
        headers: &HeaderMap,
        scope: Option<&str>,
        caller: &Caller,
    ) -> Result<Response<Body>, Rejection> {
        let session = self.session(headers, scope, caller)?;
        if let Some(session) = self.sessions.remove(&session.id) {
            self.end_upstream_sessions(&session);
        }
        Ok(Response::builder()
            .status(StatusCode::OK)
            .body(empty())
            .expect("static response"))
    }
}

impl Front {
    /// A session sealed by a replica (or by this process before a restart):
    /// rebuilt from its id, upstream sessions included.
    fn restore(&self, id: &str) -> Option<Arc<ClientSession>> {
        let sealed = self.sealer.as_ref()?.open(id)?;
        let version = protocol::LEGACY.iter().find(|v| **v == sealed.v)?;
        let session = self.sessions.open(
            Opening::Given(Arc::from(id)),
            version,
            sealed.i,
            sealed.c,
            sealed.s.map(Arc::from),
            sealed.a.map(Arc::from),
        );
        for (name, upstream_id, upstream_version) in sealed.u {
            let (Ok(upstream_id), Some(upstream_version)) = (
                HeaderValue::from_str(&upstream_id),
                protocol::LEGACY.iter().find(|v| **v == upstream_version),
            ) else {
                continue;
            };
            session
                .slot(&Arc::from(name))
                .set(Arc::new(UpstreamSession {
                    id: Some(upstream_id),
                    version: HeaderValue::from_static(upstream_version),
                    generation: 0,
                    capabilities: Value::Null,
                    endpoint: None,
                    sse: None,
                }));
        }
        tracing::debug!(session = %session.id, "client session restored from its sealed id");
        Some(session)
    }

    /// Opens the client's own session with every 2025-era upstream it may
    /// call, in parallel; one that fails is left to open on first use.
    async fn pin_upstream_sessions(
        &self,
        scope: Option<&str>,
        client_info: Option<&Value>,
        capabilities: &Value,
    ) -> Vec<(Arc<str>, Arc<UpstreamSession>)> {
        let upstreams: Vec<_> = self
            .pool
            .upstreams()
            .into_iter()
            .filter(|u| scope.is_none_or(|s| *u.name == *s))
            .collect();
        let info = client_info
            .cloned()
            .unwrap_or_else(protocol::implementation);
        let opened = futures_util::future::join_all(upstreams.iter().map(|upstream| {
            let info = &info;
            async move {
                match upstream.open_client_session(info, capabilities).await {
                    Ok(session) => session.map(|s| (upstream.name.clone(), s)),
                    Err(error) => {
                        tracing::warn!(upstream = %upstream.name, "could not pin a session: {error}");
                        None
                    }
                }
            }
        }))
        .await;
        opened.into_iter().flatten().collect()
    }

    /// Ends every long-lived stream, so that shutdown waits only for calls.
    pub fn close_streams(&self) {
        self.listeners.close_all();
        self.sse_streams.close_all();
    }

    /// Ends, in the background, the upstream sessions pinned to a client
    /// session that is gone (deleted or expired), with its stream and the
    /// requests still waiting for its answers.
    pub fn end_upstream_sessions(&self, session: &ClientSession) {
        self.listeners.end_session(&session.id);
        self.sse_streams.end(&session.id);
        session.end();
        for (name, slot) in session.upstream_slots() {
            if let Some(upstream) = self.pool.upstream(&name) {
                tokio::spawn(async move { upstream.end_session(&slot).await });
            }
        }
    }

    /// Expires client sessions idle for longer than `idle`, forever.
    pub async fn expire_idle_sessions(self: Arc<Self>, idle: Duration) {
        let period = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
        loop {
            tokio::time::sleep(period).await;
            for session in self.sessions.expire(idle) {
                tracing::debug!(session = %session.id, "client session expired");
                self.end_upstream_sessions(&session);
            }
        }
    }
}

fn unsupported_version(requested: &str) -> Rejection {
    let mut rejection = Rejection::new(
        StatusCode::BAD_REQUEST,
        jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
    );
    rejection.error = rejection
        .error
        .with_data(json!({ "supported": protocol::SUPPORTED, "requested": requested }));
    rejection
}

fn outcome_response(outcome: Outcome) -> Response<Body> {
    match outcome {
        Outcome::Json(status, body) => json_response(status, body),
        Outcome::Stream(rx) => stream_response(rx),
        Outcome::Accepted => Response::builder()
            .status(StatusCode::ACCEPTED)
            .body(empty())
            .expect("static response"),
    }
}
