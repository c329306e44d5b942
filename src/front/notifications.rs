//! Long-lived client streams and the change notifications sent on them:
//! the 2025 GET stream of a session and 2026-07-28 `subscriptions/listen`
//! streams. One task fans each catalog change out to every stream whose
//! endpoint and filter it concerns; one ticker keeps idle streams alive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::catalog::{CatalogChange, Changes};
use crate::metrics::{Held, Live};
use crate::sse;

/// Interval of keep-alive comments on long-lived streams.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Frames queued per stream; a client that falls this far behind misses
/// notifications it would only learn again from (list_changed is idempotent).
const QUEUE: usize = 32;

/// Which list changes a stream wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
}

impl Filter {
    pub const ALL: Filter = Filter {
        tools: true,
        prompts: true,
        resources: true,
    };
}

struct Listener {
    /// The endpoint the stream was opened on (`None`: `/mcp`).
    scope: Option<Arc<str>>,
    filter: Filter,
    /// The `subscriptions/listen` request id (2026); `None` on a GET stream.
    subscription: Option<Value>,
    tx: mpsc::Sender<Bytes>,
}

/// The receiving end of a GET or `subscriptions/listen` stream, owned by
/// the response body: when the client goes and the body is dropped, the
/// stream leaves the table at once (not at the next keep-alive, up to
/// [`KEEP_ALIVE`] later) and stops being counted.
pub struct Opened {
    pub frames: mpsc::Receiver<Bytes>,
    entry: Entry,
}

impl Opened {
    /// The frames, with what must live as long as the response body.
    pub fn into_parts(self) -> (mpsc::Receiver<Bytes>, impl Send + Sync + 'static) {
        (self.frames, self.entry)
    }
}

struct Entry {
    listeners: Weak<Listeners>,
    key: u64,
    /// The 2025 session whose GET stream this is.
    session: Option<Arc<str>>,
    _held: Held,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let Some(listeners) = self.listeners.upgrade() else {
            return;
        };
        listeners.by_key.remove(&self.key);
        if let Some(session) = &self.session {
            // Unless a newer GET of the session replaced this one.
            listeners
                .by_session
                .remove_if(session, |_, key| *key == self.key);
        }
    }
}

/// Every open stream.
#[derive(Default)]
pub struct Listeners {
    next: AtomicU64,
    /// Keyed by a counter; a legacy session's GET stream is also indexed
    /// by session so that a new GET replaces the old one (each message goes
    /// to exactly one stream of a session).
    by_key: DashMap<u64, Listener>,
    by_session: DashMap<Arc<str>, u64>,
    /// list_changed notifications handed to streams, for `/metrics`.
    delivered: AtomicU64,
}

impl Listeners {
    /// Open streams (GET and `subscriptions/listen`).
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// list_changed notifications delivered since start.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Opens a GET stream for a 2025 session; the sender is for the
    /// session to relay its upstreams' messages on (see
    /// [`ClientSession::set_stream`](crate::sessions::ClientSession::set_stream)).
    pub fn open_session_stream(
        self: &Arc<Self>,
        session: Arc<str>,
        scope: Option<Arc<str>>,
    ) -> (Opened, mpsc::Sender<Bytes>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let key = self.attach_session_stream(session.clone(), scope, tx.clone());
        let opened = Opened {
            frames: rx,
            entry: self.entry(key, Some(session), Live::GetStream),
        };
        (opened, tx)
    }

    /// Makes `tx` the stream of a 2025 session's notifications (the
    /// HTTP+SSE transport's one stream carries everything); returns its key.
    pub fn attach_session_stream(
        &self,
        session: Arc<str>,
        scope: Option<Arc<str>>,
        tx: mpsc::Sender<Bytes>,
    ) -> u64 {
        let key = self.add(scope, Filter::ALL, None, tx);
        if let Some(previous) = self.by_session.insert(session, key) {
            self.by_key.remove(&previous);
        }
        key
    }

    fn entry(self: &Arc<Self>, key: u64, session: Option<Arc<str>>, kind: Live) -> Entry {
        Entry {
            listeners: Arc::downgrade(self),
            key,
            session,
            _held: kind.held(),
        }
    }

