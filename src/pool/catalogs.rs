//! The catalog snapshots: rebuilt from what the ready upstreams list,
//! swapped in atomically and announced once per real difference; and the
//! variants for clients that declared sampling, elicitation or roots (what
//! each upstream lists to such a client).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Pool;
use crate::catalog::{Catalog, CatalogChange, Listing, ServerInput};
use crate::protocol::Relayable;
use crate::upstream::Upstream;

/// How long the first client declaring a new set of capabilities waits
/// for the upstreams' lists for it.
const VARIANT_FIRST_WAIT: Duration = Duration::from_secs(5);

impl Pool {
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

    /// Takes an upstream's freshly fetched lists, with what it lists to
    /// each set of capabilities clients have declared (fetched first, so
    /// that one rebuild announces the change once).
    pub(super) async fn publish(&self, upstream: &Upstream, listing: Listing) {
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
    pub(super) fn rebuild(&self) {
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
}
