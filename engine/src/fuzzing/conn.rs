//! Fuzz target for a whole `Connection`: arbitrary bytes from a peer into a
//! connection carrying the vectors' session (so the corpus routes, reassembles
//! and streams real messages) and a session of its own that is sending.
//!
//! Input layout: the first [`CONFIG_LEN`] bytes choose the setup (missing
//! bytes read as zero), the rest is what the peer sends.
//!
//! | byte | meaning |
//! |------|---------|
//! | 0    | flags: bit 0 lenient; bit 1 stream everything to the sink (inline max 0); bit 2 at most one message in reassembly; bit 3 every fourth commit fails; bit 4 Success-Report on our messages; bit 5 max-size 4096 |
//! | 1    | low 3 bits: largest feed piece (1, 2, 3, 5, 9, 17, 64, 1024); high 5 bits: split seed |
//! | 2    | split seed |
//!
//! Checks: nothing panics (run with `-a`: the scheduler, reassembly and
//! connection assert their invariants); what the connection writes always
//! frames (a 400 may echo a broken transaction id, so `Malformed` is allowed,
//! a lost frame boundary is not); every message we sent ends in exactly one
//! outcome once the connection is closed; after `handle_eof` nothing more is
//! written.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::proto::{Parser, ParserConfig, Strictness};
use crate::{
    Connection, ConnectionConfig, Event, MessageRef, MsrpUri, OutgoingMessage, Role, SessionConfig,
    SuccessReport,
};

const CONFIG_LEN: usize = 3;
const LOCAL: &str = "msrp://198.51.100.20:2855/yLj7wU8m3WNYnErIrgGr;tcp";
const PEER: &str = "msrp://192.0.2.10:2855/3GEoWeUeCAF4sXNosViq;tcp";
const OURS: &str = "msrp://198.51.100.20:2855/fuzzActive1;tcp";
const PIECES: [usize; 8] = [1, 2, 3, 5, 9, 17, 64, 1024];

fn uri(s: &str) -> MsrpUri {
    s.parse().expect("fuzz URI")
}

pub fn conn(input: &[u8]) {
    let mut cfg = [0u8; CONFIG_LEN];
    let n = input.len().min(CONFIG_LEN);
    cfg[..n].copy_from_slice(&input[..n]);
    let stream = &input[n..];
    let flags = cfg[0];
    let mut rng_state = u64::from(cfg[1] >> 3) << 8 | u64::from(cfg[2]) | 1;
    let mut next = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let piece_max = PIECES[usize::from(cfg[1] & 7)];

    let mut config = ConnectionConfig {
        seed: Some(7),
        ..ConnectionConfig::default()
    };
    if flags & 1 != 0 {
        config.parser.strictness = Strictness::Lenient;
    }
    let start = Instant::now();
    let mut now = start;
    let mut conn = Connection::new(config);
    let mut passive = SessionConfig::new(uri(LOCAL), vec![uri(PEER)], Role::Passive);
    if flags & 2 != 0 {
        passive.settings.inline_bytes_max = 0;
    }
    if flags & 4 != 0 {
        passive.settings.incoming_messages_max = 1;
    }
    if flags & 32 != 0 {
        passive.max_size = Some(4096);
    }
    conn.add_session(passive, now).expect("passive session");
    let active = conn
        .add_session(SessionConfig::new(uri(OURS), vec![uri(PEER)], Role::Active), now)
        .expect("active session");
    let mut sent: HashSet<MessageRef> = HashSet::new();
    for size in [0usize, 160, 70_000] {
        let mut message = OutgoingMessage::new("text/plain", vec![b'm'; size]);
        if flags & 16 != 0 {
            message.success_report = Some(SuccessReport::Yes);
        }
        sent.insert(conn.send(active, message).expect("send"));
    }

    let mut out_parser = Parser::new(ParserConfig::default());
    let mut batch = Vec::new();
    let mut commits = 0u32;
    let mut outcomes: HashSet<MessageRef> = HashSet::new();
    let drain = |conn: &mut Connection, commits: &mut u32, outcomes: &mut HashSet<MessageRef>| {
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Commit { ticket, .. } => {
                    *commits += 1;
                    if flags & 8 != 0 && *commits % 4 == 0 {
                        conn.commit_failed(ticket, 413, "fuzz sink full");
                    } else {
                        conn.committed(ticket);
                    }
                }
                Event::Delivered { message, .. } | Event::Failed { message, .. } => {
                    assert!(sent.contains(&message), "an outcome for a message never sent");
                    assert!(outcomes.insert(message), "a second outcome for {message:?}");
                }
                _ => {}
            }
        }
    };
    let mut check_output = |conn: &mut Connection, now: Instant, batch: &mut Vec<bytes::Bytes>| {
        conn.poll_transmit(now, batch);
        for piece in batch.drain(..) {
            out_parser.feed(&piece);
        }
        while let Some(_event) = out_parser.poll().expect("the connection's output always frames") {}
    };

    let mut rest = stream;
    while !rest.is_empty() {
        let take = (next() as usize % piece_max + 1).min(rest.len());
        conn.input_buffer().extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        conn.handle_input(now);
        drain(&mut conn, &mut commits, &mut outcomes);
        if next() % 4 == 0 {
            check_output(&mut conn, now, &mut batch);
        }
        if next() % 64 == 0 {
            now += Duration::from_secs(31);
            conn.handle_timeout(now);
            drain(&mut conn, &mut commits, &mut outcomes);
        }
    }
    check_output(&mut conn, now, &mut batch);
    conn.handle_eof();
    drain(&mut conn, &mut commits, &mut outcomes);
    assert_eq!(
        outcomes, sent,
        "every message sent has its outcome once the connection is gone"
    );
    assert_eq!(
        conn.poll_transmit(now, &mut batch),
        0,
        "nothing is written after the peer left"
    );
}
