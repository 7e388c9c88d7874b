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
//!   socket; after [`Connection::handle_closed`] it writes nothing; after
//!   [`Connection::handle_eof`] only what the peer's requests were owed.
//!
//! The parts, one file each: `receive` (a request from head to end-line),
//! `incoming` (messages in reassembly), `commit` (200s waiting for the
//! sink), `replies` (responses and REPORTs we write), `held` (the success
//! REPORTs the application decides), `outcomes` (our
//! transactions and each message's outcome), `transmit` (the output batch),
//! `timers`, and beside them `config`, `directory` and `slots` (the
//! sessions' slab, by page).

mod commit;
mod config;
mod directory;
mod held;
mod incoming;
mod outcomes;
mod receive;
mod replies;
mod slots;
mod timers;
mod transmit;

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use slab::Slab;

pub(crate) use slots::Slots;

use crate::id_hash::IdMap;
use crate::proto::{Event as WireEvent, Parser, TransactionId, Writer};
use crate::sched::Scheduler;
use crate::session::{
    Event, MessageRef, OutgoingMessage, SendRefusal, Session, SessionConfig, SessionKey, SettingsCache,
};

use commit::Deferred;
pub use config::{AddSessionError, ConnectionConfig, ConnectionStats, ReportError, ReportSent, SendError};
use directory::NoDirectory;
pub use directory::{Lookup, SessionDirectory};
pub use held::REPORT_COMMENT_BYTES_MAX;
use outcomes::Txn;
use receive::Inbound;
use timers::Timers;

