//! A Kubernetes API server TEST DOUBLE: list, watch, get, create, replace,
//! patch (merge; status subresource) and delete over real HTTP, generic
//! over kinds, with what the real one does that clients depend on —
//! a global resourceVersion, watch from a version (replaying history),
//! bookmarks, `410 Gone` once history is compacted, generation bumps on
//! spec changes, status writes that touch only `.status`, and 404 for a
//! kind that is not served (a CRD not installed), with API discovery
//! (`/api/v1`, `/apis/<group>/<version>`) listing what is. Every request is
//! recorded and counted, so a test can hold how often a client asks. No
//! real API server can run on these machines; Switchboard's real kube
//! client talks to this one.
//!
//! - this file: the double's state and what tests call on it;
//! - [`http`]: one request → one response (paths, verbs, discovery);
//! - [`objects`]: storing an object as the API server does, selectors;
//! - [`watch`]: watch streams (replay, live events, bookmarks, 410 Gone);
//! - [`fixtures`]: the objects discovery tests build, and their gateway.

pub mod fixtures;
mod http;
mod objects;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use serde_json::{Value, json};
use tokio::sync::broadcast;

// Not every test file uses it.
#[allow(unused_imports)]
pub use objects::rfc3339;

/// One request the double received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
}

impl Request {
    /// API discovery (`/api/v1`, `/apis/<group>/<version>`): which kinds
    /// are served, no objects.
    pub fn is_discovery(&self) -> bool {
        matches!(
            self.path
                .trim_matches('/')
                .split('/')
                .collect::<Vec<_>>()
                .as_slice(),
            ["api", _] | ["apis", _, _]
        )
    }

    /// A watch (`?watch=true`), as opposed to a list or a get.
    pub fn is_watch(&self) -> bool {
        self.query
            .split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    }
}

/// How many requests one path received, by what they asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// GETs that are not watches: lists, gets and discovery.
    pub reads: usize,
    /// Watches opened.
    pub watches: usize,
    /// Everything else: creates, replaces, patches, deletes.
    pub writes: usize,
}

#[derive(Clone)]
struct KindInfo {
    kind: String,
    namespaced: bool,
}

/// A change, as watches see it.
#[derive(Clone)]
struct Change {
    rv: u64,
    api_version: String,
    kind: String,
    namespace: String,
    kind_of_event: &'static str,
    object: Value,
}

type ObjectId = (String, String, String, String); // apiVersion, kind, namespace, name

#[derive(Default)]
struct Inner {
    rv: u64,
    /// (apiVersion, plural) → kind.
    kinds: HashMap<(String, String), KindInfo>,
    objects: BTreeMap<ObjectId, Value>,
    history: Vec<Change>,
    /// Watches from a version at or below this get 410 Gone.
    compacted: u64,
    requests: Vec<Request>,
    /// Path → what it was asked, kept apart from `requests` so a test can
    /// read one path's count without scanning the log.
    counts: HashMap<String, Counts>,
    logs: HashMap<(String, String, String, bool), String>,
    next_uid: u64,
    /// Service-account tokens TokenReview accepts: token → (username,
    /// groups, audiences the token was issued for).
    tokens: HashMap<String, (String, Vec<String>, Vec<String>)>,
}

struct Shared {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Change>,
    /// Bumped to end every open watch.
    cut: tokio::sync::watch::Sender<u64>,
    bookmark: tokio::sync::Notify,
}

#[derive(Clone)]
pub struct KubeApi {
    shared: Arc<Shared>,
    url: String,
}

type Body = BoxBody<Bytes, Infallible>;

