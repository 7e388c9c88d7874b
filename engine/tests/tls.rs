//! MSRP over TLS (`msrps:`, RFC 4975 14) end to end: real `msrpd serve`
//! processes on loopback with certificates rcgen makes at test start, and
//! a rustls client of the test's own for what an engine would not do.

mod daemon;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use daemon::{collect_events, passive, pattern, send_frame, Daemon, RawPeer};
use msrp_engine::control::{EngineEvent, SendRequest, SessionDescriptor, SessionRole};
use msrp_engine::tls::{Fingerprint, FingerprintHash};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A CA and the files of certificates it signed.
struct Pki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

/// One leaf certificate's files and its DER.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("msrpd test CA {name}"));
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    fn ca_file(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    /// A certificate for 127.0.0.1 and localhost, signed by the CA.
    fn leaf(&self, name: &str) -> Leaf {
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let leaf = Leaf {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
            der: cert.der().to_vec(),
        };
        std::fs::write(&leaf.cert, cert.pem()).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }

    /// A self-signed certificate for 127.0.0.1 (the SDP model: its
    /// fingerprint is the only trust).
    fn self_signed(&self, name: &str) -> Leaf {
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let leaf = Leaf {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
            der: cert.der().to_vec(),
        };
        std::fs::write(&leaf.cert, cert.pem()).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }

    /// `msrpd serve` flags: a TLS listener with `leaf`, trusting the CA.
    fn flags(&self, leaf: &Leaf) -> Vec<String> {
        vec![
            "--shards".into(),
            "1".into(),
            "--tls-listen".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            leaf.cert.display().to_string(),
            "--tls-key".into(),
            leaf.key.display().to_string(),
            "--tls-ca".into(),
            self.ca_file(),
        ]
    }

    /// A client config of the test's own, trusting the CA; with
    /// `identity`, it presents that certificate.
    fn client_config(&self, identity: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(self.ca.der().to_vec())).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        Arc::new(match identity {
            None => builder.with_no_client_auth(),
            Some(leaf) => {
                let chain = vec![CertificateDer::from(leaf.der.clone())];
                let key = PrivateKeyDer::from_pem_file(&leaf.key).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        })
    }
}

use rustls::pki_types::pem::PemObject;

fn start(name: &str, pki: &Pki, leaf: &Leaf, extra: &[&str]) -> Daemon {
    let mut flags = pki.flags(leaf);
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Daemon::start(name, &flags)
}

fn tls_addr(d: &Daemon) -> SocketAddr {
    d.stats().tls.unwrap().listen[0].parse().unwrap()
}

fn secure_uri(d: &Daemon, session_id: &str) -> String {
    format!("msrps://{}/{session_id};tcp", d.stats().tls.unwrap().advertise)
}

