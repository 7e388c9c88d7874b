//! A tokio client of the control socket that many tasks share (signaling,
//! REST): each call writes its frame and awaits its own reply; one reader
//! task hands replies back in order and events to an [`EventStream`]. It
//! speaks protocol version 2 from the start.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use super::client::{decode, ClientError, CreatedSession, Incoming};
use super::frame::{encode, FrameReader, PAYLOAD_BYTES_MAX};
use super::message::{
    BatchOp, CloseRequest, Command, EngineEvent, EngineStats, OpResult, Reply, ReportRequest, Request,
    SendRequest, SessionDescriptor, Subscription, UpdateRequest,
};
use super::PROTOCOL_VERSION;

/// Events read and not yet taken from the [`EventStream`]: beyond it the
/// reader waits, and the engine drops a subscriber that stays behind
/// (`--subscriber-queue-depth`).
pub const EVENT_STREAM_DEPTH: usize = 4096;

type Waiter = oneshot::Sender<Result<(Reply, Bytes), ClientError>>;

/// Frames handed to the writer task and not yet written, at most.
const WRITE_QUEUE_DEPTH: usize = 1024;

struct Shared {
    /// In the order the frames were written, which is the order of the
    /// replies: the id is checked, not relied on for order.
    waiting: Mutex<VecDeque<(u64, Waiter)>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    /// Why the reader stopped, once it has.
    close_reason: Mutex<Option<String>>,
}

/// An encoded request on its way to the writer task: once handed over it
/// is written whole, so a caller that gives up (a timeout dropping its
/// future) never leaves half a frame on the socket.
struct Outgoing {
    id: u64,
    frame: Vec<u8>,
    waiter: Waiter,
}

/// A shared handle on one control connection; clones share it.
#[derive(Clone)]
pub struct AsyncClient {
    shared: Arc<Shared>,
    writes: mpsc::Sender<Outgoing>,
}

/// The events of an [`AsyncClient`]'s subscriptions, in the engine's order.
pub struct EventStream {
    events: mpsc::Receiver<(EngineEvent, Bytes)>,
}

impl EventStream {
    /// The next event; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<(EngineEvent, Bytes)> {
        self.events.recv().await
    }
}

impl AsyncClient {
    /// Connects and agrees on protocol version 2. Must be called within a
    /// tokio runtime: the reader is a task of it.
    pub async fn connect(path: impl AsRef<Path>) -> Result<(AsyncClient, EventStream), ClientError> {
        let (read, write) = UnixStream::connect(path).await?.into_split();
        let shared = Arc::new(Shared {
            waiting: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
        });
        let (events_tx, events) = mpsc::channel(EVENT_STREAM_DEPTH);
        let (writes, writes_rx) = mpsc::channel(WRITE_QUEUE_DEPTH);
        tokio::spawn(read_loop(read, shared.clone(), events_tx));
        tokio::spawn(write_loop(write, shared.clone(), writes_rx));
        let client = AsyncClient { shared, writes };
        let reply = client
            .call(
                Command::Hello {
                    version: PROTOCOL_VERSION,
                },
                &[],
            )
            .await?;
        if reply.version != Some(PROTOCOL_VERSION) {
            return Err(ClientError::Refused(format!(
                "the engine agreed to control protocol version {:?}, not {PROTOCOL_VERSION}",
                reply.version
            )));
        }
        Ok((client, EventStream { events }))
    }

    /// Why the connection is gone (the engine closed it, a bad frame), once
    /// it is; every call then fails with [`ClientError::Closed`].
    pub fn close_reason(&self) -> Option<String> {
        lock(&self.shared.close_reason).clone()
    }

    /// Sends one command and waits for its reply; a refusal is an error.
    pub async fn call(&self, command: Command, payload: &[u8]) -> Result<Reply, ClientError> {
        Ok(self.call_with_payload(command, payload).await?.0)
    }

