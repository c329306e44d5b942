//! Resource subscriptions across eras.
//!
//! 2026-07-28 replaced `resources/subscribe` and `unsubscribe` with the
//! `resourceSubscriptions` of a `subscriptions/listen` stream.
//!
//! A 2025 client with a 2026-07-28 upstream: the gateway keeps, per client
//! session and upstream, the URIs the client subscribed to and one listen
//! stream naming them (opened again when the set changes), and relays each
//! `notifications/resources/updated` on the client's own stream, as a 2025
//! server would send it.
//!
//! A 2026-07-28 client's listen stream naming resources ([`listen_to`]):
//! for each upstream that owns some of them, a listen stream of its own
//! (2026 upstream) or, from a 2025 upstream, a session held for this
//! stream alone that subscribes to them and is followed; each update goes
//! on the client's stream under the client's subscription id, until the
//! client goes.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::protocol::{self, Era};
use crate::sessions::{ClientSession, ResourceSubscriptions};
use crate::upstream::session::SessionSlot;
use crate::upstream::{Call, Caller, Upstream, UpstreamError};

/// Wait before listening again after the upstream ended the stream.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// How long a subscribe waits for the upstream to acknowledge the listen
/// stream, so that an update right after it is not missed.
const ACKNOWLEDGE_WAIT: Duration = Duration::from_secs(3);

/// Subscribes (`subscribe` true) or unsubscribes the client to `uri` on a
/// 2026-07-28 `upstream`; returns once the upstream listens for the new set.
pub async fn set(
    upstream: &Arc<Upstream>,
    session: &Arc<ClientSession>,
    uri: &str,
    subscribe: bool,
) {
    let (listening, acknowledged) = tokio::sync::oneshot::channel();
    if !change(upstream, session, uri, subscribe, listening) {
        return;
    }
    let _ = tokio::time::timeout(ACKNOWLEDGE_WAIT, acknowledged).await;
}

/// Changes the set; true when a new listen stream is being opened.
fn change(
    upstream: &Arc<Upstream>,
    session: &Arc<ClientSession>,
    uri: &str,
    subscribe: bool,
    listening: tokio::sync::oneshot::Sender<()>,
) -> bool {
    let mut all = session
        .resource_subscriptions
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let index = match all.iter().position(|(name, _)| *name == upstream.name) {
        Some(index) => index,
        None if !subscribe => return false,
        None => {
            all.push((
                upstream.name.clone(),
                ResourceSubscriptions {
                    uris: BTreeSet::new(),
                    follower: None,
                },
            ));
            all.len() - 1
        }
    };
    let changed = if subscribe {
        all[index].1.uris.insert(uri.to_string())
    } else {
        all[index].1.uris.remove(uri)
    };
    if !changed {
        return false;
    }
    if all[index].1.uris.is_empty() {
        all.remove(index); // its follower stops
        return false;
    }
    let uris: Vec<String> = all[index].1.uris.iter().cloned().collect();
    let follower = tokio::spawn(follow(
        upstream.clone(),
        Arc::downgrade(session),
        uris,
        listening,
    ));
    if let Some(previous) = all[index].1.follower.replace(follower.abort_handle()) {
        previous.abort();
    }
    true
}

/// Listens for updates of `uris` until stopped (the set changed, or the
/// session is gone), listening again when the upstream ends the stream.
async fn follow(
    upstream: Arc<Upstream>,
    session: Weak<ClientSession>,
    uris: Vec<String>,
    listening: tokio::sync::oneshot::Sender<()>,
) {
    // A stream held for one client, like a followed session's.
    let _open = crate::metrics::Live::FollowedStream.held();
    let mut updates = updates_of(upstream.clone(), uris, Some(listening));
    while let Some(mut message) = updates.recv().await {
        let Some(session) = session.upgrade() else {
            return;
        };
        // A 2025 client knows nothing of the subscription id.
        if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
            protocol::strip_modern_meta(params);
        }
        super::notify_client(&session, &message, &upstream.name);
    }
}

/// The `notifications/resources/updated` a 2026-07-28 `upstream` sends
/// for `uris`, on a listen stream opened again whenever it ends, until the
/// receiver is dropped; `listening` is told at the upstream's first
/// message (its acknowledgement). Ends at once for an upstream that offers
/// no listen stream.
fn updates_of(
    upstream: Arc<Upstream>,
    uris: Vec<String>,
    mut listening: Option<tokio::sync::oneshot::Sender<()>>,
) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            match upstream.listen_to_resources(&uris).await {
                Ok(Some(mut messages)) => loop {
                    let message = tokio::select! {
                        message = messages.recv() => message,
                        _ = tx.closed() => return,
                    };
                    let Some(Ok(message)) = message else { break };
                    if let Some(listening) = listening.take() {
                        let _ = listening.send(());
                    }
                    let updated = message.get("method").and_then(Value::as_str)
                        == Some("notifications/resources/updated");
                    if updated && tx.send(message).await.is_err() {
                        return;
                    }
                },
                Ok(None) => {
                    tracing::info!(upstream = %upstream.name, "offers no subscriptions/listen: resource subscriptions not delivered");
                    return;
                }
                Err(error) => {
                    tracing::debug!(upstream = %upstream.name, "resource subscriptions: {error}");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RELISTEN_AFTER) => {}
                _ = tx.closed() => return,
            }
        }
    });
    rx
}

/// How long a 2026-07-28 client's listen stream waits for its upstreams
/// to listen for the resources it names, before acknowledging.
pub const LISTEN_WAIT: Duration = Duration::from_secs(3);

