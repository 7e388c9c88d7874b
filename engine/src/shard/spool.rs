//! Where large received bodies go: written chunk by chunk (io_uring) to a
//! temporary file in the spool directory, renamed when the message is
//! complete, removed when it is aborted (ARCHITECTURE "Receiving: nothing
//! lost"). A chunk's 200 waits until its octets are written, and with
//! `--durable` until they are fsynced.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::spool_name::{part_name, spool_name};
use super::ShardRef;
use crate::control::{EngineEvent, EventKind, TransferDirection};
use crate::CommitTicket;

/// Octets written (and fsynced) as one group before their chunks are
/// committed.
const SPOOL_BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Appends a write to the last run when it continues it, else starts a run.
fn push_write(runs: &mut Vec<(u64, Vec<Bytes>)>, offset: u64, data: Bytes) {
    if let Some((start, bufs)) = runs.last_mut() {
        let end = *start + bufs.iter().map(|b| b.len() as u64).sum::<u64>();
        // IOV_MAX bounds one writev.
        if end == offset && bufs.len() < 1024 {
            bufs.push(data);
            return;
        }
    }
    runs.push((offset, vec![data]));
}

/// What the connection asked of the spool, in the order it asked.
pub(super) enum SpoolOp {
    Write {
        offset: u64,
        data: Bytes,
    },
    Commit {
        ticket: CommitTicket,
    },
    /// Every chunk is committed: the message is complete.
    Finish {
        content_type: String,
        size: u64,
        /// The session holds its success REPORT for the application.
        report_held: bool,
    },
    Abort,
}

pub(super) struct Spool {
    ops: RefCell<VecDeque<SpoolOp>>,
    wake: Notify,
    session_id: String,
    message_id: String,
    temp_path: PathBuf,
    final_path: PathBuf,
}

impl Spool {
    pub fn new(dir: &Path, session_id: String, message_id: String) -> Spool {
        Spool {
            ops: RefCell::new(VecDeque::new()),
            wake: Notify::new(),
            temp_path: dir.join(part_name(&session_id, &message_id)),
            final_path: dir.join(spool_name(&session_id, &message_id)),
            session_id,
            message_id,
        }
    }

    pub fn push(&self, op: SpoolOp) {
        self.ops.borrow_mut().push_back(op);
        self.wake.notify_one();
    }

    async fn next(&self) -> SpoolOp {
        loop {
            if let Some(op) = self.ops.borrow_mut().pop_front() {
                return op;
            }
            self.wake.notified().await;
        }
    }
}

pub(super) struct SpoolTask {
    pub shard: ShardRef,
    pub conn: usize,
    pub serial: u64,
    pub spool: Rc<Spool>,
    pub durable: bool,
    pub progress_interval: Duration,
}

