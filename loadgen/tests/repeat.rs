//! `bench --repeat` and `trend` through the real binary: a repeated smoke
//! bench's report and page, and a trend page over five reports made from
//! two smoke benches.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use msrp_loadgen::report::Report;
use serde_json::Value;

fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_msrp-loadgen"))
}

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("repeat-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("msrp-loadgen runs");
    assert!(
        output.status.success(),
        "{:?} exited {}\nstdout:\n{}\nstderr:\n{}",
        command,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn find(dir: &Path, extension: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    assert_eq!(found.len(), 1, "one .{extension} in {}: {found:?}", dir.display());
    found[0].clone()
}

/// A smoke bench's JSON report, its HTML page and its stdout.
struct Bench {
    json: Value,
    html: String,
    stdout: String,
}

fn smoke(name: &str, args: &[&str]) -> Bench {
    let dir = out_dir(name);
    let output = run(loadgen()
        .args(["bench", "--smoke", "--quiet", "--out-dir"])
        .arg(&dir)
        .args(args));
    Bench {
        json: serde_json::from_slice(&std::fs::read(find(&dir, "json")).unwrap()).unwrap(),
        html: std::fs::read_to_string(find(&dir, "html")).unwrap(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// `bench --repeat 3 --label t1`, run once for every test that needs it.
fn repeated() -> &'static Bench {
    static REPEATED: OnceLock<Bench> = OnceLock::new();
    REPEATED.get_or_init(|| smoke("three", &["--repeat", "3", "--label", "t1"]))
}

#[test]
fn repeat_writes_one_report_of_every_run_with_the_median_runs_figures() {
    let b = repeated();
    let r = &b.json;
    assert_eq!(r["label"], "t1");
    let runs = r["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3);
    for run in runs {
        assert!(run.get("runs").is_none(), "a run holds no runs of its own");
        assert!(run["throughput"]["messages_per_s"].as_f64().unwrap() > 0.0);
    }
    let rate = &r["stats"]["throughput.messages_per_s"];
    let values: Vec<f64> = rate["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 3, "{rate}");
    let run_rates: Vec<f64> = runs
        .iter()
        .map(|run| run["throughput"]["messages_per_s"].as_f64().unwrap())
        .collect();
    assert_eq!(values, run_rates, "values in run order");
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let top = r["throughput"]["messages_per_s"].as_f64().unwrap();
    assert_eq!(rate["median"].as_f64().unwrap(), sorted[1]);
    assert_eq!(top, sorted[1], "the top-level figures are the median run's");
    // The median run's other figures came along with its rate.
    let median_run = runs
        .iter()
        .find(|run| run["throughput"]["messages_per_s"].as_f64() == Some(top))
        .unwrap();
    assert_eq!(r["throughput"]["messages"], median_run["throughput"]["messages"]);
    assert_eq!(r["latency_us"], median_run["latency_us"]);

    // The report parses back, and its stats are stats::summarize's of it.
    let report: Report = serde_json::from_value(r.clone()).unwrap();
    let summarized = msrp_loadgen::stats::summarize(&report);
    assert_eq!(
        report.stats.keys().collect::<Vec<_>>(),
        summarized.keys().collect::<Vec<_>>()
    );
    // Derived metrics (CPU per message) are recomputed from figures that
    // went through JSON: equal but for the last digit.
    for (name, s) in &report.stats {
        let again = &summarized[name].values;
        assert_eq!(s.values.len(), again.len(), "{name}");
        for (a, b) in s.values.iter().zip(again) {
            assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{name}: {a} vs {b}");
        }
    }

    let section = b
        .html
        .split("<h2>Repeated runs</h2>")
        .nth(1)
        .expect("the Repeated runs section");
    let section = section.split("<h2>").next().unwrap();
    assert_eq!(
        section.matches("<svg").count(),
        report.stats.len(),
        "an <svg> per metric"
    );
    for name in report.stats.keys() {
        assert!(section.contains(&format!("data-metric=\"{name}\"")), "{name}");
    }
    assert!(!b.html.contains("NaN"));
    assert!(b.stdout.contains("over 3 runs"), "{}", b.stdout);
    assert!(
        b.stdout.contains("throughput.messages_per_s") && b.stdout.contains(" ± "),
        "{}",
        b.stdout
    );
}

fn write(path: &Path, report: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(report).unwrap()).unwrap();
}

fn metric_names(reports: &[&Value]) -> BTreeSet<String> {
    reports
        .iter()
        .flat_map(|r| {
            let report: Report = serde_json::from_value((*r).clone()).unwrap();
            msrp_loadgen::stats::summarize(&report).into_keys()
        })
        .collect()
}

#[test]
fn trend_plots_every_metric_across_five_reports() {
    let single = smoke("single", &[]).json;
    let repeated = repeated().json.clone();
    let dir = out_dir("trend");
    let labels = ["base", "t1", "v3 <b>&amp;", "v4", "v5"];
    let mut made = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let mut r = match i {
            1 => repeated.clone(),
            _ => single.clone(),
        };
        r["label"] = Value::from(*label);
        r["started_at"] = Value::from(format!("2030-01-0{}T10:00:00Z", i + 1));
        if i >= 2 {
            let rate = r["throughput"]["messages_per_s"].as_f64().unwrap();
            r["throughput"]["messages_per_s"] = Value::from(rate * (1.0 + i as f64 / 10.0));
        }
        // Written out of order: the directory is ordered by started_at.
        write(&dir.join(format!("r{}.json", labels.len() - i)), &r);
        made.push(r);
    }
    std::fs::write(dir.join("notes.json"), "{\"not\": \"a report\"}").unwrap();
    let page_path = dir.join("trend.html");
    let output = run(loadgen().arg("trend").arg(&dir).arg("--out").arg(&page_path));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("trend.html"),
        "prints the page's path"
    );
    let page = std::fs::read_to_string(&page_path).unwrap();
    let names = metric_names(&made.iter().collect::<Vec<_>>());
    assert!(names.contains("throughput.messages_per_s"), "{names:?}");
    assert_eq!(page.matches("<svg").count(), names.len(), "one plot per metric");
    assert_eq!(page.matches("data-metric=").count(), names.len());
    for name in &names {
        assert!(page.contains(&format!("data-metric=\"{name}\"")), "{name}");
    }
    for label in ["base", "t1", "v4", "v5"] {
        assert!(page.contains(&format!("<th>{label}</th>")), "{label}");
    }
    assert!(page.contains("v3 &lt;b&gt;&amp;amp;"), "labels are escaped");
    assert!(!page.contains("<b>"));
    for svg in page.split("<svg").skip(1) {
        let svg = svg.split("</svg>").next().unwrap();
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "no NaN or infinity: {svg}"
        );
    }
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script"));
    // In started_at order, whatever the file names.
    let at = |label: &str| page.find(&format!("<th>{label}</th>")).unwrap();
    assert!(at("base") < at("t1") && at("t1") < at("v4") && at("v4") < at("v5"));

    // Files in the order given.
    let reversed = dir.join("reversed.html");
    run(loadgen()
        .arg("trend")
        .args([dir.join("r1.json"), dir.join("r5.json")])
        .arg("--out")
        .arg(&reversed));
    let page = std::fs::read_to_string(&reversed).unwrap();
    assert!(page.find("<th>v5</th>").unwrap() < page.find("<th>base</th>").unwrap());

    render_headless(&page_path);
}

fn refused(args: &[&Path]) -> String {
    let output = loadgen()
        .arg("trend")
        .args(args)
        .output()
        .expect("msrp-loadgen runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn trend_refuses_an_empty_directory_and_a_file_that_is_not_a_report() {
    let dir = out_dir("refused");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let stderr = refused(&[&empty]);
    assert!(stderr.contains("no reports found"), "{stderr}");
    let not_a_report = dir.join("notes.json");
    std::fs::write(&not_a_report, "{\"not\": \"a report\"}").unwrap();
    let stderr = refused(&[&not_a_report]);
    assert!(stderr.contains("is not an msrp-loadgen report"), "{stderr}");
    let missing = dir.join("missing.json");
    let stderr = refused(&[&missing]);
    assert!(stderr.contains("cannot read"), "{stderr}");
}

/// Where Chromium is installed, the page must render headless; CI has
/// none, and then this checks nothing.
fn render_headless(page: &Path) {
    let Some(browser) = ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| on_path(name))
    else {
        return;
    };
    let profile = page.with_extension("chromium-profile");
    let mut child = Command::new(&browser)
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    // Read as it writes: a DOM larger than the pipe would block it.
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} did not render {} in 60 s", browser.display(), page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let dom = reader.join().unwrap();
    assert!(status.success(), "{} exited {status}", browser.display());
    assert!(dom.contains("<svg"), "the rendered DOM has the plots");
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The CI gate on a repeated report: against itself it passes; against a
/// copy whose every run delivered a tenth as much (and so a tenth of the
/// fraction of its calibration) it fails on throughput, and says so in
/// JUnit. A tenth, not a half: three short runs on a shared 2-core machine
/// were seen 21 % apart (1.4826 x MAD) in CI, which puts a halving inside
/// 3 x the pooled spread, `noisy` by the rule's own design; a tenth stays
/// outside it up to a 42 % spread.
#[test]
fn a_repeated_report_passes_against_itself_and_fails_against_a_tenth_of_its_throughput() {
    let bench = repeated();
    let dir = out_dir("gate");
    let base = dir.join("base.json");
    write(&base, &bench.json);
    let same = loadgen()
        .args(["compare", "--base"])
        .arg(&base)
        .arg("--new")
        .arg(&base)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{table}");
    let mut halved = bench.json.clone();
    let halve = |report: &mut Value| {
        for (section, field) in [
            ("throughput", "messages_per_s"),
            ("throughput", "bytes_per_s"),
            ("fraction_of_calibration", "messages"),
            ("fraction_of_calibration", "bytes"),
        ] {
            if let Some(v) = report[section][field].as_f64() {
                report[section][field] = (v / 10.0).into();
            }
        }
    };
    halve(&mut halved);
    for run in halved["runs"].as_array_mut().unwrap() {
        halve(run);
    }
    // Its summary is of the runs it no longer holds.
    halved.as_object_mut().unwrap().remove("stats");
    let new = dir.join("halved.json");
    write(&new, &halved);
    let junit = dir.join("gate.xml");
    let gate = loadgen()
        .args(["compare", "--base"])
        .arg(&base)
        .arg("--new")
        .arg(&new)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&gate.stdout);
    assert_eq!(gate.status.code(), Some(1), "{table}");
    let row = table
        .lines()
        .find(|l| l.contains("throughput.messages_per_s"))
        .unwrap_or_default();
    assert!(row.contains("REGRESSED"), "{table}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("name=\"throughput.messages_per_s\"") && xml.contains("<failure"),
        "{xml}"
    );
}
