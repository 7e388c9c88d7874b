//! A blocking HTTP/1.1 client over `std::net::TcpStream`, written by hand
//! (RFC 9112) so that the REST API is read as any application would read
//! it, not through the server's own stack: one request per connection
//! (`Connection: close`), bodies by Content-Length, chunked or to the end.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// No answer within this is a failed test, not a hung one.
const RESPONSE_WAIT_MAX: Duration = Duration::from_secs(20);

/// A response, whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("HTTP {} body is not JSON ({e}): {:?}", self.status, self.text()))
    }

    /// Asserts the status; the body is in the message when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Response {
        assert_eq!(
            self.status,
            status,
            "expected HTTP {status}, got {} {}",
            self.status,
            self.text()
        );
        self
    }

    /// Asserts an error response: the status, JSON `{error, detail}` with
    /// `error` as given and `detail` containing `detail_has`; the detail.
    #[track_caller]
    pub fn expect_error(self, status: u16, error: &str, detail_has: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "expected HTTP {status}, got {} {}",
            self.status,
            self.text()
        );
        assert_eq!(
            self.header("content-type")
                .map(|t| t.starts_with("application/json")),
            Some(true),
            "an error is JSON: {:?}",
            self.headers
        );
        let body = self.json();
        assert_eq!(body["error"], error, "{body}");
        let detail = body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no detail in {body}"))
            .to_string();
        assert!(
            detail.contains(detail_has),
            "the detail {detail:?} does not name {detail_has:?}"
        );
        let mut keys: Vec<&String> = body.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        keys.sort();
        assert_eq!(
            keys,
            ["detail", "error"],
            "an error body is exactly {{error, detail}}: {body}"
        );
        detail
    }
}

/// The REST API of one `msrp-signal`, as one application (a bearer token)
/// or, without a token, as `default`.
#[derive(Clone, Debug)]
pub struct Http {
    pub addr: SocketAddr,
    pub token: Option<String>,
    /// The network namespace (`ip netns` name) the server listens in;
    /// `None`: this one.
    pub netns: Option<String>,
}

impl Http {
    pub fn new(addr: SocketAddr) -> Http {
        Http {
            addr,
            token: None,
            netns: None,
        }
    }

    pub fn with_token(&self, token: &str) -> Http {
        Http {
            addr: self.addr,
            token: Some(token.to_string()),
            netns: self.netns.clone(),
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, &[], b"")
    }

    pub fn post(&self, path: &str, json: &Value) -> Response {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            json.to_string().as_bytes(),
        )
    }

    pub fn put(&self, path: &str, json: &Value) -> Response {
        self.request(
            "PUT",
            path,
            &[("Content-Type", "application/json")],
            json.to_string().as_bytes(),
        )
    }

    /// One request on a new connection. The body is written after the
    /// head; a server that answers early (413) and closes may make that
    /// write fail, which is not the test's business: the response is.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut stream = self.connect();
        let head = self.head(method, path, headers, Some(body.len()));
        stream.write_all(head.as_bytes()).unwrap();
        let _ = stream.write_all(body);
        let mut reader = BufReader::new(stream);
        read_response(&mut reader).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn connect(&self) -> TcpStream {
        let addr = self.addr;
        let stream = match &self.netns {
            None => TcpStream::connect(addr),
            Some(netns) => connect_in(netns, addr),
        }
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(RESPONSE_WAIT_MAX)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// The request line and headers, ending in the blank line.
    pub fn head(&self, method: &str, path: &str, headers: &[(&str, &str)], length: Option<usize>) -> String {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(length) = length {
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        head.push_str("\r\n");
        head
    }
}

/// A socket made in network namespace `netns` stays in it: make it on a
/// thread of its own that enters the namespace (setns(2) changes only the
/// calling thread) and ends.
fn connect_in(netns: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{netns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let namespace = std::fs::File::open(&path)?;
                // SAFETY: a valid descriptor of a namespace file; affects this thread only.
                if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                TcpStream::connect(addr)
            })
            .join()
            .expect("the connecting thread")
    })
}

/// The status line and headers of a response (RFC 9112 4, 5).
pub fn read_head(reader: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>), String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("reading the status line: {e}"))?;
    let mut words = line.trim_end().splitn(3, ' ');
    let version = words.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x status line: {line:?}"));
    }
    let status = words
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status code in {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("reading headers: {e}"))?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not a header: {line:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

pub fn is_chunked(headers: &[(String, String)]) -> bool {
    header(headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// One chunk of a chunked body (RFC 9112 7.1); `None` after the last.
pub fn read_chunk(reader: &mut impl BufRead) -> Result<Option<Vec<u8>>, String> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("reading a chunk size: {e}"))?;
    if line.is_empty() {
        return Err("the connection ended inside a chunked body".into());
    }
    let size_text = line.trim_end().split(';').next().unwrap_or_default();
    let size =
        usize::from_str_radix(size_text.trim(), 16).map_err(|e| format!("chunk size {line:?}: {e}"))?;
    if size == 0 {
        // Trailers, then the blank line.
        loop {
            let mut trailer = String::new();
            reader
                .read_line(&mut trailer)
                .map_err(|e| format!("reading trailers: {e}"))?;
            if trailer.trim_end().is_empty() {
                return Ok(None);
            }
        }
    }
    let mut chunk = vec![0u8; size + 2];
    reader
        .read_exact(&mut chunk)
        .map_err(|e| format!("reading a chunk of {size}: {e}"))?;
    if &chunk[size..] != b"\r\n" {
        return Err("a chunk does not end in CRLF".into());
    }
    chunk.truncate(size);
    Ok(Some(chunk))
}

/// A whole response: head, then the body by Content-Length, chunks, or to
/// the end of the connection (RFC 9112 6.3).
pub fn read_response(reader: &mut impl BufRead) -> Result<Response, String> {
    let (status, headers) = read_head(reader)?;
    let mut body = Vec::new();
    if is_chunked(&headers) {
        while let Some(chunk) = read_chunk(reader)? {
            body.extend_from_slice(&chunk);
        }
    } else if let Some(length) = header(&headers, "content-length") {
        let length: usize = length
            .parse()
            .map_err(|e| format!("Content-Length {length:?}: {e}"))?;
        body.resize(length, 0);
        reader
            .read_exact(&mut body)
            .map_err(|e| format!("reading a body of {length}: {e}"))?;
    } else if status != 204 && status != 304 {
        reader
            .read_to_end(&mut body)
            .map_err(|e| format!("reading the body: {e}"))?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}
