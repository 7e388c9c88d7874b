//! A parsed frame head: the start line and headers, typed, pointing into the
//! bytes that arrived (RFC 4975 7.1, 9).

use bytes::Bytes;

use super::header::{ByteRange, FailureReport, ReportStatus, SuccessReport};
use super::ident::{MessageId, TransactionId};
use super::limits::Strictness;
use super::span::Span;
use super::uri::{split_path, MsrpUri};

/// `other-method = 1*UPALPHA` (RFC 4975 9): "send" is a syntax error, not an
/// unknown method.
pub(crate) fn is_method_token(token: &[u8]) -> bool {
    !token.is_empty() && token.iter().all(u8::is_ascii_uppercase)
}

/// A request method (RFC 4975 9: `mSEND / mREPORT / other-method`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Send,
    Report,
    /// Any other `1*UPALPHA` token (AUTH, NICKNAME, ...): answered 501 by an
    /// endpoint that does not know it.
    Other(Bytes),
}

impl Method {
    /// Reads a method token; `None` unless it is `1*UPALPHA`.
    pub fn parse(token: Bytes) -> Option<Method> {
        match &token[..] {
            b"SEND" => Some(Method::Send),
            b"REPORT" => Some(Method::Report),
            t if is_method_token(t) => Some(Method::Other(token)),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Method::Send => b"SEND",
            Method::Report => b"REPORT",
            Method::Other(token) => token,
        }
    }

    /// The method name (always ASCII upper case).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// The end-line's continuation flag (RFC 4975 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Continuation {
    /// `+`: more chunks of this message follow.
    More,
    /// `$`: this chunk completes the message.
    Last,
    /// `#`: the sender abandons the message.
    Abort,
}

impl Continuation {
    pub fn from_byte(b: u8) -> Option<Continuation> {
        match b {
            b'+' => Some(Continuation::More),
            b'$' => Some(Continuation::Last),
            b'#' => Some(Continuation::Abort),
            _ => None,
        }
    }

    pub fn as_byte(self) -> u8 {
        match self {
            Continuation::More => b'+',
            Continuation::Last => b'$',
            Continuation::Abort => b'#',
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Continuation::More => "+",
            Continuation::Last => "$",
            Continuation::Abort => "#",
        }
    }
}

/// Request or response, from the start line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Request(Method),
    Response { status: u16 },
}

/// One header line: name and value as spans of the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderField {
    pub name: Span,
    pub value: Span,
}

impl HeaderField {
    /// Where the name and value of a header line that validated lie:
    /// `hname ":" SP hval` (strict) or `hname ":" *WSP hval *WSP` (lenient),
    /// RFC 4975 9. The head parser validates with the same split, so the
    /// fields read back later are the ones it checked.
    pub(crate) fn locate(
        line: &[u8],
        line_start: usize,
        colon: usize,
        strictness: Strictness,
    ) -> HeaderField {
        let (mut value_start, mut value_end) = (colon + 1, line.len());
        match strictness {
            Strictness::Strict => value_start += 1,
            Strictness::Lenient => {
                while value_start < value_end && matches!(line[value_start], b' ' | b'\t') {
                    value_start += 1;
                }
                while value_end > value_start && matches!(line[value_end - 1], b' ' | b'\t') {
                    value_end -= 1;
                }
            }
        }
        HeaderField {
            name: Span::new(line_start, line_start + colon),
            value: Span::new(line_start + value_start, line_start + value_end),
        }
    }
}

/// A To-Path or From-Path value: one or more URIs, leftmost first.
#[derive(Clone, Copy, Debug)]
pub struct Path<'a> {
    raw: &'a Bytes,
    span: Span,
}

impl<'a> Path<'a> {
    /// The header value as written.
    pub fn as_str(&self) -> &'a str {
        core::str::from_utf8(self.span.of(self.raw)).unwrap_or_default()
    }

    /// The URIs, leftmost (next hop / previous hop) first.
    pub fn uris(&self) -> impl Iterator<Item = MsrpUri> + 'a {
        let raw = self.raw;
        let start = self.span.start as usize;
        split_path(self.span.of(raw)).filter_map(move |(at, uri)| {
            // Validated when the head was parsed.
            MsrpUri::parse(raw.slice(start + at..start + at + uri.len())).ok()
        })
    }

    /// How many URIs the path holds (an endpoint expects one in To-Path).
    pub fn len(&self) -> usize {
        self.span.of(self.raw).iter().filter(|&&b| b == b' ').count() + 1
    }

    /// A path always holds at least one URI.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The start line and headers of one frame, validated and typed.
