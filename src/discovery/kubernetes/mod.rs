//! Kubernetes discovery: `MCPServerRegistration`s (and the older kagenti
//! `MCPServer`s) → HTTPRoute → Service → EndpointSlices, watched; each
//! registration becomes an upstream, its ready pods are followed (a rollout
//! re-fetches its lists), and a `Ready` condition is written back.
//!
//! One watch per kind (per namespace when namespaces are configured) keeps
//! parsed objects in a [`Store`] ([`watch`]); any change wakes one resolver
//! loop, which resolves everything ([`resolve`]), reads referenced Secrets,
//! hands the pool its upstreams and pods, and patches statuses that differ.
//! A kind whose CRD is absent is not watched but re-checked with backoff
//! ([`presence`], shared with the cluster tools' optional kinds).

mod objects;
pub mod presence;
mod resolve;
mod status;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::Value;
use tokio::sync::Notify;

use crate::config::{
    DEFAULT_CALL_TIMEOUT, KubernetesSettings, LegacySse, Source, TransportSpec, UpstreamSpec,
};
use crate::pool::{Origin, Pool};
use objects::{ObjectKey, Registration, RegistrationKind, Route, ServiceInfo, Slice};
use resolve::{Held, Resolution, Snapshot};
use watch::ScopeWatch;

/// Time to let a burst of events settle before resolving.
const SETTLE: Duration = Duration::from_millis(50);
/// Statuses follow upstream health this often.
const STATUS_INTERVAL: Duration = Duration::from_secs(2);
/// Everything is re-resolved this often even without events (Secrets are
/// read, not watched: a rotated token is picked up within this time).
const RESYNC_INTERVAL: Duration = Duration::from_secs(30);

/// What one watch follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Registrations(RegistrationKind),
    Routes,
    Services,
    Slices,
}

impl Kind {
    fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = match self {
            Kind::Registrations(r) => (r.group(), r.version(), r.kind(), r.plural()),
            Kind::Routes => ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
            Kind::Services => ("", "v1", "Service", "services"),
            Kind::Slices => ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    /// Whether discovery is ready without it: the older kagenti kind is
    /// only read where its CRD exists.
    fn optional(self) -> bool {
        self == Kind::Registrations(RegistrationKind::Kagenti)
    }
}

/// One object as discovery keeps it.
#[derive(Debug, Clone)]
enum Parsed {
    /// With the object's current `.status`, to write only differences.
    Registration(Box<Registration>, Value),
    Route(Route),
    Service(ServiceInfo),
    /// A slice and the Service it belongs to.
    Slice(ObjectKey, Slice),
}

/// What one watch holds.
struct Scope {
    kind: Kind,
    /// The initial list completed at least once.
    synced: bool,
    objects: HashMap<ObjectKey, Parsed>,
}

#[derive(Default)]
struct Store {
    scopes: Vec<Scope>,
}

impl Store {
    /// Every kind discovery needs has been listed once. A needed kind whose
    /// CRD is absent keeps discovery (and `/readyz`) waiting until it is
    /// installed; the optional kagenti kind never holds it up.
    fn synced(&self) -> bool {
        self.scopes.iter().all(|s| s.synced || s.kind.optional())
    }