/// One MSRP connection and the sessions bound to it.
pub struct Connection {
    config: ConnectionConfig,
    parser: Parser,
    writer: Writer,
    /// By page, not doubling: they are many and mostly idle.
    sessions: Slots<Session>,
    /// The sessions' settings, one copy for all that have the same.
    settings: SettingsCache,
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
    /// The peer's FIN came while 200s waited for commits: the reason the
    /// connection closes with once the last is answered.
    eof: Option<String>,
    /// Requests with a body get 403 (no application would see them).
    refuse_sends: bool,
    closed: bool,
    stats: ConnectionStats,
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
            sessions: Slots::new(),
            settings: SettingsCache::default(),
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
            eof: None,
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
        self.session(key).map(Session::inflight_bytes)
    }

    /// Octets held in memory for incoming messages of one session.
    pub fn session_reassembly_bytes(&self, key: SessionKey) -> Option<u64> {
        self.session(key).map(Session::reassembly_bytes)
    }

    /// Incoming messages of one session still in reassembly.
    pub fn session_incoming_messages(&self, key: SessionKey) -> Option<usize> {
        self.session(key).map(Session::incoming_messages)
    }

    /// The session-id of a session on this connection.
    pub fn session_id(&self, key: SessionKey) -> Option<&str> {
        let session = self.sessions.get(key.slot as usize)?;
        (session.key() == key).then(|| session.session_id()).flatten()
    }

    /// The session whose local URI has this session-id.
    pub fn session_key(&self, session_id: &str) -> Option<SessionKey> {
        self.by_session_id
            .get(session_id)
            .map(|&slot| self.sessions[slot].key())
    }

    /// Deadlines held for transactions and REPORT waits, including ones
    /// already settled that are dropped lazily: stays within about twice
    /// the live ones.
    pub fn timer_entries(&self) -> usize {
        self.txn_timers.len() + self.report_timers.len()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub(super) fn session(&self, key: SessionKey) -> Option<&Session> {
        self.sessions.get(key.slot as usize).filter(|s| s.key() == key)
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
        let session = Session::new(key, config, &mut self.settings);
        self.sched.raise_quantum(session.settings().chunk_bytes as u64);
        let binds = session.is_binding();
        self.sessions.insert(session);
        self.by_session_id.insert(session_id, slot);
        debug_assert_eq!(self.by_session_id.len(), self.sessions.len());
        if binds {
            self.send_binding(key, now);
        }
        Ok(key)
    }

    /// Queues a message. It is cut into chunks as the scheduler gives the
    /// session turns; its outcome comes as [`Event::Delivered`] or
    /// [`Event::Failed`].
    pub fn send(&mut self, key: SessionKey, message: OutgoingMessage) -> Result<MessageRef, SendError> {
        let Some(session) = self
            .sessions
            .get_mut(key.slot as usize)
            .filter(|s| s.key() == key)
        else {
            return Err(SendError::UnknownSession);
        };
        if let Err(refusal) = session.admit_send(&message) {
            return Err(match refusal {
                SendRefusal::Direction => SendError::Direction,
                SendRefusal::InvalidContentType => SendError::InvalidContentType(message.content_type),
                SendRefusal::TypeNotAccepted => SendError::TypeNotAccepted(message.content_type),
                SendRefusal::TooLarge { size, max } => SendError::TooLarge { size, max },
                SendRefusal::Full => SendError::Full(message),
            });
        }
        let reference = MessageRef(self.next_message);
        self.next_message += 1;
        let writer = &mut self.writer;
        session.queue(message, reference, || writer.transaction_id());
        self.schedule(key.slot as usize);
        Ok(reference)
    }

    /// The peer's accept-types and max-size changed by a new offer/answer;
    /// false when the session is not here.
    pub fn update_peer_limits(
        &mut self,
        key: SessionKey,
        accept_types: Vec<String>,
        max_size: Option<u64>,
    ) -> bool {
        match self
            .sessions
            .get_mut(key.slot as usize)
            .filter(|s| s.key() == key)
        {
            Some(session) => {
                session.set_peer_limits(accept_types, max_size);
                true
            }
            None => false,
        }
    }

    /// Ends a session at the application's request, the connection staying
    /// up for the others: as [`Connection::close_session`], but first every
    /// outgoing message of it that began and did not finish ends on the wire
    /// with a `#` chunk (RFC 4975 7.1), so the peer drops what it holds of it
    /// and tells its application the message was aborted. `now` starts the
    /// `#` chunk's transaction, so its 200 is matched.
    pub fn close_session_at(&mut self, key: SessionKey, reason: &str, now: Instant) {
        let Some(session) = self.session(key) else {
            return;
        };
        let slot = key.slot as usize;
        for msg_slot in session.messages_in_send_order() {
            self.write_abort(slot, msg_slot, now, true);
        }
        self.close_session(key, reason);
    }

    /// Ends a session: its pending messages fail (nothing more of them is
    /// written: the transport may be gone), its incoming large messages are
    /// aborted, the reports it held are dropped unsent (RFC 4975 7.1.2: no
    /// REPORT for a session no longer valid), then [`Event::SessionClosed`].
    pub fn close_session(&mut self, key: SessionKey, reason: &str) {
        let Some(session) = self.session(key) else {
            return;
        };
        let slot = key.slot as usize;
        for msg_slot in session.messages_in_send_order() {
            self.fail_message(slot, msg_slot, None, reason);
        }
        self.refuse_owed(key);
        let session = self.sessions.remove(slot);
        // Every message that started ends in an event, in memory or not.
        for message_id in session.incoming_ids() {
            self.events.push_back(Event::MessageAborted {
                session: key,
                message_id,
                reason: reason.to_owned(),
            });
        }
        if session.in_ring() {
            self.sched.remove(slot as u32);
        }
        if let Some(id) = session.session_id() {
            self.by_session_id.remove(id);
        }
        debug_assert_eq!(self.by_session_id.len(), self.sessions.len());
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

    /// The shell ends the connection for a reason of its own (its peer is
    /// not who the signaling said): as when framing is lost, every session
    /// fails and the responses already owed still go out.
    pub fn end(&mut self, reason: &str) {
        self.close(reason);
    }

    /// The connection must end (framing lost): every session fails, but the
    /// responses already owed, such as the 200s for frames accepted before
    /// the error, are still handed out by `poll_transmit` before the shell
    /// closes the socket.
    pub(super) fn close(&mut self, reason: &str) {
        if self.closed {
            return;
        }
        self.debug_check_inflight();
        self.closed = true;
        let keys: Vec<SessionKey> = self.sessions.iter().map(|(_, s)| s.key()).collect();
        for key in keys {
            self.close_session(key, reason);
        }
        debug_assert!(self.deferred.is_empty(), "a commit ticket outlived its session");
        self.txns.clear();
        self.txn_timers.clear();
        self.report_timers.clear();
        self.inflight_bytes = 0;
        self.inbound = Inbound::Idle;
        self.frame_deadline = None;
        self.events.push_back(Event::ConnectionClosed {
            reason: reason.to_owned(),
        });
    }

    /// The peer closed its side (a FIN: it may still read, a half-close):
    /// the connection ends, and says so if that cut a frame short (RFC 4975
    /// 7.1: its end-line never came). What the peer sent before is still
    /// answered: the responses already owed are handed out by
    /// `poll_transmit`, and chunks whose 200 waits for the sink keep the
    /// connection open until their commits, then it closes. No response is
    /// made up for the frame cut short: the peer ended it, not us.
    pub fn handle_eof(&mut self) {
        if self.closed {
            return;
        }
        let reason = match self.parser.finish() {
            Ok(()) => "the peer closed the connection".to_owned(),
            Err(e) => format!("the peer closed the connection inside a frame: {e}"),
        };
        if !self.deferred.is_empty() && !self.parser.in_frame() {
            self.eof = Some(reason);
            return;
        }
        self.close_after_eof(&reason);
    }

    /// Closes, keeping only the responses owed before the peer's FIN.
    fn close_after_eof(&mut self, reason: &str) {
        let owed = self.control.split();
        self.close(reason);
        self.control = owed;
    }

    /// The peer's FIN came and is waiting for this connection's last
    /// commits (see [`Connection::handle_eof`]).
    pub fn eof_pending(&self) -> bool {
        self.eof.is_some()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
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
    /// arrive, so the frame timer must not run) or starts again; true when
    /// that changed anything (a pause begins or ends).
    pub fn set_input_paused(&mut self, paused: bool, now: Instant) -> bool {
        if self.input_paused == paused {
            return false;
        }
        self.input_paused = paused;
        self.arm_frame_timer(now);
        true
    }

    /// While `refuse`, a SEND with a body is answered 403 (RFC 4975 10:
    /// the action is not allowed): the shell has no application to give
    /// it to and is configured not to acknowledge what it would drop.
    pub fn set_refuse_sends(&mut self, refuse: bool) {
        self.refuse_sends = refuse;
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
                    self.stats.framing_lost += 1;
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
}
