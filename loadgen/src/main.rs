//! `msrp-loadgen`: `bench` measures, `compare` judges two reports.

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
    /// Compare two JSON reports: exit 1 when NEW regressed beyond the
    /// tolerance, 2 when they cannot be compared.
    Compare {
        base: PathBuf,
        new: PathBuf,
        /// Throughput drop or p99 growth allowed, e.g. `5%`.
        #[arg(long, value_name = "PCT", default_value = "5%")]
        max_regression: String,
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
            base,
            new,
            max_regression,
        } => match compare::run(&base, &new, &max_regression) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("msrp-loadgen compare: {e:#}");
                ExitCode::from(2)
            }
        },
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
                println!(
                    "ready msrp={} control={}",
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