impl KubeApi {
    pub async fn start() -> KubeApi {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            changes: broadcast::channel(1024).0,
            cut: tokio::sync::watch::channel(0).0,
            bookmark: tokio::sync::Notify::new(),
        });
        let served = shared.clone();
        let url = super::serve_http(move |request| {
            let shared = served.clone();
            async move { http::handle(&shared, request).await }
        })
        .await;
        let api = KubeApi { shared, url };
        for (api_version, kind, plural, namespaced) in [
            ("v1", "Namespace", "namespaces", false),
            ("v1", "Node", "nodes", false),
            ("v1", "Pod", "pods", true),
            ("v1", "Service", "services", true),
            ("v1", "Secret", "secrets", true),
            ("v1", "Event", "events", true),
            ("v1", "ConfigMap", "configmaps", true),
            (
                "discovery.k8s.io/v1",
                "EndpointSlice",
                "endpointslices",
                true,
            ),
            (
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                "httproutes",
                true,
            ),
            ("apps/v1", "Deployment", "deployments", true),
            ("apps/v1", "ReplicaSet", "replicasets", true),
            ("batch/v1", "Job", "jobs", true),
            ("batch/v1", "CronJob", "cronjobs", true),
            ("events.k8s.io/v1", "Event", "events", true),
        ] {
            api.register(api_version, kind, plural, namespaced);
        }
        api
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A kubeconfig pointing at the double, with a bearer token.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {}\n\
             users:\n- name: tester\n  user:\n    token: test-double-token\n\
             contexts:\n- name: double\n  context:\n    cluster: double\n    user: tester\n\
             current-context: double\n",
            self.url
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn register(&self, api_version: &str, kind: &str, plural: &str, namespaced: bool) {
        self.lock().kinds.insert(
            (api_version.to_string(), plural.to_string()),
            KindInfo {
                kind: kind.to_string(),
                namespaced,
            },
        );
    }

    pub fn unregister(&self, api_version: &str, kind: &str) {
        self.lock()
            .kinds
            .retain(|(v, _), info| !(v == api_version && info.kind == kind));
    }

    /// Creates or replaces an object (as `kubectl apply` would).
    pub fn put(&self, object: Value) -> Value {
        let mut inner = self.lock();
        let stored = inner.store(object, false);
        self.emit(&mut inner, stored.1, &stored.0);
        stored.0
    }

    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let mut inner = self.lock();
        let id = (
            api_version.to_string(),
            kind.to_string(),
            namespace.unwrap_or("").to_string(),
            name.to_string(),
        );
        match inner.objects.remove(&id) {
            None => false,
            Some(mut object) => {
                inner.rv += 1;
                object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
                self.emit(&mut inner, "DELETED", &object);
                true
            }
        }
    }

    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let id = (
            api_version.to_string(),
            kind.to_string(),
            namespace.unwrap_or("").to_string(),
            name.to_string(),
        );
        self.lock().objects.get(&id).cloned()
    }

    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        self.lock()
            .objects
            .iter()
            .filter(|((v, k, _, _), _)| v == api_version && k == kind)
            .map(|(_, o)| o.clone())
            .collect()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// What `path` (no query) has been asked so far.
    pub fn counts(&self, path: &str) -> Counts {
        self.lock().counts.get(path).copied().unwrap_or_default()
    }

    /// The path a kind is listed at cluster-wide (`namespace` None) or in
    /// one namespace: `/apis/<group>/<version>[/namespaces/<ns>]/<plural>`.
    pub fn path_of(api_version: &str, plural: &str, namespace: Option<&str>) -> String {
        let root = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        match namespace {
            None => format!("{root}/{plural}"),
            Some(ns) => format!("{root}/namespaces/{ns}/{plural}"),
        }
    }

    /// Compaction after writes no watcher saw (as etcd compacts while
    /// other kinds change): history is forgotten and any watch resuming
    /// from a version handed out so far gets 410 Gone.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.rv += 1;
        inner.compacted = inner.rv;
        inner.history.clear();
    }

    /// Ends every open watch; clients re-watch from their last version.
    pub fn break_watches(&self) {
        self.shared.cut.send_modify(|n| *n += 1);
    }

    /// Sends a bookmark on every watch that asked for them, now.
    pub fn bookmark_now(&self) {
        self.shared.bookmark.notify_waiters();
    }

    pub fn set_pod_log(&self, namespace: &str, pod: &str, container: &str, text: &str) {
        self.lock().logs.insert(
            (namespace.into(), pod.into(), container.into(), false),
            text.into(),
        );
    }

    pub fn set_previous_pod_log(&self, namespace: &str, pod: &str, container: &str, text: &str) {
        self.lock().logs.insert(
            (namespace.into(), pod.into(), container.into(), true),
            text.into(),
        );
    }

    /// Makes TokenReview accept `token` for `username`, issued for `audiences`.
    pub fn set_token(&self, token: &str, username: &str, groups: &[&str], audiences: &[&str]) {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        self.lock().tokens.insert(
            token.to_string(),
            (username.to_string(), strings(groups), strings(audiences)),
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, inner: &mut Inner, kind_of_event: &'static str, object: &Value) {
        emit(&self.shared, inner, kind_of_event, object);
    }
}

fn emit(shared: &Shared, inner: &mut Inner, kind_of_event: &'static str, object: &Value) {
    let change = Change {
        rv: inner.rv,
        api_version: text(object, "/apiVersion"),
        kind: text(object, "/kind"),
        namespace: text(object, "/metadata/namespace"),
        kind_of_event,
        object: object.clone(),
    };
    inner.history.push(change.clone());
    let _ = shared.changes.send(change);
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}
