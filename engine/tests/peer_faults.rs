//! Peers that misbehave (issue 16, section 3), against a real `msrpd serve`
//! over real TCP sockets: a fault injector that speaks MSRP framing and then
//! stops reading, resets mid-chunk, half-closes, answers every chunk 408,
//! never answers, or sends REPORTs nobody asked for. Each test says what the
//! engine owes the application (an event with a reason for every message),
//! the sender (RFC 4975 statuses) and its other sessions (nothing).

mod daemon;

use std::collections::HashMap;
use std::fs::File;
use std::net::Shutdown;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use daemon::{
    collect_events, passive, pattern, report_frame, rss_kib, send_frame, Daemon, RawFrame, RawPeer, Received,
};
use msrp_engine::control::{Client, EngineEvent, SendRequest};

const PEER: &str = "msrp://127.0.0.1:9/peer;tcp";

/// The transaction timeout the engines of these tests run with (RFC 4975
/// 7.1.1 says 30 s; the flag makes a test wait 2).
const TXN_TIMEOUT: &str = "2s";

/// A message's one outcome: delivered, or failed with a status and why.
type Outcome = Result<(), (Option<u16>, String)>;

/// Waits for the outcome of every message in `messages`; the other events
/// seen meanwhile are returned with them.
fn outcomes(events: &mut Client, messages: &[u64]) -> (HashMap<u64, Outcome>, Vec<EngineEvent>) {
    let mut out = HashMap::new();
    let mut others = Vec::new();
    collect_events(events, Duration::from_secs(60), |event, _| {
        match event {
            EngineEvent::Delivered { message, .. } if messages.contains(&message) => {
                out.insert(message, Ok(()));
            }
            EngineEvent::Failed {
                message,
                status,
                reason,
                ..
            } if messages.contains(&message) => {
                out.insert(message, Err((status, reason)));
            }
            other => others.push(other),
        }
        out.len() == messages.len()
    });
    (out, others)
}

/// A passive session `session_id` for [`PEER`], bound by a raw peer's
/// bodiless SEND (RFC 4975 5.4) on a connection of its own.
fn bound_session(d: &Daemon, ctl: &mut Client, events: &mut Client, session_id: &str) -> RawPeer {
    ctl.create_session(passive(session_id, PEER)).unwrap();
    let mut peer = RawPeer::connect(d.msrp);
    assert_eq!(peer.bind("bind1", &d.uri(session_id), PEER), 200);
    collect_events(
        events,
        Duration::from_secs(10),
        |event, _| matches!(&event, EngineEvent::SessionReady { session_id: s } if s == session_id),
    );
    peer
}

/// How a [`Scripted`] peer answers the engine's SENDs.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Never,
    Status(u16, &'static str),
}

/// A raw peer on a thread of its own: it reads every frame the engine
/// writes and answers its SENDs as `answer` says now.
struct Scripted {
    answer: Arc<Mutex<Answer>>,
    frames: Arc<Mutex<Vec<RawFrame>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<RawPeer>>,
}

impl Scripted {
    fn start(mut peer: RawPeer, answer: Answer) -> Scripted {
        let answer = Arc::new(Mutex::new(answer));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, f, s) = (answer.clone(), frames.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match peer.read_within(Duration::from_millis(50)) {
                    Received::Frame(frame) => {
                        if frame.method == "SEND" {
                            if let Answer::Status(code, comment) = *a.lock().unwrap() {
                                peer.answer_with(&frame, code, comment);
                            }
                        }
                        f.lock().unwrap().push(frame);
                    }
                    Received::Closed => break,
                    Received::Quiet => {}
                }
            }
            peer
        });
        Scripted {
            answer,
            frames,
            stop,
            thread: Some(thread),
        }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// The SENDs seen so far of the message with this Content-Type.
    fn sends_of(&self, content_type: &str) -> Vec<(String, String)> {
        self.frames
            .lock()
            .unwrap()
            .iter()
            .filter(|f| {
                f.method == "SEND" && f.headers.get("Content-Type").is_some_and(|t| t == content_type)
            })
            .map(|f| (f.headers["Message-ID"].clone(), f.headers["Byte-Range"].clone()))
            .collect()
    }

    fn wait_for_sends(&self, content_type: &str, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.sends_of(content_type).len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "fewer than {n} SENDs of {content_type}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn finish(mut self) -> RawPeer {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// A sparse file of `len` octets (zeros): a large transfer that costs no
/// disk.
fn sparse_file(path: &Path, len: u64) {
    File::create(path).unwrap().set_len(len).unwrap();
}

/// Sends `n` texts on `session_id`; returns their message numbers.
fn texts(ctl: &mut Client, session_id: &str, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            ctl.send_message(session_id, "text/plain", format!("text {i}").as_bytes())
                .unwrap()
        })
        .collect()
}

