//! What the driver's loops (`driver.rs`) add for a connection carried over
//! TLS (RFC 4975 14, `msrps:`): a [`Wire`] over rustls. tokio-uring has no
//! AsyncRead/AsyncWrite, so rustls is driven by hand over owned buffers:
//! - the reader's wire reads ciphertext into its own buffer, feeds it to
//!   `read_tls`/`process_new_packets`, and moves the plaintext into the
//!   [`Connection`](crate::Connection)'s input buffer before handing it
//!   over as the plain reader does;
//! - the writer's wire hands a turn's output batch to rustls as one
//!   gathered write and writes the records it produces, and also writes
//!   handshake output and alerts while the connection has nothing to send.
//!
//! The loops themselves exist once, in the driver; the choice of wire is
//! made once, when a connection starts.

use std::cell::RefCell;
use std::io::{BufRead, IoSlice, Write};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use tokio_uring::net::TcpStream;

use super::driver::{self, ConnectionHost, Wire, IOV_MAX};

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
pub fn start<H: TlsHost>(host: &Rc<RefCell<H>>, id: H::Id, stream: TcpStream, tls: rustls::Connection) {
    let mut tls = tls;
    // The MSRP connection bounds what it has in flight
    // (--connection-inflight-max); rustls must take a whole batch.
    tls.set_buffer_limit(None);
    let client = tls.is_handshaking() && matches!(tls, rustls::Connection::Client(_));
    let tls = Rc::new(RefCell::new(tls));
    if client {
        // The ClientHello goes out before anything is read.
        if let Some(writer) = host.borrow().writer(id) {
            writer.notify_one();
        }
    }
    let reader = TlsWire::new(tls.clone());
    driver::spawn(host, id, stream, reader, TlsWire::new(tls));
}

/// One task's side of a TLS connection: the shared record layer, and the
/// reader's ciphertext buffer or the writer's records.
struct TlsWire {
    tls: Tls,
    ciphertext: Vec<u8>,
    records: Vec<Bytes>,
    close_sent: bool,
    /// The largest turn's ciphertext so far: the next turn's buffer starts
    /// that big, so it is not grown record by record.
    out_hint: usize,
}

impl TlsWire {
    fn new(tls: Tls) -> TlsWire {
        TlsWire {
            tls,
            ciphertext: Vec::new(),
            records: Vec::new(),
            close_sent: false,
            out_hint: 0,
        }
    }
}

impl<H: TlsHost> Wire<H> for TlsWire {
    type Buffer = Vec<u8>;

    fn read_buffer(&mut self, h: &mut H, _id: H::Id) -> Option<Vec<u8>> {
        self.ciphertext.clear();
        self.ciphertext.reserve(h.read_bytes());
        Some(std::mem::take(&mut self.ciphertext))
    }

    fn restore(&mut self, _h: &mut H, _id: H::Id, buffer: Vec<u8>) {
        self.ciphertext = buffer;
    }

    fn input(&mut self, h: &mut H, id: H::Id, now: Instant) -> bool {
        matches!(
            handle_ciphertext(h, id, &self.tls, &self.ciphertext, now),
            Turn::Done
        )
    }

    fn wants_write(&self) -> bool {
        self.tls.borrow().wants_write()
    }

    fn seal<'a>(&'a mut self, batch: &'a mut Vec<Bytes>, closed: bool) -> &'a mut Vec<Bytes> {
        let mut tls = self.tls.borrow_mut();
        seal(&mut tls, batch);
        if closed && !self.close_sent {
            // RFC 8446 6.1: say we are done rather than just cut.
            tls.send_close_notify();
            self.close_sent = true;
        }
        if let Some(out) = take_records(&mut tls, self.out_hint) {
            self.out_hint = self.out_hint.max(out.len());
            self.records.push(out);
        }
        &mut self.records
    }
}

/// What one read of ciphertext left.
enum Turn {
    /// Keep reading.
    More,
    /// The connection is closed (the reason is already given).
    Done,
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
            // Copied once, from rustls's buffers into the connection's,
            // without zeroing the room first (a resize-then-read did: a
            // fifth of the TLS reader's time with 160-octet texts).
            if let Err(error) = move_plaintext(&mut tls, conn.input_buffer(), len) {
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

/// Moves `len` octets of plaintext from rustls into `buffer`: one copy,
/// without zeroing the room first.
fn move_plaintext(
    tls: &mut rustls::Connection,
    buffer: &mut bytes::BytesMut,
    len: usize,
) -> std::io::Result<()> {
    buffer.reserve(len);
    let mut left = len;
    while left > 0 {
        let mut reader = tls.reader();
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let n = chunk.len().min(left);
        buffer.extend_from_slice(&chunk[..n]);
        reader.consume(n);
        left -= n;
    }
    Ok(())
}

fn fail<H: TlsHost>(h: &mut H, id: H::Id, reason: &str) -> Turn {
    h.tls_failed(id);
    tracing::debug!(%reason, "TLS connection closed");
    if let Some(conn) = h.connection(id) {
        conn.handle_closed(reason);
    }
    Turn::Done
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
