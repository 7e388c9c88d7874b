//! The load side: pinned threads, each running its own `tokio_uring` loop
//! over its share of the connections, with the engine's own sans-IO
//! [`Connection`](msrp_engine::Connection) doing the MSRP (binding SENDs,
//! chunking, transaction timeouts, REPORTs). The same core and the same
//! batching as the engine's shards, so the load costs about what the
//! engine does per message and the report can say when it saturates.
//!
//! The main thread steers the workers through [`Shared::phase`] and reads
//! their counters; each worker hands back its histograms when it ends.

mod worker;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;
use msrp_engine::MsrpUri;

use crate::profile::Profile;

/// Sessions bind and nothing is sent yet.
pub const PHASE_SETUP: u8 = 0;
/// Sending, not yet measured.
pub const PHASE_RAMP: u8 = 1;
pub const PHASE_MEASURE: u8 = 2;
/// No new messages; workers end.
pub const PHASE_STOP: u8 = 3;

/// What the main thread and the workers share: the phase, and counters
/// the workers add to once per loop turn.
#[derive(Default)]
pub struct Shared {
    pub phase: AtomicU8,
    /// `mixed`: the file is running; text latencies go to the "with file"
    /// histogram.
    pub file_running: AtomicBool,
    pub established: AtomicUsize,
    /// The workers keep their connections (and so the sessions) after the
    /// run until this is cleared: `--mode sip` ends the calls by BYE first.
    pub hold_open: AtomicBool,
    pub connections_up: AtomicUsize,
    /// Messages the load sent that were delivered, and their body octets.
    pub delivered: AtomicU64,
    pub delivered_bytes: AtomicU64,
    pub failed: AtomicU64,
    /// Messages the engine sent that the load received.
    pub received: AtomicU64,
    pub received_bytes: AtomicU64,
    /// Open loop: scheduled sends dropped because the backlog was full.
    pub unsent: AtomicU64,
    /// `mixed`: octets of the file answered 200.
    pub file_bytes: AtomicU64,
    /// `mixed`: files delivered whole.
    pub files_done: AtomicU64,
    /// Sessions or connections that ended before the run did; the first
    /// reasons are kept for the report.
    pub closed_early: AtomicU64,
    pub reasons: Mutex<Vec<String>>,
    /// Kernel thread ids of the workers, for their CPU time in /proc.
    pub worker_tids: Mutex<Vec<i32>>,
    /// The engine-direction driver's thread id.
    pub commander_tid: AtomicI32,
    /// `msrps:`: the load's TLS handshakes done, and of those resumed.
    pub tls_handshakes: AtomicU64,
    pub tls_resumed: AtomicU64,
}

impl Shared {
    pub fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }

    pub fn set_phase(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Keeps the first few reasons a session or connection ended early.
    pub fn note_closed(&self, reason: &str) {
        self.closed_early.fetch_add(1, Ordering::Relaxed);
        let mut reasons = self.reasons.lock().unwrap_or_else(|p| p.into_inner());
        if reasons.len() < 8 && !reasons.iter().any(|r| r == reason) {
            reasons.push(reason.to_string());
        }
    }
}

/// One session: our URI and the engine's, and when its creation began
/// (for the setup latency).
pub struct SessionPlan {
    pub local_uri: MsrpUri,
    pub remote_uri: MsrpUri,
    pub created: Instant,
}

/// Sessions for a worker to bind: (its connection index, the session).
pub type SessionBatch = Vec<(usize, SessionPlan)>;

/// What one worker thread runs.
pub struct WorkerPlan {
    pub index: usize,
    pub cpu: Option<usize>,
    /// Its connections, by the loopback address each leaves from.
    pub sources: Vec<IpAddr>,
    /// Sessions arrive in waves as the engine creates them; the channel
    /// closes when all are handed out.
    pub sessions: tokio::sync::mpsc::UnboundedReceiver<SessionBatch>,
    /// Open loop: this worker's share of the rate, in messages per second.
    pub rate: Option<f64>,
    /// `mixed`: this worker sends the file on its first session.
    pub sends_file: bool,
}

/// Everything the workers read and nobody changes.
pub struct LoadSettings {
    pub profile: Profile,
    /// Send times stamped into the engine's messages count from here.
    pub epoch: Instant,
    pub target: SocketAddr,
    pub shared: Arc<Shared>,
    /// `msrps:` sessions: each connection handshakes with this client
    /// configuration (towards [`crate::tls::ENGINE_NAME`]) first.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Latency kinds for `mixed` (beside the report's standard ones).
pub const LATENCY_TEXTS_ALONE: &str = "texts_alone";
pub const LATENCY_TEXTS_WITH_FILE: &str = "texts_with_file";
/// `--file-session same`: the texts of the file's own session.
pub const LATENCY_FILE_SESSION_TEXTS_ALONE: &str = "file_session_texts_alone";
pub const LATENCY_FILE_SESSION_TEXTS_WITH_FILE: &str = "file_session_texts_with_file";

/// What a worker measured, in microseconds.
pub struct Recorded {
    pub latency_us: BTreeMap<&'static str, Histogram<u64>>,
    /// Failed messages by status (`"408"`) or `"local"`, in the measured
    /// interval.
    pub errors: BTreeMap<String, u64>,
}

impl Recorded {
    pub fn new() -> Recorded {
        Recorded {
            latency_us: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, kind: &'static str, micros: u64) {
        let histogram = self
            .latency_us
            .entry(kind)
            .or_insert_with(|| Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"));
        histogram.saturating_record(micros.max(1));
    }

    pub fn merge(&mut self, other: Recorded) {
        for (kind, histogram) in other.latency_us {
            match self.latency_us.get_mut(kind) {
                Some(mine) => {
                    // Same bounds on both sides: adding cannot fail.
                    let _ = mine.add(&histogram);
                }
                None => {
                    self.latency_us.insert(kind, histogram);
                }
            }
        }
        for (cause, count) in other.errors {
            *self.errors.entry(cause).or_default() += count;
        }
    }
}

impl Default for Recorded {
    fn default() -> Recorded {
        Recorded::new()
    }
}

/// Starts one worker thread.
pub fn spawn(plan: WorkerPlan, settings: Arc<LoadSettings>) -> Result<JoinHandle<Result<Recorded>>> {
    std::thread::Builder::new()
        .name(format!("load-{}", plan.index))
        .spawn(move || {
            if let Some(id) = plan.cpu {
                core_affinity::set_for_current(core_affinity::CoreId { id });
            }
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            settings
                .shared
                .worker_tids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(tid);
            tokio_uring::start(worker::run(plan, settings))
        })
        .map_err(|e| anyhow!("cannot start a load thread: {e}"))
}