fn failed_with(outcome: &Outcome, status: u16) -> &str {
    match outcome {
        Err((Some(s), reason)) if *s == status => reason,
        other => panic!("expected a failure with {status}, got {other:?}"),
    }
}

/// RFC 4975 7.1.1: a peer that reads our chunks and never answers them.
/// The file's chunks fail after the transaction timeout with a local 408;
/// the texts queued behind its full window are not kept waiting for a
/// window that will not move: they fail at the same time, with the same
/// status, and none of them was written. Afterwards the session works again
/// as soon as the peer answers.
#[test]
fn a_peer_that_never_answers_fails_every_send_with_a_local_408() {
    let d = Daemon::start(
        "never-answers",
        &["--shards", "1", "--transaction-timeout", TXN_TIMEOUT],
    );
    let (mut ctl, mut events) = (d.client(), d.events());
    let peer = bound_session(&d, &mut ctl, &mut events, "quiet");
    let peer = Scripted::start(peer, Answer::Never);
    let file = d.dir.join("large.bin");
    sparse_file(&file, 8 << 20);
    let large = ctl
        .send_file("quiet", "application/octet-stream", &file, false)
        .unwrap();
    // The texts come once the file filled the session's window (1 MiB of
    // 64 KiB chunks): before, they would go between its chunks.
    peer.wait_for_sends("application/octet-stream", 16);
    let queued = texts(&mut ctl, "quiet", 3);
    let all: Vec<u64> = std::iter::once(large).chain(queued.iter().copied()).collect();
    let (out, _) = outcomes(&mut events, &all);

    let reason = failed_with(&out[&large], 408);
    assert!(
        reason.contains("no response within 2 s (RFC 4975 7.1.1)"),
        "{reason}"
    );
    for message in &queued {
        let reason = failed_with(&out[message], 408);
        assert!(reason.contains("queued behind a chunk"), "{reason}");
    }
    assert!(peer.sends_of("text/plain").is_empty(), "no text was written");
    let chunks = peer.sends_of("application/octet-stream");
    // The session's window (1 MiB of 64 KiB chunks), not the whole file.
    assert!(
        !chunks.is_empty() && chunks.len() <= 16,
        "{} chunks",
        chunks.len()
    );

    peer.set(Answer::Status(200, "OK"));
    let after = ctl.send_message("quiet", "text/plain", b"still there?").unwrap();
    let (out, _) = outcomes(&mut events, &[after]);
    assert_eq!(out[&after], Ok(()));
    let stats = &d.stats().shards[0];
    assert_eq!((stats.messages_failed, stats.messages_delivered), (4, 1));
    drop(peer.finish());
}

