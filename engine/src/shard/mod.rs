//! The shell: one pinned OS thread per shard, each running its own
//! `tokio_uring` loop over its listeners, connections, sessions and timers
//! (ARCHITECTURE "Shards"). A shard's state lives in one `Rc<RefCell<..>>`
//! shared by its tasks, borrowed only between awaits; other threads reach it
//! only through its bounded command channel, and it reports through the
//! engine's event channel. This is the only module that touches io_uring.

mod directory;
mod file;
mod io;
mod log_rate;
mod spool;
pub(crate) mod spool_name;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use slab::Slab;
use tokio::sync::{mpsc, oneshot, Notify};

pub(crate) use directory::{Directory, Route};
pub use io::write_all;

use crate::control::{EngineEvent, ShardStats};
use crate::serve::{ServeConfig, Unclaimed};
use crate::{
    Connection, ConnectionStats, Event, MessageId, MessageRef, OutgoingMessage, ReceivedBody, SendError,
    SessionConfig, SessionKey,
};

/// Events on their way to the control thread, a batch per loop turn.
pub(crate) type EventBatch = Vec<(EngineEvent, Bytes)>;

/// Events a shard keeps while the control thread's channel is full, before
/// it drops them (and counts them).
const EVENT_BACKLOG_MAX: usize = 1 << 20;

/// Shared by the shards and the control thread.
#[derive(Default)]
pub(crate) struct EventTap {
    /// Events dropped because the control thread fell behind.
    pub dropped: AtomicU64,
    /// Control clients subscribed to events: with none, the shards build
    /// no events at all (the strings of an event per message cost the data
    /// path about a tenth of its time, and the control thread as much again
    /// to free them).
    pub subscribers: AtomicUsize,
}

/// What the control thread asks of a shard.
pub(crate) enum ShardCommand {
    /// An active session: connect to `peer` (or reuse a connection to it).
    Create {
        session_id: String,
        config: Box<SessionConfig>,
        peer: SocketAddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Send {
        session_id: String,
        message: OutgoingSpec,
        reply: oneshot::Sender<Result<u64, String>>,
    },
    Close {
        session_id: String,
        reason: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Stats {
        reply: oneshot::Sender<ShardStats>,
    },
    /// SIGTERM: stop accepting, let transfers finish until `deadline`, then
    /// fail the rest and stop.
    Drain {
        deadline: Instant,
    },
}

/// A message as the control thread hands it over.
pub(crate) struct OutgoingSpec {
    pub content_type: String,
    pub body: Bytes,
    /// A file to send instead of `body`, with its size when the command came.
    pub file: Option<(PathBuf, u64)>,
    pub delete_after: bool,
    pub success_report: Option<crate::SuccessReport>,
    pub failure_report: Option<crate::FailureReport>,
}

/// What a shard thread starts with.
pub(crate) struct ShardInit {
    pub index: usize,
    pub config: Arc<ServeConfig>,
    pub directory: Arc<Directory>,
    pub listeners: Vec<TcpListener>,
    pub commands: mpsc::Receiver<ShardCommand>,
    pub events: mpsc::Sender<EventBatch>,
    pub tap: Arc<EventTap>,
    pub core: Option<core_affinity::CoreId>,
}

/// Starts the shard thread.
pub(crate) fn spawn(init: ShardInit) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("msrpd-shard-{}", init.index))
        .spawn(move || {
            if let Some(core) = init.core {
                if !core_affinity::set_for_current(core) {
                    tracing::warn!(
                        shard = init.index,
                        core = core.id,
                        "could not pin the shard thread"
                    );
                }
            }
            tokio_uring::start(run(init));
        })
}

type ShardRef = Rc<RefCell<Shard>>;

/// An outgoing message until its outcome.
struct OutInfo {
    number: u64,
    session: usize,
    /// A file to remove once the message is delivered.
    delete_after: Option<PathBuf>,
}

/// One MSRP connection of this shard.
struct ConnEntry {
    conn: Connection,
    /// Distinguishes this entry from a later one in the same slab slot, for
    /// tasks that outlive it.
    serial: u64,
    /// Wakes the writer task: output, a timer, or closing.
    writer: Rc<Notify>,
    /// The peer we connected to, for connection reuse (active side).
    peer: Option<SocketAddr>,
    sessions: HashMap<SessionKey, usize>,
    messages: HashMap<MessageRef, OutInfo>,
    spools: HashMap<(SessionKey, MessageId), Rc<spool::Spool>>,
    /// Received octets handed to spool tasks and not yet written.
    spool_backlog_bytes: u64,
    /// Wakes the reader when the spool backlog shrank or a write finished.
    reader: Rc<Notify>,
    /// A write is in flight: while it is and more output waits behind it,
    /// the reader pauses, so a peer that does not read cannot make us queue
    /// responses without bound.
    writing: bool,
    /// When the connection last carried a session (idle timeout).
    idle_since: Option<Instant>,
}

