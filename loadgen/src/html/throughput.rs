//! The throughput section: messages and megabytes per second over the
//! measured interval, one point per one-second bucket.

use std::fmt::{self, Write as _};

use super::chart::{draw, linear_ticks, Chart, Frame, Scale, Series, Tick, PALETTE};
use super::escape;
use crate::report::Bucket;
use crate::units::fixed;

pub(super) fn throughput_charts(o: &mut String, timeline: &[Bucket]) -> fmt::Result {
    writeln!(o, "<h2>Throughput over time</h2>")?;
    let buckets: Vec<&Bucket> = timeline.iter().filter(|b| b.t_s.is_finite()).collect();
    if buckets.is_empty() {
        return writeln!(o, "<p class=\"muted\">No timeline recorded.</p>");
    }
    // A bucket covers [t_s, t_s + 1): plot its rate at the middle.
    let end_s = buckets.iter().map(|b| b.t_s + 1.0).fold(1.0_f64, f64::max);
    let (x_max, x_ticks) = linear_ticks(end_s, 8.0);
    let per_bucket = |value: &dyn Fn(&Bucket) -> f64| -> Vec<(f64, f64)> {
        buckets.iter().map(|b| (b.t_s + 0.5, value(b))).collect()
    };
    let messages = per_bucket(&|b| b.messages as f64);
    let megabytes = per_bucket(&|b| b.bytes as f64 / 1e6);
    writeln!(o, "<div class=\"charts\">")?;
    for (title, y_label, points, color) in [
        ("Messages/s (1 s buckets)", "messages/s", messages, PALETTE[0]),
        ("MB/s (1 s buckets)", "MB/s", megabytes, PALETTE[2]),
    ] {
        let series = vec![Series {
            name: y_label.to_owned(),
            color,
            points,
        }];
        draw(o, &over_time(title, y_label, (x_max, &x_ticks), series, false))?;
    }
    let errors: u64 = buckets.iter().fold(0, |a, b| a.saturating_add(b.errors));
    writeln!(o, "</div>")?;
    if errors > 0 {
        let seconds: Vec<String> = buckets
            .iter()
            .filter(|b| b.errors > 0)
            .map(|b| format!("{}s: {}", fixed(b.t_s, 0), b.errors))
            .collect();
        writeln!(
            o,
            "<p class=\"bad\">Errors in the timeline: {}</p>",
            escape(&seconds.join(", "))
        )?;
    }
    Ok(())
}

/// A chart over the measured interval (x: seconds since it began, up to
/// `x_max`), its y axis from 0 to above the series' peak.
pub(super) fn over_time<'a>(
    title: &'a str,
    y_label: &'a str,
    (x_max, x_ticks): (f64, &[Tick]),
    series: Vec<Series>,
    legend: bool,
) -> Chart<'a> {
    let y_peak = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.1)
        .fold(0.0_f64, f64::max);
    let (y_max, y_ticks) = linear_ticks(y_peak, 5.0);
    Chart {
        title,
        frame: Frame {
            width: 480.0,
            height: 240.0,
            left: 58.0,
            right: 12.0,
            top: 24.0,
            bottom: 40.0,
        },
        x: Scale {
            min: 0.0,
            max: x_max,
            log: false,
        },
        x_ticks: x_ticks.to_vec(),
        x_label: "time since the measured interval began (s)",
        y: Scale {
            min: 0.0,
            max: y_max,
            log: false,
        },
        y_ticks,
        y_label,
        series,
        legend,
    }
}
