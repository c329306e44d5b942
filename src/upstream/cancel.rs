//! Cancelling a forwarded request upstream when nobody waits for it any
//! more: the client went away, cancelled, or the call timed out.
//!
//! A 2026-07-28 HTTP upstream needs nothing: dropping the request closes
//! its stream, which is cancellation in that era. A 2025-era session and
//! a stdio child need `notifications/cancelled`; the guard below sends it
//! when it is dropped before the response arrived.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Link;
use super::session::UpstreamSession;

/// A request sent upstream whose response has not arrived yet.
pub struct InFlight {
    link: Arc<Link>,
    id: Value,
    session: Option<Arc<UpstreamSession>>,
    armed: bool,
}

impl InFlight {
    pub(super) fn new(link: Arc<Link>, id: Value, session: Option<Arc<UpstreamSession>>) -> Self {
        InFlight {
            link,
            id,
            session,
            armed: true,
        }
    }

    /// The response arrived (or the request provably never ran).
    pub fn done(mut self) {
        self.armed = false;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let link = self.link.clone();
        let session = self.session.take();
        let notice = json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": { "requestId": self.id, "reason": "the client is no longer waiting" },
        });
        runtime.spawn(async move { link.notify(&notice, session.as_deref()).await });
    }
}
