//! The measured interval of a phase: wait for the client, let the warm-up
//! pass, count, and give up at once if a thread ends early.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::phase::{Note, Role, Shared};
use super::WARM_UP;

/// How long the client may take to connect before the phase is void.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A count over a measured interval.
pub(super) struct Measured {
    count: u64,
    elapsed: Duration,
}

impl Measured {
    pub(super) fn per_s(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

/// Why the measuring thread gave up before the interval was over.
pub(super) enum Abort {
    /// That thread ended early: its own result says why.
    Ended(Role),
    Error(anyhow::Error),
}

/// Waits for the client to connect, lets the warm-up pass, then counts over
/// `period`: the counts at its two ends and the time between them, so that
/// neither the warm-up nor the wind-down is in the rate.
pub(super) fn measure(noted: &Receiver<Note>, shared: &Shared, period: Duration) -> Result<Measured, Abort> {
    match noted.recv_timeout(CONNECT_TIMEOUT) {
        Ok(Note::Connected) => {}
        Ok(Note::Ended(role)) => return Err(Abort::Ended(role)),
        Err(RecvTimeoutError::Timeout) => {
            return Err(Abort::Error(anyhow!(
                "the client was not connected after {CONNECT_TIMEOUT:?}"
            )))
        }
        Err(RecvTimeoutError::Disconnected) => {
            return Err(Abort::Error(anyhow!("both threads ended before connecting")))
        }
    }
    watch(noted, WARM_UP)?;
    let (before, start) = (shared.progress.load(Ordering::Relaxed), Instant::now());
    watch(noted, period)?;
    let (after, end) = (shared.progress.load(Ordering::Relaxed), Instant::now());
    if after == before {
        return Err(Abort::Error(anyhow!(
            "nothing got through in {period:?}: is loopback stuck?"
        )));
    }
    Ok(Measured {
        count: after - before,
        elapsed: end - start,
    })
}

/// Lets the phase run for `period`, giving up at once if a thread ends.
fn watch(noted: &Receiver<Note>, period: Duration) -> Result<(), Abort> {
    let deadline = Instant::now() + period;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match noted.recv_timeout(left) {
            Ok(Note::Connected) => {}
            Ok(Note::Ended(role)) => return Err(Abort::Ended(role)),
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Abort::Error(anyhow!("both threads ended early")))
            }
        }
    }
}
