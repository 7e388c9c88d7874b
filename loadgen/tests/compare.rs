//! `msrp-loadgen compare` through the real binary, on synthetic reports:
//! the noise rule, the slower-host rule, missing metrics, profiles, both
//! argument forms, directories, and the JUnit and markdown files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use msrp_loadgen::report::{Fractions, Report, LATENCY_DELIVERED, REPORT_VERSION};

/// One run at `messages_per_s` (bytes a hundred times that), with chunk
/// and delivered latencies and no calibration.
fn run(messages_per_s: f64) -> Report {
    msrp_loadgen::fixture::run(messages_per_s, 50, 100)
}

/// A `bench --repeat` report: one run per rate.
fn repeated(rates: &[f64]) -> Report {
    let mut r = run(rates[rates.len() / 2]);
    r.runs = rates.iter().map(|&m| run(m)).collect();
    r
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("msrp-compare-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn write(&self, name: &str, report: &Report) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, serde_json::to_vec(report).unwrap()).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn compare(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (Option<i32>, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_msrp-loadgen"))
        .arg("compare")
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn sides(dir: &Dir, base: &Report, new: &Report) -> (PathBuf, PathBuf) {
    (dir.write("base.json", base), dir.write("new.json", new))
}

fn gate(base: &Path, new: &Path) -> (Option<i32>, String) {
    compare(&[&"--base", &base, &"--new", &new])
}

#[test]
fn noise_within_the_spread_passes() {
    let dir = Dir::new("noise");
    let (b, n) = sides(
        &dir,
        &repeated(&[9_900.0, 10_100.0, 10_000.0, 9_950.0, 10_050.0]),
        &repeated(&[9_850.0, 10_050.0, 9_950.0, 9_900.0, 10_000.0]),
    );
    let (code, text) = gate(&b, &n);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("rule: a metric regresses when"), "{text}");
    assert!(text.contains("(5)") && text.contains("PASS"), "{text}");
}

#[test]
fn a_real_drop_with_a_small_spread_fails() {
    let dir = Dir::new("drop");
    let (b, n) = sides(
        &dir,
        &repeated(&[9_990.0, 10_010.0, 10_000.0]),
        &repeated(&[7_990.0, 8_010.0, 8_000.0]),
    );
    let (code, text) = gate(&b, &n);
    assert_eq!(code, Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("throughput.messages_per_s"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("-20.0%") && line.ends_with("REGRESSED"), "{line}");
    assert!(text.contains("FAIL (max regression 5%): 2 regressed"), "{text}");
}

#[test]
fn a_drop_inside_a_huge_spread_passes_with_the_noise_warning() {
    let dir = Dir::new("huge");
    let (b, n) = sides(
        &dir,
        &repeated(&[6_000.0, 8_000.0, 10_000.0, 12_000.0, 14_000.0]),
        &repeated(&[4_000.0, 6_000.0, 8_000.0, 10_000.0, 12_000.0]),
    );
    let (code, text) = gate(&b, &n);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("noisy"), "{text}");
    assert!(
        text.contains("the difference is inside the noise: run more repeats"),
        "{text}"
    );
    // The same drop with no noise floor fails.
    let (code, text) = compare(&[&"--base", &b, &"--new", &n, &"--noise-k", &"0"]);
    assert_eq!(code, Some(1), "{text}");
}

#[test]
fn a_missing_metric_fails_with_the_reason() {
    let dir = Dir::new("missing");
    let mut new = run(10_000.0);
    new.latency_us.remove(LATENCY_DELIVERED);
    let (b, n) = sides(&dir, &run(10_000.0), &new);
    let (code, text) = gate(&b, &n);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("latency.delivered.p99_us: in the base (1 runs) but in none of the new runs: a measurement was lost"),
        "{text}"
    );
    assert!(text.contains("2 missing"), "{text}");
}

#[test]
fn a_profile_mismatch_fails_with_the_list() {
    let dir = Dir::new("profile");
    let mut new = run(10_000.0);
    new.profile = serde_json::json!({"scenario": "sms", "sessions": 200});
    let (b, n) = sides(&dir, &run(10_000.0), &new);
    let (code, text) = gate(&b, &n);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("profiles differ"), "{text}");
    assert!(text.contains("profile.sessions: 100 -> 200"), "{text}");
}