    fn snapshot(&self) -> (Snapshot, HashMap<(RegistrationKind, ObjectKey), Value>) {
        let mut snapshot = Snapshot::default();
        let mut statuses = HashMap::new();
        for scope in &self.scopes {
            for (key, parsed) in &scope.objects {
                match parsed {
                    Parsed::Registration(registration, status) => {
                        statuses.insert((registration.kind, key.clone()), status.clone());
                        snapshot.registrations.push((**registration).clone());
                    }
                    Parsed::Route(route) => {
                        snapshot.routes.insert(key.clone(), route.clone());
                    }
                    Parsed::Service(service) => {
                        snapshot.services.insert(key.clone(), service.clone());
                    }
                    Parsed::Slice(service, slice) => {
                        snapshot
                            .slices
                            .entry(service.clone())
                            .or_default()
                            .push(slice.clone());
                    }
                }
            }
        }
        (snapshot, statuses)
    }
}

/// Runs discovery for as long as the gateway serves. Without cluster
/// access it logs why and leaves the config file's upstreams alone.
pub async fn run(settings: KubernetesSettings, pool: Arc<Pool>) {
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(
                "Kubernetes discovery is off: no cluster access ({error}); serving the config file's upstreams"
            );
            pool.discovery_synced();
            return;
        }
    };
    let store = Arc::new(Mutex::new(Store::default()));
    let changed = Arc::new(Notify::new());
    let kinds = [
        Kind::Registrations(RegistrationKind::Kuadrant),
        Kind::Registrations(RegistrationKind::Kagenti),
        Kind::Routes,
        Kind::Services,
        Kind::Slices,
    ];
    let namespaces: Vec<Option<&str>> = if settings.namespaces.is_empty() {
        vec![None]
    } else {
        settings
            .namespaces
            .iter()
            .map(|n| Some(n.as_str()))
            .collect()
    };
    for kind in kinds {
        let mut scopes = Vec::new();
        for namespace in &namespaces {
            let resource = kind.resource();
            let api = match namespace {
                None => Api::<DynamicObject>::all_with(client.clone(), &resource),
                Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource),
            };
            let index = {
                let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
                store.scopes.push(Scope {
                    kind,
                    synced: false,
                    objects: HashMap::new(),
                });
                store.scopes.len() - 1
            };
            let label =
                namespace.map_or("all namespaces".to_string(), |n| format!("namespace {n}"));
            scopes.push(ScopeWatch { api, label, index });
        }
        tokio::spawn(watch::follow_kind(
            client.clone(),
            kind,
            scopes,
            store.clone(),
            changed.clone(),
        ));
    }
    Resolver {
        client,
        pool,
        store,
        secrets: HashMap::new(),
        resolutions: BTreeMap::new(),
        synced: false,
    }
    .run(changed)
    .await;
}

/// A Secret value as read, kept briefly.
struct CachedSecret {
    read: Instant,
    data: Result<BTreeMap<String, Vec<u8>>, String>,
}

struct Resolver {
    client: kube::Client,
    pool: Arc<Pool>,
    store: Arc<Mutex<Store>>,
    /// Secrets read by name (never listed or watched: least privilege).
    secrets: HashMap<ObjectKey, CachedSecret>,
    /// The last resolution of each registration.
    resolutions: BTreeMap<resolve::RegistrationId, Resolution>,
    synced: bool,
}

impl Resolver {
    async fn run(mut self, changed: Arc<Notify>) {
        let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_resolve = Instant::now();
        loop {
            let resolve_now = tokio::select! {
                _ = changed.notified() => {
                    tokio::time::sleep(SETTLE).await;
                    true
                }
                _ = status_tick.tick() => last_resolve.elapsed() >= RESYNC_INTERVAL,
            };
            if resolve_now {
                last_resolve = Instant::now();
                self.resolve().await;
            }
            self.write_statuses().await;
        }
    }

    async fn resolve(&mut self) {
        let (snapshot, synced) = {
            let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
            (store.snapshot().0, store.synced())
        };
        // Until every watch has listed once, a missing route may just not
        // have arrived yet: wait rather than withdraw anything.
        if !synced {
            return;
        }
        // The config file's and the built-in prefixes win over any registration.
        let mut taken = self.pool.prefixes(Origin::ConfigFile).await;
        taken.extend(self.pool.prefixes(Origin::Builtin).await);
        let mut resolutions = resolve::resolve(&snapshot, &taken);
        let mut specs = Vec::new();
        for ((_, key), resolution) in resolutions.iter_mut() {
            let Ok(target) = resolution else { continue };
            match self.spec(key, target).await {
                Ok(spec) => {
                    if let Some(pods) = &target.pods {
                        self.pool.set_endpoints(&target.name, pods.clone());
                    }
                    specs.push(spec);
                }
                Err(held) => *resolution = Err(held),
            }
        }
        tracing::debug!(upstreams = specs.len(), "kubernetes registrations resolved");
        self.pool.apply(Origin::Kubernetes, specs).await;
        self.resolutions = resolutions;
        if !self.synced {
            self.synced = true;
            tracing::info!(
                registrations = self.resolutions.len(),
                serving = self.resolutions.values().filter(|r| r.is_ok()).count(),
                "Kubernetes discovery synced"
            );
            self.pool.discovery_synced();
        }
    }

