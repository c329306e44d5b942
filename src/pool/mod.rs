//! The upstream pool: one [`Upstream`] per configured server, reconciled
//! towards the desired set; a monitor task per upstream that connects,
//! follows its change notifications, probes its health and reconnects; and
//! the catalog snapshot built from what the ready ones list.
//!
//! Here: the members and reconciling them; [`monitor`] the task per
//! upstream; [`health`] what is known of each and waiting for one;
//! [`catalogs`] the snapshots and their announcements.

mod catalogs;
mod health;
mod monitor;

pub use health::{Health, Unavailable, UpstreamReport, UpstreamState};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use tokio::sync::{Notify, broadcast};

use crate::catalog::{Catalog, CatalogChange, Listing};
use crate::config::{HealthSettings, UpstreamSpec};
use crate::protocol::Relayable;
use crate::upstream::{InProcessServer, Upstream};

/// Who declared a set of upstreams; each replaces only its own set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    ConfigFile,
    /// The gateway's own cluster tools.
    Builtin,
    Kubernetes,
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
    /// [`health::RETRY_AT_MOST_EVERY`].
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
