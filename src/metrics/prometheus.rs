//! The Prometheus text exposition of `/metrics`: the counters, the
//! point-in-time gauges the caller hands in, and the live counts.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::counters::{BUCKETS, CallStats, Metrics, Outcome};
use super::live::Live;
use crate::protocol::METHODS;

impl Metrics {
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
    /// [`LIVE`](super::LIVE)'s counts, in [`Live::ALL`] order.
    pub live: [usize; Live::ALL.len()],
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
