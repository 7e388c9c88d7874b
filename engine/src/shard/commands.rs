//! What the control thread asks of a shard, and how the shard carries it
//! out: creating active sessions, sending, closing, deciding held reports,
//! counting, draining.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::TlsPeer;
use super::{file, OutInfo, Shard, ShardRef};
use crate::control::ShardStats;
use crate::tls::{Fingerprint, TlsConfigs};
use crate::{AddSessionError, OutgoingMessage, ReportError, ReportSent, SendError, SessionConfig};

/// What the control thread asks of a shard.
pub(crate) enum ShardCommand {
    /// An active session: connect to `peer` (or reuse a connection to it).
    Create {
        session_id: String,
        config: Box<SessionConfig>,
        peer: SocketAddr,
        tag: Option<Arc<str>>,
        /// msrps: the peer's certificate fingerprint from its SDP.
        fingerprint: Option<Fingerprint>,
        reply: oneshot::Sender<Result<(), ShardError>>,
    },
    Send {
        session_id: String,
        message: OutgoingSpec,
        reply: oneshot::Sender<Result<u64, ShardError>>,
    },
    /// The sends of a `batch` that go to this shard, in order; a result
    /// each.
    SendMany {
        sends: Vec<(String, OutgoingSpec)>,
        reply: oneshot::Sender<Vec<Result<u64, ShardError>>>,
    },
    Close {
        session_id: String,
        reason: String,
        reply: oneshot::Sender<Result<(), ShardError>>,
    },
    /// The application's decision on a held success REPORT (RFC 4975
    /// 7.1.2): `status` 200 or a failure code.
    Report {
        session_id: String,
        message_id: String,
        status: u16,
        comment: Option<String>,
        reply: oneshot::Sender<Result<ReportSent, ShardError>>,
    },
    /// The peer's accept-types and max-size, from a new offer/answer.
    UpdatePeer {
        session_id: String,
        accept_types: Vec<String>,
        max_size: Option<u64>,
        reply: oneshot::Sender<Result<(), ShardError>>,
    },
    Stats {
        reply: oneshot::Sender<ShardStats>,
    },
    /// SIGTERM: stop accepting, let transfers finish until `deadline`, then
    /// fail the rest and stop.
    /// New TLS configurations for new handshakes (SIGHUP); connections
    /// already up keep theirs.
    ReloadTls(Box<TlsConfigs>),
    Drain {
        deadline: Instant,
    },
}

/// A message as the control thread hands it over.
pub(crate) struct OutgoingSpec {
    pub content_type: String,
    pub body: Bytes,
    /// A file to send instead of `body`, with its size when the command came.
    pub file: Option<(PathBuf, u64)>,
    pub delete_after: bool,
    pub success_report: Option<crate::SuccessReport>,
    pub failure_report: Option<crate::FailureReport>,
}

