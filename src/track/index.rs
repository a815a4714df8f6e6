//! The tracker's index: from a 32-bit hash of (client, server) to a 32-bit slot code, in one
//! flat open-addressing table.
//!
//! Each entry is one `u64` (hash in the high half, code in the low half) in a power-of-two
//! table at most half full, probed linearly, and deletion shifts later entries back instead of
//! leaving markers. So a lookup, an insertion or a removal reads one cache line in the common
//! case: on SYN floods the tracker does one of each per packet in a table of hundreds of
//! thousands of entries, far bigger than the CPU's caches, and each extra line is a miss.
//! (hashbrown keeps control bytes and entries in two arrays: two misses.) The hashes are keyed
//! per process by the caller, so senders cannot pick colliding keys.
//!
//! Keys live with the attempts: [`Index::find`] hands each candidate code to the caller, which
//! compares the key it points at.

/// Asks the CPU to bring `x`'s cache line closer: a hint that returns at once, where a load
/// would hold its place in the CPU's queue of unfinished instructions until memory answers.
#[inline(always)]
pub(super) fn prefetch<T: Copy>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    safe_arch::prefetch_t0(x);
    // Elsewhere an unused load, which safe Rust can make, does the same less well.
    #[cfg(not(target_arch = "x86_64"))]
    std::hint::black_box(*x);
}

/// An empty place (no valid entry has both halves all ones: codes stay below `u32::MAX`).
const EMPTY: u64 = u64::MAX;
/// The first table size.
const MIN_SLOTS: usize = 64;

/// A hash → code table (several codes may share a hash; the caller tells them apart).
#[derive(Debug)]
pub(super) struct Index {
    slots: Vec<u64>,
    len: usize,
}

#[inline]
fn entry(h: u32, code: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(code)
}

impl Index {
    pub(super) fn new() -> Index {
        Index {
            slots: vec![EMPTY; MIN_SLOTS],
            len: 0,
        }
    }

    /// Entries held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The place where the probe for `h` starts.
    #[inline]
    fn home(&self, h: u32) -> usize {
        h as usize & self.mask()
    }

    /// Starts loading the line where `h` would be found, so that a lookup soon after does not
    /// wait for memory. Touching many in a row lets the loads overlap.
    #[inline]
    pub(super) fn touch(&self, h: u32) {
        prefetch(&self.slots[self.home(h)]);
    }

    /// The first code stored under `h` for which `is_key` holds.
    #[inline]
    pub(super) fn find(&self, h: u32, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.mask();
        let mut i = self.home(h);
        loop {
            let e = self.slots[i];
            if e == EMPTY {
                return None;
            }
            if (e >> 32) as u32 == h && is_key(e as u32) {
                return Some(e as u32);
            }
            i = (i + 1) & mask;
        }
    }

    /// The place of the entry (`h`, `code`), if present.
    #[inline]
    fn position(&self, h: u32, code: u32) -> Option<usize> {
        let want = entry(h, code);
        let mask = self.mask();
        let mut i = self.home(h);
        loop {
            let e = self.slots[i];
            if e == want {
                return Some(i);
            }
            if e == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds (`h`, `code`); the caller knows the key is absent. `code` must be below `u32::MAX`.
    #[inline]
    pub(super) fn insert(&mut self, h: u32, code: u32) {
        debug_assert!(code != u32::MAX);
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(entry(h, code));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut i = self.home((e >> 32) as u32);
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = e;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(e);
        }
    }

    /// Changes the entry (`h`, `old`) to (`h`, `new`); adds it if it was absent.
    #[inline]
    pub(super) fn replace(&mut self, h: u32, old: u32, new: u32) {
        match self.position(h, old) {
            Some(i) => self.slots[i] = entry(h, new),
            None => self.insert(h, new),
        }
    }

    /// Removes the entry (`h`, `code`), if present, shifting back the entries after it that
    /// would otherwise no longer be found (no deletion markers).
    #[inline]
    pub(super) fn remove(&mut self, h: u32, code: u32) {
        let Some(mut hole) = self.position(h, code) else {
            return;
        };
        let mask = self.mask();
        self.len -= 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.slots[j];
            if e == EMPTY {
                break;
            }
            // `e` may move into the hole only if its home is not cyclically in (hole, j].
            let home = self.home((e >> 32) as u32);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = e;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random inserts, replacements and removals, with hashes drawn from a small range so
    /// that probe chains collide and wrap around the table's end, checked against a HashMap.
    #[test]
    fn behaves_like_a_map_under_collisions() {
        for hash_range in [4u64, 64, 1 << 12, 1 << 32] {
            let mut r = Rng(0x1234_5678_9abc_def1 ^ hash_range);
            let mut idx = Index::new();
            // code -> hash (codes are unique, hashes may repeat)
            let mut model: HashMap<u32, u32> = HashMap::new();
            let mut next_code = 0u32;
            for step in 0..20_000 {
                // Grow to a few hundred entries, then hover there.
                let op = if model.len() > 400 { 2 } else { r.next() % 4 };
                match op {
                    0 | 1 => {
                        // Half near 0, half near u32::MAX: home places at both ends of the
                        // table, so chains also wrap around its end.
                        let low = (r.next() % hash_range) as u32;
                        let h = if r.next() % 2 == 0 { low } else { u32::MAX - low };
                        idx.insert(h, next_code);
                        model.insert(next_code, h);
                        next_code += 1;
                    }
                    2 if !model.is_empty() => {
                        let victim = *model.keys().nth(r.next() as usize % model.len()).unwrap();
                        let h = model.remove(&victim).unwrap();
                        idx.remove(h, victim);
                    }
                    _ if !model.is_empty() => {
                        let old = *model.keys().nth(r.next() as usize % model.len()).unwrap();
                        let h = model.remove(&old).unwrap();
                        idx.replace(h, old, next_code);
                        model.insert(next_code, h);
                        next_code += 1;
                    }
                    _ => {}
                }
                assert_eq!(idx.len(), model.len(), "step {step}");
                if step % 97 == 0 {
                    for (&code, &h) in &model {
                        assert_eq!(idx.find(h, |c| c == code), Some(code), "step {step}");
                    }
                    assert_eq!(idx.find(7, |c| c == u32::MAX - 1), None);
                }
            }
            for (&code, &h) in &model {
                assert_eq!(idx.find(h, |c| c == code), Some(code));
            }
        }
    }

    #[test]
    fn removing_an_absent_entry_changes_nothing() {
        let mut idx = Index::new();
        idx.insert(5, 1);
        idx.remove(5, 2);
        idx.remove(6, 1);
        assert_eq!(idx.len(), 1);
        assert_eq!(idx.find(5, |c| c == 1), Some(1));
    }

    #[test]
    fn replace_of_an_absent_entry_inserts_it() {
        let mut idx = Index::new();
        idx.replace(9, 3, 4);
        assert_eq!(idx.find(9, |c| c == 4), Some(4));
        assert_eq!(idx.find(9, |c| c == 3), None);
    }
}
