//! One load thread: its connections, each read and written by two tasks on
//! this thread's io_uring loop, and a pacer that starts and paces sends.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use msrp_engine::driver::{self, ConnectionHost, Handshake, TlsHost};
use msrp_engine::Connection;
use msrp_engine::{
    ConnectionConfig, ContentSource, Event, MessageRef, OutgoingMessage, ReceivedBody, Role, SendError,
    SessionConfig, SessionKey, SourceChunk, SuccessReport,
};
use tokio::sync::Notify;
use tokio_uring::net::TcpStream;

use super::{
    LoadSettings, Recorded, SessionBatch, WorkerPlan, LATENCY_FILE_SESSION_TEXTS_ALONE,
    LATENCY_FILE_SESSION_TEXTS_WITH_FILE, LATENCY_TEXTS_ALONE, LATENCY_TEXTS_WITH_FILE, PHASE_MEASURE,
    PHASE_RAMP, PHASE_SETUP, PHASE_STOP,
};
use crate::commander::{Stamp, LATENCY_ENGINE_SENT};
use crate::profile::{Direction, FileSession, Scenario, FILE_SESSION_TEXT_SHARE};
use crate::report::{LATENCY_CHUNK, LATENCY_DELIVERED, LATENCY_SETUP};

/// Read buffer per connection: large, so one read drains many responses.
const READ_BYTES: usize = 256 * 1024;
/// In-memory bodies are slices of one shared buffer; larger messages come
/// from a [`PatternSource`].
const BODY_POOL_BYTES: usize = 1 << 20;
/// Open loop: sends that were due while every session was full, kept at
/// most; beyond, they are counted as never sent (the offered rate is more
/// than the engine takes) rather than queued without bound.
const BACKLOG_MAX: usize = 1 << 20;
/// How often the pacer wakes: phase changes and, in open loop, due sends.
const TICK: Duration = Duration::from_millis(1);

/// Content of any size, made of one buffer repeated: a 1 GiB file costs no
/// memory.
struct PatternSource {
    pool: Bytes,
    left: u64,
    size: u64,
}

impl PatternSource {
    fn new(pool: Bytes, size: u64) -> PatternSource {
        PatternSource {
            pool,
            left: size,
            size,
        }
    }
}

impl ContentSource for PatternSource {
    fn size(&self) -> Option<u64> {
        Some(self.size)
    }

    fn next_chunk(&mut self, max: usize) -> SourceChunk {
        if self.left == 0 {
            return SourceChunk::End;
        }
        let n = (max as u64).min(self.left).min(self.pool.len() as u64) as usize;
        self.left -= n as u64;
        SourceChunk::Data(Bytes::slice(&self.pool, ..n))
    }
}

/// An outgoing message until its outcome.
struct Out {
    /// When it was due: the latency counts from here (open loop: the
    /// schedule, so a stall shows as latency, not as fewer samples).
    scheduled: Instant,
    bytes: u64,
    session: usize,
    file: bool,
}

struct Conn {
    conn: Connection,
    keys: Vec<SessionKey>,
    by_key: HashMap<SessionKey, usize>,
    created: Vec<Instant>,
    out: HashMap<MessageRef, Out>,
    writer: Rc<Notify>,
}

/// Counts of this loop turn, added to [`Shared`] at its end.
#[derive(Default)]
struct Turn {
    established: usize,
    delivered: u64,
    delivered_bytes: u64,
    failed: u64,
    received: u64,
    received_bytes: u64,
    file_bytes: u64,
}

struct Worker {
    settings: Arc<LoadSettings>,
    conns: Vec<Conn>,
    recorded: Recorded,
    turn: Turn,
    rng: fastrand::Rng,
    pool: Bytes,
    /// Open loop: sends that were due while their session's queue was full.
    backlog: VecDeque<Instant>,
    /// Round-robin cursor over (connection, session) for open-loop sends.
    cursor: (usize, usize),
    /// `mixed`: the session the file goes on, which sends no texts unless
    /// `--file-session same`.
    file_session: Option<(usize, usize)>,
    /// `--file-session same`: texts sent so far by `send_next`, for the
    /// file session's share.
    texts_paced: u64,
    /// Sessions on all connections, kept as they are added.
    sessions: usize,
}

type WorkerRef = Rc<RefCell<Worker>>;

