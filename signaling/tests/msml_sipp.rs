//! Voicemail delivery driven by MSML over SIP INFO, with `sipp` (Debian
//! `sip-tester`) as the voicemail application server: it opens the control
//! dialog with `msrp-signal serve --msml` and sends the seed MSML of
//! CONTROL-SURFACES.md section 2 exactly as the SIP14 vector has it (the
//! connection id, the addresses and the source path rewritten to the
//! test's); a second msrpd + msrp-signal pair is the voicemail delivery
//! server the file is pushed to (RFC 5547).
//!
//! `cargo test -p msrp-signaling --features sipp --test msml_sipp`.

mod support;
use support::{processes, sse, stack};

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest as _;

use processes::{require_sipp, Sipp};
use sse::Sse;
use stack::Pair;

const WAIT: Duration = Duration::from_secs(20);

fn keys(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(key, value)| ["-key".to_string(), key.to_string(), value.clone()])
        .collect()
}

fn sha256(path: &Path) -> String {
    let octets = std::fs::read(path).unwrap();
    sha2::Sha256::digest(&octets)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The vector's recording, copied where the sender may read it.
fn recording(files: &Path) -> PathBuf {
    let vector = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/sip/files/RECORD_VMD4_1.amr");
    let src = files.join("RECORD_VMD4_1.amr");
    std::fs::copy(vector, &src).unwrap();
    src
}

/// The lines of sipp's message log that start with `prefix`, in order.
fn logged(dir: &Path, prefix: &str) -> Vec<String> {
    let log = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("_messages.log"))
        .expect("sipp's message log");
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|line| line.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// The event documents sipp received, in order (each is one line of its
/// INFO's body).
fn received_infos(dir: &Path) -> Vec<String> {
    logged(dir, "<msml version=\"1.1\"><event ")
}

/// The MSML results sipp received, in order.
fn received_results(dir: &Path) -> Vec<String> {
    logged(dir, "<msml version=\"1.1\"><result ")
}

#[test]
fn the_seed_msml_sends_the_recording_to_the_voicemail_server_and_reports_in_order() {
    require_sipp();
    let receiver = Pair::start("msml-vmds", &[]);
    let files = processes::test_dir("msml-files");
    let files_arg = files.display().to_string();
    let sender = Pair::start("msml-ms", &["--msml", "--files-dir", &files_arg]);
    let src = recording(&files);
    let digest = sha256(&src);
    let mut received = Sse::open(&receiver.api, "/v1/events", None);
    let mut args = keys(&[
        ("srcpath", src.display().to_string()),
        ("answerer", format!("sip:msml@{}", receiver.signal.udp)),
        ("offerer", "sip:msml@127.0.0.1".to_string()),
    ]);
    args.push(sender.signal.udp.to_string());
    let mut sipp = Sipp::start(&sender.dir, "../msml/as_transfer.xml", 1, &args);
    sipp.wait_success();
    // The events, in order, with the values the schema's patterns allow.
    let infos = received_infos(&sender.dir);
    let names: Vec<&str> = infos
        .iter()
        .map(|i| {
            i.split("event name=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        names,
        ["transfer.objectdone", "TransferEnd", "msml.dialog.exit"],
        "{infos:?}\n{}",
        sender.logs()
    );
    assert!(
        infos[0].contains("<name>transfer.objid</name><value>transfer</value>"),
        "{}",
        infos[0]
    );
    assert!(
        infos[0].contains("<name>transfer.duration</name><value>"),
        "{}",
        infos[0]
    );
    assert!(infos[0].contains("/dialog:12345\""), "{}", infos[0]);
    assert!(
        infos[1].contains("<name>transfer.end</name><value>transfer.complete</value>"),
        "{}",
        infos[1]
    );
    assert!(
        infos[2].contains("<name>dialog.exit.status</name><value>200</value>"),
        "{}",
        infos[2]
    );
    for info in &infos {
        for value in info.split("<value>").skip(1) {
            let value = value.split("</value>").next().unwrap();
            assert!(
                !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'),
                "a value outside [a-zA-Z0-9.]+: {value:?}"
            );
        }
    }
    // The voicemail delivery server got the announced file, whole.
    let incoming = received.wait("incoming", WAIT, |e| e.event == "incoming").json();
    let offer = incoming["offer"].as_str().unwrap();
    assert!(offer.contains("a=file-selector:name:\"RECORD_VMD4_1.amr\" type:audio/amr size:6406 hash:sha-1:8A:38:4D:EA:02:E7:DD:AB:F1:74:76:5F:5C:20:B6:C8:30:42:E8:EF"), "{offer}");
    assert!(
        offer.contains("a=sendonly") && offer.contains("a=file-transfer-id:"),
        "{offer}"
    );
    assert_eq!(
        incoming["from"].as_str().unwrap().split(';').next().unwrap(),
        "<sip:msml@127.0.0.1>"
    );
    let message = received.wait("message", WAIT, |e| e.event == "message").json();
    let stored = PathBuf::from(message["path"].as_str().unwrap());
    assert_eq!(sha256(&stored), digest);
    // delete="true", after success.
    assert!(!src.exists(), "the recording was not deleted");
}

/// Each bad document (the part before and after the connection id) with
/// the RFC 5707 section 11 code and a word of the description it gets.
const BAD_DOCUMENTS: &[(&str, &str, u16, &str)] = &[
    (
        r#"<msml version="1.1"><dialogstart target="conn:"#,
        r#""><transfer></msml>"#,
        400,
        "",
    ),
    (
        r#"<msml version="1.1"><!-- "#,
        r#" --><dialogstart name="a"><transfer><fileobj src="file:///tmp/a" dest="file:///tmp/b"/></transfer></dialogstart></msml>"#,
        408,
        "target",
    ),
    (
        r#"<msml version="1.1"><dialogstart target="conn:"#,
        r#""><transfer><fileobj src="file:///tmp/a" dest="file:///tmp/b"/><sparkle/></transfer></dialogstart></msml>"#,
        401,
        "sparkle",
    ),
    (
        r#"<msml version="1.1"><dialogstart target="conn:"#,
        r#""><play><audio uri="file:///x.wav"/></play></dialogstart></msml>"#,
        402,
        "play",
    ),
    (
        r#"<msml version="1.1"><dialogstart target="conn:"#,
        r#""><transfer><fileobj src="file:///tmp/a" dest="http://example.com/vm"/></transfer></dialogstart></msml>"#,
        410,
        "http",
    ),
    (
        r#"<msml version="1.1"><dialogstart target="conn:"#,
        r#""><transfer><fileobj dest="file:///tmp/b"/></transfer></dialogstart></msml>"#,
        408,
        "src",
    ),
    (
        r#"<msml version="1.1"><dialogstart target="conn:"#,
        r#""><transfer><fileobj src="file:///nonexistent/vm.amr" dest="file:///tmp/b"/></transfer></dialogstart></msml>"#,
        410,
        "nonexistent",
    ),
    (
        r#"<msml version="1.1"><!-- "#,
        r#" --><dialogstart target="conn:nobody"><transfer><fileobj src="file:///tmp/a" dest="file:///tmp/b"/></transfer></dialogstart></msml>"#,
        430,
        "conn:nobody",
    ),
    (
        r#"<msml version="1.1"><!-- "#,
        r#" --><dialogend id="conn:x/dialog:none"/></msml>"#,
        430,
        "dialog:none",
    ),
];

#[test]
fn bad_msml_documents_get_the_rfc_5707_result_naming_what_is_wrong() {
    require_sipp();
    let files = processes::test_dir("msml-bad-files");
    let files_arg = files.display().to_string();
    let sender = Pair::start("msml-bad", &["--msml", "--files-dir", &files_arg]);
    let mut csv = String::from("SEQUENTIAL\n");
    for (before, after, _, _) in BAD_DOCUMENTS {
        assert!(
            !before.contains(';') && !after.contains(';'),
            "sipp splits fields at ;"
        );
        csv.push_str(&format!("{before};{after};\n"));
    }
    let inf = sender.dir.join("documents.csv");
    std::fs::write(&inf, csv).unwrap();
    let mut args: Vec<String> = ["-inf", inf.to_str().unwrap(), "-l", "1"]
        .map(String::from)
        .to_vec();
    args.push(sender.signal.udp.to_string());
    let calls = BAD_DOCUMENTS.len() as u32;
    let mut sipp = Sipp::start(&sender.dir, "../msml/as_documents.xml", calls, &args);
    sipp.wait_success();
    let results = received_results(&sender.dir);
    assert_eq!(
        results.len(),
        BAD_DOCUMENTS.len(),
        "{results:#?}\n{}",
        sender.logs()
    );
    for ((before, after, code, word), result) in BAD_DOCUMENTS.iter().zip(&results) {
        assert!(
            result.starts_with(&format!(
                "<msml version=\"1.1\"><result response=\"{code}\"><description>"
            )),
            "{before}...{after}: {result}"
        );
        assert!(result.contains(word), "{before}...{after}: {result}");
    }
}

#[test]
fn dialogend_stops_a_running_transfer_and_keeps_the_recording() {
    require_sipp();
    let receiver = Pair::start("msml-end-vmds", &["--no-auto-answer"]);
    let files = processes::test_dir("msml-end-files");
    let files_arg = files.display().to_string();
    let sender = Pair::start("msml-end", &["--msml", "--files-dir", &files_arg]);
    let src = recording(&files);
    let mut received = Sse::open(&receiver.api, "/v1/events", None);
    let mut args = keys(&[
        ("srcpath", src.display().to_string()),
        ("answerer", format!("sip:vmds@{}", receiver.signal.udp)),
        ("offerer", "sip:msml@127.0.0.1".to_string()),
    ]);
    args.push(sender.signal.udp.to_string());
    let mut sipp = Sipp::start(&sender.dir, "../msml/as_dialogend.xml", 1, &args);
    // The voicemail server sees the INVITE and never answers it.
    received.wait("incoming", WAIT, |e| e.event == "incoming");
    sipp.wait_success();
    let results = received_results(&sender.dir);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        results[0].contains("<dialogid>conn:") && results[0].contains("/dialog:vm2</dialogid>"),
        "{}",
        results[0]
    );
    assert!(
        results[1].starts_with("<msml version=\"1.1\"><result response=\"200\""),
        "{}",
        results[1]
    );
    let infos = received_infos(&sender.dir);
    assert_eq!(infos.len(), 2, "{infos:?}");
    assert!(infos[0].contains("event name=\"TransferEnd\""), "{}", infos[0]);
    assert!(
        infos[0].contains("<name>transfer.end</name><value>transfer.terminate</value>"),
        "{}",
        infos[0]
    );
    assert!(
        infos[0].contains("<name>transfer.objid</name><value>vm2</value>"),
        "{}",
        infos[0]
    );
    assert!(
        infos[1].contains("event name=\"msml.dialog.exit\""),
        "{}",
        infos[1]
    );
    // The pending INVITE was cancelled and the recording kept.
    received.wait("hangup", WAIT, |e| e.event == "hangup");
    assert!(src.exists(), "dialogend deleted the recording");
}
