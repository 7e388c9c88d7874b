//! The size and sha-1 of a file on disk, for RFC 5547's `size` and
//! `hash:sha-1` selectors (section 6): what we announce of a file we send,
//! and what we check of one pushed to us. Read once, in 1 MiB pieces, never
//! whole in memory.

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Blocking: call it where blocking is allowed (a blocking thread).
pub fn sha1_of_file(path: &Path) -> std::io::Result<(u64, [u8; 20])> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha1_smol::Sha1::new();
    let mut piece = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut piece)?;
        if n == 0 {
            return Ok((size, hasher.digest().bytes()));
        }
        size += n as u64;
        hasher.update(&piece[..n]);
    }
}

/// [`sha1_of_file`] in tokio's blocking pool.
pub async fn sha1_of_file_async(path: PathBuf) -> std::io::Result<(u64, [u8; 20])> {
    tokio::task::spawn_blocking(move || sha1_of_file(&path))
        .await
        .map_err(std::io::Error::other)?
}
