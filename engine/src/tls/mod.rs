//! TLS for `msrps:` URIs (RFC 4975 14): the certificate, key and trust
//! anchors from files, turned into the rustls configurations every shard
//! shares, and certificate fingerprints as SDP carries them (RFC 8122).
//! The handshake itself is driven by the shard's driver over its own
//! buffers (`shard/tls_io.rs`); nothing here does IO beyond reading files.

mod fingerprint;
mod verify;

pub use fingerprint::{Fingerprint, FingerprintError, FingerprintHash};
pub(crate) use verify::check_client;

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
    /// TLS sessions kept for resumption, on each side (servers: the peers
    /// that may resume with us; clients: the servers we may resume with);
    /// 0 turns resumption off.
    pub session_cache: usize,
}

/// `--tls-session-cache`'s default: rustls's own.
pub const SESSION_CACHE_DEFAULT: usize = 256;

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

/// ring's suites, AES-128-GCM first: ring seals AES-GCM with AES-NI and
/// CLMUL where the CPU has them, and the 128-bit key's ten rounds cost less
/// than the 256-bit key's fourteen; ChaCha20-Poly1305 stays for peers
/// without AES hardware (RFC 8446 9.1 makes AES-128-GCM the one suite every
/// TLS 1.3 peer has). Both sides (ours and msrp-loadgen's) use it, and the
/// server picks by its own order (`ignore_client_order`).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::cipher_suite as suite;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS13_AES_256_GCM_SHA384,
        suite::TLS13_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(provider)
}

/// The protocol versions we speak (RFC 4975 14 asks for TLS; nothing
/// older than 1.2).
pub fn versions() -> &'static [&'static rustls::SupportedProtocolVersion] {
    VERSIONS
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
            // RFC 8122 5 on the passive side: a certificate is asked for,
            // and compared with the claimed session's fingerprint.
            None => builder
                .with_client_cert_verifier(Arc::new(verify::ClientCertificateAsked { provider: provider() })),
        };
        let mut server = builder
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(key_error)?;
        server.ignore_client_order = true;
        // Resumption (RFC 8446 2.2 by ticket id, RFC 5246 7.4.1.2 by session
        // id): one bounded store that every shard's handshakes share, not one
        // per shard. SO_REUSEPORT spreads a returning peer's connections over
        // the shards by their addresses' hash, so with N shards a per-shard
        // store would resume one reconnection in N; the store is touched
        // once per handshake, never per record, so its lock costs nothing
        // the handshake does not dwarf. 0: no resumption.
        server.session_storage = match files.session_cache {
            0 => Arc::new(rustls::server::NoServerSessionStorage {}),
            n => rustls::server::ServerSessionMemoryCache::new(n),
        };
        server.send_tls13_tickets = match files.session_cache {
            0 => 0,
            _ => server.send_tls13_tickets,
        };
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
        let mut client = client;
        client.resumption = match files.session_cache {
            0 => rustls::client::Resumption::disabled(),
            n => rustls::client::Resumption::in_memory_sessions(n),
        };
        Ok(TlsConfigs {
            server: Arc::new(server),
            client: Arc::new(client),
            local_fingerprint,
        })
    }
}
