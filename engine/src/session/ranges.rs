//! Which octets of a message are held: a set of 1-based inclusive ranges, the
//! coordinates of `Byte-Range` (RFC 4975 7.1.1).

/// Disjoint, non-adjacent ranges `[first, last]`, sorted. Small: a message
/// sent in order is one range however many chunks it had.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    /// Adds octets `first..=last`; empty when `last < first`.
    pub(crate) fn insert(&mut self, first: u64, last: u64) {
        if last < first {
            return;
        }
        // The first range that could touch [first, last]: it ends at or after first - 1.
        let at = self
            .ranges
            .partition_point(|&(_, end)| end.saturating_add(1) < first);
        let mut merged = (first, last);
        let mut until = at;
        while let Some(&(start, end)) = self.ranges.get(until) {
            if start > last.saturating_add(1) {
                break;
            }
            merged = (merged.0.min(start), merged.1.max(end));
            until += 1;
        }
        self.ranges.splice(at..until, [merged]);
        self.debug_check();
    }

    /// Whether every octet `1..=total` is held (always, for `total == 0`).
    pub(crate) fn covers_all(&self, total: u64) -> bool {
        total == 0
            || self
                .ranges
                .first()
                .is_some_and(|&(start, end)| start == 1 && end >= total)
    }

    /// Octets held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.ranges.iter().map(|&(start, end)| end - start + 1).sum()
    }

    /// Number of separate ranges: bounded by the caller, since a peer sending
    /// scattered one-octet chunks could otherwise grow it without limit.
    pub(crate) fn count(&self) -> usize {
        self.ranges.len()
    }

    /// The highest octet held, or 0.
    pub(crate) fn end(&self) -> u64 {
        self.ranges.last().map_or(0, |&(_, end)| end)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().copied()
    }

    fn debug_check(&self) {
        debug_assert!(self.ranges.iter().all(|&(start, end)| start >= 1 && start <= end));
        debug_assert!(
            self.ranges.windows(2).all(|w| w[0].1 + 1 < w[1].0),
            "ranges must be sorted, disjoint and not adjacent: {:?}",
            self.ranges
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RangeSet;
    use proptest::prelude::*;

    #[test]
    fn merges_overlap_and_adjacency() {
        let mut set = RangeSet::default();
        set.insert(101, 200);
        set.insert(1, 50);
        assert_eq!(set.count(), 2);
        set.insert(51, 100);
        assert_eq!(set.iter().collect::<Vec<_>>(), [(1, 200)]);
        assert!(set.covers_all(200));
        assert!(!set.covers_all(201));
        set.insert(150, 300);
        assert_eq!(set.len(), 300);
        set.insert(5, 4);
        assert_eq!(set.len(), 300);
    }

    proptest! {
        #[test]
        fn matches_a_bitmap(inserts in prop::collection::vec((1u64..200, 0u64..40), 0..40)) {
            let mut set = RangeSet::default();
            let mut bits = [false; 260];
            for (first, len) in inserts {
                let last = first + len - 1;
                set.insert(first, last);
                for b in first..=last {
                    bits[b as usize] = true;
                }
            }
            prop_assert_eq!(set.len(), bits.iter().filter(|&&b| b).count() as u64);
            for (first, last) in set.iter() {
                prop_assert!((first..=last).all(|b| bits[b as usize]));
                prop_assert!(!bits[first as usize - 1] || first == 1);
                prop_assert!(!bits[last as usize + 1]);
            }
        }
    }
}
