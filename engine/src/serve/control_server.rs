//! The engine's end of the control socket: one control thread (a plain
//! current-thread tokio runtime, off the data path) that routes each command
//! to its shard over the shard's bounded channel and fans events out to
//! subscribers. A subscriber that falls `subscriber_queue_depth` events
//! behind is dropped with a logged reason; no shard ever waits for one.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::descriptor::{self, DescriptorError};
use super::ServeConfig;
use crate::control::frame::{encode, FrameReader, PAYLOAD_BYTES_MAX};
use crate::control::message::{
    Command, EngineEvent, EngineStats, Reply, Request, SendRequest, ServerMessage, SessionDescriptor,
    SessionRole,
};
use crate::shard::{
    Directory, DirectoryError, EventBatch, EventTap, OutgoingSpec, Route, ShardCommand, ShardError,
};

/// Why the control thread refused a command: the reply's `error` text.
#[derive(Debug, thiserror::Error)]
enum CommandError {
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error("the engine is shutting down: no new messages")]
    NoNewMessages,
    #[error("already subscribed")]
    AlreadySubscribed,
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("cannot resolve {host}: {error}")]
    Resolve { host: String, error: std::io::Error },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("no session {0}")]
    NoSession(String),
    #[error("session {0} is waiting for its peer to connect; send after its session_ready event")]
    Pending(String),
    #[error("content_type is required")]
    NoContentType,
    #[error("cannot send {path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("cannot send {0}: not a regular file")]
    NotAFile(String),
    #[error(transparent)]
    Shard(#[from] ShardError),
}

/// A reply that may still be waiting for a shard.
type PendingReply = Pin<Box<dyn Future<Output = Reply>>>;

/// Encoded event frames for one client, and how many events they hold.
type EventFrames = (Bytes, usize);

struct Subscriber {
    client: u64,
    events: mpsc::UnboundedSender<EventFrames>,
    /// Events handed to the client's writer and not yet written: the bound
    /// is kept here, so a whole batch can be judged at once.
    queued: Rc<Cell<usize>>,
}

pub(crate) struct ControlServer {
    pub config: Arc<ServeConfig>,
    pub directory: Arc<Directory>,
    pub shards: Vec<mpsc::Sender<ShardCommand>>,
    /// host:port in our URIs.
    pub authority: String,
    pub listen: Vec<String>,
    pub tap: Arc<EventTap>,
    /// Partial spool files found at start.
    partial_files_recovered: u64,
    subscribers: RefCell<Vec<Subscriber>>,
    subscribers_dropped: Cell<u64>,
    draining: Cell<bool>,
    next_client: Cell<u64>,
    clients: Cell<usize>,
}

impl ControlServer {
    pub fn new(
        config: Arc<ServeConfig>,
        directory: Arc<Directory>,
        shards: Vec<mpsc::Sender<ShardCommand>>,
        authority: String,
        listen: Vec<String>,
        tap: Arc<EventTap>,
        partial_files_recovered: u64,
    ) -> ControlServer {
        ControlServer {
            config,
            directory,
            shards,
            authority,
            listen,
            tap,
            partial_files_recovered,
            subscribers: RefCell::new(Vec::new()),
            subscribers_dropped: Cell::new(0),
            draining: Cell::new(false),
            next_client: Cell::new(0),
            clients: Cell::new(0),
        }
    }

