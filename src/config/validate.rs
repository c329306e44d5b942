//! Validation: the raw file turned into the [`Config`] the gateway uses.
//! Each check names the key (and its line) it refuses; `${VAR}` references
//! are resolved through the injected environment.

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::child_env::{self, ChildEnvError};
use super::error::ConfigError;
use super::raw::{RawConfig, RawTraces};
use super::security;
use super::{
    ClusterToolsSettings, Config, DEFAULT_CALL_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_CONCURRENCY,
    DEFAULT_SESSION_IDLE_TIMEOUT, HealthSettings, KubernetesSettings, LegacySse, Sealing, Source,
    TraceSettings, TransportSpec, UpstreamSpec, expand_env, parse_duration, positive_duration,
};

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
