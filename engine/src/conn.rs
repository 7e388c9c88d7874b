//! One MSRP connection, sans-IO: the parser of its byte stream, the sessions
//! bound to it, their transactions and timers, and its output queue
//! (RFC 4975 4, 5.4, 7).
//!
//! The shell drives it like a quinn-proto connection:
//! - bytes read go into [`Connection::input_buffer`], then
//!   [`Connection::handle_input`];
//! - [`Connection::poll_transmit`] gives every frame that is ready as one
//!   batch of [`Bytes`] for one gathered write;
//! - [`Connection::poll_timeout`] / [`Connection::handle_timeout`] run the
//!   timers, with time always passed in;
//! - [`Connection::poll_event`] drains what happened.
//!
//! Responses and REPORTs go first in every batch, so a large SEND never holds
//! them back by more than one chunk (RFC 4975 5.1); chunks of the sessions
//! follow in the order of the fair [`Scheduler`].
//!
//! What a shell can rely on:
//! - events come in the order things happened; for one incoming large
//!   message that is its [`Event::Data`] pieces, then one [`Event::Commit`]
//!   per chunk that carried them, and only after every ticket of it was
//!   committed, [`Event::MessageReceived`]; or [`Event::MessageAborted`],
//!   and the sink drops what it holds for that Message-ID;
//! - every [`Connection::send`] that returned `Ok` ends in exactly one
//!   [`Event::Delivered`] or [`Event::Failed`], also when the session or the
//!   connection closes (those come before [`Event::SessionClosed`] /
//!   [`Event::ConnectionClosed`]);
//! - nothing the connection writes depends on a clock it reads itself:
//!   call [`Connection::handle_timeout`] at [`Connection::poll_timeout`];
//! - after the connection closed itself (lost framing), `poll_transmit` still
//!   hands out the responses owed, then nothing: write them, then close the
//!   socket; after [`Connection::handle_closed`] it writes nothing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use slab::Slab;

use crate::id_hash::IdMap;
use crate::proto::{is_media_type, session_id_of};
use crate::proto::{
    status_comment, write_response, write_response_echo, ByteRange, Content, Continuation,
    Event as WireEvent, FailureReport, FrameHead, FrameKind, Malformed, MessageId, Method, MsrpUri, Parser,
    ParserConfig, Reaction, ReportStatus, Request, SuccessReport, TransactionId, Writer,
};
use crate::sched::{Scheduler, Turn};
use crate::session::{
    minted_message_id, type_accepted, BindState, CommitTicket, Cut, CutChunk, Event, Incoming, MessageRef,
    OutMessage, OutgoingMessage, ReceivedBody, Role, Session, SessionConfig, SessionKey,
};

/// What a [`SessionDirectory`] knows of a session a request names.
#[derive(Debug)]
pub enum Lookup {
    /// No such session: 481.
    Unknown,
    /// The session is bound to another connection: 506 (RFC 4975 5.4).
    BoundElsewhere,
    /// A passive session waiting for its connection, and the request comes
    /// from its negotiated peer: it joins this one.
    Claim(Box<SessionConfig>),
    /// A passive session waiting for its connection, named by a request
    /// from someone else: 403, and the session stays pending, untouched
    /// (RFC 4975 7.3: the From-Path must be the negotiated peer's).
    Forbidden,
}

/// Sessions beyond this connection, asked when a request names a session the
/// connection does not carry (the shard's directory of pending passive
/// sessions, ARCHITECTURE "Who owns a session").
pub trait SessionDirectory {
    /// `from_peer` says whether the request comes from a session's
    /// negotiated peer; a session is claimed only when it does.
    fn lookup(&mut self, uri: &MsrpUri, from_peer: &dyn Fn(&SessionConfig) -> bool) -> Lookup;
}

/// No sessions anywhere else.
struct NoDirectory;

impl SessionDirectory for NoDirectory {
    fn lookup(&mut self, _: &MsrpUri, _: &dyn Fn(&SessionConfig) -> bool) -> Lookup {
        Lookup::Unknown
    }
}

/// Bounds and timers of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionConfig {
    pub parser: ParserConfig,
    /// Unanswered chunk octets over all sessions: the scheduler stops when
    /// it is reached.
    pub inflight_bytes_max: u64,
    /// Chunk body octets per [`Connection::poll_transmit`] batch (at least
    /// one chunk goes out). Batches about a socket buffer in size keep the
    /// frames in cache between writing and sending: a batch of 10,000 texts
    /// ran 20% slower than batches of 400 in the session bench.
    pub transmit_bytes_max: u64,
    /// Bodies up to this size are copied into the batch; larger ones are
    /// handed out as they are, for a vectored write.
    pub copy_body_bytes_max: usize,
    pub sessions_max: usize,
    /// RFC 4975 7.1.1: a chunk sent with Failure-Report `yes` and not
    /// answered in this time fails with a local 408.
    pub transaction_timeout: Duration,
    /// How long a message with `Success-Report: yes` waits for REPORTs
    /// covering it after its last chunk was answered (RFC 4975 7.1.1 leaves
    /// it to the application).
    pub report_timeout: Duration,
    /// An incoming message that sees no chunk for this long is dropped
    /// (RFC 4975 7.3.1: a final `$` may never come).
    pub incoming_expiry: Duration,
    /// Seeds the transaction-id and Message-ID generator, for reproducible
    /// simulations; `None` seeds from the process's random state.
    pub seed: Option<u64>,
    /// A frame begun whose next octet does not come within this closes the
    /// connection: a peer cannot hold half a frame (and the buffer under
    /// it) for ever, where no other timer runs.
    pub frame_timeout: Duration,
    /// Report every answered chunk ([`Event::ChunkAnswered`]), for a load
    /// generator's per-chunk latency; off in the engine, which has no use
    /// for an event per chunk.
    pub chunk_events: bool,
}

impl Default for ConnectionConfig {
    fn default() -> ConnectionConfig {
        ConnectionConfig {
            parser: ParserConfig::default(),
            inflight_bytes_max: 16 * 1024 * 1024,
            transmit_bytes_max: 256 * 1024,
            copy_body_bytes_max: 4096,
            sessions_max: 16 * 1024,
            transaction_timeout: Duration::from_secs(30),
            report_timeout: Duration::from_secs(120),
            incoming_expiry: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(30),
            seed: None,
            chunk_events: false,
        }
    }
}

/// Why [`Connection::add_session`] refused a session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddSessionError {
    #[error("the connection already carries its maximum of {0} sessions")]
    TooManySessions(usize),
    #[error("the local URI {0} has no session-id")]
    NoSessionId(String),
    #[error("session-id {0} is already on this connection")]
    DuplicateSessionId(String),
    #[error("the remote path is empty")]
    EmptyRemotePath,
    #[error("the connection is closed")]
    Closed,
}

/// Why [`Connection::send`] refused a message.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no such session on this connection")]
    UnknownSession,
    #[error("the session's direction does not allow sending (RFC 4975 8.9)")]
    Direction,
    #[error("{0:?} is not a media type")]
    InvalidContentType(String),
    /// RFC 4975 8.6: the peer's accept-types do not include it, or it refused
    /// it with 415 earlier in this session.
    #[error("the peer does not accept {0}")]
    TypeNotAccepted(String),
    #[error("the message of {size} octets is over the peer's max-size of {max}")]
    TooLarge { size: u64, max: u64 },
    /// The send queue is at its bound: the message is handed back; an
    /// [`Event::SendReady`] follows when there is room.
    #[error("the session's send queue is full")]
    Full(OutgoingMessage),
}

/// Counters of one connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Octets handed to `handle_input` (while the connection was open).
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub requests_in: u64,
    pub responses_in: u64,
    pub chunks_out: u64,
    pub messages_received: u64,
    pub messages_delivered: u64,
    pub messages_failed: u64,
    /// Responses that matched no transaction (late, or after a timeout).
    pub responses_unmatched: u64,
    /// REPORTs for unknown messages or with ranges outside the message.
    pub reports_ignored: u64,
    /// Malformed frames discarded or answered 400.
    pub frames_malformed: u64,
    /// 1 when the connection was closed for `frame_timeout`.
    pub frame_timeouts: u64,
    /// Responses sent, by status code.
    pub responses_out: Vec<(u16, u64)>,
}

impl ConnectionStats {
    fn count_response(&mut self, status: u16) {
        match self.responses_out.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.responses_out.push((status, 1)),
        }
    }
}