///
/// Field values point into `raw`, the head's bytes as they arrived.
#[derive(Clone, Debug)]
pub struct FrameHead {
    pub(crate) raw: Bytes,
    pub(crate) tid: TransactionId,
    pub(crate) kind: FrameKind,
    pub(crate) comment: Option<Span>,
    /// The header lines, each with its CRLF; split again on demand rather
    /// than kept as a list, so a head costs no allocation.
    pub(crate) header_lines: Span,
    pub(crate) strictness: Strictness,
    pub(crate) to_path: Span,
    pub(crate) from_path: Span,
    pub(crate) message_id: Option<MessageId>,
    pub(crate) byte_range: Option<ByteRange>,
    pub(crate) success_report: Option<SuccessReport>,
    pub(crate) failure_report: Option<FailureReport>,
    pub(crate) status: Option<ReportStatus>,
    pub(crate) status_comment: Option<Span>,
    pub(crate) content_type: Option<Span>,
    pub(crate) has_body: bool,
}

impl FrameHead {
    fn text(&self, span: Span) -> &str {
        // The head parser admitted only utf8text, so every span is valid UTF-8.
        let text = core::str::from_utf8(span.of(&self.raw));
        debug_assert!(text.is_ok());
        text.unwrap_or_default()
    }

    /// The head's bytes exactly as received (start line through the blank line
    /// or the end-line).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn transaction_id(&self) -> &TransactionId {
        &self.tid
    }

    pub fn kind(&self) -> &FrameKind {
        &self.kind
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.kind {
            FrameKind::Request(method) => Some(method),
            FrameKind::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn status_code(&self) -> Option<u16> {
        match self.kind {
            FrameKind::Response { status } => Some(status),
            FrameKind::Request(_) => None,
        }
    }

    /// The free-text comment after a response's status code.
    pub fn comment(&self) -> Option<&str> {
        self.comment.map(|s| self.text(s))
    }

    pub fn to_path(&self) -> Path<'_> {
        Path {
            raw: &self.raw,
            span: self.to_path,
        }
    }

    pub fn from_path(&self) -> Path<'_> {
        Path {
            raw: &self.raw,
            span: self.from_path,
        }
    }

    pub fn message_id(&self) -> Option<&MessageId> {
        self.message_id.as_ref()
    }

    pub fn byte_range(&self) -> Option<ByteRange> {
        self.byte_range
    }

    /// The Success-Report header as sent; `None` when absent (meaning `no`).
    pub fn success_report(&self) -> Option<SuccessReport> {
        self.success_report
    }

    /// The Failure-Report header as sent; `None` when absent (meaning `yes`).
    pub fn failure_report(&self) -> Option<FailureReport> {
        self.failure_report
    }

    /// The Status header of a REPORT.
    pub fn report_status(&self) -> Option<ReportStatus> {
        self.status
    }

    /// The comment of the Status header.
    pub fn report_status_comment(&self) -> Option<&str> {
        self.status_comment.map(|s| self.text(s))
    }

    /// The media type, parameters included.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.map(|s| self.text(s))
    }

    /// `false` for a bodiless frame (no Content-Type, no blank line), `true`
    /// when a body follows, even an empty one (RFC 4975 7.1).
    pub fn has_body(&self) -> bool {
        self.has_body
    }

    /// Every header in order, as `(name, value)` exactly as written.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        let lines = self.header_lines;
        let block = lines.of(&self.raw);
        let mut at = 0;
        core::iter::from_fn(move || {
            // A validated header line holds neither CR nor LF (utf8text,
            // RFC 4975 9), so its end is the next LF.
            let end = at + memchr::memchr(b'\n', block.get(at..)?)?;
            let line = &block[at..end - 1];
            let line_start = lines.start as usize + at;
            at = end + 1;
            let colon = memchr::memchr(b':', line).unwrap_or_default();
            let field = HeaderField::locate(line, line_start, colon, self.strictness);
            Some((self.text(field.name), self.text(field.value)))
        })
    }

    /// The first header of that name (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}
