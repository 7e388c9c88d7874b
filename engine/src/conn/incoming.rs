//! Incoming messages in reassembly (RFC 4975 7.3.1), the connection's side:
//! the session keeps the entries; here are the events and replies around
//! them, the epochs that tell entries apart, and the sweep they arm.

use std::time::Instant;

use bytes::Bytes;

use crate::proto::{Continuation, FrameHead, MessageId, SuccessReport};
use crate::session::{ChunkEnd, Event, ReceivedBody, Refusal};

use super::receive::{SendFrame, Target};
use super::Connection;

impl Connection {
    /// Starts reassembly of a message, within the session's bound.
    pub(super) fn new_incoming(
        &mut self,
        slot: usize,
        message_id: MessageId,
        head: &FrameHead,
        now: Instant,
    ) -> Result<(), Refusal> {
        let epoch = self.epochs + 1;
        let content_type = head.content_type().unwrap_or_default();
        self.sessions[slot].start_incoming(message_id, content_type, now, epoch)?;
        self.epochs = epoch;
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.config.incoming_expiry / 4);
        }
        Ok(())
    }

    /// Drops a message in reassembly, telling the sink if it had data.
    pub(super) fn drop_incoming(&mut self, slot: usize, message_id: MessageId, reason: &str) {
        let session = &mut self.sessions[slot];
        if session.drop_incoming(message_id) {
            self.events.push_back(Event::MessageAborted {
                session: session.key(),
                message_id,
                reason: reason.to_owned(),
            });
        }
    }

    /// Moves the pieces collected for a first chunk into a new reassembly
    /// entry (the message turned out to have more chunks, or to be too large
    /// to hold whole). False when the chunk was refused instead.
    pub(super) fn promote_collected(&mut self, frame: &mut SendFrame, now: Instant) -> bool {
        if let Err(refusal) = self.new_incoming(frame.slot, frame.message_id, &frame.head, now) {
            self.refuse_chunk(frame, refusal);
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
    pub(super) fn write_entry(&mut self, frame: &mut SendFrame, offset: u64, data: Bytes) -> bool {
        let session = &mut self.sessions[frame.slot];
        let (key, message_id) = (session.key(), frame.message_id);
        let events = &mut self.events;
        let written = session.write_incoming(
            &message_id,
            offset,
            data,
            frame.inline_bytes_max,
            |offset, data| {
                events.push_back(Event::Data {
                    session: key,
                    message_id,
                    offset,
                    data,
                })
            },
        );
        match written {
            Ok(streamed) => {
                if let Target::Entry { streamed: s } = &mut frame.target {
                    *s |= streamed;
                }
                true
            }
            Err(refusal) => {
                self.refuse_chunk(frame, refusal);
                false
            }
        }
    }

    pub(super) fn end_entry_chunk(&mut self, frame: SendFrame, flag: Continuation, now: Instant) {
        let Target::Entry { streamed } = frame.target else {
            return;
        };
        let (slot, message_id) = (frame.slot, frame.message_id);
        let end_bytes = frame.start - 1 + frame.received;
        let session = &mut self.sessions[slot];
        match session.end_chunk(&message_id, &frame.head, flag, end_bytes, streamed, now) {
            ChunkEnd::Gone => {
                self.reply_now(&frame.head, 200, slot);
                return;
            }
            // RFC 4975 7.1: the sender gave up; answer normally, drop the rest.
            ChunkEnd::Aborted => {
                self.drop_incoming(slot, message_id, "the sender aborted the message");
                self.reply_now(&frame.head, 200, slot);
                return;
            }
            ChunkEnd::Held => self.reply_now(&frame.head, 200, slot),
            ChunkEnd::Streamed { epoch } => self.defer_reply(&frame.head, slot, message_id, epoch),
        }
        self.try_complete(slot, message_id);
    }

    pub(super) fn try_complete(&mut self, slot: usize, message_id: MessageId) {
        let session = &mut self.sessions[slot];
        let Some(done) = session.take_complete(&message_id) else {
            return;
        };
        let key = session.key();
        self.stats.messages_received += 1;
        let report_held = match done.report_to {
            Some(to_path) => {
                self.report_received(slot, message_id, done.total, &to_path, done.failure_report)
            }
            None => false,
        };
        self.events.push_back(Event::MessageReceived {
            session: key,
            message_id,
            content_type: done.content_type,
            body: done.body,
            report_held,
        });
    }

    /// A message that came whole in one chunk.
    pub(super) fn deliver_whole(
        &mut self,
        slot: usize,
        head: &FrameHead,
        message_id: MessageId,
        body: Bytes,
    ) {
        let key = self.sessions[slot].key();
        let total = body.len() as u64;
        self.stats.messages_received += 1;
        let report_held = head.success_report() == Some(SuccessReport::Yes) && {
            let failure_report = head.failure_report().unwrap_or_default();
            let to_path = head.from_path().as_str();
            self.report_received(slot, message_id, total, to_path, failure_report)
        };
        self.events.push_back(Event::MessageReceived {
            session: key,
            message_id,
            content_type: head.content_type().unwrap_or_default().to_owned(),
            body: ReceivedBody::Inline(body),
            report_held,
        });
    }
}
