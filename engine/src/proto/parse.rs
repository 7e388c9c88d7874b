//! The incremental MSRP stream parser (RFC 4975 7.1, 9).
//!
//! Bytes go into [`Parser::buffer_mut`] (or [`Parser::feed`]) as they arrive, in
//! any split down to one byte; [`Parser::poll`] then yields, per frame, a
//! [`Event::Head`], the body as [`Event::Body`] pieces that are slices of the
//! input (never copied, never gathered into a whole body) and an
//! [`Event::End`] with the continuation flag. A frame that can be delimited but
//! is invalid yields one [`Event::Malformed`] instead, and parsing goes on after
//! it; a stream that cannot be delimited any more yields an [`Error`] and stays
//! failed.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem::Finder;

use super::chars::LineFeeds;
use super::error::{Error, Limit};
use super::frame::{Continuation, FrameHead, FrameKind, Method};
use super::head::{parse_head, parse_start_line, HeadEnd, Rejected, StartLine, END_LINE_HYPHENS};
use super::limits::ParserConfig;
use super::span::Span;
use super::uri::PathMemo;

/// What the end-line search looks for first: the CRLF that ends the data,
/// then the seven hyphens (RFC 4975 7.1; the CRLF is framing, not data).
const END_LINE_PREFIX: &[u8] = b"\r\n-------";

/// Octets from the CRLF before an end-line through the CRLF that ends it:
/// `CRLF "-------" tid flag CRLF`.
fn end_line_len(tid_len: usize) -> usize {
    END_LINE_PREFIX.len() + tid_len + 3
}

/// One step of a parsed stream.
#[derive(Debug)]
pub enum Event {
    /// A frame began: its start line and headers, validated.
    Head(FrameHead),
    /// The next piece of the current frame's body, a slice of the input.
    Body(Bytes),
    /// The current frame ended with this flag.
    End(Continuation),
    /// A frame was delimited but is invalid; its reaction is
    /// `error.reaction()`. When it follows a `Head` (a non-SEND body over its
    /// limit), that frame is abandoned: no `End` comes for it, and the `Body`
    /// pieces already handed out (how many depends on how the bytes arrived)
    /// must be dropped.
    Malformed(Malformed),
}

/// A delimited but invalid frame, with what is known of it so that it can be
/// answered (400 needs the transaction id and From-Path) or logged.
#[derive(Clone, Debug)]
pub struct Malformed {
    pub error: Error,
    /// Stream offset of the frame's first octet.
    pub offset: u64,
    /// The end-line's flag.
    pub flag: Continuation,
    /// Octets of body, or `None` for a bodiless frame.
    pub body_len: Option<u64>,
    head: Bytes,
    tid: Span,
}

impl Malformed {
    /// The head's bytes as received.
    pub fn head(&self) -> &Bytes {
        &self.head
    }

    /// The transaction id that delimited the frame (it may break the ident rule).
    pub fn transaction_id(&self) -> &[u8] {
        self.tid.of(&self.head)
    }

    /// The start line without its CRLF.
    pub fn start_line(&self) -> &[u8] {
        self.lines().next().unwrap_or_default()
    }

    /// Lines split at CRLF only: a bare LF is line content (N34).
    fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest: &[u8] = &self.head;
        core::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let end = memchr::memmem::find(rest, b"\r\n").unwrap_or(rest.len());
            let line = &rest[..end];
            rest = rest.get(end + 2..).unwrap_or_default();
            Some(line)
        })
        .take_while(|line| !line.is_empty() && !line.starts_with(END_LINE_HYPHENS))
    }

    /// The header lines as `(name, value)`, split at the first colon with
    /// surrounding whitespace trimmed: best effort, for answering and logging.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.lines().skip(1).filter_map(|line| {
            let colon = memchr::memchr(b':', line)?;
            Some((&line[..colon], line[colon + 1..].trim_ascii()))
        })
    }

    /// The first header of that name (case-insensitive), best effort.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// Progress of the end-line search over the body held in the buffer.
