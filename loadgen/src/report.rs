//! The result of one benchmark run: what `bench` writes as JSON, what the
//! HTML report draws and what `compare` reads back.
//!
//! Field names carry their unit last (`messages_per_s`, `latency_us`). A
//! field added later must be optional (`#[serde(default)]`) so that a
//! baseline written by an older version still loads in `compare`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::profile::FileSession;

/// Bumped when a field changes meaning; `compare` refuses to mix versions.
pub const REPORT_VERSION: u32 = 1;

/// Latency kinds, the keys of [`Report::latency_us`].
pub const LATENCY_CHUNK: &str = "chunk_200";
pub const LATENCY_DELIVERED: &str = "delivered";
pub const LATENCY_SETUP: &str = "session_setup";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    /// `msrp-loadgen 0.1.0`.
    pub tool: String,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub host: Host,
    /// The load shape as run (a scenario's, after flags), as JSON.
    pub profile: serde_json::Value,
    /// `embedded`, or the external engine's MSRP address.
    pub target: String,
    /// The raw loopback limits measured just before, when run.
    pub calibration: Option<Calibration>,
    /// This run's throughput as a fraction of `calibration` (0..1+).
    pub fraction_of_calibration: Option<Fractions>,
    /// The measured interval, after ramp-up.
    pub duration_s: f64,
    pub throughput: Throughput,
    /// One bucket per second of the measured interval.
    pub timeline: Vec<Bucket>,
    /// Keyed by kind: [`LATENCY_CHUNK`], [`LATENCY_DELIVERED`], [`LATENCY_SETUP`]
    /// and scenario-specific kinds (`mixed` adds `texts_alone`,
    /// `texts_with_file`, and with `--file-session same`
    /// `file_session_texts_alone`, `file_session_texts_with_file`).
    pub latency_us: BTreeMap<String, Latency>,
    /// Failed messages by cause: an MSRP status (`"408"`, `"481"`) or
    /// `"local"` (connection lost, no status); and engine-side error
    /// responses it counted, as `"engine_<status>"`.
    pub errors: BTreeMap<String, u64>,
    pub sessions: Sessions,
    pub rss_bytes: Rss,
    pub cpu: Cpu,
    /// Scenario `mixed`: text p99 with and without the file.
    #[serde(default)]
    pub mixed: Option<Mixed>,
    /// `--subscribe`: an application read every event.
    #[serde(default)]
    pub subscriber: Option<SubscriberReport>,
    /// `--mode sip`: the calls that set the sessions up.
    #[serde(default)]
    pub sip: Option<SipReport>,
    /// `--mode rest`: the REST calls that set the sessions up and, in
    /// direction `engine` or `both`, asked the engine's sends.
    #[serde(default)]
    pub rest: Option<RestReport>,
    /// Findings a reader must see: the load side saturated, errors, a
    /// target missed. Printed under the table and shown in the HTML.
    pub warnings: Vec<String>,
    /// `--label`: what this run measures (a commit, a branch, a setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The git commit of the checkout it ran in, when it ran in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `--repeat N`: every run, each a whole report (this one's figures
    /// are the run whose message rate is the median's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Report>,
    /// `--repeat N`: per metric (`stats::metrics`), the median and spread
    /// over `runs`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, crate::stats::Stats>,
    /// `--sweep`: the capacity curve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<crate::curve::Sweep>,
    /// `--tls`: this run's sessions were `msrps:`; the handshake rate, the
    /// engine's TLS counters, and the plaintext run beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
}

/// `--tls`: what TLS cost.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TlsReport {
    /// Measured against the engine's TLS listener before the load.
    pub handshakes: HandshakeRate,
    /// The engine's counters over the whole run (handshakes include the
    /// measurement's and the load's connections).
    pub engine_handshakes: u64,
    pub engine_resumed: u64,
    pub engine_failures: u64,
    /// The plaintext run with the same settings, run just before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beside: Option<Beside>,
}

/// Handshakes per second: threads connecting, handshaking and closing in
/// a loop against the engine.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HandshakeRate {
    pub threads: usize,
    pub seconds_each: f64,
    /// Every handshake full (no resumption offered).
    pub full: u64,
    pub full_per_s: f64,
    /// Offering the previous connection's ticket: tries, and how many the
    /// engine resumed.
    pub resumed_tries: u64,
    pub resumed: u64,
    pub resumed_per_s: f64,
    pub failed: u64,
    /// What was negotiated (`TLSv1_3`, `TLS13_AES_128_GCM_SHA256`).
    pub protocol: String,
    pub cipher_suite: String,
}

/// The plaintext measurement beside the TLS one.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Beside {
    /// The plaintext run's figures (with `--repeat`: the pair whose ratio
    /// is the median's).
    pub plaintext: Throughput,
    pub plaintext_cpu: Cpu,
    /// TLS over plaintext, messages and octets per second (0..1).
    pub messages_ratio: f64,
    pub bytes_ratio: f64,
    /// Every pair run (`--repeat N`: N), plaintext first.
    pub pairs: Vec<Pair>,
}

