//! Configuration: the YAML file as written (`Raw*`) and the validated form
//! the rest of the gateway uses. Every error names the file, the key and,
//! where the parser knows it, the line.
//!
//! This file holds the validated form and the value forms every part of
//! the file shares (durations, `${VAR}` references); the file as written is
//! `raw`, turning it into a [`Config`] is `validate`, its error is `error`;
//! `security` and [`child_env`] are the security settings and a stdio
//! child's environment, each raw and validated.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_saphyr::Spanned;

/// Default per-call timeout toward an upstream when the file names none.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Default bound on requests in flight to one upstream.
pub const DEFAULT_MAX_CONCURRENCY: usize = 256;
/// Default idle time after which a client session is ended.
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default listen address: loopback, so an unauthenticated gateway is never
/// exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    /// Upstreams in file order; names and prefixes are unique.
    pub upstreams: Vec<UpstreamSpec>,
    /// Browser origins allowed to call the gateway (besides loopback ones).
    pub allowed_origins: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// A 2025-era client session unused for this long is ended (with its
    /// upstream sessions).
    pub session_idle_timeout: Duration,
    pub health: HealthSettings,
    /// Sealed session ids (replicas sharing sessions); off when absent.
    pub sealing: Option<Sealing>,
    /// Kubernetes discovery (`MCPServerRegistration`s); off when absent.
    pub kubernetes: Option<KubernetesSettings>,
    /// The built-in `cluster_` tools; off when absent.
    pub cluster_tools: Option<ClusterToolsSettings>,
    /// Client authentication and authorization, TLS serving, limits.
    pub security: Security,
    /// OpenTelemetry trace export; off when absent.
    pub traces: Option<TraceSettings>,
}

/// Where spans go (OTLP/HTTP, JSON) and which are kept.
#[derive(Clone, PartialEq)]
pub struct TraceSettings {
    /// The collector's traces URL: `<otlpEndpoint>/v1/traces`.
    pub endpoint: http::Uri,
    pub service_name: String,
    /// Sent with every export (the collector's credentials).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Trusted besides the system roots, for a collector behind a private CA.
    pub ca_pem: Option<String>,
    /// The share of new traces recorded; a client's own sampling decision
    /// is followed.
    pub sample_ratio: f64,
}

impl fmt::Debug for TraceSettings {
    // Header values may be credentials: print only their names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("TraceSettings")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .field("headers", &headers)
            .field("sample_ratio", &self.sample_ratio)
            .finish_non_exhaustive()
    }
}

/// The built-in cluster tools: what they may see and do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterToolsSettings {
    /// Namespaces the tools may read; empty means all.
    pub namespaces: Vec<String>,
    /// `namespace/name` Deployments `cluster_restart_deployment` may restart.
    pub restart_deployments: Vec<String>,
    /// `namespace/name` CronJobs `cluster_trigger_job` may start a Job from.
    pub trigger_jobs: Vec<String>,
}

/// Where Kubernetes discovery looks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubernetesSettings {
    /// Namespaces whose registrations are read; empty means all.
    pub namespaces: Vec<String>,
}

/// The key replicas seal client session ids with.
#[derive(Clone, PartialEq)]
pub struct Sealing {
    pub key: String,
    /// Keys being rotated out: ids sealed with them still open.
    pub previous_keys: Vec<String>,
    /// How long a sealed id stays valid.
    pub max_age: Duration,
}

impl fmt::Debug for Sealing {
    // Never print the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealing")
            .field("previous_keys", &self.previous_keys.len())
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// How upstream health is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    /// Time between probes of a ready upstream.
    pub probe_interval: Duration,
    /// How long a failing upstream keeps its tools in the catalog.
    pub grace_period: Duration,
    /// How long `/readyz` waits at most for every configured upstream's
    /// first connection attempt to end (connected, or failed).
    pub startup_deadline: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            probe_interval: Duration::from_secs(15),
            grace_period: Duration::from_secs(30),
            startup_deadline: Duration::from_secs(10),
        }
    }
}

