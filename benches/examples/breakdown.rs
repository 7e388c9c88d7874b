//! Where the time of one 160-octet text goes, stage by stage, through two
//! connections in memory: `send`, writing its SEND (`poll_transmit`),
//! receiving it (parse, route, deliver), writing the 200, and handling the
//! 200 on the sender. Batches of `BATCH` texts (default 400, about one
//! socket buffer), averaged over 400,000 texts after a warm-up of as many.
//!
//! `cargo run --release -p msrp-benches --example breakdown [BATCH]`

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msrp_benches::session_pair;
use msrp_engine::{Connection, ConnectionConfig, Event, OutgoingMessage, SessionKey, SessionSettings};

const TEXTS: usize = 400_000;
const STAGES: [&str; 5] = ["send", "write SEND", "receive", "write 200", "handle 200"];

/// Everything `conn` has to write, gathered.
fn drain(conn: &mut Connection, now: Instant, batch: &mut Vec<Bytes>) -> BytesMut {
    let mut wire = BytesMut::new();
    while conn.poll_transmit(now, batch) > 0 {
        for piece in batch.drain(..) {
            wire.extend_from_slice(&piece);
        }
    }
    wire
}

/// Hands `bytes` to `conn` and counts the events it then reports that match.
fn handle(conn: &mut Connection, bytes: &[u8], now: Instant, counted: fn(&Event) -> bool) -> usize {
    conn.handle_bytes(bytes, now);
    std::iter::from_fn(|| conn.poll_event()).filter(counted).count()
}

fn pair(now: Instant, batch: usize) -> (Connection, Connection, SessionKey) {
    let config = ConnectionConfig {
        inflight_bytes_max: u64::MAX,
        transmit_bytes_max: u64::MAX,
        seed: Some(1),
        ..ConnectionConfig::default()
    };
    let settings = SessionSettings {
        inflight_bytes_max: u64::MAX,
        send_queue_messages_max: batch,
        send_queue_bytes_max: u64::MAX,
        ..SessionSettings::default()
    };
    let (sender, receiver, key) = session_pair(config, settings, now);
    (sender, receiver, key)
}

fn main() {
    let batch: usize = std::env::args()
        .nth(1)
        .map_or(400, |v| v.parse().expect("BATCH is a number"));
    let rounds = (TEXTS / batch).max(1);
    let now = Instant::now();
    let (mut sender, mut receiver, key) = pair(now, batch);
    let text = Bytes::from(vec![b'x'; 160]);
    let mut pieces = Vec::new();
    let mut spent = [Duration::ZERO; 5];
    for round in 0..2 * rounds {
        let mut marks = [Instant::now(); 6];
        for _ in 0..batch {
            sender
                .send(key, OutgoingMessage::new("text/plain", text.clone()))
                .expect("send");
        }
        marks[1] = Instant::now();
        let sends = drain(&mut sender, now, &mut pieces);
        marks[2] = Instant::now();
        let received = handle(&mut receiver, &sends, now, |e| {
            matches!(e, Event::MessageReceived { .. })
        });
        marks[3] = Instant::now();
        let answers = drain(&mut receiver, now, &mut pieces);
        marks[4] = Instant::now();
        let delivered = handle(&mut sender, &answers, now, |e| {
            matches!(e, Event::Delivered { .. })
        });
        marks[5] = Instant::now();
        assert_eq!(
            (received, delivered),
            (batch, batch),
            "every text arrives and is delivered"
        );
        if round >= rounds {
            for (stage, w) in marks.windows(2).enumerate() {
                spent[stage] += w[1] - w[0];
            }
        }
    }
    let texts = (rounds * batch) as f64;
    let mut total = 0.0;
    for (name, time) in STAGES.iter().zip(spent) {
        let ns = time.as_nanos() as f64 / texts;
        total += ns;
        println!("{name:>11}: {ns:6.0} ns/text");
    }
    println!(
        "{:>11}: {total:6.0} ns/text ({:.0} k texts/s)",
        "total",
        1e6 / total
    );
}
