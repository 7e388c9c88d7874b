//! Shared inputs for the criterion benchmarks in `benches/benches/`: streams of
//! frames as a peer would send them, built with the engine's own writer.

use bytes::{Bytes, BytesMut};
use std::time::Instant;

use msrp_engine::proto::{
    ByteRange, Content, Continuation, Event, MessageId, Method, Parser, Request, Writer,
};
use msrp_engine::{Connection, ConnectionConfig, Role, SessionConfig, SessionKey, SessionSettings};

pub const TO_PATH: &str = "msrp://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGr;tcp";
pub const FROM_PATH: &str = "msrp://192.0.2.10:2855/3GEoWeUeCAF4sXNosViq;tcp";

/// Pseudo-random body octets (file payloads look random: compressed media).
pub fn body(len: usize, seed: u64) -> Bytes {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut body = vec![0u8; len];
    rng.fill(&mut body);
    Bytes::from(body)
}

/// A SEND carrying `body` as one chunk of a message of the same size.
pub fn send_request<'a>(message_id: MessageId, body: Bytes) -> Request<'a> {
    session_send(TO_PATH, FROM_PATH, message_id, body)
}

/// [`send_request`] on the session with these paths.
pub fn session_send<'a>(
    to_path: &'a str,
    from_path: &'a str,
    message_id: MessageId,
    body: Bytes,
) -> Request<'a> {
    let len = body.len() as u64;
    Request {
        method: &Method::Send,
        to_path,
        from_path,
        message_id: Some(message_id),
        byte_range: Some(ByteRange {
            start: 1,
            end: Some(len),
            total: Some(len),
        }),
        success_report: None,
        failure_report: None,
        status: None,
        content: Some(Content {
            content_type: "text/plain",
            mime_headers: &[],
            body,
        }),
        continuation: Continuation::Last,
    }
}

/// `frames` SENDs of `body_len` octets each, back to back on one stream.
pub fn send_stream(frames: usize, body_len: usize) -> Vec<u8> {
    let mut writer = Writer::with_seed(42);
    let mut out = BytesMut::new();
    let message_id = MessageId::new(b"bench-message-1").expect("ident");
    for i in 0..frames {
        let req = send_request(message_id, body(body_len, i as u64));
        writer.write_request(&req, &mut out).expect("valid SEND");
    }
    out.to_vec()
}

/// [`send_stream`] over `sessions` sessions taking turns, so that consecutive
/// frames never share their paths.
pub fn interleaved_stream(frames: usize, body_len: usize, sessions: usize) -> Vec<u8> {
    let paths: Vec<(String, String)> = (0..sessions)
        .map(|i| {
            (
                format!("msrp://198.51.100.20:2855/rcv{i:017};tcp"),
                format!("msrp://192.0.2.10:2855/snd{i:017};tcp"),
            )
        })
        .collect();
    let mut writer = Writer::with_seed(43);
    let mut out = BytesMut::new();
    let message_id = MessageId::new(b"bench-message-1").expect("ident");
    for i in 0..frames {
        let (to, from) = &paths[i % sessions];
        let req = session_send(to, from, message_id, body(body_len, i as u64));
        writer.write_request(&req, &mut out).expect("valid SEND");
    }
    out.to_vec()
}

/// The head (start line through the blank line) of the first frame of
/// `stream`, and how many header lines it has.
pub fn first_head(stream: &[u8]) -> (&[u8], usize) {
    let end = stream
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head with a body")
        + 4;
    let head = &stream[..end];
    // Lines minus the start line and the blank line.
    let lines = head.windows(2).filter(|w| *w == b"\r\n").count();
    (head, lines - 2)
}

/// An HTTP/1.1 POST whose head is exactly `head_len` octets with five headers,
/// as many as a SEND head of [`send_stream`] (To-Path, From-Path, Message-ID,
/// Byte-Range, Content-Type), followed by a body of `body_len` octets: the
/// same amount of head to validate, for a comparison with an HTTP parser.
pub fn http_request(head_len: usize, body_len: usize, seed: u64) -> Vec<u8> {
    let headers = format!(
        "Host: chat.example.com:2855\r\n\
         Referer: http://192.0.2.10:2855/3GEoWeUeCAF4sXNosViq/msg\r\n\
         X-Request-ID: bench-message-1\r\n\
         Content-Length: {body_len}\r\n\
         Content-Type: text/plain\r\n\r\n"
    );
    let fixed = "POST /sessions/yLj7wU8m3WNYnErIrgGr/messages HTTP/1.1\r\n".len() + headers.len();
    assert!(
        head_len >= fixed,
        "an HTTP head of {head_len} octets is too short"
    );
    // Pad the request-target with a query so the heads are the same size.
    let pad = match head_len - fixed {
        0 => String::new(),
        1 => "?".to_owned(),
        n => format!("?q={}", "x".repeat(n - 3)),
    };
    let mut req =
        format!("POST /sessions/yLj7wU8m3WNYnErIrgGr/messages{pad} HTTP/1.1\r\n{headers}").into_bytes();
    assert_eq!(req.len(), head_len);
    req.extend_from_slice(&body(body_len, seed));
    req
}

/// `frames` requests of [`http_request`] back to back on one stream.
pub fn http_stream(frames: usize, head_len: usize, body_len: usize) -> Vec<u8> {
    (0..frames)
        .flat_map(|i| http_request(head_len, body_len, i as u64))
        .collect()
}

/// `count` parsers, each past one SEND of the session of [`send_stream`] (so
/// that its paths are known, as on a connection in use) and holding the next
/// SEND of `body_len` octets whole: the next poll yields that frame's head.
pub fn head_parsers(count: usize, body_len: usize) -> Vec<Parser> {
    let stream = send_stream(2, body_len);
    (0..count)
        .map(|_| {
            let mut parser = loaded_parser(&stream);
            while !matches!(parser.poll().expect("valid stream"), Some(Event::End(_))) {}
            parser
        })
        .collect()
}

/// A parser holding `stream`, as if one large read had delivered it.
pub fn loaded_parser(stream: &[u8]) -> Parser {
    let mut parser = Parser::new(Default::default());
    parser.buffer_mut().reserve(stream.len());
    parser.feed(stream);
    parser
}

/// Parses everything buffered; returns (frames, body octets).
pub fn drain(parser: &mut Parser) -> (u64, u64) {
    let (mut frames, mut body) = (0, 0);
    while let Some(event) = parser.poll().expect("valid stream") {
        match event {
            Event::End(_) => frames += 1,
            Event::Body(piece) => body += piece.len() as u64,
            Event::Head(_) => {}
            Event::Malformed(bad) => panic!("bench stream is malformed: {bad:?}"),
        }
    }
    (frames, body)
}

/// Two connections in memory with one session between them: the sender's
/// (active, with `settings`) and the receiver's (passive, defaults).
pub fn session_pair(
    config: ConnectionConfig,
    settings: SessionSettings,
    now: Instant,
) -> (Connection, Connection, SessionKey) {
    let uri = |s: &str| s.parse().expect("bench URI");
    let (a, b) = (
        "msrp://a.example:2855/sender1;tcp",
        "msrp://b.example:2855/receiver1;tcp",
    );
    let (mut sender, mut receiver) = (Connection::new(config), Connection::new(config));
    let mut local = SessionConfig::new(uri(a), vec![uri(b)], Role::Active);
    local.settings = settings;
    let key = sender.add_session(local, now).expect("sender session");
    let remote = SessionConfig::new(uri(b), vec![uri(a)], Role::Passive);
    receiver.add_session(remote, now).expect("receiver session");
    (sender, receiver, key)
}
