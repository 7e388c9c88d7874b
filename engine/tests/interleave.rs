//! Interleaving on one session (RFC 4975 7.1: chunks of different messages
//! of a session may interleave, the receiver keeps them apart by
//! Message-ID; 5.1: other traffic should not wait behind a large message).
//! Two real connections joined by in-memory pipes, one session: a text sent
//! behind a 5 MiB file goes between two of the file's chunks, the file's
//! chunks stay in order, and a flood of texts cannot starve the file. Each
//! check also runs with interleaving off (the old strict send order) and
//! asserts that it then fails, so the tests measure what they claim.

mod support;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use msrp_engine::proto::{Content, Method, Request};
use msrp_engine::{
    ByteRange, Connection, ConnectionConfig, ContentSource, Continuation, Event, MessageId, MessageRef,
    MsrpUri, OutgoingMessage, ReceivedBody, Role, SendError, SessionConfig, SessionKey, SessionSettings,
    SourceChunk, SuccessReport, Writer,
};
use support::pipe::Pipe;

const A: &str = "msrp://a.example.com:2855/alice1;tcp";
const B: &str = "msrp://b.example.com:2855/bob1;tcp";
const CHUNK_BYTES: usize = 64 * 1024;
const FILE_BYTES: usize = 5 * 1024 * 1024;
const FILE_CHUNKS: usize = FILE_BYTES / CHUNK_BYTES;

fn uri(s: &str) -> MsrpUri {
    s.parse().expect("test URI")
}

fn id(text: &str) -> MessageId {
    MessageId::new(text.as_bytes()).expect("test Message-ID")
}

/// Octets that differ from chunk to chunk, so a chunk out of place shows.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

fn with_id(mut message: OutgoingMessage, message_id: &str) -> OutgoingMessage {
    message.message_id = Some(id(message_id));
    message
}

/// What the receiving side saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// A streamed chunk of a message ended (its `Commit`).
    Chunk(MessageId),
    Received(MessageId, Bytes),
}

/// A (active, sending) and B (passive, receiving) with one session, moved
/// step by step; every pipe is emptied within a step, so what the sender
/// is asked between steps has nothing of it on the way yet.
struct Pair {
    now: Instant,
    a: Connection,
    b: Connection,
    ka: SessionKey,
    to_b: Pipe,
    to_a: Pipe,
    /// Streamed bodies at B, by Message-ID: every octet at its offset, in
    /// the order the pieces came.
    sinks: HashMap<MessageId, Vec<u8>>,
    /// A streamed piece that did not start where the one before ended.
    out_of_order: Vec<(MessageId, u64)>,
    seen: Vec<Seen>,
    delivered: Vec<(MessageRef, MessageId)>,
    failed: Vec<(MessageRef, String)>,
}

impl Pair {
    fn new(settings: SessionSettings) -> Pair {
        let now = Instant::now();
        let mut a = Connection::new(ConnectionConfig::default());
        let mut b = Connection::new(ConnectionConfig::default());
        let mut config = SessionConfig::new(uri(A), vec![uri(B)], Role::Active);
        config.settings = settings;
        let ka = a.add_session(config, now).expect("a");
        b.add_session(SessionConfig::new(uri(B), vec![uri(A)], Role::Passive), now)
            .expect("b");
        let mut pair = Pair {
            now,
            a,
            b,
            ka,
            to_b: Pipe::new(256 * 1024),
            to_a: Pipe::new(256 * 1024),
            sinks: HashMap::new(),
            out_of_order: Vec::new(),
            seen: Vec::new(),
            delivered: Vec::new(),
            failed: Vec::new(),
        };
        pair.step();
        pair.step();
        pair
    }

    fn send(&mut self, message: OutgoingMessage) -> MessageRef {
        self.a.send(self.ka, message).expect("send")
    }

