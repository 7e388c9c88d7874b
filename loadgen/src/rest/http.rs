//! The REST client's HTTP/1.1: one request at a time on a persistent
//! connection (RFC 9112 9.3), as an application's keep-alive pool does.
//!
//! The response reader is sans-IO ([`parse_response`]): it takes the
//! octets read so far and says "not yet", or gives the status, the body
//! (Content-Length or chunked, RFC 9112 6.3 and 7.1) and how many octets
//! it used; [`HttpConn`] is the thin shell that writes and reads a tokio
//! stream. No pipelining: a second request waits for the first response,
//! so the concurrency is the number of connections.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Response headers read, at most (httparse needs the bound up front).
const HEADERS_MAX: usize = 32;
/// A response's head and body together, at most: a 207 for 1000 items
/// is some 60 KiB.
pub const RESPONSE_BYTES_MAX: usize = 16 << 20;
/// Octets asked of one read.
const READ_BYTES: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connection to {addr}: {source}")]
    Io { addr: SocketAddr, source: io::Error },
    #[error("{addr} closed the connection before the response was complete")]
    Closed { addr: SocketAddr },
    #[error("malformed response head: {0}")]
    Head(httparse::Error),
    #[error("malformed response: {0}")]
    Framing(&'static str),
    #[error("the response is over {RESPONSE_BYTES_MAX} octets")]
    TooLarge,
}

impl HttpError {
    /// The cause as the report counts it: `io` for the transport,
    /// `http` for a response we could not read.
    pub fn cause(&self) -> &'static str {
        match self {
            HttpError::Io { .. } | HttpError::Closed { .. } => "io",
            _ => "http",
        }
    }
}

/// One response, whole.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The server will close the connection after it (`Connection: close`).
    pub close: bool,
}

impl Response {
    /// The body as text, cut for an error message.
    pub fn detail(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut cut: String = text.chars().take(300).collect();
        if cut.len() < text.len() {
            cut.push('…');
        }
        cut
    }
}

/// Where the REST API is: the address connected to, the `Host` header,
/// a path prefix and the bearer token.
#[derive(Clone, Debug)]
pub struct RestBase {
    pub addr: SocketAddr,
    pub host: String,
    /// Prepended to every route (`""` or e.g. `/signal`), without a
    /// trailing slash.
    pub prefix: String,
    pub token: Option<String>,
}

impl RestBase {
    /// `http://HOST:PORT[/PREFIX]` (no TLS: the benchmark talks to a
    /// listener it can reach in the clear).
    pub fn parse(url: &str, token: Option<String>) -> Result<RestBase, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--rest {url}: only http://HOST:PORT[/PREFIX] is spoken"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let with_port = match authority.rsplit_once(':') {
            Some((_, port)) if port.parse::<u16>().is_ok() && !authority.ends_with(']') => {
                authority.to_string()
            }
            _ => format!("{authority}:80"),
        };
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
            .map_err(|e| format!("--rest {url}: {e}"))?
            .next()
            .ok_or_else(|| format!("--rest {url}: {authority} resolves to no address"))?;
        Ok(RestBase {
            addr,
            host: authority.to_string(),
            prefix: prefix.to_string(),
            token,
        })
    }

    pub fn local(addr: SocketAddr) -> RestBase {
        RestBase {
            addr,
            host: addr.to_string(),
            prefix: String::new(),
            token: None,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.host, self.prefix)
    }
}

