//! Routes one client message: answered from the catalog snapshot (lists,
//! discovery, ping) or forwarded to the upstream that owns the tool, prompt
//! or resource, with the prefix stripped.

mod tasks;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::catalog::{Catalog, ResourceFilter, Scope, Server};
use crate::exchange::{Client, Failure, Outcome, Request};
use crate::jsonrpc::{self, Message, RpcError};
use crate::metrics;
use crate::pool::Unavailable;
use crate::protocol::param_headers::{self, ParamHeader};
use crate::protocol::{self, Era};
use crate::relay::{self, forward_request, standalone, subscriptions};
use crate::traces::{self};
use crate::upstream::Upstream;

/// How long a client may cache a merged list: the gateway announces every
/// change with list_changed, so a short TTL only bounds staleness for
/// clients that miss a notification.
const LIST_TTL_MS: u64 = 30_000;

impl Request<'_> {
    fn scope(&self) -> Result<Scope<'_>, RpcError> {
        match self.scope {
            None => Ok(Scope::Aggregate),
            Some(name) => {
                self.catalog.server(name).map(Scope::Server).ok_or_else(|| {
                    RpcError::new(jsonrpc::INTERNAL_ERROR, format!("no server {name}"))
                })
            }
        }
    }

    /// Results to a modern client carry `resultType`; lists carry caching hints.
    fn finish(&self, id: &Value, mut result: Value, cacheable: bool) -> Outcome {
        if self.is_modern() {
            result["resultType"] = "complete".into();
            if cacheable {
                result["ttlMs"] = LIST_TTL_MS.into();
                result["cacheScope"] = "public".into();
            }
        }
        Outcome::result(id, result)
    }
}

pub async fn route(request: Request<'_>, message: Message) -> Outcome {
    match message {
        Message::Request { id, method, params } => {
            let result = handle_request(&request, &id, &method, params).await;
            request.pool.metrics.request(&method, outcome_of(&result));
            match result {
                Ok(Outcome::Json(status, body)) => {
                    request.span.record_reply(&body);
                    Outcome::Json(status, body)
                }
                // The span goes with a streamed answer, to end with it.
                Ok(Outcome::Stream(frames)) if request.span.is_recording() => {
                    Outcome::Stream(traces::follow_stream(std::mem::take(request.span), frames))
                }
                Ok(outcome) => outcome,
                Err((status, error)) => {
                    request.span.fail_rpc(&error);
                    Outcome::error(status, Some(&id), error)
                }
            }
        }
        Message::Notification { method, params } => {
            // A 2025 client cancelling one of its requests: the forward
            // stops, and the upstream is told (see upstream::cancel). An
            // unknown or finished request is ignored, as the spec says.
            if method == "notifications/cancelled"
                && let Client::Legacy(session) = &request.client
                && let Some(id) = params.as_ref().and_then(|p| p.get("requestId"))
            {
                session.cancel(id);
            }
            Outcome::Accepted
        }
        // A 2025 client answering a request relayed to it from an upstream.
        Message::Response { id, body } => {
            // Answers to the gateway's own asking (MRTR toward a 2025
            // client) wait here; a relayed upstream request names its
            // upstream session in its id, for whichever replica this is.
            let delivered = match &request.client {
                Client::Legacy(session) if session.has_waiter(&id) => session.answer(&id, body),
                Client::Legacy(session) => {
                    standalone::deliver_answer(request.pool, session, &id, body).await
                }
                Client::Modern => false,
            };
            if delivered {
                Outcome::Accepted
            } else {
                Outcome::error(
                    StatusCode::BAD_REQUEST,
                    Some(&id),
                    RpcError::new(
                        jsonrpc::INVALID_REQUEST,
                        "no request with this id is waiting for an answer",
                    ),
                )
            }
        }
    }
}

/// How a request ended, for the counters.
fn outcome_of(result: &Result<Outcome, Failure>) -> metrics::Outcome {
    match result {
        Ok(_) => metrics::Outcome::Ok,
        Err((_, error)) if error.code == jsonrpc::UPSTREAM_UNAVAILABLE => {
            metrics::Outcome::UpstreamError
        }
        Err(_) => metrics::Outcome::Error,
    }
}

/// A configured upstream that could not serve the call: `-32001`, naming
/// it and its last error.
fn unavailable_failure(unavailable: Unavailable) -> Failure {
    (
        StatusCode::OK,
        RpcError::new(
            jsonrpc::UPSTREAM_UNAVAILABLE,
            format!(
                "upstream {} is not available: {}",
                unavailable.upstream, unavailable.reason
            ),
        )
        .with_data(json!({ "upstream": &*unavailable.upstream })),
    )
}