    /// One batch from A to B, one from B to A, and the events of both.
    fn step(&mut self) {
        let now = self.now;
        self.to_b.fill(&mut self.a, now, |_| {});
        self.to_b.deliver(&mut self.b, usize::MAX, now);
        while let Some(event) = self.b.poll_event() {
            match event {
                Event::Data {
                    message_id,
                    offset,
                    data,
                    ..
                } => {
                    let sink = self.sinks.entry(message_id).or_default();
                    if offset != sink.len() as u64 {
                        self.out_of_order.push((message_id, offset));
                    }
                    let end = offset as usize + data.len();
                    sink.resize(sink.len().max(end), 0);
                    sink[offset as usize..end].copy_from_slice(&data);
                }
                Event::Commit {
                    ticket, message_id, ..
                } => {
                    self.b.committed(ticket);
                    self.seen.push(Seen::Chunk(message_id));
                }
                Event::MessageReceived { message_id, body, .. } => {
                    let body = match body {
                        ReceivedBody::Inline(bytes) => bytes,
                        ReceivedBody::Streamed { len } => {
                            let sunk = self.sinks.remove(&message_id).unwrap_or_default();
                            assert_eq!(sunk.len() as u64, len, "the sink holds the whole message");
                            Bytes::from(sunk)
                        }
                    };
                    self.seen.push(Seen::Received(message_id, body));
                }
                Event::MessageAborted { reason, .. } => panic!("B aborted a message: {reason}"),
                _ => {}
            }
        }
        self.to_a.fill(&mut self.b, now, |_| {});
        self.to_a.deliver(&mut self.a, usize::MAX, now);
        while let Some(event) = self.a.poll_event() {
            match event {
                Event::Delivered {
                    message, message_id, ..
                } => self.delivered.push((message, message_id)),
                Event::Failed { message, reason, .. } => self.failed.push((message, reason)),
                _ => {}
            }
        }
    }

    /// Steps until `done` or nothing moves any more.
    fn run_until(&mut self, mut done: impl FnMut(&Pair) -> bool) {
        for _ in 0..100_000 {
            if done(self) {
                return;
            }
            let before = (self.to_b.total_bytes, self.to_a.total_bytes);
            self.step();
            if before == (self.to_b.total_bytes, self.to_a.total_bytes) && !self.a.wants_transmit() {
                return;
            }
        }
        panic!("no end after 100,000 steps");
    }

    fn file_chunks_seen(&self, file: MessageId) -> usize {
        self.seen.iter().filter(|s| **s == Seen::Chunk(file)).count()
    }

    fn received(&self, message_id: MessageId) -> Option<&Bytes> {
        self.seen.iter().find_map(|s| match s {
            Seen::Received(m, body) if *m == message_id => Some(body),
            _ => None,
        })
    }

    /// Chunks of `file` B saw from `seen[from]` until `message` arrived.
    fn chunks_between(&self, file: MessageId, from: usize, message: MessageId) -> usize {
        let until = self.received_at(message).expect("the message arrived");
        self.seen[from..until]
            .iter()
            .filter(|s| **s == Seen::Chunk(file))
            .count()
    }

    /// Where in `seen` the message arrived whole.
    fn received_at(&self, message_id: MessageId) -> Option<usize> {
        self.seen
            .iter()
            .position(|s| matches!(s, Seen::Received(m, _) if *m == message_id))
    }
}

fn interleaving_off() -> SessionSettings {
    SessionSettings {
        interleave_messages_max: 0,
        ..SessionSettings::default()
    }
}

/// Sends a 5 MiB file, then, once `file_chunks_before` of its chunks
/// arrived, one text: the file's chunks B saw between the text's `send` and
/// its arrival, those still to come at its `send`, and the pair at the end.
fn text_behind_file(settings: SessionSettings, file_chunks_before: usize) -> (usize, usize, Pair) {
    let file = id("file");
    let mut pair = Pair::new(settings);
    let file_body = pattern(FILE_BYTES, 0);
    pair.send(with_id(
        OutgoingMessage::new("application/octet-stream", file_body.clone()),
        "file",
    ));
    pair.run_until(|p| p.file_chunks_seen(file) >= file_chunks_before);
    let chunks_at_send = pair.file_chunks_seen(file);
    pair.send(with_id(
        OutgoingMessage::new("text/plain", "behind the file"),
        "text",
    ));
    let seen_at_send = pair.seen.len();
    pair.run_until(|p| p.received(id("text")).is_some());
    let waited = pair.chunks_between(file, seen_at_send, id("text"));
    pair.run_until(|p| p.delivered.len() == 2);
    assert!(pair.failed.is_empty(), "{:?}", pair.failed);
    assert_eq!(pair.received(file), Some(&file_body), "the file arrived intact");
    assert!(pair.out_of_order.is_empty(), "{:?}", pair.out_of_order);
    assert_eq!(pair.file_chunks_seen(file), FILE_CHUNKS);
    (waited, FILE_CHUNKS - chunks_at_send, pair)
}

