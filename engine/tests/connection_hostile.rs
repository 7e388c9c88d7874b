//! The sans-IO core's side of issue 10, in simulated time and without
//! sockets: who may claim a pending session, the frame timer and when it is
//! suspended, large messages streamed from their first octet, and SENDs
//! refused while no application listens.

use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_engine::proto::{Event as WireEvent, Parser, ParserConfig};
use msrp_engine::{
    Connection, ConnectionConfig, Event, Lookup, MsrpUri, Role, SessionConfig, SessionDirectory,
};

const OURS: &str = "msrp://b.example.com:2855/bob1;tcp";
const PEER: &str = "msrp://a.example.com:2855/alice1;tcp";
const STRANGER: &str = "msrp://e.example.com:2855/eve1;tcp";

fn uri(s: &str) -> MsrpUri {
    s.parse().expect("test URI")
}

fn send(tid: &str, from: &str, message_id: &str, range: &str, body: &[u8]) -> Vec<u8> {
    let mut frame = format!(
        "MSRP {tid} SEND\r\nTo-Path: {OURS}\r\nFrom-Path: {from}\r\nMessage-ID: {message_id}\r\n\
         Byte-Range: {range}\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    frame.extend_from_slice(body);
    frame.extend_from_slice(format!("\r\n-------{tid}$\r\n").as_bytes());
    frame
}

/// The statuses of the responses `conn` has to write.
fn statuses(conn: &mut Connection, now: Instant) -> Vec<u16> {
    let mut batch = Vec::new();
    let mut parser = Parser::new(ParserConfig::default());
    while conn.poll_transmit(now, &mut batch) > 0 {
        for piece in batch.drain(..) {
            parser.feed(&piece);
        }
    }
    let mut out = Vec::new();
    while let Some(event) = parser.poll().expect("valid frames") {
        if let WireEvent::Head(head) = event {
            out.extend(head.status_code());
        }
    }
    out
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// One pending session, claimed at most once, as the shard's directory.
struct OnePending(Option<SessionConfig>);

impl SessionDirectory for OnePending {
    fn lookup(&mut self, uri: &MsrpUri, from_peer: &dyn Fn(&SessionConfig) -> bool) -> Lookup {
        match &self.0 {
            Some(config) if config.local_uri == *uri && !from_peer(config) => Lookup::Forbidden,
            Some(config) if config.local_uri == *uri => Lookup::Claim(Box::new(self.0.take().unwrap())),
            _ => Lookup::Unknown,
        }
    }
}

#[test]
fn a_pending_session_is_claimed_only_by_its_negotiated_peer() {
    let now = Instant::now();
    let mut directory = OnePending(Some(SessionConfig::new(
        uri(OURS),
        vec![uri(PEER)],
        Role::Passive,
    )));
    let mut stranger = Connection::new(ConnectionConfig::default());
    stranger
        .input_buffer()
        .extend_from_slice(&send("tid1", STRANGER, "msg1", "1-2/2", b"hi"));
    stranger.handle_input_with(now, &mut directory);
    assert_eq!(statuses(&mut stranger, now), [403]);
    assert_eq!(stranger.session_count(), 0);
    assert!(directory.0.is_some(), "the session is still pending");

    let mut peer = Connection::new(ConnectionConfig::default());
    peer.input_buffer()
        .extend_from_slice(&send("tid2", PEER, "msg2", "1-2/2", b"hi"));
    peer.handle_input_with(now, &mut directory);
    assert_eq!(statuses(&mut peer, now), [200]);
    assert!(directory.0.is_none());
    let events = events(&mut peer);
    assert!(
        matches!(events[..2], [Event::SessionClaimed { session: a }, Event::SessionReady { session: b }] if a == b),
        "{events:?}"
    );
}

/// A connection at its session bound cannot take a claimed session: it says
/// so with an event naming the session, and the request gets 481.
#[test]
fn a_claim_the_connection_cannot_take_is_reported() {
    let now = Instant::now();
    let config = ConnectionConfig {
        sessions_max: 1,
        ..ConnectionConfig::default()
    };
    let mut conn = Connection::new(config);
    let other = SessionConfig::new(
        uri("msrp://b.example.com:2855/other1;tcp"),
        vec![uri(PEER)],
        Role::Passive,
    );
    conn.add_session(other, now).expect("the one session");
    let mut directory = OnePending(Some(SessionConfig::new(
        uri(OURS),
        vec![uri(PEER)],
        Role::Passive,
    )));
    conn.input_buffer()
        .extend_from_slice(&send("tid1", PEER, "msg1", "1-2/2", b"hi"));
    conn.handle_input_with(now, &mut directory);
    assert_eq!(statuses(&mut conn, now), [481]);
    let events = events(&mut conn);
    assert!(
        matches!(&events[..], [Event::ClaimRefused { session_id, .. }] if session_id == "bob1"),
        "{events:?}"
    );
}

fn bound(config: ConnectionConfig, now: Instant) -> Connection {
    let mut conn = Connection::new(config);
    let mut session = SessionConfig::new(uri(OURS), vec![uri(PEER)], Role::Passive);
    session.settings.inline_bytes_max = 1000;
    conn.add_session(session, now).expect("session");
    conn.handle_bytes(&send("tid0", PEER, "msg0", "1-4/4", b"bind"), now);
    assert_eq!(statuses(&mut conn, now), [200]);
    events(&mut conn);
    conn
}

#[test]
fn half_a_frame_times_out_but_not_while_input_is_paused() {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(1);
    let config = ConnectionConfig {
        frame_timeout: timeout,
        ..ConnectionConfig::default()
    };
    let mut conn = bound(config, t0);
    assert_eq!(conn.poll_timeout(), None, "nothing in progress, nothing to time");
    let frame = send("tid1", PEER, "msg1", "1-5/5", b"hello");
    conn.handle_bytes(&frame[..frame.len() / 2], t0);
    assert_eq!(conn.poll_timeout(), Some(t0 + timeout));

    // The shell stops reading (backpressure): the peer cannot be blamed.
    conn.set_input_paused(true, t0);
    assert_eq!(conn.poll_timeout(), None);
    let t1 = t0 + Duration::from_secs(10);
    conn.set_input_paused(false, t1);
    assert_eq!(conn.poll_timeout(), Some(t1 + timeout));

    // Each octet that comes re-arms it; the end-line disarms it.
    let t2 = t1 + Duration::from_millis(500);
    conn.handle_bytes(&frame[frame.len() / 2..frame.len() - 1], t2);
    assert_eq!(conn.poll_timeout(), Some(t2 + timeout));
    conn.handle_bytes(&frame[frame.len() - 1..], t2);
    assert_eq!(conn.poll_timeout(), None);
    assert_eq!(statuses(&mut conn, t2), [200]);

    conn.handle_bytes(&frame[..10], t2);
    conn.handle_timeout(t2 + timeout);
    assert!(conn.is_closed());
    assert_eq!(conn.stats().frame_timeouts, 1);
    let reasons: Vec<String> = events(&mut conn)
        .into_iter()
        .filter_map(|e| match e {
            Event::ConnectionClosed { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        reasons.len() == 1 && reasons[0].contains("frame-timeout"),
        "{reasons:?}"
    );
}

#[test]
fn a_message_declared_over_the_inline_bound_streams_from_its_first_octet() {
    let now = Instant::now();
    let mut conn = bound(ConnectionConfig::default(), now);
    conn.handle_bytes(&send("tid1", PEER, "msg1", "1-100/5000", &[b'x'; 100]), now);
    let data: Vec<(u64, Bytes)> = events(&mut conn)
        .into_iter()
        .filter_map(|e| match e {
            Event::Data { offset, data, .. } => Some((offset, data)),
            _ => None,
        })
        .collect();
    assert_eq!(data, [(0, Bytes::from_static(&[b'x'; 100]))]);
    // A small message still arrives whole.
    conn.handle_bytes(&send("tid2", PEER, "msg2", "1-5/5", b"small"), now);
    assert!(events(&mut conn)
        .iter()
        .any(|e| matches!(e, Event::MessageReceived { .. })));
}

#[test]
fn sends_are_refused_while_the_shell_says_so() {
    let now = Instant::now();
    let mut conn = bound(ConnectionConfig::default(), now);
    conn.set_refuse_sends(true);
    conn.handle_bytes(&send("tid1", PEER, "msg1", "1-2/2", b"no"), now);
    assert_eq!(statuses(&mut conn, now), [403]);
    conn.set_refuse_sends(false);
    conn.handle_bytes(&send("tid2", PEER, "msg2", "1-3/3", b"yes"), now);
    assert_eq!(statuses(&mut conn, now), [200]);
}

fn aborted(conn: &mut Connection) -> Vec<String> {
    events(conn)
        .into_iter()
        .filter_map(|e| match e {
            Event::MessageAborted { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

/// Every incoming message that started ends in exactly one event, also
/// when it was small enough to stay in memory: aborted by its sender in its
/// first chunk or a later one, or expired for lack of chunks.
#[test]
fn every_started_message_ends_in_an_event_even_in_memory() {
    let now = Instant::now();
    let config = ConnectionConfig {
        incoming_expiry: Duration::from_secs(10),
        ..ConnectionConfig::default()
    };
    let mut conn = bound(config, now);
    let mut abort_first = send("tid1", PEER, "msg1", "1-2/*", b"ab");
    let flag = abort_first.len() - 3;
    abort_first[flag] = b'#';
    conn.handle_bytes(&abort_first, now);
    assert_eq!(statuses(&mut conn, now), [200]);
    assert_eq!(aborted(&mut conn), ["the sender aborted the message"]);

    let mut first = send("tid2", PEER, "msg2", "1-2/4", b"ab");
    let flag = first.len() - 3;
    first[flag] = b'+';
    conn.handle_bytes(&first, now);
    assert_eq!(aborted(&mut conn), Vec::<String>::new());
    let mut then_abort = send("tid3", PEER, "msg2", "3-4/4", b"cd");
    let flag = then_abort.len() - 3;
    then_abort[flag] = b'#';
    conn.handle_bytes(&then_abort, now);
    assert_eq!(aborted(&mut conn), ["the sender aborted the message"]);

    let mut stale = send("tid4", PEER, "msg3", "1-2/4", b"ab");
    let flag = stale.len() - 3;
    stale[flag] = b'+';
    conn.handle_bytes(&stale, now);
    statuses(&mut conn, now);
    let later = now + Duration::from_secs(30);
    while conn.poll_timeout().is_some_and(|at| at <= later) {
        conn.handle_timeout(later);
    }
    let reasons = aborted(&mut conn);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
}
