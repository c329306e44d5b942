//! The config file as written: serde's view of the YAML, every field still
//! a string or number with its line (`Spanned`) so validation can say where
//! a bad value is. Unknown keys are refused here.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::security;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) listen: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) upstreams: Vec<RawUpstream>,
    #[serde(default)]
    pub(super) allowed_origins: Vec<String>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) session_idle_timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) health: RawHealth,
    pub(super) sessions: Option<RawSessions>,
    pub(super) kubernetes: Option<RawKubernetes>,
    pub(super) cluster_tools: Option<RawClusterTools>,
    pub(super) auth: Option<Spanned<security::RawAuth>>,
    pub(super) authorization: Option<Vec<security::RawRule>>,
    pub(super) rate_limit: Option<security::RawRateLimit>,
    pub(super) tls: Option<security::RawTls>,
    pub(super) limits: Option<security::RawLimits>,
    pub(super) traces: Option<RawTraces>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawTraces {
    pub(super) otlp_endpoint: Spanned<String>,
    pub(super) service_name: Option<String>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) sample_ratio: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawClusterTools {
    #[serde(default = "enabled")]
    pub(super) enabled: bool,
    #[serde(default)]
    pub(super) namespaces: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) restart_deployments: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) trigger_jobs: Vec<Spanned<String>>,
}

fn enabled() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawKubernetes {
    #[serde(default)]
    pub(super) namespaces: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawSessions {
    pub(super) key: Spanned<String>,
    #[serde(default)]
    pub(super) previous_keys: Vec<String>,
    pub(super) max_age: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawHealth {
    pub(super) probe_interval: Option<Spanned<String>>,
    pub(super) grace_period: Option<Spanned<String>>,
    pub(super) startup_deadline: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub(super) name: Spanned<String>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) command: Option<String>,
    #[serde(default)]
    pub(super) args: Vec<String>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    /// Names of the gateway's environment passed to a stdio child unchanged.
    #[serde(default)]
    pub(super) inherit_env: Vec<String>,
    pub(super) prefix: Option<Spanned<String>>,
    pub(super) transport: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) max_concurrency: Option<usize>,
    /// PEM CA bundle trusted for this https upstream.
    pub(super) ca_file: Option<Spanned<String>>,
}