#[test]
fn a_text_behind_a_file_on_its_session_waits_for_at_most_one_chunk() {
    let (waited, _, pair) = text_behind_file(SessionSettings::default(), 10);
    assert!(waited <= 1, "the text waited for {waited} chunks of the file");
    assert_eq!(
        pair.received(id("text")).map(|b| &b[..]),
        Some(&b"behind the file"[..])
    );
    // The text's outcome comes first, the file's when its last chunk is in.
    let order: Vec<MessageId> = pair.delivered.iter().map(|d| d.1).collect();
    assert_eq!(order, [id("text"), id("file")]);
    assert!(pair.received_at(id("text")) < pair.received_at(id("file")));

    // The old strict send order: the text waits for the rest of the file.
    let (waited, left, pair) = text_behind_file(interleaving_off(), 10);
    assert!(left > 60);
    assert_eq!(
        waited, left,
        "without interleaving the text waits for the whole file"
    );
    assert!(pair.received_at(id("text")) > pair.received_at(id("file")));
}

#[test]
fn a_text_sent_before_the_files_first_chunk_still_goes_first() {
    let (waited, left, _) = text_behind_file(SessionSettings::default(), 0);
    assert_eq!(left, FILE_CHUNKS);
    assert!(waited <= 1, "the text waited for {waited} chunks of the file");
}

/// Several texts sent at once behind a file go in the same gap, in their
/// send order, with Success-Report asked for on the file and some texts:
/// each message has exactly one outcome, after its REPORT where asked.
#[test]
fn several_texts_behind_a_file_go_in_one_gap_in_order() {
    let file = id("file");
    let mut pair = Pair::new(SessionSettings::default());
    let file_body = pattern(FILE_BYTES, 3);
    let mut message = with_id(
        OutgoingMessage::new("application/octet-stream", file_body.clone()),
        "file",
    );
    message.success_report = Some(SuccessReport::Yes);
    let file_ref = pair.send(message);
    pair.run_until(|p| p.file_chunks_seen(file) >= 20);
    let texts: Vec<MessageId> = (0..10).map(|i| id(&format!("text{i}"))).collect();
    for (i, text) in texts.iter().enumerate() {
        let mut message = OutgoingMessage::new("text/plain", format!("text {i}"));
        message.message_id = Some(*text);
        message.success_report = (i % 2 == 0).then_some(SuccessReport::Yes);
        pair.send(message);
    }
    let seen_at_send = pair.seen.len();
    pair.run_until(|p| texts.iter().all(|t| p.received(*t).is_some()));
    let waited = pair.chunks_between(file, seen_at_send, texts[9]);
    assert!(waited <= 1, "the texts waited for {waited} chunks of the file");
    let arrived: Vec<usize> = texts.iter().filter_map(|t| pair.received_at(*t)).collect();
    assert!(
        arrived.windows(2).all(|w| w[0] < w[1]),
        "texts keep their send order"
    );
    assert!(
        arrived.windows(2).all(|w| w[1] == w[0] + 1),
        "no chunk of the file between them"
    );
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(
            pair.received(*text).map(|b| &b[..]),
            Some(format!("text {i}").as_bytes())
        );
    }
    pair.run_until(|p| p.delivered.len() == 11);
    assert!(pair.failed.is_empty(), "{:?}", pair.failed);
    assert_eq!(pair.delivered.len(), 11, "one outcome per message");
    assert_eq!(pair.delivered.last().map(|d| d.0), Some(file_ref));
    assert_eq!(pair.received(file), Some(&file_body));
    assert!(pair.out_of_order.is_empty(), "{:?}", pair.out_of_order);
}