    async fn call_with_payload(
        &self,
        command: Command,
        payload: &[u8],
    ) -> Result<(Reply, Bytes), ClientError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::with_capacity(64 + payload.len());
        encode(&mut frame, &Request { id, command }, payload)?;
        let (waiter, rx) = oneshot::channel();
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        self.writes
            .send(Outgoing { id, frame, waiter })
            .await
            .map_err(|_| ClientError::Closed)?;
        let (reply, payload) = rx.await.map_err(|_| ClientError::Closed)??;
        match reply.ok {
            true => Ok((reply, payload)),
            false => Err(ClientError::Refused(reply.error.unwrap_or_default())),
        }
    }

    pub async fn create_session(&self, descriptor: SessionDescriptor) -> Result<CreatedSession, ClientError> {
        let reply = self.call(Command::CreateSession(descriptor), &[]).await?;
        Ok(CreatedSession {
            session_id: reply.session_id.unwrap_or_default(),
            local_uri: reply.local_uri.unwrap_or_default(),
        })
    }

    /// Sends a message as `request` describes it; returns the engine's
    /// number for it, named by its `delivered` or `failed` event.
    pub async fn send(&self, request: SendRequest, body: &[u8]) -> Result<u64, ClientError> {
        let reply = self.call(Command::Send(request), body).await?;
        Ok(reply.message.unwrap_or_default())
    }

    pub async fn send_message(
        &self,
        session_id: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<u64, ClientError> {
        self.send(SendRequest::new(session_id, content_type), body).await
    }

    pub async fn close_session(&self, session_id: &str, reason: Option<&str>) -> Result<(), ClientError> {
        let command = Command::CloseSession(CloseRequest {
            session_id: session_id.into(),
            reason: reason.map(Into::into),
        });
        self.call(command, &[]).await.map(drop)
    }

    /// The peer's accept-types and max-size after a re-offer or UPDATE.
    /// Decides a success REPORT the session holds (`hold_reports`): 200
    /// sends it, another status a failure REPORT with `comment`. True when
    /// the REPORT went; false when RFC 4975 7.1.4 forbids the failure
    /// REPORT (the sender's Failure-Report was `no`). Either way the report
    /// is no longer held.
    pub async fn report(
        &self,
        session_id: &str,
        message_id: &str,
        status: u16,
        comment: Option<&str>,
    ) -> Result<bool, ClientError> {
        let command = Command::Report(ReportRequest {
            session_id: session_id.into(),
            message_id: message_id.into(),
            status,
            comment: comment.map(Into::into),
        });
        let reply = self.call(command, &[]).await?;
        Ok(reply.sent.unwrap_or(false))
    }

    pub async fn update_session(&self, update: UpdateRequest) -> Result<(), ClientError> {
        self.call(Command::UpdateSession(update), &[]).await.map(drop)
    }

    /// Many operations in one frame; a result per operation, in order.
    pub async fn batch(&self, ops: Vec<BatchOp>, payload: &[u8]) -> Result<Vec<OpResult>, ClientError> {
        let reply = self.call(Command::Batch { ops }, payload).await?;
        Ok(reply.results.unwrap_or_default())
    }

    pub async fn stats(&self) -> Result<EngineStats, ClientError> {
        Ok(self.call(Command::Stats, &[]).await?.stats.unwrap_or_default())
    }

    /// From now on the events `subscription` names come to the
    /// [`EventStream`] (one subscription per connection).
    pub async fn subscribe(&self, subscription: Subscription) -> Result<(), ClientError> {
        self.call(Command::Subscribe(subscription), &[]).await.map(drop)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes frames in the order they were handed over, several per write
/// when they queue up.
async fn write_loop(mut write: OwnedWriteHalf, shared: Arc<Shared>, mut writes: mpsc::Receiver<Outgoing>) {
    let mut out = Vec::with_capacity(64 * 1024);
    while let Some(first) = writes.recv().await {
        let mut next = Some(first);
        while let Some(Outgoing { id, frame, waiter }) = next.take() {
            lock(&shared.waiting).push_back((id, waiter));
            out.extend_from_slice(&frame);
            if out.len() < 256 * 1024 {
                next = writes.try_recv().ok();
            }
        }
        if write.write_all(&out).await.is_err() || shared.closed.load(Ordering::Acquire) {
            // Nothing more will be answered; the reader fails the waiters
            // it finds, these are the ones it may have missed.
            shared.closed.store(true, Ordering::Release);
            let waiting: Vec<_> = lock(&shared.waiting).drain(..).collect();
            for (_, waiter) in waiting {
                let _ = waiter.send(Err(ClientError::Closed));
            }
            return;
        }
        out.clear();
    }
}

async fn read_loop(mut read: OwnedReadHalf, shared: Arc<Shared>, events: mpsc::Sender<(EngineEvent, Bytes)>) {
    let mut frames = FrameReader::new(PAYLOAD_BYTES_MAX);
    let mut queued = VecDeque::new();
    let error = 'read: loop {
        loop {
            let frame = match frames.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => break 'read ClientError::Frame(error),
            };
            match decode(frame, &mut queued) {
                Ok(Some(Incoming::Reply(reply, payload))) => {
                    let waiter = lock(&shared.waiting).pop_front();
                    match waiter {
                        Some((id, waiter)) if id == reply.id => {
                            let _ = waiter.send(Ok((reply, payload)));
                        }
                        Some((expected, waiter)) => {
                            let got = reply.id;
                            let _ = waiter.send(Err(ClientError::OutOfOrder { expected, got }));
                            break 'read ClientError::OutOfOrder { expected, got };
                        }
                        None => {
                            break 'read ClientError::OutOfOrder {
                                expected: 0,
                                got: reply.id,
                            }
                        }
                    }
                }
                Ok(Some(Incoming::Event(event, payload))) => queued.push_back((event, payload)),
                Ok(None) => {}
                Err(error) => break 'read error,
            }
            while let Some(event) = queued.pop_front() {
                // A stream nobody reads any more: events are let go.
                let _ = events.send(event).await;
            }
        }
        let buffer = frames.buffer();
        buffer.reserve(64 * 1024);
        match read.read_buf(buffer).await {
            Ok(0) => break ClientError::Closed,
            Ok(_) => {}
            Err(error) => break ClientError::Io(error),
        }
    };
    *lock(&shared.close_reason) = Some(error.to_string());
    shared.closed.store(true, Ordering::Release);
    let waiting: Vec<_> = lock(&shared.waiting).drain(..).collect();
    for (_, waiter) in waiting {
        let _ = waiter.send(Err(ClientError::Closed));
    }
}