pub async fn run(plan: WorkerPlan, settings: Arc<LoadSettings>) -> Result<Recorded> {
    let profile = &settings.profile;
    let connection_config = ConnectionConfig {
        sessions_max: profile.sessions_per_connection.max(1),
        chunk_events: true,
        // Up to 1 MiB per writev, as the calibration's bulk writes: fewer
        // system calls and wake-ups of the engine per octet.
        transmit_bytes_max: 1 << 20,
        ..ConnectionConfig::default()
    };
    let mut conns = Vec::with_capacity(plan.sources.len());
    let mut streams = Vec::with_capacity(plan.sources.len());
    for &source in &plan.sources {
        let stream = connect(source, settings.target)
            .with_context(|| format!("connecting from {source} to {}", settings.target))?;
        conns.push(Conn {
            conn: Connection::new(connection_config),
            keys: Vec::new(),
            by_key: HashMap::new(),
            created: Vec::new(),
            out: HashMap::new(),
            writer: Rc::new(Notify::new()),
        });
        streams.push(stream);
        settings.shared.connections_up.fetch_add(1, Ordering::Relaxed);
    }
    let pool = Bytes::from(vec![b'x'; BODY_POOL_BYTES]);
    let worker: WorkerRef = Rc::new(RefCell::new(Worker {
        settings: settings.clone(),
        conns,
        recorded: Recorded::new(),
        turn: Turn::default(),
        rng: fastrand::Rng::with_seed(plan.index as u64 + 1),
        pool,
        backlog: VecDeque::new(),
        cursor: (0, 0),
        file_session: plan.sends_file.then_some((0, 0)),
        texts_paced: 0,
        sessions: 0,
    }));
    let tls = settings.tls.clone();
    for (ci, stream) in streams.into_iter().enumerate() {
        match &tls {
            None => driver::start(&worker, ci, stream),
            Some(config) => {
                let tls = crate::tls::client(config)?;
                driver::start_tls(&worker, ci, stream, rustls::Connection::Client(tls));
            }
        }
    }
    let WorkerPlan {
        sessions,
        rate,
        sends_file,
        ..
    } = plan;
    tokio_uring::spawn(adopt(worker.clone(), sessions));
    pace(&worker, rate, sends_file).await;
    // `--mode sip`: the calls end by BYE while their sessions still live.
    let shared = worker.borrow().settings.shared.clone();
    while shared.hold_open.load(Ordering::Relaxed) {
        tokio::time::sleep(TICK).await;
    }
    let recorded = std::mem::take(&mut worker.borrow_mut().recorded);
    Ok(recorded)
}

/// Adds each wave of sessions to its connection; an active session sends
/// its binding SEND at once.
async fn adopt(worker: WorkerRef, mut sessions: tokio::sync::mpsc::UnboundedReceiver<SessionBatch>) {
    while let Some(batch) = sessions.recv().await {
        let mut w = worker.borrow_mut();
        let now = Instant::now();
        let profile = &w.settings.profile;
        let chunk_bytes = profile.chunk_bytes;
        let inflight_bytes_max = profile.window as u64 * profile.chunk_bytes;
        let interleave_messages_max = profile.interleave_messages_max;
        let success_report = match profile.success_report {
            true => SuccessReport::Yes,
            false => SuccessReport::No,
        };
        let mut touched = Vec::new();
        for (ci, session) in batch {
            let mut config = SessionConfig::new(session.local_uri, vec![session.remote_uri], Role::Active);
            config.settings.chunk_bytes = chunk_bytes as usize;
            // The window, not the core's default 1 MiB, bounds what a
            // session has in flight.
            config.settings.inflight_bytes_max = config.settings.inflight_bytes_max.max(inflight_bytes_max);
            config.settings.success_report = success_report;
            config.settings.interleave_messages_max = interleave_messages_max;
            let conn = &mut w.conns[ci];
            match conn.conn.add_session(config, now) {
                Ok(key) => {
                    conn.by_key.insert(key, conn.keys.len());
                    conn.keys.push(key);
                    conn.created.push(session.created);
                    w.sessions += 1;
                    if !touched.contains(&ci) {
                        touched.push(ci);
                    }
                }
                Err(error) => w
                    .settings
                    .shared
                    .note_closed(&format!("cannot add a session: {error}")),
            }
        }
        for ci in touched {
            w.conns[ci].writer.notify_one();
        }
    }
}

/// A connection from `source` (a loopback address of its own, so that many
/// connections do not run out of one address's ephemeral ports).
fn connect(source: std::net::IpAddr, target: SocketAddr) -> Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if source != std::net::IpAddr::from([127, 0, 0, 1]) {
        socket.bind(&SocketAddr::new(source, 0).into())?;
    }
    socket.connect(&target.into())?;
    socket.set_nodelay(true)?;
    let stream: std::net::TcpStream = socket.into();
    Ok(TcpStream::from_std(stream))
}

