//! Counters the gateway keeps about itself, for `/status` and `/metrics`:
//! requests by method and outcome, `tools/call` latency per upstream,
//! catalog rebuilds and `list_changed` deliveries, and the live counts of
//! what it holds ([`Live`]: sessions, streams, calls in flight). Atomics
//! only on the request path; labels come from bounded sets
//! (`protocol::METHODS`, the configured upstreams, [`Live::ALL`]), never
//! from client input.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::protocol::METHODS;

/// How a request ended, as the gateway saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (an upstream's own JSON-RPC error included).
    Ok,
    /// Refused by the gateway (bad params, unknown tool, protocol error).
    Error,
    /// The upstream could not be reached or failed mid-call.
    UpstreamError,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Error, Outcome::UpstreamError];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::UpstreamError => "upstream_error",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// `tools/call` statistics of one upstream.
#[derive(Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    /// Cumulative counts are derived when rendering; each slot counts the
    /// calls that fell in that bucket (the last one: above every bound).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    micros: AtomicU64,
}

impl CallStats {
    fn record(&self, elapsed: Duration, failed: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The bucket bound below which a `q` share of calls fell (an upper
    /// estimate, as Prometheus' histogram_quantile gives); None without calls.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let wanted = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (slot, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return Some(BUCKETS.get(slot).copied().unwrap_or(f64::INFINITY));
            }
        }
        None
    }
}