fn invalid_params(message: impl Into<String>) -> Failure {
    (
        StatusCode::OK,
        RpcError::new(jsonrpc::INVALID_PARAMS, message),
    )
}

async fn handle_request(
    request: &Request<'_>,
    id: &Value,
    method: &str,
    params: Option<Value>,
) -> Result<Outcome, Failure> {
    let params = params.unwrap_or_else(|| json!({}));
    let cursor = params.get("cursor").and_then(Value::as_str);
    let scope = request.scope().map_err(|e| (StatusCode::BAD_GATEWAY, e))?;
    if request.is_modern() && protocol::REMOVED_IN_MODERN.contains(&method) {
        return Err((
            StatusCode::NOT_FOUND,
            RpcError::new(
                jsonrpc::METHOD_NOT_FOUND,
                format!(
                    "Method not found: {method} does not exist in {}",
                    protocol::MODERN
                ),
            ),
        ));
    }
    match method {
        "ping" => Ok(request.finish(id, json!({}), false)),
        "server/discover" => Ok(request.finish(id, discover(&request.catalog, scope), true)),
        "tools/list" | "prompts/list" => {
            let visible = |name: &str| request.caller.may_use(name);
            let visible: Option<&dyn Fn(&str) -> bool> =
                request.caller.is_restricted().then_some(&visible);
            let (page, key) = if method == "tools/list" {
                (request.catalog.tools_page(scope, cursor, visible), "tools")
            } else {
                (
                    request.catalog.prompts_page(scope, cursor, visible),
                    "prompts",
                )
            };
            let page = page.map_err(|_| invalid_params("Invalid cursor"))?;
            Ok(list_outcome(request, id, key, page.items, page.next_cursor))
        }
        "resources/list" | "resources/templates/list" => {
            let templates = method == "resources/templates/list";
            let key = if templates {
                "resourceTemplates"
            } else {
                "resources"
            };
            let visible = |server: &Server, item: &Value| {
                let uri = item
                    .get(if templates { "uriTemplate" } else { "uri" })
                    .and_then(Value::as_str);
                request.caller.may_use_server(&server.prefix, uri)
            };
            let visible: Option<ResourceFilter<'_>> =
                request.caller.is_restricted().then_some(&visible);
            let items = request.catalog.resources(scope, templates, visible);
            let result = json!({ key: items });
            Ok(request.finish(id, result, true))
        }
        "tools/call" | "prompts/get" => {
            let name = params
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid_params("params.name is required"))?;
            let what = if method == "tools/call" {
                "tool"
            } else {
                "prompt"
            };
            // A forbidden item gets this same answer: its existence is
            // not revealed.
            let unknown = || invalid_params(format!("Unknown {what}: {name}"));
            let prompt = method == "prompts/get";
            // What the catalog says of the tool's mirrored arguments, where
            // the name was looked up anyway (on /mcp).
            let (server, original, listed_headers) = match scope {
                Scope::Server(server) => {
                    if server.listing.is_none()
                        && let Some(Err(unavailable)) =
                            request.pool.await_upstream(server.name.clone()).await
                    {
                        return Err(unavailable_failure(unavailable));
                    }
                    if request.caller.is_restricted() {
                        let entry = request
                            .catalog
                            .entry_of(server, prompt, name)
                            .ok_or_else(unknown)?;
                        if !request.caller.may_use(&entry.exposed) {
                            return Err(unknown());
                        }
                    }
                    (server.name.clone(), None, None)
                }
                Scope::Aggregate => {
                    let lookup = |catalog: &Catalog| {
                        let found = if prompt {
                            catalog.prompt(name)
                        } else {
                            catalog.tool(name)
                        };
                        found.map(|(server, entry)| {
                            let headers = entry.param_headers.clone();
                            (server.name.clone(), entry.original.clone(), headers)
                        })
                    };
                    let (server, original, headers) = match lookup(&request.catalog) {
                        Some(found) => found,
                        // Perhaps its upstream is configured but not serving
                        // yet (a fresh replica) or any more: never "unknown"
                        // for that, but the wait and its outcome.
                        None if request.caller.may_use(name) => {
                            match request.pool.await_owner(name).await {
                                Some(Err(unavailable)) => {
                                    return Err(unavailable_failure(unavailable));
                                }
                                // Ready now, or served since this request's
                                // snapshot was taken, or really unknown.
                                None | Some(Ok(())) => {
                                    lookup(&request.pool.catalog()).ok_or_else(unknown)?
                                }
                            }
                        }
                        None => return Err(unknown()),
                    };
                    if !request.caller.may_use(name) {
                        return Err(unknown());
                    }
                    (server, Some(original), headers)
                }
            };
            let upstream = request.pool.upstream(&server).ok_or_else(unknown)?;
            let headers = mirrored_params(request, &upstream, method, &params, || match scope {
                Scope::Aggregate => listed_headers,
                Scope::Server(server) => request
                    .catalog
                    .entry_of(server, false, name)
                    .and_then(|entry| entry.param_headers.clone()),
            });
            let mut params = params;
            if let Some(original) = original {
                params["name"] = Value::String(original.to_string());
            }
            let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
            let started = std::time::Instant::now();
            let result = relay::forward_with(request, &upstream, message, id, headers).await;
            if method == "tools/call" {
                // Time to the response (or, for a streamed one, its start).
                let failed = outcome_of(&result) == metrics::Outcome::UpstreamError;
                request
                    .pool
                    .metrics
                    .call(&upstream.name, started.elapsed(), failed);
            }
            result
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            let uri = params
                .get("uri")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid_params("params.uri is required"))?;
            let server = match scope {
                Scope::Server(server) => Some(server),
                Scope::Aggregate => request.catalog.resource_server(uri),
            };
            let not_found = || {
                (
                    StatusCode::OK,
                    RpcError::new(
                        jsonrpc::INVALID_PARAMS,
                        format!("Resource not found: {uri}"),
                    )
                    .with_data(json!({ "uri": uri })),
                )
            };
            let server = server
                .filter(|s| request.caller.may_use_server(&s.prefix, Some(uri)))
                .ok_or_else(not_found)?;
            let upstream = request.pool.upstream(&server.name).ok_or_else(not_found)?;
            // 2026-07-28 took subscriptions into `subscriptions/listen`: a
            // 2025 client's are held by the gateway (relay::subscriptions).
            if method != "resources/read"
                && let Client::Legacy(session) = &request.client
                && upstream.era().is_some_and(|era| *era == Era::Modern)
            {
                subscriptions::set(&upstream, session, uri, method == "resources/subscribe").await;
                return Ok(request.finish(id, json!({}), false));
            }
            let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
            forward_request(request, &upstream, message, id).await
        }
        "completion/complete" if request.scope.is_none() => {
            let reference = params.get("ref").cloned().unwrap_or(Value::Null);
            let target = match reference.get("type").and_then(Value::as_str) {
                Some("ref/prompt") => reference
                    .get("name")
                    .and_then(Value::as_str)
                    .and_then(|n| request.catalog.prompt(n))
                    .filter(|(_, entry)| request.caller.may_use(&entry.exposed))
                    .map(|(server, entry)| (server.name.clone(), Some(entry.original.clone()))),
                Some("ref/resource") => reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .and_then(|uri| {
                        request
                            .catalog
                            .resource_server(uri)
                            .filter(|s| request.caller.may_use_server(&s.prefix, Some(uri)))
                    })
                    .map(|server| (server.name.clone(), None)),
                _ => None,
            };
            let (server, original) =
                target.ok_or_else(|| invalid_params("ref names no known prompt or resource"))?;
            let upstream = request
                .pool
                .upstream(&server)
                .ok_or_else(|| invalid_params("ref names no known prompt or resource"))?;
            let mut params = params;
            if let Some(original) = original {
                params["ref"]["name"] = Value::String(original.to_string());
            }
            let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
            forward_request(request, &upstream, message, id).await
        }
        "logging/setLevel" => {
            let Client::Legacy(session) = &request.client else {
                unreachable!("a modern client's setLevel was refused above");
            };
            let level = params
                .get("level")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid_params("params.level is required"))?;
            // Kept for modern upstreams, which take the level per request.
            session.set_log_level(level);
            let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
            match only_upstream(request) {
                Some(upstream) if !upstream.era().is_some_and(|e| *e == Era::Modern) => {
                    forward_request(request, &upstream, message, id).await
                }
                Some(_) => Ok(request.finish(id, json!({}), false)),
                // On /mcp: every 2025-era upstream the caller can reach that
                // logs hears it, in the client's own session, as it would
                // directly. One that fails says so in the log; the level
                // holds for the others.
                None => {
                    let takes_level = |server: &&Server| {
                        server
                            .listing
                            .as_ref()
                            .is_some_and(|l| l.capabilities.get("logging").is_some())
                            && request.caller.may_use_server(&server.prefix, None)
                    };
                    let upstreams: Vec<Arc<Upstream>> = request
                        .catalog
                        .servers
                        .iter()
                        .filter(takes_level)
                        .filter_map(|server| request.pool.upstream(&server.name))
                        .filter(|upstream| !upstream.era().is_some_and(|e| *e == Era::Modern))
                        .collect();
                    let told = upstreams
                        .iter()
                        .map(|upstream| forward_request(request, upstream, message.clone(), id));
                    futures_util::future::join_all(told).await;
                    Ok(request.finish(id, json!({}), false))
                }
            }
        }
        // On /mcp a task id names its upstream by prefix (router::tasks).
        method
            if request.scope.is_none()
                && relay::tasks::routes_by_id(method, request.is_modern()) =>
        {
            tasks::route(request, id, method, params).await
        }
        // 2026-07-28's tasks extension has no list.
        "tasks/list" if request.scope.is_none() && !request.is_modern() => {
            tasks::list(request, id, &params).await
        }
        _ => {
            if let Some(upstream) = only_upstream(request) {
                let message =
                    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
                return forward_request(request, &upstream, message, id).await;
            }
            // The 2026 transport answers an unknown method with 404.
            let status = if request.is_modern() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            Err((
                status,
                RpcError::new(
                    jsonrpc::METHOD_NOT_FOUND,
                    format!("Method not found: {method}"),
                ),
            ))
        }
    }
}

