use super::*;
use crate::fixture::latency;
use crate::report::{Fractions, Latency, LATENCY_CHUNK, LATENCY_DELIVERED, REPORT_VERSION};

fn report(messages_per_s: f64, chunk_p99: u64) -> Report {
    crate::fixture::run(messages_per_s, chunk_p99 / 2, chunk_p99)
}

/// A `bench --repeat` report: one run per message rate.
fn repeated(rates: &[f64]) -> Report {
    let mut r = report(crate::stats::median(rates), 100);
    r.runs = rates.iter().map(|&m| report(m, 100)).collect();
    r
}

fn row<'a>(c: &'a Comparison, metric: &str) -> &'a Row {
    c.rows
        .iter()
        .find(|r| r.metric == metric)
        .unwrap_or_else(|| panic!("no row {metric}: {c}"))
}

fn verdict(c: &Comparison, metric: &str) -> Verdict {
    row(c, metric).verdict
}

fn two(base: &Report, new: &Report, rule: Rule) -> Comparison {
    compare_sources(
        &[Source {
            name: "base.json",
            report: base,
        }],
        &[Source {
            name: "new.json",
            report: new,
        }],
        rule,
    )
}

const RULE: Rule = Rule {
    tolerance: 0.05,
    noise_k: 3.0,
};

#[test]
fn tolerance_accepts_percent_and_fraction() {
    for (text, want) in [
        ("5%", 0.05),
        ("5 %", 0.05),
        (" 2.5% ", 0.025),
        ("0.05", 0.05),
        ("0", 0.0),
        ("0%", 0.0),
        ("99.9%", 0.999),
    ] {
        let got = parse_tolerance(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!((got - want).abs() < 1e-12, "{text}: {got}");
    }
}

#[test]
fn tolerance_refuses_ambiguous_negative_and_whole() {
    for text in [
        "5", "-5%", "-0.1", "100%", "150%", "1", "1.0", "", "%", "five", "5%%", "inf%", "NaN",
    ] {
        assert!(parse_tolerance(text).is_err(), "{text:?} accepted");
    }
}

#[test]
fn within_tolerance_passes() {
    let c = compare(&report(10_000.0, 100), &report(9_700.0, 104), 0.05);
    assert!(c.passed(), "{c}");
    assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::Ok);
    assert_eq!(verdict(&c, "latency.chunk_200.p99_us"), Verdict::Ok);
    assert_eq!(verdict(&c, "latency.chunk_200.p50_us"), Verdict::Info);
    let text = c.to_string();
    assert!(text.starts_with("rule: a metric regresses when"), "{text}");
    assert!(text.ends_with("PASS (max regression 5%)\n"), "{text}");
}

#[test]
fn improvement_passes() {
    let c = compare(&report(10_000.0, 100), &report(20_000.0, 50), 0.05);
    assert!(c.passed(), "{c}");
    assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::Improved);
    assert_eq!(verdict(&c, "latency.chunk_200.p99_us"), Verdict::Improved);
}

#[test]
fn throughput_drop_fails() {
    let c = compare(&report(10_000.0, 100), &report(9_000.0, 100), 0.05);
    assert!(!c.passed());
    assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::Regressed);
    assert_eq!(verdict(&c, "throughput.bytes_per_s"), Verdict::Regressed);
    let text = c.to_string();
    assert!(text.contains("-10.0%"), "{text}");
    assert!(text.contains("10000 ± 0 (1)"), "{text}");
    assert!(text.contains("FAIL (max regression 5%): 2 regressed"), "{text}");
    let reason = row(&c, "throughput.messages_per_s").reason.as_deref();
    assert_eq!(
        reason,
        Some("median 10000 -> 9000: worse by 10.0% (tolerance 5%) and by 1000 > 3 x pooled spread 0 = 0")
    );
}

