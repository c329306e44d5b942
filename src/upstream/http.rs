//! Streamable HTTP toward one upstream (both eras): one POST per message,
//! the answer either a JSON body or an event stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::endpoints::Endpoints;
use super::{InFlight, Reply, UpstreamError};
use crate::net::HttpClient;
use crate::protocol::{HEADER_METHOD, HEADER_NAME, HEADER_PROTOCOL_VERSION, HEADER_SESSION_ID};
use crate::sse;

/// A request's event stream that breaks before its response is resumed at
/// most this often.
const MAX_RESUMES: u32 = 3;

/// The wait before resuming when the upstream named none.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);

/// Largest JSON body accepted from an upstream.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Headers of one outbound POST besides the configured ones.
#[derive(Debug, Default)]
pub struct PostHeaders<'a> {
    pub version: Option<&'a HeaderValue>,
    pub session: Option<&'a HeaderValue>,
    pub method: Option<&'a str>,
    pub name: Option<&'a str>,
    pub forwarded: &'a [(HeaderName, HeaderValue)],
    /// The pod a session is pinned to (Kubernetes upstreams).
    pub endpoint: Option<SocketAddr>,
}

pub struct HttpLink {
    client: HttpClient,
    uri: Uri,
    /// Configured headers (this upstream's own credentials).
    headers: Arc<HeaderMap>,
    /// Set for a Kubernetes Service: requests go to its ready pods.
    endpoints: Option<Arc<Endpoints>>,
}

impl HttpLink {
    /// The client, URL and configured headers, for the same upstream
    /// spoken to with the 2024-11-05 transport (see `SseLink::beside`).
    pub(super) fn parts(&self) -> (&HttpClient, &Uri, &HeaderMap) {
        (&self.client, &self.uri, &*self.headers)
    }