pub struct Metrics {
    pub started: Instant,
    /// [method][outcome]; the last method row is `other`.
    requests: Vec<[AtomicU64; 3]>,
    calls: DashMap<Arc<str>, Arc<CallStats>>,
    pub catalog_rebuilds: AtomicU64,
    /// Refused credentials, by [`crate::refusal::Refusal::ALL`] position.
    auth_failures: [AtomicU64; crate::refusal::Refusal::ALL.len()],
    rate_limited: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            requests: (0..=METHODS.len()).map(|_| Default::default()).collect(),
            calls: DashMap::new(),
            catalog_rebuilds: AtomicU64::new(0),
            auth_failures: Default::default(),
            rate_limited: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn request(&self, method: &str, outcome: Outcome) {
        let row = METHODS
            .iter()
            .position(|m| *m == method)
            .unwrap_or(METHODS.len());
        let column = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.requests[row][column].fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth_failure(&self, failure: crate::refusal::Refusal) {
        if let Some(i) = crate::refusal::Refusal::ALL
            .iter()
            .position(|f| *f == failure)
        {
            self.auth_failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one `tools/call` to `upstream`.
    pub fn call(&self, upstream: &Arc<str>, elapsed: Duration, failed: bool) {
        let stats = match self.calls.get(upstream) {
            Some(stats) => stats.clone(),
            None => self.calls.entry(upstream.clone()).or_default().clone(),
        };
        stats.record(elapsed, failed);
    }

    pub fn calls_of(&self, upstream: &str) -> Option<Arc<CallStats>> {
        self.calls.get(upstream).map(|s| s.clone())
    }

    /// Forgets an upstream that is no longer configured (bounded labels).
    pub fn forget(&self, upstream: &str) {
        self.calls.remove(upstream);
    }

    /// The Prometheus text exposition of these counters; `gauges` adds the
    /// point-in-time values the caller knows (health, sessions, streams).
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP switchboard_requests_total MCP requests by method and outcome.\n");
        out.push_str("# TYPE switchboard_requests_total counter\n");
        for (row, counts) in self.requests.iter().enumerate() {
            let method = METHODS.get(row).copied().unwrap_or("other");
            for (column, outcome) in Outcome::ALL.iter().enumerate() {
                let n = counts[column].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "switchboard_requests_total{{method=\"{method}\",outcome=\"{}\"}} {n}",
                        outcome.label()
                    );
                }
            }
        }
        out.push_str("# HELP switchboard_tool_call_duration_seconds tools/call latency through the gateway, by upstream.\n");
        out.push_str("# TYPE switchboard_tool_call_duration_seconds histogram\n");
        let mut calls: Vec<(Arc<str>, Arc<CallStats>)> = self
            .calls
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        calls.sort_by(|a, b| a.0.cmp(&b.0));
        for (upstream, stats) in &calls {
            let upstream = escape(upstream);
            let mut cumulative = 0;
            for (slot, bound) in BUCKETS.iter().enumerate() {
                cumulative += stats.buckets[slot].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "switchboard_tool_call_duration_seconds_bucket{{upstream=\"{upstream}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += stats.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "switchboard_tool_call_duration_seconds_bucket{{upstream=\"{upstream}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                out,
                "switchboard_tool_call_duration_seconds_sum{{upstream=\"{upstream}\"}} {}",
                stats.micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "switchboard_tool_call_duration_seconds_count{{upstream=\"{upstream}\"}} {cumulative}"
            );
        }
        out.push_str("# HELP switchboard_tool_call_errors_total tools/call that failed reaching the upstream, by upstream.\n");
        out.push_str("# TYPE switchboard_tool_call_errors_total counter\n");
        for (upstream, stats) in &calls {
            let _ = writeln!(
                out,
                "switchboard_tool_call_errors_total{{upstream=\"{}\"}} {}",
                escape(upstream),
                stats.errors.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP switchboard_upstream_up Whether the upstream is connected and healthy (1) or not (0).\n");
        out.push_str("# TYPE switchboard_upstream_up gauge\n");
        for (upstream, up) in &gauges.upstreams {
            let _ = writeln!(
                out,
                "switchboard_upstream_up{{upstream=\"{}\"}} {}",
                escape(upstream),
                u8::from(*up)
            );
        }
        out.push_str("# HELP switchboard_auth_failures_total Requests refused for their credentials, by reason.\n");
        out.push_str("# TYPE switchboard_auth_failures_total counter\n");
        for (failure, count) in crate::refusal::Refusal::ALL.iter().zip(&self.auth_failures) {
            let n = count.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "switchboard_auth_failures_total{{reason=\"{}\"}} {n}",
                    failure.reason()
                );
            }
        }
        for (name, kind, help, value) in [
            (
                "switchboard_rate_limited_total",
                "counter",
                "Requests refused with 429 by the per-caller rate limit.",
                self.rate_limited.load(Ordering::Relaxed),
            ),
            (
                "switchboard_sessions",
                "gauge",
                "Open 2025-era client sessions.",
                gauges.sessions as u64,
            ),
            (
                "switchboard_listen_streams",
                "gauge",
                "Open GET and subscriptions/listen streams.",
                gauges.streams as u64,
            ),
            (
                "switchboard_catalog_rebuilds_total",
                "counter",
                "Catalog snapshots built.",
                self.catalog_rebuilds.load(Ordering::Relaxed),
            ),
            (
                "switchboard_list_changed_sent_total",
                "counter",
                "list_changed notifications delivered to clients.",
                gauges.list_changed_sent,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        render_live(&mut out, &gauges.live);
        let _ = writeln!(
            out,
            "# HELP switchboard_uptime_seconds Seconds since the gateway started.\n# TYPE switchboard_uptime_seconds gauge\nswitchboard_uptime_seconds {}",
            self.started.elapsed().as_secs()
        );
        out
    }
}

/// Point-in-time values for [`Metrics::render`].
#[derive(Default)]
pub struct Gauges {
    pub upstreams: Vec<(String, bool)>,
    pub sessions: usize,
    pub streams: usize,
    /// Counted where notifications are delivered (the listeners).
    pub list_changed_sent: u64,
    /// [`LIVE`]'s counts, in [`Live::ALL`] order.
    pub live: [usize; Live::ALL.len()],
}

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
struct Exposed {
    metric: &'static str,
    help: &'static str,
    /// The label and its value, when the metric has several series.
    label: Option<(&'static str, &'static str)>,
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

    fn exposed(self) -> Exposed {
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

/// The Prometheus text of the live counts `snapshot` (in [`Live::ALL`]
/// order): one gauge per metric name, its series one per kind.
fn render_live(out: &mut String, snapshot: &[usize; Live::ALL.len()]) {
    let mut previous = "";
    for (kind, count) in Live::ALL.iter().zip(snapshot) {
        let exposed = kind.exposed();
        if exposed.metric != previous {
            let _ = writeln!(
                out,
                "# HELP {0} {1}\n# TYPE {0} gauge",
                exposed.metric, exposed.help
            );
            previous = exposed.metric;
        }
        match exposed.label {
            Some((label, value)) => {
                let _ = writeln!(out, "{}{{{label}=\"{value}\"}} {count}", exposed.metric);
            }
            None => {
                let _ = writeln!(out, "{} {count}", exposed.metric);
            }
        }
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let stats = CallStats::default();
        assert_eq!(stats.quantile(0.5), None);
        for _ in 0..98 {
            stats.record(Duration::from_micros(800), false);
        }
        stats.record(Duration::from_millis(40), false);
        stats.record(Duration::from_secs(30), true);
        assert_eq!(stats.quantile(0.5), Some(0.001));
        assert_eq!(stats.quantile(0.99), Some(0.05));
        assert_eq!(stats.quantile(1.0), Some(f64::INFINITY));
        assert_eq!(stats.errors.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let metrics = Metrics::default();
        metrics.request("tools/call", Outcome::Ok);
        metrics.request("x/made-up-by-a-client", Outcome::Error);
        metrics.request("another/one", Outcome::Error);
        let text = metrics.render(&Gauges::default());
        assert!(
            text.contains("switchboard_requests_total{method=\"tools/call\",outcome=\"ok\"} 1")
        );
        assert!(text.contains("switchboard_requests_total{method=\"other\",outcome=\"error\"} 2"));
        assert!(!text.contains("made-up"));
    }

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

    #[test]
    fn live_counts_render_as_labelled_gauges() {
        let mut live = [0; Live::ALL.len()];
        live[Live::SseClientSession as usize] = 3;
        live[Live::CallInFlight as usize] = 5;
        let text = Metrics::default().render(&Gauges {
            live,
            ..Gauges::default()
        });
        assert!(text.contains("switchboard_client_sessions{transport=\"sse\"} 3\n"));
        assert!(text.contains("switchboard_client_sessions{transport=\"streamable-http\"} 0\n"));
        assert!(text.contains("switchboard_calls_in_flight 5\n"));
        assert!(text.contains("switchboard_upstream_streams{kind=\"watch\"} 0\n"));
        // One HELP and TYPE per metric, however many series it has.
        assert_eq!(
            text.matches("# TYPE switchboard_client_streams gauge")
                .count(),
            1
        );
    }
}