impl ConnEntry {
    /// Outgoing messages without an outcome, or incoming ones being spooled.
    fn has_transfers(&self) -> bool {
        !self.messages.is_empty() || !self.spools.is_empty()
    }
}

/// One session of this shard.
struct SessionEntry {
    /// Shared with `by_session_id`'s key: one copy per session.
    session_id: Rc<str>,
    conn: usize,
    key: SessionKey,
}

struct Shard {
    index: usize,
    config: Arc<ServeConfig>,
    directory: Arc<Directory>,
    conns: Slab<ConnEntry>,
    sessions: Slab<SessionEntry>,
    by_session_id: HashMap<Rc<str>, usize>,
    peers: HashMap<SocketAddr, Vec<usize>>,
    next_serial: u64,
    next_message: u64,
    /// Counters of connections that are gone, and of this shard.
    totals: ShardStats,
    /// Events of this loop turn, then those the control thread had no room for.
    events: EventBatch,
    backlog: VecDeque<EventBatch>,
    /// Events in `backlog`.
    backlog_events: usize,
    events_tx: mpsc::Sender<EventBatch>,
    tap: Arc<EventTap>,
    /// Wakes the event flusher when the backlog is not empty.
    flusher: Rc<Notify>,
    /// Stops the accept loops.
    stop_accepting: Rc<Notify>,
    draining: Option<Instant>,
    logs: log_rate::ShardLogs,
}

async fn run(init: ShardInit) {
    let ShardInit {
        index,
        config,
        directory,
        listeners,
        mut commands,
        events,
        tap,
        ..
    } = init;
    let shard: ShardRef = Rc::new(RefCell::new(Shard {
        index,
        config,
        directory,
        conns: Slab::new(),
        sessions: Slab::new(),
        by_session_id: HashMap::new(),
        peers: HashMap::new(),
        next_serial: 0,
        next_message: 0,
        totals: ShardStats {
            shard: index,
            ..ShardStats::default()
        },
        events: Vec::new(),
        backlog: VecDeque::new(),
        backlog_events: 0,
        events_tx: events,
        tap,
        flusher: Rc::new(Notify::new()),
        stop_accepting: Rc::new(Notify::new()),
        draining: None,
        logs: log_rate::ShardLogs::default(),
    }));
    for listener in listeners {
        let listener = tokio_uring::net::TcpListener::from_std(listener);
        tokio_uring::spawn(io::accept_loop(shard.clone(), listener));
    }
    tokio_uring::spawn(flush_events(shard.clone()));
    while let Some(command) = commands.recv().await {
        if let ShardCommand::Drain { deadline } = command {
            drain(&shard, deadline).await;
            return;
        }
        handle_command(&shard, command);
    }
    // The control thread is gone without a drain: fail what is left.
    drain(&shard, Instant::now()).await;
}

fn handle_command(this: &ShardRef, command: ShardCommand) {
    let mut shard = this.borrow_mut();
    match command {
        ShardCommand::Create {
            session_id,
            config,
            peer,
            reply,
        } => {
            let result = shard.create_active(this, session_id, *config, peer);
            let _ = reply.send(result);
        }
        ShardCommand::Send {
            session_id,
            message,
            reply,
        } => {
            let result = shard.send(this, &session_id, message);
            let _ = reply.send(result);
        }
        ShardCommand::Close {
            session_id,
            reason,
            reply,
        } => {
            let result = match shard.by_session_id.get(session_id.as_str()).copied() {
                Some(s) => {
                    let (ci, key) = (shard.sessions[s].conn, shard.sessions[s].key);
                    shard.conns[ci].conn.close_session(key, &reason);
                    // Closing answers what the session still owed (481).
                    shard.conns[ci].writer.notify_one();
                    shard.pump(this, ci);
                    Ok(())
                }
                None => Err(format!("no session {session_id} on shard {}", shard.index)),
            };
            let _ = reply.send(result);
        }
        ShardCommand::Stats { reply } => {
            let _ = reply.send(shard.stats());
        }
        ShardCommand::Drain { .. } => unreachable!("handled by the command loop"),
    }
    shard.flush_turn();
}

