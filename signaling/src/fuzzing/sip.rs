//! SIP as it arrives: stream framing (`StreamFramer`), datagram framing
//! (`frame_datagram`), then `Message::parse` (normalisation and the typed
//! headers).
//!
//! `sip_stream` input: byte 0 low 3 bits pick the largest feed piece (1, 2,
//! 3, 5, 9, 17, 64, 1024), the rest of byte 0 is the split seed; the rest is
//! the stream. `sip_datagram` input: the datagram.
//!
//! Checks: nothing panics; a stream framed whole and in random pieces gives
//! the same messages and the same error; each message framed from a stream
//! is also exactly what datagram framing makes of it; datagram framing is
//! idempotent and returns a slice of its input within the limits; every
//! framed message that parses, written back as its normalised head (start
//! line, one `Name: value` line per unfolded field) and its body, parses
//! again to the same start line, fields, body and typed headers:
//! normalising twice is normalising once.

use bytes::Bytes;

use crate::sip::message::Message;
use crate::sip::normalize::parse_head;
use crate::sip::{frame_datagram, FrameError, Limits, StreamFramer};

const PIECES: [usize; 8] = [1, 2, 3, 5, 9, 17, 64, 1024];

/// Small enough for the fuzzer to reach every bound.
fn limits() -> Limits {
    Limits {
        message_bytes_max: 8192,
        head_bytes_max: 2048,
        headers_max: 32,
    }
}

fn stream(data: &[u8], pieces: &mut dyn FnMut() -> usize) -> (Vec<Bytes>, Option<FrameError>) {
    let mut framer = StreamFramer::new(limits());
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        let take = pieces().min(rest.len());
        framer.push(&rest[..take]);
        rest = &rest[take..];
        loop {
            match framer.next_message() {
                Ok(Some(message)) => out.push(message),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(
                        framer.next_message(),
                        Err(e.clone()),
                        "the framer forgot its error"
                    );
                    return (out, Some(e));
                }
            }
        }
        if rest.is_empty() {
            assert!(framer.buffered() <= data.len());
            return (out, None);
        }
    }
}

/// The message as its normalised head and its body.
fn normalised(message: &Message) -> Vec<u8> {
    let head = message.head();
    let mut out = format!("{}\r\n", head.start_line).into_bytes();
    for field in &head.headers {
        out.extend_from_slice(format!("{}: {}\r\n", field.name, field.value).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(message.body());
    out
}

fn check_message(raw: Bytes) {
    let Ok(message) = Message::parse(raw, &limits()) else {
        return;
    };
    let again = normalised(&message);
    // Compact names grow when written long: the second reading is not held
    // to the first one's size bounds.
    let roomy = Limits {
        message_bytes_max: usize::MAX,
        head_bytes_max: usize::MAX,
        headers_max: usize::MAX,
    };
    let head =
        parse_head(&again, &roomy).unwrap_or_else(|e| panic!("the normalised head does not parse: {e}"));
    assert_eq!(
        head.start_line,
        message.head().start_line,
        "the start line changed"
    );
    assert_eq!(head.headers, message.head().headers, "normalising twice differs");
    let reparsed = Message::parse(Bytes::from(again), &roomy)
        .unwrap_or_else(|e| panic!("the normalised message does not parse: {e}"));
    assert_eq!(reparsed.body(), message.body(), "the body changed");
    assert_eq!(reparsed.call_id(), message.call_id());
    assert_eq!(reparsed.cseq(), message.cseq());
    assert_eq!(reparsed.vias(), message.vias());
    assert_eq!(reparsed.from(), message.from());
    assert_eq!(reparsed.to(), message.to());
    assert_eq!(reparsed.contacts(), message.contacts());
    assert_eq!(reparsed.max_forwards(), message.max_forwards());
    assert_eq!(reparsed.content_length(), message.content_length());
}

/// The `sip_stream` fuzz target.
pub fn sip_stream(input: &[u8]) {
    let Some((&cfg, data)) = input.split_first() else {
        return;
    };
    let piece_max = PIECES[usize::from(cfg & 7)];
    let mut state = u64::from(cfg >> 3) << 8 | 0x2545 | 1;
    let mut split = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state as usize) % piece_max + 1
    };
    let (whole, whole_error) = stream(data, &mut || usize::MAX);
    let (pieces, pieces_error) = stream(data, &mut split);
    assert_eq!(whole, pieces, "the messages depend on the split");
    assert_eq!(whole_error, pieces_error, "the error depends on the split");
    for message in whole {
        assert!(message.len() <= limits().message_bytes_max);
        let datagram = frame_datagram(message.clone(), &limits());
        assert_eq!(
            datagram.as_ref(),
            Ok(&message),
            "stream and datagram framing disagree"
        );
        check_message(message);
    }
}

/// The `sip_datagram` fuzz target.
pub fn sip_datagram(data: &[u8]) {
    let input = Bytes::copy_from_slice(data);
    let Ok(message) = frame_datagram(input.clone(), &limits()) else {
        return;
    };
    assert!(message.len() <= limits().message_bytes_max);
    let start = message.as_ptr() as usize - input.as_ptr() as usize;
    assert_eq!(&input[start..start + message.len()], &message[..]);
    assert_eq!(
        frame_datagram(message.clone(), &limits()),
        Ok(message.clone()),
        "framing twice differs"
    );
    check_message(message);
}