    pub fn new(
        client: HttpClient,
        url: &str,
        headers: &[(String, String)],
        endpoints: Option<Arc<Endpoints>>,
    ) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!("{url}: not an http(s) URL"));
        }
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let mut value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        Ok(HttpLink {
            client,
            uri,
            headers: Arc::new(map),
            endpoints,
        })
    }

    /// Whether requests go to pods (and sessions are pinned to one).
    pub fn endpoints(&self) -> Option<&Arc<Endpoints>> {
        self.endpoints.as_ref()
    }

    /// Where one request goes: the URL, or for a Kubernetes Service the
    /// pinned pod or else a ready one (same scheme and path).
    fn target(&self, pinned: Option<SocketAddr>) -> Result<Uri, UpstreamError> {
        let Some(endpoints) = &self.endpoints else {
            return Ok(self.uri.clone());
        };
        let endpoint = match pinned {
            Some(endpoint) => endpoint,
            None => endpoints.pick()?,
        };
        let mut parts = self.uri.clone().into_parts();
        parts.authority = Some(
            endpoint
                .to_string()
                .parse()
                .map_err(|e| UpstreamError::Protocol(format!("endpoint {endpoint}: {e}")))?,
        );
        Uri::from_parts(parts).map_err(|e| UpstreamError::Protocol(e.to_string()))
    }

    /// Posts one JSON-RPC message. `expect_id` is the id of the request
    /// (None for notifications and responses); an event stream is read
    /// until the response with that id arrives or `deadline` passes.
    pub async fn post(
        &self,
        body: Bytes,
        headers: &PostHeaders<'_>,
        expect_id: Option<Value>,
        deadline: Instant,
        in_flight: Option<InFlight>,
    ) -> Result<Reply, UpstreamError> {
        let target = self.target(headers.endpoint)?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream");
        let map = request.headers_mut().expect("builder has no error yet");
        map.extend(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(version) = headers.version {
            map.insert(HEADER_PROTOCOL_VERSION, version.clone());
        }
        if let Some(session) = headers.session {
            map.insert(HEADER_SESSION_ID, session.clone());
        }
        if let Some(method) = headers.method.and_then(method_header) {
            map.insert(HEADER_METHOD, method);
        }
        if let Some(name) = headers.name.and_then(|n| HeaderValue::from_str(n).ok()) {
            map.insert(HEADER_NAME, name);
        }
        for (name, value) in headers.forwarded {
            map.insert(name.clone(), value.clone());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;

        let response = match tokio::time::timeout_at(deadline, self.client.request(request)).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(error)) => {
                let error = classify_send_error(&error);
                if matches!(error, UpstreamError::Connect(_)) {
                    // Never reached the upstream: nothing to cancel.
                    if let Some(_in_flight) = in_flight {
                        InFlight::done(_in_flight)
                    }
                }
                return Err(error);
            }
            Ok(Ok(response)) => response,
        };

        let status = response.status();
        let is_stream = is_event_stream(&response);
        // Any answer but an event stream ends the request here.
        let in_flight = match in_flight {
            Some(in_flight) if !(status.is_success() && is_stream) => {
                in_flight.done();
                None
            }
            other => other,
        };
        let session_id = response.headers().get(HEADER_SESSION_ID).cloned();

        if status == StatusCode::ACCEPTED {
            return Ok(Reply::Accepted);
        }
        if status == StatusCode::NOT_FOUND && headers.session.is_some() {
            return Err(UpstreamError::SessionLost);
        }
        if !status.is_success() {
            let body = read_body(response.into_body(), deadline)
                .await
                .unwrap_or_default();
            // A JSON-RPC error for this request (a 2026 upstream answers an
            // unknown method with 404, a missing capability with 400) is an
            // answer to pass on, not a transport failure.
            if let Some(id) = &expect_id {
                let answer: Option<Value> = serde_json::from_slice(&body).ok();
                if answer
                    .as_ref()
                    .is_some_and(|a| a.get("error").is_some() && a.get("id") == Some(id))
                {
                    return Ok(Reply::Json {
                        body,
                        status,
                        session_id,
                    });
                }
            }
            return Err(UpstreamError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            });
        }
        if is_stream {
            let (tx, rx) = mpsc::channel(16);
            // Where a broken event stream of this request resumes: the same
            // target, with the same credentials, session and version.
            let resume = expect_id.is_some().then(|| Resume {
                client: self.client.clone(),
                uri: target,
                headers: self.headers.clone(),
                version: headers.version.cloned(),
                session: headers.session.cloned(),
            });
            tokio::spawn(read_stream(
                response.into_body(),
                tx,
                expect_id,
                deadline,
                in_flight,
                resume,
            ));
            return Ok(Reply::Stream {
                messages: rx,
                session_id,
            });
        }
        let body = read_body(response.into_body(), deadline).await?;
        Ok(Reply::Json {
            body,
            status,
            session_id,
        })
    }

    /// Opens the 2025 GET stream of a session: the upstream's own
    /// notifications. `None` when the upstream offers no such stream.
    pub async fn open_stream(
        &self,
        session: Option<&HeaderValue>,
        version: &HeaderValue,
        endpoint: Option<SocketAddr>,
    ) -> Result<Option<mpsc::Receiver<Result<Value, UpstreamError>>>, UpstreamError> {
        let request = stream_request(
            self.target(endpoint)?,
            &self.headers,
            Some(version),
            session,
            None,
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let response = tokio::time::timeout_at(deadline, self.client.request(request))
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|e| classify_send_error(&e))?;
        let is_stream = is_event_stream(&response);
        if response.status() == StatusCode::NOT_FOUND && session.is_some() {
            return Err(UpstreamError::SessionLost);
        }
        if !response.status().is_success() || !is_stream {
            return Ok(None);
        }
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(read_stream(
            response.into_body(),
            tx,
            None,
            far_future(),
            None,
            None,
        ));
        Ok(Some(rx))
    }

    /// Ends an upstream session (best effort: the upstream may have gone).
    pub async fn delete(
        &self,
        session: &HeaderValue,
        version: &HeaderValue,
        endpoint: Option<SocketAddr>,
    ) {
        let Ok(uri) = self.target(endpoint) else {
            return;
        };
        let request = Request::builder()
            .method(Method::DELETE)
            .uri(uri)
            .header(HEADER_SESSION_ID, session.clone())
            .header(HEADER_PROTOCOL_VERSION, version.clone());
        let mut request = match request.body(Full::new(Bytes::new())) {
            Ok(request) => request,
            Err(_) => return,
        };
        request
            .headers_mut()
            .extend(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.request(request)).await;
    }
}

/// `Mcp-Method`: a known method's value is static, so not copied per request.
fn method_header(method: &str) -> Option<HeaderValue> {
    match crate::protocol::METHODS
        .iter()
        .find(|known| **known == method)
    {
        Some(known) => Some(HeaderValue::from_static(known)),
        None => HeaderValue::from_str(method).ok(),
    }
}

fn is_event_stream<B>(response: &http::Response<B>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"))
}

/// A deadline for streams that stay open as long as the upstream keeps them.
pub fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

pub(super) fn classify_send_error(error: &hyper_util::client::legacy::Error) -> UpstreamError {
    use std::error::Error as _;
    let mut cause = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if error.is_connect() {
        UpstreamError::Connect(cause)
    } else {
        // The request may have reached the upstream before the connection broke.
        UpstreamError::Broken(cause)
    }
}

async fn read_body(body: hyper::body::Incoming, deadline: Instant) -> Result<Bytes, UpstreamError> {
    let collected =
        tokio::time::timeout_at(deadline, Limited::new(body, MAX_RESPONSE_BYTES).collect())
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|e| UpstreamError::Broken(e.to_string()))?;
    Ok(collected.to_bytes())
}

