//! The raw limits of this host, measured just before an MSRP run so that its
//! figures read as fractions of what loopback TCP allows here: the same
//! runtime (tokio-uring, one thread a side), the same kinds of writes, no
//! MSRP at all.
//!
//! Two phases, each on a fresh pair of threads:
//!
//! - *small*: client connections keep a window of `message_bytes` writes
//!   outstanding against an echo server and count complete messages as
//!   they come back (the shape of pipelined SENDs answered by 200s);
//! - *bulk*: one connection streams `chunk_bytes` writes into a sink that
//!   counts the octets it reads (the shape of a large file in chunks).
//!
//! It began as the raw server and pipelined client of `wirebench`, a tool of
//! issue 4 that this module and `bench` replace; here both run in-process:
//! the server and the client each run on their own
//! thread with their own io_uring, pinned as asked, and both end before
//! [`calibrate`] returns.

mod client;
mod measure;
mod phase;
mod server;
mod worker;

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::report::Calibration;
use client::{bulk_client, small_client};
use phase::{run_phase, Phase, Pins};

/// Run before each phase's measured interval and left out of it: long
/// enough for the connections' windows and socket buffers to fill and the
/// rate to settle.
pub const WARM_UP: Duration = Duration::from_millis(300);

/// Read buffer per connection, on both sides, as large as the engine's: one
/// read drains many echoed messages.
const READ_BYTES: usize = 256 * 1024;

/// What to measure. `calibrate` rejects nonsense (zero sizes, a window
/// under 2, more than two CPUs) with an error.
#[derive(Clone, Debug)]
pub struct CalibrationSettings {
    /// Octets of one small write: the size of one serialized MSRP SEND frame,
    /// so that the echo carries as many frames per second as the engine
    /// would have to parse at best.
    pub message_bytes: usize,
    /// Octets of one bulk write unit (a chunk's body).
    pub chunk_bytes: usize,
    /// Measured seconds of each phase, after [`WARM_UP`].
    pub seconds_each: f64,
    /// `[server_cpu, client_cpu]`; one CPU pins both threads to it; empty
    /// leaves them to the scheduler.
    pub cpus: Vec<usize>,
    /// Small messages outstanding per connection (at least 2: a window is
    /// written in two halves).
    pub window: usize,
    /// Connections of the small phase; bulk uses one.
    pub connections: usize,
}

impl Default for CalibrationSettings {
    fn default() -> CalibrationSettings {
        CalibrationSettings {
            message_bytes: 350,
            chunk_bytes: 64 * 1024,
            seconds_each: 2.0,
            cpus: Vec::new(),
            window: 256,
            connections: 1,
        }
    }
}

/// Measures both phases, one after the other, and returns their rates. Takes
/// about `2 * (WARM_UP + seconds_each)` seconds; every thread and socket it
/// made is gone when it returns, whether it succeeds or not.
pub fn calibrate(settings: &CalibrationSettings) -> Result<Calibration> {
    check(settings)?;
    let (server_cpu, client_cpu) = match settings.cpus[..] {
        [] => (None, None),
        [both] => (Some(both), Some(both)),
        [server, client] => (Some(server), Some(client)),
        _ => bail!(
            "calibration runs two threads, server and client; {} CPUs given",
            settings.cpus.len()
        ),
    };
    let period = Duration::from_secs_f64(settings.seconds_each);
    let pins = Pins {
        server: server_cpu,
        client: client_cpu,
    };

    let small = run_phase(Phase::Small, pins, period, {
        let (message_bytes, window, connections) =
            (settings.message_bytes, settings.window, settings.connections);
        move |addr, shared, notes| small_client(addr, message_bytes, window, connections, shared, notes)
    })
    .context("calibrating small pipelined writes (echo)")?;

    let bulk = run_phase(Phase::Bulk, pins, period, {
        let chunk_bytes = settings.chunk_bytes;
        move |addr, shared, notes| bulk_client(addr, chunk_bytes, shared, notes)
    })
    .context("calibrating bulk writes (sink)")?;

    Ok(Calibration {
        small_messages_per_s: small.per_s(),
        message_bytes: settings.message_bytes,
        bulk_bytes_per_s: bulk.per_s(),
        chunk_bytes: settings.chunk_bytes,
        seconds_each: settings.seconds_each,
    })
}