/// The test's own TLS connection to an engine's TLS listener, handshaken.
fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, std::io::Error> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// Writes a SEND to `to` and reads up to its response; the status.
fn send_over(stream: &mut impl ReadWrite, tid: &str, to: &str) -> Option<u16> {
    // RFC 4975 9: a transaction id is 4 to 32 characters.
    let tid = &format!("tid-{tid}");
    let frame = send_frame(
        tid,
        to,
        "msrps://127.0.0.1:9/me;tcp",
        "msg-1",
        "text/plain",
        b"hi",
    );
    stream.write_all(&frame).ok()?;
    stream.flush().ok()?;
    let end = format!("-------{tid}$\r\n");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(&end) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.split_whitespace().nth(2)?.parse().ok()
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn active(session_id: &str, remote: String) -> SessionDescriptor {
    SessionDescriptor {
        role: SessionRole::Active,
        ..passive(session_id, remote)
    }
}

/// Passive `a1` on `a`, active `b1` on `b`, over msrps; both ready.
fn connect_secure(
    a: &Daemon,
    b: &Daemon,
    a_events: &mut msrp_engine::control::Client,
    b_events: &mut msrp_engine::control::Client,
    chunk: Option<usize>,
) -> String {
    let a_uri = secure_uri(a, "a1");
    let created = a
        .client()
        .create_session(passive("a1", secure_uri(b, "b1")))
        .unwrap();
    assert_eq!(created.local_uri, a_uri);
    b.client()
        .create_session(SessionDescriptor {
            chunk_bytes: chunk,
            ..active("b1", a_uri.clone())
        })
        .unwrap();
    for events in [a_events, b_events] {
        collect_events(events, Duration::from_secs(30), |event, _| match event {
            EngineEvent::SessionReady { .. } => true,
            EngineEvent::SessionClosed { reason, .. } => panic!("session closed: {reason}"),
            _ => false,
        });
    }
    a_uri
}

/// Sends `bodies` from `b1` and waits until `a` received each and `b` saw
/// each delivered.
fn exchange(
    b: &Daemon,
    a_events: &mut msrp_engine::control::Client,
    b_events: &mut msrp_engine::control::Client,
    bodies: &[Vec<u8>],
) {
    let mut ctl = b.client();
    for body in bodies {
        let request = SendRequest {
            session_id: "b1".into(),
            content_type: "text/plain".into(),
            ..SendRequest::default()
        };
        ctl.send(request, body).unwrap();
    }
    let mut received = Vec::new();
    collect_events(a_events, Duration::from_secs(30), |event, payload| {
        if let EngineEvent::MessageReceived { .. } = event {
            received.push(payload.to_vec());
        }
        received.len() == bodies.len()
    });
    assert_eq!(received, bodies);
    let mut delivered = 0;
    collect_events(b_events, Duration::from_secs(30), |event, _| {
        match event {
            EngineEvent::Delivered { .. } => delivered += 1,
            EngineEvent::Failed { reason, .. } => panic!("failed: {reason}"),
            _ => {}
        }
        delivered == bodies.len()
    });
}

#[test]
fn texts_and_a_chunked_message_cross_msrps() {
    let pki = Pki::new("cross");
    let (a_leaf, b_leaf) = (pki.leaf("a"), pki.leaf("b"));
    let a = start("tls-a", &pki, &a_leaf, &[]);
    let b = start("tls-b", &pki, &b_leaf, &[]);
    let (mut a_events, mut b_events) = (a.events(), b.events());
    // The reply carries our fingerprint for SDP's a=fingerprint.
    let created = a
        .client()
        .create_session(passive("fp", secure_uri(&b, "x")))
        .unwrap();
    assert!(created.local_uri.starts_with("msrps://"));
    let a_fp = Fingerprint::of(FingerprintHash::Sha256, &a_leaf.der).to_string();
    assert_eq!(
        a.stats().tls.map(|t| t.local_fingerprint).as_deref(),
        Some(a_fp.as_str())
    );
    connect_secure(&a, &b, &mut a_events, &mut b_events, Some(4096));
    let bodies = vec![b"hello".to_vec(), b"over TLS".to_vec(), pattern(7, 100_000)];
    exchange(&b, &mut a_events, &mut b_events, &bodies);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.shards[0].tls_handshakes, sb.shards[0].tls_handshakes), (1, 1));
    assert_eq!(sa.shards[0].tls_failures, 0);
    assert!(sb.shards[0].frames_out > 25, "the large message went in chunks");
}

