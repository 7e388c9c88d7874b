//! Finding the SDP in a SIP body: `application/sdp` itself, or the SDP part
//! of a `multipart/mixed` (NG911: SDP + PIDF-LO, RFC 6442) or
//! `multipart/related` (RFC 5547 8.8: SDP root + file icon) body.
//!
//! RFC 2046 5.1.1:
//! ```text
//! multipart-body := [preamble CRLF] dash-boundary transport-padding CRLF
//!                   body-part *encapsulation close-delimiter transport-padding [CRLF epilogue]
//! dash-boundary  := "--" boundary
//! encapsulation  := delimiter transport-padding CRLF body-part
//! delimiter      := CRLF dash-boundary
//! close-delimiter := delimiter "--"
//! body-part      := MIME-part-headers [CRLF *OCTET]
//! ```
//! The CRLF before a delimiter belongs to the delimiter, not to the part.

use thiserror::Error;

/// Nested multiparts deeper than this are refused (a bound on recursion).
pub const MULTIPART_DEPTH_MAX: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MultipartError {
    #[error("Content-Type {0:?} is neither application/sdp nor multipart")]
    NotSdp(String),
    #[error("multipart Content-Type has no boundary parameter")]
    NoBoundary,
    #[error("multipart body has no --{0} delimiter")]
    NoDelimiter(String),
    #[error("multipart body has no application/sdp part")]
    NoSdpPart,
    #[error("multipart nesting deeper than {MULTIPART_DEPTH_MAX}")]
    TooDeep,
}

/// A parsed Content-Type value (RFC 2045 5.1): lower-cased `type/subtype`
/// and its parameters, names lower-cased, quoted values unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub mime: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub fn parse(text: &str) -> ContentType {
        let (mime, mut rest) = match text.find(';') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches([' ', '\t', ';']);
            let Some(eq) = rest.find('=') else { break };
            let name = rest[..eq].trim().to_ascii_lowercase();
            let after = rest[eq + 1..].trim_start();
            let (value, consumed) = if let Some(quoted) = after.strip_prefix('"') {
                // RFC 2045 5.1 / RFC 822 quoted-string: backslash quotes one character.
                let mut value = String::new();
                let mut escaped = false;
                let mut end = quoted.len();
                for (i, c) in quoted.char_indices() {
                    if escaped {
                        value.push(c);
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = i + 1;
                        break;
                    } else {
                        value.push(c);
                    }
                }
                (value, 1 + end)
            } else {
                let end = after.find(';').unwrap_or(after.len());
                (after[..end].trim().to_owned(), end)
            };
            params.push((name, value));
            rest = &after[consumed.min(after.len())..];
        }
        ContentType {
            mime: mime.trim().to_ascii_lowercase(),
            params,
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_sdp(&self) -> bool {
        self.mime == "application/sdp"
    }
}

/// One body part: its headers (names lower-cased) and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl Part<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// RFC 2046 5.1: a part without Content-Type is text/plain.
    pub fn content_type(&self) -> ContentType {
        ContentType::parse(self.header("content-type").unwrap_or("text/plain"))
    }
}

/// The SDP in `body`, whose Content-Type is `content_type`.
pub fn find_sdp<'a>(body: &'a [u8], content_type: &str) -> Result<&'a [u8], MultipartError> {
    find_in(body, &ContentType::parse(content_type), 0)
}

fn find_in<'a>(body: &'a [u8], content_type: &ContentType, depth: usize) -> Result<&'a [u8], MultipartError> {
    if content_type.is_sdp() {
        return Ok(body);
    }
    if !content_type.mime.starts_with("multipart/") {
        return Err(MultipartError::NotSdp(content_type.mime.clone()));
    }
    if depth >= MULTIPART_DEPTH_MAX {
        return Err(MultipartError::TooDeep);
    }
    let boundary = content_type.param("boundary").ok_or(MultipartError::NoBoundary)?;
    let parts = split_parts(body, boundary)?;
    // RFC 2387 3.2: the root of multipart/related is the part named by
    // `start`, else the first part; RFC 5547 8.8 puts the SDP there.
    if content_type.mime == "multipart/related" {
        let root = match content_type.param("start") {
            Some(start) => parts
                .iter()
                .find(|p| p.header("content-id").map(str::trim) == Some(start.trim())),
            None => parts.first(),
        };
        if let Some(root) = root {
            if let Ok(sdp) = find_in(root.body, &root.content_type(), depth + 1) {
                return Ok(sdp);
            }
        }
    }
    for part in &parts {
        if let Ok(sdp) = find_in(part.body, &part.content_type(), depth + 1) {
            return Ok(sdp);
        }
    }
    Err(MultipartError::NoSdpPart)
}

