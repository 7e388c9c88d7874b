//! A received SIP message: the raw bytes kept exactly, the normalised head,
//! and the header fields every layer needs, parsed once (RFC 3261 7, 8.1.1,
//! 8.2). Also the writer side, strict in what we send.

use super::frame::{content_length, FrameError, Limits};
use super::method::Method;
use super::name_addr::NameAddr;
use super::normalize::{parse_section, Head, HeadError, HeaderField, HeaderName, StartLine};
use super::uri::Uri;
use super::via::{HeaderError, Via};
use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageErrorKind {
    #[error("message exceeds the {limit}-octet limit")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Head(HeadError),
    #[error("{0}")]
    Frame(FrameError),
    /// RFC 3261 8.1.1: a request without Via cannot be answered (SIP20).
    #[error("missing Via header field")]
    MissingVia,
    #[error("missing {0} header field")]
    MissingHeader(&'static str),
    #[error("more than one {0} header field")]
    Duplicate(&'static str),
    #[error("bad {name} header field: {error}")]
    BadHeader { name: &'static str, error: HeaderError },
    #[error("bad Call-ID")]
    CallId,
    #[error("bad CSeq")]
    CSeq,
    /// RFC 3261 8.2: CSeq method must match the Request-Line (RFC 4475 3.1.2.15/16).
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMismatch { method: String, cseq: String },
    #[error("bad Max-Forwards")]
    MaxForwards,
    /// RFC 3261 20.17: SIP-date is always GMT (RFC 4475 3.1.2.11 baddate).
    #[error("bad Date")]
    Date,
}

impl MessageErrorKind {
    fn status(&self) -> u16 {
        match self {
            MessageErrorKind::Head(h) => h.status(),
            MessageErrorKind::TooLarge { .. } | MessageErrorKind::Frame(FrameError::BodyTooLarge { .. }) => {
                513
            }
            _ => 400,
        }
    }
}

/// What to do with a message that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Answer with `status`; `warning` is the text for `Warning: 399 host "..."`.
    Reply { status: u16, warning: String },
    /// Discard silently: a response, or a request we cannot address a reply to.
    Drop,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct MessageError {
    pub kind: MessageErrorKind,
    /// The normalised header fields when the head could be split; what
    /// [`response_to_fields`] copies into the 400.
    pub headers: Vec<HeaderField>,
    pub is_request: bool,
}

/// Headers a reply must copy (RFC 3261 8.2.6.2); without them, drop.
const NEEDED: &[&str] = &["Via", "From", "To", "Call-ID", "CSeq"];

impl MessageError {
    pub fn disposition(&self) -> Disposition {
        let has = |n: &str| self.headers.iter().any(|f| f.name.is(n));
        let top_via = self.headers.iter().find(|f| f.name.is("Via"));
        let addressable =
            NEEDED.iter().all(|n| has(n)) && top_via.is_some_and(|v| Via::sent_by_readable(&v.value));
        if !self.is_request || !addressable || matches!(self.kind, MessageErrorKind::MissingVia) {
            return Disposition::Drop;
        }
        Disposition::Reply {
            status: self.kind.status(),
            warning: self.kind.to_string(),
        }
    }
}

/// A parsed message; accessors return what was computed at parse.
#[derive(Debug, Clone)]
pub struct Message {
    raw: Bytes,
    head: Head,
    body: Bytes,
    vias: Vec<Via>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    cseq: CSeq,
    max_forwards: Option<u32>,
    contacts: Vec<NameAddr>,
    content_length: Option<usize>,
}

impl Message {
    /// Parses one framed message (see `frame`).
    pub fn parse(raw: Bytes, limits: &Limits) -> Result<Message, MessageError> {
        let is_request = !raw.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"));
        let fail = |kind, headers: &[HeaderField]| MessageError {
            kind,
            headers: headers.to_vec(),
            is_request,
        };
        if raw.len() > limits.message_bytes_max {
            return Err(fail(
                MessageErrorKind::TooLarge {
                    limit: limits.message_bytes_max,
                },
                &[],
            ));
        }
        let section = parse_section(&raw, limits).map_err(|e| fail(MessageErrorKind::Head(e), &[]))?;
        let fields = &section.headers;
        let start_line =
            StartLine::parse(&section.start_line).map_err(|e| fail(MessageErrorKind::Head(e), fields))?;
        let content_length = content_length(&raw[..section.body_offset])
            .map_err(|e| fail(MessageErrorKind::Frame(e), fields))?;
        let avail = raw.len() - section.body_offset;
        let body_len = match content_length {
            Some(declared) if declared > avail => {
                return Err(fail(
                    MessageErrorKind::Frame(FrameError::BodyTruncated { declared, got: avail }),
                    fields,
                ));
            }
            // RFC 3261 18.3: octets past Content-Length are not part of the message.
            Some(declared) => declared,
            None => avail,
        };
        let body = raw.slice(section.body_offset..section.body_offset + body_len);
        let head = Head {
            start_line,
            headers: section.headers.clone(),
            body_offset: section.body_offset,
        };
        let typed = Typed::parse(&head).map_err(|k| fail(k, fields))?;
        Ok(Message {
            raw,
            body,
            vias: typed.vias,
            from: typed.from,
            to: typed.to,
            call_id: typed.call_id,
            cseq: typed.cseq,
            max_forwards: typed.max_forwards,
            contacts: typed.contacts,
            content_length,
            head,
        })
    }

    /// The bytes exactly as received (past Content-Length trimmed by framing).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
    pub fn head(&self) -> &Head {
        &self.head
    }
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    pub fn is_request(&self) -> bool {
        self.head.start_line.is_request()
    }
    pub fn method(&self) -> Option<&Method> {
        match &self.head.start_line {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.head.start_line {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match &self.head.start_line {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }
    pub fn reason(&self) -> Option<&str> {
        match &self.head.start_line {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }
    /// First value of `name` (any case, compact form accepted).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).next()
    }
    /// Every field of `name`, in order (not split at commas).
    pub fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = HeaderName::new(name);
        self.head
            .headers
            .iter()
            .filter(move |f| f.name == name)
            .map(|f| f.value.as_str())
    }
    pub fn vias(&self) -> &[Via] {
        &self.vias
    }
    pub fn top_via(&self) -> Option<&Via> {
        self.vias.first()
    }
    pub fn from(&self) -> &NameAddr {
        &self.from
    }
    pub fn to(&self) -> &NameAddr {
        &self.to
    }
    pub fn call_id(&self) -> &str {
        &self.call_id
    }
    pub fn cseq(&self) -> &CSeq {
        &self.cseq
    }
    pub fn max_forwards(&self) -> Option<u32> {
        self.max_forwards
    }
    /// Contact values; a `*` (RFC 3261 10.2.2) yields none.
    pub fn contacts(&self) -> &[NameAddr] {
        &self.contacts
    }
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }
    /// `None` when the header is absent (allowed on UDP, RFC 3261 18.3).
    pub fn content_length(&self) -> Option<usize> {
        self.content_length
    }
    /// Route values in order, parsed on demand.
    pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs("Route")
    }
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs("Record-Route")
    }
    /// All values of a name-addr list header, in order.
    pub fn name_addrs(&self, name: &str) -> Result<Vec<NameAddr>, HeaderError> {
        let mut out = Vec::new();
        for v in self.header_values(name) {
            out.extend(NameAddr::parse_list(v)?);
        }
        Ok(out)
    }
}

struct Typed {
    vias: Vec<Via>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    cseq: CSeq,
    max_forwards: Option<u32>,
    contacts: Vec<NameAddr>,
}

fn single<'a>(head: &'a Head, name: &'static str) -> Result<&'a str, MessageErrorKind> {
    let mut it = head.headers.iter().filter(|f| f.name.is(name));
    let first = it.next().ok_or(MessageErrorKind::MissingHeader(name))?;
    // RFC 3261 7.3.1: only list headers may appear more than once.
    if it.next().is_some() {
        return Err(MessageErrorKind::Duplicate(name));
    }
    Ok(&first.value)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~()<>:\\\"/[]?{}".contains(c)
}

impl Typed {
    fn parse(head: &Head) -> Result<Typed, MessageErrorKind> {
        let bad = |name, error| MessageErrorKind::BadHeader { name, error };
        let mut vias = Vec::new();
        for f in head.headers.iter().filter(|f| f.name.is("Via")) {
            vias.extend(Via::parse_list(&f.value).map_err(|e| bad("Via", e))?);
        }
        if vias.is_empty() && head.start_line.is_request() {
            return Err(MessageErrorKind::MissingVia);
        }
        let from = NameAddr::parse(single(head, "From")?).map_err(|e| bad("From", e))?;
        let to = NameAddr::parse(single(head, "To")?).map_err(|e| bad("To", e))?;
        // RFC 3261 25.1: callid = word [ "@" word ].
        let call_id = single(head, "Call-ID")?;
        let ok = !call_id.is_empty()
            && call_id.split('@').count() <= 2
            && call_id
                .split('@')
                .all(|w| !w.is_empty() && w.chars().all(is_word_char));
        if !ok {
            return Err(MessageErrorKind::CallId);
        }
        // RFC 3261 8.1.1.5: CSeq = 1*DIGIT LWS Method, the number below 2**31.
        let cseq_v = single(head, "CSeq")?;
        let (num, m) = cseq_v.split_once([' ', '\t']).ok_or(MessageErrorKind::CSeq)?;
        if num.is_empty() || num.len() > 10 || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MessageErrorKind::CSeq);
        }
        let seq: u32 = num.parse().map_err(|_| MessageErrorKind::CSeq)?;
        if seq >= 1 << 31 {
            return Err(MessageErrorKind::CSeq);
        }
        let cseq = CSeq {
            seq,
            method: Method::parse(m.trim_matches([' ', '\t'])).map_err(|_| MessageErrorKind::CSeq)?,
        };
        if let StartLine::Request { method, .. } = &head.start_line {
            if *method != cseq.method {
                return Err(MessageErrorKind::CSeqMismatch {
                    method: method.to_string(),
                    cseq: cseq.method.to_string(),
                });
            }
        }
        // RFC 3261 20.22 / 8.1.1.6: Max-Forwards is 0-255; optional here (lenient).
        let max_forwards = match head.headers.iter().find(|f| f.name.is("Max-Forwards")) {
            Some(f) => {
                let v = &f.value;
                if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(MessageErrorKind::MaxForwards);
                }
                let n: u32 = v.parse().map_err(|_| MessageErrorKind::MaxForwards)?;
                if n > 255 {
                    return Err(MessageErrorKind::MaxForwards);
                }
                Some(n)
            }
            None => None,
        };
        let mut contacts = Vec::new();
        for f in head.headers.iter().filter(|f| f.name.is("Contact")) {
            if f.value == "*" {
                continue;
            }
            contacts.extend(NameAddr::parse_list(&f.value).map_err(|e| bad("Contact", e))?);
        }
        if let Some(d) = head.headers.iter().find(|f| f.name.is("Date")) {
            if !d.value.ends_with(" GMT") {
                return Err(MessageErrorKind::Date);
            }
        }
        Ok(Typed {
            vias,
            from,
            to,
            call_id: call_id.to_string(),
            cseq,
            max_forwards,
            contacts,
        })
    }
}

