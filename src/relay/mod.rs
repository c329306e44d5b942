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
//! Here: forwarding and the answer that comes back whole; `stream` relays
//! an answer that streams, `adapt` bridges result shapes between eras.
//! [`standalone`]: what an upstream sends a 2025 client outside any call;
//! [`subscriptions`]: resource subscriptions across eras.

pub mod input;
pub mod standalone;
pub mod subscriptions;
pub mod tasks;

mod adapt;
mod own_session;
mod stream;

use adapt::Adapt;
use own_session::OwnSession;
use stream::Relay;

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::exchange::{Client, Failure, Outcome, Request};
use crate::jsonrpc::{self, RpcError};
use crate::protocol::{self, Era, Relayable};
use crate::sessions::{ClientSession, Tracked};
use crate::sse;
use crate::traces::SpanKind;
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
    forward_with(request, upstream, message, id, Vec::new()).await
}

/// [`forward_request`], with `headers` sent besides the forwarded ones.
pub async fn forward_with(
    request: &Request<'_>,
    upstream: &Arc<Upstream>,
    message: Value,
    id: &Value,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
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
    let with_headers;
    let base = if headers.is_empty() {
        request.forwarded.as_slice()
    } else {
        with_headers = [request.forwarded.as_slice(), &headers].concat();
        with_headers.as_slice()
    };
    let forwarded = match span.context() {
        None => base,
        Some(context) => {
            traced_headers = context.inject(&mut message, base);
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
    let (session, slot, asks) = client_of(request, upstream, &message);
    // A 2026-07-28 call that may need input of a 2025 HTTP upstream runs
    // in an upstream session of its own (relay::own_session).
    let mut own_session = None;
    if session.is_none() && OwnSession::wanted(upstream, asks, &message) {
        match OwnSession::open(upstream, asks, &message).await {
            Ok(opened) => own_session = Some(opened),
            Err(error) => {
                let failure = upstream_failure(upstream, error);
                span.fail_rpc(&failure.1);
                return Err(failure);
            }
        }
    }
    let slot = slot.or_else(|| own_session.as_ref().map(|own| own.slot.clone()));
    match (&session, &slot) {
        (Some(session), Some(slot)) => {
            standalone::follow_before_call(upstream, slot, session).await
        }
        (None, None) => standalone::follow_asking_before_call(upstream, asks).await,
        _ => {}
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
        task_prefix: (request.scope.is_none() && tasks::may_carry_ids(&message))
            .then(|| upstream.prefix.clone()),
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
    let reply = match (reply, own_session.as_mut()) {
        (
            Ok(Reply::Stream {
                messages,
                session_id,
            }),
            Some(own),
        ) => Ok(Reply::Stream {
            messages: own.merge(messages),
            session_id,
        }),
        (reply, _) => reply,
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
        _own_session: own_session,
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

/// Forwards a request whose answer the gateway reads itself (a page of
/// `tasks/list` to merge), in the client's own upstream session: the final
/// response, with what came before it dropped.
pub async fn fetch(
    request: &Request<'_>,
    upstream: &Upstream,
    message: Value,
) -> Result<Value, Failure> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let (session, slot, asks) = client_of(request, upstream, &message);
    let reply = send(
        upstream,
        message,
        slot.as_deref(),
        session.as_deref(),
        asks,
        &request.forwarded,
    )
    .await
    .map_err(|error| upstream_failure(upstream, error))?;
    let response = crate::upstream::single_response(reply, &id)
        .await
        .map_err(|error| upstream_failure(upstream, error))?;
    match response.get("error") {
        Some(error) => Err((StatusCode::OK, RpcError::from_wire(error))),
        None => Ok(response),
    }
}

/// The client's session and its slot with `upstream` (2025 clients), and
/// what the client can be asked, should a 2025 upstream ask: a 2025 client
/// declared it once, a 2026-07-28 one says so per request.
fn client_of(
    request: &Request<'_>,
    upstream: &Upstream,
    message: &Value,
) -> (
    Option<Arc<ClientSession>>,
    Option<Arc<SessionSlot>>,
    Relayable,
) {
    match &request.client {
        Client::Legacy(session) => (
            Some(session.clone()),
            Some(session.slot(&upstream.name)),
            session.asks,
        ),
        Client::Modern => {
            let declared = message
                .pointer("/params/_meta")
                .and_then(|meta| meta.get(protocol::META_CLIENT_CAPABILITIES));
            (None, None, Relayable::of(declared))
        }
    }
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
