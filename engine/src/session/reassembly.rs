//! Incoming messages in pieces (RFC 4975 7.3.1): chunks in any
//! order, overlapping (the newest octets win) or repeated, until the `$`
//! chunk has fixed the total and every octet up to it is held.

use std::time::Instant;

use bytes::Bytes;

use super::ranges::RangeSet;
use crate::proto::{FailureReport, SuccessReport};

/// Where a message's octets are kept.
pub(crate) enum Store {
    /// Small messages: in memory until complete.
    Memory(Vec<u8>),
    /// Large messages: handed to the application's sink as they come.
    Stream,
}

/// One message being reassembled.
pub(crate) struct Incoming {
    pub content_type: String,
    pub ranges: RangeSet,
    /// Fixed by the `$` chunk: its range-start plus its length, less one
    /// (the payload wins over a declared total, RFC 4975 7.3.1).
    pub total: Option<u64>,
    pub store: Store,
    /// Chunks whose sink writes are not committed yet.
    pub uncommitted: u32,
    pub success_report: SuccessReport,
    pub failure_report: FailureReport,
    /// The From-Path of the latest chunk: success REPORTs go to it (RFC 4975 7.1.2).
    pub report_to: String,
    pub touched: Instant,
    /// Tells this entry from an earlier one with the same Message-ID.
    pub epoch: u64,
}

impl Incoming {
    pub fn new(content_type: String, now: Instant, epoch: u64) -> Incoming {
        Incoming {
            content_type,
            ranges: RangeSet::default(),
            total: None,
            store: Store::Memory(Vec::new()),
            uncommitted: 0,
            success_report: SuccessReport::No,
            failure_report: FailureReport::Yes,
            report_to: String::new(),
            touched: now,
            epoch,
        }
    }

    pub fn is_streamed(&self) -> bool {
        matches!(self.store, Store::Stream)
    }

    /// Stores `data` at 0-based `offset`. Octets for the sink go to `emit`
    /// (offset, data); a message that outgrows `inline_bytes_max` moves
    /// everything it holds to the sink first.
    pub fn write(
        &mut self,
        offset: u64,
        data: Bytes,
        inline_bytes_max: u64,
        mut emit: impl FnMut(u64, Bytes),
    ) {
        let end = offset + data.len() as u64;
        if let Store::Memory(buf) = &mut self.store {
            if end > inline_bytes_max {
                let held = Bytes::from(core::mem::take(buf));
                for (first, last) in self.ranges.iter() {
                    emit(first - 1, held.slice(first as usize - 1..last as usize));
                }
                self.store = Store::Stream;
            }
        }
        match &mut self.store {
            Store::Memory(buf) => {
                let (from, to) = (offset as usize, end as usize);
                if buf.len() < to {
                    buf.resize(to, 0);
                }
                buf[from..to].copy_from_slice(&data);
            }
            Store::Stream => {
                if !data.is_empty() {
                    emit(offset, data);
                }
            }
        }
        self.ranges.insert(offset + 1, end);
    }

    /// Every octet up to the total fixed by `$` is held and committed.
    pub fn is_complete(&self) -> bool {
        self.uncommitted == 0 && self.total.is_some_and(|total| self.ranges.covers_all(total))
    }

    /// The whole body of a complete in-memory message.
    pub fn take_body(&mut self) -> Bytes {
        let total = self.total.unwrap_or(0) as usize;
        match &mut self.store {
            Store::Memory(buf) => {
                buf.truncate(total);
                Bytes::from(core::mem::take(buf))
            }
            Store::Stream => Bytes::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reassemble(body: &[u8], cuts: &[(usize, usize)], inline_max: u64) -> (Incoming, Vec<u8>) {
        let now = Instant::now();
        let mut incoming = Incoming::new("text/plain".into(), now, 1);
        let mut sink = vec![0u8; body.len()];
        let src = Bytes::copy_from_slice(body);
        for &(from, to) in cuts {
            incoming.write(from as u64, src.slice(from..to), inline_max, |off, data| {
                sink[off as usize..off as usize + data.len()].copy_from_slice(&data)
            });
        }
        incoming.total = Some(body.len() as u64);
        (incoming, sink)
    }

    proptest! {
        /// Any chunking, in any order, with repeats and overlaps, reassembles
        /// to the same bytes in memory and through the sink.
        #[test]
        fn any_chunking_reassembles(
            body in prop::collection::vec(any::<u8>(), 1..3000),
            cut_points in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            extra in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..4),
            order in any::<prop::sample::Index>(),
            inline_max in prop::sample::select(vec![0u64, 100, 1 << 20]),
        ) {
            let mut points: Vec<usize> = cut_points.iter().map(|i| i.index(body.len())).collect();
            points.extend([0, body.len()]);
            points.sort_unstable();
            points.dedup();
            let mut cuts: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
            let rotate = order.index(cuts.len());
            cuts.rotate_left(rotate);
            for (a, b) in extra {
                let (a, b) = (a.index(body.len()), b.index(body.len() + 1));
                if a < b {
                    cuts.push((a, b));
                }
            }
            let (mut incoming, sink) = reassemble(&body, &cuts, inline_max);
            prop_assert!(incoming.is_complete());
            if incoming.is_streamed() {
                prop_assert_eq!(&sink[..], &body[..]);
            } else {
                prop_assert_eq!(&incoming.take_body()[..], &body[..]);
            }
        }
    }

    #[test]
    fn incomplete_until_every_octet() {
        let (incoming, _) = reassemble(b"hello world", &[(0, 5), (6, 11)], 1 << 20);
        assert!(!incoming.is_complete());
        assert_eq!(incoming.ranges.len(), 10);
    }
}