/// Appends one request with a JSON body (or none) to `out`.
pub fn write_request(out: &mut Vec<u8>, base: &RestBase, method: &str, path: &str, json: &[u8]) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n",
        base.prefix, base.host
    );
    if let Some(token) = &base.token {
        let _ = write!(out, "Authorization: Bearer {token}\r\n");
    }
    if !json.is_empty() {
        let _ = write!(
            out,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            json.len()
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(json);
}

/// The first whole response in `buf` and the octets it took; `None`
/// until it is all there.
pub fn parse_response(buf: &[u8]) -> Result<Option<(Response, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(buf).map_err(HttpError::Head)? {
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(len) => len,
    };
    let status = head.code.ok_or(HttpError::Framing("no status code"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = head.version == Some(0);
    for header in head.headers.iter() {
        let value =
            std::str::from_utf8(header.value).map_err(|_| HttpError::Framing("a header is not text"))?;
        if header.name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| HttpError::Framing("Content-Length is not a number"))?;
            // RFC 9112 6.3: differing lengths are unrecoverable.
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::Framing("two Content-Length values"));
            }
            length = Some(n);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = value.split(',').any(|v| v.trim().eq_ignore_ascii_case("close"));
        }
    }
    // RFC 9112 6.3: 1xx, 204 and 304 have no body.
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    let rest = &buf[head_len..];
    let (body, body_len) = match (bodiless, chunked, length) {
        (true, _, _) => (Vec::new(), 0),
        (false, true, _) => match dechunk(rest)? {
            Some(found) => found,
            None => return Ok(None),
        },
        (false, false, Some(n)) => match rest.len() >= n {
            true => (rest[..n].to_vec(), n),
            false => return Ok(None),
        },
        // RFC 9112 6.3 rule 8: read until the close; a keep-alive client
        // gets none of these from our server.
        (false, false, None) => {
            return Err(HttpError::Framing("a body without a length on a kept connection"))
        }
    };
    if head_len + body_len > RESPONSE_BYTES_MAX {
        return Err(HttpError::TooLarge);
    }
    Ok(Some((Response { status, body, close }, head_len + body_len)))
}

