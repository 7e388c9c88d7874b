//! Parsing one complete frame head: the start line, the header lines and the
//! line that ends the head (RFC 4975 7.1, 9).

use bytes::Bytes;

use super::chars;
use super::error::Error;
use super::frame::{is_method_token, Continuation, FrameHead, FrameKind, HeaderField, Method};
use super::header::{is_media_type, three_digits, ByteRange, FailureReport, ReportStatus, SuccessReport};
use super::header_name::Known;
use super::ident::{is_ident, MessageId, TransactionId, IDENT_LEN_MAX, IDENT_LEN_MIN};
use super::limits::Strictness;
use super::span::Span;
use super::uri::PathMemo;

/// Seven hyphens open every end-line (RFC 4975 7.1).
pub(crate) const END_LINE_HYPHENS: &[u8] = b"-------";

/// What the start line says, with spans relative to the frame's first byte.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StartLine {
    /// The transaction id that the end-line must repeat; for a broken start
    /// line, the token recovered from it.
    pub tid: Span,
    pub kind: StartKind,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum StartKind {
    Send,
    Report,
    /// Another `1*UPALPHA` method.
    Other {
        method: Span,
    },
    Response {
        status: u16,
        comment: Option<Span>,
    },
    /// A delimitable defect: the frame is still delimited by `tid`.
    Broken(Error),
}

/// `utf8text = *(HTAB / %x20-7E / UTF8-NONASCII)` (RFC 4975 9).
pub(crate) fn is_utf8text(s: &[u8]) -> bool {
    if chars::all_printable_ascii(s) {
        return true;
    }
    // Rare: HTAB, or non-ASCII text, which must be well-formed UTF-8 and
    // still free of controls.
    core::str::from_utf8(s).is_ok() && s.iter().all(|&b| b >= 0x80 || chars::is(b, chars::TEXT))
}

/// The second whitespace-separated token of a start line whose first token is
/// "MSRP" in any case: the frame can still be delimited by it (N02, N03, N31).
fn recover_tid(line: &[u8]) -> Option<Span> {
    let mut tokens = line
        .split(|&b| b == b' ')
        .scan(0usize, |at, token| {
            let start = *at;
            *at += token.len() + 1;
            Some((start, token))
        })
        .filter(|(_, token)| !token.is_empty());
    let (_, protocol) = tokens.next()?;
    let (start, tid) = tokens.next()?;
    let usable = protocol.eq_ignore_ascii_case(b"MSRP") && tid.iter().all(|&b| (0x21..=0x7e).contains(&b));
    usable.then(|| Span::new(start, start + tid.len()))
}

fn skip_spaces(line: &[u8], mut at: usize, strictness: Strictness) -> usize {
    if strictness == Strictness::Lenient {
        while line.get(at) == Some(&b' ') {
            at += 1;
        }
    }
    at
}

