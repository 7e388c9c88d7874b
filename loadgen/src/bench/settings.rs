//! What a run is asked to do: the `bench` command line, the profile it
//! makes (scenario, then profile file, then flags), and which cores the
//! engine and the load get.

use std::path::PathBuf;

use anyhow::Result;

use msrp_engine::control::EventKind;

use crate::profile::{ControlForm, Direction, FileSession, Profile, Scenario, Seconds, SizeMix};
use crate::rest::{RestForm, BATCH_MAX};
use crate::sip::SipTransport;

/// How a run's sessions come to exist in the engine.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetupMode {
    /// Created through the engine's control socket, as SDP would
    /// describe them.
    #[default]
    Inject,
    /// Set up by SIP calls through msrp-signal.
    Sip,
    /// Set up by 3PCC calls on msrp-signal's REST API, which also asks
    /// the engine's sends.
    Rest,
}

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
    /// `mixed`: the file on a session of its own (`other`), or on a session
    /// that sends texts too (`same`): then the texts of that session wait in
    /// its send queue behind the file's chunks [default: other].
    #[arg(long, value_enum, value_name = "WHICH")]
    pub file_session: Option<FileSession>,
    /// `mixed`: start the next file each time one is through, until the
    /// measured interval ends, instead of ending with the first (a soak).
    #[arg(long)]
    pub file_repeat: bool,
    /// One-chunk messages the load's sessions send between two chunks of a
    /// larger message (0: each message whole before the next, the order
    /// before interleaving) [default: 16].
    #[arg(long, value_name = "N")]
    pub interleave_messages_max: Option<u32>,
    /// An external engine's MSRP address (needs --control).
    #[arg(long, value_name = "HOST:PORT", requires = "control")]
    pub target: Option<String>,
    /// An external engine's control socket (needs --target).
    #[arg(long, value_name = "PATH", requires = "target")]
    pub control: Option<PathBuf>,
    /// How the sessions are set up: `inject` creates them through the
    /// engine's control socket; `sip` sets each up by INVITE -> 200 -> ACK
    /// through msrp-signal (embedded, or --signal-sip) and binds the
    /// answered path; `rest` by a 3PCC `POST /v1/sessions` on
    /// msrp-signal's REST API (embedded, or --rest), which then asks the
    /// engine's sends too [default: inject].
    #[arg(long, value_enum, default_value_t = SetupMode::Inject)]
    pub mode: SetupMode,
    /// `--mode sip`: the SIP transport to msrp-signal.
    #[arg(long, value_enum, default_value_t = SipTransport::Udp)]
    pub sip_transport: SipTransport,
    /// `--mode sip`: a running msrp-signal's SIP address (for that
    /// transport), fed by the engine at --target/--control, instead of
    /// the embedded one.
    #[arg(long, value_name = "HOST:PORT", requires = "target")]
    pub signal_sip: Option<String>,
    /// `--mode sip`: INVITEs out and not yet finally answered, at most.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub invites_outstanding: usize,
    /// `--mode sip`: leave the calls up at the end instead of a BYE each.
    #[arg(long)]
    pub no_bye: bool,
    /// `--mode rest`: the engine's sends as `POST /v1/messages:batch`
    /// (`batch`) or a `POST /v1/sessions/{id}/messages` each (`single`).
    #[arg(long, value_enum, default_value_t = RestForm::Batch)]
    pub rest_form: RestForm,
    /// `--mode rest`, `batch`: messages per request, at most (1..=1000).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub rest_batch: usize,
    /// `--mode rest`: keep-alive connections to the REST API, one request
    /// in flight on each [default: 4 for batch, 64 for single].
    #[arg(long, value_name = "N")]
    pub rest_connections: Option<usize>,
    /// `--mode rest`: a running msrp-signal's REST base
    /// (`http://HOST:PORT[/PREFIX]`), fed by the engine at
    /// --target/--control, instead of the embedded one.
    #[arg(long, value_name = "URL", requires = "target")]
    pub rest: Option<String>,
    /// `--mode rest`: the bearer token for --rest.
    #[arg(long, value_name = "TOKEN", requires = "rest")]
    pub rest_token: Option<String>,
    /// Also read every engine event, as an application would (the engine
    /// builds events only for subscribers).
    #[arg(long)]
    pub subscribe: bool,
    /// Subscribe to these events only (comma-separated, e.g.
    /// `delivered,failed`); implies --subscribe.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = clap::value_parser!(EventKind))]
    pub subscribe_events: Vec<EventKind>,
    /// Talk to the engine's control socket as a version-1 application: a
    /// `send` command per message (direction engine) and a frame per event
    /// (--subscribe), instead of batches.
    #[arg(long)]
    pub one_by_one: bool,
    /// MSRP over TLS beside plaintext: certificates made at start, the
    /// embedded engine given a TLS listener, and the profile run twice,
    /// plaintext then with `msrps:` sessions, with the same settings (with
    /// --repeat N: N pairs); the report carries both, their ratio and the
    /// handshake rate.
    #[arg(long)]
    pub tls: bool,
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
    /// A label the report carries (a commit, a branch, a setting), shown by
    /// `compare` and `trend`; the git commit is recorded anyway when the
    /// run is in a checkout.
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    /// Run the profile N times (each calibrated) and write one report with
    /// every run and, per metric, the median and spread.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Capacity as a curve: `rates` finds the closed-loop maximum, then runs
    /// open loop at rising rates (`--rates`, default 10 % .. 110 % of it);
    /// `sessions` holds the rate (`--rate`, default half the maximum) and
    /// grows the session count (`--sweep-sessions`).
    #[arg(long, value_enum, value_name = "WHAT", num_args = 0..=1, default_missing_value = "rates")]
    pub sweep: Option<crate::curve::SweepKind>,
    /// `--sweep rates`: the offered rates, messages/s, comma-separated (a
    /// value ending in `%` is of the closed-loop maximum).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub rates: Vec<String>,
    /// `--sweep sessions`: the session counts, comma-separated [default:
    /// 1000,10000,100000,1000000; with --smoke 64,256,1024].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub sweep_sessions: Vec<usize>,
    /// The latency objective of a sweep: the highest rate whose p99 stays
    /// under it (with no errors) is reported.
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = msrp_engine::serve::parse_duration)]
    pub slo_p99: std::time::Duration,
}