enum TxnKind {
    /// The bodiless SEND that binds an active session (RFC 4975 5.4).
    Bind,
    /// The empty `#` chunk of a message given up: its answer changes nothing.
    Abort,
    Chunk {
        slot: usize,
        message: MessageRef,
        len: u64,
        /// Failure-Report `yes`: a 200 is expected, and the chunk counts in
        /// the in-flight windows until it comes. `partial` chunks only wait
        /// for a possible error.
        answered: bool,
    },
}

/// A request of ours waiting for its response (its deadline is in the
/// timer queue).
struct Txn {
    session: SessionKey,
    kind: TxnKind,
    /// When the request went to transmit.
    sent: Instant,
}

/// A response to write once the application committed a chunk.
struct Deferred {
    /// The whole ticket, so a stale ticket cannot commit a reused slot.
    ticket: u64,
    /// The reassembly entry the chunk went into (a dropped message's id can
    /// start a new entry).
    epoch: u64,
    session: SessionKey,
    message_id: MessageId,
    tid: TransactionId,
    reply_to: String,
    failure_report: FailureReport,
}

/// What becomes of the body of an incoming SEND.
enum Target {
    /// First chunk of a message not seen before: pieces kept as they are.
    Collect,
    /// Into the message's reassembly entry.
    Entry { streamed: bool },
    /// Refused: the body is dropped and the chunk answered with this status.
    Reject(u16),
    /// A bodiless SEND (binding or keep-alive).
    Bodiless,
}

struct SendFrame {
    slot: usize,
    head: FrameHead,
    message_id: MessageId,
    /// 1-based position of the chunk's first octet.
    start: u64,
    received: u64,
    target: Target,
    /// Octets of the message kept in memory before it streams to the sink:
    /// none when its declared total is over the session's inline bound, so
    /// no octet of a large message waits in memory (and, with a durable
    /// sink, none is acknowledged before it is on disk).
    inline_bytes_max: u64,
}

/// The incoming frame in progress.
enum Inbound {
    Idle,
    /// Body ignored; the reply, if any, goes out at the end-line.
    Skip(Option<Reply>),
    Send(Box<SendFrame>),
}

/// A response to write at the end of the frame.
struct Reply {
    tid: TransactionId,
    status: u16,
    failure_report: FailureReport,
    to_path: String,
    from_path: String,
}

/// A queue of deadlines in the order they were set, with stale entries
/// skipped lazily and compacted when they pile up.
struct Timers<K> {
    queue: VecDeque<(Instant, K)>,
    /// Entries left by the last compaction: the queue is compacted when it
    /// has doubled since, so its length stays within twice the live entries
    /// (plus a constant) at amortised O(1) per push.
    compacted_len: usize,
}

impl<K: Copy> Timers<K> {
    fn new() -> Self {
        Timers {
            queue: VecDeque::new(),
            compacted_len: 0,
        }
    }

    fn push(&mut self, at: Instant, key: K, is_live: impl Fn(&K) -> bool) {
        self.queue.push_back((at, key));
        if self.queue.len() > 2 * self.compacted_len + 64 {
            self.queue.retain(|(_, k)| is_live(k));
            self.compacted_len = self.queue.len();
        }
    }

    fn next(&self) -> Option<Instant> {
        self.queue.front().map(|&(at, _)| at)
    }

    /// Drops stale entries at the front, so `next` is a real deadline.
    fn prune(&mut self, is_live: impl Fn(&K) -> bool) {
        while self.queue.front().is_some_and(|(_, k)| !is_live(k)) {
            self.queue.pop_front();
        }
    }

    fn pop_due(&mut self, now: Instant) -> Option<K> {
        match self.queue.front() {
            Some(&(at, key)) if at <= now => {
                self.queue.pop_front();
                Some(key)
            }
            _ => None,
        }
    }
}

/// One MSRP connection and the sessions bound to it.
pub struct Connection {
    config: ConnectionConfig,
    parser: Parser,
    writer: Writer,
    sessions: Slab<Session>,
    generation: u32,
    /// session-id -> slot (RFC 4975 7.3: To-Path names the session).
    by_session_id: IdMap<Box<str>, usize>,
    sched: Scheduler,
    /// Responses and REPORTs waiting to be written, ahead of any chunk.
    control: BytesMut,
    /// Chunk frames being gathered for the batch.
    scratch: BytesMut,
    txns: IdMap<TransactionId, Txn>,
    txn_timers: Timers<TransactionId>,
    report_timers: Timers<(SessionKey, usize, MessageRef)>,
    next_sweep: Option<Instant>,
    inflight_bytes: u64,
    deferred: Slab<Deferred>,
    tickets_issued: u32,
    /// Numbers reassembly entries.
    epochs: u64,
    inbound: Inbound,
    /// Body pieces of the SEND being collected.
    pieces: Vec<Bytes>,
    events: VecDeque<Event>,
    next_message: u64,
    /// When the frame in progress times out: armed by every read that
    /// leaves a frame unfinished, unarmed while the shell does not read.
    frame_deadline: Option<Instant>,
    input_paused: bool,
    /// Requests with a body get 403 (no application would see them).
    refuse_sends: bool,
    closed: bool,
    stats: ConnectionStats,
}

/// Stands in for a path a malformed request did not carry.
const UNKNOWN_PATH: &str = "msrp://unknown.invalid;tcp";

/// Message-IDs of dropped incoming messages remembered per session.
const DROPPED_REMEMBERED: usize = 16;

/// A SEND carrying one chunk of `msg`: every chunk repeats the Message-ID,
/// the Content-Type and the same Success-/Failure-Report (RFC 4975 7.1.1;
/// the defaults, `no` and `yes`, are left out).
fn chunk_request<'a>(
    session: &'a Session,
    msg: &'a OutMessage,
    range: ByteRange,
    body: Bytes,
    flag: Continuation,
) -> Request<'a> {
    Request {
        method: &Method::Send,
        to_path: session.to_path(),
        from_path: session.own_path(),
        message_id: Some(msg.message_id),
        byte_range: Some(range),
        success_report: (msg.success_report == SuccessReport::Yes).then_some(SuccessReport::Yes),
        failure_report: (msg.failure_report != FailureReport::Yes).then_some(msg.failure_report),
        status: None,
        content: Some(Content {
            content_type: &msg.content_type,
            mime_headers: &[],
            body,
        }),
        continuation: flag,
    }
}

/// Whether a request with this Failure-Report gets a response with this
/// status (RFC 4975 7.2): `no` never, `partial` only errors.
fn answers(failure_report: FailureReport, status: u16) -> bool {
    match failure_report {
        FailureReport::Yes => true,
        FailureReport::Partial => status != 200,
        FailureReport::No => false,
    }
}

/// The leftmost URI of a path.
fn leftmost(path: &str) -> &str {
    memchr::memchr(b' ', path.as_bytes()).map_or(path, |at| &path[..at])
}

/// RFC 4975 7.2: a SEND's response goes to the leftmost URI of its
/// From-Path (the previous hop), any other request's to the whole path.
fn response_to_path(head: &FrameHead) -> &str {
    let from = head.from_path().as_str();
    match head.method() {
        Some(Method::Send) => leftmost(from),
        _ => from,
    }
}

