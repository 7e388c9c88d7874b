//! A bound on new requests per source address: a token bucket per IP
//! (time as an argument), so one peer cannot take every transaction.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Requests a source may start per second, and in one burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateSettings {
    /// New requests per second per source IP; 0 turns the bound off.
    pub requests_per_s: u32,
    pub burst: u32,
    /// Sources remembered at once; beyond it, idle ones are forgotten and,
    /// if none is idle, a new source is refused until one is.
    pub sources_max: usize,
}

impl Default for RateSettings {
    fn default() -> Self {
        RateSettings {
            requests_per_s: 20_000,
            burst: 20_000,
            sources_max: 65_536,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct SourceRate {
    settings: RateSettings,
    buckets: HashMap<IpAddr, Bucket>,
}

impl SourceRate {
    pub fn new(settings: RateSettings) -> SourceRate {
        SourceRate {
            settings,
            buckets: HashMap::new(),
        }
    }

    /// Whether `source` may start one more request at `now`.
    pub fn admit(&mut self, now: Instant, source: IpAddr) -> bool {
        let RateSettings {
            requests_per_s,
            burst,
            sources_max,
        } = self.settings;
        if requests_per_s == 0 {
            return true;
        }
        let (rate, burst) = (f64::from(requests_per_s), f64::from(burst.max(1)));
        if !self.buckets.contains_key(&source) && self.buckets.len() >= sources_max {
            // A bucket that refilled completely holds nothing worth keeping.
            self.buckets
                .retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst);
            if self.buckets.len() >= sources_max {
                return false;
            }
        }
        let bucket = self.buckets.entry(source).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut rate = SourceRate::new(RateSettings {
            requests_per_s: 10,
            burst: 5,
            sources_max: 8,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!((0..10).filter(|_| rate.admit(t0, ip)).count(), 5);
        assert!(!rate.admit(t0 + Duration::from_millis(50), ip));
        assert!(rate.admit(t0 + Duration::from_millis(100), ip));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(rate.admit(t0, other), "each source has its own bucket");
    }

    #[test]
    fn the_table_of_sources_is_bounded() {
        let t0 = Instant::now();
        let mut rate = SourceRate::new(RateSettings {
            requests_per_s: 1,
            burst: 2,
            sources_max: 2,
        });
        let ips: Vec<IpAddr> = (1..=3).map(|i| format!("192.0.2.{i}").parse().unwrap()).collect();
        assert!(rate.admit(t0, ips[0]));
        assert!(rate.admit(t0, ips[1]));
        assert!(!rate.admit(t0, ips[2]), "full, and nobody is idle");
        assert!(
            rate.admit(t0 + Duration::from_secs(5), ips[2]),
            "idle sources were forgotten"
        );
    }

    #[test]
    fn zero_turns_the_bound_off() {
        let mut rate = SourceRate::new(RateSettings {
            requests_per_s: 0,
            burst: 0,
            sources_max: 0,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..1000).all(|_| rate.admit(Instant::now(), ip)));
    }
}
