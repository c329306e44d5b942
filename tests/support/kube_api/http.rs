//! One request to the double, answered as the API server would: the path
//! names a kind (404 when it is not served), the verb and query say what
//! to do; API discovery lists the kinds of a group version; TokenReview
//! checks a token.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use super::objects::{fields_match, labels_match, merge};
use super::{Body, Inner, Request, Shared, emit, text};

/// What a path names.
pub(super) struct Target {
    pub(super) api_version: String,
    pub(super) plural: String,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
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

/// The group version a discovery path asks about: `/api/v1` → `v1`,
/// `/apis/<group>/<version>` → `<group>/<version>`.
fn discovery_path(path: &str) -> Option<String> {
    match path
        .trim_matches('/')
        .split('/')
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["api", version] => Some(version.to_string()),
        ["apis", group, version] => Some(format!("{group}/{version}")),
        _ => None,
    }
}

/// The kinds served in one group version (`APIResourceList`), or 404 when
/// none are: the API server does not know a group version with no kinds.
fn discovery(inner: &Inner, api_version: &str) -> hyper::Response<Body> {
    let resources: Vec<Value> = inner
        .kinds
        .iter()
        .filter(|((v, _), _)| v == api_version)
        .map(|((_, plural), info)| {
            json!({"name": plural, "singularName": "", "namespaced": info.namespaced,
                   "kind": info.kind,
                   "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
        })
        .collect();
    if resources.is_empty() {
        return status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({api_version})"),
        );
    }
    respond(
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1",
               "groupVersion": api_version, "resources": resources}),
    )
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

pub(super) async fn handle(
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
    {
        let request = Request {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
        };
        let mut inner = lock();
        let counts = inner.counts.entry(path.clone()).or_default();
        match method.as_str() {
            "GET" if request.is_watch() => counts.watches += 1,
            "GET" => counts.reads += 1,
            _ => counts.writes += 1,
        }
        inner.requests.push(request);
    }
    if method == "POST" && path == "/apis/authentication.k8s.io/v1/tokenreviews" {
        return token_review(&lock(), &body);
    }
    if method == "GET"
        && let Some(api_version) = discovery_path(&path)
    {
        return discovery(&lock(), &api_version);
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
            super::watch::watch_stream(shared, &target, &info, &params)
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
