//! `msrp-loadgen bench`: calibrate, start the engine, set up the sessions,
//! run the load, and judge it.
//!
//! A run's phases, in the order [`run`] takes them, one module each:
//! `settings` (the command line, the profile and the cores each side
//! gets), `start` (the calibration and the engine), `sessions` (the load
//! threads and the sessions they bind), `measure` (the ramp-up and the
//! measured interval), `stop` (the threads and the engine wound down),
//! `collect` (the figures and warnings gathered into the [`Report`]) and
//! `output` (the files and the summary); `progress` is the terminal's view
//! of them all, and `repeat` runs them N times into one report.

mod collect;
mod measure;
mod output;
mod progress;
mod repeat;
mod sessions;
mod settings;
mod start;
mod stop;
mod sweep;
mod tls;

use anyhow::Result;

use crate::profile::Profile;
use crate::report::Report;
use output::{utc_now, write_reports};
use progress::Progress;
pub use settings::BenchArgs;
use settings::{layout, Layout};

/// What every phase of a run reads: its arguments, the profile they make,
/// the cores each side gets, when it started, and its progress display.
struct Bench<'a> {
    args: &'a BenchArgs,
    profile: Profile,
    layout: Layout,
    started_at: String,
    progress: Progress,
}

/// Runs the benchmark and writes the reports; returns the report.
pub fn run(args: &BenchArgs) -> Result<Report> {
    if args.repeat > 1 && args.sweep.is_some() {
        anyhow::bail!("--repeat and --sweep do not go together: repeat a sweep by running it again");
    }
    if args.tls {
        if args.sweep.is_some() {
            anyhow::bail!("--tls and --sweep do not go together");
        }
        let report = tls::run(args)?;
        write_reports(args, &report)?;
        return Ok(report);
    }
    if args.repeat > 1 {
        return repeat::run(args);
    }
    if let Some(kind) = args.sweep {
        let report = sweep::run(args, kind)?;
        write_reports(args, &report)?;
        if let Some(curve) = &report.sweep {
            print!("{}", sweep::table(curve));
        }
        return Ok(report);
    }
    let report = measure_once(args, args.profile()?)?;
    write_reports(args, &report)?;
    Ok(report)
}

/// One whole run of `profile` (calibration, engine, sessions, load,
/// figures), written nowhere: what `run`, a repeat and a sweep step are.
pub(crate) fn measure_once(args: &BenchArgs, profile: Profile) -> Result<Report> {
    let embedded = args.target.is_none();
    let bench = Bench {
        args,
        layout: layout(&profile, embedded),
        profile,
        started_at: utc_now(),
        progress: Progress::new(args.quiet),
    };

    let calibration = start::calibration(&bench)?;
    let mut engine = start::engine(&bench)?;
    let handshakes = tls::handshakes(&bench, &engine)?;
    let rss_before = start::rss(&engine);
    let (load, threads) = sessions::set_up(&bench, &engine)?;
    let measurement = measure::measure(&bench, &engine, &load.shared, &threads);
    let tls_stats = measurement.stats_1.clone();
    let stopped = stop::wind_down(&bench, threads, &measurement, &mut engine)?;
    let mut report = collect::report(
        &bench,
        calibration,
        &engine,
        rss_before,
        &load,
        measurement,
        stopped,
    )?;
    report.tls = handshakes.map(|handshakes| tls::report(handshakes, tls_stats.as_ref()));
    Ok(report)
}
