//! An in-memory byte pipe between two sans-IO connections, like a socket
//! with a send buffer: it takes what a connection transmits while it has room
//! and delivers in whatever splits the test chooses.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Buf, Bytes};
use msrp_engine::Connection;

pub struct Pipe {
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    /// The sender is polled only while fewer octets than this wait.
    pub capacity_bytes: usize,
    /// Octets that ever went in.
    pub total_bytes: u64,
    batch: Vec<Bytes>,
}

impl Pipe {
    pub fn new(capacity_bytes: usize) -> Pipe {
        Pipe {
            queue: VecDeque::new(),
            queued_bytes: 0,
            capacity_bytes,
            total_bytes: 0,
            batch: Vec::new(),
        }
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Takes one batch from `from` if there is room; returns the octets taken.
    /// `tap` sees every piece in order.
    pub fn fill(&mut self, from: &mut Connection, now: Instant, mut tap: impl FnMut(&[u8])) -> usize {
        if self.queued_bytes >= self.capacity_bytes {
            return 0;
        }
        let n = from.poll_transmit(now, &mut self.batch);
        for piece in self.batch.drain(..) {
            if piece.is_empty() {
                continue;
            }
            tap(&piece);
            self.queued_bytes += piece.len();
            self.total_bytes += piece.len() as u64;
            self.queue.push_back(piece);
        }
        n
    }

    /// Moves up to `max` octets into `to` and lets it handle them.
    pub fn deliver(&mut self, to: &mut Connection, max: usize, now: Instant) -> usize {
        let mut moved = 0;
        while moved < max {
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            let take = front.len().min(max - moved);
            to.input_buffer().extend_from_slice(&front[..take]);
            front.advance(take);
            if front.is_empty() {
                self.queue.pop_front();
            }
            moved += take;
        }
        self.queued_bytes -= moved;
        if moved > 0 {
            to.handle_input(now);
        }
        moved
    }
}
