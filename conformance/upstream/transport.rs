//! Serving an `Upstream`: Streamable HTTP at `/mcp` (optionally over TLS),
//! or stdio.

use std::{convert::Infallible, io::Write as _, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use rmcp::{
    ServiceExt as _,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};

use crate::server::{Shared, Upstream};

type Error = Box<dyn std::error::Error + Send + Sync>;
type HttpResponse = http::Response<BoxBody<Bytes, Infallible>>;

/// A TLS acceptor for `--tls CERT KEY` (the gateway's upstream TLS tests).
fn tls_acceptor(cert: &str, key: &str) -> Result<tokio_rustls::TlsAcceptor, Error> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

pub(crate) async fn serve_http(
    addr: &str,
    stateless: bool,
    tls: Option<(String, String)>,
    shared: Arc<Shared>,
) -> Result<(), Error> {
    let acceptor = match &tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    // The default config keeps rmcp's loopback-only `allowed_hosts`, which is
    // what makes the DNS-rebinding scenario pass. In session mode, 2025 clients
    // get an Mcp-Session-Id and one `Upstream` per session; requests that
    // negotiate 2026-07-28 are served statelessly in either mode.
    let config = StreamableHttpServerConfig::default().with_legacy_session_mode(!stateless);
    let service = StreamableHttpService::new(
        move || Ok(Upstream::new(shared.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );

    let mut stdout = std::io::stdout().lock();
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    writeln!(stdout, "listening on {scheme}://{local}/mcp")?;
    stdout.flush()?;
    drop(stdout);

    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Typically fd exhaustion: keep serving the connections we have.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Event streams go out in several small writes: without this,
        // Nagle and delayed ACKs add about 40 ms to each reused connection's
        // answer.
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(stream, service, peer).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => serve_connection(stream, service, peer).await,
                    Err(error) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                },
            }
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    service: StreamableHttpService<Upstream, LocalSessionManager>,
    peer: std::net::SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let handler = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(route(&service, request).await) }
    });
    if let Err(error) = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), handler)
        .await
    {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Only `/mcp` is an MCP endpoint; anything else is a 404, so a client with a
/// wrong URL fails loudly instead of talking to the right server by accident.
async fn route(
    service: &StreamableHttpService<Upstream, LocalSessionManager>,
    request: http::Request<hyper::body::Incoming>,
) -> HttpResponse {
    if request.uri().path() == "/mcp" {
        return service.handle(request).await;
    }
    let mut response = http::Response::new(Full::new(Bytes::from_static(b"not found\n")).boxed());
    *response.status_mut() = http::StatusCode::NOT_FOUND;
    response
}

pub(crate) async fn serve_stdio(shared: Arc<Shared>) -> Result<(), Error> {
    let running = Upstream::new(shared)
        .serve(rmcp::transport::stdio_pipes())
        .await?;
    running.waiting().await?;
    Ok(())
}
