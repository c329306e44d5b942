//! The health summary: what is wrong across nodes, workloads, recent
//! warning events and MCP registrations, in one answer. It reads the other
//! views' summaries; none of them reads it.

use std::fmt::Write as _;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use super::mcp_servers::mcp_servers;
use super::nodes::node_summary;
use super::workloads::{
    deployment_line, deployment_summary, event_line, event_summary, event_time, is_problem,
    list_events, pod_line, pod_summary,
};
use super::{list, string};
use crate::cluster_tools::render::cap;
use crate::cluster_tools::{ClusterTools, Output, ToolError};

pub(super) async fn health(tools: &ClusterTools, arguments: &Value) -> Result<Output, ToolError> {
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
