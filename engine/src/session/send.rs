//! What a session sends, and what the answers do to it: the messages it
//! takes (RFC 4975 8.6, 8.9, 10.6), the chunks it cuts within its window,
//! the responses and REPORTs about them (RFC 4975 7.1.2, 7.3.2).

use super::event::MessageRef;
use super::outgoing::{Cut, OutMessage, OutgoingMessage, Progress};
use super::{type_accepted, Session};
use crate::proto::{is_media_type, ByteRange, MessageId, ReportStatus, SuccessReport, TransactionId};

/// Why a session does not take a message for sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendRefusal {
    /// RFC 4975 8.9: the session's direction does not send messages.
    Direction,
    /// The Content-Type is not a media type (RFC 4975 9: `type "/" subtype`).
    InvalidContentType,
    /// RFC 4975 8.6: the peer's accept-types do not include it; or
    /// RFC 4975 10.6: the peer refused it with 415 earlier in this session.
    TypeNotAccepted,
    /// Over the peer's max-size (RFC 4975 8.6).
    TooLarge { size: u64, max: u64 },
    /// The send queue is at its bound; `SendReady` is owed when room returns.
    Full,
}

/// What the response to one of our chunks did to its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChunkAnswer {
    /// The message had its outcome already.
    Gone,
    /// An error status: the message fails (RFC 4975 10).
    Refused,
    /// A 200: where the message stands now.
    Accepted(Progress),
}

/// What a REPORT about one of our messages does (RFC 4975 7.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportVerdict {
    /// Not about a message waiting for one, or about octets outside it:
    /// ignored (RFC 4975 7.3.2).
    Ignored,
    /// A success REPORT covered octets of the message in `msg_slot`.
    Success { msg_slot: usize, progress: Progress },
    /// RFC 4975 7.3.2: a failure REPORT ends the message in `msg_slot`.
    Failure { msg_slot: usize },
}

