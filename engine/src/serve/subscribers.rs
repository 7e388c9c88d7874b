//! The control thread's subscribers: what each asked for, the union of it
//! published to the shards (`shard::EventTap`), and each batch of events
//! encoded once and written to each subscriber as the frames of its protocol
//! version. A subscriber that falls `subscriber_queue_depth` events behind
//! is dropped with a logged reason; no shard ever waits for one.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use std::io::IoSlice;

use bytes::{Buf, Bytes};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::control_server::PendingReply;
use crate::control::frame::encode;
use crate::control::{EncodedEvents, EventKinds, Reply, SealedEvents, ServerMessage, Subscription};
use crate::shard::{EventBatch, EventTap, ShardEvent, Watch};

/// Encoded event frames for one client, and how many events they hold.
pub(super) type EventFrames = (Bytes, usize);

/// What one subscriber asked for.
struct Filter {
    kinds: EventKinds,
    /// Empty with `tags`: every session.
    sessions: HashSet<String>,
    tags: HashSet<String>,
}

impl Filter {
    fn new(subscription: Subscription) -> Filter {
        Filter {
            kinds: EventKinds::named(&subscription.events),
            sessions: subscription.sessions.into_iter().collect(),
            tags: subscription.tags.into_iter().collect(),
        }
    }

    fn every_session(&self) -> bool {
        self.sessions.is_empty() && self.tags.is_empty()
    }

    fn takes_everything(&self) -> bool {
        self.kinds == EventKinds::ALL && self.every_session()
    }

    fn wants(&self, event: &ShardEvent) -> bool {
        self.kinds.contains(event.event.kind())
            && (self.every_session()
                || self.sessions.contains(event.event.session_id())
                || event.tag.as_deref().is_some_and(|tag| self.tags.contains(tag)))
    }
}

/// A client's way to its writer, before and after it subscribes.
pub(super) struct Link {
    pub client: u64,
    /// The protocol version the client spoke last (`hello`).
    pub version: Rc<Cell<u32>>,
    pub events: mpsc::UnboundedSender<EventFrames>,
    /// Events handed to the client's writer and not yet written: the bound
    /// is kept here, so a whole batch can be judged at once.
    pub queued: Rc<Cell<usize>>,
}

struct Subscriber {
    link: Link,
    filter: Filter,
}

pub(super) struct Subscribers {
    list: RefCell<Vec<Subscriber>>,
    tap: std::sync::Arc<EventTap>,
    depth: usize,
    dropped: Cell<u64>,
}

