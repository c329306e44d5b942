//! Flux and cert-manager: sync status and certificates, read as dynamic
//! objects because their CRDs may be absent (the tools are offered only
//! where they are served: `optional`).

use std::fmt::Write as _;

use kube::api::{Api, DynamicObject, ListParams};
use serde_json::{Value, json};

use super::{name_of, string};
use crate::cluster_tools::render::{cap, truncation_note};
use crate::cluster_tools::{ClusterTools, MAX_ITEMS, Output, ToolError, dynamic};

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

pub(super) async fn flux_status(
    tools: &ClusterTools,
    arguments: &Value,
) -> Result<Output, ToolError> {
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

pub(super) async fn certificates(
    tools: &ClusterTools,
    arguments: &Value,
) -> Result<Output, ToolError> {
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
