//! The gateway's own `cluster_` tools: read-only views of the cluster an
//! assistant can act on (nodes, health, pods, logs, events, deployments, the
//! MCP servers Switchboard knows, Flux and cert-manager where installed) and
//! two opt-in actions limited by allowlists. Served in-process as a 2026-07-28
//! MCP server, registered in the pool like any upstream. Secrets are never
//! read.

mod actions;
mod optional;
mod render;
mod views;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::ClusterToolsSettings;
use crate::jsonrpc;
use crate::pool::UpstreamReport;
use crate::protocol;
use crate::upstream::InProcessServer;

/// The prefix of the cluster tools' names.
pub const PREFIX: &str = "cluster_";

/// The gateway's upstreams as they are when asked: the cluster tools read
/// this snapshot, never the pool (which holds them as an upstream).
pub type UpstreamReports = Box<dyn Fn() -> Vec<UpstreamReport> + Send + Sync>;

/// Longest text a tool returns; longer output is cut and says so.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;
/// Most items a list tool returns.
pub const MAX_ITEMS: usize = 200;
/// How long the answer "Flux / cert-manager is installed" is kept (an
/// absent one is asked about again on a backoff: [`optional`]).
const CRD_CHECK_TTL: Duration = Duration::from_secs(60);

pub struct ClusterTools {
    client: kube::Client,
    settings: ClusterToolsSettings,
    /// For `cluster_list_mcp_servers` and `cluster_health`.
    upstreams: UpstreamReports,
    /// The kinds the Flux and cert-manager tools need, and whether they are
    /// served. Async: a list or call that finds a check due waits for it
    /// (bounded), and the calls behind it use its answer.
    optional_kinds: tokio::sync::Mutex<Vec<optional::OptionalKind>>,
}

/// A tool's failure, shown to the model as an error result.
#[derive(Debug)]
pub struct ToolError(pub String);

impl From<kube::Error> for ToolError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) if status.code == 403 => ToolError(format!(
                "forbidden: {} (the gateway's RBAC does not grant this; see manifests/)",
                status.message
            )),
            kube::Error::Api(status) if status.code == 404 => {
                ToolError(format!("not found: {}", status.message))
            }
            other => ToolError(format!("Kubernetes API: {other}")),
        }
    }
}

/// What one tool produced: structured content and its text rendering.
pub struct Output {
    pub structured: Value,
    pub text: String,
}

impl InProcessServer for ClusterTools {
    fn handle<'a>(
        &'a self,
        message: &'a Value,
    ) -> futures_util::future::BoxFuture<'a, Option<Value>> {
        Box::pin(self.answer(message))
    }
}

impl ClusterTools {
    /// The tools that change the cluster: authorization grants them only
    /// by exact name, never by a wildcard.
    pub const ACTIONS: [&'static str; 2] = ["restart_deployment", "trigger_job"];

    pub fn new(
        client: kube::Client,
        settings: ClusterToolsSettings,
        upstreams: UpstreamReports,
    ) -> Arc<Self> {
        Arc::new(ClusterTools {
            client,
            settings,
            upstreams,
            optional_kinds: tokio::sync::Mutex::new(optional::OptionalKind::all()),
        })
    }

    /// Answers one JSON-RPC message as an MCP server speaking 2026-07-28;
    /// None for notifications.
    pub async fn answer(&self, message: &Value) -> Option<Value> {
        let id = message.get("id")?.clone();
        let method = message.get("method").and_then(Value::as_str).unwrap_or("");
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        let result = match method {
            "server/discover" => Ok(json!({
                "supportedVersions": [protocol::MODERN],
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "switchboard-cluster-tools", "version": env!("CARGO_PKG_VERSION") },
                "instructions": "Read-only views of the Kubernetes cluster Switchboard runs in; actions only where an operator allowed them.",
            })),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(json!({ "tools": self.tools().await })),
            "tools/call" => Ok(self.call(&params).await),
            other => Err(jsonrpc::RpcError::new(
                jsonrpc::METHOD_NOT_FOUND,
                format!("method not found: {other}"),
            )),
        };
        Some(match result {
            Ok(mut result) => {
                // 2026-07-28: every result says it is complete; discovery
                // and lists carry caching hints (the tool list can change
                // when Flux or cert-manager is installed: keep it short).
                result["resultType"] = json!("complete");
                if matches!(method, "server/discover" | "tools/list") {
                    result["ttlMs"] = json!(CRD_CHECK_TTL.as_millis() as u64);
                    result["cacheScope"] = json!("public");
                }
                jsonrpc::result_response(&id, result)
            }
            Err(error) => error.response(Some(&id)),
        })
    }

