//! Who is calling, and what they may use. The edge authenticates every
//! request outside the health and metadata endpoints ([`Auth::authenticate`]),
//! the router asks the resulting [`Caller`] before listing or routing an
//! item, and client sessions are bound to the caller's subject.
//!
//! Client credentials stop here: nothing of them is forwarded upstream,
//! and they are never logged (the subject is).

pub mod api_keys;
pub mod jwt;
pub mod rate_limit;
pub mod rules;
pub mod token_review;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::config::AuthSettings;
use crate::jsonrpc::{self, RpcError};
use crate::net::Body;
use crate::net::response::json_response;
use crate::refusal::Refusal;
use api_keys::ApiKeys;
use jwt::Issuer;
pub use rules::Rules;
use token_review::TokenReviewer;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub subject: Arc<str>,
    pub groups: Vec<Arc<str>>,
    /// How it authenticated: `api_key`, `jwt` or `kubernetes`.
    pub method: &'static str,
}

/// Who is calling, as the router sees it.
pub enum Caller {
    /// Auth is off: everything is visible, as before.
    Anyone,
    Authenticated {
        principal: Principal,
        rules: Arc<Rules>,
    },
}

impl Caller {
    pub fn subject(&self) -> Option<&Arc<str>> {
        match self {
            Caller::Anyone => None,
            Caller::Authenticated { principal, .. } => Some(&principal.subject),
        }
    }

    /// Whether lists must be filtered for this caller.
    pub fn is_restricted(&self) -> bool {
        matches!(self, Caller::Authenticated { .. })
    }

    /// May see and call the tool or prompt `name` (exposed name).
    pub fn may_use(&self, name: &str) -> bool {
        match self {
            Caller::Anyone => true,
            Caller::Authenticated { principal, rules } => rules.may_use(principal, name),
        }
    }

    /// May use the upstream behind `prefix` as a whole (resources, and the
    /// methods its own endpoint passes through); `uri` for one resource.
    pub fn may_use_server(&self, prefix: &str, uri: Option<&str>) -> bool {
        match self {
            Caller::Anyone => true,
            Caller::Authenticated { principal, rules } => {
                rules.may_use_server(principal, prefix, uri)
            }
        }
    }
}

pub struct Auth {
    api_keys: ApiKeys,
    issuers: Vec<Issuer>,
    reviewer: Option<TokenReviewer>,
    pub rules: Arc<Rules>,
    settings: AuthSettings,
}

impl Auth {
    /// `kube` is required when `settings.kubernetes` is set.
    pub fn new(
        settings: AuthSettings,
        rules: Rules,
        kube: Option<kube::Client>,
    ) -> Result<Auth, String> {
        let issuers = settings
            .jwt
            .iter()
            .map(Issuer::new)
            .collect::<Result<_, _>>()?;
        let reviewer = match (&settings.kubernetes, kube) {
            (None, _) => None,
            (Some(review), Some(client)) => Some(TokenReviewer::new(client, review.clone())),
            (Some(_), None) => {
                return Err(
                    "auth.kubernetes needs cluster access (in-cluster or a kubeconfig)".into(),
                );
            }
        };
        Ok(Auth {
            api_keys: ApiKeys::new(&settings.api_keys),
            issuers,
            reviewer,
            rules: Arc::new(rules),
            settings,
        })
    }

    pub fn open_metrics(&self) -> bool {
        self.settings.open_metrics
    }

