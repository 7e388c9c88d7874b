//! Setting up the load: the subscriber, the load threads with their share
//! of the connections, and the sessions, created in the engine in waves and
//! handed to the threads to bind (see [`crate::setup`]), set up by SIP
//! calls through msrp-signal (`--mode sip`, see [`crate::sip`]), or by
//! 3PCC REST calls on msrp-signal (`--mode rest`, see [`crate::rest`]).

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::mpsc::UnboundedSender;

use super::progress::Progress;
use super::settings::{Layout, SetupMode};
use super::{start, Bench};
use crate::embedded::Engine;
use crate::load::{self, LoadSettings, Recorded, SessionBatch, Shared, WorkerPlan};
use crate::procfs;
use crate::profile::{Profile, Scenario};
use crate::rest::{self, http::RestBase, RestPlan, RestRun};
use crate::setup::{all_sessions, Injector, PIPELINE};
use crate::sip::{self, Calls, LoadSessions, SipSettings};
use crate::subscriber::Subscriber;

/// Connections per loopback source address: one address has about 28k
/// ephemeral ports here, and the engine's listener one port.
const CONNECTIONS_PER_SOURCE: usize = 20_000;
/// Sessions created in the engine and not yet bound, at most (see
/// [`crate::setup`]).
const WAVE_PENDING_MAX: usize = 16_384;

/// The load once its sessions are set up.
pub(super) struct Load {
    /// The first refusal of a session, for the report.
    pub(super) first_error: Option<String>,
    pub(super) shared: Arc<Shared>,
    /// Sessions bound when setup ended.
    pub(super) established: usize,
    pub(super) setup_elapsed: Duration,
    /// The engine's resident memory with the sessions set up.
    pub(super) rss_established: u64,
    /// The load process's own resident memory before setup and with the
    /// sessions set up.
    pub(super) load_rss_before: u64,
    pub(super) load_rss_established: u64,
}

/// The threads the run ends in [`super::stop`].
pub(super) struct Threads {
    pub(super) workers: Vec<JoinHandle<Result<Recorded>>>,
    /// The engine-direction driver, when the engine sends too.
    pub(super) commander: Option<JoinHandle<Result<Recorded>>>,
    pub(super) subscriber: Option<Subscriber>,
    /// `--mode sip`: the calls, ended before the load threads.
    pub(super) calls: Option<Calls>,
    /// `--mode rest`: the REST sessions, deleted before the load threads
    /// end (and after the commander).
    pub(super) rest: Option<RestRun>,
}