#[test]
fn the_scheme_decides_the_transport() {
    let pki = Pki::new("scheme");
    let a_leaf = pki.leaf("a");
    let a = start("tls-scheme", &pki, &a_leaf, &[]);
    let mut ctl = a.client();
    ctl.create_session(passive("sec", "msrps://127.0.0.1:9/peer;tcp"))
        .unwrap();
    ctl.create_session(passive("plain", "msrp://127.0.0.1:9/peer;tcp"))
        .unwrap();
    // An msrps session over plain TCP: unknown to that connection (481).
    let mut peer = RawPeer::connect(a.msrp);
    peer.write(&send_frame(
        "tid-t1",
        &secure_uri(&a, "sec"),
        "msrps://127.0.0.1:9/peer;tcp",
        "msg-1",
        "text/plain",
        b"x",
    ));
    assert_eq!(peer.read_frame().unwrap().status, Some(481));
    // An msrp session over TLS: the same.
    let mut tls = tls_connect(tls_addr(&a), pki.client_config(None)).unwrap();
    assert_eq!(send_over(&mut tls, "t2", &a.uri("plain")), Some(481));
    assert_eq!(a.stats().shards[0].sessions_wrong_transport, 2);
    // Both still wait for their peer.
    assert_eq!(a.stats().sessions_pending, 2);
}

#[test]
fn a_second_connection_resumes() {
    let pki = Pki::new("resume");
    let a_leaf = pki.leaf("a");
    let a = start("tls-resume", &pki, &a_leaf, &[]);
    let config = pki.client_config(None);
    for tid in ["r1", "r2"] {
        let mut tls = tls_connect(tls_addr(&a), config.clone()).unwrap();
        // A round trip after the handshake reads the session ticket.
        assert_eq!(
            send_over(&mut tls, tid, "msrps://127.0.0.1:9/nobody;tcp"),
            Some(481)
        );
        if tid == "r2" {
            assert_eq!(tls.conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
        }
    }
    let stats = &a.stats().shards[0];
    assert_eq!((stats.tls_handshakes, stats.tls_resumed), (2, 1));
}

/// Connects `n` times with one client configuration, a round trip on each
/// (which reads the ticket); how many handshakes resumed.
fn reconnect(d: &Daemon, config: &Arc<rustls::ClientConfig>, n: usize) -> usize {
    let mut resumed = 0;
    for i in 0..n {
        let mut tls = tls_connect(tls_addr(d), config.clone()).unwrap();
        assert_eq!(
            send_over(&mut tls, &format!("n{i}"), "msrps://127.0.0.1:9/nobody;tcp"),
            Some(481)
        );
        if tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
            resumed += 1;
        }
    }
    resumed
}

#[test]
fn resumption_works_whichever_shard_a_connection_lands_on() {
    let pki = Pki::new("resume-shards");
    let leaf = pki.leaf("a");
    let mut flags = pki.flags(&leaf);
    let at = flags.iter().position(|f| f == "--shards").unwrap();
    flags[at + 1] = "4".into();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let a = Daemon::start("tls-resume-shards", &flags);
    let config = pki.client_config(None);
    // SO_REUSEPORT spreads the connections over the four shards by their
    // ports; the store is the engine's, so every one after the first
    // resumes wherever it lands.
    assert_eq!(reconnect(&a, &config, 12), 11);
    let stats = a.stats();
    let sum = |f: fn(&msrp_engine::control::ShardStats) -> u64| stats.shards.iter().map(f).sum::<u64>();
    assert_eq!((sum(|s| s.tls_handshakes), sum(|s| s.tls_resumed)), (12, 11));
    let shards_resuming = stats.shards.iter().filter(|s| s.tls_resumed > 0).count();
    assert!(
        shards_resuming >= 2,
        "resumed on one shard only: {:?}",
        stats.shards
    );
}

#[test]
fn a_session_cache_of_zero_turns_resumption_off() {
    let pki = Pki::new("resume-off");
    let leaf = pki.leaf("a");
    let a = start("tls-resume-off", &pki, &leaf, &["--tls-session-cache", "0"]);
    assert_eq!(reconnect(&a, &pki.client_config(None), 3), 0);
    let stats = a.stats();
    let sum = |f: fn(&msrp_engine::control::ShardStats) -> u64| stats.shards.iter().map(f).sum::<u64>();
    assert_eq!((sum(|s| s.tls_handshakes), sum(|s| s.tls_resumed)), (3, 0));
}

