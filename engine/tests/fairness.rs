//! Fairness on one connection (RFC 4975 5.1; ARCHITECTURE "Sending: fair and
//! non-blocking"): one session sends 256 MiB while 1,000 sessions each send
//! one 160-octet message. Counted in octets on the pipe, not in time: between
//! the moment a small message is handed to `send` and the moment its frame
//! starts on the wire, at most one chunk of the large message is written.

mod support;

use std::time::Instant;

use bytes::Bytes;
use msrp_engine::proto::{Event as WireEvent, FrameKind, Method, Parser, ParserConfig};
use msrp_engine::{
    Connection, ConnectionConfig, ContentSource, Event, MsrpUri, OutgoingMessage, ReceivedBody, Role,
    SessionConfig, SessionKey, SourceChunk,
};
use support::pipe::Pipe;

const LARGE_BYTES: u64 = 256 * 1024 * 1024;
const CHUNK_BYTES: usize = 64 * 1024;
const SMALL_SESSIONS: usize = 1000;

/// 256 MiB without holding them: the same 64 KiB slice again and again.
struct Repeat {
    block: Bytes,
    left: u64,
}

impl ContentSource for Repeat {
    fn size(&self) -> Option<u64> {
        Some(LARGE_BYTES)
    }

    fn next_chunk(&mut self, max: usize) -> SourceChunk {
        if self.left == 0 {
            return SourceChunk::End;
        }
        let n = (max as u64).min(self.left).min(self.block.len() as u64) as usize;
        self.left -= n as u64;
        SourceChunk::Data(self.block.slice(..n))
    }
}

fn uri(host: &str, session: usize) -> MsrpUri {
    format!("msrp://{host}:2855/fair{session};tcp")
        .parse()
        .expect("test URI")
}

/// Where each SEND frame starts on the wire, and whether it is a chunk of
/// the large message.
struct Tap {
    parser: Parser,
    frames: Vec<(u64, bool)>,
}

impl Tap {
    fn see(&mut self, bytes: &[u8]) {
        self.parser.feed(bytes);
        while let Some(event) = self.parser.poll().expect("the sender writes valid frames") {
            if let WireEvent::Head(head) = event {
                // Content SENDs only, not the bodiless binding SENDs.
                if head.kind() == &FrameKind::Request(Method::Send) && head.has_body() {
                    let large = head.to_path().as_str().ends_with("/fair0;tcp");
                    self.frames.push((self.parser.frame_offset(), large));
                }
            }
        }
    }
}

#[test]
fn small_messages_wait_for_at_most_one_large_chunk() {
    let now = Instant::now();
    // Windows wide enough that only the scheduler decides the order, and
    // batches that end inside a chunk's turn.
    let mut sender = Connection::new(ConnectionConfig {
        inflight_bytes_max: 512 * 1024 * 1024,
        transmit_bytes_max: 100_000,
        ..ConnectionConfig::default()
    });
    let mut receiver = Connection::new(ConnectionConfig::default());
    let mut keys: Vec<SessionKey> = Vec::new();
    for s in 0..=SMALL_SESSIONS {
        let mut config = SessionConfig::new(uri("a.example", s), vec![uri("b.example", s)], Role::Active);
        config.settings.chunk_bytes = CHUNK_BYTES;
        config.settings.inflight_bytes_max = 512 * 1024 * 1024;
        keys.push(sender.add_session(config, now).expect("sender session"));
        let config = SessionConfig::new(uri("b.example", s), vec![uri("a.example", s)], Role::Passive);
        receiver.add_session(config, now).expect("receiver session");
    }
    let mut tap = Tap {
        parser: Parser::new(ParserConfig::default()),
        frames: Vec::new(),
    };
    let mut to_receiver = Pipe::new(4 * 1024 * 1024);
    let mut to_sender = Pipe::new(4 * 1024 * 1024);
    let large = Repeat {
        block: Bytes::from(vec![b'L'; CHUNK_BYTES]),
        left: LARGE_BYTES,
    };
    sender
        .send(
            keys[0],
            OutgoingMessage::from_source("application/octet-stream", Box::new(large)),
        )
        .expect("send the large message");

    let mut submitted_at = None;
    let (mut delivered, mut small_received, mut large_received) = (0usize, 0usize, 0u64);
    let mut steps = 0u32;
    while delivered < SMALL_SESSIONS + 1 {
        steps += 1;
        assert!(steps < 1_000_000, "no progress");
        // Once the large transfer is well under way, every small session
        // sends its one message.
        if submitted_at.is_none() && to_receiver.total_bytes > 8 * 1024 * 1024 {
            submitted_at = Some(to_receiver.total_bytes);
            for &key in &keys[1..] {
                sender
                    .send(key, OutgoingMessage::new("text/plain", vec![b's'; 160]))
                    .expect("send a small message");
            }
        }
        to_receiver.fill(&mut sender, now, |bytes| tap.see(bytes));
        to_receiver.deliver(&mut receiver, usize::MAX, now);
        while let Some(event) = receiver.poll_event() {
            match event {
                Event::Commit { ticket, .. } => receiver.committed(ticket),
                Event::MessageReceived { body, .. } => match body {
                    ReceivedBody::Inline(body) => {
                        assert_eq!(body.len(), 160);
                        small_received += 1;
                    }
                    ReceivedBody::Streamed { len } => large_received = len,
                },
                _ => {}
            }
        }
        to_sender.fill(&mut receiver, now, |_| {});
        to_sender.deliver(&mut sender, usize::MAX, now);
        while let Some(event) = sender.poll_event() {
            match event {
                Event::Delivered { .. } => delivered += 1,
                Event::Failed { reason, .. } => panic!("a message failed: {reason}"),
                _ => {}
            }
        }
    }
    assert_eq!(small_received, SMALL_SESSIONS);
    assert_eq!(large_received, LARGE_BYTES);

    let submitted_at = submitted_at.expect("the small messages were sent");
    let mut large_chunks_before = Vec::new();
    let mut large_since = 0;
    for &(offset, large) in &tap.frames {
        if offset < submitted_at {
            continue;
        }
        if large {
            large_since += 1;
        } else {
            large_chunks_before.push(large_since);
        }
    }
    assert_eq!(large_chunks_before.len(), SMALL_SESSIONS);
    let worst = large_chunks_before.iter().max().copied().unwrap_or(0);
    assert!(worst <= 1, "a small message waited behind {worst} large chunks");
    let large_chunks = tap.frames.iter().filter(|f| f.1).count();
    assert_eq!(large_chunks as u64, LARGE_BYTES / CHUNK_BYTES as u64);
}
