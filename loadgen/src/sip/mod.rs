//! `bench --mode sip`: sessions set up the way a deployment sets them up,
//! by INVITE -> 200 -> ACK through `msrp-signal`, instead of injected
//! through the control socket.
//!
//! - [`signal`]: the embedded msrp-signal (the signaling library's core on
//!   a thread of its own), unless `--signal-sip` names a running one.
//! - [`caller`]: the load's UAC, msrp-signaling's sans-IO user agent over
//!   one UDP socket or TCP connection, a bounded number of INVITEs out.
//! - [`link`]: that socket or connection.
//!
//! Each answered call's `a=path` is an engine session the load threads
//! bind as they bind injected ones; the report's `sip` section
//! ([`SipReport`]) has the calls, the setup rate, INVITE->200 latency,
//! the BYEs, and the CPU each side spent setting up.

pub mod caller;
pub mod link;
pub mod signal;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use msrp_signaling::sip::Transport;

use crate::load::Shared;
use crate::procfs;
use crate::report::{Latency, SipCpu, SipReport};
pub use caller::{Caller, CallerPlan, HangupOutcome, LoadSessions, SetupOutcome};
pub use signal::EmbeddedSignal;

/// The SIP transport of `--sip-transport`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SipTransport {
    #[default]
    Udp,
    Tcp,
}

impl SipTransport {
    pub fn transport(self) -> Transport {
        match self {
            SipTransport::Udp => Transport::Udp,
            SipTransport::Tcp => Transport::Tcp,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
        }
    }
}

/// How a SIP run is set up.
pub struct SipSettings<'a> {
    pub transport: SipTransport,
    /// A running msrp-signal; `None`: the embedded one.
    pub signal: Option<SocketAddr>,
    pub outstanding_max: usize,
    /// The engine's control socket, for the embedded msrp-signal.
    pub control: &'a Path,
    pub engine_pid: Option<u32>,
    pub load: LoadSessions,
    /// Keep the load's connections open until the BYEs are answered.
    pub bye: bool,
}

/// The calls once set up, held through the run and ended by
/// [`Calls::finish`].
pub struct Calls {
    caller: Caller,
    /// Dropped after the BYEs, before the engine stops.
    signal: Option<EmbeddedSignal>,
    signal_name: String,
    transport: SipTransport,
    outstanding_max: usize,
    shared: Arc<Shared>,
    pub setup: SetupOutcome,
    cpu: SipCpu,
}

/// CPU time of the parts that set calls up, read at the setup's two ends.
struct CpuReading {
    signal: Option<Duration>,
    caller: Duration,
    engine: Option<Duration>,
    load: Duration,
    at: Instant,
}

impl CpuReading {
    fn read(signal: Option<i32>, caller: i32, engine: Option<u32>, shared: &Shared) -> CpuReading {
        let workers = shared
            .worker_tids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        CpuReading {
            signal: signal.and_then(procfs::thread_cpu),
            caller: procfs::thread_cpu(caller).unwrap_or_default(),
            engine: engine.and_then(procfs::process_cpu),
            load: workers.into_iter().filter_map(procfs::thread_cpu).sum(),
            at: Instant::now(),
        }
    }

    /// Cores busy (CPU seconds per second) from `earlier` to this one.
    fn cores_since(&self, earlier: &CpuReading) -> SipCpu {
        let seconds = self
            .at
            .saturating_duration_since(earlier.at)
            .as_secs_f64()
            .max(1e-9);
        let cores = |now: Duration, then: Duration| now.saturating_sub(then).as_secs_f64() / seconds;
        SipCpu {
            signal_cores: match (self.signal, earlier.signal) {
                (Some(now), Some(then)) => Some(cores(now, then)),
                _ => None,
            },
            caller_cores: cores(self.caller, earlier.caller),
            engine_cores: match (self.engine, earlier.engine) {
                (Some(now), Some(then)) => Some(cores(now, then)),
                _ => None,
            },
            load_cores: cores(self.load, earlier.load),
        }
    }
}

/// Starts the embedded msrp-signal (unless an external one is named) and
/// the caller, and waits for every call to be answered or to fail.
pub fn set_up(settings: SipSettings, mut tick: impl FnMut()) -> Result<Calls> {
    let signal = match settings.signal {
        Some(_) => None,
        None => Some(EmbeddedSignal::start(
            settings.control,
            settings.transport.transport(),
            settings.load.calls.len(),
        )?),
    };
    let (signal_addr, signal_name) = match (&signal, settings.signal) {
        (Some(embedded), _) => (embedded.sip, "embedded".to_string()),
        (None, Some(addr)) => (addr, addr.to_string()),
        (None, None) => unreachable!("an embedded msrp-signal was started"),
    };
    let signal_tid = signal.as_ref().map(|s| s.tid);
    let calls = settings.load.calls.len();
    let shared = settings.load.shared.clone();
    let plan = CallerPlan {
        signal: signal_addr,
        transport: settings.transport.transport(),
        outstanding_max: settings.outstanding_max.max(1),
        load: settings.load,
        setup_timeout: Duration::from_secs(60) + Duration::from_millis(calls as u64),
    };
    if settings.bye {
        shared.hold_open.store(true, Ordering::Relaxed);
    }
    let mut caller = Caller::start(plan)?;
    let before = CpuReading::read(signal_tid, caller.tid, settings.engine_pid, &shared);
    let setup = caller.wait_setup(&mut tick)?;
    let after = CpuReading::read(signal_tid, caller.tid, settings.engine_pid, &shared);
    Ok(Calls {
        caller,
        signal,
        signal_name,
        transport: settings.transport,
        outstanding_max: settings.outstanding_max,
        shared,
        cpu: after.cores_since(&before),
        setup,
    })
}

impl Calls {
    /// Ends every call (a BYE each when `bye`), lets the load's
    /// connections go, stops the embedded msrp-signal, and reports.
    pub fn finish(self, bye: bool) -> Result<SipReport> {
        let Calls {
            caller,
            signal,
            signal_name,
            transport,
            outstanding_max,
            shared,
            setup,
            cpu,
        } = self;
        let hung_up = caller.hang_up(bye);
        shared.hold_open.store(false, Ordering::Relaxed);
        drop(signal);
        let hung_up = hung_up?;
        let failed = setup.failed.values().sum();
        let seconds = setup.took.as_secs_f64();
        Ok(SipReport {
            transport: transport.name().into(),
            signal: signal_name,
            invites_outstanding_max: outstanding_max,
            calls_attempted: setup.attempted,
            calls_answered: setup.answered,
            calls_failed: failed,
            failed_by_status: setup.failed,
            first_failure: setup.first_failure,
            setup_s: seconds,
            calls_per_s: match seconds > 0.0 {
                true => setup.answered as f64 / seconds,
                false => 0.0,
            },
            invite_200_us: Latency::of(&setup.invite_200_us),
            setup_cpu: cpu,
            byes_sent: hung_up.byes_sent,
            byes_answered: hung_up.bye_statuses.values().sum(),
            bye_statuses: hung_up.bye_statuses,
            ended_by_peer: hung_up.ended_by_peer,
            calls_left: hung_up.calls_left,
        })
    }
}
