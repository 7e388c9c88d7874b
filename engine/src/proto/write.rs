//! Building frames (RFC 4975 7.1, 7.2): requests with fresh random transaction
//! ids chosen so that the end-line cannot occur in the body, and responses.

use bytes::{BufMut, Bytes, BytesMut};
use memchr::memmem::Finder;

use super::frame::{Continuation, Method};
use super::head::{is_utf8text, END_LINE_HYPHENS};
use super::header::{is_media_type, ByteRange, FailureReport, ReportStatus, SuccessReport};
use super::ident::{MessageId, TransactionId, BASE62};

/// Length of generated transaction ids: 16 base62 characters carry about 95
/// random bits (RFC 4975 7.1 asks for at least 64).
pub const GENERATED_TID_LEN: usize = 16;

/// Why a frame could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A header value would break the frame (a CR, LF or other control
    /// character, or a Content-Type that is not a media type).
    #[error("{0} is not a valid header value")]
    InvalidHeaderValue(&'static str),
    /// RFC 4975 7.1: requests other than SEND carry at most 10240 octets.
    #[error("a {0} body of {1} octets is over the 10240-octet limit for non-SEND requests")]
    NonSendBodyTooLarge(&'static str, usize),
    /// Responses always end in `$` and carry no body (RFC 4975 7.2); status
    /// codes have three digits.
    #[error("status code {0} is not three digits")]
    BadStatusCode(u16),
}

/// The body of a request and its media type.
#[derive(Clone, Debug)]
pub struct Content<'a> {
    pub content_type: &'a str,
    /// MIME headers written before Content-Type (Content-Disposition, ...).
    pub mime_headers: &'a [(&'a str, &'a str)],
    pub body: Bytes,
}

/// A request to write.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub method: &'a Method,
    /// The whole To-Path value (space-separated URIs, next hop first).
    pub to_path: &'a str,
    pub from_path: &'a str,
    pub message_id: Option<MessageId>,
    pub byte_range: Option<ByteRange>,
    pub success_report: Option<SuccessReport>,
    pub failure_report: Option<FailureReport>,
    /// The Status header of a REPORT, with its comment.
    pub status: Option<(ReportStatus, &'a str)>,
    /// `None` writes a bodiless request.
    pub content: Option<Content<'a>>,
    pub continuation: Continuation,
}

/// A request split for a vectored write: `head`, then `body` (the caller's own
/// buffer, not copied), then `tail` (CRLF and end-line).
#[derive(Clone, Debug)]
pub struct EncodedRequest {
    pub tid: TransactionId,
    pub head: Bytes,
    pub body: Bytes,
    pub tail: Bytes,
}

/// Writes frames; owns the random source for transaction ids.
pub struct Writer {
    rng: fastrand::Rng,
    hyphens: Finder<'static>,
}

impl Default for Writer {
    fn default() -> Writer {
        Writer::new()
    }
}

