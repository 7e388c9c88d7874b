//! Sending a file: a reader task reads it chunk by chunk with io_uring into a
//! small read-ahead queue, and the connection takes chunks from the queue
//! through [`ContentSource`], so the whole file is never in memory.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use super::ShardRef;
use crate::control::{EngineEvent, EventKind, TransferDirection};
use crate::{ContentSource, SessionKey, SourceChunk};

/// Octets read per io_uring read.
const READ_BYTES: usize = 256 * 1024;
/// Read-ahead per file: enough to keep a connection's window full.
const READ_AHEAD_BYTES: usize = 4 * READ_BYTES;

#[derive(Default)]
struct ReadAhead {
    chunks: VecDeque<Bytes>,
    queued_bytes: usize,
    done: bool,
    error: Option<String>,
    /// The connection dropped the source (the message ended).
    abandoned: bool,
}

struct Shared {
    state: RefCell<ReadAhead>,
    /// Wakes the reader when the connection took data.
    room: Notify,
}

/// The connection's end.
pub(super) struct FileSource {
    shared: Rc<Shared>,
    size: u64,
}

/// The reader task's end.
pub(super) struct FileReader {
    shared: Rc<Shared>,
    path: PathBuf,
    size: u64,
}

pub(super) struct Progress {
    pub session_id: String,
    pub message: u64,
    pub interval: Duration,
}

impl FileSource {
    pub fn new(path: PathBuf, size: u64) -> (FileSource, FileReader) {
        let shared = Rc::new(Shared {
            state: RefCell::new(ReadAhead::default()),
            room: Notify::new(),
        });
        let source = FileSource {
            shared: shared.clone(),
            size,
        };
        (source, FileReader { shared, path, size })
    }
}

impl ContentSource for FileSource {
    fn size(&self) -> Option<u64> {
        Some(self.size)
    }

    fn next_chunk(&mut self, max: usize) -> SourceChunk {
        let mut state = self.shared.state.borrow_mut();
        if let Some(mut chunk) = state.chunks.pop_front() {
            if chunk.len() > max {
                let rest = chunk.split_off(max);
                state.chunks.push_front(rest);
            }
            state.queued_bytes -= chunk.len();
            self.shared.room.notify_one();
            return SourceChunk::Data(chunk);
        }
        if let Some(error) = &state.error {
            return SourceChunk::Failed(error.clone());
        }
        match state.done {
            true => SourceChunk::End,
            false => SourceChunk::Pending,
        }
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        self.shared.state.borrow_mut().abandoned = true;
        self.shared.room.notify_one();
    }
}

impl FileReader {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn run(self, shard: ShardRef, conn: usize, serial: u64, key: SessionKey, progress: Progress) {
        let result = self.read(&shard, conn, serial, key, &progress).await;
        let mut state = self.shared.state.borrow_mut();
        match result {
            Ok(()) => state.done = true,
            Err(error) => state.error = Some(error),
        }
        drop(state);
        wake(&shard, conn, serial, key);
    }

    async fn read(
        &self,
        shard: &ShardRef,
        conn: usize,
        serial: u64,
        key: SessionKey,
        progress: &Progress,
    ) -> Result<(), String> {
        let file = tokio_uring::fs::File::open(&self.path)
            .await
            .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
        let mut position = 0u64;
        let mut last_progress = Instant::now();
        while position < self.size {
            loop {
                let (abandoned, full) = {
                    let state = self.shared.state.borrow();
                    (state.abandoned, state.queued_bytes >= READ_AHEAD_BYTES)
                };
                if abandoned {
                    return Ok(());
                }
                if !full {
                    break;
                }
                self.shared.room.notified().await;
            }
            let want = (self.size - position).min(READ_BYTES as u64) as usize;
            let buffer = BytesMut::with_capacity(want);
            let (result, buffer) = file.read_at(buffer, position).await;
            let n = result.map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
            if n == 0 {
                return Err(format!(
                    "{} ended at {position} of {} octets (it changed while being sent)",
                    self.path.display(),
                    self.size
                ));
            }
            position += n as u64;
            {
                let mut state = self.shared.state.borrow_mut();
                state.queued_bytes += n;
                state.chunks.push_back(buffer.freeze());
            }
            wake(shard, conn, serial, key);
            let now = Instant::now();
            if now.duration_since(last_progress) >= progress.interval
                && shard.borrow().wants(EventKind::Progress)
            {
                last_progress = now;
                let event = EngineEvent::Progress {
                    session_id: progress.session_id.clone(),
                    direction: TransferDirection::Outgoing,
                    message: Some(progress.message),
                    message_id: None,
                    bytes: position - self.shared.state.borrow().queued_bytes as u64,
                    total: Some(self.size),
                };
                let mut shard = shard.borrow_mut();
                let _ = shard.emit(event, Bytes::new());
                shard.flush_turn();
            }
        }
        let _ = file.close().await;
        Ok(())
    }
}

/// Tells the connection its source has data (or has ended).
fn wake(shard: &ShardRef, conn: usize, serial: u64, key: SessionKey) {
    let mut shard = shard.borrow_mut();
    if let Some(entry) = shard.conn_mut(conn, serial) {
        entry.conn.wake(key);
        entry.writer.notify_one();
    }
}
