//! A Kubernetes API server TEST DOUBLE: list, watch, get, create, replace,
//! patch (merge; status subresource) and delete over real HTTP, generic
//! over kinds, with what the real one does that clients depend on —
//! a global resourceVersion, watch from a version (replaying history),
//! bookmarks, `410 Gone` once history is compacted, generation bumps on
//! spec changes, status writes that touch only `.status`, and 404 for a
//! kind that is not served (a CRD not installed). No real API server can run
//! on these machines; Switchboard's real kube client talks to this one.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

/// One request the double received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
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
    cut: watch::Sender<u64>,
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
            cut: watch::channel(0).0,
            bookmark: tokio::sync::Notify::new(),
        });
        let served = shared.clone();
        let url = super::serve_http(move |request| {
            let shared = served.clone();
            async move { handle(&shared, request).await }
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

impl Inner {
    /// Stores `object` (create or replace); returns it and the event type.
    /// `from_client` requests keep the stored status (status is written
    /// only through the subresource).
    fn store(&mut self, mut object: Value, from_client: bool) -> (Value, &'static str) {
        let id = (
            text(&object, "/apiVersion"),
            text(&object, "/kind"),
            text(&object, "/metadata/namespace"),
            text(&object, "/metadata/name"),
        );
        self.rv += 1;
        let previous = self.objects.get(&id).cloned();
        if object.get("metadata").is_none_or(|m| !m.is_object()) {
            object["metadata"] = json!({});
        }
        let event = match &previous {
            None => {
                self.next_uid += 1;
                let metadata = &mut object["metadata"];
                metadata["uid"] = json!(format!("00000000-0000-0000-0000-{:012}", self.next_uid));
                if metadata.get("creationTimestamp").is_none_or(Value::is_null) {
                    metadata["creationTimestamp"] = json!(now());
                }
                metadata["generation"] = json!(1);
                "ADDED"
            }
            Some(previous) => {
                let metadata = &mut object["metadata"];
                metadata["uid"] = previous["metadata"]["uid"].clone();
                metadata["creationTimestamp"] = previous["metadata"]["creationTimestamp"].clone();
                let generation = previous["metadata"]["generation"].as_i64().unwrap_or(1);
                let changed = without(previous, &["metadata", "status"])
                    != without(&object, &["metadata", "status"]);
                object["metadata"]["generation"] = json!(generation + i64::from(changed));
                if from_client || object.get("status").is_none() {
                    match previous.get("status") {
                        Some(status) => object["status"] = status.clone(),
                        None => {
                            if let Some(map) = object.as_object_mut() {
                                map.remove("status");
                            }
                        }
                    }
                }
                "MODIFIED"
            }
        };
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.objects.insert(id, object.clone());
        (object, event)
    }
}

fn without(object: &Value, keys: &[&str]) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for key in keys {
            map.remove(*key);
        }
    }
    copy
}

fn now() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// RFC 3339 in UTC to the second, as the API server writes times (no date
/// crate: the civil date from days since the epoch, Howard Hinnant's way).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let seconds = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(entries) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().unwrap();
            for (key, value) in entries {
                if value.is_null() {
                    map.remove(key);
                } else {
                    merge(map.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// What a path names.
struct Target {
    api_version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (api_version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => (version.to_string(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(name.to_string()), None),
        [plural, name, sub] => (plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(Target {
        api_version,
        plural: plural.to_string(),
        namespace,
        name,
        subresource,
    })
}

fn query_map(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `create` of a TokenReview, answered as the API server does: 201 with
/// `status.authenticated`, the user, and the audiences both sides share.
fn token_review(inner: &Inner, body: &[u8]) -> hyper::Response<Body> {
    let Ok(mut review) = serde_json::from_slice::<Value>(body) else {
        return status(400, "BadRequest", "malformed JSON body");
    };
    let token = review["spec"]["token"].as_str().unwrap_or("");
    let wanted: Vec<String> = review["spec"]["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    review["status"] = match inner.tokens.get(token) {
        Some((username, groups, audiences)) => {
            let shared: Vec<&String> = if wanted.is_empty() {
                audiences.iter().collect()
            } else {
                wanted.iter().filter(|a| audiences.contains(a)).collect()
            };
            if shared.is_empty() {
                json!({"authenticated": false, "error": "token audiences do not match"})
            } else {
                json!({"authenticated": true, "audiences": shared,
                       "user": {"username": username, "groups": groups}})
            }
        }
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
    };
    respond(201, review)
}

fn respond(status: u16, body: Value) -> hyper::Response<Body> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> hyper::Response<Body> {
    respond(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "reason": reason, "code": code, "message": message}),
    )
}

/// Label selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated.
fn labels_match(object: &Value, selector: &str) -> bool {
    let labels = object.pointer("/metadata/labels");
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            label(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            label(k.trim()) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            label(k.trim()).is_none()
        } else {
            label(term.trim()).is_some()
        }
    })
}

fn fields_match(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) else {
            return true;
        };
        match k {
            "metadata.name" => text(object, "/metadata/name") == v,
            "metadata.namespace" => text(object, "/metadata/namespace") == v,
            _ => true,
        }
    })
}