/// RFC 4975 10.4: a 408 from the peer is treated as a local timeout: every
/// message it answers so fails with 408 and the peer's comment, the file
/// stops being sent (its chunks in flight, not the rest), and no REPORT is
/// waited for (RFC 4975 5.3: the transaction status is the failure report
/// of a hop-by-hop chunk).
#[test]
fn a_peer_that_answers_every_chunk_408_fails_the_sends_with_408() {
    let d = Daemon::start("answers-408", &["--shards", "1"]);
    let (mut ctl, mut events) = (d.client(), d.events());
    let peer = bound_session(&d, &mut ctl, &mut events, "busy");
    let peer = Scripted::start(peer, Answer::Status(408, "Request Timeout downstream"));
    let file = d.dir.join("large.bin");
    sparse_file(&file, 16 << 20);
    let request = SendRequest {
        file: Some(file.display().to_string()),
        success_report: Some(true),
        ..SendRequest::new("busy", "application/octet-stream")
    };
    let large = ctl.send(request, &[]).unwrap();
    let queued = texts(&mut ctl, "busy", 3);
    let all: Vec<u64> = std::iter::once(large).chain(queued.iter().copied()).collect();
    let (out, others) = outcomes(&mut events, &all);
    for message in &all {
        let reason = failed_with(&out[message], 408);
        assert!(reason.contains("408 Request Timeout downstream"), "{reason}");
    }
    let chunks = peer.sends_of("application/octet-stream");
    assert!(
        chunks.len() < 256,
        "the whole file was sent: {} chunks",
        chunks.len()
    );
    assert!(
        !others
            .iter()
            .any(|e| matches!(e, EngineEvent::SessionClosed { .. })),
        "a 408 fails the message, not the session: {others:?}"
    );
    let stats = &d.stats().shards[0];
    assert_eq!((stats.messages_failed, stats.messages_delivered), (4, 0));
    drop(peer.finish());
}

/// RFC 4975 7.1.2: a REPORT whose Message-ID we never sent is silently
/// ignored, one for a session we do not have gets no response either (no
/// response to any REPORT), a SEND for it gets 481 (RFC 4975 7.3); none of
/// it touches the message in flight, whose own success REPORT delivers it.
#[test]
fn reports_for_unknown_messages_and_sessions_are_ignored() {
    let d = Daemon::start("stray-reports", &["--shards", "1"]);
    let (mut ctl, mut events) = (d.client(), d.events());
    let mut peer = bound_session(&d, &mut ctl, &mut events, "r");
    let request = SendRequest {
        success_report: Some(true),
        ..SendRequest::new("r", "text/plain")
    };
    let live = ctl.send(request, b"report me").unwrap();
    let send = peer.read_frame().expect("the engine's SEND");
    assert_eq!(send.body, b"report me");
    // Counted from here: this 200, then the four requests below (the 481
    // read at the end says the engine handled all of them).
    let before = d.stats().shards[0].clone();
    peer.answer(&send, 200);
    let ours = d.uri("r");
    let unknown_session = "msrp://127.0.0.1:9/nosuchsession;tcp".replace("127.0.0.1:9", &d.advertise);
    let strays = [
        report_frame("rep1x", &ours, PEER, "nosuchmessage", "1-9/9", "000 200 OK"),
        report_frame("rep2x", &ours, PEER, "nosuchmessage", "1-9/9", "000 500 Boom"),
        report_frame(
            "rep3x",
            &unknown_session,
            PEER,
            &send.headers["Message-ID"],
            "1-9/9",
            "000 500 Boom",
        ),
    ];
    for frame in &strays {
        peer.write(frame);
    }
    // Ordered on the stream: a response to any REPORT would come first.
    peer.write(&send_frame(
        "sid1",
        &unknown_session,
        PEER,
        "msg1",
        "text/plain",
        b"hello?",
    ));
    let first = peer.read_frame().expect("a response");
    assert_eq!(
        (first.tid.as_str(), first.status),
        ("sid1", Some(481)),
        "{first:?}"
    );

    let after = d.stats().shards[0].clone();
    assert_eq!(after.frames_in - before.frames_in, 5);
    assert_eq!(after.messages_failed, before.messages_failed);
    assert_eq!(after.responses_out.get("481").copied().unwrap_or(0), 1);
    let message_id = &send.headers["Message-ID"];
    peer.write(&report_frame(
        "rep4x",
        &ours,
        PEER,
        message_id,
        "1-9/9",
        "000 200 OK",
    ));
    let (out, others) = outcomes(&mut events, &[live]);
    assert_eq!(out[&live], Ok(()), "{others:?}");
    assert!(!others
        .iter()
        .any(|e| matches!(e, EngineEvent::SessionClosed { .. })));
}

