//! Request/response matching for transports whose answers come back on one
//! shared channel rather than per request: a stdio child's stdout, and the
//! stream of a 2024-11-05 HTTP+SSE connection.
//!
//! The caller has already given each request an id unique on the channel;
//! progress tokens are replaced here with ones unique on the channel too,
//! and mapped back on the way out.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::{InFlight, Reply, UpstreamError};
use crate::jsonrpc;

/// Where messages toward the upstream go.
pub trait Outlet: Sync {
    fn send(&self, message: &Value) -> impl Future<Output = Result<(), UpstreamError>> + Send;
}

/// Requests awaiting their response, by id; each gets its progress
/// notifications and then its response on its channel.
#[derive(Default)]
struct Waiting {
    by_id: HashMap<String, mpsc::Sender<Value>>,
    /// Our progress token → (the caller's token, the request's id key).
    progress: HashMap<String, (Value, String)>,
}

impl Waiting {
    fn forget(&mut self, key: &str) {
        self.by_id.remove(key);
        self.progress.retain(|_, (_, owner)| owner != key);
    }
}

pub struct Duplex {
    waiting: Mutex<Waiting>,
    /// Notifications the upstream sends (list_changed and the like); taken
    /// on close, which ends every receiver.
    notifications: Mutex<Option<broadcast::Sender<Value>>>,
    closed: AtomicBool,
    /// Says what the channel is, in errors ("process", "connection").
    what: &'static str,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Duplex {
    pub fn new(what: &'static str) -> Duplex {
        Duplex {
            waiting: Mutex::default(),
            notifications: Mutex::new(Some(broadcast::channel(16).0)),
            closed: AtomicBool::new(false),
            what,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The upstream's notifications; the receiver ends when the channel closes.
    pub fn notifications(&self) -> Result<broadcast::Receiver<Value>, UpstreamError> {
        lock(&self.notifications)
            .as_ref()
            .map(broadcast::Sender::subscribe)
            .ok_or_else(|| UpstreamError::Broken(format!("the {} is gone", self.what)))
    }

    /// The channel ended: every caller still waiting learns it now.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        lock(&self.notifications).take();
        *lock(&self.waiting) = Waiting::default();
    }

    /// Sends one message through `outlet` and, for a request, waits for its
    /// response (with its progress notifications, as a stream, when the
    /// request asked for progress).
    pub async fn call(
        self: &Arc<Self>,
        outlet: &impl Outlet,
        message: &Value,
        expect_id: Option<Value>,
        deadline: Instant,
        in_flight: Option<InFlight>,
    ) -> Result<Reply, UpstreamError> {
        let Some(id) = expect_id else {
            if let Some(in_flight) = in_flight {
                in_flight.done();
            }
            outlet.send(message).await?;
            return Ok(Reply::Accepted);
        };
        let key = id.to_string();
        let (tx, mut rx) = mpsc::channel(16);
        lock(&self.waiting).by_id.insert(key.clone(), tx);
        let token = message.pointer("/params/_meta/progressToken").cloned();
        let written = match &token {
            Some(token) => {
                let ours = format!("sbp-{key}");
                lock(&self.waiting).progress.insert(
                    Value::String(ours.clone()).to_string(),
                    (token.clone(), key.clone()),
                );
                let mut message = message.clone();
                message["params"]["_meta"]["progressToken"] = Value::String(ours);
                outlet.send(&message).await
            }
            None => outlet.send(message).await,
        };
        if let Err(error) = written {
            lock(&self.waiting).forget(&key);
            if let Some(in_flight) = in_flight {
                in_flight.done(); // never sent
            }
            return Err(error);
        }
        let gone = || UpstreamError::Broken(format!("the {} closed before answering", self.what));
        if token.is_none() {
            // However this wait ends (answer, timeout, caller gone), the
            // entry goes.
            let _forget = Forget(self, &key);
            return match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => Err(UpstreamError::Timeout),
                Ok(None) => Err(gone()),
                Ok(Some(response)) => {
                    if let Some(in_flight) = in_flight {
                        in_flight.done();
                    }
                    Ok(Reply::Json {
                        body: Bytes::from(response.to_string()),
                        status: http::StatusCode::OK,
                        session_id: None,
                    })
                }
            };
        }
        let (out, messages) = mpsc::channel(16);
        let gone = gone();
        let duplex = self.clone();
        // The stream outlives this call: it ends at the response, or when
        // its caller leaves (then `in_flight` tells the upstream).
        tokio::spawn(async move {
            let mut in_flight = in_flight;
            loop {
                let next = tokio::select! {
                    next = tokio::time::timeout_at(deadline, rx.recv()) => next,
                    _ = out.closed() => break,
                };
                let message = match next {
                    Err(_) => {
                        let _ = out.send(Err(UpstreamError::Timeout)).await;
                        break;
                    }
                    Ok(None) => {
                        let _ = out.send(Err(gone)).await;
                        break;
                    }
                    Ok(Some(message)) => message,
                };
                let done = jsonrpc::is_response(&message);
                if done && let Some(in_flight) = in_flight.take() {
                    in_flight.done();
                }
                if out.send(Ok(message)).await.is_err() || done {
                    break;
                }
            }
            lock(&duplex.waiting).forget(&key);
        });
        Ok(Reply::Stream {
            messages,
            session_id: None,
        })
    }

    /// Routes one message from the upstream. Returns the answer to send
    /// back when it is a request the gateway cannot relay.
    pub async fn dispatch(&self, message: Value) -> Option<Value> {
        let id = message.get("id");
        if jsonrpc::is_response(&message) {
            let key = id.map(Value::to_string).unwrap_or_default();
            let waiter = lock(&self.waiting).by_id.remove(&key);
            if let Some(waiter) = waiter {
                let _ = waiter.send(message).await;
            }
            return None;
        }
        let method = message.get("method").and_then(Value::as_str);
        if method == Some("notifications/progress") {
            // Back to the request it belongs to, with the caller's token.
            let token = message
                .pointer("/params/progressToken")
                .map(Value::to_string);
            let target = token.and_then(|token| {
                let waiting = lock(&self.waiting);
                let (original, key) = waiting.progress.get(&token)?.clone();
                Some((original, waiting.by_id.get(&key)?.clone()))
            });
            if let Some((original, waiter)) = target {
                let mut message = message;
                message["params"]["progressToken"] = original;
                let _ = waiter.try_send(message);
            }
            return None;
        }
        if let (Some(id), Some(method)) = (id, method) {
            // A request of the upstream's on the shared channel belongs to
            // no single client call: answer at once rather than leave the
            // upstream waiting.
            return Some(json!({
                "jsonrpc": "2.0", "id": id,
                "error": { "code": jsonrpc::METHOD_NOT_FOUND,
                           "message": format!("switchboard does not relay {method} on this transport") },
            }));
        }
        if method.is_some()
            && let Some(notifications) = lock(&self.notifications).as_ref()
        {
            // Nobody listening is fine: then nobody needs to know.
            let _ = notifications.send(message);
        }
        None
    }
}

struct Forget<'a>(&'a Duplex, &'a str);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.0.waiting).forget(self.1);
    }
}
