//! Replays committed fuzz inputs through their targets' bodies on stable,
//! for the crates' `tests/fuzz_corpora.rs`: `<root>/corpus/<target>/` (the
//! minimised corpus, which must be there and not empty) and
//! `<root>/regressions/<target>/` (inputs that once crashed, kept so the
//! bug stays fixed).

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A target's name (its directory under `corpus/`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Runs every committed input of every target; the error names each
/// target without a corpus and each input whose body panicked.
pub fn replay(root: &Path, targets: &[Target]) -> Result<usize, String> {
    let mut problems = Vec::new();
    let mut replayed = 0;
    for &(target, body) in targets {
        let corpus = files(&root.join("corpus").join(target));
        if corpus.is_empty() {
            problems.push(format!(
                "{}/corpus/{target} is missing or empty: every target keeps a committed corpus",
                root.display()
            ));
        }
        let regressions = files(&root.join("regressions").join(target));
        for file in corpus.iter().chain(&regressions) {
            let data = match fs::read(file) {
                Ok(data) => data,
                Err(error) => {
                    problems.push(format!("{}: {error}", file.display()));
                    continue;
                }
            };
            replayed += 1;
            if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
                problems.push(format!("{}: the target panicked", file.display()));
            }
        }
    }
    if problems.is_empty() {
        Ok(replayed)
    } else {
        Err(problems.join("\n"))
    }
}

/// The plain files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}
