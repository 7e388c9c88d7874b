//! The end of a run: the calls ended (`--mode sip`) or the REST sessions
//! deleted (`--mode rest`), the load threads joined within a deadline and
//! their records merged, the subscriber's figures taken, and the engine
//! stopped.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::measure::Measurement;
use super::sessions::Threads;
use super::{start, Bench};
use crate::embedded::Engine;
use crate::load::Recorded;
use crate::profile::{Direction, Scenario};
use crate::report::{RestReport, SipReport, SubscriberReport};

/// How long the load threads get to end after the run.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the ended threads and the stopped engine leave for the report.
pub(super) struct Stopped {
    /// The load threads' histograms and errors, merged.
    pub(super) recorded: Recorded,
    pub(super) subscriber: Option<SubscriberReport>,
    /// The engine's resident memory just before it stopped.
    pub(super) rss_after: u64,
    /// Why the embedded engine did not stop cleanly (with millions of
    /// sessions its drain may outlast the wait): a warning, as the figures
    /// were all taken before.
    pub(super) stop_failed: Option<String>,
    /// `--mode sip`: the calls, ended.
    pub(super) sip: Option<SipReport>,
    /// `--mode rest`: the REST side, its sessions deleted (latencies not
    /// yet filled).
    pub(super) rest: Option<RestReport>,
}

/// Ends the calls (`--mode sip`) or deletes the REST sessions after the
/// REST commander ended (`--mode rest`), joins every load thread, stops the
/// subscriber, then the engine.
pub(super) fn wind_down(
    bench: &Bench,
    threads: Threads,
    measurement: &Measurement,
    engine: &mut Engine,
) -> Result<Stopped> {
    let progress = &bench.progress;
    let Threads {
        workers,
        commander,
        subscriber,
        calls,
        rest,
    } = threads;
    // The load's connections stay open until the BYEs are answered, so
    // that each call ends by its BYE, not by its MSRP session closing.
    let sip = match calls {
        Some(calls) => {
            progress.phase("ending the calls");
            Some(calls.finish(!bench.args.no_bye)?)
        }
        None => None,
    };
    let (measured, events_0, events_1) = (measurement.measured, measurement.events_0, measurement.events_1);
    let mut recorded = Recorded::new();
    // A thread still blocked (on a socket the engine stopped serving) ends
    // the run with an error instead of hanging it.
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut commander = commander;
    // The REST commander's last requests are answered before the sessions
    // they name are deleted.
    let rest = match rest {
        Some(rest) => {
            let profile = &bench.profile;
            let rest_sent = commander.is_some();
            if let Some(commander) = commander.take() {
                recorded.merge(join(commander, deadline)?);
            }
            progress.phase("deleting the REST sessions");
            let load_sent = profile.direction.load_sends() && profile.scenario != Scenario::Sessions;
            let direction = match (rest_sent, load_sent, profile.direction) {
                (true, _, Direction::Both) => "both",
                (true, _, _) => "engine",
                (false, true, _) => "load",
                (false, false, _) => "none",
            };
            Some(rest.finish(direction, measured))
        }
        None => None,
    };
    for worker in workers.into_iter().chain(commander) {
        recorded.merge(join(worker, deadline)?);
    }
    let subscriber = subscriber.map(|s| {
        let dropped = s.dropped();
        s.stop();
        SubscriberReport {
            subscribed_to: s.subscribed_to.clone(),
            events: events_1 - events_0,
            events_per_s: (events_1 - events_0) as f64 / measured.as_secs_f64(),
            dropped,
        }
    });
    let rss_after = start::rss(engine);
    let stopped = engine.stop();
    progress.finish();
    Ok(Stopped {
        recorded,
        subscriber,
        rss_after,
        stop_failed: stopped.err().map(|e| format!("{e:#}")),
        sip,
        rest,
    })
}

/// Joins a load thread by `deadline`.
fn join(thread: JoinHandle<Result<Recorded>>, deadline: Instant) -> Result<Recorded> {
    while !thread.is_finished() {
        if Instant::now() > deadline {
            let name = thread.thread().name().unwrap_or("a load thread").to_string();
            bail!("{name} did not stop within {STOP_TIMEOUT:?} of the end of the run");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    match thread.join() {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(e).context("a load thread failed"),
        Err(_) => bail!("a load thread panicked"),
    }
}