/// The updates of some resources of one upstream, for a 2026-07-28
/// client's listen stream (see [`listen_to`]).
pub struct Listening {
    /// Fires once the upstream listens for them (or gives up).
    pub ready: tokio::sync::oneshot::Receiver<()>,
    updates: mpsc::Receiver<Bytes>,
}

impl Listening {
    /// Passes the updates on to the client's stream until it closes; the
    /// upstream's side ends then too.
    pub fn deliver_to(mut self, frames: mpsc::Sender<Bytes>) {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    update = self.updates.recv() => {
                        let Some(frame) = update else { return };
                        if frames.send(frame).await.is_err() {
                            return;
                        }
                    }
                    _ = frames.closed() => return,
                }
            }
        });
    }
}

/// Listens for updates of `uris`, which `upstream` owns, for a 2026-07-28
/// client's `resourceSubscriptions`: each update comes framed, under the
/// client's `subscription` id, until the [`Listening`] is dropped. An
/// upstream with no way to tell (stdio, the 2024 transport) is logged and
/// sends nothing.
pub fn listen_to(upstream: Arc<Upstream>, uris: Vec<String>, subscription: Value) -> Listening {
    let (ready, ready_rx) = tokio::sync::oneshot::channel();
    let (frames, updates) = mpsc::channel(16);
    let wanted = Updates {
        uris: uris.into_iter().collect(),
        subscription,
        frames,
        ready: std::sync::Mutex::new(Some(ready)),
    };
    tokio::spawn(async move {
        let _open = crate::metrics::Live::FollowedStream.held();
        let closed = wanted.frames.clone();
        tokio::select! {
            _ = follow_for_listener(&upstream, &wanted) => {}
            _ = closed.closed() => {}
        }
    });
    Listening {
        ready: ready_rx,
        updates,
    }
}

/// What one listen stream wants of one upstream, and where it goes.
struct Updates {
    uris: BTreeSet<String>,
    subscription: Value,
    frames: mpsc::Sender<Bytes>,
    ready: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Updates {
    /// The upstream listens now.
    fn listening(&self) {
        if let Some(ready) = self.ready.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = ready.send(());
        }
    }

    /// Passes on an update of a wanted URI under the client's id; false
    /// once the client's stream is gone.
    async fn pass(&self, mut message: Value) -> bool {
        let wanted = message.get("method").and_then(Value::as_str)
            == Some("notifications/resources/updated")
            && message
                .pointer("/params/uri")
                .and_then(Value::as_str)
                .is_some_and(|uri| self.uris.contains(uri));
        if !wanted {
            return true;
        }
        if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
            params.insert(
                "_meta".into(),
                json!({ protocol::META_SUBSCRIPTION_ID: self.subscription }),
            );
        }
        self.frames.send(super::frame(&message)).await.is_ok()
    }
}

async fn follow_for_listener(upstream: &Arc<Upstream>, updates: &Updates) {
    let uris: Vec<String> = updates.uris.iter().cloned().collect();
    if upstream.era().is_some_and(|era| *era == Era::Modern) {
        let listening = updates
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut updated = updates_of(upstream.clone(), uris, listening);
        while let Some(message) = updated.recv().await {
            if !updates.pass(message).await {
                return;
            }
        }
        return;
    }
    if !upstream.may_stream_to_clients() {
        tracing::info!(upstream = %upstream.name, "a 2025 upstream without a session stream: resource subscriptions not delivered");
        return;
    }
    // A session of this stream's own: what it subscribes to, and the
    // updates on its stream, are this client's alone. Ended with it.
    let slot = SessionSlot::default();
    loop {
        match subscribed_stream(upstream, &slot, &uris).await {
            Ok(Some(mut messages)) => {
                updates.listening();
                while let Some(Ok(message)) = messages.recv().await {
                    if message.get("id").is_some() && message.get("method").is_some() {
                        upstream.refuse_server_request(Some(&slot), &message).await;
                    } else if !updates.pass(message).await {
                        break;
                    }
                }
            }
            Ok(None) => break,
            Err(error) => {
                tracing::debug!(upstream = %upstream.name, "resource subscriptions: {error}")
            }
        }
        if updates.frames.is_closed() {
            break;
        }
        tokio::time::sleep(RELISTEN_AFTER).await;
    }
    upstream.end_session(&slot).await;
}

/// Opens the session's stream (the session first, if need be), then
/// subscribes to each URI in it.
async fn subscribed_stream(
    upstream: &Upstream,
    slot: &SessionSlot,
    uris: &[String],
) -> Result<Option<mpsc::Receiver<Result<Value, UpstreamError>>>, UpstreamError> {
    let info = protocol::implementation();
    let Some(stream) = upstream
        .open_client_stream(slot, Some(&info), &json!({}))
        .await?
    else {
        return Ok(None);
    };
    for (n, uri) in uris.iter().enumerate() {
        let id = json!(format!("sb-subscribe-{n}"));
        let message = json!({ "jsonrpc": "2.0", "id": id,
                              "method": "resources/subscribe", "params": { "uri": uri } });
        let call = Call {
            message,
            forwarded: &[],
            caller: Caller {
                slot: Some(slot),
                client_info: Some(&info),
                ..Caller::default()
            },
        };
        // Read to its end: a dropped answer would cancel the subscribe.
        let response = crate::upstream::single_response(upstream.call(call).await?, &id).await?;
        if let Some(error) = response.get("error") {
            tracing::info!(upstream = %upstream.name, uri, "resources/subscribe refused: {error}");
        }
    }
    Ok(Some(stream))
}
