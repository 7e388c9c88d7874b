//! `msrpd decode`: an operator's view of an MSRP capture, one JSON object per
//! line per frame (or per error), for reading with `jq`.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use msrp_engine::proto::{Error, Event, FrameHead, FrameKind, Malformed, Parser, ParserConfig, Strictness};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Input;
use msrp_engine::serve::parse_size;

#[derive(clap::Args)]
pub struct DecodeArgs {
    /// Also accept header order, Content-Type position, extra start-line
    /// spaces and header-colon whitespace that strict RFC 4975 grammar rejects.
    #[arg(long)]
    lenient: bool,
    /// Largest chunk body before its end-line must appear (default 16MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_chunk: Option<u64>,
    #[command(flatten)]
    input: Input,
}

/// Read size: large reads, as the engine does.
const READ_BYTES: usize = 256 * 1024;

#[derive(Serialize)]
struct Header<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct StatusHeader<'a> {
    namespace: u16,
    code: u16,
    comment: Option<&'a str>,
}

#[derive(Serialize)]
struct FrameLine<'a> {
    kind: &'static str,
    offset: u64,
    tid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
    to_path: Vec<&'a str>,
    from_path: Vec<&'a str>,
    message_id: Option<&'a str>,
    byte_range: Option<[Option<u64>; 3]>,
    success_report: Option<&'static str>,
    failure_report: Option<&'static str>,
    status_header: Option<StatusHeader<'a>>,
    content_type: Option<&'a str>,
    headers: Vec<Header<'a>>,
    body_len: Option<u64>,
    body_sha256: Option<String>,
    flag: &'static str,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    error: &'static str,
    delimitable: bool,
    reaction: &'static str,
    offset: u64,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_len: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag: Option<&'a str>,
}

impl ErrorLine<'_> {
    fn fatal(error: &Error, offset: u64) -> ErrorLine<'static> {
        ErrorLine {
            error: error.kind(),
            delimitable: error.delimitable(),
            reaction: error.reaction().as_str(),
            offset,
            message: error.to_string(),
            tid: None,
            start_line: None,
            body_len: None,
            flag: None,
        }
    }

    fn malformed(bad: &Malformed) -> ErrorLine<'static> {
        ErrorLine {
            tid: Some(String::from_utf8_lossy(bad.transaction_id()).into_owned()),
            start_line: Some(String::from_utf8_lossy(bad.start_line()).into_owned()),
            body_len: bad.body_len,
            flag: Some(bad.flag.as_str()),
            ..ErrorLine::fatal(&bad.error, bad.offset)
        }
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The frame being decoded: its head until its end-line arrives.
struct Open {
    head: FrameHead,
    offset: u64,
    body_len: u64,
    sha: Sha256,
}

fn frame_line<'a>(open: &'a Open, flag: &'static str) -> FrameLine<'a> {
    let head = &open.head;
    let (kind, method, status, comment) = match head.kind() {
        FrameKind::Request(method) => ("request", Some(method.as_str()), None, None),
        FrameKind::Response { status } => ("response", None, Some(*status), head.comment()),
    };
    let body = head.has_body();
    FrameLine {
        kind,
        offset: open.offset,
        tid: head.transaction_id().as_str(),
        method,
        status,
        comment,
        to_path: head.to_path().as_str().split(' ').collect(),
        from_path: head.from_path().as_str().split(' ').collect(),
        message_id: head.message_id().map(|id| id.as_str()),
        byte_range: head.byte_range().map(|r| [Some(r.start), r.end, r.total]),
        success_report: head.success_report().map(|s| s.as_str()),
        failure_report: head.failure_report().map(|f| f.as_str()),
        status_header: head.report_status().map(|s| StatusHeader {
            namespace: s.namespace,
            code: s.code,
            comment: head.report_status_comment(),
        }),
        content_type: head.content_type(),
        headers: head
            .headers()
            .map(|(name, value)| Header { name, value })
            .collect(),
        body_len: body.then_some(open.body_len),
        body_sha256: body.then(|| hex(&open.sha.clone().finalize())),
        flag,
    }
}

fn emit(out: &mut impl Write, line: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

pub fn run(args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    let mut config = ParserConfig::default();
    if args.lenient {
        config.strictness = Strictness::Lenient;
    }
    if let Some(max) = args.max_chunk {
        config.limits.chunk_body_bytes_max = max;
    }
    let mut input: Box<dyn Read> = match &args.input.file {
        Some(path) if path.as_os_str() != "-" => {
            Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
        _ => Box::new(io::stdin().lock()),
    };
    let stdout = io::stdout().lock();
    let mut out = BufWriter::new(stdout);
    match decode(&mut input, &mut out, config) {
        Ok(clean) => {
            out.flush().ok();
            Ok(ExitCode::from(if clean { 0 } else { 1 }))
        }
        // `msrpd decode big.cap | head` is normal use.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("decode failed"),
    }
}

/// Decodes until end of input or a non-delimitable error; `Ok(true)` when no
/// error was seen.
fn decode(input: &mut dyn Read, out: &mut impl Write, config: ParserConfig) -> io::Result<bool> {
    let mut parser = Parser::new(config);
    let mut chunk = vec![0u8; READ_BYTES];
    let mut open: Option<Open> = None;
    let mut clean = true;
    loop {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if let Err(error) = parser.finish() {
                emit(out, &ErrorLine::fatal(&error, parser.frame_offset()))?;
                clean = false;
            }
            return Ok(clean);
        }
        parser.feed(&chunk[..n]);
        loop {
            match parser.poll() {
                Ok(None) => break,
                Ok(Some(Event::Head(head))) => {
                    open = Some(Open {
                        head,
                        offset: parser.frame_offset(),
                        body_len: 0,
                        sha: Sha256::new(),
                    });
                }
                Ok(Some(Event::Body(piece))) => {
                    if let Some(open) = open.as_mut() {
                        open.body_len += piece.len() as u64;
                        open.sha.update(&piece);
                    }
                }
                Ok(Some(Event::End(flag))) => {
                    if let Some(done) = open.take() {
                        emit(out, &frame_line(&done, flag.as_str()))?;
                    }
                }
                Ok(Some(Event::Malformed(bad))) => {
                    open = None;
                    clean = false;
                    emit(out, &ErrorLine::malformed(&bad))?;
                }
                Err(error) => {
                    emit(out, &ErrorLine::fatal(&error, parser.frame_offset()))?;
                    return Ok(false);
                }
            }
        }
    }
}