#[test]
fn p99_growth_fails_and_p50_never_does() {
    let base = report(10_000.0, 100);
    let mut new = report(10_000.0, 120);
    new.latency_us
        .get_mut(LATENCY_DELIVERED)
        .expect("helper adds delivered")
        .p50 = 4000;
    let c = compare(&base, &new, 0.05);
    assert!(!c.passed());
    assert_eq!(verdict(&c, "latency.chunk_200.p99_us"), Verdict::Regressed);
    assert_eq!(verdict(&c, "latency.delivered.p50_us"), Verdict::Info);
    assert_eq!(c.regressions().count(), 1);
}

#[test]
fn missing_or_empty_kind_fails() {
    let base = report(10_000.0, 100);
    let mut new = report(10_000.0, 100);
    new.latency_us.remove(LATENCY_DELIVERED);
    let c = compare(&base, &new, 0.05);
    assert!(!c.passed());
    assert_eq!(verdict(&c, "latency.delivered.p99_us"), Verdict::Missing);
    let text = c.to_string();
    assert!(text.contains("missing"), "{text}");
    assert!(
        text.contains("latency.delivered.p99_us: in the base (1 runs) but in none of the new runs"),
        "{text}"
    );

    let mut new = report(10_000.0, 100);
    let delivered = new
        .latency_us
        .get_mut(LATENCY_DELIVERED)
        .expect("helper adds delivered");
    *delivered = Latency::default();
    assert!(!compare(&base, &new, 0.05).passed());
}

#[test]
fn profile_mismatch_fails() {
    let base = report(10_000.0, 100);
    let mut new = report(10_000.0, 100);
    new.profile = serde_json::json!({"scenario": "sms", "sessions": 200});
    let c = compare(&base, &new, 0.05);
    assert!(!c.passed());
    assert_eq!(c.regressions().count(), 0);
    assert_eq!(c.profile_differences, ["profile.sessions: 100 -> 200"]);
    assert!(c
        .to_string()
        .contains("FAIL (max regression 5%): profiles differ"));
}

#[test]
fn profiles_must_match_across_every_report_of_both_sides() {
    let (a, b, n) = (
        report(10_000.0, 100),
        report(10_000.0, 100),
        report(10_000.0, 100),
    );
    let mut odd = report(10_000.0, 100);
    odd.profile = serde_json::json!({"scenario": "sms", "sessions": 100, "window": 4});
    let base = [
        Source {
            name: "a.json",
            report: &a,
        },
        Source {
            name: "odd.json",
            report: &odd,
        },
    ];
    let new = [
        Source {
            name: "b.json",
            report: &b,
        },
        Source {
            name: "n.json",
            report: &n,
        },
    ];
    let c = compare_sources(&base, &new, RULE);
    assert!(!c.passed());
    assert_eq!(
        c.profile_differences,
        ["a.json vs odd.json: profile.window: (absent) -> 4"]
    );
}

#[test]
fn zero_base_metrics_are_skipped() {
    let mut base = report(10_000.0, 100);
    base.throughput.bytes_per_s = 0.0;
    base.latency_us
        .get_mut(LATENCY_CHUNK)
        .expect("helper adds chunk")
        .count = 0;
    let new = report(10_000.0, 5000);
    let c = compare(&base, &new, 0.05);
    assert!(c.passed(), "{c}");
    assert_eq!(verdict(&c, "throughput.bytes_per_s"), Verdict::Skipped);
    assert_eq!(verdict(&c, "latency.chunk_200.p99_us"), Verdict::Skipped);
}

#[test]
fn new_errors_fail_only_when_the_base_had_none() {
    let base = report(10_000.0, 100);
    let mut new = report(10_000.0, 100);
    new.errors.insert("408".to_owned(), 3);
    let c = compare(&base, &new, 0.05);
    assert!(!c.passed());
    assert_eq!(verdict(&c, "errors.total"), Verdict::Regressed);
    let mut base = base;
    base.errors.insert("local".to_owned(), 1);
    let c = compare(&base, &new, 0.05);
    assert!(c.passed(), "{c}");
    assert_eq!(verdict(&c, "errors.total"), Verdict::Info);
}

