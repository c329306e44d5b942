//! What the pool knows of each upstream's health, for readiness, the
//! status page and the cluster tools; and a call waiting for an upstream
//! that is configured but not serving yet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Pool;
use crate::catalog::Listing;
use crate::upstream::Upstream;

/// Health of one upstream, as the pool last saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    Connecting,
    Ready,
    Failing(String),
}

impl Health {
    /// `ready`, `connecting` or `failing`, and the error of a failing one
    /// (for `/status` and `cluster_list_mcp_servers`).
    pub fn describe(health: Option<&Health>) -> (&'static str, Option<&str>) {
        match health {
            Some(Health::Ready) => ("ready", None),
            Some(Health::Connecting) | None => ("connecting", None),
            Some(Health::Failing(error)) => ("failing", Some(error)),
        }
    }
}

/// What the pool knows of one upstream, for status reporting.
#[derive(Debug, Clone)]
pub struct UpstreamState {
    pub health: Health,
    /// When the health last changed.
    pub since: std::time::SystemTime,
    /// What it contributes (0 while it has nothing in the catalog).
    pub tools: usize,
    pub prompts: usize,
    pub resources: usize,
}

/// One upstream and what the pool knows of it, at one moment.
pub struct UpstreamReport {
    pub upstream: Arc<Upstream>,
    /// None before its first connection attempt is recorded.
    pub state: Option<UpstreamState>,
}

/// Why a call for an upstream that is configured but not serving failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub upstream: Arc<str>,
    /// Its last error, or why there is none.
    pub reason: String,
}

/// How long a call waits for an upstream that is reconnecting (its first
/// connection waits for as long as the startup deadline allows).
const RECONNECT_WAIT: Duration = Duration::from_secs(3);

/// Callers make a failing upstream try again at most this often.
pub(super) const RETRY_AT_MOST_EVERY: Duration = Duration::from_millis(500);

impl Pool {
    /// Every upstream with its state, as reported on `/status` and by the
    /// cluster tools.
    pub fn reports(&self) -> Vec<UpstreamReport> {
        self.members
            .iter()
            .map(|member| UpstreamReport {
                state: self.state(&member.upstream.name),
                upstream: member.upstream.clone(),
            })
            .collect()
    }

    /// Health and tool count of one upstream.
    pub fn state(&self, name: &str) -> Option<UpstreamState> {
        let (health, since) = self.health.get(name)?.clone();
        let listing = self.listings.get(name);
        let count = |f: fn(&Listing) -> usize| listing.as_ref().map_or(0, |l| f(l));
        Some(UpstreamState {
            health,
            since,
            tools: count(|l| l.tools.len()),
            prompts: count(|l| l.prompts.len()),
            resources: count(|l| l.resources.len() + l.resource_templates.len()),
        })
    }

    /// Config loaded and discovery synced.
    pub fn ready(&self) -> bool {
        self.readiness().is_ok()
    }

    /// Ready once discovery has synced and every configured upstream's
    /// first connection attempt has ended (connected with its lists, or
    /// failed), or the startup deadline has passed: a fresh replica takes
    /// no traffic it would answer with "unknown tool". Else why not.
    pub fn readiness(&self) -> Result<(), String> {
        if self
            .discovery_pending
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err("Kubernetes discovery has not synced yet".into());
        }
        if self.started.elapsed() >= self.settings.startup_deadline {
            return Ok(());
        }
        let connecting: Vec<String> = self
            .health
            .iter()
            .filter(|h| h.value().0 == Health::Connecting)
            .map(|h| h.key().to_string())
            .collect();
        if connecting.is_empty() {
            Ok(())
        } else {
            Err(format!("connecting to {}", connecting.join(", ")))
        }
    }

    /// For a tool or prompt name that no ready upstream lists: the
    /// configured upstream whose prefix it falls under, when that one is
    /// not serving its lists. Waits for it (its first connection, or a
    /// short reconnect, started at once when it is failing) and says
    /// whether it is ready now. `None`: no configured upstream is missing
    /// behind that name, so it is simply unknown.
    pub async fn await_owner(&self, name: &str) -> Option<Result<(), Unavailable>> {
        let owner = self
            .members
            .iter()
            .filter(|m| name.starts_with(&*m.upstream.prefix))
            .max_by_key(|m| m.upstream.prefix.len())
            .map(|m| m.upstream.name.clone())?;
        if self.serving(&owner) {
            return None;
        }
        self.await_upstream(owner).await
    }

    /// Whether `upstream`'s lists are in the current catalog snapshot (what
    /// calls are routed by; its listing is stored a moment before).
    pub(super) fn serving(&self, upstream: &str) -> bool {
        self.catalog
            .load()
            .server(upstream)
            .is_some_and(|server| server.listing.is_some())
    }

    /// Waits for a configured upstream that is not serving its lists (see
    /// [`Pool::await_owner`]); `None` when it is not configured.
    pub async fn await_upstream(&self, owner: Arc<str>) -> Option<Result<(), Unavailable>> {
        let attempts = self.members.get(&*owner)?.attempts.clone();
        let seen = attempts.load(std::sync::atomic::Ordering::Acquire);
        let wait = if seen == 0 {
            // Its first attempt: as long as the startup deadline allows.
            self.settings
                .startup_deadline
                .saturating_sub(self.started.elapsed())
                .max(RECONNECT_WAIT)
        } else {
            self.retry_now(&owner);
            RECONNECT_WAIT
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a change in between is not missed.
            let changed = self.changed.notified();
            if self.serving(&owner) {
                return Some(Ok(()));
            }
            if !self.members.contains_key(&*owner) {
                return None;
            }
            // The attempt waited for has ended without lists: say why.
            if attempts.load(std::sync::atomic::Ordering::Acquire) > seen {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        let reason = match self.health.get(&*owner).map(|h| h.0.clone()) {
            Some(Health::Failing(error)) => error,
            Some(Health::Ready) => "its lists are being fetched".into(),
            _ => "still connecting".into(),
        };
        Some(Err(Unavailable {
            upstream: owner,
            reason,
        }))
    }

    /// Makes a failing upstream try to connect now, at most once per
    /// [`RETRY_AT_MOST_EVERY`] (its monitor runs one attempt at a time).
    fn retry_now(&self, name: &str) {
        let Some(member) = self.members.get(name) else {
            return;
        };
        let mut last = member.last_retry.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < RETRY_AT_MOST_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        member.retry.notify_one();
    }

    pub(super) fn set_health(&self, name: &Arc<str>, health: Health) {
        let unchanged = self.health.get(name).is_some_and(|h| h.0 == health);
        if !unchanged {
            self.health
                .insert(name.clone(), (health, std::time::SystemTime::now()));
        }
    }
}
