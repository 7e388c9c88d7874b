//! `msrp-loadgen`: the capacity benchmark and performance-regression gate of
//! msrp-engine.
//!
//! - [`report`]: the result of a run, as written to JSON and read back.
//! - [`calibrate`]: the raw loopback limits of the host, same runtime, no MSRP.
//! - [`html`]: the self-contained HTML report with SVG plots.
//! - [`compare`]: reports (several per side, repeated runs pooled) to a
//!   noise-aware pass/fail regression verdict, with JUnit and markdown.
//! - [`stats`]: the metrics a report is judged by, and their median and
//!   spread over repeated runs.
//! - [`trend`]: many reports to one page of each metric across them.
//! - [`curve`]: a capacity sweep's steps (`bench --sweep`).
//! - [`profile`]: the load shape (scenarios, TOML profiles, flags).
//! - [`load`]: the load threads, the engine's sans-IO core on io_uring.
//! - [`commander`]: the engine's own sends, driven through its control socket.
//! - [`setup`]: sessions created in the engine ("inject" mode).
//! - [`sip`]: sessions set up by SIP calls through msrp-signal (`--mode sip`).
//! - [`rest`]: an application on msrp-signal's REST API: 3PCC sessions and
//!   the engine's sends by REST (`--mode rest`).
//! - [`embedded`]: the engine under test, in a child process or external.
//! - [`bench`](mod@bench): one run from calibration to reports; [`summary`] its table.
//! - [`procfs`]: CPU time and memory from /proc.
//! - [`subscriber`]: an application reading every engine event (`--subscribe`).

pub mod bench;
pub mod calibrate;
pub mod commander;
pub mod compare;
pub mod curve;
pub mod embedded;
#[doc(hidden)]
pub mod fixture;
pub mod html;
pub mod load;
pub mod procfs;
pub mod profile;
pub mod report;
pub mod rest;
pub mod setup;
pub mod signal_thread;
pub mod sip;
pub mod stats;
pub mod subscriber;
pub mod summary;
pub mod tls;
pub mod trend;
pub mod units;
