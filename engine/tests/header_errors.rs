//! Which error a bad header line gets: the first check it fails, in the order
//! syntax (with the utf8text rule of RFC 4975 9), Content-Type position,
//! duplicates, then the value's own rule. The parser skips the text check of
//! values whose rule implies text until a value fails; these tests pin that
//! the verdicts are the ones the checks in order give, in both wire profiles.

use msrp_engine::proto::{Error, Event, Parser, ParserConfig, Strictness};

const TO: &str = "msrp://b.example.com:1/s;tcp";
const FROM: &str = "msrp://a.example.com:1/t;tcp";

/// The one error a bodiless SEND with these header lines gets, or `None`.
fn verdict(headers: &[(&str, &[u8])], strictness: Strictness) -> Option<Error> {
    let mut frame = b"MSRP abcd SEND\r\n".to_vec();
    for (name, value) in headers {
        frame.extend_from_slice(name.as_bytes());
        frame.extend_from_slice(b": ");
        frame.extend_from_slice(value);
        frame.extend_from_slice(b"\r\n");
    }
    frame.extend_from_slice(b"-------abcd$\r\n");
    let mut parser = Parser::new(ParserConfig {
        strictness,
        ..ParserConfig::default()
    });
    parser.feed(&frame);
    let mut error = None;
    while let Some(event) = parser.poll().expect("delimitable") {
        if let Event::Malformed(bad) = event {
            assert!(error.is_none(), "one frame, one verdict");
            error = Some(bad.error);
        }
    }
    error
}

const NOT_TEXT: Error = Error::BadHeader("header value is not UTF-8 text");

#[test]
fn text_rule_comes_before_the_value_rule() {
    let valid = |name: &str| -> &'static [u8] {
        match name {
            "To-Path" => TO.as_bytes(),
            "From-Path" => FROM.as_bytes(),
            "Byte-Range" => b"1-*/*",
            "Success-Report" | "Failure-Report" => b"no",
            _ => b"abcd",
        }
    };
    let names = [
        "To-Path",
        "From-Path",
        "Message-ID",
        "Byte-Range",
        "Success-Report",
        "Failure-Report",
    ];
    for strictness in [Strictness::Strict, Strictness::Lenient] {
        for bad in [
            &b"a\x01b"[..],
            b"\xff\xfe",
            b"x\x7fy",
            b"msrp://b.example.com:1/s\x00;tcp",
        ] {
            for name in names {
                let mut headers: Vec<(&str, &[u8])> = ["To-Path", "From-Path", "Message-ID"]
                    .map(|n| (n, valid(n)))
                    .to_vec();
                match headers.iter().position(|(n, _)| *n == name) {
                    Some(i) => headers[i].1 = bad,
                    None => headers.push((name, bad)),
                }
                assert_eq!(verdict(&headers, strictness), Some(NOT_TEXT), "{name} {bad:?}");
                // As a duplicate of a valid instance, the text rule still wins.
                let mut headers: Vec<(&str, &[u8])> = ["To-Path", "From-Path", "Message-ID"]
                    .map(|n| (n, valid(n)))
                    .to_vec();
                if !headers.iter().any(|(n, _)| *n == name) {
                    headers.push((name, valid(name)));
                }
                headers.push((name, bad));
                assert_eq!(
                    verdict(&headers, strictness),
                    Some(NOT_TEXT),
                    "second {name} {bad:?}"
                );
            }
        }
    }
}

#[test]
fn text_that_breaks_a_value_rule_gets_that_rule() {
    let base: Vec<(&str, &[u8])> = vec![("To-Path", TO.as_bytes()), ("From-Path", FROM.as_bytes())];
    let with = |name, value: &'static [u8]| {
        let mut h = base.clone();
        h.push(("Message-ID", b"abcd"));
        h.push((name, value));
        h
    };
    let s = Strictness::Strict;
    // Valid UTF-8 that is no ident, no range, no keyword, no URI.
    let mut h = base.clone();
    h.push(("Message-ID", "abcdé".as_bytes()));
    assert_eq!(verdict(&h, s), Some(Error::BadHeaderValue("Message-ID")));
    assert!(matches!(
        verdict(&with("Byte-Range", "1-é/*".as_bytes()), s),
        Some(Error::BadByteRange(_))
    ));
    assert_eq!(
        verdict(&with("Success-Report", "jé".as_bytes()), s),
        Some(Error::BadHeaderValue("Success-Report"))
    );
    let mut h = vec![
        ("To-Path", "msrp://é.example.com:1/s;tcp".as_bytes()),
        ("From-Path", FROM.as_bytes()),
    ];
    h.push(("Message-ID", b"abcd"));
    assert!(matches!(verdict(&h, s), Some(Error::BadUri(_))));
    // A duplicate with a valid text value is a duplicate.
    assert_eq!(
        verdict(&with("Message-ID", b"efgh"), s),
        Some(Error::DuplicateHeader("Message-ID"))
    );
    // Status and Content-Type values are checked for text first, as before.
    assert_eq!(verdict(&with("Status", b"000 200 \x01"), s), Some(NOT_TEXT));
    assert_eq!(
        verdict(&with("Content-Type", b"a/b;c=\"\x01\""), s),
        Some(NOT_TEXT)
    );
}
