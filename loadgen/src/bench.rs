//! `msrp-loadgen bench`: calibrate, start the engine, set up the sessions,
//! run the load, and judge it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use msrp_engine::control::{Client, EngineStats};
use tokio::sync::mpsc::UnboundedSender;

use crate::calibrate::{calibrate, CalibrationSettings};
use crate::embedded::{EmbeddedSettings, Engine};
use crate::load::{
    self, LoadSettings, Recorded, SessionBatch, Shared, WorkerPlan, LATENCY_TEXTS_ALONE,
    LATENCY_TEXTS_WITH_FILE, PHASE_MEASURE, PHASE_RAMP, PHASE_STOP,
};
use crate::procfs;
use crate::profile::{Direction, Profile, Scenario, Seconds, SizeMix};
use crate::report::{
    Bucket, Cpu, Fractions, Latency, Mixed, Report, Rss, Sessions, SubscriberReport, Throughput,
    REPORT_VERSION,
};
use crate::setup::{all_sessions, Injector, PIPELINE};
use crate::subscriber::Subscriber;
use crate::summary;

/// Connections per loopback source address: one address has about 28k
/// ephemeral ports here, and the engine's listener one port.
const CONNECTIONS_PER_SOURCE: usize = 20_000;
/// Sessions created in the engine and not yet bound, at most (see
/// [`crate::setup`]).
const WAVE_PENDING_MAX: usize = 16_384;
/// How long the load threads get to end after the run.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Header octets of a SEND as the load writes it (paths, ids, ranges), for
/// sizing the calibration's raw writes like MSRP's.
const SEND_HEAD_BYTES: usize = 200;

