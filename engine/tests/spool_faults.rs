//! A full spool disk (issue 16, section 3): `msrpd serve` spooling onto a
//! 2 MiB tmpfs the test mounts (CI runs as root; elsewhere the test fails
//! saying why, it never passes without the disk filling up). An incoming
//! message larger than the space left gets 413 for the chunk that did not
//! fit (RFC 4975 10.5: "the receiver wishes the sender to stop sending the
//! particular message"; the spool's error is the receiver's limit, not a
//! protocol error, so not a 500-class one), the application hears
//! `message_aborted`, what was acknowledged before stays on disk, other
//! sessions keep being served, and the space comes back.
//!
//! EIO (a device-mapper `error` target, dm-flakey on a loop device) is not
//! tested: it needs the kernel's device-mapper, which the container does
//! not have (`dmsetup version`: "Failure to communicate with kernel
//! device-mapper driver").

mod daemon;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use daemon::{chunk_frame, collect_events, passive, pattern, Daemon, RawPeer};
use msrp_engine::control::{Client, EngineEvent};

const PEER: &str = "msrp://127.0.0.1:9/peer;tcp";

/// A tmpfs of `size` mounted on a directory, unmounted on drop (after the
/// engine using it, declared before it, is gone).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(on: &Path, size: &str) -> Tmpfs {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(on)
            .output()
            .unwrap_or_else(|e| panic!("this test needs mount(8) and root (CI runs as root): {e}"));
        assert!(
            output.status.success(),
            "this test needs to mount a tmpfs (as root; CI runs as root): uid {}, mount said: {}",
            unsafe { libc::getuid() },
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs(on.to_path_buf())
    }

    /// Octets free on the file system.
    fn free_bytes(&self) -> u64 {
        let path = std::ffi::CString::new(self.0.to_str().unwrap()).unwrap();
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
        stat.f_bavail as u64 * stat.f_frsize as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Sends `body` as message `message_id` in chunks of `chunk` octets, each
/// answered before the next; returns the statuses, stopping at the first
/// that is not 200 (RFC 4975 10.5: a 413 asks us to stop the message).
fn send_chunked(peer: &mut RawPeer, to: &str, message_id: &str, body: &[u8], chunk: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for (n, piece) in body.chunks(chunk).enumerate() {
        let start = n * chunk + 1;
        let last = start + piece.len() - 1 == body.len();
        let tid = format!("{message_id}c{n}");
        let flag = if last { '$' } else { '+' };
        peer.write(&chunk_frame(
            &tid,
            to,
            PEER,
            message_id,
            (start, body.len()),
            piece,
            flag,
        ));
        let status = peer.response_to(&tid, &mut Vec::new());
        statuses.push(status);
        if status != 200 {
            break;
        }
    }
    statuses
}

/// The spool file of the next `message_received` of `session`.
fn received_path(events: &mut Client, session: &str) -> String {
    let mut path = None;
    collect_events(events, Duration::from_secs(10), |event, _| {
        if let EngineEvent::MessageReceived {
            session_id,
            path: Some(p),
            ..
        } = event
        {
            if session_id == session {
                path = Some(p);
            }
        }
        path.is_some()
    });
    path.unwrap()
}

#[test]
fn a_full_spool_refuses_the_message_with_413_and_keeps_what_it_acknowledged() {
    let mut tmpfs = None;
    let d = Daemon::start_with_spool(
        "spool-full",
        &["--shards", "1", "--inline-max", "16KiB"],
        |spool| {
            tmpfs = Some(Tmpfs::mount(spool, "2m"));
        },
    );
    let tmpfs = tmpfs.unwrap();
    let (mut ctl, mut events) = (d.client(), d.events());
    ctl.create_session(passive("fill", PEER)).unwrap();
    ctl.create_session(passive("other", PEER)).unwrap();
    let mut peer = RawPeer::connect(d.msrp);
    let mut other = RawPeer::connect(d.msrp);
    let (fill, to_other) = (d.uri("fill"), d.uri("other"));

    // 512 KiB that fits: acknowledged, received, on disk.
    let first = pattern(1, 512 * 1024);
    assert!(send_chunked(&mut peer, &fill, "first1", &first, 64 * 1024)
        .iter()
        .all(|&s| s == 200));
    let first_path = received_path(&mut events, "fill");
    let free_before = tmpfs.free_bytes();

    // 4 MiB that cannot: chunks are acknowledged while they fit, then 413.
    let big = pattern(2, 4 << 20);
    let statuses = send_chunked(&mut peer, &fill, "big1", &big, 64 * 1024);
    assert_eq!(statuses.last(), Some(&413), "{statuses:?}");
    assert!(statuses.len() > 1 && statuses[..statuses.len() - 1].iter().all(|&s| s == 200));
    let mut aborted = None;
    collect_events(&mut events, Duration::from_secs(10), |event, _| {
        if let EngineEvent::MessageAborted {
            message_id, reason, ..
        } = event
        {
            aborted = Some((message_id, reason));
        }
        aborted.is_some()
    });
    let (message_id, reason) = aborted.unwrap();
    assert_eq!(message_id, "big1");
    assert!(!reason.is_empty());
    let stats = d.stats().shards[0].clone();
    assert!(
        stats.spool_enospc >= 1 && stats.spool_errors >= stats.spool_enospc,
        "{stats:?}"
    );
    assert_eq!(stats.responses_out.get("413").copied(), Some(1), "{stats:?}");

    // What was acknowledged before is intact; the partial file is gone
    // and its space with it.
    assert_eq!(std::fs::read(&first_path).unwrap(), first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tmpfs.free_bytes() < free_before {
        assert!(
            std::time::Instant::now() < deadline,
            "the partial file's space was not freed: {} < {free_before}",
            tmpfs.free_bytes()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<_> = std::fs::read_dir(&d.spool)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(left, [PathBuf::from(&first_path)], "only the received file stays");

    // Other sessions, and this one, are served: an inline text, and a
    // spooled message that fits the space freed.
    other.send("tidtext1", &to_other, PEER, b"still serving");
    assert_eq!(other.response_to("tidtext1", &mut Vec::new()), 200);
    collect_events(&mut events, Duration::from_secs(10), |event, payload| {
        matches!(event, EngineEvent::MessageReceived { .. }) && &payload[..] == b"still serving"
    });
    let again = pattern(3, 512 * 1024);
    assert!(send_chunked(&mut peer, &fill, "again1", &again, 64 * 1024)
        .iter()
        .all(|&s| s == 200));
    let again_path = received_path(&mut events, "fill");
    assert_eq!(std::fs::read(&again_path).unwrap(), again);
    drop(d);
    drop(tmpfs);
}
