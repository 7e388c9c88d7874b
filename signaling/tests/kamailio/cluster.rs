//! The processes of the balancer test: a node (`msrpd serve` and
//! `msrp-signal serve` on one loopback address of its own), the Kamailio
//! broker run from `deploy/kamailio/`, and a sipp load whose statistics
//! file is read while it runs. Each is ended when dropped.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::processes::msrpd_binary;

/// Fails the test, with how to fix it, when Kamailio is not installed.
pub fn require_kamailio() {
    let found = Command::new("kamailio")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "kamailio is not on PATH: this test runs calls through a real Kamailio \
         dispatcher; install it: apt-get install -y kamailio (Debian/Ubuntu, \
         5.6 has dispatcher in the main package), or leave out --features kamailio"
    );
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: Vec<&str> = text.lines().rev().take(lines).collect();
    kept.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Sends `signal` (a `kill` name: TERM, USR1) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// Waits for `child` to exit within `timeout`; SIGKILL after that.
fn reap(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn first_line(child: &mut Child, log: &Path) -> String {
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    assert!(!line.is_empty(), "no ready line; log:\n{}", tail(log, 40));
    line.trim().to_string()
}

/// A free UDP port on `ip` (the window until msrp-signal binds it is short).
pub fn free_udp_port(ip: IpAddr) -> u16 {
    UdpSocket::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

/// One msrp-engine node: an msrpd and the msrp-signal that feeds it, both
/// on `ip`; SIP on a fixed UDP port so that a restarted node is the same
/// dispatcher destination.
pub struct Node {
    pub name: &'static str,
    pub ip: IpAddr,
    pub sip: SocketAddr,
    dir: PathBuf,
    msrpd: Option<Child>,
    signal: Option<Child>,
    /// msrpd's `advertise=` (what our SDP answers name).
    pub advertise: String,
    starts: u32,
}

impl Node {
    pub fn start(name: &'static str, ip: IpAddr, dir: &Path) -> Node {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let sip = SocketAddr::new(ip, free_udp_port(ip));
        let mut node = Node {
            name,
            ip,
            sip,
            dir,
            msrpd: None,
            signal: None,
            advertise: String::new(),
            starts: 0,
        };
        node.restart();
        node
    }

    /// (Re)starts both processes; logs of each start are kept apart.
    pub fn restart(&mut self) {
        self.starts += 1;
        let control = self.dir.join("msrpd.sock");
        let msrpd_log = self.msrpd_log();
        let mut msrpd = Command::new(msrpd_binary())
            .args(["serve", "--no-pin", "--shards", "1", "--log", "info"])
            .arg("--listen")
            .arg(format!("{}:0", self.ip))
            .arg("--control")
            .arg(&control)
            .arg("--spool")
            .arg(self.dir.join("spool"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&msrpd_log).unwrap())
            .spawn()
            .expect("msrpd starts");
        let ready = first_line(&mut msrpd, &msrpd_log);
        assert!(ready.starts_with("msrpd ready"), "{ready}");
        self.advertise = ready
            .split_whitespace()
            .find_map(|f| f.strip_prefix("advertise="))
            .unwrap_or_else(|| panic!("no advertise= in {ready:?}"))
            .to_string();
        self.msrpd = Some(msrpd);

        let signal_log = self.signal_log();
        let mut signal = Command::new(env!("CARGO_BIN_EXE_msrp-signal"))
            .arg("serve")
            .arg("--sip")
            .arg(format!("udp:{}", self.sip))
            .arg("--engine")
            .arg(&control)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&signal_log).unwrap())
            .spawn()
            .expect("msrp-signal starts");
        let ready = first_line(&mut signal, &signal_log);
        assert!(
            ready.contains(&format!("sip=udp:{}", self.sip)),
            "msrp-signal of {}: {ready}",
            self.name
        );
        self.signal = Some(signal);
    }

    fn msrpd_log(&self) -> PathBuf {
        self.dir.join(format!("msrpd.{}.log", self.starts))
    }

    fn signal_log(&self) -> PathBuf {
        self.dir.join(format!("msrp-signal.{}.log", self.starts))
    }

    /// kill -9 of both processes: nothing ends its calls.
    pub fn kill(&mut self) {
        for child in [self.signal.take(), self.msrpd.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn logs(&self) -> String {
        format!(
            "--- {} msrp-signal\n{}\n--- {} msrpd\n{}",
            self.name,
            tail(&self.signal_log(), 30),
            self.name,
            tail(&self.msrpd_log(), 15)
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `kamailio -DD -E` on `deploy/kamailio/kamailio.cfg`, its settings given
/// as `-A` defines (the file itself is what an operator installs).
pub struct Broker {
    child: Child,
    pub log: PathBuf,
}

pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kamailio")
}

impl Broker {
    /// The dispatcher list from the template, one node's SIP address per
    /// placeholder.
    pub fn write_list(dir: &Path, nodes: &[SocketAddr]) -> PathBuf {
        let template = std::fs::read_to_string(deploy_dir().join("dispatcher.list")).unwrap();
        let mut list = template;
        for (placeholder, node) in ["NODE_A_ADDR", "NODE_B_ADDR"].iter().zip(nodes) {
            assert!(list.contains(placeholder), "no {placeholder} in the template");
            list = list.replace(placeholder, &node.to_string());
        }
        let path = dir.join("dispatcher.list");
        std::fs::write(&path, list).unwrap();
        path
    }

    fn defines(dir: &Path, addr: SocketAddr, list: &Path, settings: &[(&str, String)]) -> Vec<String> {
        let mut defines = vec![
            format!("LISTEN=udp:{addr}"),
            format!("DS_LIST=\"{}\"", list.display()),
            format!("CTL_SOCKET=\"unix:{}\"", dir.join("kamailio_ctl").display()),
        ];
        defines.extend(settings.iter().map(|(k, v)| format!("{k}={v}")));
        defines.into_iter().flat_map(|d| ["-A".to_string(), d]).collect()
    }

    pub fn start(dir: &Path, addr: SocketAddr, list: &Path, settings: &[(&str, String)]) -> Broker {
        let cfg = deploy_dir().join("kamailio.cfg");
        let defines = Broker::defines(dir, addr, list, settings);
        let runtime = dir.join("kamailio-run");
        std::fs::create_dir_all(&runtime).unwrap();
        // The shipped file must pass Kamailio's own check.
        let check = Command::new("kamailio")
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .args(&defines)
            .output()
            .expect("kamailio -c runs");
        assert!(
            check.status.success(),
            "kamailio -c -f {}: {}\n{}",
            cfg.display(),
            check.status,
            String::from_utf8_lossy(&check.stderr)
        );
        let log = dir.join("kamailio.log");
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .arg("-Y")
            .arg(&runtime)
            .args(&defines)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("kamailio starts");
        let mut broker = Broker { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while UdpSocket::bind(addr).is_ok() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("kamailio exited {status}:\n{}", tail(&broker.log, 40));
            }
            assert!(
                Instant::now() < deadline,
                "kamailio did not bind {addr}:\n{}",
                tail(&broker.log, 40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // SIGTERM: the main process ends its children (SIGKILL would leave
        // them holding the port).
        signal(self.child.id(), "TERM");
        reap(&mut self.child, Duration::from_secs(10));
    }
}

/// A sipp load with no end of its own: it stops at SIGUSR1 (no new call;
/// it exits once the calls in progress are done).
pub struct Load {
    child: Child,
    dir: PathBuf,
    pub stats: PathBuf,
}

impl Load {
    pub fn start(dir: &Path, broker: SocketAddr, args: &[String]) -> Load {
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uac_balanced.xml");
        let stats = dir.join("sipp-stats.csv");
        let child = Command::new("sipp")
            .current_dir(dir)
            .arg("-sf")
            .arg(&scenario)
            .args(["-i", "127.0.0.1", "-p"])
            .arg(crate::processes::free_port().to_string())
            .args(["-nostdin", "-trace_err", "-trace_stat", "-fd", "1"])
            .arg("-stf")
            .arg(&stats)
            .args(args)
            .arg(broker.to_string())
            .stdout(std::fs::File::create(dir.join("sipp.out")).unwrap())
            .stderr(std::fs::File::create(dir.join("sipp.err")).unwrap())
            .spawn()
            .expect("sipp starts");
        Load {
            child,
            dir: dir.to_path_buf(),
            stats,
        }
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "sipp exited {status} before the test stopped it:\n{}",
                self.logs()
            );
        }
    }

    /// SIGUSR1, then its exit within `timeout`.
    pub fn stop(&mut self, timeout: Duration) {
        signal(self.child.id(), "USR1");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sipp still running {timeout:?} after SIGUSR1:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with("_errors.log") || name == "sipp.err" {
                out.push_str(&format!("--- {name}\n{}\n", tail(&path, 40)));
            }
        }
        out
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last row of sipp's `-trace_stat` file, by column name.
pub struct Stats {
    row: Vec<(String, String)>,
}

impl Stats {
    pub fn read(path: &Path) -> Option<Stats> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next()?.split(';').collect();
        let last = lines.rfind(|l| !l.trim().is_empty())?;
        let row = header
            .iter()
            .zip(last.split(';'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Stats { row })
    }

    /// A counter by its column name (cumulative ones end in `(C)`).
    pub fn total(&self, key: &str) -> u64 {
        self.row
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("no {key} in sipp's statistics"))
            .1
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{key} is not a count: {e}"))
    }

    /// Every `Failed...(C)` counter but the sum itself.
    pub fn failure_reasons(&self) -> Vec<(String, u64)> {
        self.row
            .iter()
            .filter(|(k, _)| k.starts_with("Failed") && k.ends_with("(C)") && k != "FailedCall(C)")
            .map(|(k, v)| (k.clone(), v.trim().parse().unwrap_or(0)))
            .collect()
    }
}
