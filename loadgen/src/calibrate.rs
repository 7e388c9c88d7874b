//! The raw limits of this host, measured just before an MSRP run so that its
//! figures read as fractions of what loopback TCP allows here: the same
//! runtime (tokio-uring, one thread a side), the same kinds of writes, no
//! MSRP at all.
//!
//! Two phases, each on a fresh pair of threads:
//!
//! - *small*: client connections keep a window of `message_bytes` writes
//!   outstanding against an echo server and count complete messages as
//!   they come back (the shape of pipelined SENDs answered by 200s);
//! - *bulk*: one connection streams `chunk_bytes` writes into a sink that
//!   counts the octets it reads (the shape of a large file in chunks).
//!
//! It began as the raw server and pipelined client of `wirebench`, a tool of
//! issue 4 that this module and `bench` replace; here both run in-process:
//! the server and the client each run on their own
//! thread with their own io_uring, pinned as asked, and both end before
//! [`calibrate`] returns.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::{poll_fn, Future};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::Bytes;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

use msrp_engine::uring_write_all;

use crate::report::Calibration;

/// Run before each phase's measured interval and left out of it: long
/// enough for the connections' windows and socket buffers to fill and the
/// rate to settle.
pub const WARM_UP: Duration = Duration::from_millis(300);

/// Read buffer per connection, on both sides, as large as the engine's: one
/// read drains many echoed messages.
const READ_BYTES: usize = 256 * 1024;

/// Bulk chunks per `writev`. With one 64 KiB chunk per write the sender, not
/// the receiver, sets the pace on loopback (measured for issue 4: about
/// 1.3 GB/s against 4.5 GB/s with 16 per write), and the engine's own
/// clients batch chunks the same way.
const CHUNKS_PER_WRITE: usize = 16;

/// How long the client may take to connect before the phase is void.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long each thread may take to wind down once told to stop; past it
/// the thread is left behind (detached: it does not keep the process alive)
/// and the phase fails.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What to measure. `calibrate` rejects nonsense (zero sizes, a window
/// under 2, more than two CPUs) with an error.
#[derive(Clone, Debug)]
pub struct CalibrationSettings {
    /// Octets of one small write: the size of one serialized MSRP SEND frame,
    /// so that the echo carries as many frames per second as the engine
    /// would have to parse at best.
    pub message_bytes: usize,
    /// Octets of one bulk write unit (a chunk's body).
    pub chunk_bytes: usize,
    /// Measured seconds of each phase, after [`WARM_UP`].
    pub seconds_each: f64,
    /// `[server_cpu, client_cpu]`; one CPU pins both threads to it; empty
    /// leaves them to the scheduler.
    pub cpus: Vec<usize>,
    /// Small messages outstanding per connection (at least 2: a window is
    /// written in two halves).
    pub window: usize,
    /// Connections of the small phase; bulk uses one.
    pub connections: usize,
}

impl Default for CalibrationSettings {
    fn default() -> CalibrationSettings {
        CalibrationSettings {
            message_bytes: 350,
            chunk_bytes: 64 * 1024,
            seconds_each: 2.0,
            cpus: Vec::new(),
            window: 256,
            connections: 1,
        }
    }
}

/// Measures both phases, one after the other, and returns their rates. Takes
/// about `2 * (WARM_UP + seconds_each)` seconds; every thread and socket it
/// made is gone when it returns, whether it succeeds or not.
pub fn calibrate(settings: &CalibrationSettings) -> Result<Calibration> {
    check(settings)?;
    let (server_cpu, client_cpu) = match settings.cpus[..] {
        [] => (None, None),
        [both] => (Some(both), Some(both)),
        [server, client] => (Some(server), Some(client)),
        _ => bail!(
            "calibration runs two threads, server and client; {} CPUs given",
            settings.cpus.len()
        ),
    };
    let period = Duration::from_secs_f64(settings.seconds_each);
    let pins = Pins {
        server: server_cpu,
        client: client_cpu,
    };

    let small = run_phase(Phase::Small, pins, period, {
        let (message_bytes, window, connections) =
            (settings.message_bytes, settings.window, settings.connections);
        move |addr, shared, notes| small_client(addr, message_bytes, window, connections, shared, notes)
    })
    .context("calibrating small pipelined writes (echo)")?;

    let bulk = run_phase(Phase::Bulk, pins, period, {
        let chunk_bytes = settings.chunk_bytes;
        move |addr, shared, notes| bulk_client(addr, chunk_bytes, shared, notes)
    })
    .context("calibrating bulk writes (sink)")?;

    Ok(Calibration {
        small_messages_per_s: small.per_s(),
        message_bytes: settings.message_bytes,
        bulk_bytes_per_s: bulk.per_s(),
        chunk_bytes: settings.chunk_bytes,
        seconds_each: settings.seconds_each,
    })
}

