//! Forwarding one client request to the upstream that owns it, and
//! relaying everything that belongs to that request back: progress and log
//! notifications, requests the upstream makes of the client (sampling,
//! elicitation, roots), the final response shaped for the client's era,
//! and cancellation in both directions.
//!
//! Between eras: a 2026 upstream's `InputRequiredResult` (MRTR) is turned
//! into requests on a 2025 client's stream and the call retried with the
//! answers; a 2025 upstream's request to a 2026 client becomes an
//! `InputRequiredResult` whose retry takes the held call on ([`input`]).
//!
//! [`standalone`]: what an upstream sends a 2025 client outside any call.

pub mod input;
pub mod standalone;
pub mod subscriptions;

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::exchange::{Client, Failure, Outcome, Request};
use crate::jsonrpc::{self, RpcError};
use crate::protocol::{self, Era, Relayable};
use crate::sessions::{ClientSession, Tracked};
use crate::sse;
use crate::traces::{Span, SpanKind};
use crate::upstream::session::SessionSlot;
use crate::upstream::{Call, Caller, Reply, Upstream, UpstreamError};

/// Rounds of input an upstream may ask for in one call before the
/// gateway gives up (MRTR allows repeats; a loop must still end).
const MAX_INPUT_ROUNDS: usize = 8;

/// An upstream's answer stream.
type Messages = mpsc::Receiver<Result<Value, UpstreamError>>;

