//! A 2024-11-05 HTTP+SSE upstream: `GET` on its URL opens an event stream
//! whose first `endpoint` event names where to POST messages; every answer
//! comes back on that stream. One stream is one upstream session, so each
//! session ([`super::session::UpstreamSession`]) owns its connection, and
//! a lost stream is a lost session (re-established by the caller).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::UpstreamError;
use super::duplex::{Duplex, Outlet};
use super::http::{HttpLink, classify_send_error};
use crate::net::HttpClient;
use crate::sse;

/// How long the upstream has to name its message endpoint.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SseLink {
    name: String,
    client: HttpClient,
    url: Uri,
    headers: HeaderMap,
}

/// One open stream: the session's channel both ways.
pub struct SseConnection {
    poster: Poster,
    pub duplex: Arc<Duplex>,
    reader: AbortHandle,
    /// Counts the connection while it is open.
    _held: crate::metrics::Held,
}

impl Drop for SseConnection {
    fn drop(&mut self) {
        // Closing the stream ends the session upstream.
        self.reader.abort();
    }
}

impl std::fmt::Debug for SseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseConnection")
            .field("post", &self.poster.uri)
            .finish()
    }
}

impl PartialEq for SseConnection {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for SseConnection {}

/// POSTs messages to the endpoint the stream named.
#[derive(Clone)]
struct Poster {
    client: HttpClient,
    uri: Uri,
    headers: HeaderMap,
}

impl Outlet for Poster {
    async fn send(&self, message: &Value) -> Result<(), UpstreamError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(message.to_string())))
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        request
            .headers_mut()
            .extend(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|e| classify_send_error(&e))?;
        let status = response.status();
        if status == http::StatusCode::NOT_FOUND {
            return Err(UpstreamError::SessionLost);
        }
        if !status.is_success() {
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(UpstreamError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            });
        }
        Ok(())
    }
}

impl Outlet for SseConnection {
    async fn send(&self, message: &Value) -> Result<(), UpstreamError> {
        self.poster.send(message).await
    }
}

impl SseLink {
    /// The upstream that `http` speaks to, with the 2024-11-05 HTTP+SSE
    /// transport (same client, URL and credentials).
    pub fn beside(http: &HttpLink, name: String) -> SseLink {
        let (client, url, headers) = http.parts();
        SseLink::new(name, client.clone(), url.clone(), headers.clone())
    }

    pub fn new(name: String, client: HttpClient, url: Uri, headers: HeaderMap) -> SseLink {
        SseLink {
            name,
            client,
            url,
            headers,
        }
    }

    /// Opens a stream and waits for its endpoint: a new session's channel.
    pub async fn open(&self) -> Result<Arc<SseConnection>, UpstreamError> {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(self.url.clone())
            .header(header::ACCEPT, "text/event-stream")
            .body(Full::new(Bytes::new()))
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        request
            .headers_mut()
            .extend(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let response = tokio::time::timeout(ENDPOINT_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|e| classify_send_error(&e))?;
        let is_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if !response.status().is_success() || !is_stream {
            return Err(UpstreamError::Status {
                status: response.status().as_u16(),
                body: "GET did not open an event stream".into(),
            });
        }
        let duplex = Arc::new(Duplex::new("connection"));
        let (endpoint_tx, endpoint_rx) = oneshot::channel();
        let reader = tokio::spawn(read_stream(
            self.name.clone(),
            response.into_body(),
            duplex.clone(),
            endpoint_tx,
            Poster {
                client: self.client.clone(),
                uri: self.url.clone(),
                headers: self.headers.clone(),
            },
            self.url.clone(),
        ))
        .abort_handle();
        let uri = match tokio::time::timeout(ENDPOINT_TIMEOUT, endpoint_rx).await {
            Ok(Ok(uri)) => uri,
            _ => {
                reader.abort();
                return Err(UpstreamError::Protocol(
                    "the event stream named no message endpoint".into(),
                ));
            }
        };
        Ok(Arc::new(SseConnection {
            poster: Poster {
                client: self.client.clone(),
                uri,
                headers: self.headers.clone(),
            },
            duplex,
            reader,
            _held: crate::metrics::Live::SseUpstreamConnection.held(),
        }))
    }
}

/// Resolves the endpoint event's URI against the stream's URL, refusing
/// another origin (a hostile upstream must not point the gateway's
/// credentials elsewhere).
fn resolve(base: &Uri, endpoint: &str) -> Option<Uri> {
    let endpoint = endpoint.trim();
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        let uri: Uri = endpoint.parse().ok()?;
        return (uri.scheme() == base.scheme() && uri.authority() == base.authority())
            .then_some(uri);
    }
    let path = if endpoint.starts_with('/') {
        endpoint.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/{endpoint}")
    };
    Uri::builder()
        .scheme(base.scheme()?.clone())
        .authority(base.authority()?.clone())
        .path_and_query(path)
        .build()
        .ok()
}

async fn read_stream(
    name: String,
    mut body: hyper::body::Incoming,
    duplex: Arc<Duplex>,
    endpoint: oneshot::Sender<Uri>,
    mut poster: Poster,
    base: Uri,
) {
    let mut endpoint = Some(endpoint);
    let mut decoder = sse::Decoder::default();
    let mut events = Vec::new();
    'stream: while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if decoder.push(&data, &mut events).is_err() {
            break;
        }
        for event in events.drain(..) {
            match event.event.as_deref() {
                Some("endpoint") => {
                    let Some(uri) = resolve(&base, &event.data) else {
                        tracing::warn!(upstream = %name, "refusing message endpoint {:?}", event.data);
                        break 'stream;
                    };
                    poster.uri = uri.clone();
                    if let Some(endpoint) = endpoint.take() {
                        let _ = endpoint.send(uri);
                    }
                }
                None | Some("message") => {
                    let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                        continue;
                    };
                    if let Some(answer) = duplex.dispatch(message).await {
                        let _ = poster.send(&answer).await;
                    }
                }
                Some(_) => {}
            }
        }
    }
    duplex.close();
    tracing::debug!(upstream = %name, "HTTP+SSE stream ended");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_endpoints_on_the_same_origin_only() {
        let base: Uri = "http://127.0.0.1:8000/sse".parse().unwrap();
        let at = |e: &str| resolve(&base, e).map(|u| u.to_string());
        assert_eq!(
            at("/messages/?session_id=1").as_deref(),
            Some("http://127.0.0.1:8000/messages/?session_id=1")
        );
        assert_eq!(
            at("message?sessionId=2").as_deref(),
            Some("http://127.0.0.1:8000/message?sessionId=2")
        );
        assert_eq!(
            at("http://127.0.0.1:8000/m").as_deref(),
            Some("http://127.0.0.1:8000/m")
        );
        assert_eq!(at("http://evil.example/m"), None);
    }
}