fn check(settings: &CalibrationSettings) -> Result<()> {
    ensure!(settings.message_bytes > 0, "message_bytes must be at least 1");
    ensure!(settings.chunk_bytes > 0, "chunk_bytes must be at least 1");
    ensure!(
        settings.seconds_each.is_finite() && settings.seconds_each > 0.0,
        "seconds_each must be a positive number of seconds, not {}",
        settings.seconds_each
    );
    // Far beyond any sensible run, and below what `Duration` can hold.
    ensure!(
        settings.seconds_each <= 86_400.0,
        "seconds_each of {} is more than a day",
        settings.seconds_each
    );
    ensure!(
        settings.window >= 2,
        "window must be at least 2: a window is written in two halves"
    );
    ensure!(settings.connections > 0, "connections must be at least 1");
    for &cpu in &settings.cpus {
        // `core_affinity` indexes a fixed-size CPU set with it (and panics
        // past its end); the kernel judges the rest when the thread pins.
        ensure!(
            cpu < libc::CPU_SETSIZE as usize,
            "CPU {cpu} is beyond the {} a CPU set can name",
            libc::CPU_SETSIZE
        );
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The server writes back exactly what it reads; the client counts.
    Small,
    /// The server reads and drops, counting octets.
    Bulk,
}

#[derive(Clone, Copy, Debug)]
struct Pins {
    server: Option<usize>,
    client: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Server,
    Client,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Server => "server",
            Role::Client => "client",
        })
    }
}

/// What the phase's threads tell the measuring thread.
enum Note {
    /// Every client connection is up and its traffic started.
    Connected,
    /// A thread ended (sent as it exits, panicking or not): before the
    /// phase is over, that is a failure.
    Ended(Role),
}

/// Shared by the measuring thread and the phase's two threads.
#[derive(Default)]
struct Shared {
    /// Set by the measuring thread to end the phase, or by any task that
    /// failed, so that everything winds down.
    stop: AtomicBool,
    /// Small: messages echoed back whole; bulk: octets the sink read.
    progress: AtomicU64,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// A count over a measured interval.
struct Measured {
    count: u64,
    elapsed: Duration,
}

impl Measured {
    fn per_s(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

/// Why the measuring thread gave up before the interval was over.
enum Abort {
    /// That thread ended early: its own result says why.
    Ended(Role),
    Error(anyhow::Error),
}

/// Runs one phase: binds the server's listener here (so that a bind error
/// comes back directly and the port is known at once), starts the server
/// and the client, measures, then winds down: the client first, so the
/// server's connections end with a clean end-of-file, then the server, whose
/// accept is woken by a throwaway connection.
fn run_phase<C, F>(phase: Phase, pins: Pins, period: Duration, client: C) -> Result<Measured>
where
    C: FnOnce(SocketAddr, Arc<Shared>, Sender<Note>) -> F + Send + 'static,
    F: Future<Output = Result<()>> + 'static,
{
    let listener = listen().context("listening on 127.0.0.1")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let shared = Arc::new(Shared::default());
    let (notes, noted) = mpsc::channel();

    let server = Worker::spawn(Role::Server, pins.server, notes.clone(), {
        let shared = shared.clone();
        move || serve_all(listener, phase, shared)
    })?;
    let client = Worker::spawn(Role::Client, pins.client, notes.clone(), {
        let (shared, notes) = (shared.clone(), notes.clone());
        move || client(addr, shared, notes)
    });
    drop(notes);
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            shared.stop();
            wake(addr);
            // The server's own result matters less than why there is no
            // client, and `join` already gave it a deadline.
            let _ = server.join();
            return Err(e);
        }
    };

    let measured = measure(&noted, &shared, period);
    shared.stop();
    let client_result = client.join();
    wake(addr);
    let server_result = server.join();

    match measured {
        Ok(measured) => {
            client_result?;
            server_result?;
            Ok(measured)
        }
        // The thread that ended first tells what went wrong; the other
        // most likely only saw its peer go.
        Err(Abort::Ended(Role::Server)) => {
            server_result?;
            client_result?;
            bail!("the server thread ended before the phase was over")
        }
        Err(Abort::Ended(Role::Client)) => {
            client_result?;
            server_result?;
            bail!("the client thread ended before the phase was over")
        }
        Err(Abort::Error(e)) => {
            client_result?;
            server_result?;
            Err(e)
        }
    }
}

fn listen() -> Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).context("creating a socket")?;
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .context("binding")?;
    // Room for many connections arriving at once, as the engine's listener.
    socket.listen(1024).context("listening")?;
    Ok(socket.into())
}

