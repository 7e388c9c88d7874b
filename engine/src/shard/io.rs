//! A connection's tasks: accepting or connecting, the reader that feeds the
//! sans-IO [`Connection`](crate::Connection), and the writer that hands out
//! everything ready as one vectored write per turn and runs its timers.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

use super::directory::Claims;
use super::ShardRef;

/// Buffers per `writev` (Linux IOV_MAX).
const IOV_MAX: usize = 1024;

pub(super) async fn accept_loop(this: ShardRef, listener: TcpListener) {
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
                shard.totals.connections_accepted += 1;
                let ci = shard.new_conn(None);
                let serial = shard.conns[ci].serial;
                drop(shard);
                tracing::debug!(%addr, conn = ci, "accepted");
                start(&this, ci, serial, stream);
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
                if this.borrow_mut().conn_mut(ci, serial).is_none() {
                    return;
                }
                start(&this, ci, serial, stream);
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

fn start(this: &ShardRef, ci: usize, serial: u64, stream: TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY");
    }
    let stream = Rc::new(stream);
    tokio_uring::spawn(read_loop(this.clone(), ci, serial, stream.clone()));
    tokio_uring::spawn(write_loop(this.clone(), ci, serial, stream));
}

async fn read_loop(this: ShardRef, ci: usize, serial: u64, stream: Rc<TcpStream>) {
    let mut claimed = Vec::new();
    let mut paused = false;
    loop {
        let (buffer, wait) = {
            let mut guard = this.borrow_mut();
            let shard = &mut *guard;
            let read_bytes = shard.config.read_buffer_bytes;
            let backlog_max = shard.config.spool_backlog_bytes_max;
            let Some(entry) = shard.conns.get_mut(ci).filter(|c| c.serial == serial) else {
                return;
            };
            if entry.conn.is_closed() {
                return;
            }
            let spool_behind = entry.spool_backlog_bytes > backlog_max;
            if spool_behind || (entry.writing && entry.conn.wants_transmit()) {
                if !paused {
                    paused = true;
                    let now = Instant::now();
                    entry.conn.set_input_paused(true, now);
                    shard.totals.read_pauses += 1;
                    if let Some(suppressed) = shard.logs.paused.allow(now) {
                        let cause = match spool_behind {
                            true => "the spool disk is behind (spool-backlog-max)",
                            false => "the peer is not reading our output",
                        };
                        tracing::info!(
                            shard = shard.index,
                            conn = ci,
                            cause,
                            suppressed,
                            "paused reading a connection"
                        );
                    }
                }
                (None, Some(entry.reader.clone()))
            } else {
                if paused {
                    paused = false;
                    entry.conn.set_input_paused(false, Instant::now());
                }
                let buffer = entry.conn.input_buffer();
                if buffer.capacity() - buffer.len() < read_bytes / 4 {
                    buffer.reserve(read_bytes);
                }
                (Some(std::mem::take(buffer)), None)
            }
        };
        if let Some(wait) = wait {
            // The spool disk, or the peer reading our output, is behind:
            // stop reading until it catches up.
            wait.notified().await;
            continue;
        }
        let Some(buffer) = buffer else { continue };
        let (len, capacity) = (buffer.len(), buffer.capacity());
        let (result, slice) = stream.read(buffer.slice(len..capacity)).await;
        let buffer = slice.into_inner();
        let mut guard = this.borrow_mut();
        let shard = &mut *guard;
        let refuse_sends = shard.refuses_sends();
        let Some(entry) = shard.conns.get_mut(ci).filter(|c| c.serial == serial) else {
            return;
        };
        *entry.conn.input_buffer() = buffer;
        entry.conn.set_refuse_sends(refuse_sends);
        let deadline_before = entry.conn.poll_timeout();
        let now = Instant::now();
        let done = match result {
            Ok(0) => {
                entry.conn.handle_eof();
                true
            }
            Ok(_) => {
                let mut claims = Claims {
                    directory: &shard.directory,
                    shard: shard.index,
                    claimed: &mut claimed,
                };
                entry.conn.handle_input_with(now, &mut claims);
                false
            }
            Err(error) => {
                entry.conn.handle_closed(&format!("read failed: {error}"));
                true
            }
        };
        shard.adopt_claimed(ci, &mut claimed);
        shard.pump(&this, ci);
        shard.flush_turn();
        if let Some(entry) = shard.conn_mut(ci, serial) {
            // Also without output when the input set an earlier deadline (an
            // incoming message's expiry) than the one the writer sleeps for.
            let deadline = entry.conn.poll_timeout();
            let earlier = deadline.is_some_and(|d| deadline_before.is_none_or(|b| d < b));
            if entry.conn.wants_transmit() || entry.conn.is_closed() || earlier {
                entry.writer.notify_one();
            }
        }
        if done {
            return;
        }
    }
}

