//! Task ids on the aggregated endpoint. On `/mcp` an upstream's task id
//! reaches the client with the upstream's prefix, as its tool names do, so
//! that `tasks/get`, `tasks/result`, `tasks/update` and `tasks/cancel` route
//! back to the upstream that owns the task (the router takes the prefix off
//! on the way there). Any replica can route them: the id says where to go.
//!
//! Both eras' shapes: 2025-11-25's `CreateTaskResult` (`task.taskId`), a
//! task (`taskId`: `tasks/get`, `tasks/cancel`, `notifications/tasks/status`),
//! `tasks/list` (`tasks[].taskId`) and the related-task `_meta`; and the
//! 2026-07-28 tasks extension's flat `resultType: "task"` result and
//! `tasks/get`'s detailed task.

use serde_json::Value;

/// The `_meta` key that ties a message to a task.
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// The 2026-07-28 tasks extension, as a client or server declares it.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// The methods that name a task the client was given, in either era.
pub const BY_ID: [&str; 4] = ["tasks/get", "tasks/result", "tasks/cancel", "tasks/update"];

/// Whether `method` names a task in the client's era: 2025-11-25 has
/// `tasks/result`; the 2026-07-28 tasks extension removed it (its results
/// come inline with `tasks/get`) and has `tasks/update`. The other era's
/// method is unknown there, as it is to a server of that era.
pub fn routes_by_id(method: &str, modern: bool) -> bool {
    match method {
        "tasks/get" | "tasks/cancel" => true,
        "tasks/update" => modern,
        "tasks/result" => !modern,
        _ => false,
    }
}

/// Whether the answer to `message` may carry task ids: the task methods,
/// and a `tools/call` that asked for a task (2025-11-25: `params.task`) or
/// whose client takes them (2026-07-28: the server decides, for clients
/// that declared the extension). Every other answer passes untouched.
pub fn may_carry_ids(message: &Value) -> bool {
    let params = message.get("params");
    match message.get("method").and_then(Value::as_str) {
        Some("tasks/list") => true,
        Some(method) if BY_ID.contains(&method) => true,
        Some("tools/call") => {
            params.and_then(|p| p.get("task")).is_some()
                || params
                    .and_then(|p| p.get("_meta"))
                    .and_then(|meta| meta.get(crate::protocol::META_CLIENT_CAPABILITIES))
                    .and_then(|capabilities| capabilities.get("extensions"))
                    .and_then(|extensions| extensions.get(EXTENSION))
                    .is_some()
        }
        _ => false,
    }
}

/// Adds `prefix` to every task id in a message from the upstream: a
/// response, a notification, or a request it makes of the client.
pub fn prefix_ids(message: &mut Value, prefix: &str) {
    if prefix.is_empty() {
        return;
    }
    let status =
        message.get("method").and_then(Value::as_str) == Some("notifications/tasks/status");
    if let Some(result) = message.get_mut("result") {
        prefix_id(result.pointer_mut("/task/taskId"), prefix);
        prefix_id(result.get_mut("taskId"), prefix);
        if let Some(tasks) = result.get_mut("tasks").and_then(Value::as_array_mut) {
            for task in tasks {
                prefix_id(task.get_mut("taskId"), prefix);
            }
        }
        prefix_related(result, prefix);
    }
    if let Some(params) = message.get_mut("params") {
        if status {
            prefix_id(params.get_mut("taskId"), prefix);
        }
        prefix_related(params, prefix);
    }
}

/// Whether a message from the upstream names a task (so that on `/mcp` it
/// must be looked at before it goes on).
pub fn names_a_task(message: &Value) -> bool {
    message.get("method").and_then(Value::as_str) == Some("notifications/tasks/status")
        || ["params", "result"].iter().any(|part| {
            message
                .get(*part)
                .and_then(|p| p.get("_meta"))
                .and_then(|m| m.get(RELATED_TASK))
                .is_some()
        })
}

