//! The footprint section: the engine's and the load's resident memory and
//! open file descriptors over the measured interval, one point per
//! one-second bucket (a soak's evidence: flat after warm-up).

use std::fmt::{self, Write as _};

use super::chart::{draw, linear_ticks, Chart, Frame, Scale, Series, PALETTE};
use crate::report::Bucket;

pub(super) fn footprint_charts(o: &mut String, timeline: &[Bucket]) -> fmt::Result {
    let buckets: Vec<&Bucket> = timeline
        .iter()
        .filter(|b| b.t_s.is_finite() && (b.engine_rss_bytes.is_some() || b.load_rss_bytes.is_some()))
        .collect();
    if buckets.is_empty() {
        return Ok(());
    }
    writeln!(o, "<h2>Memory and file descriptors over time</h2>")?;
    let end_s = buckets.iter().map(|b| b.t_s + 1.0).fold(1.0_f64, f64::max);
    let (x_max, x_ticks) = linear_ticks(end_s, 8.0);
    // Sampled at the bucket's end.
    let points = |value: &dyn Fn(&Bucket) -> Option<u64>, scale: f64| -> Vec<(f64, f64)> {
        buckets
            .iter()
            .filter_map(|b| value(b).map(|v| (b.t_s + 1.0, v as f64 / scale)))
            .collect()
    };
    let charts = [
        (
            "Resident memory (MB)",
            "MB",
            points(&|b| b.engine_rss_bytes, 1e6),
            points(&|b| b.load_rss_bytes, 1e6),
        ),
        (
            "Open file descriptors",
            "descriptors",
            points(&|b| b.engine_fds, 1.0),
            points(&|b| b.load_fds, 1.0),
        ),
    ];
    writeln!(o, "<div class=\"charts\">")?;
    for (title, y_label, engine, load) in charts {
        let y_peak = engine.iter().chain(&load).map(|p| p.1).fold(0.0_f64, f64::max);
        let (y_max, y_ticks) = linear_ticks(y_peak, 5.0);
        let series = [("engine", PALETTE[0], engine), ("load", PALETTE[1], load)]
            .into_iter()
            .filter(|(_, _, points)| !points.is_empty())
            .map(|(name, color, points)| Series {
                name: name.to_owned(),
                color,
                points,
            })
            .collect();
        draw(
            o,
            &Chart {
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
                x_ticks: x_ticks.clone(),
                x_label: "time since the measured interval began (s)",
                y: Scale {
                    min: 0.0,
                    max: y_max,
                    log: false,
                },
                y_ticks,
                y_label,
                series,
                legend: true,
            },
        )?;
    }
    writeln!(o, "</div>")
}
