//! The engine's end of the control socket: one control thread (a plain
//! current-thread tokio runtime, off the data path) that reads each client's
//! commands, routes them to their shard over the shard's bounded channel and
//! writes the replies in order; `batch.rs` runs version 2's batches and
//! `subscribers.rs` fans events out.

use crate::tls::{Fingerprint, TlsConfigs};
use std::cell::Cell;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::descriptor::{self, DescriptorError};
use super::subscribers::{write_loop, EventFrames, Link, Subscribers};
use super::ServeConfig;
use crate::control::frame::{FrameReader, PAYLOAD_BYTES_MAX};
use crate::control::message::{
    CloseRequest, Command, EngineEvent, EngineStats, Reply, ReportRequest, Request, SendRequest,
    SessionDescriptor, SessionRole, TlsStats, UpdateRequest,
};
use crate::control::PROTOCOL_VERSION;
use crate::shard::{
    Directory, DirectoryError, EventBatch, EventTap, OutgoingSpec, Route, ShardCommand, ShardError,
    ShardEvent,
};
use crate::ReportSent;

/// Why the control thread refused a command: the reply's `error` text.
#[derive(Debug, thiserror::Error)]
pub(super) enum CommandError {
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
    #[error("this engine speaks control protocol versions 1 to {PROTOCOL_VERSION}, not {0}")]
    Version(u32),
    #[error("batch needs control protocol version 2: send {{\"cmd\": \"hello\", \"version\": 2}} first")]
    NeedsVersion2,
    #[error("a batch of {ops} operations is over the limit of {max} (batch-ops-max); split it")]
    BatchOps { ops: usize, max: usize },
    #[error("a batch payload of {len} octets is over the limit of {max} (batch-payload-max); split it")]
    BatchPayload { len: u64, max: u64 },
    #[error("the batch's payload_len fields add up to {claimed} octets, but its payload has {len}")]
    BatchPayloadLens { claimed: u64, len: u64 },
}

/// A reply that may still be waiting for a shard.
pub(super) type PendingReply = Pin<Box<dyn Future<Output = Reply>>>;

/// What the control thread knows of the engine's TLS.
pub(crate) struct TlsFace {
    pub listen: Vec<String>,
    pub authority: String,
    pub local_fingerprint: std::cell::RefCell<String>,
}