    /// The upstream spec of a resolved registration, with its Secrets read.
    async fn spec(
        &mut self,
        key: &ObjectKey,
        target: &resolve::Target,
    ) -> Result<UpstreamSpec, Held> {
        let mut headers = Vec::new();
        if let Some((secret, field)) = &target.credential {
            let token = self.secret_value(secret, field).await?;
            let token = String::from_utf8(token).map_err(|_| Held {
                reason: "InvalidCredential",
                message: format!("Secret {secret} key {field:?} is not UTF-8"),
            })?;
            headers.push((
                "authorization".to_string(),
                format!("Bearer {}", token.trim()),
            ));
        }
        let ca_pem = match &target.ca {
            None => None,
            Some((secret, field)) => {
                let pem = self.secret_value(secret, field).await?;
                Some(String::from_utf8(pem).map_err(|_| Held {
                    reason: "InvalidCACertificate",
                    message: format!("Secret {secret} key {field:?} is not a PEM bundle"),
                })?)
            }
        };
        Ok(UpstreamSpec {
            name: target.name.clone(),
            prefix: target.prefix.clone(),
            transport: TransportSpec::Http {
                url: target.url.clone(),
                headers,
                legacy_sse: if target.url.trim_end_matches('/').ends_with("/sse") {
                    LegacySse::Detect
                } else {
                    LegacySse::Never
                },
                ca_pem,
                dial_pods: target.pods.is_some(),
            },
            timeout: DEFAULT_CALL_TIMEOUT,
            max_concurrency: crate::config::DEFAULT_MAX_CONCURRENCY,
            source: Source::Registration {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
            },
        })
    }

    /// One key of a Secret, read by name and cached for the resync period.
    async fn secret_value(&mut self, secret: &ObjectKey, field: &str) -> Result<Vec<u8>, Held> {
        let fresh = self
            .secrets
            .get(secret)
            .is_some_and(|c| c.read.elapsed() < RESYNC_INTERVAL);
        if !fresh {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &secret.namespace);
            let data = match api.get_opt(&secret.name).await {
                Ok(Some(found)) => Ok(found
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect()),
                Ok(None) => Err(format!("Secret {secret} not found")),
                Err(error) => Err(format!("reading Secret {secret}: {error}")),
            };
            self.secrets.insert(
                secret.clone(),
                CachedSecret {
                    read: Instant::now(),
                    data,
                },
            );
        }
        let cached = &self.secrets[secret];
        match &cached.data {
            Err(message) => Err(Held {
                reason: "SecretNotFound",
                message: message.clone(),
            }),
            Ok(data) => data.get(field).cloned().ok_or_else(|| Held {
                reason: "SecretNotFound",
                message: format!("Secret {secret} has no key {field:?}"),
            }),
        }
    }

    /// Patches every registration whose status does not say what we see.
    async fn write_statuses(&mut self) {
        if !self.synced {
            return;
        }
        let (snapshot, statuses) = {
            let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
            store.snapshot()
        };
        let now = k8s_openapi::jiff::Timestamp::now()
            .round(k8s_openapi::jiff::Unit::Second)
            .map(|t| t.to_string())
            .unwrap_or_default();
        for registration in &snapshot.registrations {
            let id = (registration.kind, registration.key.clone());
            let Some(resolution) = self.resolutions.get(&id) else {
                continue; // arrived since the last resolve; next round
            };
            let upstream = resolution
                .as_ref()
                .ok()
                .and_then(|target| self.pool.state(&target.name));
            let readiness = status::readiness(resolution, upstream.as_ref());
            let current = statuses.get(&id).unwrap_or(&Value::Null);
            let Some(patch) = status::patch(current, &readiness, registration.generation, &now)
            else {
                continue;
            };
            let resource = Kind::Registrations(registration.kind).resource();
            let api = Api::<DynamicObject>::namespaced_with(
                self.client.clone(),
                &registration.key.namespace,
                &resource,
            );
            match api
                .patch_status(
                    &registration.key.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(updated) => {
                    tracing::info!(
                        registration = %registration.key,
                        ready = readiness.status,
                        reason = readiness.reason,
                        "{}",
                        readiness.message
                    );
                    // Record what was written, so an unchanged status is
                    // not patched again before the watch echoes it back.
                    let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
                    let written = serde_json::to_value(&updated)
                        .ok()
                        .and_then(|v| v.get("status").cloned())
                        .unwrap_or(Value::Null);
                    for scope in &mut store.scopes {
                        if let Some(Parsed::Registration(r, status)) =
                            scope.objects.get_mut(&registration.key)
                            && r.kind == registration.kind
                        {
                            *status = written.clone();
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(registration = %registration.key, "status not written: {error}");
                }
            }
        }
    }
}
