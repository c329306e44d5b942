//! Legacy (2025-era) client sessions: what `initialize` established, and
//! the upstream sessions pinned to it for affinity.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::metrics::{Held, Live};
use crate::protocol::Relayable;
use crate::upstream::session::SessionSlot;

/// How a client session is opened: under which id, on which transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// Streamable HTTP, under a fresh random id.
    Fresh,
    /// Streamable HTTP, under an id the gateway made (a sealed one, new or
    /// restored).
    Given(Arc<str>),
    /// The 2024-11-05 HTTP+SSE transport, under the id its `endpoint`
    /// event named.
    Sse(Arc<str>),
}

/// One client session with the gateway.
pub struct ClientSession {
    pub id: Arc<str>,
    /// Negotiated in `initialize`; sent back by the client as `MCP-Protocol-Version`.
    pub version: &'static str,
    pub client_info: Option<Value>,
    /// What the client declared in `initialize` (sampling, elicitation,
    /// roots): passed on to upstreams so they may ask it.
    pub capabilities: Value,
    /// What it can be asked, worked out once from `capabilities`.
    pub asks: Relayable,
    /// The endpoint the session was opened on: `None` for `/mcp`, or the
    /// server name of `/servers/{name}/mcp`. A session is only valid there.
    pub scope: Option<Arc<str>>,
    /// The authenticated subject that opened it (`None` without auth): only
    /// that subject may use it.
    pub subject: Option<Arc<str>>,
    /// One upstream session per upstream, created on first use: affinity.
    /// A short list (one entry per upstream used), so a plain vector: a
    /// map per session would cost more memory than the session itself.
    upstreams: Mutex<Vec<(Arc<str>, Arc<SessionSlot>)>>,
    /// Set by `logging/setLevel`; sent per request to modern upstreams.
    log_level: Mutex<Option<Arc<str>>>,
    /// Milliseconds since the table's epoch at the last request: idle
    /// sessions expire.
    last_used: AtomicU64,
    /// The client's requests being forwarded, by id, so that its
    /// `notifications/cancelled` can stop them.
    in_flight: Mutex<HashMap<String, Arc<Notify>>>,
    /// Requests the gateway sent to the client (relayed from upstreams),
    /// by the id the client sees, awaiting its answer; each counted while
    /// it waits.
    awaiting: Mutex<HashMap<String, (oneshot::Sender<Value>, Held)>>,
    next_request: AtomicU64,
    /// The client's own stream (GET, or the HTTP+SSE stream), held weakly:
    /// the stream ends when the listeners drop it, whoever else relays on it.
    stream: Mutex<Option<mpsc::WeakSender<Bytes>>>,
    /// Woken when the client opens a stream, or a call's answer starts
    /// streaming.
    stream_opened: Notify,
    /// The answer streams of the client's calls in flight, by upstream:
    /// where a request an upstream sends outside any call goes while the
    /// client holds no stream of its own.
    call_streams: Mutex<Vec<CallStream>>,
    next_call_stream: AtomicU64,
    /// Resources the client subscribed to on 2026-07-28 upstreams, which
    /// take subscriptions on a `subscriptions/listen` stream the gateway
    /// holds for the client (`relay::subscriptions`).
    pub resource_subscriptions: Mutex<Vec<(Arc<str>, ResourceSubscriptions)>>,
    /// Upstreams whose session stream is being relayed to this client
    /// (`relay::standalone`): at most one follower each.
    following: Mutex<Vec<(Arc<str>, watch::Receiver<bool>)>>,
    /// Counts this session for as long as anything holds it.
    _live: Held,
}

/// Whether a client's upstream session stream is followed (see
/// [`ClientSession::start_following`]).
pub enum Following {
    /// By the caller now: it says `true` on the claim once it is open.
    Claimed(watch::Sender<bool>),
    /// By another, which says so here once it is open.
    Opening(watch::Receiver<bool>),
    Open,
}

/// A client session's resource subscriptions with one upstream, and the
/// task that follows them (stopped when they are dropped).
pub struct ResourceSubscriptions {
    pub uris: std::collections::BTreeSet<String>,
    pub follower: Option<tokio::task::AbortHandle>,
}

impl Drop for ResourceSubscriptions {
    fn drop(&mut self) {
        if let Some(follower) = self.follower.take() {
            follower.abort();
        }
    }
}

/// A forwarded request of the client's, registered while it runs.
/// The answer stream of one call in flight, to `upstream`.
struct CallStream {
    key: u64,
    upstream: Arc<str>,
    stream: mpsc::WeakSender<Bytes>,
}

/// A call's answer stream lent to its upstream's other requests; returned
/// when dropped.
pub struct LentStream {
    session: Arc<ClientSession>,
    key: u64,
}

impl Drop for LentStream {
    fn drop(&mut self) {
        lock(&self.session.call_streams).retain(|lent| lent.key != self.key);
    }
}