/// RST in the middle of a chunk body (SO_LINGER 0): the message being
/// received is aborted with a reason and its spool file removed, the text
/// answered before it is the only message received, and the session ends
/// with the reason; the engine keeps serving a new connection.
#[test]
fn a_reset_mid_chunk_aborts_the_partial_message_and_ends_the_session() {
    let d = Daemon::start("rst-mid-chunk", &["--shards", "1"]);
    let (mut ctl, mut events) = (d.client(), d.events());
    let mut peer = bound_session(&d, &mut ctl, &mut events, "cut");
    peer.send("tid1", &d.uri("cut"), PEER, b"before the reset");
    assert_eq!(peer.response_to("tid1", &mut Vec::new()), 200);
    // One chunk of a 4 MiB message, cut after 200 KiB of its 1 MiB body:
    // over --inline-max, so it is spooled from its first octet.
    let total = 4 << 20;
    let head = format!(
        "MSRP tid2 SEND\r\nTo-Path: {}\r\nFrom-Path: {PEER}\r\nMessage-ID: big1\r\n\
         Byte-Range: 1-1048576/{total}\r\nContent-Type: application/octet-stream\r\n\r\n",
        d.uri("cut")
    );
    peer.write(head.as_bytes());
    peer.write(&pattern(1, 200 * 1024));
    // The spool file exists before the reset, so its removal is the engine's.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&d.spool).unwrap().count() == 0 {
        assert!(std::time::Instant::now() < deadline, "nothing was spooled");
        std::thread::sleep(Duration::from_millis(10));
    }
    peer.reset();

    let mut received = Vec::new();
    let mut aborted = None;
    collect_events(&mut events, Duration::from_secs(10), |event, payload| {
        match event {
            EngineEvent::MessageReceived { message_id, .. } => received.push((message_id, payload)),
            EngineEvent::MessageAborted {
                message_id, reason, ..
            } => aborted = Some((message_id, reason)),
            EngineEvent::SessionClosed { session_id, reason } if session_id == "cut" => {
                assert!(reason.contains("reset") || reason.contains("closed"), "{reason}");
                return true;
            }
            _ => {}
        }
        false
    });
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(&received[0].1[..], b"before the reset");
    let (message_id, reason) = aborted.expect("the partial message is aborted");
    assert_eq!(message_id, "big1");
    assert!(!reason.is_empty());
    d.wait_spool_empty();
    assert_eq!(d.stats().shards[0].messages_received, 1);

    let mut again = bound_session(&d, &mut ctl, &mut events, "next");
    again.send("tid3", &d.uri("next"), PEER, b"after");
    assert_eq!(again.response_to("tid3", &mut Vec::new()), 200);
}

/// shutdown(Write) after three texts: each is received and answered, also
/// where the 200 waits for the spool (`--durable`: every text is spooled
/// and fsynced first), and then the engine closes its side cleanly (FIN,
/// not RST) and the session ends saying the peer closed.
#[test]
fn a_half_close_is_answered_then_closed() {
    for durable in [false, true] {
        let flags: &[&str] = match durable {
            false => &["--shards", "1"],
            true => &["--shards", "1", "--durable"],
        };
        let d = Daemon::start("half-close", flags);
        let (mut ctl, mut events) = (d.client(), d.events());
        let mut peer = bound_session(&d, &mut ctl, &mut events, "h");
        for n in 1..=3 {
            peer.write(&send_frame(
                &format!("tid{n}"),
                &d.uri("h"),
                PEER,
                &format!("msg{n}"),
                "text/plain",
                format!("text {n}").as_bytes(),
            ));
        }
        peer.stream.shutdown(Shutdown::Write).unwrap();
        let mut statuses = Vec::new();
        loop {
            match peer.read_within(Duration::from_secs(10)) {
                Received::Frame(frame) => statuses.push((frame.tid, frame.status)),
                Received::Closed => break,
                Received::Quiet => {
                    panic!("durable {durable}: the engine neither answered nor closed: {statuses:?}")
                }
            }
        }
        // The spool's commits may end out of order, and their 200s with them.
        statuses.sort();
        let ok: Vec<_> = (1..=3).map(|n| (format!("tid{n}"), Some(200))).collect();
        assert_eq!(statuses, ok, "durable {durable}");
        // A spooled message is announced once its file is in place, which
        // may be after the session closed.
        let (mut received, mut closed) = (Vec::new(), false);
        collect_events(&mut events, Duration::from_secs(10), |event, _| {
            match event {
                EngineEvent::MessageReceived { message_id, .. } => received.push(message_id),
                EngineEvent::SessionClosed { reason, .. } => {
                    assert_eq!(reason, "the peer closed the connection", "durable {durable}");
                    closed = true;
                }
                _ => {}
            }
            closed && received.len() == 3
        });
        received.sort();
        assert_eq!(received, ["msg1", "msg2", "msg3"], "durable {durable}");
    }
}

