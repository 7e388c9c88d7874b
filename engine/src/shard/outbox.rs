//! The shard's event outbox: events (built only when a subscriber wants
//! them, `interest.rs`) are gathered per loop turn, handed to the control thread as one
//! batch, and kept in a bounded backlog while it has no room.

use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::mpsc;

use super::interest::ShardEvent;
use super::{Shard, ShardRef};
use crate::control::EventKind;

/// Events on their way to the control thread, a batch per loop turn.
pub(crate) type EventBatch = Vec<ShardEvent>;

/// Events a shard keeps while the control thread's channel is full, before
/// it drops them (and counts them).
pub(super) const EVENT_BACKLOG_MAX: usize = 1 << 20;

/// Hands the backlog to the control thread as it makes room.
pub(super) async fn flush_events(this: ShardRef) {
    loop {
        let (tx, notify) = {
            let shard = this.borrow();
            (shard.events_tx.clone(), shard.flusher.clone())
        };
        if this.borrow().backlog.is_empty() {
            notify.notified().await;
            continue;
        }
        let Ok(permit) = tx.reserve().await else {
            return;
        };
        let batch = this.borrow_mut().pop_backlog();
        if let Some(batch) = batch {
            permit.send(batch);
        }
    }
}

impl Shard {
    /// Whether a connection answers SENDs with 403 for now (`--unclaimed
    /// refuse` and no application subscribed to `message_received`).
    pub(super) fn refuses_sends(&self) -> bool {
        self.config.refuse_unclaimed && !self.wants(EventKind::MessageReceived)
    }

    /// A message was received while no application was subscribed. On the
    /// data path of an engine nobody listens to (the capacity benchmark's),
    /// so the clock is read only every 4096 messages.
    pub(super) fn unclaimed(&mut self, session_id: impl FnOnce(&Shard) -> Option<String>) {
        self.totals.messages_unclaimed += 1;
        let count = self.totals.messages_unclaimed;
        if (count == 1 || count % 4096 == 0) && self.logs.unclaimed.allow(Instant::now()).is_some() {
            let session_id = session_id(self).unwrap_or_default();
            // At info, the engine's default: a load generator that measures
            // without an application (and logs at warn) is not told.
            tracing::info!(
                shard = self.index,
                %session_id,
                unclaimed = count,
                "a message was received while no application is subscribed to events: nobody was told of it (messages_unclaimed)"
            );
        }
    }

    /// Ends a loop turn: this turn's events go to the control thread, or to
    /// the backlog when it has no room.
    pub(super) fn flush_turn(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.events);
        let batch = match self.backlog.is_empty() {
            true => match self.events_tx.try_send(batch) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(batch)) => batch,
            },
            false => batch,
        };
        self.backlog_events += batch.len();
        self.backlog.push_back(batch);
        if self.backlog_events > EVENT_BACKLOG_MAX {
            if let Some(dropped) = self.pop_backlog() {
                self.tap
                    .dropped
                    .fetch_add(dropped.len() as u64, Ordering::Relaxed);
                tracing::error!(
                    shard = self.index,
                    dropped = dropped.len(),
                    "the control thread is not taking events; dropped the oldest"
                );
            }
        }
        self.flusher.notify_one();
    }

    pub(super) fn pop_backlog(&mut self) -> Option<EventBatch> {
        let batch = self.backlog.pop_front()?;
        self.backlog_events -= batch.len();
        Some(batch)
    }
}
