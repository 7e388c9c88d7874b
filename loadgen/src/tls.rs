//! `bench --tls`: the certificates made at start (rcgen: a CA and, signed by
//! it, the embedded engine's certificate for 127.0.0.1), the load's own
//! rustls client that trusts that CA, and the handshake rate measured
//! against the engine's `--tls-listen`.
//!
//! The load's sessions use `msrps:` URIs (RFC 4975 14), so the engine
//! serves them on its TLS listener only; the load drives rustls with the
//! engine's own TLS driver (`msrp_engine::driver::start_tls`).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::report::HandshakeRate;

/// The name the engine's certificate carries and the load asks for (SNI is
/// not sent for an IP address, RFC 6066 3; the certificate's IP SAN is
/// checked, RFC 6125 6.2.1).
pub const ENGINE_NAME: &str = "127.0.0.1";

/// The files of a run's certificates and the load's client configuration.
pub struct Pki {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client: Arc<ClientConfig>,
}

impl Pki {
    /// Makes a CA and the engine's certificate under `dir`.
    pub fn make(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "msrp-loadgen CA");
        let ca_key = rcgen::KeyPair::generate()?;
        let ca = ca_params.self_signed(&ca_key)?;
        let leaf_params =
            rcgen::CertificateParams::new(vec![ENGINE_NAME.to_string(), "localhost".to_string()])?;
        let leaf_key = rcgen::KeyPair::generate()?;
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;
        let cert = dir.join("engine.pem");
        let key = dir.join("engine.key");
        std::fs::write(&cert, leaf.pem()).with_context(|| format!("writing {}", cert.display()))?;
        std::fs::write(&key, leaf_key.serialize_pem())
            .with_context(|| format!("writing {}", key.display()))?;
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.der().to_vec()))
            .map_err(|e| anyhow!("the generated CA: {e}"))?;
        let client = ClientConfig::builder_with_provider(msrp_engine::tls::provider())
            .with_protocol_versions(msrp_engine::tls::versions())
            .map_err(|e| anyhow!("TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Pki {
            cert,
            key,
            client: Arc::new(client),
        })
    }

    /// The load's client configuration without resumption: every
    /// handshake full.
    fn fresh(&self) -> Arc<ClientConfig> {
        let mut config = (*self.client).clone();
        config.resumption = rustls::client::Resumption::disabled();
        Arc::new(config)
    }
}

/// A client connection towards the engine.
pub fn client(config: &Arc<ClientConfig>) -> Result<ClientConnection> {
    let name = ServerName::try_from(ENGINE_NAME).map_err(|e| anyhow!("{ENGINE_NAME}: {e}"))?;
    ClientConnection::new(config.clone(), name).map_err(|e| anyhow!("cannot start TLS: {e}"))
}

/// Handshakes per second against `target`: `threads` threads each connect,
/// handshake and close in a loop for `seconds`, first with every handshake
/// full (ECDHE and the certificate's signature, RFC 8446 2), then resuming
/// (a ticket, RFC 8446 2.2, with ECDHE: `psk_dhe_ke`).
pub fn handshake_rate(pki: &Pki, target: SocketAddr, threads: usize, seconds: f64) -> Result<HandshakeRate> {
    let full = run_handshakes(&pki.fresh(), target, threads, seconds, false)?;
    let resumed = run_handshakes(&pki.client, target, threads, seconds, true)?;
    Ok(HandshakeRate {
        threads,
        seconds_each: seconds,
        full: full.done,
        full_per_s: full.done as f64 / full.elapsed.as_secs_f64(),
        resumed_tries: resumed.done,
        resumed: resumed.resumed,
        resumed_per_s: resumed.done as f64 / resumed.elapsed.as_secs_f64(),
        failed: full.failed + resumed.failed,
        protocol: full.protocol.or(resumed.protocol).unwrap_or_default(),
        cipher_suite: full.suite.or(resumed.suite).unwrap_or_default(),
    })
}

struct Tally {
    done: u64,
    resumed: u64,
    failed: u64,
    elapsed: Duration,
    protocol: Option<String>,
    suite: Option<String>,
}

fn run_handshakes(
    config: &Arc<ClientConfig>,
    target: SocketAddr,
    threads: usize,
    seconds: f64,
    resume: bool,
) -> Result<Tally> {
    let stop = Arc::new(AtomicBool::new(false));
    let (done, resumed, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let negotiated = Arc::new(std::sync::Mutex::new(None::<(String, String)>));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (config, stop) = (config.clone(), stop.clone());
            let (done, resumed, failed) = (done.clone(), resumed.clone(), failed.clone());
            let negotiated = negotiated.clone();
            std::thread::spawn(move || {
                // Resuming: the first handshake of each thread is full and
                // leaves the ticket the others use.
                while !stop.load(Ordering::Relaxed) {
                    match handshake(&config, target, resume) {
                        Ok(hs) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            if hs.resumed {
                                resumed.fetch_add(1, Ordering::Relaxed);
                            }
                            let mut n = negotiated.lock().unwrap_or_else(|p| p.into_inner());
                            if n.is_none() {
                                *n = Some((hs.protocol, hs.suite));
                            }
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow!("a handshake thread panicked"))?;
    }
    let elapsed = started.elapsed();
    let negotiated = negotiated.lock().unwrap_or_else(|p| p.into_inner()).take();
    Ok(Tally {
        done: done.load(Ordering::Relaxed),
        resumed: resumed.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed,
        protocol: negotiated.as_ref().map(|n| n.0.clone()),
        suite: negotiated.map(|n| n.1),
    })
}

struct Done {
    resumed: bool,
    protocol: String,
    suite: String,
}

/// One connection: handshake, close_notify, close; `resume`: also read
/// the tickets the server sends after it.
fn handshake(config: &Arc<ClientConfig>, target: SocketAddr, resume: bool) -> Result<Done> {
    let mut tls = client(config)?;
    let mut tcp = TcpStream::connect_timeout(&target, Duration::from_secs(5))?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp)?;
    }
    // TLS 1.3 tickets come after the handshake (RFC 8446 4.6.1), and a
    // client uses each once: read this connection's so that the next one
    // can resume (one read; they travel together).
    if resume && tls.wants_read() {
        tcp.set_read_timeout(Some(Duration::from_millis(20)))?;
        let _ = tls.complete_io(&mut tcp);
    }
    let done = Done {
        resumed: tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        protocol: tls
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        suite: tls
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
    };
    tls.send_close_notify();
    let _ = tls.write_tls(&mut tcp);
    let _ = tcp.flush();
    Ok(done)
}
