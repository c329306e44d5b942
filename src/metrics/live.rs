//! Live counts: what the gateway holds right now (sessions, streams, calls
//! in flight), each counted by a guard that lives as long as the thing
//! itself, and how each count is exposed in `/status` and `/metrics`.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Something the gateway holds for as long as it lives: a session, a
/// stream, a request waiting. Each is counted by a [`Held`] guard made
/// with it and dropped with it, so a count cannot drift, and a count that
/// does not return to where it was once clients are gone is something
/// left behind (see `tests/churn.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// A 2025-era client session opened over Streamable HTTP (alive until
    /// the last task using it lets go, not only while in the table).
    ClientSession,
    /// A 2025-era client session opened over HTTP+SSE (2024-11-05).
    SseClientSession,
    /// A client's own session with an upstream (a filled slot).
    ClientUpstreamSession,
    /// The gateway's own (shared) session with an upstream.
    SharedUpstreamSession,
    /// A 2025 session's GET stream.
    GetStream,
    /// A 2026-07-28 `subscriptions/listen` stream.
    ListenStream,
    /// An HTTP+SSE client's stream.
    SseStream,
    /// The gateway's own change stream from an upstream (GET or
    /// `subscriptions/listen`).
    WatchStream,
    /// The GET stream of a client's upstream session, relayed to that
    /// client (`relay::standalone`).
    FollowedStream,
    /// An HTTP+SSE upstream connection: the channel of one upstream
    /// session on that transport.
    SseUpstreamConnection,
    /// A request of the gateway's own to a 2025 client (the input a
    /// 2026-07-28 upstream asked for), awaiting its answer. Requests
    /// relayed from 2025 upstreams hold nothing: their ids route the answer.
    AwaitingAnswer,
    /// A client request forwarded to an upstream and not yet answered.
    CallInFlight,
}

/// One gauge of `/metrics` and its place in `/status`'s `live` object.
pub(super) struct Exposed {
    pub(super) metric: &'static str,
    pub(super) help: &'static str,
    /// The label and its value, when the metric has several series.
    pub(super) label: Option<(&'static str, &'static str)>,
    /// The key in `live`, and the key inside it for a labelled series.
    group: &'static str,
    key: Option<&'static str>,
}

impl Live {
    pub const ALL: [Live; 12] = [
        Live::ClientSession,
        Live::SseClientSession,
        Live::ClientUpstreamSession,
        Live::SharedUpstreamSession,
        Live::GetStream,
        Live::ListenStream,
        Live::SseStream,
        Live::WatchStream,
        Live::FollowedStream,
        Live::SseUpstreamConnection,
        Live::AwaitingAnswer,
        Live::CallInFlight,
    ];

    /// Counts one of these until the guard is dropped.
    pub fn held(self) -> Held {
        LIVE.hold(self)
    }

    /// The count now.
    pub fn count(self) -> usize {
        LIVE.get(self)
    }

    pub(super) fn exposed(self) -> Exposed {
        let sessions = "Live 2025-era client sessions, by transport.";
        let upstream_sessions =
            "Live upstream sessions, held for a client or by the gateway itself.";
        let client_streams = "Open client streams (GET, subscriptions/listen, HTTP+SSE).";
        let upstream_streams = "Open upstream streams: the gateway's change streams, client sessions' streams relayed, HTTP+SSE connections.";
        let e = |metric, help, label, group, key| Exposed {
            metric,
            help,
            label,
            group,
            key,
        };
        match self {
            Live::ClientSession => e(
                "switchboard_client_sessions",
                sessions,
                Some(("transport", "streamable-http")),
                "clientSessions",
                Some("streamableHttp"),
            ),
            Live::SseClientSession => e(
                "switchboard_client_sessions",
                sessions,
                Some(("transport", "sse")),
                "clientSessions",
                Some("sse"),
            ),
            Live::ClientUpstreamSession => e(
                "switchboard_upstream_sessions",
                upstream_sessions,
                Some(("holder", "client")),
                "upstreamSessions",
                Some("client"),
            ),
            Live::SharedUpstreamSession => e(
                "switchboard_upstream_sessions",
                upstream_sessions,
                Some(("holder", "gateway")),
                "upstreamSessions",
                Some("gateway"),
            ),
            Live::GetStream => e(
                "switchboard_client_streams",
                client_streams,
                Some(("kind", "get")),
                "clientStreams",
                Some("get"),
            ),
            Live::ListenStream => e(
                "switchboard_client_streams",
                client_streams,
                Some(("kind", "listen")),
                "clientStreams",
                Some("listen"),
            ),
            Live::SseStream => e(
                "switchboard_client_streams",
                client_streams,
                Some(("kind", "sse")),
                "clientStreams",
                Some("sse"),
            ),
            Live::WatchStream => e(
                "switchboard_upstream_streams",
                upstream_streams,
                Some(("kind", "watch")),
                "upstreamStreams",
                Some("watch"),
            ),
            Live::FollowedStream => e(
                "switchboard_upstream_streams",
                upstream_streams,
                Some(("kind", "client")),
                "upstreamStreams",
                Some("client"),
            ),
            Live::SseUpstreamConnection => e(
                "switchboard_upstream_streams",
                upstream_streams,
                Some(("kind", "sse")),
                "upstreamStreams",
                Some("sse"),
            ),
            Live::AwaitingAnswer => e(
                "switchboard_awaiting_client_answers",
                "The gateway's own requests to 2025 clients (input a 2026-07-28 upstream asked for) awaiting their answer.",
                None,
                "awaitingClientAnswers",
                None,
            ),
            Live::CallInFlight => e(
                "switchboard_calls_in_flight",
                "Client requests forwarded to an upstream and not yet answered.",
                None,
                "callsInFlight",
                None,
            ),
        }
    }
}

