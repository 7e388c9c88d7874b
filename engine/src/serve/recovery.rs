//! What a crashed engine left in the spool: temporary files (`.*.part`) of
//! messages that were still arriving. They are never silently kept or lost:
//! at start each is logged, counted in stats, and kept under `recovered/`
//! (named for its session and Message-ID) or removed, as `--partial-files`
//! says. Their octets were acknowledged to the peer, so with `--durable`
//! they are what the engine owes the application.

use std::io;
use std::path::{Path, PathBuf};

use crate::shard::spool_name::{parse_part_name, spool_name};

/// What becomes of a partial spool file found at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PartialFiles {
    /// Moved to `SPOOL/recovered/`, for an operator or application to read.
    #[default]
    Keep,
    /// Deleted.
    Remove,
}

/// The folder under the spool that kept partial files go to.
pub const RECOVERED_DIR: &str = "recovered";

/// Handles every partial file in `spool`; returns how many there were.
pub fn recover_partial_files(spool: &Path, action: PartialFiles, durable: bool) -> io::Result<u64> {
    let mut found = 0;
    let recovered = spool.join(RECOVERED_DIR);
    for entry in std::fs::read_dir(spool)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let partial = name.starts_with('.') && name.ends_with(".part");
        if !(partial && entry.file_type()?.is_file()) {
            continue;
        }
        found += 1;
        let path = entry.path();
        let size = entry.metadata().map_or(0, |m| m.len());
        let (session_id, message_id) = parse_part_name(name).unwrap_or_default();
        match action {
            PartialFiles::Remove => {
                std::fs::remove_file(&path)?;
                tracing::warn!(path = %path.display(), size, %session_id, %message_id,
                    "removed a partial spool file left by an engine that stopped mid-transfer (--partial-files remove)");
            }
            PartialFiles::Keep => {
                std::fs::create_dir_all(&recovered)?;
                let stem = match session_id.is_empty() {
                    true => format!("unknown-{}", &name[1..name.len() - ".part".len()]),
                    false => spool_name(&session_id, &message_id),
                };
                let to = free_name(&recovered, &stem);
                std::fs::rename(&path, &to)?;
                tracing::warn!(from = %path.display(), to = %to.display(), size, %session_id, %message_id,
                    "kept a partial spool file left by an engine that stopped mid-transfer");
            }
        }
    }
    if found > 0 && durable {
        for dir in [spool, recovered.as_path()] {
            if dir.exists() {
                std::fs::File::open(dir)?.sync_all()?;
            }
        }
    }
    Ok(found)
}

/// `STEM.part`, or `STEM.N.part` for the first N not taken (a message can
/// be left partial by more than one crash).
fn free_name(dir: &Path, stem: &str) -> PathBuf {
    let first = dir.join(format!("{stem}.part"));
    if !first.exists() {
        return first;
    }
    (1u64..)
        .map(|n| dir.join(format!("{stem}.{n}.part")))
        .find(|path| !path.exists())
        .unwrap_or(first)
}
