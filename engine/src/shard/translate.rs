//! From the core's events to the shell's actions: a connection's
//! [`Event`]s become spool writes and commits, file removals, session
//! bookkeeping and control events.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{spool, SessionEntry, Shard, ShardRef};
use crate::control::{EngineEvent, EventKind};
use crate::{Event, MessageId, ReceivedBody, SessionKey};

impl Shard {
    pub(super) fn adopt(&mut self, ci: usize, key: SessionKey, session_id: String, tag: Option<Arc<str>>) {
        let session_id: Rc<str> = session_id.into();
        let s = self.sessions.insert(SessionEntry {
            session_id: session_id.clone(),
            conn: ci,
            key,
            tag,
        });
        self.by_session_id.insert(session_id, s);
        let entry = &mut self.conns[ci];
        entry.sessions.insert(key, s);
        entry.idle_since = None;
    }

    /// Acts on everything a connection reported.
    pub(super) fn pump(&mut self, this: &ShardRef, ci: usize) {
        while let Some(event) = self.conns[ci].conn.poll_event() {
            self.on_event(this, ci, event);
        }
    }

    pub(super) fn session_id(&self, ci: usize, key: SessionKey) -> Option<String> {
        let s = self.conns[ci].sessions.get(key)?;
        Some(self.sessions[s].session_id.to_string())
    }