    /// Checks the request's credential: `X-API-Key`, or `Authorization:
    /// Bearer` holding an API key, a JWT of a configured issuer, or (when
    /// configured) a Kubernetes service-account token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, Refusal> {
        let credential = credential(headers)?;
        if let Some(principal) = self.api_keys.find(credential.token) {
            return Ok(principal);
        }
        if credential.api_key_header {
            return Err(Refusal::Unknown);
        }
        let token = credential.token;
        if token.split('.').count() != 3 {
            return match &self.reviewer {
                Some(reviewer) => reviewer.review(token).await,
                None => Err(Refusal::Unknown),
            };
        }
        let claimed = jwt::claimed_issuer(token);
        if let Some(issuer) = self
            .issuers
            .iter()
            .find(|i| claimed.as_deref() == Some(i.issuer()))
        {
            return issuer.verify(token).await;
        }
        // Service-account tokens have their own issuer: the API server judges.
        if let Some(reviewer) = &self.reviewer {
            return reviewer.review(token).await;
        }
        Err(match claimed {
            None => Refusal::Malformed,
            Some(_) if self.issuers.is_empty() => Refusal::Unknown,
            Some(_) => Refusal::WrongIssuer,
        })
    }

    /// The refusal of a request: 401 (503 when the credential could not
    /// be checked) with the challenge that leads MCP clients to the
    /// protected-resource metadata.
    pub fn refusal(&self, headers: &HeaderMap, tls: bool, failure: Refusal) -> Response<Body> {
        let status = if failure == Refusal::Unavailable {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNAUTHORIZED
        };
        let body = RpcError::new(
            jsonrpc::UNAUTHORIZED,
            format!("Unauthorized: {}", failure.description()),
        )
        .response(None)
        .to_string();
        let mut response = json_response(status, Bytes::from(body));
        let mut challenge = format!(
            "Bearer resource_metadata=\"{}\"",
            self.metadata_url(headers, tls)
        );
        if failure != Refusal::Missing {
            // RFC 6750 §3.1: a credential was presented and did not pass.
            challenge.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{}\"",
                failure.reason()
            ));
        }
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        if failure == Refusal::Unavailable {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }

    /// RFC 9728 protected-resource metadata for the MCP endpoint at `path`
    /// (`/mcp` for the well-known URL without a suffix).
    pub fn metadata(&self, headers: &HeaderMap, tls: bool, path: &str) -> Response<Body> {
        let resource = match &self.settings.resource {
            Some(resource) if path == "/mcp" => resource.clone(),
            Some(resource) => {
                let base = resource.strip_suffix("/mcp").unwrap_or(resource);
                format!("{base}{path}")
            }
            None => format!("{}{path}", origin(headers, tls)),
        };
        let servers: Vec<&str> = if self.settings.authorization_servers.is_empty() {
            self.settings
                .jwt
                .iter()
                .map(|j| j.issuer.as_str())
                .collect()
        } else {
            self.settings
                .authorization_servers
                .iter()
                .map(String::as_str)
                .collect()
        };
        let document = json!({
            "resource": resource,
            "authorization_servers": servers,
            "bearer_methods_supported": ["header"],
            "resource_name": "Switchboard MCP gateway",
        });
        json_response(StatusCode::OK, Bytes::from(document.to_string()))
    }

    fn metadata_url(&self, headers: &HeaderMap, tls: bool) -> String {
        // The configured resource's scheme and authority, else the request's.
        let configured = self
            .settings
            .resource
            .as_deref()
            .and_then(|r| r.parse::<http::Uri>().ok())
            .and_then(|uri| Some(format!("{}://{}", uri.scheme()?, uri.authority()?)));
        let base = configured.unwrap_or_else(|| origin(headers, tls));
        format!("{base}/.well-known/oauth-protected-resource/mcp")
    }
}

/// `scheme://host` as the client addressed the gateway.
fn origin(headers: &HeaderMap, tls: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()) && !h.contains('"'))
        .unwrap_or("localhost");
    format!("{}://{host}", if tls { "https" } else { "http" })
}

struct Credential<'a> {
    token: &'a str,
    /// From `X-API-Key`: only an API key can match.
    api_key_header: bool,
}

fn credential(headers: &HeaderMap) -> Result<Credential<'_>, Refusal> {
    let single = |name: &str| -> Result<Option<&str>, Refusal> {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(value), None) => value.to_str().map(Some).map_err(|_| Refusal::Malformed),
            _ => Err(Refusal::Malformed),
        }
    };
    if let Some(key) = single("x-api-key")? {
        let key = key.trim();
        if key.is_empty() {
            return Err(Refusal::Malformed);
        }
        return Ok(Credential {
            token: key,
            api_key_header: true,
        });
    }
    let Some(authorization) = single("authorization")? else {
        return Err(Refusal::Missing);
    };
    let (scheme, token) = authorization
        .trim()
        .split_once(' ')
        .ok_or(Refusal::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(Refusal::Malformed);
    }
    Ok(Credential {
        token,
        api_key_header: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn credentials_are_read_from_one_header_in_one_form() {
        assert_eq!(credential(&headers(&[])).err(), Some(Refusal::Missing));
        let bearer = headers(&[("authorization", "Bearer abc")]);
        assert_eq!(credential(&bearer).unwrap().token, "abc");
        let lower = headers(&[("authorization", "bearer  abc ")]);
        assert_eq!(credential(&lower).unwrap().token, "abc");
        for bad in ["Basic abc", "Bearer", "Bearer a b", "abc"] {
            assert_eq!(
                credential(&headers(&[("authorization", bad)])).err(),
                Some(Refusal::Malformed),
                "{bad}"
            );
        }
        let twice = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert_eq!(credential(&twice).err(), Some(Refusal::Malformed));
        let key = headers(&[("x-api-key", "k1"), ("authorization", "Bearer b")]);
        let found = credential(&key).unwrap();
        assert!(found.api_key_header);
        assert_eq!(found.token, "k1");
    }
}
