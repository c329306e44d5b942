//! The HTTP edge: accepts connections, checks `Host`/`Origin`, and sends
//! each request to the health endpoints or the protocol front.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::auth::rate_limit::RateLimiter;
use crate::auth::{Auth, Caller};
use crate::cluster_tools::{self, ClusterTools};
use crate::config::{Config, Limits};
use crate::front::Front;
use crate::front::notifications::Listeners;
use crate::front::sealed::Sealer;
use crate::jsonrpc::{self, RpcError};
use crate::net::response::json_response;
use crate::net::{Body, Rejection};
use crate::pool::{Origin, Pool};
use crate::sessions::Sessions;

pub struct Edge {
    pub front: Arc<Front>,
    /// Browser origins allowed besides loopback ones.
    pub allowed_origins: Vec<String>,
    /// Bound to loopback: then `Host` must name loopback too (DNS rebinding).
    pub loopback_only: bool,
    /// Client authentication and authorization; `None`: open (loopback or
    /// `--insecure-no-auth`).
    pub auth: Option<Auth>,
    pub rate_limiter: Option<RateLimiter>,
    /// Served over TLS (for the URLs the gateway gives out).
    pub tls: bool,
}

/// The MCP endpoints, each also under `/servers/{name}/`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// Streamable HTTP (both eras).
    Mcp,
    /// The 2024-11-05 HTTP+SSE stream.
    Sse,
    /// Where HTTP+SSE clients post.
    Message,
}

/// The caller when auth is off.
static ANYONE: std::sync::LazyLock<Arc<Caller>> =
    std::sync::LazyLock::new(|| Arc::new(Caller::Anyone));

const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

