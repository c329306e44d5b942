//! The read-only tools: their definitions (schemas an LLM can act on) and
//! what each reads and reports.

use std::fmt::Write as _;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::render::{age, cap, truncation_note};
use super::{ClusterTools, Effect, MAX_ITEMS, Output, ToolError, definition, dynamic};
use crate::pool::{Health, UpstreamReport};

fn namespace_property(what: &str) -> Value {
    json!({"type": "string", "description": format!("Only {what} in this namespace (default: every namespace the tools may see)")})
}

pub fn definitions() -> Vec<Value> {
    vec![
        definition(
            Effect::ReadOnly,
            "list_nodes",
            "Cluster nodes",
            "Every node: roles, readiness and any abnormal conditions (memory/disk/PID pressure, network unavailable), kubelet version, OS/architecture, CPU and memory capacity and allocatable, age. Start here for capacity or node health questions.",
            json!({}),
            &[],
        ),
        definition(
            Effect::ReadOnly,
            "health",
            "Cluster health summary",
            "One summary of what is wrong: nodes not ready, pods not running or crash-looping (restart counts, last termination reason), deployments below their desired replicas, warning events of the last hour, and MCP server registrations that are not ready. Use first when asked what is wrong with the cluster.",
            json!({"namespace": namespace_property("pods, deployments and events")}),
            &[],
        ),
        definition(
            Effect::ReadOnly,
            "list_pods",
            "Pods",
            "Pods with phase, readiness (ready/total containers), restart count, node and age. Narrow with namespace and/or a label selector such as app=web.",
            json!({
                "namespace": namespace_property("pods"),
                "labelSelector": {"type": "string", "description": "Kubernetes label selector, e.g. app=web,tier!=cache"},
            }),
            &[],
        ),
        definition(
            Effect::ReadOnly,
            "pod_logs",
            "Pod logs",
            "The logs of one container of a pod, bounded: the last tailLines lines (default 100, at most 1000), optionally only the last sinceSeconds, at most limitBytes (default 65536). previous=true reads the container's previous run (after a crash).",
            json!({
                "namespace": {"type": "string", "description": "The pod's namespace"},
                "pod": {"type": "string", "description": "The pod's name"},
                "container": {"type": "string", "description": "Container name (required when the pod has several)"},
                "tailLines": {"type": "integer", "minimum": 1, "maximum": 1000},
                "sinceSeconds": {"type": "integer", "minimum": 1},
                "limitBytes": {"type": "integer", "minimum": 1, "maximum": 262144},
                "previous": {"type": "boolean", "description": "Logs of the previous (crashed) container"},
            }),
            &["namespace", "pod"],
        ),
        definition(
            Effect::ReadOnly,
            "events",
            "Events",
            "Kubernetes events, newest first, bounded by limit (default 50, at most 200). Filter by namespace, by the involved object's name and kind, or by type (Warning or Normal).",
            json!({
                "namespace": namespace_property("events"),
                "name": {"type": "string", "description": "Involved object's name"},
                "kind": {"type": "string", "description": "Involved object's kind, e.g. Pod or Deployment"},
                "type": {"type": "string", "enum": ["Warning", "Normal"]},
                "limit": {"type": "integer", "minimum": 1, "maximum": 200},
            }),
            &[],
        ),
        definition(
            Effect::ReadOnly,
            "list_deployments",
            "Deployments and rollout status",
            "Deployments with desired, updated, ready and available replicas, rollout status (complete, progressing, or stalled with the reason) and their conditions.",
            json!({
                "namespace": namespace_property("deployments"),
                "labelSelector": {"type": "string", "description": "Kubernetes label selector"},
            }),
            &[],
        ),
        definition(
            Effect::ReadOnly,
            "list_mcp_servers",
            "MCP servers behind Switchboard",
            "The MCP servers Switchboard serves (registrations and config-file entries): prefix, source, resolved URL, health, protocol era, tool count and last error.",
            json!({}),
            &[],
        ),
        definition(
            Effect::ReadOnly,
            "flux_status",
            "Flux sync status",
            "Flux Kustomizations, HelmReleases and sources (Git, Helm, OCI repositories): ready, last applied revision, and the message of any that are not ready.",
            json!({"namespace": namespace_property("Flux objects")}),
            &[],
        ),
        definition(
            Effect::ReadOnly,
            "certificates",
            "cert-manager certificates",
            "cert-manager Certificates: ready, expiry (notAfter), planned renewal, issuer, and a flag for those expiring within 14 days.",
            json!({"namespace": namespace_property("certificates")}),
            &[],
        ),
    ]
}

