//! Our requests and what ends them: the transactions of the binding SEND
//! and of every chunk (RFC 4975 7.1.1, 7.2), the REPORTs about our messages
//! (RFC 4975 7.1.2), and each message's one outcome.

use std::collections::HashMap;
use std::time::Instant;

use crate::proto::{
    status_comment, ByteRange, Continuation, FrameHead, MessageId, Method, Request, TransactionId,
};
use crate::session::{ChunkAnswer, Event, MessageRef, Progress, ReportVerdict, SessionKey};

use super::Connection;

/// A request of ours waiting for its response (its deadline is in the
/// timer queue).
pub(super) struct Txn {
    pub(super) session: SessionKey,
    pub(super) kind: TxnKind,
    /// When the request went to transmit.
    sent: Instant,
}

/// What a transaction of ours carried.
pub(super) enum TxnKind {
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

impl Connection {
    pub(super) fn start_txn(&mut self, tid: TransactionId, session: SessionKey, kind: TxnKind, now: Instant) {
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

    /// RFC 4975 5.4: an active session binds the connection to itself with
    /// a bodiless SEND, sent at once.
    pub(super) fn send_binding(&mut self, key: SessionKey, now: Instant) {
        let slot = key.slot as usize;
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

    /// A random Message-ID for the binding SEND, which is no message of a
    /// slot (a message's minted id names its slot).
    fn binding_message_id(&mut self) -> MessageId {
        let tid = self.writer.transaction_id();
        MessageId::new(tid.as_bytes()).unwrap_or_else(|| unreachable!("base62 ids are idents"))
    }

    pub(super) fn on_response(&mut self, head: &FrameHead, status: u16, now: Instant) {
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
    pub(super) fn end_txn(&mut self, txn: Txn, status: u16, now: Instant, reason: &dyn Fn() -> String) {
        let key = txn.session;
        let slot = key.slot as usize;
        if let TxnKind::Chunk {
            len, answered: true, ..
        } = txn.kind
        {
            debug_assert!(
                self.inflight_bytes >= len,
                "the connection's in-flight octets hold every chunk still owed a 200"
            );
            self.inflight_bytes -= len.min(self.inflight_bytes);
        }
        debug_assert!(
            !self.txns.is_empty() || self.inflight_bytes == 0,
            "octets in flight with no transaction open"
        );
        let Some(session) = self.sessions.get_mut(slot).filter(|s| s.key() == key) else {
            return;
        };
        match txn.kind {
            TxnKind::Abort => {}
            TxnKind::Bind => {
                if status == 200 {
                    if session.binding_answered() {
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
                let answer = session.chunk_answered(msg_slot, message, len, answered, status);
                if answer == ChunkAnswer::Gone {
                    self.schedule(slot);
                    return;
                }
                if self.config.chunk_events {
                    self.events.push_back(Event::ChunkAnswered {
                        session: key,
                        message,
                        bytes: len,
                        status,
                        sent: txn.sent,
                    });
                }
                match answer {
                    ChunkAnswer::Accepted(Progress::Delivered) => self.deliver(slot, msg_slot),
                    ChunkAnswer::Accepted(Progress::AwaitsReport) => {
                        self.wait_for_report(key, msg_slot, message, now)
                    }
                    ChunkAnswer::Accepted(Progress::Open) | ChunkAnswer::Gone => {}
                    ChunkAnswer::Refused => self.message_refused(slot, msg_slot, status, &reason()),
                }
                self.schedule(slot);
            }
        }
    }

    /// A chunk of the session `key` got no response within the transaction
    /// timeout (RFC 4975 7.1.1): the messages queued behind it that have not
    /// begun wait for a window an unresponsive peer does not move, and would
    /// then each wait a timeout of their own. They fail now with the same
    /// local 408, so no message waits longer than the timeout for an outcome
    /// behind a stalled window; what is queued after goes as usual.
    pub(super) fn fail_queued_behind(&mut self, key: SessionKey, reason: &str) {
        let Some(session) = self.session(key) else {
            return;
        };
        let slot = key.slot as usize;
        for msg_slot in session.unstarted_messages() {
            self.fail_message(slot, msg_slot, Some(408), reason);
        }
    }

    /// An error status for a message, by response or REPORT (RFC 4975 10).
    fn message_refused(&mut self, slot: usize, msg_slot: usize, status: u16, reason: &str) {
        let session = &mut self.sessions[slot];
        match status {
            // The session is gone at the peer, or bound elsewhere.
            481 | 506 => {
                let key = session.key();
                self.close_session(key, &format!("the peer answered {reason}"));
            }
            415 => {
                session.refuse_type(msg_slot);
                self.fail_message(slot, msg_slot, Some(status), reason);
            }
            _ => self.fail_message(slot, msg_slot, Some(status), reason),
        }
    }

    pub(super) fn wait_for_report(
        &mut self,
        key: SessionKey,
        msg_slot: usize,
        message: MessageRef,
        now: Instant,
    ) {
        let at = now + self.config.report_timeout;
        let sessions = &self.sessions;
        self.report_timers
            .push(at, (key, msg_slot, message), |&(key, slot, reference)| {
                let session = sessions.get(key.slot as usize).filter(|s| s.key() == key);
                session.is_some_and(|s| s.live_message(slot, reference).is_some())
            });
    }

    pub(super) fn on_report(&mut self, slot: usize, head: &FrameHead) {
        let (Some(message_id), Some(status)) = (head.message_id(), head.report_status()) else {
            self.stats.reports_ignored += 1;
            return;
        };
        match self.sessions[slot].report_received(message_id, status, head.byte_range()) {
            ReportVerdict::Ignored => self.stats.reports_ignored += 1,
            ReportVerdict::Success {
                msg_slot,
                progress: Progress::Delivered,
            } => self.deliver(slot, msg_slot),
            ReportVerdict::Success { .. } => {}
            ReportVerdict::Failure { msg_slot } => {
                let reason = match head.report_status_comment() {
                    Some(comment) => format!("failure REPORT {} {comment}", status.code),
                    None => format!("failure REPORT {} {}", status.code, status_comment(status.code)),
                };
                self.message_refused(slot, msg_slot, status.code, &reason);
            }
        }
    }

    pub(super) fn deliver(&mut self, slot: usize, msg_slot: usize) {
        self.conclude(slot, msg_slot, None);
    }

    pub(super) fn fail_message(&mut self, slot: usize, msg_slot: usize, status: Option<u16>, reason: &str) {
        self.conclude(slot, msg_slot, Some((status, reason)));
    }

    /// A message's one outcome: delivered, or failed with a status and why.
    fn conclude(&mut self, slot: usize, msg_slot: usize, failure: Option<(Option<u16>, &str)>) {
        let session = &mut self.sessions[slot];
        let session_key = session.key();
        if let Some(msg) = session.remove_message(msg_slot) {
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

    /// The in-flight windows hold exactly the chunks still owed a 200: the
    /// connection's every such transaction, a session's those of its own (a
    /// closed session's stay in the connection's until their transactions
    /// end). Walks every transaction: for the rare points (timers, close).
    pub(super) fn debug_check_inflight(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let mut total = 0;
        let mut by_session: HashMap<SessionKey, u64> = HashMap::new();
        for txn in self.txns.values() {
            if let TxnKind::Chunk {
                len, answered: true, ..
            } = txn.kind
            {
                total += len;
                *by_session.entry(txn.session).or_default() += len;
            }
        }
        debug_assert_eq!(
            self.inflight_bytes, total,
            "the connection's in-flight octets are its answered chunks'"
        );
        for (_, session) in self.sessions.iter() {
            debug_assert_eq!(
                session.inflight_bytes(),
                by_session.get(&session.key()).copied().unwrap_or(0),
                "a session's in-flight octets are its answered chunks'"
            );
        }
    }

    pub(super) fn check_send_ready(&mut self, slot: usize) {
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        if session.take_send_ready() {
            self.events.push_back(Event::SendReady {
                session: session.key(),
            });
        }
    }
}