pub(super) fn handle_command(this: &ShardRef, command: ShardCommand) {
    let mut shard = this.borrow_mut();
    match command {
        ShardCommand::Create {
            session_id,
            config,
            peer,
            tag,
            fingerprint,
            reply,
        } => {
            let result = shard.create_active(this, session_id, *config, (peer, fingerprint), tag);
            let _ = reply.send(result);
        }
        ShardCommand::SendMany { sends, reply } => {
            // Each connection's writer is woken once for the batch.
            let mut woken: Vec<usize> = Vec::new();
            let results = sends
                .into_iter()
                .map(|(session_id, message)| {
                    let (number, ci) = shard.queue_message(this, &session_id, message)?;
                    if !woken.contains(&ci) {
                        woken.push(ci);
                    }
                    Ok(number)
                })
                .collect();
            for ci in woken {
                shard.conns[ci].writer.notify_one();
            }
            let _ = reply.send(results);
        }
        ShardCommand::Send {
            session_id,
            message,
            reply,
        } => {
            let result = shard.send(this, &session_id, message);
            let _ = reply.send(result);
        }
        ShardCommand::Close {
            session_id,
            reason,
            reply,
        } => {
            let result = match shard.by_session_id.get(session_id.as_str()).copied() {
                Some(s) => {
                    let (ci, key) = (shard.sessions[s].conn, shard.sessions[s].key);
                    // RFC 4975 7.1: a message of it half sent ends with `#`.
                    shard.conns[ci]
                        .conn
                        .close_session_at(key, &reason, Instant::now());
                    // Closing answers what the session still owed (481).
                    shard.conns[ci].writer.notify_one();
                    shard.pump(this, ci);
                    Ok(())
                }
                None => Err(ShardError::NoSession {
                    session_id,
                    shard: shard.index,
                }),
            };
            let _ = reply.send(result);
        }
        ShardCommand::Report {
            session_id,
            message_id,
            status,
            comment,
            reply,
        } => {
            let result = match shard.by_session_id.get(session_id.as_str()).copied() {
                Some(s) => {
                    let (ci, key) = (shard.sessions[s].conn, shard.sessions[s].key);
                    let reported = shard.conns[ci]
                        .conn
                        .report(key, &message_id, status, comment.as_deref());
                    if reported == Ok(ReportSent::Sent) {
                        shard.conns[ci].writer.notify_one();
                    }
                    reported.map_err(|error| ShardError::report(error, session_id, message_id))
                }
                None => Err(ShardError::NoHeldReport {
                    session_id,
                    message_id,
                }),
            };
            let _ = reply.send(result);
        }
        ShardCommand::UpdatePeer {
            session_id,
            accept_types,
            max_size,
            reply,
        } => {
            let updated = shard
                .by_session_id
                .get(session_id.as_str())
                .copied()
                .is_some_and(|s| {
                    let (ci, key) = (shard.sessions[s].conn, shard.sessions[s].key);
                    shard.conns[ci]
                        .conn
                        .update_peer_limits(key, accept_types, max_size)
                });
            let result = match updated {
                true => Ok(()),
                false => Err(ShardError::NoSession {
                    session_id,
                    shard: shard.index,
                }),
            };
            let _ = reply.send(result);
        }
        ShardCommand::Stats { reply } => {
            let _ = reply.send(shard.stats());
        }
        ShardCommand::ReloadTls(tls) => shard.tls = Some(*tls),
        ShardCommand::Drain { .. } => unreachable!("handled by the command loop"),
    }
    shard.flush_turn();
}

/// Why a shard refused a command: what the application is told.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShardError {
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error("no session {session_id} on shard {shard}")]
    NoSession { session_id: String, shard: usize },
    #[error("shard {shard} already has its maximum of {max} connections (connections-max)")]
    ConnectionsMax { shard: usize, max: usize },
    #[error("an msrps: peer is reached over TLS, and this engine has no TLS configured (--tls-listen, --tls-cert, --tls-key)")]
    NoTls,
    #[error(transparent)]
    AddSession(#[from] AddSessionError),
    #[error("the session's send queue is full (send-queue bounds); wait for delivered events and retry")]
    SendQueueFull,
    /// The message was refused as it is (direction, type, size): the text of
    /// the core's [`SendError`], which keeps the message and cannot cross
    /// threads.
    #[error("{0}")]
    SendRefused(String),
    #[error("the shard has stopped")]
    Stopped,
    #[error("no held report for message {message_id} in session {session_id}")]
    NoHeldReport { session_id: String, message_id: String },
    /// The report command's status or comment cannot be written; the
    /// report stays held.
    #[error("{0}; the report is still held")]
    ReportRefused(ReportError),
}

impl ShardError {
    fn report(error: ReportError, session_id: String, message_id: String) -> ShardError {
        match error {
            ReportError::UnknownSession | ReportError::NotHeld(_) => ShardError::NoHeldReport {
                session_id,
                message_id,
            },
            other => ShardError::ReportRefused(other),
        }
    }
}