impl Edge {
    pub async fn handle(&self, request: hyper::Request<Incoming>, peer: IpAddr) -> Response<Body> {
        let path = request.uri().path();
        match path {
            "/healthz" => return text(StatusCode::OK, "ok\n"),
            // The page holds no data (it reads /status, which needs a
            // credential when auth is on), so a browser can load it bare.
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
            "/readyz" => {
                return match self.front.pool.readiness() {
                    Ok(()) => text(StatusCode::OK, "ready\n"),
                    Err(why) => text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {why}\n"),
                    ),
                };
            }
            _ => {}
        }
        if let Some(suffix) = path.strip_prefix(METADATA_PATH) {
            return match &self.auth {
                // RFC 9728 §3.1: the resource's path follows the well-known one.
                Some(auth) if suffix.is_empty() || suffix.starts_with('/') => {
                    let resource_path = if suffix.is_empty() { "/mcp" } else { suffix };
                    auth.metadata(request.headers(), self.tls, resource_path)
                }
                _ => text(
                    StatusCode::NOT_FOUND,
                    "not found: this gateway has no auth configured\n",
                ),
            };
        }
        let open_metrics = path == "/metrics" && self.auth.as_ref().is_some_and(Auth::open_metrics);
        let caller = match &self.auth {
            Some(auth) if !open_metrics => match auth.authenticate(request.headers()).await {
                Ok(principal) => {
                    tracing::debug!(subject = %principal.subject, method = principal.method, %path, "authenticated");
                    Arc::new(Caller::Authenticated {
                        principal,
                        rules: auth.rules.clone(),
                    })
                }
                Err(failure) => {
                    self.front.pool.metrics.auth_failure(failure);
                    // The reason and the peer, never the credential.
                    tracing::info!(reason = failure.reason(), %peer, %path, "request refused: credentials");
                    return auth.refusal(request.headers(), self.tls, failure);
                }
            },
            _ => ANYONE.clone(),
        };
        match path {
            "/status" => {
                let with_tools = request
                    .uri()
                    .query()
                    .is_some_and(|q| q.split('&').any(|p| p == "tools=true"));
                let body = crate::status::document(&self.front, with_tools).to_string();
                return json_response(StatusCode::OK, Bytes::from(body));
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
            _ => {}
        }
        // `/mcp`, `/sse`, `/message`, each also as `/servers/{name}/…`.
        let (scope, endpoint) = match path.strip_prefix("/servers/") {
            Some(rest) => match rest.rsplit_once('/') {
                Some((name, endpoint)) => (Some(name), endpoint),
                None => {
                    return text(
                        StatusCode::NOT_FOUND,
                        "not found: the MCP endpoint is /mcp\n",
                    );
                }
            },
            None => (None, path.trim_start_matches('/')),
        };
        let endpoint = match endpoint {
            "mcp" => Endpoint::Mcp,
            "sse" => Endpoint::Sse,
            "message" => Endpoint::Message,
            _ => {
                return text(
                    StatusCode::NOT_FOUND,
                    "not found: the MCP endpoint is /mcp\n",
                );
            }
        };
        if let Some(name) = &scope
            && self.front.pool.upstream(name).is_none()
        {
            return text(StatusCode::NOT_FOUND, "no such server\n");
        }
        if let Err(rejection) = self.check_origin(request.headers()) {
            return rejection.into_response();
        }
        if let Some(limiter) = &self.rate_limiter {
            let taken = match caller.subject() {
                Some(subject) => limiter.take(subject),
                None => limiter.take(&peer.to_string()),
            };
            if let Err(wait) = taken {
                self.front.pool.metrics.rate_limited();
                return too_many_requests(wait);
            }
        }
        // Owned only for `/servers/{name}/…`, so that the request can move on.
        let scope = scope.map(str::to_owned);
        let scope = scope.as_deref();
        let result = match (endpoint, request.method()) {
            (Endpoint::Mcp, _) => return self.front.serve(request, scope, &caller).await,
            (Endpoint::Sse, &http::Method::GET) => {
                self.front.open_sse(request.headers(), scope, &caller)
            }
            (Endpoint::Message, &http::Method::POST) => {
                self.front.sse_message(request, scope, caller).await
            }
            _ => {
                let allow = if endpoint == Endpoint::Sse {
                    "GET"
                } else {
                    "POST"
                };
                return crate::net::response::method_not_allowed(
                    "GET /sse opens the stream; POST /message?sessionId=… sends",
                    allow,
                );
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

/// Builds the gateway from a validated config: client authentication,
/// the upstream pool with the file's upstreams (and the cluster tools when
/// there is cluster access), the protocol front and its background tasks.
/// Listening, discovery and shutdown are the caller's (the `serve` command;
/// the fuzz harness serves in-memory connections instead).
pub async fn assemble(
    config: &Config,
    loopback_only: bool,
    tls: bool,
) -> anyhow::Result<Arc<Edge>> {
    use anyhow::Context;
    let security = &config.security;
    let auth = match &security.auth {
        None => None,
        Some(settings) => {
            let kube = match settings.kubernetes {
                None => None,
                Some(_) => Some(kube::Client::try_default().await.context(
                    "auth.kubernetes: no cluster access to review service-account tokens",
                )?),
            };
            let rules = crate::auth::Rules::new(
                security.authorization.clone(),
                ClusterTools::ACTIONS
                    .iter()
                    .map(|action| format!("{}{action}", cluster_tools::PREFIX))
                    .collect(),
            );
            if rules.is_empty() {
                tracing::warn!(
                    "auth is on but `authorization` has no rules: callers are authenticated and see no tools"
                );
            }
            Some(Auth::new(settings.clone(), rules, kube).map_err(anyhow::Error::msg)?)
        }
    };
    let pool = Pool::new(config.health);
    pool.apply(Origin::ConfigFile, config.upstreams.clone())
        .await;
    if let Some(settings) = config.cluster_tools.clone() {
        match kube::Client::try_default().await {
            Ok(client) => {
                // Weak: the pool holds the tools as its in-process upstream.
                let weak = Arc::downgrade(&pool);
                let reports =
                    Box::new(move || weak.upgrade().map_or_else(Vec::new, |p| p.reports()));
                let tools = ClusterTools::new(client, settings, reports);
                pool.serve_in_process("cluster", cluster_tools::PREFIX, tools)
                    .await;
            }
            Err(error) => tracing::warn!("the cluster_ tools are off: no cluster access ({error})"),
        }
    }
    let listeners = Arc::new(Listeners::default());
    tokio::spawn(listeners.clone().run(pool.subscribe()));
    let front = Arc::new(Front {
        pool,
        sessions: Sessions::default(),
        listeners,
        sse_streams: Default::default(),
        sealer: config
            .sealing
            .as_ref()
            .map(|s| Sealer::new(&s.key, &s.previous_keys, s.max_age)),
        max_body_bytes: config.max_body_bytes,
        body_idle_timeout: security.limits.idle_timeout,
        tracer: match &config.traces {
            None => None,
            Some(settings) => Some(
                crate::traces::Tracer::start(settings)
                    .map_err(|e| anyhow::anyhow!("traces.caFile: {e}"))?,
            ),
        },
    });
    tokio::spawn(
        front
            .clone()
            .expire_idle_sessions(config.session_idle_timeout),
    );
    Ok(Arc::new(Edge {
        front,
        allowed_origins: config.allowed_origins.clone(),
        loopback_only,
        auth,
        rate_limiter: security.rate_limit.map(RateLimiter::new),
        tls,
    }))
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

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = json_response(status, body.into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    response
}

fn too_many_requests(wait: Duration) -> Response<Body> {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let body = RpcError::new(
        jsonrpc::RATE_LIMITED,
        format!("Too many requests: retry in {seconds} s"),
    )
    .response(None)
    .to_string();
    let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, Bytes::from(body));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// How long in-flight calls get to finish once shutdown begins; long-lived
/// streams (GET, subscriptions/listen, HTTP+SSE) are cut at the end of it.
pub const DRAIN: Duration = Duration::from_secs(20);

/// Where connections come from: the socket, TLS when configured, and the
/// limits every connection is held to.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub limits: Limits,
}

/// Serves connections until `shutdown` resolves, then stops accepting and
/// lets the requests in flight finish (up to [`DRAIN`]): a rolling update
/// of the gateway loses no call.
pub async fn run(
    listener: Listener,
    edge: Arc<Edge>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let connections = GracefulShutdown::new();
    let http1 = Arc::new(http1(&listener.limits));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
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
        let http1 = http1.clone();
        let watcher = connections.watcher();
        match &listener.tls {
            None => {
                tokio::spawn(serve_connection(stream, peer, edge, http1, watcher));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let handshake_timeout = listener.limits.header_read_timeout;
                tokio::spawn(async move {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_connection(tls, peer, edge, http1, watcher).await,
                        Ok(Err(error)) => tracing::debug!(%peer, "TLS handshake failed: {error}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    // One of these per serving runtime.
    let runtime = crate::runtimes::current();
    tracing::info!(
        runtime,
        "no longer accepting; letting calls in flight finish"
    );
    tokio::select! {
        _ = connections.shutdown() => tracing::info!(runtime, "all connections finished"),
        _ = tokio::time::sleep(DRAIN) => tracing::warn!(runtime, "connections still open after {DRAIN:?}; closing them"),
    }
}

/// The HTTP/1.1 connection settings every connection gets.
pub fn http1(limits: &Limits) -> hyper::server::conn::http1::Builder {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    // Slow clients cannot hold a connection: the head must arrive in time,
    // and the same timer closes a kept-alive connection left idle.
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    http1
}

/// Serves one accepted connection (TCP, TLS, or in memory) until it ends.
pub async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    edge: Arc<Edge>,
    http1: Arc<hyper::server::conn::http1::Builder>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let edge = edge.clone();
        async move { Ok::<_, std::convert::Infallible>(edge.handle(request, peer.ip()).await) }
    });
    let connection = http1.serve_connection(TokioIo::new(stream), service);
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, "connection ended: {error}");
    }
}