    /// Accepts control clients until the listener fails.
    pub async fn accept_loop(self: Rc<Self>, listener: UnixListener) {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let id = self.next_client.get() + 1;
                    self.next_client.set(id);
                    tokio::task::spawn_local(self.clone().client(id, stream));
                }
                Err(error) => {
                    tracing::warn!(%error, "control accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn client(self: Rc<Self>, id: u64, stream: UnixStream) {
        self.clients.set(self.clients.get() + 1);
        let (mut read, write) = stream.into_split();
        let (replies_tx, replies_rx) = mpsc::channel::<PendingReply>(self.config.command_queue_depth);
        let (events_tx, events_rx) = mpsc::unbounded_channel::<EventFrames>();
        let queued = Rc::new(Cell::new(0));
        let writer = tokio::task::spawn_local(write_loop(id, write, replies_rx, events_rx, queued.clone()));
        let mut events_tx = Some(Subscriber {
            client: id,
            events: events_tx,
            queued,
        });
        let mut frames = FrameReader::new(PAYLOAD_BYTES_MAX);
        'read: loop {
            loop {
                let frame = match frames.next_frame() {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(client = id, %error, "control client sent a bad frame; closing it");
                        break 'read;
                    }
                };
                let reply = match frame.parse::<Request>() {
                    Ok(request) => self.handle(request, frame.payload, &mut events_tx).await,
                    Err(error) => {
                        // The frame is intact, so the stream goes on; the id
                        // may be readable even when the command is not.
                        let id = serde_json::from_slice::<serde_json::Value>(&frame.header)
                            .ok()
                            .and_then(|v| v.get("id").and_then(|id| id.as_u64()))
                            .unwrap_or(0);
                        ready(Reply::error(id, format!("bad command: {error}")))
                    }
                };
                if replies_tx.send(reply).await.is_err() {
                    break 'read;
                }
            }
            let buffer = frames.buffer();
            buffer.reserve(64 * 1024);
            match read.read_buf(buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        drop(replies_tx);
        drop(events_tx);
        {
            let mut subscribers = self.subscribers.borrow_mut();
            subscribers.retain(|s| s.client != id);
            self.tap.subscribers.store(subscribers.len(), Ordering::Relaxed);
        }
        let _ = writer.await;
        self.clients.set(self.clients.get() - 1);
    }

    async fn handle(
        &self,
        request: Request,
        payload: Bytes,
        subscription: &mut Option<Subscriber>,
    ) -> PendingReply {
        let id = request.id;
        let result = match request.command {
            Command::CreateSession(descriptor) => self.create_session(id, descriptor).await,
            Command::Send(send) => self.send(id, send, payload).await,
            Command::CloseSession { session_id, reason } => {
                let reason = reason.unwrap_or_else(|| "closed by the application".into());
                self.close_session(id, session_id, reason).await
            }
            Command::Stats => Ok(self.stats(id)),
            Command::Subscribe => match subscription.take() {
                Some(subscriber) => {
                    let mut subscribers = self.subscribers.borrow_mut();
                    subscribers.push(subscriber);
                    self.tap.subscribers.store(subscribers.len(), Ordering::Relaxed);
                    Ok(ready(Reply::ok(id)))
                }
                None => Err(CommandError::AlreadySubscribed),
            },
        };
        result.unwrap_or_else(|error| ready(Reply::error(id, error.to_string())))
    }

    async fn create_session(&self, id: u64, d: SessionDescriptor) -> Result<PendingReply, CommandError> {
        if self.draining.get() {
            return Err(CommandError::ShuttingDown);
        }
        let (session_id, config) =
            descriptor::session_config(&self.authority, self.config.session_settings(), &d)?;
        let local_uri = config.local_uri.as_str().to_string();
        let created = Reply {
            session_id: Some(session_id.clone()),
            local_uri: Some(local_uri),
            ..Reply::ok(id)
        };
        if d.role == SessionRole::Passive {
            self.directory
                .insert_pending(&session_id, config, Instant::now())?;
            return Ok(ready(created));
        }
        // RFC 4975 5.4: the active side connects to the first URI of the
        // remote path.
        let first = &config.remote_path[0];
        let port = first.port().unwrap_or(2855);
        let peer = match first.ip() {
            Some(ip) => SocketAddr::new(ip, port),
            None => tokio::net::lookup_host((first.host(), port))
                .await
                .map_err(|error| CommandError::Resolve {
                    host: first.host().into(),
                    error,
                })?
                .next()
                .ok_or_else(|| CommandError::NoAddress(first.host().into()))?,
        };
        // ARCHITECTURE: every session towards one peer lands on one shard,
        // so they can share its connection.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        peer.hash(&mut hasher);
        let shard = (hasher.finish() % self.shards.len() as u64) as usize;
        self.directory
            .insert_owned(&session_id, shard, config.local_uri.clone())?;
        let directory = self.directory.clone();
        let forget = session_id.clone();
        let asked = self
            .ask(
                shard,
                |reply| ShardCommand::Create {
                    session_id: session_id.clone(),
                    config: Box::new(config),
                    peer,
                    reply,
                },
                move |answer| match answer {
                    Ok(()) => created,
                    Err(error) => {
                        directory.remove(&forget);
                        Reply::error(id, error.to_string())
                    }
                },
            )
            .await;
        if asked.is_err() {
            self.directory.remove(&session_id);
        }
        asked
    }

    async fn send(&self, id: u64, send: SendRequest, payload: Bytes) -> Result<PendingReply, CommandError> {
        if self.draining.get() {
            return Err(CommandError::NoNewMessages);
        }
        let shard = match self.directory.route(&send.session_id) {
            None => return Err(CommandError::NoSession(send.session_id)),
            Some(Route::Pending) => return Err(CommandError::Pending(send.session_id)),
            Some(Route::Shard(shard)) => shard,
        };
        if send.content_type.is_empty() {
            return Err(CommandError::NoContentType);
        }
        let file = match &send.file {
            None => None,
            Some(path) => {
                let metadata = std::fs::metadata(path).map_err(|error| CommandError::File {
                    path: path.clone(),
                    error,
                })?;
                if !metadata.is_file() {
                    return Err(CommandError::NotAFile(path.clone()));
                }
                Some((path.into(), metadata.len()))
            }
        };
        let message = OutgoingSpec {
            content_type: send.content_type,
            body: payload,
            file,
            delete_after: send.delete_after,
            success_report: send.success_report.map(descriptor::success_report),
            failure_report: send.failure_report.map(descriptor::failure_report),
        };
        let session_id = send.session_id;
        self.ask(
            shard,
            |reply| ShardCommand::Send {
                session_id,
                message,
                reply,
            },
            move |answer| match answer {
                Ok(message) => Reply {
                    message: Some(message),
                    ..Reply::ok(id)
                },
                Err(error) => Reply::error(id, error.to_string()),
            },
        )
        .await
    }

    async fn close_session(
        &self,
        id: u64,
        session_id: String,
        reason: String,
    ) -> Result<PendingReply, CommandError> {
        let shard = match self.directory.route(&session_id) {
            None => return Err(CommandError::NoSession(session_id)),
            Some(Route::Pending) => {
                self.directory.remove(&session_id);
                self.broadcast_one(EngineEvent::SessionClosed { session_id, reason });
                return Ok(ready(Reply::ok(id)));
            }
            Some(Route::Shard(shard)) => shard,
        };
        self.ask(
            shard,
            |reply| ShardCommand::Close {
                session_id,
                reason,
                reply,
            },
            move |answer| match answer {
                Ok(()) => Reply::ok(id),
                Err(error) => Reply::error(id, error.to_string()),
            },
        )
        .await
    }

    /// Hands a command to its shard (waiting for room in the shard's queue)
    /// and returns the reply to come once the shard answered.
    async fn ask<T: 'static>(
        &self,
        shard: usize,
        command: impl FnOnce(oneshot::Sender<Result<T, ShardError>>) -> ShardCommand,
        answered: impl FnOnce(Result<T, ShardError>) -> Reply + 'static,
    ) -> Result<PendingReply, CommandError> {
        let (reply, answer) = oneshot::channel();
        self.shards[shard]
            .send(command(reply))
            .await
            .map_err(|_| ShardError::Stopped)?;
        Ok(Box::pin(async move {
            let answer = answer.await.unwrap_or_else(|_| Err(ShardError::Stopped));
            answered(answer)
        }))
    }

