//! The workload views: pods (and a container's logs), events and
//! deployments, each with the summary and line `health` reuses.

use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};
use serde_json::{Value, json};

use super::{integer, list, selector, string};
use crate::cluster_tools::render::{age, cap, truncation_note};
use crate::cluster_tools::{ClusterTools, MAX_ITEMS, Output, ToolError};

// ---------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------

pub(super) fn pod_summary(pod: &Pod) -> Value {
    let status = pod.status.clone().unwrap_or_default();
    let containers = status.container_statuses.clone().unwrap_or_default();
    let ready = containers.iter().filter(|c| c.ready).count();
    let restarts: i64 = containers.iter().map(|c| i64::from(c.restart_count)).sum();
    // Why a container is not running now, and how it last ended.
    let waiting = containers
        .iter()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
    let last_termination = containers.iter().find_map(|c| {
        let terminated = c.last_state.as_ref()?.terminated.as_ref()?;
        Some(json!({"container": c.name, "reason": terminated.reason, "exitCode": terminated.exit_code}))
    });
    json!({
        "namespace": pod.metadata.namespace,
        "name": pod.metadata.name,
        "phase": status.phase,
        "ready": format!("{ready}/{}", containers.len().max(pod.spec.as_ref().map_or(0, |s| s.containers.len()))),
        "restarts": restarts,
        "waiting": waiting,
        "lastTermination": last_termination,
        "node": pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        "age": age(pod.metadata.creation_timestamp.as_ref()),
    })
}

/// A pod worth a look: not running (or done), waiting in a bad state, or
/// running with containers that are not ready.
pub(super) fn is_problem(summary: &Value) -> bool {
    let phase = summary["phase"].as_str().unwrap_or("");
    let waiting = summary["waiting"].as_str().unwrap_or("");
    let (ready, total) = summary["ready"]
        .as_str()
        .and_then(|r| r.split_once('/'))
        .unwrap_or(("0", "0"));
    !matches!(phase, "Running" | "Succeeded")
        || !waiting.is_empty()
        || (phase == "Running" && ready != total)
}

pub(super) fn pod_line(pod: &Value) -> String {
    let mut line = format!(
        "{}/{} {} ready {} restarts {} node {} age {}",
        pod["namespace"].as_str().unwrap_or(""),
        pod["name"].as_str().unwrap_or(""),
        pod["phase"].as_str().unwrap_or("?"),
        pod["ready"].as_str().unwrap_or("?"),
        pod["restarts"],
        pod["node"].as_str().unwrap_or("-"),
        pod["age"].as_str().unwrap_or("?"),
    );
    if let Some(waiting) = pod["waiting"].as_str() {
        let _ = write!(line, " waiting: {waiting}");
    }
    if let Some(reason) = pod["lastTermination"]["reason"].as_str() {
        let _ = write!(
            line,
            " last termination: {reason} (exit {})",
            pod["lastTermination"]["exitCode"]
        );
    }
    line
}

pub(super) async fn list_pods(
    tools: &ClusterTools,
    arguments: &Value,
) -> Result<Output, ToolError> {
    let scope = tools.scope(string(arguments, "namespace")?)?;
    let mut pods: Vec<Pod> = list(tools, &scope, &selector(arguments)?).await?;
    let truncated = cap(&mut pods, MAX_ITEMS);
    let summaries: Vec<Value> = pods.iter().map(pod_summary).collect();
    let mut text: String = summaries.iter().map(|p| pod_line(p) + "\n").collect();
    if summaries.is_empty() {
        text.push_str("no pods\n");
    }
    text.push_str(&truncation_note(truncated, MAX_ITEMS));
    Ok(Output {
        structured: json!({"pods": summaries, "truncated": truncated}),
        text,
    })
}

pub(super) async fn pod_logs(tools: &ClusterTools, arguments: &Value) -> Result<Output, ToolError> {
    let namespace =
        string(arguments, "namespace")?.ok_or_else(|| ToolError("namespace is required".into()))?;
    let pod = string(arguments, "pod")?.ok_or_else(|| ToolError("pod is required".into()))?;
    tools.scope(Some(namespace))?;
    let previous = match arguments.get("previous") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ToolError("previous must be true or false".into())),
    };
    let params = LogParams {
        container: string(arguments, "container")?.map(str::to_string),
        tail_lines: Some(integer(arguments, "tailLines", 100, 1000)? as i64),
        since_seconds: match arguments.get("sinceSeconds") {
            None | Some(Value::Null) => None,
            Some(_) => Some(integer(arguments, "sinceSeconds", 1, 30 * 86_400)? as i64),
        },
        limit_bytes: Some(integer(arguments, "limitBytes", 65_536, 262_144)? as i64),
        previous,
        ..LogParams::default()
    };
    let log = Api::<Pod>::namespaced(tools.client.clone(), namespace)
        .logs(pod, &params)
        .await?;
    let lines = log.lines().count();
    Ok(Output {
        structured: json!({
            "namespace": namespace, "pod": pod, "container": params.container,
            "previous": previous, "lines": lines, "log": log,
        }),
        text: if log.is_empty() {
            "(no log lines)".into()
        } else {
            log
        },
    })
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

