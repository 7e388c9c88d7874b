//! Bad input is never a panic: random octets, and every vector cut short,
//! bit-flipped or split at random, go through the user agent over UDP and
//! TCP; whatever it sends back must itself parse.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_signaling::sip::{Body, Message, UaConfig, UaEvent, UserAgent};
use proptest::prelude::*;

fn vectors() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/sip");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    out.sort();
    out
}

fn drive(ua: &mut UserAgent, now: Instant) {
    while let Some(event) = ua.poll_event() {
        if let UaEvent::IncomingCall { call, .. } = event {
            ua.accept(now, call, Body::sdp(Bytes::from_static(b"v=0\r\n")));
        }
    }
    while let Some(t) = ua.poll_transmit() {
        Message::parse(t.bytes.clone(), &Default::default()).unwrap_or_else(|e| {
            panic!(
                "we sent what does not parse ({e}): {:?}",
                String::from_utf8_lossy(&t.bytes)
            )
        });
    }
    ua.poll_close();
}

fn feed(pieces: &[Vec<u8>], stream: bool) {
    let mut ua = UserAgent::new(UaConfig::default());
    let peer: SocketAddr = "192.0.2.9:5060".parse().unwrap();
    let mut now = Instant::now();
    for piece in pieces {
        if stream {
            ua.handle_stream_bytes(now, 1, peer, piece);
        } else {
            ua.handle_datagram(now, peer, Bytes::from(piece.clone()));
        }
        drive(&mut ua, now);
        now += Duration::from_millis(300);
        ua.handle_timeout(now);
        drive(&mut ua, now);
    }
    now += Duration::from_secs(64);
    ua.handle_timeout(now);
    drive(&mut ua, now);
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let vectors = vectors();
    (
        0..vectors.len(),
        any::<usize>(),
        any::<usize>(),
        any::<u8>(),
        0usize..3,
    )
        .prop_map(move |(i, cut, at, byte, how)| {
            let mut v = vectors[i].clone();
            match how {
                0 => v.truncate(cut % (v.len() + 1)),
                1 => {
                    let at = at % v.len();
                    v[at] ^= byte | 1;
                }
                _ => {
                    let at = at % v.len();
                    v.insert(at, byte);
                }
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_octets_over_udp_and_tcp(pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..6)) {
        feed(&pieces, false);
        feed(&pieces, true);
    }

    #[test]
    fn mutated_vectors_over_udp_and_tcp(pieces in prop::collection::vec(mutated(), 1..4)) {
        feed(&pieces, false);
        feed(&pieces, true);
    }
}

#[test]
fn every_vector_split_at_every_octet_over_tcp_is_read_as_one() {
    for vector in vectors() {
        for at in 0..vector.len() {
            let pieces = vec![vector[..at].to_vec(), vector[at..].to_vec()];
            feed(&pieces, true);
        }
    }
}
