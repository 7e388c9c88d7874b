//! `msrp-loadgen`: `bench` measures (once, repeated, or as a capacity
//! curve), `compare` judges reports against a baseline, `trend` plots them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use msrp_loadgen::bench::{self, BenchArgs};
use msrp_loadgen::compare;

#[derive(Parser)]
#[command(name = "msrp-loadgen", version, about = "MSRP capacity benchmark and regression gate", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a capacity benchmark (default: the `sms` scenario against an
    /// embedded engine, about 30 s) and write JSON and HTML reports.
    Bench(Box<BenchArgs>),
    /// Compare reports: exit 1 when NEW regressed beyond the tolerance and
    /// the runs' noise, 2 when they cannot be compared. Either
    /// `compare BASE NEW` or `compare --base FILE|DIR... --new FILE|DIR...`.
    Compare {
        /// The base report, in the two-report form.
        #[arg(
            value_name = "BASE",
            required_unless_present = "base",
            conflicts_with_all = ["base", "new"],
            requires = "new_report"
        )]
        base_report: Option<PathBuf>,
        /// The new report, in the two-report form.
        #[arg(value_name = "NEW")]
        new_report: Option<PathBuf>,
        /// Base reports, or directories of `*.json` reports (repeatable);
        /// the runs of all are pooled.
        #[arg(long, value_name = "FILE|DIR", num_args = 1.., requires = "new")]
        base: Vec<PathBuf>,
        /// New reports, or directories of `*.json` reports (repeatable).
        #[arg(long, value_name = "FILE|DIR", num_args = 1.., requires = "base")]
        new: Vec<PathBuf>,
        /// Throughput drop or p99 growth allowed, e.g. `5%`.
        #[arg(long, value_name = "PCT", default_value = "5%")]
        max_regression: String,
        /// A regression fails only beyond K x the pooled spread of the runs.
        #[arg(long, value_name = "K", default_value_t = compare::DEFAULT_NOISE_K)]
        noise_k: f64,
        /// Also write the verdicts as JUnit XML to FILE.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Also write a markdown summary (for a pull-request comment) to FILE.
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
    },
    /// Plot every metric across reports (files in the order given, or a
    /// directory's `*.json` reports by start time) on one HTML page.
    Trend {
        #[arg(value_name = "REPORT|DIR", required = true)]
        reports: Vec<PathBuf>,
        #[arg(long, value_name = "FILE", default_value = msrp_loadgen::trend::DEFAULT_OUT)]
        out: PathBuf,
    },
    /// The embedded engine (started by `bench`; same flags as `msrpd serve`).
    #[command(hide = true)]
    Engine(Box<msrp_engine::serve::ServeConfig>),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Cmd::Bench(args) => match bench::run(&args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("msrp-loadgen bench: {e:#}");
                ExitCode::from(2)
            }
        },
        Cmd::Compare {
            base_report,
            new_report,
            base,
            new,
            max_regression,
            noise_k,
            junit,
            markdown,
        } => {
            let (base, new) = match (base_report, new_report) {
                (Some(b), Some(n)) => (vec![b], vec![n]),
                _ => (base, new),
            };
            let gate = compare::Gate {
                base,
                new,
                max_regression,
                noise_k,
                junit,
                markdown,
            };
            match compare::run_gate(&gate) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("msrp-loadgen compare: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Trend { reports, out } => match msrp_loadgen::trend::run(&reports, &out) {
            Ok(page) => {
                println!("{}", page.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("msrp-loadgen trend: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Engine(config) => {
            let result = msrp_engine::serve::run(*config, |ready| {
                let listen: Vec<String> = ready.listen.iter().map(|a| a.to_string()).collect();
                let tls: Vec<String> = ready.tls_listen.iter().map(|a| a.to_string()).collect();
                let tls = match tls.is_empty() {
                    true => String::new(),
                    false => format!(" msrps={}", tls.join(",")),
                };
                println!(
                    "ready msrp={} control={}{tls}",
                    listen.join(","),
                    ready.control.display()
                );
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("msrp-loadgen engine: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