/// SIGTERM: no new connections; transfers in flight may finish until the
/// deadline; then every connection is closed, which fails what is left with
/// events.
async fn drain(this: &ShardRef, deadline: Instant) {
    {
        let mut shard = this.borrow_mut();
        shard.draining = Some(deadline);
        shard.stop_accepting.notify_waiters();
        tracing::info!(shard = shard.index, "draining");
    }
    loop {
        let busy = this
            .borrow()
            .conns
            .iter()
            .any(|(_, c)| !c.conn.is_closed() && c.has_transfers());
        if !busy || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let mut shard = this.borrow_mut();
        let open: Vec<usize> = shard
            .conns
            .iter()
            .filter(|(_, c)| !c.conn.is_closed())
            .map(|(i, _)| i)
            .collect();
        for ci in open {
            let reason = if !shard.conns[ci].has_transfers() {
                "the engine is shutting down"
            } else {
                "the engine shut down before the transfer finished (drain timeout)"
            };
            shard.conns[ci].conn.handle_closed(reason);
            shard.pump(this, ci);
        }
        shard.flush_turn();
    }
    // Let writers flush what closing produced, and the flusher the events.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let done = {
            let shard = this.borrow();
            shard.backlog.is_empty() && shard.conns.is_empty()
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Hands the backlog to the control thread as it makes room.
async fn flush_events(this: ShardRef) {
    loop {
        let (tx, notify) = {
            let shard = this.borrow();
            (shard.events_tx.clone(), shard.flusher.clone())
        };
        if this.borrow().backlog.is_empty() {
            notify.notified().await;
            continue;
        }
        let Ok(permit) = tx.reserve().await else {
            return;
        };
        let batch = this.borrow_mut().pop_backlog();
        if let Some(batch) = batch {
            permit.send(batch);
        }
    }
}

fn failure_reason(error: SendError) -> String {
    match error {
        SendError::Full(_) => {
            "the session's send queue is full (send-queue bounds); wait for delivered events and retry".into()
        }
        other => other.to_string(),
    }
}

impl Shard {
    /// Whether anyone will read events: build them only then.
    fn events_wanted(&self) -> bool {
        self.tap.subscribers.load(Ordering::Relaxed) > 0
    }

    /// Whether a connection answers SENDs with 403 for now (`--unclaimed
    /// refuse` and no application subscribed).
    fn refuses_sends(&self) -> bool {
        self.config.unclaimed == Unclaimed::Refuse && !self.events_wanted()
    }

    /// A message was received while no application was subscribed. On the
    /// data path of an engine nobody listens to (the capacity benchmark's),
    /// so the clock is read only every 4096 messages.
    fn unclaimed(&mut self, session_id: impl FnOnce(&Shard) -> Option<String>) {
        self.totals.messages_unclaimed += 1;
        let count = self.totals.messages_unclaimed;
        if (count == 1 || count % 4096 == 0) && self.logs.unclaimed.allow(Instant::now()).is_some() {
            let session_id = session_id(self).unwrap_or_default();
            // At info, the engine's default: a load generator that measures
            // without an application (and logs at warn) is not told.
            tracing::info!(
                shard = self.index,
                %session_id,
                unclaimed = count,
                "a message was received while no application is subscribed to events: nobody was told of it (messages_unclaimed)"
            );
        }
    }

    fn emit(&mut self, event: EngineEvent, payload: Bytes) {
        self.events.push((event, payload));
    }

    /// Ends a loop turn: this turn's events go to the control thread, or to
    /// the backlog when it has no room.
    fn flush_turn(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.events);
        let batch = match self.backlog.is_empty() {
            true => match self.events_tx.try_send(batch) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(batch)) => batch,
            },
            false => batch,
        };
        self.backlog_events += batch.len();
        self.backlog.push_back(batch);
        if self.backlog_events > EVENT_BACKLOG_MAX {
            if let Some(dropped) = self.pop_backlog() {
                self.tap
                    .dropped
                    .fetch_add(dropped.len() as u64, Ordering::Relaxed);
                tracing::error!(
                    shard = self.index,
                    dropped = dropped.len(),
                    "the control thread is not taking events; dropped the oldest"
                );
            }
        }
        self.flusher.notify_one();
    }

    fn pop_backlog(&mut self) -> Option<EventBatch> {
        let batch = self.backlog.pop_front()?;
        self.backlog_events -= batch.len();
        Some(batch)
    }

    fn new_conn(&mut self, peer: Option<SocketAddr>) -> usize {
        self.next_serial += 1;
        let entry = ConnEntry {
            conn: Connection::new(self.config.connection_config()),
            serial: self.next_serial,
            writer: Rc::new(Notify::new()),
            peer,
            sessions: HashMap::new(),
            messages: HashMap::new(),
            spools: HashMap::new(),
            spool_backlog_bytes: 0,
            reader: Rc::new(Notify::new()),
            writing: false,
            idle_since: Some(Instant::now()),
        };
        let ci = self.conns.insert(entry);
        if let Some(peer) = peer {
            self.peers.entry(peer).or_default().push(ci);
        }
        ci
    }

    /// The connection to use towards `peer`: the least loaded of those open,
    /// or a new one while there are fewer than `conns_per_peer`.
    fn conn_towards(&mut self, this: &ShardRef, peer: SocketAddr) -> Result<usize, String> {
        let existing: Vec<usize> = self
            .peers
            .get(&peer)
            .map(|list| {
                list.iter()
                    .copied()
                    .filter(|&ci| !self.conns[ci].conn.is_closed())
                    .collect()
            })
            .unwrap_or_default();
        if existing.len() < self.config.conns_per_peer {
            if self.conns.len() >= self.config.connections_max {
                return Err(format!(
                    "shard {} already has its maximum of {} connections (connections-max)",
                    self.index, self.config.connections_max
                ));
            }
            let ci = self.new_conn(Some(peer));
            self.totals.connections_opened += 1;
            let serial = self.conns[ci].serial;
            tokio_uring::spawn(io::connect(this.clone(), ci, serial, peer));
            return Ok(ci);
        }
        existing
            .into_iter()
            .min_by_key(|&ci| self.conns[ci].conn.session_count())
            .ok_or_else(|| "no connection".into())
    }

    fn create_active(
        &mut self,
        this: &ShardRef,
        session_id: String,
        config: SessionConfig,
        peer: SocketAddr,
    ) -> Result<(), String> {
        if self.draining.is_some() {
            return Err("the engine is shutting down".into());
        }
        let ci = self.conn_towards(this, peer)?;
        let key = self.conns[ci]
            .conn
            .add_session(config, Instant::now())
            .map_err(|e| e.to_string())?;
        self.adopt(ci, key, session_id);
        self.pump(this, ci);
        self.conns[ci].writer.notify_one();
        Ok(())
    }

    fn adopt(&mut self, ci: usize, key: SessionKey, session_id: String) {
        let session_id: Rc<str> = session_id.into();
        let s = self.sessions.insert(SessionEntry {
            session_id: session_id.clone(),
            conn: ci,
            key,
        });
        self.by_session_id.insert(session_id, s);
        let entry = &mut self.conns[ci];
        entry.sessions.insert(key, s);
        entry.idle_since = None;
    }

    /// Takes over the passive sessions a connection's requests just claimed
    /// from the directory.
    fn adopt_claimed(&mut self, ci: usize, claimed: &mut Vec<String>) {
        for session_id in claimed.drain(..) {
            match self.conns[ci].conn.session_key(&session_id) {
                Some(key) => self.adopt(ci, key, session_id),
                None => {
                    // The connection refused it (sessions-per-connection-max).
                    self.directory.remove(&session_id);
                    if !self.events_wanted() {
                        continue;
                    }
                    self.emit(
                        EngineEvent::SessionClosed {
                            session_id,
                            reason: format!(
                                "the peer's connection already carries {} sessions (sessions-per-connection-max)",
                                self.config.sessions_per_connection_max
                            ),
                        },
                        Bytes::new(),
                    );
                }
            }
        }
    }

    fn send(&mut self, this: &ShardRef, session_id: &str, spec: OutgoingSpec) -> Result<u64, String> {
        let Some(&s) = self.by_session_id.get(session_id) else {
            return Err(format!("no session {session_id}"));
        };
        let (ci, key) = (self.sessions[s].conn, self.sessions[s].key);
        let content_type = spec.content_type;
        let (mut message, reader) = match spec.file {
            None => (OutgoingMessage::new(content_type, spec.body), None),
            Some((path, size)) => {
                let (source, reader) = file::FileSource::new(path, size);
                (
                    OutgoingMessage::from_source(content_type, Box::new(source)),
                    Some(reader),
                )
            }
        };
        message.success_report = spec.success_report;
        message.failure_report = spec.failure_report;
        let entry = &mut self.conns[ci];
        let reference = entry.conn.send(key, message).map_err(failure_reason)?;
        self.next_message += 1;
        let number = ((self.index as u64) << 48) | self.next_message;
        let delete_after = match (&reader, spec.delete_after) {
            (Some(r), true) => Some(r.path().to_path_buf()),
            _ => None,
        };
        entry.messages.insert(
            reference,
            OutInfo {
                number,
                session: s,
                delete_after,
            },
        );
        if let Some(reader) = reader {
            let serial = entry.serial;
            let progress = file::Progress {
                session_id: session_id.into(),
                message: number,
                interval: self.config.progress_interval,
            };
            tokio_uring::spawn(reader.run(this.clone(), ci, serial, key, progress));
        }
        entry.writer.notify_one();
        Ok(number)
    }

    fn stats(&self) -> ShardStats {
        let mut stats = self.totals.clone();
        stats.connections = self.conns.len() as u64;
        stats.sessions = self.sessions.len() as u64;
        for (_, entry) in self.conns.iter() {
            add_conn_stats(&mut stats, entry.conn.stats());
        }
        stats
    }

    /// Acts on everything a connection reported.
    fn pump(&mut self, this: &ShardRef, ci: usize) {
        while let Some(event) = self.conns[ci].conn.poll_event() {
            self.on_event(this, ci, event);
        }
    }

    fn session_id(&self, ci: usize, key: SessionKey) -> Option<String> {
        let s = *self.conns[ci].sessions.get(&key)?;
        Some(self.sessions[s].session_id.to_string())
    }

    fn on_event(&mut self, this: &ShardRef, ci: usize, event: Event) {
        match event {
            Event::SessionReady { session } => {
                if !self.events_wanted() {
                    return;
                }
                if let Some(session_id) = self.session_id(ci, session) {
                    self.emit(EngineEvent::SessionReady { session_id }, Bytes::new());
                }
            }
            Event::MessageReceived {
                session,
                message_id,
                content_type,
                body,
            } => match body {
                ReceivedBody::Inline(body) => {
                    if !self.events_wanted() {
                        self.unclaimed(|shard| shard.session_id(ci, session));
                        return;
                    }
                    let Some(session_id) = self.session_id(ci, session) else {
                        return;
                    };
                    let event = EngineEvent::MessageReceived {
                        session_id,
                        message_id: message_id.as_str().into(),
                        content_type,
                        size: body.len() as u64,
                        path: None,
                    };
                    self.emit(event, body);
                }
                ReceivedBody::Streamed { len } => {
                    if let Some(spool) = self.conns[ci].spools.remove(&(session, message_id)) {
                        spool.push(spool::SpoolOp::Finish {
                            content_type,
                            size: len,
                        });
                    }
                }
            },
            Event::Data {
                session,
                message_id,
                offset,
                data,
            } => {
                let Some(spool) = self.spool_for(this, ci, session, message_id) else {
                    return;
                };
                let entry = &mut self.conns[ci];
                entry.spool_backlog_bytes += data.len() as u64;
                spool.push(spool::SpoolOp::Write { offset, data });
            }
            Event::Commit {
                session,
                message_id,
                ticket,
            } => match self.conns[ci].spools.get(&(session, message_id)) {
                Some(spool) => spool.push(spool::SpoolOp::Commit { ticket }),
                None => self.conns[ci].conn.committed(ticket),
            },
            Event::MessageAborted {
                session,
                message_id,
                reason,
            } => {
                if let Some(spool) = self.conns[ci].spools.remove(&(session, message_id)) {
                    spool.push(spool::SpoolOp::Abort);
                }
                if !self.events_wanted() {
                    return;
                }
                if let Some(session_id) = self.session_id(ci, session) {
                    let event = EngineEvent::MessageAborted {
                        session_id,
                        message_id: message_id.as_str().into(),
                        reason,
                    };
                    self.emit(event, Bytes::new());
                }
            }
            Event::Delivered {
                message, message_id, ..
            } => {
                let Some(info) = self.conns[ci].messages.remove(&message) else {
                    return;
                };
                if let Some(path) = info.delete_after {
                    // Removed before `delivered` is emitted, in this turn: the
                    // event promises the file is gone (a voicemail platform
                    // may reuse the name at once), and `session_closed` must
                    // still come after it. An unlink is one metadata
                    // operation per delivered file, not per chunk.
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "could not delete a sent file");
                    }
                }
                if !self.events_wanted() {
                    return;
                }
                let event = EngineEvent::Delivered {
                    session_id: self.sessions[info.session].session_id.to_string(),
                    message: info.number,
                    message_id: message_id.as_str().into(),
                };
                self.emit(event, Bytes::new());
            }
            Event::Failed {
                message,
                message_id,
                status,
                reason,
                bytes_acked,
                ..
            } => {
                let Some(info) = self.conns[ci].messages.remove(&message) else {
                    return;
                };
                if !self.events_wanted() {
                    return;
                }
                let event = EngineEvent::Failed {
                    session_id: self.sessions[info.session].session_id.to_string(),
                    message: info.number,
                    message_id: message_id.as_str().into(),
                    status,
                    reason,
                    bytes_acked,
                };
                self.emit(event, Bytes::new());
            }
            Event::SendReady { .. } | Event::ChunkAnswered { .. } => {}
            Event::SessionClosed { session, reason } => {
                let Some(s) = self.conns[ci].sessions.remove(&session) else {
                    return;
                };
                let removed = self.sessions.remove(s);
                self.by_session_id.remove(&removed.session_id);
                self.directory.remove(&removed.session_id);
                let entry = &mut self.conns[ci];
                if entry.sessions.is_empty() {
                    entry.idle_since = Some(Instant::now());
                    entry.writer.notify_one();
                }
                if self.events_wanted() {
                    let event = EngineEvent::SessionClosed {
                        session_id: removed.session_id.to_string(),
                        reason,
                    };
                    self.emit(event, Bytes::new());
                }
            }
            Event::ConnectionClosed { reason } => {
                // The writer flushes what is left and removes the entry.
                tracing::debug!(shard = self.index, conn = ci, %reason, "connection closed");
                let entry = &mut self.conns[ci];
                entry.writer.notify_one();
                entry.reader.notify_one();
            }
        }
    }

    fn spool_for(
        &mut self,
        this: &ShardRef,
        ci: usize,
        session: SessionKey,
        message_id: MessageId,
    ) -> Option<Rc<spool::Spool>> {
        if let Some(spool) = self.conns[ci].spools.get(&(session, message_id)) {
            return Some(spool.clone());
        }
        let session_id = self.session_id(ci, session)?;
        let entry = &mut self.conns[ci];
        let spool = Rc::new(spool::Spool::new(
            &self.config.spool,
            session_id,
            message_id.as_str().into(),
        ));
        entry.spools.insert((session, message_id), spool.clone());
        let task = spool::SpoolTask {
            shard: this.clone(),
            conn: ci,
            serial: entry.serial,
            spool: spool.clone(),
            durable: self.config.durable,
            progress_interval: self.config.progress_interval,
        };
        tokio_uring::spawn(task.run());
        Some(spool)
    }

    /// The entry `ci` if it is still the connection a task was started for.
    fn conn_mut(&mut self, ci: usize, serial: u64) -> Option<&mut ConnEntry> {
        self.conns.get_mut(ci).filter(|c| c.serial == serial)
    }

    /// Forgets a connection whose writer has flushed its last bytes.
    fn remove_conn(&mut self, ci: usize) {
        let entry = self.conns.remove(ci);
        // A reader paused for backpressure must see that the entry is gone.
        entry.reader.notify_one();
        add_conn_stats(&mut self.totals, entry.conn.stats());
        if let Some(peer) = entry.peer {
            if let Some(list) = self.peers.get_mut(&peer) {
                list.retain(|&c| c != ci);
                if list.is_empty() {
                    self.peers.remove(&peer);
                }
            }
        }
        for (_, spool) in entry.spools {
            spool.push(spool::SpoolOp::Abort);
        }
    }
}

fn add_conn_stats(stats: &mut ShardStats, conn: &ConnectionStats) {
    stats.frames_in += conn.requests_in + conn.responses_in;
    stats.frames_out += conn.chunks_out + conn.responses_out.iter().map(|(_, n)| n).sum::<u64>();
    stats.bytes_in += conn.bytes_in;
    stats.bytes_out += conn.bytes_out;
    stats.messages_received += conn.messages_received;
    stats.messages_delivered += conn.messages_delivered;
    stats.messages_failed += conn.messages_failed;
    stats.frames_malformed += conn.frames_malformed;
    stats.connections_frame_timeout += conn.frame_timeouts;
    for &(status, n) in &conn.responses_out {
        *stats.responses_out.entry(status.to_string()).or_default() += n;
    }
}