/// Writes requests and responses: canonical names, CRLF, one field per
/// line, Content-Length always (RFC 3261 7.3, 18.3 say stream transports need it).
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    start_line: String,
    headers: Vec<(HeaderName, String)>,
    body: Option<(String, Bytes)>,
}

/// Strict on output: a CR or LF would end the field early.
fn one_line(v: &str) -> String {
    if v.contains(['\r', '\n']) {
        v.replace(['\r', '\n'], " ")
    } else {
        v.to_string()
    }
}

impl MessageBuilder {
    pub fn request(method: Method, uri: &Uri) -> MessageBuilder {
        MessageBuilder {
            start_line: format!("{method} {uri} SIP/2.0"),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn response(status: u16, reason: &str) -> MessageBuilder {
        MessageBuilder {
            start_line: format!("SIP/2.0 {status} {}", one_line(reason)),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Appends a field; Content-Length is always computed, never taken.
    pub fn header(mut self, name: &str, value: &str) -> MessageBuilder {
        let name = HeaderName::new(name);
        if !name.is("Content-Length") {
            self.headers.push((name, one_line(value)));
        }
        self
    }

    pub fn body(mut self, content_type: &str, body: Bytes) -> MessageBuilder {
        self.headers.retain(|(n, _)| !n.is("Content-Type"));
        self.body = Some((one_line(content_type), body));
        self
    }

    pub fn build(self) -> Bytes {
        let body_len = self.body.as_ref().map_or(0, |(_, b)| b.len());
        let head_len: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum();
        let mut out = BytesMut::with_capacity(self.start_line.len() + head_len + 64 + body_len);
        out.put_slice(self.start_line.as_bytes());
        out.put_slice(b"\r\n");
        for (n, v) in &self.headers {
            for piece in [n.as_str(), ": ", v, "\r\n"] {
                out.put_slice(piece.as_bytes());
            }
        }
        if let Some((ct, _)) = &self.body {
            for piece in ["Content-Type: ", ct, "\r\n"] {
                out.put_slice(piece.as_bytes());
            }
        }
        out.put_slice(b"Content-Length: ");
        out.put_slice(body_len.to_string().as_bytes());
        out.put_slice(b"\r\n\r\n");
        if let Some((_, b)) = self.body {
            out.put_slice(&b);
        }
        out.freeze()
    }
}

/// RFC 3261 8.2.6.2: copy Via (all, in order), From, To, Call-ID, CSeq from
/// header fields, e.g. those of a [`MessageError`] to answer a 400.
pub fn response_to_fields(fields: &[HeaderField], status: u16, reason: &str) -> MessageBuilder {
    let mut b = MessageBuilder::response(status, reason);
    for f in fields.iter().filter(|f| f.name.is("Via")) {
        b = b.header("Via", &f.value);
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(f) = fields.iter().find(|f| f.name.is(name)) {
            b = b.header(name, &f.value);
        }
    }
    b
}

/// A response to `req` (RFC 3261 8.2.6.2); `to_tag` is added when the
/// request's To has no tag (the UAS chooses it, RFC 3261 8.2.6.2, 12.1.1).
pub fn response_to(req: &Message, status: u16, reason: &str, to_tag: Option<&str>) -> MessageBuilder {
    let mut b = MessageBuilder::response(status, reason);
    for v in req.header_values("Via") {
        b = b.header("Via", v);
    }
    let to = match (req.to().tag(), to_tag) {
        (None, Some(tag)) => {
            let mut to = req.to().clone();
            to.params.push(("tag".to_string(), Some(tag.to_string())));
            to.to_string()
        }
        _ => req.header("To").unwrap_or_default().to_string(),
    };
    b.header("From", req.header("From").unwrap_or_default())
        .header("To", &to)
        .header("Call-ID", req.call_id())
        .header("CSeq", &format!("{} {}", req.cseq().seq, req.cseq().method))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = "INVITE sip:chat@ms.example.net SIP/2.0\r\nv: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-0\r\nf: \"Alice\" <sip:alice@atlanta.example.com>;tag=8d\r\nt: <sip:chat@ms.example.net>\r\ni: c1@h\r\nCSeq: 7 INVITE\r\nMax-Forwards: 70\r\nl: 4\r\n\r\nbody";

    #[test]
    fn parse_and_answer() {
        let m = Message::parse(Bytes::from_static(REQ.as_bytes()), &Limits::default()).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.vias().len(), 2);
        assert_eq!(m.from().tag(), Some("8d"));
        assert_eq!(
            m.cseq(),
            &CSeq {
                seq: 7,
                method: Method::Invite
            }
        );
        assert_eq!(&m.body()[..], b"body");
        assert_eq!(m.header("content-length"), Some("4"));
        let r = response_to(&m, 200, "OK", Some("ms1")).build();
        let r = Message::parse(r, &Limits::default()).unwrap();
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.vias().len(), 2);
        assert_eq!(r.to().tag(), Some("ms1"));
        assert_eq!(r.call_id(), "c1@h");
        assert_eq!(r.content_length(), Some(0));
    }

    #[test]
    fn errors_and_dispositions() {
        let bad = REQ.replace("CSeq: 7 INVITE", "CSeq: 7 BYE");
        let e = Message::parse(Bytes::from(bad), &Limits::default()).unwrap_err();
        assert!(matches!(e.kind, MessageErrorKind::CSeqMismatch { .. }));
        assert!(matches!(e.disposition(), Disposition::Reply { status: 400, .. }));
        let b400 = response_to_fields(&e.headers, 400, "Bad Request").build();
        assert!(Message::parse(b400, &Limits::default()).is_ok());
        let novia = REQ.replace("v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-0\r\n", "");
        let e = Message::parse(Bytes::from(novia), &Limits::default()).unwrap_err();
        assert_eq!(e.kind, MessageErrorKind::MissingVia);
        assert_eq!(e.disposition(), Disposition::Drop);
    }

    #[test]
    fn builder_is_strict() {
        let uri = Uri::parse("sip:a@b").unwrap();
        let out = MessageBuilder::request(Method::Options, &uri)
            .header("call-id", "x\r\ny")
            .header("Content-Length", "99")
            .body("text/plain", Bytes::from_static(b"hi"))
            .build();
        assert_eq!(&out[..], b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x  y\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi");
    }
}