pub async fn call(
    tools: &ClusterTools,
    name: &str,
    arguments: &Value,
) -> Result<Output, ToolError> {
    match name {
        "list_nodes" => list_nodes(tools).await,
        "health" => health(tools, arguments).await,
        "list_pods" => list_pods(tools, arguments).await,
        "pod_logs" => pod_logs(tools, arguments).await,
        "events" => events(tools, arguments).await,
        "list_deployments" => list_deployments(tools, arguments).await,
        "list_mcp_servers" => Ok(list_mcp_servers(tools)),
        "flux_status" => flux_status(tools, arguments).await,
        "certificates" => certificates(tools, arguments).await,
        other => Err(ToolError(format!("unknown tool {other:?}"))),
    }
}

/// An optional string argument; a value of another type is an error.
pub(super) fn string<'a>(arguments: &'a Value, key: &str) -> Result<Option<&'a str>, ToolError> {
    match arguments.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(other) => Err(ToolError(format!(
            "{key} must be a non-empty string, not {other}"
        ))),
    }
}

fn integer(arguments: &Value, key: &str, default: u64, max: u64) -> Result<u64, ToolError> {
    match arguments.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => match value.as_u64() {
            Some(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ToolError(format!(
                "{key} must be an integer from 1 to {max}"
            ))),
        },
    }
}

/// Lists a namespaced kind over the scope (every namespace, or the listed ones).
async fn list<K>(
    tools: &ClusterTools,
    scope: &Option<Vec<String>>,
    params: &ListParams,
) -> Result<Vec<K>, ToolError>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    match scope {
        None => Ok(Api::<K>::all(tools.client.clone())
            .list(params)
            .await?
            .items),
        Some(namespaces) => {
            let mut items = Vec::new();
            for namespace in namespaces {
                let api = Api::<K>::namespaced(tools.client.clone(), namespace);
                items.extend(api.list(params).await?.items);
            }
            Ok(items)
        }
    }
}

fn selector(arguments: &Value) -> Result<ListParams, ToolError> {
    let mut params = ListParams::default();
    if let Some(selector) = string(arguments, "labelSelector")? {
        params = params.labels(selector);
    }
    Ok(params)
}

fn name_of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        metadata.namespace.as_deref().unwrap_or(""),
        metadata.name.as_deref().unwrap_or("")
    )
}

// ---------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------

