//! `bench --sweep`: capacity as a curve. First the profile runs closed loop
//! to find the maximum (with at least 32 messages outstanding per session,
//! so that the window does not cap it); then one open-loop run per step: rising offered
//! rates (`rates`), or, at a held rate, rising session counts
//! (`sessions`). Each step keeps what it achieved, its latency
//! percentiles (measured from each message's scheduled send time, so
//! queueing shows), the engine's CPU and memory; the highest rate whose p99
//! stays under `--slo-p99` with no errors is the answer a capacity planner
//! asks for, and the first step that misses it is the knee.

use anyhow::{bail, Result};

use super::{measure_once, BenchArgs};
use crate::curve::{Step, Sweep, SweepKind};
use crate::profile::Profile;
use crate::report::{Report, LATENCY_CHUNK, LATENCY_DELIVERED};

/// Offered rates, as fractions of the closed-loop maximum, by default.
const DEFAULT_RATES: [f64; 7] = [0.10, 0.25, 0.50, 0.70, 0.85, 1.00, 1.10];
const DEFAULT_SESSIONS: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
const SMOKE_SESSIONS: [usize; 4] = [16, 64, 256, 1024];
/// Messages outstanding per session while the maximum is sought, at least.
const CLOSED_LOOP_WINDOW_MIN: usize = 32;
/// A step achieves its offered rate when it delivers at least this share.
const ACHIEVED: f64 = 0.95;

/// The offered rates: `--rates` (messages/s, or `N%` of `max`), else the
/// default fractions of `max`.
fn rates(args: &BenchArgs, max: f64) -> Result<Vec<f64>> {
    if args.rates.is_empty() {
        return Ok(DEFAULT_RATES.iter().map(|f| f * max).collect());
    }
    let mut out = Vec::new();
    for text in &args.rates {
        let text = text.trim();
        let rate = match text.strip_suffix('%') {
            Some(pct) => pct.trim().parse::<f64>().map(|p| p / 100.0 * max),
            None => text.parse::<f64>(),
        };
        match rate {
            Ok(rate) if rate.is_finite() && rate > 0.0 => out.push(rate),
            _ => bail!("--rates: {text:?} is not a positive rate (messages/s, or N% of the maximum)"),
        }
    }
    Ok(out)
}

/// The latency a step is judged by: delivery when the load waits for it.
fn latency_kind(report: &Report) -> &'static str {
    match report.latency_us.get(LATENCY_DELIVERED) {
        Some(latency) if latency.count > 0 => LATENCY_DELIVERED,
        _ => LATENCY_CHUNK,
    }
}

fn step(report: &Report, offered: f64, kind: &str, slo_us: u64) -> Step {
    let latency = report.latency_us.get(kind).cloned().unwrap_or_default();
    let achieved = report.throughput.messages_per_s;
    let errors: u64 = report.errors.values().sum();
    let sessions = report.sessions.established;
    Step {
        offered_per_s: offered,
        sessions,
        achieved_per_s: achieved,
        p50_us: latency.p50,
        p99_us: latency.p99,
        p999_us: latency.p999,
        engine_cores: report.cpu.engine_cores,
        engine_us_per_message: (achieved > 0.0 && report.cpu.engine_cores > 0.0)
            .then(|| report.cpu.engine_cores * 1e6 / achieved),
        engine_rss_peak_bytes: report.rss_bytes.engine_peak,
        engine_rss_per_session: report.rss_bytes.engine_per_session,
        errors,
        meets_slo: latency.count > 0
            && latency.p99 <= slo_us
            && errors == 0
            && achieved >= ACHIEVED * offered,
    }
}

/// The SLO rate and the knee of finished steps.
pub(crate) fn judge(steps: &[Step]) -> (Option<f64>, Option<usize>) {
    let slo_rate = steps
        .iter()
        .filter(|s| s.meets_slo)
        .map(|s| s.offered_per_s)
        .fold(None, |best: Option<f64>, r| Some(best.map_or(r, |b| b.max(r))));
    let knee = steps.iter().position(|s| !s.meets_slo);
    (slo_rate, knee)
}

