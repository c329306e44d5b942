//! The upstream pool: one [`Upstream`] per configured server, reconciled
//! towards the desired set; a monitor task per upstream that connects,
//! follows its change notifications, probes its health and reconnects; and
//! the catalog snapshot built from what the ready ones list.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use serde_json::Value;
use tokio::sync::{Notify, broadcast, mpsc};

use crate::catalog::{Catalog, CatalogChange, Listing, ServerInput};
use crate::config::{HealthSettings, UpstreamSpec};
use crate::protocol::Relayable;
use crate::upstream::{InProcessServer, Signal, Upstream, UpstreamError, WatchEnd};

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

/// Who declared a set of upstreams; each replaces only its own set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    ConfigFile,
    /// The gateway's own cluster tools.
    Builtin,
    Kubernetes,
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

struct Member {
    upstream: Arc<Upstream>,
    /// Wakes the monitor to probe now (a call just failed).
    suspect: Arc<Notify>,
    /// Wakes the monitor to re-fetch the lists now (its pods changed).
    refetch: Arc<Notify>,
    /// Wakes a failing upstream's monitor to try again now, instead of
    /// when its backoff ends (a caller wants it).
    retry: Arc<Notify>,
    /// When a caller last asked for that, to keep it to one per
    /// [`RETRY_AT_MOST_EVERY`].
    last_retry: std::sync::Mutex<Option<Instant>>,
    /// Connection attempts ended (connected or failed): a waiting caller
    /// learns that the attempt it waited for is over.
    attempts: Arc<std::sync::atomic::AtomicU64>,
    /// The monitor; aborted when the member is removed or replaced.
    task: tokio::task::JoinHandle<()>,
}

