//! Outgoing messages: cutting them into chunks (RFC 4975 5.1, 7.1.1) and
//! keeping the score of their responses and REPORTs until their one outcome.

use core::fmt;
use std::collections::VecDeque;

use bytes::Bytes;
use slab::Slab;

use super::config::SessionSettings;
use super::event::MessageRef;
use super::ranges::RangeSet;
use crate::id_hash::IdMap;
use crate::proto::{ByteRange, Continuation, FailureReport, MessageId, SuccessReport, TransactionId, BASE62};

/// RFC 4975 5.1: a chunk body over this size must be interruptible, so its
/// range-end is written `*`.
const INTERRUPTIBLE_BYTES: usize = 2048;

/// Base62 characters that name a message slot at the front of a minted id.
const SLOT_CHARS: usize = 6;

/// A Message-ID for the message in `slot`: six base62 characters of the
/// slot, then `random` (at least 64 random bits; RFC 4975 7.1.1 asks only
/// that ids be unlikely to repeat). A REPORT about the message then finds it
/// without a map.
fn minted_message_id(slot: usize, random: &[u8]) -> MessageId {
    let mut id = [0u8; 32];
    let mut n = slot;
    for c in id[..SLOT_CHARS].iter_mut().rev() {
        *c = BASE62[n % 62];
        n /= 62;
    }
    let len = SLOT_CHARS + random.len().min(id.len() - SLOT_CHARS);
    id[SLOT_CHARS..len].copy_from_slice(&random[..len - SLOT_CHARS]);
    MessageId::new(&id[..len]).unwrap_or_else(|| unreachable!("base62 strings are idents"))
}

/// The slot a minted Message-ID names, if it looks minted.
fn slot_of(id: &MessageId) -> Option<usize> {
    let prefix = id.as_bytes().get(..SLOT_CHARS)?;
    prefix.iter().try_fold(0usize, |n, &c| {
        let digit = BASE62.iter().position(|&b| b == c)?;
        n.checked_mul(62)?.checked_add(digit)
    })
}

/// What a [`ContentSource`] has for the next chunk.
#[derive(Debug)]
pub enum SourceChunk {
    /// The next octets of the content, at most the size asked for.
    Data(Bytes),
    /// Nothing yet: the application calls
    /// [`Connection::wake`](crate::Connection::wake) when there is.
    Pending,
    /// The content is complete.
    End,
    /// The content cannot be read; the message fails with this reason.
    Failed(String),
}

/// Content produced on demand (a file read by the shell, a generator), so a
/// large message is never whole in memory.
pub trait ContentSource {
    /// The total size, when known in advance (it then goes into every
    /// Byte-Range; otherwise the total is `*` until the last chunk).
    fn size(&self) -> Option<u64>;
    /// Up to `max` next octets.
    fn next_chunk(&mut self, max: usize) -> SourceChunk;
}

/// The content of an outgoing message.
pub enum Payload {
    Bytes(Bytes),
    Source(Box<dyn ContentSource>),
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Bytes(b) => write!(f, "Bytes({} octets)", b.len()),
            Payload::Source(s) => write!(f, "Source({:?} octets)", s.size()),
        }
    }
}

