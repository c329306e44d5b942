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
use serde_json::Value;
use tokio::sync::mpsc;

use crate::pool::Pool;
use crate::protocol::Relayable;
use crate::sessions::{ClientSession, Following};
use crate::upstream::session::SessionSlot;
use crate::upstream::{Upstream, UpstreamError};

/// How often a follower looks whether it is still needed (it holds the
/// client's stream weakly, so it cannot wait on it).
const RECHECK: Duration = Duration::from_secs(5);

/// How long a request from the upstream waits for a stream to the client
/// when there is none yet (its GET may trail its first call, or a call's
/// answer may not have started streaming).
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
            tokio::spawn(async move {
                start(&upstream, &slot, &session).await;
            });
        }
    }
}

/// Before a client's call to an upstream: makes sure its upstream session
/// exists and its stream is followed, so that a request the upstream sends
/// during the call has somewhere to go (a TS SDK 1.x server drops one sent
/// while no GET stream is open, and the call then waits for its timeout).
/// Costs a handshake and a GET once per client session and upstream; every
/// later call finds it open under one lock.
pub async fn follow_before_call(
    upstream: &Arc<Upstream>,
    slot: &Arc<SessionSlot>,
    session: &Arc<ClientSession>,
) {
    // Another follower may be opening it (the client's GET came first):
    // the call waits for that too, bounded.
    if let Some(mut open) = start(upstream, slot, session).await {
        let _ = tokio::time::timeout(OPEN_WAIT, open.wait_for(|open| *open)).await;
    }
}

/// How long a call waits for another follower to open the stream.
const OPEN_WAIT: Duration = Duration::from_secs(5);

/// Opens the upstream session's stream and relays it in the background,
/// unless a follower already does (then, if it is still opening: where it
/// says it is open).
async fn start(
    upstream: &Arc<Upstream>,
    slot: &Arc<SessionSlot>,
    session: &Arc<ClientSession>,
) -> Option<tokio::sync::watch::Receiver<bool>> {
    if !upstream.may_stream_to_clients() {
        return None;
    }
    let claim = match session.start_following(&upstream.name) {
        Following::Claimed(claim) => claim,
        Following::Opening(open) => return Some(open),
        Following::Open => return None,
    };
    match upstream
        .open_client_stream(slot, session.client_info.as_ref(), &session.capabilities)
        .await
    {
        Ok(Some(messages)) => {
            let _ = claim.send(true);
            tokio::spawn(follow(
                upstream.clone(),
                slot.clone(),
                session.clone(),
                messages,
                claim,
            ));
        }
        // Stays claimed: this upstream offers no stream, so asking again
        // on each call would cost a request for nothing.
        Ok(None) => {
            let _ = claim.send(true);
        }
        Err(error) => {
            session.stop_following(&upstream.name);
            // The call (if any) reports its own failure.
            tracing::debug!(upstream = %upstream.name, "no stream for a client's upstream session: {error}");
        }
    }
    None
}

/// Before a 2026-07-28 client's call to a 2025-era HTTP upstream, when it
/// declares capabilities: follows the stream of the shared session that
/// declares the same ones. What the upstream sends there, unrelated to any
/// call, cannot be attributed to one of the many clients sharing it, so a
/// request is answered at once with an error (a TS SDK 1.x server would
/// otherwise drop it for want of a stream, and its tool wait for its
/// timeout).
pub async fn follow_asking_before_call(upstream: &Arc<Upstream>, asks: Relayable) {
    if !upstream.may_stream_to_clients() || !upstream.claim_asking_stream(asks) {
        return;
    }
    match upstream.open_asking_stream(asks).await {
        Ok(Some(messages)) => {
            tokio::spawn(refuse_unattributable(upstream.clone(), asks, messages));
        }
        // Stays claimed: no stream to follow.
        Ok(None) => {}
        Err(error) => {
            upstream.release_asking_stream(asks);
            tracing::debug!(upstream = %upstream.name, "no stream for a shared session: {error}");
        }
    }
}

async fn refuse_unattributable(upstream: Arc<Upstream>, asks: Relayable, mut messages: Messages) {
    // One of the gateway's own sessions' streams.
    let _open = crate::metrics::Live::WatchStream.held();
    while let Some(Ok(message)) = messages.recv().await {
        if message.get("id").is_some() && message.get("method").is_some() {
            let slot = upstream.shared_for(asks);
            upstream.refuse_server_request(Some(slot), &message).await;
        }
    }
    upstream.release_asking_stream(asks);
}

