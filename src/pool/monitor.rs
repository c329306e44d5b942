//! One task per upstream: connects, follows its change notifications,
//! probes its health, and reconnects with backoff; a failing upstream's
//! tools stay for the grace period, then are withdrawn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use super::Pool;
use super::health::Health;
use crate::upstream::{Signal, Upstream, UpstreamError, WatchEnd};

const MIN_BACKOFF: Duration = Duration::from_millis(250);

/// Longest wait between two connection attempts to a failing upstream.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Pool {
    /// Connects, follows, and reconnects with exponential backoff, for as
    /// long as the upstream is configured.
    pub(super) async fn monitor(
        self: Arc<Self>,
        upstream: Arc<Upstream>,
        suspect: Arc<Notify>,
        refetch: Arc<Notify>,
        retry: Arc<Notify>,
        attempts: Arc<std::sync::atomic::AtomicU64>,
    ) {
        let mut backoff = MIN_BACKOFF;
        let mut failing_since: Option<Instant> = None;
        loop {
            // While failing, the tools stay for the grace period, however
            // long an attempt to reconnect takes (a hung upstream).
            let connect = upstream.connect();
            tokio::pin!(connect);
            let grace_ends = failing_since.map(|since| since + self.settings.grace_period);
            let result = match grace_ends {
                Some(ends) if self.listings.contains_key(&*upstream.name) => {
                    tokio::select! {
                        result = &mut connect => result,
                        _ = tokio::time::sleep_until(ends.into()) => {
                            self.withdraw(&upstream);
                            connect.await
                        }
                    }
                }
                _ => connect.await,
            };
            // Counted once the outcome is recorded (health, lists), so a
            // waiting caller that sees the count sees the outcome too.
            let attempt_ended = || {
                attempts.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                self.changed.notify_waiters();
            };
            match result {
                Ok(listing) => {
                    backoff = MIN_BACKOFF;
                    failing_since = None;
                    let capabilities = listing.capabilities.clone();
                    let era = upstream
                        .era()
                        .map(|e| e.version().to_string())
                        .unwrap_or_default();
                    tracing::info!(
                        upstream = %upstream.name,
                        target = %upstream.spec.transport.target(),
                        era,
                        tools = listing.tools.len(),
                        "upstream ready"
                    );
                    self.set_health(&upstream.name, Health::Ready);
                    self.publish(&upstream, listing).await;
                    attempt_ended();
                    let error = self
                        .follow(&upstream, &capabilities, &suspect, &refetch)
                        .await;
                    self.failing(&upstream, &error, &mut failing_since);
                }
                Err(error) => {
                    self.failing(&upstream, &error, &mut failing_since);
                    attempt_ended();
                    // Wake in time to withdraw the tools when the grace ends.
                    let until_grace = failing_since
                        .map(|since| {
                            (since + self.settings.grace_period)
                                .saturating_duration_since(Instant::now())
                        })
                        .filter(|left| !left.is_zero())
                        .unwrap_or(MAX_BACKOFF);
                    // New pods, and a caller waiting for this upstream,
                    // are worth trying at once.
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.min(until_grace)) => {}
                        _ = refetch.notified() => {}
                        _ = retry.notified() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Follows a ready upstream until it fails; returns why.
    async fn follow(
        &self,
        upstream: &Arc<Upstream>,
        capabilities: &serde_json::Value,
        suspect: &Notify,
        refetch: &Notify,
    ) -> UpstreamError {
        let (signals, mut signal) = mpsc::channel(8);
        let watch = upstream.watch(signals);
        tokio::pin!(watch);
        let mut watching = true;
        let mut probe = tokio::time::interval(self.settings.probe_interval);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        probe.tick().await; // the first tick is immediate; the connect just proved health
        loop {
            tokio::select! {
                end = &mut watch, if watching => match end {
                    Ok(WatchEnd::Unsupported) => watching = false,
                    // The stream closing is how a restart usually shows:
                    // reconnect, and re-fetch the lists on the way.
                    Ok(WatchEnd::Closed) => return UpstreamError::Broken("change stream closed".into()),
                    Err(error) => return error,
                },
                _ = refetch.notified() => {
                    tracing::info!(upstream = %upstream.name, "pods changed; re-fetching the lists");
                    match upstream.refresh(capabilities).await {
                        Ok(listing) => self.publish(upstream, listing).await,
                        Err(error) => return error,
                    }
                }
                Some(Signal::ListChanged) = signal.recv() => {
                    match upstream.refresh(capabilities).await {
                        Ok(listing) => self.publish(upstream, listing).await,
                        Err(error) => return error,
                    }
                }
                _ = probe.tick() => {
                    if let Err(error) = upstream.probe(self.probe_timeout()).await {
                        return error;
                    }
                }
                _ = suspect.notified() => {
                    if let Err(error) = upstream.probe(self.probe_timeout()).await {
                        return error;
                    }
                }
            }
        }
    }

    /// Records a failure; withdraws the tools once it has lasted longer
    /// than the grace period.
    fn failing(&self, upstream: &Upstream, error: &UpstreamError, since: &mut Option<Instant>) {
        let started = *since.get_or_insert_with(Instant::now);
        let message = error.to_string();
        let changed = self
            .health
            .get(&*upstream.name)
            .is_none_or(|h| h.0 != Health::Failing(message.clone()));
        if changed {
            tracing::warn!(
                upstream = %upstream.name,
                target = %upstream.spec.transport.target(),
                "upstream failing: {message}"
            );
            self.set_health(&upstream.name, Health::Failing(message));
        }
        if started.elapsed() >= self.settings.grace_period {
            self.withdraw(upstream);
        }
    }

    /// Takes a failing upstream's tools out of the catalog.
    fn withdraw(&self, upstream: &Upstream) {
        if self.listings.remove(&*upstream.name).is_some() {
            tracing::warn!(
                upstream = %upstream.name,
                grace_ms = self.settings.grace_period.as_millis() as u64,
                "upstream unavailable past the grace period; its tools are withdrawn"
            );
            self.rebuild();
        }
    }

    /// A probe answers in well under its interval, or the upstream is not
    /// healthy (bounded to [1 s, 10 s]).
    fn probe_timeout(&self) -> Duration {
        self.settings
            .probe_interval
            .clamp(Duration::from_secs(1), Duration::from_secs(10))
    }
}