fn put_u64(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

fn checked<'v>(what: &'static str, value: &'v str) -> Result<&'v [u8], WriteError> {
    if value.is_empty() || !is_utf8text(value.as_bytes()) {
        return Err(WriteError::InvalidHeaderValue(what));
    }
    Ok(value.as_bytes())
}

impl Writer {
    /// A writer whose ids come from a generator seeded from the process's
    /// random state.
    pub fn new() -> Writer {
        Writer::from_rng(fastrand::Rng::new())
    }

    /// A writer with reproducible ids, for tests and simulations.
    pub fn with_seed(seed: u64) -> Writer {
        Writer::from_rng(fastrand::Rng::with_seed(seed))
    }

    fn from_rng(rng: fastrand::Rng) -> Writer {
        Writer {
            rng,
            hyphens: Finder::new(END_LINE_HYPHENS),
        }
    }

    /// A fresh transaction id of [`GENERATED_TID_LEN`] base62 characters.
    pub fn transaction_id(&mut self) -> TransactionId {
        let mut id = [0u8; GENERATED_TID_LEN];
        for half in id.chunks_mut(GENERATED_TID_LEN / 2) {
            // 62^8 < 2^64: eight characters from one 64-bit draw.
            let mut bits = self.rng.u64(..);
            for c in half {
                *c = BASE62[(bits % 62) as usize];
                bits /= 62;
            }
        }
        TransactionId::new(&id).expect("base62 strings of 16 characters are idents")
    }

    /// RFC 4975 7.1: the end-line (hyphens, tid, any flag) must not occur in
    /// the body.
    fn occurs_in(&self, body: &[u8], tid: &TransactionId) -> bool {
        self.hyphens
            .find_iter(body)
            .any(|at| body[at + END_LINE_HYPHENS.len()..].starts_with(tid.as_bytes()))
    }

    fn body_safe_tid(&mut self, body: &[u8]) -> TransactionId {
        loop {
            let tid = self.transaction_id();
            if !self.occurs_in(body, &tid) {
                return tid;
            }
        }
    }

    /// Writes the start line and headers, through the blank line when there is
    /// a body. Returns the transaction id.
    fn put_head(&mut self, req: &Request<'_>, out: &mut BytesMut) -> Result<TransactionId, WriteError> {
        let to_path = checked("To-Path", req.to_path)?;
        let from_path = checked("From-Path", req.from_path)?;
        if let Some(content) = &req.content {
            if !is_media_type(content.content_type.as_bytes()) {
                return Err(WriteError::InvalidHeaderValue("Content-Type"));
            }
            for (name, value) in content.mime_headers {
                checked("a MIME header", name)?;
                checked("a MIME header", value)?;
            }
            if !matches!(req.method, Method::Send) && content.body.len() > 10240 {
                let method = if matches!(req.method, Method::Report) {
                    "REPORT"
                } else {
                    "non-SEND"
                };
                return Err(WriteError::NonSendBodyTooLarge(method, content.body.len()));
            }
        }
        let status_comment = match &req.status {
            Some((_, comment)) if !comment.is_empty() => Some(checked("Status comment", comment)?),
            _ => None,
        };
        let tid = match &req.content {
            Some(content) => self.body_safe_tid(&content.body),
            None => self.transaction_id(),
        };
        out.reserve(256 + to_path.len() + from_path.len());
        out.put_slice(b"MSRP ");
        out.put_slice(tid.as_bytes());
        out.put_u8(b' ');
        out.put_slice(req.method.as_bytes());
        out.put_slice(b"\r\n");
        put_header(out, b"To-Path", to_path);
        put_header(out, b"From-Path", from_path);
        if let Some(id) = &req.message_id {
            put_header(out, b"Message-ID", id.as_bytes());
        }
        if let Some(range) = req.byte_range {
            out.put_slice(b"Byte-Range: ");
            put_u64(out, range.start);
            out.put_u8(b'-');
            match range.end {
                Some(end) => put_u64(out, end),
                None => out.put_u8(b'*'),
            }
            out.put_u8(b'/');
            match range.total {
                Some(total) => put_u64(out, total),
                None => out.put_u8(b'*'),
            }
            out.put_slice(b"\r\n");
        }
        if let Some(sr) = req.success_report {
            put_header(out, b"Success-Report", sr.as_str().as_bytes());
        }
        if let Some(fr) = req.failure_report {
            put_header(out, b"Failure-Report", fr.as_str().as_bytes());
        }
        if let Some((status, _)) = &req.status {
            out.put_slice(b"Status: ");
            put_three_digits(out, status.namespace);
            out.put_u8(b' ');
            put_three_digits(out, status.code);
            if let Some(comment) = status_comment {
                out.put_u8(b' ');
                out.put_slice(comment);
            }
            out.put_slice(b"\r\n");
        }
        if let Some(content) = &req.content {
            for (name, value) in content.mime_headers {
                put_header(out, name.as_bytes(), value.as_bytes());
            }
            put_header(out, b"Content-Type", content.content_type.as_bytes());
            out.put_slice(b"\r\n");
        }
        Ok(tid)
    }

    /// Writes a whole request, body copied, into `out`.
    pub fn write_request(
        &mut self,
        req: &Request<'_>,
        out: &mut BytesMut,
    ) -> Result<TransactionId, WriteError> {
        let tid = self.put_head(req, out)?;
        if let Some(content) = &req.content {
            out.put_slice(&content.body);
            out.put_slice(b"\r\n");
        }
        put_end_line(out, tid.as_bytes(), req.continuation);
        Ok(tid)
    }

    /// Encodes a request for a vectored write without copying the body:
    /// `scratch` receives head and tail, which are split off it.
    pub fn encode_request(
        &mut self,
        req: &Request<'_>,
        scratch: &mut BytesMut,
    ) -> Result<EncodedRequest, WriteError> {
        let tid = self.put_head(req, scratch)?;
        let head = scratch.split().freeze();
        let body = match &req.content {
            Some(content) => {
                scratch.put_slice(b"\r\n");
                content.body.clone()
            }
            None => Bytes::new(),
        };
        put_end_line(scratch, tid.as_bytes(), req.continuation);
        Ok(EncodedRequest {
            tid,
            head,
            body,
            tail: scratch.split().freeze(),
        })
    }
}

fn put_three_digits(out: &mut BytesMut, n: u16) {
    out.put_slice(&[
        b'0' + (n / 100 % 10) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]);
}

fn put_end_line(out: &mut BytesMut, tid: &[u8], flag: Continuation) {
    out.put_slice(END_LINE_HYPHENS);
    out.put_slice(tid);
    out.put_u8(flag.as_byte());
    out.put_slice(b"\r\n");
}

/// Writes a response (RFC 4975 7.2): the request's tid, bodiless, ending in `$`.
/// `to_path` is the leftmost From-Path URI of a SEND, the whole From-Path of
/// other requests.
pub fn write_response(
    out: &mut BytesMut,
    tid: &TransactionId,
    status: u16,
    comment: Option<&str>,
    to_path: &str,
    from_path: &str,
) -> Result<(), WriteError> {
    write_response_echo(out, tid.as_bytes(), status, comment, to_path, from_path)
}

/// [`write_response`] echoing a transaction id that need not be a valid
/// ident: the `400` to a malformed request repeats the id that delimited it
/// ([`Malformed::transaction_id`](super::Malformed::transaction_id), e.g. the
/// three-character `abc` of vector N03), of any length the start line's
/// limit let through. The id must still be visible ASCII characters, so
/// that it cannot break the frame.
pub fn write_response_echo(
    out: &mut BytesMut,
    tid: &[u8],
    status: u16,
    comment: Option<&str>,
    to_path: &str,
    from_path: &str,
) -> Result<(), WriteError> {
    if tid.is_empty() || !tid.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(WriteError::InvalidHeaderValue("transaction id"));
    }
    if !(100..=999).contains(&status) {
        return Err(WriteError::BadStatusCode(status));
    }
    let to_path = checked("To-Path", to_path)?;
    let from_path = checked("From-Path", from_path)?;
    let comment = comment.map(|c| checked("response comment", c)).transpose()?;
    out.reserve(64 + to_path.len() + from_path.len());
    out.put_slice(b"MSRP ");
    out.put_slice(tid);
    out.put_u8(b' ');
    put_three_digits(out, status);
    if let Some(comment) = comment {
        out.put_u8(b' ');
        out.put_slice(comment);
    }
    out.put_slice(b"\r\n");
    put_header(out, b"To-Path", to_path);
    put_header(out, b"From-Path", from_path);
    put_end_line(out, tid, Continuation::Last);
    Ok(())
}

/// The usual comment for a status code (RFC 4975 10).
pub fn status_comment(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Message Too Large",
        415 => "Unsupported Media Type",
        423 => "Interval Out Of Bounds",
        481 => "No Such Session",
        501 => "Not Implemented",
        506 => "Session Bound Elsewhere",
        _ => "Unknown",
    }
}