#[derive(Clone, Copy, Debug, Default)]
struct Scan {
    /// Buffer index from which an end-line start has not been ruled out.
    from: usize,
    /// Body octets already handed out or discarded.
    body_len: u64,
    /// The end-line was found right after the body handed out last: it starts
    /// at buffer index 0.
    end: Option<Continuation>,
}

enum Found {
    /// The end-line's CRLF starts at this buffer index.
    End { at: usize, flag: Continuation },
    /// Octets before this index are body for certain.
    NotYet { safe: usize },
}

#[derive(Debug)]
enum State {
    /// Collecting the start line and header lines of a frame that starts at
    /// buffer index 0.
    Head {
        start: Option<StartLine>,
        line_start: usize,
        search: usize,
    },
    /// A `Head` was handed out; its body is being scanned and handed out.
    Body {
        scan: Scan,
        tid: super::ident::TransactionId,
        /// The head of a non-SEND request, kept to report a body over limit.
        non_send: Option<(Bytes, Span, &'static str)>,
    },
    /// An invalid frame's body is being skipped up to its end-line.
    Skip { scan: Scan, rejected: Malformed },
    /// A bodiless `Head` was handed out; its `End` comes next.
    PendingEnd(Continuation),
    /// The stream cannot be delimited any more.
    Failed(Error),
}

impl State {
    fn frame_boundary() -> State {
        State::Head {
            start: None,
            line_start: 0,
            search: 0,
        }
    }
}

/// Incremental, zero-copy parser for one MSRP byte stream (one connection).
pub struct Parser {
    buf: BytesMut,
    state: State,
    config: ParserConfig,
    finder: Finder<'static>,
    /// Stream offset of `buf[0]`.
    consumed: u64,
    /// Stream offset of the current frame's first octet.
    frame_offset: u64,
    /// Header lines of the head being collected, reused from frame to frame.
    lines: Vec<Span>,
    /// Path values that validated recently.
    paths: PathMemo,
}

impl Parser {
    /// A parser for one stream; limits below their floors are raised to them
    /// (see [`Limits::floored`](super::Limits::floored)).
    pub fn new(mut config: ParserConfig) -> Parser {
        config.limits = config.limits.floored();
        Parser {
            // Empty until bytes arrive: an idle connection holds no buffer.
            buf: BytesMut::new(),
            state: State::frame_boundary(),
            config,
            finder: Finder::new(END_LINE_PREFIX),
            consumed: 0,
            frame_offset: 0,
            lines: Vec::with_capacity(16),
            paths: PathMemo::default(),
        }
    }

    pub fn config(&self) -> &ParserConfig {
        &self.config
    }

    /// The input buffer, to read into directly (reserve room first); bytes
    /// appended here are parsed by the next [`Parser::poll`].
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Octets received but not handed out yet (bounded by the head limits and
    /// the end-line look-behind, whatever the body size).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Stream offset of the first octet of the frame being parsed (or that
    /// failed).
    pub fn frame_offset(&self) -> u64 {
        self.frame_offset
    }

    /// Stream offset up to which input was consumed.
    pub fn offset(&self) -> u64 {
        self.consumed
    }

    fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.consumed += n as u64;
    }

    #[inline]
    fn split(&mut self, n: usize) -> Bytes {
        debug_assert!(n <= self.buf.len());
        self.consumed += n as u64;
        self.buf.split_to(n).freeze()
    }

    fn fail(&mut self, error: Error) -> Result<Option<Event>, Error> {
        self.state = State::Failed(error);
        Err(error)
    }

    /// The next event, `Ok(None)` when more input is needed, or the error that
    /// ended the stream (returned again on every later call).
    pub fn poll(&mut self) -> Result<Option<Event>, Error> {
        match self.state {
            State::Head { .. } => self.poll_head(),
            State::Body { .. } => self.poll_body(),
            State::Skip { .. } => self.poll_skip(),
            State::PendingEnd(flag) => {
                self.state = State::frame_boundary();
                Ok(Some(Event::End(flag)))
            }
            State::Failed(error) => Err(error),
        }
    }

