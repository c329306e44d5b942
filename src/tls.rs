//! Serving TLS: the certificate and key are read from files and read
//! again whenever either file changes, so a cert-manager rotation (a new
//! Secret projected into the pod) needs no restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsSettings;

/// How often the files are checked for a change.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The certificate being served, swapped in place on reload.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl ReloadingCert {
    /// Re-reads the files whenever their modification time or size
    /// changes; a bad new pair is logged and the old one kept.
    pub async fn watch(self: Arc<Self>) {
        let mut seen = stamps(&self.cert_file, &self.key_file);
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let now = stamps(&self.cert_file, &self.key_file);
            if now == seen {
                continue;
            }
            seen = now;
            match load(&self.cert_file, &self.key_file) {
                Ok(key) => {
                    self.current.store(Arc::new(key));
                    tracing::info!(cert = %self.cert_file.display(), "TLS certificate reloaded");
                }
                Err(error) => {
                    tracing::warn!("TLS certificate not reloaded, the previous one stays: {error}")
                }
            }
        }
    }
}

/// The acceptor for `settings` and the certificate it serves.
pub fn acceptor(settings: &TlsSettings) -> Result<(TlsAcceptor, Arc<ReloadingCert>), String> {
    let resolver = Arc::new(ReloadingCert {
        cert_file: settings.cert_file.clone(),
        key_file: settings.key_file.clone(),
        current: ArcSwap::from_pointee(load(&settings.cert_file, &settings.key_file)?),
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), resolver))
}

fn load(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls.certFile {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls.certFile {}: no PEM certificate",
            cert_file.display()
        ));
    }
    // The key's content never reaches an error message.
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|_| {
        format!(
            "tls.keyFile {}: no readable PEM private key",
            key_file.display()
        )
    })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| format!("tls.keyFile {}: unsupported key type", key_file.display()))?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|_| {
        format!(
            "tls: {} does not match the key in {}",
            cert_file.display(),
            key_file.display()
        )
    })?;
    Ok(certified)
}

fn stamps(cert_file: &Path, key_file: &Path) -> [Option<(SystemTime, u64)>; 2] {
    let stamp = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    [stamp(cert_file), stamp(key_file)]
}
