//! `msrpd`: the msrp-engine daemon and its operator tools.

mod ctl;
mod decode;
mod serve;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "msrpd", version, about = "MSRP (RFC 4975) endpoint engine", long_about = None)]
// A flag given again (after the config file's) overrides it.
#[command(args_override_self = true)]
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
    /// Run the engine: one io_uring shard per core, MSRP listeners, the
    /// control socket. SIGTERM or SIGINT drains it.
    Serve(Box<serve::ServeArgs>),
    /// Talk to a running engine over its control socket.
    Ctl(ctl::CtlArgs),
}

/// Arguments shared by the commands that read a capture.
#[derive(clap::Args)]
struct Input {
    /// The capture to read; standard input when absent or "-".
    file: Option<PathBuf>,
}

/// The command line, with a `serve --config FILE`'s settings put before the
/// flags that follow `serve`, so those override the file.
fn parse() -> anyhow::Result<Cli> {
    let cli = Cli::parse();
    let Command::Serve(args) = &cli.command else {
        return Ok(cli);
    };
    let Some(path) = &args.config else {
        return Ok(cli);
    };
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let at = args.iter().position(|a| a == "serve").map_or(1, |i| i + 1);
    let file = serve::file_args(path)?;
    args.splice(at..at, file);
    Cli::try_parse_from(args).with_context(|| format!("with the settings of {}", path.display()))
}

fn main() -> ExitCode {
    let result = parse().and_then(|cli| match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::Serve(args) => serve::run(*args),
        Command::Ctl(args) => ctl::run(args),
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            // Not eprintln!: with standard error gone too (`2>&1 | head`),
            // it would panic; the exit status still tells.
            let _ = writeln!(std::io::stderr(), "msrpd: {error:#}");
            ExitCode::from(2)
        }
    }
}
