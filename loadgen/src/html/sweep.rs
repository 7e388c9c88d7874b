//! The capacity curve of `bench --sweep`: latency against the throughput
//! achieved, with the SLO line and the knee marked (rates), or cost per
//! message and memory per session against the session count (sessions),
//! and the steps' table.

use std::fmt::{self, Write as _};

use super::chart::{draw, linear_ticks, Chart, Frame, Scale, Series, PALETTE};
use super::escape;
use crate::curve::{Sweep, SweepKind};
use crate::units::fixed;

fn frame() -> Frame {
    Frame {
        width: 640.0,
        height: 300.0,
        left: 64.0,
        right: 12.0,
        top: 24.0,
        bottom: 40.0,
    }
}

pub(super) fn sweep(o: &mut String, sweep: &Sweep) -> fmt::Result {
    writeln!(o, "<h2>Capacity curve</h2>")?;
    match sweep.slo_rate_per_s {
        Some(rate) => writeln!(
            o,
            "<p><b>{} msg/s</b> is the highest offered rate whose p99 {} stayed within {} us with no errors \
             (closed-loop maximum {} msg/s).</p>",
            fixed(rate, 0),
            escape(&sweep.latency_kind),
            sweep.slo_p99_us,
            fixed(sweep.closed_loop_max_per_s, 0)
        )?,
        None => writeln!(
            o,
            "<p class=\"bad\">No step kept p99 {} within {} us with no errors.</p>",
            escape(&sweep.latency_kind),
            sweep.slo_p99_us
        )?,
    }
    writeln!(o, "<div class=\"charts\" id=\"sweep-charts\">")?;
    match sweep.kind {
        SweepKind::Rates => latency_curve(o, sweep)?,
        SweepKind::Sessions => cost_curves(o, sweep)?,
    }
    writeln!(o, "</div>")?;
    steps_table(o, sweep)
}

/// p50 and p99 against achieved throughput; the SLO as a line, the knee
/// as a point.
fn latency_curve(o: &mut String, sweep: &Sweep) -> fmt::Result {
    let x_peak = sweep
        .steps
        .iter()
        .map(|s| s.achieved_per_s)
        .fold(0.0_f64, f64::max);
    let (x_max, x_ticks) = linear_ticks(x_peak, 6.0);
    let y_peak = sweep
        .steps
        .iter()
        .map(|s| s.p99_us as f64)
        .fold(sweep.slo_p99_us as f64, f64::max);
    let (y_max, y_ticks) = linear_ticks(y_peak * 1.05, 5.0);
    let points = |f: &dyn Fn(&crate::curve::Step) -> f64| -> Vec<(f64, f64)> {
        sweep.steps.iter().map(|s| (s.achieved_per_s, f(s))).collect()
    };
    let mut series = vec![
        Series {
            name: "p99".into(),
            color: PALETTE[1],
            points: points(&|s| s.p99_us as f64),
        },
        Series {
            name: "p50".into(),
            color: PALETTE[0],
            points: points(&|s| s.p50_us as f64),
        },
        Series {
            name: format!("SLO p99 {} us", sweep.slo_p99_us),
            color: PALETTE[4],
            points: vec![(0.0, sweep.slo_p99_us as f64), (x_max, sweep.slo_p99_us as f64)],
        },
    ];
    if let Some(knee) = sweep.knee.and_then(|i| sweep.steps.get(i)) {
        series.push(Series {
            name: format!("knee: {} msg/s offered", fixed(knee.offered_per_s, 0)),
            color: PALETTE[3],
            points: vec![(knee.achieved_per_s, knee.p99_us as f64)],
        });
    }
    draw(
        o,
        &Chart {
            title: "Latency against throughput",
            frame: frame(),
            x: Scale {
                min: 0.0,
                max: x_max,
                log: false,
            },
            x_ticks,
            x_label: "messages/s achieved",
            y: Scale {
                min: 0.0,
                max: y_max,
                log: false,
            },
            y_ticks,
            y_label: "latency (us)",
            series,
            legend: true,
        },
    )
}

/// Engine CPU per message and RSS per session against the session count.
fn cost_curves(o: &mut String, sweep: &Sweep) -> fmt::Result {
    let x_peak = sweep
        .steps
        .iter()
        .map(|s| s.sessions as f64)
        .fold(0.0_f64, f64::max);
    let (x_max, x_ticks) = linear_ticks(x_peak, 6.0);
    for (title, y_label, color, value) in [
        (
            "Engine CPU per message",
            "us per message",
            PALETTE[0],
            &(|s: &crate::curve::Step| s.engine_us_per_message.unwrap_or(0.0))
                as &dyn Fn(&crate::curve::Step) -> f64,
        ),
        (
            "Engine memory per session",
            "octets per session",
            PALETTE[2],
            &|s: &crate::curve::Step| s.engine_rss_per_session.unwrap_or(0.0),
        ),
    ] {
        let points: Vec<(f64, f64)> = sweep
            .steps
            .iter()
            .map(|s| (s.sessions as f64, value(s)))
            .collect();
        let y_peak = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
        let (y_max, y_ticks) = linear_ticks(y_peak * 1.05, 5.0);
        draw(
            o,
            &Chart {
                title,
                frame: frame(),
                x: Scale {
                    min: 0.0,
                    max: x_max,
                    log: false,
                },
                x_ticks: x_ticks.clone(),
                x_label: "sessions",
                y: Scale {
                    min: 0.0,
                    max: y_max,
                    log: false,
                },
                y_ticks,
                y_label,
                series: vec![Series {
                    name: y_label.into(),
                    color,
                    points,
                }],
                legend: false,
            },
        )?;
    }
    Ok(())
}

fn steps_table(o: &mut String, sweep: &Sweep) -> fmt::Result {
    writeln!(
        o,
        "<table id=\"sweep-steps\"><tr><th>offered/s</th><th>sessions</th><th>achieved/s</th><th>p50 us</th>\
         <th>p99 us</th><th>p99.9 us</th><th>engine cores</th><th>us/msg</th><th>RSS/session</th>\
         <th>errors</th><th>SLO</th></tr>"
    )?;
    for (i, s) in sweep.steps.iter().enumerate() {
        let knee = if sweep.knee == Some(i) { " (knee)" } else { "" };
        writeln!(
            o,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"{}\">{}{knee}</td></tr>",
            fixed(s.offered_per_s, 0),
            s.sessions,
            fixed(s.achieved_per_s, 0),
            s.p50_us,
            s.p99_us,
            s.p999_us,
            fixed(s.engine_cores, 2),
            s.engine_us_per_message.map_or("-".into(), |v| fixed(v, 2)),
            s.engine_rss_per_session.map_or("-".into(), |v| fixed(v, 0)),
            s.errors,
            if s.meets_slo { "good" } else { "bad" },
            if s.meets_slo { "met" } else { "missed" },
        )?;
    }
    writeln!(o, "</table>")
}
