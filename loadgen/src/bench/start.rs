//! Before the load: the raw loopback calibration, sized like the run's
//! messages and pinned like its threads, and the engine under test, started
//! here or found at `--target` and `--control`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Bench;
use crate::calibrate::{calibrate, CalibrationSettings};
use crate::embedded::{EmbeddedSettings, Engine};
use crate::procfs;
use crate::report::Calibration;

/// Header octets of a SEND as the load writes it (paths, ids, ranges), for
/// sizing the calibration's raw writes like MSRP's.
const SEND_HEAD_BYTES: usize = 200;

/// The raw loopback limits, unless the profile turns calibration off.
pub(super) fn calibration(bench: &Bench) -> Result<Option<Calibration>> {
    let (profile, layout, progress) = (&bench.profile, &bench.layout, &bench.progress);
    Ok(match profile.calibrate {
        false => None,
        true => {
            progress.phase("calibrating raw loopback TCP");
            let message_bytes = profile.sizes.0.iter().map(|&(s, _)| s).min().unwrap_or(160) as usize;
            let settings = CalibrationSettings {
                message_bytes: message_bytes.min(64 << 10) + SEND_HEAD_BYTES,
                chunk_bytes: profile.chunk_bytes as usize,
                seconds_each: profile.calibrate_seconds.0,
                cpus: match (layout.engine_cpus.first(), layout.load_cpus.first()) {
                    (Some(&server), Some(&client)) => vec![server, client],
                    _ => Vec::new(),
                },
                window: 256,
                connections: profile.connections.min(64),
            };
            Some(calibrate(&settings).context("calibrating")?)
        }
    })
}

/// The engine the run measures, ready for connections.
pub(super) fn engine(bench: &Bench) -> Result<Engine> {
    let (args, profile, layout, progress) = (bench.args, &bench.profile, &bench.layout, &bench.progress);
    progress.phase("starting the engine");
    Ok(match (&args.target, &args.control) {
        (Some(target), Some(control)) => {
            let msrp = resolve(target)?;
            Engine::external(msrp, control.clone())?
        }
        _ => Engine::start(&EmbeddedSettings {
            shards: layout.shards,
            cpus: layout.engine_cpus.clone(),
            sessions_total: profile.total_sessions(),
            sessions_per_connection: profile.sessions_per_connection,
            connections: profile.connections,
            chunk_bytes: profile.chunk_bytes,
            spool: args.spool.clone().unwrap_or_else(default_spool),
            tls: profile.tls,
        })?,
    })
}

/// The engine's resident memory now; 0 when its process is not visible.
pub(super) fn rss(engine: &Engine) -> u64 {
    engine.pid.and_then(procfs::rss_bytes).unwrap_or(0)
}

pub(super) fn resolve(target: &str) -> Result<SocketAddr> {
    target
        .to_socket_addrs()
        .with_context(|| format!("resolving {target}"))?
        .next()
        .with_context(|| format!("{target} resolves to no address"))
}

fn default_spool() -> PathBuf {
    let base = match Path::new("/dev/shm").is_dir() {
        true => PathBuf::from("/dev/shm"),
        false => std::env::temp_dir(),
    };
    base.join(format!("msrp-loadgen-spool-{}", std::process::id()))
}
