//! The measured run: the ramp-up, then one-second buckets of the shared
//! counters over the measured interval (for `mixed`, texts alone and then
//! beside the file), with the engine's statistics, both sides' CPU time
//! and the subscriber's events read at its two ends.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use msrp_engine::control::{Client, EngineStats};

use super::progress::Progress;
use super::sessions::Threads;
use super::Bench;
use crate::embedded::Engine;
use crate::load::{Shared, PHASE_MEASURE, PHASE_RAMP, PHASE_STOP};
use crate::procfs;
use crate::profile::Scenario;
use crate::report::Bucket;
use crate::subscriber::Subscriber;

/// What the measured interval found, and the readings taken at its start
/// (`_0`) and its end (`_1`).
pub(super) struct Measurement {
    pub(super) measured: Duration,
    pub(super) timeline: Vec<Bucket>,
    /// `mixed`: the file's octets and how long they took.
    /// `mixed`: the file's octets answered 200, the time they took, and
    /// the files delivered whole.
    pub(super) mixed_file: Option<(u64, Duration, u64)>,
    pub(super) counts_0: Counts,
    pub(super) counts_1: Counts,
    pub(super) events_0: u64,
    pub(super) events_1: u64,
    pub(super) stats_0: Option<EngineStats>,
    pub(super) stats_1: Option<EngineStats>,
    pub(super) engine_cpu_0: Duration,
    pub(super) engine_cpu_1: Duration,
    pub(super) load_cpu_0: Duration,
    pub(super) load_cpu_1: Duration,
    /// The engine's peak resident memory so far, read at the end.
    pub(super) rss_peak: u64,
}

/// Ramps up, measures, and tells the load threads to stop.
pub(super) fn measure(bench: &Bench, engine: &Engine, shared: &Shared, threads: &Threads) -> Measurement {
    let (profile, progress) = (&bench.profile, &bench.progress);
    let subscriber = &threads.subscriber;
    let engine_cpu = || engine.pid.and_then(procfs::process_cpu).unwrap_or_default();
    let load_cpu = || {
        let tids = shared
            .worker_tids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let commander = shared.commander_tid.load(Ordering::Relaxed);
        tids.into_iter()
            .chain((commander > 0).then_some(commander))
            .filter_map(procfs::thread_cpu)
            .sum::<Duration>()
    };

    shared.set_phase(PHASE_RAMP);
    if profile.ramp_up.0 > 0.0 && profile.scenario != Scenario::Sessions {
        progress.phase("ramping up");
        std::thread::sleep(Duration::from_secs_f64(profile.ramp_up.0));
    }
    let engine_stats = || Client::connect(&engine.control).and_then(|mut c| c.stats()).ok();
    let (engine_cpu_0, load_cpu_0) = (engine_cpu(), load_cpu());
    let stats_0 = engine_stats();
    let counts_0 = Counts::read(shared);
    let events_0 = subscriber.as_ref().map_or(0, Subscriber::events);
    shared.set_phase(PHASE_MEASURE);
    let measure_started = Instant::now();
    let mut timeline = Vec::new();
    let mut mixed_file = None;
    progress.measure(profile.duration.0);
    match profile.scenario {
        Scenario::Mixed => {
            // Texts alone for half the time, then beside the file until it
            // is through.
            sample(
                shared,
                (progress, engine.pid),
                &mut timeline,
                measure_started,
                profile.duration.0 / 2.0,
                || false,
            );
            shared.file_running.store(true, Ordering::Relaxed);
            let file_started = Instant::now();
            let file_bytes_0 = shared.file_bytes.load(Ordering::Relaxed);
            let files_0 = shared.files_done.load(Ordering::Relaxed);
            // One file: until it is through; repeated: the whole interval.
            let limit = match profile.file_repeat {
                true => profile.duration.0,
                false => profile.duration.0 / 2.0 + 600.0,
            };
            sample(
                shared,
                (progress, engine.pid),
                &mut timeline,
                measure_started,
                limit,
                || !shared.file_running.load(Ordering::Relaxed),
            );
            mixed_file = Some((
                shared.file_bytes.load(Ordering::Relaxed) - file_bytes_0,
                file_started.elapsed(),
                shared.files_done.load(Ordering::Relaxed) - files_0,
            ));
        }
        _ => sample(
            shared,
            (progress, engine.pid),
            &mut timeline,
            measure_started,
            profile.duration.0,
            || false,
        ),
    }
    let measured = measure_started.elapsed();
    let counts_1 = Counts::read(shared);
    let events_1 = subscriber.as_ref().map_or(0, Subscriber::events);
    let stats_1 = engine_stats();
    let (engine_cpu_1, load_cpu_1) = (engine_cpu(), load_cpu());
    let rss_peak = engine.pid.and_then(procfs::peak_rss_bytes).unwrap_or(0);
    shared.set_phase(PHASE_STOP);
    progress.phase("collecting");
    Measurement {
        measured,
        timeline,
        mixed_file,
        counts_0,
        counts_1,
        events_0,
        events_1,
        stats_0,
        stats_1,
        engine_cpu_0,
        engine_cpu_1,
        load_cpu_0,
        load_cpu_1,
        rss_peak,
    }
}

