//! TLS for `msrps:` URIs (RFC 4975 14): the certificate, key and trust
//! anchors from files, turned into the rustls configurations every shard
//! shares, and certificate fingerprints as SDP carries them (RFC 8122).
//! The handshake itself is driven by the shard's driver over its own
//! buffers (`shard/tls_io.rs`); nothing here does IO beyond reading files.

mod fingerprint;
mod verify;

pub use fingerprint::{Fingerprint, FingerprintError, FingerprintHash};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The files `--tls-cert`, `--tls-key`, `--tls-client-ca` and `--tls-ca`
/// name.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates are required and verified against these roots.
    pub client_ca: Option<PathBuf>,
    /// Roots that verify a peer we connect to.
    pub ca: Option<PathBuf>,
}

/// Why the TLS files do not make a configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {error}")]
    Read {
        what: &'static str,
        path: PathBuf,
        error: String,
    },
    #[error("{what} {path} holds no PEM certificate")]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("the key {path} does not fit the certificate or is not usable: {error}")]
    Key { path: PathBuf, error: rustls::Error },
    #[error("the CA bundle {path}: {error}")]
    Roots { path: PathBuf, error: String },
}

/// What every shard handshakes with; swapped whole on reload.
#[derive(Clone, Debug)]
pub struct TlsConfigs {
    /// For connections accepted on `--tls-listen`.
    pub server: Arc<ServerConfig>,
    /// For connections to `msrps:` peers; its resumption store is shared.
    pub client: Arc<ClientConfig>,
    /// Our certificate's sha-256 fingerprint, for the application's SDP
    /// `a=fingerprint` (RFC 8122 5).
    pub local_fingerprint: Fingerprint,
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |error: String| TlsError::Read {
        what,
        path: path.to_path_buf(),
        error,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("CA bundle", path)? {
        roots.add(cert).map_err(|error| TlsError::Roots {
            path: path.to_path_buf(),
            error: error.to_string(),
        })?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// RFC 4975 14 asks for TLS; we speak 1.2 and 1.3 and nothing older.
const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

impl TlsConfigs {
    /// The client configuration for a peer whose certificate the
    /// signaling named by `fingerprint`: it alone decides (RFC 8122 5).
    /// Its own resumption store, so that a session resumed from a
    /// connection verified another way never stands in for the check.
    pub fn client_for(&self, fingerprint: &Fingerprint) -> Arc<ClientConfig> {
        let mut config = (*self.client).clone();
        config.resumption = rustls::client::Resumption::in_memory_sessions(16);
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(verify::FingerprintVerifier {
                expected: fingerprint.clone(),
                provider: provider(),
            }));
        Arc::new(config)
    }

    /// Reads the files; every failure says which file and why.
    pub fn load(files: &TlsFiles) -> Result<TlsConfigs, TlsError> {
        let chain = certificates("certificate", &files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Read {
            what: "key",
            path: files.key.clone(),
            error: e.to_string(),
        })?;
        let local_fingerprint = Fingerprint::of(FingerprintHash::Sha256, &chain[0]);
        let key_error = |error| TlsError::Key {
            path: files.key.clone(),
            error,
        };
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(key_error)?;
        let builder = match &files.client_ca {
            Some(path) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots(path)?),
                    provider(),
                )
                .build()
                .map_err(|error| TlsError::Roots {
                    path: path.clone(),
                    error: error.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        // The default session cache (RFC 8446 2.2 resumption by ticket id,
        // RFC 5246 session ids) lets a returning peer resume.
        let server = builder
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(key_error)?;
        let client_roots = match &files.ca {
            Some(path) => roots(path)?,
            None => RootCertStore::empty(),
        };
        let client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(key_error)?
            .with_root_certificates(client_roots)
            .with_client_auth_cert(chain, key)
            .map_err(key_error)?;
        Ok(TlsConfigs {
            server: Arc::new(server),
            client: Arc::new(client),
            local_fingerprint,
        })
    }
}
