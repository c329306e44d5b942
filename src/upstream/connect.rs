//! Connecting to an upstream: the era probe (`server/discover`, falling
//! back to the 2025 `initialize` handshake, and to HTTP+SSE for a `/sse`
//! URL), and fetching its lists.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::HeaderValue;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::session::UpstreamSession;
use super::{
    CONNECT_TIMEOUT, Caller, Era, Link, Reply, Upstream, UpstreamError, gateway_meta,
    response_result, single_response,
};
use crate::catalog::Listing;
use crate::protocol::{self, Relayable};

impl Upstream {
    /// Probes the era (`server/discover`, falling back to `initialize`) and
    /// fetches the lists the upstream advertises.
    pub async fn connect(&self) -> Result<Listing, UpstreamError> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        // A reconnect starts over: the old shared session may belong to a
        // process that is gone.
        let _ = self.shared.take().await;
        let probe = if matches!(**self.link(), Link::Sse(_)) {
            Err(UpstreamError::Protocol(
                "HTTP+SSE predates server/discover".into(),
            ))
        } else {
            match self.discover(deadline).await {
                // A modern error identifies a modern server: it is asked
                // again with a version it supports, never taken for a 2025
                // one (2026-07-28, versioning). One more try: we speak one.
                Err(error) => match versions_offered(&error) {
                    Some(versions) if versions.iter().any(|v| v == protocol::MODERN) => {
                        self.discover(deadline).await
                    }
                    Some(versions) if !versions.iter().any(|v| protocol::is_legacy(v)) => {
                        return Err(UpstreamError::Protocol(format!(
                            "it speaks only {}",
                            versions.join(", ")
                        )));
                    }
                    _ => Err(error),
                },
                found => found,
            }
        };
        let capabilities = match probe {
            Ok(capabilities) => {
                self.era.store(Some(Arc::new(Era::Modern)));
                capabilities
            }
            Err(error @ (UpstreamError::Connect(_) | UpstreamError::Timeout)) => return Err(error),
            Err(_) => {
                // Not a modern server: the 2025 handshake decides.
                let mut handshake = self
                    .shared
                    .get_or_init(|| self.initialize(None, deadline))
                    .await;
                if let Err(UpstreamError::Status { .. } | UpstreamError::Protocol(_)) = &handshake
                    && self.sse_fallback.is_some()
                    && !self.on_fallback.swap(true, Ordering::AcqRel)
                {
                    tracing::info!(upstream = %self.name, "no Streamable HTTP here; trying HTTP+SSE");
                    handshake = self
                        .shared
                        .get_or_init(|| self.initialize(None, deadline))
                        .await;
                }
                let session = handshake?;
                let version = session.version.to_str().unwrap_or_default().to_string();
                self.era.store(Some(Arc::new(Era::Legacy(version))));
                session.capabilities.clone()
            }
        };
        self.fetch_listing(capabilities, deadline).await
    }

    /// Re-fetches the lists (after the upstream said they changed), with
    /// the capabilities found by the last `connect`.
    pub async fn refresh(&self, capabilities: &Value) -> Result<Listing, UpstreamError> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        self.fetch_listing(capabilities.clone(), deadline).await
    }

    /// The lists as a client that can be asked `asks` sees them: a server
    /// may offer a tool only to clients that can answer what it asks.
    /// Fetched on the shared session that declares the same (2025 era), or
    /// with it in `_meta`.
    pub async fn listing_for(
        &self,
        capabilities: &Value,
        asks: Relayable,
    ) -> Result<Listing, UpstreamError> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        self.fetch_listing_as(capabilities.clone(), asks, deadline)
            .await
    }

    /// Whether what a client declares can change what this upstream lists:
    /// not for the built-in tools, nor a stdio child (one session, whoever
    /// calls).
    pub fn lists_by_capabilities(&self) -> bool {
        matches!(**self.link(), Link::Http(_) | Link::Sse(_))
    }

    async fn fetch_listing(
        &self,
        capabilities: Value,
        deadline: Instant,
    ) -> Result<Listing, UpstreamError> {
        self.fetch_listing_as(capabilities, Relayable::default(), deadline)
            .await
    }

    async fn fetch_listing_as(
        &self,
        capabilities: Value,
        asks: Relayable,
        deadline: Instant,
    ) -> Result<Listing, UpstreamError> {
        let mut listing = Listing {
            capabilities: capabilities.clone(),
            ..Listing::default()
        };
        if capabilities.get("tools").is_some() {
            listing.tools = self.list_all("tools/list", "tools", asks, deadline).await?;
        }
        if capabilities.get("prompts").is_some() {
            listing.prompts = self
                .list_all("prompts/list", "prompts", asks, deadline)
                .await?;
        }
        if capabilities.get("resources").is_some() {
            listing.resources = self
                .list_all("resources/list", "resources", asks, deadline)
                .await?;
            listing.resource_templates = self
                .list_all(
                    "resources/templates/list",
                    "resourceTemplates",
                    asks,
                    deadline,
                )
                .await
                .unwrap_or_default();
        }
        Ok(listing)
    }

    async fn discover(&self, deadline: Instant) -> Result<Value, UpstreamError> {
        let id = self.fresh_id();
        let message = json!({
            "jsonrpc": "2.0", "id": id, "method": "server/discover",
            "params": { "_meta": gateway_meta() },
        });
        let modern = HeaderValue::from_static(protocol::MODERN);
        let reply = self
            .exchange(&message, Some(&modern), None, &[], deadline, None)
            .await?;
        let response = single_response(reply, &id).await?;
        let result = response_result(response)?;
        let supports_modern = result
            .get("supportedVersions")
            .and_then(Value::as_array)
            .is_some_and(|v| v.iter().any(|v| v == protocol::MODERN));
        if !supports_modern {
            return Err(UpstreamError::Protocol(
                "no supported modern version".into(),
            ));
        }
        Ok(result
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({})))
    }

    /// The 2025 handshake: `initialize`, then `notifications/initialized`.
    pub(super) async fn initialize(
        &self,
        client: Option<(&Value, &Value)>,
        deadline: Instant,
    ) -> Result<UpstreamSession, UpstreamError> {
        let id = self.fresh_id();
        // A client's own session declares what that client can answer
        // (sampling, elicitation, roots: relayed to it); the gateway's
        // shared session declares nothing, so nothing is asked there.
        let (client_info, capabilities) = match client {
            Some((info, capabilities)) => (Some(info), Relayable::of_declared(capabilities)),
            None => (None, json!({})),
        };
        let message = json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": {
                "protocolVersion": protocol::LEGACY[0],
                "capabilities": capabilities,
                "clientInfo": client_info.cloned().unwrap_or_else(protocol::implementation),
            },
        });
        // Over HTTP+SSE a session is a stream: open it first, and say the
        // initialize on it.
        let connection = match &**self.link() {
            Link::Sse(link) => Some(link.open().await?),
            _ => None,
        };
        // A session on a Kubernetes Service lives on one pod: chosen here.
        let endpoint = self.pick_endpoint()?;
        let opening = UpstreamSession {
            id: None,
            version: HeaderValue::from_static(protocol::LEGACY[0]),
            generation: 0,
            capabilities: Value::Null,
            endpoint,
            sse: connection.clone(),
        };
        let reply = self
            .exchange(
                &message,
                None,
                (connection.is_some() || endpoint.is_some()).then_some(&opening),
                &[],
                deadline,
                None,
            )
            .await?;
        let session_id = match &reply {
            Reply::Json { session_id, .. } | Reply::Stream { session_id, .. } => session_id.clone(),
            Reply::Accepted => None,
        };
        let result = response_result(single_response(reply, &id).await?)?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .filter(|v| protocol::is_legacy(v))
            .ok_or_else(|| {
                UpstreamError::Protocol(format!(
                    "initialize answered an unsupported protocolVersion: {}",
                    result.get("protocolVersion").unwrap_or(&Value::Null)
                ))
            })?;
        // `is_legacy` above matched one of our static version strings.
        let version = protocol::LEGACY
            .iter()
            .find(|known| **known == version)
            .map(|known| HeaderValue::from_static(known))
            .ok_or_else(|| UpstreamError::Protocol("bad protocolVersion".into()))?;
        let session = UpstreamSession {
            id: session_id,
            version,
            generation: self.generation(),
            // Only the gateway's own session needs them (to know what to
            // list); a client's session would just carry them around.
            capabilities: match client {
                None => result
                    .get("capabilities")
                    .cloned()
                    .unwrap_or_else(|| json!({})),
                Some(_) => Value::Null,
            },
            endpoint,
            sse: connection,
        };
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        self.exchange(
            &initialized,
            Some(&session.version),
            Some(&session),
            &[],
            deadline,
            None,
        )
        .await?;
        Ok(session)
    }

    /// Fetches every page of one list.
    async fn list_all(
        &self,
        method: &str,
        key: &str,
        asks: Relayable,
        deadline: Instant,
    ) -> Result<Vec<Value>, UpstreamError> {
        let mut items = Vec::new();
        let mut cursor: Option<Value> = None;
        // A bound on pages, so an upstream that always returns a cursor
        // cannot keep the gateway busy forever.
        for _ in 0..1000 {
            let mut params = json!({});
            if let Some(cursor) = cursor.take() {
                params["cursor"] = cursor;
            }
            let message = json!({
                "jsonrpc": "2.0", "id": self.fresh_id(), "method": method, "params": params,
            });
            let caller = Caller {
                asks,
                ..Caller::default()
            };
            let (reply, id) = self.request(message, &[], caller, deadline).await?;
            let result = response_result(single_response(reply, &id).await?)?;
            if let Some(page) = result.get(key).and_then(Value::as_array) {
                items.extend(page.iter().cloned());
            }
            match result.get("nextCursor") {
                Some(next) if !next.is_null() => cursor = Some(next.clone()),
                _ => return Ok(items),
            }
        }
        Err(UpstreamError::Protocol(format!("{method}: too many pages")))
    }
}

