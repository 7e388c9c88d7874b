//! Success REPORTs the application decides (`SessionSettings::hold_reports`,
//! RFC 4975 7.1.2-7.1.4) and the `#` chunk of a message its session's close
//! cut short (RFC 4975 7.1), through the connection's public interface
//! against a real second connection.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use msrp_engine::proto::{Event as WireEvent, FrameHead, Method, Parser, ParserConfig};
use msrp_engine::{
    Connection, ConnectionConfig, Continuation, Event, FailureReport, MessageId, MsrpUri, OutgoingMessage,
    ReportError, ReportSent, Role, SessionConfig, SessionKey, SessionSettings, SuccessReport,
};

const A: &str = "msrp://a.example.com:2855/alice1;tcp";
const B: &str = "msrp://b.example.com:2855/bob1;tcp";

fn uri(s: &str) -> MsrpUri {
    s.parse().expect("test URI")
}

fn transmit(conn: &mut Connection, now: Instant) -> Bytes {
    let mut batch = Vec::new();
    let mut out = BytesMut::new();
    while conn.poll_transmit(now, &mut batch) > 0 {
        for piece in batch.drain(..) {
            out.extend_from_slice(&piece);
        }
    }
    out.freeze()
}

/// Every frame's head and its end-line flag.
fn frames(bytes: &[u8]) -> Vec<(FrameHead, Continuation)> {
    framed(bytes).into_iter().map(|(h, flag, _)| (h, flag)).collect()
}

/// Every frame's head, its end-line flag and its body's length.
fn framed(bytes: &[u8]) -> Vec<(FrameHead, Continuation, usize)> {
    let mut parser = Parser::new(ParserConfig::default());
    parser.feed(bytes);
    let (mut frames, mut head, mut body) = (Vec::new(), None, 0);
    while let Some(event) = parser.poll().expect("valid frames") {
        match event {
            WireEvent::Head(h) => (head, body) = (Some(h), 0),
            WireEvent::Body(piece) => body += piece.len(),
            WireEvent::End(flag) => frames.push((head.take().expect("a head before the end"), flag, body)),
            _ => {}
        }
    }
    frames
}

fn reports(bytes: &[u8]) -> Vec<FrameHead> {
    frames(bytes)
        .into_iter()
        .map(|(head, _)| head)
        .filter(|h| h.method() == Some(&Method::Report))
        .collect()
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// A (active, sending) and B (passive), B's settings as `b_settings` makes
/// them, bound to each other.
fn pair(
    now: Instant,
    a_settings: impl FnOnce(&mut SessionSettings),
    b_settings: impl FnOnce(&mut SessionSettings),
) -> (Connection, Connection, SessionKey, SessionKey) {
    let mut a = Connection::new(ConnectionConfig::default());
    let mut b = Connection::new(ConnectionConfig::default());
    let mut config = SessionConfig::new(uri(A), vec![uri(B)], Role::Active);
    a_settings(&mut config.settings);
    let ka = a.add_session(config, now).expect("a");
    let mut config = SessionConfig::new(uri(B), vec![uri(A)], Role::Passive);
    b_settings(&mut config.settings);
    let kb = b.add_session(config, now).expect("b");
    // The binding SEND and its 200.
    b.handle_bytes(&transmit(&mut a, now), now);
    a.handle_bytes(&transmit(&mut b, now), now);
    events(&mut a);
    events(&mut b);
    (a, b, ka, kb)
}

fn holding(now: Instant) -> (Connection, Connection, SessionKey, SessionKey) {
    pair(now, |_| {}, |b| b.hold_reports = true)
}

fn reported(len: usize, failure_report: FailureReport) -> OutgoingMessage {
    let mut message = OutgoingMessage::new("text/plain", vec![b'v'; len]);
    message.success_report = Some(SuccessReport::Yes);
    message.failure_report = Some(failure_report);
    message
}

/// A's message crosses to B and B's answers come back; returns B's events
/// (commit tickets committed) and B's REPORTs in those answers.
fn cross(a: &mut Connection, b: &mut Connection, now: Instant) -> (Vec<Event>, Vec<FrameHead>) {
    let (mut eb, mut sent) = (Vec::new(), Vec::new());
    loop {
        let ab = transmit(a, now);
        b.handle_bytes(&ab, now);
        for event in events(b) {
            if let Event::Commit { ticket, .. } = event {
                b.committed(ticket);
            }
            eb.push(event);
        }
        let ba = transmit(b, now);
        sent.extend(reports(&ba));
        a.handle_bytes(&ba, now);
        if ab.is_empty() && ba.is_empty() {
            return (eb, sent);
        }
    }
}

/// The Message-ID and `report_held` of every `MessageReceived`.
fn received(events: &[Event]) -> Vec<(MessageId, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived {
                message_id,
                report_held,
                ..
            } => Some((*message_id, *report_held)),
            _ => None,
        })
        .collect()
}

