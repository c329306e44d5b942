//! The nodes view: each node's roles, readiness, abnormal conditions,
//! versions and capacity (`cluster_list_nodes`; `health` reads the summary).

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use crate::cluster_tools::render::{age, cap, truncation_note};
use crate::cluster_tools::{ClusterTools, MAX_ITEMS, Output, ToolError};

pub(super) fn node_summary(node: &Node) -> Value {
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

pub(super) async fn list_nodes(tools: &ClusterTools) -> Result<Output, ToolError> {
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
