//! Normalisation of a framed message's head (RFC 3261 7.1-7.3): the start
//! line, unfolded header fields with canonical names.
//!
//! ```text
//! message-header = ( header-name HCOLON header-value ) CRLF
//! HCOLON         = *( SP / HTAB ) ":" SWS
//! LWS            = [*WSP CRLF] 1*WSP ; linear whitespace (folding)
//! Request-Line   = Method SP Request-URI SP SIP-Version CRLF
//! Status-Line    = SIP-Version SP Status-Code SP Reason-Phrase CRLF
//! ```

use super::frame::Limits;
use super::method::{is_token_char, Method, MethodError};
use super::uri::{Uri, UriError};
use memchr::memmem;
use std::borrow::Cow;
use std::fmt;

/// A header name in its canonical spelling (`Call-ID`, `CSeq`,
/// `WWW-Authenticate`); compact forms are expanded; unknown names are kept
/// as received. Compare with [`HeaderName::is`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderName(Cow<'static, str>);

/// RFC 3261 7.3.3 compact forms, with those registered since
/// (IANA "Header Fields" registry: RFC 3841, 3892, 3903, 4028, 3515, 3265, 4474).
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("n", "Identity-Info"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// Canonical spellings of the names we know (RFC 3261 20 and extensions).
const CANONICAL: &[&str] = &[
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-ID",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "Contribution-ID",
    "Conversation-ID",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Geolocation",
    "Geolocation-Error",
    "Geolocation-Routing",
    "History-Info",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Info-Package",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Asserted-Service",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Recv-Info",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Resource-Priority",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
];

impl HeaderName {
    /// Canonicalises `name` (case-insensitive, RFC 3261 7.3.1; compact
    /// forms per 7.3.3). A known name borrows its spelling, so parsing a
    /// message allocates nothing for its names.
    pub fn new(name: &str) -> HeaderName {
        match known(name) {
            Some(canonical) => HeaderName(Cow::Borrowed(canonical)),
            None => HeaderName(Cow::Owned(name.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the header `name` names (any case, compact accepted).
    pub fn is(&self, name: &str) -> bool {
        self.0.eq_ignore_ascii_case(known(name).unwrap_or(name))
    }
}

/// The canonical spelling of a name we know, compact forms expanded.
fn known(name: &str) -> Option<&'static str> {
    if name.len() == 1 {
        if let Some((_, long)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
            return Some(long);
        }
    }
    // Most names come in their canonical spelling: an exact match first.
    CANONICAL
        .iter()
        .find(|c| **c == name)
        .or_else(|| CANONICAL.iter().find(|c| c.eq_ignore_ascii_case(name)))
        .copied()
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub name: HeaderName,
    /// Unfolded (each CRLF+WSP became one SP), trimmed.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request {
        method: Method,
        uri: Uri,
        version: String,
    },
    Response {
        version: String,
        status: u16,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub start_line: StartLine,
    pub headers: Vec<HeaderField>,
    /// Offset of the body in the raw message (after the blank line).
    pub body_offset: usize,
}

/// The header section split into lines, before the start line is judged:
/// a malformed Request-Line still leaves the fields a 400 needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSection {
    pub start_line: String,
    pub headers: Vec<HeaderField>,
    pub body_offset: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("no blank line ends the header section")]
    Unterminated,
    #[error("header section longer than {limit} octets")]
    TooLarge { limit: usize },
    #[error("more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    #[error("header section is not UTF-8")]
    NotUtf8,
    #[error("malformed header line {line}")]
    HeaderLine { line: usize },
    #[error("malformed Request-Line")]
    RequestLine,
    #[error("malformed Status-Line")]
    StatusLine,
    #[error("bad method: {0}")]
    Method(MethodError),
    #[error("bad Request-URI: {0}")]
    RequestUri(UriError),
    /// RFC 3261 8.2.2.x / 21.5.6: answered with 505.
    #[error("SIP version {0:?} not supported")]
    Version(String),
    #[error("status code out of range")]
    StatusCode,
}

impl HeadError {
    /// The status a UAS answers a request with (RFC 3261 8.2, 21.5.6):
    /// 505 for the version, 400 otherwise. Responses are never answered.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::Version(_) => 505,
            HeadError::TooLarge { .. } | HeadError::TooManyHeaders { .. } => 400,
            _ => 400,
        }
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits the head of `raw` into the start line and unfolded header fields.
pub fn parse_section(raw: &[u8], limits: &Limits) -> Result<HeaderSection, HeadError> {
    let window = &raw[..raw.len().min(limits.head_bytes_max)];
    let end = match memmem::find(window, b"\r\n\r\n") {
        Some(e) => e,
        None if raw.len() > limits.head_bytes_max => {
            return Err(HeadError::TooLarge {
                limit: limits.head_bytes_max,
            })
        }
        None => return Err(HeadError::Unterminated),
    };
    let text = std::str::from_utf8(&raw[..end]).map_err(|_| HeadError::NotUtf8)?;
    let mut lines = text.split("\r\n");
    let start_line = lines.next().unwrap_or("").to_string();
    let mut headers: Vec<HeaderField> = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.as_bytes().first().copied().is_some_and(is_wsp) {
            // RFC 3261 7.3.1: a folded line continues the previous field;
            // the CRLF and its whitespace become a single SP.
            let last = headers.last_mut().ok_or(HeadError::HeaderLine { line: i + 2 })?;
            let more = line.trim_matches(|c| c == ' ' || c == '\t');
            if !more.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(more);
            }
            continue;
        }
        let colon = line.find(':').ok_or(HeadError::HeaderLine { line: i + 2 })?;
        let name = line[..colon].trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(HeadError::HeaderLine { line: i + 2 });
        }
        if headers.len() == limits.headers_max {
            return Err(HeadError::TooManyHeaders {
                limit: limits.headers_max,
            });
        }
        let value = line[colon + 1..].trim_matches([' ', '\t']).to_string();
        headers.push(HeaderField {
            name: HeaderName::new(name),
            value,
        });
    }
    Ok(HeaderSection {
        start_line,
        headers,
        body_offset: end + 4,
    })
}