/// Forwards a request and turns the reply into the client's outcome.
pub async fn forward_request(
    request: &Request<'_>,
    upstream: &Arc<Upstream>,
    message: Value,
    id: &Value,
) -> Result<Outcome, Failure> {
    // A 2026-07-28 client answering input a 2025 upstream asked for: the
    // held call goes on, it is not sent again.
    if request.is_modern() && input::is_ours(message.get("params")) {
        let subject = request.caller.subject().map(|s| &**s);
        return input::resume(id, &message["params"], &upstream.name, subject)
            .await
            .map(Outcome::Stream)
            .map_err(|rpc| (StatusCode::OK, rpc));
    }
    // Counted until the client has its final answer: for a streamed reply
    // the relay carries it on.
    let in_flight = crate::metrics::Live::CallInFlight.held();
    // Held until the answer (or the start of a streamed one) is back. A
    // call waits for a slot up to half its timeout, leaving it the rest.
    let _slot = match upstream.slots.clone().try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            let waited = tokio::time::timeout(
                upstream.spec.timeout / 2,
                upstream.slots.clone().acquire_owned(),
            )
            .await;
            match waited {
                Ok(Ok(slot)) => slot,
                _ => {
                    tracing::warn!(upstream = %upstream.name, "busy: maxConcurrency requests in flight");
                    let rpc = RpcError::new(
                        jsonrpc::UPSTREAM_UNAVAILABLE,
                        format!(
                            "upstream {} is busy: {} requests in flight (its maxConcurrency); retry later",
                            upstream.name, upstream.spec.max_concurrency
                        ),
                    )
                    .with_data(json!({ "upstream": &*upstream.name }));
                    // Like any upstream failure: a JSON-RPC error the client's
                    // tool caller sees, not a transport failure.
                    return Err((StatusCode::OK, rpc));
                }
            }
        }
    };
    // The upstream sees the gateway's span as its parent (or the client's
    // context passed on, when tracing is off).
    let mut span = request.span.child(SpanKind::Client, &message);
    let mut message = message;
    let traced_headers;
    let forwarded = match span.context() {
        None => request.forwarded.as_slice(),
        Some(context) => {
            traced_headers = context.inject(&mut message, &request.forwarded);
            traced_headers.as_slice()
        }
    };
    if span.is_recording() {
        span.set("switchboard.upstream", upstream.name.to_string());
        if let Some(era) = upstream.era() {
            span.set("mcp.protocol.version", era.version());
        }
    }
    // Looked up once: the forward and the relay share them.
    let (session, slot) = match &request.client {
        Client::Legacy(session) => (Some(session.clone()), Some(session.slot(&upstream.name))),
        Client::Modern => (None, None),
    };
    // What the client can be asked, should a 2025 upstream ask: a 2025
    // client declared it once, a 2026-07-28 one says so per request.
    let asks = match &session {
        Some(session) => session.asks,
        None => Relayable::of(
            message
                .get("params")
                .and_then(|params| params.get("_meta"))
                .and_then(|meta| meta.get(protocol::META_CLIENT_CAPABILITIES)),
        ),
    };
    match (&session, &slot) {
        (Some(session), Some(slot)) => {
            standalone::follow_before_call(upstream, slot, session).await
        }
        _ => standalone::follow_asking_before_call(upstream, asks).await,
    }
    // A 2025 client cancels with a notification naming this id.
    let tracked = session.as_ref().map(|s| s.track(id));
    let adapt = Adapt {
        client_modern: session.is_none(),
        upstream_modern: is_modern(upstream),
        cacheable: message
            .get("method")
            .and_then(Value::as_str)
            .is_some_and(protocol::is_cacheable),
    };
    let subject = request.caller.subject().cloned();
    // Only a 2026 upstream's input request to a 2025 client needs the
    // request again (to retry it with the answers).
    let bridge_input = session.is_some() && adapt.upstream_modern && may_need_input(&message);
    let retry_template = bridge_input.then(|| message.clone());
    let retry_headers = if bridge_input {
        forwarded.to_vec()
    } else {
        Vec::new()
    };
    let sent = send(
        upstream,
        message,
        slot.as_deref(),
        session.as_deref(),
        asks,
        forwarded,
    );
    let reply = tokio::select! {
        reply = sent => reply,
        // Dropping the forward cancels upstream (see upstream::cancel).
        _ = cancelled(tracked.as_ref()) => return Err(cancelled_failure()),
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            if matches!(
                error,
                UpstreamError::Connect(_) | UpstreamError::Timeout | UpstreamError::Broken(_)
            ) {
                request.pool.suspect(&upstream.name);
            }
            let failure = upstream_failure(upstream, error);
            span.fail_rpc(&failure.1);
            return Err(failure);
        }
    };
    let mut relay = Relay {
        upstream: upstream.clone(),
        session,
        slot,
        asks,
        subject,
        adapt,
        id: id.clone(),
        tracked,
        retry_template,
        forwarded: retry_headers,
        span,
        _in_flight: in_flight,
    };
    Ok(match reply {
        Reply::Json { body, status, .. } => {
            relay.span.record_reply(&body);
            let value = if relay.adapt.needed() || relay.retry_template.is_some() {
                serde_json::from_slice::<Value>(&body).ok()
            } else {
                None
            };
            match value {
                // A 2026 upstream needs input from a 2025 client: that takes
                // a stream, to carry the requests to the client.
                Some(response) if relay.retry_template.is_some() && needs_input(&response) => {
                    let (tx, rx) = mpsc::channel(16);
                    tokio::spawn(relay.run(None, Some(response), tx));
                    Outcome::Stream(rx)
                }
                Some(mut response) => {
                    relay.adapt.apply(&mut response);
                    let status = relay.adapted_status(&response, status);
                    Outcome::Json(status, Bytes::from(response.to_string()))
                }
                None => Outcome::Json(relay.status(status), body),
            }
        }
        Reply::Accepted => Outcome::Accepted,
        // 2026-07-28 answers in JSON unless messages come before the
        // result: a 2025 upstream that streams every answer (the TS SDK's
        // way) is answered as a 2026 server would, errors with their status.
        Reply::Stream { mut messages, .. }
            if relay.adapt.client_modern && !relay.adapt.upstream_modern =>
        {
            match messages.recv().await {
                Some(Ok(mut response)) if jsonrpc::is_response(&response) => {
                    response["id"] = relay.id.clone();
                    relay.span.record_response(&response);
                    relay.adapt.apply(&mut response);
                    let status = relay.adapted_status(&response, StatusCode::OK);
                    Outcome::Json(status, Bytes::from(response.to_string()))
                }
                Some(Ok(first)) => {
                    let (tx, rx) = mpsc::channel(16);
                    tokio::spawn(relay.run(Some(messages), Some(first), tx));
                    Outcome::Stream(rx)
                }
                Some(Err(error)) => return Err(upstream_failure(upstream, error)),
                None => {
                    let error = UpstreamError::Broken("its stream ended without an answer".into());
                    return Err(upstream_failure(upstream, error));
                }
            }
        }
        Reply::Stream { messages, .. } => {
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(relay.run(Some(messages), None, tx));
            Outcome::Stream(rx)
        }
    })
}

async fn cancelled(tracked: Option<&Tracked>) {
    match tracked {
        Some(tracked) => tracked.cancelled().await,
        None => std::future::pending().await,
    }
}

fn cancelled_failure() -> Failure {
    (
        StatusCode::OK,
        RpcError::new(jsonrpc::INTERNAL_ERROR, "request cancelled by the client"),
    )
}

