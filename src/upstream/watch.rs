//! Following an upstream once it is connected: its change notifications
//! (the 2025 GET stream, a 2026 `subscriptions/listen` stream, or a stdio
//! child's own output) and the health probe.

use std::time::Duration;

use http::HeaderValue;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::session::SessionSlot;
use super::{
    Caller, Era, Link, Reply, Upstream, UpstreamError, gateway_meta, response_result,
    single_response,
};
use crate::protocol::{self, Relayable};

/// Something the upstream told the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// One of its lists changed: fetch them again.
    ListChanged,
}

/// How a watch ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// The upstream offers no change stream: rely on the probe.
    Unsupported,
    /// The upstream closed the stream (a restart, or a tear-down).
    Closed,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the built-in tools' list is looked at again.
const BUILTIN_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

impl Upstream {
    /// Reads the upstream's change notifications until the stream ends,
    /// sending a signal for each list change.
    pub async fn watch(&self, signals: mpsc::Sender<Signal>) -> Result<WatchEnd, UpstreamError> {
        let era = self
            .era()
            .ok_or_else(|| UpstreamError::NotReady("not connected".into()))?;
        match &**self.link() {
            Link::Builtin(_) => {
                // Its list changes when Flux or cert-manager is installed
                // or removed: look again now and then; the catalog
                // announces only a real difference.
                let mut ticker = tokio::time::interval(BUILTIN_RECHECK);
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    if signals.send(Signal::ListChanged).await.is_err() {
                        return Ok(WatchEnd::Closed);
                    }
                }
            }
            Link::Http(link) => {
                let mut messages = if *era == Era::Modern {
                    match self.open_listen().await? {
                        Some(messages) => messages,
                        None => return Ok(WatchEnd::Unsupported),
                    }
                } else {
                    let deadline = Instant::now() + PROBE_TIMEOUT;
                    let session = self
                        .shared
                        .get_or_init(|| self.initialize(None, deadline))
                        .await?;
                    match link
                        .open_stream(session.id.as_ref(), &session.version, session.endpoint)
                        .await?
                    {
                        Some(messages) => messages,
                        None => return Ok(WatchEnd::Unsupported),
                    }
                };
                let _open = crate::metrics::Live::WatchStream.held();
                while let Some(message) = messages.recv().await {
                    let message = message?;
                    if message.get("id").is_some() && message.get("method").is_some() {
                        self.refuse_server_request(None, &message).await;
                    } else if is_list_changed(&message)
                        && signals.send(Signal::ListChanged).await.is_err()
                    {
                        return Ok(WatchEnd::Closed);
                    }
                }
                Ok(WatchEnd::Closed)
            }
            Link::Sse(_) => {
                let deadline = Instant::now() + PROBE_TIMEOUT;
                let session = self
                    .shared
                    .get_or_init(|| self.initialize(None, deadline))
                    .await?;
                let connection = session
                    .sse
                    .clone()
                    .ok_or_else(|| UpstreamError::NotReady("no HTTP+SSE session".into()))?;
                follow_notifications(connection.duplex.notifications()?, &signals).await
            }
            Link::Stdio(link) => {
                let notifications = link.notifications().await?;
                if *era == Era::Modern {
                    // A 2026 server sends change notifications only to a
                    // listener; its answer (at tear-down) is ignored.
                    let listen = listen_request(json!(format!("sb-listen-{}", link.generation())));
                    link.send(&listen, None, Instant::now() + PROBE_TIMEOUT, None, None)
                        .await?;
                }
                follow_notifications(notifications, &signals).await
            }
        }
    }

    /// Opens the GET stream of a client's own session with a 2025-era HTTP
    /// upstream, establishing that session first if it has none, so that
    /// what the upstream sends outside any call (sampling, elicitation and
    /// roots requests; log and resource notifications) can reach that
    /// client. `None` where no such stream exists (other eras and
    /// transports, or an upstream that offers none).
    pub async fn open_client_stream(
        &self,
        slot: &SessionSlot,
        client_info: Option<&Value>,
        client_capabilities: &Value,
    ) -> Result<Option<mpsc::Receiver<Result<Value, UpstreamError>>>, UpstreamError> {
        let Some(link) = self.legacy_http() else {
            return Ok(None);
        };
        let client = client_info.map(|info| (info, client_capabilities));
        self.open_session_stream(link, slot, client).await
    }

    /// Opens the GET stream of the shared session for callers that can be
    /// asked `asks` (see [`Upstream::shared_for`]), establishing it if
    /// needed. `None` as for [`Upstream::open_client_stream`].
    pub async fn open_asking_stream(
        &self,
        asks: Relayable,
    ) -> Result<Option<mpsc::Receiver<Result<Value, UpstreamError>>>, UpstreamError> {
        let Some(link) = self.legacy_http().filter(|_| !asks.is_empty()) else {
            return Ok(None);
        };
        let (info, declared) = (protocol::implementation(), asks.declared());
        self.open_session_stream(link, self.shared_for(asks), Some((&info, &declared)))
            .await
    }

    async fn open_session_stream(
        &self,
        link: &super::http::HttpLink,
        slot: &SessionSlot,
        client: Option<(&Value, &Value)>,
    ) -> Result<Option<mpsc::Receiver<Result<Value, UpstreamError>>>, UpstreamError> {
        let deadline = Instant::now() + PROBE_TIMEOUT;
        let session = slot
            .get_or_init(|| Box::pin(self.initialize(client, deadline)))
            .await?;
        link.open_stream(session.id.as_ref(), &session.version, session.endpoint)
            .await
    }

    /// Whether a client's own session with this upstream has a stream of
    /// its own to follow (2025-era Streamable HTTP).
    pub fn may_stream_to_clients(&self) -> bool {
        self.legacy_http().is_some()
    }

    /// The link of a 2025-era Streamable HTTP upstream: the one kind whose
    /// sessions have GET streams of their own.
    fn legacy_http(&self) -> Option<&super::http::HttpLink> {
        match &**self.link() {
            Link::Http(link) if self.era().is_some_and(|era| *era != Era::Modern) => Some(link),
            _ => None,
        }
    }

    /// Opens `subscriptions/listen` on a modern HTTP upstream; `None` when
    /// it does not offer one.
    async fn open_listen(
        &self,
    ) -> Result<Option<mpsc::Receiver<Result<Value, UpstreamError>>>, UpstreamError> {
        self.listen(listen_request(self.fresh_id())).await
    }

    /// Opens `subscriptions/listen` on a modern HTTP upstream for
    /// `notifications/resources/updated` of `uris` (what replaced 2025's
    /// `resources/subscribe`); `None` when it offers no such stream.
    pub async fn listen_to_resources(
        &self,
        uris: &[String],
    ) -> Result<Option<mpsc::Receiver<Result<Value, UpstreamError>>>, UpstreamError> {
        let message = json!({
            "jsonrpc": "2.0", "id": self.fresh_id(), "method": "subscriptions/listen",
            "params": {
                "_meta": gateway_meta(),
                "notifications": { "resourceSubscriptions": uris },
            },
        });
        self.listen(message).await
    }

    async fn listen(
        &self,
        message: Value,
    ) -> Result<Option<mpsc::Receiver<Result<Value, UpstreamError>>>, UpstreamError> {
        let Link::Http(link) = &**self.link() else {
            return Ok(None);
        };
        let version = HeaderValue::from_static(protocol::MODERN);
        let headers = super::http::PostHeaders {
            version: Some(&version),
            session: None,
            method: Some("subscriptions/listen"),
            name: None,
            forwarded: &[],
            endpoint: None,
        };
        let body = bytes::Bytes::from(message.to_string());
        let expect = message.get("id").cloned();
        match link
            .post(body, &headers, expect, super::http::far_future(), None)
            .await?
        {
            Reply::Stream { messages, .. } => Ok(Some(messages)),
            // An error answer (method not found): no change stream here.
            Reply::Json { .. } | Reply::Accepted => Ok(None),
        }
    }

    /// A cheap request proving the upstream answers: `ping` on the shared
    /// session (re-established if the upstream lost it), or
    /// `server/discover` on a modern upstream.
    pub async fn probe(&self, timeout: Duration) -> Result<(), UpstreamError> {
        let era = self
            .era()
            .ok_or_else(|| UpstreamError::NotReady("not connected".into()))?;
        let method = if *era == Era::Modern {
            "server/discover"
        } else {
            "ping"
        };
        let message = json!({
            "jsonrpc": "2.0", "id": self.fresh_id(), "method": method,
            "params": { "_meta": gateway_meta() },
        });
        let caller = Caller::default();
        let deadline = Instant::now() + timeout;
        let (reply, id) = self.request(message, &[], caller, deadline).await?;
        response_result(single_response(reply, &id).await?).map(|_| ())
    }
}