#[test]
fn host_difference_is_a_note() {
    let base = report(10_000.0, 100);
    let mut new = report(10_000.0, 100);
    new.host.hostname = "ci-2".to_owned();
    let c = compare(&base, &new, 0.05);
    assert!(c.passed());
    assert!(
        c.notes.iter().any(|n| n.starts_with("hosts differ: base ci-1")),
        "{c}"
    );
}

#[test]
fn repeated_reports_count_as_their_runs_pooled_per_side() {
    let base = repeated(&[9_900.0, 10_000.0, 10_100.0]);
    let more = repeated(&[10_050.0, 9_950.0]);
    let new = repeated(&[9_950.0, 10_000.0, 10_050.0]);
    let c = compare_sources(
        &[
            Source {
                name: "b1",
                report: &base,
            },
            Source {
                name: "b2",
                report: &more,
            },
        ],
        &[Source {
            name: "n",
            report: &new,
        }],
        RULE,
    );
    assert!(c.passed(), "{c}");
    let r = row(&c, "throughput.messages_per_s");
    assert_eq!(r.base_stats.as_ref().map(|s| s.values.len()), Some(5));
    assert_eq!(r.new_stats.as_ref().map(|s| s.values.len()), Some(3));
    assert_eq!(r.base, Some(10_000.0));
    assert!(c.base_sources[0].ends_with("3 runs)"), "{:?}", c.base_sources);
}

#[test]
fn a_drop_within_the_noise_passes_with_a_warning_and_outside_it_fails() {
    let base = repeated(&[8_000.0, 10_000.0, 12_000.0, 9_000.0, 11_000.0]);
    let new = repeated(&[6_000.0, 8_000.0, 10_000.0, 7_000.0, 9_000.0]);
    let c = two(&base, &new, RULE);
    assert!(c.passed(), "{c}");
    assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::Noisy);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.starts_with("throughput.messages_per_s:") && w.contains("more repeats")),
        "{c}"
    );
    let tight = repeated(&[9_990.0, 10_000.0, 10_010.0]);
    let dropped = repeated(&[7_990.0, 8_000.0, 8_010.0]);
    let c = two(&tight, &dropped, RULE);
    assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::Regressed);
    assert!(!c.passed());
}

fn calibrated(messages_per_s: f64, fraction: f64) -> Report {
    let mut r = report(messages_per_s, 100);
    r.fraction_of_calibration = Some(Fractions {
        messages: fraction,
        bytes: fraction / 2.0,
    });
    r
}

#[test]
fn a_slower_host_is_not_a_regression_but_a_lower_fraction_is() {
    let c = two(&calibrated(10_000.0, 0.4), &calibrated(7_000.0, 0.4), RULE);
    assert!(c.passed(), "{c}");
    assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::SlowerHost);
    assert_eq!(verdict(&c, "throughput.bytes_per_s"), Verdict::SlowerHost);
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("the machine is slower, the code is not")),
        "{c}"
    );
    let c = two(&calibrated(10_000.0, 0.4), &calibrated(7_000.0, 0.28), RULE);
    assert!(!c.passed(), "{c}");
    assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::Regressed);
    assert_eq!(verdict(&c, "fraction.messages"), Verdict::Regressed);
    // Without a fraction on both sides a drop is a drop.
    let c = two(&calibrated(10_000.0, 0.4), &report(7_000.0, 100), RULE);
    assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::Regressed);
    // A fraction that fell as far, but inside a noisy calibration's spread
    // (`noisy`), excuses nothing: halved throughput stays a regression.
    let runs = |rate: f64, fractions: &[f64]| {
        let mut r = calibrated(rate, fractions[0]);
        r.runs = fractions.iter().map(|&f| calibrated(rate, f)).collect();
        r
    };
    let c = two(
        &runs(10_000.0, &[0.3, 0.5, 0.7]),
        &runs(5_000.0, &[0.15, 0.25, 0.35]),
        RULE,
    );
    assert_eq!(verdict(&c, "fraction.messages"), Verdict::Noisy, "{c}");
    assert_eq!(
        verdict(&c, "throughput.messages_per_s"),
        Verdict::Regressed,
        "{c}"
    );
    assert!(!c.passed(), "{c}");
}

