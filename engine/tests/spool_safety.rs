//! What the spool promises (issue 10): `--durable` means every octet the
//! engine acknowledged is on disk when it is killed; no two messages share a
//! file; a crash's partial files are found at the next start; a message no
//! application hears of is counted, or refused. Through real sockets, real
//! files and `kill -9`.

mod daemon;

use std::path::{Path, PathBuf};
use std::time::Duration;

use daemon::{collect_events, passive, pattern, send_frame, Daemon, RawPeer};
use msrp_engine::control::{EngineEvent, SessionDescriptor};

const PEER: &str = "msrp://127.0.0.1:9/peer;tcp";

/// One chunk of a message: octets `start..start+body.len()` of `total`.
fn chunk(
    tid: &str,
    to: &str,
    message_id: &str,
    start: usize,
    total: usize,
    body: &[u8],
    flag: char,
) -> Vec<u8> {
    let end = start + body.len() - 1;
    let mut frame = format!(
        "MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {PEER}\r\nMessage-ID: {message_id}\r\n\
         Byte-Range: {start}-{end}/{total}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    frame.extend_from_slice(body);
    frame.extend_from_slice(format!("\r\n-------{tid}{flag}\r\n").as_bytes());
    frame
}

/// Every file under `dir` (recursively) with its contents.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// Each file's path and size, for a failure message.
fn sizes(files: &[(PathBuf, Vec<u8>)]) -> Vec<(&Path, usize)> {
    files.iter().map(|(p, b)| (p.as_path(), b.len())).collect()
}

/// `--durable`: a text of a few octets and the first chunk of a large
/// message are both on disk once their 200 came, so `kill -9` right after
/// loses neither; the next start finds the partial file and keeps it under
/// `recovered/`, named for its session and Message-ID, and counts it.
#[test]
fn durable_acknowledged_octets_survive_kill_9_and_are_recovered() {
    let a = Daemon::start("durable", &["--shards", "1", "--durable"]);
    a.client().create_session(passive("d", PEER)).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    peer.write(&send_frame(
        "tid1",
        &a.uri("d"),
        PEER,
        "text1",
        "text/plain",
        b"help at 5th and main",
    ));
    assert_eq!(peer.response_to("tid1", &mut Vec::new()), 200);
    let first = pattern(7, 100 * 1024);
    peer.write(&chunk("tid2", &a.uri("d"), "big1", 1, 1 << 20, &first, '+'));
    assert_eq!(peer.response_to("tid2", &mut Vec::new()), 200);

    let mut a = a;
    a.kill();
    let on_disk = files(&a.spool);
    assert!(
        on_disk.iter().any(|(_, bytes)| bytes == b"help at 5th and main"),
        "the acknowledged text is on disk: {:?}",
        sizes(&on_disk)
    );
    assert!(
        on_disk
            .iter()
            .any(|(p, bytes)| bytes[..] == first[..] && p.to_string_lossy().ends_with(".part")),
        "the acknowledged chunk is in a partial file"
    );

    let b = a.restart(&["--shards", "1", "--durable"]);
    let spool_top: Vec<_> = std::fs::read_dir(&b.spool)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(!spool_top.iter().any(|n| n.ends_with(".part")), "{spool_top:?}");
    let recovered = files(&b.spool.join("recovered"));
    assert!(
        recovered.iter().any(|(p, bytes)| {
            let name = p.file_name().unwrap().to_string_lossy();
            bytes[..] == first[..] && name.starts_with('d') && name.contains("big1")
        }),
        "{:?}",
        recovered.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    assert!(b.stats().partial_files_recovered >= 1);
    assert!(b.log().contains("partial spool file"), "{}", b.log());
}

/// A message whose declared total is over `--inline-max` goes to the spool
/// from its first chunk, not after 256 KiB of it waited in memory; and
/// `--partial-files remove` deletes what a crash left, and still counts it.
#[test]
fn large_messages_spool_from_the_first_chunk_and_partial_files_can_be_removed() {
    let a = Daemon::start("partial-remove", &["--shards", "1"]);
    a.client().create_session(passive("r", PEER)).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    let first = pattern(3, 100 * 1024);
    peer.write(&chunk("tid1", &a.uri("r"), "big2", 1, 1 << 20, &first, '+'));
    assert_eq!(peer.response_to("tid1", &mut Vec::new()), 200);
    let mut a = a;
    // Without --durable the 200 waits for the write, not the fsync: the
    // octets are in the file (the page cache survives a killed process).
    a.kill();
    let on_disk = files(&a.spool);
    assert!(
        on_disk
            .iter()
            .any(|(p, bytes)| p.to_string_lossy().ends_with(".part") && bytes[..] == first[..]),
        "{:?}",
        sizes(&on_disk)
    );
    let b = a.restart(&["--shards", "1", "--partial-files", "remove"]);
    assert!(files(&b.spool).is_empty(), "{:?}", files(&b.spool));
    assert_eq!(b.stats().partial_files_recovered, 1);
}

/// Session-ids may hold `-` and `/`, Message-IDs `-`: two messages whose
/// parts join to the same text once shared one file.
#[test]
fn two_sessions_never_write_the_same_spool_file() {
    let a = Daemon::start("spool-names", &["--shards", "1", "--inline-max", "1KiB"]);
    let mut events = a.events();
    let mut ctl = a.client();
    let cases = [
        ("v-w", "m1234567"),
        ("v", "w-m1234567"),
        ("a/b", "msg12345"),
        ("a_b", "msg12345"),
    ];
    for (session_id, _) in cases {
        ctl.create_session(SessionDescriptor {
            local_uri: Some(format!("msrp://{}/{session_id};tcp", a.advertise)),
            ..passive(session_id, PEER)
        })
        .unwrap();
    }
    let mut peer = RawPeer::connect(a.msrp);
    for (n, (session_id, message_id)) in cases.iter().enumerate() {
        let body = pattern(n as u64, 8 * 1024);
        let to = format!("msrp://{}/{session_id};tcp", a.advertise);
        let tid = format!("tid{n}");
        peer.write(&send_frame(
            &tid,
            &to,
            PEER,
            message_id,
            "application/octet-stream",
            &body,
        ));
        assert_eq!(peer.response_to(&tid, &mut Vec::new()), 200);
    }
    let mut received = Vec::new();
    collect_events(&mut events, Duration::from_secs(10), |event, _| {
        if let EngineEvent::MessageReceived {
            session_id,
            path: Some(path),
            ..
        } = event
        {
            received.push((session_id, path));
        }
        received.len() == cases.len()
    });
    for (n, (session_id, _)) in cases.iter().enumerate() {
        let (_, path) = received.iter().find(|(s, _)| s == session_id).unwrap();
        assert_eq!(
            std::fs::read(path).unwrap(),
            pattern(n as u64, 8 * 1024),
            "{session_id}: {path}"
        );
    }
    let mut paths: Vec<_> = received.iter().map(|(_, p)| p.clone()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), cases.len(), "{received:?}");
}

/// With no application subscribed, a received text is counted (and logged)
/// instead of vanishing; `--unclaimed refuse` answers 403 until one
/// subscribes.
#[test]
fn messages_nobody_hears_of_are_counted_or_refused() {
    let a = Daemon::start("unclaimed", &["--shards", "1"]);
    a.client().create_session(passive("u", PEER)).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    peer.send("tid1", &a.uri("u"), PEER, b"anyone?");
    assert_eq!(peer.response_to("tid1", &mut Vec::new()), 200);
    assert_eq!(a.stats().shards[0].messages_unclaimed, 1);
    assert!(a.log().contains("messages_unclaimed"), "{}", a.log());

    let b = Daemon::start("unclaimed-refuse", &["--shards", "1", "--unclaimed", "refuse"]);
    b.client().create_session(passive("u", PEER)).unwrap();
    let mut peer = RawPeer::connect(b.msrp);
    peer.send("tid1", &b.uri("u"), PEER, b"anyone?");
    assert_eq!(peer.response_to("tid1", &mut Vec::new()), 403);
    let mut events = b.events();
    peer.send("tid2", &b.uri("u"), PEER, b"now?");
    assert_eq!(peer.response_to("tid2", &mut Vec::new()), 200);
    collect_events(&mut events, Duration::from_secs(10), |event, payload| {
        matches!(event, EngineEvent::MessageReceived { .. }) && &payload[..] == b"now?"
    });
    assert_eq!(b.stats().shards[0].messages_unclaimed, 0);
}

/// `--durable` mid-transfer: eight chunks of a 1 MiB message answered 200,
/// a ninth half written, then `kill -9`. The partial file holds every
/// acknowledged octet in order (what came of the ninth may follow, never
/// replace them); the next start recovers it under `recovered/`.
#[test]
fn durable_kill_9_mid_transfer_keeps_every_acknowledged_chunk() {
    let a = Daemon::start("durable-mid", &["--shards", "1", "--durable"]);
    a.client().create_session(passive("m", PEER)).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    let total = 1 << 20;
    let body = pattern(11, total);
    let piece = 64 * 1024;
    for n in 0..8 {
        let tid = format!("tidm{n}");
        let chunk = &body[n * piece..(n + 1) * piece];
        peer.write(&self::chunk(
            &tid,
            &a.uri("m"),
            "mid1",
            n * piece + 1,
            total,
            chunk,
            '+',
        ));
        assert_eq!(peer.response_to(&tid, &mut Vec::new()), 200);
    }
    let acked = 8 * piece;
    let ninth = self::chunk(
        "tidm8",
        &a.uri("m"),
        "mid1",
        acked + 1,
        total,
        &body[acked..acked + piece],
        '+',
    );
    peer.write(&ninth[..ninth.len() / 2]);

    let mut a = a;
    a.kill();
    let on_disk = files(&a.spool);
    let part = on_disk
        .iter()
        .find(|(p, _)| p.to_string_lossy().ends_with(".part"))
        .unwrap_or_else(|| panic!("no partial file: {:?}", sizes(&on_disk)));
    assert!(
        part.1.len() >= acked,
        "{} < {acked} acknowledged octets",
        part.1.len()
    );
    assert_eq!(
        part.1[..acked],
        body[..acked],
        "the acknowledged octets, in order"
    );
    assert_eq!(part.1[..], body[..part.1.len()]);

    let b = a.restart(&["--shards", "1", "--durable"]);
    let recovered = files(&b.spool.join("recovered"));
    assert!(
        recovered
            .iter()
            .any(|(p, bytes)| p.to_string_lossy().contains("mid1") && bytes[..acked] == body[..acked]),
        "{:?}",
        sizes(&recovered)
    );
    assert_eq!(b.stats().partial_files_recovered, 1);
}
