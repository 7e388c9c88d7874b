//! `calibrate` as the benchmark calls it, alone in its own process, so that
//! what it leaves behind (threads, descriptors) can be counted.

use std::fs;

use msrp_loadgen::calibrate::{calibrate, CalibrationSettings};

fn open_descriptors() -> usize {
    fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

fn calibration_threads() -> Vec<String> {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|comm| comm.trim().to_owned())
        // The names `calibrate` gives its threads.
        .filter(|comm| comm == "calib-server" || comm == "calib-client")
        .collect()
}

#[test]
fn calibrate_gives_positive_rates_and_leaves_nothing_behind() {
    let settings = CalibrationSettings {
        message_bytes: 350,
        chunk_bytes: 64 * 1024,
        seconds_each: 0.3,
        cpus: Vec::new(),
        window: 32,
        connections: 2,
    };
    let calibration = calibrate(&settings).expect("calibrating");

    // The figures themselves are checked by the unit tests; this process
    // exists to count what a run leaves behind.
    assert!(calibration.small_messages_per_s > 0.0 && calibration.bulk_bytes_per_s > 0.0);
    assert_eq!(calibration_threads(), Vec::<String>::new());

    // The first run leaves tokio's process-wide signal pipe (a socket pair,
    // made once); a second must leave nothing: sockets, listeners and
    // io_uring instances all closed.
    let before = open_descriptors();
    let again = CalibrationSettings {
        seconds_each: 0.05,
        ..settings
    };
    calibrate(&again).expect("calibrating again");
    assert_eq!(calibration_threads(), Vec::<String>::new());
    let after = open_descriptors();
    assert!(after <= before, "{before} descriptors open before, {after} after");
}
