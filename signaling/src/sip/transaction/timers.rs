//! The RFC 3261 timer values (section 17, table 4), one set per endpoint.

use std::time::Duration;

/// T1, T2 and T4, from which every transaction timer is derived
/// (RFC 3261 17.1.1.1: T1 is an estimate of the round-trip time, T2 the
/// longest retransmit interval of non-INVITE requests and INVITE responses,
/// T4 the longest time a message stays in the network).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerSettings {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// How long an INVITE server transaction waits for its TU before it
    /// sends 100 Trying itself (RFC 3261 17.2.1: 200 ms).
    pub trying_delay: Duration,
}

impl Default for TimerSettings {
    fn default() -> Self {
        TimerSettings {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            trying_delay: Duration::from_millis(200),
        }
    }
}

impl TimerSettings {
    /// Timers B, F, H, J, L and M: 64*T1 (RFC 3261 17.1.1.2, 17.1.2.2,
    /// 17.2.1, 17.2.2; RFC 6026 8.4, 8.7).
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s over an unreliable transport (RFC 3261
    /// 17.1.1.2), zero over a reliable one.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.t1 * 64)
        }
    }

    /// Timers I and K: T4 over an unreliable transport, zero over a
    /// reliable one (RFC 3261 17.2.1, 17.1.2.2).
    pub fn timer_t4(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J: 64*T1 over an unreliable transport, zero over a reliable
    /// one (RFC 3261 17.2.2).
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.transaction_timeout()
        }
    }

    /// The next retransmission interval after `interval`: doubled, capped
    /// at T2 when `capped` (timers E and G; timer A is not capped,
    /// RFC 3261 17.1.1.2).
    pub fn backoff(&self, interval: Duration, capped: bool) -> Duration {
        let doubled = interval * 2;
        if capped {
            doubled.min(self.t2)
        } else {
            doubled
        }
    }
}
