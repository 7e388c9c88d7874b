//! `msrpd ctl`: the control socket for people.

use std::fmt::Display;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use msrp_engine::control::frame::PAYLOAD_BYTES_MAX;
use msrp_engine::control::{
    Client, EngineEvent, EngineStats, EventKind, FailureReportName, SendRequest, SessionDescriptor,
    SessionDirection, SessionRole, Subscription,
};
use msrp_engine::serve::parse_size;

/// The control socket when `--control` is not given.
const CONTROL_ENV: &str = "MSRPD_CONTROL";

#[derive(clap::Args)]
pub struct CtlArgs {
    /// The engine's control socket [default: $MSRPD_CONTROL, else as
    /// `msrpd serve`'s: $XDG_RUNTIME_DIR/msrpd.sock, else /run/msrpd.sock].
    #[arg(long, value_name = "PATH", global = true)]
    control: Option<PathBuf>,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(clap::Subcommand)]
enum CtlCommand {
    /// Create a session; prints its session-id and our URI (for a=path).
    Create(Box<CreateArgs>),
    /// Send a text message, a binary body with --body-file, or a file the
    /// engine reads with --file.
    Send(SendArgs),
    /// Close a session.
    Close {
        session_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Decide a success REPORT a --hold-reports session holds (RFC 4975
    /// 7.1.2): status 200 sends it, another MSRP code (400, 413, 415...) a
    /// failure REPORT.
    Report {
        session_id: String,
        /// The Message-ID of its message_received event.
        message_id: String,
        #[arg(long, value_name = "N", default_value_t = 200)]
        status: u16,
        /// The Status comment [default: the code's usual phrase].
        #[arg(long, value_name = "TEXT")]
        comment: Option<String>,
    },
    /// Print every event as one JSON line, until interrupted.
    Watch {
        /// Only this session's events (repeat for several; with --tag, the
        /// events of either).
        #[arg(long, value_name = "ID")]
        session: Vec<String>,
        /// Only the events of sessions created with this tag (repeat).
        #[arg(long, value_name = "TAG")]
        tag: Vec<String>,
        /// Only events of this kind (repeat): session_ready,
        /// message_received, progress, delivered, failed, message_aborted,
        /// session_closed.
        #[arg(long, value_name = "KIND", value_parser = clap::value_parser!(EventKind))]
        event: Vec<EventKind>,
        /// Print every inline body as `body_base64` (RFC 4648), whatever its
        /// octets; without it a UTF-8 body is printed as `body` and another
        /// is only counted.
        #[arg(long)]
        bodies: bool,
    },
    /// Print the engine's counters as a table (or JSON with --json).
    Stats {
        #[arg(long)]
        json: bool,
    },
}

/// `ctl create`: the session as SDP offer/answer left it (RFC 4975 8).
#[derive(clap::Args)]
struct CreateArgs {
    /// The peer's a=path URI (repeat for a path of several).
    #[arg(long = "remote-path", value_name = "URI", required = true)]
    remote_path: Vec<String>,
    /// Wait for the peer to connect instead of connecting to it.
    #[arg(long)]
    passive: bool,
    /// Our session-id (minted when absent).
    #[arg(long, value_name = "ID")]
    session_id: Option<String>,
    /// A label for the session: `watch --tag` (a subscription by tag) gets
    /// the events of every session that carries it.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Our whole a=path URI, instead of one built from the engine's
    /// --advertise and the session-id (whose session-id it must carry).
    #[arg(long, value_name = "URI")]
    local_uri: Option<String>,
    /// msrps: the peer's certificate fingerprint, as SDP's a=fingerprint
    /// ("sha-256 AB:CD:...", RFC 8122 5).
    #[arg(long, value_name = "FINGERPRINT")]
    fingerprint: Option<String>,
    /// The a=sendrecv / sendonly / recvonly / inactive attribute (RFC 4975
    /// 8.9) [default: sendrecv].
    #[arg(long, value_enum)]
    direction: Option<DirectionArg>,
    /// Our a=accept-types (repeat); any when absent.
    #[arg(long = "accept-type", value_name = "TYPE")]
    accept_types: Vec<String>,
    /// Our a=accept-wrapped-types (repeat).
    #[arg(long = "accept-wrapped-type", value_name = "TYPE")]
    accept_wrapped_types: Vec<String>,
    /// Our a=max-size (65536, 64KiB, 16MiB...).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_size: Option<u64>,
    /// The peer's a=accept-types (repeat); any when absent.
    #[arg(long = "remote-accept-type", value_name = "TYPE")]
    remote_accept_types: Vec<String>,
    /// The peer's a=max-size: a larger message is refused before it is sent.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    remote_max_size: Option<u64>,
    /// Body octets per outgoing chunk, 2KiB to 16MiB [default: the engine's
    /// --chunk-size].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    chunk_size: Option<u64>,
    /// The session's defaults for messages that do not set their own.
    #[command(flatten)]
    reports: ReportArgs,
    /// Hold the success REPORT of each received message that asks for one
    /// until `msrpd ctl report` (or the application) decides it.
    #[arg(long)]
    hold_reports: bool,
}

/// `ctl send`.
#[derive(clap::Args)]
struct SendArgs {
    session_id: String,
    /// The text to send (UTF-8).
    text: Option<String>,
    #[arg(long, value_name = "TYPE", default_value = "text/plain")]
    content_type: String,
    /// Send this file's octets as they are, read here and sent inline (at
    /// most 64 MiB; larger ones with --file).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["text", "file"])]
    body_file: Option<PathBuf>,
    /// Send this file, read by the engine chunk by chunk.
    #[arg(long, value_name = "PATH", conflicts_with = "text")]
    file: Option<PathBuf>,
    /// Delete the file once it is delivered.
    #[arg(long, requires = "file")]
    delete_after: bool,
    /// Wait for the outcome; exit status 1 when the message failed.
    #[arg(long)]
    wait: bool,
    /// This message's, instead of the session's.
    #[command(flatten)]
    reports: ReportArgs,
}

/// The report headers of RFC 4975 7.1.1 (CONTROL.md says when each makes a
/// message `delivered`).
#[derive(clap::Args)]
struct ReportArgs {
    /// Success-Report (a session's is the default of its messages): `yes`
    /// asks the peer for a success REPORT, which `delivered` then waits for.
    #[arg(long, value_enum)]
    success_report: Option<SuccessReportArg>,
    /// Failure-Report: `yes` (every chunk answered), `partial` (errors only),
    /// `no` (nothing answered).
    #[arg(long, value_enum)]
    failure_report: Option<FailureReportArg>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SuccessReportArg {
    Yes,
    No,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FailureReportArg {
    Yes,
    No,
    Partial,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DirectionArg {
    Sendrecv,
    Sendonly,
    Recvonly,
    Inactive,
}

impl ReportArgs {
    fn success_report(&self) -> Option<bool> {
        self.success_report.map(|r| matches!(r, SuccessReportArg::Yes))
    }

    fn failure_report(&self) -> Option<FailureReportName> {
        self.failure_report.map(|r| match r {
            FailureReportArg::Yes => FailureReportName::Yes,
            FailureReportArg::No => FailureReportName::No,
            FailureReportArg::Partial => FailureReportName::Partial,
        })
    }
}

impl CreateArgs {
    fn descriptor(self) -> anyhow::Result<SessionDescriptor> {
        let chunk_bytes = self
            .chunk_size
            .map(usize::try_from)
            .transpose()
            .context("--chunk-size is too large")?;
        Ok(SessionDescriptor {
            tag: self.tag,
            session_id: self.session_id,
            local_uri: self.local_uri,
            fingerprint: self.fingerprint,
            remote_path: self.remote_path,
            role: match self.passive {
                true => SessionRole::Passive,
                false => SessionRole::Active,
            },
            direction: match self.direction {
                None | Some(DirectionArg::Sendrecv) => SessionDirection::Sendrecv,
                Some(DirectionArg::Sendonly) => SessionDirection::Sendonly,
                Some(DirectionArg::Recvonly) => SessionDirection::Recvonly,
                Some(DirectionArg::Inactive) => SessionDirection::Inactive,
            },
            accept_types: self.accept_types,
            accept_wrapped_types: self.accept_wrapped_types,
            max_size: self.max_size,
            remote_accept_types: self.remote_accept_types,
            remote_max_size: self.remote_max_size,
            chunk_bytes,
            success_report: self.reports.success_report(),
            failure_report: self.reports.failure_report(),
            hold_reports: self.hold_reports,
        })
    }
}

impl CtlArgs {
    /// The socket to use, and where that choice came from (for the error
    /// when nothing answers there).
    fn control_path(&self) -> (PathBuf, &'static str) {
        if let Some(path) = &self.control {
            return (path.clone(), "--control");
        }
        match std::env::var_os(CONTROL_ENV) {
            Some(path) if !path.is_empty() => (path.into(), "$MSRPD_CONTROL"),
            _ => (msrp_engine::serve::default_control_path(), "the default"),
        }
    }
}

/// Standard output's reader went away (`msrpd ctl watch | head`): the
/// reader's choice, not a failure, so the command ends quietly.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
struct ReaderGone;

/// Standard output, line by line (a watcher sees each event as it comes).
struct Out(io::StdoutLock<'static>);

impl Out {
    fn line(&mut self, line: impl Display) -> anyhow::Result<()> {
        writeln!(self.0, "{line}").map_err(|error| match error.kind() {
            io::ErrorKind::BrokenPipe => ReaderGone.into(),
            _ => anyhow::Error::new(error).context("cannot write to standard output"),
        })
    }

    /// A line whose reader may be gone without ending the command: `send
    /// --wait` still waits, so its exit status still tells the outcome.
    fn note(&mut self, line: impl Display) -> anyhow::Result<()> {
        match self.line(line) {
            Err(error) if error.is::<ReaderGone>() => Ok(()),
            other => other,
        }
    }
}

pub fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let mut out = Out(io::stdout().lock());
    match execute(args, &mut out) {
        Err(error) if error.is::<ReaderGone>() => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

fn execute(args: CtlArgs, out: &mut Out) -> anyhow::Result<ExitCode> {
    let (control, from) = args.control_path();
    let mut client = Client::connect(&control)
        .with_context(|| format!("is msrpd serving on {} ({from})?", control.display()))?;
    match args.command {
        CtlCommand::Create(create) => {
            let created = client.create_session(create.descriptor()?)?;
            out.line(format_args!(
                "session_id={} local_uri={}",
                created.session_id, created.local_uri
            ))?;
        }
        CtlCommand::Send(send) => return send_message(&mut client, send, out),
        CtlCommand::Close { session_id, reason } => client.close_session(&session_id, reason.as_deref())?,
        CtlCommand::Report {
            session_id,
            message_id,
            status,
            comment,
        } => {
            let sent = client.report(&session_id, &message_id, status, comment.as_deref())?;
            out.line(match sent {
                true => "sent",
                false => "not sent: the sender's Failure-Report is no (RFC 4975 7.1.4)",
            })?;
        }
        CtlCommand::Watch {
            session,
            tag,
            event,
            bodies,
        } => {
            client.subscribe_to(Subscription {
                events: event,
                sessions: session,
                tags: tag,
            })?;
            loop {
                let (event, payload) = client.next_event()?;
                let mut line = serde_json::to_value(&event)?;
                if !payload.is_empty() {
                    match (bodies, std::str::from_utf8(&payload)) {
                        (true, _) => line["body_base64"] = base64(&payload).into(),
                        (false, Ok(text)) => line["body"] = text.into(),
                        (false, Err(_)) => {
                            line["body"] =
                                format!("<{} octets, not UTF-8; see --bodies>", payload.len()).into()
                        }
                    }
                }
                out.line(line)?;
            }
        }
        CtlCommand::Stats { json } => {
            let stats = client.stats()?;
            match json {
                true => out.line(serde_json::to_string_pretty(&stats)?)?,
                false => print_stats(&stats, out)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn send_message(client: &mut Client, args: SendArgs, out: &mut Out) -> anyhow::Result<ExitCode> {
    let body = match (&args.body_file, &args.file, &args.text) {
        (Some(path), _, _) => read_body(path)?,
        (None, Some(_), _) => Vec::new(),
        (None, None, Some(text)) => text.clone().into_bytes(),
        (None, None, None) => anyhow::bail!("give the text to send, or --body-file or --file"),
    };
    let file = match &args.file {
        // The engine opens it, from its own working directory; the protocol
        // carries it as a JSON string, so it must be UTF-8 to arrive intact.
        Some(path) => {
            let path = std::path::absolute(path).with_context(|| format!("{}", path.display()))?;
            let text = path.to_str().with_context(|| {
                format!(
                    "{} is not UTF-8, which the control protocol cannot carry",
                    path.display()
                )
            })?;
            Some(text.to_owned())
        }
        None => None,
    };
    if args.wait {
        client.subscribe_to(Subscription {
            events: vec![EventKind::Delivered, EventKind::Failed],
            sessions: vec![args.session_id.clone()],
            tags: Vec::new(),
        })?;
    }
    let request = SendRequest {
        session_id: args.session_id,
        content_type: args.content_type,
        file,
        delete_after: args.delete_after,
        success_report: args.reports.success_report(),
        failure_report: args.reports.failure_report(),
        payload_len: None,
    };
    let message = client.send(request, &body)?;
    if !args.wait {
        out.line(format_args!("message={message}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    out.note(format_args!("message={message}"))?;
    wait_outcome(client, message, out)
}

/// An inline body: the frame's payload, so at most what the engine reads.
fn read_body(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > u64::from(PAYLOAD_BYTES_MAX) {
        anyhow::bail!(
            "{} has {len} octets, over the {PAYLOAD_BYTES_MAX} an inline body may have; send it with --file",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn wait_outcome(client: &mut Client, message: u64, out: &mut Out) -> anyhow::Result<ExitCode> {
    loop {
        let (event, _) = client.next_event()?;
        match event {
            EngineEvent::Delivered { message: m, .. } if m == message => {
                out.note("delivered")?;
                return Ok(ExitCode::SUCCESS);
            }
            EngineEvent::Failed {
                message: m,
                status,
                reason,
                ..
            } if m == message => {
                let status = status.map_or_else(|| "-".to_string(), |s| s.to_string());
                out.note(format_args!("failed status={status} reason={reason}"))?;
                return Ok(ExitCode::from(1));
            }
            _ => {}
        }
    }
}

/// RFC 4648 4: the standard alphabet, padded with `=`.
fn base64(octets: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(octets.len().div_ceil(3) * 4);
    for group in octets.chunks(3) {
        let bits = group
            .iter()
            .enumerate()
            .fold(0u32, |bits, (i, &octet)| bits | u32::from(octet) << (16 - 8 * i));
        // n octets make n + 1 characters of 6 bits; `=` pads to 4.
        for i in 0..4 {
            text.push(match i <= group.len() {
                true => char::from(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize]),
                false => '=',
            });
        }
    }
    text
}

fn print_stats(stats: &EngineStats, out: &mut Out) -> anyhow::Result<()> {
    out.line(format_args!("listen: {}", stats.listen.join(", ")))?;
    out.line(format_args!(
        "pending sessions: {}  events dropped: {}  subscribers dropped: {}",
        stats.sessions_pending, stats.events_dropped, stats.subscribers_dropped
    ))?;
    out.line(format_args!(
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
    ))?;
    for s in &stats.shards {
        let errors: u64 = s
            .responses_out
            .iter()
            .filter(|(status, _)| status.as_str() != "200")
            .map(|(_, n)| n)
            .sum();
        out.line(format_args!(
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
        ))?;
    }
    for s in stats.shards.iter().filter(|s| s.reports_held_expired > 0) {
        out.line(format_args!(
            "shard {} held reports answered 408 (held-reports-max): {}",
            s.shard, s.reports_held_expired
        ))?;
    }
    for s in &stats.shards {
        let by_status: Vec<String> = s
            .responses_out
            .iter()
            .map(|(status, n)| format!("{status}:{n}"))
            .collect();
        if !by_status.is_empty() {
            out.line(format_args!(
                "shard {} responses sent: {}",
                s.shard,
                by_status.join(" ")
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc_4648_section_10() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (octets, text) in vectors {
            assert_eq!(base64(octets.as_bytes()), text, "{octets:?}");
        }
    }

    #[test]
    fn base64_uses_the_last_two_characters_of_the_alphabet() {
        // 0xfb 0xff: 111110 111111 1111(00): `+`, `/`, `8`, padding.
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
        assert_eq!(base64(&[0, 0, 0]), "AAAA");
        assert_eq!(base64(&[0xff; 3]), "////");
    }
}
