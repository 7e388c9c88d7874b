//! Voicemail delivery end to end, driven over REST (`POST /v1/transfers`,
//! the same operation as MSML's `transfer`): a sending pair (msrpd and
//! msrp-signal with `--files-dir`) pushes a recording (RFC 5547) to a
//! receiving pair acting as the voicemail delivery server, which checks the
//! announced size and sha-1 before its success REPORT and stores the file
//! under a safe name. Every failure keeps the source; the `transfer` end
//! event says which failure it was.
//!
//! Real processes on loopback; the MSML path with sipp as the application
//! server is `msml_sipp.rs`.

mod support;
use support::{processes, sse, stack};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::Digest as _;

use sse::{Sse, SseEvent};
use stack::Pair;

const WAIT: Duration = Duration::from_secs(20);

/// The sender: sources under its `files/`.
fn sender(name: &str) -> (Pair, PathBuf) {
    let dir = processes::test_dir(&format!("transfer-src-{name}"));
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let files_arg = files.display().to_string();
    let pair = Pair::start(&format!("{name}-send"), &["--files-dir", &files_arg]);
    (pair, files)
}

/// A recording of `size` octets, not all alike.
fn recording(dir: &Path, name: &str, size: usize) -> PathBuf {
    let path = dir.join(name);
    let mut octets = Vec::with_capacity(size);
    let mut x = 0x2545_f491_u32;
    while octets.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        octets.extend_from_slice(&x.to_le_bytes());
    }
    octets.truncate(size);
    std::fs::write(&path, octets).unwrap();
    path
}

fn sha256(path: &Path) -> String {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = sha2::Sha256::new();
    let mut piece = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut piece).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&piece[..n]);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn dest(receiver: &Pair, file: &str) -> String {
    format!(
        "xmsrp://?offerer=sip:msml@127.0.0.1;answerer=sip:vmds@{};file=/recordings/{file}",
        receiver.signal.udp
    )
}

/// Starts a transfer of one object; its id.
fn transfer(sender: &Pair, object: Value, extra: Value) -> String {
    let mut body = json!({ "objects": [object] });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let created = sender.api.post("/v1/transfers", &body).expect(201).json();
    assert_eq!(created["state"], "running", "{created}");
    created["id"].as_str().unwrap().to_string()
}

/// The transfer's `end` event.
fn end_of(events: &mut Sse, id: &str, timeout: Duration) -> Value {
    events
        .wait(&format!("the end of {id}"), timeout, |e| {
            e.event == "transfer" && e.session() == id && e.json()["event"] == "end"
        })
        .json()
}

fn is(kind: &str) -> impl Fn(&SseEvent) -> bool + '_ {
    move |e: &SseEvent| e.event == kind
}

#[test]
fn a_recording_is_pushed_checked_stored_and_its_source_deleted() {
    let receiver = Pair::start("vm-ok-recv", &[]);
    let (sender, files) = sender("vm-ok");
    let src = recording(&files, "RECORD_VMD4_1.amr", 300_000);
    let digest = sha256(&src);
    let mut sent = Sse::open(&sender.api, "/v1/events", None);
    let mut received = Sse::open(&receiver.api, "/v1/events", None);
    let id = transfer(
        &sender,
        json!({
            "src": format!("file://{}", src.display()),
            "dest": dest(&receiver, "RECORD_VMD4_1.amr"),
            "contenttype": "audio/amr",
            "delete": true,
            "objid": "vm1",
        }),
        json!({}),
    );
    let done = sent.wait("objectdone", WAIT, |e| {
        e.event == "transfer" && e.json()["event"] == "objectdone"
    });
    assert_eq!(done.json()["objid"], "vm1", "{done:?}");
    let end = end_of(&mut sent, &id, WAIT);
    assert_eq!(end["end"], "transfer.complete", "{end}\n{}", sender.logs());
    // The voicemail delivery server's application hears of the file only
    // once it was checked and stored under its announced (safe) name.
    let incoming = received.wait("incoming", WAIT, is("incoming")).json();
    assert!(
        incoming["offer"]
            .as_str()
            .unwrap()
            .contains("a=file-selector:name:\"RECORD_VMD4_1.amr\""),
        "{incoming}"
    );
    assert!(
        incoming["offer"].as_str().unwrap().contains("a=sendonly"),
        "{incoming}"
    );
    let message = received.wait("message", WAIT, is("message")).json();
    assert_eq!(message["file"]["verified"], true, "{message}");
    let stored = PathBuf::from(message["path"].as_str().unwrap());
    assert_eq!(stored.file_name().unwrap(), "RECORD_VMD4_1.amr");
    assert_eq!(sha256(&stored), digest);
    // delete="true": gone after success, and the call was ended with BYE.
    assert!(!src.exists(), "the source was not deleted");
    let session = message["session"].as_str().unwrap().to_string();
    received.expect("hangup", &session);
    let status = sender.api.get(&format!("/v1/transfers/{id}")).expect(200).json();
    assert_eq!(status["state"], "transfer.complete");
}