pub struct Tracked {
    session: Arc<ClientSession>,
    key: String,
    cancel: Arc<Notify>,
}

impl Tracked {
    /// Resolves when the client cancels the request.
    pub async fn cancelled(&self) {
        self.cancel.notified().await
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        lock(&self.session.in_flight).remove(&self.key);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClientSession {
    /// Registers a request of the client's while it is forwarded.
    pub fn track(self: &Arc<Self>, id: &Value) -> Tracked {
        let key = id.to_string();
        let cancel = Arc::new(Notify::new());
        lock(&self.in_flight).insert(key.clone(), cancel.clone());
        Tracked {
            session: self.clone(),
            key,
            cancel,
        }
    }

    /// The client cancelled one of its requests; false if none is running.
    pub fn cancel(&self, id: &Value) -> bool {
        match lock(&self.in_flight).get(&id.to_string()) {
            Some(cancel) => {
                cancel.notify_one();
                true
            }
            None => false,
        }
    }

    /// Whether the client declared the capability a server-to-client
    /// request needs.
    pub fn can_answer(&self, method: &str) -> bool {
        method == "ping" || self.asks.covers(method)
    }

    /// A request for the client: its id (unique in this session) and where
    /// the answer will arrive.
    pub fn ask(&self) -> (Value, oneshot::Receiver<Value>) {
        let id = format!(
            "sb-ask-{}",
            self.next_request.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, rx) = oneshot::channel();
        let id = Value::String(id);
        lock(&self.awaiting).insert(id.to_string(), (tx, Live::AwaitingAnswer.held()));
        (id, rx)
    }

    /// Whether a request of the gateway's own waits for an answer with `id`.
    pub fn has_waiter(&self, id: &Value) -> bool {
        lock(&self.awaiting).contains_key(&id.to_string())
    }

    /// The client answered a request of ours; false if none had that id.
    pub fn answer(&self, id: &Value, response: Value) -> bool {
        // Taken out before sending: the lock is not held while the
        // waiter wakes.
        let waiter = lock(&self.awaiting).remove(&id.to_string());
        match waiter {
            Some((waiter, _held)) => waiter.send(response).is_ok(),
            None => false,
        }
    }

    /// Gives up waiting for an answer (timed out, or the call ended).
    pub fn forget_ask(&self, id: &Value) {
        lock(&self.awaiting).remove(&id.to_string());
    }

    /// The session is gone (deleted, expired, its stream closed): no
    /// answer can come any more, so whoever waits for one learns it now
    /// rather than at its timeout, and lets go of the session.
    pub fn end(&self) {
        let awaiting = std::mem::take(&mut *lock(&self.awaiting));
        drop(awaiting);
        // Their listen streams stop with them.
        let subscriptions = std::mem::take(&mut *lock(&self.resource_subscriptions));
        drop(subscriptions);
    }

    pub fn set_log_level(&self, level: &str) {
        *self.log_level.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::from(level));
    }

    pub fn log_level(&self) -> Option<Arc<str>> {
        self.log_level
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes `stream` the one messages for the client travel on (a new
    /// GET replaces the previous one).
    pub fn set_stream(&self, stream: &mpsc::Sender<Bytes>) {
        *lock(&self.stream) = Some(stream.downgrade());
        self.stream_opened.notify_waiters();
    }

    /// Where a request `upstream` sends outside any call reaches the
    /// client: its own stream, or else the answer stream of one of its calls
    /// to that upstream; waiting up to `wait` for one (a client's GET may
    /// trail its first call).
    pub async fn stream_for_within(
        &self,
        upstream: &str,
        wait: Duration,
    ) -> Option<mpsc::Sender<Bytes>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let opened = self.stream_opened.notified();
            tokio::pin!(opened);
            // Registered before looking, so an opening in between is seen.
            opened.as_mut().enable();
            if let Some(stream) = self.stream().or_else(|| self.call_stream(upstream)) {
                return Some(stream);
            }
            tokio::time::timeout_at(deadline, opened).await.ok()?;
        }
    }

    fn call_stream(&self, upstream: &str) -> Option<mpsc::Sender<Bytes>> {
        lock(&self.call_streams)
            .iter()
            .filter(|lent| *lent.upstream == *upstream)
            .find_map(|lent| lent.stream.upgrade().filter(|tx| !tx.is_closed()))
    }

    /// Lends the answer stream of a call to `upstream` to that upstream's
    /// requests outside any call (see [`ClientSession::stream_for_within`])
    /// until the guard drops with the call's relay.
    pub fn lend_call_stream(
        self: &Arc<Self>,
        upstream: &Arc<str>,
        stream: &mpsc::Sender<Bytes>,
    ) -> LentStream {
        let key = self.next_call_stream.fetch_add(1, Ordering::Relaxed);
        lock(&self.call_streams).push(CallStream {
            key,
            upstream: upstream.clone(),
            stream: stream.downgrade(),
        });
        self.stream_opened.notify_waiters();
        LentStream {
            session: self.clone(),
            key,
        }
    }

    /// The client's open stream, if it holds one.
    pub fn stream(&self) -> Option<mpsc::Sender<Bytes>> {
        lock(&self.stream)
            .as_ref()
            .and_then(mpsc::WeakSender::upgrade)
            .filter(|tx| !tx.is_closed())
    }

    /// Claims the following of `upstream`'s session stream, unless
    /// another follower has it (open, or still opening).
    pub fn start_following(&self, upstream: &Arc<str>) -> Following {
        let mut following = lock(&self.following);
        match following.iter().find(|(name, _)| name == upstream) {
            // What every call after the first finds: no copy, no wait.
            Some((_, open)) if *open.borrow() => Following::Open,
            Some((_, open)) => Following::Opening(open.clone()),
            None => {
                let (claim, open) = watch::channel(false);
                following.push((upstream.clone(), open));
                Following::Claimed(claim)
            }
        }
    }

    pub fn stop_following(&self, upstream: &str) {
        lock(&self.following).retain(|(name, _)| &**name != upstream);
    }

    /// Whether any request of the client's is being forwarded.
    pub fn has_calls_in_flight(&self) -> bool {
        !lock(&self.in_flight).is_empty()
    }

    /// The upstream sessions this client session holds.
    pub fn upstream_slots(&self) -> Vec<(Arc<str>, Arc<SessionSlot>)> {
        lock(&self.upstreams).clone()
    }

    /// The slot for `upstream`, created empty on first use.
    pub fn slot(&self, upstream: &Arc<str>) -> Arc<SessionSlot> {
        let mut upstreams = lock(&self.upstreams);
        if let Some((_, slot)) = upstreams.iter().find(|(name, _)| name == upstream) {
            return slot.clone();
        }
        let slot = Arc::new(SessionSlot::default());
        upstreams.push((upstream.clone(), slot.clone()));
        slot
    }
}

/// 128 random bits, hex: visible ASCII as the transports require.
pub fn new_id() -> Arc<str> {
    Arc::from(uuid::Uuid::new_v4().simple().to_string())
}

pub struct Sessions {
    by_id: DashMap<Arc<str>, Arc<ClientSession>>,
    epoch: Instant,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            by_id: DashMap::new(),
            epoch: Instant::now(),
        }
    }
}

