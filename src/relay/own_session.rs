//! A 2026-07-28 client's call that may need input, to a 2025-era HTTP
//! upstream, runs in an upstream session of its own. Such clients have no
//! session with the gateway; sharing one upstream session among them, the
//! gateway could not tell whose call a request on that session's GET stream
//! belongs to (a TS SDK 1.x server asks there when a tool handler asks
//! without its related request id). In a session of its own, everything on
//! the GET stream is this call's: requests become its input rounds
//! (`InputRequiredResult`), notifications go on its answer stream. The
//! session ends with the call (or with its held input, see `input`).
//! It costs a handshake, a GET and a DELETE per such call.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::Messages;
use crate::protocol::{self, Relayable};
use crate::upstream::session::SessionSlot;
use crate::upstream::{Upstream, UpstreamError};

/// The call's upstream session and what its GET stream has sent so far.
pub(super) struct OwnSession {
    upstream: Arc<Upstream>,
    pub(super) slot: Arc<SessionSlot>,
    side: Option<Messages>,
}

impl OwnSession {
    /// Whether a call gets one: from a 2026-07-28 client that can be asked
    /// something, of a method that may ask, to a 2025 HTTP upstream.
    pub(super) fn wanted(upstream: &Upstream, asks: Relayable, message: &Value) -> bool {
        !asks.is_empty()
            && super::may_need_input(message)
            && !super::is_modern(upstream)
            && upstream.may_stream_to_clients()
    }

    /// Opens the session, declaring what the client declared, and its GET
    /// stream (before the call, so that nothing sent there is missed).
    pub(super) async fn open(
        upstream: &Arc<Upstream>,
        asks: Relayable,
        message: &Value,
    ) -> Result<OwnSession, UpstreamError> {
        let slot = Arc::new(SessionSlot::default());
        let info = message
            .pointer("/params/_meta")
            .and_then(|meta| meta.get(protocol::META_CLIENT_INFO))
            .cloned()
            .unwrap_or_else(protocol::implementation);
        let side = upstream
            .open_client_stream(&slot, Some(&info), &asks.declared())
            .await?;
        Ok(OwnSession {
            upstream: upstream.clone(),
            slot,
            side,
        })
    }

    /// The call's answer stream with what the session's GET stream sends
    /// merged in (list changes aside: the catalog announces those), until
    /// the call's stream ends.
    pub(super) fn merge(&mut self, mut call: Messages) -> Messages {
        let Some(mut side) = self.side.take() else {
            return call;
        };
        let (tx, merged) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut side_open = true;
            loop {
                tokio::select! {
                    message = call.recv() => {
                        let Some(message) = message else { return };
                        if tx.send(message).await.is_err() {
                            return;
                        }
                    }
                    message = side.recv(), if side_open => match message {
                        Some(Ok(message)) if !is_list_change(&message) => {
                            if tx.send(Ok(message)).await.is_err() {
                                return;
                            }
                        }
                        Some(Ok(_)) => {}
                        // The GET stream ended or broke: the call goes on.
                        Some(Err(_)) | None => side_open = false,
                    },
                    _ = tx.closed() => return,
                }
            }
        });
        merged
    }
}

fn is_list_change(message: &Value) -> bool {
    message
        .get("method")
        .and_then(Value::as_str)
        .is_some_and(|method| method.ends_with("/list_changed"))
}

impl Drop for OwnSession {
    fn drop(&mut self) {
        let upstream = self.upstream.clone();
        let slot = self.slot.clone();
        tokio::spawn(async move { upstream.end_session(&slot).await });
    }
}
