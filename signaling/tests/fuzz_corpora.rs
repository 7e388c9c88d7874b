//! Replays every committed fuzz input through the target's body, on
//! stable, in the normal test run: `fuzz/corpus/<target>/` (the minimised
//! corpus, which must be there and not empty) and `fuzz/regressions/<target>/`
//! (inputs that once crashed, kept so the bug stays fixed). A regression
//! fails here without any fuzzing luck, naming the file.

use std::path::Path;

use msrp_engine::fuzzing::{replay, Target};
use msrp_signaling::fuzzing;

const TARGETS: &[Target] = &[
    ("msml", fuzzing::msml),
    ("sip_stream", fuzzing::sip_stream),
    ("sip_datagram", fuzzing::sip_datagram),
    ("sdp", fuzzing::sdp),
    ("rest", fuzzing::rest),
];

#[test]
fn every_committed_fuzz_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    if let Err(problems) = replay(&root, TARGETS) {
        panic!("committed fuzz inputs that fail:\n{problems}");
    }
}