fn outcomes(events: &[Event]) -> Vec<Result<(), Option<u16>>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Delivered { .. } => Some(Ok(())),
            Event::Failed { status, .. } => Some(Err(*status)),
            _ => None,
        })
        .collect()
}

fn status_line(report: &FrameHead) -> (u16, String) {
    let status = report.report_status().expect("a Status header");
    assert_eq!(status.namespace, 0);
    let comment = report.report_status_comment().unwrap_or_default().to_string();
    (status.code, comment)
}

#[test]
fn without_hold_reports_the_success_report_goes_at_once() {
    let now = Instant::now();
    let (mut a, mut b, ka, _) = pair(now, |_| {}, |_| {});
    a.send(ka, reported(100, FailureReport::Yes)).expect("send");
    let (eb, sent) = cross(&mut a, &mut b, now);
    assert_eq!(received(&eb).len(), 1);
    assert!(!received(&eb)[0].1, "report_held only when held");
    assert_eq!(sent.len(), 1);
    assert_eq!(status_line(&sent[0]).0, 200);
    assert_eq!(outcomes(&events(&mut a)), [Ok(())]);
}

#[test]
fn a_held_report_is_not_written_until_the_application_says_200() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = holding(now);
    a.send(ka, reported(100, FailureReport::Yes)).expect("send");
    let (eb, sent) = cross(&mut a, &mut b, now);
    let [(message_id, true)] = received(&eb)[..] else {
        panic!("one message, its report held: {eb:?}");
    };
    assert!(sent.is_empty(), "no REPORT before the application decides");
    assert!(outcomes(&events(&mut a)).is_empty(), "the sender still waits");
    assert_eq!(b.session_held_reports(kb), Some(1));

    assert_eq!(b.report(kb, message_id.as_str(), 200, None), Ok(ReportSent::Sent));
    let wire = transmit(&mut b, now);
    let sent = reports(&wire);
    assert_eq!(sent.len(), 1);
    let report = &sent[0];
    assert_eq!(report.message_id(), Some(&message_id));
    assert_eq!(
        report.byte_range().map(|r| r.to_string()),
        Some("1-100/100".into())
    );
    assert_eq!(report.to_path().as_str(), A);
    assert_eq!(report.from_path().as_str(), B);
    assert_eq!(status_line(report), (200, "OK".into()));
    // RFC 4975 7.1.2: no report headers on a REPORT.
    assert_eq!(report.success_report(), None);
    assert_eq!(report.failure_report(), None);
    a.handle_bytes(&wire, now);
    assert_eq!(outcomes(&events(&mut a)), [Ok(())]);
    // Decided once: forgotten.
    assert_eq!(b.session_held_reports(kb), Some(0));
    assert_eq!(
        b.report(kb, message_id.as_str(), 200, None),
        Err(ReportError::NotHeld(message_id.as_str().into()))
    );
}