type Messages = mpsc::Receiver<Result<Value, UpstreamError>>;

/// Relays one upstream session's stream until it ends, or until the client
/// has neither a stream of its own nor a call in flight.
async fn follow(
    upstream: Arc<Upstream>,
    slot: Arc<SessionSlot>,
    session: Arc<ClientSession>,
    mut messages: Messages,
    // Held while following: waiters see it close when this ends.
    _claim: tokio::sync::watch::Sender<bool>,
) {
    let _open = crate::metrics::Live::FollowedStream.held();
    loop {
        let message = match tokio::time::timeout(RECHECK, messages.recv()).await {
            Err(_) if session.stream().is_none() && !session.has_calls_in_flight() => break,
            Err(_) => continue,
            Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(message))) => message,
        };
        let mut message = message;
        // On /mcp a task's id carries its upstream's prefix (relay::tasks).
        if session.scope.is_none() && super::tasks::names_a_task(&message) {
            super::tasks::prefix_ids(&mut message, &upstream.prefix);
        }
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
            (Some(_), None) => super::notify_client(&session, &message, &upstream.name),
            _ => {}
        }
    }
    session.stop_following(&upstream.name);
    tracing::debug!(upstream = %upstream.name, session = %session.id, "stopped following a client's upstream session");
}

/// Relays a request the upstream made of the client (sampling, elicitation,
/// roots, ping) on `stream` (the client's own, or the stream of one of its
/// calls), or answers it with an error when the client cannot take it.
///
/// The id the client sees names the upstream and the upstream's own id
/// ([`relayed_id`]), so that whichever replica the client's answer reaches
/// takes it to the same upstream session ([`deliver_answer`]): a sealed
/// client session carries its upstream sessions to every replica. Nothing
/// waits on this replica; an unanswered request runs out on the
/// upstream's own timeout, as it would directly.
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
    let mut relayed = request;
    relayed["id"] = relayed_id(&upstream.name, &upstream_id);
    if stream.send(super::frame(&relayed)).await.is_err() {
        relayed["id"] = upstream_id;
        upstream
            .refuse_server_request(slot.map(|s| &**s), &relayed)
            .await;
    }
}

/// What the id of a relayed request starts with.
const RELAYED_PREFIX: &str = "sb:";

/// The id a relayed request carries to the client: the upstream's name and
/// its own id (names have no colon, so the first one ends the name).
fn relayed_id(upstream: &str, upstream_id: &Value) -> Value {
    Value::String(format!("{RELAYED_PREFIX}{upstream}:{upstream_id}"))
}

/// A 2025 client's answer to a relayed request, whichever replica relayed
/// it: sent to the upstream session this client session holds with the
/// upstream the id names. False when the id is not one of ours.
pub async fn deliver_answer(
    pool: &Pool,
    session: &ClientSession,
    id: &Value,
    answer: Value,
) -> bool {
    let Some((name, upstream_id)) = id
        .as_str()
        .and_then(|id| id.strip_prefix(RELAYED_PREFIX))
        .and_then(|rest| rest.split_once(':'))
    else {
        return false;
    };
    let (Some(upstream), Ok(upstream_id)) = (
        pool.upstream(name),
        serde_json::from_str::<Value>(upstream_id),
    ) else {
        return false;
    };
    // A stdio child (one session, whoever calls) asks on the gateway's own.
    let slot = session.slot(&upstream.name);
    let asked_on = slot.peek().is_some().then_some(&*slot);
    upstream
        .answer_server_request(asked_on, upstream_id, answer)
        .await;
    true
}

/// A request on the upstream session's stream: relayed on the client's own
/// stream, waiting briefly for one if the client's GET trails its call.
async fn ask_client(
    upstream: Arc<Upstream>,
    slot: Arc<SessionSlot>,
    session: Arc<ClientSession>,
    request: Value,
) {
    // The client's own stream, or else one of its calls' answer streams.
    match session.stream_for_within(&upstream.name, STREAM_WAIT).await {
        Some(stream) => ask_client_on(&upstream, Some(&slot), &session, request, &stream).await,
        None => upstream.refuse_server_request(Some(&slot), &request).await,
    }
}
