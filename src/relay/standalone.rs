//! What a 2025-era upstream sends a client outside any call.
//!
//! Real servers send requests unrelated to a client request (the TS SDK 1.x
//! does when a tool handler calls `createMessage`, `elicitInput` or
//! `listRoots` without its related request id; server-everything asks for
//! `roots/list` right after initialization), and log and resource
//! notifications, on the standalone GET stream of the session. So while a
//! client holds its own stream (GET, or the HTTP+SSE stream), the gateway
//! holds the GET stream of each of that client's upstream sessions and
//! relays what arrives: requests under an id of the client session's, the
//! answer taken back to the same upstream session; notifications as they
//! are. List changes are left to the catalog, which announces them once
//! for every client.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::front::sessions::ClientSession;
use crate::jsonrpc;
use crate::pool::Pool;
use crate::sse;
use crate::upstream::session::SessionSlot;
use crate::upstream::{Upstream, UpstreamError};

/// How often a follower looks whether it is still needed (it holds the
/// client's stream weakly, so it cannot wait on it).
const RECHECK: Duration = Duration::from_secs(5);

/// How long a request from the upstream waits for the client's stream
/// when the client has none yet (its GET may trail its first call).
const STREAM_WAIT: Duration = Duration::from_secs(2);

/// Follows the streams of every upstream session the client holds: called
/// when the client opens its stream.
pub fn follow_all(pool: &Pool, session: &Arc<ClientSession>) {
    for (name, slot) in session.upstream_slots() {
        if slot.peek().is_none() {
            continue;
        }
        if let Some(upstream) = pool.upstream(&name) {
            let session = session.clone();
            tokio::spawn(async move { start(&upstream, &slot, &session).await });
        }
    }
}

/// Before a client's call to an upstream: makes sure its upstream session
/// exists and its stream is followed, so that a request the upstream sends
/// during the call has somewhere to go (a TS SDK 1.x server drops one sent
/// while no GET stream is open, and the call then waits for its timeout).
/// Costs a handshake and a GET once per client session and upstream.
pub async fn follow_before_call(
    upstream: &Arc<Upstream>,
    slot: &Arc<SessionSlot>,
    session: &Arc<ClientSession>,
) {
    start(upstream, slot, session).await;
}

/// Opens the upstream session's stream and relays it in the background,
/// unless a follower already does.
async fn start(upstream: &Arc<Upstream>, slot: &Arc<SessionSlot>, session: &Arc<ClientSession>) {
    if !upstream.may_stream_to_clients() || !session.start_following(&upstream.name) {
        return;
    }
    match upstream
        .open_client_stream(slot, session.client_info.as_ref(), &session.capabilities)
        .await
    {
        Ok(Some(messages)) => {
            tokio::spawn(follow(
                upstream.clone(),
                slot.clone(),
                session.clone(),
                messages,
            ));
        }
        // Stays claimed: this upstream offers no stream, so asking again
        // on each call would cost a request for nothing.
        Ok(None) => {}
        Err(error) => {
            session.stop_following(&upstream.name);
            // The call (if any) reports its own failure.
            tracing::debug!(upstream = %upstream.name, "no stream for a client's upstream session: {error}");
        }
    }
}

/// Before a 2026-07-28 client's call to a 2025-era HTTP upstream, when it
/// declares capabilities: follows the stream of the shared session that
/// declares the same ones. What the upstream sends there, unrelated to any
/// call, cannot be attributed to one of the many clients sharing it, so a
/// request is answered at once with an error (a TS SDK 1.x server would
/// otherwise drop it for want of a stream, and its tool wait for its
/// timeout).
pub async fn follow_asking_before_call(upstream: &Arc<Upstream>, capabilities: Option<&Value>) {
    if !upstream.may_stream_to_clients() || !upstream.claim_asking_stream(capabilities) {
        return;
    }
    match upstream.open_asking_stream(capabilities).await {
        Ok(Some(messages)) => {
            tokio::spawn(refuse_unattributable(
                upstream.clone(),
                capabilities.cloned(),
                messages,
            ));
        }
        // Stays claimed: no stream to follow.
        Ok(None) => {}
        Err(error) => {
            upstream.release_asking_stream(capabilities);
            tracing::debug!(upstream = %upstream.name, "no stream for a shared session: {error}");
        }
    }
}