fn prefix_related(part: &mut Value, prefix: &str) {
    let related = part
        .get_mut("_meta")
        .and_then(|meta| meta.get_mut(RELATED_TASK))
        .and_then(|related| related.get_mut("taskId"));
    prefix_id(related, prefix);
}

fn prefix_id(id: Option<&mut Value>, prefix: &str) {
    if let Some(id) = id
        && let Some(text) = id.as_str()
    {
        *id = Value::String(format!("{prefix}{text}"));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_task_id_an_upstream_sends_gets_its_prefix() {
        let related = json!({ RELATED_TASK: { "taskId": "t1" } });
        // 2025-11-25: a CreateTaskResult, a task, a list, a task's result, a status.
        let mut created =
            json!({ "id": 1, "result": { "task": { "taskId": "t1", "status": "working" } } });
        let mut task = json!({ "id": 1, "result": { "taskId": "t1", "status": "completed" } });
        let mut list =
            json!({ "id": 1, "result": { "tasks": [{ "taskId": "t1" }, { "taskId": "t2" }] } });
        let mut payload = json!({ "id": 1, "result": { "content": [], "_meta": related.clone() } });
        let mut status = json!({ "method": "notifications/tasks/status", "params": { "taskId": "t1", "status": "working" } });
        let mut asked = json!({ "id": 7, "method": "elicitation/create", "params": { "message": "?", "_meta": related } });
        // 2026-07-28's tasks extension: flat, with the tool's result inline.
        let mut modern = json!({ "id": 1, "result": { "resultType": "task", "taskId": "t1", "status": "working" } });
        for message in [
            &mut created,
            &mut task,
            &mut list,
            &mut payload,
            &mut status,
            &mut asked,
            &mut modern,
        ] {
            prefix_ids(message, "gh_");
        }
        assert_eq!(created["result"]["task"]["taskId"], "gh_t1");
        assert_eq!(task["result"]["taskId"], "gh_t1");
        assert_eq!(list["result"]["tasks"][1]["taskId"], "gh_t2");
        assert_eq!(payload["result"]["_meta"][RELATED_TASK]["taskId"], "gh_t1");
        assert_eq!(status["params"]["taskId"], "gh_t1");
        assert_eq!(asked["params"]["_meta"][RELATED_TASK]["taskId"], "gh_t1");
        assert_eq!(modern["result"]["taskId"], "gh_t1");
        assert!(
            names_a_task(&status)
                && names_a_task(&asked)
                && !names_a_task(&json!({ "method": "notifications/progress", "params": {} }))
        );
    }

    #[test]
    fn only_answers_that_may_hold_tasks_are_opened() {
        assert!(may_carry_ids(
            &json!({ "method": "tasks/get", "params": { "taskId": "x" } })
        ));
        assert!(may_carry_ids(
            &json!({ "method": "tools/call", "params": { "name": "a", "task": { "ttl": 60000 } } })
        ));
        let modern = json!({ "method": "tools/call", "params": { "name": "a", "_meta": {
            crate::protocol::META_CLIENT_CAPABILITIES: { "extensions": { EXTENSION: {} } } } } });
        assert!(may_carry_ids(&modern));
        assert!(!may_carry_ids(
            &json!({ "method": "tools/call", "params": { "name": "a" } })
        ));
        assert!(!may_carry_ids(
            &json!({ "method": "resources/read", "params": { "uri": "x" } })
        ));
    }

    #[test]
    fn each_era_routes_its_own_task_methods() {
        assert!(routes_by_id("tasks/get", true) && routes_by_id("tasks/get", false));
        assert!(routes_by_id("tasks/update", true) && !routes_by_id("tasks/update", false));
        assert!(routes_by_id("tasks/result", false) && !routes_by_id("tasks/result", true));
        assert!(!routes_by_id("tasks/list", false));
    }
}
