//! A shard's connections on the wire: accepting and connecting, and what
//! the shard adds to the shared [`driver`](super::driver) that reads and
//! writes them (backpressure, the directory of pending sessions, the idle
//! timeout).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_uring::net::{TcpListener, TcpStream};

use super::directory::{Claims, Untrusted};
use super::driver::{self, ConnectionHost};
use super::tls_io::{self, Handshake, TlsHost};
use super::{Shard, ShardRef};
use crate::control::{EngineEvent, EventKind};
use crate::Connection;

/// Accepts on one listener; `secure`: a `--tls-listen` one, whose
/// connections handshake with the shard's current server configuration.
pub(super) async fn accept_loop(this: ShardRef, listener: TcpListener, secure: bool) {
    let stop = this.borrow().stop_accepting.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.notified() => return,
        };
        match accepted {
            Ok((stream, addr)) => {
                let mut shard = this.borrow_mut();
                if shard.draining.is_some() {
                    return;
                }
                if shard.conns.len() >= shard.config.connections_max {
                    shard.totals.connections_refused += 1;
                    if let Some(suppressed) = shard.logs.refused.allow(Instant::now()) {
                        tracing::warn!(
                            shard = shard.index,
                            %addr,
                            max = shard.config.connections_max,
                            suppressed,
                            "refused a connection: the shard is at connections-max"
                        );
                    }
                    continue;
                }
                let tls = match secure {
                    false => None,
                    true => match shard
                        .tls
                        .as_ref()
                        .map(|tls| rustls::ServerConnection::new(tls.server.clone()))
                    {
                        Some(Ok(tls)) => Some(rustls::Connection::Server(tls)),
                        Some(Err(error)) => {
                            shard.totals.tls_failures += 1;
                            tracing::warn!(%addr, %error, "cannot start TLS on an accepted connection");
                            continue;
                        }
                        None => continue,
                    },
                };
                shard.totals.connections_accepted += 1;
                let ci = shard.new_conn(None, secure, None);
                let serial = shard.conns[ci].serial;
                drop(shard);
                tracing::debug!(%addr, conn = ci, secure, "accepted");
                match tls {
                    Some(tls) => tls_io::start(&this, (ci, serial), stream, tls),
                    None => start(&this, ci, serial, stream),
                }
            }
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Connects towards `peer`, retrying with backoff until the connect
/// timeout; a connection that cannot be made fails its sessions.
pub(super) async fn connect(this: ShardRef, ci: usize, serial: u64, peer: SocketAddr) {
    let deadline = Instant::now() + this.borrow().config.connect_timeout;
    let mut backoff = Duration::from_millis(20);
    let error = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let error = match tokio::time::timeout(left, TcpStream::connect(peer)).await {
            Ok(Ok(stream)) => {
                let tls = {
                    let mut shard = this.borrow_mut();
                    let configs = shard.tls.clone();
                    let Some(entry) = shard.conn_mut(ci, serial) else {
                        return;
                    };
                    entry.tls_peer.as_ref().map(|tls| {
                        let config = configs.map(|c| match &tls.fingerprint {
                            Some(fingerprint) => c.client_for(fingerprint),
                            None => c.client.clone(),
                        });
                        client_tls(config, &tls.name)
                    })
                };
                match tls {
                    None => start(&this, ci, serial, stream),
                    Some(Ok(tls)) => tls_io::start(&this, (ci, serial), stream, tls),
                    Some(Err(error)) => break error,
                }
                return;
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => "timed out".to_string(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break error;
        }
        // The last try comes at the deadline, not a backoff before it.
        tokio::time::sleep(backoff.min(left)).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    };
    let mut shard = this.borrow_mut();
    let timeout = shard.config.connect_timeout;
    shard.totals.connections_failed += 1;
    let Some(entry) = shard.conn_mut(ci, serial) else {
        return;
    };
    let reason = format!("cannot connect to {peer}: {error} (gave up after {timeout:?})");
    tracing::warn!(%reason);
    entry.conn.handle_closed(&reason);
    shard.pump(&this, ci);
    shard.flush_turn();
    shard.remove_conn(ci);
}

/// The client side of TLS towards `name` (SNI, and the name the peer's
/// certificate must carry, RFC 6125).
fn client_tls(config: Option<Arc<rustls::ClientConfig>>, name: &str) -> Result<rustls::Connection, String> {
    let config = config.ok_or("this engine has no TLS configured")?;
    let name = rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|error| format!("{name:?} is not a TLS server name: {error}"))?;
    rustls::ClientConnection::new(config, name)
        .map(rustls::Connection::Client)
        .map_err(|error| format!("cannot start TLS: {error}"))
}

fn start(this: &ShardRef, ci: usize, serial: u64, stream: TcpStream) {
    driver::start(this, (ci, serial), stream);
}

/// A shard drives its connections with the shared driver; what it adds:
/// backpressure (the spool disk, a peer that does not read), the directory
/// of pending sessions, the idle timeout, and removing a finished entry.
impl ConnectionHost for Shard {
    /// The connection's slot and the serial of the entry in it.
    type Id = (usize, u64);

    fn connection(&mut self, (ci, serial): (usize, u64)) -> Option<&mut Connection> {
        self.conn_mut(ci, serial).map(|entry| &mut entry.conn)
    }

    fn writer(&self, (ci, serial): (usize, u64)) -> Option<Rc<Notify>> {
        self.conns
            .get(ci)
            .filter(|c| c.serial == serial)
            .map(|entry| entry.writer.clone())
    }

    fn read_bytes(&self) -> usize {
        self.config.read_buffer_bytes
    }

    fn read_paused(&mut self, (ci, serial): (usize, u64), now: Instant) -> Option<Rc<Notify>> {
        let backlog_max = self.config.spool_backlog_bytes_max;
        let entry = self.conns.get_mut(ci).filter(|c| c.serial == serial)?;
        let spool_behind = entry.spool_backlog_bytes > backlog_max;
        if !(spool_behind || (entry.writing && entry.conn.wants_transmit())) {
            entry.conn.set_input_paused(false, now);
            return None;
        }
        // The spool disk, or the peer reading our output, is behind: stop
        // reading until it catches up (counted once per pause).
        if entry.conn.set_input_paused(true, now) {
            self.totals.read_pauses += 1;
            if let Some(suppressed) = self.logs.paused.allow(now) {
                let cause = match spool_behind {
                    true => "the spool disk is behind (spool-backlog-max)",
                    false => "the peer is not reading our output",
                };
                tracing::info!(
                    shard = self.index,
                    conn = ci,
                    cause,
                    suppressed,
                    "paused reading a connection"
                );
            }
        }
        Some(entry.reader.clone())
    }

    fn handle_input(&mut self, (ci, serial): (usize, u64), now: Instant) {
        let refuse_sends = self.refuses_sends();
        let Some(entry) = self.conns.get_mut(ci).filter(|c| c.serial == serial) else {
            return;
        };
        entry.conn.set_refuse_sends(refuse_sends);
        let mut untrusted = Vec::new();
        let mut claims = Claims {
            directory: &self.directory,
            shard: self.index,
            secure: entry.secure,
            peer_certificate: entry.peer_certificate.as_deref(),
            wrong_transport: &mut self.totals.sessions_wrong_transport,
            untrusted: &mut untrusted,
        };
        entry.conn.handle_input_with(now, &mut claims);
        if !untrusted.is_empty() {
            self.refuse_untrusted(ci, untrusted, now);
        }
    }

    fn end_turn(&mut self, this: &ShardRef, (ci, serial): (usize, u64)) {
        if self.conn_mut(ci, serial).is_some() {
            self.pump(this, ci);
        }
        self.flush_turn();
    }

    fn deadline(&self, (ci, serial): (usize, u64)) -> Option<Instant> {
        let entry = self.conns.get(ci).filter(|c| c.serial == serial)?;
        entry.idle_since.map(|since| since + self.config.idle_timeout)
    }

    fn on_wake(&mut self, (ci, serial): (usize, u64), now: Instant) {
        let idle_timeout = self.config.idle_timeout;
        let Some(entry) = self.conns.get_mut(ci).filter(|c| c.serial == serial) else {
            return;
        };
        if entry.idle_since.is_some_and(|since| since + idle_timeout <= now) && !entry.conn.is_closed() {
            entry.conn.handle_closed(&format!(
                "idle for {idle_timeout:?} with no session (idle-timeout)"
            ));
            self.totals.connections_idle_closed += 1;
            if let Some(suppressed) = self.logs.idle.allow(now) {
                tracing::info!(
                    shard = self.index,
                    conn = ci,
                    ?idle_timeout,
                    suppressed,
                    "closed a connection that carried no session (idle-timeout)"
                );
            }
        }
    }

    fn set_writing(&mut self, (ci, serial): (usize, u64), writing: bool) {
        if let Some(entry) = self.conn_mut(ci, serial) {
            entry.writing = writing;
            if !writing {
                entry.reader.notify_one();
            }
        }
    }

    fn finished(&mut self, (ci, serial): (usize, u64)) {
        if self.conn_mut(ci, serial).is_some() {
            self.remove_conn(ci);
        }
    }
}

impl Shard {
    /// A connection claimed sessions without the certificate their peer's
    /// SDP named: each fails with the reason, and the connection, whose
    /// peer is not who the signaling said, is closed (RFC 8122 5).
    fn refuse_untrusted(&mut self, ci: usize, untrusted: Vec<Untrusted>, now: Instant) {
        let mut reasons = Vec::with_capacity(untrusted.len());
        for Untrusted {
            session_id,
            tag,
            reason,
        } in untrusted
        {
            self.totals.tls_fingerprint_mismatches += 1;
            if let Some(suppressed) = self.logs.refused.allow(now) {
                tracing::warn!(shard = self.index, conn = ci, %session_id, %reason, suppressed, "refused a session's connection");
            }
            if self.wants(EventKind::SessionClosed) {
                let event = EngineEvent::SessionClosed {
                    session_id,
                    reason: reason.clone(),
                };
                self.emit_tagged(event, tag);
            }
            reasons.push(reason);
        }
        self.conns[ci].conn.end(&reasons.join("; "));
    }
}

/// What a shard adds for TLS connections: its counters.
impl TlsHost for Shard {
    fn tls_established(
        &mut self,
        (ci, serial): (usize, u64),
        how: Handshake,
        peer: &[Vec<u8>],
    ) -> Result<(), String> {
        let Some(entry) = self.conn_mut(ci, serial) else {
            return Err("the connection is gone".into());
        };
        // Checked when a request claims a session (RFC 8122 5); the client
        // side verified its server during the handshake.
        if entry.tls_peer.is_none() {
            entry.peer_certificate = peer.first().map(|der| der.as_slice().into());
        }
        self.totals.tls_handshakes += 1;
        if how == Handshake::Resumed {
            self.totals.tls_resumed += 1;
        }
        Ok(())
    }

    fn tls_failed(&mut self, _id: (usize, u64)) {
        self.totals.tls_failures += 1;
    }
}