/// One plaintext run and the TLS run after it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Pair {
    pub plaintext_messages_per_s: f64,
    pub tls_messages_per_s: f64,
    pub plaintext_bytes_per_s: f64,
    pub tls_bytes_per_s: f64,
    pub messages_ratio: f64,
    pub bytes_ratio: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_bytes: u64,
}

/// Plain TCP over loopback on the same runtime, no MSRP: what the host
/// allows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calibration {
    /// Pipelined small writes of `message_bytes`, echoed back: writes/s.
    pub small_messages_per_s: f64,
    pub message_bytes: usize,
    /// One connection streaming `chunk_bytes` writes into a sink.
    pub bulk_bytes_per_s: f64,
    pub chunk_bytes: usize,
    pub seconds_each: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fractions {
    /// `throughput.messages_per_s / calibration.small_messages_per_s`.
    pub messages: f64,
    /// `throughput.bytes_per_s / calibration.bulk_bytes_per_s`.
    pub bytes: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Throughput {
    /// Messages delivered (every chunk answered 200, and the success
    /// REPORT when asked for) per second.
    pub messages_per_s: f64,
    /// Body octets of those messages per second.
    pub bytes_per_s: f64,
    pub messages: u64,
    pub bytes: u64,
    /// Messages the engine counted as received (delivery checked on its
    /// side); for load that the engine sends, messages the load received.
    pub messages_received_by_peer: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Bucket {
    /// Seconds since the measured interval began (the bucket's start).
    pub t_s: f64,
    pub messages: u64,
    pub bytes: u64,
    pub errors: u64,
    /// At the bucket's end: the engine's resident set and open file
    /// descriptors (absent against a `--target` engine), and the load's own
    /// (with `--mode sip`, the embedded msrp-signal's too): a soak's curve,
    /// flat after warm-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_rss_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_fds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_rss_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_fds: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// The percentile curve, `(percentile 0..100, microseconds)`, for plots.
    pub curve: Vec<(f64, u64)>,
}

impl Latency {
    /// The figures of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        let mut curve = Vec::new();
        // HdrHistogram's percentile curve: denser towards the tail.
        for p in [
            0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 92.5, 95.0, 96.0, 97.0,
            98.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0,
        ] {
            curve.push((p, h.value_at_quantile(p / 100.0)));
        }
        Latency {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            curve,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sessions {
    pub connections: usize,
    /// Sessions set up and bound (their first SEND answered).
    pub established: usize,
    /// Sessions asked for that could not be set up.
    pub failed: usize,
    /// Sessions set up per second, create command to bound.
    pub setup_per_s: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Rss {
    /// The engine process, before sessions were created.
    pub engine_before: u64,
    pub engine_peak: u64,
    pub engine_after: u64,
    /// `(peak with sessions - before) / established sessions`.
    pub engine_per_session: Option<f64>,
    /// The load generator's own process.
    pub load_peak: u64,
    /// `(the load's RSS with sessions set up - before) / established
    /// sessions`: what the load side needs per session, which may be what
    /// stops the count.
    #[serde(default)]
    pub load_per_session: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cpu {
    /// Cores the engine kept busy (CPU seconds per second) over the
    /// measured interval.
    pub engine_cores: f64,
    /// The same for the load side's threads.
    pub load_cores: f64,
    /// Threads, and the CPUs they were pinned to (empty: not pinned).
    pub engine_threads: usize,
    pub engine_cpus: Vec<usize>,
    pub load_threads: usize,
    pub load_cpus: Vec<usize>,
    /// The load threads ran at least 90% of their cores while the engine
    /// did not: the figures measure the load generator, not the engine.
    pub load_saturated: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mixed {
    pub texts_p99_alone_us: u64,
    pub texts_p99_with_file_us: u64,
    /// `texts_p99_with_file_us / texts_p99_alone_us`.
    pub p99_ratio: f64,
    pub file_bytes: u64,
    pub file_bytes_per_s: f64,
    /// Files delivered whole: one, or with `--file-repeat` as many as the
    /// second half held.
    #[serde(default)]
    pub files: u64,
    /// The file on a session of its own (`other`) or on one of texts
    /// (`same`).
    #[serde(default)]
    pub file_session: FileSession,
    /// `same`: the texts of the file's own session, the ones that queue
    /// behind its chunks.
    #[serde(default)]
    pub file_session_texts: Option<SessionTexts>,
}

/// The texts of one session, alone and beside a file on that session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionTexts {
    pub p99_alone_us: u64,
    pub p99_with_file_us: u64,
    /// `p99_with_file_us / p99_alone_us`: the target is at most 3.
    pub p99_ratio: f64,
    /// Texts measured beside the file.
    pub with_file_count: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubscriberReport {
    /// The event kinds subscribed to; empty: every event.
    #[serde(default)]
    pub subscribed_to: Vec<String>,
    /// Events read in the measured interval.
    pub events: u64,
    pub events_per_s: f64,
    /// The engine dropped the subscriber as too slow.
    pub dropped: bool,
}

/// `--mode sip`: the sessions were set up by INVITE -> 200 -> ACK through
/// msrp-signal.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SipReport {
    /// `udp` or `tcp`.
    pub transport: String,
    /// `embedded`, or the external msrp-signal's SIP address.
    pub signal: String,
    /// INVITEs out and not finally answered, at most.
    pub invites_outstanding_max: usize,
    pub calls_attempted: u64,
    /// Answered 2xx with an SDP answer the load could use.
    pub calls_answered: u64,
    pub calls_failed: u64,
    /// Failed calls by final status (`"503"`; `"408"`: timer B), or
    /// `"local"` (our user agent refused), `"answer"` (an unusable SDP
    /// answer), `"unanswered"` (the setup phase timed out).
    pub failed_by_status: BTreeMap<String, u64>,
    pub first_failure: Option<String>,
    /// First INVITE to the last final response.
    pub setup_s: f64,
    /// `calls_answered / setup_s`: the setup rate.
    pub calls_per_s: f64,
    /// INVITE sent to its 2xx received.
    pub invite_200_us: Latency,
    /// Cores busy over the setup phase, per part.
    pub setup_cpu: SipCpu,
    /// BYEs sent at the end (0 with `--no-bye`), and their final
    /// responses by status.
    pub byes_sent: u64,
    pub byes_answered: u64,
    pub bye_statuses: BTreeMap<String, u64>,
    /// Calls msrp-signal ended with a BYE of its own (its MSRP session
    /// closed first).
    pub ended_by_peer: u64,
    /// Calls still live when the wait for the BYEs ended.
    pub calls_left: usize,
}

/// Cores busy (CPU seconds per second) while calls were set up.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SipCpu {
    /// The embedded msrp-signal's thread (`None`: an external one).
    pub signal_cores: Option<f64>,
    /// The load's SIP caller thread.
    pub caller_cores: f64,
    /// The engine's process, when visible.
    pub engine_cores: Option<f64>,
    /// The load threads, binding the sessions.
    pub load_cores: f64,
}

/// `--mode rest`: an application on msrp-signal's REST API set the
/// sessions up (3PCC) and, unless the direction is `load`, asked the
/// engine's sends.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RestReport {
    /// `embedded`, or the external msrp-signal's REST base URL.
    pub signal: String,
    /// `batch` (`POST /v1/messages:batch`) or `single`
    /// (`POST /v1/sessions/{id}/messages`).
    pub form: String,
    /// Messages per batch request, at most (`--rest-batch`).
    pub batch_max: usize,
    /// Keep-alive connections, one request in flight on each.
    pub connections: usize,
    /// The direction that ran: `engine` or `both` (REST asked the
    /// engine's sends), `load` (REST only set the sessions up).
    pub direction: String,
    pub sessions_attempted: u64,
    /// Created (201) and bound by the load.
    pub sessions_created: u64,
    pub sessions_failed: u64,
    /// Sessions not set up, by HTTP status, `io`, `http` (an unreadable
    /// response), `answer` (an SDP answer the load cannot use) or
    /// `unattempted` (the setup timed out).
    pub setup_failed_by_status: BTreeMap<String, u64>,
    pub first_setup_failure: Option<String>,
    /// First POST to the last response.
    pub setup_s: f64,
    pub sessions_per_s: f64,
    /// `POST /v1/sessions` sent to its 201.
    pub create_us: Latency,
    /// Send requests answered in the measured interval, and per second.
    pub requests: u64,
    pub requests_per_s: f64,
    /// Messages accepted (202) in the measured interval, and per second
    /// (the load's arrivals are `throughput`).
    pub messages: u64,
    pub messages_per_s: f64,
    pub messages_per_request: f64,
    /// Messages refused over the sending (ramp-up and measured interval),
    /// by HTTP status (of the POST, the batch item, or a whole batch not
    /// answered 207), `io` or `http`.
    pub errors_by_status: BTreeMap<String, u64>,
    pub first_error: Option<String>,
    /// A send request written to its response read.
    pub response_us: Option<Latency>,
    /// A send request (the stamp in the body, written as the request was
    /// built) to the message's arrival at the load over MSRP.
    pub arrival_us: Option<Latency>,
    /// Cores busy over the measured interval: the embedded msrp-signal's
    /// thread (`None`: external) and the REST commander's.
    pub signal_cores: Option<f64>,
    pub client_cores: Option<f64>,
    /// `DELETE /v1/sessions/{id}` at the end, and their statuses.
    pub deletes_sent: u64,
    pub delete_statuses: BTreeMap<String, u64>,
    pub first_delete_error: Option<String>,
}
