//! Wire codec throughput on one core: parsing and writing small (160-octet)
//! SENDs and 64 KiB chunks.
//!
//! `cargo bench -p msrp-benches --bench codec`

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput};
use msrp_benches::{body, drain, interleaved_stream, loaded_parser, send_request, send_stream};
use msrp_engine::proto::{MessageId, Writer};

const SMALL_BODY: usize = 160;
const SMALL_FRAMES: usize = 10_000;
const BULK_BODY: usize = 64 * 1024;
const BULK_FRAMES: usize = 256;

/// Times parsing all of `stream` from one buffer, as after one large read.
fn bench_parse(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, stream: &[u8]) {
    group.bench_function(name, |b| {
        b.iter_batched(
            || loaded_parser(stream),
            |mut parser| black_box(drain(&mut parser)),
            BatchSize::LargeInput,
        )
    });
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(SMALL_FRAMES as u64));
    bench_parse(
        &mut group,
        "send_160B_frames",
        &send_stream(SMALL_FRAMES, SMALL_BODY),
    );
    // Worst case for the path memo: 1,000 sessions taking turns on one connection.
    let mixed = interleaved_stream(SMALL_FRAMES, SMALL_BODY, 1000);
    bench_parse(&mut group, "send_160B_frames_1000_sessions", &mixed);
    group.throughput(Throughput::Bytes((BULK_FRAMES * BULK_BODY) as u64));
    bench_parse(
        &mut group,
        "send_64KiB_chunks",
        &send_stream(BULK_FRAMES, BULK_BODY),
    );
    group.finish();
}

/// Times writing `frames` SENDs that carry `body`, each copied into one buffer.
fn bench_copied_writes(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, body: Bytes, frames: usize) {
    let message_id = MessageId::new(b"bench-message-1").expect("ident");
    let mut writer = Writer::with_seed(7);
    let mut out = BytesMut::with_capacity(frames * (body.len() + 512));
    group.bench_function(name, |b| {
        b.iter(|| {
            out.clear();
            for _ in 0..frames {
                let req = send_request(message_id, body.clone());
                black_box(writer.write_request(&req, &mut out).expect("valid"));
            }
        })
    });
}

fn write(c: &mut Criterion) {
    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Elements(SMALL_FRAMES as u64));
    bench_copied_writes(&mut group, "send_160B_frames", body(SMALL_BODY, 1), SMALL_FRAMES);
    let bulk = body(BULK_BODY, 2);
    group.throughput(Throughput::Bytes((BULK_FRAMES * BULK_BODY) as u64));
    bench_copied_writes(&mut group, "send_64KiB_chunks_copied", bulk.clone(), BULK_FRAMES);
    let message_id = MessageId::new(b"bench-message-1").expect("ident");
    let mut writer = Writer::with_seed(7);
    let mut scratch = BytesMut::with_capacity(64 * 1024);
    group.bench_function("send_64KiB_chunks_vectored", |b| {
        b.iter(|| {
            for _ in 0..BULK_FRAMES {
                let req = send_request(message_id, bulk.clone());
                black_box(writer.encode_request(&req, &mut scratch).expect("valid"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, parse, write);
criterion_main!(benches);