    /// Whether a frame has begun and not ended: octets of it were read, or
    /// its head was handed out and its end-line has not come.
    pub fn in_frame(&self) -> bool {
        match self.state {
            State::Head { .. } => !self.buf.is_empty(),
            State::Body { .. } | State::Skip { .. } => true,
            State::PendingEnd(_) | State::Failed(_) => false,
        }
    }

    /// Call at end of input: an error if the stream ended inside a frame.
    pub fn finish(&mut self) -> Result<(), Error> {
        match &self.state {
            State::Failed(error) => Err(*error),
            State::Head { .. } if self.buf.is_empty() => Ok(()),
            State::PendingEnd(_) => Ok(()),
            _ => {
                self.state = State::Failed(Error::Unterminated);
                Err(Error::Unterminated)
            }
        }
    }

    /// The length limit of the line being collected.
    fn line_limit(&self, in_headers: bool) -> (usize, Limit) {
        let limits = &self.config.limits;
        if in_headers {
            (limits.header_line_bytes_max, Limit::HeaderLine)
        } else {
            (limits.start_line_bytes_max, Limit::StartLine)
        }
    }

    /// Which head limit the first `seen` octets of the frame break, if any.
    /// When both the line and the block limit are broken, the one whose
    /// crossing point comes first in the stream wins, so the verdict does not
    /// depend on how the bytes arrived.
    #[cold]
    fn head_limit_error(
        &self,
        in_headers: bool,
        line_start: usize,
        line_too_long: bool,
        seen: usize,
    ) -> Option<Error> {
        let (line_max, what) = self.line_limit(in_headers);
        let block_max = self.config.limits.header_block_bytes_max;
        let line = Error::LimitExceeded {
            what,
            limit: line_max as u64,
        };
        let block = Error::LimitExceeded {
            what: Limit::HeaderBlock,
            limit: block_max as u64,
        };
        // The line limit is evident once line_start + line_max + 2 octets are
        // in (line_max octets, a CR, one more); the block limit at block_max + 1.
        let line_at = line_start + line_max + 2;
        let block_at = block_max + 1;
        match (line_too_long, seen >= block_at) {
            (true, true) if block_at < line_at => Some(block),
            (true, _) => Some(line),
            (false, true) => Some(block),
            (false, false) => None,
        }
    }