    pub(super) fn on_event(&mut self, this: &ShardRef, ci: usize, event: Event) {
        match event {
            Event::SessionClaimed { session } => {
                if let Some(session_id) = self.conns[ci].conn.session_id(session) {
                    let session_id = session_id.to_owned();
                    let tag = self.directory.tag(&session_id);
                    self.adopt(ci, session, session_id, tag);
                }
            }
            Event::ClaimRefused { session_id, reason } => {
                let tag = self.directory.tag(&session_id);
                self.directory.remove(&session_id);
                if self.wants(EventKind::SessionClosed) {
                    let reason = format!(
                        "the peer's connection could not take the session: {reason} (sessions-per-connection-max)"
                    );
                    self.emit_tagged(EngineEvent::SessionClosed { session_id, reason }, tag);
                }
            }
            Event::SessionReady { session } => {
                if !self.wants(EventKind::SessionReady) {
                    return;
                }
                if let Some(session_id) = self.session_id(ci, session) {
                    self.emit(EngineEvent::SessionReady { session_id }, Bytes::new());
                }
            }
            Event::MessageReceived {
                session,
                message_id,
                content_type,
                body,
                report_held,
            } => match body {
                ReceivedBody::Inline(body) => {
                    if !self.wants(EventKind::MessageReceived) {
                        self.unclaimed(|shard| shard.session_id(ci, session));
                        return;
                    }
                    let Some(session_id) = self.session_id(ci, session) else {
                        return;
                    };
                    let event = EngineEvent::MessageReceived {
                        session_id,
                        message_id: message_id.as_str().into(),
                        content_type,
                        size: body.len() as u64,
                        path: None,
                        report_held,
                    };
                    if !self.emit(event, body) {
                        self.unclaimed(|shard| shard.session_id(ci, session));
                    }
                }
                ReceivedBody::Streamed { len } => {
                    if let Some(spool) = self.conns[ci].spools.remove(&(session, message_id)) {
                        spool.push(spool::SpoolOp::Finish {
                            content_type,
                            size: len,
                            report_held,
                        });
                    }
                }
            },
            Event::Data {
                session,
                message_id,
                offset,
                data,
            } => {
                let Some(spool) = self.spool_for(this, ci, session, message_id) else {
                    return;
                };
                let entry = &mut self.conns[ci];
                entry.spool_backlog_bytes += data.len() as u64;
                spool.push(spool::SpoolOp::Write { offset, data });
            }
            Event::Commit {
                session,
                message_id,
                ticket,
            } => match self.conns[ci].spools.get(&(session, message_id)) {
                Some(spool) => spool.push(spool::SpoolOp::Commit { ticket }),
                None => self.conns[ci].conn.committed(ticket),
            },
            Event::MessageAborted {
                session,
                message_id,
                reason,
            } => {
                if let Some(spool) = self.conns[ci].spools.remove(&(session, message_id)) {
                    spool.push(spool::SpoolOp::Abort);
                }
                if !self.wants(EventKind::MessageAborted) {
                    return;
                }
                if let Some(session_id) = self.session_id(ci, session) {
                    let event = EngineEvent::MessageAborted {
                        session_id,
                        message_id: message_id.as_str().into(),
                        reason,
                    };
                    self.emit(event, Bytes::new());
                }
            }
            Event::Delivered {
                message, message_id, ..
            } => {
                let Some(info) = self.conns[ci].messages.remove(&message) else {
                    return;
                };
                if let Some(path) = info.delete_after {
                    // Removed before `delivered` is emitted, in this turn: the
                    // event promises the file is gone (a voicemail platform
                    // may reuse the name at once), and `session_closed` must
                    // still come after it. An unlink is one metadata
                    // operation per delivered file, not per chunk.
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "could not delete a sent file");
                    }
                }
                if !self.wants(EventKind::Delivered) {
                    return;
                }
                let event = EngineEvent::Delivered {
                    session_id: self.sessions[info.session].session_id.to_string(),
                    message: info.number,
                    message_id: message_id.as_str().into(),
                };
                self.emit(event, Bytes::new());
            }
            Event::Failed {
                message,
                message_id,
                status,
                reason,
                bytes_acked,
                ..
            } => {
                let Some(info) = self.conns[ci].messages.remove(&message) else {
                    return;
                };
                if !self.wants(EventKind::Failed) {
                    return;
                }
                let event = EngineEvent::Failed {
                    session_id: self.sessions[info.session].session_id.to_string(),
                    message: info.number,
                    message_id: message_id.as_str().into(),
                    status,
                    reason,
                    bytes_acked,
                };
                self.emit(event, Bytes::new());
            }
            Event::SendReady { .. } | Event::ChunkAnswered { .. } => {}
            Event::SessionClosed { session, reason } => {
                let Some(s) = self.conns[ci].sessions.get(session) else {
                    return;
                };
                // Emitted while the session is still known: a subscriber of
                // its tag is told too.
                if self.wants(EventKind::SessionClosed) {
                    let event = EngineEvent::SessionClosed {
                        session_id: self.sessions[s].session_id.to_string(),
                        reason,
                    };
                    self.emit(event, Bytes::new());
                }
                self.conns[ci].sessions.remove(session);
                let removed = self.sessions.remove(s);
                self.by_session_id.remove(&removed.session_id);
                self.directory.remove(&removed.session_id);
                let entry = &mut self.conns[ci];
                if entry.sessions.is_empty() {
                    entry.idle_since = Some(Instant::now());
                    entry.writer.notify_one();
                }
            }
            Event::ConnectionClosed { reason } => {
                // The writer flushes what is left and removes the entry.
                tracing::debug!(shard = self.index, conn = ci, %reason, "connection closed");
                let entry = &mut self.conns[ci];
                entry.writer.notify_one();
                entry.reader.notify_one();
                if entry.conn.stats().frame_timeouts > 0 {
                    if let Some(suppressed) = self.logs.frame_timeout.allow(Instant::now()) {
                        let timeout = self.config.connection.frame_timeout;
                        tracing::warn!(
                            shard = self.index,
                            conn = ci,
                            ?timeout,
                            suppressed,
                            "closed a connection holding half a frame (frame-timeout)"
                        );
                    }
                }
            }
        }
    }

    pub(super) fn spool_for(
        &mut self,
        this: &ShardRef,
        ci: usize,
        session: SessionKey,
        message_id: MessageId,
    ) -> Option<Rc<spool::Spool>> {
        if let Some(spool) = self.conns[ci].spools.get(&(session, message_id)) {
            return Some(spool.clone());
        }
        let session_id = self.session_id(ci, session)?;
        let entry = &mut self.conns[ci];
        let spool = Rc::new(spool::Spool::new(
            &self.config.spool_dir,
            session_id,
            message_id.as_str().into(),
        ));
        entry.spools.insert((session, message_id), spool.clone());
        let task = spool::SpoolTask {
            shard: this.clone(),
            conn: ci,
            serial: entry.serial,
            spool: spool.clone(),
            durable: self.config.durable,
            progress_interval: self.config.progress_interval,
        };
        tokio_uring::spawn(task.run());
        Some(spool)
    }
}
