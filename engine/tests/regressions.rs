//! Inputs the fuzzers found, kept as plain tests (engine/fuzz/README.md).

mod support;

use msrp_engine::proto::{Error, Parser, ParserConfig};

/// The error that ends `bytes` fed in pieces cut at `cuts`, in full (which
/// limit, at what value), or `None`.
fn final_error(bytes: &[u8], config: ParserConfig, cuts: &[usize]) -> Option<Error> {
    let mut parser = Parser::new(config);
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        parser.feed(&bytes[at..cut]);
        at = cut;
        loop {
            match parser.poll() {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(error) => return Some(error),
            }
        }
    }
    parser.finish().err()
}

/// An empty To-Path on a fresh parser must be a BadUri (the path memo once
/// matched it against its empty initial slots).
#[test]
fn empty_to_path_is_rejected() {
    let frame = b"MSRP abcd SEND\r\nTo-Path: \r\nFrom-Path: msrp://a.example.com:1/s;tcp\r\n\
                  Message-ID: abcd\r\n-------abcd$\r\n";
    let got = support::decode(frame, ParserConfig::default(), &[]);
    assert!(got.frames.is_empty(), "{got:?}");
    assert_eq!(got.errors.len(), 1);
    assert_eq!((got.errors[0].kind, got.errors[0].reaction), ("BadUri", "400"));
}

/// A head that breaks both the line and the block limit gets the same
/// verdict whatever the splits: the limit crossed first in the stream.
#[test]
fn head_limit_verdict_does_not_depend_on_splits() {
    // Small limits: a 72-octet header line against a 60-octet line limit and a
    // 70-octet block limit (found by the parse fuzz target).
    let mut config = ParserConfig::default();
    config.limits.header_line_bytes_max = 60;
    config.limits.header_block_bytes_max = 70;
    let mut head = b"MSRP abcd SEND\r\nX-Long: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 72));
    head.extend_from_slice(b"\r\n");
    let one_by_one: Vec<usize> = (1..head.len()).collect();
    let whole = final_error(&head, config, &[]);
    assert!(matches!(whole, Some(Error::LimitExceeded { .. })), "{whole:?}");
    assert_eq!(whole, final_error(&head, config, &one_by_one));

    // Default limits: 9 lines of 7,000 octets, then one of 9,000, fed whole
    // or cut just past the 64 KiB block limit.
    let mut head = b"MSRP abcd SEND\r\n".to_vec();
    for i in 0..9 {
        head.extend(format!("X-H{i}: ").bytes());
        head.extend(std::iter::repeat_n(b'v', 7000));
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"X-Last: ");
    head.extend(std::iter::repeat_n(b'w', 9000));
    head.extend_from_slice(b"\r\n");
    let whole = final_error(&head, ParserConfig::default(), &[]);
    assert!(matches!(whole, Some(Error::LimitExceeded { .. })), "{whole:?}");
    for cut in [65_536, 65_537, 65_538, 70_000] {
        assert_eq!(
            whole,
            final_error(&head, ParserConfig::default(), &[cut]),
            "cut at {cut}"
        );
    }
}
