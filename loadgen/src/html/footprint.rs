//! The footprint section: the engine's and the load's resident memory and
//! open file descriptors over the measured interval, one point per
//! one-second bucket (a soak's evidence: flat after warm-up).

use std::fmt::{self, Write as _};

use super::chart::{draw, linear_ticks, Series, PALETTE};
use super::throughput::over_time;
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
        let series = [("engine", PALETTE[0], engine), ("load", PALETTE[1], load)]
            .into_iter()
            .filter(|(_, _, points)| !points.is_empty())
            .map(|(name, color, points)| Series {
                name: name.to_owned(),
                color,
                points,
            })
            .collect();
        draw(o, &over_time(title, y_label, (x_max, &x_ticks), series, true))?;
    }
    writeln!(o, "</div>")
}