fn is_modern(upstream: &Upstream) -> bool {
    upstream.era().is_some_and(|e| *e == Era::Modern)
}

/// The requests on which MRTR allows an `InputRequiredResult`.
fn may_need_input(message: &Value) -> bool {
    matches!(
        message.get("method").and_then(Value::as_str),
        Some("tools/call" | "prompts/get" | "resources/read")
    )
}

fn needs_input(response: &Value) -> bool {
    response
        .pointer("/result/resultType")
        .and_then(Value::as_str)
        == Some("input_required")
}

/// Sends one message to `upstream` on behalf of the client.
async fn send(
    upstream: &Upstream,
    message: Value,
    slot: Option<&SessionSlot>,
    session: Option<&ClientSession>,
    asks: Relayable,
    forwarded: &[(http::HeaderName, http::HeaderValue)],
) -> Result<Reply, UpstreamError> {
    let log_level = session.and_then(|s| s.log_level());
    let call = Call {
        message,
        forwarded,
        caller: Caller {
            slot,
            client_info: session.and_then(|s| s.client_info.as_ref()),
            log_level: log_level.as_deref(),
            client_capabilities: session.map(|s| &s.capabilities),
            asks,
        },
    };
    upstream.call(call).await
}

pub fn upstream_failure(upstream: &Upstream, error: UpstreamError) -> Failure {
    tracing::warn!(upstream = %upstream.name, "call failed: {error}");
    let rpc = RpcError::new(
        jsonrpc::UPSTREAM_UNAVAILABLE,
        format!("upstream {} {error}", upstream.name),
    )
    .with_data(json!({ "upstream": &*upstream.name }));
    (StatusCode::OK, rpc)
}

/// Everything needed to relay one forwarded request's messages.
struct Relay {
    upstream: Arc<Upstream>,
    /// The client's session (2025 clients).
    session: Option<Arc<ClientSession>>,
    /// The client's upstream session slot (2025 clients).
    slot: Option<Arc<SessionSlot>>,
    /// What the client can be asked.
    asks: Relayable,
    /// The authenticated caller, to whom a held call belongs.
    subject: Option<Arc<str>>,
    adapt: Adapt,
    /// The client's request id.
    id: Value,
    tracked: Option<Tracked>,
    /// The original request, when a 2026 upstream may ask a 2025 client for
    /// input: retried with the answers.
    retry_template: Option<Value>,
    forwarded: Vec<(http::HeaderName, http::HeaderValue)>,
    /// The upstream call's span: it ends with the relay.
    span: Span,
    /// Counts the call until the relay ends.
    _in_flight: crate::metrics::Held,
}

impl Relay {
    /// A 2026 client gets the upstream's status (404 for an unknown
    /// method); a 2025 client gets errors in a 200, as that era does.
    fn status(&self, upstream_status: StatusCode) -> StatusCode {
        if self.adapt.client_modern {
            upstream_status
        } else {
            StatusCode::OK
        }
    }

    /// The status of an adapted JSON answer: a 2025 upstream's "method not
    /// found" comes in a 200, where the 2026-07-28 transport says 404.
    fn adapted_status(&self, response: &Value, upstream_status: StatusCode) -> StatusCode {
        if self.adapt.client_modern
            && !self.adapt.upstream_modern
            && response.pointer("/error/code") == Some(&Value::from(jsonrpc::METHOD_NOT_FOUND))
        {
            StatusCode::NOT_FOUND
        } else {
            self.status(upstream_status)
        }
    }