/// RFC 3261 7.1: `SIP/2.0` (case-insensitive); any other well-formed
/// version is a 505.
fn check_version(v: &str, bad: HeadError) -> Result<String, HeadError> {
    let rest = match v.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("SIP/") => &v[4..],
        _ => return Err(bad),
    };
    let well_formed = rest.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    if !well_formed {
        return Err(bad);
    }
    if rest != "2.0" {
        return Err(HeadError::Version(v.to_string()));
    }
    Ok("SIP/2.0".to_string())
}

impl StartLine {
    pub fn parse(line: &str) -> Result<StartLine, HeadError> {
        if line.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")) {
            let mut parts = line.splitn(3, ' ');
            let version = check_version(parts.next().unwrap_or(""), HeadError::StatusLine)?;
            let code = parts.next().ok_or(HeadError::StatusLine)?;
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::StatusCode);
            }
            let status: u16 = code.parse().map_err(|_| HeadError::StatusCode)?;
            // RFC 3261 7.2 / 21: 1xx through 6xx only.
            if !(100..=699).contains(&status) {
                return Err(HeadError::StatusCode);
            }
            // Reason-Phrase may be empty; the SP before it is lenient here.
            let reason = parts.next().unwrap_or("").to_string();
            return Ok(StartLine::Response {
                version,
                status,
                reason,
            });
        }
        // RFC 3261 7.1: exactly one SP between the three elements
        // (RFC 4475 3.1.2.5 lwsstart, 3.1.2.7 trws, 3.1.2.4 lwsruri).
        let parts: Vec<&str> = line.split(' ').collect();
        let [method, uri, version] = parts[..] else {
            return Err(HeadError::RequestLine);
        };
        if method.is_empty() || uri.is_empty() || version.contains('\t') {
            return Err(HeadError::RequestLine);
        }
        let version = check_version(version, HeadError::RequestLine)?;
        let method = Method::parse(method).map_err(HeadError::Method)?;
        let uri = Uri::parse(uri).map_err(HeadError::RequestUri)?;
        // RFC 3261 19.1.1 (table): URI headers are not allowed in a Request-URI.
        if uri.as_sip().is_some_and(|s| !s.headers.is_empty()) {
            return Err(HeadError::RequestUri(UriError::BadHeader));
        }
        Ok(StartLine::Request { method, uri, version })
    }

    pub fn is_request(&self) -> bool {
        matches!(self, StartLine::Request { .. })
    }
}

impl fmt::Display for StartLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartLine::Request { method, uri, version } => write!(f, "{method} {uri} {version}"),
            StartLine::Response {
                version,
                status,
                reason,
            } => write!(f, "{version} {status} {reason}"),
        }
    }
}

/// Parses a raw message's head: start line and normalised header fields.
pub fn parse_head(raw: &[u8], limits: &Limits) -> Result<Head, HeadError> {
    let section = parse_section(raw, limits)?;
    let start_line = StartLine::parse(&section.start_line)?;
    Ok(Head {
        start_line,
        headers: section.headers,
        body_offset: section.body_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfold_compact_case() {
        let raw = b"INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h\r\nSubject: Folded\r\n header\r\n\tcontinued\r\ncall-id  :  x \r\nwww-authenticate: Digest\r\nX-Odd: 1\r\n\r\n";
        let h = parse_head(raw, &Limits::default()).unwrap();
        let names: Vec<&str> = h.headers.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["Via", "Subject", "Call-ID", "WWW-Authenticate", "X-Odd"]);
        assert_eq!(h.headers[1].value, "Folded header continued");
        assert_eq!(h.headers[2].value, "x");
        assert_eq!(h.body_offset, raw.len());
        assert!(h.headers[0].name.is("v"));
    }

    #[test]
    fn start_lines() {
        assert!(matches!(
            StartLine::parse("SIP/2.0 100 "),
            Ok(StartLine::Response { status: 100, .. })
        ));
        assert!(matches!(
            StartLine::parse("SIP/2.0 100"),
            Ok(StartLine::Response { status: 100, .. })
        ));
        assert_eq!(
            StartLine::parse("OPTIONS sip:a@b SIP/7.0"),
            Err(HeadError::Version("SIP/7.0".into()))
        );
        assert_eq!(
            StartLine::parse("INVITE  sip:a@b  SIP/2.0"),
            Err(HeadError::RequestLine)
        );
        assert_eq!(
            StartLine::parse("OPTIONS sip:a@b SIP/2.0  "),
            Err(HeadError::RequestLine)
        );
        assert_eq!(
            StartLine::parse("SIP/2.0 4294967301 big"),
            Err(HeadError::StatusCode)
        );
    }

    #[test]
    fn limits() {
        let l = Limits {
            headers_max: 1,
            ..Limits::default()
        };
        assert_eq!(
            parse_head(b"OPTIONS sip:a@b SIP/2.0\r\nA: 1\r\nB: 2\r\n\r\n", &l),
            Err(HeadError::TooManyHeaders { limit: 1 })
        );
    }
}