/// Runs the sweep; the returned report is the closed-loop run's, with the
/// curve in `sweep`.
pub(super) fn run(args: &BenchArgs, kind: SweepKind) -> Result<Report> {
    let base = args.profile()?;
    // Deep enough a window that it, not the engine, cannot be the limit.
    let mut closed = base.clone();
    closed.rate = None;
    closed.window = closed.window.max(CLOSED_LOOP_WINDOW_MIN);
    say(args, "closed loop: finding the maximum");
    let mut report = measure_once(args, closed)?;
    let max = report.throughput.messages_per_s;
    if max <= 0.0 {
        bail!("the closed-loop run delivered nothing: no curve to draw");
    }
    let latency = latency_kind(&report);
    let slo_us = u64::try_from(args.slo_p99.as_micros()).unwrap_or(u64::MAX);
    // The steps compare with each other, not with the host: calibrated once.
    let mut open = base.clone();
    open.calibrate = false;
    let plan: Vec<(f64, Profile)> = match kind {
        SweepKind::Rates => rates(args, max)?
            .into_iter()
            .map(|rate| {
                let mut p = open.clone();
                p.rate = Some(rate);
                (rate, p)
            })
            .collect(),
        SweepKind::Sessions => {
            let rate = base.rate.unwrap_or(max / 2.0);
            let counts: Vec<usize> = match (args.sweep_sessions.is_empty(), args.smoke) {
                (false, _) => args.sweep_sessions.clone(),
                (true, true) => SMOKE_SESSIONS.to_vec(),
                (true, false) => DEFAULT_SESSIONS.to_vec(),
            };
            counts
                .into_iter()
                .map(|sessions| {
                    let mut p = open.clone();
                    p.rate = Some(rate);
                    p.sessions_per_connection = sessions.div_ceil(p.connections.max(1)).max(1);
                    (rate, p)
                })
                .collect()
        }
    };
    let total = plan.len();
    let mut steps = Vec::with_capacity(total);
    for (i, (offered, profile)) in plan.into_iter().enumerate() {
        say(
            args,
            &format!(
                "step {}/{total}: {offered:.0} msg/s offered, {} sessions",
                i + 1,
                profile.total_sessions()
            ),
        );
        let run = measure_once(args, profile)?;
        steps.push(step(&run, offered, latency, slo_us));
        for warning in run.warnings {
            if !report.warnings.contains(&warning) {
                report.warnings.push(warning);
            }
        }
    }
    let (slo_rate, knee) = judge(&steps);
    if slo_rate.is_none() {
        report.warnings.push(format!(
            "no step kept p99 {latency} under {} us with no errors",
            slo_us
        ));
    }
    report.sweep = Some(Sweep {
        kind,
        latency_kind: latency.to_string(),
        closed_loop_max_per_s: max,
        slo_p99_us: slo_us,
        steps,
        slo_rate_per_s: slo_rate,
        knee,
    });
    Ok(report)
}

fn say(args: &BenchArgs, what: &str) {
    if !args.quiet {
        eprintln!("sweep: {what}");
    }
}

/// The sweep's table, for the terminal summary.
pub(crate) fn table(sweep: &Sweep) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n  capacity curve ({:?}; closed-loop max {:.0} msg/s; SLO p99 {} <= {} us)",
        sweep.kind, sweep.closed_loop_max_per_s, sweep.latency_kind, sweep.slo_p99_us
    );
    let _ = writeln!(
        out,
        "  {:>12} {:>9} {:>12} {:>9} {:>9} {:>9} {:>7} {:>9} {:>7}  slo",
        "offered/s", "sessions", "achieved/s", "p50 us", "p99 us", "p99.9 us", "cores", "us/msg", "errors"
    );
    for (i, s) in sweep.steps.iter().enumerate() {
        let knee = if sweep.knee == Some(i) { "  <- knee" } else { "" };
        let _ = writeln!(
            out,
            "  {:>12.0} {:>9} {:>12.0} {:>9} {:>9} {:>9} {:>7.2} {:>9} {:>7}  {}{knee}",
            s.offered_per_s,
            s.sessions,
            s.achieved_per_s,
            s.p50_us,
            s.p99_us,
            s.p999_us,
            s.engine_cores,
            s.engine_us_per_message.map_or("-".into(), |v| format!("{v:.2}")),
            s.errors,
            if s.meets_slo { "yes" } else { "no" },
        );
    }
    let _ = match sweep.slo_rate_per_s {
        Some(rate) => writeln!(out, "  highest rate within the SLO: {rate:.0} msg/s"),
        None => writeln!(out, "  no rate met the SLO"),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(offered: f64, meets: bool) -> Step {
        Step {
            offered_per_s: offered,
            meets_slo: meets,
            ..Step::default()
        }
    }

    #[test]
    fn the_slo_rate_is_the_highest_step_that_met_it_and_the_knee_the_first_that_did_not() {
        let steps = [s(100.0, true), s(200.0, true), s(300.0, false), s(400.0, false)];
        assert_eq!(judge(&steps), (Some(200.0), Some(2)));
        assert_eq!(judge(&[s(100.0, false)]), (None, Some(0)));
        assert_eq!(judge(&[s(100.0, true), s(200.0, true)]), (Some(200.0), None));
    }
}