impl SpoolTask {
    pub async fn run(self) {
        let file = tokio_uring::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.spool.temp_path)
            .await;
        let mut failure = match &file {
            Ok(_) => None,
            Err(error) => Some(self.failed(
                &format!("cannot create spool file {}", self.spool.temp_path.display()),
                error,
            )),
        };
        if failure.is_none() {
            // With --durable the file's name must survive a crash as its
            // octets do: the directory entry is synced before any commit.
            if let Err(error) = self.sync_dir().await {
                failure = Some(self.failed("spool directory fsync failed", &error));
            }
        }
        let mut written: u64 = 0;
        // Written since the last fsync: a commit whose octets an earlier
        // group already synced needs none.
        let mut unsynced = false;
        let mut last_progress = Instant::now();
        loop {
            match self.spool.next().await {
                SpoolOp::Write { offset, data } => {
                    // Group commit: take the writes and commits queued behind
                    // this write, write each contiguous run with one writev,
                    // fsync once, then commit them all. Under load the queue
                    // grows while a write is in flight, and the batches with it.
                    let mut runs: Vec<(u64, Vec<Bytes>)> = Vec::new();
                    let mut tickets = Vec::new();
                    let mut batch_bytes = data.len();
                    push_write(&mut runs, offset, data);
                    while batch_bytes < SPOOL_BATCH_BYTES_MAX {
                        let mut ops = self.spool.ops.borrow_mut();
                        match ops.front() {
                            Some(SpoolOp::Write { .. }) => {
                                if let Some(SpoolOp::Write { offset, data }) = ops.pop_front() {
                                    batch_bytes += data.len();
                                    push_write(&mut runs, offset, data);
                                }
                            }
                            Some(SpoolOp::Commit { .. }) => {
                                if let Some(SpoolOp::Commit { ticket }) = ops.pop_front() {
                                    tickets.push(ticket);
                                }
                            }
                            _ => break,
                        }
                    }
                    for (offset, bufs) in runs {
                        if let (None, Ok(file)) = (&failure, &file) {
                            let (result, _) = file.writev_at_all(bufs, Some(offset)).await;
                            if let Err(error) = result {
                                failure = Some(self.failed("spool write failed", &error));
                            }
                        }
                    }
                    written += batch_bytes as u64;
                    unsynced = true;
                    self.shrink_backlog(batch_bytes as u64);
                    if !tickets.is_empty() {
                        self.sync(&file, &mut failure, &mut unsynced).await;
                    }
                    let now = Instant::now();
                    let progress = now.duration_since(last_progress) >= self.progress_interval;
                    if progress {
                        last_progress = now;
                    }
                    self.commit(&tickets, failure.as_deref(), progress.then_some(written));
                }
                SpoolOp::Commit { ticket } => {
                    // A chunk whose octets were all written in an earlier batch.
                    self.sync(&file, &mut failure, &mut unsynced).await;
                    self.commit(&[ticket], failure.as_deref(), None);
                }
                SpoolOp::Finish {
                    content_type,
                    size,
                    report_held,
                } => {
                    let file = file.ok();
                    let result = match file {
                        Some(file) => match file.close().await {
                            Ok(()) => {
                                match tokio_uring::fs::rename(&self.spool.temp_path, &self.spool.final_path)
                                    .await
                                {
                                    Ok(()) => self.sync_dir().await,
                                    Err(error) => Err(error),
                                }
                            }
                            Err(error) => Err(error),
                        },
                        None => Err(std::io::Error::other("no spool file")),
                    };
                    if let Err(error) = &result {
                        self.failed("cannot complete the spool file", error);
                    }
                    let mut shard = self.shard.borrow_mut();
                    if result.is_err() && report_held {
                        // No application will see the message to decide its
                        // REPORT: it was not stored, which the sender hears
                        // as the 413 a failed spool write gets.
                        shard.answer_held(&self.spool.session_id, &self.spool.message_id, 413);
                    }
                    let wanted = match result {
                        Ok(()) => EventKind::MessageReceived,
                        Err(_) => EventKind::MessageAborted,
                    };
                    if !shard.wants(wanted) {
                        // The file stays in the spool, but no application
                        // was told: count it, so an operator sees that one is
                        // missing.
                        if result.is_ok() {
                            shard.unclaimed(|_| Some(self.spool.session_id.clone()));
                        }
                        return;
                    }
                    match result {
                        Ok(()) => {
                            let event = EngineEvent::MessageReceived {
                                session_id: self.spool.session_id.clone(),
                                message_id: self.spool.message_id.clone(),
                                content_type,
                                size,
                                path: Some(self.spool.final_path.display().to_string()),
                                report_held,
                            };
                            if !shard.emit(event, Bytes::new()) {
                                shard.unclaimed(|_| Some(self.spool.session_id.clone()));
                            }
                        }
                        Err(error) => {
                            let event = EngineEvent::MessageAborted {
                                session_id: self.spool.session_id.clone(),
                                message_id: self.spool.message_id.clone(),
                                reason: format!("could not complete the spool file: {error}"),
                            };
                            shard.emit(event, Bytes::new());
                        }
                    }
                    shard.flush_turn();
                    return;
                }
                SpoolOp::Abort => {
                    drop(file);
                    if let Err(error) = tokio_uring::fs::remove_file(&self.spool.temp_path).await {
                        tracing::warn!(path = %self.spool.temp_path.display(), %error, "could not remove an aborted spool file");
                    }
                    // Writes queued behind the abort were counted in the backlog.
                    let rest: u64 = self
                        .spool
                        .ops
                        .borrow_mut()
                        .drain(..)
                        .map(|op| match op {
                            SpoolOp::Write { data, .. } => data.len() as u64,
                            _ => 0,
                        })
                        .sum();
                    self.shrink_backlog(rest);
                    return;
                }
            }
        }
    }

    /// `--durable`: fsync the spool directory, after a file was created
    /// in it or renamed (a file's own fsync does not make its name durable).
    async fn sync_dir(&self) -> std::io::Result<()> {
        if !self.durable {
            return Ok(());
        }
        let Some(dir) = self.spool.temp_path.parent() else {
            return Ok(());
        };
        let dir = tokio_uring::fs::File::open(dir).await?;
        let synced = dir.sync_all().await;
        let closed = dir.close().await;
        synced.and(closed)
    }

    /// Counts a spool failure (ENOSPC apart, the operator's first guess)
    /// and logs it within the shard's log rate; the text fails the chunks.
    fn failed(&self, what: &str, error: &std::io::Error) -> String {
        let reason = format!("{what}: {error}");
        let mut shard = self.shard.borrow_mut();
        shard.totals.spool_errors += 1;
        if error.raw_os_error() == Some(libc::ENOSPC) {
            shard.totals.spool_enospc += 1;
        }
        let now = Instant::now();
        if let Some(suppressed) = shard.logs.spool.allow(now) {
            tracing::error!(shard = shard.index, session_id = %self.spool.session_id, %reason, suppressed, "spool failure: chunks get 413");
        }
        reason
    }

    /// `--durable`: fsync what was written since the last fsync.
    async fn sync(
        &self,
        file: &std::io::Result<tokio_uring::fs::File>,
        failure: &mut Option<String>,
        unsynced: &mut bool,
    ) {
        if !self.durable || !*unsynced || failure.is_some() {
            return;
        }
        if let Ok(file) = file {
            if let Err(error) = file.sync_data().await {
                *failure = Some(self.failed("spool fsync failed", &error));
            }
        }
        *unsynced = false;
    }

    fn shrink_backlog(&self, len: u64) {
        let mut shard = self.shard.borrow_mut();
        if let Some(entry) = shard.conn_mut(self.conn, self.serial) {
            entry.spool_backlog_bytes = entry.spool_backlog_bytes.saturating_sub(len);
            entry.reader.notify_one();
        }
    }

    fn commit(&self, tickets: &[CommitTicket], failure: Option<&str>, progress: Option<u64>) {
        let this = &self.shard;
        let mut shard = this.borrow_mut();
        let Some(entry) = shard.conn_mut(self.conn, self.serial) else {
            return;
        };
        for &ticket in tickets {
            match failure {
                // RFC 4975 10.5: 413 asks the sender to stop sending the message.
                Some(reason) => entry.conn.commit_failed(ticket, 413, reason),
                None => entry.conn.committed(ticket),
            }
        }
        entry.writer.notify_one();
        if let Some(bytes) = progress.filter(|_| shard.wants(EventKind::Progress)) {
            let event = EngineEvent::Progress {
                session_id: self.spool.session_id.clone(),
                direction: TransferDirection::Incoming,
                message: None,
                message_id: Some(self.spool.message_id.clone()),
                bytes,
                total: None,
            };
            shard.emit(event, Bytes::new());
        }
        shard.pump(this, self.conn);
        shard.flush_turn();
    }
}