    fn poll_head(&mut self) -> Result<Option<Event>, Error> {
        let State::Head {
            mut start,
            mut line_start,
            mut search,
        } = self.state
        else {
            unreachable!("poll_head outside the Head state")
        };
        let limits = self.config.limits;
        if start.is_none() && search == 0 {
            self.frame_offset = self.consumed;
            self.lines.clear();
        }
        if start.is_none() && search < 5 {
            // Fail fast on a stream that does not start a frame here.
            let seen = self.buf.len().min(5);
            if !self.buf[..seen].eq_ignore_ascii_case(&b"MSRP "[..seen]) {
                return self.fail(Error::FramingLost("bytes at a frame boundary are not \"MSRP \""));
            }
        }
        let mut end = None;
        let mut fatal = None;
        let scan_from = search;
        let buf: &[u8] = &self.buf;
        let (start_line_max, header_line_max) = (limits.start_line_bytes_max, limits.header_line_bytes_max);
        for nl in LineFeeds::new(&buf[scan_from..]).map(|p| scan_from + p) {
            search = nl + 1;
            if nl == line_start || buf[nl - 1] != b'\r' {
                continue; // a bare LF is line content, not a line end (N34)
            }
            let line_end = nl - 1;
            let line_max = if start.is_some() {
                header_line_max
            } else {
                start_line_max
            };
            let line_too_long = line_end - line_start > line_max;
            if line_too_long || search > limits.header_block_bytes_max {
                if let Some(error) = self.head_limit_error(start.is_some(), line_start, line_too_long, search)
                {
                    fatal = Some(error);
                    break;
                }
            }
            let line = &buf[line_start..line_end];
            if start.is_none() {
                match parse_start_line(line, self.config.strictness) {
                    Ok(parsed) => start = Some(parsed),
                    Err(error) => {
                        fatal = Some(error);
                        break;
                    }
                }
            } else if line.is_empty() {
                end = Some(HeadEnd::Blank);
                break;
            } else if line.starts_with(END_LINE_HYPHENS) {
                end = Some(HeadEnd::EndLine { line_start, line_end });
                break;
            } else {
                if self.lines.len() == limits.header_count_max {
                    fatal = Some(Error::LimitExceeded {
                        what: Limit::HeaderCount,
                        limit: limits.header_count_max as u64,
                    });
                    break;
                }
                self.lines.push(Span::new(line_start, line_end));
            }
            line_start = nl + 1;
        }
        if let Some(error) = fatal {
            return self.fail(error);
        }
        let Some(end) = end else {
            // A partial line is too long once it has more octets than its
            // limit plus the CR that may end it.
            let seen = self.buf.len();
            let line_too_long = seen - line_start > self.line_limit(start.is_some()).0 + 1;
            if let Some(error) = self.head_limit_error(start.is_some(), line_start, line_too_long, seen) {
                return self.fail(error);
            }
            self.state = State::Head {
                start,
                line_start,
                search: self.buf.len(),
            };
            return Ok(None);
        };
        let Some(start) = start else {
            unreachable!("a head ends only after its start line")
        };
        let raw = self.split(search);
        match parse_head(
            raw,
            &start,
            &self.lines,
            end,
            self.config.strictness,
            &mut self.paths,
        ) {
            Err(error) => self.fail(error),
            Ok(Ok((head, Some(flag)))) => {
                self.state = State::PendingEnd(flag);
                Ok(Some(Event::Head(head)))
            }
            Ok(Ok((head, None))) => {
                let non_send = match head.kind() {
                    FrameKind::Request(Method::Send) => None,
                    FrameKind::Request(method) => Some((
                        head.raw().clone(),
                        start.tid,
                        match method {
                            Method::Report => "REPORT",
                            _ => "non-SEND",
                        },
                    )),
                    FrameKind::Response { .. } => unreachable!("responses with a body are rejected"),
                };
                self.state = State::Body {
                    scan: Scan::default(),
                    tid: *head.transaction_id(),
                    non_send,
                };
                Ok(Some(Event::Head(head)))
            }
            Ok(Err(Rejected { error, bodiless, raw })) => {
                let mut rejected = Malformed {
                    error,
                    offset: self.frame_offset,
                    flag: Continuation::Last,
                    body_len: None,
                    head: raw,
                    tid: start.tid,
                };
                match bodiless {
                    Some(flag) => {
                        rejected.flag = flag;
                        self.state = State::frame_boundary();
                        Ok(Some(Event::Malformed(rejected)))
                    }
                    None => {
                        rejected.body_len = Some(0);
                        self.state = State::Skip {
                            scan: Scan::default(),
                            rejected,
                        };
                        self.poll_skip()
                    }
                }
            }
        }
    }

    /// Looks for `CRLF "-------" tid flag CRLF` from `scan.from`, never
    /// re-scanning octets already ruled out (RFC 4975 7.1: the end-line is
    /// `CRLF "-------" transact-id flag CRLF`).
    fn find_end_line(finder: &Finder<'_>, buf: &[u8], scan: &mut Scan, tid: &[u8]) -> Found {
        debug_assert!(scan.from <= buf.len(), "scan position past the buffer");
        debug_assert!(
            scan.end.is_none(),
            "searching again for an end-line already found"
        );
        loop {
            let Some(p) = finder.find(&buf[scan.from..]) else {
                scan.from = scan.from.max(buf.len().saturating_sub(END_LINE_PREFIX.len() - 1));
                return Found::NotYet { safe: scan.from };
            };
            let at = scan.from + p;
            let tid_at = at + END_LINE_PREFIX.len();
            let need = at + end_line_len(tid.len());
            if buf.len() < need {
                scan.from = at;
                return Found::NotYet { safe: at };
            }
            let flag = Continuation::from_byte(buf[tid_at + tid.len()]);
            if &buf[tid_at..tid_at + tid.len()] == tid && &buf[need - 2..need] == b"\r\n" {
                if let Some(flag) = flag {
                    return Found::End { at, flag };
                }
            }
            // A look-alike (another tid, a bad flag, no CRLF): body data (C08, N06, N08).
            scan.from = at + 1;
        }
    }