#[derive(clap::Args, Debug, Default)]
pub struct BenchArgs {
    /// A ready-made load shape [default: sms].
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// A TOML profile over the scenario; its keys are the report's
    /// `profile` fields (connections, sessions_per_connection, sizes, ...).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// A 3-second run of the same path (CI).
    #[arg(long)]
    pub smoke: bool,
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    #[arg(long, value_name = "N")]
    pub sessions_per_connection: Option<usize>,
    /// Message sizes with weights, e.g. `160:90,4096:9,10MiB:1`.
    #[arg(long, value_name = "MIX")]
    pub sizes: Option<SizeMix>,
    /// Body octets per chunk, e.g. `64KiB`.
    #[arg(long, value_name = "SIZE", value_parser = msrp_engine::serve::parse_size)]
    pub chunk_size: Option<u64>,
    /// Ask for success REPORTs: delivered counts from the REPORT.
    #[arg(long)]
    pub success_report: bool,
    #[arg(long, value_enum)]
    pub direction: Option<Direction>,
    /// Open loop at this many messages per second in all (latency from
    /// each message's scheduled time); default: closed loop at maximum.
    #[arg(long, value_name = "PER_S")]
    pub rate: Option<f64>,
    /// Closed loop: messages outstanding per session.
    #[arg(long, value_name = "N")]
    pub window: Option<usize>,
    #[arg(long, value_name = "DURATION")]
    pub ramp_up: Option<Seconds>,
    /// The measured interval, e.g. `30s`.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<Seconds>,
    /// Load threads [default: the cores the engine does not get].
    #[arg(long, value_name = "N")]
    pub load_threads: Option<usize>,
    /// Shards of the embedded engine [default: half the cores].
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Loopback source addresses to spread connections over.
    #[arg(long, value_name = "N")]
    pub sources: Option<usize>,
    /// Skip the raw loopback calibration.
    #[arg(long)]
    pub no_calibrate: bool,
    /// `mixed`: the file's size, e.g. `1GiB`.
    #[arg(long, value_name = "SIZE", value_parser = msrp_engine::serve::parse_size)]
    pub file_size: Option<u64>,
    /// An external engine's MSRP address (needs --control).
    #[arg(long, value_name = "HOST:PORT", requires = "control")]
    pub target: Option<String>,
    /// An external engine's control socket (needs --target).
    #[arg(long, value_name = "PATH", requires = "target")]
    pub control: Option<PathBuf>,
    /// Also read every engine event, as an application would (the engine
    /// builds events only for subscribers).
    #[arg(long)]
    pub subscribe: bool,
    /// The embedded engine's spool [default: /dev/shm when present].
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Where `msrp-bench-<timestamp>.json` and `.html` go.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out_dir: PathBuf,
    /// Write the JSON report here instead.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the HTML report here instead.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

impl BenchArgs {
    /// Scenario, then profile file, then flags.
    pub fn profile(&self) -> Result<Profile> {
        let mut p = Profile::scenario(self.scenario.unwrap_or(Scenario::Sms));
        if let Some(path) = &self.profile {
            p = p.merge_file(path)?;
        }
        // Smoke shrinks the shape; flags given with it still win.
        if self.smoke {
            p = p.smoke();
        }
        macro_rules! set {
            ($($flag:ident => $field:ident),* $(,)?) => {$(
                if let Some(value) = self.$flag.clone() {
                    p.$field = value;
                }
            )*};
        }
        set!(
            connections => connections,
            sessions_per_connection => sessions_per_connection,
            sizes => sizes,
            chunk_size => chunk_bytes,
            direction => direction,
            window => window,
            ramp_up => ramp_up,
            duration => duration,
            load_threads => load_threads,
            shards => engine_shards,
            sources => sources,
            file_size => file_bytes,
        );
        if self.rate.is_some() {
            p.rate = self.rate;
        }
        if self.success_report {
            p.success_report = true;
        }
        if self.no_calibrate {
            p.calibrate = false;
        }
        p.validate()?;
        Ok(p)
    }
}

/// Which cores the engine and the load get.
struct Layout {
    shards: usize,
    engine_cpus: Vec<usize>,
    load_threads: usize,
    load_cpus: Vec<usize>,
}

fn layout(profile: &Profile, embedded: bool) -> Layout {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = match (embedded, profile.engine_shards) {
        (false, _) => 0,
        (true, 0) => (cpus / 2).max(1),
        (true, n) => n,
    };
    let load_threads = match profile.load_threads {
        0 => cpus.saturating_sub(shards).max(1),
        n => n,
    };
    // Pinned apart only when each side can have cores of its own.
    if !embedded || shards + load_threads > cpus {
        return Layout {
            shards,
            engine_cpus: Vec::new(),
            load_threads,
            load_cpus: Vec::new(),
        };
    }
    Layout {
        shards,
        engine_cpus: (cpus - shards..cpus).collect(),
        load_threads,
        load_cpus: (0..load_threads).collect(),
    }
}

fn sources(profile: &Profile) -> Vec<IpAddr> {
    let n = match profile.sources {
        0 => profile.connections.div_ceil(CONNECTIONS_PER_SOURCE),
        n => n,
    }
    .clamp(1, 250);
    (0..n).map(|i| IpAddr::from([127, 0, 0, 1 + i as u8])).collect()
}

/// Runs the benchmark and writes the reports; returns the report.
pub fn run(args: &BenchArgs) -> Result<Report> {
    let profile = args.profile()?;
    let embedded = args.target.is_none();
    let layout = layout(&profile, embedded);
    let started_at = utc_now();
    let progress = Progress::new(args.quiet);

    let calibration = match profile.calibrate {
        false => None,
        true => {
            progress.phase("calibrating raw loopback TCP");
            let message_bytes = profile.sizes.0.iter().map(|&(s, _)| s).min().unwrap_or(160) as usize;
            let settings = CalibrationSettings {
                message_bytes: message_bytes.min(64 << 10) + SEND_HEAD_BYTES,
                chunk_bytes: profile.chunk_bytes as usize,
                seconds_each: profile.calibrate_seconds.0,
                cpus: match (layout.engine_cpus.first(), layout.load_cpus.first()) {
                    (Some(&server), Some(&client)) => vec![server, client],
                    _ => Vec::new(),
                },
                window: 256,
                connections: profile.connections.min(64),
            };
            Some(calibrate(&settings).context("calibrating")?)
        }
    };

    progress.phase("starting the engine");
    let mut engine = match (&args.target, &args.control) {
        (Some(target), Some(control)) => {
            let msrp = resolve(target)?;
            Engine::external(msrp, control.clone())?
        }
        _ => Engine::start(&EmbeddedSettings {
            shards: layout.shards,
            cpus: layout.engine_cpus.clone(),
            sessions_total: profile.total_sessions(),
            sessions_per_connection: profile.sessions_per_connection,
            connections: profile.connections,
            chunk_bytes: profile.chunk_bytes,
            spool: args.spool.clone().unwrap_or_else(default_spool),
        })?,
    };
    let rss = |engine: &Engine| engine.pid.and_then(procfs::rss_bytes).unwrap_or(0);
    let rss_before = rss(&engine);

    let shared = Arc::new(Shared::default());
    let settings = Arc::new(LoadSettings {
        profile: profile.clone(),
        epoch: Instant::now(),
        target: engine.msrp,
        shared: shared.clone(),
    });
    let subscriber = match args.subscribe {
        true => Some(Subscriber::start(&engine.control)?),
        false => None,
    };
    let mut injector = Injector::connect(&engine.control, &profile, fastrand::u32(..), sources(&profile))?;
    let sources: Vec<IpAddr> = (0..profile.connections).map(|ci| injector.source(ci)).collect();
    let (waves, workers) = spawn_workers(&sources, &layout, &settings)?;

    progress.phase(&format!("setting up {} sessions", profile.total_sessions()));
    let setup_started = Instant::now();
    let all: Vec<(usize, usize)> = all_sessions(&profile).collect();
    let mut handed_out = 0;
    let deadline_for = |sessions: usize| {
        Instant::now() + Duration::from_secs(30) + Duration::from_micros(sessions as u64 * 50)
    };
    let stalled = |workers: &[JoinHandle<Result<Recorded>>]| workers.iter().any(|w| w.is_finished());
    for batch in all.chunks(PIPELINE) {
        let created = injector.create(batch)?;
        handed_out += created.len();
        let mut per_worker: Vec<SessionBatch> = (0..waves.len()).map(|_| Vec::new()).collect();
        for (ci, session) in created {
            per_worker[ci % waves.len()].push((ci / waves.len(), session));
        }
        for (wave, batch) in waves.iter().zip(per_worker) {
            if !batch.is_empty() && wave.send(batch).is_err() {
                break;
            }
        }
        // Keep the engine's pending sessions to a wave, as a trickle of
        // calls would.
        let deadline = deadline_for(WAVE_PENDING_MAX);
        while handed_out - shared.established.load(Ordering::Relaxed).min(handed_out) > WAVE_PENDING_MAX {
            if Instant::now() > deadline || stalled(&workers) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        progress.set_message(format!(
            "{} of {} sessions bound",
            shared.established.load(Ordering::Relaxed),
            profile.total_sessions()
        ));
    }
    drop(waves);
    let deadline = deadline_for(handed_out);
    while shared.established.load(Ordering::Relaxed) < handed_out {
        if Instant::now() > deadline || stalled(&workers) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let commander = match profile.direction.engine_sends() && profile.scenario != Scenario::Sessions {
        true => Some(crate::commander::spawn(
            &engine.control,
            std::mem::take(&mut injector.engine_session_ids),
            settings.clone(),
            layout.load_cpus.first().copied(),
        )?),
        false => None,
    };
    let established = shared.established.load(Ordering::Relaxed);
    let setup_elapsed = setup_started.elapsed();
    let rss_established = rss(&engine);

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
    let counts_0 = Counts::read(&shared);
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
                &shared,
                &progress,
                &mut timeline,
                measure_started,
                profile.duration.0 / 2.0,
                || false,
            );
            shared.file_running.store(true, Ordering::Relaxed);
            let file_started = Instant::now();
            let file_bytes_0 = shared.file_bytes.load(Ordering::Relaxed);
            let limit = profile.duration.0 / 2.0 + 600.0;
            sample(&shared, &progress, &mut timeline, measure_started, limit, || {
                !shared.file_running.load(Ordering::Relaxed)
            });
            mixed_file = Some((
                shared.file_bytes.load(Ordering::Relaxed) - file_bytes_0,
                file_started.elapsed(),
            ));
        }
        _ => sample(
            &shared,
            &progress,
            &mut timeline,
            measure_started,
            profile.duration.0,
            || false,
        ),
    }
    let measured = measure_started.elapsed();
    let counts_1 = Counts::read(&shared);
    let events_1 = subscriber.as_ref().map_or(0, Subscriber::events);
    let stats_1 = engine_stats();
    let (engine_cpu_1, load_cpu_1) = (engine_cpu(), load_cpu());
    let rss_peak = engine.pid.and_then(procfs::peak_rss_bytes).unwrap_or(0);
    shared.set_phase(PHASE_STOP);
    progress.phase("collecting");