/// Wakes the server's pending accept so that it sees `stop`. The server may
/// already be gone, so failing to connect is no error.
fn wake(addr: SocketAddr) {
    let _ = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}

/// Waits for the client to connect, lets the warm-up pass, then counts over
/// `period`: the counts at its two ends and the time between them, so that
/// neither the warm-up nor the wind-down is in the rate.
fn measure(noted: &Receiver<Note>, shared: &Shared, period: Duration) -> Result<Measured, Abort> {
    match noted.recv_timeout(CONNECT_TIMEOUT) {
        Ok(Note::Connected) => {}
        Ok(Note::Ended(role)) => return Err(Abort::Ended(role)),
        Err(RecvTimeoutError::Timeout) => {
            return Err(Abort::Error(anyhow!(
                "the client was not connected after {CONNECT_TIMEOUT:?}"
            )))
        }
        Err(RecvTimeoutError::Disconnected) => {
            return Err(Abort::Error(anyhow!("both threads ended before connecting")))
        }
    }
    watch(noted, WARM_UP)?;
    let (before, start) = (shared.progress.load(Ordering::Relaxed), Instant::now());
    watch(noted, period)?;
    let (after, end) = (shared.progress.load(Ordering::Relaxed), Instant::now());
    if after == before {
        return Err(Abort::Error(anyhow!(
            "nothing got through in {period:?}: is loopback stuck?"
        )));
    }
    Ok(Measured {
        count: after - before,
        elapsed: end - start,
    })
}

/// Lets the phase run for `period`, giving up at once if a thread ends.
fn watch(noted: &Receiver<Note>, period: Duration) -> Result<(), Abort> {
    let deadline = Instant::now() + period;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match noted.recv_timeout(left) {
            Ok(Note::Connected) => {}
            Ok(Note::Ended(role)) => return Err(Abort::Ended(role)),
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Abort::Error(anyhow!("both threads ended early")))
            }
        }
    }
}

/// One of the phase's threads: pinned, its own io_uring, its result (or
/// its panic, as an error) collected by [`Worker::join`].
struct Worker {
    role: Role,
    handle: JoinHandle<Result<()>>,
}

impl Worker {
    fn spawn<M, F>(role: Role, cpu: Option<usize>, notes: Sender<Note>, make: M) -> Result<Worker>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future<Output = Result<()>> + 'static,
    {
        let handle = std::thread::Builder::new()
            .name(format!("calib-{role}"))
            .spawn(move || {
                // Declared first, dropped last: the note goes out after the
                // runtime (and every socket in it) is gone, panic or not.
                let _ended = EndedNote { role, notes };
                if let Some(cpu) = cpu {
                    ensure!(
                        core_affinity::set_for_current(core_affinity::CoreId { id: cpu }),
                        "pinning the {role} thread to CPU {cpu}: {}",
                        std::io::Error::last_os_error()
                    );
                }
                // `Runtime::new` rather than `tokio_uring::start`, which
                // panics where io_uring is unavailable (an old kernel, a
                // seccomp filter, a low RLIMIT_MEMLOCK).
                let runtime =
                    tokio_uring::Runtime::new(&tokio_uring::builder()).context("starting io_uring")?;
                runtime.block_on(make())
            })
            .with_context(|| format!("spawning the {role} thread"))?;
        Ok(Worker { role, handle })
    }