    /// Relays until the final response: from `messages` (an upstream event
    /// stream), or starting from a `pending` response that needs input.
    async fn run(
        mut self,
        mut messages: Option<mpsc::Receiver<Result<Value, UpstreamError>>>,
        mut pending: Option<Value>,
        tx: mpsc::Sender<Bytes>,
    ) {
        let mut rounds = 0;
        loop {
            let message = match pending.take() {
                Some(message) => message,
                None => {
                    let Some(stream) = messages.as_mut() else {
                        return;
                    };
                    let next = tokio::select! {
                        next = stream.recv() => next,
                        _ = cancelled(self.tracked.as_ref()) => {
                            // Dropping the stream cancels upstream.
                            let _ = tx.send(self.error_frame(cancelled_failure().1)).await;
                            return;
                        }
                        _ = tx.closed() => return,
                    };
                    match next {
                        Some(Ok(message)) => message,
                        Some(Err(error)) => {
                            let (_, rpc) = upstream_failure(&self.upstream, error);
                            let _ = tx.send(self.error_frame(rpc)).await;
                            return;
                        }
                        None => return,
                    }
                }
            };
            let is_response = jsonrpc::is_response(&message);
            if !is_response && message.get("id").is_some() {
                if self.holds_for_input(&message)
                    && let Some(stream) = messages.take()
                {
                    // The answer to this request ends this exchange; the
                    // client's retry takes the call on (relay::input).
                    let response = input::hold(self, stream, message);
                    let _ = tx.send(frame(&response)).await;
                    return;
                }
                self.relay_upstream_request(message, &tx).await;
                continue;
            }
            if !is_response {
                if tx.send(frame(&message)).await.is_err() {
                    return;
                }
                continue;
            }
            if self.retry_template.is_some() && needs_input(&message) {
                rounds += 1;
                match self.answer_input(&message, rounds, &tx).await {
                    Ok(next) => {
                        messages = next.0;
                        pending = next.1;
                        continue;
                    }
                    Err(rpc) => {
                        let _ = tx.send(self.error_frame(rpc)).await;
                        return;
                    }
                }
            }
            let mut response = message;
            response["id"] = self.id.clone();
            self.span.record_response(&response);
            self.adapt.apply(&mut response);
            let _ = tx.send(frame(&response)).await;
            return;
        }
    }

    fn error_frame(&mut self, rpc: RpcError) -> Bytes {
        self.span.fail_rpc(&rpc);
        frame(&rpc.response(Some(&self.id)))
    }

    /// The upstream session this call's requests come from (and their
    /// answers go to): the client's own, or the shared one for what the
    /// client declared.
    fn answer_slot(&self) -> &SessionSlot {
        match &self.slot {
            Some(slot) => slot,
            None => self.upstream.shared_for(self.asks),
        }
    }

    /// Whether the upstream's request is input a 2026-07-28 client can
    /// give through an `InputRequiredResult` (a 2025 upstream asking).
    fn holds_for_input(&self, request: &Value) -> bool {
        self.session.is_none()
            && !self.adapt.upstream_modern
            && request
                .get("method")
                .and_then(Value::as_str)
                .is_some_and(|method| self.asks.covers(method))
    }

    /// A request the upstream makes of the client in the middle of a call
    /// (2025 upstreams): relayed on this call's stream.
    async fn relay_upstream_request(&self, request: Value, tx: &mpsc::Sender<Bytes>) {
        match &self.session {
            Some(session) => {
                standalone::ask_client_on(&self.upstream, self.slot.as_ref(), session, request, tx)
                    .await
            }
            None => {
                self.upstream
                    .refuse_server_request(Some(self.answer_slot()), &request)
                    .await
            }
        }
    }