    let mut recorded = Recorded::new();
    // A thread still blocked (on a socket the engine stopped serving) ends
    // the run with an error instead of hanging it.
    let deadline = Instant::now() + STOP_TIMEOUT;
    for worker in workers.into_iter().chain(commander) {
        while !worker.is_finished() {
            if Instant::now() > deadline {
                let name = worker.thread().name().unwrap_or("a load thread").to_string();
                bail!("{name} did not stop within {STOP_TIMEOUT:?} of the end of the run");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match worker.join() {
            Ok(Ok(r)) => recorded.merge(r),
            Ok(Err(e)) => return Err(e).context("a load thread failed"),
            Err(_) => bail!("a load thread panicked"),
        }
    }
    let subscriber = subscriber.map(|s| {
        let dropped = s.dropped();
        s.stop();
        SubscriberReport {
            events: events_1 - events_0,
            events_per_s: (events_1 - events_0) as f64 / measured.as_secs_f64(),
            dropped,
        }
    });
    let rss_after = rss(&engine);
    let stopped = engine.stop();
    progress.finish();
    stopped?;

    let seconds = measured.as_secs_f64();
    let delta = counts_1.minus(&counts_0);
    let mut errors: BTreeMap<String, u64> = recorded.errors.clone();
    // The engine's error responses in the measured interval (after it, a
    // closing connection's sessions answer what they owed with 481).
    let (responses_0, received_0) = engine_totals(stats_0.as_ref());
    let (responses_1, received_1) = engine_totals(stats_1.as_ref());
    for (status, n) in responses_1 {
        let n = n - responses_0.get(&status).copied().unwrap_or(0).min(n);
        if status != "200" && n > 0 {
            *errors.entry(format!("engine_{status}")).or_default() += n;
        }
    }
    let messages_received_by_peer = received_1.saturating_sub(received_0) + delta.received;
    // The load's messages delivered, and the engine's received by the load.
    let messages = delta.delivered + delta.received;
    let throughput = Throughput {
        messages_per_s: messages as f64 / seconds,
        bytes_per_s: (delta.delivered_bytes + delta.received_bytes) as f64 / seconds,
        messages,
        bytes: delta.delivered_bytes + delta.received_bytes,
        messages_received_by_peer,
    };
    let engine_cores = (engine_cpu_1.saturating_sub(engine_cpu_0)).as_secs_f64() / seconds;
    let load_cores = (load_cpu_1.saturating_sub(load_cpu_0)).as_secs_f64() / seconds;
    let load_thread_count = layout.load_threads + usize::from(profile.direction.engine_sends());
    // The load is the limit when its threads are busy and the engine has
    // room; when both are busy the machine is (reported, not a warning).
    let load_saturated = load_cores >= 0.9 * layout.load_threads as f64
        && (engine.pid.is_none() || engine_cores < 0.8 * layout.shards.max(1) as f64);
    let mut latency_us: BTreeMap<String, Latency> = recorded
        .latency_us
        .iter()
        .map(|(kind, h)| (kind.to_string(), latency(h)))
        .collect();
    let mixed = mixed_file.map(|(file_bytes, took)| {
        let p99 = |kind: &str| latency_us.get(kind).map_or(0, |l| l.p99);
        let (alone, with_file) = (p99(LATENCY_TEXTS_ALONE), p99(LATENCY_TEXTS_WITH_FILE));
        Mixed {
            texts_p99_alone_us: alone,
            texts_p99_with_file_us: with_file,
            p99_ratio: with_file as f64 / alone.max(1) as f64,
            file_bytes,
            file_bytes_per_s: file_bytes as f64 / took.as_secs_f64().max(1e-9),
        }
    });
    if profile.scenario != Scenario::Mixed {
        latency_us.retain(|k, _| k != LATENCY_TEXTS_ALONE && k != LATENCY_TEXTS_WITH_FILE);
    }

    let mut warnings = Vec::new();
    if load_saturated {
        warnings.push(format!(
            "the load side was saturated ({load_cores:.2} of {} load cores busy, engine {engine_cores:.2} of {} cores): \
             these figures are the load generator's limit, not the engine's capacity",
            layout.load_threads,
            layout.shards.max(1)
        ));
    }
    if established < profile.total_sessions() {
        warnings.push(format!(
            "only {established} of {} sessions were set up{}",
            profile.total_sessions(),
            injector
                .first_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (first refusal: {e})"))
        ));
    }
    let error_total: u64 = errors.values().sum();
    if error_total > 0 {
        warnings.push(format!("{error_total} errors: {errors:?}"));
    }
    let reasons = shared.reasons.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if shared.closed_early.load(Ordering::Relaxed) > 0 {
        warnings.push(format!(
            "{} sessions, connections or messages ended early; first reasons: {}",
            shared.closed_early.load(Ordering::Relaxed),
            reasons.join("; ")
        ));
    }
    let unsent = shared.unsent.load(Ordering::Relaxed);
    if unsent > 0 {
        warnings.push(format!(
            "the offered rate was not reached: {unsent} scheduled sends were never made (every \
             session's send queue was full); the throughput above is what went through"
        ));
    }
    if profile.scenario != Scenario::Sessions && messages == 0 {
        warnings.push("no message was delivered in the measured interval".into());
    }
    if subscriber.as_ref().is_some_and(|s| s.dropped) {
        warnings.push(
            "the engine dropped the subscriber as too slow (--subscriber-queue-depth): \
             an application must read events as fast as the engine makes them"
                .into(),
        );
    }
    if engine.pid.is_none() {
        warnings.push("the engine's process is not visible: no engine CPU or memory figures".into());
    }

    let fraction_of_calibration = calibration.as_ref().map(|c| Fractions {
        messages: throughput.messages_per_s / c.small_messages_per_s.max(1e-9),
        bytes: throughput.bytes_per_s / c.bulk_bytes_per_s.max(1e-9),
    });
    let report = Report {
        version: REPORT_VERSION,
        tool: format!("msrp-loadgen {}", env!("CARGO_PKG_VERSION")),
        started_at,
        host: procfs::host(),
        profile: serde_json::to_value(&profile)?,
        target: match &args.target {
            Some(t) => t.clone(),
            None => "embedded".into(),
        },
        calibration,
        fraction_of_calibration,
        duration_s: seconds,
        throughput,
        timeline,
        latency_us,
        errors,
        sessions: Sessions {
            connections: shared.connections_up.load(Ordering::Relaxed),
            established,
            failed: profile.total_sessions() - established,
            setup_per_s: established as f64 / setup_elapsed.as_secs_f64().max(1e-9),
        },
        rss_bytes: Rss {
            engine_before: rss_before,
            engine_peak: rss_peak.max(rss_established),
            engine_after: rss_after,
            engine_per_session: (established > 0 && engine.pid.is_some())
                .then(|| rss_established.saturating_sub(rss_before) as f64 / established as f64),
            load_peak: procfs::peak_rss_bytes(std::process::id()).unwrap_or(0),
        },
        cpu: Cpu {
            engine_cores,
            load_cores,
            engine_threads: layout.shards,
            engine_cpus: layout.engine_cpus.clone(),
            load_threads: load_thread_count,
            load_cpus: layout.load_cpus.clone(),
            load_saturated,
        },
        mixed,
        subscriber,
        warnings,
    };
    write_reports(args, &report)?;
    Ok(report)
}

/// The load threads, each with its share of the connections (connection
/// `ci` goes to thread `ci % threads`), and the channels that hand them
/// their sessions.
#[allow(clippy::type_complexity)]
fn spawn_workers(
    sources: &[IpAddr],
    layout: &Layout,
    settings: &Arc<LoadSettings>,
) -> Result<(
    Vec<UnboundedSender<SessionBatch>>,
    Vec<JoinHandle<Result<Recorded>>>,
)> {
    let threads = layout.load_threads.min(sources.len()).max(1);
    let mut senders = Vec::with_capacity(threads);
    let mut workers = Vec::with_capacity(threads);
    for index in 0..threads {
        let mine: Vec<IpAddr> = sources.iter().skip(index).step_by(threads).copied().collect();
        // `both`: the rate is the load's; the engine's sends are closed loop.
        let rate = settings
            .profile
            .rate
            .map(|rate| rate * mine.len() as f64 / sources.len() as f64);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let plan = WorkerPlan {
            index,
            cpu: (!layout.load_cpus.is_empty()).then(|| layout.load_cpus[index % layout.load_cpus.len()]),
            sources: mine,
            sessions: rx,
            rate,
            sends_file: index == 0 && settings.profile.scenario == Scenario::Mixed,
        };
        senders.push(tx);
        workers.push(load::spawn(plan, settings.clone())?);
    }
    Ok((senders, workers))
}

/// The shared counters at one moment.
#[derive(Clone, Copy, Default)]
struct Counts {
    delivered: u64,
    delivered_bytes: u64,
    failed: u64,
    received: u64,
    received_bytes: u64,
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

    fn minus(&self, earlier: &Counts) -> Counts {
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
/// `done()`.
fn sample(
    shared: &Shared,
    progress: &Progress,
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
        });
        progress.tick(d.delivered + d.received, d.delivered_bytes + d.received_bytes);
        if Instant::now() >= end {
            return;
        }
    }
}

/// Error responses by status and messages received, over all shards.
fn engine_totals(stats: Option<&EngineStats>) -> (BTreeMap<String, u64>, u64) {
    let mut responses = BTreeMap::new();
    let mut received = 0;
    for shard in stats.iter().flat_map(|s| &s.shards) {
        for (status, n) in &shard.responses_out {
            *responses.entry(status.clone()).or_default() += n;
        }
        received += shard.messages_received;
    }
    (responses, received)
}

fn latency(h: &Histogram<u64>) -> Latency {
    let mut curve = Vec::new();
    // HdrHistogram's percentile curve: denser towards the tail.
    for p in [
        0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 92.5, 95.0, 96.0, 97.0, 98.0,
        99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0,
    ] {
        curve.push((p, h.value_at_quantile(p / 100.0)));
    }
    Latency {
        count: h.len(),
        min: h.min(),
        mean: h.mean(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        curve,
    }
}

fn write_reports(args: &BenchArgs, report: &Report) -> Result<()> {
    let stamp = report
        .started_at
        .replace([':', '-'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_string();
    let json = args
        .json
        .clone()
        .unwrap_or_else(|| args.out_dir.join(format!("msrp-bench-{stamp}.json")));
    let html = args
        .html
        .clone()
        .unwrap_or_else(|| args.out_dir.join(format!("msrp-bench-{stamp}.html")));
    std::fs::write(&json, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(&html, crate::html::render(report))
        .with_context(|| format!("writing {}", html.display()))?;
    print!("{}", summary::table(report));
    println!("reports: {} {}", json.display(), html.display());
    Ok(())
}

fn resolve(target: &str) -> Result<SocketAddr> {
    target
        .to_socket_addrs()
        .with_context(|| format!("resolving {target}"))?
        .next()
        .with_context(|| format!("{target} resolves to no address"))
}

fn default_spool() -> PathBuf {
    let base = match Path::new("/dev/shm").is_dir() {
        true => PathBuf::from("/dev/shm"),
        false => std::env::temp_dir(),
    };
    base.join(format!("msrp-loadgen-spool-{}", std::process::id()))
}

/// `2026-11-26T15:04:05Z`, from the system clock (no time-zone crate).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The terminal's view of the run: a spinner for the phases, a bar for the
/// measured interval. Drawn only on a terminal.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let bar = ProgressBar::new_spinner();
        match quiet {
            true => bar.set_draw_target(ProgressDrawTarget::hidden()),
            false => bar.enable_steady_tick(Duration::from_millis(100)),
        }
        Progress { bar }
    }

    fn phase(&self, what: &str) {
        self.bar.set_message(what.to_string());
        self.bar.tick();
    }

    fn set_message(&self, what: String) {
        self.bar.set_message(what);
    }

    fn measure(&self, seconds: f64) {
        self.bar.set_length(seconds.ceil() as u64);
        self.bar.set_position(0);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} s  {msg}") {
            self.bar.set_style(style);
        }
        self.bar.set_message("measuring");
    }

    fn tick(&self, messages: u64, bytes: u64) {
        self.bar.inc(1);
        self.bar.set_message(format!(
            "{} msg/s  {}/s",
            crate::units::count(messages as f64),
            crate::units::megabytes(bytes as f64)
        ));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        let now = super::utc_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }
}
