//! Configuration: the YAML file as written (`Raw*`) and the validated form
//! the rest of the gateway uses. Every error names the file, the key and,
//! where the parser knows it, the line.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
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

/// A configuration error, already phrased for a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    #[serde(default)]
    upstreams: Vec<RawUpstream>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    max_body_bytes: Option<usize>,
    session_idle_timeout: Option<Spanned<String>>,
    #[serde(default)]
    health: RawHealth,
    sessions: Option<RawSessions>,
    kubernetes: Option<RawKubernetes>,
    cluster_tools: Option<RawClusterTools>,
    auth: Option<Spanned<security::RawAuth>>,
    authorization: Option<Vec<security::RawRule>>,
    rate_limit: Option<security::RawRateLimit>,
    tls: Option<security::RawTls>,
    limits: Option<security::RawLimits>,
    traces: Option<RawTraces>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTraces {
    otlp_endpoint: Spanned<String>,
    service_name: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    ca_file: Option<Spanned<String>>,
    sample_ratio: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawClusterTools {
    #[serde(default = "enabled")]
    enabled: bool,
    #[serde(default)]
    namespaces: Vec<Spanned<String>>,
    #[serde(default)]
    restart_deployments: Vec<Spanned<String>>,
    #[serde(default)]
    trigger_jobs: Vec<Spanned<String>>,
}

fn enabled() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawKubernetes {
    #[serde(default)]
    namespaces: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSessions {
    key: Spanned<String>,
    #[serde(default)]
    previous_keys: Vec<String>,
    max_age: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawHealth {
    probe_interval: Option<Spanned<String>>,
    grace_period: Option<Spanned<String>>,
    startup_deadline: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawUpstream {
    name: Spanned<String>,
    url: Option<Spanned<String>>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Names of the gateway's environment passed to a stdio child unchanged.
    #[serde(default)]
    inherit_env: Vec<String>,
    prefix: Option<Spanned<String>>,
    transport: Option<Spanned<String>>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    timeout: Option<Spanned<String>>,
    max_concurrency: Option<usize>,
    /// PEM CA bundle trusted for this https upstream.
    ca_file: Option<Spanned<String>>,
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

/// Validates config text; `file` is only used in error messages.
pub fn parse(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let error = |message: String| ConfigError {
        file: file.to_string(),
        message,
    };
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| error(e.to_string()))?;

    let listen = match &raw.listen {
        None => DEFAULT_LISTEN
            .parse()
            .expect("default listen address parses"),
        Some(spanned) => spanned.value.parse().map_err(|_| {
            error(format!(
                "line {}: listen: {:?} is not an address like 127.0.0.1:8080",
                spanned.referenced.line(),
                spanned.value
            ))
        })?,
    };

    let mut upstreams = Vec::with_capacity(raw.upstreams.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut prefixes: HashMap<String, usize> = HashMap::new();
    for (index, entry) in raw.upstreams.into_iter().enumerate() {
        let key = |field: &str, line: u64| format!("line {line}: upstreams[{index}].{field}");
        let name_line = entry.name.referenced.line();
        let name = entry.name.value;
        if !valid_name(&name) {
            return Err(error(format!(
                "{}: {name:?} must match [a-z0-9][a-z0-9_-]*",
                key("name", name_line)
            )));
        }
        if let Some(first) = names.insert(name.clone(), index) {
            return Err(error(format!(
                "{}: duplicate name {name:?} (also upstreams[{first}])",
                key("name", name_line)
            )));
        }

        let (prefix, prefix_line) = match entry.prefix {
            Some(p) => (p.value, p.referenced.line()),
            None => (format!("{name}_"), name_line),
        };
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_graphic()) {
            return Err(error(format!(
                "{}: {prefix:?} must be non-empty printable ASCII",
                key("prefix", prefix_line)
            )));
        }
        if let Some(first) = prefixes.insert(prefix.clone(), index) {
            return Err(error(format!(
                "{}: duplicate prefix {prefix:?} (also upstreams[{first}])",
                key("prefix", prefix_line)
            )));
        }

        let timeout = match entry.timeout {
            None => DEFAULT_CALL_TIMEOUT,
            Some(t) => parse_duration(&t.value).ok_or_else(|| {
                error(format!(
                    "{}: {:?} is not a duration like 30s, 500ms or 2m",
                    key("timeout", t.referenced.line()),
                    t.value
                ))
            })?,
        };

        let transport = match (entry.url, entry.command) {
            (Some(_), Some(_)) => {
                return Err(error(format!(
                    "{}: set either url or command, not both",
                    key("url", name_line)
                )));
            }
            (None, None) => {
                return Err(error(format!(
                    "{}: missing url (Streamable HTTP) or command (stdio)",
                    key("url", name_line)
                )));
            }
            (Some(url), None) => {
                let line = url.referenced.line();
                let url = url.value;
                if !(url.starts_with("http://") || url.starts_with("https://"))
                    || url.parse::<http::Uri>().is_err()
                {
                    return Err(error(format!(
                        "{}: {url:?} is not an http:// or https:// URL",
                        key("url", line)
                    )));
                }
                if !entry.args.is_empty() || !entry.env.is_empty() || !entry.inherit_env.is_empty()
                {
                    return Err(error(format!(
                        "{}: args, env and inheritEnv apply to command upstreams only",
                        key("args", name_line)
                    )));
                }
                let mut headers = Vec::with_capacity(entry.headers.len());
                for (header, value) in entry.headers {
                    let resolved = expand_env(&value, env).map_err(|var| {
                        error(format!(
                            "{}: environment variable {var} is not set",
                            key(&format!("headers.{header}"), name_line)
                        ))
                    })?;
                    if http::HeaderName::from_bytes(header.as_bytes()).is_err()
                        || http::HeaderValue::from_str(&resolved).is_err()
                    {
                        // The value may be a credential: never echo it.
                        return Err(error(format!(
                            "{}: not a valid HTTP header name or value",
                            key(&format!("headers.{header}"), name_line)
                        )));
                    }
                    headers.push((header, resolved));
                }
                let legacy_sse = match entry
                    .transport
                    .as_ref()
                    .map(|t| (t.value.as_str(), t.referenced.line()))
                {
                    Some(("streamable-http", _)) => LegacySse::Never,
                    Some(("sse", _)) => LegacySse::Always,
                    Some((other, line)) => {
                        return Err(error(format!(
                            "{}: {other:?} is not one of streamable-http, sse",
                            key("transport", line)
                        )));
                    }
                    None if url.trim_end_matches('/').ends_with("/sse") => LegacySse::Detect,
                    None => LegacySse::Never,
                };
                let ca_pem = match &entry.ca_file {
                    None => None,
                    Some(path) => Some(std::fs::read_to_string(&path.value).map_err(|e| {
                        error(format!(
                            "{}: cannot read {:?}: {e}",
                            key("caFile", path.referenced.line()),
                            path.value
                        ))
                    })?),
                };
                TransportSpec::Http {
                    url,
                    headers,
                    legacy_sse,
                    ca_pem,
                    dial_pods: false,
                }
            }
            (None, Some(command)) => {
                if command.trim().is_empty() {
                    return Err(error(format!(
                        "{}: command is empty",
                        key("command", name_line)
                    )));
                }
                if !entry.headers.is_empty() || entry.transport.is_some() {
                    return Err(error(format!(
                        "{}: headers and transport apply to url upstreams only",
                        key("headers", name_line)
                    )));
                }
                let env = child_env::build(&entry.inherit_env, &entry.env, env).map_err(|e| {
                    // Values may be credentials: errors name fields only.
                    error(match e {
                        ChildEnvError::BadName { field } => format!(
                            "{}: not a valid environment variable name",
                            key(&field, name_line)
                        ),
                        ChildEnvError::Unset { field, var } => format!(
                            "{}: environment variable {var} is not set",
                            key(&field, name_line)
                        ),
                        ChildEnvError::BadValue { field } => format!(
                            "{}: a value cannot contain a NUL byte",
                            key(&field, name_line)
                        ),
                    })
                })?;
                TransportSpec::Stdio {
                    command,
                    args: entry.args,
                    env,
                }
            }
        };

        upstreams.push(UpstreamSpec {
            name,
            prefix,
            transport,
            timeout,
            max_concurrency: entry
                .max_concurrency
                .unwrap_or(DEFAULT_MAX_CONCURRENCY)
                .max(1),
            source: Source::ConfigFile,
        });
    }

    let duration = |value: Option<Spanned<String>>, key: &str, default: Duration| {
        positive_duration(value, key, default).map_err(error)
    };
    let session_idle_timeout = duration(
        raw.session_idle_timeout,
        "sessionIdleTimeout",
        DEFAULT_SESSION_IDLE_TIMEOUT,
    )?;

    let defaults = HealthSettings::default();
    let health = HealthSettings {
        probe_interval: duration(
            raw.health.probe_interval,
            "health.probeInterval",
            defaults.probe_interval,
        )?,
        grace_period: duration(
            raw.health.grace_period,
            "health.gracePeriod",
            defaults.grace_period,
        )?,
        startup_deadline: duration(
            raw.health.startup_deadline,
            "health.startupDeadline",
            defaults.startup_deadline,
        )?,
    };

    let sealing = match raw.sessions {
        None => None,
        Some(sessions) => {
            let line = sessions.key.referenced.line();
            let expand = |value: &str| {
                expand_env(value, env).map_err(|var| {
                    error(format!(
                        "line {line}: sessions: environment variable {var} is not set"
                    ))
                })
            };
            let key = expand(&sessions.key.value)?;
            // The value is a secret: errors say what is wrong, never what it is.
            if key.len() < 32 {
                return Err(error(format!(
                    "line {line}: sessions.key: use at least 32 characters (random is best)"
                )));
            }
            let previous_keys = sessions
                .previous_keys
                .iter()
                .map(|k| expand(k))
                .collect::<Result<_, _>>()?;
            let max_age = duration(
                sessions.max_age,
                "sessions.maxAge",
                Duration::from_secs(24 * 3600),
            )?;
            Some(Sealing {
                key,
                previous_keys,
                max_age,
            })
        }
    };

    let namespaces = |values: Vec<Spanned<String>>, setting: &str| {
        values
            .into_iter()
            .map(|namespace| {
                if valid_dns_label(&namespace.value) {
                    Ok(namespace.value)
                } else {
                    Err(error(format!(
                        "line {}: {setting}: {:?} is not a namespace name",
                        namespace.referenced.line(),
                        namespace.value
                    )))
                }
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let qualified_names = |values: Vec<Spanned<String>>, setting: &str| {
        values
            .into_iter()
            .map(|entry| match entry.value.split_once('/') {
                Some((namespace, name))
                    if valid_dns_label(namespace) && !name.is_empty() && !name.contains('/') =>
                {
                    Ok(entry.value)
                }
                _ => Err(error(format!(
                    "line {}: {setting}: {:?} is not namespace/name",
                    entry.referenced.line(),
                    entry.value
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let kubernetes = match raw.kubernetes {
        None => None,
        Some(raw) => Some(KubernetesSettings {
            namespaces: namespaces(raw.namespaces, "kubernetes.namespaces")?,
        }),
    };
    let cluster_tools = match raw.cluster_tools {
        Some(raw) if raw.enabled => Some(ClusterToolsSettings {
            namespaces: namespaces(raw.namespaces, "clusterTools.namespaces")?,
            restart_deployments: qualified_names(
                raw.restart_deployments,
                "clusterTools.restartDeployments",
            )?,
            trigger_jobs: qualified_names(raw.trigger_jobs, "clusterTools.triggerJobs")?,
        }),
        _ => None,
    };

    let security = security::parse(
        security::RawSecurity {
            auth: raw.auth,
            authorization: raw.authorization,
            rate_limit: raw.rate_limit,
            tls: raw.tls,
            limits: raw.limits,
        },
        env,
    )
    .map_err(error)?;
    let traces = raw
        .traces
        .map(|raw| trace_settings(raw, env))
        .transpose()
        .map_err(error)?;

    Ok(Config {
        traces,
        security,
        cluster_tools,
        kubernetes,
        listen,
        health,
        sealing,
        session_idle_timeout,
        upstreams,
        allowed_origins: raw.allowed_origins,
        max_body_bytes: raw.max_body_bytes.unwrap_or(4 * 1024 * 1024),
    })
}

fn trace_settings(
    raw: RawTraces,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TraceSettings, String> {
    let line = raw.otlp_endpoint.referenced.line();
    let base = raw.otlp_endpoint.value.trim_end_matches('/');
    // Like OTEL_EXPORTER_OTLP_ENDPOINT: the base URL, signal path appended
    // (unless it is already there).
    let url = if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    };
    let endpoint = url
        .parse::<http::Uri>()
        .ok()
        .filter(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some())
        .ok_or_else(|| {
            format!(
                "line {line}: traces.otlpEndpoint: {:?} is not an http:// or https:// URL",
                raw.otlp_endpoint.value
            )
        })?;
    let mut headers = Vec::with_capacity(raw.headers.len());
    for (name, value) in raw.headers {
        let value = expand_env(&value, env).map_err(|var| {
            format!("line {line}: traces.headers.{name}: environment variable {var} is not set")
        })?;
        match (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => headers.push((name, value)),
            // The value may be a credential: never echo it.
            _ => {
                return Err(format!(
                    "line {line}: traces.headers.{name}: not a valid HTTP header name or value"
                ));
            }
        }
    }
    let ca_pem = match raw.ca_file {
        None => None,
        Some(path) => Some(std::fs::read_to_string(&path.value).map_err(|e| {
            format!(
                "line {}: traces.caFile: cannot read {:?}: {e}",
                path.referenced.line(),
                path.value
            )
        })?),
    };
    let sample_ratio = match raw.sample_ratio {
        None => 1.0,
        Some(ratio) if (0.0..=1.0).contains(&ratio.value) => ratio.value,
        Some(ratio) => {
            return Err(format!(
                "line {}: traces.sampleRatio: {} is not between 0 and 1",
                ratio.referenced.line(),
                ratio.value
            ));
        }
    };
    Ok(TraceSettings {
        endpoint,
        service_name: raw.service_name.unwrap_or_else(|| "switchboard".into()),
        headers,
        ca_pem,
        sample_ratio,
    })
}

/// An RFC 1123 label, as Kubernetes namespace names are.
fn valid_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
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
use child_env::ChildEnvError;
mod security;
pub use security::{
    ApiKeySettings, AuthSettings, AuthorizationRule, JwtKeys, JwtSettings, Limits,
    RateLimitSettings, Security, TlsSettings, TokenReviewSettings,
};

#[cfg(test)]
mod tests;