#[test]
fn junit_escapes_and_counts() {
    use quick_xml::events::Event;
    let odd_kind = "a<b&\"c'";
    let mut base = report(10_000.0, 100);
    base.latency_us.insert(odd_kind.to_owned(), latency(10, 20));
    let mut new = report(9_000.0, 100);
    new.latency_us.insert(odd_kind.to_owned(), latency(10, 40));
    new.profile = serde_json::json!({"scenario": "sms<&>", "sessions": 100});
    let c = two(&base, &new, RULE);
    let xml = junit::render(&c);
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut names, mut failures) = (Vec::new(), 0);
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e) | Event::Empty(e)) => match e.name().as_ref() {
                b"testcase" => {
                    let name = e
                        .try_get_attribute("name")
                        .expect("attribute")
                        .expect("a testcase has a name");
                    names.push(name.unescape_value().expect("escaped").into_owned());
                }
                b"failure" => failures += 1,
                _ => {}
            },
            Ok(_) => {}
            Err(e) => panic!("{e} at {}: {xml}", reader.buffer_position()),
        }
    }
    assert!(names.contains(&format!("latency.{odd_kind}.p99_us")), "{names:?}");
    assert_eq!(names.len(), c.rows.len() + 1, "one per metric and the profile");
    assert_eq!(names.last().map(String::as_str), Some("profile"));
    assert_eq!(failures, c.failures().count() + 1);
}

#[test]
fn markdown_has_a_heading_the_rule_and_one_row_per_metric() {
    let c = compare(&report(10_000.0, 100), &report(9_000.0, 100), 0.05);
    let md = markdown::render(&c);
    assert!(
        md.starts_with("### msrp-loadgen compare: FAIL: 2 regressed\n"),
        "{md}"
    );
    assert!(md.contains("**Rule:** a metric regresses when"), "{md}");
    let rows = md.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(rows, c.rows.len(), "{md}");
    assert!(
        md.contains(
            "| `throughput.messages_per_s` | 10000 ± 0 (1) | 9000 ± 0 (1) | -10.0% | **REGRESSED** |"
        ),
        "{md}"
    );
}

#[test]
fn run_reads_files_and_names_bad_ones() {
    let dir = std::env::temp_dir().join(format!("msrp-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let base = dir.join("base.json");
    let new = dir.join("new.json");
    let bad = dir.join("bad.json");
    let write = |path: &Path, r: &Report| {
        std::fs::write(path, serde_json::to_string(r).expect("serialize")).expect("write");
    };
    write(&base, &report(10_000.0, 100));
    write(&new, &report(9_000.0, 100));
    std::fs::write(&bad, "{not json").expect("write");

    assert!(run(&base, &base, "5%").expect("same report"));
    assert!(!run(&base, &new, "5%").expect("regressed"));
    assert!(run(&base, &new, "15%").expect("within 15%"));
    let err = run(&base, &bad, "5%").expect_err("bad json");
    assert!(format!("{err:#}").contains("bad.json"), "{err:#}");
    let err = run(&dir.join("absent.json"), &new, "5%").expect_err("absent");
    assert!(format!("{err:#}").contains("absent.json"), "{err:#}");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let err = run(&base, &empty, "5%").expect_err("no reports");
    assert!(format!("{err:#}").contains("holds no *.json report"), "{err:#}");

    let mut other = report(10_000.0, 100);
    other.version = REPORT_VERSION + 1;
    write(&new, &other);
    assert!(run(&base, &new, "5%").is_err());
    std::fs::remove_dir_all(&dir).expect("clean up");
}