impl Connection {
    pub fn new(config: ConnectionConfig) -> Connection {
        let writer = match config.seed {
            Some(seed) => Writer::with_seed(seed),
            None => Writer::new(),
        };
        Connection {
            parser: Parser::new(config.parser),
            writer,
            sessions: Slab::new(),
            generation: 0,
            by_session_id: IdMap::default(),
            sched: Scheduler::new(64 * 1024),
            control: BytesMut::new(),
            scratch: BytesMut::new(),
            txns: IdMap::default(),
            txn_timers: Timers::new(),
            report_timers: Timers::new(),
            next_sweep: None,
            inflight_bytes: 0,
            deferred: Slab::new(),
            tickets_issued: 0,
            epochs: 0,
            inbound: Inbound::Idle,
            pieces: Vec::new(),
            events: VecDeque::new(),
            next_message: 0,
            frame_deadline: None,
            input_paused: false,
            refuse_sends: false,
            closed: false,
            stats: ConnectionStats::default(),
            config,
        }
    }

    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    pub fn stats(&self) -> &ConnectionStats {
        &self.stats
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Unanswered chunk octets over all sessions.
    pub fn inflight_bytes(&self) -> u64 {
        self.inflight_bytes
    }

    /// Unanswered chunk octets of one session.
    pub fn session_inflight_bytes(&self, key: SessionKey) -> Option<u64> {
        self.session(key).map(|s| s.outgoing.inflight_bytes)
    }

    /// Octets held in memory for incoming messages of one session.
    pub fn session_reassembly_bytes(&self, key: SessionKey) -> Option<u64> {
        self.session(key).map(|s| {
            s.incoming
                .values()
                .map(|m| match m.is_streamed() {
                    true => 0,
                    false => m.ranges.end(),
                })
                .sum()
        })
    }

    /// Incoming messages of one session still in reassembly.
    pub fn session_incoming_messages(&self, key: SessionKey) -> Option<usize> {
        self.session(key).map(|s| s.incoming.len())
    }

    /// The session whose local URI has this session-id.
    pub fn session_key(&self, session_id: &str) -> Option<SessionKey> {
        self.by_session_id
            .get(session_id)
            .map(|&slot| self.sessions[slot].key)
    }

    /// Deadlines held for transactions and REPORT waits, including ones
    /// already settled that are dropped lazily: stays within about twice
    /// the live ones.
    pub fn timer_entries(&self) -> usize {
        self.txn_timers.queue.len() + self.report_timers.queue.len()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    fn session(&self, key: SessionKey) -> Option<&Session> {
        self.sessions.get(key.slot as usize).filter(|s| s.key == key)
    }

    /// A random Message-ID for the binding SEND, which is no message of a
    /// slot (messages get [`minted_message_id`]s).
    fn binding_message_id(&mut self) -> MessageId {
        let tid = self.writer.transaction_id();
        MessageId::new(tid.as_bytes()).unwrap_or_else(|| unreachable!("base62 ids are idents"))
    }

    /// Adds a negotiated session. An active session sends its binding SEND
    /// at once (RFC 4975 5.4); a passive one is bound by the first request
    /// that names it.
    pub fn add_session(
        &mut self,
        config: SessionConfig,
        now: Instant,
    ) -> Result<SessionKey, AddSessionError> {
        if self.closed {
            return Err(AddSessionError::Closed);
        }
        if self.sessions.len() >= self.config.sessions_max {
            return Err(AddSessionError::TooManySessions(self.config.sessions_max));
        }
        if config.remote_path.is_empty() {
            return Err(AddSessionError::EmptyRemotePath);
        }
        let session_id: Box<str> = match config.local_uri.session_id() {
            Some(id) => id.into(),
            None => return Err(AddSessionError::NoSessionId(config.local_uri.to_string())),
        };
        if self.by_session_id.contains_key(&session_id) {
            return Err(AddSessionError::DuplicateSessionId(session_id.into()));
        }
        let slot = self.sessions.vacant_key();
        self.generation = self.generation.wrapping_add(1);
        let key = SessionKey {
            slot: slot as u32,
            generation: self.generation,
        };
        let session = Session::new(key, config);
        self.sched
            .raise_quantum(session.config.settings.chunk_bytes as u64);
        let binds = session.binding == BindState::Binding;
        self.sessions.insert(session);
        self.by_session_id.insert(session_id, slot);
        if binds {
            let message_id = self.binding_message_id();
            let session = &self.sessions[slot];
            let req = Request {
                method: &Method::Send,
                to_path: session.to_path(),
                from_path: session.own_path(),
                message_id: Some(message_id),
                byte_range: Some(ByteRange {
                    start: 1,
                    end: Some(0),
                    total: Some(0),
                }),
                success_report: None,
                failure_report: None,
                status: None,
                content: None,
                continuation: Continuation::Last,
            };
            match self.writer.write_request(&req, &mut self.control) {
                Ok(tid) => self.start_txn(tid, key, TxnKind::Bind, now),
                Err(e) => {
                    self.close_session(key, &format!("cannot write the binding SEND: {e}"));
                }
            }
        }
        Ok(key)
    }

    fn start_txn(&mut self, tid: TransactionId, session: SessionKey, kind: TxnKind, now: Instant) {
        let deadline = now + self.config.transaction_timeout;
        self.txns.insert(
            tid,
            Txn {
                session,
                kind,
                sent: now,
            },
        );
        let txns = &self.txns;
        self.txn_timers.push(deadline, tid, |t| txns.contains_key(t));
    }

    /// Queues a message. It is cut into chunks as the scheduler gives the
    /// session turns; its outcome comes as [`Event::Delivered`] or
    /// [`Event::Failed`].
    pub fn send(&mut self, key: SessionKey, message: OutgoingMessage) -> Result<MessageRef, SendError> {
        let Some(session) = self.sessions.get(key.slot as usize).filter(|s| s.key == key) else {
            return Err(SendError::UnknownSession);
        };
        let cfg = &session.config;
        if !cfg.direction.may_send() {
            return Err(SendError::Direction);
        }
        if !is_media_type(message.content_type.as_bytes()) {
            return Err(SendError::InvalidContentType(message.content_type));
        }
        if !type_accepted(&cfg.remote_accept_types, &message.content_type)
            || session
                .refused_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&message.content_type))
        {
            return Err(SendError::TypeNotAccepted(message.content_type));
        }
        if let (Some(size), Some(max)) = (message.payload.len(), cfg.remote_max_size) {
            if size > max {
                return Err(SendError::TooLarge { size, max });
            }
        }
        let settings = &cfg.settings;
        let queued = message.payload.queued_bytes();
        let out = &session.outgoing;
        if out.queue.len() >= settings.send_queue_messages_max
            || (out.queued_bytes > 0 && out.queued_bytes + queued > settings.send_queue_bytes_max)
        {
            self.sessions[key.slot as usize].outgoing.full_signalled = true;
            return Err(SendError::Full(message));
        }
        let success_report = message.success_report.unwrap_or(settings.success_report);
        let failure_report = message.failure_report.unwrap_or(settings.failure_report);
        let msg_slot = session.outgoing.messages.vacant_key();
        let (message_id, minted_id) = match message.message_id {
            Some(id) => (id, false),
            None => {
                let random = self.writer.transaction_id();
                (minted_message_id(msg_slot, &random.as_bytes()[..14]), true)
            }
        };
        let reference = MessageRef(self.next_message);
        self.next_message += 1;
        let session = &mut self.sessions[key.slot as usize];
        let out = &mut session.outgoing;
        let slot = out.messages.insert(OutMessage {
            minted_id,
            reference,
            message_id,
            content_type: message.content_type,
            total: message.payload.len(),
            payload: message.payload,
            cut_bytes: 0,
            all_cut: false,
            success_report,
            failure_report,
            chunks_unanswered: 0,
            bytes_acked: 0,
            reported: Default::default(),
        });
        out.queue.push_back(slot);
        out.queued_bytes += queued;
        debug_assert_eq!(slot, msg_slot);
        let reportable = success_report == SuccessReport::Yes || failure_report != FailureReport::No;
        if !minted_id && reportable {
            out.by_id.insert(message_id, slot);
        }
        self.schedule(key.slot as usize);
        Ok(reference)
    }

    /// A content source that said `Pending` has data now.
    pub fn wake(&mut self, key: SessionKey) {
        if let Some(session) = self.sessions.get_mut(key.slot as usize).filter(|s| s.key == key) {
            session.outgoing.source_pending = false;
            self.schedule(key.slot as usize);
        }
    }

    fn schedule(&mut self, slot: usize) {
        if let Some(session) = self.sessions.get_mut(slot) {
            if !session.scheduled && session.is_ready() {
                session.scheduled = true;
                self.sched.push(slot as u32);
            }
        }
    }