async fn handle(
    shared: &Arc<Shared>,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Body> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let lock = || shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    lock().requests.push(Request {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
    });
    if method == "POST" && path == "/apis/authentication.k8s.io/v1/tokenreviews" {
        return token_review(&lock(), &body);
    }
    let Some(target) = parse_path(&path) else {
        return status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
        );
    };
    let params = query_map(&query);
    let info = lock()
        .kinds
        .get(&(target.api_version.clone(), target.plural.clone()))
        .cloned();
    let Some(info) = info else {
        return status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
        );
    };
    let namespace = target.namespace.clone().unwrap_or_default();
    let id = |name: &str| {
        (
            target.api_version.clone(),
            info.kind.clone(),
            if info.namespaced {
                namespace.clone()
            } else {
                String::new()
            },
            name.to_string(),
        )
    };
    let parse_body = || serde_json::from_slice::<Value>(&body);

    match (method.as_str(), &target.name, target.subresource.as_deref()) {
        ("GET", None, _) if params.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch_stream(shared, &target, &info, &params)
        }
        ("GET", None, _) => {
            let inner = lock();
            let items: Vec<Value> = inner
                .objects
                .iter()
                .filter(|((v, k, ns, _), _)| {
                    *v == target.api_version
                        && *k == info.kind
                        && (target.namespace.is_none() || *ns == namespace)
                })
                .map(|(_, o)| o.clone())
                .filter(|o| {
                    params
                        .get("labelSelector")
                        .is_none_or(|s| labels_match(o, s))
                })
                .filter(|o| {
                    params
                        .get("fieldSelector")
                        .is_none_or(|s| fields_match(o, s))
                })
                .collect();
            // Paging: `continue` is the offset of the next page.
            let start: usize = params
                .get("continue")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let limit: usize = params
                .get("limit")
                .and_then(|l| l.parse().ok())
                .filter(|l| *l > 0)
                .unwrap_or(usize::MAX);
            let end = start.saturating_add(limit).min(items.len());
            let mut metadata = json!({"resourceVersion": inner.rv.to_string()});
            if end < items.len() {
                metadata["continue"] = json!(end.to_string());
            }
            respond(
                200,
                json!({"kind": format!("{}List", info.kind), "apiVersion": target.api_version,
                       "metadata": metadata, "items": items[start.min(end)..end]}),
            )
        }
        ("GET", Some(name), Some("log")) => {
            let container = params.get("container").cloned().unwrap_or_default();
            let previous = params.get("previous").is_some_and(|p| p == "true");
            let log = lock()
                .logs
                .get(&(namespace.clone(), name.clone(), container, previous))
                .cloned();
            let Some(mut log) = log else {
                return status(404, "NotFound", &format!("no logs for pod {name}"));
            };
            if let Some(tail) = params
                .get("tailLines")
                .and_then(|t| t.parse::<usize>().ok())
            {
                let lines: Vec<&str> = log.lines().collect();
                log = lines[lines.len().saturating_sub(tail)..].join("\n") + "\n";
            }
            if let Some(limit) = params
                .get("limitBytes")
                .and_then(|t| t.parse::<usize>().ok())
            {
                log.truncate(limit.min(log.len()));
            }
            hyper::Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from(log)).boxed())
                .unwrap()
        }
        ("GET", Some(name), _) => match lock().objects.get(&id(name)) {
            Some(object) => respond(200, object.clone()),
            None => status(
                404,
                "NotFound",
                &format!("{} \"{name}\" not found", target.plural),
            ),
        },
        ("POST", None, _) => {
            let Ok(mut object) = parse_body() else {
                return status(400, "BadRequest", "malformed JSON body");
            };
            object["apiVersion"] = json!(target.api_version);
            object["kind"] = json!(info.kind);
            if info.namespaced {
                object["metadata"]["namespace"] = json!(namespace);
            }
            let name = text(&object, "/metadata/name");
            let mut inner = lock();
            if inner.objects.contains_key(&id(&name)) {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("{} \"{name}\" already exists", target.plural),
                );
            }
            let (stored, event) = inner.store(object, true);
            emit(shared, &mut inner, event, &stored);
            respond(201, stored)
        }
        ("PUT" | "PATCH", Some(name), sub) => {
            let Ok(patch) = parse_body() else {
                return status(400, "BadRequest", "malformed JSON body");
            };
            let mut inner = lock();
            let Some(current) = inner.objects.get(&id(name)).cloned() else {
                return status(
                    404,
                    "NotFound",
                    &format!("{} \"{name}\" not found", target.plural),
                );
            };
            let mut next = if method == "PUT" {
                patch.clone()
            } else if content_type.starts_with("application/json-patch+json") {
                return status(
                    415,
                    "UnsupportedMediaType",
                    "json-patch is not served by this double",
                );
            } else {
                let mut next = current.clone();
                merge(&mut next, &patch);
                next
            };
            next["apiVersion"] = current["apiVersion"].clone();
            next["kind"] = current["kind"].clone();
            next["metadata"]["name"] = json!(name);
            if info.namespaced {
                next["metadata"]["namespace"] = json!(namespace);
            }
            let stored = match sub {
                Some("status") => {
                    // Only .status changes; generation stays.
                    let mut object = current.clone();
                    object["status"] = next.get("status").cloned().unwrap_or(Value::Null);
                    inner.rv += 1;
                    object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
                    inner.objects.insert(id(name), object.clone());
                    object
                }
                Some(other) => {
                    return status(404, "NotFound", &format!("no subresource {other}"));
                }
                None => inner.store(next, true).0,
            };
            emit(shared, &mut inner, "MODIFIED", &stored);
            respond(200, stored)
        }
        ("DELETE", Some(name), None) => {
            let mut inner = lock();
            match inner.objects.remove(&id(name)) {
                None => status(
                    404,
                    "NotFound",
                    &format!("{} \"{name}\" not found", target.plural),
                ),
                Some(mut object) => {
                    inner.rv += 1;
                    object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
                    emit(shared, &mut inner, "DELETED", &object);
                    respond(200, object)
                }
            }
        }
        _ => status(
            405,
            "MethodNotAllowed",
            &format!("{method} is not allowed on {path}"),
        ),
    }
}