/// Parses `"MSRP" SP transact-id SP (method / status-code [SP comment])`.
///
/// `Err` means the frame cannot be delimited (no transaction id to look for).
pub(crate) fn parse_start_line(line: &[u8], strictness: Strictness) -> Result<StartLine, Error> {
    // Only a broken start line needs its tid recovered the hard way: a valid
    // one yields the same span below.
    let broken = |error| {
        let tid =
            recover_tid(line).ok_or(Error::FramingLost("start line has no \"MSRP <transaction-id>\""))?;
        Ok(StartLine {
            tid,
            kind: StartKind::Broken(error),
        })
    };
    // pMSRP = %x4D.53.52.50: exact case (RFC 4975 9).
    if !line.starts_with(b"MSRP ") {
        return broken(Error::BadStartLine("protocol name is not \"MSRP\""));
    }
    let tid_start = skip_spaces(line, 5, strictness);
    // One scan finds the field and checks its octets: SP is no ident-char,
    // so a run of ident-chars that ends at SP or the line's end is the whole
    // transaction id. Otherwise the field runs to the next SP and breaks the
    // rule.
    let ident_end = line[tid_start..]
        .iter()
        .position(|&b| !chars::is(b, chars::IDENT))
        .map_or(line.len(), |p| tid_start + p);
    let whole = line.get(ident_end).is_none_or(|&b| b == b' ');
    let tid_end = match whole {
        true => ident_end,
        false => memchr::memchr(b' ', &line[ident_end..]).map_or(line.len(), |p| ident_end + p),
    };
    if tid_start == tid_end {
        return broken(Error::BadStartLine(
            "fields are not separated by exactly one space",
        ));
    }
    let tid_bytes = &line[tid_start..tid_end];
    let tid_ok = match whole {
        true => {
            (IDENT_LEN_MIN..=IDENT_LEN_MAX).contains(&tid_bytes.len()) && tid_bytes[0].is_ascii_alphanumeric()
        }
        false => false,
    };
    debug_assert_eq!(tid_ok, is_ident(tid_bytes));
    if !tid_ok {
        return broken(Error::BadTransactionId);
    }
    let tid = Span::new(tid_start, tid_end);
    if tid_end == line.len() {
        return broken(Error::BadStartLine("no method or status code"));
    }
    let third = skip_spaces(line, tid_end + 1, strictness);
    let rest = &line[third..];
    let kind = if rest.first().is_some_and(u8::is_ascii_digit) {
        let code_end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        let Some(status) = three_digits(&rest[..code_end]) else {
            return broken(Error::BadStatusCode);
        };
        let comment = if code_end < rest.len() {
            let at = skip_spaces(line, third + code_end + 1, strictness);
            if !is_utf8text(&line[at..]) {
                return broken(Error::BadStartLine("response comment is not UTF-8 text"));
            }
            Some(Span::new(at, line.len()))
        } else {
            None
        };
        StartKind::Response { status, comment }
    } else {
        let mut end = line.len();
        if strictness == Strictness::Lenient {
            while end > third && line[end - 1] == b' ' {
                end -= 1;
            }
        }
        match &line[third..end] {
            b"SEND" => StartKind::Send,
            b"REPORT" => StartKind::Report,
            method if is_method_token(method) => StartKind::Other {
                method: Span::new(third, end),
            },
            _ => return broken(Error::BadStartLine("method is not upper-case letters")),
        }
    };
    Ok(StartLine { tid, kind })
}

/// How the head ended.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HeadEnd {
    /// An empty line: a body follows.
    Blank,
    /// A line starting with seven hyphens: the frame is bodiless.
    EndLine { line_start: usize, line_end: usize },
}

/// Splits `hname ":" SP hval` (strict) or `hname ":" *WSP hval *WSP`
/// (lenient), and names the header when it is one of the eight known ones.
fn split_header(
    head: &[u8],
    start: usize,
    end: usize,
    strictness: Strictness,
) -> Result<(HeaderField, Option<Known>), Error> {
    let line = &head[start..end];
    let (colon, known) = match Known::at_start(line) {
        Some(known) => (known.name().len(), Some(known)),
        None => {
            // hname = ALPHA *token; ":" is no token octet, so the first octet
            // that is not one is the first colon of a line with a valid name.
            let colon = line
                .iter()
                .position(|&b| !chars::is(b, chars::TOKEN))
                .unwrap_or(line.len());
            if line.get(colon) != Some(&b':') || !line[0].is_ascii_alphabetic() {
                return Err(if memchr::memchr(b':', line).is_none() {
                    Error::BadHeader("no colon")
                } else {
                    Error::BadHeader("header name is not a token")
                });
            }
            (colon, None)
        }
    };
    if strictness == Strictness::Strict && line.get(colon + 1) != Some(&b' ') {
        return Err(Error::BadHeader("no single space after the colon"));
    }
    let field = HeaderField::locate(line, start, colon, strictness);
    if !known.is_some_and(value_implies_text) && !is_utf8text(field.value.of(head)) {
        return Err(NOT_TEXT);
    }
    Ok((field, known))
}

const NOT_TEXT: Error = Error::BadHeader("header value is not UTF-8 text");

/// Whether a valid value of this header is ASCII text for certain (URIs,
/// idents, numbers, keywords: RFC 4975 9), so that its utf8text check can
/// wait until the value turns out invalid: the frame is then refused for
/// the error the check would have raised first.
fn value_implies_text(known: Known) -> bool {
    !matches!(known, Known::Status | Known::ContentType)
}

/// A frame head that failed validation but whose frame can be delimited.
pub(crate) struct Rejected {
    pub error: Error,
    /// The end-line flag of a bodiless frame.
    pub bodiless: Option<Continuation>,
    /// The head's bytes, handed back for the report.
    pub raw: Bytes,
}

