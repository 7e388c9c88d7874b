//! The one io_uring loop that drives a sans-IO [`Connection`] over a TCP
//! stream, used by the engine's shards and by msrp-loadgen's load threads,
//! so that the load measures the loop the engine runs.
//!
//! Two tasks per connection on the thread's `tokio_uring` loop:
//! - the reader reads up to [`ConnectionHost::read_bytes`] straight into the
//!   connection's own buffer, hands it to the connection, lets the host act
//!   on the events, and wakes the writer when output appeared, the
//!   connection closed or the input set an earlier deadline;
//! - the writer sleeps until it is woken or the earliest deadline (the
//!   connection's and the host's own), runs the timers, and hands every
//!   ready frame to one gathered write per turn.
//!
//! The host owns the connections (behind one `Rc<RefCell<..>>`, borrowed
//! only between awaits) and decides what only it knows: when not to read
//! (backpressure), how input is handed over (a directory of pending
//! sessions), what its events mean, its own timers, and what to do once a
//! connection has written its last bytes.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::Notify;
use tokio_uring::buf::{BoundedBuf, IoBuf, IoBufMut};
use tokio_uring::net::TcpStream;

use crate::Connection;

pub use super::tls_io::{start as start_tls, Handshake, TlsHost};

/// Buffers per `writev` (Linux IOV_MAX).
pub(crate) const IOV_MAX: usize = 1024;

/// What the driver needs from the owner of a connection.
pub trait ConnectionHost: Sized + 'static {
    /// The host's name for one connection; a slot that may be reused should
    /// carry a serial, so a task never drives its successor.
    type Id: Copy + 'static;

    /// The connection the tasks were started for, while it exists.
    fn connection(&mut self, id: Self::Id) -> Option<&mut Connection>;

    /// Wakes the connection's writer.
    fn writer(&self, id: Self::Id) -> Option<Rc<Notify>>;

    /// Octets to read at once.
    fn read_bytes(&self) -> usize;

    /// Before each read: `Some(wake)` to wait for instead of reading
    /// (backpressure). The host tells the connection it paused
    /// ([`Connection::set_input_paused`]) so its frame timer stops.
    fn read_paused(&mut self, _id: Self::Id, _now: Instant) -> Option<Rc<Notify>> {
        None
    }

    /// Hands the octets just read (in the connection's input buffer) to the
    /// connection: [`Connection::handle_input`] or `handle_input_with`.
    fn handle_input(&mut self, id: Self::Id, now: Instant);

    /// After every turn of either task: act on the connection's events.
    fn end_turn(&mut self, this: &Rc<RefCell<Self>>, id: Self::Id);

    /// A deadline of the host's own beside the connection's (an idle
    /// timeout), acted on in [`ConnectionHost::on_wake`].
    fn deadline(&self, _id: Self::Id) -> Option<Instant> {
        None
    }

    /// The writer woke (after the connection's timers ran).
    fn on_wake(&mut self, _id: Self::Id, _now: Instant) {}

    /// A write is in flight (`true`) or finished.
    fn set_writing(&mut self, _id: Self::Id, _writing: bool) {}

    /// The connection is closed and its last bytes are written.
    fn finished(&mut self, _id: Self::Id) {}
}

/// What lies between a connection's octets and its socket: nothing
/// ([`Plain`]), or a TLS record layer (`tls_io`). The reader and the writer
/// below are written once over it; each task has a wire of its own (TLS:
/// both share the record layer). [`Plain`] is zero-sized and its methods
/// are what the loops did inline before, so the plaintext path costs what
/// it did.
pub(crate) trait Wire<H: ConnectionHost>: 'static {
    /// What a read fills.
    type Buffer: IoBufMut;

    /// The buffer the next read fills from its initialised length to its
    /// capacity: the connection's input buffer (plaintext) or the wire's
    /// own.
    fn read_buffer(&mut self, h: &mut H, id: H::Id) -> Option<Self::Buffer>;

    /// The read is back: take the buffer back, whatever the result.
    fn restore(&mut self, h: &mut H, id: H::Id, buffer: Self::Buffer);

    /// Octets were read: hand them on. True: the connection is over (the
    /// reason already given).
    fn input(&mut self, h: &mut H, id: H::Id, now: Instant) -> bool;

    /// After a read: the wire has output of its own (a handshake message,
    /// an alert) for the writer.
    fn wants_write(&self) -> bool {
        false
    }

    /// The writer's turn: what to write for the frames of `batch` (which it
    /// empties or hands back); `closed`: the connection's last turn.
    fn seal<'a>(&'a mut self, batch: &'a mut Vec<Bytes>, closed: bool) -> &'a mut Vec<Bytes>;
}

/// Plaintext MSRP: reads land in the connection's own buffer, frames are
/// written as they are.
pub(crate) struct Plain;

impl<H: ConnectionHost> Wire<H> for Plain {
    type Buffer = BytesMut;

    #[inline]
    fn read_buffer(&mut self, h: &mut H, id: H::Id) -> Option<BytesMut> {
        let read_bytes = h.read_bytes();
        let buffer = h.connection(id)?.input_buffer();
        if buffer.capacity() - buffer.len() < read_bytes / 4 {
            buffer.reserve(read_bytes);
        }
        Some(std::mem::take(buffer))
    }

