//! The MSRP side of a sipp call: a peer written by hand over a real TCP
//! socket, sending exactly the frames of RFC 4975 7.1 and reading the
//! engine's frames back. Its bytes are spelled out here rather than built
//! with the engine's writer, so that a shared mistake cannot hide.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A frame the peer read.
#[derive(Debug)]
pub struct Frame {
    pub tid: String,
    /// `SEND`, `REPORT`, or the status code of a response, as text.
    pub method: String,
    pub status: Option<u16>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
    }
}

pub struct Peer {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Peer {
    pub fn connect(addr: SocketAddr) -> Peer {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("MSRP connect to {addr}: {e}"));
        Peer::on(stream)
    }

    /// A peer on a connection the engine opened (it is the active side).
    pub fn on(stream: TcpStream) -> Peer {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Peer {
            stream,
            buffer: Vec::new(),
        }
    }

    /// A whole message in one SEND (RFC 4975 7.1: To-Path first, then
    /// From-Path, Message-ID, Byte-Range, Content-Type, the body, the
    /// end-line with `$`).
    pub fn send(&mut self, tid: &str, to_path: &str, from_path: &str, message_id: &str, body: &[u8]) {
        let mut frame = format!(
            "MSRP {tid} SEND\r\nTo-Path: {to_path}\r\nFrom-Path: {from_path}\r\n\
             Message-ID: {message_id}\r\nByte-Range: 1-{len}/{len}\r\n\
             Content-Type: text/plain\r\n\r\n",
            len = body.len()
        )
        .into_bytes();
        frame.extend_from_slice(body);
        frame.extend_from_slice(format!("\r\n-------{tid}$\r\n").as_bytes());
        self.stream.write_all(&frame).unwrap();
    }

    /// RFC 4975 7.2: a 200 to `request`, its paths turned around.
    pub fn answer_200(&mut self, request: &Frame) {
        let response = format!(
            "MSRP {} 200 OK\r\nTo-Path: {}\r\nFrom-Path: {}\r\n-------{}$\r\n",
            request.tid,
            request.header("From-Path"),
            request.header("To-Path"),
            request.tid
        );
        self.stream.write_all(response.as_bytes()).unwrap();
    }

    /// The next frame; panics when the engine closes first or is silent
    /// for 10 s.
    pub fn read(&mut self) -> Frame {
        loop {
            if let Some(frame) = self.take() {
                return frame;
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!(
                    "the engine closed the MSRP connection; unread: {:?}",
                    String::from_utf8_lossy(&self.buffer)
                ),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reading from msrpd: {e}"),
            }
        }
    }

    /// A whole frame from the buffer, if one is there.
    fn take(&mut self) -> Option<Frame> {
        let head_end = find(&self.buffer, b"\r\n")?;
        let first = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        let mut words = first.split(' ');
        assert_eq!(words.next(), Some("MSRP"), "not an MSRP frame: {first:?}");
        let tid = words.next().expect("a transaction id").to_string();
        let method = words.next().expect("a method or status").to_string();
        let end_line = format!("-------{tid}");
        let end = find(&self.buffer, end_line.as_bytes())?;
        let flag_at = end + end_line.len();
        if self.buffer.len() < flag_at + 3 {
            return None;
        }
        let frame: Vec<u8> = self.buffer.drain(..flag_at + 3).collect();
        let inner = &frame[head_end + 2..end];
        // RFC 4975 7.1: headers, a blank line and a body whose last CRLF
        // belongs to the end-line; or headers alone.
        let (head, body) = match find(inner, b"\r\n\r\n") {
            Some(blank) => {
                let body = &inner[blank + 4..];
                (
                    &inner[..blank],
                    body.strip_suffix(b"\r\n").unwrap_or(body).to_vec(),
                )
            }
            None => (inner, Vec::new()),
        };
        let headers = String::from_utf8_lossy(head)
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        Some(Frame {
            tid,
            status: method.parse().ok(),
            method,
            headers,
            body,
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The session-id of an MSRP URI: `msrp://host:port/ID;tcp` (RFC 4975 9).
pub fn session_id(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let path = rest.split_once('/').map_or("", |(_, path)| path);
    path.split(';').next().unwrap_or(path)
}

/// The authority of an MSRP URI as a socket address.
pub fn authority(uri: &str) -> SocketAddr {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .parse()
        .unwrap_or_else(|e| panic!("{uri}: authority {authority:?} is not host:port: {e}"))
}
