//! Upstream sessions for legacy (2025-era) upstreams, and the slot that
//! holds one: created lazily on first use, shared by concurrent callers,
//! replaced when the upstream says it is gone.

use std::future::Future;
use std::sync::Arc;

use http::HeaderValue;
use tokio::sync::RwLock;

use super::UpstreamError;
use crate::metrics::{Held, Live};

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
#[derive(Debug)]
pub struct SessionSlot {
    current: RwLock<Option<Filled>>,
    /// Whose session this slot holds, for the live counts.
    holder: Live,
}

/// A session in its slot, counted while it is there (and while the slot,
/// dropped with its client session, still holds it).
#[derive(Debug)]
struct Filled {
    session: Arc<UpstreamSession>,
    _held: Held,
}

/// A client's slot.
impl Default for SessionSlot {
    fn default() -> Self {
        SessionSlot {
            current: RwLock::new(None),
            holder: Live::ClientUpstreamSession,
        }
    }
}

impl SessionSlot {
    /// The gateway's own slot with an upstream.
    pub fn shared() -> SessionSlot {
        SessionSlot {
            current: RwLock::new(None),
            holder: Live::SharedUpstreamSession,
        }
    }

    fn fill(&self, session: Arc<UpstreamSession>) -> Filled {
        Filled {
            session,
            _held: self.holder.held(),
        }
    }

    pub async fn get_or_init<F, Fut>(&self, init: F) -> Result<Arc<UpstreamSession>, UpstreamError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<UpstreamSession, UpstreamError>>,
    {
        if let Some(filled) = self.current.read().await.as_ref() {
            return Ok(filled.session.clone());
        }
        let mut guard = self.current.write().await;
        if let Some(filled) = guard.as_ref() {
            return Ok(filled.session.clone());
        }
        let session = Arc::new(init().await?);
        *guard = Some(self.fill(session.clone()));
        Ok(session)
    }

    /// Forgets `lost` unless another caller already replaced it.
    pub async fn invalidate(&self, lost: &Arc<UpstreamSession>) {
        let mut guard = self.current.write().await;
        if guard
            .as_ref()
            .is_some_and(|f| Arc::ptr_eq(&f.session, lost))
        {
            *guard = None;
        }
    }

    /// Fills an empty slot with a session established elsewhere (at
    /// `initialize`, or carried in a sealed id).
    pub fn set(&self, session: Arc<UpstreamSession>) {
        if let Ok(mut guard) = self.current.try_write()
            && guard.is_none()
        {
            *guard = Some(self.fill(session));
        }
    }

    /// Empties the slot, returning what it held (to end it upstream).
    pub async fn take(&self) -> Option<Arc<UpstreamSession>> {
        self.current.write().await.take().map(|f| f.session)
    }

    pub fn peek(&self) -> Option<Arc<UpstreamSession>> {
        self.current
            .try_read()
            .ok()
            .and_then(|g| g.as_ref().map(|f| f.session.clone()))
    }
}
