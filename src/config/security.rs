//! The security part of the config file: `auth`, `authorization`,
//! `rateLimit`, `tls` and `limits`, as written and validated. Secrets are
//! read here (from `${VAR}` or files) and never printed: errors say what is
//! wrong with a value, never what it is.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{expand_env, positive_duration};

/// Who may connect: off (today's open gateway) when the file has no `auth`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthSettings {
    pub api_keys: Vec<ApiKeySettings>,
    pub jwt: Vec<JwtSettings>,
    pub kubernetes: Option<TokenReviewSettings>,
    /// The public URL of the MCP endpoint (RFC 9728 `resource`); derived
    /// from the request's `Host` when absent.
    pub resource: Option<String>,
    /// Named in the protected-resource metadata; the JWT issuers when absent.
    pub authorization_servers: Vec<String>,
    /// Leave `/metrics` open for scrapers (it names upstreams, no tools).
    pub open_metrics: bool,
}

#[derive(Clone, PartialEq)]
pub struct ApiKeySettings {
    pub subject: String,
    pub key: String,
    pub groups: Vec<String>,
}

impl fmt::Debug for ApiKeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeySettings")
            .field("subject", &self.subject)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JwtSettings {
    pub issuer: String,
    /// A token must name one of these in `aud` (no confused deputy).
    pub audiences: Vec<String>,
    pub keys: JwtKeys,
    pub subject_claim: String,
    pub groups_claim: String,
    /// Least time between two JWKS fetches caused by an unknown `kid`.
    pub jwks_refresh_cooldown: Duration,
}

/// Where a JWT issuer's verification keys come from.
#[derive(Clone, PartialEq)]
pub enum JwtKeys {
    /// Fetched and cached; `ca_pem` is trusted besides the system roots.
    Jwks { url: String, ca_pem: Option<String> },
    /// HS256 shared secret.
    Secret(String),
    /// A PEM public key (RSA, EC P-256 or Ed25519), read at start.
    PublicKeyPem(String),
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKeys::Jwks { url, .. } => write!(f, "Jwks({url})"),
            JwtKeys::Secret(_) => f.write_str("Secret(..)"),
            JwtKeys::PublicKeyPem(_) => f.write_str("PublicKeyPem(..)"),
        }
    }
}

/// Kubernetes service-account tokens, checked with the TokenReview API.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenReviewSettings {
    pub audiences: Vec<String>,
    /// How long a review's answer is reused for the same token.
    pub cache_ttl: Duration,
}

/// One authorization rule: the first rule naming the caller and matching
/// the tool decides.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationRule {
    /// Subject names, `group:<name>`, or `*` (any authenticated caller).
    pub subjects: Vec<String>,
    /// Tool/prompt name patterns (`*` matches any run of characters).
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

/// Per-caller token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitSettings {
    pub requests_per_second: f64,
    pub burst: u32,
}