/// What resuming a request's event stream takes (2025-11-25): a stream
/// that ends before the response is not a cancellation; the client waits
/// the server's `retry` delay and asks again with GET and `Last-Event-ID`.
struct Resume {
    client: HttpClient,
    uri: Uri,
    /// The upstream's configured headers (its credentials).
    headers: Arc<HeaderMap>,
    version: Option<HeaderValue>,
    session: Option<HeaderValue>,
}

impl Resume {
    /// The resumed stream's body, if the upstream gives one.
    async fn get(&self, last_event_id: &str, deadline: Instant) -> Option<hyper::body::Incoming> {
        let request = stream_request(
            self.uri.clone(),
            &self.headers,
            self.version.as_ref(),
            self.session.as_ref(),
            Some(last_event_id),
        )
        .ok()?;
        let response = tokio::time::timeout_at(deadline, self.client.request(request))
            .await
            .ok()?
            .ok()?;
        (response.status().is_success() && is_event_stream(&response)).then(|| response.into_body())
    }
}

/// A GET for an event stream: a session's own, or (with `last_event_id`)
/// the rest of a request's stream, with the upstream's configured headers.
fn stream_request(
    uri: Uri,
    configured: &HeaderMap,
    version: Option<&HeaderValue>,
    session: Option<&HeaderValue>,
    last_event_id: Option<&str>,
) -> Result<Request<Full<Bytes>>, UpstreamError> {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::ACCEPT, "text/event-stream")
        .body(Full::new(Bytes::new()))
        .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    let map = request.headers_mut();
    map.extend(configured.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(version) = version {
        map.insert(HEADER_PROTOCOL_VERSION, version.clone());
    }
    if let Some(session) = session {
        map.insert(HEADER_SESSION_ID, session.clone());
    }
    if let Some(id) = last_event_id {
        let id = HeaderValue::from_str(id)
            .map_err(|_| UpstreamError::Protocol("an event id that is no header value".into()))?;
        map.insert(header::HeaderName::from_static("last-event-id"), id);
    }
    Ok(request)
}

/// Decodes an upstream event stream into messages until the response to
/// `expect_id` (or, for a GET stream, until the upstream closes it). A
/// request's stream that ends first is resumed where the upstream allows it
/// (it gave event ids), up to [`MAX_RESUMES`] times.
async fn read_stream(
    mut body: hyper::body::Incoming,
    tx: mpsc::Sender<Result<Value, UpstreamError>>,
    expect_id: Option<Value>,
    deadline: Instant,
    mut in_flight: Option<InFlight>,
    resume: Option<Resume>,
) {
    let mut decoder = sse::Decoder::default();
    let mut events = Vec::new();
    let mut resumed = 0;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, body.frame()) => next,
            // The caller went away: stop reading; dropping `in_flight`
            // tells the upstream.
            _ = tx.closed() => return,
        };
        let frame = match next {
            Err(_) => {
                let _ = tx.send(Err(UpstreamError::Timeout)).await;
                return;
            }
            Ok(None) => {
                if let (Some(resume), Some(last)) = (&resume, decoder.last_event_id())
                    && resumed < MAX_RESUMES
                {
                    let wait = decoder.retry().unwrap_or(DEFAULT_RETRY);
                    tokio::time::sleep_until((Instant::now() + wait).min(deadline)).await;
                    if let Some(resumed_body) = resume.get(last, deadline).await {
                        body = resumed_body;
                        decoder.resume();
                        resumed += 1;
                        continue;
                    }
                }
                if expect_id.is_some() {
                    let cause = "upstream closed the event stream before responding".to_string();
                    let _ = tx.send(Err(UpstreamError::Broken(cause))).await;
                }
                return;
            }
            Ok(Some(Err(e))) => {
                let _ = tx.send(Err(UpstreamError::Broken(e.to_string()))).await;
                return;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if let Err(e) = decoder.push(&data, &mut events) {
            let _ = tx.send(Err(UpstreamError::Protocol(e.to_string()))).await;
            return;
        }
        for event in events.drain(..) {
            if event.data.is_empty() {
                continue; // a priming event (resumability), carries no message
            }
            let message: Value = match serde_json::from_str(&event.data) {
                Ok(message) => message,
                Err(e) => {
                    let cause = format!("upstream sent an event that is not JSON: {e}");
                    let _ = tx.send(Err(UpstreamError::Protocol(cause))).await;
                    return;
                }
            };
            let done = expect_id.is_some()
                && crate::jsonrpc::is_response(&message)
                && message.get("id") == expect_id.as_ref();
            if done && let Some(a) = in_flight.take() {
                InFlight::done(a)
            }
            if tx.send(Ok(message)).await.is_err() || done {
                // The caller went away (client disconnected) or we have the
                // answer: dropping the body closes the upstream stream.
                return;
            }
        }
    }
}