impl From<SendError> for ShardError {
    fn from(error: SendError) -> ShardError {
        match error {
            SendError::Full(_) => ShardError::SendQueueFull,
            other => ShardError::SendRefused(other.to_string()),
        }
    }
}

impl Shard {
    pub(super) fn create_active(
        &mut self,
        this: &ShardRef,
        session_id: String,
        config: SessionConfig,
        (peer, fingerprint): (SocketAddr, Option<Fingerprint>),
        tag: Option<Arc<str>>,
    ) -> Result<(), ShardError> {
        if self.draining.is_some() {
            return Err(ShardError::ShuttingDown);
        }
        // RFC 4975 14: an msrps peer is reached over TLS, its certificate
        // checked against the host of its URI.
        let first = &config.remote_path[0];
        let tls = first.is_secure().then(|| TlsPeer {
            name: first.host().to_owned(),
            fingerprint,
        });
        let ci = self.conn_towards(this, peer, tls)?;
        let key = self.conns[ci].conn.add_session(config, Instant::now())?;
        self.adopt(ci, key, session_id, tag);
        self.pump(this, ci);
        self.conns[ci].writer.notify_one();
        Ok(())
    }

    pub(super) fn send(
        &mut self,
        this: &ShardRef,
        session_id: &str,
        spec: OutgoingSpec,
    ) -> Result<u64, ShardError> {
        let (number, ci) = self.queue_message(this, session_id, spec)?;
        self.conns[ci].writer.notify_one();
        Ok(number)
    }

    /// Answers a held report that no application can decide (its message
    /// could not be stored) with a failure REPORT `status`.
    pub(super) fn answer_held(&mut self, session_id: &str, message_id: &str, status: u16) {
        let Some(&s) = self.by_session_id.get(session_id) else {
            return;
        };
        let (ci, key) = (self.sessions[s].conn, self.sessions[s].key);
        let comment = "the message could not be stored";
        if self.conns[ci].conn.report(key, message_id, status, Some(comment)) == Ok(ReportSent::Sent) {
            self.conns[ci].writer.notify_one();
        }
    }

    /// Hands a message to its session's connection; the caller wakes the
    /// connection's writer. Returns the message's number and the connection.
    fn queue_message(
        &mut self,
        this: &ShardRef,
        session_id: &str,
        spec: OutgoingSpec,
    ) -> Result<(u64, usize), ShardError> {
        let Some(&s) = self.by_session_id.get(session_id) else {
            return Err(ShardError::NoSession {
                session_id: session_id.into(),
                shard: self.index,
            });
        };
        let (ci, key) = (self.sessions[s].conn, self.sessions[s].key);
        let content_type = spec.content_type;
        let (mut message, reader) = match spec.file {
            None => (OutgoingMessage::new(content_type, spec.body), None),
            Some((path, size)) => {
                let (source, reader) = file::FileSource::new(path, size);
                (
                    OutgoingMessage::from_source(content_type, Box::new(source)),
                    Some(reader),
                )
            }
        };
        message.success_report = spec.success_report;
        message.failure_report = spec.failure_report;
        let entry = &mut self.conns[ci];
        let reference = entry.conn.send(key, message)?;
        self.next_message += 1;
        let number = ((self.index as u64) << 48) | self.next_message;
        let delete_after = match (&reader, spec.delete_after) {
            (Some(r), true) => Some(r.path().to_path_buf()),
            _ => None,
        };
        entry.messages.insert(
            reference,
            OutInfo {
                number,
                session: s,
                delete_after,
            },
        );
        if let Some(reader) = reader {
            let serial = entry.serial;
            let progress = file::Progress {
                session_id: session_id.into(),
                message: number,
                interval: self.config.progress_interval,
            };
            tokio_uring::spawn(reader.run(this.clone(), ci, serial, key, progress));
        }
        Ok((number, ci))
    }
}
