//! Capacity as a curve, as a report keeps it (`bench --sweep`): the
//! closed-loop maximum found first, then one step per offered rate (or per
//! session count at a held rate), each with what it achieved, its latency
//! percentiles, the engine's CPU and memory, and whether it kept the SLO.

use serde::{Deserialize, Serialize};

/// What a sweep varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SweepKind {
    /// Open-loop offered rates, the sessions held.
    Rates,
    /// Session counts, the offered rate held.
    Sessions,
}

/// One step of a sweep: one open-loop run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The offered rate, messages per second.
    pub offered_per_s: f64,
    pub sessions: usize,
    /// Delivered messages per second.
    pub achieved_per_s: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    /// Cores the engine kept busy.
    pub engine_cores: f64,
    /// Engine CPU microseconds per delivered message.
    pub engine_us_per_message: Option<f64>,
    pub engine_rss_peak_bytes: u64,
    pub engine_rss_per_session: Option<f64>,
    pub errors: u64,
    /// p99 within the SLO, no errors, and the offered rate achieved (at
    /// least 95 % of it).
    pub meets_slo: bool,
}

/// A sweep's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub kind: SweepKind,
    /// The latency kind the percentiles are of (`delivered`, or
    /// `chunk_200` when the load does not wait for delivery).
    pub latency_kind: String,
    /// The closed-loop maximum the rates were drawn from (messages/s).
    pub closed_loop_max_per_s: f64,
    /// `--slo-p99`.
    pub slo_p99_us: u64,
    pub steps: Vec<Step>,
    /// The highest offered rate whose step met the SLO.
    pub slo_rate_per_s: Option<f64>,
    /// The first step that did not (where the curve bends up).
    pub knee: Option<usize>,
}