    /// Ends a session: its pending messages fail, its incoming large messages
    /// are aborted, then [`Event::SessionClosed`].
    pub fn close_session(&mut self, key: SessionKey, reason: &str) {
        let Some(session) = self.sessions.get(key.slot as usize).filter(|s| s.key == key) else {
            return;
        };
        let slot = key.slot as usize;
        let mut pending: Vec<usize> = session.outgoing.messages.iter().map(|(s, _)| s).collect();
        pending.sort_by_key(|&s| session.outgoing.messages[s].reference);
        for msg_slot in pending {
            self.fail_message(slot, msg_slot, None, reason);
        }
        // Requests of the session that are still owed an answer get 481
        // (RFC 4975 7.3): the one arriving now, at its end-line, and the
        // chunks waiting for a sink commit, at once.
        if let Inbound::Send(frame) = &self.inbound {
            if frame.slot == slot {
                let reply = self.reply_for(&frame.head, 481, Some(slot));
                self.inbound = Inbound::Skip(Some(reply));
                self.pieces.clear();
            }
        }
        let owed: Vec<usize> = self
            .deferred
            .iter()
            .filter(|(_, d)| d.session == key)
            .map(|(index, _)| index)
            .collect();
        for index in owed {
            let deferred = self.deferred.remove(index);
            self.send_reply(Reply {
                tid: deferred.tid,
                status: 481,
                failure_report: deferred.failure_report,
                to_path: deferred.reply_to,
                from_path: self.sessions[slot].own_path().to_owned(),
            });
        }
        let session = self.sessions.remove(slot);
        // Every message that started ends in an event, in memory or not.
        for message_id in session.incoming.into_keys() {
            self.events.push_back(Event::MessageAborted {
                session: key,
                message_id,
                reason: reason.to_owned(),
            });
        }
        if session.scheduled {
            self.sched.remove(slot as u32);
        }
        if let Some(id) = session.config.local_uri.session_id() {
            self.by_session_id.remove(id);
        }
        self.events.push_back(Event::SessionClosed {
            session: key,
            reason: reason.to_owned(),
        });
    }

    /// The transport is gone: every session fails (RFC 4975 5.4), and
    /// nothing more is written.
    pub fn handle_closed(&mut self, reason: &str) {
        self.close(reason);
        self.control.clear();
    }

    /// The connection must end (framing lost): every session fails, but the
    /// responses already owed, such as the 200s for frames accepted before
    /// the error, are still handed out by `poll_transmit` before the shell
    /// closes the socket.
    fn close(&mut self, reason: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        let keys: Vec<SessionKey> = self.sessions.iter().map(|(_, s)| s.key).collect();
        for key in keys {
            self.close_session(key, reason);
        }
        self.txns.clear();
        self.txn_timers.queue.clear();
        self.report_timers.queue.clear();
        self.inflight_bytes = 0;
        self.inbound = Inbound::Idle;
        self.frame_deadline = None;
        self.events.push_back(Event::ConnectionClosed {
            reason: reason.to_owned(),
        });
    }

