//! Inputs the fuzzers found, kept as plain tests (engine/fuzz/README.md).

mod support;

use msrp_engine::proto::ParserConfig;

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