    #[inline]
    fn restore(&mut self, h: &mut H, id: H::Id, buffer: BytesMut) {
        if let Some(conn) = h.connection(id) {
            *conn.input_buffer() = buffer;
        }
    }

    #[inline]
    fn input(&mut self, h: &mut H, id: H::Id, now: Instant) -> bool {
        h.handle_input(id, now);
        false
    }

    #[inline]
    fn seal<'a>(&'a mut self, batch: &'a mut Vec<Bytes>, _closed: bool) -> &'a mut Vec<Bytes> {
        batch
    }
}

/// Starts the reader and the writer of one connection.
pub fn start<H: ConnectionHost>(host: &Rc<RefCell<H>>, id: H::Id, stream: TcpStream) {
    spawn(host, id, stream, Plain, Plain);
}

/// Starts the two tasks of a connection over `reader` and `writer`.
pub(crate) fn spawn<H: ConnectionHost, W: Wire<H>>(
    host: &Rc<RefCell<H>>,
    id: H::Id,
    stream: TcpStream,
    reader: W,
    writer: W,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY");
    }
    let stream = Rc::new(stream);
    tokio_uring::spawn(read_loop(host.clone(), id, stream.clone(), reader));
    tokio_uring::spawn(write_loop(host.clone(), id, stream, writer));
}

async fn read_loop<H: ConnectionHost, W: Wire<H>>(
    host: Rc<RefCell<H>>,
    id: H::Id,
    stream: Rc<TcpStream>,
    mut wire: W,
) {
    loop {
        let next = {
            let mut h = host.borrow_mut();
            if h.connection(id).is_none_or(|conn| conn.is_closed()) {
                return;
            }
            match h.read_paused(id, Instant::now()) {
                Some(wake) => Err(wake),
                None => match wire.read_buffer(&mut *h, id) {
                    Some(buffer) => Ok(buffer),
                    None => return,
                },
            }
        };
        let buffer = match next {
            Ok(buffer) => buffer,
            Err(wake) => {
                wake.notified().await;
                continue;
            }
        };
        let (len, capacity) = (IoBuf::bytes_init(&buffer), IoBuf::bytes_total(&buffer));
        let (result, slice) = stream.read(buffer.slice(len..capacity)).await;
        let mut h = host.borrow_mut();
        wire.restore(&mut *h, id, slice.into_inner());
        let Some(conn) = h.connection(id) else { return };
        let deadline_before = conn.poll_timeout();
        let now = Instant::now();
        let done = match result {
            Ok(0) => {
                // TLS (RFC 8446 6.1): an end without close_notify may be a
                // truncation; either way the connection is over.
                conn.handle_eof();
                true
            }
            Ok(_) => wire.input(&mut *h, id, now),
            Err(error) => {
                conn.handle_closed(&format!("read failed: {error}"));
                true
            }
        };
        h.end_turn(&host, id);
        let wire_output = wire.wants_write();
        if let Some(conn) = h.connection(id) {
            // Also without output when the input set an earlier deadline (an
            // incoming message's expiry, the frame timer) than the one the
            // writer sleeps for.
            let deadline = conn.poll_timeout();
            let earlier = deadline.is_some_and(|d| deadline_before.is_none_or(|b| d < b));
            if wire_output || conn.wants_transmit() || conn.is_closed() || earlier {
                if let Some(writer) = h.writer(id) {
                    writer.notify_one();
                }
            }
        }
        if done {
            return;
        }
    }
}

async fn write_loop<H: ConnectionHost, W: Wire<H>>(
    host: Rc<RefCell<H>>,
    id: H::Id,
    stream: Rc<TcpStream>,
    mut wire: W,
) {
    let mut batch: Vec<Bytes> = Vec::new();
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
            let out = wire.seal(&mut batch, closed);
            if out.is_empty() {
                if closed {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    host.borrow_mut().finished(id);
                    return;
                }
                break;
            }
            host.borrow_mut().set_writing(id, true);
            let written = {
                // The timers run while a write waits for a peer that does
                // not read (RFC 4975 7.1.1: the chunks in it were handed to
                // the operating system); a connection they close is shut
                // down, which ends the write.
                let write = write_all(&stream, out);
                tokio::pin!(write);
                loop {
                    let deadline = host.borrow_mut().connection(id).and_then(|c| c.poll_timeout());
                    let Some(deadline) = deadline else {
                        break write.await;
                    };
                    tokio::select! {
                        written = &mut write => break written,
                        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                            let mut h = host.borrow_mut();
                            let Some(conn) = h.connection(id) else { return };
                            conn.handle_timeout(Instant::now());
                            let closed = conn.is_closed();
                            h.end_turn(&host, id);
                            if closed {
                                let _ = stream.shutdown(std::net::Shutdown::Both);
                            }
                        }
                    }
                }
            };
            host.borrow_mut().set_writing(id, false);
            if let Err(error) = written {
                out.clear();
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

/// Writes every buffer, `IOV_MAX` at a time, resuming after short writes
/// (tokio-uring 0.5 has no `writev_all`). The driver's writer, and
/// msrp-loadgen's calibration client.
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
