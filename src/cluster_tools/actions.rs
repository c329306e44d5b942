//! The opt-in actions: each offered only when its allowlist is configured,
//! and refused for anything not on it.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::views::string;
use super::{ClusterTools, Effect, Output, ToolError, definition};
use crate::config::ClusterToolsSettings;

pub fn definitions(settings: &ClusterToolsSettings) -> Vec<Value> {
    let mut tools = Vec::new();
    if !settings.restart_deployments.is_empty() {
        tools.push(definition(
            Effect::Destructive,
            "restart_deployment",
            "Restart a deployment",
            &format!(
                "Rolling restart of one Deployment, as `kubectl rollout restart` does (new pods replace the old ones gradually). Allowed: {}.",
                settings.restart_deployments.join(", ")
            ),
            json!({
                "namespace": {"type": "string"},
                "name": {"type": "string", "description": "The Deployment's name"},
            }),
            &["namespace", "name"],
        ));
    }
    if !settings.trigger_jobs.is_empty() {
        tools.push(definition(
            Effect::Destructive,
            "trigger_job",
            "Run a CronJob now",
            &format!(
                "Creates a Job from a CronJob's template now, as `kubectl create job --from=cronjob/…` does. Allowed: {}.",
                settings.trigger_jobs.join(", ")
            ),
            json!({
                "namespace": {"type": "string"},
                "cronJob": {"type": "string", "description": "The CronJob's name"},
            }),
            &["namespace", "cronJob"],
        ));
    }
    tools
}

pub async fn call(
    tools: &ClusterTools,
    name: &str,
    arguments: &Value,
) -> Result<Output, ToolError> {
    let namespace =
        string(arguments, "namespace")?.ok_or_else(|| ToolError("namespace is required".into()))?;
    match name {
        "restart_deployment" => {
            let deployment =
                string(arguments, "name")?.ok_or_else(|| ToolError("name is required".into()))?;
            allowed(
                &tools.settings.restart_deployments,
                "clusterTools.restartDeployments",
                namespace,
                deployment,
            )?;
            restart(tools, namespace, deployment).await
        }
        "trigger_job" => {
            let cron_job = string(arguments, "cronJob")?
                .ok_or_else(|| ToolError("cronJob is required".into()))?;
            allowed(
                &tools.settings.trigger_jobs,
                "clusterTools.triggerJobs",
                namespace,
                cron_job,
            )?;
            trigger(tools, namespace, cron_job).await
        }
        other => Err(ToolError(format!("unknown tool {other:?}"))),
    }
}

fn allowed(list: &[String], setting: &str, namespace: &str, name: &str) -> Result<(), ToolError> {
    let wanted = format!("{namespace}/{name}");
    if list.contains(&wanted) {
        Ok(())
    } else {
        Err(ToolError(format!(
            "{wanted} is not in the allowlist {setting} ({}); an operator must add it to the gateway's config",
            list.join(", ")
        )))
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

async fn restart(tools: &ClusterTools, namespace: &str, name: &str) -> Result<Output, ToolError> {
    let at = now();
    // What `kubectl rollout restart` patches: a pod-template annotation,
    // so the Deployment rolls its pods.
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": at,
    }}}}});
    Api::<Deployment>::namespaced(tools.client.clone(), namespace)
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    tracing::info!(deployment = %format!("{namespace}/{name}"), "cluster tool restarted a deployment");
    Ok(Output {
        structured: json!({"namespace": namespace, "deployment": name, "restartedAt": at}),
        text: format!(
            "deployment {namespace}/{name} restarting (restartedAt {at}); follow it with cluster_list_deployments"
        ),
    })
}

async fn trigger(
    tools: &ClusterTools,
    namespace: &str,
    cron_job: &str,
) -> Result<Output, ToolError> {
    let cron = Api::<CronJob>::namespaced(tools.client.clone(), namespace)
        .get(cron_job)
        .await?;
    let template = cron
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .ok_or_else(|| ToolError(format!("CronJob {namespace}/{cron_job} has no spec")))?;
    let stamp = k8s_openapi::jiff::Timestamp::now().as_second();
    // Job names are at most 63 characters.
    let mut job_name = format!("{cron_job}-manual-{stamp}");
    job_name.truncate(63);
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            "namespace": namespace,
            "labels": template.metadata.as_ref().and_then(|m| m.labels.clone()),
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "CronJob", "name": cron_job,
                "uid": cron.metadata.uid, "controller": false,
            }],
        },
        "spec": template.spec,
    }))
    .map_err(|e| ToolError(format!("building the Job: {e}")))?;
    let created = Api::<Job>::namespaced(tools.client.clone(), namespace)
        .create(&PostParams::default(), &job)
        .await?;
    let created_name = created.metadata.name.unwrap_or(job_name);
    tracing::info!(cron_job = %format!("{namespace}/{cron_job}"), job = %created_name, "cluster tool triggered a job");
    Ok(Output {
        structured: json!({"namespace": namespace, "cronJob": cron_job, "job": created_name}),
        text: format!("job {namespace}/{created_name} created from cronjob {cron_job}"),
    })
}