#[test]
fn client_ca_requires_a_signed_client_certificate() {
    let pki = Pki::new("client-ca");
    let (a_leaf, client_leaf) = (pki.leaf("a"), pki.leaf("client"));
    let ca = pki.ca_file();
    let a = start("tls-client-ca", &pki, &a_leaf, &["--tls-client-ca", &ca]);
    let addr = tls_addr(&a);
    // TLS 1.3: the client finishes first, and learns of the refusal on
    // its next read.
    let refused = match tls_connect(addr, pki.client_config(None)) {
        Err(_) => true,
        Ok(mut tls) => send_over(&mut tls, "c1", "msrps://127.0.0.1:9/x;tcp").is_none(),
    };
    assert!(refused, "a client without a certificate was served");
    let mut tls = tls_connect(addr, pki.client_config(Some(&client_leaf))).unwrap();
    assert_eq!(send_over(&mut tls, "c2", "msrps://127.0.0.1:9/x;tcp"), Some(481));
    let stats = &a.stats().shards[0];
    assert_eq!((stats.tls_handshakes, stats.tls_failures), (1, 1));
}

#[test]
fn garbage_and_wrong_protocols_close_the_connection() {
    let pki = Pki::new("garbage");
    let a_leaf = pki.leaf("a");
    let a = start("tls-garbage", &pki, &a_leaf, &[]);
    // MSRP in the clear on the TLS listener.
    let mut peer = RawPeer::connect(tls_addr(&a));
    peer.write(&send_frame(
        "g1",
        &a.uri("x"),
        "msrp://127.0.0.1:9/y;tcp",
        "msg-1",
        "text/plain",
        b"x",
    ));
    let mut rest = Vec::new();
    let _ = peer.stream.read_to_end(&mut rest);
    assert!(!rest.starts_with(b"MSRP"), "no MSRP answer over the TLS listener");
    // A ClientHello on the plaintext listener.
    assert!(tls_connect(a.msrp, pki.client_config(None)).is_err());
    let stats = a.stats();
    assert_eq!(stats.shards[0].tls_failures, 1);
    assert_eq!(
        stats.shards[0].connections_framing_lost, 1,
        "{:?}",
        stats.shards[0]
    );
    // Still up.
    let mut tls = tls_connect(tls_addr(&a), pki.client_config(None)).unwrap();
    assert_eq!(send_over(&mut tls, "g2", "msrps://127.0.0.1:9/x;tcp"), Some(481));
}

