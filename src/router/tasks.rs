//! Tasks on the aggregated endpoint: a task id the client holds carries its
//! upstream's prefix (see `relay::tasks`), so `tasks/get`, `tasks/result`,
//! `tasks/update` and `tasks/cancel` go to the upstream whose prefix it
//! starts with, without it; `tasks/list` pages through every upstream the
//! caller may use that lists tasks, one upstream's pages after another.
//! On `/servers/{name}/mcp` none of this happens: everything goes to the
//! one upstream as it is.

use std::sync::Arc;

use serde_json::{Value, json};

use super::invalid_params;
use crate::catalog::Server;
use crate::exchange::{Failure, Outcome, Request};
use crate::relay::{self, forward_request};

/// Sends a request about one task to the upstream that owns it.
pub(super) async fn route(
    request: &Request<'_>,
    id: &Value,
    method: &str,
    mut params: Value,
) -> Result<Outcome, Failure> {
    let task_id = params
        .get("taskId")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_params("params.taskId is required"))?;
    // Unknown and not the caller's look the same: -32602, as for a task
    // id the upstream never gave.
    let unknown = || invalid_params(format!("Unknown task: {task_id}"));
    let server = request
        .catalog
        .servers
        .iter()
        .filter(|server| task_id.starts_with(&*server.prefix))
        .max_by_key(|server| server.prefix.len())
        .filter(|server| request.caller.may_use_server(&server.prefix, None))
        .ok_or_else(unknown)?;
    let upstream = request.pool.upstream(&server.name).ok_or_else(unknown)?;
    let own_id = task_id[server.prefix.len()..].to_string();
    params["taskId"] = Value::String(own_id);
    let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
    forward_request(request, &upstream, message, id).await
}

/// One page of the tasks of every upstream the caller may use. The cursor
/// names the upstream and that upstream's own cursor, so pages need no
/// state at the gateway.
pub(super) async fn list(
    request: &Request<'_>,
    id: &Value,
    params: &Value,
) -> Result<Outcome, Failure> {
    let servers: Vec<&Server> = {
        let mut servers: Vec<&Server> = request
            .catalog
            .servers
            .iter()
            .filter(|server| lists_tasks(server))
            .filter(|server| request.caller.may_use_server(&server.prefix, None))
            .collect();
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        servers
    };
    let (mut at, mut cursor) = match params.get("cursor").and_then(Value::as_str) {
        None => (0, None),
        Some(cursor) => {
            let (name, own): (String, Option<String>) =
                serde_json::from_str(cursor).map_err(|_| invalid_params("Invalid cursor"))?;
            let at = servers
                .iter()
                .position(|server| *server.name == *name)
                .ok_or_else(|| invalid_params("Invalid cursor"))?;
            (at, own)
        }
    };
    let mut tasks = Vec::new();
    let mut next = None;
    while let Some(server) = servers.get(at) {
        let Some(upstream) = request.pool.upstream(&server.name) else {
            (at, cursor) = (at + 1, None);
            continue;
        };
        let mut page_params = json!({});
        if let Some(cursor) = cursor.take() {
            page_params["cursor"] = Value::String(cursor);
        }
        let message =
            json!({ "jsonrpc": "2.0", "id": id, "method": "tasks/list", "params": page_params });
        match relay::fetch(request, &upstream, message).await {
            Ok(mut response) => {
                relay::tasks::prefix_ids(&mut response, &upstream.prefix);
                let result = response.get_mut("result");
                if let Some(page) = result
                    .as_ref()
                    .and_then(|r| r.get("tasks"))
                    .and_then(Value::as_array)
                {
                    tasks.extend(page.iter().cloned());
                }
                match result
                    .and_then(|r| r.get("nextCursor"))
                    .and_then(Value::as_str)
                {
                    Some(own) => next = Some((server.name.clone(), Some(own.to_string()))),
                    None => {
                        next = servers
                            .get(at + 1)
                            .map(|following| (following.name.clone(), None));
                    }
                }
            }
            // One upstream that cannot list its tasks does not hide the
            // others'; it is logged, and its tasks stay reachable by id.
            Err((_, error)) => {
                tracing::warn!(upstream = %upstream.name, "tasks/list failed: {}", error.message);
                next = servers
                    .get(at + 1)
                    .map(|following| (following.name.clone(), None));
            }
        }
        // A page ends at the first upstream that gave tasks, or that has more.
        if !tasks.is_empty() || next.as_ref().is_some_and(|(name, _)| *name == server.name) {
            break;
        }
        (at, cursor) = (at + 1, None);
    }
    let mut result = json!({ "tasks": tasks });
    if let Some(next) = next {
        result["nextCursor"] = Value::String(next_cursor(&next));
    }
    Ok(request.finish(id, result, false))
}

fn next_cursor((name, own): &(Arc<str>, Option<String>)) -> String {
    json!([&**name, own]).to_string()
}

/// Whether an upstream said it lists tasks (2025-11-25's `tasks.list`).
fn lists_tasks(server: &Server) -> bool {
    server
        .listing
        .as_ref()
        .is_some_and(|listing| listing.capabilities.pointer("/tasks/list").is_some())
}