/// Starts the sends when the ramp begins, paces them in open loop, and
/// returns when the run stops.
async fn pace(worker: &WorkerRef, rate: Option<f64>, sends_file: bool) {
    let shared = worker.borrow().settings.shared.clone();
    let scenario = worker.borrow().settings.profile.scenario;
    let load_sends =
        worker.borrow().settings.profile.direction.load_sends() && scenario != Scenario::Sessions;
    loop {
        match shared.phase() {
            PHASE_SETUP => tokio::time::sleep(TICK).await,
            PHASE_STOP => return,
            _ => break,
        }
    }
    let start = Instant::now();
    if load_sends && rate.is_none() {
        worker.borrow_mut().fill_windows();
    }
    let mut file_started = false;
    let mut sent: u64 = 0;
    while shared.phase() != PHASE_STOP {
        if sends_file && !file_started && shared.file_running.load(Ordering::Relaxed) {
            file_started = true;
            worker.borrow_mut().send_file();
        }
        if let (true, Some(rate)) = (load_sends, rate) {
            let due = (start.elapsed().as_secs_f64() * rate) as u64;
            let scheduled = |n: u64| start + Duration::from_secs_f64(n as f64 / rate);
            let mut w = worker.borrow_mut();
            // Sessions are full while the backlog is not empty: then every
            // send now due waits behind it, without trying them again.
            w.send_backlog();
            while sent < due && w.backlog.is_empty() {
                sent += 1;
                if !w.send_next(scheduled(sent - 1)) {
                    w.backlog.push_back(scheduled(sent - 1));
                }
            }
            while sent < due && w.backlog.len() < BACKLOG_MAX {
                sent += 1;
                w.backlog.push_back(scheduled(sent - 1));
            }
            if sent < due {
                shared.unsent.fetch_add(due - sent, Ordering::Relaxed);
                sent = due;
            }
            w.end_turn();
        }
        tokio::time::sleep(TICK).await;
    }
}

impl Worker {
    fn measuring(&self) -> bool {
        self.settings.shared.phase() == PHASE_MEASURE
    }

    fn sending(&self) -> bool {
        matches!(self.settings.shared.phase(), PHASE_RAMP | PHASE_MEASURE)
    }

    /// Closed loop: a window of messages on every session.
    fn fill_windows(&mut self) {
        let now = Instant::now();
        let window = self.settings.profile.window;
        for ci in 0..self.conns.len() {
            for si in 0..self.conns[ci].keys.len() {
                if self.texts_avoid((ci, si)) {
                    continue;
                }
                for _ in 0..window {
                    self.send(ci, si, now);
                }
            }
            self.conns[ci].writer.notify_one();
        }
    }

    /// Sends one message on `(ci, si)`; false when its queue is full.
    fn send(&mut self, ci: usize, si: usize, scheduled: Instant) -> bool {
        let profile = &self.settings.profile;
        let size = profile.sizes.pick(self.rng.u32(..profile.sizes.total_weight()));
        let message = match size as usize <= self.pool.len() {
            true => OutgoingMessage::new("text/plain", Bytes::slice(&self.pool, ..size as usize)),
            false => OutgoingMessage::from_source(
                "application/octet-stream",
                Box::new(PatternSource::new(self.pool.clone(), size)),
            ),
        };
        self.submit(ci, si, scheduled, message, size, false)
    }

    fn submit(
        &mut self,
        ci: usize,
        si: usize,
        scheduled: Instant,
        message: OutgoingMessage,
        bytes: u64,
        file: bool,
    ) -> bool {
        let conn = &mut self.conns[ci];
        match conn.conn.send(conn.keys[si], message) {
            Ok(reference) => {
                conn.out.insert(
                    reference,
                    Out {
                        scheduled,
                        bytes,
                        session: si,
                        file,
                    },
                );
                true
            }
            Err(SendError::Full(_)) => false,
            Err(error) => {
                // The session is gone (closed early, counted there) or the
                // message cannot be sent at all.
                if self.measuring() {
                    *self.recorded.errors.entry("local".into()).or_default() += 1;
                }
                self.settings
                    .shared
                    .note_closed(&format!("send refused: {error}"));
                true
            }
        }
    }

    /// `mixed`: the file has a session of its own, as a file transfer has
    /// its own m-line, unless `--file-session same`; texts share its
    /// connection either way.
    fn texts_avoid(&self, session: (usize, usize)) -> bool {
        self.file_session == Some(session) && self.settings.profile.file_session == FileSession::Other
    }

