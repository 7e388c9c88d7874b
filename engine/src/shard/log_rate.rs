//! Log lines a peer can cause at will (refused connections, idle closes,
//! backpressure pauses, spool failures) are rate-limited: the first of a
//! kind is logged at once, then at most one per interval carrying how many
//! were left out; the counters in stats count every one.

use std::time::{Duration, Instant};

/// At most one line of a kind per shard in this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct LogRate {
    next: Option<Instant>,
    suppressed: u64,
}

impl LogRate {
    /// `Some(left out since the last line)` when a line may be logged now.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.next.is_some_and(|next| now < next) {
            self.suppressed += 1;
            return None;
        }
        self.next = Some(now + LOG_INTERVAL);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// One rate per kind of line, per shard.
#[derive(Default)]
pub(crate) struct ShardLogs {
    pub refused: LogRate,
    pub idle: LogRate,
    pub paused: LogRate,
    pub frame_timeout: LogRate,
    pub spool: LogRate,
    pub unclaimed: LogRate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_left_out() {
        let mut rate = LogRate::default();
        let t0 = Instant::now();
        assert_eq!(rate.allow(t0), Some(0));
        assert_eq!(rate.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(rate.allow(t0 + Duration::from_secs(2)), None);
        assert_eq!(rate.allow(t0 + LOG_INTERVAL), Some(2));
        assert_eq!(rate.allow(t0 + LOG_INTERVAL), None);
    }
}
