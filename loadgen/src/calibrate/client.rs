//! The client side: pipelined windows of small writes against the echo
//! (small phase), and batched chunk writes into the sink (bulk phase).

use std::cell::Cell;
use std::fmt;
use std::future::{poll_fn, Future};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::task::{Poll, Waker};

use anyhow::{anyhow, ensure, Context, Result};
use bytes::Bytes;
use tokio_uring::net::TcpStream;

use msrp_engine::driver::write_all as uring_write_all;

use super::phase::{Note, Shared};
use super::READ_BYTES;

/// Bulk chunks per `writev`. With one 64 KiB chunk per write the sender, not
/// the receiver, sets the pace on loopback (measured for issue 4: about
/// 1.3 GB/s against 4.5 GB/s with 16 per write), and the engine's own
/// clients batch chunks the same way.
const CHUNKS_PER_WRITE: usize = 16;

async fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    // Writes are whole batches; the last segment of one must not wait for an
    // ACK (Nagle) while the echo of the previous batch waits for it.
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    Ok(stream)
}

/// Octets that never hold anything the echo or the sink would look at:
/// letters and digits.
fn pattern(len: usize) -> Bytes {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    ALPHABET
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect::<Vec<u8>>()
        .into()
}

/// Awaits every task, returning the first failure (a panic as an error).
async fn join_tasks<T, E>(tasks: Vec<(usize, T)>) -> Result<()>
where
    T: Future<Output = std::result::Result<Result<()>, E>>,
    E: fmt::Display,
{
    let mut failed = None;
    for (conn, task) in tasks {
        let result = match task.await {
            Ok(result) => result,
            Err(e) => Err(anyhow!("its task failed: {e}")),
        };
        if let Err(e) = result {
            failed.get_or_insert(e.context(format!("connection {conn}")));
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Spawns `task` on this thread's runtime; its failure stops the phase.
fn spawn_stopping(
    shared: Arc<Shared>,
    task: impl Future<Output = Result<()>> + 'static,
) -> impl Future<Output = std::result::Result<Result<()>, impl fmt::Display>> {
    tokio_uring::spawn(async move {
        let result = task.await;
        if result.is_err() {
            shared.stop();
        }
        result
    })
}

/// Small phase: `connections` connections, each with up to `window` messages
/// of `message_bytes` outstanding.
///
/// Why batches: the window is written half at a time, one write for
/// `window / 2` messages, as the engine's clients do. One
/// write per message makes the syscalls and the per-segment TCP work the
/// limit, which would measure this client's write path, not what loopback
/// and the runtime can carry: on the 2-core machine this was written on,
/// 350-octet messages in a window of 256 went at about 0.15 M/s written one
/// by one against 1.4 to 3.9 M/s written 128 at a time (10 to 28 times
/// slower).
pub(super) async fn small_client(
    addr: SocketAddr,
    message_bytes: usize,
    window: usize,
    connections: usize,
    shared: Arc<Shared>,
    notes: Sender<Note>,
) -> Result<()> {
    let batch = Batch::new(message_bytes, window);
    let mut streams = Vec::with_capacity(connections);
    for conn in 0..connections {
        streams.push(Rc::new(
            connect(addr)
                .await
                .with_context(|| format!("connection {conn}"))?,
        ));
    }
    let (mut readers, mut writers) = (Vec::new(), Vec::new());
    for (conn, stream) in streams.into_iter().enumerate() {
        let window = Rc::new(Window::new(window as u64));
        let reader = read_echo(
            stream.clone(),
            window.clone(),
            message_bytes as u64,
            shared.clone(),
        );
        readers.push((conn, spawn_stopping(shared.clone(), reader)));
        let writer = write_batches(stream, window, batch.clone(), shared.clone());
        writers.push((conn, spawn_stopping(shared.clone(), writer)));
    }
    let _ = notes.send(Note::Connected);
    // A reader's failure is the informative one: its writer only stops.
    let read = join_tasks(readers).await;
    let written = join_tasks(writers).await;
    read.and(written)
}

/// One connection's window of messages, written again and again: the same
/// octets each time (the echo only counts them), cut in two halves so that
/// one half can be written while the other is still coming back.
#[derive(Clone)]
struct Batch {
    bytes: Bytes,
    /// Octet range of each half and the messages it holds.
    halves: [(std::ops::Range<usize>, u64); 2],
}

impl Batch {
    fn new(message_bytes: usize, window: usize) -> Batch {
        debug_assert!(window >= 2, "a batch is written in two halves");
        let first = window / 2;
        let mid = first * message_bytes;
        let end = window * message_bytes;
        Batch {
            bytes: pattern(end),
            halves: [(0..mid, first as u64), (mid..end, (window - first) as u64)],
        }
    }
}

/// Messages in flight on one connection, bounded: the writer waits for room,
/// the reader makes it. Both run on the client's one thread.
struct Window {
    limit: u64,
    sent: Cell<u64>,
    answered: Cell<u64>,
    /// The writer wrote its last message and shut its side down.
    finished: Cell<bool>,
    /// The reader ended: no room will ever come.
    closed: Cell<bool>,
    writer: Cell<Option<Waker>>,
}

impl Window {
    fn new(limit: u64) -> Window {
        Window {
            limit,
            sent: Cell::new(0),
            answered: Cell::new(0),
            finished: Cell::new(false),
            closed: Cell::new(false),
            writer: Cell::new(None),
        }
    }

    /// Waits until `messages` more fit and counts them as sent; false when
    /// the reader ended and they never will.
    async fn reserve(&self, messages: u64) -> bool {
        debug_assert!(messages <= self.limit);
        poll_fn(|cx| {
            if self.closed.get() {
                Poll::Ready(false)
            } else if self.sent.get() + messages - self.answered.get() <= self.limit {
                self.sent.set(self.sent.get() + messages);
                Poll::Ready(true)
            } else {
                self.writer.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    fn answer(&self, messages: u64) {
        self.answered.set(self.answered.get() + messages);
        self.wake_writer();
    }

    fn close(&self) {
        self.closed.set(true);
        self.wake_writer();
    }

    fn wake_writer(&self) {
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }
}

/// Writes the batch half by half while the window has room, until the phase
/// stops; then shuts the sending side so that the echo server, having
/// echoed the rest, ends the connection.
async fn write_batches(
    stream: Rc<TcpStream>,
    window: Rc<Window>,
    batch: Batch,
    shared: Arc<Shared>,
) -> Result<()> {
    let result = async {
        'run: while !shared.stopping() {
            for (range, messages) in &batch.halves {
                if !window.reserve(*messages).await {
                    // The reader ended and says why.
                    break 'run;
                }
                let (result, _) = stream.write_all(Bytes::slice(&batch.bytes, range.clone())).await;
                result.context("writing messages")?;
            }
        }
        window.finished.set(true);
        stream
            .shutdown(Shutdown::Write)
            .context("shutting down the sending side")
    }
    .await;
    if result.is_err() {
        // Unblock the reader: nothing more will be echoed.
        let _ = stream.shutdown(Shutdown::Both);
    }
    result
}

/// Reads the echo until the server closes, counting whole messages by
/// octets, and checks at the end that everything sent came back.
async fn read_echo(
    stream: Rc<TcpStream>,
    window: Rc<Window>,
    message_bytes: u64,
    shared: Arc<Shared>,
) -> Result<()> {
    let result = async {
        let mut buf = vec![0u8; READ_BYTES];
        let (mut octets, mut messages) = (0u64, 0u64);
        loop {
            let (result, returned) = stream.read(buf).await;
            buf = returned;
            let n = result.context("reading the echo")?;
            if n == 0 {
                let sent = window.sent.get() * message_bytes;
                ensure!(
                    window.finished.get(),
                    "the echo server closed the connection after {octets} octets"
                );
                ensure!(
                    octets == sent,
                    "the echo server closed the connection after {octets} of {sent} octets"
                );
                return Ok(());
            }
            octets += n as u64;
            let whole = octets / message_bytes;
            let new = whole - messages;
            messages = whole;
            if new > 0 {
                window.answer(new);
                shared.progress.fetch_add(new, Ordering::Relaxed);
            }
        }
    }
    .await;
    window.close();
    result
}

/// Bulk phase: one connection writing `CHUNKS_PER_WRITE` chunks of
/// `chunk_bytes` per `writev` (the same body each time, never copied)
/// until the phase stops; the sink counts what it reads.
pub(super) async fn bulk_client(
    addr: SocketAddr,
    chunk_bytes: usize,
    shared: Arc<Shared>,
    notes: Sender<Note>,
) -> Result<()> {
    let stream = connect(addr).await?;
    let _ = notes.send(Note::Connected);
    let chunk = pattern(chunk_bytes);
    let mut parts = Vec::with_capacity(CHUNKS_PER_WRITE);
    while !shared.stopping() {
        parts.extend(std::iter::repeat_n(&chunk, CHUNKS_PER_WRITE).cloned());
        uring_write_all(&stream, &mut parts)
            .await
            .context("writing chunks")?;
    }
    stream
        .shutdown(Shutdown::Write)
        .context("shutting down the sending side")
}
