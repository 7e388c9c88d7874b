//! `msrpd ctl`: the control socket for people.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use msrp_engine::control::{Client, EngineEvent, EngineStats, SessionDescriptor, SessionRole};

#[derive(clap::Args)]
pub struct CtlArgs {
    /// The engine's control socket (default as `msrpd serve`'s:
    /// `$XDG_RUNTIME_DIR/msrpd.sock`, else `/run/msrpd.sock`).
    #[arg(long, value_name = "PATH", default_value_os_t = msrp_engine::serve::default_control_path(), global = true)]
    control: PathBuf,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(clap::Subcommand)]
enum CtlCommand {
    /// Create a session; prints its session-id and our URI (for a=path).
    Create {
        /// The peer's a=path URI (repeat for a path of several).
        #[arg(long = "remote-path", value_name = "URI", required = true)]
        remote_path: Vec<String>,
        /// Wait for the peer to connect instead of connecting to it.
        #[arg(long)]
        passive: bool,
        /// Our session-id (minted when absent).
        #[arg(long, value_name = "ID")]
        session_id: Option<String>,
        /// Our a=accept-types (repeat); any when absent.
        #[arg(long = "accept-type", value_name = "TYPE")]
        accept_types: Vec<String>,
        /// Our a=max-size.
        #[arg(long, value_name = "OCTETS")]
        max_size: Option<u64>,
    },
    /// Send a text message, or a file with --file.
    Send {
        session_id: String,
        /// The text to send (UTF-8).
        text: Option<String>,
        #[arg(long, value_name = "TYPE", default_value = "text/plain")]
        content_type: String,
        /// Send this file, read by the engine chunk by chunk.
        #[arg(long, value_name = "PATH", conflicts_with = "text")]
        file: Option<PathBuf>,
        /// Delete the file once it is delivered.
        #[arg(long, requires = "file")]
        delete_after: bool,
        /// Wait for the outcome; exit status 1 when the message failed.
        #[arg(long)]
        wait: bool,
    },
    /// Close a session.
    Close {
        session_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Print every event as one JSON line, until interrupted.
    Watch {
        /// Only this session's events.
        #[arg(long, value_name = "ID")]
        session: Option<String>,
    },
    /// Print the engine's counters as a table (or JSON with --json).
    Stats {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let mut client = Client::connect(&args.control)
        .with_context(|| format!("is msrpd serving on {}?", args.control.display()))?;
    match args.command {
        CtlCommand::Create {
            remote_path,
            passive,
            session_id,
            accept_types,
            max_size,
        } => {
            let created = client.create_session(SessionDescriptor {
                session_id,
                remote_path,
                role: if passive {
                    SessionRole::Passive
                } else {
                    SessionRole::Active
                },
                accept_types,
                max_size,
                ..SessionDescriptor::default()
            })?;
            println!(
                "session_id={} local_uri={}",
                created.session_id, created.local_uri
            );
        }
        CtlCommand::Send {
            session_id,
            text,
            content_type,
            file,
            delete_after,
            wait,
        } => {
            if wait {
                client.subscribe()?;
            }
            let message = match &file {
                Some(path) => {
                    let path = std::path::absolute(path).with_context(|| format!("{}", path.display()))?;
                    client.send_file(&session_id, &content_type, &path, delete_after)?
                }
                None => {
                    let text = text.context("give the text to send, or --file")?;
                    client.send_message(&session_id, &content_type, text.as_bytes())?
                }
            };
            println!("message={message}");
            if wait {
                return wait_outcome(&mut client, message);
            }
        }
        CtlCommand::Close { session_id, reason } => client.close_session(&session_id, reason.as_deref())?,
        CtlCommand::Watch { session } => {
            client.subscribe()?;
            loop {
                let (event, payload) = client.next_event()?;
                if session.as_deref().is_some_and(|s| s != event.session_id()) {
                    continue;
                }
                let mut line = serde_json::to_value(&event)?;
                if !payload.is_empty() {
                    line["body"] = match std::str::from_utf8(&payload) {
                        Ok(text) => text.into(),
                        Err(_) => format!("<{} octets, not UTF-8>", payload.len()).into(),
                    };
                }
                println!("{line}");
            }
        }
        CtlCommand::Stats { json } => {
            let stats = client.stats()?;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&stats)?),
                false => print_stats(&stats),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn wait_outcome(client: &mut Client, message: u64) -> anyhow::Result<ExitCode> {
    loop {
        let (event, _) = client.next_event()?;
        match event {
            EngineEvent::Delivered { message: m, .. } if m == message => {
                println!("delivered");
                return Ok(ExitCode::SUCCESS);
            }
            EngineEvent::Failed {
                message: m,
                status,
                reason,
                ..
            } if m == message => {
                let status = status.map_or_else(|| "-".to_string(), |s| s.to_string());
                println!("failed status={status} reason={reason}");
                return Ok(ExitCode::from(1));
            }
            _ => {}
        }
    }
}

fn print_stats(stats: &EngineStats) {
    println!("listen: {}", stats.listen.join(", "));
    println!(
        "pending sessions: {}  events dropped: {}  subscribers dropped: {}",
        stats.sessions_pending, stats.events_dropped, stats.subscribers_dropped
    );
    println!(
        "{:>5} {:>6} {:>8} {:>12} {:>12} {:>14} {:>14} {:>10} {:>10} {:>8} {:>8}",
        "shard",
        "conns",
        "sessions",
        "frames_in",
        "frames_out",
        "bytes_in",
        "bytes_out",
        "received",
        "delivered",
        "failed",
        "errors"
    );
    for s in &stats.shards {
        let errors: u64 = s
            .responses_out
            .iter()
            .filter(|(status, _)| status.as_str() != "200")
            .map(|(_, n)| n)
            .sum();
        println!(
            "{:>5} {:>6} {:>8} {:>12} {:>12} {:>14} {:>14} {:>10} {:>10} {:>8} {:>8}",
            s.shard,
            s.connections,
            s.sessions,
            s.frames_in,
            s.frames_out,
            s.bytes_in,
            s.bytes_out,
            s.messages_received,
            s.messages_delivered,
            s.messages_failed,
            errors
        );
    }
    for s in &stats.shards {
        let by_status: Vec<String> = s
            .responses_out
            .iter()
            .map(|(status, n)| format!("{status}:{n}"))
            .collect();
        if !by_status.is_empty() {
            println!("shard {} responses sent: {}", s.shard, by_status.join(" "));
        }
    }
}