    /// Scans the buffered body of the current frame: the octets that are body
    /// for certain, and the flag when the end-line follows right after them.
    /// Enforces the chunk limit (past it the frame cannot be
    /// delimited).
    fn scan_body(
        finder: &Finder<'_>,
        buf: &[u8],
        scan: &mut Scan,
        tid: &[u8],
        chunk_body_bytes_max: u64,
    ) -> Result<(usize, Option<Continuation>), Error> {
        let (body_now, end) = match scan.end {
            Some(flag) => (0, Some(flag)),
            None => match Self::find_end_line(finder, buf, scan, tid) {
                Found::End { at, flag } => (at, Some(flag)),
                Found::NotYet { safe } => (safe, None),
            },
        };
        if scan.body_len + body_now as u64 > chunk_body_bytes_max {
            return Err(Error::LimitExceeded {
                what: Limit::ChunkBody,
                limit: chunk_body_bytes_max,
            });
        }
        Ok((body_now, end))
    }

    fn poll_body(&mut self) -> Result<Option<Event>, Error> {
        let limits = self.config.limits;
        let State::Body { scan, tid, non_send } = &mut self.state else {
            unreachable!("poll_body outside the Body state")
        };
        let tid_len = tid.as_bytes().len();
        let scanned = Self::scan_body(
            &self.finder,
            &self.buf,
            scan,
            tid.as_bytes(),
            limits.chunk_body_bytes_max,
        );
        let (body_now, end) = match scanned {
            Ok(scanned) => scanned,
            Err(error) => return self.fail(error),
        };
        let body_len = scan.body_len + body_now as u64;
        if let Some((head, tid_span, method)) = non_send {
            if body_len > limits.non_send_body_bytes_max {
                // RFC 4975 7.1: other requests carry at most 10240 octets.
                let rejected = Malformed {
                    error: Error::NonSendBodyTooLarge(method),
                    offset: self.frame_offset,
                    flag: Continuation::Last,
                    body_len: Some(scan.body_len),
                    head: head.clone(),
                    tid: *tid_span,
                };
                let scan = *scan;
                self.state = State::Skip { scan, rejected };
                return self.poll_skip();
            }
        }
        if body_now > 0 {
            scan.from -= body_now.min(scan.from);
            scan.body_len = body_len;
            scan.end = end;
            return Ok(Some(Event::Body(self.split(body_now))));
        }
        let Some(flag) = end else {
            return Ok(None);
        };
        self.advance(end_line_len(tid_len));
        self.state = State::frame_boundary();
        Ok(Some(Event::End(flag)))
    }

    fn poll_skip(&mut self) -> Result<Option<Event>, Error> {
        let chunk_body_bytes_max = self.config.limits.chunk_body_bytes_max;
        let State::Skip { scan, rejected } = &mut self.state else {
            unreachable!("poll_skip outside the Skip state")
        };
        let tid_len = rejected.tid.len();
        let scanned = Self::scan_body(
            &self.finder,
            &self.buf,
            scan,
            rejected.transaction_id(),
            chunk_body_bytes_max,
        );
        let (body_now, end) = match scanned {
            Ok(scanned) => scanned,
            Err(error) => return self.fail(error),
        };
        scan.body_len += body_now as u64;
        scan.from -= body_now.min(scan.from);
        let body_len = scan.body_len;
        self.advance(body_now);
        let Some(flag) = end else {
            return Ok(None);
        };
        self.advance(end_line_len(tid_len));
        let State::Skip { mut rejected, .. } = std::mem::replace(&mut self.state, State::frame_boundary())
        else {
            unreachable!("poll_skip left the Skip state")
        };
        rejected.flag = flag;
        rejected.body_len = Some(body_len);
        Ok(Some(Event::Malformed(rejected)))
    }
}