    fn stats(&self, id: u64) -> PendingReply {
        let answers: Vec<_> = self
            .shards
            .iter()
            .map(|shard| {
                let (reply, answer) = oneshot::channel();
                let sent = shard.try_send(ShardCommand::Stats { reply }).is_ok();
                (sent, answer)
            })
            .collect();
        let mut stats = EngineStats {
            listen: self.listen.clone(),
            sessions_pending: self.directory.pending_count() as u64,
            events_dropped: self.tap.dropped.load(Ordering::Relaxed),
            subscribers_dropped: self.subscribers_dropped.get(),
            partial_files_recovered: self.partial_files_recovered,
            shards: Vec::new(),
        };
        Box::pin(async move {
            for (sent, answer) in answers {
                if !sent {
                    return Reply::error(id, "a shard's command queue is full; retry");
                }
                match answer.await {
                    Ok(shard) => stats.shards.push(shard),
                    Err(_) => return Reply::error(id, "a shard has stopped"),
                }
            }
            Reply {
                stats: Some(stats),
                ..Reply::ok(id)
            }
        })
    }

    /// Hands a batch of events to every subscriber. A subscriber with more
    /// than `subscriber_queue_depth` events unread is dropped rather than
    /// waited for; a batch into an empty queue is always taken, however
    /// large (one read of small SENDs makes thousands of events at once).
    pub fn broadcast(&self, batch: EventBatch) {
        let mut subscribers = self.subscribers.borrow_mut();
        if subscribers.is_empty() || batch.is_empty() {
            return;
        }
        let count = batch.len();
        let mut frames = Vec::with_capacity(count * 160);
        for (event, payload) in batch {
            if let Err(error) = encode(&mut frames, &ServerMessage::Event(event), &payload) {
                tracing::error!(%error, "cannot encode an event");
            }
        }
        let frames = Bytes::from(frames);
        let depth = self.config.subscriber_queue_depth;
        subscribers.retain(|s| {
            let queued = s.queued.get();
            if queued > 0 && queued + count > depth {
                tracing::warn!(
                    client = s.client,
                    unread = queued,
                    "dropped a control subscriber: it left more than {depth} events unread (subscriber-queue-depth)"
                );
                self.subscribers_dropped.set(self.subscribers_dropped.get() + 1);
                return false;
            }
            s.queued.set(queued + count);
            s.events.send((frames.clone(), count)).is_ok()
        });
        self.tap.subscribers.store(subscribers.len(), Ordering::Relaxed);
    }

