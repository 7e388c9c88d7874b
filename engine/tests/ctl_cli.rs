//! `msrpd ctl` against a running engine that talks MSRP to itself.

mod daemon;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use daemon::Daemon;

fn ctl(a: &Daemon, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_msrpd"))
        .arg("ctl")
        .arg("--control")
        .arg(&a.control)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "msrpd ctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn create_send_watch_stats_and_close() {
    let a = Daemon::start("ctl", &["--shards", "2"]);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&a.control).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "only the engine's user may drive it");
    let created = stdout(&ctl(
        &a,
        &[
            "create",
            "--passive",
            "--session-id",
            "ca",
            "--remote-path",
            &a.uri("cb"),
        ],
    ));
    assert_eq!(created.trim(), format!("session_id=ca local_uri={}", a.uri("ca")));
    let created = stdout(&ctl(
        &a,
        &["create", "--remote-path", &a.uri("ca"), "--session-id", "cb"],
    ));
    assert!(created.starts_with("session_id=cb "), "{created}");

    let mut watch = Command::new(env!("CARGO_BIN_EXE_msrpd"))
        .args(["ctl", "--control"])
        .arg(&a.control)
        .args(["watch", "--session", "ca"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<serde_json::Value>();
    let watch_out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(watch_out).lines() {
            let Ok(line) = line else { return };
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                return;
            }
        }
    });
    // The watcher subscribes on its own time: probe until it prints.
    let mut probes = 0;
    loop {
        assert!(probes < 100, "msrpd ctl watch printed nothing");
        stdout(&ctl(&a, &["send", "cb", "probe"]));
        probes += 1;
        if lines.recv_timeout(Duration::from_millis(100)).is_ok() {
            break;
        }
    }
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
    let refused = ctl(&a, &["send", "cb", "again"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no session cb"));
}
