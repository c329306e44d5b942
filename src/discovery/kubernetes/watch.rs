//! The watches that fill discovery's [`Store`]: one per kind and scope
//! (all namespaces, or each configured one), parsed into [`Parsed`]
//! objects as events arrive.
//!
//! A kind the API server does not serve (its CRD absent, or removed) is
//! not watched: its watchers stop at the first 404, it is said once, and
//! [`presence`] asks discovery with a growing backoff until it is served;
//! then it is watched and listed like any other, without a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::sync::Notify;

use super::objects::{ObjectKey, Registration, Route, ServiceInfo, Slice};
use super::presence::{self, RECHECK_CAP};
use super::{Kind, Parsed, Store};

/// One scope of a kind: where its watch lists, and where its objects go.
pub(super) struct ScopeWatch {
    pub api: Api<DynamicObject>,
    /// `all namespaces` or `namespace <ns>`, for log lines.
    pub label: String,
    /// Its [`super::Scope`] in the store.
    pub index: usize,
}

/// Follows one kind in all its scopes, forever. While the kind is served
/// each scope has a watcher, which relists after a 410 Gone and retries
/// errors with backoff. When a scope finds the kind not served (a 404 that
/// API discovery confirms), every watcher of the kind stops and its
/// objects go (the API server deletes a CRD's objects with it, and a watch
/// that was down meanwhile never saw those deletions); discovery then asks,
/// with backoff, until the kind is served again, and watches it from a
/// fresh list.
pub(super) async fn follow_kind(
    client: kube::Client,
    kind: Kind,
    scopes: Vec<ScopeWatch>,
    store: Arc<Mutex<Store>>,
    changed: Arc<Notify>,
) {
    let resource = kind.resource();
    let name = presence::describe(&resource);
    let mut backoff = presence::Backoff::default();
    // Said once when the kind is found absent, cleared when it has been
    // listed again: a re-check that finds it still absent, or a CRD that
    // discovery lists a moment before its objects can be, says nothing.
    let absent = AtomicBool::new(false);
    if scopes.is_empty() {
        return; // nothing to watch (and select_all needs a future)
    }
    loop {
        let watches = scopes.iter().map(|scope| {
            Box::pin(follow_scope(
                &client, kind, scope, &name, &absent, &store, &changed,
            ))
        });
        let (listed, _, _) = futures_util::future::select_all(watches).await;
        if listed {
            backoff.reset();
        }
        forget(&store, &scopes, &changed);
        if !absent.swap(true, Ordering::Relaxed) {
            if kind.optional() {
                tracing::info!("{name} not installed; not watched");
            } else {
                // Discovery cannot sync without it (see `Store::synced`).
                tracing::warn!(
                    "{name} not installed; not watched (Kubernetes discovery needs it: install its CRD)"
                );
            }
        }
        presence::wait_until_served(&client, &resource, &mut backoff).await;
        tracing::debug!("{name} is served; listing it");
    }
}

/// Drops every object of the scopes' kind, announcing it if any were held.
fn forget(store: &Mutex<Store>, scopes: &[ScopeWatch], changed: &Notify) {
    let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
    let mut dropped = false;
    for scope in scopes {
        let objects = &mut store.scopes[scope.index].objects;
        dropped |= !objects.is_empty();
        objects.clear();
    }
    if dropped {
        changed.notify_one();
    }
}

/// Watches one scope until the API server says the kind is not served;
/// returns whether it was listed in between.
async fn follow_scope(
    client: &kube::Client,
    kind: Kind,
    scope: &ScopeWatch,
    name: &str,
    absent: &AtomicBool,
    store: &Mutex<Store>,
    changed: &Notify,
) -> bool {
    let resource = kind.resource();
    let what = format!(
        "{}/{} {}",
        resource.api_version, resource.plural, scope.label
    );
    let stream = watcher(scope.api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    tokio::pin!(stream);
    let mut listing: Option<HashMap<ObjectKey, Parsed>> = None;
    let mut listed = false;
    let mut warnings = Warnings::default();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => match classify(&error) {
                // Confirmed by discovery before the kind's objects are
                // dropped: one stray 404 must not withdraw every server.
                Failure::NotServed => match presence::served(client, &resource).await {
                    Ok(false) => return listed,
                    Ok(true) => {
                        tracing::debug!("{what}: {error}, though the kind is served; retrying");
                        continue;
                    }
                    Err(check) => {
                        tracing::debug!("{what}: {error}; checking discovery: {check}; retrying");
                        continue;
                    }
                },
                Failure::Restart => {
                    tracing::debug!("watching {what}: {error}; restarting");
                    continue;
                }
                Failure::Other(message) => {
                    warnings.failed(format!("{what}: {message}"));
                    continue;
                }
            },
        };
        warnings.recovered(&what);
        let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
        let held = &mut store.scopes[scope.index];
        match event {
            watcher::Event::Init => listing = Some(HashMap::new()),
            watcher::Event::InitApply(object) => {
                if let (Some(listing), Some((key, parsed))) = (&mut listing, parse(kind, &object)) {
                    listing.insert(key, parsed);
                }
            }
            watcher::Event::InitDone => {
                held.objects = listing.take().unwrap_or_default();
                held.synced = true;
                tracing::debug!(objects = held.objects.len(), "watching {what}");
                if absent.swap(false, Ordering::Relaxed) {
                    tracing::info!("{name} installed; watching");
                }
                listed = true;
                changed.notify_one();
            }
            watcher::Event::Apply(object) => {
                if let Some((key, parsed)) = parse(kind, &object) {
                    held.objects.insert(key, parsed);
                    changed.notify_one();
                }
            }
            watcher::Event::Delete(object) => {
                if let Some(key) = dynamic_key(&object) {
                    held.objects.remove(&key);
                    changed.notify_one();
                }
            }
        }
    }
    // The watcher retries forever and never ends; were it to, the kind
    // would be re-checked as if absent rather than left unwatched.
    listed
}