/// The shared counters at one moment.
#[derive(Clone, Copy, Default)]
pub(super) struct Counts {
    pub(super) delivered: u64,
    pub(super) delivered_bytes: u64,
    pub(super) failed: u64,
    pub(super) received: u64,
    pub(super) received_bytes: u64,
}

impl Counts {
    fn read(shared: &Shared) -> Counts {
        Counts {
            delivered: shared.delivered.load(Ordering::Relaxed),
            delivered_bytes: shared.delivered_bytes.load(Ordering::Relaxed),
            failed: shared.failed.load(Ordering::Relaxed),
            received: shared.received.load(Ordering::Relaxed),
            received_bytes: shared.received_bytes.load(Ordering::Relaxed),
        }
    }

    pub(super) fn minus(&self, earlier: &Counts) -> Counts {
        Counts {
            delivered: self.delivered - earlier.delivered,
            delivered_bytes: self.delivered_bytes - earlier.delivered_bytes,
            failed: self.failed - earlier.failed,
            received: self.received - earlier.received,
            received_bytes: self.received_bytes - earlier.received_bytes,
        }
    }
}

/// Adds one bucket per whole second until `until_s` after `start` or
/// `done()`, with the engine's (`engine_pid`) and the load's footprint.
fn sample(
    shared: &Shared,
    (progress, engine_pid): (&Progress, Option<u32>),
    timeline: &mut Vec<Bucket>,
    start: Instant,
    until_s: f64,
    done: impl Fn() -> bool,
) {
    let end = start + Duration::from_secs_f64(until_s);
    let mut last = Counts::read(shared);
    loop {
        let next = start + Duration::from_secs(timeline.len() as u64 + 1);
        let wake = next.min(end);
        while Instant::now() < wake {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5).min(wake.saturating_duration_since(Instant::now())));
        }
        if Instant::now() < next {
            return;
        }
        let now = Counts::read(shared);
        let d = now.minus(&last);
        last = now;
        timeline.push(Bucket {
            t_s: timeline.len() as f64,
            messages: d.delivered + d.received,
            bytes: d.delivered_bytes + d.received_bytes,
            errors: d.failed,
            engine_rss_bytes: engine_pid.and_then(procfs::rss_bytes),
            engine_fds: engine_pid.and_then(procfs::open_fds),
            load_rss_bytes: procfs::rss_bytes(std::process::id()),
            load_fds: procfs::open_fds(std::process::id()),
        });
        progress.tick(d.delivered + d.received, d.delivered_bytes + d.received_bytes);
        if Instant::now() >= end {
            return;
        }
    }
}