impl BenchArgs {
    /// `--mode rest`: the keep-alive connections to the REST API.
    pub fn rest_connections(&self) -> usize {
        self.rest_connections
            .unwrap_or_else(|| self.rest_form.default_connections())
            .max(1)
    }

    /// Whether a subscriber reads events, and which (empty: all).
    pub fn subscription(&self) -> Option<Vec<EventKind>> {
        (self.subscribe || !self.subscribe_events.is_empty()).then(|| self.subscribe_events.clone())
    }

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
            file_session => file_session,
            interleave_messages_max => interleave_messages_max,
        );
        if self.rate.is_some() {
            p.rate = self.rate;
        }
        if self.success_report {
            p.success_report = true;
        }
        if self.file_repeat {
            p.file_repeat = true;
        }
        if self.no_calibrate {
            p.calibrate = false;
        }
        if self.one_by_one {
            p.control = ControlForm::OneByOne;
        }
        if self.tls {
            p.tls = true;
        }
        p.validate()?;
        if self.mode == SetupMode::Rest && !(1..=BATCH_MAX).contains(&self.rest_batch) {
            anyhow::bail!("--rest-batch {}: between 1 and {BATCH_MAX}", self.rest_batch);
        }
        if p.tls && (self.mode != SetupMode::Inject || self.target.is_some()) {
            anyhow::bail!("--tls runs against the embedded engine with injected sessions (no --mode sip/rest, no --target)");
        }
        if self.mode != SetupMode::Rest && self.rest.is_some() {
            anyhow::bail!("--rest needs --mode rest");
        }
        Ok(p)
    }
}

/// Which cores the engine and the load get.
pub(super) struct Layout {
    pub(super) shards: usize,
    pub(super) engine_cpus: Vec<usize>,
    pub(super) load_threads: usize,
    pub(super) load_cpus: Vec<usize>,
}

pub(super) fn layout(profile: &Profile, embedded: bool) -> Layout {
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
