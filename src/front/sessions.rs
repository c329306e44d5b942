//! Legacy (2025-era) client sessions: what `initialize` established, and
//! the upstream sessions pinned to it for affinity.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use dashmap::DashMap;
use serde_json::Value;

use crate::upstream::session::SessionSlot;

/// One client session with the gateway.
pub struct ClientSession {
    pub id: Arc<str>,
    /// Negotiated in `initialize`; sent back by the client as `MCP-Protocol-Version`.
    pub version: &'static str,
    pub client_info: Option<Value>,
    /// The endpoint the session was opened on: `None` for `/mcp`, or the
    /// server name of `/servers/{name}/mcp`. A session is only valid there.
    pub scope: Option<Arc<str>>,
    /// One upstream session per upstream, created on first use: affinity.
    pub upstreams: DashMap<Arc<str>, Arc<SessionSlot>>,
    /// Set by `logging/setLevel`; sent per request to modern upstreams.
    log_level: Mutex<Option<Arc<str>>>,
    pub created: Instant,
}

impl ClientSession {
    pub fn set_log_level(&self, level: &str) {
        *self.log_level.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::from(level));
    }

    pub fn log_level(&self) -> Option<Arc<str>> {
        self.log_level
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The slot for `upstream`, created empty on first use.
    pub fn slot(&self, upstream: &Arc<str>) -> Arc<SessionSlot> {
        if let Some(slot) = self.upstreams.get(upstream) {
            return slot.clone();
        }
        self.upstreams.entry(upstream.clone()).or_default().clone()
    }
}

#[derive(Default)]
pub struct Sessions {
    by_id: DashMap<Arc<str>, Arc<ClientSession>>,
}

impl Sessions {
    pub fn open(
        &self,
        version: &'static str,
        client_info: Option<Value>,
        scope: Option<Arc<str>>,
    ) -> Arc<ClientSession> {
        // 128 random bits, hex: visible ASCII as the transport requires.
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let session = Arc::new(ClientSession {
            id: id.clone(),
            version,
            client_info,
            scope,
            upstreams: DashMap::new(),
            log_level: Mutex::new(None),
            created: Instant::now(),
        });
        self.by_id.insert(id, session.clone());
        session
    }

    pub fn get(&self, id: &str) -> Option<Arc<ClientSession>> {
        self.by_id.get(id).map(|s| s.clone())
    }

    pub fn remove(&self, id: &str) -> Option<Arc<ClientSession>> {
        self.by_id.remove(id).map(|(_, s)| s)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