#[test]
fn a_slower_host_passes_as_slower_host() {
    let dir = Dir::new("host");
    let calibrated = |rate: f64, fraction: f64| {
        let mut r = run(rate);
        r.fraction_of_calibration = Some(Fractions {
            messages: fraction,
            bytes: fraction,
        });
        r
    };
    let (b, n) = sides(&dir, &calibrated(10_000.0, 0.5), &calibrated(7_000.0, 0.5));
    let (code, text) = gate(&b, &n);
    assert_eq!(code, Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("throughput.messages_per_s"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("-30.0%") && line.ends_with("slower host"), "{line}");
    assert!(text.contains("the machine is slower, the code is not"), "{text}");
    // The code slowed down too: the fraction fell with the throughput.
    let n = dir.write("slower-code.json", &calibrated(7_000.0, 0.35));
    let (code, text) = gate(&b, &n);
    assert_eq!(code, Some(1), "{text}");
}

#[test]
fn the_two_report_form_still_works() {
    let dir = Dir::new("old");
    let (b, n) = sides(&dir, &run(10_000.0), &run(9_000.0));
    let (code, text) = compare(&[&"--max-regression", &"5%", &b, &b]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = compare(&[&b, &n, &"--max-regression", &"5%"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("messages_per_s") && text.contains("FAIL"), "{text}");
    let (code, text) = compare(&[&b, &n, &"--max-regression", &"15%"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = compare(&[&b, &dir.0.join("nope.json")]);
    assert_eq!(code, Some(2), "{text}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = Dir::new("usage");
    let (b, n) = sides(&dir, &run(10_000.0), &run(10_000.0));
    for args in [
        vec![],
        vec![&b as &dyn AsRef<std::ffi::OsStr>],
        vec![&"--base", &b],
        vec![&b, &n, &"--base", &b, &"--new", &n],
        vec![&"--base", &b, &"--new", &n, &"--noise-k", &"-1"],
        vec![&"--base", &b, &"--new", &n, &"--max-regression", &"5"],
    ] {
        let (code, text) = compare(&args);
        assert_eq!(code, Some(2), "{text}");
    }
    let mut other = run(10_000.0);
    other.version = REPORT_VERSION + 1;
    let v = dir.write("other-version.json", &other);
    let (code, text) = gate(&b, &v);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("report versions differ"), "{text}");
}

#[test]
fn directories_pool_their_reports() {
    let dir = Dir::new("dirs");
    dir.write("base/a.json", &run(10_000.0));
    dir.write("base/b.json", &run(10_100.0));
    dir.write("base/c.json", &repeated(&[9_900.0, 10_000.0, 10_050.0]));
    std::fs::write(dir.0.join("base/report.html"), "<html></html>").unwrap();
    dir.write("new/a.json", &run(8_000.0));
    dir.write("new/b.json", &run(8_100.0));
    let extra = dir.write("extra.json", &run(7_900.0));
    let (base, new) = (dir.0.join("base"), dir.0.join("new"));
    let (code, text) = compare(&[&"--base", &base, &"--new", &new, &"--new", &extra]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("10000 ± ") && text.contains("(5)"), "{text}");
    assert!(text.contains("8000 ± ") && text.contains("(3)"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("base: ")).count(),
        3,
        "{text}"
    );
    let (code, text) = compare(&[&"--base", &base, &"--new", &base]);
    assert_eq!(code, Some(0), "{text}");
    let empty = dir.0.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, text) = compare(&[&"--base", &base, &"--new", &empty]);
    assert_eq!(code, Some(2), "{text}");
}

/// The metric names in the text table, in order.
fn table_metrics(text: &str) -> Vec<String> {
    let header = text.lines().position(|l| l.starts_with("metric ")).unwrap();
    text.lines()
        .skip(header + 1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

#[test]
fn junit_and_markdown_files() {
    use quick_xml::events::Event;
    let dir = Dir::new("files");
    let (b, n) = sides(&dir, &run(10_000.0), &run(9_000.0));
    let (xml_path, md_path) = (dir.0.join("gate.xml"), dir.0.join("gate.md"));
    let (code, text) = compare(&[&b, &n, &"--junit", &xml_path, &"--markdown", &md_path]);
    assert_eq!(code, Some(1), "{text}");
    let metrics = table_metrics(&text);
    assert_eq!(metrics.len(), 7, "2 throughputs, 2 x 2 latencies, errors: {text}");

    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut suite_failures) = (Vec::new(), Vec::new(), None);
    let mut current = String::new();
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("{e}: {xml}")) {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| {
                    e.try_get_attribute(name)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                match e.name().as_ref() {
                    b"testsuite" => suite_failures = attr("failures"),
                    b"testcase" => {
                        assert_eq!(attr("classname").as_deref(), Some("msrp-loadgen"));
                        current = attr("name").unwrap();
                        cases.push(current.clone());
                    }
                    b"failure" => {
                        let message = attr("message").unwrap();
                        assert!(
                            message.contains("base 10000 ± 0 (1)") || current != "throughput.messages_per_s",
                            "{message}"
                        );
                        assert!(message.contains("worse by 10.0% (tolerance 5%)"), "{message}");
                        assert!(message.contains("pooled spread 0 = 0"), "{message}");
                        failures.push(current.clone());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!(cases, metrics, "{xml}");
    assert_eq!(
        failures,
        ["throughput.messages_per_s", "throughput.bytes_per_s"],
        "{xml}"
    );
    assert_eq!(suite_failures.as_deref(), Some("2"), "{xml}");

    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(
        md.starts_with("### msrp-loadgen compare: FAIL: 2 regressed"),
        "{md}"
    );
    assert!(
        md.contains(
            "| metric | base ± spread (n) | new ± spread (n) | change | verdict |\n|---|--:|--:|--:|---|\n"
        ),
        "{md}"
    );
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), metrics.len(), "{md}");
    for (row, metric) in rows.iter().zip(&metrics) {
        assert!(row.starts_with(&format!("| `{metric}` |")), "{row}");
    }
}
