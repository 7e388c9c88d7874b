//! The engine under test. By default it is the engine library linked into
//! this binary, run in a child process (`msrp-loadgen engine ...`) so that
//! /proc tells its CPU time and memory apart from the load's; with
//! `--target` and `--control` it is an `msrpd` someone else started.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How the embedded engine is started.
pub struct EmbeddedSettings {
    pub shards: usize,
    /// CPUs for the shards, in order; empty: not pinned.
    pub cpus: Vec<usize>,
    pub sessions_total: usize,
    pub sessions_per_connection: usize,
    pub connections: usize,
    pub chunk_bytes: u64,
    /// Where received large bodies go; finished files are deleted as they
    /// appear (an application would take them).
    pub spool: PathBuf,
    /// Give the engine a TLS listener with certificates made now.
    pub tls: bool,
}

/// The engine the run measures.
pub struct Engine {
    pub msrp: SocketAddr,
    /// The TLS listener and the certificates it presents (`--tls`).
    pub msrps: Option<SocketAddr>,
    pub pki: Option<crate::tls::Pki>,
    pub control: PathBuf,
    /// For /proc; `None` when an external engine's pid is not visible.
    pub pid: Option<u32>,
    child: Option<Child>,
    dir: Option<PathBuf>,
    cleaner: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Engine {
    /// Starts the engine library in a child process and waits for it to
    /// listen.
    pub fn start(settings: &EmbeddedSettings) -> Result<Engine> {
        let dir = std::env::temp_dir().join(format!("msrp-loadgen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let control = dir.join("control.sock");
        let exe = std::env::current_exe().context("finding this program to run the engine")?;
        let mut command = Command::new(exe);
        command
            .arg("engine")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--control")
            .arg(&control)
            .arg("--spool")
            .arg(&settings.spool)
            .args(["--shards", &settings.shards.to_string()])
            .args([
                "--pending-sessions-max",
                &settings.sessions_total.max(1).to_string(),
            ])
            .args([
                "--sessions-per-connection-max",
                &settings.sessions_per_connection.max(16_384).to_string(),
            ])
            .args([
                "--connections-max",
                &(settings.connections + 16).max(10_000).to_string(),
            ])
            .args(["--chunk-size", &settings.chunk_bytes.to_string()])
            .args(["--log", "warn"]);
        let pki = match settings.tls {
            false => None,
            true => Some(crate::tls::Pki::make(&dir.join("tls"))?),
        };
        if let Some(pki) = &pki {
            command
                .args(["--tls-listen", "127.0.0.1:0"])
                .arg("--tls-cert")
                .arg(&pki.cert)
                .arg("--tls-key")
                .arg(&pki.key);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match settings.cpus.is_empty() {
            true => command.arg("--no-pin"),
            false => command.arg("--cpus").arg(
                settings
                    .cpus
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        };
        let mut child = command.spawn().context("starting the embedded engine")?;
        let stdout = child.stdout.take().context("the engine's standard output")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the engine's ready line")?;
        let msrp = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("msrp="))
            .and_then(|a| a.parse().ok());
        let msrps = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("msrps="))
            .and_then(|a| a.split(',').next())
            .and_then(|a| a.parse().ok());
        if pki.is_some() && msrps.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the embedded engine has no TLS listener (said {line:?})");
        }
        let Some(msrp) = msrp else {
            let _ = child.kill();
            let status = child.wait().ok();
            bail!("the embedded engine did not start (said {line:?}, exit {status:?})");
        };
        let stop = Arc::new(AtomicBool::new(false));
        let cleaner = {
            let stop = stop.clone();
            let spool = settings.spool.clone();
            std::thread::Builder::new()
                .name("spool-cleaner".into())
                .spawn(move || clean_spool(&spool, &stop))
                .context("starting the spool cleaner")?
        };
        Ok(Engine {
            msrp,
            msrps,
            pki,
            control,
            pid: Some(child.id()),
            child: Some(child),
            dir: Some(dir),
            cleaner: Some((stop, cleaner)),
        })
    }

    /// An engine started elsewhere; its pid comes from the control socket's
    /// peer credentials, when the kernel gives them.
    pub fn external(msrp: SocketAddr, control: PathBuf) -> Result<Engine> {
        let stream = UnixStream::connect(&control)
            .with_context(|| format!("connecting to the control socket {}", control.display()))?;
        Ok(Engine {
            msrp,
            msrps: None,
            pki: None,
            control,
            pid: peer_pid(&stream),
            child: None,
            dir: None,
            cleaner: None,
        })
    }

    /// Stops an embedded engine the way an operator would (SIGTERM, then a
    /// kill after 10 s).
    pub fn stop(&mut self) -> Result<()> {
        if let Some((stop, cleaner)) = self.cleaner.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = cleaner.join();
        }
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill with a pid we own has no memory effects.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                if let Some(dir) = self.dir.take() {
                    let _ = std::fs::remove_dir_all(dir);
                }
                if !status.success() {
                    bail!("the embedded engine exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the embedded engine did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some((stop, _)) = &self.cleaner {
            stop.store(true, Ordering::Relaxed);
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Deletes finished spool files (the engine writes `.NAME.part` and renames
/// it when complete) so that a long bulk run does not fill the disk.
fn clean_spool(spool: &Path, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(entries) = std::fs::read_dir(spool) {
            for entry in entries.flatten() {
                if !entry.file_name().to_string_lossy().starts_with('.') {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn peer_pid(stream: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writing and len is their size.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0 && cred.pid > 0).then_some(cred.pid as u32)
}
