//! The sessions an upstream is spoken to in: the gateway's shared one, one
//! per set of capabilities clients declared (a 2025 upstream lists and asks
//! by what its session declared), and a 2025 client's own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use tokio::time::Instant;

use super::session::{SessionSlot, UpstreamSession};
use super::{Link, Upstream, UpstreamError};
use crate::protocol::{Era, Relayable};

/// A shared session that declares capabilities, and whether its stream is
/// being followed.
pub(super) struct AskingSession {
    slot: SessionSlot,
    followed: AtomicBool,
}

impl Default for AskingSession {
    fn default() -> Self {
        AskingSession {
            slot: SessionSlot::shared(),
            followed: AtomicBool::new(false),
        }
    }
}

impl Upstream {
    /// Opens a 2025 client's own upstream session now rather than on first
    /// use (sealed session ids carry it to every replica). `None` when
    /// there is nothing to pin: a 2026 upstream has no sessions, and stdio
    /// and HTTP+SSE sessions cannot move between replicas.
    pub async fn open_client_session(
        &self,
        client_info: &Value,
        capabilities: &Value,
    ) -> Result<Option<Arc<UpstreamSession>>, UpstreamError> {
        let legacy = self.era().is_some_and(|e| *e != Era::Modern);
        if !legacy || !matches!(**self.link(), Link::Http(_)) {
            return Ok(None);
        }
        let deadline = Instant::now() + self.spec.timeout;
        let session = self
            .initialize(Some((client_info, capabilities)), deadline)
            .await?;
        Ok(Some(Arc::new(session)))
    }

    /// Ends a client's upstream session (client sent DELETE).
    pub async fn end_session(&self, slot: &SessionSlot) {
        let Some(session) = slot.take().await else {
            return;
        };
        if let (Link::Http(link), Some(id)) = (&**self.link(), &session.id) {
            link.delete(id, &session.version, session.endpoint).await;
        }
    }

    /// The shared session for callers that can be asked `asks` (2026-07-28
    /// clients; none for the gateway's own requests). A stdio child has
    /// one session, whoever calls.
    pub fn shared_for(&self, asks: Relayable) -> &SessionSlot {
        match self.asking(asks) {
            Some(asking) if !matches!(**self.link(), Link::Stdio(_)) => &asking.slot,
            _ => &self.shared,
        }
    }

    /// Claims the following of the stream of the shared session for
    /// `asks` (see `relay::standalone`); false when another has it, or
    /// when there is no such session.
    pub fn claim_asking_stream(&self, asks: Relayable) -> bool {
        self.asking(asks)
            .is_some_and(|asking| !asking.followed.swap(true, Ordering::AcqRel))
    }

    pub fn release_asking_stream(&self, asks: Relayable) {
        if let Some(asking) = self.asking(asks) {
            asking.followed.store(false, Ordering::Release);
        }
    }

    /// The shared session that declares `asks`; none for the empty set
    /// (that one is `shared`).
    fn asking(&self, asks: Relayable) -> Option<&AskingSession> {
        asks.index().checked_sub(1).map(|index| &self.asking[index])
    }

    /// Stops child processes and ends the shared sessions.
    pub async fn shutdown(&self) {
        self.end_session(&self.shared).await;
        for asking in &self.asking {
            self.end_session(&asking.slot).await;
        }
        if let Link::Stdio(link) = &**self.link() {
            link.stop().await;
        }
    }
}
