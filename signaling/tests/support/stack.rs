//! The processes of a REST test: `msrpd serve` (from `processes.rs`)
//! and `msrp-signal serve --http`, each pair on loopback with its own
//! directory, ports from the system read back from the ready lines, and
//! killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::http::Http;
use super::processes::{in_netns, test_dir, Msrpd};

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: Vec<&str> = text.lines().rev().take(lines).collect();
    kept.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// `msrp-signal serve` with the REST API on.
pub struct RestSignal {
    child: Child,
    pub http: SocketAddr,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    log: PathBuf,
}

/// The flags every REST test's `msrp-signal` gets before its own.
fn base_command(dir: &Path, engine: &Msrpd, netns: Option<&str>, host: &str) -> Command {
    let mut command = in_netns(netns, Path::new(env!("CARGO_BIN_EXE_msrp-signal")));
    command
        .arg("serve")
        .args([
            "--sip",
            &format!("udp:{host}:0"),
            "--sip",
            &format!("tcp:{host}:0"),
        ])
        .arg("--engine")
        .arg(&engine.control)
        .arg("--upload-dir")
        .arg(dir.join("uploads"))
        .arg("--state")
        .arg(dir.join("msrp-signal.dialogs"))
        .env("RUST_LOG", "debug");
    command
}

impl RestSignal {
    /// `--http 127.0.0.1:0` and `args`; returns once the three ready lines
    /// (`http=`, `sip=udp:`, `sip=tcp:`) are read.
    pub fn start(dir: &Path, engine: &Msrpd, args: &[&str]) -> RestSignal {
        RestSignal::start_in(dir, engine, None, "127.0.0.1", args)
    }

    /// The same in network namespace `netns`, SIP on `host`; REST stays on
    /// the namespace's own loopback (off it, tokens are required).
    pub fn start_in(
        dir: &Path,
        engine: &Msrpd,
        netns: Option<&str>,
        host: &str,
        args: &[&str],
    ) -> RestSignal {
        let log = dir.join("msrp-signal.log");
        let mut child = base_command(dir, engine, netns, host)
            .args(["--http", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("msrp-signal starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut http, mut udp, mut tcp) = (None, None, None);
        while http.is_none() || udp.is_none() || tcp.is_none() {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            assert!(
                !line.is_empty(),
                "msrp-signal {args:?} ended before its ready lines; log:\n{}",
                tail(&log, 40)
            );
            let Some(rest) = line.trim().strip_prefix("msrp-signal ready ") else {
                continue;
            };
            let parse = |text: &str| -> Option<SocketAddr> { Some(text.parse().unwrap()) };
            if let Some(addr) = rest.strip_prefix("http=") {
                http = parse(addr);
            } else if let Some(addr) = rest.strip_prefix("sip=udp:") {
                udp = parse(addr);
            } else if let Some(addr) = rest.strip_prefix("sip=tcp:") {
                tcp = parse(addr);
            }
        }
        RestSignal {
            child,
            http: http.unwrap(),
            udp: udp.unwrap(),
            tcp: tcp.unwrap(),
            log,
        }
    }

    pub fn log(&self) -> String {
        tail(&self.log, 60)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RestSignal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `msrp-signal serve` with `args` (and no `--http` of ours) until it
/// exits, at most `timeout`: its status and stderr. Panics if it is still
/// running then (it is killed).
pub fn run_to_exit(dir: &Path, engine: &Msrpd, args: &[&str], timeout: Duration) -> (ExitStatus, String) {
    let log = dir.join("msrp-signal-exit.log");
    let mut child = base_command(dir, engine, None, "127.0.0.1")
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("msrp-signal starts");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, std::fs::read_to_string(&log).unwrap_or_default());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "msrp-signal {args:?} still runs after {timeout:?}; log:\n{}",
                tail(&log, 40)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One msrpd and the msrp-signal that feeds it, with the REST API.
pub struct Pair {
    pub dir: PathBuf,
    /// `None` once killed (`kill_engine`).
    pub engine: Option<Msrpd>,
    pub signal: RestSignal,
    /// As application `default` (no `--tokens`).
    pub api: Http,
}

impl Pair {
    pub fn start(name: &str, args: &[&str]) -> Pair {
        Pair::start_with(name, &[], args)
    }

    /// With `engine_args` for msrpd and `args` for msrp-signal.
    pub fn start_with(name: &str, engine_args: &[&str], args: &[&str]) -> Pair {
        Pair::start_in(name, None, "127.0.0.1", engine_args, args)
    }

    /// Both processes in network namespace `netns`, listening on `host`;
    /// the REST client connects from inside it.
    pub fn start_in(
        name: &str,
        netns: Option<&str>,
        host: &str,
        engine_args: &[&str],
        args: &[&str],
    ) -> Pair {
        let dir = test_dir(&format!("rest-{name}"));
        let engine = Msrpd::start_in(&dir, netns, host, engine_args);
        let signal = RestSignal::start_in(&dir, &engine, netns, host, args);
        let mut api = Http::new(signal.http);
        api.netns = netns.map(str::to_string);
        Pair {
            dir,
            engine: Some(engine),
            signal,
            api,
        }
    }

    /// A SIP URI that reaches this pair's UDP listener.
    pub fn sip_uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.signal.udp)
    }

    pub fn engine(&self) -> &Msrpd {
        self.engine.as_ref().expect("msrpd runs")
    }

    /// SIGKILL msrpd.
    pub fn kill_engine(&mut self) {
        self.engine = None;
    }

    /// Both logs' tails, for a failure message.
    pub fn logs(&self) -> String {
        format!(
            "--- msrp-signal\n{}\n--- msrpd\n{}",
            self.signal.log(),
            self.engine.as_ref().map(Msrpd::log).unwrap_or_default()
        )
    }
}
