//! A session's incoming messages in reassembly (RFC 4975 7.3.1): starting
//! one, writing its chunks, ending each chunk, the sink's commits, the
//! complete message and its success REPORT (RFC 4975 7.1.2), and what drops
//! one (an abort, a refusal, expiry).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::admit::Refusal;
use super::event::ReceivedBody;
use super::reassembly::Incoming;
use super::Session;
use crate::proto::{
    ByteRange, Continuation, FailureReport, FrameHead, MessageId, Method, ReportStatus, Request,
    SuccessReport,
};

/// Message-IDs of dropped incoming messages remembered per session.
const DROPPED_REMEMBERED: usize = 16;

/// What the end-line of a chunk made of its message in reassembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChunkEnd {
    /// The message is no longer in reassembly (dropped while the chunk came).
    Gone,
    /// RFC 4975 7.1: the sender gave up on the message (`#`); it is still
    /// held, for the caller to drop.
    Aborted,
    /// The chunk's octets are held in memory: it can be answered now.
    Held,
    /// The chunk's octets went to the sink: it is answered once the sink
    /// commits them, for the entry of this epoch.
    Streamed { epoch: u64 },
}

/// A message out of reassembly, whole.
pub(crate) struct Completed {
    pub content_type: String,
    pub body: ReceivedBody,
    pub total: u64,
    /// The From-Path of its latest chunk, when it asked for a success REPORT
    /// (RFC 4975 7.1.2).
    pub report_to: Option<String>,
    /// The Failure-Report of its latest chunk: whether a failure REPORT may
    /// go (RFC 4975 7.1.4).
    pub failure_report: FailureReport,
}

impl Session {
    /// Starts reassembly of a message, within the session's bound. Its
    /// reports and REPORT path are set from each chunk at its end.
    pub fn start_incoming(
        &mut self,
        message_id: MessageId,
        content_type: &str,
        now: Instant,
        epoch: u64,
    ) -> Result<(), Refusal> {
        if self.incoming_messages() >= self.settings.incoming_messages_max {
            return Err(Refusal::Messages);
        }
        let incoming = Incoming::new(content_type.to_owned(), now, epoch);
        self.active_mut().incoming.insert(message_id, incoming);
        Ok(())
    }

    /// Stores `data` at 0-based `offset` of a message in reassembly; octets
    /// for the sink go to `emit` (offset, data). Whether the message
    /// streams to the sink, or why the chunk is refused.
    pub fn write_incoming(
        &mut self,
        message_id: &MessageId,
        offset: u64,
        data: Bytes,
        inline_bytes_max: u64,
        emit: impl FnMut(u64, Bytes),
    ) -> Result<bool, Refusal> {
        let ranges_max = self.settings.incoming_ranges_max;
        let Some(incoming) = self.incoming_mut(message_id) else {
            return Err(Refusal::Dropped);
        };
        incoming.write(offset, data, inline_bytes_max, emit);
        // A peer sending scattered one-octet chunks must not grow the
        // range set without limit.
        if incoming.ranges.count() > ranges_max {
            return Err(Refusal::Ranges);
        }
        Ok(incoming.is_streamed())
    }

    /// The end-line of a chunk of a message in reassembly, the chunk's
    /// octets reaching `end_bytes` of it.
    pub fn end_chunk(
        &mut self,
        message_id: &MessageId,
        head: &FrameHead,
        flag: Continuation,
        end_bytes: u64,
        streamed: bool,
        now: Instant,
    ) -> ChunkEnd {
        let Some(incoming) = self.incoming_mut(message_id) else {
            return ChunkEnd::Gone;
        };
        match flag {
            Continuation::Abort => return ChunkEnd::Aborted,
            // RFC 4975 7.3.1: the `$` chunk fixes the total; its payload wins.
            Continuation::Last => incoming.total = Some(end_bytes),
            Continuation::More => {}
        }
        incoming.touched = now;
        incoming.success_report = head.success_report().unwrap_or_default();
        incoming.failure_report = head.failure_report().unwrap_or_default();
        // RFC 4975 7.1.2: success REPORTs go to the latest chunk's From-Path.
        let from = head.from_path();
        if incoming.report_to != from.as_str() {
            from.as_str().clone_into(&mut incoming.report_to);
        }
        if !streamed {
            return ChunkEnd::Held;
        }
        // Nothing is answered 200 before the sink holds its bytes.
        incoming.uncommitted += 1;
        ChunkEnd::Streamed {
            epoch: incoming.epoch,
        }
    }