/// A chunked body (RFC 9112 7.1): its octets and how many it took, or
/// `None` until the last chunk and the trailers are there.
fn dechunk(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line_end) = memchr::memmem::find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let line =
            std::str::from_utf8(&buf[at..at + line_end]).map_err(|_| HttpError::Framing("chunk size"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Framing("chunk size"))?;
        at += line_end + 2;
        if size == 0 {
            // Trailers, each a line, then an empty line.
            loop {
                let Some(end) = memchr::memmem::find(&buf[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += end + 2;
                if end == 0 {
                    return Ok(Some((body, at)));
                }
            }
        }
        if size > RESPONSE_BYTES_MAX || buf.len() < at + size + 2 {
            return match size > RESPONSE_BYTES_MAX {
                true => Err(HttpError::TooLarge),
                false => Ok(None),
            };
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(HttpError::Framing("a chunk does not end in CRLF"));
        }
        at += size + 2;
    }
}

/// One keep-alive connection; it reconnects before a request when the
/// last one closed it (never in the middle of one: a POST is not retried).
pub struct HttpConn {
    base: RestBase,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    buf: Vec<u8>,
    filled: usize,
}

impl HttpConn {
    pub fn new(base: RestBase) -> HttpConn {
        HttpConn {
            base,
            stream: None,
            out: Vec::with_capacity(64 << 10),
            buf: vec![0; READ_BYTES],
            filled: 0,
        }
    }

    fn io(&self, source: io::Error) -> HttpError {
        HttpError::Io {
            addr: self.base.addr,
            source,
        }
    }

    /// Connects now unless connected.
    pub async fn open(&mut self) -> Result<(), HttpError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.base.addr).await.map_err(|e| self.io(e))?;
            stream.set_nodelay(true).map_err(|e| self.io(e))?;
            self.stream = Some(stream);
            self.filled = 0;
        }
        Ok(())
    }

    /// One request and its response. On an error the connection is
    /// dropped; the next call opens another.
    pub async fn call(&mut self, method: &str, path: &str, json: &[u8]) -> Result<Response, HttpError> {
        let result = self.exchange(method, path, json).await;
        match &result {
            Ok(response) if !response.close => {}
            _ => self.stream = None,
        }
        result
    }

    async fn exchange(&mut self, method: &str, path: &str, json: &[u8]) -> Result<Response, HttpError> {
        self.open().await?;
        self.out.clear();
        write_request(&mut self.out, &self.base, method, path, json);
        let addr = self.base.addr;
        let Some(stream) = self.stream.as_mut() else {
            return Err(HttpError::Closed { addr });
        };
        stream
            .write_all(&self.out)
            .await
            .map_err(|source| HttpError::Io { addr, source })?;
        loop {
            if let Some((response, used)) = parse_response(&self.buf[..self.filled])? {
                self.buf.copy_within(used..self.filled, 0);
                self.filled -= used;
                return Ok(response);
            }
            if self.filled == self.buf.len() {
                if self.buf.len() >= RESPONSE_BYTES_MAX {
                    return Err(HttpError::TooLarge);
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = stream
                .read(&mut self.buf[self.filled..])
                .await
                .map_err(|source| HttpError::Io { addr, source })?;
            if n == 0 {
                return Err(HttpError::Closed { addr });
            }
            self.filled += n;
        }
    }
}

/// `s` as one path segment: RFC 3986 unreserved octets kept, the rest
/// percent-encoded.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &[u8]) -> (Response, usize) {
        parse_response(text).expect("well formed").expect("complete")
    }

    #[test]
    fn a_content_length_body_is_complete_only_when_all_there() {
        let text = b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{\"id\":\"1\"}";
        // The body is 10 octets; the header says 9: the tenth is the next response's.
        let (response, used) = parsed(text);
        assert_eq!(response.status, 202);
        assert_eq!(response.body, b"{\"id\":\"1\"");
        assert_eq!(used, text.len() - 1);
        assert!(!response.close);
        for cut in 0..text.len() - 2 {
            assert!(parse_response(&text[..cut]).unwrap().is_none(), "{cut}");
        }
    }

    #[test]
    fn chunked_bodies_are_joined_and_trailers_skipped() {
        let text = b"HTTP/1.1 207 Multi-Status\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n2\r\n:1\r\n1\r\n}\r\n0\r\nX-T: 1\r\n\r\nHTTP";
        let (response, used) = parsed(text);
        assert_eq!(response.status, 207);
        assert_eq!(response.body, b"{\"a\":1}");
        assert_eq!(&text[used..], b"HTTP");
        for cut in 0..used {
            assert!(parse_response(&text[..cut]).unwrap().is_none(), "{cut}");
        }
    }

    #[test]
    fn close_and_bodiless_statuses() {
        let text = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        let (response, used) = parsed(text);
        assert_eq!((response.status, response.body.len(), used), (204, 0, text.len()));
        assert!(response.close);
        let (response, _) = parsed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(response.close, "HTTP/1.0 closes unless told otherwise");
    }

    #[test]
    fn malformed_responses_are_errors() {
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            Err(HttpError::Framing(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\n\r\nabc"),
            Err(HttpError::Framing(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n"),
            Err(HttpError::Head(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(HttpError::Framing(_))
        ));
    }

    #[test]
    fn requests_carry_host_length_and_token() {
        let mut base = RestBase::parse("http://127.0.0.1:8080/api/", Some("t0k".into())).unwrap();
        assert_eq!(base.prefix, "/api");
        assert_eq!(base.addr, "127.0.0.1:8080".parse().unwrap());
        let mut out = Vec::new();
        write_request(&mut out, &base, "POST", "/v1/sessions", b"{}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: application/json\r\n\
             Authorization: Bearer t0k\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        base.token = None;
        let mut out = Vec::new();
        write_request(&mut out, &base, "DELETE", "/v1/sessions/s1", b"");
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("Accept: application/json\r\n\r\n"));
        assert!(RestBase::parse("https://x:1", None).is_err());
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("s0000000001abcd"), "s0000000001abcd");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }
}