impl Sessions {
    /// Open client sessions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Opens a session.
    pub fn open(
        &self,
        opening: Opening,
        version: &'static str,
        client_info: Option<Value>,
        capabilities: Value,
        scope: Option<Arc<str>>,
        subject: Option<Arc<str>>,
    ) -> Arc<ClientSession> {
        let (id, live) = match opening {
            Opening::Fresh => (new_id(), Live::ClientSession),
            Opening::Given(id) => (id, Live::ClientSession),
            Opening::Sse(id) => (id, Live::SseClientSession),
        };
        let session = Arc::new(ClientSession {
            id: id.clone(),
            version,
            client_info,
            asks: Relayable::of(Some(&capabilities)),
            capabilities,
            scope,
            subject,
            upstreams: Mutex::default(),
            in_flight: Mutex::default(),
            awaiting: Mutex::default(),
            next_request: AtomicU64::new(1),
            log_level: Mutex::new(None),
            stream: Mutex::new(None),
            stream_opened: Notify::new(),
            call_streams: Mutex::new(Vec::new()),
            next_call_stream: AtomicU64::new(0),
            following: Mutex::default(),
            resource_subscriptions: Mutex::default(),
            last_used: AtomicU64::new(self.now_ms()),
            _live: live.held(),
        });
        self.by_id.insert(id, session.clone());
        session
    }

    /// The session with `id`, marked as used now.
    pub fn get(&self, id: &str) -> Option<Arc<ClientSession>> {
        let session = self.by_id.get(id).map(|s| s.clone())?;
        session.last_used.store(self.now_ms(), Ordering::Relaxed);
        Some(session)
    }

    /// Removes and returns the sessions unused for longer than `idle`.
    pub fn expire(&self, idle: Duration) -> Vec<Arc<ClientSession>> {
        let cutoff = self.now_ms().saturating_sub(idle.as_millis() as u64);
        let expired: Vec<Arc<str>> = self
            .by_id
            .iter()
            .filter(|s| s.last_used.load(Ordering::Relaxed) < cutoff)
            .map(|s| s.key().clone())
            .collect();
        expired.iter().filter_map(|id| self.remove(id)).collect()
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn remove(&self, id: &str) -> Option<Arc<ClientSession>> {
        self.by_id.remove(id).map(|(_, s)| s)
    }
}
