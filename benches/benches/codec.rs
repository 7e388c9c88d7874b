//! Wire codec throughput on one core: parsing and writing small (160-octet)
//! SENDs and 64 KiB chunks.
//!
//! `cargo bench -p msrp-benches --bench codec`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use msrp_benches::{body, drain, interleaved_stream, loaded_parser, send_request, send_stream};
use msrp_engine::proto::{MessageId, Writer};

const SMALL_BODY: usize = 160;
const SMALL_FRAMES: usize = 10_000;
const BULK_BODY: usize = 64 * 1024;
const BULK_FRAMES: usize = 256;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let small = send_stream(SMALL_FRAMES, SMALL_BODY);
    group.throughput(Throughput::Elements(SMALL_FRAMES as u64));
    group.bench_function("send_160B_frames", |b| {
        b.iter_batched(
            || loaded_parser(&small),
            |mut parser| black_box(drain(&mut parser)),
            BatchSize::LargeInput,
        )
    });
    // Worst case for the path memo: 1,000 sessions taking turns on one connection.
    let mixed = interleaved_stream(SMALL_FRAMES, SMALL_BODY, 1000);
    group.bench_function("send_160B_frames_1000_sessions", |b| {
        b.iter_batched(
            || loaded_parser(&mixed),
            |mut parser| black_box(drain(&mut parser)),
            BatchSize::LargeInput,
        )
    });
    let bulk = send_stream(BULK_FRAMES, BULK_BODY);
    group.throughput(Throughput::Bytes((BULK_FRAMES * BULK_BODY) as u64));
    group.bench_function("send_64KiB_chunks", |b| {
        b.iter_batched(
            || loaded_parser(&bulk),
            |mut parser| black_box(drain(&mut parser)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn write(c: &mut Criterion) {
    let mut group = c.benchmark_group("write");
    let message_id = MessageId::new(b"bench-message-1").expect("ident");
    let small = body(SMALL_BODY, 1);
    let mut writer = Writer::with_seed(7);
    let mut out = BytesMut::with_capacity(SMALL_FRAMES * 512);
    group.throughput(Throughput::Elements(SMALL_FRAMES as u64));
    group.bench_function("send_160B_frames", |b| {
        b.iter(|| {
            out.clear();
            for _ in 0..SMALL_FRAMES {
                let req = send_request(message_id, small.clone());
                black_box(writer.write_request(&req, &mut out).expect("valid"));
            }
        })
    });
    let bulk = body(BULK_BODY, 2);
    let mut out = BytesMut::with_capacity(BULK_FRAMES * (BULK_BODY + 512));
    group.throughput(Throughput::Bytes((BULK_FRAMES * BULK_BODY) as u64));
    group.bench_function("send_64KiB_chunks_copied", |b| {
        b.iter(|| {
            out.clear();
            for _ in 0..BULK_FRAMES {
                let req = send_request(message_id, bulk.clone());
                black_box(writer.write_request(&req, &mut out).expect("valid"));
            }
        })
    });
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
