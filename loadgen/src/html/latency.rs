//! The latency section: a table of each kind's percentiles, then their
//! curves on HdrHistogram's percentile axis.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::chart::{draw, Chart, Frame, Scale, Series, Tick, PALETTE};
use super::escape;
use crate::report::Latency;
use crate::units::{compact, fixed, grouped};

pub(super) fn latency(o: &mut String, kinds: &BTreeMap<String, Latency>) -> fmt::Result {
    writeln!(o, "<h2>Latency (µs)</h2>")?;
    if kinds.is_empty() {
        return writeln!(o, "<p class=\"muted\">No latency measured.</p>");
    }
    writeln!(
        o,
        "<table><tr><th>kind</th><th>count</th><th>min</th><th>mean</th><th>p50</th>\
         <th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>"
    )?;
    for (kind, l) in kinds {
        writeln!(
            o,
            "<tr><th>{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(kind),
            grouped(l.count),
            grouped(l.min),
            fixed(l.mean, 1),
            grouped(l.p50),
            grouped(l.p90),
            grouped(l.p99),
            grouped(l.p999),
            grouped(l.max)
        )?;
    }
    writeln!(o, "</table>")?;
    latency_chart(o, kinds)
}

/// The highest percentile drawn: 100% itself is infinitely far right on a
/// 1/(1-p) axis, so the maximum sits at 99.9999%.
const PERCENTILE_DECADES_MAX: f64 = 6.0;

/// HdrHistogram's percentile axis: log10(1 / (1 - p)), so 90% is 1,
/// 99% is 2, 99.9% is 3.
fn percentile_x(percentile: f64) -> f64 {
    let remaining = (100.0 - percentile.clamp(0.0, 100.0)) / 100.0;
    let x = (1.0 / remaining).log10();
    if x.is_finite() {
        x.clamp(0.0, PERCENTILE_DECADES_MAX)
    } else {
        PERCENTILE_DECADES_MAX
    }
}

/// `0%`, `90%`, `99%`, `99.9%`... for `decades` nines.
fn percentile_label(decades: u32) -> String {
    match decades {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)).replace(".%", "%"),
    }
}

fn latency_chart(o: &mut String, kinds: &BTreeMap<String, Latency>) -> fmt::Result {
    let series: Vec<Series> = kinds
        .iter()
        .enumerate()
        .map(|(i, (kind, l))| Series {
            name: kind.clone(),
            color: PALETTE[i % PALETTE.len()],
            points: l
                .curve
                .iter()
                .filter(|(p, _)| p.is_finite())
                .map(|&(p, us)| (percentile_x(p), us as f64))
                .collect(),
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.points.iter());
    if all().next().is_none() {
        return writeln!(o, "<p class=\"muted\">No latency curve recorded.</p>");
    }
    let x_max = all()
        .map(|p| p.0.ceil())
        .fold(4.0_f64, f64::max)
        .min(PERCENTILE_DECADES_MAX);
    let x_ticks = (0..=x_max as u32)
        .map(|d| Tick {
            at: f64::from(d),
            label: percentile_label(d),
        })
        .collect();
    // Log microseconds: the kinds span decades (a chunk's 200 against a
    // session's setup), and 0 µs is drawn at 1 µs.
    let lowest = all().map(|p| p.1).fold(f64::INFINITY, f64::min).max(1.0);
    let highest = all().map(|p| p.1).fold(1.0_f64, f64::max);
    let low_decade = lowest.log10().floor();
    let mut high_decade = highest.log10().ceil();
    if high_decade <= low_decade {
        high_decade = low_decade + 1.0;
    }
    let y_ticks = (low_decade as i32..=high_decade as i32)
        .map(|d| {
            let at = 10f64.powi(d);
            Tick {
                at,
                label: compact(at),
            }
        })
        .collect();
    writeln!(o, "<h3>Latency by percentile</h3>")?;
    draw(
        o,
        &Chart {
            title: "Latency percentile distribution",
            frame: Frame {
                width: 720.0,
                height: 340.0,
                left: 58.0,
                right: 36.0,
                top: 24.0,
                bottom: 40.0,
            },
            x: Scale {
                min: 0.0,
                max: x_max,
                log: false,
            },
            x_ticks,
            x_label: "percentile (log scale of 1/(1-p))",
            y: Scale {
                min: 10f64.powf(low_decade),
                max: 10f64.powf(high_decade),
                log: true,
            },
            y_ticks,
            y_label: "latency (µs, log scale)",
            series,
            legend: true,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_follows_hdrhistogram() {
        assert_eq!(percentile_x(0.0), 0.0);
        assert!((percentile_x(90.0) - 1.0).abs() < 1e-9);
        assert!((percentile_x(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(percentile_x(100.0), PERCENTILE_DECADES_MAX);
        assert_eq!(percentile_label(0), "0%");
        assert_eq!(percentile_label(2), "99%");
        assert_eq!(percentile_label(4), "99.99%");
    }
}
