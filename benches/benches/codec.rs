//! Wire codec throughput on one core: parsing and writing small (160-octet)
//! SENDs and 64 KiB chunks, with httparse on an HTTP/1.1 request of the same
//! head size, header count and body length as the anchor.
//!
//! `cargo bench -p msrp-benches --bench codec`
//!
//! What `parse/` compares:
//! - `send_160B_frames`: whole MSRP frames from one buffer: head, body slice
//!   and the end-line search over the body (RFC 4975 7.1: MSRP has no
//!   Content-Length, the end-line delimits the body).
//! - `http_160B_requests_httparse`: the same stream shape in HTTP/1.1: httparse
//!   parses each head (it parses only heads), then Content-Length skips the body.
//! - `send_160B_heads` / `http_160B_heads_httparse`: the head alone, one per
//!   buffer: a parser that already saw one SEND of the session yields the next
//!   head (validated: syntax, URIs, idents, Byte-Range, Content-Type) before it
//!   looks at the body; httparse parses one request head per buffer.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput};
use msrp_benches::{
    body, drain, first_head, head_parsers, http_request, http_stream, interleaved_stream, loaded_parser,
    send_request, send_stream,
};
use msrp_engine::proto::{Event, MessageId, Writer};

const SMALL_BODY: usize = 160;
const SMALL_FRAMES: usize = 10_000;
const BULK_BODY: usize = 64 * 1024;
const BULK_FRAMES: usize = 256;
/// Heads per batch of the head-only benchmarks: few enough that their parsers
/// stay in cache, as the one parser of a busy connection does.
const HEADS: usize = 100;
/// Headers httparse may fill; more than the five of the anchor request.
const HTTP_HEADERS_MAX: usize = 16;

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

/// Parses one HTTP/1.1 request head with httparse and returns the offset of
/// the next request (after the body, by Content-Length).
fn http_next(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head_len) = req.parse(buf).expect("valid request") else {
        panic!("bench request is partial")
    };
    let body_len = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
        .expect("Content-Length");
    head_len + body_len
}

/// Times parsing `HEADS` SEND heads, each the next frame of a parser in use;
/// only the polls that yield the heads are timed, not building the parsers.
fn bench_msrp_heads(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.bench_function("send_160B_heads", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let mut parsers = head_parsers(HEADS, SMALL_BODY);
                let start = Instant::now();
                for parser in parsers.iter_mut() {
                    match parser.poll() {
                        Ok(Some(Event::Head(head))) => drop(black_box(head)),
                        other => panic!("expected a head: {other:?}"),
                    }
                }
                timed += start.elapsed();
            }
            timed
        })
    });
}

/// Times httparse on `HEADS` request heads, one per buffer.
fn bench_http_heads(group: &mut BenchmarkGroup<'_, WallTime>, head_len: usize) {
    let requests: Vec<Vec<u8>> = (0..HEADS)
        .map(|i| http_request(head_len, SMALL_BODY, i as u64))
        .collect();
    group.bench_function("http_160B_heads_httparse", |b| {
        b.iter(|| {
            for req in &requests {
                let mut headers = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
                let mut parsed = httparse::Request::new(&mut headers);
                black_box(parsed.parse(black_box(req)).expect("valid request"));
            }
        })
    });
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(SMALL_FRAMES as u64));
    let sends = send_stream(SMALL_FRAMES, SMALL_BODY);
    let (head, header_count) = first_head(&sends);
    assert_eq!(header_count, 5, "the anchor compares five headers");
    bench_parse(&mut group, "send_160B_frames", &sends);
    let requests = http_stream(SMALL_FRAMES, head.len(), SMALL_BODY);
    group.bench_function("http_160B_requests_httparse", |b| {
        b.iter(|| {
            let (mut at, mut count) = (0, 0u64);
            while at < requests.len() {
                at += http_next(black_box(&requests[at..]));
                count += 1;
            }
            black_box(count)
        })
    });
    // Worst case for the path memo: 1,000 sessions taking turns on one connection.
    let mixed = interleaved_stream(SMALL_FRAMES, SMALL_BODY, 1000);
    bench_parse(&mut group, "send_160B_frames_1000_sessions", &mixed);
    group.throughput(Throughput::Elements(HEADS as u64));
    bench_msrp_heads(&mut group);
    bench_http_heads(&mut group, head.len());
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