    fn broadcast_one(&self, event: EngineEvent) {
        self.broadcast(vec![(event, Bytes::new())]);
    }

    /// Routes the shards' events until every shard has stopped.
    pub async fn event_hub(self: Rc<Self>, mut events: mpsc::Receiver<EventBatch>) {
        while let Some(batch) = events.recv().await {
            self.broadcast(batch);
            // Let the clients' writers drain before the next batch is judged
            // against their bounds.
            tokio::task::yield_now().await;
        }
    }

    /// Closes the passive sessions whose peer never connected.
    pub async fn expire_pending(self: Rc<Self>) {
        let expiry = self.directory.pending_expiry();
        let mut tick = tokio::time::interval(Duration::from_millis(250).min(expiry));
        loop {
            tick.tick().await;
            for session_id in self.directory.expire(Instant::now()) {
                let reason = format!("the peer did not connect within {expiry:?} (pending-expiry)");
                self.broadcast_one(EngineEvent::SessionClosed { session_id, reason });
            }
        }
    }

    /// SIGTERM: refuse new sessions and tell every shard to drain.
    pub async fn drain(&self) {
        self.draining.set(true);
        let deadline = Instant::now() + self.config.drain_timeout;
        for shard in &self.shards {
            let _ = shard.send(ShardCommand::Drain { deadline }).await;
        }
        // Passive sessions whose peer never came end too, each with its event.
        let all = Instant::now() + self.directory.pending_expiry();
        for session_id in self.directory.expire(all) {
            let reason = "the engine shut down before the peer connected".to_string();
            self.broadcast_one(EngineEvent::SessionClosed { session_id, reason });
        }
    }

    /// After the shards stopped: let clients read their last events.
    pub async fn finish(&self) {
        self.subscribers.borrow_mut().clear();
        self.tap.subscribers.store(0, Ordering::Relaxed);
        let until = Instant::now() + Duration::from_secs(1);
        while self.clients.get() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn ready(reply: Reply) -> PendingReply {
    Box::pin(std::future::ready(reply))
}

/// Writes replies in request order and events as they come, batching
/// whatever is ready into one write.
async fn write_loop(
    client: u64,
    mut write: tokio::net::unix::OwnedWriteHalf,
    mut replies: mpsc::Receiver<PendingReply>,
    mut events: mpsc::UnboundedReceiver<EventFrames>,
    queued: Rc<Cell<usize>>,
) {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut written_events = 0;
    loop {
        tokio::select! {
            biased;
            reply = replies.recv() => match reply {
                Some(reply) => push_reply(&mut out, reply.await),
                None => break,
            },
            frames = events.recv() => match frames {
                Some((frames, count)) => {
                    out.extend_from_slice(&frames);
                    written_events += count;
                }
                None => {
                    // Dropped as a slow subscriber, or the client is
                    // leaving: write what is decided and close.
                    while let Ok(reply) = replies.try_recv() {
                        push_reply(&mut out, reply.await);
                    }
                    let _ = write.write_all(&out).await;
                    tracing::debug!(client, "control client's event stream ended");
                    return;
                }
            },
        }
        while out.len() < 1 << 20 {
            match events.try_recv() {
                Ok((frames, count)) => {
                    out.extend_from_slice(&frames);
                    written_events += count;
                }
                Err(_) => break,
            }
        }
        if write.write_all(&out).await.is_err() {
            return;
        }
        queued.set(queued.get().saturating_sub(written_events));
        written_events = 0;
        out.clear();
    }
    while let Ok((frames, _)) = events.try_recv() {
        out.extend_from_slice(&frames);
    }
    let _ = write.write_all(&out).await;
}

fn push_reply(out: &mut Vec<u8>, reply: Reply) {
    if let Err(error) = encode(out, &ServerMessage::Reply(reply), &[]) {
        tracing::error!(%error, "cannot encode a reply");
    }
}