    /// Open loop: the next session in turn (`--file-session same`: the
    /// file's, for one text in [`FILE_SESSION_TEXT_SHARE`]); false when
    /// every session tried was full.
    fn send_next(&mut self, scheduled: Instant) -> bool {
        if let (Some((ci, si)), FileSession::Same) = (self.file_session, self.settings.profile.file_session) {
            self.texts_paced += 1;
            let bound = self.conns.get(ci).is_some_and(|c| si < c.keys.len());
            if bound && self.texts_paced % FILE_SESSION_TEXT_SHARE == 0 && self.send(ci, si, scheduled) {
                self.conns[ci].writer.notify_one();
                return true;
            }
        }
        for _ in 0..self.sessions.min(64) {
            let (ci, si) = self.cursor;
            self.cursor = match si + 1 < self.conns[ci].keys.len() {
                true => (ci, si + 1),
                false => ((ci + 1) % self.conns.len(), 0),
            };
            if self.texts_avoid((ci, si)) {
                continue;
            }
            if self.send(ci, si, scheduled) {
                self.conns[ci].writer.notify_one();
                return true;
            }
        }
        false
    }

    fn send_backlog(&mut self) {
        while let Some(&scheduled) = self.backlog.front() {
            if !self.send_next(scheduled) {
                return;
            }
            self.backlog.pop_front();
        }
    }

    /// `mixed`: the large file on the first session of the first connection.
    fn send_file(&mut self) {
        let size = self.settings.profile.file_bytes;
        let message = OutgoingMessage::from_source(
            "application/octet-stream",
            Box::new(PatternSource::new(self.pool.clone(), size)),
        );
        if self.conns.is_empty() {
            return;
        }
        self.submit(0, 0, Instant::now(), message, size, true);
        self.conns[0].writer.notify_one();
    }

    /// Acts on everything connection `ci` reported.
    fn pump(&mut self, ci: usize) {
        let now = Instant::now();
        while let Some(event) = self.conns[ci].conn.poll_event() {
            self.on_event(ci, event, now);
        }
    }

    fn on_event(&mut self, ci: usize, event: Event, now: Instant) {
        match event {
            Event::SessionReady { session } => {
                let conn = &self.conns[ci];
                if let Some(&si) = conn.by_key.get(&session) {
                    let setup = now.saturating_duration_since(conn.created[si]);
                    self.recorded.record(LATENCY_SETUP, micros(setup));
                    self.turn.established += 1;
                }
            }
            Event::ChunkAnswered {
                message,
                bytes,
                status,
                sent,
                ..
            } => {
                let file = self.conns[ci].out.get(&message).is_some_and(|o| o.file);
                if file && status == 200 {
                    self.turn.file_bytes += bytes;
                }
                if self.measuring() && !file {
                    self.recorded
                        .record(LATENCY_CHUNK, micros(now.saturating_duration_since(sent)));
                }
            }
            Event::Delivered { message, .. } => {
                let Some(out) = self.conns[ci].out.remove(&message) else {
                    return;
                };
                if out.file {
                    let shared = &self.settings.shared;
                    shared.files_done.fetch_add(1, Ordering::Relaxed);
                    match self.settings.profile.file_repeat && self.measuring() {
                        true => self.send_file(),
                        false => shared.file_running.store(false, Ordering::Relaxed),
                    }
                    return;
                }
                if self.measuring() {
                    let latency = micros(now.saturating_duration_since(out.scheduled));
                    self.recorded.record(LATENCY_DELIVERED, latency);
                    if self.settings.profile.scenario == Scenario::Mixed {
                        let file_running = self.settings.shared.file_running.load(Ordering::Relaxed);
                        let kind = match file_running {
                            true => LATENCY_TEXTS_WITH_FILE,
                            false => LATENCY_TEXTS_ALONE,
                        };
                        self.recorded.record(kind, latency);
                        if self.file_session == Some((ci, out.session)) {
                            let kind = match file_running {
                                true => LATENCY_FILE_SESSION_TEXTS_WITH_FILE,
                                false => LATENCY_FILE_SESSION_TEXTS_ALONE,
                            };
                            self.recorded.record(kind, latency);
                        }
                    }
                }
                self.turn.delivered += 1;
                self.turn.delivered_bytes += out.bytes;
                self.again(ci, out.session, now);
            }
            Event::Failed {
                message,
                status,
                reason,
                ..
            } => {
                let Some(out) = self.conns[ci].out.remove(&message) else {
                    return;
                };
                if self.measuring() || out.file {
                    let cause = status.map_or_else(|| "local".to_string(), |s| s.to_string());
                    *self.recorded.errors.entry(cause).or_default() += 1;
                }
                if self.sending() {
                    self.settings
                        .shared
                        .note_closed(&format!("a message failed: {reason}"));
                }
                self.turn.failed += 1;
                match out.file {
                    true => self.settings.shared.file_running.store(false, Ordering::Relaxed),
                    false => self.again(ci, out.session, now),
                }
            }
            Event::MessageReceived { body, .. } => {
                self.turn.received += 1;
                self.turn.received_bytes += match &body {
                    ReceivedBody::Inline(bytes) => bytes.len() as u64,
                    ReceivedBody::Streamed { len } => *len,
                };
                // The engine's sends carry their send time (commander.rs).
                if let (true, ReceivedBody::Inline(bytes)) = (self.measuring(), &body) {
                    if let Some(sent) = Stamp::read(bytes, self.settings.epoch) {
                        let kind = match self.settings.profile.direction {
                            Direction::Engine => LATENCY_DELIVERED,
                            _ => LATENCY_ENGINE_SENT,
                        };
                        self.recorded
                            .record(kind, micros(now.saturating_duration_since(sent)));
                    }
                }
            }
            Event::Commit { ticket, .. } => {
                // Streamed bodies go nowhere: the load only counts them.
                self.conns[ci].conn.committed(ticket);
            }
            Event::SessionClosed { reason, .. } | Event::ConnectionClosed { reason } => {
                if self.settings.shared.phase() != PHASE_STOP {
                    self.settings.shared.note_closed(&reason);
                }
            }
            Event::Data { .. }
            | Event::MessageAborted { .. }
            | Event::SendReady { .. }
            | Event::SessionClaimed { .. }
            | Event::ClaimRefused { .. } => {}
        }
    }

