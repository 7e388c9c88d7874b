//! Fuzz target for the incremental MSRP parser (`crate::proto::Parser`).
//!
//! Input layout: the first [`CONFIG_LEN`] bytes choose the configuration
//! (missing bytes read as zero), the rest is the MSRP byte stream.
//!
//! | byte  | meaning |
//! |-------|---------|
//! | 0     | flags: bit 0 lenient; bits 1-6 replace one default limit each (below); bit 7 allows empty feeds |
//! | 1     | `start_line_bytes_max` = byte (bit 1) |
//! | 2     | `header_line_bytes_max` = byte (bit 2) |
//! | 3-4   | `header_block_bytes_max` = u16 LE % 4096 (bit 3) |
//! | 5     | `header_count_max` = byte % 16 (bit 4) |
//! | 6-7   | `non_send_body_bytes_max` = u16 LE % 4096 (bit 5) |
//! | 8-9   | `chunk_body_bytes_max` = u16 LE % 8192 (bit 6) |
//! | 10    | low 3 bits: largest feed piece (1, 2, 3, 5, 9, 17, 64, 1024); high 5 bits: split seed |
//! | 11    | split seed |
//!
//! An all-zero prefix means: strict, default limits, one byte per feed.
//!
//! The stream is parsed twice, whole (one feed) and in random pieces (poll
//! until `Ok(None)` after each feed), and the two runs must agree. Every event
//! is also checked against the input bytes (zero-copy slices tile the stream)
//! and against the invariants documented in `parse.rs`. In strict mode the
//! stream is parsed a third time, whole and lenient: lenient mode only accepts
//! more, so it must delimit the same frames and accept every frame strict
//! mode accepts, identically.

use crate::proto::{
    is_ident, Continuation, Error, Event, FrameHead, FrameKind, Limits, Malformed, Method, Parser,
    ParserConfig, Reaction, Strictness,
};

const CONFIG_LEN: usize = 12;

/// `CRLF "-------"`: what precedes the transaction id in an end-line.
const END_LINE_PREFIX: &[u8] = b"\r\n-------";
/// Longest token the parser recovers as a transaction id from a broken start
/// line (head.rs `RECOVERED_TID_BYTES_MAX`).
const RECOVERED_TID_BYTES_MAX: usize = 255;
/// What the body scan may hold back while waiting for the rest of a
/// candidate end-line: `CRLF "-------" tid flag CRLF` minus one byte.
const LOOKBEHIND_MAX: usize = END_LINE_PREFIX.len() + RECOVERED_TID_BYTES_MAX + 3;

struct Setup {
    config: ParserConfig,
    piece_max: usize,
    empty_feeds: bool,
    seed: u64,
}

fn setup(cfg: &[u8; CONFIG_LEN]) -> Setup {
    let flags = cfg[0];
    let u16_at = |i: usize| u16::from_le_bytes([cfg[i], cfg[i + 1]]);
    let mut limits = Limits::default();
    if flags & 0x02 != 0 {
        limits.start_line_bytes_max = usize::from(cfg[1]);
    }
    if flags & 0x04 != 0 {
        limits.header_line_bytes_max = usize::from(cfg[2]);
    }
    if flags & 0x08 != 0 {
        limits.header_block_bytes_max = usize::from(u16_at(3) % 4096);
    }
    if flags & 0x10 != 0 {
        limits.header_count_max = usize::from(cfg[5] % 16);
    }
    if flags & 0x20 != 0 {
        limits.non_send_body_bytes_max = u64::from(u16_at(6) % 4096);
    }
    if flags & 0x40 != 0 {
        limits.chunk_body_bytes_max = u64::from(u16_at(8) % 8192);
    }
    let strictness = if flags & 0x01 != 0 {
        Strictness::Lenient
    } else {
        Strictness::Strict
    };
    const PIECES: [usize; 8] = [1, 2, 3, 5, 9, 17, 64, 1024];
    Setup {
        config: ParserConfig { limits, strictness },
        piece_max: PIECES[usize::from(cfg[10] & 7)],
        empty_feeds: flags & 0x80 != 0,
        seed: (u64::from(cfg[10] >> 3) << 8) | u64::from(cfg[11]),
    }
}