impl Session {
    /// Whether `message` may join the send queue; a full queue is
    /// remembered, so `SendReady` follows when there is room.
    pub fn admit_send(&mut self, message: &OutgoingMessage) -> Result<(), SendRefusal> {
        if !self.direction.may_send() {
            return Err(SendRefusal::Direction);
        }
        if !is_media_type(message.content_type.as_bytes()) {
            return Err(SendRefusal::InvalidContentType);
        }
        let limits = self.limits.as_deref();
        let remote_accept_types = limits.map_or(&[][..], |l| &l.remote_accept_types[..]);
        if !type_accepted(remote_accept_types, &message.content_type)
            || self.active.as_ref().is_some_and(|a| {
                a.refused_types
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(&message.content_type))
            })
        {
            return Err(SendRefusal::TypeNotAccepted);
        }
        if let (Some(size), Some(max)) = (message.payload.len(), limits.and_then(|l| l.remote_max_size)) {
            if size > max {
                return Err(SendRefusal::TooLarge { size, max });
            }
        }
        // An empty queue has room: only a session with traffic can be full.
        let Some(active) = &mut self.active else {
            return Ok(());
        };
        let settings = &*self.settings;
        let queued = message.payload.queued_bytes();
        let out = &mut active.outgoing;
        if out.queue.len() >= settings.send_queue_messages_max
            || (out.queued_bytes > 0 && out.queued_bytes + queued > settings.send_queue_bytes_max)
        {
            out.full_signalled = true;
            return Err(SendRefusal::Full);
        }
        Ok(())
    }

    /// Queues a message [`Session::admit_send`] took, with the session's
    /// report defaults; `draw` gives random octets for its Message-ID when
    /// it has none.
    pub fn queue(
        &mut self,
        message: OutgoingMessage,
        reference: MessageRef,
        draw: impl FnOnce() -> TransactionId,
    ) {
        let settings = &*self.settings;
        let success_report = message.success_report.unwrap_or(settings.success_report);
        let failure_report = message.failure_report.unwrap_or(settings.failure_report);
        self.active_mut()
            .outgoing
            .push(message, reference, success_report, failure_report, draw);
    }

    /// Cuts the next chunk, of the front message or of a one-chunk message
    /// between two of its chunks (RFC 4975 7.1), if the session's window and
    /// `allowance_bytes` let it go.
    pub fn cut(&mut self, allowance_bytes: u64) -> Cut {
        match &mut self.active {
            Some(active) => active.outgoing.cut(&self.settings, allowance_bytes),
            None => Cut::Empty,
        }
    }

    /// A content source that said `Pending` has data now.
    pub fn wake(&mut self) {
        if let Some(active) = &mut self.active {
            active.outgoing.source_pending = false;
        }
    }

    pub fn message(&self, msg_slot: usize) -> Option<&OutMessage> {
        self.active.as_ref()?.outgoing.messages.get(msg_slot)
    }

    /// The message in `msg_slot`, if it is still the one `reference` names.
    pub fn live_message(&self, msg_slot: usize, reference: MessageRef) -> Option<&OutMessage> {
        self.message(msg_slot).filter(|m| m.reference == reference)
    }

    /// Every message not concluded yet, in `send` order.
    pub fn messages_in_send_order(&self) -> Vec<usize> {
        let Some(active) = &self.active else {
            return Vec::new();
        };
        let messages = &active.outgoing.messages;
        let mut slots: Vec<usize> = messages.iter().map(|(slot, _)| slot).collect();
        slots.sort_by_key(|&slot| messages[slot].reference);
        slots
    }

    /// Whether the message in `msg_slot` is still `reference` and waits for
    /// its outcome.
    pub(crate) fn has_message(&self, msg_slot: usize, reference: MessageRef) -> bool {
        self.active
            .as_ref()
            .and_then(|a| a.outgoing.messages.get(msg_slot))
            .is_some_and(|m| m.reference == reference)
    }

    /// The messages of which no chunk was cut yet, in `send` order.
    pub fn unstarted_messages(&self) -> Vec<usize> {
        let Some(active) = &self.active else {
            return Vec::new();
        };
        let messages = &active.outgoing.messages;
        active
            .outgoing
            .queue
            .iter()
            .copied()
            .filter(|&slot| messages.get(slot).is_some_and(|m| m.cut_bytes == 0 && !m.all_cut))
            .collect()
    }

    /// Unanswered body octets of chunks sent with Failure-Report `yes`.
    pub fn inflight_bytes(&self) -> u64 {
        self.active.as_ref().map_or(0, |a| a.outgoing.inflight_bytes)
    }

    /// A chunk counted in the window is out of it: answered, or never
    /// written.
    pub fn release_inflight(&mut self, len: u64) {
        debug_assert!(
            self.inflight_bytes() >= len,
            "a session's in-flight octets hold its chunks still owed a 200"
        );
        if let Some(active) = &mut self.active {
            active.outgoing.inflight_bytes -= len.min(active.outgoing.inflight_bytes);
            self.settle();
        }
    }

    /// The transaction of a chunk of `len` octets ended with `status`;
    /// `answered` when it counted in the window (Failure-Report `yes`).
    pub fn chunk_answered(
        &mut self,
        msg_slot: usize,
        reference: MessageRef,
        len: u64,
        answered: bool,
        status: u16,
    ) -> ChunkAnswer {
        if answered {
            self.release_inflight(len);
        }
        let Some(msg) = self
            .active
            .as_mut()
            .and_then(|a| a.outgoing.messages.get_mut(msg_slot))
            .filter(|m| m.reference == reference)
        else {
            return ChunkAnswer::Gone;
        };
        if status != 200 {
            return ChunkAnswer::Refused;
        }
        msg.chunks_unanswered -= 1;
        msg.bytes_acked += len;
        ChunkAnswer::Accepted(msg.progress())
    }

    /// A REPORT with `status` about the message `message_id` names, for
    /// the octets of `range` (the whole message when it has none).
    pub fn report_received(
        &mut self,
        message_id: &MessageId,
        status: ReportStatus,
        range: Option<ByteRange>,
    ) -> ReportVerdict {
        // RFC 4975 7.1.2: unknown Message-ID -> ignore.
        let Some(out) = self.active.as_mut().map(|a| &mut a.outgoing) else {
            return ReportVerdict::Ignored;
        };
        let Some(msg_slot) = out.find(message_id) else {
            return ReportVerdict::Ignored;
        };
        let msg = &mut out.messages[msg_slot];
        let range = range.unwrap_or(ByteRange {
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
            return ReportVerdict::Ignored;
        }
        if status.code != 200 {
            return ReportVerdict::Failure { msg_slot };
        }
        if msg.success_report == SuccessReport::No {
            return ReportVerdict::Ignored;
        }
        msg.reported.insert(range.start, end);
        ReportVerdict::Success {
            msg_slot,
            progress: msg.progress(),
        }
    }

    /// RFC 4975 10.6: the peer refused the type of the message in
    /// `msg_slot` with 415; the session sends no more of it.
    pub fn refuse_type(&mut self, msg_slot: usize) {
        if let Some(active) = &mut self.active {
            if let Some(msg) = active.outgoing.messages.get(msg_slot) {
                active.refused_types.push(msg.content_type.clone());
            }
        }
    }

    /// Takes a message out at its outcome, whatever its state.
    pub fn remove_message(&mut self, msg_slot: usize) -> Option<OutMessage> {
        let removed = self.active.as_mut()?.outgoing.remove(msg_slot);
        self.settle();
        removed
    }

    /// After `send` said the queue was full: whether it has room again, so
    /// `SendReady` is owed now (once).
    pub fn take_send_ready(&mut self) -> bool {
        let Some(active) = &mut self.active else {
            return false;
        };
        let settings = &*self.settings;
        let out = &mut active.outgoing;
        let ready = out.full_signalled
            && out.queue.len() < settings.send_queue_messages_max
            && out.queued_bytes < settings.send_queue_bytes_max;
        out.full_signalled &= !ready;
        self.settle();
        ready
    }
}
