//! The rule that turns one metric's base and new statistics into a
//! verdict: a relative tolerance, and a noise floor of `k` pooled spreads
//! so that a difference the runs' own scatter explains does not fail.
//!
//! With one run per side both spreads are 0 and the rule is the plain
//! tolerance rule: `new < base * (1 - tol)` regresses a higher-is-better
//! metric, `new > base * (1 + tol)` a lower-is-better one.

use std::fmt;

use crate::stats::{Better, Stats};

use super::Verdict;

/// `k` when `--noise-k` is not given: three robust standard deviations.
pub const DEFAULT_NOISE_K: f64 = 3.0;

/// The gate's two numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rule {
    /// The allowed relative regression, as a fraction (`0.05` for 5%).
    pub tolerance: f64,
    /// How many pooled spreads a regression must exceed to count.
    pub noise_k: f64,
}

/// One metric's verdict by the rule, with the numbers it was decided on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// `(new - base) / |base|`; `None` when the base median is 0.
    pub delta: Option<f64>,
    /// `sqrt((spread_base² + spread_new²) / 2)`.
    pub pooled_spread: f64,
}

impl Rule {
    /// Refuses a `k` that is negative or not finite; `tolerance` comes
    /// from [`super::parse_tolerance`].
    pub fn new(tolerance: f64, noise_k: f64) -> anyhow::Result<Rule> {
        if !noise_k.is_finite() || noise_k < 0.0 {
            anyhow::bail!("--noise-k {noise_k}: expected a number of spreads, 0 or more");
        }
        Ok(Rule { tolerance, noise_k })
    }

    /// The rule as printed at the top of every output, in one line.
    pub fn describe(&self) -> String {
        let tol = super::tolerance_text(self.tolerance);
        let k = crate::units::trimmed(self.noise_k);
        format!(
            "a metric regresses when its new median is worse than the base median by more than \
             {tol} (relative) AND by more than {k} x the pooled spread, \
             sqrt((spread_base² + spread_new²)/2), spread = 1.4826 x MAD; worse by more than \
             {tol} but within {k} x the pooled spread is `noisy` and passes"
        )
    }

    /// The verdict for a gated metric (throughput, fractions, p99, CPU).
    pub fn judge(&self, better: Better, base: &Stats, new: &Stats) -> Judgement {
        let pooled_spread = pooled(base.spread, new.spread);
        if base.median == 0.0 {
            return Judgement {
                verdict: Verdict::Skipped,
                delta: None,
                pooled_spread,
            };
        }
        // Positive: new is worse than base, in the metric's own unit.
        let worse_by = match better {
            Better::Higher => base.median - new.median,
            Better::Lower => new.median - base.median,
        };
        let relative = worse_by / base.median.abs();
        let verdict = if relative > self.tolerance {
            if worse_by > self.noise_k * pooled_spread {
                Verdict::Regressed
            } else {
                Verdict::Noisy
            }
        } else if -relative > self.tolerance {
            Verdict::Improved
        } else {
            Verdict::Ok
        };
        Judgement {
            verdict,
            delta: Some((new.median - base.median) / base.median.abs()),
            pooled_spread,
        }
    }

    /// `errors.total`: errors that appeared fail, whatever the tolerance.
    pub fn judge_errors(&self, base: &Stats, new: &Stats) -> Judgement {
        let verdict = match (base.median > 0.0, new.median > 0.0) {
            (false, false) => Verdict::Ok,
            (false, true) => Verdict::Regressed,
            (true, false) => Verdict::Improved,
            (true, true) => Verdict::Info,
        };
        Judgement {
            verdict,
            delta: (base.median > 0.0).then(|| (new.median - base.median) / base.median),
            pooled_spread: pooled(base.spread, new.spread),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The root mean square of two spreads: one side's scatter does not vanish
/// because the other side had none.
pub fn pooled(spread_base: f64, spread_new: f64) -> f64 {
    ((spread_base * spread_base + spread_new * spread_new) / 2.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[f64]) -> Stats {
        Stats::of(Better::Higher, "msg/s", values).expect("finite values")
    }

    const RULE: Rule = Rule {
        tolerance: 0.05,
        noise_k: 3.0,
    };

    #[test]
    fn one_run_per_side_is_the_tolerance_rule() {
        let base = stats(&[10_000.0]);
        for (new, want) in [
            (9_600.0, Verdict::Ok),
            (9_500.0, Verdict::Ok),
            (9_499.0, Verdict::Regressed),
            (10_501.0, Verdict::Improved),
        ] {
            let j = RULE.judge(Better::Higher, &base, &stats(&[new]));
            assert_eq!(j.verdict, want, "{new}");
            assert_eq!(j.pooled_spread, 0.0);
        }
        let base = Stats::of(Better::Lower, "us", &[100.0]).expect("finite");
        let new = Stats::of(Better::Lower, "us", &[106.0]).expect("finite");
        assert_eq!(RULE.judge(Better::Lower, &base, &new).verdict, Verdict::Regressed);
    }

    #[test]
    fn a_drop_inside_the_noise_is_noisy_and_outside_it_regresses() {
        // Spread 1.4826 x 1000 on both sides: pooled 1482.6, 3 x = 4447.8.
        let base = stats(&[9_000.0, 10_000.0, 11_000.0]);
        let inside = stats(&[7_000.0, 8_000.0, 9_000.0]);
        let j = RULE.judge(Better::Higher, &base, &inside);
        assert_eq!(j.verdict, Verdict::Noisy);
        assert!((j.pooled_spread - 1482.6).abs() < 1e-6, "{j:?}");
        assert!((j.delta.expect("base is not 0") + 0.2).abs() < 1e-12);

        let tight = stats(&[9_990.0, 10_000.0, 10_010.0]);
        let dropped = stats(&[7_990.0, 8_000.0, 8_010.0]);
        assert_eq!(
            RULE.judge(Better::Higher, &tight, &dropped).verdict,
            Verdict::Regressed
        );
        let no_floor = Rule { noise_k: 0.0, ..RULE };
        assert_eq!(
            no_floor.judge(Better::Higher, &base, &inside).verdict,
            Verdict::Regressed
        );
    }

    #[test]
    fn zero_base_is_skipped_and_errors_follow_their_own_rule() {
        let zero = stats(&[0.0]);
        assert_eq!(
            RULE.judge(Better::Lower, &zero, &stats(&[5.0])).verdict,
            Verdict::Skipped
        );
        assert_eq!(RULE.judge_errors(&zero, &zero).verdict, Verdict::Ok);
        assert_eq!(
            RULE.judge_errors(&zero, &stats(&[1.0])).verdict,
            Verdict::Regressed
        );
        assert_eq!(
            RULE.judge_errors(&stats(&[2.0]), &zero).verdict,
            Verdict::Improved
        );
        assert_eq!(
            RULE.judge_errors(&stats(&[2.0]), &stats(&[9.0])).verdict,
            Verdict::Info
        );
    }

    #[test]
    fn k_must_be_a_finite_non_negative_number() {
        assert!(Rule::new(0.05, 3.0).is_ok());
        assert!(Rule::new(0.05, 0.0).is_ok());
        for k in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(Rule::new(0.05, k).is_err(), "{k}");
        }
    }
}