/// One counter on a cache line of its own: the calls-in-flight count
/// changes twice per request on every runtime, and must not make the
/// others' lines bounce between cores with it.
#[repr(align(64))]
struct Slot(AtomicUsize);

/// The live counts, one per [`Live`] kind.
pub struct Counts {
    slots: [Slot; Live::ALL.len()],
}

/// The gateway's live counts. Process-wide: what is counted is made and
/// dropped deep inside modules that do not carry the pool (sessions,
/// session slots, streams), and a process serves one gateway.
pub static LIVE: Counts = Counts::new();

impl Counts {
    pub const fn new() -> Counts {
        Counts {
            slots: [const { Slot(AtomicUsize::new(0)) }; Live::ALL.len()],
        }
    }

    fn slot(&self, kind: Live) -> &AtomicUsize {
        // `Live::ALL` lists the variants in declaration order.
        &self.slots[kind as usize].0
    }

    pub fn get(&self, kind: Live) -> usize {
        self.slot(kind).load(Ordering::Relaxed)
    }

    /// Counts one `kind` until the guard is dropped.
    pub fn hold(&'static self, kind: Live) -> Held {
        let slot = self.slot(kind);
        slot.fetch_add(1, Ordering::Relaxed);
        Held(slot)
    }

    /// Every count now, in [`Live::ALL`] order.
    pub fn snapshot(&self) -> [usize; Live::ALL.len()] {
        Live::ALL.map(|kind| self.get(kind))
    }

    /// The `live` object of `/status`.
    pub fn status(&self) -> serde_json::Value {
        let mut live = serde_json::Map::new();
        for kind in Live::ALL {
            let exposed = kind.exposed();
            let count = serde_json::Value::from(self.get(kind));
            match exposed.key {
                None => {
                    live.insert(exposed.group.into(), count);
                }
                Some(key) => {
                    let group = live
                        .entry(exposed.group)
                        .or_insert_with(|| serde_json::json!({}));
                    group[key] = count;
                }
            }
        }
        serde_json::Value::Object(live)
    }
}

impl Default for Counts {
    fn default() -> Self {
        Counts::new()
    }
}

/// One counted thing; the count goes down when this is dropped.
pub struct Held(&'static AtomicUsize);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_counts_follow_their_guards() {
        static COUNTS: Counts = Counts::new();
        for (i, kind) in Live::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "Live::ALL is in declaration order");
        }
        let first = COUNTS.hold(Live::CallInFlight);
        let second = COUNTS.hold(Live::CallInFlight);
        let stream = COUNTS.hold(Live::GetStream);
        assert_eq!(COUNTS.get(Live::CallInFlight), 2);
        assert_eq!(COUNTS.status()["clientStreams"]["get"], 1);
        assert_eq!(COUNTS.status()["callsInFlight"], 2);
        drop(first);
        drop(stream);
        assert_eq!(COUNTS.get(Live::CallInFlight), 1);
        assert_eq!(COUNTS.status()["clientStreams"]["get"], 0);
        drop(second);
        assert_eq!(COUNTS.snapshot(), [0; Live::ALL.len()]);
    }
}
