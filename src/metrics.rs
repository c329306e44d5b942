//! Counters the gateway keeps about itself, for `/status` and `/metrics`:
//! requests by method and outcome, `tools/call` latency per upstream,
//! catalog rebuilds and `list_changed` deliveries. Atomics only on the
//! request path; labels come from bounded sets (`protocol::METHODS`, the
//! configured upstreams), never from client input.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Refused credentials, by [`crate::auth::Failure::ALL`] position.
    auth_failures: [AtomicU64; crate::auth::Failure::ALL.len()],
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

    pub fn auth_failure(&self, failure: crate::auth::Failure) {
        if let Some(i) = crate::auth::Failure::ALL.iter().position(|f| *f == failure) {
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
        for (failure, count) in crate::auth::Failure::ALL.iter().zip(&self.auth_failures) {
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
}