/// Parses a complete head held in `raw` (start line through the CRLF of the
/// line in `end`); `lines` are the header lines (without CRLF) that the
/// stream scan found. `Ok(Err(..))` is a delimitable defect; `Err` is fatal.
pub(crate) fn parse_head(
    raw: Bytes,
    start: &StartLine,
    lines: &[Span],
    end: HeadEnd,
    strictness: Strictness,
    paths: &mut PathMemo,
) -> Result<Result<(FrameHead, Option<Continuation>), Rejected>, Error> {
    let head = &raw[..];
    let tid_bytes = start.tid.of(head);
    let bodiless = match end {
        HeadEnd::Blank => None,
        HeadEnd::EndLine { line_start, line_end } => {
            // end-line = "-------" transact-id continuation-flag CRLF
            let line = &head[line_start..line_end];
            let flag = line
                .strip_prefix(END_LINE_HYPHENS)
                .and_then(|rest| rest.strip_prefix(tid_bytes))
                .and_then(|rest| match rest {
                    [flag] => Continuation::from_byte(*flag),
                    _ => None,
                })
                .ok_or(Error::BadEndLine)?;
            Some(flag)
        }
    };
    let (kind, comment) = match start.kind {
        StartKind::Send => (FrameKind::Request(Method::Send), None),
        StartKind::Report => (FrameKind::Request(Method::Report), None),
        StartKind::Other { method } => {
            let token = raw.slice(method.start as usize..method.end as usize);
            (FrameKind::Request(Method::Other(token)), None)
        }
        StartKind::Response { status, comment } => (FrameKind::Response { status }, comment),
        StartKind::Broken(error) => return Ok(Err(Rejected { error, bodiless, raw })),
    };
    // A start line that is not Broken checked its transaction id.
    let tid = TransactionId::from_checked(tid_bytes);
    // Filled and read in place rather than handed back inside a Result.
    let mut f = Fields {
        has_body: bodiless.is_none(),
        strictness,
        ..Fields::default()
    };
    let checked =
        check_headers(&mut f, head, lines, paths).and_then(|()| check_frame_rules(&kind, &f, bodiless));
    match checked {
        Ok((to_path, from_path)) => Ok(Ok((
            FrameHead {
                tid,
                kind,
                comment,
                header_lines: match (lines.first(), lines.last()) {
                    (Some(first), Some(last)) => Span::new(first.start as usize, last.end as usize + 2),
                    _ => Span::default(),
                },
                strictness,
                to_path,
                from_path,
                message_id: f.message_id,
                byte_range: f.byte_range,
                success_report: f.success_report,
                failure_report: f.failure_report,
                status: f.status,
                status_comment: f.status_comment,
                content_type: f.content_type,
                has_body: bodiless.is_none(),
                raw,
            },
            bodiless,
        ))),
        Err(error) => Ok(Err(Rejected {
            bodiless,
            raw,
            error: match (&kind, error) {
                // Digest 2.8: a malformed REPORT is discarded, never answered...
                (FrameKind::Request(Method::Report), e) => Error::BadReport(e.kind()),
                // ...and so is a malformed response; its transaction times out.
                (FrameKind::Response { .. }, e @ Error::BadResponse(_)) => e,
                (FrameKind::Response { .. }, e) => Error::BadResponse(e.kind()),
                (_, e) => e,
            },
        })),
    }
}

/// The typed header fields of a head, before the frame-level rules.
#[derive(Default)]
struct Fields {
    to_path: Option<Span>,
    from_path: Option<Span>,
    to_index: usize,
    from_index: usize,
    message_id: Option<MessageId>,
    byte_range: Option<ByteRange>,
    success_report: Option<SuccessReport>,
    failure_report: Option<FailureReport>,
    status: Option<ReportStatus>,
    status_comment: Option<Span>,
    content_type: Option<Span>,
    /// The known headers met so far, a bit each.
    seen: u8,
    has_body: bool,
    strictness: Strictness,
}

/// Reads every header line: syntax, duplicates, values, Content-Type position.
fn check_headers(f: &mut Fields, head: &[u8], lines: &[Span], paths: &mut PathMemo) -> Result<(), Error> {
    for (index, line) in lines.iter().enumerate() {
        let (field, known) = split_header(head, line.start as usize, line.end as usize, f.strictness)?;
        let checked = check_header(f, index, known, field, head, paths);
        if let Err(error) = checked {
            let unchecked_text = known.is_some_and(value_implies_text);
            return Err(match unchecked_text && !is_utf8text(field.value.of(head)) {
                true => NOT_TEXT,
                false => error,
            });
        }
    }
    Ok(())
}

