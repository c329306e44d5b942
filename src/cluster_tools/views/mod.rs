//! The read-only tools: their definitions (schemas an LLM can act on), the
//! dispatch of a call to its view, and what the views share (arguments,
//! listing over the namespaces a call may see). Each view family has a file:
//!
//! - `nodes`: the nodes, their roles, readiness and capacity.
//! - `workloads`: pods (and their logs), events, deployments.
//! - `mcp_servers`: the MCP servers behind Switchboard (the pool's snapshot).
//! - `health`: one summary of what is wrong, across the views above.
//! - `flux_cert_manager`: Flux and cert-manager objects, where installed.

mod flux_cert_manager;
mod health;
mod mcp_servers;
mod nodes;
mod workloads;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ClusterTools, Effect, Output, ToolError, definition};
use flux_cert_manager::{certificates, flux_status};
use health::health;
use mcp_servers::list_mcp_servers;
use nodes::list_nodes;
use workloads::{events, list_deployments, list_pods, pod_logs};

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