#[test]
fn a_refused_call_is_retried_its_count_then_fails_with_the_sip_status_and_keeps_the_source() {
    let receiver = Pair::start("vm-486-recv", &["--no-auto-answer"]);
    let (sender, files) = sender("vm-486");
    let src = recording(&files, "busy.amr", 5000);
    let mut sent = Sse::open(&sender.api, "/v1/events", None);
    let mut received = Sse::open(&receiver.api, "/v1/events", None);
    let id = transfer(
        &sender,
        json!({
            "src": src.display().to_string(),
            "dest": dest(&receiver, "busy.amr"),
            "contenttype": "audio/amr",
            "delete": true,
            "retry": 2,
        }),
        json!({}),
    );
    // retry="2": three INVITEs, each refused 486 by the application.
    for _ in 0..3 {
        let incoming = received.wait("incoming", WAIT, is("incoming"));
        let session = incoming.session();
        receiver
            .api
            .post(&format!("/v1/sessions/{session}/reject"), &json!({"status": 486}))
            .expect(200);
    }
    let end = end_of(&mut sent, &id, WAIT);
    assert_eq!(end["end"], "transfer.failed", "{end}");
    assert_eq!(end["sip_status"], 486, "{end}");
    assert!(src.exists(), "a failed transfer deleted its source");
    // No fourth attempt.
    std::thread::sleep(Duration::from_millis(500));
    while received.next(Duration::from_millis(100)).is_some() {}
    let invites = received.log.iter().filter(|e| e.event == "incoming").count();
    assert_eq!(invites, 3);
}

#[test]
fn an_answerer_that_takes_no_such_type_fails_the_transfer_488() {
    let receiver = Pair::start("vm-488-recv", &["--accept-types", "text/plain"]);
    let (sender, files) = sender("vm-488");
    let src = recording(&files, "wrong-type.amr", 5000);
    let mut sent = Sse::open(&sender.api, "/v1/events", None);
    let id = transfer(
        &sender,
        json!({"src": src.display().to_string(), "dest": dest(&receiver, "x.amr"), "contenttype": "audio/amr", "delete": true}),
        json!({}),
    );
    let end = end_of(&mut sent, &id, WAIT);
    assert_eq!(end["end"], "transfer.failed", "{end}");
    assert_eq!(end["sip_status"], 488, "{end}");
    assert!(src.exists());
}