impl Subscribers {
    pub fn new(tap: std::sync::Arc<EventTap>, depth: usize) -> Subscribers {
        Subscribers {
            list: RefCell::new(Vec::new()),
            tap,
            depth,
            dropped: Cell::new(0),
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    pub fn add(&self, link: Link, subscription: Subscription) {
        let filter = Filter::new(subscription);
        self.list.borrow_mut().push(Subscriber { link, filter });
        self.publish();
    }

    pub fn remove(&self, client: u64) {
        self.list.borrow_mut().retain(|s| s.link.client != client);
        self.publish();
    }

    pub fn clear(&self) {
        self.list.borrow_mut().clear();
        self.publish();
    }

    /// Tells the shards what the subscribers want, together.
    fn publish(&self) {
        let list = self.list.borrow();
        let (mut all, mut some) = (0, 0);
        let mut watch = Watch::default();
        for s in list.iter() {
            match s.filter.every_session() {
                true => all |= s.filter.kinds.0,
                false => {
                    some |= s.filter.kinds.0;
                    watch
                        .sessions
                        .extend(s.filter.sessions.iter().map(|id| id.as_str().into()));
                    watch
                        .tags
                        .extend(s.filter.tags.iter().map(|tag| tag.as_str().into()));
                }
            }
        }
        self.tap
            .publish(list.len(), EventKinds(all), EventKinds(some), watch);
    }

    /// Hands a batch of events to every subscriber that wants some of them.
    /// A subscriber with more than `subscriber_queue_depth` events unread is
    /// dropped rather than waited for; a batch into an empty queue is always
    /// taken, however large (one read of small SENDs makes thousands of
    /// events at once).
    pub fn broadcast(&self, batch: EventBatch) {
        let mut list = self.list.borrow_mut();
        if list.is_empty() || batch.is_empty() {
            return;
        }
        let mut encoded = EncodedEvents::with_capacity(batch.len());
        let mut kept = Vec::with_capacity(batch.len());
        for event in batch {
            match encoded.push(&event.event, event.payload.clone()) {
                Ok(()) => kept.push(event),
                Err(error) => tracing::error!(%error, "cannot encode an event"),
            }
        }
        let encoded = encoded.seal();
        // Every event, written once per version for all who take everything
        // (in version 2, the frames as encoded).
        let mut everything: [Option<Bytes>; 2] = [None, Some(encoded.all_v2())];
        let depth = self.depth;
        let before = list.len();
        list.retain(|s| {
            let version = s.link.version.get();
            let (frames, count) = match s.filter.takes_everything() {
                true => {
                    let slot = &mut everything[usize::from(version >= 2)];
                    let frames = slot.get_or_insert_with(|| write(&encoded, version, 0..kept.len()));
                    (frames.clone(), kept.len())
                }
                false => {
                    let wanted: Vec<usize> = (0..kept.len()).filter(|&i| s.filter.wants(&kept[i])).collect();
                    if wanted.is_empty() {
                        return true;
                    }
                    let count = wanted.len();
                    (write(&encoded, version, wanted.into_iter()), count)
                }
            };
            let queued = s.link.queued.get();
            if queued > 0 && queued + count > depth {
                tracing::warn!(
                    client = s.link.client,
                    unread = queued,
                    "dropped a control subscriber: it left more than {depth} events unread (subscriber-queue-depth)"
                );
                self.dropped.set(self.dropped.get() + 1);
                return false;
            }
            s.link.queued.set(queued + count);
            s.link.events.send((frames, count)).is_ok()
        });
        if list.len() != before {
            drop(list);
            self.publish();
        }
    }
}

fn write(encoded: &SealedEvents, version: u32, events: impl Iterator<Item = usize>) -> Bytes {
    let mut out = Vec::new();
    match version {
        0 | 1 => encoded.write_v1(&mut out, events),
        _ => encoded.write_v2(&mut out, events),
    }
    Bytes::from(out)
}

/// Writes replies in request order and events as they come, batching
/// whatever is ready into one vectored write: event frames go out as the
/// control thread encoded them, not copied again.
pub(super) async fn write_loop(
    client: u64,
    mut write: tokio::net::unix::OwnedWriteHalf,
    mut replies: mpsc::Receiver<PendingReply>,
    mut events: mpsc::UnboundedReceiver<EventFrames>,
    queued: Rc<Cell<usize>>,
) {
    let mut out = Output::default();
    let mut written_events = 0;
    loop {
        tokio::select! {
            biased;
            reply = replies.recv() => match reply {
                Some(reply) => out.reply(reply.await),
                None => break,
            },
            frames = events.recv() => match frames {
                Some((frames, count)) => {
                    out.frames(frames);
                    written_events += count;
                }
                None => {
                    // Dropped as a slow subscriber, or the client is
                    // leaving: write what is decided and close.
                    while let Ok(reply) = replies.try_recv() {
                        out.reply(reply.await);
                    }
                    let _ = out.write(&mut write).await;
                    tracing::debug!(client, "control client's event stream ended");
                    return;
                }
            },
        }
        while out.len < 1 << 20 {
            match events.try_recv() {
                Ok((frames, count)) => {
                    out.frames(frames);
                    written_events += count;
                }
                Err(_) => break,
            }
        }
        if out.write(&mut write).await.is_err() {
            return;
        }
        queued.set(queued.get().saturating_sub(written_events));
        written_events = 0;
    }
    while let Ok((frames, _)) = events.try_recv() {
        out.frames(frames);
    }
    let _ = out.write(&mut write).await;
}

/// What a client's writer has to write, in order: encoded replies and
/// event frames as they are.
#[derive(Default)]
struct Output {
    pieces: Vec<Bytes>,
    /// Replies encoded since the last piece.
    replies: Vec<u8>,
    len: usize,
}

impl Output {
    fn reply(&mut self, reply: Reply) {
        let before = self.replies.len();
        push_reply(&mut self.replies, reply);
        self.len += self.replies.len() - before;
    }

    fn frames(&mut self, frames: Bytes) {
        self.cut_replies();
        self.len += frames.len();
        self.pieces.push(frames);
    }

    fn cut_replies(&mut self) {
        if !self.replies.is_empty() {
            self.pieces.push(Bytes::from(std::mem::take(&mut self.replies)));
        }
    }

    async fn write(&mut self, write: &mut tokio::net::unix::OwnedWriteHalf) -> std::io::Result<()> {
        self.cut_replies();
        let mut at = 0;
        while at < self.pieces.len() {
            let slices: Vec<IoSlice<'_>> = self.pieces[at..]
                .iter()
                .take(64)
                .map(|p| IoSlice::new(p))
                .collect();
            let mut n = write.write_vectored(&slices).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            while n > 0 {
                let piece = &mut self.pieces[at];
                if n < piece.len() {
                    piece.advance(n);
                    break;
                }
                n -= piece.len();
                at += 1;
            }
        }
        self.pieces.clear();
        self.len = 0;
        Ok(())
    }
}

fn push_reply(out: &mut Vec<u8>, reply: Reply) {
    let id = reply.id;
    if let Err(error) = encode(out, &ServerMessage::Reply(reply), &[]) {
        // A batch's results (long error texts) over the header bound: its
        // operations happened, so say so rather than go quiet.
        tracing::error!(%error, "cannot encode a reply");
        let reply = Reply::error(
            id,
            format!("the reply does not fit a control frame ({error}); use smaller batches"),
        );
        let _ = encode(out, &ServerMessage::Reply(reply), &[]);
    }
}
