//! Replays every committed fuzz input through the target's body, on
//! stable, in the normal test run: `fuzz/corpus/<target>/` (the minimised
//! corpus, which must be there and not empty) and `fuzz/regressions/<target>/`
//! (inputs that once crashed, kept so the bug stays fixed). A regression
//! fails here without any fuzzing luck, naming the file.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use msrp_signaling::fuzzing;

/// A target's name and its body.
type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("msml", fuzzing::msml),
    ("sip_stream", fuzzing::sip_stream),
    ("sip_datagram", fuzzing::sip_datagram),
    ("sdp", fuzzing::sdp),
    ("rest", fuzzing::rest),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_fuzz_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failed = Vec::new();
    for &(target, body) in TARGETS {
        let corpus = files(&root.join("corpus").join(target));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{target} is missing or empty: every target keeps a committed corpus"
        );
        let regressions = files(&root.join("regressions").join(target));
        for file in corpus.iter().chain(&regressions) {
            let data = fs::read(file).expect("readable corpus file");
            if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "inputs that fail their fuzz target: {failed:#?}"
    );
}
