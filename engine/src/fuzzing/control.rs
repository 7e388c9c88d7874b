//! The control socket read from either end: what a client sends the engine
//! (`control_server.rs` reads it with [`FrameReader`], the fast batch
//! reader and `Frame::parse::<Request>`) and what the engine sends a client
//! (`client::decode`: replies, version-1 events, version-2 `events` frames).
//!
//! Input layout: byte 0 bit 0 picks the direction (0: client to engine,
//! 1: engine to client); byte 1 low 3 bits the largest feed piece (1, 2, 3,
//! 5, 9, 17, 64, 1024) and the rest of byte 1 the split seed; the rest is
//! the byte stream. Missing bytes read as zero.
//!
//! Checks: nothing panics; the stream read whole and in random pieces gives
//! the same frames and the same error; the frames tile the stream. Client
//! to engine: when the fast reader takes a batch, the general reader reads
//! the same request from it; a request read re-encodes (through
//! `frame::encode`) to a frame that reads back equal. Engine to client: a
//! reply or event written again reads back equal; the events decoded are
//! written again with [`EncodedEvents`] as version-2 frames, as version-1
//! frames and as a version-2 selection, and each reads back as the same
//! events with the same payloads.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::control::client::decode;
use crate::control::fast::send_batch;
use crate::control::frame::{encode, Frame, FrameError, FrameReader};
use crate::control::{EncodedEvents, EngineEvent, Incoming, Request, ServerMessage};

const PIECES: [usize; 8] = [1, 2, 3, 5, 9, 17, 64, 1024];
/// Small enough that a fuzzer reaches it, large enough for real frames.
const PAYLOAD_BYTES_MAX: u32 = 1 << 20;

/// The frames of `stream` fed in `pieces`, and the error it ended in.
fn frames(stream: &[u8], pieces: &mut dyn FnMut() -> usize) -> (Vec<Frame>, Option<String>) {
    let mut reader = FrameReader::new(PAYLOAD_BYTES_MAX);
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        let take = pieces().min(rest.len());
        reader.buffer().extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => break,
                Err(error) => return (out, Some(describe(&error))),
            }
        }
        if rest.is_empty() {
            return (out, None);
        }
    }
}

fn describe(error: &FrameError) -> String {
    match error {
        FrameError::HeaderTooLarge(_) | FrameError::PayloadTooLarge { .. } => error.to_string(),
        other => panic!("the frame reader failed on JSON: {other}"),
    }
}

fn read_back(bytes: &[u8]) -> Vec<Frame> {
    let (frames, error) = frames(bytes, &mut || usize::MAX);
    assert_eq!(error, None, "a frame we wrote does not frame");
    frames
}

fn client_to_engine(frames: Vec<Frame>) {
    for frame in frames {
        let fast = send_batch(&frame.header);
        let general = frame.parse::<Request>();
        if let Some(fast) = &fast {
            match &general {
                Ok(general) => assert_eq!(fast, general, "the fast batch reader read another request"),
                Err(e) => panic!("the fast batch reader took a header the general reader refuses: {e}"),
            }
        }
        let Ok(request) = general else { continue };
        let mut out = Vec::new();
        encode(&mut out, &request, &frame.payload).expect("a request read encodes again");
        let again = read_back(&out);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].payload, frame.payload);
        let reread = send_batch(&again[0].header)
            .map(Ok)
            .unwrap_or_else(|| again[0].parse::<Request>());
        assert_eq!(
            reread.ok().as_ref(),
            Some(&request),
            "a request re-encoded reads differently"
        );
    }
}

/// Everything a client reads from `frames`, in order: replies and events.
fn decode_all(frames: Vec<Frame>) -> Vec<Incoming> {
    let mut out = Vec::new();
    let mut events: VecDeque<(EngineEvent, Bytes)> = VecDeque::new();
    for frame in frames {
        match decode(frame, &mut events) {
            Ok(Some(incoming)) => out.push(incoming),
            Ok(None) => out.extend(events.drain(..).map(|(e, p)| Incoming::Event(e, p))),
            Err(_) => {}
        }
    }
    out
}

fn events_of(incoming: &[Incoming]) -> Vec<(EngineEvent, Bytes)> {
    incoming
        .iter()
        .filter_map(|i| match i {
            Incoming::Event(e, p) => Some((e.clone(), p.clone())),
            Incoming::Reply(..) => None,
        })
        .collect()
}

fn engine_to_client(frames: Vec<Frame>) {
    let incoming = decode_all(frames);
    for item in &incoming {
        let (message, payload) = match item {
            Incoming::Reply(r, p) => (ServerMessage::Reply(r.clone()), p),
            Incoming::Event(e, p) => (ServerMessage::Event(e.clone()), p),
        };
        let mut out = Vec::new();
        encode(&mut out, &message, payload).expect("a message read encodes again");
        let again = decode_all(read_back(&out));
        assert_eq!(again.len(), 1, "{message:?} written again reads as {again:?}");
        match (&again[0], item) {
            (Incoming::Reply(a, p), Incoming::Reply(b, q)) => assert_eq!((a, p), (b, q)),
            (Incoming::Event(a, p), Incoming::Event(b, q)) => assert_eq!((a, p), (b, q)),
            (a, b) => panic!("{b:?} written again reads as {a:?}"),
        }
    }
    let events = events_of(&incoming);
    let mut encoded = EncodedEvents::with_capacity(events.len());
    for (event, payload) in &events {
        encoded
            .push(event, payload.clone())
            .expect("an event read encodes again");
    }
    let sealed = encoded.seal();
    assert_eq!(sealed.len(), events.len());
    let v2 = events_of(&decode_all(read_back(&sealed.all_v2())));
    assert_eq!(v2, events, "version-2 events frames read back differently");
    let mut v1 = Vec::new();
    sealed.write_v1(&mut v1, 0..events.len());
    assert_eq!(
        events_of(&decode_all(read_back(&v1))),
        events,
        "version-1 frames differ"
    );
    let odd: Vec<usize> = (0..events.len()).filter(|i| i % 2 == 1).collect();
    let mut some = Vec::new();
    sealed.write_v2(&mut some, odd.iter().copied());
    let expected: Vec<_> = odd.iter().map(|&i| events[i].clone()).collect();
    assert_eq!(
        events_of(&decode_all(read_back(&some))),
        expected,
        "a version-2 selection differs"
    );
}

/// The `control` fuzz target.
pub fn control(input: &[u8]) {
    let mut cfg = [0u8; 2];
    let n = input.len().min(cfg.len());
    cfg[..n].copy_from_slice(&input[..n]);
    let stream = &input[n..];
    let piece_max = PIECES[usize::from(cfg[1] & 7)];
    let mut state = u64::from(cfg[1] >> 3) << 8 | 0x9e37 | 1;
    let mut split = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state as usize) % piece_max + 1
    };
    let (whole, whole_error) = frames(stream, &mut || usize::MAX);
    let (pieces, pieces_error) = frames(stream, &mut split);
    assert_eq!(whole_error, pieces_error, "the error depends on the split");
    assert_eq!(whole.len(), pieces.len(), "the frames depend on the split");
    let mut at = 0;
    for (a, b) in whole.iter().zip(&pieces) {
        assert_eq!((&a.header, &a.payload), (&b.header, &b.payload));
        assert_eq!(&stream[at + 8..at + 8 + a.header.len()], &a.header[..]);
        at += 8 + a.header.len() + a.payload.len();
    }
    assert!(at <= stream.len());
    if cfg[0] & 1 == 0 {
        client_to_engine(whole);
    } else {
        engine_to_client(whole);
    }
}