    /// Waits, at most [`STOP_TIMEOUT`], for the thread to end, and returns
    /// its result; a panic becomes an error.
    fn join(self) -> Result<()> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        // `JoinHandle::join` has no timeout; the thread is only polled while
        // it winds down, which takes milliseconds.
        while !self.handle.is_finished() {
            if Instant::now() >= deadline {
                bail!(
                    "the {} thread did not stop within {STOP_TIMEOUT:?}; left running",
                    self.role
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        match self.handle.join() {
            Ok(result) => result.with_context(|| format!("the {} thread", self.role)),
            Err(panic) => Err(anyhow!(
                "the {} thread panicked: {}",
                self.role,
                panic_message(&*panic)
            )),
        }
    }
}

struct EndedNote {
    role: Role,
    notes: Sender<Note>,
}

impl Drop for EndedNote {
    fn drop(&mut self) {
        let _ = self.notes.send(Note::Ended(self.role));
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

// ---------------------------------------------------------------- server

/// Accepts connections until told to stop (the wake-up connection that
/// follows `stop` is dropped unserved), then waits for those it serves to
/// end, which they do when the client closes its side.
async fn serve_all(listener: std::net::TcpListener, phase: Phase, shared: Arc<Shared>) -> Result<()> {
    let listener = TcpListener::from_std(listener);
    let mut tasks = Vec::new();
    let mut failed = None;
    loop {
        match listener.accept().await {
            Ok(_) if shared.stopping() => break,
            Ok((stream, peer)) => {
                let shared = shared.clone();
                tasks.push(tokio_uring::spawn(async move {
                    let result = serve(stream, phase, &shared)
                        .await
                        .with_context(|| format!("serving {peer}"));
                    if result.is_err() {
                        shared.stop();
                    }
                    result
                }));
            }
            Err(e) => {
                shared.stop();
                failed = Some(anyhow::Error::new(e).context("accepting"));
                break;
            }
        }
    }
    drop(listener);
    for task in tasks {
        let result = task.await.map_err(|e| anyhow!("a connection's task failed: {e}"));
        if let Err(e) = result.and_then(|r| r) {
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The raw server: echo exactly what was read (small), or drop it
/// and count the octets (bulk); no parsing at all, the least work a server
/// on one io_uring thread can do with these bytes.
async fn serve(stream: TcpStream, phase: Phase, shared: &Shared) -> Result<()> {
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        let (result, returned) = stream.read(buf).await;
        let n = result.context("reading")?;
        if n == 0 {
            return Ok(());
        }
        buf = match phase {
            Phase::Bulk => {
                shared.progress.fetch_add(n as u64, Ordering::Relaxed);
                returned
            }
            Phase::Small => {
                let (result, slice) = stream.write_all(returned.slice(..n)).await;
                result.context("echoing")?;
                slice.into_inner()
            }
        };
    }
}

// ---------------------------------------------------------------- client

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
async fn small_client(
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
async fn bulk_client(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(connections: usize, cpus: Vec<usize>) -> CalibrationSettings {
        CalibrationSettings {
            message_bytes: 350,
            chunk_bytes: 64 * 1024,
            seconds_each: 0.3,
            cpus,
            window: 16,
            connections,
        }
    }

    fn assert_sane(calibration: &Calibration, settings: &CalibrationSettings) {
        assert!(
            calibration.small_messages_per_s.is_finite() && calibration.small_messages_per_s > 0.0,
            "{calibration:?}"
        );
        assert!(
            calibration.bulk_bytes_per_s.is_finite() && calibration.bulk_bytes_per_s > 0.0,
            "{calibration:?}"
        );
        assert_eq!(calibration.message_bytes, settings.message_bytes);
        assert_eq!(calibration.chunk_bytes, settings.chunk_bytes);
        assert_eq!(calibration.seconds_each, settings.seconds_each);
    }

    #[test]
    fn measures_both_phases_and_echoes_the_settings() {
        let settings = quick(2, Vec::new());
        let calibration = calibrate(&settings).expect("calibrating");
        assert_sane(&calibration, &settings);
    }

    #[test]
    fn pins_both_threads_to_one_cpu() {
        let cpu = core_affinity::get_core_ids()
            .and_then(|ids| ids.first().copied())
            .map_or(0, |id| id.id);
        let settings = CalibrationSettings {
            // Odd sizes: messages straddle every read and half window.
            message_bytes: 97,
            chunk_bytes: 1000,
            window: 3,
            ..quick(1, vec![cpu])
        };
        let calibration = calibrate(&settings).expect("calibrating");
        assert_sane(&calibration, &settings);
    }

    #[test]
    fn nonsense_settings_are_errors() {
        let bad = [
            CalibrationSettings {
                window: 1,
                ..quick(1, Vec::new())
            },
            CalibrationSettings {
                message_bytes: 0,
                ..quick(1, Vec::new())
            },
            CalibrationSettings {
                seconds_each: f64::NAN,
                ..quick(1, Vec::new())
            },
            quick(0, Vec::new()),
            quick(1, vec![0, 1, 2]),
            quick(1, vec![1 << 20]),
        ];
        for settings in bad {
            assert!(calibrate(&settings).is_err(), "{settings:?}");
        }
    }

    #[test]
    fn a_cpu_the_kernel_refuses_is_an_error_not_a_panic() {
        // Inside the CPU set's range, but (almost certainly) no such CPU.
        let settings = quick(1, vec![libc::CPU_SETSIZE as usize - 1]);
        let e = calibrate(&settings).expect_err("no such CPU");
        assert!(format!("{e:#}").contains("pinning"), "{e:#}");
    }
}