/// Piece lengths (summing to `len`) from a small xorshift generator.
fn pieces(len: usize, s: &Setup) -> Vec<usize> {
    let mut state = s.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let lo = usize::from(!s.empty_feeds);
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        let span = (s.piece_max - lo + 1) as u64;
        let n = (lo + (next() % span) as usize).min(left);
        out.push(n);
        left -= n;
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
struct HeadInfo {
    raw: Vec<u8>,
    kind: FrameKind,
    has_body: bool,
    tid: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
struct MalInfo {
    error: Error,
    offset: u64,
    flag: Continuation,
    body_len: Option<u64>,
    head: Vec<u8>,
    tid: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
enum Term {
    /// No End or Malformed came (the stream failed or ended inside it).
    Open,
    End(Continuation),
    Malformed(MalInfo),
}

/// One frame as seen through the events: `head` is `None` for a frame that
/// only produced a `Malformed`.
#[derive(Clone, Debug)]
struct Frame {
    head: Option<HeadInfo>,
    body: Vec<u8>,
    term: Term,
    start: u64,
    end: Option<u64>,
}

#[derive(Debug)]
struct Run {
    frames: Vec<Frame>,
    error: Option<Error>,
}

fn end_line(tid: &[u8], flag: Continuation) -> Vec<u8> {
    let mut line = b"-------".to_vec();
    line.extend_from_slice(tid);
    line.push(flag.as_byte());
    line.extend_from_slice(b"\r\n");
    line
}

/// Checks what a valid `Head` promises (RFC 4975 7.1, 7.1.2, 7.2 as
/// implemented by head.rs `check_frame_rules`), and exercises every accessor.
fn check_head(h: &FrameHead, strictness: Strictness) {
    assert!(h.raw().starts_with(b"MSRP "));
    let tid = h.transaction_id().as_bytes();
    assert!(is_ident(tid));
    for path in [h.to_path(), h.from_path()] {
        assert!(!path.as_str().is_empty());
        let uris: Vec<_> = path.uris().collect();
        // Every URI of a path was validated when the head was parsed.
        assert_eq!(uris.len(), path.len(), "path {:?}", path.as_str());
        for u in &uris {
            // Reflexivity of the RFC 4975 6.1 comparison is the property.
            #[allow(clippy::eq_op)]
            {
                assert_eq!(u, u);
            }
            let _ = (
                u.host(),
                u.port(),
                u.session_id(),
                u.transport(),
                u.userinfo(),
                u.ip(),
            );
            assert!(path.as_str().contains(u.as_str()));
        }
    }
    assert_eq!(h.header("to-path"), Some(h.to_path().as_str()));
    assert_eq!(h.header("FROM-PATH"), Some(h.from_path().as_str()));
    for (name, _value) in h.headers() {
        assert!(!name.is_empty());
    }
    let _ = (
        h.comment(),
        h.byte_range(),
        h.success_report(),
        h.failure_report(),
        h.report_status_comment(),
    );
    // Requests have a body exactly when they have a Content-Type; responses
    // have neither.
    assert_eq!(h.has_body(), h.content_type().is_some());
    match h.kind() {
        FrameKind::Response { status } => {
            assert!(*status <= 999);
            assert_eq!(h.status_code(), Some(*status));
            assert!(h.method().is_none());
            assert!(!h.has_body());
        }
        FrameKind::Request(method) => {
            assert!(h.status_code().is_none());
            assert!(!method.as_str().is_empty());
            assert!(method.as_bytes().iter().all(u8::is_ascii_uppercase));
            match method {
                // The lenient profile takes a bodiless SEND (a bind or
                // keep-alive, RFC 4975 5.4) without a Message-ID.
                Method::Send => {
                    assert!(h.message_id().is_some() || (strictness == Strictness::Lenient && !h.has_body()))
                }
                Method::Report => {
                    assert!(h.message_id().is_some());
                    assert!(h.report_status().is_some());
                    assert!(h.success_report().is_none() && h.failure_report().is_none());
                }
                Method::Other(_) => {}
            }
        }
    }
}

fn check_malformed(m: &Malformed) {
    // A Malformed frame was delimited: its error is never a fatal one.
    assert!(m.error.delimitable(), "{:?}", m.error);
    assert_ne!(m.error.reaction(), Reaction::Close);
    let _ = m.error.to_string();
    let _ = (
        m.start_line(),
        m.headers().count(),
        m.header("To-Path"),
        m.header("from-path"),
    );
    assert!(m.head().starts_with(m.start_line()));
    let tid = m.transaction_id();
    assert!(!tid.is_empty() && tid.len() <= RECOVERED_TID_BYTES_MAX);
    assert!(tid.iter().all(|b| (0x21..=0x7e).contains(b)));
}

struct Checker<'a> {
    data: &'a [u8],
    limits: Limits,
    strictness: Strictness,
    frames: Vec<Frame>,
    /// Stream offset where the next frame must start.
    next_frame_at: u64,
}

impl Checker<'_> {
    fn open(&mut self) -> Option<&mut Frame> {
        self.frames.last_mut().filter(|f| f.term == Term::Open)
    }

    fn event(&mut self, ev: Event, before: u64, after: u64) {
        let data = self.data;
        let (b, a) = (before as usize, after as usize);
        let limits = self.limits;
        match ev {
            Event::Head(h) => {
                assert!(self.open().is_none(), "Head inside an open frame");
                assert_eq!(before, self.next_frame_at, "frames do not tile the stream");
                assert_eq!(&data[b..a], &h.raw()[..], "Head is not the bytes consumed");
                check_head(&h, self.strictness);
                let tid = h.transaction_id().as_bytes().to_vec();
                self.frames.push(Frame {
                    head: Some(HeadInfo {
                        raw: h.raw().to_vec(),
                        kind: h.kind().clone(),
                        has_body: h.has_body(),
                        tid,
                    }),
                    body: Vec::new(),
                    term: Term::Open,
                    start: before,
                    end: None,
                });
            }
            Event::Body(body) => {
                let f = self.open().expect("Body outside a frame");
                let head = f.head.as_ref().expect("Body without a Head");
                assert!(head.has_body, "Body for a bodiless frame");
                assert!(!body.is_empty(), "empty Body event");
                assert_eq!(
                    before,
                    f.start + (head.raw.len() + f.body.len()) as u64,
                    "Body does not follow the head and the previous pieces"
                );
                assert_eq!(&data[b..a], &body[..], "Body is not the bytes consumed");
                f.body.extend_from_slice(&body);
                let mut max = limits.chunk_body_bytes_max;
                if matches!(head.kind, FrameKind::Request(ref m) if *m != Method::Send) {
                    max = max.min(limits.non_send_body_bytes_max);
                }
                assert!(
                    f.body.len() as u64 <= max,
                    "body {} over its limit {max}",
                    f.body.len()
                );
            }
            Event::End(flag) => {
                let f = self.open().expect("End outside a frame");
                let head = f.head.as_ref().expect("End without a Head");
                let line = end_line(&head.tid, flag);
                if head.has_body {
                    // CRLF then the end-line, consumed by this poll.
                    assert_eq!(&data[b..a][..2], b"\r\n");
                    assert_eq!(&data[b + 2..a], &line[..]);
                    assert_eq!(before, f.start + (head.raw.len() + f.body.len()) as u64);
                } else {
                    assert_eq!(before, after, "a bodiless End consumes nothing");
                    assert!(
                        head.raw.ends_with(&line),
                        "bodiless head does not end in its end-line"
                    );
                    assert!(f.body.is_empty());
                }
                f.term = Term::End(flag);
                f.end = Some(after);
                self.next_frame_at = after;
            }
            Event::Malformed(m) => {
                check_malformed(&m);
                assert!(m.body_len.is_none_or(|n| n <= limits.chunk_body_bytes_max));
                let info = MalInfo {
                    error: m.error,
                    offset: m.offset,
                    flag: m.flag,
                    body_len: m.body_len,
                    head: m.head().to_vec(),
                    tid: m.transaction_id().to_vec(),
                };
                let o = m.offset as usize;
                assert_eq!(
                    &data[o..o + info.head.len()],
                    &info.head[..],
                    "Malformed head is not the input"
                );
                let line = end_line(&info.tid, m.flag);
                match m.body_len {
                    None => {
                        assert_eq!(after, m.offset + info.head.len() as u64);
                        assert!(
                            info.head.ends_with(&line),
                            "bodiless Malformed head without its end-line"
                        );
                    }
                    Some(n) => {
                        let body_end = o + info.head.len() + n as usize;
                        assert_eq!(a, body_end + 2 + line.len());
                        assert_eq!(&data[body_end..body_end + 2], b"\r\n");
                        assert_eq!(&data[body_end + 2..a], &line[..]);
                    }
                }
                if let Some(f) = self.open() {
                    // A non-SEND request whose body went over its limit.
                    let head = f.head.as_ref().expect("open frame without a head");
                    assert!(
                        matches!(m.error, Error::NonSendBodyTooLarge(_)),
                        "{:?} after a Head",
                        m.error
                    );
                    assert!(matches!(head.kind, FrameKind::Request(ref k) if *k != Method::Send));
                    assert_eq!(info.head, head.raw);
                    assert_eq!(info.tid, head.tid);
                    assert_eq!(m.offset, f.start);
                    let n = m.body_len.expect("NonSendBodyTooLarge without a body length");
                    assert!(n > limits.non_send_body_bytes_max);
                    assert!(f.body.len() as u64 <= n);
                    assert_eq!(&data[o + info.head.len()..][..f.body.len()], &f.body[..]);
                    f.term = Term::Malformed(info);
                    f.end = Some(after);
                } else {
                    assert!(!matches!(m.error, Error::NonSendBodyTooLarge(_)));
                    assert_eq!(m.offset, self.next_frame_at, "frames do not tile the stream");
                    self.frames.push(Frame {
                        head: None,
                        body: Vec::new(),
                        term: Term::Malformed(info),
                        start: m.offset,
                        end: Some(after),
                    });
                }
                self.next_frame_at = after;
            }
        }
    }
}

fn run(config: ParserConfig, data: &[u8], pieces: &[usize]) -> Run {
    let mut p = Parser::new(config);
    // The parser raises limits below their floors: check against what it uses.
    let limits = p.config().limits;
    let mut c = Checker {
        data,
        limits,
        strictness: p.config().strictness,
        frames: Vec::new(),
        next_frame_at: 0,
    };
    // While a head is collected the buffer holds only that head, cut off at
    // the block limit; inside a body only a possible end-line start is held
    // back.
    let bound = limits.header_block_bytes_max.max(LOOKBEHIND_MAX);
    let mut failed: Option<Error> = None;
    let mut fed = 0;
    for &n in pieces {
        p.feed(&data[fed..fed + n]);
        fed += n;
        loop {
            assert_eq!(
                p.offset() + p.buffered() as u64,
                fed as u64,
                "bytes lost or invented"
            );
            let before = p.offset();
            match p.poll() {
                Ok(Some(ev)) => {
                    assert!(failed.is_none(), "an event after an error");
                    c.event(ev, before, p.offset());
                }
                Ok(None) => {
                    assert!(failed.is_none(), "Ok(None) after an error");
                    assert!(
                        p.buffered() <= bound,
                        "{} bytes buffered while waiting, bound {bound}",
                        p.buffered()
                    );
                    break;
                }
                Err(e) => {
                    match failed {
                        Some(f) => assert_eq!(f, e, "the error changed"),
                        None => failed = Some(e),
                    }
                    break;
                }
            }
        }
    }
    let finished = p.finish();
    let error = match (failed, finished) {
        (Some(f), r) => {
            assert_eq!(r, Err(f), "finish() forgot the error");
            Some(f)
        }
        (None, Ok(())) => {
            assert_eq!(p.buffered(), 0);
            assert!(c.open().is_none(), "finish() Ok inside a frame");
            None
        }
        (None, Err(e)) => {
            assert_eq!(e, Error::Unterminated);
            Some(e)
        }
    };
    if let Some(e) = error {
        assert!(!e.delimitable(), "stream failed with a delimitable error {e:?}");
        assert_eq!(e.reaction(), Reaction::Close);
        assert_eq!(p.poll().err(), Some(e), "poll forgot the error");
        assert_eq!(p.finish(), Err(e), "finish forgot the error");
    }
    Run {
        frames: c.frames,
        error,
    }
}

fn prefix_related(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// The same stream in different splits must give the same frames; a body
/// that was not completed (its frame failed, was abandoned or the stream
/// ended) may only have been handed out further in one of them.
fn compare(whole: &Run, split: &Run) {
    assert_eq!(whole.error, split.error, "final error differs between splits");
    assert_eq!(
        whole.frames.len(),
        split.frames.len(),
        "frame count differs between splits"
    );
    for (w, s) in whole.frames.iter().zip(&split.frames) {
        assert_eq!(w.head, s.head);
        assert_eq!(w.term, s.term);
        assert_eq!((w.start, w.end), (s.start, s.end));
        if matches!(w.term, Term::End(_)) {
            assert_eq!(w.body, s.body, "body differs between splits");
        } else {
            assert!(prefix_related(&w.body, &s.body), "partial bodies diverge");
        }
    }
}

/// Lenient mode accepts more heads and nothing else: the same frames are
/// delimited, and a frame strict mode accepts comes out identical.
fn compare_lenient(strict: &Run, lenient: &Run) {
    assert_eq!(strict.error, lenient.error, "final error differs strict/lenient");
    // A body frame that strict mode rejected and that never ended produced no
    // event there, but a Head in lenient mode when lenient mode accepts it.
    let extra = lenient.frames.len().checked_sub(strict.frames.len());
    assert!(
        extra == Some(0) || (extra == Some(1) && lenient.frames.last().is_some_and(|f| f.term == Term::Open)),
        "frame count differs strict/lenient"
    );
    for (s, l) in strict.frames.iter().zip(&lenient.frames) {
        assert_eq!(s.start, l.start);
        if matches!(s.term, Term::End(_)) {
            assert_eq!(s.head, l.head, "lenient read a strict-valid head differently");
            assert_eq!(s.term, l.term);
            assert_eq!(s.body, l.body);
            assert_eq!(s.end, l.end);
        } else if s.end.is_some() {
            assert_eq!(s.end, l.end, "strict and lenient delimit a frame differently");
        }
    }
}

pub fn parse(input: &[u8]) {
    let mut cfg = [0u8; CONFIG_LEN];
    let n = input.len().min(CONFIG_LEN);
    cfg[..n].copy_from_slice(&input[..n]);
    let data = &input[n..];
    let s = setup(&cfg);

    let whole = run(s.config, data, &[data.len()]);
    let split = run(s.config, data, &pieces(data.len(), &s));
    compare(&whole, &split);

    if s.config.strictness == Strictness::Strict {
        let lenient_config = ParserConfig {
            strictness: Strictness::Lenient,
            ..s.config
        };
        let lenient = run(lenient_config, data, &[data.len()]);
        compare_lenient(&whole, &lenient);
    }
}