impl Payload {
    pub fn len(&self) -> Option<u64> {
        match self {
            Payload::Bytes(b) => Some(b.len() as u64),
            Payload::Source(s) => s.size(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Octets held in memory, counted against the send queue bound.
    pub(crate) fn queued_bytes(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::Source(_) => 0,
        }
    }
}

/// A message for [`Connection::send`](crate::Connection::send).
#[derive(Debug)]
pub struct OutgoingMessage {
    pub content_type: String,
    pub payload: Payload,
    /// `None` draws a fresh random Message-ID; set it to resend a message
    /// after recovery with the same id (RFC 4975 7.1.1).
    pub message_id: Option<MessageId>,
    /// `None` uses the session's default.
    pub success_report: Option<SuccessReport>,
    pub failure_report: Option<FailureReport>,
}

impl OutgoingMessage {
    /// An in-memory message with the session's report defaults.
    pub fn new(content_type: impl Into<String>, body: impl Into<Bytes>) -> OutgoingMessage {
        OutgoingMessage {
            content_type: content_type.into(),
            payload: Payload::Bytes(body.into()),
            message_id: None,
            success_report: None,
            failure_report: None,
        }
    }

    /// A message whose content comes from `source`.
    pub fn from_source(content_type: impl Into<String>, source: Box<dyn ContentSource>) -> OutgoingMessage {
        OutgoingMessage {
            payload: Payload::Source(source),
            ..OutgoingMessage::new(content_type, Bytes::new())
        }
    }
}

/// A message from `send` to its outcome.
pub(crate) struct OutMessage {
    pub reference: MessageRef,
    pub message_id: MessageId,
    pub content_type: String,
    pub payload: Payload,
    /// Known size: from the start, or once the source ended.
    pub total: Option<u64>,
    /// Octets cut into chunks so far.
    pub cut_bytes: u64,
    /// The last chunk (`$`) has been cut.
    pub all_cut: bool,
    pub success_report: SuccessReport,
    pub failure_report: FailureReport,
    /// Chunks waiting for their response (Failure-Report `yes`), or for their
    /// transaction to pass without an error (`partial`).
    pub chunks_unanswered: u32,
    /// Octets whose chunks got a 200.
    pub bytes_acked: u64,
    /// Octets covered by success REPORTs (Success-Report `yes` only).
    pub reported: RangeSet,
    /// The Message-ID was minted here and names the slot (see
    /// [`minted_message_id`]); otherwise it is in `by_id`.
    pub minted_id: bool,
    /// One-chunk messages cut since this message's last chunk (RFC 4975
    /// 7.1), bounded by the session's `interleave_*_max`.
    pub gap: Gap,
}

/// The one-chunk messages that went between two chunks of a larger one.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Gap {
    pub messages: u32,
    pub bytes: u64,
}

impl Gap {
    fn has_room(&self, settings: &SessionSettings) -> bool {
        self.messages < settings.interleave_messages_max && self.bytes < settings.interleave_bytes_max
    }
}

/// Where an outgoing message stands on its way to its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Chunks are still to cut, or to be answered as Failure-Report asked.
    Open,
    /// Every chunk is out and answered as Failure-Report asked, and success
    /// REPORTs cover the whole message when Success-Report asked for them.
    Delivered,
    /// Every chunk is out and answered, and success REPORTs do not cover
    /// the message yet.
    AwaitsReport,
}

impl OutMessage {
    pub fn progress(&self) -> Progress {
        if !self.all_cut || self.chunks_unanswered > 0 {
            return Progress::Open;
        }
        let total = self.total.unwrap_or(u64::MAX);
        match self.success_report == SuccessReport::No || self.reported.covers_all(total) {
            true => Progress::Delivered,
            false => Progress::AwaitsReport,
        }
    }

    /// Whether the message goes in one chunk from memory, so it may be cut
    /// between two chunks of a larger one (RFC 4975 7.1): it never waits for
    /// a source, and leaves the receiver no partial message.
    fn fits_one_chunk(&self, chunk_bytes: usize) -> bool {
        matches!(&self.payload, Payload::Bytes(b) if b.len() <= chunk_bytes)
    }

    pub fn waits_for_report(&self) -> bool {
        self.progress() == Progress::AwaitsReport
    }

    /// In-memory octets not cut yet: what the message still counts against
    /// the send queue bound.
    pub fn uncut_queued_bytes(&self) -> u64 {
        match &self.payload {
            Payload::Bytes(b) => b.len() as u64 - self.cut_bytes,
            Payload::Source(_) => 0,
        }
    }

    /// RFC 4975 7.1: a sender that gives up on a message it has begun ends
    /// it with `#`, here as an empty chunk at the next octet, so the
    /// receiver drops what it holds instead of waiting for the rest; none
    /// when no chunk of it went out, or every one did.
    pub fn abort_range(&self) -> Option<ByteRange> {
        (self.cut_bytes > 0 && !self.all_cut).then_some(ByteRange {
            start: self.cut_bytes + 1,
            end: Some(self.cut_bytes),
            total: self.total,
        })
    }
}

/// One chunk to write, of the front message or of a one-chunk message cut
/// between two of its chunks.
pub(crate) struct CutChunk {
    pub slot: usize,
    pub body: Bytes,
    pub range: ByteRange,
    pub flag: Continuation,
}

/// The result of asking a session for its next chunk.
pub(crate) enum Cut {
    Chunk(CutChunk),
    /// The next chunk is larger than the scheduler allows this turn.
    Over,
    /// Chunks remain but cannot go now (window full, source pending).
    Blocked,
    /// Nothing left to send.
    Empty,
    /// The front message's source failed; it must fail with this reason.
    SourceFailed(usize, String),
}

