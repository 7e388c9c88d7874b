//! Every parser limit is enforced, at its configured value, with the error and
//! reaction it calls for (RFC 4975 7.3: 400 while the frame can be delimited,
//! else close); bodies pass through in bounded memory.

mod support;

use msrp_engine::proto::{Error, Event, Limit, Limits, Parser, ParserConfig, Reaction};

const TO: &str = "msrp://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGr;tcp";
const FROM: &str = "msrp://192.0.2.10:2855/3GEoWeUeCAF4sXNosViq;tcp";

fn send(tid: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut frame = format!(
        "MSRP {tid} SEND\r\nTo-Path: {TO}\r\nFrom-Path: {FROM}\r\nMessage-ID: m{tid}\r\n{extra_headers}\
         Content-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    frame.extend_from_slice(body);
    frame.extend_from_slice(format!("\r\n-------{tid}$\r\n").as_bytes());
    frame
}

fn exceeded(what: Limit, limit: u64) -> Error {
    Error::LimitExceeded { what, limit }
}

fn with_limits(f: impl FnOnce(&mut Limits)) -> ParserConfig {
    let mut config = ParserConfig::default();
    f(&mut config.limits);
    config
}

/// The first error decoding `bytes` gives, with the good frames before it.
fn first_error(bytes: &[u8], config: ParserConfig) -> (usize, Option<(&'static str, bool)>) {
    let got = support::decode(bytes, config, &[]);
    let err = got.errors.first().map(|e| (e.kind, e.delimitable));
    (got.frames.len(), err)
}

fn limit_error(bytes: &[u8], config: ParserConfig) -> Error {
    let mut parser = Parser::new(config);
    parser.feed(bytes);
    loop {
        match parser.poll() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error; parser waits for more input"),
            Err(e) => return e,
        }
    }
}

#[test]
fn start_line_limit() {
    let tid = "t".repeat(40);
    let frame = send(&tid, "", b"x");
    let config = with_limits(|l| l.start_line_bytes_max = 30);
    assert_eq!(limit_error(&frame, config), exceeded(Limit::StartLine, 30));
    // Without a CRLF in sight the limit still trips (nothing waits forever).
    let config = with_limits(|l| l.start_line_bytes_max = 64);
    let garbage = [b"MSRP ".as_slice(), &[b'a'; 100]].concat();
    assert_eq!(limit_error(&garbage, config), exceeded(Limit::StartLine, 64));
}

#[test]
fn header_line_block_and_count_limits() {
    let long = format!("X-Long: {}\r\n", "v".repeat(200));
    let frame = send("abcd1234", &long, b"x");
    assert_eq!(first_error(&frame, ParserConfig::default()), (1, None));
    let config = with_limits(|l| l.header_line_bytes_max = 100);
    let e = limit_error(&frame, config);
    assert_eq!(e, exceeded(Limit::HeaderLine, 100));
    assert_eq!(e.reaction(), Reaction::Close);

    let many: String = (0..20).map(|i| format!("X-H{i}: v\r\n")).collect();
    let frame = send("abcd1234", &many, b"x");
    let config = with_limits(|l| l.header_count_max = 10);
    assert_eq!(limit_error(&frame, config), exceeded(Limit::HeaderCount, 10));
    let config = with_limits(|l| l.header_block_bytes_max = 256);
    assert_eq!(limit_error(&frame, config), exceeded(Limit::HeaderBlock, 256));
    let config = with_limits(|l| l.header_count_max = 24);
    assert_eq!(first_error(&frame, config), (1, None));
}

#[test]
fn chunk_body_limit_default_and_configured() {
    let body = vec![b'z'; 17 << 20];
    let frame = send("abcd1234", "", &body);
    assert_eq!(
        limit_error(&frame, ParserConfig::default()),
        exceeded(Limit::ChunkBody, 16 << 20)
    );
    let config = with_limits(|l| l.chunk_body_bytes_max = 32 << 20);
    assert_eq!(first_error(&frame, config), (1, None));
    // Exactly at the limit is fine.
    let config = with_limits(|l| l.chunk_body_bytes_max = 17 << 20);
    assert_eq!(first_error(&frame, config), (1, None));
}

#[test]
fn non_send_body_limit() {
    let report = |len: usize| {
        let mut f = format!(
            "MSRP rep01234 REPORT\r\nTo-Path: {TO}\r\nFrom-Path: {FROM}\r\nMessage-ID: mid12345\r\n\
             Status: 000 200 OK\r\nContent-Type: text/plain\r\n\r\n"
        )
        .into_bytes();
        f.extend(std::iter::repeat_n(b'r', len));
        f.extend_from_slice(b"\r\n-------rep01234$\r\n");
        f
    };
    assert_eq!(first_error(&report(10240), ParserConfig::default()), (1, None));
    let mut stream = report(10241);
    stream.extend(send("next1234", "", b"after"));
    let got = support::decode(&stream, ParserConfig::default(), &[]);
    assert_eq!(got.errors.len(), 1);
    assert_eq!(got.errors[0].kind, "NonSendBodyTooLarge");
    assert_eq!(got.errors[0].reaction, "discard");
    assert_eq!(
        got.frames.len(),
        1,
        "the frame after the oversize REPORT still decodes"
    );
    assert_eq!(got.frames[0].tid, "next1234");
    let config = with_limits(|l| l.non_send_body_bytes_max = 100);
    assert_eq!(
        first_error(&report(101), config),
        (0, Some(("NonSendBodyTooLarge", true)))
    );
}

#[test]
fn a_one_gib_chunk_passes_in_bounded_memory() {
    const LEN: u64 = 1 << 30;
    const PIECE: usize = 64 * 1024;
    let config = with_limits(|l| l.chunk_body_bytes_max = 2 << 30);
    let mut parser = Parser::new(config);
    let head = format!(
        "MSRP big01234 SEND\r\nTo-Path: {TO}\r\nFrom-Path: {FROM}\r\nMessage-ID: big12345\r\n\
         Byte-Range: 1-{LEN}/{LEN}\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    parser.feed(head.as_bytes());
    // Every piece holds an end-line look-alike straddling the piece boundary.
    let mut piece = vec![b'q'; PIECE];
    piece[PIECE - 12..].copy_from_slice(b"\r\n-------big");
    piece[..8].copy_from_slice(b"01234!\r\n");
    let (mut body, mut heads, mut peak) = (0u64, 0, 0usize);
    let mut sent = 0u64;
    let drain = |parser: &mut Parser, body: &mut u64, heads: &mut usize| {
        while let Some(event) = parser.poll().expect("valid stream") {
            match event {
                Event::Head(_) => *heads += 1,
                Event::Body(bytes) => *body += bytes.len() as u64,
                Event::End(_) => {}
                Event::Malformed(m) => panic!("{m:?}"),
            }
        }
    };
    while sent < LEN {
        let n = (LEN - sent).min(PIECE as u64) as usize;
        parser.feed(&piece[..n]);
        sent += n as u64;
        drain(&mut parser, &mut body, &mut heads);
        peak = peak.max(parser.buffered());
    }
    parser.feed(b"\r\n-------big01234$\r\n");
    drain(&mut parser, &mut body, &mut heads);
    parser.finish().expect("stream ends at a frame boundary");
    assert_eq!((heads, body), (1, LEN));
    assert!(peak < 64, "parser held {peak} octets of a streamed body");
}

#[test]
fn limits_below_their_floors_are_raised() {
    let config = with_limits(|l| {
        l.start_line_bytes_max = 0;
        l.header_line_bytes_max = 1;
        l.header_block_bytes_max = 2;
        l.header_count_max = 0;
    });
    let parser = Parser::new(config);
    let effective = parser.config().limits;
    assert_eq!(effective.start_line_bytes_max, Limits::START_LINE_BYTES_MIN);
    assert_eq!(effective.header_line_bytes_max, Limits::HEADER_LINE_BYTES_MIN);
    assert_eq!(effective.header_block_bytes_max, Limits::HEADER_BLOCK_BYTES_MIN);
    assert_eq!(effective.header_count_max, Limits::HEADER_COUNT_MIN);
    // Garbage is still told apart from a limit: the "MSRP " check comes first.
    assert_eq!(first_error(b"M\r", config), (0, Some(("FramingLost", false))));
}