pub struct Pool {
    client: crate::net::HttpClient,
    settings: HealthSettings,
    members: DashMap<Arc<str>, Member>,
    /// What each member last listed; absent while it is not ready (or has
    /// been failing for longer than the grace period).
    listings: DashMap<Arc<str>, Arc<Listing>>,
    /// Last state per upstream, and since when: a change is logged once,
    /// not per attempt.
    health: DashMap<Arc<str>, (Health, std::time::SystemTime)>,
    /// Request, call and catalog counters (`/status`, `/metrics`).
    pub metrics: crate::metrics::Metrics,
    catalog: ArcSwap<Catalog>,
    changes: broadcast::Sender<Arc<CatalogChange>>,
    /// Serialises rebuilds so that snapshots are swapped in order.
    rebuild_lock: std::sync::Mutex<()>,
    /// The desired set of each origin; reconciled together.
    desired: tokio::sync::Mutex<HashMap<Origin, Vec<UpstreamSpec>>>,
    /// Ready pods per Kubernetes upstream, kept for one not started yet.
    endpoints: DashMap<String, Vec<SocketAddr>>,
    /// A discovery source has not completed its first sync (`/readyz`).
    discovery_pending: std::sync::atomic::AtomicBool,
    /// The in-process upstream (the cluster tools), when enabled.
    builtin: std::sync::OnceLock<Arc<dyn InProcessServer>>,
    /// Woken whenever an upstream's health or listing changes: callers
    /// waiting for an upstream that is not ready yet look again.
    changed: Notify,
    /// When the pool started, for the startup deadline of `/readyz`.
    started: Instant,
    /// What each member lists to clients that can be asked a set of
    /// requests (by member and [`Relayable::index`]), for the sets clients
    /// have declared so far.
    variants: DashMap<(Arc<str>, usize), Arc<Listing>>,
    /// The catalog each such set of clients sees (by [`Relayable::index`];
    /// the empty set's is [`Pool::catalog`]).
    variant_catalogs: [arc_swap::ArcSwapOption<Catalog>; Relayable::SETS],
    /// The sets some client has declared (bit `1 << index`).
    wanted: std::sync::atomic::AtomicU8,
    /// One first fetch per set at a time.
    first_fetch: [tokio::sync::Mutex<()>; Relayable::SETS],
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
const RETRY_AT_MOST_EVERY: Duration = Duration::from_millis(500);

/// How long the first client declaring a new set of capabilities waits
/// for the upstreams' lists for it.
const VARIANT_FIRST_WAIT: Duration = Duration::from_secs(5);

const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between two connection attempts to a failing upstream.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Pool {
    pub fn new(settings: HealthSettings) -> Arc<Pool> {
        Arc::new(Pool {
            client: crate::net::client::client(),
            settings,
            members: DashMap::new(),
            listings: DashMap::new(),
            health: DashMap::new(),
            metrics: Default::default(),
            catalog: ArcSwap::from_pointee(Catalog::default()),
            changes: broadcast::channel(64).0,
            rebuild_lock: std::sync::Mutex::new(()),
            desired: Default::default(),
            endpoints: DashMap::new(),
            discovery_pending: Default::default(),
            builtin: Default::default(),
            changed: Notify::new(),
            started: Instant::now(),
            variants: DashMap::new(),
            variant_catalogs: Default::default(),
            wanted: Default::default(),
            first_fetch: Default::default(),
        })
    }

    /// The catalog as clients that can be asked `asks` see it: what each
    /// upstream lists to such a client directly. The first client of a set
    /// waits (bounded) while every upstream is asked; the lists are then
    /// kept fresh with the others ([`Pool::publish`]).
    pub async fn catalog_for(&self, asks: Relayable) -> Arc<Catalog> {
        if asks.is_empty() {
            return self.catalog();
        }
        let index = asks.index();
        if let Some(catalog) = self.variant_catalogs[index].load_full() {
            return catalog;
        }
        let _first = self.first_fetch[index].lock().await;
        if let Some(catalog) = self.variant_catalogs[index].load_full() {
            return catalog;
        }
        self.wanted
            .fetch_or(1 << index, std::sync::atomic::Ordering::AcqRel);
        let ready: Vec<(Arc<Upstream>, Arc<Listing>)> = self
            .members
            .iter()
            .filter(|m| m.upstream.lists_by_capabilities())
            .filter_map(|m| {
                let listing = self.listings.get(&*m.upstream.name)?.clone();
                Some((m.upstream.clone(), listing))
            })
            .collect();
        let fetches = ready
            .iter()
            .map(|(upstream, listing)| self.fetch_variant(upstream, &listing.capabilities, asks));
        // Slow upstreams are filled in by their next refresh; until then
        // these clients see what the gateway's own session sees.
        let _ =
            tokio::time::timeout(VARIANT_FIRST_WAIT, futures_util::future::join_all(fetches)).await;
        self.rebuild();
        self.variant_catalogs[index]
            .load_full()
            .unwrap_or_else(|| self.catalog())
    }

    /// Fetches and keeps what `upstream` (which declared `capabilities`)
    /// lists to clients that can be asked `asks`.
    async fn fetch_variant(&self, upstream: &Upstream, capabilities: &Value, asks: Relayable) {
        match upstream.listing_for(capabilities, asks).await {
            Ok(listing) => {
                self.variants
                    .insert((upstream.name.clone(), asks.index()), Arc::new(listing));
            }
            Err(error) => {
                tracing::debug!(upstream = %upstream.name, set = asks.index(), "lists for declared capabilities: {error}");
            }
        }
    }

    /// The sets of capabilities some client has declared.
    fn wanted_sets(&self) -> impl Iterator<Item = Relayable> {
        let wanted = self.wanted.load(std::sync::atomic::Ordering::Acquire);
        (1..Relayable::SETS)
            .filter(move |index| wanted & (1 << index) != 0)
            .map(Relayable::from_index)
    }

    /// The current snapshot: one atomic load, no lock.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    pub fn upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        self.members.get(name).map(|m| m.upstream.clone())
    }

    /// Every configured upstream.
    pub fn upstreams(&self) -> Vec<Arc<Upstream>> {
        self.members.iter().map(|m| m.upstream.clone()).collect()
    }

