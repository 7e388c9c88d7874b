//! Which chunks of a SEND a session takes (RFC 4975 7.3.1): the direction,
//! the accept-types and the size bounds pick 403, 415 or 413; what it takes
//! continues a message in reassembly or starts one.

use std::time::Instant;

use super::config::type_accepted;
use super::Session;
use crate::proto::{ByteRange, FrameHead, MessageId};

/// Why a session refuses a chunk, and with it, for a 413, its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// RFC 4975 8.9: the session's direction does not receive messages.
    Direction,
    /// RFC 4975 7.3.1, 8.6: the Content-Type is not one of our accept-types.
    ContentType,
    /// RFC 4975 8.6: over our negotiated max-size.
    MaxSize,
    /// Over the engine's largest incoming message (a Byte-Range far beyond
    /// any real message, RFC 4975 14.5).
    MessageMax,
    /// A late chunk of a message already refused or dropped.
    Dropped,
    /// The session holds as many messages in reassembly as it may.
    Messages,
    /// The message arrived in more separate ranges than the session keeps.
    Ranges,
}

impl Refusal {
    /// The status that answers the chunk (RFC 4975 10.3, 10.5, 10.6); a 413
    /// asks the sender to stop the whole message.
    pub fn status(self) -> u16 {
        match self {
            Refusal::Direction => 403,
            Refusal::ContentType => 415,
            Refusal::MaxSize
            | Refusal::MessageMax
            | Refusal::Dropped
            | Refusal::Messages
            | Refusal::Ranges => 413,
        }
    }

    /// Why the message ends, for its [`Event::MessageAborted`](super::Event::MessageAborted).
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Direction => "the session's direction does not receive messages (RFC 4975 8.9)",
            Refusal::ContentType => "the content type is not one of the session's accept-types",
            Refusal::MaxSize => "the message is over the session's negotiated max-size (SDP a=max-size)",
            Refusal::MessageMax => {
                "the message is over the engine's largest incoming message (--message-max)"
            }
            Refusal::Dropped => "the message was dropped",
            Refusal::Messages => "too many incoming messages in reassembly",
            Refusal::Ranges => "the message arrived in too many separate ranges",
        }
    }
}

/// What a session makes of the head of a SEND with a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Refused(Refusal),
    /// A chunk of a message in reassembly.
    Continues,
    /// The first chunk of a message not in reassembly: it may be the whole
    /// message.
    First,
    /// A later chunk of a message not in reassembly (chunks come in any
    /// order, RFC 4975 7.3.1): it needs an entry.
    Unseen,
}

impl Session {
    /// Whether the session takes the chunk that `head` begins, and into what.
    pub fn admit(
        &mut self,
        head: &FrameHead,
        message_id: &MessageId,
        range: &ByteRange,
        now: Instant,
    ) -> Admission {
        if !self.direction.may_receive() {
            return Admission::Refused(Refusal::Direction);
        }
        let accept_types = self.limits.as_ref().map_or(&[][..], |l| &l.accept_types[..]);
        if !head
            .content_type()
            .is_some_and(|t| type_accepted(accept_types, t))
        {
            return Admission::Refused(Refusal::ContentType);
        }
        let max = self.incoming_bytes_max();
        if range.total.is_some_and(|t| t > max) || range.start - 1 > max {
            return Admission::Refused(self.size_refusal());
        }
        // RFC 4975 10.5: the sender stops a message refused with 413; chunks
        // of it still on the wire must not start it anew.
        if let Some(active) = &mut self.active {
            if active.dropped_incoming.contains(message_id) {
                return Admission::Refused(Refusal::Dropped);
            }
            if let Some(incoming) = active.incoming.get_mut(message_id) {
                incoming.touched = now;
                return Admission::Continues;
            }
        }
        match range.start {
            1 => Admission::First,
            _ => Admission::Unseen,
        }
    }

    /// RFC 4975 7.3.1: a chunk reaching past the session's max-size (here:
    /// octet `end_bytes`) gets 413, which stops the message.
    pub fn check_size(&self, end_bytes: u64) -> Result<(), Refusal> {
        match end_bytes > self.incoming_bytes_max() {
            true => Err(self.size_refusal()),
            false => Ok(()),
        }
    }

    /// Octets of a message kept in memory before it streams to the sink:
    /// none when its declared total is over the session's inline bound, so
    /// no octet of a large message waits in memory (and, with a durable
    /// sink, none is acknowledged before it is on disk).
    pub fn inline_bytes_max(&self, declared_total: Option<u64>) -> u64 {
        let inline = self.settings.inline_bytes_max;
        match declared_total {
            Some(total) if total > inline => 0,
            _ => inline,
        }
    }

    /// The largest incoming message: our max-size, within the engine's cap
    /// (a Byte-Range far beyond any real message is refused, RFC 4975 14.5).
    fn incoming_bytes_max(&self) -> u64 {
        let cap = self.settings.incoming_message_bytes_max;
        self.max_size().map_or(cap, |max| max.min(cap))
    }

    /// Which of the two bounds of [`Session::incoming_bytes_max`] a message
    /// over it is over.
    fn size_refusal(&self) -> Refusal {
        match self.max_size() {
            Some(max) if max <= self.settings.incoming_message_bytes_max => Refusal::MaxSize,
            _ => Refusal::MessageMax,
        }
    }

    /// Our `a=max-size` (RFC 4975 8.6).
    fn max_size(&self) -> Option<u64> {
        self.limits.as_ref().and_then(|l| l.max_size)
    }
}
