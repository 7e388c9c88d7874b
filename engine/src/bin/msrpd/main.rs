//! `msrpd`: the msrp-engine daemon and its operator tools.

mod decode;
mod size;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "msrpd", version, about = "MSRP (RFC 4975) endpoint engine", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode an MSRP byte stream (one direction of a TCP connection) into one
    /// JSON object per frame, streaming: captures larger than memory decode.
    ///
    /// Exit status: 0 when every frame decoded, 1 when any error was printed,
    /// 2 when the input could not be read.
    Decode(decode::DecodeArgs),
}

/// Arguments shared by the commands that read a capture.
#[derive(clap::Args)]
struct Input {
    /// The capture to read; standard input when absent or "-".
    file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("msrpd: {error:#}");
            ExitCode::from(2)
        }
    }
}
