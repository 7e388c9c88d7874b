//! What one source address may hold and start: live dialogs and new
//! INVITEs per second, beside the endpoint's request rate (`rate.rs`).
//! Sources that are trusted (a balancer in front, an SBC, the ESRP) are
//! exempt from every per-source bound, since all of their callers share
//! their one address.

use super::rate::RateSettings;
use std::collections::HashMap;
use std::net::IpAddr;

/// The per-source bounds; each 0 turns its bound off.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceLimits {
    /// Live incoming dialogs (calls) one source address may hold.
    pub dialogs_max: usize,
    /// New (out-of-dialog) INVITEs per second and burst per source.
    pub invites: RateSettings,
    /// Addresses none of the per-source bounds apply to.
    pub trusted: Vec<IpAddr>,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            dialogs_max: 10_000,
            invites: RateSettings {
                requests_per_s: 1_000,
                burst: 2_000,
                sources_max: 65_536,
            },
            trusted: Vec::new(),
        }
    }
}

impl SourceLimits {
    /// Every per-source bound off (a load generator calling itself).
    pub fn off() -> SourceLimits {
        SourceLimits {
            dialogs_max: 0,
            invites: RateSettings {
                requests_per_s: 0,
                ..RateSettings::default()
            },
            trusted: Vec::new(),
        }
    }

    pub fn is_trusted(&self, source: IpAddr) -> bool {
        self.trusted.contains(&source)
    }
}

/// Live dialogs per source: counted when a call from it is created,
/// released when the call ends.
#[derive(Debug, Default)]
pub struct DialogCounts {
    by_source: HashMap<IpAddr, usize>,
}

impl DialogCounts {
    /// Whether `source` may open one more dialog under `max` (0: no bound).
    pub fn admits(&self, source: IpAddr, max: usize) -> bool {
        max == 0 || self.by_source.get(&source).copied().unwrap_or(0) < max
    }

    pub fn opened(&mut self, source: IpAddr) {
        *self.by_source.entry(source).or_insert(0) += 1;
    }

    pub fn closed(&mut self, source: IpAddr) {
        if let Some(count) = self.by_source.get_mut(&source) {
            *count -= 1;
            if *count == 0 {
                self.by_source.remove(&source);
            }
        }
    }

    /// Sources holding at least one dialog.
    pub fn sources(&self) -> usize {
        self.by_source.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_holds_at_most_its_dialogs_until_one_ends() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let mut counts = DialogCounts::default();
        counts.opened(ip);
        counts.opened(ip);
        assert!(!counts.admits(ip, 2));
        assert!(counts.admits(other, 2), "each source is counted alone");
        assert!(counts.admits(ip, 0), "0 is no bound");
        counts.closed(ip);
        assert!(counts.admits(ip, 2));
        counts.closed(ip);
        assert_eq!(counts.sources(), 0, "a source with no dialog is forgotten");
        counts.closed(ip);
        assert_eq!(counts.sources(), 0, "a stray close does not underflow");
    }
}