fn check(settings: &CalibrationSettings) -> Result<()> {
    ensure!(settings.message_bytes > 0, "message_bytes must be at least 1");
    ensure!(settings.chunk_bytes > 0, "chunk_bytes must be at least 1");
    ensure!(
        settings.seconds_each.is_finite() && settings.seconds_each > 0.0,
        "seconds_each must be a positive number of seconds, not {}",
        settings.seconds_each
    );
    // Far beyond any sensible run, and below what `Duration` can hold.
    ensure!(
        settings.seconds_each <= 86_400.0,
        "seconds_each of {} is more than a day",
        settings.seconds_each
    );
    ensure!(
        settings.window >= 2,
        "window must be at least 2: a window is written in two halves"
    );
    ensure!(settings.connections > 0, "connections must be at least 1");
    for &cpu in &settings.cpus {
        // `core_affinity` indexes a fixed-size CPU set with it (and panics
        // past its end); the kernel judges the rest when the thread pins.
        ensure!(
            cpu < libc::CPU_SETSIZE as usize,
            "CPU {cpu} is beyond the {} a CPU set can name",
            libc::CPU_SETSIZE
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(connections: usize, cpus: Vec<usize>) -> CalibrationSettings {
        CalibrationSettings {
            message_bytes: 350,
            chunk_bytes: 64 * 1024,
            seconds_each: 0.3,
            cpus,
            window: 16,
            connections,
        }
    }

    fn assert_sane(calibration: &Calibration, settings: &CalibrationSettings) {
        assert!(
            calibration.small_messages_per_s.is_finite() && calibration.small_messages_per_s > 0.0,
            "{calibration:?}"
        );
        assert!(
            calibration.bulk_bytes_per_s.is_finite() && calibration.bulk_bytes_per_s > 0.0,
            "{calibration:?}"
        );
        assert_eq!(calibration.message_bytes, settings.message_bytes);
        assert_eq!(calibration.chunk_bytes, settings.chunk_bytes);
        assert_eq!(calibration.seconds_each, settings.seconds_each);
    }

    #[test]
    fn measures_both_phases_and_echoes_the_settings() {
        let settings = quick(2, Vec::new());
        let calibration = calibrate(&settings).expect("calibrating");
        assert_sane(&calibration, &settings);
    }

    #[test]
    fn pins_both_threads_to_one_cpu() {
        let cpu = core_affinity::get_core_ids()
            .and_then(|ids| ids.first().copied())
            .map_or(0, |id| id.id);
        let settings = CalibrationSettings {
            // Odd sizes: messages straddle every read and half window.
            message_bytes: 97,
            chunk_bytes: 1000,
            window: 3,
            ..quick(1, vec![cpu])
        };
        let calibration = calibrate(&settings).expect("calibrating");
        assert_sane(&calibration, &settings);
    }

    #[test]
    fn nonsense_settings_are_errors() {
        let bad = [
            CalibrationSettings {
                window: 1,
                ..quick(1, Vec::new())
            },
            CalibrationSettings {
                message_bytes: 0,
                ..quick(1, Vec::new())
            },
            CalibrationSettings {
                seconds_each: f64::NAN,
                ..quick(1, Vec::new())
            },
            quick(0, Vec::new()),
            quick(1, vec![0, 1, 2]),
            quick(1, vec![1 << 20]),
        ];
        for settings in bad {
            assert!(calibrate(&settings).is_err(), "{settings:?}");
        }
    }

    #[test]
    fn a_cpu_the_kernel_refuses_is_an_error_not_a_panic() {
        // Inside the CPU set's range, but (almost certainly) no such CPU.
        let settings = quick(1, vec![libc::CPU_SETSIZE as usize - 1]);
        let e = calibrate(&settings).expect_err("no such CPU");
        assert!(format!("{e:#}").contains("pinning"), "{e:#}");
    }
}
