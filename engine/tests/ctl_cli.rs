//! `msrpd ctl` against a running engine that talks MSRP to itself (or to a
//! peer written by hand, to see what goes on the wire).

mod daemon;

use std::io::{BufRead, BufReader};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use daemon::{send_frame, Daemon, RawFrame, RawPeer};

/// `msrpd ctl` with no socket given by flag or environment.
fn bare_ctl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_msrpd"));
    command.arg("ctl").env_remove("MSRPD_CONTROL");
    command
}

fn ctl_command(a: &Daemon, args: &[&str]) -> Command {
    let mut command = bare_ctl();
    command.arg("--control").arg(&a.control).args(args);
    command
}

fn ctl(a: &Daemon, args: &[&str]) -> Output {
    ctl_command(a, args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "msrpd ctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The refusal of a command that must fail with exit status 2.
fn refusal(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `msrpd ctl watch ARGS`, its lines parsed as they come; after `lines_max`
/// lines the reader goes away (closes its end of the pipe).
fn watch(a: &Daemon, args: &[&str], lines_max: usize) -> (Child, Receiver<serde_json::Value>) {
    let mut child = ctl_command(a, &[&["watch"], args].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().take(lines_max) {
            let Ok(line) = line else { return };
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                return;
            }
        }
    });
    (child, lines)
}

/// Calls `probe` until the watcher prints (it subscribes on its own time);
/// returns how many probes that took.
fn until_watching(lines: &Receiver<serde_json::Value>, mut probe: impl FnMut()) -> u64 {
    for probes in 1..=100 {
        probe();
        if lines.recv_timeout(Duration::from_millis(100)).is_ok() {
            return probes;
        }
    }
    panic!("msrpd ctl watch printed nothing");
}

/// A passive session `passive_id` and an active one `active_id` on one
/// engine, whose paths name each other.
fn self_talk(a: &Daemon, passive_id: &str, active_id: &str) {
    let created = stdout(&ctl(
        a,
        &[
            "create",
            "--passive",
            "--session-id",
            passive_id,
            "--remote-path",
            &a.uri(active_id),
        ],
    ));
    assert_eq!(
        created.trim(),
        format!("session_id={passive_id} local_uri={}", a.uri(passive_id))
    );
    let created = stdout(&ctl(
        a,
        &[
            "create",
            "--remote-path",
            &a.uri(passive_id),
            "--session-id",
            active_id,
        ],
    ));
    assert!(
        created.starts_with(&format!("session_id={active_id} ")),
        "{created}"
    );
}

#[test]
fn create_send_watch_stats_and_close() {
    let a = Daemon::start("ctl", &["--shards", "2"]);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&a.control).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "only the engine's user may drive it");
    self_talk(&a, "ca", "cb");
    let (mut watch, lines) = watch(&a, &["--session", "ca"], usize::MAX);
    let probes = until_watching(&lines, || {
        stdout(&ctl(&a, &["send", "cb", "probe"]));
    });
    let sent = stdout(&ctl(&a, &["send", "cb", "hello over ctl", "--wait"]));
    assert!(sent.trim_end().ends_with("delivered"), "{sent}");
    let file = a.dir.join("note.txt");
    std::fs::write(&file, vec![b'z'; 300 << 10]).unwrap();
    let file_arg = file.display().to_string();
    let sent = stdout(&ctl(
        &a,
        &["send", "cb", "--file", &file_arg, "--delete-after", "--wait"],
    ));
    assert!(sent.trim_end().ends_with("delivered"), "{sent}");
    assert!(!file.exists(), "--delete-after removed the file once delivered");

    let mut saw_text = false;
    let mut spooled = None;
    while spooled.is_none() {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("watch prints every event");
        assert_eq!(line["session_id"], "ca", "--session filters: {line}");
        if line["event"] == "message_received" {
            match line["path"].as_str() {
                Some(path) => spooled = Some(path.to_string()),
                None => saw_text |= line["body"] == "hello over ctl",
            }
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(saw_text, "watch printed the text with its body");
    assert_eq!(std::fs::read(spooled.unwrap()).unwrap(), vec![b'z'; 300 << 10]);

    let table = stdout(&ctl(&a, &["stats"]));
    assert!(table.contains("shard") && table.contains("delivered"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&ctl(&a, &["stats", "--json"]))).unwrap();
    // The probes, the text and the file.
    let delivered: u64 = json["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["messages_delivered"].as_u64().unwrap())
        .sum();
    assert_eq!(delivered, probes + 2);

    stdout(&ctl(&a, &["close", "cb", "--reason", "done"]));
    let refused = refusal(&ctl(&a, &["send", "cb", "again"]));
    assert!(refused.contains("no session cb"), "{refused}");
}

/// A pipe whose reader is already gone: the first write to it fails with
/// EPIPE (Rust ignores SIGPIPE).
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // CLOEXEC: a process another test spawns meanwhile must not inherit the
    // read end and keep the pipe open.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

fn assert_quiet_end(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(
        output.status.success(),
        "{what} must end quietly when its reader is gone: {:?} {stderr}",
        output.status
    );
}

/// `msrpd ctl stats --json | head -c 10`: a reader that goes away is not
/// an error, and never a panic (exit status 101).
#[test]
fn commands_end_quietly_when_stdout_is_closed() {
    let a = Daemon::start("ctl-pipe", &["--shards", "1"]);
    self_talk(&a, "pa", "pb");
    let other = a.uri("pd");
    let commands: [&[&str]; 5] = [
        &["stats"],
        &["stats", "--json"],
        &[
            "create",
            "--passive",
            "--session-id",
            "pc",
            "--remote-path",
            &other,
        ],
        &["send", "pb", "nobody reads this"],
        // Still waits for the outcome, so the exit status tells it.
        &["send", "pb", "nobody reads this either", "--wait"],
    ];
    for args in commands {
        let output = ctl_command(&a, args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_quiet_end(&output, &args.join(" "));
    }
    assert_eq!(a.stats().sessions_pending, 1, "create did its work");
    // A refusal with standard error gone too: still exit status 2.
    let refused = ctl_command(&a, &["send", "nosuch", "x"])
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .status()
        .unwrap();
    assert_eq!(refused.code(), Some(2));
}

/// `msrpd ctl watch | head -1`: the first event printed after the reader
/// went away ends the watcher quietly.
#[test]
fn watch_ends_quietly_when_its_reader_goes_away() {
    let a = Daemon::start("ctl-watch-pipe", &["--shards", "1"]);
    self_talk(&a, "wa", "wb");
    let (mut watch, lines) = watch(&a, &[], 1);
    until_watching(&lines, || {
        stdout(&ctl(&a, &["send", "wb", "probe"]));
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while watch.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "watch went on writing to nobody");
        stdout(&ctl(&a, &["send", "wb", "probe"]));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_quiet_end(&watch.wait_with_output().unwrap(), "watch");
}

/// `--control`, else `$MSRPD_CONTROL`, else `msrpd serve`'s default; a
/// socket where nothing answers is named with where it came from.
#[test]
fn the_control_socket_comes_from_msrpd_control_when_not_given() {
    let a = Daemon::start("ctl-env", &["--shards", "1"]);
    let nowhere = a.dir.join("nothing-here.sock");
    let runtime = a.dir.join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();

    let json = stdout(
        &bare_ctl()
            .env("MSRPD_CONTROL", &a.control)
            .args(["stats", "--json"])
            .output()
            .unwrap(),
    );
    assert!(json.contains(&a.msrp.to_string()), "{json}");
    let flag_wins = bare_ctl()
        .env("MSRPD_CONTROL", &nowhere)
        .arg("stats")
        .arg("--control")
        .arg(&a.control)
        .output()
        .unwrap();
    assert!(stdout(&flag_wins).contains("listen:"));

    let from_env = refusal(
        &bare_ctl()
            .env("MSRPD_CONTROL", &nowhere)
            .env("XDG_RUNTIME_DIR", &runtime)
            .arg("stats")
            .output()
            .unwrap(),
    );
    assert!(
        from_env.contains(&format!("{} ($MSRPD_CONTROL)", nowhere.display())),
        "{from_env}"
    );
    // Unset or empty: the default.
    for value in [None, Some("")] {
        let mut command = bare_ctl();
        if let Some(value) = value {
            command.env("MSRPD_CONTROL", value);
        }
        let default = refusal(
            &command
                .env("XDG_RUNTIME_DIR", &runtime)
                .arg("stats")
                .output()
                .unwrap(),
        );
        let expected = format!("{} (the default)", runtime.join("msrpd.sock").display());
        assert!(default.contains(&expected), "{value:?}: {default}");
    }
}

/// The peer of the hand-written tests: the From-Path it sends with.
const PEER: &str = "msrp://127.0.0.1:9/peer;tcp";

/// RFC 4975 5.4: a bodiless SEND binds the connection to the session (a
/// transaction id has 4 to 32 characters).
fn bind(peer: &mut RawPeer, tid: &str, to: &str, from: &str) {
    let frame = format!(
        "MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {from}\r\nMessage-ID: m{tid}\r\n\
         Byte-Range: 1-0/0\r\n-------{tid}$\r\n"
    );
    peer.write(frame.as_bytes());
    assert_eq!(peer.response_to(tid, &mut Vec::new()), 200, "the binding SEND");
}

/// The engine's next SEND on the connection.
fn next_send(peer: &mut RawPeer) -> RawFrame {
    loop {
        let frame = peer.read_frame().expect("the engine closed the connection");
        if frame.method == "SEND" {
            return frame;
        }
    }
}

/// A success REPORT (RFC 4975 7.1.2) covering `total` octets of a message.
fn success_report(peer: &mut RawPeer, send: &RawFrame, total: usize) {
    let frame = format!(
        "MSRP report1 REPORT\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: {}\r\n\
         Byte-Range: 1-{total}/{total}\r\nStatus: 000 200 OK\r\n-------report1$\r\n",
        send.headers["From-Path"], send.headers["To-Path"], send.headers["Message-ID"]
    );
    peer.write(frame.as_bytes());
}

/// `msrpd ctl ARGS` started, for a `send --wait` the peer must answer first.
fn spawn_ctl(a: &Daemon, args: &[&str]) -> Child {
    ctl_command(a, args).stdout(Stdio::piped()).spawn().unwrap()
}

/// Waits for a `send --wait` and returns what it printed.
fn waited(send: Child) -> String {
    stdout(&send.wait_with_output().unwrap())
}

fn header<'f>(frame: &'f RawFrame, name: &str) -> Option<&'f str> {
    frame.headers.get(name).map(String::as_str)
}

/// Every field of the session descriptor and of a send that `ctl create`
/// and `ctl send` offer, as the peer sees it on the wire.
#[test]
fn create_and_send_carry_the_descriptor_and_report_flags() {
    let a = Daemon::start("ctl-flags", &["--shards", "1", "--transaction-timeout", "1s"]);
    // Behind NAT: our URI is not one --advertise would make.
    let local = "msrp://192.0.2.1:2855/f1;tcp";
    let created = stdout(&ctl(
        &a,
        &[
            "create",
            "--passive",
            "--session-id",
            "f1",
            "--local-uri",
            local,
            "--remote-path",
            PEER,
            "--direction",
            "sendonly",
            "--chunk-size",
            "2KiB",
            "--success-report",
            "yes",
            "--failure-report",
            "partial",
            "--remote-accept-type",
            "text/plain",
            "--remote-accept-type",
            "application/octet-stream",
            "--remote-max-size",
            "6000",
        ],
    ));
    assert_eq!(created.trim(), format!("session_id=f1 local_uri={local}"));
    let mut peer = RawPeer::connect(a.msrp);
    bind(&mut peer, "bind1", local, PEER);
    // sendonly (RFC 4975 8.9): the peer's content SEND is refused.
    peer.write(&send_frame("send1", local, PEER, "msend1", "text/plain", b"hi"));
    assert_eq!(peer.response_to("send1", &mut Vec::new()), 403);

    // A binary inline body, in chunks of 2 KiB, with the session's reports:
    // under `partial` the peer answers nothing and the message is delivered
    // once the transactions passed quietly and the success REPORT came.
    let body: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
    let body_file = a.dir.join("body.bin");
    std::fs::write(&body_file, &body).unwrap();
    let body_arg = body_file.display().to_string();
    let send = spawn_ctl(
        &a,
        &[
            "send",
            "f1",
            "--body-file",
            &body_arg,
            "--content-type",
            "application/octet-stream",
            "--wait",
        ],
    );
    let mut got = Vec::new();
    let mut chunks = Vec::new();
    let mut last = None;
    while got.len() < body.len() {
        let frame = next_send(&mut peer);
        assert_eq!(header(&frame, "Success-Report"), Some("yes"));
        assert_eq!(header(&frame, "Failure-Report"), Some("partial"));
        chunks.push(frame.body.len());
        got.extend_from_slice(&frame.body);
        last = Some(frame);
    }
    assert_eq!(got, body, "the body went as it is");
    assert_eq!(chunks, [2048, 2048, 904]);
    success_report(&mut peer, &last.unwrap(), body.len());
    assert!(waited(send).ends_with("delivered\n"));

    // The message's own flags over the session's: `yes` and `no` are the
    // defaults, left off the wire.
    let send = spawn_ctl(
        &a,
        &[
            "send",
            "f1",
            "answered",
            "--success-report",
            "no",
            "--failure-report",
            "yes",
            "--wait",
        ],
    );
    let frame = next_send(&mut peer);
    assert_eq!(frame.body, b"answered");
    assert_eq!(header(&frame, "Success-Report"), None);
    assert_eq!(header(&frame, "Failure-Report"), None);
    peer.answer(&frame, 200);
    assert!(waited(send).ends_with("delivered\n"));
    // Failure-Report: no: delivered with nothing from the peer at all.
    let sent = stdout(&ctl(
        &a,
        &[
            "send",
            "f1",
            "unanswered",
            "--success-report",
            "no",
            "--failure-report",
            "no",
            "--wait",
        ],
    ));
    assert!(sent.ends_with("delivered\n"), "{sent}");
    let frame = next_send(&mut peer);
    assert_eq!(header(&frame, "Failure-Report"), Some("no"));

    // The peer's accept-types and max-size refuse before anything is sent.
    let png = refusal(&ctl(&a, &["send", "f1", "x", "--content-type", "image/png"]));
    assert!(png.contains("the peer does not accept image/png"), "{png}");
    std::fs::write(&body_file, vec![0; 6001]).unwrap();
    let large = refusal(&ctl(&a, &["send", "f1", "--body-file", &body_arg]));
    assert!(large.contains("over the peer's max-size of 6000"), "{large}");
    // An inline body is one control frame: a larger one goes with --file.
    std::fs::File::create(&body_file)
        .unwrap()
        .set_len(64 << 20 | 1)
        .unwrap();
    let huge = refusal(&ctl(&a, &["send", "f1", "--body-file", &body_arg]));
    assert!(huge.contains("send it with --file"), "{huge}");
}

/// `ctl watch --bodies` prints any body, text or not, as base64.
#[test]
fn watch_prints_bodies_as_base64_when_asked() {
    let a = Daemon::start("ctl-bodies", &["--shards", "1"]);
    stdout(&ctl(
        &a,
        &["create", "--passive", "--session-id", "w1", "--remote-path", PEER],
    ));
    let mut peer = RawPeer::connect(a.msrp);
    bind(&mut peer, "bind1", &a.uri("w1"), PEER);
    let (mut watch, lines) = watch(&a, &["--session", "w1", "--bodies"], usize::MAX);
    let mut tid = 0;
    let mut send = |body: &[u8]| {
        tid += 1;
        let tid = format!("probe{tid}");
        peer.write(&send_frame(
            &tid,
            &a.uri("w1"),
            PEER,
            &format!("m{tid}"),
            "text/plain",
            body,
        ));
        assert_eq!(peer.response_to(&tid, &mut Vec::new()), 200);
    };
    until_watching(&lines, || send(b"probe"));
    send(b"\xfb\xff\x00\x80MSRP\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).expect("watch printed the binary body");
        if line["event"] != "message_received" || line["body_base64"] == "cHJvYmU=" {
            continue;
        }
        assert_eq!(line["body_base64"], "+/8AgE1TUlANCg==", "{line}");
        assert_eq!(line.get("body"), None, "{line}");
        break;
    }
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn watch_filters_by_tag_and_event_kind_in_the_engine() {
    let a = Daemon::start("ctl-tags", &["--shards", "2"]);
    for (passive, active, tag) in [("ta", "tb", Some("app-x")), ("ua", "ub", None)] {
        let mut args = vec!["create", "--passive", "--session-id", passive];
        let remote = a.uri(active);
        args.extend(["--remote-path", &remote]);
        if let Some(tag) = tag {
            args.extend(["--tag", tag]);
        }
        stdout(&ctl(&a, &args));
        let remote = a.uri(passive);
        stdout(&ctl(
            &a,
            &["create", "--session-id", active, "--remote-path", &remote],
        ));
    }
    let (mut watch, lines) = watch(&a, &["--tag", "app-x", "--event", "message_received"], usize::MAX);
    // The untagged session's texts go first each time: the watcher must skip them.
    until_watching(&lines, || {
        stdout(&ctl(&a, &["send", "ub", "not for app-x", "--wait"]));
        stdout(&ctl(&a, &["send", "tb", "probe", "--wait"]));
    });
    stdout(&ctl(&a, &["send", "ub", "still not", "--wait"]));
    stdout(&ctl(&a, &["send", "tb", "for app-x", "--wait"]));
    let line = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("the tagged text");
    assert_eq!(
        (&line["event"], &line["session_id"], &line["body"]),
        (&"message_received".into(), &"ta".into(), &"for app-x".into()),
        "{line}"
    );
    assert!(
        lines.recv_timeout(Duration::from_millis(300)).is_err(),
        "only what was asked for"
    );
    let _ = watch.kill();
    let _ = watch.wait();

    let refused = ctl(&a, &["watch", "--event", "bogus"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("not an event kind; one of session_ready, message_received"),
        "{stderr}"
    );
}
