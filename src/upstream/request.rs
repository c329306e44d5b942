//! Sending one message to the upstream: a client's call through its own
//! session or a shared one (ids re-numbered where clients share), the
//! per-request `_meta` a 2026-07-28 upstream needs, the exchange over the
//! transport, and answers to requests the upstream made.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ::http::{HeaderName, HeaderValue, StatusCode};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::session::{SessionSlot, UpstreamSession};
use super::{
    Call, Caller, InFlight, Link, Reply, Upstream, UpstreamError, gateway_meta, response_result,
    single_response,
};
use crate::jsonrpc;
use crate::protocol::{self, Era, Relayable};

impl Upstream {
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
    pub(super) async fn request(
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
    pub(super) async fn exchange(
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
                let headers = super::http::PostHeaders {
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
    pub(super) fn generation(&self) -> u64 {
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

    /// Calls one tool on the gateway's own session and returns the
    /// `CallToolResult` (the command line's `switchboard call`).
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<Value, UpstreamError> {
        let message = json!({
            "jsonrpc": "2.0", "id": self.fresh_id(), "method": "tools/call",
            "params": { "name": name, "arguments": arguments },
        });
        let caller = Caller::default();
        let deadline = Instant::now() + self.spec.timeout;
        let (reply, id) = self.request(message, &[], caller, deadline).await?;
        response_result(single_response(reply, &id).await?)
    }

    pub(super) fn fresh_id(&self) -> Value {
        json!(format!(
            "sb-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        ))
    }
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
