//! The upstream pool: one [`Upstream`] per configured server, reconciled
//! towards the desired set, and the catalog snapshot built from what the
//! ready ones list.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use tokio::sync::broadcast;

use crate::catalog::{Catalog, Changes, Listing, ServerInput};
use crate::config::UpstreamSpec;
use crate::upstream::{Upstream, http};

/// Health of one upstream, as the pool last saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    Connecting,
    Ready,
    Failing(String),
}

struct Member {
    upstream: Arc<Upstream>,
    /// Stops the member's connect loop when it is removed or replaced.
    task: tokio::task::JoinHandle<()>,
}

pub struct Pool {
    client: http::HttpClient,
    members: DashMap<Arc<str>, Member>,
    /// What each member last listed; absent while it is not ready.
    listings: DashMap<Arc<str>, Arc<Listing>>,
    health: DashMap<Arc<str>, Health>,
    catalog: ArcSwap<Catalog>,
    changes: broadcast::Sender<Changes>,
    /// Serialises rebuilds so that snapshots are swapped in order.
    rebuild_lock: std::sync::Mutex<()>,
}

/// Longest wait between two connection attempts to a failing upstream.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Pool {
    pub fn new() -> Arc<Pool> {
        Arc::new(Pool {
            client: http::client(),
            members: DashMap::new(),
            listings: DashMap::new(),
            health: DashMap::new(),
            catalog: ArcSwap::from_pointee(Catalog::default()),
            changes: broadcast::channel(64).0,
            rebuild_lock: std::sync::Mutex::new(()),
        })
    }

    /// The current snapshot: one atomic load, no lock.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    pub fn upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        self.members.get(name).map(|m| m.upstream.clone())
    }

    pub fn health(&self, name: &str) -> Option<Health> {
        self.health.get(name).map(|h| h.clone())
    }

    /// Catalog changes, for list_changed delivery.
    pub fn subscribe(&self) -> broadcast::Receiver<Changes> {
        self.changes.subscribe()
    }

    /// Reconciles towards `desired`: starts new upstreams, drops removed
    /// ones and restarts those whose spec changed.
    pub async fn apply(self: &Arc<Self>, desired: Vec<UpstreamSpec>) {
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
                self.listings.remove(&name);
                self.health.remove(&name);
                let upstream = member.upstream;
                tokio::spawn(async move { upstream.shutdown().await });
            }
        }
        for spec in desired {
            if self.members.contains_key(spec.name.as_str()) {
                continue;
            }
            let upstream = match Upstream::new(spec, self.client.clone()) {
                Ok(upstream) => Arc::new(upstream),
                Err(error) => {
                    tracing::error!("upstream not started: {error}");
                    continue;
                }
            };
            let name = upstream.name.clone();
            self.health.insert(name.clone(), Health::Connecting);
            let task = tokio::spawn(self.clone().connect_loop(upstream.clone()));
            self.members.insert(name, Member { upstream, task });
        }
        self.rebuild();
    }

    /// Connects with exponential backoff until the upstream answers.
    async fn connect_loop(self: Arc<Self>, upstream: Arc<Upstream>) {
        let mut backoff = Duration::from_millis(250);
        loop {
            match upstream.connect().await {
                Ok(listing) => {
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
                    self.listings
                        .insert(upstream.name.clone(), Arc::new(listing));
                    self.health.insert(upstream.name.clone(), Health::Ready);
                    self.rebuild();
                    return;
                }
                Err(error) => {
                    tracing::warn!(
                        upstream = %upstream.name,
                        target = %upstream.spec.transport.target(),
                        retry_in_ms = backoff.as_millis() as u64,
                        "upstream unavailable, its tools are absent: {error}"
                    );
                    self.health
                        .insert(upstream.name.clone(), Health::Failing(error.to_string()));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Builds a new snapshot, swaps it in and announces a real difference.
    fn rebuild(&self) {
        let _guard = self.rebuild_lock.lock().unwrap_or_else(|p| p.into_inner());
        let inputs = self
            .members
            .iter()
            .map(|m| ServerInput {
                name: m.upstream.name.clone(),
                prefix: m.upstream.prefix.clone(),
                listing: self.listings.get(&*m.upstream.name).map(|l| l.clone()),
            })
            .collect();
        let next = Catalog::build(inputs);
        let previous = self.catalog.load();
        for collision in next
            .collisions
            .iter()
            .filter(|c| !previous.collisions.contains(c))
        {
            tracing::warn!("{collision}");
        }
        let previous = self.catalog.swap(Arc::new(next));
        let changes = previous.diff(&self.catalog.load());
        if changes.any() {
            let _ = self.changes.send(changes);
        }
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