/// Serving TLS; the files are re-read when they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Connection limits toward clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
    /// Time a client has to send a request's headers; it also bounds how
    /// long an idle kept-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Longest silence while a request body is being read.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 32 * 1024,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawAuth {
    #[serde(default)]
    api_keys: Vec<RawApiKey>,
    #[serde(default)]
    jwt: Vec<RawJwt>,
    kubernetes: Option<RawTokenReview>,
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Vec<String>,
    #[serde(default)]
    open_metrics: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawApiKey {
    subject: Spanned<String>,
    key: Option<String>,
    key_file: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawJwt {
    issuer: Spanned<String>,
    #[serde(default)]
    audiences: Vec<String>,
    jwks_url: Option<String>,
    ca_file: Option<String>,
    secret: Option<String>,
    secret_file: Option<String>,
    public_key_file: Option<String>,
    subject_claim: Option<String>,
    groups_claim: Option<String>,
    jwks_refresh_cooldown: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTokenReview {
    #[serde(default)]
    audiences: Vec<String>,
    cache_ttl: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawRule {
    subjects: Spanned<Vec<String>>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawRateLimit {
    requests_per_second: Spanned<f64>,
    burst: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawTls {
    cert_file: Spanned<String>,
    key_file: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawLimits {
    max_header_bytes: Option<usize>,
    header_read_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
}

/// The validated security settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Security {
    pub auth: Option<AuthSettings>,
    pub authorization: Vec<AuthorizationRule>,
    pub rate_limit: Option<RateLimitSettings>,
    pub tls: Option<TlsSettings>,
    pub limits: Limits,
}

pub(super) struct RawSecurity {
    pub auth: Option<Spanned<RawAuth>>,
    pub authorization: Option<Vec<RawRule>>,
    pub rate_limit: Option<RawRateLimit>,
    pub tls: Option<RawTls>,
    pub limits: Option<RawLimits>,
}

/// Reads a secret file (trimmed); the error names the file, not the content.
fn read_secret(setting: &str, path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{setting}: cannot read {path}: {e}"))
}

pub(super) fn parse(
    raw: RawSecurity,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Security, String> {
    let expand = |setting: &str, value: &str| {
        expand_env(value, env)
            .map_err(|var| format!("{setting}: environment variable {var} is not set"))
    };
    let auth = match raw.auth {
        None => None,
        Some(spanned) => {
            let line = spanned.referenced.line();
            let raw = spanned.value;
            let mut api_keys = Vec::new();
            for (i, entry) in raw.api_keys.into_iter().enumerate() {
                let setting = format!(
                    "line {}: auth.apiKeys[{i}]",
                    entry.subject.referenced.line()
                );
                let key = match (entry.key, entry.key_file) {
                    (Some(key), None) => expand(&format!("{setting}.key"), &key)?,
                    (None, Some(path)) => read_secret(&format!("{setting}.keyFile"), &path)?,
                    _ => return Err(format!("{setting}: give one of key or keyFile")),
                };
                if key.len() < 16 {
                    return Err(format!(
                        "{setting}.key: use at least 16 characters (random is best)"
                    ));
                }
                if entry.subject.value.is_empty() {
                    return Err(format!("{setting}.subject: must not be empty"));
                }
                api_keys.push(ApiKeySettings {
                    subject: entry.subject.value,
                    key,
                    groups: entry.groups,
                });
            }
            let mut jwt = Vec::new();
            for (i, entry) in raw.jwt.into_iter().enumerate() {
                let setting = format!("line {}: auth.jwt[{i}]", entry.issuer.referenced.line());
                let keys = match (
                    entry.jwks_url,
                    entry.secret,
                    entry.secret_file,
                    entry.public_key_file,
                ) {
                    (Some(url), None, None, None) => {
                        if !(url.starts_with("https://") || url.starts_with("http://")) {
                            return Err(format!(
                                "{setting}.jwksUrl: {url:?} is not an http(s) URL"
                            ));
                        }
                        let ca_pem = match entry.ca_file {
                            None => None,
                            Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| {
                                format!("{setting}.caFile: cannot read {path}: {e}")
                            })?),
                        };
                        JwtKeys::Jwks { url, ca_pem }
                    }
                    (None, Some(secret), None, None) => {
                        JwtKeys::Secret(expand(&format!("{setting}.secret"), &secret)?)
                    }
                    (None, None, Some(path), None) => {
                        JwtKeys::Secret(read_secret(&format!("{setting}.secretFile"), &path)?)
                    }
                    (None, None, None, Some(path)) => {
                        JwtKeys::PublicKeyPem(std::fs::read_to_string(&path).map_err(|e| {
                            format!("{setting}.publicKeyFile: cannot read {path}: {e}")
                        })?)
                    }
                    _ => {
                        return Err(format!(
                            "{setting}: give exactly one of jwksUrl, secret, secretFile or publicKeyFile"
                        ));
                    }
                };
                if let JwtKeys::Secret(secret) = &keys
                    && secret.len() < 32
                {
                    return Err(format!(
                        "{setting}.secret: use at least 32 characters for HS256 (random is best)"
                    ));
                }
                if entry.audiences.is_empty() {
                    return Err(format!(
                        "{setting}.audiences: name the audience tokens must be for (this gateway's URL)"
                    ));
                }
                jwt.push(JwtSettings {
                    issuer: entry.issuer.value,
                    audiences: entry.audiences,
                    keys,
                    subject_claim: entry.subject_claim.unwrap_or_else(|| "sub".into()),
                    groups_claim: entry.groups_claim.unwrap_or_else(|| "groups".into()),
                    jwks_refresh_cooldown: positive_duration(
                        entry.jwks_refresh_cooldown,
                        &format!("auth.jwt[{i}].jwksRefreshCooldown"),
                        Duration::from_secs(10),
                    )?,
                });
            }
            let kubernetes = match raw.kubernetes {
                None => None,
                Some(review) => {
                    if review.audiences.is_empty() {
                        return Err(format!(
                            "line {line}: auth.kubernetes.audiences: name the audience agents' tokens are made for (e.g. switchboard)"
                        ));
                    }
                    Some(TokenReviewSettings {
                        audiences: review.audiences,
                        cache_ttl: positive_duration(
                            review.cache_ttl,
                            "auth.kubernetes.cacheTtl",
                            Duration::from_secs(30),
                        )?,
                    })
                }
            };
            if api_keys.is_empty() && jwt.is_empty() && kubernetes.is_none() {
                return Err(format!(
                    "line {line}: auth: configure at least one of apiKeys, jwt or kubernetes"
                ));
            }
            Some(AuthSettings {
                api_keys,
                jwt,
                kubernetes,
                resource: raw.resource,
                authorization_servers: raw.authorization_servers,
                open_metrics: raw.open_metrics,
            })
        }
    };

    let mut authorization = Vec::new();
    for (i, rule) in raw
        .authorization
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let line = rule.subjects.referenced.line();
        if rule.subjects.value.is_empty() {
            return Err(format!(
                "line {line}: authorization[{i}].subjects: must not be empty"
            ));
        }
        if rule.allow.is_empty() && rule.deny.is_empty() {
            return Err(format!(
                "line {line}: authorization[{i}]: give allow or deny patterns"
            ));
        }
        authorization.push(AuthorizationRule {
            subjects: rule.subjects.value,
            allow: rule.allow,
            deny: rule.deny,
        });
    }
    if auth.is_none() && !authorization.is_empty() {
        return Err("authorization: rules need an auth section (who is calling?)".into());
    }

    let rate_limit = match raw.rate_limit {
        None => None,
        Some(rate) => {
            let per_second = rate.requests_per_second.value;
            if !(per_second.is_finite() && per_second > 0.0) {
                return Err(format!(
                    "line {}: rateLimit.requestsPerSecond: must be a positive number",
                    rate.requests_per_second.referenced.line()
                ));
            }
            Some(RateLimitSettings {
                requests_per_second: per_second,
                burst: rate
                    .burst
                    .unwrap_or_else(|| (per_second * 2.0).ceil() as u32)
                    .max(1),
            })
        }
    };

    let tls = raw.tls.map(|tls| TlsSettings {
        cert_file: PathBuf::from(tls.cert_file.value),
        key_file: PathBuf::from(tls.key_file),
    });

    let defaults = Limits::default();
    let raw_limits = raw.limits.unwrap_or_default();
    let limits = Limits {
        max_header_bytes: raw_limits
            .max_header_bytes
            .unwrap_or(defaults.max_header_bytes)
            .max(8192),
        header_read_timeout: positive_duration(
            raw_limits.header_read_timeout,
            "limits.headerReadTimeout",
            defaults.header_read_timeout,
        )?,
        idle_timeout: positive_duration(
            raw_limits.idle_timeout,
            "limits.idleTimeout",
            defaults.idle_timeout,
        )?,
    };

    Ok(Security {
        auth,
        authorization,
        rate_limit,
        tls,
        limits,
    })
}