    /// MRTR toward a 2025 client: asks it each input the upstream wants,
    /// then retries the original request with the answers. Returns the
    /// retry's reply (a stream, or a response to look at).
    async fn answer_input(
        &mut self,
        response: &Value,
        round: usize,
        tx: &mpsc::Sender<Bytes>,
    ) -> Result<
        (
            Option<mpsc::Receiver<Result<Value, UpstreamError>>>,
            Option<Value>,
        ),
        RpcError,
    > {
        let refuse = |why: String| RpcError::new(jsonrpc::INTERNAL_ERROR, why);
        if round > MAX_INPUT_ROUNDS {
            return Err(refuse(format!(
                "upstream {} asked for input more than {MAX_INPUT_ROUNDS} times",
                self.upstream.name
            )));
        }
        let session = self
            .session
            .clone()
            .ok_or_else(|| refuse("no session".into()))?;
        let result = &response["result"];
        let mut answers = Map::new();
        if let Some(requests) = result.get("inputRequests").and_then(Value::as_object) {
            for (key, input) in requests {
                let method = input
                    .get("method")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !session.can_answer(method) {
                    return Err(refuse(format!(
                        "upstream {} needs {method}, which this client did not declare",
                        self.upstream.name
                    )));
                }
                let (client_id, answer) = session.ask();
                let ask = json!({
                    "jsonrpc": "2.0", "id": client_id, "method": method,
                    "params": input.get("params").cloned().unwrap_or_else(|| json!({})),
                });
                if tx.send(frame(&ask)).await.is_err() {
                    session.forget_ask(&client_id);
                    return Err(refuse("the client went away".into()));
                }
                let answered = tokio::select! {
                    answered = tokio::time::timeout(self.upstream.spec.timeout, answer) => answered,
                    _ = cancelled(self.tracked.as_ref()) => {
                        session.forget_ask(&client_id);
                        return Err(cancelled_failure().1);
                    }
                };
                let answered = match answered {
                    Ok(Ok(answered)) => answered,
                    _ => {
                        session.forget_ask(&client_id);
                        return Err(refuse(format!(
                            "the client did not answer {method} in time"
                        )));
                    }
                };
                match answered.get("result") {
                    Some(result) => {
                        answers.insert(key.clone(), result.clone());
                    }
                    None => {
                        let message = answered
                            .pointer("/error/message")
                            .and_then(Value::as_str)
                            .unwrap_or("no result");
                        return Err(refuse(format!("the client refused {method}: {message}")));
                    }
                }
            }
        }
        let mut retry = self.retry_template.clone().expect("set when bridging");
        // MRTR: the retry is a new request (new id) carrying the answers
        // and, verbatim, the upstream's state.
        retry["id"] = json!(format!("{}-input-{round}", self.id));
        let params = retry
            .as_object_mut()
            .and_then(|m| m.get_mut("params"))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| refuse("request without params".into()))?;
        params.insert("inputResponses".into(), Value::Object(answers));
        match result.get("requestState") {
            Some(state) => params.insert("requestState".into(), state.clone()),
            None => params.remove("requestState"),
        };
        let reply = send(
            &self.upstream,
            retry,
            self.slot.as_deref(),
            Some(&session),
            session.asks,
            &self.forwarded,
        )
        .await
        .map_err(|error| upstream_failure(&self.upstream, error).1)?;
        match reply {
            Reply::Stream { messages, .. } => Ok((Some(messages), None)),
            Reply::Json { body, .. } => serde_json::from_slice(&body)
                .map(|value| (None, Some(value)))
                .map_err(|e| refuse(format!("upstream answered with invalid JSON: {e}"))),
            Reply::Accepted => Err(refuse(
                "upstream accepted a request without answering".into(),
            )),
        }
    }
}

/// Sends a notification from `upstream` on the client's own stream, if it
/// holds one; one it has fallen too far behind to take is dropped (and
/// logged), never waited for.
fn notify_client(session: &ClientSession, message: &Value, upstream: &str) {
    if let Some(stream) = session.stream()
        && stream.try_send(frame(message)).is_err()
    {
        tracing::debug!(upstream, "client stream full: notification dropped");
    }
}

/// One message as an event-stream frame.
fn frame(message: &Value) -> Bytes {
    sse::encode_message(message.to_string().as_bytes())
}

/// The code 2025-era servers answer an unknown resource with.
const LEGACY_RESOURCE_NOT_FOUND: i64 = -32002;

/// Bridges result shapes when the client's era differs from the upstream's.
struct Adapt {
    client_modern: bool,
    upstream_modern: bool,
    /// The method's 2026-07-28 result is a `CacheableResult`.
    cacheable: bool,
}

impl Adapt {
    fn needed(&self) -> bool {
        self.client_modern != self.upstream_modern
    }

    fn apply(&self, response: &mut Value) {
        if !self.needed() {
            return;
        }
        // 2025's "resource not found" (-32002) is -32602 in 2026-07-28
        // (SEP-2164).
        if self.client_modern
            && let Some(code) = response.pointer_mut("/error/code")
            && *code == LEGACY_RESOURCE_NOT_FOUND
        {
            *code = jsonrpc::INVALID_PARAMS.into();
        }
        let Some(result) = response.get_mut("result").and_then(Value::as_object_mut) else {
            return;
        };
        if self.client_modern {
            result
                .entry("resultType")
                .or_insert_with(|| "complete".into());
            if self.cacheable {
                // 2026-07-28 requires caching hints a 2025 upstream never
                // gives: the safe ones are "stale at once, for this
                // caller only".
                result.entry("ttlMs").or_insert_with(|| 0.into());
                result
                    .entry("cacheScope")
                    .or_insert_with(|| "private".into());
            }
        } else if result.get("resultType").and_then(Value::as_str) == Some("input_required") {
            // Reached only when the input could not be bridged.
            let error = RpcError::new(
                jsonrpc::INTERNAL_ERROR,
                "the upstream asked for client input (2026-07-28 InputRequiredResult) \
                 that this session cannot answer",
            );
            let id = response.get("id").cloned();
            *response = error.response(id.as_ref());
        } else {
            // A 2025 client knows nothing of 2026-07-28's fields; keep
            // results tidy for strict clients.
            result.remove("resultType");
            if self.cacheable {
                result.remove("ttlMs");
                result.remove("cacheScope");
            }
        }
    }
}
