//! SIP over TLS (RFC 3261 26.2.1, `--sip tls:ADDR`): a listener whose
//! connections, once their handshake is done, are streams like TCP's
//! (`net::run_stream`, a `ConnId`, framed by Content-Length, RFC 3261
//! 18.3), and the connections we open for our requests, the server's
//! certificate verified against `--sip-ca` for the host of the URI
//! (RFC 5922 7.1: the name is the URI's host; an IP literal matches an
//! iPAddress subjectAltName). Without `--sip-ca` no outbound TLS
//! connection is made: it fails with the reason, never unverified.
//!
//! Handshakes run as tasks of their own, at most `HANDSHAKES_MAX` at once
//! (accepted ones) and each within `HANDSHAKE_TIMEOUT`, as for HTTPS
//! (`rest::tls`). TLS 1.2 and 1.3 only, ring as elsewhere in the project.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{version, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::net::{connect_failed, run_stream};
use super::Input;
use crate::sip::{ConnId, Transport};

/// Handshakes in progress at once on the listener; beyond it, accepted
/// connections wait.
const HANDSHAKES_MAX: usize = 256;
/// A peer that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The files of SIP over TLS (`--sip-cert`, `--sip-key`, `--sip-ca`,
/// `--sip-client-ca`, or `[sip] cert`, `key`, `ca`, `client_ca`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SipTlsFiles {
    /// Our certificate chain and key (PEM): the listener's identity, and
    /// our client certificate towards servers that ask for one (RFC 3261
    /// 26.2.2: mutual TLS SHOULD be used).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The CA bundle the servers we connect to are verified against.
    pub ca: Option<PathBuf>,
    /// When set, clients of our listener must present a certificate
    /// signed by this bundle.
    pub client_ca: Option<PathBuf>,
}

/// What SIP over TLS counts (`/metrics`).
#[derive(Debug, Default)]
pub struct SipTlsCounters {
    pub handshakes: AtomicU64,
    pub handshake_failures: AtomicU64,
}

/// The TLS side of the SIP transports, loaded once at start.
#[derive(Clone)]
pub struct SipTls {
    /// The listener's configuration (needs cert and key).
    pub server: Option<TlsAcceptor>,
    /// Ours as a client, or why there is none.
    pub client: Result<TlsConnector, String>,
    pub counters: Arc<SipTlsCounters>,
}

fn read_chain(flag: &str, path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{flag} {}: no certificate in the file", path.display());
    }
    Ok(chain)
}