    /// The sink committed a chunk of the entry of `epoch`: the chunks of it
    /// still uncommitted, or `None` when that entry is gone.
    pub fn chunk_committed(&mut self, message_id: &MessageId, epoch: u64) -> Option<u32> {
        let incoming = self.incoming_mut(message_id)?;
        if incoming.epoch != epoch {
            return None;
        }
        incoming.uncommitted -= 1;
        Some(incoming.uncommitted)
    }

    /// Chunks of a message in reassembly whose sink writes are not
    /// committed yet.
    pub fn uncommitted_chunks(&self, message_id: &MessageId) -> Option<u32> {
        self.incoming(message_id).map(|m| m.uncommitted)
    }

    /// Takes a message out of reassembly when every octet up to the total
    /// fixed by `$` is held and committed.
    pub fn take_complete(&mut self, message_id: &MessageId) -> Option<Completed> {
        if !self.incoming(message_id).is_some_and(Incoming::is_complete) {
            return None;
        }
        let mut incoming = self.active.as_mut()?.incoming.remove(message_id)?;
        self.settle();
        let total = incoming.total.unwrap_or(0);
        let body = match incoming.is_streamed() {
            true => ReceivedBody::Streamed { len: total },
            false => ReceivedBody::Inline(incoming.take_body()),
        };
        Some(Completed {
            body,
            total,
            report_to: (incoming.success_report == SuccessReport::Yes).then_some(incoming.report_to),
            failure_report: incoming.failure_report,
            content_type: incoming.content_type,
        })
    }

    /// Drops a message, whether in reassembly or not yet: chunks of it
    /// still on the wire get 413 instead of starting it anew (RFC 4975
    /// 10.5). True when it was in reassembly, so it ends in an event.
    pub fn drop_incoming(&mut self, message_id: MessageId) -> bool {
        let active = self.active_mut();
        if !active.dropped_incoming.contains(&message_id) {
            if active.dropped_incoming.len() == DROPPED_REMEMBERED {
                active.dropped_incoming.pop_front();
            }
            active.dropped_incoming.push_back(message_id);
        }
        active.incoming.remove(&message_id).is_some()
    }

    /// Drops the messages that saw no chunk for `expiry` and wait for no
    /// commit (RFC 4975 7.3.1: a final `$` may never come), each told to
    /// `aborted`. True when messages remain in reassembly.
    pub fn expire_incoming(
        &mut self,
        now: Instant,
        expiry: Duration,
        mut aborted: impl FnMut(MessageId),
    ) -> bool {
        let Some(active) = &mut self.active else {
            return false;
        };
        active.incoming.retain(|message_id, m| {
            let stale = m.uncommitted == 0 && now.duration_since(m.touched) >= expiry;
            if stale {
                aborted(*message_id);
            }
            !stale
        });
        let remain = !active.incoming.is_empty();
        self.settle();
        remain
    }

    /// The messages in reassembly.
    pub fn incoming_ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.active.iter().flat_map(|a| a.incoming.keys().copied())
    }

    pub fn incoming_messages(&self) -> usize {
        self.active.as_ref().map_or(0, |a| a.incoming.len())
    }

    fn incoming(&self, message_id: &MessageId) -> Option<&Incoming> {
        self.active.as_ref()?.incoming.get(message_id)
    }

    fn incoming_mut(&mut self, message_id: &MessageId) -> Option<&mut Incoming> {
        self.active.as_mut()?.incoming.get_mut(message_id)
    }

    /// Octets held in memory for incoming messages.
    pub fn reassembly_bytes(&self) -> u64 {
        self.active
            .iter()
            .flat_map(|a| a.incoming.values())
            .map(|m| match m.is_streamed() {
                true => 0,
                false => m.ranges.end(),
            })
            .sum()
    }

    /// RFC 4975 7.1.3, 7.1.4: one REPORT covering every octet of a message
    /// received, to the whole From-Path of its SEND, with `Status: 000
    /// code comment` (200: success; an error code: failure).
    pub fn report<'a>(
        &'a self,
        message_id: MessageId,
        total: u64,
        to_path: &'a str,
        code: u16,
        comment: &'a str,
    ) -> Request<'a> {
        Request {
            method: &Method::Report,
            to_path,
            from_path: self.own_path(),
            message_id: Some(message_id),
            byte_range: Some(ByteRange {
                start: 1,
                end: Some(total),
                total: Some(total),
            }),
            success_report: None,
            failure_report: None,
            status: Some((ReportStatus { namespace: 0, code }, comment)),
            content: None,
            continuation: Continuation::Last,
        }
    }
}