fn node_summary(node: &Node) -> Value {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let mut roles: Vec<String> = labels
        .keys()
        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
        .map(str::to_string)
        .collect();
    if roles.is_empty() {
        roles.push("worker".into());
    }
    let status = node.status.clone().unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let ready = conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    // Ready=True and the pressure conditions False are normal; say the rest.
    let abnormal: Vec<Value> = conditions
        .iter()
        .filter(|c| (c.type_ == "Ready") != (c.status == "True"))
        .map(|c| json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": c.message}))
        .collect();
    let info = status.node_info.clone();
    let quantity = |map: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
                    key: &str| {
        map.as_ref().and_then(|m| m.get(key)).map(|q| q.0.clone())
    };
    json!({
        "name": node.metadata.name,
        "roles": roles,
        "ready": ready,
        "conditions": abnormal,
        "kubeletVersion": info.as_ref().map(|i| i.kubelet_version.clone()),
        "os": info.as_ref().map(|i| format!("{}/{}", i.operating_system, i.architecture)),
        "capacity": {"cpu": quantity(&status.capacity, "cpu"), "memory": quantity(&status.capacity, "memory")},
        "allocatable": {"cpu": quantity(&status.allocatable, "cpu"), "memory": quantity(&status.allocatable, "memory")},
        "age": age(node.metadata.creation_timestamp.as_ref()),
    })
}

async fn list_nodes(tools: &ClusterTools) -> Result<Output, ToolError> {
    let mut nodes: Vec<Node> = Api::<Node>::all(tools.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let truncated = cap(&mut nodes, MAX_ITEMS);
    let summaries: Vec<Value> = nodes.iter().map(node_summary).collect();
    let mut text = String::new();
    for node in &summaries {
        let _ = writeln!(
            text,
            "{} [{}] {} kubelet {} {} cpu {}/{} memory {}/{} age {}",
            node["name"].as_str().unwrap_or(""),
            node["roles"]
                .as_array()
                .map(|r| r
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default(),
            if node["ready"] == true {
                "Ready"
            } else {
                "NotReady"
            },
            node["kubeletVersion"].as_str().unwrap_or("?"),
            node["os"].as_str().unwrap_or("?"),
            node["allocatable"]["cpu"].as_str().unwrap_or("?"),
            node["capacity"]["cpu"].as_str().unwrap_or("?"),
            node["allocatable"]["memory"].as_str().unwrap_or("?"),
            node["capacity"]["memory"].as_str().unwrap_or("?"),
            node["age"].as_str().unwrap_or("?"),
        );
        for condition in node["conditions"].as_array().into_iter().flatten() {
            let _ = writeln!(
                text,
                "  {}={} {}: {}",
                condition["type"].as_str().unwrap_or(""),
                condition["status"].as_str().unwrap_or(""),
                condition["reason"].as_str().unwrap_or(""),
                condition["message"].as_str().unwrap_or("")
            );
        }
    }
    text.push_str(&truncation_note(truncated, MAX_ITEMS));
    Ok(Output {
        structured: json!({"nodes": summaries, "truncated": truncated}),
        text,
    })
}

// ---------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------

fn pod_summary(pod: &Pod) -> Value {
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
fn is_problem(summary: &Value) -> bool {
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

fn pod_line(pod: &Value) -> String {
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

async fn list_pods(tools: &ClusterTools, arguments: &Value) -> Result<Output, ToolError> {
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

async fn pod_logs(tools: &ClusterTools, arguments: &Value) -> Result<Output, ToolError> {
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

fn event_time(event: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn event_summary(event: &Event) -> Value {
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

async fn list_events(
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

async fn events(tools: &ClusterTools, arguments: &Value) -> Result<Output, ToolError> {
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

fn event_line(event: &Value) -> String {
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

fn deployment_summary(deployment: &Deployment) -> Value {
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

fn deployment_line(d: &Value) -> String {
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

async fn list_deployments(tools: &ClusterTools, arguments: &Value) -> Result<Output, ToolError> {
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

// ---------------------------------------------------------------------------
// MCP servers (the pool) and the health summary
// ---------------------------------------------------------------------------

fn mcp_servers(tools: &ClusterTools) -> Vec<Value> {
    let mut servers: Vec<Value> = (tools.upstreams)()
        .into_iter()
        .map(|UpstreamReport { upstream, state }| {
            let (health, error) = Health::describe(state.as_ref().map(|s| &s.health));
            json!({
                "name": &*upstream.name,
                "prefix": &*upstream.prefix,
                "source": upstream.spec.source.to_string(),
                "url": upstream.spec.transport.target(),
                "health": health,
                "era": upstream.era().map(|e| e.version().to_string()),
                "tools": state.as_ref().map_or(0, |s| s.tools),
                "lastError": error,
            })
        })
        .collect();
    servers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    servers
}

fn list_mcp_servers(tools: &ClusterTools) -> Output {
    let servers = mcp_servers(tools);
    let mut text = String::new();
    for s in &servers {
        let _ = writeln!(
            text,
            "{} ({}*) {} {} era {} tools {} — {}{}",
            s["name"].as_str().unwrap_or(""),
            s["prefix"].as_str().unwrap_or(""),
            s["health"].as_str().unwrap_or(""),
            s["url"].as_str().unwrap_or(""),
            s["era"].as_str().unwrap_or("?"),
            s["tools"],
            s["source"].as_str().unwrap_or(""),
            s["lastError"]
                .as_str()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default(),
        );
    }
    Output {
        structured: json!({"servers": servers}),
        text,
    }
}

async fn health(tools: &ClusterTools, arguments: &Value) -> Result<Output, ToolError> {
    let scope = tools.scope(string(arguments, "namespace")?)?;
    let nodes: Vec<Value> = Api::<Node>::all(tools.client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(node_summary)
        .filter(|n| n["ready"] != true)
        .collect();
    let mut pods: Vec<Value> = list::<Pod>(tools, &scope, &ListParams::default())
        .await?
        .iter()
        .map(pod_summary)
        .filter(is_problem)
        .collect();
    pods.sort_by_key(|p| std::cmp::Reverse(p["restarts"].as_i64()));
    let pods_truncated = cap(&mut pods, 50);
    let mut deployments: Vec<Value> = list::<Deployment>(tools, &scope, &ListParams::default())
        .await?
        .iter()
        .map(deployment_summary)
        .filter(|d| d["rollout"] != "complete" || d["available"] != d["desired"])
        .collect();
    cap(&mut deployments, 50);
    let hour_ago =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(3600);
    let mut warnings = list_events(tools, &scope, |e| {
        e.type_.as_deref() == Some("Warning") && event_time(e).is_some_and(|t| t >= hour_ago)
    })
    .await?;
    cap(&mut warnings, 20);
    let warnings: Vec<Value> = warnings.iter().map(event_summary).collect();
    let registrations: Vec<Value> = mcp_servers(tools)
        .into_iter()
        .filter(|s| {
            s["health"] != "ready"
                && s["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("registration"))
        })
        .collect();

    let mut text = String::new();
    let healthy = nodes.is_empty()
        && pods.is_empty()
        && deployments.is_empty()
        && warnings.is_empty()
        && registrations.is_empty();
    if healthy {
        text.push_str("No problems found: all nodes ready, all pods running, deployments at their desired replicas, no warning events in the last hour.\n");
    }
    let mut section = |title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            let _ = writeln!(text, "{title} ({}):", lines.len());
            for line in lines {
                let _ = writeln!(text, "  {line}");
            }
        }
    };
    section(
        "Nodes not ready",
        nodes
            .iter()
            .map(|n| {
                let reasons: Vec<String> = n["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        format!(
                            "{}={} {}",
                            c["type"].as_str().unwrap_or(""),
                            c["status"].as_str().unwrap_or(""),
                            c["reason"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                format!(
                    "{}: {}",
                    n["name"].as_str().unwrap_or(""),
                    reasons.join(", ")
                )
            })
            .collect(),
    );
    section("Problem pods", pods.iter().map(pod_line).collect());
    section(
        "Deployments not at desired replicas",
        deployments.iter().map(deployment_line).collect(),
    );
    section(
        "Warning events (last hour)",
        warnings.iter().map(event_line).collect(),
    );
    section(
        "MCP registrations not ready",
        registrations
            .iter()
            .map(|s| {
                format!(
                    "{} {} {}",
                    s["source"].as_str().unwrap_or(""),
                    s["health"].as_str().unwrap_or(""),
                    s["lastError"].as_str().unwrap_or("")
                )
            })
            .collect(),
    );
    if pods_truncated {
        text.push_str("[truncated: only the 50 pods with the most restarts shown]\n");
    }
    Ok(Output {
        structured: json!({
            "healthy": healthy,
            "nodesNotReady": nodes,
            "problemPods": pods,
            "deploymentsNotAtDesired": deployments,
            "warningEvents": warnings,
            "registrationsNotReady": registrations,
        }),
        text,
    })
}

// ---------------------------------------------------------------------------
// Flux and cert-manager (read as dynamic objects: their CRDs may be absent)
// ---------------------------------------------------------------------------

async fn list_dynamic(
    tools: &ClusterTools,
    scope: &Option<Vec<String>>,
    resource: &kube::api::ApiResource,
) -> Result<Vec<DynamicObject>, ToolError> {
    match scope {
        None => Ok(
            Api::<DynamicObject>::all_with(tools.client.clone(), resource)
                .list(&ListParams::default())
                .await?
                .items,
        ),
        Some(namespaces) => {
            let mut items = Vec::new();
            for namespace in namespaces {
                items.extend(
                    Api::<DynamicObject>::namespaced_with(
                        tools.client.clone(),
                        namespace,
                        resource,
                    )
                    .list(&ListParams::default())
                    .await?
                    .items,
                );
            }
            Ok(items)
        }
    }
}

fn ready_condition(object: &DynamicObject) -> (Option<bool>, Option<String>, Option<String>) {
    let condition = object
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
    (
        condition.map(|c| c["status"] == "True"),
        condition.and_then(|c| c["reason"].as_str().map(str::to_string)),
        condition.and_then(|c| c["message"].as_str().map(str::to_string)),
    )
}

async fn flux_status(tools: &ClusterTools, arguments: &Value) -> Result<Output, ToolError> {
    let scope = tools.scope(string(arguments, "namespace")?)?;
    let kinds = [
        (
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
        ),
        (
            "helm.toolkit.fluxcd.io",
            "v2",
            "HelmRelease",
            "helmreleases",
        ),
        (
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
        ),
        (
            "source.toolkit.fluxcd.io",
            "v1",
            "HelmRepository",
            "helmrepositories",
        ),
        (
            "source.toolkit.fluxcd.io",
            "v1beta2",
            "OCIRepository",
            "ocirepositories",
        ),
    ];
    let mut items = Vec::new();
    for (group, version, kind, plural) in kinds {
        // A Flux install without one of these kinds still reports the rest.
        let Ok(objects) = list_dynamic(tools, &scope, &dynamic(group, version, kind, plural)).await
        else {
            continue;
        };
        for object in objects {
            let (ready, reason, message) = ready_condition(&object);
            let revision = object
                .data
                .pointer("/status/lastAppliedRevision")
                .or_else(|| object.data.pointer("/status/artifact/revision"))
                .or_else(|| object.data.pointer("/status/lastAttemptedRevision"))
                .and_then(Value::as_str)
                .map(str::to_string);
            items.push(json!({
                "kind": kind,
                "name": name_of(&object.metadata),
                "ready": ready,
                "reason": reason,
                "revision": revision,
                "message": message,
                "suspended": object.data.pointer("/spec/suspend").and_then(Value::as_bool).unwrap_or(false),
            }));
        }
    }
    let truncated = cap(&mut items, MAX_ITEMS);
    let mut text = String::new();
    for item in &items {
        let ready = match item["ready"].as_bool() {
            Some(true) => "Ready",
            Some(false) => "NotReady",
            None => "Unknown",
        };
        let _ = write!(
            text,
            "{} {} {} revision {}",
            item["kind"].as_str().unwrap_or(""),
            item["name"].as_str().unwrap_or(""),
            ready,
            item["revision"].as_str().unwrap_or("-"),
        );
        if item["ready"] != true {
            let _ = write!(
                text,
                " — {}: {}",
                item["reason"].as_str().unwrap_or(""),
                item["message"].as_str().unwrap_or("")
            );
        }
        text.push('\n');
    }
    if items.is_empty() {
        text.push_str("no Flux objects\n");
    }
    text.push_str(&truncation_note(truncated, MAX_ITEMS));
    Ok(Output {
        structured: json!({"objects": items, "truncated": truncated}),
        text,
    })
}

async fn certificates(tools: &ClusterTools, arguments: &Value) -> Result<Output, ToolError> {
    let scope = tools.scope(string(arguments, "namespace")?)?;
    let resource = dynamic("cert-manager.io", "v1", "Certificate", "certificates");
    let soon = k8s_openapi::jiff::Timestamp::now()
        + k8s_openapi::jiff::SignedDuration::from_hours(14 * 24);
    let mut items: Vec<Value> = list_dynamic(tools, &scope, &resource)
        .await?
        .iter()
        .map(|object| {
            let (ready, reason, message) = ready_condition(object);
            let not_after = object
                .data
                .pointer("/status/notAfter")
                .and_then(Value::as_str);
            let expiring = not_after
                .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .is_some_and(|t| t < soon);
            json!({
                "name": name_of(&object.metadata),
                "ready": ready,
                "reason": reason,
                "message": message,
                "notAfter": not_after,
                "renewalTime": object.data.pointer("/status/renewalTime"),
                "issuer": object.data.pointer("/spec/issuerRef/name"),
                "issuerKind": object.data.pointer("/spec/issuerRef/kind"),
                "dnsNames": object.data.pointer("/spec/dnsNames"),
                "expiringWithin14Days": expiring,
            })
        })
        .collect();
    let truncated = cap(&mut items, MAX_ITEMS);
    let mut text = String::new();
    for item in &items {
        let _ = write!(
            text,
            "{} {} notAfter {} renewal {} issuer {}",
            item["name"].as_str().unwrap_or(""),
            if item["ready"] == true {
                "Ready"
            } else {
                "NotReady"
            },
            item["notAfter"].as_str().unwrap_or("-"),
            item["renewalTime"].as_str().unwrap_or("-"),
            item["issuer"].as_str().unwrap_or("-"),
        );
        if item["expiringWithin14Days"] == true {
            text.push_str(" EXPIRING SOON");
        }
        if item["ready"] != true {
            let _ = write!(text, " — {}", item["message"].as_str().unwrap_or(""));
        }
        text.push('\n');
    }
    if items.is_empty() {
        text.push_str("no certificates\n");
    }
    text.push_str(&truncation_note(truncated, MAX_ITEMS));
    Ok(Output {
        structured: json!({"certificates": items, "truncated": truncated}),
        text,
    })
}
