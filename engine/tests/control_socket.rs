//! One engine per control socket (issue 10): a second engine on a live
//! engine's path refuses to start and leaves it reachable; a dead engine's
//! socket is replaced; the default path is under the user's runtime
//! directory, never world-writable `/tmp`.

mod daemon;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use daemon::Daemon;

fn msrpd() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_msrpd"));
    command.args(["serve", "--listen", "127.0.0.1:0", "--no-pin", "--shards", "1"]);
    command
}

#[test]
fn a_second_engine_on_a_live_control_socket_refuses_to_start() {
    let a = Daemon::start("control-live", &["--shards", "1"]);
    let output = msrpd()
        .arg("--control")
        .arg(&a.control)
        .arg("--spool")
        .arg(a.dir.join("spool-b"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the second engine started: {stderr}");
    assert!(stderr.contains("another engine"), "{stderr}");
    // The first engine is untouched and still answers.
    assert!(a.control.exists());
    assert_eq!(a.stats().shards.len(), 1);
}

#[test]
fn a_dead_engines_socket_is_replaced() {
    let a = Daemon::start("control-stale", &["--shards", "1"]);
    let control = a.control.clone();
    let b = a.restart(&["--shards", "1"]);
    assert_eq!(b.control, control);
    assert_eq!(b.stats().shards.len(), 1);
    let mode = std::fs::metadata(&b.control).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// The ready line of an engine started with `command` (then stopped).
fn ready_line(command: &mut Command) -> String {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    line
}

#[test]
fn the_default_control_socket_is_in_the_runtime_directory() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("xdg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let line = ready_line(
        msrpd()
            .env("XDG_RUNTIME_DIR", &dir)
            .env_remove("MSRPD_CONTROL")
            .arg("--spool")
            .arg(dir.join("spool")),
    );
    let expected = format!("control={}", dir.join("msrpd.sock").display());
    assert!(line.contains(&expected), "{line}");

    // $MSRPD_CONTROL, which msrpd ctl reads too, comes first.
    let chosen = dir.join("chosen.sock");
    let line = ready_line(
        msrpd()
            .env("XDG_RUNTIME_DIR", &dir)
            .env("MSRPD_CONTROL", &chosen)
            .arg("--spool")
            .arg(dir.join("spool")),
    );
    assert!(line.contains(&format!("control={}", chosen.display())), "{line}");
}
