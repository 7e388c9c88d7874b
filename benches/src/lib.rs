//! Shared inputs for the criterion benchmarks in `benches/benches/`: streams of
//! frames as a peer would send them, built with the engine's own writer.

use bytes::{Bytes, BytesMut};
use msrp_engine::proto::{
    ByteRange, Content, Continuation, Event, MessageId, Method, Parser, Request, Writer,
};

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
    let len = body.len() as u64;
    Request {
        method: &Method::Send,
        to_path: TO_PATH,
        from_path: FROM_PATH,
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