pub(crate) struct ControlServer {
    pub config: Arc<ServeConfig>,
    pub directory: Arc<Directory>,
    pub shards: Vec<mpsc::Sender<ShardCommand>>,
    /// host:port in our URIs.
    pub authority: String,
    pub listen: Vec<String>,
    pub tap: Arc<EventTap>,
    /// `--tls-listen`: its addresses, the host:port in our msrps URIs, and
    /// our certificate's fingerprint as now loaded (SIGHUP changes it).
    pub tls: Option<TlsFace>,
    /// Partial spool files found at start.
    partial_files_recovered: u64,
    subscribers: Subscribers,
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
        let subscribers = Subscribers::new(tap.clone(), config.subscriber_queue_depth);
        ControlServer {
            config,
            directory,
            shards,
            authority,
            listen,
            tap,
            tls: None,
            partial_files_recovered,
            subscribers,
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
        let version = Rc::new(Cell::new(1));
        let mut events_tx = Some(Link {
            client: id,
            version: version.clone(),
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
                let request = match crate::control::fast::send_batch(&frame.header) {
                    Some(request) => Ok(request),
                    None => frame.parse::<Request>(),
                };
                let reply = match request {
                    Ok(request) => {
                        self.handle(request, frame.payload, &version, &mut events_tx)
                            .await
                    }
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
        self.subscribers.remove(id);
        let _ = writer.await;
        self.clients.set(self.clients.get() - 1);
    }

    async fn handle(
        &self,
        request: Request,
        payload: Bytes,
        version: &Cell<u32>,
        link: &mut Option<Link>,
    ) -> PendingReply {
        let id = request.id;
        let result = match request.command {
            Command::Hello { version: asked } => match asked {
                1..=PROTOCOL_VERSION => {
                    version.set(asked);
                    Ok(ready(Reply {
                        version: Some(asked),
                        ..Reply::ok(id)
                    }))
                }
                _ => Err(CommandError::Version(asked)),
            },
            Command::Batch { ops } => match version.get() >= 2 {
                true => self.batch(id, ops, payload).await,
                false => Err(CommandError::NeedsVersion2),
            },
            Command::CreateSession(descriptor) => self.create_session(id, descriptor).await,
            Command::Send(send) => self.send(id, send, payload).await,
            Command::CloseSession(CloseRequest { session_id, reason }) => {
                let reason = reason.unwrap_or_else(|| "closed by the application".into());
                self.close_session(id, session_id, reason).await
            }
            Command::UpdateSession(update) => self.update_session(id, update).await,
            Command::Report(report) => self.report(id, report).await,
            Command::Stats => Ok(self.stats(id)),
            Command::Subscribe(subscription) => match link.take() {
                Some(link) => {
                    self.subscribers.add(link, subscription);
                    Ok(ready(Reply::ok(id)))
                }
                None => Err(CommandError::AlreadySubscribed),
            },
        };
        result.unwrap_or_else(|error| ready(Reply::error(id, error.to_string())))
    }

    pub(super) async fn create_session(
        &self,
        id: u64,
        d: SessionDescriptor,
    ) -> Result<PendingReply, CommandError> {
        if self.draining.get() {
            return Err(CommandError::ShuttingDown);
        }
        let tls_authority = self.tls.as_ref().map(|tls| tls.authority.as_str());
        // Checked by `session_config` below: a bad one refuses the session.
        let fingerprint = d.fingerprint.as_deref().and_then(|f| Fingerprint::parse(f).ok());
        let (session_id, config) =
            descriptor::session_config(&self.authority, tls_authority, self.config.session_settings(), &d)?;
        let local_uri = config.local_uri.as_str().to_string();
        let local_fingerprint = match config.local_uri.is_secure() {
            true => self
                .tls
                .as_ref()
                .map(|tls| tls.local_fingerprint.borrow().clone()),
            false => None,
        };
        let created = Reply {
            session_id: Some(session_id.clone()),
            local_uri: Some(local_uri),
            local_fingerprint,
            ..Reply::ok(id)
        };
        let tag: Option<Arc<str>> = d.tag.as_deref().map(Into::into);
        if d.role == SessionRole::Passive {
            // A plain session has no certificate to check it against.
            let fingerprint = fingerprint.filter(|_| config.local_uri.is_secure());
            self.directory
                .insert_pending(&session_id, config, (tag, fingerprint), Instant::now())?;
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
            .insert_owned(&session_id, shard, config.local_uri.clone(), tag.clone())?;
        let directory = self.directory.clone();
        let forget = session_id.clone();
        let asked = self
            .ask(
                shard,
                |reply| ShardCommand::Create {
                    session_id: session_id.clone(),
                    config: Box::new(config),
                    peer,
                    tag,
                    fingerprint,
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
        let route = self.directory.route(&send.session_id);
        let (shard, session_id, message) = self.prepare_send(send, route, payload)?;
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

    /// What the control thread checks of a send before its shard sees it
    /// (`route`: where the directory says its session is), and the shard it
    /// goes to.
    pub(super) fn prepare_send(
        &self,
        send: SendRequest,
        route: Option<Route>,
        payload: Bytes,
    ) -> Result<(usize, String, OutgoingSpec), CommandError> {
        if self.draining.get() {
            return Err(CommandError::NoNewMessages);
        }
        let shard = match route {
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
        Ok((shard, send.session_id, message))
    }

    pub(super) async fn close_session(
        &self,
        id: u64,
        session_id: String,
        reason: String,
    ) -> Result<PendingReply, CommandError> {
        let shard = match self.directory.route(&session_id) {
            None => return Err(CommandError::NoSession(session_id)),
            Some(Route::Pending) => {
                let tag = self.directory.tag(&session_id);
                self.directory.remove(&session_id);
                self.broadcast_one(EngineEvent::SessionClosed { session_id, reason }, tag);
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

    pub(super) async fn update_session(
        &self,
        id: u64,
        update: UpdateRequest,
    ) -> Result<PendingReply, CommandError> {
        let UpdateRequest {
            session_id,
            remote_accept_types,
            remote_max_size,
        } = update;
        let shard = match self.directory.route(&session_id) {
            None => return Err(CommandError::NoSession(session_id)),
            Some(Route::Pending) => {
                return match self.directory.update_pending_peer(
                    &session_id,
                    remote_accept_types,
                    remote_max_size,
                ) {
                    true => Ok(ready(Reply::ok(id))),
                    // Claimed by a shard meanwhile: the caller may retry.
                    false => Err(CommandError::NoSession(session_id)),
                };
            }
            Some(Route::Shard(shard)) => shard,
        };
        self.ask(
            shard,
            |reply| ShardCommand::UpdatePeer {
                session_id,
                accept_types: remote_accept_types,
                max_size: remote_max_size,
                reply,
            },
            move |answer| match answer {
                Ok(()) => Reply::ok(id),
                Err(error) => Reply::error(id, error.to_string()),
            },
        )
        .await
    }

    /// `report`: the shard that owns the session writes the REPORT on its
    /// connection. A session still waiting for its peer has held nothing.
    pub(super) async fn report(&self, id: u64, report: ReportRequest) -> Result<PendingReply, CommandError> {
        let ReportRequest {
            session_id,
            message_id,
            status,
            comment,
        } = report;
        let shard = match self.directory.route(&session_id) {
            None => return Err(CommandError::NoSession(session_id)),
            Some(Route::Pending) => {
                return Err(ShardError::NoHeldReport {
                    session_id,
                    message_id,
                }
                .into())
            }
            Some(Route::Shard(shard)) => shard,
        };
        self.ask(
            shard,
            |reply| ShardCommand::Report {
                session_id,
                message_id,
                status,
                comment,
                reply,
            },
            move |answer| match answer {
                Ok(sent) => Reply {
                    sent: Some(sent == ReportSent::Sent),
                    ..Reply::ok(id)
                },
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
            advertise: self.authority.clone(),
            tls: self.tls.as_ref().map(|tls| {
                Box::new(TlsStats {
                    listen: tls.listen.clone(),
                    advertise: tls.authority.clone(),
                    local_fingerprint: tls.local_fingerprint.borrow().clone(),
                })
            }),
            sessions_pending: self.directory.pending_count() as u64,
            events_dropped: self.tap.dropped.load(Ordering::Relaxed),
            subscribers_dropped: self.subscribers.dropped(),
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

    pub fn broadcast(&self, batch: EventBatch) {
        self.subscribers.broadcast(batch);
    }

    fn broadcast_one(&self, event: EngineEvent, tag: Option<Arc<str>>) {
        self.broadcast(vec![ShardEvent {
            event,
            payload: Bytes::new(),
            tag,
        }]);
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
            for (session_id, tag) in self.directory.expire(Instant::now()) {
                let reason = format!("the peer did not connect within {expiry:?} (pending-expiry)");
                self.broadcast_one(EngineEvent::SessionClosed { session_id, reason }, tag);
            }
        }
    }

    /// SIGTERM: refuse new sessions and tell every shard to drain.
    /// SIGHUP: re-reads the certificate, key and CA files and hands the
    /// new configurations to every shard for its next handshakes; a file
    /// that does not load keeps the old ones, and the log says why.
    pub async fn reload_tls(&self) {
        let (Some(tls), Some(files)) = (&self.tls, self.config.tls_files()) else {
            tracing::info!("SIGHUP: no TLS configured, nothing to reload");
            return;
        };
        let configs = match TlsConfigs::load(&files) {
            Ok(configs) => configs,
            Err(error) => {
                tracing::error!(%error, "SIGHUP: the TLS files do not load; keeping the old ones");
                return;
            }
        };
        *tls.local_fingerprint.borrow_mut() = configs.local_fingerprint.to_string();
        for shard in &self.shards {
            let _ = shard
                .send(ShardCommand::ReloadTls(Box::new(configs.clone())))
                .await;
        }
        tracing::info!(fingerprint = %configs.local_fingerprint, "SIGHUP: TLS certificate reloaded");
    }

    pub async fn drain(&self) {
        self.draining.set(true);
        let deadline = Instant::now() + self.config.drain_timeout;
        for shard in &self.shards {
            let _ = shard.send(ShardCommand::Drain { deadline }).await;
        }
        // Passive sessions whose peer never came end too, each with its event.
        let all = Instant::now() + self.directory.pending_expiry();
        for (session_id, tag) in self.directory.expire(all) {
            let reason = "the engine shut down before the peer connected".to_string();
            self.broadcast_one(EngineEvent::SessionClosed { session_id, reason }, tag);
        }
    }

    /// After the shards stopped: let clients read their last events.
    pub async fn finish(&self) {
        self.subscribers.clear();
        let until = Instant::now() + Duration::from_secs(1);
        while self.clients.get() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn ready(reply: Reply) -> PendingReply {
    Box::pin(std::future::ready(reply))
}