/// The checks of one header line after its syntax: Content-Type position,
/// duplicates and the value of a known header, recorded in `f`.
fn check_header(
    f: &mut Fields,
    index: usize,
    known: Option<Known>,
    field: HeaderField,
    head: &[u8],
    paths: &mut PathMemo,
) -> Result<(), Error> {
    if f.content_type.is_some() && f.strictness == Strictness::Strict {
        // RFC 4975 7.1: Content-Type is the last header before the body.
        return Err(Error::ContentTypeNotLast);
    }
    let Some(known) = known else {
        return Ok(()); // RFC 4975 12: unknown headers are ignored.
    };
    let value = field.value.of(head);
    // The first error ends the head, so marking the header before its value
    // is checked changes no verdict.
    let bit = 1u8 << known as u8;
    if f.seen & bit != 0 {
        return Err(Error::DuplicateHeader(known.name()));
    }
    f.seen |= bit;
    match known {
        Known::ToPath => {
            paths.validate(value).map_err(Error::BadUri)?;
            f.to_path = Some(field.value);
            f.to_index = index;
        }
        Known::FromPath => {
            paths.validate(value).map_err(Error::BadUri)?;
            f.from_path = Some(field.value);
            f.from_index = index;
        }
        Known::MessageId => {
            f.message_id = Some(MessageId::new(value).ok_or(Error::BadHeaderValue("Message-ID"))?);
        }
        Known::ByteRange => {
            f.byte_range = Some(ByteRange::parse(value).map_err(Error::BadByteRange)?);
        }
        Known::SuccessReport => {
            f.success_report =
                Some(SuccessReport::parse(value).ok_or(Error::BadHeaderValue("Success-Report"))?);
        }
        Known::FailureReport => {
            f.failure_report =
                Some(FailureReport::parse(value).ok_or(Error::BadHeaderValue("Failure-Report"))?);
        }
        Known::Status => {
            let (status, comment) = ReportStatus::parse(value).ok_or(Error::BadHeaderValue("Status"))?;
            f.status = Some(status);
            f.status_comment =
                comment.map(|at| Span::new(field.value.start as usize + at, field.value.end as usize));
        }
        Known::ContentType => {
            if !is_media_type(value) {
                return Err(Error::BadHeaderValue("Content-Type"));
            }
            f.content_type = Some(field.value);
        }
    }
    Ok(())
}

/// The rules that need the whole head (RFC 4975 7.1, 7.1.1, 7.1.2, 7.2);
/// returns the To-Path and From-Path values.
fn check_frame_rules(
    kind: &FrameKind,
    f: &Fields,
    bodiless: Option<Continuation>,
) -> Result<(Span, Span), Error> {
    let to_path = f.to_path.ok_or(Error::MissingToPath)?;
    let from_path = f.from_path.ok_or(Error::MissingFromPath)?;
    // headers = To-Path CRLF From-Path CRLF ... (RFC 4975 9); lenient mode
    // takes them anywhere.
    if f.strictness == Strictness::Strict && (f.to_index, f.from_index) != (0, 1) {
        return Err(Error::HeaderOrder);
    }
    match kind {
        FrameKind::Response { .. } => {
            // RFC 4975 7.2: responses are bodiless and end in "$".
            if f.has_body || f.content_type.is_some() {
                return Err(Error::BadResponse("a response carries a body"));
            }
            if bodiless != Some(Continuation::Last) {
                return Err(Error::BadResponse("a response end-line must end in \"$\""));
            }
        }
        FrameKind::Request(method) => {
            if f.has_body && f.content_type.is_none() {
                return Err(Error::ContentTypeMissing);
            }
            if !f.has_body && f.content_type.is_some() {
                return Err(Error::ContentTypeWithoutBody);
            }
            match method {
                // A bodiless SEND (a bind or keep-alive, RFC 4975 5.4, 7.1)
                // carries no message to identify: the lenient profile takes
                // it without a Message-ID, as stacks send it.
                Method::Send
                    if f.message_id.is_none() && (f.has_body || f.strictness == Strictness::Strict) =>
                {
                    return Err(Error::MissingMessageId)
                }
                Method::Report => {
                    // RFC 4975 7.1.2
                    if f.success_report.is_some() || f.failure_report.is_some() {
                        return Err(Error::BadReport("carries Success-Report or Failure-Report"));
                    }
                    if f.status.is_none() {
                        return Err(Error::BadReport("no Status header"));
                    }
                    if f.message_id.is_none() {
                        return Err(Error::BadReport("no Message-ID"));
                    }
                }
                _ => {}
            }
        }
    }
    Ok((to_path, from_path))
}