pub(super) fn event_time(event: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

pub(super) fn event_summary(event: &Event) -> Value {
    let time = event_time(event);
    json!({
        "namespace": event.metadata.namespace,
        "type": event.type_,
        "reason": event.reason,
        "object": format!("{}/{}", event.involved_object.kind.as_deref().unwrap_or(""), event.involved_object.name.as_deref().unwrap_or("")),
        "message": event.message,
        "count": event.count,
        "lastSeen": time.map(|t| t.to_string()),
        "age": age(time.map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time).as_ref()),
    })
}

pub(super) async fn list_events(
    tools: &ClusterTools,
    scope: &Option<Vec<String>>,
    filter: impl Fn(&Event) -> bool,
) -> Result<Vec<Event>, ToolError> {
    let mut events: Vec<Event> = list::<Event>(tools, scope, &ListParams::default())
        .await?
        .into_iter()
        .filter(|e| filter(e))
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse(event_time(e)));
    Ok(events)
}

pub(super) async fn events(tools: &ClusterTools, arguments: &Value) -> Result<Output, ToolError> {
    let scope = tools.scope(string(arguments, "namespace")?)?;
    let name = string(arguments, "name")?;
    let kind = string(arguments, "kind")?;
    let kind_of_event = string(arguments, "type")?;
    let limit = integer(arguments, "limit", 50, 200)? as usize;
    let mut events = list_events(tools, &scope, |e| {
        name.is_none_or(|n| e.involved_object.name.as_deref() == Some(n))
            && kind.is_none_or(|k| e.involved_object.kind.as_deref() == Some(k))
            && kind_of_event.is_none_or(|t| e.type_.as_deref() == Some(t))
    })
    .await?;
    let truncated = cap(&mut events, limit);
    let summaries: Vec<Value> = events.iter().map(event_summary).collect();
    let mut text: String = summaries.iter().map(|e| event_line(e) + "\n").collect();
    if summaries.is_empty() {
        text.push_str("no events\n");
    }
    text.push_str(&truncation_note(truncated, limit));
    Ok(Output {
        structured: json!({"events": summaries, "truncated": truncated}),
        text,
    })
}

pub(super) fn event_line(event: &Value) -> String {
    format!(
        "{} ago {} {} {}/{}: {}",
        event["age"].as_str().unwrap_or("?"),
        event["type"].as_str().unwrap_or(""),
        event["reason"].as_str().unwrap_or(""),
        event["namespace"].as_str().unwrap_or(""),
        event["object"].as_str().unwrap_or(""),
        event["message"].as_str().unwrap_or("")
    )
}

// ---------------------------------------------------------------------------
// Deployments
// ---------------------------------------------------------------------------

pub(super) fn deployment_summary(deployment: &Deployment) -> Value {
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let conditions = status.conditions.clone().unwrap_or_default();
    let progressing = conditions.iter().find(|c| c.type_ == "Progressing");
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let rollout = match progressing {
        Some(c) if c.status == "False" => {
            format!("stalled: {}", c.reason.as_deref().unwrap_or("unknown"))
        }
        _ if updated >= desired
            && available >= desired
            && status.replicas.unwrap_or(0) == desired =>
        {
            "complete".to_string()
        }
        _ => "progressing".to_string(),
    };
    json!({
        "namespace": deployment.metadata.namespace,
        "name": deployment.metadata.name,
        "desired": desired,
        "updated": updated,
        "ready": ready,
        "available": available,
        "rollout": rollout,
        "conditions": conditions.iter().map(|c| json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": c.message})).collect::<Vec<_>>(),
        "age": age(deployment.metadata.creation_timestamp.as_ref()),
    })
}

pub(super) fn deployment_line(d: &Value) -> String {
    format!(
        "{}/{} desired {} updated {} ready {} available {} rollout {}",
        d["namespace"].as_str().unwrap_or(""),
        d["name"].as_str().unwrap_or(""),
        d["desired"],
        d["updated"],
        d["ready"],
        d["available"],
        d["rollout"].as_str().unwrap_or("")
    )
}

pub(super) async fn list_deployments(
    tools: &ClusterTools,
    arguments: &Value,
) -> Result<Output, ToolError> {
    let scope = tools.scope(string(arguments, "namespace")?)?;
    let mut deployments: Vec<Deployment> = list(tools, &scope, &selector(arguments)?).await?;
    let truncated = cap(&mut deployments, MAX_ITEMS);
    let summaries: Vec<Value> = deployments.iter().map(deployment_summary).collect();
    let mut text = String::new();
    for d in &summaries {
        text.push_str(&deployment_line(d));
        text.push('\n');
        for c in d["conditions"].as_array().into_iter().flatten() {
            let _ = writeln!(
                text,
                "  {}={} {}: {}",
                c["type"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or("")
            );
        }
    }
    if summaries.is_empty() {
        text.push_str("no deployments\n");
    }
    text.push_str(&truncation_note(truncated, MAX_ITEMS));
    Ok(Output {
        structured: json!({"deployments": summaries, "truncated": truncated}),
        text,
    })
}