    /// Opens a `subscriptions/listen` stream; its first frame is the
    /// acknowledgement of what the gateway will send (the list changes of
    /// `filter`, updates of the `resources` it found owners for). The
    /// sender is for those updates.
    pub fn open_subscription(
        self: &Arc<Self>,
        id: Value,
        scope: Option<Arc<str>>,
        filter: Filter,
        resources: &[String],
    ) -> (Opened, mpsc::Sender<Bytes>) {
        let mut honoured = serde_json::Map::new();
        for (key, on) in [
            ("toolsListChanged", filter.tools),
            ("promptsListChanged", filter.prompts),
            ("resourcesListChanged", filter.resources),
        ] {
            if on {
                honoured.insert(key.into(), true.into());
            }
        }
        if !resources.is_empty() {
            honoured.insert("resourceSubscriptions".into(), json!(resources));
        }
        let ack = json!({
            "jsonrpc": "2.0",
            "method": "notifications/subscriptions/acknowledged",
            "params": {
                "_meta": { crate::protocol::META_SUBSCRIPTION_ID: id },
                "notifications": honoured,
            },
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = tx.try_send(sse::encode_message(ack.to_string().as_bytes()));
        let key = self.add(scope, filter, Some(id), tx.clone());
        let opened = Opened {
            frames: rx,
            entry: self.entry(key, None, Live::ListenStream),
        };
        (opened, tx)
    }

    /// Ends every stream (shutdown): clients reconnect to another replica.
    pub fn close_all(&self) {
        self.by_key.clear();
        self.by_session.clear();
    }

    pub fn end_session(&self, session: &str) {
        if let Some((_, key)) = self.by_session.remove(session) {
            self.by_key.remove(&key);
        }
    }

    fn add(
        &self,
        scope: Option<Arc<str>>,
        filter: Filter,
        subscription: Option<Value>,
        tx: mpsc::Sender<Bytes>,
    ) -> u64 {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.by_key.insert(
            key,
            Listener {
                scope,
                filter,
                subscription,
                tx,
            },
        );
        key
    }

    /// Sends the notifications a change means to each stream it concerns.
    pub fn deliver(&self, change: &CatalogChange) {
        let mut closed = Vec::new();
        for listener in self.by_key.iter() {
            let changes = change.for_scope(listener.scope.as_deref());
            for method in methods(changes, listener.filter) {
                let mut notification = json!({ "jsonrpc": "2.0", "method": method });
                if let Some(id) = &listener.subscription {
                    notification["params"] =
                        json!({ "_meta": { crate::protocol::META_SUBSCRIPTION_ID: id } });
                }
                let frame = sse::encode_message(notification.to_string().as_bytes());
                match listener.tx.try_send(frame) {
                    Ok(()) => {
                        self.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => closed.push(*listener.key()),
                    Err(mpsc::error::TrySendError::Full(_)) => {}
                }
            }
        }
        self.forget(closed);
    }

    /// Keep-alive comments; also finds streams whose client went away.
    fn keep_alive(&self) {
        let closed: Vec<u64> = self
            .by_key
            .iter()
            .filter(|l| {
                matches!(
                    l.tx.try_send(Bytes::from_static(sse::KEEP_ALIVE)),
                    Err(mpsc::error::TrySendError::Closed(_))
                )
            })
            .map(|l| *l.key())
            .collect();
        self.forget(closed);
    }

    fn forget(&self, keys: Vec<u64>) {
        for key in keys {
            self.by_key.remove(&key);
        }
        if !self.by_session.is_empty() {
            self.by_session
                .retain(|_, key| self.by_key.contains_key(key));
        }
    }

    /// Delivers catalog changes and keep-alives until the pool goes away.
    pub async fn run(self: Arc<Self>, mut changes: broadcast::Receiver<Arc<CatalogChange>>) {
        let mut ticker = tokio::time::interval(KEEP_ALIVE);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) => self.deliver(&change),
                    // Missed some: tell everyone everything may have changed.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.deliver(&everything_changed()),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick() => self.keep_alive(),
            }
        }
    }
}

fn everything_changed() -> CatalogChange {
    let all = Changes {
        tools: true,
        prompts: true,
        resources: true,
    };
    CatalogChange {
        aggregate: all,
        servers: Default::default(),
    }
}

fn methods(changes: Changes, filter: Filter) -> impl Iterator<Item = &'static str> {
    [
        (
            changes.tools && filter.tools,
            "notifications/tools/list_changed",
        ),
        (
            changes.prompts && filter.prompts,
            "notifications/prompts/list_changed",
        ),
        (
            changes.resources && filter.resources,
            "notifications/resources/list_changed",
        ),
    ]
    .into_iter()
    .filter(|(send, _)| *send)
    .map(|(_, method)| method)
}