/// A session's outgoing side: messages in `send` order, the front one being
/// cut, with one-chunk messages behind it going between its chunks
/// (`SessionSettings::interleave_messages_max`); every message stays in
/// `messages` until its outcome.
#[derive(Default)]
pub(crate) struct Outgoing {
    pub messages: Slab<OutMessage>,
    /// Messages not yet fully cut, in `send` order; each message's chunks go
    /// in order of their octets (RFC 4975 5.1).
    pub queue: VecDeque<usize>,
    /// In-memory octets in `queue` not cut yet.
    pub queued_bytes: u64,
    /// Unanswered body octets of chunks sent with Failure-Report `yes`.
    pub inflight_bytes: u64,
    /// Message-ID -> slot, for REPORTs about messages whose id the
    /// application chose (minted ids name their slot).
    pub by_id: IdMap<MessageId, usize>,
    /// The front message's source said `Pending`: it waits for `wake` (the
    /// one-chunk messages behind it, in memory, need not).
    pub source_pending: bool,
    /// `send` said Full; `SendReady` is owed when room returns.
    pub full_signalled: bool,
}

impl Outgoing {
    /// Queues a message with its reports resolved; `draw` gives the random
    /// part of a minted Message-ID, only when the message has none.
    pub fn push(
        &mut self,
        message: OutgoingMessage,
        reference: MessageRef,
        success_report: SuccessReport,
        failure_report: FailureReport,
        draw: impl FnOnce() -> TransactionId,
    ) {
        let queued = message.payload.queued_bytes();
        let entry = self.messages.vacant_entry();
        let slot = entry.key();
        let (message_id, minted_id) = match message.message_id {
            Some(id) => (id, false),
            None => (minted_message_id(slot, &draw().as_bytes()[..14]), true),
        };
        entry.insert(OutMessage {
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
            gap: Gap::default(),
        });
        self.queue.push_back(slot);
        self.queued_bytes += queued;
        let reportable = success_report == SuccessReport::Yes || failure_report != FailureReport::No;
        if !minted_id && reportable {
            self.by_id.insert(message_id, slot);
        }
    }

    /// Cuts the next chunk, if the window and `allowance_bytes` let it go:
    /// of a one-chunk message behind the front one while the gap between two
    /// of the front's chunks has room (RFC 4975 7.1; while the front's source
    /// is pending the gap is free, as nothing of the front could go), else of
    /// the front message. With one message queued, only the front is looked
    /// at.
    pub fn cut(&mut self, settings: &SessionSettings, allowance_bytes: u64) -> Cut {
        let Some(&front) = self.queue.front() else {
            return Cut::Empty;
        };
        if self.queue.len() > 1 && settings.interleaves() {
            if let Some(at) = self.interleaved_at(front, settings) {
                match self.cut_at(at, settings, allowance_bytes) {
                    Cut::Chunk(chunk) => {
                        if !self.source_pending {
                            let gap = &mut self.messages[front].gap;
                            gap.messages += 1;
                            gap.bytes += chunk.body.len() as u64;
                        }
                        return Cut::Chunk(chunk);
                    }
                    // The front cannot go either: the one-chunk message
                    // waits for credit or a 200, not for the source.
                    other if self.source_pending => return other,
                    // Its window or credit may still let the front go.
                    _ => {}
                }
            }
        }
        if self.source_pending {
            return Cut::Blocked;
        }
        self.cut_at(0, settings, allowance_bytes)
    }

    /// Where in the queue the first one-chunk message behind a larger front
    /// message is, when it may go now.
    fn interleaved_at(&self, front: usize, settings: &SessionSettings) -> Option<usize> {
        let chunk_bytes = settings.chunk_bytes;
        let msg = self.messages.get(front)?;
        if msg.fits_one_chunk(chunk_bytes) || (!self.source_pending && !msg.gap.has_room(settings)) {
            return None;
        }
        let one_chunk = |&slot: &usize| {
            self.messages
                .get(slot)
                .is_some_and(|m| m.fits_one_chunk(chunk_bytes))
        };
        self.queue.iter().skip(1).position(one_chunk).map(|i| i + 1)
    }

