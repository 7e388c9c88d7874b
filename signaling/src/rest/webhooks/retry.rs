//! When an event is tried again and when a webhook is given up, apart from
//! the I/O: no clock and no socket here, and the jitter comes in as a number.

use std::time::Duration;

use super::WebhookConfig;

/// What follows one attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Verdict {
    Delivered,
    /// The event is tried again after this wait.
    RetryAfter(Duration),
    /// The event used its attempts; the webhook goes on with the next.
    Failed,
    /// The event used its attempts, the `failures_max`-th event in a row to do so.
    Drop,
}

/// One webhook's attempts at its current event and its run of failed events.
#[derive(Debug, Default)]
pub(super) struct Retries {
    /// Attempts already made at the current event.
    attempt: u32,
    failed_in_a_row: u32,
}

impl Retries {
    /// Whether the attempt being made is a retry of the current event.
    pub fn retrying(&self) -> bool {
        self.attempt > 0
    }

    /// Records an attempt; `unit` in [0, 1) draws the jitter of the wait.
    pub fn after_attempt(&mut self, config: &WebhookConfig, delivered: bool, unit: f64) -> Verdict {
        self.attempt += 1;
        if delivered {
            self.attempt = 0;
            self.failed_in_a_row = 0;
            return Verdict::Delivered;
        }
        if self.attempt < config.attempts_max.max(1) {
            return Verdict::RetryAfter(backoff(config, self.attempt, unit));
        }
        self.attempt = 0;
        self.failed_in_a_row += 1;
        if self.failed_in_a_row >= config.failures_max.max(1) {
            Verdict::Drop
        } else {
            Verdict::Failed
        }
    }
}

/// The wait before retry `retry` (1 for the second attempt): `backoff_initial`
/// doubling per retry up to `backoff_max`, of which a random half is taken
/// off ("equal jitter"), so webhooks that failed together do not retry together.
pub(super) fn backoff(config: &WebhookConfig, retry: u32, unit: f64) -> Duration {
    debug_assert!(retry >= 1);
    debug_assert!((0.0..1.0).contains(&unit));
    let doublings = retry.saturating_sub(1).min(31);
    let full = config
        .backoff_initial
        .saturating_mul(1 << doublings)
        .min(config.backoff_max);
    full.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WebhookConfig {
        WebhookConfig {
            attempts_max: 3,
            failures_max: 2,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
            ..WebhookConfig::default()
        }
    }

    #[test]
    fn the_backoff_doubles_to_its_cap_and_jitters_down_to_half() {
        let config = config();
        let ms = |retry, unit| backoff(&config, retry, unit).as_millis();
        assert_eq!(
            [ms(1, 0.999_999), ms(2, 0.999_999), ms(3, 0.999_999)],
            [99, 199, 349]
        );
        assert_eq!(
            [ms(1, 0.0), ms(2, 0.0), ms(3, 0.0), ms(40, 0.0)],
            [50, 100, 175, 175]
        );
        assert_eq!(ms(u32::MAX, 0.5), 262);
    }

    #[test]
    fn an_event_fails_after_its_attempts_and_a_run_of_failures_drops_the_webhook() {
        let config = config();
        let mut retries = Retries::default();
        assert!(!retries.retrying());
        assert!(matches!(
            retries.after_attempt(&config, false, 0.0),
            Verdict::RetryAfter(_)
        ));
        assert!(retries.retrying());
        assert_eq!(
            retries.after_attempt(&config, false, 0.0),
            Verdict::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(retries.after_attempt(&config, false, 0.0), Verdict::Failed);
        assert!(!retries.retrying());
        // A delivery ends the run of failed events.
        assert_eq!(retries.after_attempt(&config, true, 0.0), Verdict::Delivered);
        for _ in 0..2 {
            retries.after_attempt(&config, false, 0.0);
        }
        assert_eq!(retries.after_attempt(&config, false, 0.0), Verdict::Failed);
        for _ in 0..2 {
            retries.after_attempt(&config, false, 0.0);
        }
        assert_eq!(retries.after_attempt(&config, false, 0.0), Verdict::Drop);
    }

    #[test]
    fn zero_attempts_or_failures_mean_one() {
        let config = WebhookConfig {
            attempts_max: 0,
            failures_max: 0,
            ..WebhookConfig::default()
        };
        assert_eq!(
            Retries::default().after_attempt(&config, false, 0.0),
            Verdict::Drop
        );
    }
}