/// A watch: newline-delimited events from `resourceVersion` on.
fn watch_stream(
    shared: &Arc<Shared>,
    target: &Target,
    info: &KindInfo,
    params: &HashMap<String, String>,
) -> hyper::Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(256);
    let api_version = target.api_version.clone();
    let kind = info.kind.clone();
    let namespace = target.namespace.clone();
    let labels = params.get("labelSelector").cloned();
    let fields = params.get("fieldSelector").cloned();
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let from: Option<u64> = params
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .and_then(|v| v.parse().ok());
    let matches = move |change: &Change| {
        change.api_version == api_version
            && change.kind == kind
            && namespace.as_ref().is_none_or(|ns| *ns == change.namespace)
            && labels
                .as_ref()
                .is_none_or(|s| labels_match(&change.object, s))
            && fields
                .as_ref()
                .is_none_or(|s| fields_match(&change.object, s))
    };
    let line = |kind_of_event: &str, object: &Value| {
        Ok(Frame::data(Bytes::from(
            json!({"type": kind_of_event, "object": object}).to_string() + "\n",
        )))
    };

    // Under the lock: what to replay, and a subscription so nothing falls
    // between the replay and the live events.
    let mut live = shared.changes.subscribe();
    let mut cut = shared.cut.subscribe();
    let (replay, mut last_rv, expired) = {
        let inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        match from {
            Some(rv) if rv < inner.compacted => (Vec::new(), inner.rv, Some(rv)),
            Some(rv) => (
                inner
                    .history
                    .iter()
                    .filter(|c| c.rv > rv && matches(c))
                    .map(|c| line(c.kind_of_event, &c.object))
                    .collect::<Vec<_>>(),
                inner.rv.max(rv),
                None,
            ),
            None => (
                inner
                    .objects
                    .values()
                    .map(|o| Change {
                        rv: 0,
                        api_version: text(o, "/apiVersion"),
                        kind: text(o, "/kind"),
                        namespace: text(o, "/metadata/namespace"),
                        kind_of_event: "ADDED",
                        object: o.clone(),
                    })
                    .filter(|c| matches(c))
                    .map(|c| line("ADDED", &c.object))
                    .collect(),
                inner.rv,
                None,
            ),
        }
    };
    let shared = shared.clone();
    let bookmark_kind = info.kind.clone();
    let bookmark_version = target.api_version.clone();
    tokio::spawn(async move {
        if let Some(rv) = expired {
            let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "reason": "Expired", "code": 410,
                              "message": format!("too old resource version: {rv} ({last_rv})")});
            let _ = tx.send(line("ERROR", &gone)).await;
            return;
        }
        for event in replay {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            let bookmark = tokio::select! {
                change = live.recv() => match change {
                    Ok(change) => {
                        if change.rv > last_rv || change.rv == 0 {
                            last_rv = last_rv.max(change.rv);
                            if matches(&change) && tx.send(line(change.kind_of_event, &change.object)).await.is_err() {
                                return;
                            }
                        }
                        false
                    }
                    // Fell behind: end the watch, as the real server does.
                    Err(_) => return,
                },
                _ = ticker.tick() => true,
                _ = shared.bookmark.notified() => true,
                _ = cut.changed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
            };
            if bookmark && bookmarks {
                let object = json!({"kind": bookmark_kind, "apiVersion": bookmark_version,
                                    "metadata": {"resourceVersion": last_rv.to_string()}});
                if tx.send(line("BOOKMARK", &object)).await.is_err() {
                    return;
                }
            }
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    hyper::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}