#[test]
fn status_400_sends_a_failure_report_that_fails_the_message() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = holding(now);
    a.send(ka, reported(3000, FailureReport::Yes)).expect("send");
    let (eb, _) = cross(&mut a, &mut b, now);
    let message_id = received(&eb)[0].0;
    let sent = b.report(kb, message_id.as_str(), 400, Some("sha-1 does not match"));
    assert_eq!(sent, Ok(ReportSent::Sent));
    let wire = transmit(&mut b, now);
    let text = String::from_utf8_lossy(&wire);
    assert!(
        text.contains("\r\nStatus: 000 400 sha-1 does not match\r\n"),
        "{text}"
    );
    let report = &reports(&wire)[0];
    assert_eq!(
        report.byte_range().map(|r| r.to_string()),
        Some("1-3000/3000".into())
    );
    a.handle_bytes(&wire, now);
    assert_eq!(outcomes(&events(&mut a)), [Err(Some(400))]);
}

#[test]
fn a_failure_report_without_a_comment_carries_the_codes_phrase() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = holding(now);
    a.send(ka, reported(10, FailureReport::Partial)).expect("send");
    let (eb, _) = cross(&mut a, &mut b, now);
    let message_id = received(&eb)[0].0;
    // RFC 4975 7.1.4: `partial` allows a failure REPORT.
    assert_eq!(b.report(kb, message_id.as_str(), 415, None), Ok(ReportSent::Sent));
    let report = &reports(&transmit(&mut b, now))[0];
    assert_eq!(status_line(report), (415, "Unsupported Media Type".into()));
}

#[test]
fn failure_report_no_forbids_the_failure_report_but_not_the_success_one() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = holding(now);
    a.send(ka, reported(10, FailureReport::No)).expect("send");
    a.send(ka, reported(20, FailureReport::No)).expect("send");
    let (eb, _) = cross(&mut a, &mut b, now);
    let ids: Vec<MessageId> = received(&eb).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 2);
    // RFC 4975 7.1.4: "MUST NOT send a failure REPORT request".
    assert_eq!(
        b.report(kb, ids[0].as_str(), 400, None),
        Ok(ReportSent::Forbidden)
    );
    assert!(transmit(&mut b, now).is_empty());
    assert_eq!(
        b.report(kb, ids[0].as_str(), 200, None),
        Err(ReportError::NotHeld(ids[0].as_str().into())),
        "forgotten even though nothing went"
    );
    assert_eq!(b.report(kb, ids[1].as_str(), 200, None), Ok(ReportSent::Sent));
    assert_eq!(status_line(&reports(&transmit(&mut b, now))[0]).0, 200);
}

#[test]
fn a_refused_report_command_changes_nothing() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = holding(now);
    a.send(ka, reported(10, FailureReport::Yes)).expect("send");
    let (eb, _) = cross(&mut a, &mut b, now);
    let id = received(&eb)[0].0;
    let id = id.as_str();
    assert_eq!(
        b.report(kb, "nobody-sent-this", 200, None),
        Err(ReportError::NotHeld("nobody-sent-this".into()))
    );
    assert_eq!(
        b.report(kb, "not an ident\r\n", 200, None),
        Err(ReportError::NotHeld("not an ident\r\n".into()))
    );
    assert_eq!(b.report(kb, id, 99, None), Err(ReportError::Status(99)));
    assert_eq!(b.report(kb, id, 250, None), Err(ReportError::Status(250)));
    assert_eq!(b.report(kb, id, 1000, None), Err(ReportError::Status(1000)));
    assert_eq!(
        b.report(kb, id, 400, Some("two\r\nTo-Path: msrp://evil")),
        Err(ReportError::BadComment)
    );
    assert_eq!(b.report(kb, id, 400, Some("")), Err(ReportError::BadComment));
    let long = "x".repeat(msrp_engine::REPORT_COMMENT_BYTES_MAX + 1);
    assert_eq!(
        b.report(kb, id, 400, Some(&long)),
        Err(ReportError::CommentTooLong(long.len()))
    );
    assert!(transmit(&mut b, now).is_empty());
    assert_eq!(b.session_held_reports(kb), Some(1), "still held");
    // A key of no session here.
    b.close_session(kb, "done");
    assert_eq!(b.report(kb, id, 200, None), Err(ReportError::UnknownSession));
}

