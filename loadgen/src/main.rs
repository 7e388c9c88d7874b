//! `msrp-loadgen`: the capacity benchmark and performance-regression gate of
//! msrp-engine.
//!
//! It will open many MSRP connections and sessions against an embedded or an
//! external engine and report throughput and latency. Until the engine can
//! serve sessions it has no subcommands and only describes itself.

use clap::Parser;

/// MSRP capacity benchmark (no subcommands yet: it needs `msrpd serve`).
#[derive(Parser)]
#[command(name = "msrp-loadgen", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("msrp-loadgen has no subcommands yet; see --help");
    std::process::exit(2);
}