async fn write_loop(this: ShardRef, ci: usize, serial: u64, stream: Rc<TcpStream>) {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let (notify, deadline) = {
            let mut shard = this.borrow_mut();
            let idle_timeout = shard.config.idle_timeout;
            let Some(entry) = shard.conn_mut(ci, serial) else {
                return;
            };
            let idle = entry.idle_since.map(|since| since + idle_timeout);
            let deadline = match (entry.conn.poll_timeout(), idle) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (entry.writer.clone(), deadline)
        };
        match deadline {
            Some(deadline) => {
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
                }
            }
            None => notify.notified().await,
        }
        loop {
            let closed = {
                let mut guard = this.borrow_mut();
                let shard = &mut *guard;
                let idle_timeout = shard.config.idle_timeout;
                let Some(entry) = shard.conns.get_mut(ci).filter(|c| c.serial == serial) else {
                    return;
                };
                let now = Instant::now();
                if entry.conn.poll_timeout().is_some_and(|t| t <= now) {
                    let timeouts = entry.conn.stats().frame_timeouts;
                    entry.conn.handle_timeout(now);
                    if entry.conn.stats().frame_timeouts > timeouts {
                        if let Some(suppressed) = shard.logs.frame_timeout.allow(now) {
                            let timeout = shard.config.connection.frame_timeout;
                            tracing::warn!(
                                shard = shard.index,
                                conn = ci,
                                ?timeout,
                                suppressed,
                                "closed a connection holding half a frame (frame-timeout)"
                            );
                        }
                    }
                }
                let Some(entry) = shard.conns.get_mut(ci).filter(|c| c.serial == serial) else {
                    return;
                };
                if entry.idle_since.is_some_and(|since| since + idle_timeout <= now)
                    && !entry.conn.is_closed()
                {
                    entry.conn.handle_closed(&format!(
                        "idle for {idle_timeout:?} with no session (idle-timeout)"
                    ));
                    shard.totals.connections_idle_closed += 1;
                    if let Some(suppressed) = shard.logs.idle.allow(now) {
                        tracing::info!(
                            shard = shard.index,
                            conn = ci,
                            ?idle_timeout,
                            suppressed,
                            "closed a connection that carried no session (idle-timeout)"
                        );
                    }
                }
                entry.conn.poll_transmit(now, &mut batch);
                shard.pump(&this, ci);
                shard.flush_turn();
                shard.conns[ci].conn.is_closed()
            };
            if batch.is_empty() {
                if closed {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    this.borrow_mut().remove_conn(ci);
                    return;
                }
                break;
            }
            set_writing(&this, ci, serial, true);
            let written = write_all(&stream, &mut batch).await;
            set_writing(&this, ci, serial, false);
            if let Err(error) = written {
                batch.clear();
                let mut shard = this.borrow_mut();
                if let Some(entry) = shard.conn_mut(ci, serial) {
                    if !entry.conn.is_closed() {
                        entry.conn.handle_closed(&format!("write failed: {error}"));
                    }
                    shard.pump(&this, ci);
                    shard.flush_turn();
                }
            }
        }
    }
}

fn set_writing(this: &ShardRef, ci: usize, serial: u64, writing: bool) {
    if let Some(entry) = this.borrow_mut().conn_mut(ci, serial) {
        entry.writing = writing;
        if !writing {
            entry.reader.notify_one();
        }
    }
}

/// Writes every buffer, `IOV_MAX` at a time, resuming after short writes
/// (tokio-uring 0.5 has no `writev_all`). Used by the shards and by
/// msrp-loadgen's client side.
pub async fn write_all(stream: &TcpStream, batch: &mut Vec<Bytes>) -> io::Result<()> {
    let mut pending = std::mem::take(batch);
    while !pending.is_empty() {
        let rest = match pending.len() > IOV_MAX {
            true => pending.split_off(IOV_MAX),
            false => Vec::new(),
        };
        while !pending.is_empty() {
            let (result, mut written) = stream.writev(pending).await;
            let mut n = result?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let done = written.iter().take_while(|b| {
                let whole = n >= b.len();
                if whole {
                    n -= b.len();
                }
                whole
            });
            let done = done.count();
            written.drain(..done);
            if n > 0 {
                written[0].advance(n);
            }
            pending = written;
        }
        pending = rest;
    }
    // Hand the (empty) vector back so its capacity is reused.
    *batch = pending;
    Ok(())
}