/// Lines end in CRLF; a bare LF is read too (lenient, as RFC 4566 5 asks of SDP).
fn line_end(body: &[u8], from: usize) -> (usize, usize) {
    match memchr::memchr(b'\n', &body[from..]) {
        Some(i) => {
            let lf = from + i;
            let end = if lf > from && body[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            (end, lf + 1)
        }
        None => (body.len(), body.len()),
    }
}

/// Where each delimiter line starts and where the line after it begins, and
/// whether it is the close delimiter.
fn delimiters(body: &[u8], boundary: &str) -> Vec<(usize, usize, bool)> {
    let dash = format!("--{boundary}");
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let (end, next) = line_end(body, at);
        let line = &body[at..end];
        if let Some(rest) = line.strip_prefix(dash.as_bytes()) {
            let close = rest.starts_with(b"--");
            let rest = if close { &rest[2..] } else { rest };
            // RFC 2046 5.1.1 transport-padding: only LWSP may follow.
            if rest.iter().all(|b| *b == b' ' || *b == b'\t') {
                out.push((at, next, close));
                if close {
                    break;
                }
            }
        }
        at = next;
    }
    out
}

/// The parts between delimiters; the preamble and epilogue are dropped.
pub fn split_parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, MultipartError> {
    let delims = delimiters(body, boundary);
    if delims.is_empty() {
        return Err(MultipartError::NoDelimiter(boundary.to_owned()));
    }
    let mut parts = Vec::new();
    for pair in delims.windows(2) {
        let (_, start, close) = pair[0];
        if close {
            break;
        }
        let (next_at, _, _) = pair[1];
        // The CRLF (or LF) before the next delimiter belongs to it.
        let mut end = next_at;
        if end > start && body[end - 1] == b'\n' {
            end -= 1;
            if end > start && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        parts.push(read_part(&body[start..end.max(start)]));
    }
    Ok(parts)
}

fn read_part(part: &[u8]) -> Part<'_> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut at = 0;
    while at < part.len() {
        let (end, next) = line_end(part, at);
        let line = &part[at..end];
        at = next;
        if line.is_empty() {
            return Part {
                headers,
                body: &part[at..],
            };
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            // RFC 822 folding: a continuation of the previous header.
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(text.trim());
            }
        } else if let Some((name, value)) = text.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    // No blank line: the part is headers only, with an empty body.
    Part {
        headers,
        body: &part[part.len()..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_parameters() {
        let ct = ContentType::parse("Multipart/Related; type=\"application/sdp\";boundary=\"a\\\"b;c\"");
        assert_eq!(ct.mime, "multipart/related");
        assert_eq!(ct.param("type"), Some("application/sdp"));
        assert_eq!(ct.param("boundary"), Some("a\"b;c"));
        let ct = ContentType::parse("multipart/mixed;boundary=ng911-boundary-7f3a");
        assert_eq!(ct.param("boundary"), Some("ng911-boundary-7f3a"));
    }

    #[test]
    fn finds_sdp_after_a_preamble_in_any_position() {
        let body = b"preamble text\r\n--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx\r\n\
                     Content-Type: application/sdp\r\n\r\nv=0\r\nm=message 1 TCP/MSRP *\r\n\r\n--xx--\r\nepilogue";
        let sdp = find_sdp(body, "multipart/mixed; boundary=xx").unwrap();
        assert_eq!(sdp, b"v=0\r\nm=message 1 TCP/MSRP *\r\n");
    }

    #[test]
    fn related_prefers_the_root() {
        let body = b"--b\r\nContent-Type: application/sdp\r\nContent-ID: <r>\r\n\r\nv=0 root\r\n--b\r\n\
                     Content-Type: application/sdp\r\n\r\nv=0 other\r\n--b--";
        assert_eq!(
            find_sdp(body, "multipart/related;boundary=b").unwrap(),
            b"v=0 root"
        );
        assert_eq!(
            find_sdp(body, "multipart/related;boundary=b;start=\"<x>\"").unwrap(),
            b"v=0 root"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            find_sdp(b"x", "text/plain"),
            Err(MultipartError::NotSdp("text/plain".into()))
        );
        assert_eq!(find_sdp(b"x", "multipart/mixed"), Err(MultipartError::NoBoundary));
        assert_eq!(
            find_sdp(b"x", "multipart/mixed;boundary=q"),
            Err(MultipartError::NoDelimiter("q".into()))
        );
        let body = b"--q\r\nContent-Type: text/plain\r\n\r\nhi\r\n--q--\r\n";
        assert_eq!(
            find_sdp(body, "multipart/mixed;boundary=q"),
            Err(MultipartError::NoSdpPart)
        );
        assert_eq!(find_sdp(b"v=0", "application/sdp").unwrap(), b"v=0");
    }

    #[test]
    fn a_boundary_inside_a_line_is_not_a_delimiter() {
        let body = b"--q\r\nContent-Type: application/sdp\r\n\r\nv=0\r\na=x:--q\r\n--qq\r\n--q--";
        assert_eq!(
            find_sdp(body, "multipart/mixed;boundary=q").unwrap(),
            b"v=0\r\na=x:--q\r\n--qq"
        );
    }
}
