//! Incoming messages in reassembly (RFC 4975 7.3.1): their entries, what
//! drops them, and the event each ends in.

use std::time::Instant;

use bytes::Bytes;

use crate::proto::{Continuation, FrameHead, MessageId, SuccessReport};
use crate::session::{Event, Incoming, ReceivedBody};

use super::receive::{SendFrame, Target};
use super::Connection;

/// Message-IDs of dropped incoming messages remembered per session.
const DROPPED_REMEMBERED: usize = 16;

impl Connection {
    /// Starts reassembly of a message, within the session's bound.
    pub(super) fn new_incoming(
        &mut self,
        slot: usize,
        message_id: MessageId,
        head: &FrameHead,
        now: Instant,
    ) -> bool {
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
    pub(super) fn drop_incoming(&mut self, slot: usize, message_id: MessageId, reason: &str) {
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

    /// Moves the pieces collected for a first chunk into a new reassembly
    /// entry (the message turned out to have more chunks, or to be too large
    /// to hold whole). False when the chunk was refused instead.
    pub(super) fn promote_collected(&mut self, frame: &mut SendFrame, now: Instant) -> bool {
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
    pub(super) fn write_entry(&mut self, frame: &mut SendFrame, offset: u64, data: Bytes) -> bool {
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

    pub(super) fn end_entry_chunk(&mut self, frame: SendFrame, flag: Continuation, now: Instant) {
        let Target::Entry { streamed } = frame.target else {
            return;
        };
        let (slot, message_id) = (frame.slot, frame.message_id);
        let session = &mut self.sessions[slot];
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
            self.defer_reply(&frame.head, slot, message_id, epoch);
        } else {
            self.reply_now(&frame.head, 200, slot);
        }
        self.try_complete(slot, message_id);
    }

    pub(super) fn try_complete(&mut self, slot: usize, message_id: MessageId) {
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
    pub(super) fn deliver_whole(
        &mut self,
        slot: usize,
        head: &FrameHead,
        message_id: MessageId,
        body: Bytes,
    ) {
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
}