#[test]
fn one_over_the_bound_answers_the_oldest_with_408_and_counts_it() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = pair(
        now,
        |_| {},
        |b| {
            b.hold_reports = true;
            b.held_reports_max = 2;
        },
    );
    for len in [10, 20] {
        a.send(ka, reported(len, FailureReport::Yes)).expect("send");
    }
    let (eb, sent) = cross(&mut a, &mut b, now);
    assert!(sent.is_empty());
    let first = received(&eb)[0].0;
    assert_eq!(b.stats().reports_held_expired, 0);
    a.send(ka, reported(30, FailureReport::Yes)).expect("send");
    let (eb, sent) = cross(&mut a, &mut b, now);
    assert_eq!(received(&eb).len(), 1);
    assert!(received(&eb)[0].1, "the newest is held");
    assert_eq!(sent.len(), 1, "the oldest is answered");
    assert_eq!(sent[0].message_id(), Some(&first));
    assert_eq!(status_line(&sent[0]).0, 408);
    assert_eq!(
        sent[0].byte_range().map(|r| r.to_string()),
        Some("1-10/10".into())
    );
    assert_eq!(b.stats().reports_held_expired, 1);
    assert_eq!(b.session_held_reports(kb), Some(2));
    assert_eq!(outcomes(&events(&mut a)), [Err(Some(408))]);
    assert_eq!(
        b.report(kb, first.as_str(), 200, None),
        Err(ReportError::NotHeld(first.as_str().into()))
    );
}

#[test]
fn closing_the_session_drops_what_it_held_unsent() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = holding(now);
    a.send(ka, reported(10, FailureReport::Yes)).expect("send");
    cross(&mut a, &mut b, now);
    assert_eq!(b.session_held_reports(kb), Some(1));
    b.close_session_at(kb, "the application ended the session", now);
    assert!(reports(&transmit(&mut b, now)).is_empty());
    assert_eq!(b.stats().reports_held_expired, 0);
}

#[test]
fn a_message_in_several_chunks_and_a_streamed_one_are_held_too() {
    let now = Instant::now();
    // 64 KiB chunks; B streams everything to its sink.
    let (mut a, mut b, ka, kb) = pair(
        now,
        |_| {},
        |b| {
            b.hold_reports = true;
            b.inline_bytes_max = 0;
        },
    );
    a.send(ka, reported(200_000, FailureReport::Yes)).expect("send");
    let (eb, sent) = cross(&mut a, &mut b, now);
    assert!(eb.iter().any(|e| matches!(e, Event::Commit { .. })), "streamed");
    let [(id, true)] = received(&eb)[..] else {
        panic!("one message, held: {eb:?}");
    };
    assert!(sent.is_empty());
    b.report(kb, id.as_str(), 200, None).expect("held");
    let wire = transmit(&mut b, now);
    let report = &reports(&wire)[0];
    assert_eq!(
        report.byte_range().map(|r| r.to_string()),
        Some("1-200000/200000".into())
    );
    a.handle_bytes(&wire, now);
    assert_eq!(outcomes(&events(&mut a)), [Ok(())]);
}

#[test]
fn a_message_that_asked_no_success_report_holds_nothing() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = holding(now);
    a.send(ka, OutgoingMessage::new("text/plain", "no report wanted"))
        .expect("send");
    let (eb, sent) = cross(&mut a, &mut b, now);
    assert!(!received(&eb)[0].1);
    assert!(sent.is_empty());
    assert_eq!(b.session_held_reports(kb), Some(0));
}

