//! The end of a run: the load threads joined within a deadline and their
//! records merged, the subscriber's figures taken, and the engine stopped.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::measure::Measurement;
use super::sessions::Threads;
use super::{start, Bench};
use crate::embedded::Engine;
use crate::load::Recorded;
use crate::report::{SipReport, SubscriberReport};

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
}

/// Ends the calls (`--mode sip`), joins every load thread, stops the
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
    })
}
