//! The outgoing HTTP client: connection pools per serving runtime, TLS
//! with the system roots and an optional CA bundle. Upstreams, JWKS
//! fetches and the trace exporter all go out through it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;

type PoolClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Connection pools, one per serving runtime ([`crate::runtimes`]): a
/// request goes out on a connection whose task runs on the same thread, so
/// relaying a call wakes no other thread. One is shared by every upstream
/// that trusts the system roots; an upstream with its own CA or TLS name
/// gets its own.
#[derive(Clone)]
pub struct HttpClient {
    by_runtime: Arc<[PoolClient]>,
}

impl HttpClient {
    pub fn request(
        &self,
        request: Request<Full<Bytes>>,
    ) -> hyper_util::client::legacy::ResponseFuture {
        // A client built before the runtimes started has one pool for all.
        let pool = self
            .by_runtime
            .get(crate::runtimes::current())
            .unwrap_or(&self.by_runtime[0]);
        pool.request(request)
    }
}

/// The client for upstreams that need nothing special.
pub fn client() -> HttpClient {
    build_client(
        tls_config(None).expect("the system roots alone always build"),
        None,
    )
}

/// A client trusting `ca_pem` besides the system roots, and verifying the
/// certificate for `server_name` whatever address is dialed (a pod behind
/// a Service answers with the Service's certificate).
pub fn client_with(ca_pem: Option<&str>, server_name: Option<&str>) -> Result<HttpClient, String> {
    Ok(build_client(tls_config(ca_pem)?, server_name))
}

fn build_client(tls: rustls::ClientConfig, server_name: Option<&str>) -> HttpClient {
    HttpClient {
        by_runtime: (0..crate::runtimes::count())
            .map(|_| build_pool(tls.clone(), server_name))
            .collect(),
    }
}

fn build_pool(tls: rustls::ClientConfig, server_name: Option<&str>) -> PoolClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    // TLS is layered above: the TCP connector must accept https URIs.
    connector.enforce_http(false);
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let builder = match server_name
        .and_then(|name| rustls::pki_types::ServerName::try_from(name.to_string()).ok())
    {
        Some(name) => {
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(builder.enable_http1().wrap_connector(connector))
}

/// The system's trusted roots, read once.
fn system_roots() -> &'static [rustls::pki_types::CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            tracing::warn!("no system CA certificates found; https upstreams need a caFile");
        }
        found.certs
    })
}

fn tls_config(ca_pem: Option<&str>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    // Unparseable system certificates are skipped, as browsers do.
    let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(pem) = ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("CA bundle: {e}"))?;
            roots.add(cert).map_err(|e| format!("CA bundle: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("CA bundle: no PEM certificate found".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
