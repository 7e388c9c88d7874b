//! The connection's clocks: deadlines queued lazily, and what runs when
//! they pass (RFC 4975 7.1.1, 7.2, 7.3.1), with time passed in.

use std::collections::VecDeque;
use std::time::Instant;

use crate::session::{Event, OutMessage};

use super::outcomes::TxnKind;
use super::Connection;

/// A queue of deadlines in the order they were set, with stale entries
/// skipped lazily and compacted when they pile up.
pub(super) struct Timers<K> {
    queue: VecDeque<(Instant, K)>,
    /// Entries left by the last compaction: the queue is compacted when it
    /// has doubled since, so its length stays within twice the live entries
    /// (plus a constant) at amortised O(1) per push.
    compacted_len: usize,
}

impl<K: Copy> Timers<K> {
    pub(super) fn new() -> Self {
        Timers {
            queue: VecDeque::new(),
            compacted_len: 0,
        }
    }

    pub(super) fn push(&mut self, at: Instant, key: K, is_live: impl Fn(&K) -> bool) {
        self.queue.push_back((at, key));
        if self.queue.len() > 2 * self.compacted_len + 64 {
            self.queue.retain(|(_, k)| is_live(k));
            self.compacted_len = self.queue.len();
        }
    }

    pub(super) fn next(&self) -> Option<Instant> {
        self.queue.front().map(|&(at, _)| at)
    }

    /// Entries held, stale ones included.
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn clear(&mut self) {
        self.queue.clear();
    }

    /// Drops stale entries at the front, so `next` is a real deadline.
    pub(super) fn prune(&mut self, is_live: impl Fn(&K) -> bool) {
        while self.queue.front().is_some_and(|(_, k)| !is_live(k)) {
            self.queue.pop_front();
        }
    }

    pub(super) fn pop_due(&mut self, now: Instant) -> Option<K> {
        match self.queue.front() {
            Some(&(at, key)) if at <= now => {
                self.queue.pop_front();
                Some(key)
            }
            _ => None,
        }
    }
}

impl Connection {
    /// The earliest time [`Connection::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.txn_timers.next(),
            self.report_timers.next(),
            self.next_sweep,
            self.frame_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the timers due at `now`: unanswered chunks fail with a local 408,
    /// success-REPORT waits expire, stale incoming messages are dropped.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.frame_deadline.is_some_and(|at| at <= now) {
            self.frame_deadline = None;
            self.stats.frame_timeouts += 1;
            let timeout = self.config.frame_timeout;
            self.close(&format!(
                "a frame was begun and no octet of it came for {timeout:?} (frame-timeout)"
            ));
            return;
        }
        // A due entry's deadline is its transaction's; a settled transaction
        // is simply gone from the map.
        while let Some(tid) = self.txn_timers.pop_due(now) {
            let Some(txn) = self.txns.remove(&tid) else {
                continue;
            };
            if let TxnKind::Chunk { answered: false, .. } = txn.kind {
                // RFC 4975 7.2: with `partial`, silence means success.
                self.end_txn(txn, 200, now, &String::new);
                continue;
            }
            let secs = self.config.transaction_timeout.as_secs_f64();
            // Only the first chunk of a message to time out fails what
            // waited behind it: the message's later chunks time out moments
            // after, and a message queued since then has not waited.
            let behind = match txn.kind {
                TxnKind::Chunk { slot, message, .. } => self
                    .session(txn.session)
                    .is_some_and(|s| s.has_message(slot, message))
                    .then_some(txn.session),
                _ => None,
            };
            self.end_txn(txn, 408, now, &|| {
                format!("no response within {secs} s (RFC 4975 7.1.1)")
            });
            if let Some(key) = behind {
                let reason =
                    format!("queued behind a chunk that got no response within {secs} s (RFC 4975 7.1.1)");
                self.fail_queued_behind(key, &reason);
            }
        }
        while let Some((key, slot, reference)) = self.report_timers.pop_due(now) {
            let waiting = self
                .session(key)
                .and_then(|s| s.live_message(slot, reference))
                .is_some_and(OutMessage::waits_for_report);
            if waiting {
                let secs = self.config.report_timeout.as_secs_f64();
                let reason = format!("no success REPORT covered the message within {secs} s");
                self.fail_message(key.slot as usize, slot, None, &reason);
            }
        }
        if self.next_sweep.is_some_and(|at| at <= now) {
            self.sweep_incoming(now);
        }
        self.debug_check_inflight();
    }

    fn sweep_incoming(&mut self, now: Instant) {
        let expiry = self.config.incoming_expiry;
        let mut any = false;
        for (_, session) in self.sessions.iter_mut() {
            let key = session.key();
            let events = &mut self.events;
            any |= session.expire_incoming(now, expiry, |message_id| {
                events.push_back(Event::MessageAborted {
                    session: key,
                    message_id,
                    reason: "no chunk of the message arrived for too long".into(),
                })
            });
        }
        self.next_sweep = any.then(|| now + expiry / 4);
    }

    pub(super) fn arm_frame_timer(&mut self, now: Instant) {
        self.frame_deadline = (!self.closed && !self.input_paused && self.parser.in_frame())
            .then(|| now + self.config.frame_timeout);
    }
}