    /// The tools offered now: Flux and cert-manager ones only where their
    /// CRDs are served, actions only where an allowlist is configured.
    async fn tools(&self) -> Vec<Value> {
        let hidden = self.tools_without_their_kind().await;
        views::definitions()
            .into_iter()
            .filter(|tool| {
                tool["name"]
                    .as_str()
                    .is_none_or(|name| !hidden.contains(&name))
            })
            .chain(actions::definitions(&self.settings))
            .collect()
    }

    async fn call(&self, params: &Value) -> Value {
        let name = params.get("name").and_then(Value::as_str).unwrap_or("");
        let arguments = params
            .get("arguments")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let offered = self.tools().await;
        let result = if !offered.iter().any(|t| t["name"] == name) {
            Err(ToolError(format!("unknown tool {name:?}")))
        } else if !arguments.is_object() {
            Err(ToolError("arguments must be an object".into()))
        } else {
            match name {
                name if Self::ACTIONS.contains(&name) => {
                    actions::call(self, name, &arguments).await
                }
                _ => views::call(self, name, &arguments).await,
            }
        };
        match result {
            Ok(output) => json!({
                "content": [{ "type": "text", "text": render::bounded(output.text) }],
                "structuredContent": output.structured,
                "isError": false,
            }),
            Err(ToolError(message)) => json!({
                "content": [{ "type": "text", "text": message }],
                "isError": true,
            }),
        }
    }

    /// The tools whose kind is not served (as far as is known now).
    async fn tools_without_their_kind(&self) -> Vec<&'static str> {
        let mut kinds = self.optional_kinds.lock().await;
        let mut hidden = Vec::new();
        for kind in kinds.iter_mut() {
            kind.refresh(&self.client).await;
            if !kind.offered() {
                hidden.push(kind.tool);
            }
        }
        hidden
    }

    /// Namespaces a call may read: the one it names (if allowed), or all
    /// the allowed ones (`None`: the whole cluster).
    fn scope(&self, requested: Option<&str>) -> Result<Option<Vec<String>>, ToolError> {
        let allowed = &self.settings.namespaces;
        match requested {
            Some(namespace) if allowed.is_empty() || allowed.iter().any(|a| a == namespace) => {
                Ok(Some(vec![namespace.to_string()]))
            }
            Some(namespace) => Err(ToolError(format!(
                "namespace {namespace:?} is not one the cluster tools may see (clusterTools.namespaces: {})",
                allowed.join(", ")
            ))),
            None if allowed.is_empty() => Ok(None),
            None => Ok(Some(allowed.clone())),
        }
    }
}

/// What a tool does to the cluster, as its annotations say.
#[derive(Clone, Copy)]
enum Effect {
    ReadOnly,
    Destructive,
}

/// A tool definition: strict input schema and annotations an LLM can act on.
fn definition(
    effect: Effect,
    name: &str,
    title: &str,
    description: &str,
    properties: Value,
    required: &[&str],
) -> Value {
    let read_only = matches!(effect, Effect::ReadOnly);
    json!({
        "name": name,
        "title": title,
        "description": description,
        "inputSchema": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        },
        "annotations": {
            "readOnlyHint": read_only,
            "destructiveHint": !read_only,
            "idempotentHint": read_only,
            "openWorldHint": false,
        },
    })
}

pub(crate) fn dynamic(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(group, version, kind),
        plural,
    )
}