#[test]
fn sighup_swaps_the_certificate_and_keeps_connections() {
    let pki = Pki::new("sighup");
    let (a_leaf, b_leaf) = (pki.leaf("a"), pki.leaf("b"));
    let a = start("tls-hup-a", &pki, &a_leaf, &[]);
    let b = start("tls-hup-b", &pki, &b_leaf, &[]);
    let (mut a_events, mut b_events) = (a.events(), b.events());
    connect_secure(&a, &b, &mut a_events, &mut b_events, None);
    let old = Fingerprint::of(FingerprintHash::Sha256, &a_leaf.der).to_string();
    // A new certificate in the same files.
    let next = pki.leaf("a-next");
    std::fs::copy(&next.cert, &a_leaf.cert).unwrap();
    std::fs::copy(&next.key, &a_leaf.key).unwrap();
    let new = Fingerprint::of(FingerprintHash::Sha256, &next.der).to_string();
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(a.pid() as i32, libc::SIGHUP) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a.stats().tls.map(|t| t.local_fingerprint).as_deref() != Some(new.as_str()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the reload never showed: {}",
            a.log()
        );
        std::thread::yield_now();
    }
    assert_ne!(old, new);
    let tls = tls_connect(tls_addr(&a), pki.client_config(None)).unwrap();
    let seen = tls.conn.peer_certificates().unwrap()[0].as_ref().to_vec();
    assert_eq!(Fingerprint::of(FingerprintHash::Sha256, &seen).to_string(), new);
    // The connection made before the reload still carries messages.
    exchange(&b, &mut a_events, &mut b_events, &[b"after the reload".to_vec()]);
    // A bad file keeps the old configuration.
    std::fs::write(&a_leaf.key, "not a key").unwrap();
    assert_eq!(unsafe { libc::kill(a.pid() as i32, libc::SIGHUP) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !a.log().contains("keeping the old ones") {
        assert!(std::time::Instant::now() < deadline, "no log of the bad reload");
        std::thread::yield_now();
    }
    assert_eq!(
        a.stats().tls.map(|t| t.local_fingerprint).as_deref(),
        Some(new.as_str())
    );
}

#[test]
fn bad_certificate_files_stop_the_start_with_a_reason() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, "no PEM here").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_msrpd"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--no-pin",
        ])
        .arg("--control")
        .arg(dir.join("c.sock"))
        .arg("--spool")
        .arg(dir.join("spool"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(dir.join("missing.key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cert.pem") && stderr.contains("no PEM certificate"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// RFC 8122 5: with the peer's fingerprint in the descriptor, a self-signed
/// certificate that hashes to it is accepted and one that does not fails
/// the session with both fingerprints in the reason (client side).
#[test]
fn the_descriptor_s_fingerprint_decides_the_server_certificate() {
    let pki = Pki::new("fingerprint");
    let (a_leaf, b_leaf) = (pki.self_signed("a"), pki.leaf("b"));
    let a = start("tls-fp-a", &pki, &a_leaf, &[]);
    let b = start("tls-fp-b", &pki, &b_leaf, &[]);
    let (mut a_events, mut b_events) = (a.events(), b.events());
    let right = Fingerprint::of(FingerprintHash::Sha256, &a_leaf.der).to_string();
    let wrong = Fingerprint::of(FingerprintHash::Sha256, &b_leaf.der).to_string();
    // The wrong fingerprint: the handshake fails and so does the session.
    a.client()
        .create_session(passive("a0", secure_uri(&b, "b0")))
        .unwrap();
    b.client()
        .create_session(SessionDescriptor {
            fingerprint: Some(wrong.clone()),
            ..active("b0", secure_uri(&a, "a0"))
        })
        .unwrap();
    collect_events(&mut b_events, Duration::from_secs(30), |event, _| match event {
        EngineEvent::SessionClosed { reason, .. } => {
            assert!(reason.contains(&right) && reason.contains(&wrong), "{reason}");
            true
        }
        EngineEvent::SessionReady { .. } => panic!("a wrong fingerprint was accepted"),
        _ => false,
    });
    // The right one, in lower case: a self-signed certificate is fine.
    let a_uri = secure_uri(&a, "a1");
    a.client()
        .create_session(passive("a1", secure_uri(&b, "b1")))
        .unwrap();
    b.client()
        .create_session(SessionDescriptor {
            fingerprint: Some(right.to_lowercase()),
            ..active("b1", a_uri)
        })
        .unwrap();
    collect_events(&mut b_events, Duration::from_secs(30), |event, _| match event {
        EngineEvent::SessionReady { .. } => true,
        EngineEvent::SessionClosed { reason, .. } => panic!("session closed: {reason}"),
        _ => false,
    });
    exchange(&b, &mut a_events, &mut b_events, &[b"pinned".to_vec()]);
    assert_eq!(b.stats().shards[0].tls_failures, 1);
}

/// RFC 8122 5 on the passive side: the engine asks every client for a
/// certificate; a session whose descriptor names the peer's fingerprint is
/// claimed only by a connection that presented that certificate (a
/// resumed one included), and otherwise fails with both fingerprints in
/// the reason while its connection is closed.
#[test]
fn the_descriptor_s_fingerprint_decides_the_client_certificate() {
    let pki = Pki::new("fingerprint-passive");
    let (a_leaf, b_leaf, c_leaf) = (pki.leaf("a"), pki.self_signed("b"), pki.self_signed("c"));
    let a = start("tls-fpp-a", &pki, &a_leaf, &[]);
    let b = start("tls-fpp-b", &pki, &b_leaf, &[]);
    let (mut a_events, mut b_events) = (a.events(), b.events());
    let b_print = Fingerprint::of(FingerprintHash::Sha256, &b_leaf.der).to_string();
    let c_print = Fingerprint::of(FingerprintHash::Sha256, &c_leaf.der).to_string();
    // a0 expects c's certificate; b's engine connects with its own.
    a.client()
        .create_session(SessionDescriptor {
            fingerprint: Some(c_print.clone()),
            ..passive("a0", secure_uri(&b, "b0"))
        })
        .unwrap();
    b.client()
        .create_session(active("b0", secure_uri(&a, "a0")))
        .unwrap();
    collect_events(&mut a_events, Duration::from_secs(30), |event, _| match event {
        EngineEvent::SessionClosed { session_id, reason } if session_id == "a0" => {
            assert!(reason.contains(&b_print) && reason.contains(&c_print), "{reason}");
            true
        }
        EngineEvent::SessionReady { .. } => panic!("a wrong client certificate was accepted"),
        _ => false,
    });
    collect_events(&mut b_events, Duration::from_secs(30), |event, _| match event {
        EngineEvent::SessionClosed { session_id, .. } => session_id == "b0",
        EngineEvent::SessionReady { .. } => panic!("b0 became ready on a refused connection"),
        _ => false,
    });
    assert_eq!(a.stats().sessions_pending, 0);
    // a1 expects b's: the same engines now make the session.
    let a_uri = secure_uri(&a, "a1");
    a.client()
        .create_session(SessionDescriptor {
            fingerprint: Some(b_print.clone()),
            ..passive("a1", secure_uri(&b, "b1"))
        })
        .unwrap();
    b.client().create_session(active("b1", a_uri)).unwrap();
    for events in [&mut a_events, &mut b_events] {
        collect_events(events, Duration::from_secs(30), |event, _| match event {
            EngineEvent::SessionReady { .. } => true,
            EngineEvent::SessionClosed { reason, .. } => panic!("session closed: {reason}"),
            _ => false,
        });
    }
    exchange(&b, &mut a_events, &mut b_events, &[b"pinned both ways".to_vec()]);
    // A client with no certificate: 403, and the session fails.
    let peer_uri = "msrps://127.0.0.1:9/me;tcp";
    let mut ctl = a.client();
    for id in ["a2", "a3"] {
        let pinned = SessionDescriptor {
            fingerprint: Some(c_print.clone()),
            ..passive(id, peer_uri)
        };
        ctl.create_session(pinned).unwrap();
    }
    let mut tls = tls_connect(tls_addr(&a), pki.client_config(None)).unwrap();
    assert_eq!(send_over(&mut tls, "n1", &secure_uri(&a, "a2")), Some(403));
    collect_events(&mut a_events, Duration::from_secs(30), |event, _| match event {
        EngineEvent::SessionClosed { session_id, reason } if session_id == "a2" => {
            assert!(
                reason.contains("no client certificate") && reason.contains(&c_print),
                "{reason}"
            );
            true
        }
        _ => false,
    });
    // c's certificate, on a resumed connection too: the session is claimed.
    let c_config = pki.client_config(Some(&c_leaf));
    let mut first = tls_connect(tls_addr(&a), c_config.clone()).unwrap();
    assert_eq!(
        send_over(&mut first, "c1", "msrps://127.0.0.1:9/nobody;tcp"),
        Some(481)
    );
    drop(first);
    let mut again = tls_connect(tls_addr(&a), c_config).unwrap();
    assert_eq!(send_over(&mut again, "c2", &secure_uri(&a, "a3")), Some(200));
    assert_eq!(again.conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
    assert_eq!(a.stats().shards[0].tls_fingerprint_mismatches, 2);
}
