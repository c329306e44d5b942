//! The HTTP edge: accepts connections, checks `Host`/`Origin`, and sends
//! each request to the health endpoints or the protocol front.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::front::{Body, Front, Rejection, json_response};
use crate::jsonrpc;

pub struct Edge {
    pub front: Arc<Front>,
    /// Browser origins allowed besides loopback ones.
    pub allowed_origins: Vec<String>,
    /// Bound to loopback: then `Host` must name loopback too (DNS rebinding).
    pub loopback_only: bool,
}

impl Edge {
    pub async fn handle(&self, request: hyper::Request<Incoming>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        match path.as_str() {
            "/healthz" => return text(StatusCode::OK, "ok\n"),
            "/status" => {
                let with_tools = request
                    .uri()
                    .query()
                    .is_some_and(|q| q.split('&').any(|p| p == "tools=true"));
                let body = crate::status::document(&self.front, with_tools).to_string();
                return json_response(StatusCode::OK, Bytes::from(body));
            }
            "/" => {
                let mut response = json_response(
                    StatusCode::OK,
                    Bytes::from_static(crate::status::PAGE.as_bytes()),
                );
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/html; charset=utf-8"),
                );
                return response;
            }
            "/metrics" => {
                let body = crate::status::metrics(&self.front);
                let mut response = json_response(StatusCode::OK, Bytes::from(body));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                return response;
            }
            "/readyz" if self.front.pool.ready() => return text(StatusCode::OK, "ready\n"),
            "/readyz" => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: Kubernetes discovery has not synced yet\n",
                );
            }
            _ => {}
        }
        // `/mcp`, `/sse`, `/message`, each also as `/servers/{name}/…`.
        let (scope, endpoint) = match path.strip_prefix("/servers/") {
            Some(rest) => match rest.rsplit_once('/') {
                Some((name, endpoint)) => (Some(name.to_owned()), endpoint),
                None => {
                    return text(
                        StatusCode::NOT_FOUND,
                        "not found: the MCP endpoint is /mcp\n",
                    );
                }
            },
            None => (None, path.trim_start_matches('/')),
        };
        if !matches!(endpoint, "mcp" | "sse" | "message") {
            return text(
                StatusCode::NOT_FOUND,
                "not found: the MCP endpoint is /mcp\n",
            );
        }
        if let Some(name) = &scope
            && self.front.pool.upstream(name).is_none()
        {
            return text(StatusCode::NOT_FOUND, "no such server\n");
        }
        if let Err(rejection) = self.check_origin(request.headers()) {
            return rejection.into_response();
        }
        let scope = scope.as_deref();
        let result = match (endpoint, request.method()) {
            ("mcp", _) => return self.front.serve(request, scope).await,
            ("sse", &http::Method::GET) => self.front.open_sse(request.headers(), scope),
            ("message", &http::Method::POST) => self.front.sse_message(request, scope).await,
            _ => {
                let mut response = Rejection::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    jsonrpc::INVALID_REQUEST,
                    "GET /sse opens the stream; POST /message?sessionId=… sends",
                )
                .into_response();
                let allow = if endpoint == "sse" { "GET" } else { "POST" };
                response
                    .headers_mut()
                    .insert(header::ALLOW, http::HeaderValue::from_static(allow));
                return response;
            }
        };
        result.unwrap_or_else(Rejection::into_response)
    }

    /// DNS-rebinding defence: a browser page on another origin must not
    /// reach a gateway on this machine or network.
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let forbidden = |what: &str| {
            Rejection::new(
                StatusCode::FORBIDDEN,
                jsonrpc::INVALID_REQUEST,
                format!("forbidden {what}"),
            )
        };
        if self.loopback_only {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            if !is_loopback_authority(host) {
                return Err(forbidden("Host"));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let allowed = origin.split_once("://").is_some_and(|(scheme, authority)| {
                (scheme == "http" || scheme == "https") && is_loopback_authority(authority)
            }) || self.allowed_origins.iter().any(|o| o == origin);
            if !allowed {
                return Err(forbidden("Origin"));
            }
        }
        Ok(())
    }
}

fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = json_response(status, Bytes::from_static(body.as_bytes()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    response
}

/// How long in-flight calls get to finish once shutdown begins; long-lived
/// streams (GET, subscriptions/listen, HTTP+SSE) are cut at the end of it.
pub const DRAIN: Duration = Duration::from_secs(20);

/// Serves connections until `shutdown` resolves, then stops accepting and
/// lets the requests in flight finish (up to [`DRAIN`]): a rolling update
/// of the gateway loses no call.
pub async fn run(
    listener: TcpListener,
    edge: Arc<Edge>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accept failed: {error}");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let edge = edge.clone();
        let service = service_fn(move |request| {
            let edge = edge.clone();
            async move { Ok::<_, std::convert::Infallible>(edge.handle(request).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service);
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, "connection ended: {error}");
            }
        });
    }
    drop(listener);
    tracing::info!("no longer accepting; letting calls in flight finish");
    tokio::select! {
        _ = connections.shutdown() => tracing::info!("all connections finished"),
        _ = tokio::time::sleep(DRAIN) => tracing::warn!("connections still open after {DRAIN:?}; closing them"),
    }
}
