//! The terminal's view of a run.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The terminal's view of the run: a spinner for the phases, a bar for the
/// measured interval. Drawn only on a terminal.
pub(super) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub(super) fn new(quiet: bool) -> Progress {
        let bar = ProgressBar::new_spinner();
        match quiet {
            true => bar.set_draw_target(ProgressDrawTarget::hidden()),
            false => bar.enable_steady_tick(Duration::from_millis(100)),
        }
        Progress { bar }
    }

    pub(super) fn phase(&self, what: &str) {
        self.bar.set_message(what.to_string());
        self.bar.tick();
    }

    pub(super) fn set_message(&self, what: String) {
        self.bar.set_message(what);
    }

    pub(super) fn measure(&self, seconds: f64) {
        self.bar.set_length(seconds.ceil() as u64);
        self.bar.set_position(0);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} s  {msg}") {
            self.bar.set_style(style);
        }
        self.bar.set_message("measuring");
    }

    pub(super) fn tick(&self, messages: u64, bytes: u64) {
        self.bar.inc(1);
        self.bar.set_message(format!(
            "{} msg/s  {}/s",
            crate::units::count(messages as f64),
            crate::units::megabytes(bytes as f64)
        ));
    }

    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