/// One upstream MCP server as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSpec {
    pub name: String,
    pub prefix: String,
    pub transport: TransportSpec,
    pub timeout: Duration,
    /// Requests in flight to it at most; more wait (up to `timeout`) for a slot.
    pub max_concurrency: usize,
    pub source: Source,
}

/// Where an upstream was declared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    ConfigFile,
    /// Served by the gateway itself (the cluster tools).
    Builtin,
    /// An `MCPServerRegistration` (or its older `MCPServer` form).
    Registration {
        namespace: String,
        name: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::ConfigFile => f.write_str("config file"),
            Source::Builtin => f.write_str("built in"),
            Source::Registration { namespace, name } => {
                write!(f, "registration {namespace}/{name}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TransportSpec {
    /// Streamable HTTP, either protocol era. Headers are sent on every
    /// request (credentials toward this upstream, never the client's).
    Http {
        url: String,
        headers: Vec<(String, String)>,
        legacy_sse: LegacySse,
        /// PEM roots trusted for an https URL besides the system's.
        ca_pem: Option<String>,
        /// A Kubernetes Service: requests go to its ready pods (reported
        /// by discovery), not to the URL's host; TLS still verifies the
        /// URL's host name.
        dial_pods: bool,
    },
    /// The gateway's own cluster tools, served in-process.
    Builtin,
    /// A child process speaking newline-delimited JSON-RPC on stdio.
    Stdio {
        command: String,
        args: Vec<String>,
        /// The child's whole environment ([`child_env`]): it inherits
        /// nothing else from the gateway.
        env: BTreeMap<String, String>,
    },
}

impl TransportSpec {
    /// The transport's name, for status pages.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportSpec::Http {
                legacy_sse: LegacySse::Always,
                ..
            } => "sse",
            TransportSpec::Http { .. } => "streamable-http",
            TransportSpec::Builtin => "builtin",
            TransportSpec::Stdio { .. } => "stdio",
        }
    }

    /// Where the upstream lives, for logs and status (never contains headers).
    pub fn target(&self) -> String {
        match self {
            TransportSpec::Http { url, .. } => url.clone(),
            TransportSpec::Builtin => "(built in)".to_string(),
            TransportSpec::Stdio { command, args, .. } => std::iter::once(command.as_str())
                .chain(args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Whether an HTTP upstream speaks the 2024-11-05 HTTP+SSE transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacySse {
    /// Streamable HTTP (`transport: streamable-http`, or a URL not ending in `/sse`).
    Never,
    /// `transport: sse`.
    Always,
    /// No `transport` and a URL ending in `/sse`: Streamable HTTP first,
    /// HTTP+SSE when that probe fails.
    Detect,
}

/// Reads and validates a config file. `env` resolves `${VAR}` references,
/// injected so tests never touch the process environment.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &file, env)
}

/// Replaces each `${VAR}` with its value; the error names the missing variable.
fn expand_env(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let var = &after[..end];
        out.push_str(&env(var).ok_or_else(|| var.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A positive duration setting, or its default; the error names the line
/// and the key.
fn positive_duration(
    value: Option<Spanned<String>>,
    key: &str,
    default: Duration,
) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(t) => parse_duration(&t.value)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                format!(
                    "line {}: {key}: {:?} is not a duration like 30s, 15m or 1h",
                    t.referenced.line(),
                    t.value
                )
            }),
    }
}

/// Parses `500ms`, `30s`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => Some(Duration::from_secs(number.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(number.checked_mul(3600)?)),
        _ => None,
    }
}

/// The process environment, for production callers.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// The embedded default configuration: what `switchboard serve` runs
/// without `--config`. Its upstreams start by themselves (stdio children
/// fetched from the npm registry), so a fresh machine needs no cluster.
pub const EMBEDDED_DEFAULT: &str = include_str!("default-config.yaml");
pub const EMBEDDED_DEFAULT_NAME: &str = "<embedded default config>";

pub mod child_env;
mod error;
mod raw;
mod security;
mod validate;
pub use error::ConfigError;
pub use security::{
    ApiKeySettings, AuthSettings, AuthorizationRule, JwtKeys, JwtSettings, Limits,
    RateLimitSettings, Security, TlsSettings, TokenReviewSettings,
};
pub use validate::parse;

#[cfg(test)]
mod tests;
