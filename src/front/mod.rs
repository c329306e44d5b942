//! The protocol front: turns an HTTP request on an MCP endpoint into a
//! routed message. It decides the client's era (an `initialize` or a
//! session id means 2025; `MCP-Protocol-Version: 2026-07-28` means
//! stateless), validates what that era requires, and shapes the response
//! (JSON, event stream, 202) as the transport specifies.
//!
//! Here: the endpoint and one message's way in; `legacy_session` the 2025
//! session's lifecycle, `modern` 2026-07-28's header and `_meta` checks,
//! `legacy_sse` the 2024-11-05 transport, `sealed` session ids any replica
//! can open, `notifications` the long-lived streams.

mod legacy_session;
pub mod legacy_sse;
pub mod modern;
pub mod notifications;
pub mod sealed;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
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
use crate::relay;
use crate::router;
use crate::sessions::Sessions;
use crate::traces::{Span, Tracer};
use crate::upstream::Upstream;
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
                return Ok(self.listen(id, params.as_ref(), scope, caller).await);
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
    /// client asked for, on this endpoint, and the updates of the resources
    /// it names that an upstream it may use owns.
    async fn listen(
        &self,
        id: &Value,
        params: Option<&Value>,
        scope: Option<&str>,
        caller: &Caller,
    ) -> Response<Body> {
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
        let catalog = self.pool.catalog();
        let mut owners: Vec<(Arc<Upstream>, Vec<String>)> = Vec::new();
        let uris = params
            .and_then(|p| p.pointer("/notifications/resourceSubscriptions"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for uri in uris {
            let server = match scope {
                Some(name) => catalog.server(name),
                None => catalog.resource_server(uri),
            };
            let upstream = server
                .filter(|server| caller.may_use_server(&server.prefix, Some(uri)))
                .and_then(|server| self.pool.upstream(&server.name));
            let Some(upstream) = upstream else {
                continue;
            };
            match owners
                .iter_mut()
                .find(|(owner, _)| owner.name == upstream.name)
            {
                Some((_, uris)) => uris.push(uri.to_string()),
                None => owners.push((upstream, vec![uri.to_string()])),
            }
        }
        let honoured: Vec<String> = owners.iter().flat_map(|(_, uris)| uris.clone()).collect();
        // Acknowledged once the upstreams listen (a bounded wait), so that
        // a change right after the acknowledgement is not missed.
        let mut listenings: Vec<relay::subscriptions::Listening> = owners
            .into_iter()
            .map(|(upstream, uris)| relay::subscriptions::listen_to(upstream, uris, id.clone()))
            .collect();
        let ready = listenings.iter_mut().map(|listening| &mut listening.ready);
        let _ = tokio::time::timeout(
            relay::subscriptions::LISTEN_WAIT,
            futures_util::future::join_all(ready),
        )
        .await;
        let (opened, frames) =
            self.listeners
                .open_subscription(id.clone(), scope.map(Arc::from), filter, &honoured);
        for listening in listenings {
            listening.deliver_to(frames.clone());
        }
        let (rx, entry) = opened.into_parts();
        stream_response_holding(rx, entry)
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