    /// Cuts the next chunk of the message at `at` in the queue.
    fn cut_at(&mut self, at: usize, settings: &SessionSettings, allowance_bytes: u64) -> Cut {
        let (chunk_bytes, inflight_bytes_max) = (settings.chunk_bytes, settings.inflight_bytes_max);
        let slot = self.queue[at];
        let Some(msg) = self.messages.get_mut(slot) else {
            debug_assert!(false, "queued slot {slot} has no message");
            self.queue.remove(at);
            return Cut::Blocked;
        };
        debug_assert!(
            at == 0 || msg.fits_one_chunk(chunk_bytes),
            "only one-chunk messages go before the front one"
        );
        let next_len = match msg.total {
            Some(total) => (total - msg.cut_bytes).min(chunk_bytes as u64),
            None => chunk_bytes as u64,
        };
        if msg.failure_report == FailureReport::Yes
            && self.inflight_bytes > 0
            && self.inflight_bytes + next_len > inflight_bytes_max
        {
            return Cut::Blocked;
        }
        if next_len > allowance_bytes {
            return Cut::Over;
        }
        let body = match &mut msg.payload {
            Payload::Bytes(bytes) => {
                let from = msg.cut_bytes as usize;
                bytes.slice(from..from + next_len as usize)
            }
            Payload::Source(source) => match source.next_chunk(chunk_bytes) {
                SourceChunk::Data(data) => {
                    let over_total = msg.total.is_some_and(|t| msg.cut_bytes + data.len() as u64 > t);
                    if over_total || data.len() > chunk_bytes {
                        return Cut::SourceFailed(
                            slot,
                            "the content source gave more octets than it declared".into(),
                        );
                    }
                    if data.is_empty() {
                        // An empty read is not an end; ask again later.
                        self.source_pending = true;
                        return Cut::Blocked;
                    }
                    data
                }
                SourceChunk::Pending => {
                    self.source_pending = true;
                    return Cut::Blocked;
                }
                SourceChunk::End => match msg.total {
                    Some(total) if msg.cut_bytes < total => {
                        return Cut::SourceFailed(
                            slot,
                            "the content source ended before its declared length".into(),
                        )
                    }
                    _ => {
                        msg.total = Some(msg.cut_bytes);
                        Bytes::new()
                    }
                },
                SourceChunk::Failed(reason) => return Cut::SourceFailed(slot, reason),
            },
        };
        let len = body.len() as u64;
        let start = msg.cut_bytes + 1;
        msg.cut_bytes += len;
        let last = msg.total == Some(msg.cut_bytes);
        let end = if body.len() > INTERRUPTIBLE_BYTES && !last {
            None
        } else {
            Some(msg.cut_bytes)
        };
        let range = ByteRange {
            start,
            end,
            total: msg.total,
        };
        if let Payload::Bytes(_) = msg.payload {
            self.queued_bytes -= len;
        }
        if at == 0 {
            msg.gap = Gap::default();
        }
        if last {
            msg.all_cut = true;
            self.queue.remove(at);
        }
        // `partial` sends no 200, but an error may still come back: the chunk
        // counts as answered when its transaction times out quietly.
        if msg.failure_report != FailureReport::No {
            msg.chunks_unanswered += 1;
        }
        if msg.failure_report == FailureReport::Yes {
            self.inflight_bytes += len;
        }
        Cut::Chunk(CutChunk {
            slot,
            body,
            range,
            flag: if last {
                Continuation::Last
            } else {
                Continuation::More
            },
        })
    }

    /// Takes a message out, whatever its state.
    pub fn remove(&mut self, slot: usize) -> Option<OutMessage> {
        let msg = self.messages.try_remove(slot)?;
        if !msg.minted_id {
            self.by_id.remove(&msg.message_id);
        }
        if !msg.all_cut {
            // A pending source is the front message's.
            if self.queue.front() == Some(&slot) {
                self.source_pending = false;
            }
            self.queue.retain(|&s| s != slot);
            self.queued_bytes -= msg.uncut_queued_bytes();
        }
        Some(msg)
    }

    /// The message a REPORT's Message-ID names (RFC 4975 7.1.2).
    pub fn find(&self, id: &MessageId) -> Option<usize> {
        let minted = slot_of(id).filter(|&slot| {
            self.messages
                .get(slot)
                .is_some_and(|m| m.minted_id && m.message_id == *id)
        });
        minted.or_else(|| self.by_id.get(id).copied())
    }

    /// No message until its outcome, no octet in a window, no `SendReady`
    /// owed: a fresh `Outgoing` would behave the same.
    pub fn is_idle(&self) -> bool {
        self.messages.is_empty() && self.inflight_bytes == 0 && !self.full_signalled
    }

    /// Whether the session may have a chunk to cut (ignoring windows): with
    /// the front's source pending, when `interleaves` and messages wait
    /// behind it (whether one goes in one chunk, `cut` finds out).
    pub fn has_work(&self, interleaves: bool) -> bool {
        !self.queue.is_empty() && (!self.source_pending || (interleaves && self.queue.len() > 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_name_their_slot() {
        for slot in [0, 1, 61, 62, 4096, 1 << 31, 56_800_235_583] {
            let id = minted_message_id(slot, b"abcdefghijklmn");
            assert_eq!(id.as_bytes().len(), 20);
            assert_eq!(slot_of(&id), Some(slot));
        }
        assert_eq!(slot_of(&MessageId::new(b"a.b-c").expect("ident")), None);
    }
}
