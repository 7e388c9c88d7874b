//! The output batch: responses and REPORTs first, then the sessions' chunks
//! in the order of the fair [`Scheduler`] (RFC 4975 5.1), within the
//! in-flight windows.

use std::time::Instant;

use bytes::Bytes;

use crate::proto::{ByteRange, Content, Continuation, FailureReport, Method, Request, SuccessReport};
use crate::sched::{Scheduler, Turn};
use crate::session::{Cut, CutChunk, OutMessage, Progress, Session, SessionKey};

use super::outcomes::TxnKind;
use super::Connection;

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

impl Connection {
    /// A content source that said `Pending` has data now.
    pub fn wake(&mut self, key: SessionKey) {
        if let Some(session) = self
            .sessions
            .get_mut(key.slot as usize)
            .filter(|s| s.key() == key)
        {
            session.wake();
            self.schedule(key.slot as usize);
        }
    }

    pub(super) fn schedule(&mut self, slot: usize) {
        if let Some(session) = self.sessions.get_mut(slot) {
            if session.join_ring() {
                self.sched.push(slot as u32);
            }
        }
    }

    /// Appends every frame that is ready to `out` as one batch: responses and
    /// REPORTs first, then chunks in scheduler order, up to
    /// [`ConnectionConfig::transmit_bytes_max`](super::ConnectionConfig::transmit_bytes_max)
    /// body octets. Small frames are gathered into shared buffers, large
    /// bodies are passed by reference. Returns the octets added.
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
        match session.cut(credit) {
            Cut::Over => Some(Turn::Over),
            Cut::Blocked | Cut::Empty => {
                session.leave_ring();
                Some(Turn::Idle)
            }
            Cut::SourceFailed(msg_slot, reason) => {
                self.write_abort(slot, msg_slot, now, false);
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

    /// RFC 4975 7.1: a message given up after it began ends with a `#`
    /// chunk (`OutMessage::abort_range`). Written into the batch being
    /// gathered, or `ahead` into the next batch, before any chunk: outside
    /// `poll_transmit` every earlier chunk of it was handed out already.
    pub(super) fn write_abort(&mut self, slot: usize, msg_slot: usize, now: Instant, ahead: bool) {
        let session = &self.sessions[slot];
        let key = session.key();
        let Some(msg) = session.message(msg_slot) else {
            return;
        };
        let Some(next) = msg.abort_range() else {
            return;
        };
        let req = chunk_request(session, msg, next, Bytes::new(), Continuation::Abort);
        let answered = msg.failure_report != FailureReport::No;
        let out = match ahead {
            true => &mut self.control,
            false => &mut self.scratch,
        };
        if let Ok(tid) = self.writer.write_request(&req, out) {
            self.stats.chunks_out += 1;
            if answered {
                self.start_txn(tid, key, TxnKind::Abort, now);
            }
        }
    }

    fn emit_chunk(&mut self, slot: usize, chunk: CutChunk, now: Instant, out: &mut Vec<Bytes>) {
        let session = &self.sessions[slot];
        let key = session.key();
        let Some(msg) = session.message(chunk.slot) else {
            debug_assert!(false, "the message of a chunk just cut is gone");
            return;
        };
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
                    self.sessions[slot].release_inflight(len);
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
        debug_assert!(
            self.inflight_bytes >= self.sessions[slot].inflight_bytes(),
            "the connection's in-flight octets hold every session's"
        );
        match self.sessions[slot].message(chunk.slot).map(OutMessage::progress) {
            Some(Progress::Delivered) => self.deliver(slot, chunk.slot),
            Some(Progress::AwaitsReport) => self.wait_for_report(key, chunk.slot, reference, now),
            Some(Progress::Open) | None => {}
        }
    }
}