/// What a watch error means for the watch.
enum Failure {
    /// 404: the kind is not served (its CRD is not installed).
    NotServed,
    /// The watch restarts as it normally does (410 Gone: relist; the
    /// stream broke: re-watch). Nothing to tell an operator.
    Restart,
    /// Anything else, described for the log.
    Other(String),
}

fn classify(error: &watcher::Error) -> Failure {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchError(status) => Some(status),
        _ => None,
    };
    match (error, status) {
        (_, Some(status)) if status.code == 404 => Failure::NotServed,
        (_, Some(status)) if status.code == 410 => Failure::Restart,
        (watcher::Error::WatchFailed(_), _) => Failure::Restart,
        (_, Some(status)) if status.code == 403 => Failure::Other(format!(
            "forbidden ({}); check the ClusterRole in manifests/",
            status.message
        )),
        _ => Failure::Other(format!("{error}; retrying with backoff")),
    }
}

/// Warnings of one watch, said once per failure: a failure that comes
/// back the moment the watch recovers (each relist) repeats its warning
/// only after [`RECHECK_CAP`], so a flapping watch cannot fill the log.
#[derive(Default)]
struct Warnings {
    /// The last warning and when it was said.
    said: Option<(String, Instant)>,
    /// Failing now, and the failure was warned about.
    failing: bool,
}

impl Warnings {
    fn failed(&mut self, message: String) {
        let repeat = self
            .said
            .as_ref()
            .is_some_and(|(said, at)| *said == message && at.elapsed() < RECHECK_CAP);
        if !repeat {
            tracing::warn!("watching {message}");
            self.said = Some((message, Instant::now()));
            self.failing = true;
        }
    }

    fn recovered(&mut self, what: &str) {
        if std::mem::take(&mut self.failing) {
            tracing::info!("watching {what} again");
        }
    }
}

fn dynamic_key(object: &DynamicObject) -> Option<ObjectKey> {
    Some(ObjectKey::new(
        object.metadata.namespace.as_deref().unwrap_or(""),
        object.metadata.name.as_deref()?,
    ))
}

/// Parses one object of `kind`; a malformed one is logged and skipped
/// (registrations keep their error, to report it on their status).
fn parse(kind: Kind, object: &DynamicObject) -> Option<(ObjectKey, Parsed)> {
    let key = dynamic_key(object)?;
    let json = match serde_json::to_value(object) {
        Ok(json) => json,
        Err(error) => {
            tracing::warn!(object = %key, "unreadable object skipped: {error}");
            return None;
        }
    };
    let parsed = match kind {
        Kind::Registrations(registration_kind) => {
            let registration = Registration::parse(&json, registration_kind)?;
            if let Err(error) = &registration.spec {
                tracing::warn!(registration = %key, kind = registration_kind.kind(), "invalid: {error}");
            }
            let status = json.get("status").cloned().unwrap_or(Value::Null);
            Ok(Parsed::Registration(Box::new(registration), status))
        }
        Kind::Routes => Route::parse(&json).map(Parsed::Route),
        Kind::Services => ServiceInfo::parse(&json).map(Parsed::Service),
        Kind::Slices => match Slice::parse(&json) {
            Ok(Some((service, slice))) => Ok(Parsed::Slice(service, slice)),
            Ok(None) => return None,
            Err(error) => Err(error),
        },
    };
    match parsed {
        Ok(parsed) => Some((key, parsed)),
        Err(error) => {
            let resource = kind.resource();
            tracing::warn!(object = %key, kind = %resource.kind, "malformed object skipped: {error}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("test", "Test").with_code(code)))
    }

    #[test]
    fn a_404_means_not_served_wherever_it_comes() {
        for error in [
            watcher::Error::InitialListFailed(api_error(404)),
            watcher::Error::WatchStartFailed(api_error(404)),
            watcher::Error::WatchError(Box::new(
                Status::failure("gone", "NotFound").with_code(404),
            )),
        ] {
            assert!(matches!(classify(&error), Failure::NotServed), "{error}");
        }
    }

    #[test]
    fn gone_and_broken_streams_are_ordinary_restarts() {
        let gone = watcher::Error::WatchError(Box::new(
            Status::failure("too old resource version", "Expired").with_code(410),
        ));
        assert!(matches!(classify(&gone), Failure::Restart));
        let broken = watcher::Error::WatchFailed(kube::Error::LinesCodecMaxLineLengthExceeded);
        assert!(matches!(classify(&broken), Failure::Restart));
    }

    #[test]
    fn forbidden_points_at_the_cluster_role() {
        let error = watcher::Error::InitialListFailed(api_error(403));
        let Failure::Other(message) = classify(&error) else {
            panic!("403 is a failure to report");
        };
        assert!(message.contains("ClusterRole"), "{message}");
    }

    #[test]
    fn a_repeated_failure_is_warned_once_and_recovery_said_once() {
        let mut warnings = Warnings::default();
        warnings.failed("x: refused".into());
        assert!(warnings.failing);
        warnings.recovered("x");
        assert!(!warnings.failing);
        // The same failure right after recovering: not warned again, so
        // its recovery is not said either.
        warnings.failed("x: refused".into());
        assert!(!warnings.failing);
        // A different one is.
        warnings.failed("x: forbidden".into());
        assert!(warnings.failing);
    }
}