#[test]
fn maxtime_ends_an_unanswered_transfer_and_keeps_the_source() {
    let receiver = Pair::start("vm-maxtime-recv", &["--no-auto-answer"]);
    let (sender, files) = sender("vm-maxtime");
    let src = recording(&files, "slow.amr", 5000);
    let mut sent = Sse::open(&sender.api, "/v1/events", None);
    let mut received = Sse::open(&receiver.api, "/v1/events", None);
    let started = Instant::now();
    let id = transfer(
        &sender,
        json!({"src": src.display().to_string(), "dest": dest(&receiver, "slow.amr"), "contenttype": "audio/amr", "delete": true}),
        json!({"maxtime": "1s"}),
    );
    received.wait("incoming", WAIT, is("incoming"));
    let end = end_of(&mut sent, &id, WAIT);
    assert_eq!(end["end"], "transfer.maxtime", "{end}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(src.exists());
    // The pending INVITE was cancelled.
    received.wait("hangup", WAIT, is("hangup"));
}

#[test]
fn a_file_that_is_not_the_announced_one_is_refused_by_the_receiver_and_the_transfer_fails() {
    let receiver = Pair::start("vm-hash-recv", &["--no-auto-answer"]);
    let (sender, files) = sender("vm-hash");
    let src = recording(&files, "changed.amr", 40_000);
    let mut sent = Sse::open(&sender.api, "/v1/events", None);
    let mut received = Sse::open(&receiver.api, "/v1/events", None);
    let id = transfer(
        &sender,
        json!({"src": src.display().to_string(), "dest": dest(&receiver, "changed.amr"), "contenttype": "audio/amr", "delete": true}),
        json!({}),
    );
    // The offer announced the file's sha-1; the file changes (same size)
    // before the receiver answers, so other octets travel.
    let incoming = received.wait("incoming", WAIT, is("incoming"));
    let mut octets = std::fs::read(&src).unwrap();
    octets[100] ^= 0xff;
    std::fs::write(&src, &octets).unwrap();
    let session = incoming.session();
    receiver
        .api
        .post(&format!("/v1/sessions/{session}/answer"), &json!({}))
        .expect(200);
    let failed = received.wait("failed", WAIT, |e| {
        e.event == "failed" && e.json()["direction"] == "incoming"
    });
    assert!(
        failed.json()["reason"]
            .as_str()
            .unwrap()
            .contains("sha-1 mismatch"),
        "{failed:?}"
    );
    let end = end_of(&mut sent, &id, WAIT);
    assert_eq!(end["end"], "transfer.failed", "{end}");
    assert_eq!(end["msrp_status"], 400, "{end}");
    assert!(src.exists());
    assert!(
        !received.log.iter().any(|e| e.event == "message"),
        "a refused file was announced as received"
    );
}

#[test]
fn a_connection_cut_mid_file_fails_the_transfer_and_keeps_the_source() {
    let mut receiver = Pair::start_with("vm-cut-recv", &["--progress-interval", "20ms"], &[]);
    let (sender, files) = sender("vm-cut");
    let src = recording(&files, "long.amr", 64 << 20);
    let mut sent = Sse::open(&sender.api, "/v1/events", None);
    let mut received = Sse::open(&receiver.api, "/v1/events", None);
    let id = transfer(
        &sender,
        json!({"src": src.display().to_string(), "dest": dest(&receiver, "long.amr"), "contenttype": "audio/amr", "delete": true}),
        json!({}),
    );
    received.wait("progress", WAIT, |e| {
        e.event == "progress" && e.json()["direction"] == "incoming"
    });
    receiver.kill_engine();
    let end = end_of(&mut sent, &id, WAIT);
    assert_eq!(end["end"], "transfer.failed", "{end}");
    assert!(src.exists());
}

#[test]
fn stopping_a_transfer_mid_file_interrupts_the_message_and_keeps_the_source() {
    let receiver = Pair::start_with("vm-stop-recv", &["--progress-interval", "20ms"], &[]);
    let (sender, files) = sender("vm-stop");
    let src = recording(&files, "stopped.amr", 64 << 20);
    let mut sent = Sse::open(&sender.api, "/v1/events", None);
    let mut received = Sse::open(&receiver.api, "/v1/events", None);
    let id = transfer(
        &sender,
        json!({"src": src.display().to_string(), "dest": dest(&receiver, "stopped.amr"), "contenttype": "audio/amr", "delete": true}),
        json!({}),
    );
    received.wait("progress", WAIT, |e| {
        e.event == "progress" && e.json()["direction"] == "incoming"
    });
    sender.api.delete(&format!("/v1/transfers/{id}")).expect(202);
    let end = end_of(&mut sent, &id, WAIT);
    assert_eq!(end["end"], "transfer.terminate", "{end}");
    // RFC 4975 7.1: the receiver saw the message end with `#`.
    let aborted = received.wait("the aborted message", WAIT, |e| {
        e.event == "failed" && e.json()["direction"] == "incoming"
    });
    assert!(
        aborted.json()["reason"].as_str().unwrap().contains("abort"),
        "{aborted:?}"
    );
    assert!(src.exists());
    assert!(sender.api.delete(&format!("/v1/transfers/{id}")).status == 404);
}

#[test]
fn sources_outside_the_files_dirs_and_missing_ones_are_refused_before_any_invite() {
    let receiver = Pair::start("vm-refuse-recv", &[]);
    let (sender, _files) = sender("vm-refuse");
    let mut received = Sse::open(&receiver.api, "/v1/events", None);
    let outside = recording(&sender.dir, "outside.amr", 100);
    let response = sender.api.post(
        "/v1/transfers",
        &json!({"objects": [{"src": outside.display().to_string(), "dest": dest(&receiver, "x"), "contenttype": "audio/amr"}]}),
    );
    response.expect_error(403, "forbidden", "--files-dir");
    let response = sender.api.post(
        "/v1/transfers",
        &json!({"objects": [{"src": "/nonexistent/x.amr", "dest": dest(&receiver, "x"), "contenttype": "audio/amr"}]}),
    );
    response.expect_error(400, "bad_request", "/nonexistent/x.amr");
    let response = sender.api.post(
        "/v1/transfers",
        &json!({"objects": [{"src": outside.display().to_string(), "dest": "http://example.com/x", "contenttype": "audio/amr"}]}),
    );
    response.expect_error(400, "bad_request", "http");
    received.expect_nothing(Duration::from_millis(500));
}

/// Peak resident memory of a process (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn a_1_gib_recording_goes_through_with_flat_memory_on_both_sides() {
    let store = processes::test_dir("transfer-1gib-store");
    let store_arg = store.display().to_string();
    let receiver = Pair::start("vm-1gib-recv", &["--store-dir", &store_arg]);
    let (sender, files) = sender("vm-1gib");
    let src = recording(&files, "long-message.amr", 1 << 30);
    let digest = sha256(&src);
    let mut sent = Sse::open(&sender.api, "/v1/events", None);
    let mut received = Sse::open(&receiver.api, "/v1/events", None);
    let started = Instant::now();
    let id = transfer(
        &sender,
        json!({"src": src.display().to_string(), "dest": dest(&receiver, "long-message.amr"), "contenttype": "audio/amr", "delete": true}),
        json!({}),
    );
    let end = end_of(&mut sent, &id, Duration::from_secs(180));
    eprintln!(
        "1 GiB transfer: {:?} from POST to the end event",
        started.elapsed()
    );
    assert_eq!(end["end"], "transfer.complete", "{end}");
    let message = received.wait("message", WAIT, is("message")).json();
    let stored = PathBuf::from(message["path"].as_str().unwrap());
    assert!(stored.starts_with(&store), "{stored:?}");
    assert_eq!(sha256(&stored), digest);
    assert!(!src.exists());
    // Flat: no process held the file (or a large part of it) in memory.
    for (who, pid) in [
        ("sending msrpd", sender.engine().pid()),
        ("sending msrp-signal", sender.signal.pid()),
        ("receiving msrpd", receiver.engine().pid()),
        ("receiving msrp-signal", receiver.signal.pid()),
    ] {
        let peak = peak_rss_kib(pid);
        eprintln!("{who}: peak RSS {peak} KiB");
        assert!(
            peak < 200 * 1024,
            "{who} peaked at {peak} KiB moving a 1 GiB file"
        );
    }
    let _ = std::fs::remove_file(&stored);
}
