//! The driver's loop for a connection carried over TLS (RFC 4975 14,
//! `msrps:`). tokio-uring has no AsyncRead/AsyncWrite, so rustls is driven
//! by hand over owned buffers:
//! - the reader reads ciphertext into its own buffer, feeds it to
//!   `read_tls`/`process_new_packets`, and moves the plaintext into the
//!   [`Connection`]'s input buffer before handing it over as the plain
//!   reader does;
//! - the writer hands the connection's output batch to the rustls writer
//!   and writes the records it produces, and also writes handshake output
//!   and alerts while the connection itself has nothing to send.
//!
//! The plaintext loops in [`driver`](super::driver) are untouched: the
//! choice is made once, when a connection starts.

use std::cell::RefCell;
use std::io::{IoSlice, Read, Write};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use tokio_uring::net::TcpStream;

use super::driver::{self, ConnectionHost, IOV_MAX};

/// A TLS connection's record layer, shared by its reader and writer and
/// borrowed only between awaits.
type Tls = Rc<RefCell<rustls::Connection>>;

/// How a TLS connection's handshake ended, for the host's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    Full,
    Resumed,
}

/// What a host adds for TLS connections.
pub trait TlsHost: ConnectionHost {
    /// The handshake finished; `peer` is the certificate chain the peer
    /// presented (empty when it sent none). `Err(reason)` closes the
    /// connection (a certificate the host will not accept).
    fn tls_established(&mut self, id: Self::Id, how: Handshake, peer: &[Vec<u8>]) -> Result<(), String>;

    /// The handshake or the record layer failed.
    fn tls_failed(&mut self, id: Self::Id);
}

/// Starts the reader and the writer of a connection carried over `tls`.
pub fn start<H: TlsHost>(
    host: &Rc<RefCell<H>>,
    id: H::Id,
    stream: TcpStream,
    tls: rustls::Connection,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY");
    }
    let mut tls = tls;
    // The MSRP connection bounds what it has in flight
    // (--connection-inflight-max); rustls must take a whole batch.
    tls.set_buffer_limit(None);
    let client = tls.is_handshaking() && matches!(tls, rustls::Connection::Client(_));
    let tls = Rc::new(RefCell::new(tls));
    let stream = Rc::new(stream);
    if client {
        // The ClientHello goes out before anything is read.
        if let Some(writer) = host.borrow().writer(id) {
            writer.notify_one();
        }
    }
    tokio_uring::spawn(read_loop(host.clone(), id, stream.clone(), tls.clone()));
    tokio_uring::spawn(write_loop(host.clone(), id, stream, tls));
}

/// What one read of ciphertext left.
enum Turn {
    /// Keep reading.
    More,
    /// The connection is closed (the reason is already given).
    Done,
}

async fn read_loop<H: TlsHost>(host: Rc<RefCell<H>>, id: H::Id, stream: Rc<TcpStream>, tls: Tls) {
    let mut ciphertext: Vec<u8> = Vec::new();
    loop {
        let wake = {
            let mut h = host.borrow_mut();
            if h.connection(id).is_none_or(|conn| conn.is_closed()) {
                return;
            }
            let wake = h.read_paused(id, Instant::now());
            if wake.is_none() {
                ciphertext.clear();
                ciphertext.reserve(h.read_bytes());
            }
            wake
        };
        if let Some(wake) = wake {
            wake.notified().await;
            continue;
        }
        let capacity = ciphertext.capacity();
        let (result, buffer) = stream.read(ciphertext).await;
        ciphertext = buffer;
        debug_assert!(ciphertext.len() <= capacity);
        let mut h = host.borrow_mut();
        let Some(conn) = h.connection(id) else { return };
        let deadline_before = conn.poll_timeout();
        let now = Instant::now();
        let turn = match result {
            Ok(0) => {
                // RFC 8446 6.1: an end without close_notify may be a
                // truncation; either way the connection is over.
                conn.handle_eof();
                Turn::Done
            }
            Ok(_) => handle_ciphertext(&mut *h, id, &tls, &ciphertext, now),
            Err(error) => {
                conn.handle_closed(&format!("read failed: {error}"));
                Turn::Done
            }
        };
        h.end_turn(&host, id);
        let tls_output = tls.borrow().wants_write();
        if let Some(conn) = h.connection(id) {
            let deadline = conn.poll_timeout();
            let earlier = deadline.is_some_and(|d| deadline_before.is_none_or(|b| d < b));
            if tls_output || conn.wants_transmit() || conn.is_closed() || earlier {
                if let Some(writer) = h.writer(id) {
                    writer.notify_one();
                }
            }
        }
        if matches!(turn, Turn::Done) {
            return;
        }
    }
}

