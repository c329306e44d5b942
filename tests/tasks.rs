//! Tasks (2025-11-25, SEP-1686) through the gateway as directly, with the
//! real server-everything and the TS SDK 1.x client: a task-augmented call
//! of `simulate-research-query` (a task-only tool) is polled with
//! `tasks/get` to its end and read with `tasks/result`, another is
//! cancelled, and `tasks/list` pages through them. On `/mcp`, with two
//! upstreams that both run tasks, a task id carries its upstream's prefix
//! and routes back to it; on `/servers/{name}/mcp` ids are the upstream's own.

mod support;

use serde_json::{Value, json};
use support::*;

const TOOL: &str = "simulate-research-query";

fn plan(first: &str, second: &str) -> Value {
    json!({ "tasks": [
        { "name": format!("{first}{TOOL}"), "arguments": { "topic": "gateways" } },
        { "name": format!("{second}{TOOL}"), "arguments": { "topic": "proxies" } },
        { "name": format!("{first}{TOOL}"), "arguments": { "topic": "anything" }, "cancel": true },
    ]})
}

/// What a run reports of its tasks, ids aside: (status, text) each.
fn outcomes(output: &Value) -> Vec<(Value, Value)> {
    output["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks in {output}"))
        .iter()
        .map(|task| (task["status"].clone(), task["text"].clone()))
        .collect()
}

fn ids(output: &Value) -> Vec<String> {
    output["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|task| task["taskId"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn listed(output: &Value) -> Vec<String> {
    let mut listed: Vec<String> = output["taskList"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| id.as_str().map(String::from))
        .collect();
    listed.sort();
    listed
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_run_and_route_back_by_id_through_either_endpoint_as_directly() {
    let (_first, first_url) = everything();
    let (_second, second_url) = everything();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: ev\n    url: \"{first_url}\"\n    timeout: \"20s\"\n  - name: ev2\n    url: \"{second_url}\"\n    timeout: \"20s\"\n"
    ));
    gateway.wait_for_tools(&["ev_echo", "ev2_echo"]).await;

    // Directly: two tasks completed, one cancelled; each session lists its own.
    let direct = ts_client(&first_url, "legacy", &plan("", ""));
    let expected = outcomes(&direct);
    assert_eq!(expected[0].0, "completed", "{direct}");
    assert!(
        expected[0]
            .1
            .as_str()
            .unwrap_or_default()
            .contains("gateways"),
        "{direct}"
    );
    assert_eq!(expected[2].0, "cancelled", "{direct}");
    let mut direct_ids = ids(&direct);
    direct_ids.sort();
    assert_eq!(listed(&direct), direct_ids, "{direct}");

    // /mcp: the same outcomes; the ids carry the owner's prefix, and
    // tasks/get, tasks/result, tasks/cancel and tasks/list reached each owner.
    let through = ts_client(&gateway.mcp(), "legacy", &plan("ev_", "ev2_"));
    assert_eq!(outcomes(&through), expected, "/mcp: {through}");
    let through_ids = ids(&through);
    assert!(
        through_ids[0].starts_with("ev_") && through_ids[2].starts_with("ev_"),
        "{through}"
    );
    assert!(through_ids[1].starts_with("ev2_"), "{through}");
    let mut sorted = through_ids.clone();
    sorted.sort();
    assert_eq!(
        listed(&through),
        sorted,
        "/mcp lists every upstream's tasks: {through}"
    );
    // server-everything tells each task's progress (notifications/tasks/status,
    // on the session's GET stream): through /mcp too, naming the ids the
    // client holds, prefixed.
    let statuses = |output: &Value| -> Vec<String> {
        output["taskStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(String::from))
            .collect()
    };
    assert!(!statuses(&direct).is_empty(), "directly: {direct}");
    assert!(!statuses(&through).is_empty(), "/mcp: {through}");
    for id in statuses(&through) {
        assert!(
            through_ids.contains(&id),
            "a status names a task the client holds: {through}"
        );
    }

    // /servers/ev/mcp: the upstream's own names and ids.
    let scoped = ts_client(&gateway.server_mcp("ev"), "legacy", &plan("", ""));
    assert_eq!(outcomes(&scoped), expected, "/servers/ev/mcp: {scoped}");
    assert!(
        ids(&scoped).iter().all(|id| !id.starts_with("ev_")),
        "{scoped}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_id_no_upstream_gave_is_an_unknown_task() {
    let (_everything, url) = everything();
    let gateway = Gateway::start(&format!(
        "upstreams:\n  - name: ev\n    url: \"{url}\"\n    timeout: \"20s\"\n"
    ));
    gateway.wait_for_tools(&["ev_echo"]).await;
    for task_id in ["nobody_1", "ev_no-such-task"] {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tasks/get",
                           "params": { "taskId": task_id, "_meta": support::security::meta() } });
        let response = post(
            &gateway.mcp(),
            &modern_headers("tasks/get", Some(task_id)),
            &body.to_string(),
        )
        .await;
        let answer = response.json();
        assert_eq!(
            answer["error"]["code"], -32602,
            "{task_id}: {} {answer}",
            response.status
        );
    }
}