    /// Closed loop: a message ended, so its session sends the next.
    fn again(&mut self, ci: usize, si: usize, now: Instant) {
        let closed_loop =
            self.settings.profile.rate.is_none() && self.settings.profile.direction.load_sends();
        if closed_loop && self.sending() {
            self.send(ci, si, now);
        }
    }

    /// Ends a loop turn: this turn's counts go to the shared counters.
    fn end_turn(&mut self) {
        let turn = std::mem::take(&mut self.turn);
        let shared = &self.settings.shared;
        let add = |counter: &std::sync::atomic::AtomicU64, n: u64| {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        };
        if turn.established > 0 {
            shared.established.fetch_add(turn.established, Ordering::Relaxed);
        }
        add(&shared.delivered, turn.delivered);
        add(&shared.delivered_bytes, turn.delivered_bytes);
        add(&shared.failed, turn.failed);
        add(&shared.received, turn.received);
        add(&shared.received_bytes, turn.received_bytes);
        add(&shared.file_bytes, turn.file_bytes);
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// A load thread drives its connections with the engine's own driver, so
/// the load runs the loop the engine runs. It always reads (it must not hold
/// the engine back; its own requests are bounded by its window), has no
/// timers of its own, and keeps a closed connection's entry.
impl ConnectionHost for Worker {
    type Id = usize;

    fn connection(&mut self, ci: usize) -> Option<&mut Connection> {
        self.conns.get_mut(ci).map(|c| &mut c.conn)
    }

    fn writer(&self, ci: usize) -> Option<Rc<Notify>> {
        self.conns.get(ci).map(|c| c.writer.clone())
    }

    fn read_bytes(&self) -> usize {
        READ_BYTES
    }

    fn handle_input(&mut self, ci: usize, now: Instant) {
        self.conns[ci].conn.handle_input(now);
    }

    fn end_turn(&mut self, _this: &WorkerRef, ci: usize) {
        self.pump(ci);
        self.end_turn();
    }
}

/// `msrps:`: the load counts its handshakes; it trusts the engine's
/// certificate by the run's CA (the handshake checked it), and a failure
/// closes the connection with the reason, counted as closed early.
impl TlsHost for Worker {
    fn tls_established(&mut self, _ci: usize, how: Handshake, _peer: &[Vec<u8>]) -> Result<(), String> {
        let shared = &self.settings.shared;
        shared.tls_handshakes.fetch_add(1, Ordering::Relaxed);
        if how == Handshake::Resumed {
            shared.tls_resumed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn tls_failed(&mut self, _ci: usize) {}
}