    /// Catalog changes, for list_changed delivery.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CatalogChange>> {
        self.changes.subscribe()
    }

    /// A call to `name` failed in a way that suggests the upstream is
    /// unwell: probe it now rather than at the next interval.
    pub fn suspect(&self, name: &str) {
        if let Some(member) = self.members.get(name) {
            member.suspect.notify_one();
        }
    }

    /// Health and tool count of one upstream.
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

    /// Prefixes of the upstreams `origin` declared, with their names.
    pub async fn prefixes(&self, origin: Origin) -> Vec<(String, String)> {
        let desired = self.desired.lock().await;
        desired
            .get(&origin)
            .into_iter()
            .flatten()
            .map(|s| (s.prefix.clone(), s.name.clone()))
            .collect()
    }

    /// The ready pods of a Kubernetes Service upstream changed (or were
    /// first seen): sessions on a pod that left move on their next call,
    /// and the lists are re-fetched, announcing a real difference.
    pub fn set_endpoints(&self, name: &str, ready: Vec<SocketAddr>) {
        if let Some(member) = self.members.get(name)
            && member.upstream.set_endpoints(ready.clone())
        {
            member.refetch.notify_one();
        }
        self.endpoints.insert(name.to_string(), ready);
    }

    /// Serves an in-process server (the cluster tools) as the upstream
    /// `name`; there is at most one.
    pub async fn serve_in_process(
        self: &Arc<Self>,
        name: &str,
        prefix: &str,
        server: Arc<dyn InProcessServer>,
    ) {
        let _ = self.builtin.set(server);
        let spec = UpstreamSpec {
            name: name.into(),
            prefix: prefix.into(),
            transport: crate::config::TransportSpec::Builtin,
            timeout: Duration::from_secs(30),
            max_concurrency: crate::config::DEFAULT_MAX_CONCURRENCY,
            source: crate::config::Source::Builtin,
        };
        self.apply(Origin::Builtin, vec![spec]).await;
    }

    /// Readiness waits for a discovery source's first sync.
    pub fn await_discovery(&self) {
        self.discovery_pending
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn discovery_synced(&self) {
        self.discovery_pending
            .store(false, std::sync::atomic::Ordering::Release);
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
    fn serving(&self, upstream: &str) -> bool {
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

    /// Replaces what `origin` declares and reconciles. Names and prefixes
    /// already taken by another origin are refused (the config file's
    /// first, then in each origin's order).
    pub async fn apply(self: &Arc<Self>, origin: Origin, specs: Vec<UpstreamSpec>) {
        let mut desired = self.desired.lock().await;
        desired.insert(origin, specs);
        let mut origins: Vec<_> = desired.keys().copied().collect();
        origins.sort();
        let mut names = std::collections::HashSet::new();
        let mut prefixes = std::collections::HashSet::new();
        let mut union = Vec::new();
        for origin in origins {
            for spec in &desired[&origin] {
                if !names.insert(spec.name.as_str()) || !prefixes.insert(spec.prefix.as_str()) {
                    tracing::warn!(upstream = %spec.name, source = %spec.source, prefix = %spec.prefix, "name or prefix already taken; not started");
                    continue;
                }
                union.push(spec.clone());
            }
        }
        drop(names);
        drop(prefixes);
        self.reconcile(union).await;
    }

    /// Reconciles towards `desired`: starts new upstreams, drops removed
    /// ones and restarts those whose spec changed. One rebuild at the end,
    /// so an edit announces one change.
    async fn reconcile(self: &Arc<Self>, desired: Vec<UpstreamSpec>) {
        let wanted: HashMap<&str, &UpstreamSpec> =
            desired.iter().map(|s| (s.name.as_str(), s)).collect();
        let stale: Vec<Arc<str>> = self
            .members
            .iter()
            .filter(|m| wanted.get(&*m.upstream.name) != Some(&&m.upstream.spec))
            .map(|m| m.key().clone())
            .collect();
        for name in stale {
            if let Some((_, member)) = self.members.remove(&name) {
                member.task.abort();
                if !wanted.contains_key(&*name) {
                    self.endpoints.remove(&*name);
                    self.metrics.forget(&name);
                }
                self.listings.remove(&name);
                self.variants.retain(|(member, _), _| *member != name);
                self.health.remove(&name);
                tracing::info!(upstream = %name, "upstream removed");
                let upstream = member.upstream;
                tokio::spawn(async move { upstream.shutdown().await });
            }
        }
        for spec in desired {
            if self.members.contains_key(spec.name.as_str()) {
                continue;
            }
            let upstream = match Upstream::new(spec, self.client.clone(), self.builtin.get()) {
                Ok(upstream) => Arc::new(upstream),
                Err(error) => {
                    tracing::error!("upstream not started: {error}");
                    continue;
                }
            };
            let name = upstream.name.clone();
            if let Some(ready) = self.endpoints.get(&*name) {
                upstream.set_endpoints(ready.clone());
            }
            self.set_health(&name, Health::Connecting);
            let suspect = Arc::new(Notify::new());
            let refetch = Arc::new(Notify::new());
            let retry = Arc::new(Notify::new());
            let attempts = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let task = tokio::spawn(self.clone().monitor(
                upstream.clone(),
                suspect.clone(),
                refetch.clone(),
                retry.clone(),
                attempts.clone(),
            ));
            self.members.insert(
                name,
                Member {
                    upstream,
                    suspect,
                    refetch,
                    retry,
                    last_retry: Default::default(),
                    attempts,
                    task,
                },
            );
        }
        self.rebuild();
    }

    /// Connects, follows, and reconnects with exponential backoff, for as
    /// long as the upstream is configured.
    async fn monitor(
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

    fn set_health(&self, name: &Arc<str>, health: Health) {
        let unchanged = self.health.get(name).is_some_and(|h| h.0 == health);
        if !unchanged {
            self.health
                .insert(name.clone(), (health, std::time::SystemTime::now()));
        }
    }

    /// Takes an upstream's freshly fetched lists, with what it lists to
    /// each set of capabilities clients have declared (fetched first, so
    /// that one rebuild announces the change once).
    async fn publish(&self, upstream: &Upstream, listing: Listing) {
        if upstream.lists_by_capabilities() {
            let fetches = self
                .wanted_sets()
                .map(|asks| self.fetch_variant(upstream, &listing.capabilities, asks));
            futures_util::future::join_all(fetches).await;
        }
        self.listings
            .insert(upstream.name.clone(), Arc::new(listing));
        self.rebuild();
        self.changed.notify_waiters();
    }

    /// Builds a new snapshot, swaps it in and announces a real difference.
    fn rebuild(&self) {
        let _guard = self.rebuild_lock.lock().unwrap_or_else(|p| p.into_inner());
        let inputs: Vec<ServerInput> = self
            .members
            .iter()
            .map(|m| ServerInput {
                name: m.upstream.name.clone(),
                prefix: m.upstream.prefix.clone(),
                listing: self.listings.get(&*m.upstream.name).map(|l| l.clone()),
            })
            .collect();
        let mut change = self.rebuild_variants(&inputs);
        let next = Catalog::build(inputs);
        self.metrics
            .catalog_rebuilds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let previous = self.catalog.load();
        for collision in next
            .collisions
            .iter()
            .filter(|c| !previous.collisions.contains(c))
        {
            tracing::warn!("{collision}");
        }
        let previous = self.catalog.swap(Arc::new(next));
        let own = previous.diff(&self.catalog.load());
        if own.any() {
            tracing::info!(
                tools = own.aggregate.tools,
                prompts = own.aggregate.prompts,
                resources = own.aggregate.resources,
                "catalog changed"
            );
        }
        change.absorb(own);
        // One announcement for everything that differs, in any set's
        // catalog (to every stream: a list_changed is idempotent).
        if change.any() {
            let _ = self.changes.send(Arc::new(change));
        }
    }

    /// Rebuilds the catalog of each set of capabilities clients declared:
    /// each ready upstream with what it lists to such clients (its own
    /// lists where it has none for them); returns what differs. Called
    /// under the rebuild lock.
    fn rebuild_variants(&self, inputs: &[ServerInput]) -> CatalogChange {
        let mut change = CatalogChange::default();
        for asks in self.wanted_sets() {
            let index = asks.index();
            let variant_inputs = inputs
                .iter()
                .map(|input| ServerInput {
                    listing: input.listing.as_ref().map(|base| {
                        self.variants
                            .get(&(input.name.clone(), index))
                            .map(|v| v.clone())
                            .unwrap_or_else(|| base.clone())
                    }),
                    ..input.clone()
                })
                .collect();
            let next = Arc::new(Catalog::build(variant_inputs));
            if let Some(previous) = self.variant_catalogs[index].swap(Some(next.clone())) {
                change.absorb(previous.diff(&next));
            }
        }
        change
    }

    /// Stops every upstream (child processes, shared sessions).
    pub async fn shutdown(&self) {
        let members: Vec<Arc<Upstream>> = self.members.iter().map(|m| m.upstream.clone()).collect();
        for member in self.members.iter() {
            member.task.abort();
        }
        for upstream in members {
            upstream.shutdown().await;
        }
    }
}
