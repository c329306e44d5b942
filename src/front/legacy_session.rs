//! A 2025-era client's session at the front: the `initialize` handshake,
//! finding a session by its id (a sealed id is restored on any replica),
//! its GET stream, DELETE, and ending idle ones.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

use super::Front;
use crate::auth::Caller;
use crate::jsonrpc::{self, Message};
use crate::net::response::{
    accepts, empty, json_response, method_not_allowed, stream_response_holding,
};
use crate::net::{Body, Rejection};
use crate::protocol::{self, HEADER_PROTOCOL_VERSION, HEADER_SESSION_ID};
use crate::sessions::{ClientSession, Opening};
use crate::upstream::session::UpstreamSession;

impl Front {
    /// The 2025 handshake: opens a client session.
    pub(super) async fn initialize(
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
                let sealed = super::sealed::SealedSession {
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
    pub(super) fn session(
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
    pub(super) fn get(
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
    pub(super) async fn delete(
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
