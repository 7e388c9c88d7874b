//! The repeated runs' section (`bench --repeat N`): per metric a small
//! chart of every run's value against their median, then a table of the
//! median, spread, minimum and maximum. Shows how far one run strays on
//! this machine, which is what a regression gate's tolerance must allow.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::chart::{draw, linear_ticks, Chart, Frame, Scale, Series, Tick, PALETTE};
use super::escape;
use crate::report::Report;
use crate::stats::{self, Better, Stats};
use crate::summary::metric_value;
use crate::units::percent;

/// The colours of a spread chart: each run's dot, the median, the spread.
pub(super) const RUN_COLOR: &str = PALETTE[0];
pub(super) const MEDIAN_COLOR: &str = PALETTE[1];
pub(super) const SPREAD_COLOR: &str = "#999";

pub(super) fn repeated_runs(o: &mut String, r: &Report) -> fmt::Result {
    if r.runs.is_empty() {
        return Ok(());
    }
    // A report written before `stats` existed still has its runs.
    let stats: BTreeMap<String, Stats> = match r.stats.is_empty() {
        true => stats::summarize(r),
        false => r.stats.clone(),
    };
    writeln!(o, "<h2>Repeated runs</h2>")?;
    writeln!(
        o,
        "<p class=\"sub\">{} runs of the same profile, each calibrated; the figures above are the \
         median run's (by messages/s). Dots: each run; line: the median. Spread: the median \
         absolute deviation times 1.4826, a robust standard deviation.</p>",
        r.runs.len()
    )?;
    writeln!(o, "<div class=\"charts\">")?;
    for (name, s) in &stats {
        writeln!(o, "<div class=\"metric\" data-metric=\"{}\">", escape(name))?;
        runs_chart(o, name, s)?;
        writeln!(o, "</div>")?;
    }
    writeln!(o, "</div>")?;
    writeln!(
        o,
        "<table><tr><th>metric</th><th>better</th><th>median</th><th>spread</th><th>spread/median</th>\
         <th>min</th><th>max</th><th>runs</th></tr>"
    )?;
    for (name, s) in &stats {
        writeln!(
            o,
            "<tr><th>{}</th><td>{}</td><td class=\"n\">{}</td><td class=\"n\">± {}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(name),
            better(s.better),
            escape(&metric_value(s.median, &s.unit)),
            escape(&metric_value(s.spread, &s.unit)),
            percent(s.relative_spread()),
            escape(&metric_value(s.min, &s.unit)),
            escape(&metric_value(s.max, &s.unit)),
            s.values.len()
        )?;
    }
    writeln!(o, "</table>")
}

pub(super) fn better(b: Better) -> &'static str {
    match b {
        Better::Higher => "higher",
        Better::Lower => "lower",
    }
}

/// The y axis from 0 to the largest value, padded to a whole tick: a flat
/// or all-zero metric still gets a range.
pub(super) fn y_axis(values: impl Iterator<Item = f64>) -> (Scale, Vec<Tick>) {
    let peak = values.filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    let (max, ticks) = linear_ticks(peak * 1.05, 4.0);
    (
        Scale {
            min: 0.0,
            max,
            log: false,
        },
        ticks,
    )
}

/// A dot for one value: a one-point series, which the toolkit draws as a
/// circle, with `name` as its tooltip.
pub(super) fn dot(name: String, x: f64, y: f64) -> Series {
    Series {
        name,
        color: RUN_COLOR,
        points: vec![(x, y)],
    }
}

fn runs_chart(o: &mut String, name: &str, s: &Stats) -> fmt::Result {
    let n = s.values.len();
    let (y, y_ticks) = y_axis(s.values.iter().copied().chain([s.median + s.spread]));
    // Every run's number while they fit, else about ten of them.
    let every = n.div_ceil(10).max(1);
    let x_ticks = (1..=n)
        .filter(|i| (i - 1) % every == 0)
        .map(|i| Tick {
            at: i as f64,
            label: i.to_string(),
        })
        .collect();
    let x_end = n as f64 + 0.5;
    let mut series = vec![Series {
        name: format!("median {}", metric_value(s.median, &s.unit)),
        color: MEDIAN_COLOR,
        points: vec![(0.5, s.median), (x_end, s.median)],
    }];
    series.extend(s.values.iter().enumerate().map(|(i, &v)| {
        dot(
            format!("run {}: {}", i + 1, metric_value(v, &s.unit)),
            i as f64 + 1.0,
            v,
        )
    }));
    draw(
        o,
        &Chart {
            title: name,
            frame: Frame {
                width: 310.0,
                height: 180.0,
                left: 54.0,
                right: 10.0,
                top: 24.0,
                bottom: 36.0,
            },
            x: Scale {
                min: 0.5,
                max: x_end,
                log: false,
            },
            x_ticks,
            x_label: "run",
            y,
            y_ticks,
            y_label: &s.unit,
            series,
            legend: false,
        },
    )
}
