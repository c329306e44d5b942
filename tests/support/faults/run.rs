//! A finished run: what must hold, and the figures.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{CLIENTS_PER_ERA, Client, MAX_CALLS, Outcome, Record, Target, call, http_client};

pub struct Run {
    /// When the load started.
    pub(super) start: Instant,
    /// When the fault struck.
    pub(super) fault: Instant,
    /// When the failed part was back: listening, ready, or resumed.
    pub(super) recovered: Instant,
    pub clients: Vec<Client>,
    /// Every call, in the order they ended.
    pub(super) records: Vec<Record>,
}

impl Run {
    /// No 2025 client was ever told its session is unknown.
    pub fn assert_no_session_lost(&self) {
        let lost = self.list(|r| r.outcome.status() == Some(404));
        assert!(lost.is_empty(), "sessions lost:\n{}", lost.join("\n"));
    }

    pub fn assert_all_ok(&self, upstream: &str) {
        assert!(self.records.iter().any(|r| r.upstream == upstream));
        let failed = self.list(|r| r.upstream == upstream && !r.outcome.is_ok());
        assert!(
            failed.is_empty(),
            "{upstream}, which did not fail, saw failures:\n{}",
            failed.join("\n")
        );
    }

    /// Every failed call to `upstream` overlapped the outage — it ended
    /// after the fault and started before the recovery, or within `grace`
    /// of it — and its error is a `clear` one.
    pub fn assert_failures_only_while_down(
        &self,
        upstream: &str,
        grace: Duration,
        clear: impl Fn(&Outcome) -> bool,
    ) {
        for record in self
            .records
            .iter()
            .filter(|r| r.upstream == upstream && !r.outcome.is_ok())
        {
            let what = self.describe(record);
            assert!(
                record.ended >= self.fault,
                "failed before the fault: {what}"
            );
            assert!(
                record.started < self.recovered + grace,
                "failed {:.3} s after the recovery: {what}",
                self.at(record.started) - self.at(self.recovered)
            );
            assert!(clear(&record.outcome), "not the expected error: {what}");
        }
    }

    /// The gateway answered every call (only an upstream failed).
    pub fn assert_gateway_always_answered(&self) {
        let failed = self.list(|r| matches!(r.outcome, Outcome::Transport(_)));
        assert!(failed.is_empty(), "no answer:\n{}", failed.join("\n"));
    }

    pub fn assert_served_again_within(&self, upstream: &str, limit: Duration) {
        for client in &self.clients {
            let after = self.first_served_after_recovery(client.index, upstream);
            let after = after.unwrap_or_else(|| {
                panic!(
                    "client {} ({}) never served by {upstream} after the recovery",
                    client.index,
                    client.era()
                )
            });
            assert!(
                after <= limit,
                "client {} ({}) first served by {upstream} {after:?} after the recovery",
                client.index,
                client.era()
            );
        }
    }

    /// Every 2025 client's original session id still works.
    pub async fn assert_sessions_alive(&self, mcp: &str, target: Target) {
        let http = http_client();
        for client in self.clients.iter().filter(|c| c.session.is_some()) {
            let outcome = call(&http, mcp, client, target, MAX_CALLS).await;
            assert!(
                outcome.is_ok(),
                "client {}'s session after the fault: {outcome:?}",
                client.index
            );
        }
    }

    pub fn failed(&self, upstream: &str) -> usize {
        self.records
            .iter()
            .filter(|r| r.upstream == upstream && !r.outcome.is_ok())
            .count()
    }

    pub fn slowest(&self, upstream: &str) -> Duration {
        self.records
            .iter()
            .filter(|r| r.upstream == upstream)
            .map(|r| r.ended - r.started)
            .max()
            .unwrap_or_default()
    }

    fn first_served_after_recovery(&self, client: usize, upstream: &str) -> Option<Duration> {
        self.records
            .iter()
            .filter(|r| r.client == client && r.upstream == upstream && r.outcome.is_ok())
            .filter(|r| r.ended >= self.recovered)
            .map(|r| r.ended - self.recovered)
            .min()
    }

    /// Seconds since the load started.
    fn at(&self, instant: Instant) -> f64 {
        instant.saturating_duration_since(self.start).as_secs_f64()
    }