/// Signals each list change a shared channel (stdio, HTTP+SSE) reports,
/// until the channel closes.
async fn follow_notifications(
    mut notifications: broadcast::Receiver<Value>,
    signals: &mpsc::Sender<Signal>,
) -> Result<WatchEnd, UpstreamError> {
    loop {
        match notifications.recv().await {
            Ok(message) if is_list_changed(&message) => {
                if signals.send(Signal::ListChanged).await.is_err() {
                    return Ok(WatchEnd::Closed);
                }
            }
            Ok(_) => {}
            // Missed some: the lists may have changed meanwhile.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let _ = signals.send(Signal::ListChanged).await;
            }
            Err(broadcast::error::RecvError::Closed) => {
                return Err(UpstreamError::Broken(
                    "the upstream's channel closed".into(),
                ));
            }
        }
    }
}

fn listen_request(id: Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
        "params": {
            "_meta": gateway_meta(),
            "notifications": {
                "toolsListChanged": true,
                "promptsListChanged": true,
                "resourcesListChanged": true,
            },
        },
    })
}

fn is_list_changed(message: &Value) -> bool {
    matches!(
        message.get("method").and_then(Value::as_str),
        Some(
            "notifications/tools/list_changed"
                | "notifications/prompts/list_changed"
                | "notifications/resources/list_changed"
        )
    )
}