/// Feeds `ciphertext` to rustls and the plaintext it yields to the
/// connection.
fn handle_ciphertext<H: TlsHost>(h: &mut H, id: H::Id, tls: &Tls, ciphertext: &[u8], now: Instant) -> Turn {
    let mut tls = tls.borrow_mut();
    let mut rest = ciphertext;
    let mut plaintext = false;
    while !rest.is_empty() {
        let was_handshaking = tls.is_handshaking();
        if let Err(error) = tls.read_tls(&mut rest) {
            return fail(h, id, &format!("TLS read failed: {error}"));
        }
        let state = match tls.process_new_packets() {
            Ok(state) => state,
            Err(error) => {
                let what = match was_handshaking {
                    true => "TLS handshake failed",
                    false => "TLS failed",
                };
                return fail(h, id, &format!("{what}: {error}"));
            }
        };
        if was_handshaking && !tls.is_handshaking() {
            let how = match tls.handshake_kind() {
                Some(rustls::HandshakeKind::Resumed) => Handshake::Resumed,
                _ => Handshake::Full,
            };
            let peer: Vec<Vec<u8>> = tls
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default();
            if let Err(reason) = h.tls_established(id, how, &peer) {
                tls.send_close_notify();
                if let Some(conn) = h.connection(id) {
                    conn.handle_closed(&reason);
                }
                return Turn::Done;
            }
        }
        let len = state.plaintext_bytes_to_read();
        if len > 0 {
            let Some(conn) = h.connection(id) else {
                return Turn::Done;
            };
            let buffer = conn.input_buffer();
            let at = buffer.len();
            buffer.resize(at + len, 0);
            if let Err(error) = tls.reader().read_exact(&mut buffer[at..]) {
                buffer.truncate(at);
                return fail(h, id, &format!("TLS plaintext lost: {error}"));
            }
            plaintext = true;
        }
        if state.peer_has_closed() {
            if plaintext {
                h.handle_input(id, now);
            }
            if let Some(conn) = h.connection(id) {
                conn.handle_closed("the peer ended TLS (close_notify)");
            }
            return Turn::Done;
        }
    }
    if plaintext {
        h.handle_input(id, now);
    }
    Turn::More
}

fn fail<H: TlsHost>(h: &mut H, id: H::Id, reason: &str) -> Turn {
    h.tls_failed(id);
    tracing::debug!(%reason, "TLS connection closed");
    if let Some(conn) = h.connection(id) {
        conn.handle_closed(reason);
    }
    Turn::Done
}

async fn write_loop<H: TlsHost>(host: Rc<RefCell<H>>, id: H::Id, stream: Rc<TcpStream>, tls: Tls) {
    let mut batch: Vec<Bytes> = Vec::new();
    let mut records: Vec<Bytes> = Vec::new();
    let mut close_sent = false;
    // The largest turn's ciphertext so far: the next turn's buffer starts
    // that big, so it is not grown record by record.
    let mut out_hint = 0;
    loop {
        let (wake, deadline) = {
            let mut h = host.borrow_mut();
            let own = h.deadline(id);
            let Some(wake) = h.writer(id) else { return };
            let Some(conn) = h.connection(id) else { return };
            let deadline = match (conn.poll_timeout(), own) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (wake, deadline)
        };
        match deadline {
            Some(deadline) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
                }
            }
            None => wake.notified().await,
        }
        loop {
            let closed = {
                let mut h = host.borrow_mut();
                let now = Instant::now();
                let Some(conn) = h.connection(id) else { return };
                if conn.poll_timeout().is_some_and(|t| t <= now) {
                    conn.handle_timeout(now);
                }
                h.on_wake(id, now);
                let Some(conn) = h.connection(id) else { return };
                conn.poll_transmit(now, &mut batch);
                h.end_turn(&host, id);
                let Some(conn) = h.connection(id) else { return };
                conn.is_closed()
            };
            {
                let mut tls = tls.borrow_mut();
                seal(&mut tls, &mut batch);
                if closed && !close_sent {
                    // RFC 8446 6.1: say we are done rather than just cut.
                    tls.send_close_notify();
                    close_sent = true;
                }
                if let Some(out) = take_records(&mut tls, out_hint) {
                    out_hint = out_hint.max(out.len());
                    records.push(out);
                }
            }
            if records.is_empty() {
                if closed {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    host.borrow_mut().finished(id);
                    return;
                }
                break;
            }
            host.borrow_mut().set_writing(id, true);
            let written = driver::write_all(&stream, &mut records).await;
            host.borrow_mut().set_writing(id, false);
            if let Err(error) = written {
                records.clear();
                let mut h = host.borrow_mut();
                if let Some(conn) = h.connection(id) {
                    if !conn.is_closed() {
                        conn.handle_closed(&format!("write failed: {error}"));
                    }
                    h.end_turn(&host, id);
                }
            }
        }
    }
}

/// Hands a turn's frames to rustls as one gathered write: the frames of a
/// turn are cut into as few records as fit (up to 2^14 octets of plaintext
/// each, RFC 8446 5.1), not one record (and one AEAD seal, 22 octets of
/// overhead) per frame. rustls borrows the frames; the only copy is the
/// encryption into the record.
fn seal(tls: &mut rustls::Connection, batch: &mut Vec<Bytes>) {
    let mut start = 0;
    while start < batch.len() {
        let end = (start + IOV_MAX).min(batch.len());
        let slices: Vec<IoSlice<'_>> = batch[start..end].iter().map(|b| IoSlice::new(b)).collect();
        let want: usize = slices.iter().map(|s| s.len()).sum();
        // Never short with the buffer limit off (see `start`), but a short
        // write is finished frame by frame rather than lost.
        match tls.writer().write_vectored(&slices) {
            Ok(n) if n == want => {}
            Ok(mut n) => {
                for bytes in &batch[start..end] {
                    let skip = n.min(bytes.len());
                    n -= skip;
                    let _ = tls.writer().write_all(&bytes[skip..]);
                }
            }
            Err(_) => return,
        }
        start = end;
    }
    batch.clear();
}

/// Everything rustls has to send (records, handshake messages, alerts) as
/// one buffer for one write.
fn take_records(tls: &mut rustls::Connection, hint: usize) -> Option<Bytes> {
    if !tls.wants_write() {
        return None;
    }
    let mut out = Vec::with_capacity(hint);
    while tls.wants_write() {
        match tls.write_tls(&mut out) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    (!out.is_empty()).then(|| Bytes::from(out))
}
