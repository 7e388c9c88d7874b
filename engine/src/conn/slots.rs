//! A slab that grows by pages: sessions are many and mostly idle, and a
//! `Vec`-backed slab doubles, so up to half its capacity, and the buffers
//! it grew out of, are waste. Here the first page grows like a `Vec` up to
//! [`PAGE`] entries (a connection with a few sessions holds a few), and
//! every later page is allocated once, whole, and never moves: the waste is
//! at most one page less one entry.

use core::ops::{Index, IndexMut};

/// Entries per page (a power of two: an index is a shift and a mask).
const PAGE: usize = 1024;
const NO_FREE: usize = usize::MAX;

enum Slot<T> {
    /// The next vacant slot, or `NO_FREE`.
    Vacant(usize),
    Occupied(T),
}

/// Entries by a `usize` key that stays theirs until removed; a removed key
/// is reused by a later insert, as `slab::Slab` does.
pub(crate) struct Slots<T> {
    pages: Vec<Vec<Slot<T>>>,
    /// The most recently vacated slot, heading the chain of vacant ones.
    free: usize,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Slots<T> {
        Slots::new()
    }
}

impl<T> Slots<T> {
    pub fn new() -> Slots<T> {
        Slots {
            pages: Vec::new(),
            free: NO_FREE,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Slots ever made: vacant and occupied.
    fn made(&self) -> usize {
        match self.pages.last() {
            Some(last) => (self.pages.len() - 1) * PAGE + last.len(),
            None => 0,
        }
    }

    /// The key the next [`Slots::insert`] returns.
    pub fn vacant_key(&self) -> usize {
        match self.free {
            NO_FREE => self.made(),
            free => free,
        }
    }

    pub fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        if self.free != NO_FREE {
            let key = self.free;
            let slot = &mut self.pages[key / PAGE][key % PAGE];
            let Slot::Vacant(next) = *slot else {
                unreachable!("the free chain holds vacant slots only")
            };
            self.free = next;
            *slot = Slot::Occupied(value);
            return key;
        }
        let key = self.made();
        match self.pages.last_mut() {
            Some(last) if last.len() < PAGE => last.push(Slot::Occupied(value)),
            _ => {
                // The first page grows as it fills; later ones come whole.
                let mut page = match self.pages.is_empty() {
                    true => Vec::new(),
                    false => Vec::with_capacity(PAGE),
                };
                page.push(Slot::Occupied(value));
                self.pages.push(page);
            }
        }
        key
    }

    pub fn get(&self, key: usize) -> Option<&T> {
        match self.pages.get(key / PAGE)?.get(key % PAGE)? {
            Slot::Occupied(value) => Some(value),
            Slot::Vacant(_) => None,
        }
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.pages.get_mut(key / PAGE)?.get_mut(key % PAGE)? {
            Slot::Occupied(value) => Some(value),
            Slot::Vacant(_) => None,
        }
    }

    /// Takes the entry out; panics when `key` holds none, as a slab does.
    pub fn remove(&mut self, key: usize) -> T {
        let slot = self
            .pages
            .get_mut(key / PAGE)
            .and_then(|page| page.get_mut(key % PAGE))
            .filter(|slot| matches!(slot, Slot::Occupied(_)))
            .unwrap_or_else(|| panic!("no entry at key {key}"));
        let Slot::Occupied(value) = core::mem::replace(slot, Slot::Vacant(self.free)) else {
            unreachable!("checked occupied above")
        };
        self.free = key;
        self.len -= 1;
        value
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> + '_ {
        self.pages
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(key, slot)| match slot {
                Slot::Occupied(value) => Some((key, value)),
                Slot::Vacant(_) => None,
            })
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> + '_ {
        self.pages
            .iter_mut()
            .flatten()
            .enumerate()
            .filter_map(|(key, slot)| match slot {
                Slot::Occupied(value) => Some((key, value)),
                Slot::Vacant(_) => None,
            })
    }
}

impl<T> Index<usize> for Slots<T> {
    type Output = T;

    fn index(&self, key: usize) -> &T {
        self.get(key).unwrap_or_else(|| panic!("no entry at key {key}"))
    }
}

impl<T> IndexMut<usize> for Slots<T> {
    fn index_mut(&mut self, key: usize) -> &mut T {
        self.get_mut(key)
            .unwrap_or_else(|| panic!("no entry at key {key}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_and_are_reused_across_pages() {
        let mut slots = Slots::new();
        let keys: Vec<usize> = (0..3 * PAGE + 5).map(|i| slots.insert(i)).collect();
        assert_eq!(keys, (0..3 * PAGE + 5).collect::<Vec<_>>());
        assert_eq!(slots.pages.len(), 4);
        assert_eq!(slots.pages[1].capacity(), PAGE, "later pages come whole");
        assert_eq!(slots.remove(PAGE + 1), PAGE + 1);
        assert_eq!(slots.remove(7), 7);
        assert_eq!(slots.get(7), None);
        assert_eq!(slots.vacant_key(), 7);
        assert_eq!(slots.insert(70), 7);
        assert_eq!(slots.insert(71), PAGE + 1);
        assert_eq!(slots.vacant_key(), 3 * PAGE + 5);
        assert_eq!(slots[PAGE + 1], 71);
        assert_eq!(slots.len(), 3 * PAGE + 5);
        assert_eq!(slots.iter().count(), slots.len());
        assert!(slots
            .iter()
            .all(|(k, &v)| v == k || (k, v) == (7, 70) || (k, v) == (PAGE + 1, 71)));
        for (_, v) in slots.iter_mut() {
            *v += 1;
        }
        assert_eq!(slots[0], 1);
    }
}
