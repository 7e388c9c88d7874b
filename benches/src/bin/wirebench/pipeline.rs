//! One connection's traffic: a writer keeps up to a window of requests
//! outstanding and a reader counts what comes back, as two tasks on the
//! client's one io_uring thread so that reads and writes overlap.

use std::cell::Cell;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::task::{Poll, Waker};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use tokio_uring::net::TcpStream;

use crate::count::{StreamCounter, END_LINE, OK_STATUS};
use crate::workload::{BulkStream, SmallBatch};

/// Read buffer per connection: large, so one read drains many responses.
const READ_BYTES: usize = 256 * 1024;

/// What one connection sends.
pub enum Traffic {
    /// The same window of whole messages, again and again.
    Small(SmallBatch),
    /// Endless chunks of large messages, several to a `writev`: with one
    /// 64 KiB chunk per write the sender, not the receiver, set the pace on
    /// loopback (about 1.3 GB/s against 4.5 GB/s with 16 per write).
    Bulk {
        chunks: BulkStream,
        chunks_per_write: usize,
    },
}

/// One connection's traffic and what the peer answers with.
pub struct Plan {
    pub traffic: Traffic,
    pub replies: Replies,
}

pub enum Replies {
    /// A frame back for every request (MSRP responses, or an echo); at most
    /// `window` requests are outstanding.
    Frames {
        window: u64,
        body_bytes_per_frame: u64,
        expect_ok: bool,
    },
    /// Nothing comes back (a sink): writes count as done when complete.
    None,
}

/// Counts shared with the measuring thread.
#[derive(Default)]
pub struct Tally {
    pub frames: AtomicU64,
    pub body_bytes: AtomicU64,
}

impl Tally {
    fn add(&self, frames: u64, body_bytes: u64) {
        self.frames.fetch_add(frames, Ordering::Relaxed);
        self.body_bytes.fetch_add(body_bytes, Ordering::Relaxed);
    }
}

/// What the I/O thread tells the measuring thread.
pub enum Status {
    /// Every connection is up and its traffic started.
    Connected,
    /// A connection failed; the run is void.
    Failed(anyhow::Error),
}

/// Connects every plan's connection to `target`, then runs them until one
/// fails (or forever).
pub async fn drive(target: SocketAddr, plans: Vec<Plan>, tally: Arc<Tally>, status: Sender<Status>) {
    let mut streams = Vec::with_capacity(plans.len());
    for conn in 0..plans.len() {
        match connect(target).await {
            Ok(stream) => streams.push(Rc::new(stream)),
            Err(e) => {
                let _ = status.send(Status::Failed(e.context(format!("connection {conn}"))));
                return;
            }
        }
    }
    for (conn, (plan, stream)) in plans.into_iter().zip(streams).enumerate() {
        let window = match plan.replies {
            Replies::Frames {
                window,
                body_bytes_per_frame,
                expect_ok,
            } => {
                let window = Rc::new(Window::new(window));
                let reader = read_replies(
                    stream.clone(),
                    window.clone(),
                    tally.clone(),
                    body_bytes_per_frame,
                    expect_ok,
                );
                spawn_reporting(conn, reader, status.clone());
                Some(window)
            }
            Replies::None => None,
        };
        let writer = write_requests(stream, plan.traffic, window, tally.clone());
        spawn_reporting(conn, writer, status.clone());
    }
    let _ = status.send(Status::Connected);
    // This thread ends with the process: the measuring thread decides when
    // the run is over, and nothing here has to be flushed or closed.
    std::future::pending::<()>().await
}

async fn connect(target: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect(target)
        .await
        .with_context(|| format!("connecting to {target}"))?;
    // The writer hands over whole batches; a small last segment must not wait
    // for an ACK (Nagle) while the peer waits for it to finish a frame.
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    Ok(stream)
}

fn spawn_reporting(
    conn: usize,
    task: impl std::future::Future<Output = Result<()>> + 'static,
    status: Sender<Status>,
) {
    tokio_uring::spawn(async move {
        if let Err(e) = task.await {
            let _ = status.send(Status::Failed(e.context(format!("connection {conn}"))));
        }
    });
}

