//! Deficit round robin over the sessions of one connection that have chunks
//! ready (RFC 4975 5.1: "SENDs of several sessions on one connection SHOULD
//! alternate fairly").
//!
//! Each visit gives a session one quantum of credit, at least the largest
//! chunk; it sends chunks while the next one fits its credit and then goes to
//! the back of the ring. A session sending a 1 GiB file thus sends one chunk
//! per round, and a session that became ready waits for at most one chunk of
//! every session ahead of it. Within one session, a text queued behind a file
//! goes between two of the file's chunks (RFC 4975 7.1; the session's
//! `Outgoing::cut`, bounded by `SessionSettings::interleave_messages_max`).

use std::collections::VecDeque;

/// What a session did with its turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// It wrote a chunk of this many body octets (at most its credit).
    Sent(u64),
    /// Its next chunk is larger than its remaining credit: next round.
    Over,
    /// It has nothing it may send now (empty, window full, source pending):
    /// it leaves the ring until it is pushed again.
    Idle,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: u32,
    deficit_bytes: u64,
    /// The quantum for this visit has been granted.
    visiting: bool,
}

/// The ring of ready sessions.
#[derive(Debug)]
pub struct Scheduler {
    ring: VecDeque<Slot>,
    quantum_bytes: u64,
}

impl Scheduler {
    /// `quantum_bytes` must be at least the largest chunk a session may cut,
    /// so every visit can send something.
    pub fn new(quantum_bytes: u64) -> Scheduler {
        assert!(quantum_bytes > 0);
        Scheduler {
            ring: VecDeque::new(),
            quantum_bytes,
        }
    }

    /// Raises the quantum (a session with larger chunks joined).
    pub fn raise_quantum(&mut self, quantum_bytes: u64) {
        self.quantum_bytes = self.quantum_bytes.max(quantum_bytes);
    }

    /// Adds a session at the back; the caller keeps each key in the ring at
    /// most once.
    pub fn push(&mut self, key: u32) {
        debug_assert!(
            self.ring.len() > 4096 || self.ring.iter().all(|s| s.key != key),
            "session {key} pushed twice"
        );
        self.ring.push_back(Slot {
            key,
            deficit_bytes: 0,
            visiting: false,
        });
    }

    /// Removes a session wherever it is (it closed).
    pub fn remove(&mut self, key: u32) {
        self.ring.retain(|s| s.key != key);
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Gives turns in order until `budget_bytes` of body octets are sent, the
    /// ring is empty, or `turn` returns `None` (the connection cannot send
    /// more now). `turn(key, credit)` sends at most one chunk of at most
    /// `credit` octets. Returns the octets sent. A session that answers
    /// [`Turn::Idle`] leaves the ring; its owner pushes it again when it has
    /// work.
    pub fn drive(&mut self, budget_bytes: u64, mut turn: impl FnMut(u32, u64) -> Option<Turn>) -> u64 {
        let mut sent_total = 0u64;
        while sent_total < budget_bytes {
            let Some(slot) = self.ring.front_mut() else {
                break;
            };
            if !slot.visiting {
                slot.visiting = true;
                slot.deficit_bytes += self.quantum_bytes;
            }
            let Some(outcome) = turn(slot.key, slot.deficit_bytes) else {
                break;
            };
            match outcome {
                Turn::Sent(bytes) => {
                    debug_assert!(bytes <= slot.deficit_bytes, "a turn sent more than its credit");
                    slot.deficit_bytes -= bytes.min(slot.deficit_bytes);
                    sent_total += bytes.max(1);
                }
                Turn::Over => {
                    debug_assert!(
                        slot.deficit_bytes < self.quantum_bytes,
                        "a fresh quantum must fit any chunk"
                    );
                    slot.visiting = false;
                    self.ring.rotate_left(1);
                }
                Turn::Idle => {
                    self.ring.pop_front();
                }
            }
        }
        sent_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions with queues of chunk sizes; returns the order of sends.
    fn run(quantum: u64, queues: &mut [VecDeque<u64>], budget: u64) -> Vec<(u32, u64)> {
        let mut sched = Scheduler::new(quantum);
        for key in 0..queues.len() as u32 {
            sched.push(key);
        }
        let mut order = Vec::new();
        sched.drive(budget, |key, credit| {
            let q = &mut queues[key as usize];
            Some(match q.front() {
                None => Turn::Idle,
                Some(&len) if len > credit => Turn::Over,
                Some(&len) => {
                    q.pop_front();
                    order.push((key, len));
                    Turn::Sent(len)
                }
            })
        });
        order
    }

    #[test]
    fn one_large_chunk_per_round() {
        let mut queues = vec![VecDeque::from(vec![65536; 4]), VecDeque::from(vec![160; 3])];
        let order = run(65536, &mut queues, u64::MAX);
        let keys: Vec<u32> = order.iter().map(|o| o.0).collect();
        assert_eq!(keys, [0, 1, 1, 1, 0, 0, 0]);
    }

    #[test]
    fn unequal_chunks_share_by_bytes() {
        // Session 0 cuts 4 KiB chunks, session 1 64 KiB: per round each gets
        // one quantum of 64 KiB.
        let mut queues = vec![VecDeque::from(vec![4096; 32]), VecDeque::from(vec![65536; 2])];
        let order = run(65536, &mut queues, u64::MAX);
        let first_large = order.iter().position(|o| o.0 == 1).unwrap();
        assert_eq!(first_large, 16);
        let second_large = order.iter().rposition(|o| o.0 == 1).unwrap();
        assert_eq!(second_large, 33);
    }

    #[test]
    fn budget_stops_and_resumes() {
        let mut queues = vec![VecDeque::from(vec![1000; 10])];
        let order = run(65536, &mut queues, 2500);
        assert_eq!(order.len(), 3);
    }
}
