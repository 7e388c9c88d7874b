//! The control socket's path is the engine's identity on the host: one
//! engine per path. Binding refuses a path where a live engine answers (a
//! second engine would take the socket over, then delete it on exit, leaving
//! the first unreachable), replaces a stale socket a dead one left, refuses
//! to replace anything that is not a socket, and creates the socket with
//! mode 0600 from the start: no moment exists when another user could
//! connect.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Binds the control socket at `path`; errors say what stands in the way.
pub(super) fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another engine is running on this control socket (stop it, or give --control another path)",
            )),
            // Nobody listens: a socket a dead engine left behind.
            Err(_) => std::fs::remove_file(path)?,
        },
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket; it is left alone",
            ))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    // The umask is process-wide: this runs before any other thread of the
    // engine exists, so nothing else creates a file under it.
    // SAFETY: umask only swaps the process's file-creation mask.
    let previous = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above, restoring the mask we found.
    unsafe { libc::umask(previous) };
    bound
}