fn read_roots(flag: &str, path: &Path) -> anyhow::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in read_chain(flag, path)? {
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

impl SipTls {
    /// Reads the files; a clear error naming the file and flag otherwise.
    /// `listen`: a `tls:` listener is configured (cert and key needed).
    pub fn load(files: &SipTlsFiles, listen: bool) -> anyhow::Result<SipTls> {
        let provider = Arc::new(ring::default_provider());
        let identity = match (&files.cert, &files.key) {
            (Some(cert), Some(key)) => {
                let chain = read_chain("--sip-cert", cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| anyhow::anyhow!("--sip-key {}: {e}", key.display()))?;
                Some((chain, key))
            }
            (None, None) => None,
            _ => anyhow::bail!("--sip-cert and --sip-key go together"),
        };
        let server = match (&identity, listen) {
            (Some((chain, key)), true) => {
                let builder = ServerConfig::builder_with_provider(provider.clone())
                    .with_protocol_versions(&[&version::TLS13, &version::TLS12])
                    .map_err(|e| anyhow::anyhow!("TLS versions: {e}"))?;
                let builder = match &files.client_ca {
                    Some(path) => {
                        let roots = read_roots("--sip-client-ca", path)?;
                        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                            .build()
                            .map_err(|e| anyhow::anyhow!("--sip-client-ca {}: {e}", path.display()))?;
                        builder.with_client_cert_verifier(verifier)
                    }
                    None => builder.with_no_client_auth(),
                };
                let config = builder
                    .with_single_cert(chain.clone(), key.clone_key())
                    .map_err(|e| {
                        anyhow::anyhow!("--sip-cert and --sip-key do not make a server identity: {e}")
                    })?;
                Some(TlsAcceptor::from(Arc::new(config)))
            }
            (None, true) => anyhow::bail!("--sip tls:ADDR needs --sip-cert and --sip-key"),
            (_, false) => None,
        };
        let client = match &files.ca {
            None => Err(
                "SIP over TLS to a server needs --sip-ca (RFC 5922: its certificate is verified; msrp-signal never connects unverified)"
                    .to_string(),
            ),
            Some(path) => {
                let roots = read_roots("--sip-ca", path)?;
                let builder = ClientConfig::builder_with_provider(provider)
                    .with_protocol_versions(&[&version::TLS13, &version::TLS12])
                    .map_err(|e| anyhow::anyhow!("TLS versions: {e}"))?
                    .with_root_certificates(roots);
                let config = match identity {
                    Some((chain, key)) => builder
                        .with_client_auth_cert(chain, key)
                        .map_err(|e| anyhow::anyhow!("--sip-cert and --sip-key as a client identity: {e}"))?,
                    None => builder.with_no_client_auth(),
                };
                Ok(TlsConnector::from(Arc::new(config)))
            }
        };
        Ok(SipTls {
            server,
            client,
            counters: Arc::new(SipTlsCounters::default()),
        })
    }

    fn counted<T, E: std::fmt::Display>(&self, result: &Result<Result<T, E>, tokio::time::error::Elapsed>) {
        let counter = match result {
            Ok(Ok(_)) => &self.counters.handshakes,
            _ => &self.counters.handshake_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Accepts TLS connections; each handshake is a task of its own, and a
/// finished one becomes a stream with a connection id.
pub async fn tls_acceptor(
    listener: TcpListener,
    tls: SipTls,
    inputs: mpsc::Sender<Input>,
    ids: Arc<AtomicU64>,
) {
    let Some(acceptor) = tls.server.clone() else {
        return;
    };
    let permits = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "SIP TLS accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, tls, inputs) = (acceptor.clone(), tls.clone(), inputs.clone());
        let conn = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(permit);
            tls.counted(&handshake);
            match handshake {
                Ok(Ok(stream)) => run_stream(stream, Transport::Tls, conn, remote, inputs).await,
                Ok(Err(error)) => tracing::info!(%remote, %error, "SIP TLS handshake failed"),
                Err(_) => tracing::info!(%remote, "SIP TLS handshake timed out"),
            }
        });
    }
}

/// Opens a TLS connection for a request of ours to `remote`, verifying the
/// server as `name` (the host of the URI, RFC 5922 7.1).
pub async fn tls_connect(
    tls: SipTls,
    remote: SocketAddr,
    name: String,
    conn: ConnId,
    inputs: mpsc::Sender<Input>,
) {
    let connector = match &tls.client {
        Ok(connector) => connector.clone(),
        Err(why) => return connect_failed(&inputs, Transport::Tls, remote, why.clone()).await,
    };
    let server_name = match ServerName::try_from(name.trim_matches(['[', ']']).to_string()) {
        Ok(server_name) => server_name,
        Err(error) => {
            let why = format!("`{name}` is not a name a certificate can be verified for: {error}");
            return connect_failed(&inputs, Transport::Tls, remote, why).await;
        }
    };
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(remote)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            return connect_failed(&inputs, Transport::Tls, remote, format!("TCP connect: {error}")).await
        }
        Err(_) => {
            let why = format!("TCP connect did not finish within {HANDSHAKE_TIMEOUT:?}");
            return connect_failed(&inputs, Transport::Tls, remote, why).await;
        }
    };
    let _ = stream.set_nodelay(true);
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, stream)).await;
    tls.counted(&handshake);
    match handshake {
        Ok(Ok(stream)) => run_stream(stream, Transport::Tls, conn, remote, inputs).await,
        Ok(Err(error)) => {
            let why = format!("TLS handshake with {name}: {error}");
            connect_failed(&inputs, Transport::Tls, remote, why).await
        }
        Err(_) => {
            let why = format!("TLS handshake with {name} did not finish within {HANDSHAKE_TIMEOUT:?}");
            connect_failed(&inputs, Transport::Tls, remote, why).await
        }
    }
}