/// On `/servers/{name}/mcp`, the one upstream behind it, when the caller
/// may use it as a whole.
/// The `Mcp-Param-*` headers a 2026-07-28 upstream requires with a call of
/// a tool whose arguments it mirrors (`x-mcp-header`), for a 2025 client,
/// which cannot know to send them (a 2026-07-28 client's own go through).
/// `listed` gives the tool's annotations, asked only then.
fn mirrored_params(
    request: &Request<'_>,
    upstream: &Upstream,
    method: &str,
    params: &Value,
    listed: impl FnOnce() -> Option<Arc<[ParamHeader]>>,
) -> Vec<(HeaderName, HeaderValue)> {
    let needed = method == "tools/call"
        && matches!(request.client, Client::Legacy(_))
        && upstream.era().is_some_and(|era| *era == Era::Modern);
    let headers = if needed { listed() } else { None };
    match headers {
        Some(headers) => {
            param_headers::values(&headers, params.get("arguments").unwrap_or(&Value::Null))
        }
        None => Vec::new(),
    }
}

fn only_upstream(request: &Request<'_>) -> Option<Arc<Upstream>> {
    let upstream = request.scope.and_then(|name| request.pool.upstream(name))?;
    request
        .caller
        .may_use_server(&upstream.prefix, None)
        .then_some(upstream)
}

