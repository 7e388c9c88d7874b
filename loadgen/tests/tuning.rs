//! `tuning/check` and `tuning/apply`, run with bash as an operator runs them:
//! check prints a verdict for every setting and changes nothing, apply
//! `--dry-run` changes nothing, apply refuses without root, and apply raises
//! only the values below the recommendation (on a copy of /proc/sys).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every verdict check may give.
const VERDICTS: [&str; 5] = ["ok", "low", "warn", "info", "n/a"];

/// Sysctls apply would raise on a default host; none may change in a test.
const WATCHED: [&str; 9] = [
    "net/core/somaxconn",
    "net/ipv4/tcp_max_syn_backlog",
    "net/core/netdev_max_backlog",
    "net/core/rmem_max",
    "net/core/wmem_max",
    "net/ipv4/tcp_rmem",
    "net/ipv4/tcp_wmem",
    "net/ipv4/ip_local_port_range",
    "net/ipv4/tcp_tw_reuse",
];

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tuning").join(name)
}

fn run(name: &str, args: &[&str], proc_sys: Option<&Path>) -> Output {
    let mut command = Command::new("bash");
    command.arg(script(name)).args(args);
    if let Some(root) = proc_sys {
        command.env("TUNING_PROC_SYS", root);
    }
    command.output().expect("bash runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The live values of `WATCHED`, to compare before and after a run.
fn live_sysctls() -> Vec<(&'static str, Option<String>)> {
    WATCHED
        .iter()
        .map(|name| (*name, fs::read_to_string(Path::new("/proc/sys").join(name)).ok()))
        .collect()
}

fn is_root() -> bool {
    // The effective uid is the second number of /proc/self/status's Uid line.
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// The table rows of check's output: setting and verdict.
fn rows(text: &str) -> Vec<(String, String)> {
    text.lines()
        .skip(2) // the header and its underline
        .take_while(|line| !line.is_empty())
        .map(|line| {
            let verdict = line.split_whitespace().last().unwrap_or_default();
            (line.to_string(), verdict.to_string())
        })
        .collect()
}

/// A private copy of the parts of /proc/sys the scripts read, with chosen
/// values; removed on drop.
struct FakeProcSys(PathBuf);

impl FakeProcSys {
    fn new(tag: &str, values: &[(&str, &str)]) -> FakeProcSys {
        let root = std::env::temp_dir().join(format!("msrp-tuning-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (name, value) in values {
            let path = root.join(name);
            fs::create_dir_all(path.parent().expect("a sysctl has a parent")).expect("mkdir");
            fs::write(&path, format!("{value}\n")).expect("write");
        }
        FakeProcSys(root)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.0.join(name))
            .expect("read")
            .trim()
            .replace('\t', " ")
    }
}

impl Drop for FakeProcSys {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An operator raised somaxconn and file-max, disabled io_uring for others,
/// and left the rest at kernel defaults (some below the recommendation).
fn operator_tree(tag: &str) -> FakeProcSys {
    FakeProcSys::new(
        tag,
        &[
            ("fs/file-max", "9223372036854775807"),
            ("fs/nr_open", "1048576"),
            ("net/core/somaxconn", "65535"),
            ("net/ipv4/tcp_max_syn_backlog", "128"),
            ("net/core/netdev_max_backlog", "1000"),
            ("net/core/rmem_max", "33554432"),
            ("net/core/wmem_max", "212992"),
            ("net/ipv4/tcp_rmem", "4096\t131072\t6291456"),
            ("net/ipv4/tcp_wmem", "4096\t16384\t4194304"),
            ("net/ipv4/ip_local_port_range", "32768\t60999"),
            ("net/ipv4/tcp_tw_reuse", "2"),
            ("kernel/io_uring_disabled", "1"),
        ],
    )
}

/// What apply should change in `operator_tree`, as `name: old -> new`.
const OPERATOR_CHANGES: [&str; 7] = [
    "net.ipv4.tcp_max_syn_backlog: 128 -> 4096",
    "net.core.netdev_max_backlog: 1000 -> 16384",
    "net.core.wmem_max: 212992 -> 16777216",
    "net.ipv4.tcp_rmem: 4096 131072 6291456 -> 4096 131072 16777216",
    "net.ipv4.tcp_wmem: 4096 16384 4194304 -> 4096 16384 16777216",
    "net.ipv4.ip_local_port_range: 32768 60999 -> 10000 65535",
    "net.ipv4.tcp_tw_reuse: 2 -> 1",
];

#[test]
fn check_prints_a_verdict_for_every_setting_and_changes_nothing() {
    let before = live_sysctls();
    let output = run("check", &[], None);
    let text = stdout(&output);
    assert!(output.status.success(), "check failed: {output:?}");
    let header: Vec<&str> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["setting", "current", "recommended", "verdict"], "{text}");
    let rows = rows(&text);
    for (line, verdict) in &rows {
        assert!(VERDICTS.contains(&verdict.as_str()), "bad verdict in {line:?}");
    }
    for setting in [
        "nofile soft",
        "nofile hard",
        "net.core.somaxconn",
        "net.ipv4.ip_local_port_range",
    ] {
        assert!(
            rows.iter().any(|(line, _)| line.starts_with(setting)),
            "no row for {setting}:\n{text}"
        );
    }
    assert!(
        text.lines().any(|line| line.starts_with("summary: ")),
        "no summary:\n{text}"
    );
    assert_eq!(live_sysctls(), before, "check changed a sysctl");
}

#[test]
fn check_reports_missing_entries_as_na_and_still_succeeds() {
    let empty = FakeProcSys::new("empty", &[]);
    let output = run("check", &["--connections", "100000"], Some(&empty.0));
    let text = stdout(&output);
    assert!(output.status.success(), "check failed: {output:?}");
    let somaxconn = rows(&text)
        .into_iter()
        .find(|(line, _)| line.starts_with("net.core.somaxconn"))
        .expect("a somaxconn row");
    assert_eq!(somaxconn.1, "n/a", "{text}");
    // 100,000 connections want 100,000 descriptors plus the spare ones.
    assert!(text.contains(">= 101024"), "{text}");
}

#[test]
fn check_judges_against_the_recommendation() {
    let tree = operator_tree("judged");
    let text = stdout(&run("check", &[], Some(&tree.0)));
    let verdict_of = |setting: &str| {
        rows(&text)
            .into_iter()
            .find(|(line, _)| line.split_whitespace().next() == Some(setting))
            .map(|(_, verdict)| verdict)
            .unwrap_or_else(|| panic!("no row for {setting}:\n{text}"))
    };
    assert_eq!(verdict_of("net.core.somaxconn"), "ok");
    assert_eq!(verdict_of("fs.file-max"), "ok");
    assert_eq!(verdict_of("net.ipv4.tcp_max_syn_backlog"), "low");
    assert_eq!(verdict_of("net.ipv4.ip_local_port_range"), "low");
    assert_eq!(verdict_of("kernel.io_uring_disabled"), "warn");
}

#[test]
fn apply_dry_run_changes_nothing() {
    let before = live_sysctls();
    let persist = std::env::temp_dir().join(format!("msrp-tuning-{}-persist.conf", std::process::id()));
    let output = run(
        "apply",
        &["--dry-run", "--persist", persist.to_str().expect("utf-8")],
        None,
    );
    let text = stdout(&output);
    assert!(output.status.success(), "apply --dry-run failed: {output:?}");
    assert!(text.contains("nothing is changed"), "{text}");
    for line in text.lines().filter(|line| line.contains("would set")) {
        assert!(line.contains(" -> "), "{line:?} does not say old -> new");
    }
    assert!(!persist.exists(), "--dry-run wrote {}", persist.display());
    assert_eq!(live_sysctls(), before, "apply --dry-run changed a sysctl");

    // On a tree with known values it names exactly the changes apply makes.
    let tree = operator_tree("dry");
    let text = stdout(&run("apply", &["--dry-run"], Some(&tree.0)));
    for change in OPERATOR_CHANGES {
        assert!(
            text.contains(&format!("would set {change}")),
            "{change:?} missing:\n{text}"
        );
    }
    assert!(
        !text.contains("somaxconn"),
        "somaxconn is above the recommendation:\n{text}"
    );
    assert_eq!(tree.read("net/ipv4/tcp_max_syn_backlog"), "128");
}

#[test]
fn apply_needs_root() {
    if is_root() {
        // As root apply would run; refusing is what a non-root user must see,
        // so this part only runs without root.
        eprintln!("running as root: the refusal of tuning/apply without --dry-run is not tested");
        return;
    }
    let before = live_sysctls();
    let output = run("apply", &[], None);
    assert!(!output.status.success(), "apply ran without root: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("root"), "the refusal does not say why: {stderr}");
    assert_eq!(live_sysctls(), before);
}

#[test]
fn apply_raises_only_what_is_below_the_recommendation() {
    if !is_root() {
        // apply refuses to run (apply_needs_root); the dry run above already
        // checked the same changes.
        return;
    }
    let before = live_sysctls();
    let tree = operator_tree("applied");
    let persist = tree.0.join("90-msrpd.conf");
    // The dry run on this tree proves the scripts read TUNING_PROC_SYS
    // before anything runs as root for real.
    let dry = stdout(&run("apply", &["--dry-run"], Some(&tree.0)));
    assert!(
        dry.contains("128 -> 4096"),
        "TUNING_PROC_SYS is not honoured:\n{dry}"
    );

    let output = run(
        "apply",
        &["--persist", persist.to_str().expect("utf-8")],
        Some(&tree.0),
    );
    let text = stdout(&output);
    assert!(output.status.success(), "apply failed: {output:?}");
    for change in OPERATOR_CHANGES {
        assert!(
            text.lines().any(|line| line.trim() == change),
            "{change:?} missing:\n{text}"
        );
    }
    assert_eq!(tree.read("net/ipv4/tcp_max_syn_backlog"), "4096");
    assert_eq!(tree.read("net/ipv4/tcp_wmem"), "4096 16384 16777216");
    assert_eq!(tree.read("net/ipv4/ip_local_port_range"), "10000 65535");
    // What an operator raised stays, and io_uring policy is theirs.
    assert_eq!(tree.read("net/core/somaxconn"), "65535");
    assert_eq!(tree.read("net/core/rmem_max"), "33554432");
    assert_eq!(tree.read("fs/file-max"), "9223372036854775807");
    assert_eq!(tree.read("kernel/io_uring_disabled"), "1");
    let persisted = fs::read_to_string(&persist).expect("the sysctl.d file");
    assert!(persisted.contains("net.core.somaxconn = 65535"), "{persisted}");
    assert!(persisted.contains("net.ipv4.tcp_tw_reuse = 1"), "{persisted}");

    let again = stdout(&run("apply", &[], Some(&tree.0)));
    assert!(again.contains("0 changed"), "a second run changed more:\n{again}");
    assert_eq!(live_sysctls(), before, "apply touched the live /proc/sys");
}
