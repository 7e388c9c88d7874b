//! `msrp-signal`: the SIP/SDP signaling process of msrp-engine.
//!
//! It will answer SIP INVITEs, run the SDP offer/answer for `m=message` and
//! hand the negotiated session descriptors to `msrpd` over its control
//! socket. Until that lands it has no subcommands and only describes itself.

use clap::Parser;

/// SIP/SDP signaling for msrp-engine (no subcommands yet: the SIP stack and
/// the engine's control socket are not built).
#[derive(Parser)]
#[command(name = "msrp-signal", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("msrp-signal has no subcommands yet; see --help");
    std::process::exit(2);
}