fn discover(catalog: &Catalog, scope: Scope<'_>) -> Value {
    let capabilities = match scope {
        Scope::Server(server) => server
            .listing
            .as_ref()
            .map(|l| l.capabilities.clone())
            .unwrap_or_else(|| json!({})),
        Scope::Aggregate => catalog.aggregate_capabilities(),
    };
    json!({
        "supportedVersions": protocol::SUPPORTED,
        "capabilities": capabilities,
        "_meta": { "io.modelcontextprotocol/serverInfo": protocol::implementation() },
    })
}

/// Writes a list response by concatenating pre-serialised items.
fn list_outcome(
    request: &Request<'_>,
    id: &Value,
    key: &str,
    items: Vec<&str>,
    next_cursor: Option<String>,
) -> Outcome {
    let body = list_body(id, key, &items, next_cursor.as_deref(), request.is_modern());
    Outcome::Json(StatusCode::OK, Bytes::from(body))
}

/// A list response built by concatenating the snapshot's pre-serialised
/// items (the `tools/list` hot path; see benches/catalog.rs).
pub fn list_body(
    id: &Value,
    key: &str,
    items: &[&str],
    next_cursor: Option<&str>,
    modern: bool,
) -> String {
    let size: usize = items.iter().map(|i| i.len() + 1).sum();
    let mut out = String::with_capacity(size + 160);
    out.push_str(r#"{"jsonrpc":"2.0","id":"#);
    out.push_str(&id.to_string());
    out.push_str(r#","result":{""#);
    out.push_str(key);
    out.push_str(r#"":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    if let Some(cursor) = next_cursor {
        out.push_str(r#","nextCursor":"#);
        out.push_str(&Value::String(cursor.to_string()).to_string());
    }
    if modern {
        out.push_str(&format!(
            r#","resultType":"complete","ttlMs":{LIST_TTL_MS},"cacheScope":"public""#
        ));
    }
    out.push_str("}}");
    out
}
