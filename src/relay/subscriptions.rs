//! Resource subscriptions of a 2025 client with a 2026-07-28 upstream.
//!
//! That era replaced `resources/subscribe` and `unsubscribe` with the
//! `resourceSubscriptions` of a `subscriptions/listen` stream. So the
//! gateway keeps, per client session and upstream, the URIs the client
//! subscribed to and one listen stream naming them (opened again when the
//! set changes), and relays each `notifications/resources/updated` on the
//! client's own stream, as a 2025 server would send it.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;

use crate::protocol;
use crate::sessions::{ClientSession, ResourceSubscriptions};
use crate::upstream::Upstream;

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
    // Told once: the stream's first message is the upstream's
    // acknowledgement of what it will send.
    let mut listening = Some(listening);
    loop {
        match upstream.listen_to_resources(&uris).await {
            Ok(Some(mut messages)) => {
                // A stream held for one client, like a followed session's.
                let _open = crate::metrics::Live::FollowedStream.held();
                while let Some(Ok(mut message)) = messages.recv().await {
                    if let Some(listening) = listening.take() {
                        let _ = listening.send(());
                    }
                    if message.get("method").and_then(Value::as_str)
                        != Some("notifications/resources/updated")
                    {
                        continue;
                    }
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
            Ok(None) => {
                tracing::info!(upstream = %upstream.name, "offers no subscriptions/listen: resource subscriptions not delivered");
                return;
            }
            Err(error) => {
                tracing::debug!(upstream = %upstream.name, "resource subscriptions: {error}");
            }
        }
        if session.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RELISTEN_AFTER).await;
    }
}