/// The versions a server names in an `UnsupportedProtocolVersion` error
/// (`-32022`, in a 400 or as a JSON-RPC error), if that is what `error` is.
fn versions_offered(error: &UpstreamError) -> Option<Vec<String>> {
    let answer: Value = match error {
        UpstreamError::Rpc(error) => json!({ "error": error }),
        UpstreamError::Status { body, .. } => serde_json::from_str(body).ok()?,
        _ => return None,
    };
    let error = answer.get("error")?;
    if error.get("code").and_then(Value::as_i64)
        != Some(crate::jsonrpc::UNSUPPORTED_PROTOCOL_VERSION)
    {
        return None;
    }
    let versions = error.pointer("/data/supported")?.as_array()?;
    Some(
        versions
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsupported_version_error_names_what_the_server_speaks() {
        let in_a_400 = UpstreamError::Status {
            status: 400,
            body: json!({ "jsonrpc": "2.0", "id": 1, "error": { "code": -32022,
                "message": "Unsupported protocol version", "data": { "supported": ["2026-07-28"] } } })
            .to_string(),
        };
        assert_eq!(
            versions_offered(&in_a_400),
            Some(vec!["2026-07-28".to_string()])
        );
        let as_rpc = UpstreamError::Rpc(json!({ "code": -32022, "message": "no",
            "data": { "supported": ["2025-06-18"] } }));
        assert_eq!(
            versions_offered(&as_rpc),
            Some(vec!["2025-06-18".to_string()])
        );
        let other = UpstreamError::Rpc(json!({ "code": -32601, "message": "Method not found" }));
        assert_eq!(versions_offered(&other), None);
        assert_eq!(versions_offered(&UpstreamError::Timeout), None);
    }
}