/// RFC 4975 7.1: closing a session while a message of it is half sent ends
/// that message with `#` at the next octet, and the connection carries on.
#[test]
fn closing_a_session_mid_message_writes_its_abort_chunk() {
    let now = Instant::now();
    // One 64 KiB chunk in flight at a time: the second waits for a 200.
    let (mut a, mut b, ka, kb) = pair(now, |a| a.inflight_bytes_max = 64 * 1024, |_| {});
    let mut other = SessionConfig::new(
        uri("msrp://a.example.com:2855/alice2;tcp"),
        vec![uri("msrp://b.example.com:2855/bob2;tcp")],
        Role::Active,
    );
    other.settings.inflight_bytes_max = 64 * 1024;
    let ka2 = a.add_session(other, now).expect("a second session");
    let theirs = SessionConfig::new(
        uri("msrp://b.example.com:2855/bob2;tcp"),
        vec![uri("msrp://a.example.com:2855/alice2;tcp")],
        Role::Passive,
    );
    b.add_session(theirs, now).expect("its peer");
    a.send(
        ka,
        OutgoingMessage::new("application/octet-stream", vec![b'f'; 200_000]),
    )
    .expect("send");
    let first = transmit(&mut a, now);
    let chunks: Vec<_> = frames(&first).into_iter().filter(|(h, _)| h.has_body()).collect();
    assert_eq!(chunks.len(), 1, "one chunk in flight");
    assert_eq!(chunks[0].1, Continuation::More);
    b.handle_bytes(&first, now);
    events(&mut b);
    assert!(b.session_reassembly_bytes(kb).unwrap() > 0);

    a.close_session_at(ka, "the application ended the session", now);
    let wire = transmit(&mut a, now);
    let text = String::from_utf8_lossy(&wire);
    assert!(text.contains("Byte-Range: 65537-65536/200000\r\n"), "{text}");
    let aborts: Vec<_> = framed(&wire)
        .into_iter()
        .filter(|(_, flag, _)| *flag == Continuation::Abort)
        .collect();
    assert_eq!(aborts.len(), 1, "{text}");
    let (head, _, body) = &aborts[0];
    assert_eq!(head.method(), Some(&Method::Send));
    assert_eq!(head.message_id(), chunks[0].0.message_id());
    assert_eq!(head.to_path().as_str(), B);
    assert_eq!(*body, 0, "the `#` chunk is empty");
    // The end-line itself: seven dashes, the transaction id, `#`.
    let end = format!("-------{}#\r\n", head.transaction_id().as_str());
    assert!(wire.ends_with(end.as_bytes()), "{text}");
    b.handle_bytes(&wire, now);
    let eb = events(&mut b);
    assert!(
        eb.iter()
            .any(|e| matches!(e, Event::MessageAborted { reason, .. } if reason.contains("aborted"))),
        "{eb:?}"
    );
    assert_eq!(b.session_reassembly_bytes(kb), Some(0));
    // B answers the `#` chunk; A matches the answer to its transaction.
    a.handle_bytes(&transmit(&mut b, now), now);
    assert_eq!(a.stats().responses_unmatched, 0);
    assert!(!a.is_closed());
    assert_eq!(a.session_count(), 1);
    a.send(ka2, OutgoingMessage::new("text/plain", "still here"))
        .expect("the other session sends");
    b.handle_bytes(&transmit(&mut a, now), now);
    assert!(events(&mut b)
        .iter()
        .any(|e| matches!(e, Event::MessageReceived { .. })));
}

/// The close of a lost transport writes nothing: only `close_session_at`
/// ends a message on the wire.
#[test]
fn close_session_without_time_writes_no_abort_chunk() {
    let now = Instant::now();
    let (mut a, _b, ka, _) = pair(now, |a| a.inflight_bytes_max = 64 * 1024, |_| {});
    a.send(
        ka,
        OutgoingMessage::new("application/octet-stream", vec![b'f'; 200_000]),
    )
    .expect("send");
    transmit(&mut a, now);
    a.close_session(ka, "gone");
    assert!(transmit(&mut a, now).is_empty());
}

/// A message whose every chunk was written is not aborted by the close:
/// only its outcome is lost.
#[test]
fn closing_after_the_last_chunk_writes_no_abort_chunk() {
    let now = Instant::now();
    let (mut a, _b, ka, _) = pair(now, |_| {}, |_| {});
    a.send(ka, OutgoingMessage::new("text/plain", vec![b't'; 5000]))
        .expect("send");
    transmit(&mut a, now);
    a.close_session_at(ka, "done", now);
    assert!(transmit(&mut a, now).is_empty());
}
