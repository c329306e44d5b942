//! The request-path counters: requests by method and outcome, and
//! `tools/call` latency and errors per upstream. Atomics only; the method
//! label comes from `protocol::METHODS`, everything else folds into `other`.

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
    pub(super) const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Error, Outcome::UpstreamError];

    pub(super) fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::UpstreamError => "upstream_error",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds.
pub(super) const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// `tools/call` statistics of one upstream.
#[derive(Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    /// Cumulative counts are derived when rendering; each slot counts the
    /// calls that fell in that bucket (the last one: above every bound).
    pub(super) buckets: [AtomicU64; BUCKETS.len() + 1],
    pub(super) micros: AtomicU64,
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
    pub(super) requests: Vec<[AtomicU64; 3]>,
    pub(super) calls: DashMap<Arc<str>, Arc<CallStats>>,
    pub catalog_rebuilds: AtomicU64,
    /// Refused credentials, by [`crate::refusal::Refusal::ALL`] position.
    pub(super) auth_failures: [AtomicU64; crate::refusal::Refusal::ALL.len()],
    pub(super) rate_limited: AtomicU64,
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
}