/// Requests in flight on one connection, bounded: the writer waits for room,
/// the reader makes it.
struct Window {
    limit: u64,
    sent: Cell<u64>,
    answered: Cell<u64>,
    writer: Cell<Option<Waker>>,
}

impl Window {
    fn new(limit: u64) -> Window {
        Window {
            limit,
            sent: Cell::new(0),
            answered: Cell::new(0),
            writer: Cell::new(None),
        }
    }

    /// Waits until `frames` more requests fit, and counts them as sent.
    async fn reserve(&self, frames: u64) {
        debug_assert!(
            frames <= self.limit,
            "{frames} requests can never fit a window of {}",
            self.limit
        );
        poll_fn(|cx| {
            if self.sent.get() + frames - self.answered.get() <= self.limit {
                self.sent.set(self.sent.get() + frames);
                Poll::Ready(())
            } else {
                self.writer.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    fn answer(&self, frames: u64) {
        self.answered.set(self.answered.get() + frames);
        debug_assert!(
            self.answered.get() <= self.sent.get(),
            "more answers than requests"
        );
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }
}

async fn write_requests(
    stream: Rc<TcpStream>,
    traffic: Traffic,
    window: Option<Rc<Window>>,
    tally: Arc<Tally>,
) -> Result<()> {
    match traffic {
        Traffic::Small(batch) => {
            let window = window.context("small messages need responses to pace them")?;
            loop {
                for (range, frames) in &batch.halves {
                    window.reserve(*frames).await;
                    let (result, _) = stream.write_all(batch.bytes.slice(range.clone())).await;
                    result.context("writing SENDs")?;
                }
            }
        }
        Traffic::Bulk {
            mut chunks,
            chunks_per_write,
        } => {
            let mut parts = Vec::with_capacity(3 * chunks_per_write);
            loop {
                if let Some(window) = &window {
                    window.reserve(chunks_per_write as u64).await;
                }
                for _ in 0..chunks_per_write {
                    let chunk = chunks.next_chunk();
                    parts.extend([chunk.head, chunk.body, chunk.end_line]);
                }
                parts = writev_all(&stream, parts).await.context("writing chunks")?;
                parts.clear();
                if window.is_none() {
                    tally.add(
                        chunks_per_write as u64,
                        chunks_per_write as u64 * chunks.chunk_bytes(),
                    );
                }
            }
        }
    }
}

/// Writes all of `parts` in order, bodies without copying them; gives the
/// vector back for reuse.
async fn writev_all(stream: &TcpStream, parts: Vec<Bytes>) -> std::io::Result<Vec<Bytes>> {
    let total: usize = parts.iter().map(Bytes::len).sum();
    let (result, parts) = stream.writev(parts).await;
    let mut written = result?;
    if written == total {
        return Ok(parts);
    }
    // A short write (the socket buffer filled up): the rest, part by part.
    for part in &parts {
        if written >= part.len() {
            written -= part.len();
            continue;
        }
        let (result, _) = stream.write_all(part.slice(written..)).await;
        result?;
        written = 0;
    }
    Ok(parts)
}

async fn read_replies(
    stream: Rc<TcpStream>,
    window: Rc<Window>,
    tally: Arc<Tally>,
    body_bytes_per_frame: u64,
    expect_ok: bool,
) -> Result<()> {
    let mut buf = vec![0u8; READ_BYTES];
    let mut end_lines = StreamCounter::new(END_LINE);
    let mut oks = StreamCounter::new(OK_STATUS);
    let (mut frames_total, mut oks_total) = (0u64, 0u64);
    loop {
        let (result, returned) = stream.read(buf).await;
        buf = returned;
        let n = result.context("reading replies")?;
        if n == 0 {
            bail!("the peer closed the connection after {frames_total} replies");
        }
        let piece = &buf[..n];
        let frames = end_lines.feed(piece);
        frames_total += frames;
        if expect_ok {
            // A response's status line comes before its end-line, so while
            // every response is a 200 the OKs never fall behind the frames.
            oks_total += oks.feed(piece);
            if oks_total < frames_total {
                bail!(
                    "response {frames_total} is not 200 OK; the read that ended it: {:?}",
                    String::from_utf8_lossy(&piece[..n.min(600)])
                );
            }
        }
        window.answer(frames);
        tally.add(frames, frames * body_bytes_per_frame);
    }
}