/// The application keeps the send queue full of texts of `text_bytes` for
/// as long as the file runs: the most texts B got between two chunks of
/// the file, and whether the file completed intact.
fn flood(settings: SessionSettings, text_bytes: usize) -> (usize, bool) {
    let file = id("file");
    let mut pair = Pair::new(settings);
    let file_body = pattern(FILE_BYTES, 5);
    pair.send(with_id(
        OutgoingMessage::new("application/octet-stream", file_body.clone()),
        "file",
    ));
    let text = Bytes::from(vec![b't'; text_bytes]);
    for _ in 0..500 {
        if pair.received(file).is_some() {
            break;
        }
        loop {
            match pair
                .a
                .send(pair.ka, OutgoingMessage::new("text/plain", text.clone()))
            {
                Ok(_) => {}
                Err(SendError::Full(_)) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        pair.step();
    }
    assert!(pair.failed.is_empty(), "{:?}", pair.failed);
    assert!(pair.out_of_order.is_empty(), "{:?}", pair.out_of_order);
    let mut most = 0;
    let mut run = 0;
    let mut file_started = false;
    for seen in &pair.seen {
        match seen {
            Seen::Chunk(m) if *m == file => {
                if file_started {
                    most = most.max(run);
                }
                file_started = true;
                run = 0;
            }
            Seen::Received(m, body) if *m != file => {
                assert_eq!(body.len(), text_bytes);
                run += 1;
            }
            _ => {}
        }
    }
    (most, pair.received(file) == Some(&file_body))
}

#[test]
fn a_flood_of_texts_does_not_starve_the_file() {
    let settings = SessionSettings::default();
    // 160-octet texts: the message bound closes each gap.
    let (most, completed) = flood(settings, 160);
    assert!(completed, "the file completes under a flood of texts");
    assert!(most >= 1, "the texts went between the file's chunks");
    assert!(
        most <= settings.interleave_messages_max as usize,
        "{most} texts in one gap"
    );
    // 10,000-octet texts: the octet bound closes each gap after the text
    // that reaches 64 KiB, the seventh.
    let (most, completed) = flood(settings, 10_000);
    assert!(completed, "the file completes under a flood of texts");
    assert!(
        (1..=7).contains(&most),
        "{most} texts of 10,000 octets in one gap"
    );

    // Without the bounds the same flood starves the file.
    let unbounded = SessionSettings {
        interleave_messages_max: u32::MAX,
        interleave_bytes_max: u64::MAX,
        ..settings
    };
    let (_, completed) = flood(unbounded, 10_000);
    assert!(!completed, "unbounded interleaving would starve the file");
}

/// A file whose content comes only as the test lets it (a disk read that
/// lags): `Pending` beyond `allowed` octets.
struct Gated {
    body: Bytes,
    at: usize,
    allowed: Rc<Cell<usize>>,
}

impl ContentSource for Gated {
    fn size(&self) -> Option<u64> {
        Some(self.body.len() as u64)
    }

    fn next_chunk(&mut self, max: usize) -> SourceChunk {
        if self.at == self.body.len() {
            return SourceChunk::End;
        }
        let n = max.min(self.allowed.get().min(self.body.len()) - self.at);
        if n == 0 {
            return SourceChunk::Pending;
        }
        self.at += n;
        SourceChunk::Data(self.body.slice(self.at - n..self.at))
    }
}

/// A text goes while the file's source is pending, without a `wake`.
fn text_while_source_pending(settings: SessionSettings) -> bool {
    let file = id("file");
    let mut pair = Pair::new(settings);
    let allowed = Rc::new(Cell::new(4 * CHUNK_BYTES));
    let body = pattern(FILE_BYTES, 7);
    let source = Gated {
        body: body.clone(),
        at: 0,
        allowed: allowed.clone(),
    };
    let mut message = OutgoingMessage::from_source("application/octet-stream", Box::new(source));
    message.message_id = Some(file);
    pair.send(message);
    pair.run_until(|_| false);
    assert_eq!(
        pair.file_chunks_seen(file),
        4,
        "the file stops where its source does"
    );
    pair.send(with_id(
        OutgoingMessage::new("text/plain", "while pending"),
        "text",
    ));
    pair.run_until(|p| p.received(id("text")).is_some());
    let went = pair.received(id("text")).is_some();
    allowed.set(FILE_BYTES);
    pair.a.wake(pair.ka);
    pair.run_until(|p| p.delivered.len() == 2);
    assert_eq!(pair.delivered.len(), 2);
    assert_eq!(pair.received(file), Some(&body));
    went
}

#[test]
fn a_text_goes_while_the_files_source_is_pending() {
    assert!(text_while_source_pending(SessionSettings::default()));
    assert!(
        !text_while_source_pending(interleaving_off()),
        "in strict send order the text waits for the source"
    );
}

/// Closing the session mid-file with texts queued: every message has its
/// one outcome, the delivered texts as delivered, the rest failed.
#[test]
fn closing_mid_file_gives_every_message_one_outcome() {
    let file = id("file");
    let mut pair = Pair::new(SessionSettings::default());
    let file_ref = pair.send(with_id(
        OutgoingMessage::new("application/octet-stream", pattern(FILE_BYTES, 9)),
        "file",
    ));
    pair.run_until(|p| p.file_chunks_seen(file) >= 5);
    let texts: Vec<MessageRef> = (0..40)
        .map(|i| pair.send(OutgoingMessage::new("text/plain", format!("t{i}"))))
        .collect();
    pair.step();
    let ka = pair.ka;
    pair.a.close_session(ka, "the application ended the session");
    pair.step();
    let mut outcomes: Vec<MessageRef> = pair.delivered.iter().map(|d| d.0).collect();
    assert!(!outcomes.is_empty(), "some texts went before the close");
    assert!(!outcomes.contains(&file_ref), "the file did not complete");
    outcomes.extend(pair.failed.iter().map(|f| f.0));
    outcomes.sort();
    let mut expected = texts;
    expected.push(file_ref);
    expected.sort();
    assert_eq!(outcomes, expected, "exactly one outcome per message");
}

/// The receiving side keeps two messages of one session apart by
/// Message-ID (RFC 4975 7.1): a peer written with the codec sends a
/// message's first chunk, a whole second message, then the first's last
/// chunk; both arrive intact, in memory and streamed.
#[test]
fn the_receiver_keeps_interleaved_messages_apart_by_message_id() {
    for inline_bytes_max in [1 << 20, 0] {
        let now = Instant::now();
        let mut b = Connection::new(ConnectionConfig::default());
        let mut config = SessionConfig::new(uri(B), vec![uri(A)], Role::Passive);
        config.settings.inline_bytes_max = inline_bytes_max;
        b.add_session(config, now).expect("b");
        let first = pattern(10_000, 1);
        let second = pattern(3_000, 2);
        let mut wire = BytesMut::new();
        let mut writer = Writer::with_seed(1);
        let mut chunk = |message_id: &str, body: Bytes, start: u64, total: u64, flag: Continuation| {
            let end = start - 1 + body.len() as u64;
            writer
                .write_request(
                    &Request {
                        method: &Method::Send,
                        to_path: B,
                        from_path: A,
                        message_id: Some(id(message_id)),
                        byte_range: Some(ByteRange {
                            start,
                            end: Some(end),
                            total: Some(total),
                        }),
                        success_report: None,
                        failure_report: None,
                        status: None,
                        content: Some(Content {
                            content_type: "text/plain",
                            mime_headers: &[],
                            body,
                        }),
                        continuation: flag,
                    },
                    &mut wire,
                )
                .expect("SEND");
        };
        chunk("first", first.slice(..6_000), 1, 10_000, Continuation::More);
        chunk("second", second.clone(), 1, 3_000, Continuation::Last);
        chunk("first", first.slice(6_000..), 6_001, 10_000, Continuation::Last);
        b.handle_bytes(&wire, now);
        let mut sinks: HashMap<MessageId, Vec<u8>> = HashMap::new();
        let mut received = Vec::new();
        // Commits answer the streamed chunks; their events come after.
        for _ in 0..2 {
            while let Some(event) = b.poll_event() {
                match event {
                    Event::Data {
                        message_id,
                        offset,
                        data,
                        ..
                    } => {
                        let sink = sinks.entry(message_id).or_default();
                        assert_eq!(offset, sink.len() as u64, "{message_id} in order");
                        sink.extend_from_slice(&data);
                    }
                    Event::Commit { ticket, .. } => b.committed(ticket),
                    Event::MessageReceived { message_id, body, .. } => {
                        let body = match body {
                            ReceivedBody::Inline(bytes) => bytes,
                            ReceivedBody::Streamed { .. } => {
                                Bytes::from(sinks.remove(&message_id).unwrap_or_default())
                            }
                        };
                        received.push((message_id, body));
                    }
                    Event::SessionReady { .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(
            received,
            [(id("second"), second), (id("first"), first)],
            "inline max {inline_bytes_max}"
        );
    }
}