/// A peer that stops reading (its receive window closes) while we send it a
/// large file and texts: the engine's memory stays bounded by the session's
/// window (the file is read chunk by chunk, not queued whole), and a
/// session of another connection keeps flowing meanwhile.
#[test]
fn a_peer_that_stops_reading_costs_bounded_memory_and_others_keep_flowing() {
    let d = Daemon::start("zero-window", &["--shards", "1"]);
    let (mut ctl, mut events) = (d.client(), d.events());
    let stalled = bound_session(&d, &mut ctl, &mut events, "stalled");
    let live = bound_session(&d, &mut ctl, &mut events, "live");
    let live = Scripted::start(live, Answer::Status(200, "OK"));
    let rss_before = rss_kib(d.pid());
    let file = d.dir.join("huge.bin");
    sparse_file(&file, 1 << 30);
    ctl.send_file("stalled", "application/octet-stream", &file, false)
        .unwrap();
    texts(&mut ctl, "stalled", 3);

    // The other connection's session: 200 texts, each delivered.
    let flowing = texts(&mut ctl, "live", 200);
    let (out, _) = outcomes(&mut events, &flowing);
    assert!(out.values().all(|o| *o == Ok(())), "{out:?}");
    let stats = d.stats().shards[0].clone();
    assert!(stats.bytes_out < 64 << 20, "{} octets went out", stats.bytes_out);
    let rss_during = rss_kib(d.pid());
    assert!(
        rss_during < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_during} KiB for a peer that reads nothing"
    );
    drop(stalled);
    drop(live.finish());
}

/// The same stalled peer, with its sends' outcomes: the chunks written to
/// a connection whose peer stopped reading get no response, so the file and
/// the texts queued behind it fail with a local 408 after the transaction
/// timeout (RFC 4975 7.1.1: the timer runs from when the request was
/// "submitted to the operating system for sending"). The window is larger
/// than the kernel's socket buffers, so the engine's write blocks: the
/// shard's writer runs the connection's timers while it waits.
#[test]
fn a_peer_that_stops_reading_gets_its_sends_failed_after_the_transaction_timeout() {
    let d = Daemon::start(
        "zero-window-timeout",
        &[
            "--shards",
            "1",
            "--transaction-timeout",
            TXN_TIMEOUT,
            "--session-inflight-max",
            "256MiB",
        ],
    );
    let (mut ctl, mut events) = (d.client(), d.events());
    let stalled = bound_session(&d, &mut ctl, &mut events, "stalled");
    let file = d.dir.join("huge.bin");
    sparse_file(&file, 1 << 30);
    let large = ctl
        .send_file("stalled", "application/octet-stream", &file, false)
        .unwrap();
    let queued = texts(&mut ctl, "stalled", 3);
    let all: Vec<u64> = std::iter::once(large).chain(queued.iter().copied()).collect();
    let (out, _) = outcomes(&mut events, &all);
    for message in &all {
        failed_with(&out[message], 408);
    }
    drop(stalled);
}