    fn phase(&self, record: &Record) -> &'static str {
        if record.started < self.fault {
            "before"
        } else if record.started < self.recovered {
            "during"
        } else {
            "after"
        }
    }

    fn describe(&self, record: &Record) -> String {
        format!(
            "client {} ({}) → {}: {:.3}-{:.3} s: {}",
            record.client,
            record.era,
            record.upstream,
            self.at(record.started),
            self.at(record.ended),
            record.outcome.kind()
        )
    }

    /// The first 20 calls `matching`, described.
    fn list(&self, matching: impl Fn(&Record) -> bool) -> Vec<String> {
        let matched = self.records.iter().filter(|r| matching(r));
        matched.take(20).map(|r| self.describe(r)).collect()
    }

    /// Per upstream: calls that went through / failed before, during and
    /// after the fault, the latency of those that went through, each kind
    /// of failure, and how soon every client was served again.
    pub(super) fn print(&self, title: &str) {
        let stopped = self.records.last().map_or(self.recovered, |r| r.ended);
        println!("\n== {title}");
        println!(
            "   {n} clients ({CLIENTS_PER_ERA} with 2025 sessions, {CLIENTS_PER_ERA} stateless 2026-07-28); fault at {:.2} s, back at {:.2} s, load stopped at {:.2} s",
            self.at(self.fault),
            self.at(self.recovered),
            self.at(stopped),
            n = 2 * CLIENTS_PER_ERA,
        );
        println!(
            "   {:<8} {:>14} {:>14} {:>14}   latency of ok calls p50 / max",
            "upstream", "before ok/err", "during ok/err", "after ok/err"
        );
        let mut upstreams: Vec<&str> = self.records.iter().map(|r| r.upstream).collect();
        upstreams.sort();
        upstreams.dedup();
        for upstream in &upstreams {
            let of = |phase: &str, ok: bool| {
                let records = self.records.iter().filter(|r| r.upstream == *upstream);
                records
                    .filter(|r| self.phase(r) == phase && r.outcome.is_ok() == ok)
                    .count()
            };
            let cell = |phase| format!("{}/{}", of(phase, true), of(phase, false));
            let mut latencies: Vec<Duration> = self
                .records
                .iter()
                .filter(|r| r.upstream == *upstream && r.outcome.is_ok())
                .map(|r| r.ended - r.started)
                .collect();
            latencies.sort();
            let p50 = latencies
                .get(latencies.len() / 2)
                .copied()
                .unwrap_or_default();
            let max = latencies.last().copied().unwrap_or_default();
            println!(
                "   {upstream:<8} {:>14} {:>14} {:>14}   {p50:.1?} / {max:.1?}",
                cell("before"),
                cell("during"),
                cell("after"),
            );
        }
        let mut kinds: BTreeMap<(&str, String), usize> = BTreeMap::new();
        for record in self.records.iter().filter(|r| !r.outcome.is_ok()) {
            *kinds
                .entry((record.upstream, record.outcome.kind()))
                .or_default() += 1;
        }
        for ((upstream, kind), count) in &kinds {
            println!("   {count:>5} × {upstream}: {kind}");
        }
        for upstream in upstreams.iter().filter(|u| self.failed(u) > 0) {
            let struck: Vec<&Record> = self
                .records
                .iter()
                .filter(|r| r.upstream == *upstream)
                .filter(|r| r.started < self.fault && r.ended > self.fault)
                .collect();
            let last_failure = self
                .records
                .iter()
                .filter(|r| r.upstream == *upstream && !r.outcome.is_ok())
                .map(|r| r.ended)
                .max()
                .unwrap();
            let slowest_back = (self.clients.iter())
                .filter_map(|c| self.first_served_after_recovery(c.index, upstream))
                .max()
                .unwrap_or_default();
            println!(
                "   {upstream}: {} calls in flight when the fault struck ({} failed); last failure ended at {:.2} s; every client served again within {slowest_back:.0?} of the recovery",
                struck.len(),
                struck.iter().filter(|r| !r.outcome.is_ok()).count(),
                self.at(last_failure),
            );
        }
    }
}
