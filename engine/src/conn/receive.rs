//! A request arriving, head to end-line: which session it names (RFC 4975
//! 7.3), whether it may come from there, and what becomes of its body.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::proto::{
    session_id_of, ByteRange, Continuation, FrameHead, FrameKind, MessageId, Method, MsrpUri,
};
use crate::session::{Admission, Event, Refusal, Role, SessionConfig, SessionKey};

use super::directory::{Lookup, SessionDirectory};
use super::replies::Reply;
use super::Connection;

/// The incoming frame in progress.
pub(super) enum Inbound {
    Idle,
    /// Body ignored; the reply, if any, goes out at the end-line.
    Skip(Option<Reply>),
    Send(Box<SendFrame>),
}

/// The SEND being read.
pub(super) struct SendFrame {
    pub(super) slot: usize,
    pub(super) head: FrameHead,
    pub(super) message_id: MessageId,
    /// 1-based position of the chunk's first octet.
    pub(super) start: u64,
    pub(super) received: u64,
    pub(super) target: Target,
    /// Octets of the message kept in memory before it streams to the sink
    /// (`Session::inline_bytes_max`).
    pub(super) inline_bytes_max: u64,
}

/// What becomes of the body of an incoming SEND.
pub(super) enum Target {
    /// First chunk of a message not seen before: pieces kept as they are.
    Collect,
    /// Into the message's reassembly entry.
    Entry { streamed: bool },
    /// Refused: the body is dropped and the chunk answered with this status.
    Reject(u16),
    /// A bodiless SEND (binding or keep-alive).
    Bodiless,
}

impl Connection {
    pub(super) fn on_head(&mut self, head: FrameHead, now: Instant, directory: &mut dyn SessionDirectory) {
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
        if session.bind_by_request() {
            self.events.push_back(Event::SessionReady {
                session: session.key(),
            });
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

    /// RFC 4975 7.3: exactly one To-Path URI, equal to a session's URI.
    fn lookup(&self, head: &FrameHead) -> Option<usize> {
        let to = head.to_path();
        if to.len() != 1 {
            return None;
        }
        let raw = to.as_str();
        let slot = *self.by_session_id.get(session_id_of(raw)?)?;
        let session = &self.sessions[slot];
        if raw == session.own_path() || to.uris().next().is_some_and(|uri| uri == *session.local_uri()) {
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
                let session_id = config.local_uri.session_id().unwrap_or_default().to_owned();
                match self.add_session(*config, now) {
                    Ok(key) => {
                        self.events.push_back(Event::SessionClaimed { session: key });
                        self.lookup(head)
                            .filter(|&slot| slot == key.slot as usize)
                            .ok_or(481)
                    }
                    Err(error) => {
                        self.events.push_back(Event::ClaimRefused {
                            session_id,
                            reason: error.to_string(),
                        });
                        Err(481)
                    }
                }
            }
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
        let target = if !head.has_body() {
            Target::Bodiless
        } else if self.refuse_sends {
            Target::Reject(403)
        } else {
            match session.admit(&head, &message_id, &range, now) {
                Admission::Refused(refusal) => Target::Reject(refusal.status()),
                Admission::Continues => Target::Entry { streamed: false },
                Admission::First => Target::Collect,
                Admission::Unseen => match self.new_incoming(slot, message_id, &head, now) {
                    Ok(()) => Target::Entry { streamed: false },
                    Err(refusal) => Target::Reject(refusal.status()),
                },
            }
        };
        let inline_bytes_max = self.sessions[slot].inline_bytes_max(range.total);
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

    pub(super) fn on_body(&mut self, piece: Bytes, now: Instant) {
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
        if let Err(refusal) = self.sessions[frame.slot].check_size(offset + len) {
            self.refuse_chunk(frame, refusal);
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

    /// Answers the chunk with the refusal's status at its end and drops its
    /// message.
    pub(super) fn refuse_chunk(&mut self, frame: &mut SendFrame, refusal: Refusal) {
        frame.target = Target::Reject(refusal.status());
        self.pieces.clear();
        self.drop_incoming(frame.slot, frame.message_id, refusal.reason());
    }

    /// Requests of the session that are still owed an answer get 481
    /// (RFC 4975 7.3): the one arriving now, at its end-line, and the
    /// chunks waiting for a sink commit, at once.
    pub(super) fn refuse_owed(&mut self, key: SessionKey) {
        let slot = key.slot as usize;
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
    }

    pub(super) fn on_end(&mut self, flag: Continuation, now: Instant) {
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
                        session: self.sessions[slot].key(),
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
}