async fn refuse_unattributable(
    upstream: Arc<Upstream>,
    capabilities: Option<Value>,
    mut messages: Messages,
) {
    // One of the gateway's own sessions' streams.
    let _open = crate::metrics::Live::WatchStream.held();
    while let Some(Ok(message)) = messages.recv().await {
        if message.get("id").is_some() && message.get("method").is_some() {
            let slot = upstream.shared_for(capabilities.as_ref());
            upstream.refuse_server_request(Some(slot), &message).await;
        }
    }
    upstream.release_asking_stream(capabilities.as_ref());
}

type Messages = mpsc::Receiver<Result<Value, UpstreamError>>;

/// Relays one upstream session's stream until it ends, or until the client
/// has neither a stream of its own nor a call in flight.
async fn follow(
    upstream: Arc<Upstream>,
    slot: Arc<SessionSlot>,
    session: Arc<ClientSession>,
    mut messages: Messages,
) {
    let _open = crate::metrics::Live::FollowedStream.held();
    loop {
        let message = match tokio::time::timeout(RECHECK, messages.recv()).await {
            Err(_) if session.stream().is_none() && !session.has_calls_in_flight() => break,
            Err(_) => continue,
            Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(message))) => message,
        };
        let method = message.get("method").and_then(Value::as_str);
        match (method, message.get("id")) {
            (Some(_), Some(_)) => {
                // Answered in the background: the stream goes on meanwhile.
                tokio::spawn(ask_client(
                    upstream.clone(),
                    slot.clone(),
                    session.clone(),
                    message,
                ));
            }
            (Some(method), None) if method.ends_with("/list_changed") => {}
            (Some(_), None) => {
                if let Some(stream) = session.stream()
                    && stream.try_send(frame(&message)).is_err()
                {
                    tracing::debug!(upstream = %upstream.name, "client stream full: notification dropped");
                }
            }
            _ => {}
        }
    }
    session.stop_following(&upstream.name);
    tracing::debug!(upstream = %upstream.name, session = %session.id, "stopped following a client's upstream session");
}

/// Relays a request the upstream made of the client (sampling, elicitation,
/// roots, ping) on `stream` (the client's own, or the stream of one of its
/// calls) under an id of the client session's, and answers the upstream on
/// the session it asked on when the client answers, or with an error when
/// the client cannot or does not.
pub async fn ask_client_on(
    upstream: &Arc<Upstream>,
    slot: Option<&Arc<SessionSlot>>,
    session: &Arc<ClientSession>,
    request: Value,
    stream: &mpsc::Sender<Bytes>,
) {
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !session.can_answer(method) {
        upstream
            .refuse_server_request(slot.map(|s| &**s), &request)
            .await;
        return;
    }
    let upstream_id = request.get("id").cloned().unwrap_or(Value::Null);
    let (client_id, answer) = session.ask();
    let mut relayed = request;
    relayed["id"] = client_id.clone();
    if stream.send(frame(&relayed)).await.is_err() {
        session.forget_ask(&client_id);
        upstream
            .refuse_server_request(slot.map(|s| &**s), &relayed)
            .await;
        return;
    }
    let upstream = upstream.clone();
    let slot = slot.cloned();
    let session = session.clone();
    let timeout = upstream.spec.timeout;
    // The upstream goes on meanwhile; the answer travels on its own POST,
    // whenever the client sends it.
    tokio::spawn(async move {
        let reply = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            _ => {
                session.forget_ask(&client_id);
                json!({ "error": { "code": jsonrpc::INTERNAL_ERROR,
                                   "message": "the client did not answer in time" } })
            }
        };
        upstream
            .answer_server_request(slot.as_deref(), upstream_id, reply)
            .await;
    });
}

/// A request on the upstream session's stream: relayed on the client's own
/// stream, waiting briefly for one if the client's GET trails its call.
async fn ask_client(
    upstream: Arc<Upstream>,
    slot: Arc<SessionSlot>,
    session: Arc<ClientSession>,
    request: Value,
) {
    let waited_until = tokio::time::Instant::now() + STREAM_WAIT;
    let stream = loop {
        match session.stream() {
            Some(stream) => break Some(stream),
            None if tokio::time::Instant::now() >= waited_until => break None,
            None => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    };
    match stream {
        Some(stream) => ask_client_on(&upstream, Some(&slot), &session, request, &stream).await,
        None => upstream.refuse_server_request(Some(&slot), &request).await,
    }
}

fn frame(message: &Value) -> Bytes {
    sse::encode_message(message.to_string().as_bytes())
}