    /// The peer closed its side: the connection ends, and says so if that
    /// cut a frame short (RFC 4975 7.1: its end-line never came).
    pub fn handle_eof(&mut self) {
        let reason = match self.parser.finish() {
            Ok(()) => "the peer closed the connection".to_owned(),
            Err(e) => format!("the peer closed the connection inside a frame: {e}"),
        };
        self.handle_closed(&reason);
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest time [`Connection::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.txn_timers.next(),
            self.report_timers.next(),
            self.next_sweep,
            self.frame_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the timers due at `now`: unanswered chunks fail with a local 408,
    /// success-REPORT waits expire, stale incoming messages are dropped.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.frame_deadline.is_some_and(|at| at <= now) {
            self.frame_deadline = None;
            self.stats.frame_timeouts += 1;
            let timeout = self.config.frame_timeout;
            self.close(&format!(
                "a frame was begun and no octet of it came for {timeout:?} (frame-timeout)"
            ));
            return;
        }
        // A due entry's deadline is its transaction's; a settled transaction
        // is simply gone from the map.
        while let Some(tid) = self.txn_timers.pop_due(now) {
            let Some(txn) = self.txns.remove(&tid) else {
                continue;
            };
            if let TxnKind::Chunk { answered: false, .. } = txn.kind {
                // RFC 4975 7.2: with `partial`, silence means success.
                self.end_txn(txn, 200, now, &String::new);
                continue;
            }
            let secs = self.config.transaction_timeout.as_secs_f64();
            self.end_txn(txn, 408, now, &|| {
                format!("no response within {secs} s (RFC 4975 7.1.1)")
            });
        }
        while let Some((key, slot, reference)) = self.report_timers.pop_due(now) {
            let waiting = self
                .session(key)
                .and_then(|s| s.outgoing.messages.get(slot))
                .is_some_and(|m| m.reference == reference && m.waits_for_report());
            if waiting {
                let secs = self.config.report_timeout.as_secs_f64();
                let reason = format!("no success REPORT covered the message within {secs} s");
                self.fail_message(key.slot as usize, slot, None, &reason);
            }
        }
        if self.next_sweep.is_some_and(|at| at <= now) {
            self.sweep_incoming(now);
        }
    }

    fn sweep_incoming(&mut self, now: Instant) {
        let expiry = self.config.incoming_expiry;
        let mut any = false;
        for (_, session) in self.sessions.iter_mut() {
            let key = session.key;
            session.incoming.retain(|message_id, m| {
                let stale = m.uncommitted == 0 && now.duration_since(m.touched) >= expiry;
                if stale {
                    self.events.push_back(Event::MessageAborted {
                        session: key,
                        message_id: *message_id,
                        reason: "no chunk of the message arrived for too long".into(),
                    });
                }
                any |= !stale;
                !stale
            });
        }
        self.next_sweep = any.then(|| now + expiry / 4);
    }

    /// Where the shell reads into; then call [`Connection::handle_input`].
    pub fn input_buffer(&mut self) -> &mut BytesMut {
        self.parser.buffer_mut()
    }

    /// Copies `bytes` in and handles them.
    pub fn handle_bytes(&mut self, bytes: &[u8], now: Instant) {
        self.parser.feed(bytes);
        self.handle_input(now);
    }

    /// The shell stops reading (backpressure: the peer's octets cannot
    /// arrive, so the frame timer must not run) or starts again.
    pub fn set_input_paused(&mut self, paused: bool, now: Instant) {
        if self.input_paused != paused {
            self.input_paused = paused;
            self.arm_frame_timer(now);
        }
    }

    /// While `refuse`, a SEND with a body is answered 403 (RFC 4975 10:
    /// the action is not allowed): the shell has no application to give
    /// it to and is configured not to acknowledge what it would drop.
    pub fn set_refuse_sends(&mut self, refuse: bool) {
        self.refuse_sends = refuse;
    }

    fn arm_frame_timer(&mut self, now: Instant) {
        self.frame_deadline = (!self.closed && !self.input_paused && self.parser.in_frame())
            .then(|| now + self.config.frame_timeout);
    }

    /// Handles everything complete in the input buffer; requests for
    /// sessions not on this connection get 481.
    pub fn handle_input(&mut self, now: Instant) {
        self.handle_input_with(now, &mut NoDirectory);
    }

    /// [`Connection::handle_input`], asking `directory` about sessions this
    /// connection does not carry: a pending passive session is claimed onto
    /// it, one bound to another connection gets 506 (RFC 4975 5.4).
    pub fn handle_input_with(&mut self, now: Instant, directory: &mut dyn SessionDirectory) {
        self.stats.bytes_in = self.parser.offset() + self.parser.buffered() as u64;
        if self.closed {
            self.parser.buffer_mut().clear();
            return;
        }
        loop {
            match self.parser.poll() {
                Ok(None) => break,
                Ok(Some(WireEvent::Head(head))) => self.on_head(head, now, directory),
                Ok(Some(WireEvent::Body(piece))) => self.on_body(piece, now),
                Ok(Some(WireEvent::End(flag))) => self.on_end(flag, now),
                Ok(Some(WireEvent::Malformed(bad))) => self.on_malformed(bad),
                Err(error) => {
                    self.close(&format!("the byte stream cannot be framed any more: {error}"));
                    return;
                }
            }
            if self.closed {
                return;
            }
        }
        self.arm_frame_timer(now);
    }

    fn on_malformed(&mut self, bad: Malformed) {
        self.stats.frames_malformed += 1;
        // A non-SEND body over its limit abandons a frame already begun.
        self.inbound = Inbound::Idle;
        self.pieces.clear();
        match bad.error.reaction() {
            Reaction::Close => {
                self.close(&format!("malformed frame: {}", bad.error));
            }
            Reaction::Discard => {}
            Reaction::Respond400 => {
                if bad.header("Failure-Report") == Some(b"no") {
                    return;
                }
                // A path the request lacks (N10, N11), or one that cannot be
                // echoed (a control octet), is written as a placeholder: the
                // sender matches the 400 by its tid.
                fn text(v: Option<&[u8]>) -> &str {
                    let echoable = |v: &&[u8]| v.iter().all(|&b| b >= 0x20 && b != 0x7f);
                    match v.filter(echoable).and_then(|v| core::str::from_utf8(v).ok()) {
                        Some(path) if !path.trim().is_empty() => path,
                        _ => UNKNOWN_PATH,
                    }
                }
                let to_path = leftmost(text(bad.header("From-Path"))).to_owned();
                let from_path = leftmost(text(bad.header("To-Path"))).to_owned();
                let comment = bad.error.to_string();
                let comment: String = comment.chars().filter(|c| !c.is_control()).take(120).collect();
                match write_response_echo(
                    &mut self.control,
                    bad.transaction_id(),
                    400,
                    Some(&comment),
                    &to_path,
                    &from_path,
                ) {
                    Ok(()) => self.stats.count_response(400),
                    // Never silence: a sender would wait for its timeout.
                    Err(error) => self.close(&format!(
                        "malformed frame ({}) that no valid 400 can answer: {error}",
                        bad.error
                    )),
                }
            }
        }
    }

    /// RFC 4975 7.3: exactly one To-Path URI, equal to a session's URI.
    fn lookup(&self, head: &FrameHead) -> Option<usize> {
        let to = head.to_path();
        if to.len() != 1 {
            return None;
        }
        let raw = to.as_str();
        let slot = *self.by_session_id.get(session_id_of(raw)?)?;
        let session = &self.sessions[slot];
        if raw == session.own_path()
            || to
                .uris()
                .next()
                .is_some_and(|uri| uri == session.config.local_uri)
        {
            Some(slot)
        } else {
            None
        }
    }

    /// RFC 4975 7.3: the request comes from the negotiated peer, the last
    /// URI of its From-Path compared per RFC 4975 6.1.
    fn from_peer(peer: Option<&MsrpUri>, head: &FrameHead) -> bool {
        let from = head.from_path();
        let Some(peer) = peer else { return false };
        from.as_str() == peer.as_str() || from.uris().last().is_some_and(|uri| &uri == peer)
    }

    /// Answers a request of a session at once, without copying its paths.
    fn reply_now(&mut self, head: &FrameHead, status: u16, slot: usize) {
        if !answers(head.failure_report().unwrap_or_default(), status) {
            return;
        }
        let written = write_response(
            &mut self.control,
            head.transaction_id(),
            status,
            Some(status_comment(status)),
            response_to_path(head),
            self.sessions[slot].own_path(),
        );
        if written.is_ok() {
            self.stats.count_response(status);
        }
    }

    fn reply_for(&self, head: &FrameHead, status: u16, slot: Option<usize>) -> Reply {
        let from_path = match slot {
            Some(slot) => self.sessions[slot].own_path().to_owned(),
            None => head.to_path().as_str().to_owned(),
        };
        Reply {
            tid: *head.transaction_id(),
            status,
            failure_report: head.failure_report().unwrap_or_default(),
            to_path: response_to_path(head).to_owned(),
            from_path,
        }
    }

    /// A request names no session here: claim it from the directory, or
    /// say which status refuses it.
    fn claim(
        &mut self,
        head: &FrameHead,
        directory: &mut dyn SessionDirectory,
        now: Instant,
    ) -> Result<usize, u16> {
        let to = head.to_path();
        let uri = match to.len() {
            1 => to.uris().next().ok_or(481u16)?,
            _ => return Err(481),
        };
        let from_peer = |config: &SessionConfig| Self::from_peer(config.remote_path.last(), head);
        match directory.lookup(&uri, &from_peer) {
            Lookup::Unknown => Err(481),
            Lookup::BoundElsewhere => Err(506),
            Lookup::Forbidden => Err(403),
            Lookup::Claim(mut config) => {
                config.role = Role::Passive;
                let key = self.add_session(*config, now).map_err(|_| 481u16)?;
                self.lookup(head)
                    .filter(|&slot| slot == key.slot as usize)
                    .ok_or(481)
            }
        }
    }

    fn on_head(&mut self, head: FrameHead, now: Instant, directory: &mut dyn SessionDirectory) {
        debug_assert!(matches!(self.inbound, Inbound::Idle), "a head inside a frame");
        let method = match head.kind() {
            FrameKind::Response { status } => {
                self.stats.responses_in += 1;
                let status = *status;
                self.on_response(&head, status, now);
                self.inbound = Inbound::Skip(None);
                return;
            }
            FrameKind::Request(method) => method.clone(),
        };
        self.stats.requests_in += 1;
        let found = match self.lookup(&head) {
            Some(slot) => Ok(slot),
            None => self.claim(&head, directory, now),
        };
        let slot = match found {
            Ok(slot) => slot,
            Err(status) => {
                // REPORTs are never answered (RFC 4975 7.1.2).
                let reply = (method != Method::Report).then(|| self.reply_for(&head, status, None));
                self.inbound = Inbound::Skip(reply);
                return;
            }
        };
        let session = &mut self.sessions[slot];
        if !Self::from_peer(session.peer(), &head) {
            let reply = (method != Method::Report).then(|| self.reply_for(&head, 403, Some(slot)));
            self.inbound = Inbound::Skip(reply);
            return;
        }
        if session.binding == BindState::Unbound {
            session.binding = BindState::Bound;
            self.events
                .push_back(Event::SessionReady { session: session.key });
        }
        match method {
            Method::Report => {
                self.on_report(slot, &head);
                self.inbound = Inbound::Skip(None);
            }
            Method::Other(_) => {
                let reply = self.reply_for(&head, 501, Some(slot));
                self.inbound = Inbound::Skip(Some(reply));
            }
            Method::Send => self.on_send_head(slot, head, now),
        }
    }

    fn on_send_head(&mut self, slot: usize, head: FrameHead, now: Instant) {
        let Some(message_id) = head.message_id().copied() else {
            // Only a bodiless SEND on the lenient wire comes here (the parser
            // refuses any other SEND without Message-ID with 400): a bind or
            // keep-alive, answered as such.
            if !head.has_body() {
                self.reply_now(&head, 200, slot);
            }
            self.inbound = Inbound::Skip(None);
            return;
        };
        let range = head.byte_range().unwrap_or(ByteRange {
            start: 1,
            end: None,
            total: None,
        });
        let session = &mut self.sessions[slot];
        let cfg = &session.config;
        let target = if !head.has_body() {
            Target::Bodiless
        } else if !cfg.direction.may_receive() || self.refuse_sends {
            Target::Reject(403)
        } else if !head
            .content_type()
            .is_some_and(|t| type_accepted(&cfg.accept_types, t))
        {
            Target::Reject(415)
        } else if range.total.is_some_and(|t| t > session.incoming_bytes_max())
            || range.start - 1 > session.incoming_bytes_max()
            // Late chunks of a message already refused or dropped.
            || session.dropped_incoming.contains(&message_id)
        {
            Target::Reject(413)
        } else if let Some(incoming) = session.incoming.get_mut(&message_id) {
            incoming.touched = now;
            Target::Entry { streamed: false }
        } else if range.start == 1 {
            Target::Collect
        } else {
            match self.new_incoming(slot, message_id, &head, now) {
                true => Target::Entry { streamed: false },
                false => Target::Reject(413),
            }
        };
        let inline_bytes_max = match range.total {
            Some(total) if total > self.sessions[slot].config.settings.inline_bytes_max => 0,
            _ => self.sessions[slot].config.settings.inline_bytes_max,
        };
        self.inbound = Inbound::Send(Box::new(SendFrame {
            slot,
            head,
            message_id,
            start: range.start,
            received: 0,
            target,
            inline_bytes_max,
        }));
    }

    /// Starts reassembly of a message, within the session's bound.
    fn new_incoming(&mut self, slot: usize, message_id: MessageId, head: &FrameHead, now: Instant) -> bool {
        let session = &mut self.sessions[slot];
        if session.incoming.len() >= session.config.settings.incoming_messages_max {
            return false;
        }
        // Its reports and REPORT path are set from each chunk at its end.
        self.epochs += 1;
        let incoming = Incoming::new(
            head.content_type().unwrap_or_default().to_owned(),
            now,
            self.epochs,
        );
        session.incoming.insert(message_id, incoming);
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.config.incoming_expiry / 4);
        }
        true
    }

    /// Drops a message in reassembly, telling the sink if it had data.
    fn drop_incoming(&mut self, slot: usize, message_id: MessageId, reason: &str) {
        let session = &mut self.sessions[slot];
        // Chunks of it still on the wire get 413 instead of starting it anew.
        if !session.dropped_incoming.contains(&message_id) {
            if session.dropped_incoming.len() == DROPPED_REMEMBERED {
                session.dropped_incoming.pop_front();
            }
            session.dropped_incoming.push_back(message_id);
        }
        if session.incoming.remove(&message_id).is_some() {
            self.events.push_back(Event::MessageAborted {
                session: session.key,
                message_id,
                reason: reason.to_owned(),
            });
        }
    }

    fn on_body(&mut self, piece: Bytes, now: Instant) {
        if !matches!(self.inbound, Inbound::Send(_)) {
            return;
        }
        let Inbound::Send(mut frame) = core::mem::replace(&mut self.inbound, Inbound::Idle) else {
            return;
        };
        self.take_piece(&mut frame, piece, now);
        self.inbound = Inbound::Send(frame);
    }

    fn take_piece(&mut self, frame: &mut SendFrame, piece: Bytes, now: Instant) {
        let len = piece.len() as u64;
        // 0-based position of this piece in the message.
        let offset = frame.start - 1 + frame.received;
        frame.received += len;
        if matches!(frame.target, Target::Reject(_) | Target::Bodiless) {
            return;
        }
        let session = &self.sessions[frame.slot];
        // RFC 4975 7.3.1: a chunk reaching past the session's max-size -> 413
        // (stop this message).
        if offset + len > session.incoming_bytes_max() {
            let reason = match session.config.max_size {
                Some(max) if max <= session.config.settings.incoming_message_bytes_max => {
                    "the message is over the session's negotiated max-size (SDP a=max-size)"
                }
                _ => "the message is over the engine's largest incoming message (--message-max)",
            };
            self.refuse_chunk(frame, 413, reason);
            return;
        }
        if let Target::Collect = frame.target {
            if offset + len <= frame.inline_bytes_max {
                self.pieces.push(piece);
                return;
            }
            // Too large to keep whole in memory: reassemble and stream it.
            if !self.promote_collected(frame, now) {
                return;
            }
        }
        self.write_entry(frame, offset, piece);
    }

    /// Moves the pieces collected for a first chunk into a new reassembly
    /// entry (the message turned out to have more chunks, or to be too large
    /// to hold whole). False when the chunk was refused instead.
    fn promote_collected(&mut self, frame: &mut SendFrame, now: Instant) -> bool {
        if !self.new_incoming(frame.slot, frame.message_id, &frame.head, now) {
            self.refuse_chunk(frame, 413, "too many incoming messages in reassembly");
            return false;
        }
        frame.target = Target::Entry { streamed: false };
        let mut at = 0;
        for held in core::mem::take(&mut self.pieces) {
            let held_len = held.len() as u64;
            if !self.write_entry(frame, at, held) {
                return false;
            }
            at += held_len;
        }
        true
    }

    /// Writes into the frame's reassembly entry; refuses the chunk (and
    /// returns false) when the entry is gone or over its range bound.
    fn write_entry(&mut self, frame: &mut SendFrame, offset: u64, data: Bytes) -> bool {
        let session = &mut self.sessions[frame.slot];
        let (key, message_id) = (session.key, frame.message_id);
        let settings = session.config.settings;
        let Some(incoming) = session.incoming.get_mut(&message_id) else {
            self.refuse_chunk(frame, 413, "the message was dropped");
            return false;
        };
        let events = &mut self.events;
        incoming.write(offset, data, frame.inline_bytes_max, |offset, data| {
            events.push_back(Event::Data {
                session: key,
                message_id,
                offset,
                data,
            })
        });
        let streamed = incoming.is_streamed();
        if incoming.ranges.count() > settings.incoming_ranges_max {
            self.refuse_chunk(frame, 413, "the message arrived in too many separate ranges");
            return false;
        }
        if let Target::Entry { streamed: s } = &mut frame.target {
            *s |= streamed;
        }
        true
    }

    /// Answers the chunk with `status` at its end and drops its message.
    fn refuse_chunk(&mut self, frame: &mut SendFrame, status: u16, reason: &str) {
        frame.target = Target::Reject(status);
        self.pieces.clear();
        self.drop_incoming(frame.slot, frame.message_id, reason);
    }

    fn on_end(&mut self, flag: Continuation, now: Instant) {
        match core::mem::replace(&mut self.inbound, Inbound::Idle) {
            Inbound::Idle => debug_assert!(false, "an end-line outside a frame"),
            Inbound::Skip(reply) => {
                if let Some(reply) = reply {
                    self.send_reply(reply);
                }
            }
            Inbound::Send(frame) => self.on_send_end(*frame, flag, now),
        }
    }

    fn on_send_end(&mut self, mut frame: SendFrame, flag: Continuation, now: Instant) {
        let slot = frame.slot;
        match frame.target {
            Target::Reject(status) => {
                self.pieces.clear();
                if status == 413 {
                    // RFC 4975 10.5: the sender stops this message; chunks
                    // still on the wire must not start it anew.
                    self.drop_incoming(slot, frame.message_id, "the message was refused with 413");
                }
                self.reply_now(&frame.head, status, slot);
            }
            Target::Bodiless => {
                self.reply_now(&frame.head, 200, slot);
            }
            Target::Collect => match flag {
                Continuation::Abort => {
                    // RFC 4975 7.1: the sender gave up on a message whose
                    // first chunk this was; it started, so it ends in an event.
                    self.pieces.clear();
                    self.reply_now(&frame.head, 200, slot);
                    self.events.push_back(Event::MessageAborted {
                        session: self.sessions[slot].key,
                        message_id: frame.message_id,
                        reason: "the sender aborted the message".into(),
                    });
                }
                Continuation::Last => {
                    let body = match self.pieces.len() {
                        0 => Bytes::new(),
                        1 => self.pieces.pop().unwrap_or_default(),
                        _ => {
                            let mut joined = BytesMut::with_capacity(frame.received as usize);
                            for piece in self.pieces.drain(..) {
                                joined.extend_from_slice(&piece);
                            }
                            joined.freeze()
                        }
                    };
                    self.reply_now(&frame.head, 200, slot);
                    self.deliver_whole(slot, &frame.head, frame.message_id, body);
                }
                Continuation::More => match self.promote_collected(&mut frame, now) {
                    true => self.end_entry_chunk(frame, flag, now),
                    // Now a refused chunk: answered as one.
                    false => self.on_send_end(frame, flag, now),
                },
            },
            Target::Entry { .. } => self.end_entry_chunk(frame, flag, now),
        }
    }

    fn end_entry_chunk(&mut self, frame: SendFrame, flag: Continuation, now: Instant) {
        let Target::Entry { streamed } = frame.target else {
            return;
        };
        let (slot, message_id) = (frame.slot, frame.message_id);
        let session = &mut self.sessions[slot];
        let key = session.key;
        let Some(incoming) = session.incoming.get_mut(&message_id) else {
            self.reply_now(&frame.head, 200, slot);
            return;
        };
        incoming.touched = now;
        incoming.success_report = frame.head.success_report().unwrap_or_default();
        incoming.failure_report = frame.head.failure_report().unwrap_or_default();
        if incoming.report_to != frame.head.from_path().as_str() {
            frame
                .head
                .from_path()
                .as_str()
                .clone_into(&mut incoming.report_to);
        }
        match flag {
            // RFC 4975 7.1: the sender gave up; answer normally, drop the rest.
            Continuation::Abort => {
                self.drop_incoming(slot, message_id, "the sender aborted the message");
                self.reply_now(&frame.head, 200, slot);
                return;
            }
            // RFC 4975 7.3.1: the `$` chunk fixes the total; its payload wins.
            Continuation::Last => incoming.total = Some(frame.start - 1 + frame.received),
            Continuation::More => {}
        }
        if streamed {
            // Nothing is answered 200 before the sink holds its bytes.
            incoming.uncommitted += 1;
            let epoch = incoming.epoch;
            let reply = self.reply_for(&frame.head, 200, Some(slot));
            self.tickets_issued = self.tickets_issued.wrapping_add(1);
            let entry = self.deferred.vacant_entry();
            let ticket = u64::from(self.tickets_issued) << 32 | entry.key() as u64;
            entry.insert(Deferred {
                ticket,
                epoch,
                session: key,
                message_id,
                tid: reply.tid,
                reply_to: reply.to_path,
                failure_report: reply.failure_report,
            });
            self.events.push_back(Event::Commit {
                session: key,
                message_id,
                ticket: CommitTicket(ticket),
            });
        } else {
            self.reply_now(&frame.head, 200, slot);
        }
        self.try_complete(slot, message_id);
    }

    /// The sink holds (and, if asked, has synced) the bytes of the chunk.
    pub fn committed(&mut self, ticket: CommitTicket) {
        self.finish_commit(ticket, None);
    }

    /// The sink could not take the bytes: the chunk is answered `status`
    /// (413 asks the sender to stop the message, RFC 4975 10.5) and the
    /// message is dropped.
    pub fn commit_failed(&mut self, ticket: CommitTicket, status: u16, reason: &str) {
        self.finish_commit(ticket, Some((status, reason)));
    }

    fn finish_commit(&mut self, ticket: CommitTicket, failure: Option<(u16, &str)>) {
        let index = (ticket.0 & u64::from(u32::MAX)) as usize;
        if self.deferred.get(index).is_none_or(|d| d.ticket != ticket.0) {
            return;
        }
        let deferred = self.deferred.remove(index);
        let slot = deferred.session.slot as usize;
        let Some(session) = self.sessions.get_mut(slot).filter(|s| s.key == deferred.session) else {
            return;
        };
        let status = failure.map_or(200, |(status, _)| status);
        let reply = Reply {
            tid: deferred.tid,
            status,
            failure_report: deferred.failure_report,
            to_path: deferred.reply_to,
            from_path: session.own_path().to_owned(),
        };
        match failure {
            None => {
                let incoming = session.incoming.get_mut(&deferred.message_id);
                if let Some(incoming) = incoming.filter(|m| m.epoch == deferred.epoch) {
                    debug_assert!(incoming.uncommitted > 0);
                    incoming.uncommitted -= 1;
                }
                self.send_reply(reply);
                self.try_complete(slot, deferred.message_id);
            }
            Some((_, reason)) => {
                self.drop_incoming(slot, deferred.message_id, reason);
                self.send_reply(reply);
            }
        }
    }

    fn try_complete(&mut self, slot: usize, message_id: MessageId) {
        let session = &mut self.sessions[slot];
        if !session
            .incoming
            .get(&message_id)
            .is_some_and(Incoming::is_complete)
        {
            return;
        }
        let Some(mut incoming) = session.incoming.remove(&message_id) else {
            return;
        };
        let total = incoming.total.unwrap_or(0);
        let body = match incoming.is_streamed() {
            true => ReceivedBody::Streamed { len: total },
            false => ReceivedBody::Inline(incoming.take_body()),
        };
        let key = session.key;
        self.stats.messages_received += 1;
        self.events.push_back(Event::MessageReceived {
            session: key,
            message_id,
            content_type: core::mem::take(&mut incoming.content_type),
            body,
        });
        if incoming.success_report == SuccessReport::Yes {
            self.success_report(slot, message_id, total, &incoming.report_to);
        }
    }

    /// A message that came whole in one chunk.
    fn deliver_whole(&mut self, slot: usize, head: &FrameHead, message_id: MessageId, body: Bytes) {
        let key = self.sessions[slot].key;
        let total = body.len() as u64;
        self.stats.messages_received += 1;
        self.events.push_back(Event::MessageReceived {
            session: key,
            message_id,
            content_type: head.content_type().unwrap_or_default().to_owned(),
            body: ReceivedBody::Inline(body),
        });
        if head.success_report() == Some(SuccessReport::Yes) {
            self.success_report(slot, message_id, total, head.from_path().as_str());
        }
    }

    /// RFC 4975 7.1.2: one success REPORT covering every octet, to the whole
    /// From-Path of the SEND.
    fn success_report(&mut self, slot: usize, message_id: MessageId, total: u64, to_path: &str) {
        let session = &self.sessions[slot];
        let req = Request {
            method: &Method::Report,
            to_path,
            from_path: session.own_path(),
            message_id: Some(message_id),
            byte_range: Some(ByteRange {
                start: 1,
                end: Some(total),
                total: Some(total),
            }),
            success_report: None,
            failure_report: None,
            status: Some((
                ReportStatus {
                    namespace: 0,
                    code: 200,
                },
                "OK",
            )),
            content: None,
            continuation: Continuation::Last,
        };
        // The paths were validated when the SEND was parsed.
        let written = self.writer.write_request(&req, &mut self.control);
        debug_assert!(written.is_ok());
    }

    /// Writes a response as the request's Failure-Report allows (RFC 4975
    /// 7.2): `no` never, `partial` only for errors.
    fn send_reply(&mut self, reply: Reply) {
        if !answers(reply.failure_report, reply.status) {
            return;
        }
        let written = write_response(
            &mut self.control,
            &reply.tid,
            reply.status,
            Some(status_comment(reply.status)),
            &reply.to_path,
            &reply.from_path,
        );
        if written.is_ok() {
            self.stats.count_response(reply.status);
        }
    }

    fn on_response(&mut self, head: &FrameHead, status: u16, now: Instant) {
        let Some(txn) = self.txns.remove(head.transaction_id()) else {
            self.stats.responses_unmatched += 1;
            return;
        };
        let txns = &self.txns;
        self.txn_timers.prune(|tid| txns.contains_key(tid));
        let comment = head.comment().unwrap_or(status_comment(status));
        self.end_txn(txn, status, now, &|| format!("{status} {comment}"));
    }

    /// Settles a transaction with `status`; `reason` words a failure, and is
    /// only called for one (no allocation for the 200s).
    fn end_txn(&mut self, txn: Txn, status: u16, now: Instant, reason: &dyn Fn() -> String) {
        let key = txn.session;
        let slot = key.slot as usize;
        if let TxnKind::Chunk {
            len, answered: true, ..
        } = txn.kind
        {
            debug_assert!(self.inflight_bytes >= len);
            self.inflight_bytes -= len.min(self.inflight_bytes);
        }
        let Some(session) = self.sessions.get_mut(slot).filter(|s| s.key == key) else {
            return;
        };
        match txn.kind {
            TxnKind::Abort => {}
            TxnKind::Bind => {
                if status == 200 {
                    if session.binding == BindState::Binding {
                        session.binding = BindState::Bound;
                        self.events.push_back(Event::SessionReady { session: key });
                    }
                } else {
                    self.close_session(key, &format!("the binding SEND was answered {}", reason()));
                }
            }
            TxnKind::Chunk {
                slot: msg_slot,
                message,
                len,
                answered,
            } => {
                if answered {
                    session.outgoing.inflight_bytes -= len;
                }
                let Some(msg) = session
                    .outgoing
                    .messages
                    .get_mut(msg_slot)
                    .filter(|m| m.reference == message)
                else {
                    self.schedule(slot);
                    return;
                };
                if self.config.chunk_events {
                    self.events.push_back(Event::ChunkAnswered {
                        session: key,
                        message,
                        bytes: len,
                        status,
                        sent: txn.sent,
                    });
                }
                if status == 200 {
                    msg.chunks_unanswered -= 1;
                    msg.bytes_acked += len;
                    if msg.is_delivered() {
                        self.deliver(slot, msg_slot);
                    } else if msg.waits_for_report() {
                        self.wait_for_report(key, msg_slot, message, now);
                    }
                } else {
                    self.message_refused(slot, msg_slot, status, &reason());
                }
                self.schedule(slot);
            }
        }
    }

    /// An error status for a message, by response or REPORT (RFC 4975 10).
    fn message_refused(&mut self, slot: usize, msg_slot: usize, status: u16, reason: &str) {
        let session = &mut self.sessions[slot];
        match status {
            // The session is gone at the peer, or bound elsewhere.
            481 | 506 => {
                let key = session.key;
                self.close_session(key, &format!("the peer answered {reason}"));
            }
            415 => {
                let ty = session.outgoing.messages[msg_slot].content_type.clone();
                session.refused_types.push(ty);
                self.fail_message(slot, msg_slot, Some(status), reason);
            }
            _ => self.fail_message(slot, msg_slot, Some(status), reason),
        }
    }

    fn wait_for_report(&mut self, key: SessionKey, msg_slot: usize, message: MessageRef, now: Instant) {
        let at = now + self.config.report_timeout;
        let sessions = &self.sessions;
        self.report_timers
            .push(at, (key, msg_slot, message), |&(key, slot, reference)| {
                let session = sessions.get(key.slot as usize).filter(|s| s.key == key);
                session
                    .and_then(|s| s.outgoing.messages.get(slot))
                    .is_some_and(|m| m.reference == reference)
            });
    }

    fn on_report(&mut self, slot: usize, head: &FrameHead) {
        let session = &mut self.sessions[slot];
        let (Some(message_id), Some(status)) = (head.message_id(), head.report_status()) else {
            self.stats.reports_ignored += 1;
            return;
        };
        // RFC 4975 7.1.2: unknown Message-ID -> ignore.
        let Some(msg_slot) = session.outgoing.find(message_id) else {
            self.stats.reports_ignored += 1;
            return;
        };
        let msg = &mut session.outgoing.messages[msg_slot];
        let range = head.byte_range().unwrap_or(ByteRange {
            start: 1,
            end: msg.total,
            total: msg.total,
        });
        let end = range.end.or(range.total).unwrap_or(msg.cut_bytes);
        let outside = match msg.total {
            Some(total) => range.start > total + 1 || end > total,
            None => end > msg.cut_bytes,
        };
        if status.namespace != 0 || outside {
            self.stats.reports_ignored += 1;
            return;
        }
        if status.code == 200 {
            if msg.success_report == SuccessReport::No {
                self.stats.reports_ignored += 1;
                return;
            }
            msg.reported.insert(range.start, end);
            if msg.is_delivered() {
                self.deliver(slot, msg_slot);
            }
        } else {
            // RFC 4975 7.3.2: a failure REPORT ends the message.
            let reason = match head.report_status_comment() {
                Some(comment) => format!("failure REPORT {} {comment}", status.code),
                None => format!("failure REPORT {} {}", status.code, status_comment(status.code)),
            };
            self.message_refused(slot, msg_slot, status.code, &reason);
        }
    }

    fn deliver(&mut self, slot: usize, msg_slot: usize) {
        self.conclude(slot, msg_slot, None);
    }

    fn fail_message(&mut self, slot: usize, msg_slot: usize, status: Option<u16>, reason: &str) {
        self.conclude(slot, msg_slot, Some((status, reason)));
    }

    /// A message's one outcome: delivered, or failed with a status and why.
    fn conclude(&mut self, slot: usize, msg_slot: usize, failure: Option<(Option<u16>, &str)>) {
        let session = &mut self.sessions[slot];
        let session_key = session.key;
        if let Some(msg) = session.outgoing.remove(msg_slot) {
            let (message, message_id) = (msg.reference, msg.message_id);
            let event = match failure {
                None => {
                    self.stats.messages_delivered += 1;
                    Event::Delivered {
                        session: session_key,
                        message,
                        message_id,
                    }
                }
                Some((status, reason)) => {
                    self.stats.messages_failed += 1;
                    Event::Failed {
                        session: session_key,
                        message,
                        message_id,
                        status,
                        reason: reason.to_owned(),
                        bytes_acked: msg.bytes_acked,
                    }
                }
            };
            self.events.push_back(event);
        }
        self.check_send_ready(slot);
    }

    fn check_send_ready(&mut self, slot: usize) {
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        let settings = session.config.settings;
        let out = &mut session.outgoing;
        if out.full_signalled
            && out.queue.len() < settings.send_queue_messages_max
            && out.queued_bytes < settings.send_queue_bytes_max
        {
            out.full_signalled = false;
            self.events.push_back(Event::SendReady { session: session.key });
        }
    }

    /// Appends every frame that is ready to `out` as one batch: responses and
    /// REPORTs first, then chunks in scheduler order, up to
    /// [`ConnectionConfig::transmit_bytes_max`] body octets. Small frames are
    /// gathered into shared buffers, large bodies are passed by reference.
    /// Returns the octets added.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<Bytes>) -> usize {
        let first = out.len();
        if !self.control.is_empty() {
            out.push(self.control.split().freeze());
        }
        if !self.closed && !self.sched.is_empty() {
            let mut sched = core::mem::replace(&mut self.sched, Scheduler::new(1));
            let budget = self.config.transmit_bytes_max;
            sched.drive(budget, |slot, credit| self.turn(slot as usize, credit, now, out));
            self.sched = sched;
            if !self.scratch.is_empty() {
                out.push(self.scratch.split().freeze());
            }
        }
        let written: usize = out[first..].iter().map(Bytes::len).sum();
        self.stats.bytes_out += written as u64;
        written
    }

    /// Whether [`Connection::poll_transmit`] has something to hand out now.
    pub fn wants_transmit(&self) -> bool {
        !self.control.is_empty()
            || (!self.closed
                && !self.sched.is_empty()
                && self.inflight_bytes < self.config.inflight_bytes_max)
    }

    fn turn(&mut self, slot: usize, credit: u64, now: Instant, out: &mut Vec<Bytes>) -> Option<Turn> {
        if self.inflight_bytes >= self.config.inflight_bytes_max {
            return None;
        }
        let Some(session) = self.sessions.get_mut(slot) else {
            debug_assert!(false, "a closed session {slot} left in the scheduler");
            return Some(Turn::Idle);
        };
        let settings = session.config.settings;
        match session
            .outgoing
            .cut(settings.chunk_bytes, settings.inflight_bytes_max, credit)
        {
            Cut::Over => Some(Turn::Over),
            Cut::Blocked | Cut::Empty => {
                session.scheduled = false;
                Some(Turn::Idle)
            }
            Cut::SourceFailed(msg_slot, reason) => {
                self.write_abort(slot, msg_slot, now);
                self.fail_message(slot, msg_slot, None, &reason);
                Some(Turn::Sent(0))
            }
            Cut::Chunk(chunk) => {
                let len = chunk.body.len() as u64;
                self.emit_chunk(slot, chunk, now, out);
                self.check_send_ready(slot);
                Some(Turn::Sent(len))
            }
        }
    }

    /// RFC 4975 7.1: a sender that gives up on a message it has begun ends
    /// it with `#`, here as an empty chunk at the next octet, so the
    /// receiver drops what it holds instead of waiting for the rest.
    fn write_abort(&mut self, slot: usize, msg_slot: usize, now: Instant) {
        let session = &self.sessions[slot];
        let key = session.key;
        let Some(msg) = session.outgoing.messages.get(msg_slot) else {
            return;
        };
        if msg.cut_bytes == 0 || msg.all_cut {
            return;
        }
        let next = ByteRange {
            start: msg.cut_bytes + 1,
            end: Some(msg.cut_bytes),
            total: msg.total,
        };
        let req = chunk_request(session, msg, next, Bytes::new(), Continuation::Abort);
        let answered = msg.failure_report != FailureReport::No;
        if let Ok(tid) = self.writer.write_request(&req, &mut self.scratch) {
            self.stats.chunks_out += 1;
            if answered {
                self.start_txn(tid, key, TxnKind::Abort, now);
            }
        }
    }

    fn emit_chunk(&mut self, slot: usize, chunk: CutChunk, now: Instant, out: &mut Vec<Bytes>) {
        let session = &self.sessions[slot];
        let key = session.key;
        let msg = &session.outgoing.messages[chunk.slot];
        let len = chunk.body.len() as u64;
        let big = chunk.body.len() > self.config.copy_body_bytes_max;
        let req = chunk_request(session, msg, chunk.range, chunk.body, chunk.flag);
        let written = if big {
            self.writer
                .encode_request(&req, &mut self.scratch)
                .map(|encoded| {
                    out.push(encoded.head);
                    out.push(encoded.body);
                    self.scratch.extend_from_slice(&encoded.tail);
                    encoded.tid
                })
        } else {
            self.writer.write_request(&req, &mut self.scratch)
        };
        let (reference, failure_report) = (msg.reference, msg.failure_report);
        let answered = failure_report == FailureReport::Yes;
        let tid = match written {
            Ok(tid) => tid,
            Err(e) => {
                if answered {
                    self.sessions[slot].outgoing.inflight_bytes -= len;
                }
                self.fail_message(slot, chunk.slot, None, &format!("cannot write the chunk: {e}"));
                return;
            }
        };
        self.stats.chunks_out += 1;
        if answered {
            self.inflight_bytes += len;
        }
        if failure_report != FailureReport::No {
            let kind = TxnKind::Chunk {
                slot: chunk.slot,
                message: reference,
                len,
                answered,
            };
            self.start_txn(tid, key, kind, now);
        }
        let msg = &mut self.sessions[slot].outgoing.messages[chunk.slot];
        if msg.all_cut {
            if msg.is_delivered() {
                self.deliver(slot, chunk.slot);
            } else if msg.waits_for_report() {
                self.wait_for_report(key, chunk.slot, reference, now);
            }
        }
    }
}
