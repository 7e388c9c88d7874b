//! Two network namespaces joined by a veth pair, shaped with tc netem
//! (`ip netns`, `ip link`, `tc`, from iproute2). The namespaces (and with
//! them the veth pair) are deleted when the `Link` is dropped, also when
//! the test fails; names are unique per process and link.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Fails the test, saying how to run it, unless we are root and have `ip`
/// and `tc`: a fault test that cannot make its faults must not pass.
pub fn require_root_and_iproute2() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the netem fault tests make network namespaces and veth pairs: run them as root \
         (or leave out --features faults)"
    );
    for tool in ["ip", "tc"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "`{tool}` is not on PATH: the netem fault tests need iproute2 \
             (apt-get install -y iproute2), or leave out --features faults"
        );
    }
}

#[track_caller]
fn run(args: &[&str]) {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One end of the link: its namespace, its veth device and its address.
pub struct Side {
    pub netns: String,
    pub device: String,
    pub addr: String,
}

impl Side {
    /// `tc qdisc replace ... root netem SPEC` on this side's egress.
    #[track_caller]
    pub fn netem(&self, spec: &str) {
        let mut args = vec![
            "tc",
            "-n",
            &self.netns,
            "qdisc",
            "replace",
            "dev",
            &self.device,
            "root",
            "netem",
        ];
        args.extend(spec.split_whitespace());
        let output = Command::new("tc").args(&args[1..]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("qdisc kind is unknown"),
            "this kernel has no netem qdisc (sch_netem): load it (`modprobe sch_netem`; \
             apt-get install -y kmod) or run on a kernel built with CONFIG_NET_SCH_NETEM: {args:?}"
        );
        assert!(output.status.success(), "{args:?} failed: {stderr}");
    }

    /// This side's egress limited to `mbit` (an htb class, no netem needed).
    #[track_caller]
    pub fn rate(&self, mbit: u32) {
        let ns = self.netns.as_str();
        let dev = self.device.as_str();
        run(&[
            "tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10",
        ]);
        run(&[
            "tc",
            "-n",
            ns,
            "class",
            "replace",
            "dev",
            dev,
            "parent",
            "1:",
            "classid",
            "1:10",
            "htb",
            "rate",
            &format!("{mbit}mbit"),
        ]);
    }

    /// `tc -s qdisc` and `class` of this side, for a failure message.
    pub fn stats(&self) -> String {
        let mut text = String::new();
        for what in ["qdisc", "class"] {
            let output = Command::new("tc")
                .args(["-n", &self.netns, "-s", what, "show", "dev", &self.device])
                .output()
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&output.stdout));
        }
        text
    }

    /// The veth end down (the other end loses its carrier: nothing
    /// crosses either way) or up again.
    #[track_caller]
    pub fn set_up(&self, up: bool) {
        run(&[
            "ip",
            "-n",
            &self.netns,
            "link",
            "set",
            &self.device,
            if up { "up" } else { "down" },
        ]);
    }
}

pub struct Link {
    pub a: Side,
    pub b: Side,
}

impl Link {
    /// Namespaces `msrpfA<pid>x<n>`, `msrpfB...`, a veth pair between them
    /// with 10.77.<n>.1/24 on A and .2 on B, loopback up on both.
    pub fn new() -> Link {
        require_root_and_iproute2();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let side = |letter: &str, host: u32| Side {
            netns: format!("msrpf{letter}{pid}x{n}"),
            // IFNAMSIZ: at most 15 characters.
            device: format!("mf{letter}{}x{n}", pid % 100_000),
            addr: format!("10.77.{}.{host}", n % 250),
        };
        let link = Link {
            a: side("a", 1),
            b: side("b", 2),
        };
        // From here on, Drop deletes whatever was made.
        for side in [&link.a, &link.b] {
            run(&["ip", "netns", "add", &side.netns]);
        }
        run(&[
            "ip",
            "link",
            "add",
            &link.a.device,
            "netns",
            &link.a.netns,
            "type",
            "veth",
            "peer",
            "name",
            &link.b.device,
            "netns",
            &link.b.netns,
        ]);
        for side in [&link.a, &link.b] {
            let ns = side.netns.as_str();
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", side.addr),
                "dev",
                &side.device,
            ]);
            run(&["ip", "-n", ns, "link", "set", &side.device, "up"]);
        }
        link
    }

    /// The same netem on both egresses (so a delay is paid each way).
    #[track_caller]
    pub fn netem(&self, spec: &str) {
        self.a.netem(spec);
        self.b.netem(spec);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and so the pair.
        for side in [&self.a, &self.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", &side.netns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}
