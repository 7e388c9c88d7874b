//! End to end through the session core on one core: two connections in
//! memory, every message sent, cut into chunks, written, parsed, routed,
//! reassembled, answered 200, and the 200 matched to its outcome.
//!
//! `cargo bench -p msrp-benches --bench session`

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use msrp_benches::{body, session_pair};
use msrp_engine::{
    Connection, ConnectionConfig, Event, OutgoingMessage, ReceivedBody, SessionKey, SessionSettings,
};

const SMALL_BODY: usize = 160;
const SMALL_MESSAGES: usize = 10_000;
const BULK_BYTES: usize = 64 * 1024 * 1024;
const CHUNK_BYTES: usize = 64 * 1024;

struct Pair {
    sender: Connection,
    receiver: Connection,
    key: SessionKey,
    batch: Vec<Bytes>,
    now: Instant,
}

impl Pair {
    fn new(messages_max: usize) -> Pair {
        let now = Instant::now();
        let config = ConnectionConfig {
            inflight_bytes_max: 64 * 1024 * 1024,
            // About a socket buffer per write: a batch the size of the whole
            // burst (10,000 texts) would measure cache misses instead.
            transmit_bytes_max: 64 * 1024,
            seed: Some(1),
            ..ConnectionConfig::default()
        };
        let settings = SessionSettings {
            chunk_bytes: CHUNK_BYTES,
            inflight_bytes_max: 16 * 1024 * 1024,
            send_queue_messages_max: messages_max,
            send_queue_bytes_max: 2 * BULK_BYTES as u64,
            ..SessionSettings::default()
        };
        let (sender, receiver, key) = session_pair(config, settings, now);
        let mut pair = Pair {
            sender,
            receiver,
            key,
            batch: Vec::new(),
            now,
        };
        pair.run_until(0, 0);
        pair
    }

    /// Moves every batch across until `messages` outcomes and `received`
    /// octets arrived; returns (outcomes, octets).
    fn run_until(&mut self, messages: usize, octets: u64) -> (usize, u64) {
        let (mut delivered, mut received) = (0usize, 0u64);
        loop {
            let mut moved = self.sender.poll_transmit(self.now, &mut self.batch);
            for piece in self.batch.drain(..) {
                self.receiver.input_buffer().extend_from_slice(&piece);
            }
            self.receiver.handle_input(self.now);
            while let Some(event) = self.receiver.poll_event() {
                match event {
                    Event::MessageReceived {
                        body: ReceivedBody::Inline(body),
                        ..
                    } => received += body.len() as u64,
                    Event::Data { data, .. } => received += data.len() as u64,
                    Event::Commit { ticket, .. } => self.receiver.committed(ticket),
                    _ => {}
                }
            }
            moved += self.receiver.poll_transmit(self.now, &mut self.batch);
            for piece in self.batch.drain(..) {
                self.sender.input_buffer().extend_from_slice(&piece);
            }
            self.sender.handle_input(self.now);
            while let Some(event) = self.sender.poll_event() {
                match event {
                    Event::Delivered { .. } => delivered += 1,
                    Event::Failed { reason, .. } => panic!("failed: {reason}"),
                    _ => {}
                }
            }
            if moved == 0 && delivered >= messages && received >= octets {
                return (delivered, received);
            }
        }
    }
}

fn end_to_end(c: &mut Criterion) {
    let mut group = c.benchmark_group("end_to_end");

    let mut pair = Pair::new(SMALL_MESSAGES);
    let text = body(SMALL_BODY, 3);
    group.throughput(Throughput::Elements(SMALL_MESSAGES as u64));
    group.bench_function("text_160B_messages", |b| {
        b.iter(|| {
            for _ in 0..SMALL_MESSAGES {
                pair.sender
                    .send(pair.key, OutgoingMessage::new("text/plain", text.clone()))
                    .expect("send");
            }
            black_box(pair.run_until(SMALL_MESSAGES, (SMALL_MESSAGES * SMALL_BODY) as u64))
        })
    });

    let mut pair = Pair::new(4);
    let file = body(BULK_BYTES, 5);
    group.throughput(Throughput::Bytes(BULK_BYTES as u64));
    group.sample_size(10);
    group.bench_function("file_64MiB_in_64KiB_chunks", |b| {
        b.iter(|| {
            pair.sender
                .send(
                    pair.key,
                    OutgoingMessage::new("application/octet-stream", file.clone()),
                )
                .expect("send");
            black_box(pair.run_until(1, BULK_BYTES as u64))
        })
    });
    group.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
