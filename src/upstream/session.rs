//! Upstream sessions for legacy (2025-era) upstreams, and the slot that
//! holds one: created lazily on first use, shared by concurrent callers,
//! replaced when the upstream says it is gone.

use std::future::Future;
use std::sync::Arc;

use http::HeaderValue;
use tokio::sync::RwLock;

use super::UpstreamError;

/// One established upstream session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSession {
    /// `Mcp-Session-Id` the upstream issued; `None` when it issued none
    /// (a stateless 2025 server, or stdio).
    pub id: Option<HeaderValue>,
    /// Negotiated protocol version, sent as `MCP-Protocol-Version`.
    pub version: HeaderValue,
    /// For stdio: the child process the session belongs to.
    pub generation: u64,
    /// What the upstream declared in its `initialize` result.
    pub capabilities: serde_json::Value,
    /// For a Kubernetes Service: the pod that holds this session.
    pub endpoint: Option<std::net::SocketAddr>,
    /// For HTTP+SSE: the stream that is this session.
    pub sse: Option<Arc<super::legacy_sse::SseConnection>>,
}

/// Holds at most one session; `get_or_init` is single-flight so that
/// concurrent first calls of one client session create one upstream session.
#[derive(Debug, Default)]
pub struct SessionSlot {
    current: RwLock<Option<Arc<UpstreamSession>>>,
}

impl SessionSlot {
    pub async fn get_or_init<F, Fut>(&self, init: F) -> Result<Arc<UpstreamSession>, UpstreamError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<UpstreamSession, UpstreamError>>,
    {
        if let Some(session) = self.current.read().await.as_ref() {
            return Ok(session.clone());
        }
        let mut guard = self.current.write().await;
        if let Some(session) = guard.as_ref() {
            return Ok(session.clone());
        }
        let session = Arc::new(init().await?);
        *guard = Some(session.clone());
        Ok(session)
    }

    /// Forgets `lost` unless another caller already replaced it.
    pub async fn invalidate(&self, lost: &Arc<UpstreamSession>) {
        let mut guard = self.current.write().await;
        if guard.as_ref().is_some_and(|s| Arc::ptr_eq(s, lost)) {
            *guard = None;
        }
    }

    /// Fills an empty slot with a session established elsewhere (at
    /// `initialize`, or carried in a sealed id).
    pub fn set(&self, session: Arc<UpstreamSession>) {
        if let Ok(mut guard) = self.current.try_write() {
            guard.get_or_insert(session);
        }
    }

    /// Empties the slot, returning what it held (to end it upstream).
    pub async fn take(&self) -> Option<Arc<UpstreamSession>> {
        self.current.write().await.take()
    }

    pub fn peek(&self) -> Option<Arc<UpstreamSession>> {
        self.current.try_read().ok().and_then(|g| g.clone())
    }
}
