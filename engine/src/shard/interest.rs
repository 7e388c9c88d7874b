//! Which events anyone wants: the control thread publishes the union of its
//! subscribers' filters, and a shard builds an event only when it falls in
//! it, so an engine whose application asked only for `delivered` and
//! `failed` builds nothing else (RFC-free bookkeeping, but the data path's
//! cost: the strings of an event per message are about a tenth of it).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::Shard;
use crate::control::{EngineEvent, EventKind, EventKinds};

/// The sessions and tags that subscribers with a session filter named.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    pub sessions: HashSet<Box<str>>,
    pub tags: HashSet<Box<str>>,
}

/// Shared by the shards and the control thread.
#[derive(Default)]
pub(crate) struct EventTap {
    /// Events dropped because the control thread fell behind.
    pub dropped: AtomicU64,
    /// Control clients subscribed to events, whatever they asked for.
    pub subscribers: AtomicUsize,
    /// Kinds some subscriber wants of every session.
    kinds_all: AtomicU32,
    /// Kinds some subscriber wants of the sessions in `watch`.
    kinds_some: AtomicU32,
    watch: Mutex<Arc<Watch>>,
    /// Bumped with every change of `watch`: a shard re-reads it only then.
    generation: AtomicU64,
}

impl EventTap {
    /// The control thread's subscribers changed: this is now what they want.
    pub fn publish(&self, subscribers: usize, kinds_all: EventKinds, kinds_some: EventKinds, watch: Watch) {
        *self.watch.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(watch);
        self.generation.fetch_add(1, Ordering::Release);
        self.kinds_all.store(kinds_all.0, Ordering::Relaxed);
        self.kinds_some.store(kinds_some.0, Ordering::Relaxed);
        self.subscribers.store(subscribers, Ordering::Relaxed);
    }

    /// Whether any subscriber wants events of this kind, of some session.
    pub fn wants(&self, kind: EventKind) -> bool {
        (self.kinds_all.load(Ordering::Relaxed) | self.kinds_some.load(Ordering::Relaxed)) & kind.bit() != 0
    }
}

/// A shard's copy of the tap's [`Watch`], re-read when it changed.
#[derive(Default)]
pub(super) struct WatchCache {
    generation: u64,
    watch: Arc<Watch>,
}

/// An event on its way to the control thread, with its session's tag when
/// a subscriber filters by tag.
pub(crate) struct ShardEvent {
    pub event: EngineEvent,
    pub payload: Bytes,
    pub tag: Option<Arc<str>>,
}

impl Shard {
    /// Whether anyone will read an event of this kind: build it only then.
    pub(super) fn wants(&self, kind: EventKind) -> bool {
        self.tap.wants(kind)
    }

    /// Queues an event some subscriber wants: one wanted only by
    /// subscribers of other sessions goes no further (false).
    pub(super) fn emit(&mut self, event: EngineEvent, payload: Bytes) -> bool {
        self.emit_with_tag(event, payload, |shard, event| {
            shard
                .by_session_id
                .get(event.session_id())
                .and_then(|&s| shard.sessions[s].tag.clone())
        })
    }

    /// An event of a session this shard does not hold (yet), with the tag
    /// it was created with.
    pub(super) fn emit_tagged(&mut self, event: EngineEvent, tag: Option<Arc<str>>) -> bool {
        self.emit_with_tag(event, Bytes::new(), |_, _| tag)
    }

    /// `tag` is asked only when some subscriber filters by session.
    fn emit_with_tag(
        &mut self,
        event: EngineEvent,
        payload: Bytes,
        tag: impl FnOnce(&Shard, &EngineEvent) -> Option<Arc<str>>,
    ) -> bool {
        let bit = event.kind().bit();
        let all = self.tap.kinds_all.load(Ordering::Relaxed) & bit != 0;
        let some = self.tap.kinds_some.load(Ordering::Relaxed) & bit != 0;
        let tag = match some {
            false => None,
            true => tag(self, &event),
        };
        if !all {
            if !some {
                return false;
            }
            let generation = self.tap.generation.load(Ordering::Acquire);
            if self.watch.generation != generation {
                let watch = self.tap.watch.lock().unwrap_or_else(|p| p.into_inner()).clone();
                self.watch = WatchCache { generation, watch };
            }
            let watch = &self.watch.watch;
            let named = watch.sessions.contains(event.session_id());
            if !named && !tag.as_deref().is_some_and(|t| watch.tags.contains(t)) {
                return false;
            }
        }
        self.events.push(ShardEvent { event, payload, tag });
        true
    }
}