/// Starts the subscriber and the load threads, creates the sessions wave by
/// wave, waits for them to be bound, then starts the engine's own sends.
pub(super) fn set_up(bench: &Bench, engine: &Engine) -> Result<(Load, Threads)> {
    let (args, profile, layout, progress) = (bench.args, &bench.profile, &bench.layout, &bench.progress);
    let load_rss = || procfs::rss_bytes(std::process::id()).unwrap_or(0);
    let load_rss_before = load_rss();
    let shared = Arc::new(Shared::default());
    let settings = Arc::new(LoadSettings {
        profile: profile.clone(),
        epoch: Instant::now(),
        target: match (profile.tls, engine.msrps) {
            (true, Some(msrps)) => msrps,
            _ => engine.msrp,
        },
        shared: shared.clone(),
        tls: match profile.tls {
            true => engine.pki.as_ref().map(|pki| pki.client.clone()),
            false => None,
        },
    });
    let subscriber = match args.subscription() {
        Some(events) => Some(Subscriber::start(&engine.control, events, profile.control)?),
        None => None,
    };
    let run = fastrand::u32(..);
    let sources = connection_sources(profile);
    let (waves, workers) = spawn_workers(&sources, layout, &settings)?;

    progress.phase(&format!("setting up {} sessions", profile.total_sessions()));
    let setup_started = Instant::now();
    let all: Vec<(usize, usize)> = all_sessions(profile).collect();
    let stalled = |workers: &[JoinHandle<Result<Recorded>>]| workers.iter().any(|w| w.is_finished());
    let load_sessions =
        |calls: Vec<(usize, usize)>, waves: Vec<UnboundedSender<SessionBatch>>| LoadSessions {
            calls,
            sources: sources.clone(),
            run,
            waves,
            shared: shared.clone(),
            pending_max: WAVE_PENDING_MAX,
            engine_sends: profile.direction.engine_sends(),
        };
    let bound_message = || {
        progress.set_message(format!(
            "{} of {} sessions bound",
            shared.established.load(Ordering::Relaxed),
            profile.total_sessions()
        ))
    };
    let (handed_out, first_error, engine_session_ids, calls, rest) = match args.mode {
        SetupMode::Inject => {
            let mut injector = Injector::connect(&engine.control, profile, run, sources.clone())?;
            let handed_out = inject(&mut injector, &all, waves, &shared, &workers, progress, profile)?;
            let ids = std::mem::take(&mut injector.engine_session_ids);
            (handed_out, injector.first_error, ids, None, None)
        }
        SetupMode::Rest => {
            let base = match &args.rest {
                Some(url) => Some(RestBase::parse(url, args.rest_token.clone()).map_err(anyhow::Error::msg)?),
                None => None,
            };
            let rest = rest::set_up(
                RestPlan {
                    base,
                    form: args.rest_form,
                    batch: args.rest_batch,
                    connections: args.rest_connections(),
                    control: &engine.control,
                    load: load_sessions(all, waves),
                },
                bound_message,
            )?;
            let handed_out = rest.setup.created as usize;
            let first_error = rest.setup.first_failure.clone();
            (handed_out, first_error, Vec::new(), None, Some(rest))
        }
        SetupMode::Sip => {
            let signal = match &args.signal_sip {
                Some(addr) => Some(start::resolve(addr)?),
                None => None,
            };
            let mut calls = sip::set_up(
                SipSettings {
                    transport: args.sip_transport,
                    signal,
                    outstanding_max: args.invites_outstanding,
                    control: &engine.control,
                    engine_pid: engine.pid,
                    load: load_sessions(all, waves),
                    bye: !args.no_bye,
                },
                bound_message,
            )?;
            let handed_out = calls.setup.answered as usize;
            let first_error = calls.setup.first_failure.clone();
            let ids = std::mem::take(&mut calls.setup.engine_session_ids);
            (handed_out, first_error, ids, Some(calls), None)
        }
    };
    let deadline_for = |sessions: usize| {
        Instant::now() + Duration::from_secs(30) + Duration::from_micros(sessions as u64 * 50)
    };
    let deadline = deadline_for(handed_out);
    while shared.established.load(Ordering::Relaxed) < handed_out {
        if Instant::now() > deadline || stalled(&workers) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu = layout.load_cpus.first().copied();
    let commander = match (
        profile.direction.engine_sends() && profile.scenario != Scenario::Sessions,
        &rest,
    ) {
        (false, _) => None,
        (true, Some(rest)) => Some(rest.spawn_commander(settings.clone(), cpu)?),
        (true, None) => Some(crate::commander::spawn(
            &engine.control,
            engine_session_ids,
            settings.clone(),
            cpu,
        )?),
    };
    let established = shared.established.load(Ordering::Relaxed);
    let setup_elapsed = setup_started.elapsed();
    let rss_established = start::rss(engine);
    let load_rss_established = load_rss();
    Ok((
        Load {
            first_error,
            shared,
            established,
            setup_elapsed,
            rss_established,
            load_rss_before,
            load_rss_established,
        },
        Threads {
            workers,
            commander,
            subscriber,
            calls,
            rest,
        },
    ))
}

/// Creates the sessions through the control socket wave by wave and hands
/// them to the load threads; returns how many were handed out.
fn inject(
    injector: &mut Injector,
    all: &[(usize, usize)],
    waves: Vec<UnboundedSender<SessionBatch>>,
    shared: &Shared,
    workers: &[JoinHandle<Result<Recorded>>],
    progress: &Progress,
    profile: &Profile,
) -> Result<usize> {
    let stalled = |workers: &[JoinHandle<Result<Recorded>>]| workers.iter().any(|w| w.is_finished());
    let mut handed_out = 0;
    let deadline_for = |sessions: usize| {
        Instant::now() + Duration::from_secs(30) + Duration::from_micros(sessions as u64 * 50)
    };
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
            if Instant::now() > deadline || stalled(workers) {
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
    Ok(handed_out)
}

/// The loopback address each connection leaves from, in turn over the
/// sources.
fn connection_sources(profile: &Profile) -> Vec<IpAddr> {
    let sources = sources(profile);
    (0..profile.connections)
        .map(|ci| sources[ci % sources.len()])
        .collect()
}

fn sources(profile: &Profile) -> Vec<IpAddr> {
    let n = match profile.sources {
        0 => profile.connections.div_ceil(CONNECTIONS_PER_SOURCE),
        n => n,
    }
    .clamp(1, 250);
    (0..n).map(|i| IpAddr::from([127, 0, 0, 1 + i as u8])).collect()
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
