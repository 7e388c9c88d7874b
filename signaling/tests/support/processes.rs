//! The real processes of the suite: `msrpd serve`, `msrp-signal serve` and
//! `sipp`, each on loopback with its own directory, killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use msrp_engine::control::Client;

/// How long sipp may run before the test gives up on it (its own
/// `-timeout` is shorter, so this only catches a sipp that hangs).
const SIPP_WAIT_MAX: Duration = Duration::from_secs(40);

/// A fresh directory under the target's temp dir.
pub fn test_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sipp-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fails the test, with how to fix it, when sipp is not installed.
pub fn require_sipp() {
    let found = Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "sipp is not on PATH: this suite runs real SIP calls through it; \
         install sipp: apt-get install -y sip-tester (Debian/Ubuntu), or leave out --features sipp"
    );
}

/// `msrpd`, from the msrp-engine package: cargo builds a test's own
/// package's binaries only, so build it into the same target directory
/// (a no-op when it is fresh). `MSRPD` names another one.
pub fn msrpd_binary() -> &'static Path {
    static MSRPD: OnceLock<PathBuf> = OnceLock::new();
    MSRPD.get_or_init(|| {
        if let Some(path) = std::env::var_os("MSRPD") {
            return PathBuf::from(path);
        }
        // target/<profile>/deps/sipp-HASH -> target/<profile>/
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut build = Command::new(cargo);
        build
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args(["build", "--quiet", "-p", "msrp-engine", "--bin", "msrpd"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let output = build.output().expect("cargo runs");
        assert!(
            output.status.success(),
            "building msrpd failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let msrpd = profile_dir.join("msrpd");
        assert!(
            msrpd.exists(),
            "cargo built msrpd, but not at {}",
            msrpd.display()
        );
        msrpd
    })
}

/// A command running `program`, in network namespace `netns` when given.
pub fn in_netns(netns: Option<&str>, program: &Path) -> Command {
    match netns {
        Some(netns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", netns]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// A free port on 127.0.0.1 for both UDP and TCP (sipp takes a port
/// number, not a socket; the window between here and its bind is short).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Waits until some process (sipp) has bound UDP `port` on 127.0.0.1, so
/// that a first INVITE is not lost to a socket not yet there (it would
/// come again after Timer A, 500 ms, and skew the setup time).
pub fn wait_udp_bound(port: u16, sipp: &mut Sipp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        if let Some(status) = sipp.child.try_wait().unwrap() {
            panic!(
                "sipp exited {status} before binding port {port}: {}\n{}",
                sipp.command,
                sipp.logs()
            );
        }
        assert!(
            Instant::now() < deadline,
            "sipp did not bind UDP port {port} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: Vec<&str> = text.lines().rev().take(lines).collect();
    kept.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Reads `count` ready lines from a child's stdout.
fn ready_lines(child: &mut Child, count: usize, log: &Path) -> Vec<String> {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    (0..count)
        .map(|_| {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "no ready line; log:\n{}", tail(log, 40));
            line.trim().to_string()
        })
        .collect()
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in the ready line {line:?}"))
}

pub struct Msrpd {
    child: Child,
    pub control: PathBuf,
    log: PathBuf,
}

impl Msrpd {
    pub fn start(dir: &Path) -> Msrpd {
        Msrpd::start_with(dir, &[])
    }

    /// `msrpd serve` with the suite's flags and `args`.
    pub fn start_with(dir: &Path, args: &[&str]) -> Msrpd {
        Msrpd::start_in(dir, None, "127.0.0.1", args)
    }

    /// The same in network namespace `netns` (`ip netns exec`, which execs,
    /// so the child's pid is msrpd's), listening on `host`.
    pub fn start_in(dir: &Path, netns: Option<&str>, host: &str, args: &[&str]) -> Msrpd {
        let control = dir.join("msrpd.sock");
        let log = dir.join("msrpd.log");
        let mut child = in_netns(netns, msrpd_binary())
            .args([
                "serve",
                "--listen",
                &format!("{host}:0"),
                "--no-pin",
                "--log",
                "debug",
            ])
            .arg("--control")
            .arg(&control)
            .arg("--spool")
            .arg(dir.join("spool"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("msrpd starts");
        let line = ready_lines(&mut child, 1, &log).remove(0);
        assert!(line.starts_with("msrpd ready"), "{line}");
        Msrpd { child, control, log }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.control).expect("msrpd's control socket")
    }

    /// A client subscribed to every event.
    pub fn events(&self) -> Client {
        let mut client = self.client();
        client.subscribe().unwrap();
        client
    }

    pub fn sessions(&self) -> u64 {
        self.client()
            .stats()
            .unwrap()
            .shards
            .iter()
            .map(|s| s.sessions)
            .sum()
    }

    /// Sessions created and still waiting for their peer's connection.
    pub fn sessions_pending(&self) -> u64 {
        self.client().stats().unwrap().sessions_pending
    }

    pub fn log(&self) -> String {
        tail(&self.log, 40)
    }

    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Msrpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct MsrpSignal {
    child: Child,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    log: PathBuf,
}

impl MsrpSignal {
    /// `msrp-signal serve` on a UDP and a TCP listener (ports from the
    /// system, read back from its ready lines), feeding `engine`.
    pub fn start(dir: &Path, engine: &Msrpd) -> MsrpSignal {
        MsrpSignal::start_with(dir, engine, &[])
    }

    /// `msrp-signal serve` as [`MsrpSignal::start`] does, plus `args`.
    pub fn start_with(dir: &Path, engine: &Msrpd, args: &[&str]) -> MsrpSignal {
        let log = dir.join("msrp-signal.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_msrp-signal"))
            .args(["serve", "--sip", "udp:127.0.0.1:0", "--sip", "tcp:127.0.0.1:0"])
            .arg("--engine")
            .arg(&engine.control)
            .args(args)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("msrp-signal starts");
        let lines = ready_lines(&mut child, 2, &log);
        let listener = |transport: &str| -> SocketAddr {
            let prefix = format!("sip={transport}:");
            lines
                .iter()
                .find_map(|l| field(l, "sip=").starts_with(transport).then(|| field(l, &prefix)))
                .unwrap_or_else(|| panic!("no {transport} listener in {lines:?}"))
                .parse()
                .unwrap()
        };
        let (udp, tcp) = (listener("udp"), listener("tcp"));
        MsrpSignal { child, udp, tcp, log }
    }

    pub fn log(&self) -> String {
        tail(&self.log, 60)
    }

    /// SIGKILL: the process ends without ending its calls.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MsrpSignal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sipp run: a scenario of ours, its keys, and its logs in `dir`.
pub struct Sipp {
    child: Child,
    dir: PathBuf,
    command: String,
}

impl Sipp {
    /// Starts `sipp -sf tests/sipp/SCENARIO` with the suite's common
    /// options (`-m calls`, a 20 s call timeout that counts as failure,
    /// errors traced, a free local port unless `args` has `-p`) plus
    /// `args`.
    pub fn start(dir: &Path, scenario: &str, calls: u32, args: &[String]) -> Sipp {
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario);
        let mut command = Command::new("sipp");
        command
            .current_dir(dir)
            .arg("-sf")
            .arg(&scenario)
            .args(["-m", &calls.to_string()])
            .args(["-timeout", "20s", "-timeout_error", "-trace_err", "-trace_msg"])
            .args(["-i", "127.0.0.1", "-nostdin"])
            .args(args);
        // sipp's own port defaults to 5060, which tests running side by
        // side (or anything else on the machine) would share.
        if !args.iter().any(|a| a == "-p") {
            command.args(["-p", &free_port().to_string()]);
        }
        command
            .stdout(std::fs::File::create(dir.join("sipp.out")).unwrap())
            .stderr(std::fs::File::create(dir.join("sipp.err")).unwrap());
        let shown = format!("{command:?}");
        let child = command.spawn().expect("sipp starts");
        Sipp {
            child,
            dir: dir.to_path_buf(),
            command: shown,
        }
    }

    /// Waits for sipp to exit; panics with its logs unless it exited 0
    /// (every call succeeded).
    pub fn wait_success(&mut self) -> Duration {
        let started = Instant::now();
        let status = self.wait(SIPP_WAIT_MAX);
        assert!(
            status.is_some_and(|s| s.success()),
            "sipp {}: {}\n{}",
            match status {
                Some(status) => format!("exited {status}"),
                None => format!("still running after {SIPP_WAIT_MAX:?}"),
            },
            self.command,
            self.logs()
        );
        started.elapsed()
    }

    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// sipp's error log (`-trace_err`), the tail of its message log, its
    /// stderr: what to read when a call failed.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let lines = if name.ends_with("_errors.log") || name == "sipp.err" {
                80
            } else if name.ends_with("_messages.log") {
                120
            } else {
                continue;
            };
            out.push_str(&format!("--- {name}\n{}\n", tail(&path, lines)));
        }
        out
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines the scenario's `<exec>` appended to `path` (one per call), read
/// as `key=value` words once `count` are there.
pub fn wait_lines(path: &Path, count: usize, timeout: Duration, sipp: &mut Sipp) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count {
            return lines;
        }
        if let Some(status) = sipp.child.try_wait().unwrap() {
            panic!(
                "sipp exited {status} after {} of {count} calls: {}\n{}",
                lines.len(),
                sipp.command,
                sipp.logs()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} calls after {timeout:?}: {}\n{}",
            lines.len(),
            sipp.command,
            sipp.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `key=value` from one of those lines (values hold no spaces).
pub fn value<'a>(line: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    line.split(' ')
        .find_map(|word| word.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}
