//! The phase's threads: each pinned as asked, with its own io_uring
//! runtime, its end always noted, and its result (or panic) collected
//! within a deadline.

use std::any::Any;
use std::future::Future;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::phase::{Note, Role};

/// How long each thread may take to wind down once told to stop; past it
/// the thread is left behind (detached: it does not keep the process alive)
/// and the phase fails.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// One of the phase's threads: pinned, its own io_uring, its result (or
/// its panic, as an error) collected by [`Worker::join`].
pub(super) struct Worker {
    role: Role,
    handle: JoinHandle<Result<()>>,
}

impl Worker {
    pub(super) fn spawn<M, F>(role: Role, cpu: Option<usize>, notes: Sender<Note>, make: M) -> Result<Worker>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future<Output = Result<()>> + 'static,
    {
        let handle = std::thread::Builder::new()
            .name(format!("calib-{role}"))
            .spawn(move || {
                // Declared first, dropped last: the note goes out after the
                // runtime (and every socket in it) is gone, panic or not.
                let _ended = EndedNote { role, notes };
                if let Some(cpu) = cpu {
                    ensure!(
                        core_affinity::set_for_current(core_affinity::CoreId { id: cpu }),
                        "pinning the {role} thread to CPU {cpu}: {}",
                        std::io::Error::last_os_error()
                    );
                }
                // `Runtime::new` rather than `tokio_uring::start`, which
                // panics where io_uring is unavailable (an old kernel, a
                // seccomp filter, a low RLIMIT_MEMLOCK).
                let runtime =
                    tokio_uring::Runtime::new(&tokio_uring::builder()).context("starting io_uring")?;
                runtime.block_on(make())
            })
            .with_context(|| format!("spawning the {role} thread"))?;
        Ok(Worker { role, handle })
    }

    /// Waits, at most [`STOP_TIMEOUT`], for the thread to end, and returns
    /// its result; a panic becomes an error.
    pub(super) fn join(self) -> Result<()> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        // `JoinHandle::join` has no timeout; the thread is only polled while
        // it winds down, which takes milliseconds.
        while !self.handle.is_finished() {
            if Instant::now() >= deadline {
                bail!(
                    "the {} thread did not stop within {STOP_TIMEOUT:?}; left running",
                    self.role
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        match self.handle.join() {
            Ok(result) => result.with_context(|| format!("the {} thread", self.role)),
            Err(panic) => Err(anyhow!(
                "the {} thread panicked: {}",
                self.role,
                panic_message(&*panic)
            )),
        }
    }
}

struct EndedNote {
    role: Role,
    notes: Sender<Note>,
}

impl Drop for EndedNote {
    fn drop(&mut self) {
        let _ = self.notes.send(Note::Ended(self.role));
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}
