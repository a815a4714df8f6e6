//! The tracker's index: from a 32-bit hash of (client, server) to a 32-bit slot code, in one
//! flat open-addressing table of cache-line buckets.
//!
//! A bucket holds eight entries: their hashes ("tags") and their codes, 64 bytes, aligned to a
//! cache line. The table has a power-of-two number of buckets, at most half of its places
//! used, and probes bucket after bucket from the one the hash picks. So a lookup, an insertion
//! or a removal reads one cache line (the next one only when a bucket is full, which at this
//! load is rare): on SYN floods the tracker does one of each per packet in a table of hundreds
//! of thousands of entries, far bigger than the CPU's caches, and each extra line is a miss.
//! (hashbrown keeps control bytes and entries in two arrays: two misses.) The hashes are keyed
//! per process by the caller, so senders cannot pick colliding keys.
//!
//! Removal, as in hashbrown's groups: the place of a removed entry becomes empty again if its
//! bucket has an empty place (no probe can have passed over that bucket, since an insertion
//! goes on to the next bucket only from a full one, and a search stops at the first bucket
//! with an empty place), and is marked deleted otherwise; deleted places are reused by
//! insertions and cleared when the table is rebuilt.
//!
//! Keys live with the attempts: [`Index::find`] hands each candidate code to the caller, which
//! compares the key it points at.

use crate::hint::prefetch;

/// Entries per bucket.
const WIDTH: usize = 8;
/// The tag of an empty place.
const EMPTY: u32 = 0;
/// The tag of a place whose entry was removed from a full bucket.
const DELETED: u32 = 1;
/// The first table size, in buckets.
const MIN_BUCKETS: usize = 8;

/// Eight entries in one cache line (the table's memory starts on a page, and a bucket is 64
/// bytes). Its numbers are kept as bytes, so that a bucket is a plain reading of any 64 bytes:
/// the table's memory is taken as buckets without an alignment check (see [`Table`]).
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Bucket {
    tags: [[u8; 4]; WIDTH],
    codes: [[u8; 4]; WIDTH],
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 64 && std::mem::align_of::<Bucket>() == 1);

// A fresh table is zeroed memory: every place empty.
const _: () = assert!(EMPTY == 0);

impl Bucket {
    /// Tag `i`.
    #[inline(always)]
    fn tag(&self, i: usize) -> u32 {
        u32::from_ne_bytes(self.tags[i])
    }

    /// Code `i`.
    #[inline(always)]
    fn code(&self, i: usize) -> u32 {
        u32::from_ne_bytes(self.codes[i])
    }

    /// Every tag.
    #[inline(always)]
    fn tags(&self) -> [u32; WIDTH] {
        bytemuck::cast(self.tags)
    }

    /// Bit `i` set where `tags[i] == t`.
    #[inline(always)]
    fn matching(&self, t: u32) -> u32 {
        #[cfg(target_arch = "x86_64")]
        {
            // Two SSE2 comparisons of four tags each (baseline on x86-64).
            use safe_arch::{
                cast_to_m128_from_m128i, cmp_eq_mask_i32_m128i, m128i, move_mask_m128, set_splat_i32_m128i,
            };
            let [a, b, c, d, e, f, g, h] = self.tags();
            let want = set_splat_i32_m128i(t as i32);
            let lo = cmp_eq_mask_i32_m128i(m128i::from([a, b, c, d]), want);
            let hi = cmp_eq_mask_i32_m128i(m128i::from([e, f, g, h]), want);
            let lo = move_mask_m128(cast_to_m128_from_m128i(lo)) as u32;
            let hi = move_mask_m128(cast_to_m128_from_m128i(hi)) as u32;
            lo | (hi << 4)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let mut m = 0;
            for (i, x) in self.tags().into_iter().enumerate() {
                m |= u32::from(x == t) << i;
            }
            m
        }
    }

    /// Bit `i` set where place `i` is free (empty or deleted).
    #[inline(always)]
    fn free(&self) -> u32 {
        #[cfg(target_arch = "x86_64")]
        {
            // The two markers are the tags below 2: one comparison of each tag with its low
            // bit cleared against 0.
            use safe_arch::{
                bitand_m128i, cast_to_m128_from_m128i, cmp_eq_mask_i32_m128i, m128i, move_mask_m128,
                set_splat_i32_m128i, zeroed_m128i,
            };
            const _: () = assert!(EMPTY == 0 && DELETED == 1);
            let [a, b, c, d, e, f, g, h] = self.tags();
            let high = set_splat_i32_m128i(!1);
            let lo = cmp_eq_mask_i32_m128i(bitand_m128i(m128i::from([a, b, c, d]), high), zeroed_m128i());
            let hi = cmp_eq_mask_i32_m128i(bitand_m128i(m128i::from([e, f, g, h]), high), zeroed_m128i());
            let lo = move_mask_m128(cast_to_m128_from_m128i(lo)) as u32;
            let hi = move_mask_m128(cast_to_m128_from_m128i(hi)) as u32;
            lo | (hi << 4)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self.matching(EMPTY) | self.matching(DELETED)
        }
    }
}

/// The tag stored for hash `h`: 0 and 1 are the markers, so hashes 0 and 1 share tag 2 with
/// hash 2 (the caller compares keys anyway).
#[inline]
fn tag(h: u32) -> u32 {
    h.max(2)
}

/// A hash → code table (several codes may share a hash; the caller tells them apart).
#[derive(Debug)]
pub(super) struct Index {
    buckets: Table,
    /// Buckets - 1 (their number is a power of two).
    mask: usize,
    /// Entries held.
    len: usize,
    /// Places marked deleted.
    deleted: usize,
    /// Half the places: entries and deleted marks together stay below it.
    limit: usize,
}

impl Index {
    pub(super) fn new() -> Index {
        Index {
            buckets: Table::new(MIN_BUCKETS),
            mask: MIN_BUCKETS - 1,
            len: 0,
            deleted: 0,
            limit: MIN_BUCKETS * WIDTH / 2,
        }
    }

    /// Entries held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Starts loading the bucket where `h` would be found, so that a lookup soon after does not
    /// wait for memory. Touching many in a row lets the loads overlap.
    #[inline]
    pub(super) fn touch(&self, h: u32) {
        if let Some(bucket) = self.buckets.get(home(h, self.mask)) {
            prefetch(bucket);
        }
    }

    /// The first code stored under `h` for which `is_key` holds.
    #[inline(always)]
    pub(super) fn find(&self, h: u32, is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        // (The table's bytes are looked up once per operation: see Table.)
        let buckets = &*self.buckets;
        locate(buckets, self.mask, h, is_key).map(|(b, i)| buckets[b].code(i))
    }

    /// Adds (`h`, `code`); the caller knows the key is absent.
    #[inline(always)]
    pub(super) fn insert(&mut self, h: u32, code: u32) {
        if self.len + self.deleted >= self.limit {
            self.rebuild();
        }
        self.place(h, code);
        self.len += 1;
    }

    /// Puts the entry in the first free place of its probe.
    #[inline(always)]
    fn place(&mut self, h: u32, code: u32) {
        let mask = self.mask;
        let buckets = &mut *self.buckets;
        let mut b = home(h, mask);
        loop {
            let bucket = &mut buckets[b];
            let free = bucket.free();
            if free != 0 {
                let i = free.trailing_zeros() as usize;
                // Without a branch: on floods, whether the place was deleted is a coin toss.
                self.deleted -= usize::from(bucket.tag(i) == DELETED);
                bucket.tags[i] = tag(h).to_ne_bytes();
                bucket.codes[i] = code.to_ne_bytes();
                return;
            }
            b = (b + 1) & mask;
        }
    }

    /// Makes room: twice the buckets when more than a quarter of the places hold entries,
    /// else the same number, in both cases without deleted marks.
    #[cold]
    fn rebuild(&mut self) {
        let n = self.mask + 1;
        let size = if (self.len + 1) * 4 > n * WIDTH { n * 2 } else { n };
        let size = size.max(MIN_BUCKETS);
        let old = std::mem::replace(&mut self.buckets, Table::new(size));
        self.mask = size - 1;
        self.limit = size * WIDTH / 2;
        self.deleted = 0;
        for bucket in old.iter() {
            for (t, code) in bucket.tags().into_iter().zip(bucket.codes.map(u32::from_ne_bytes)) {
                if t > DELETED {
                    // The tag is the hash as far as placing goes.
                    self.place(t, code);
                }
            }
        }
    }

    /// Changes the entry (`h`, `old`) to (`h`, `new`); adds it if it was absent.
    #[inline(always)]
    pub(super) fn replace(&mut self, h: u32, old: u32, new: u32) {
        let buckets = &mut *self.buckets;
        match locate(buckets, self.mask, h, |c| c == old) {
            Some((b, i)) => buckets[b].codes[i] = new.to_ne_bytes(),
            None => self.insert(h, new),
        }
    }

    /// Removes the entry (`h`, `code`), if present.
    #[inline(always)]
    pub(super) fn remove(&mut self, h: u32, code: u32) {
        let buckets = &mut *self.buckets;
        let Some((b, i)) = locate(buckets, self.mask, h, |c| c == code) else {
            return;
        };
        let bucket = &mut buckets[b];
        self.len -= 1;
        // Without a branch (see `place`).
        let full = bucket.matching(EMPTY) == 0;
        bucket.tags[i] = if full { DELETED } else { EMPTY }.to_ne_bytes();
        self.deleted += usize::from(full);
    }
}

/// The bucket where the probe for `h` starts in a table of `mask + 1` buckets (chosen by the
/// tag, which is all a rebuild knows of the hash).
#[inline]
fn home(h: u32, mask: usize) -> usize {
    tag(h) as usize & mask
}

/// The bucket and place of the first code stored under `h` for which `is_key` holds.
#[inline(always)]
fn locate(buckets: &[Bucket], mask: usize, h: u32, mut is_key: impl FnMut(u32) -> bool) -> Option<(usize, usize)> {
    let t = tag(h);
    let mut b = home(h, mask);
    loop {
        let bucket = buckets.get(b)?;
        let mut m = bucket.matching(t);
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            if is_key(bucket.code(i)) {
                return Some((b, i));
            }
            m &= m - 1;
        }
        if bucket.matching(EMPTY) != 0 {
            return None;
        }
        b = (b + 1) & mask;
    }
}

/// Buckets, all empty at first, in an anonymous memory map of their own.
///
/// On floods a lookup per packet lands anywhere in megabytes of buckets: with 4 KiB pages it
/// nearly always misses the TLB as well as the caches, and the page walks held up the
/// prefetches that hide the misses. So a table of 2 MiB or more starts on a 2 MiB boundary
/// and the kernel is asked to back it with transparent huge pages (`MADV_HUGEPAGE`; without
/// them, it is ordinary memory). Its pages are zero until first written, like a `calloc`.
struct Table {
    map: memmap2::MmapMut,
    /// Where the buckets start in `map`, and how many there are.
    start: usize,
    buckets: usize,
}

/// The size of a huge page (x86-64, AArch64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 << 20;

impl Table {
    fn new(buckets: usize) -> Table {
        let bytes = buckets * std::mem::size_of::<Bucket>();
        let huge = bytes >= HUGE_PAGE;
        let room = if huge { bytes + HUGE_PAGE } else { bytes };
        let map = match memmap2::MmapMut::map_anon(room) {
            Ok(map) => map,
            // Out of memory, as an allocation failure is for a Vec.
            Err(_) => std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(room, HUGE_PAGE).unwrap_or(std::alloc::Layout::new::<Bucket>()),
            ),
        };
        let start = if huge {
            // Only the address is looked at.
            let at = map.as_ptr() as usize;
            let start = at.next_multiple_of(HUGE_PAGE) - at;
            // Advice only: without huge pages the table works the same.
            let _ = map.advise_range(memmap2::Advice::HugePage, start, bytes);
            start
        } else {
            0
        };
        Table { map, start, buckets }
    }

    /// The buckets' bytes in `map`: a whole number of buckets by construction, so that the cast
    /// to buckets has nothing left to check (it is made once per table operation, several
    /// times per packet on floods).
    #[inline(always)]
    fn span(&self) -> std::ops::Range<usize> {
        self.start..self.start + self.buckets * std::mem::size_of::<Bucket>()
    }
}

impl std::ops::Deref for Table {
    type Target = [Bucket];
    #[inline(always)]
    fn deref(&self) -> &[Bucket] {
        // A bucket is any 64 bytes.
        bytemuck::cast_slice(&self.map[self.span()])
    }
}

impl std::ops::DerefMut for Table {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [Bucket] {
        let span = self.span();
        bytemuck::cast_slice_mut(&mut self.map[span])
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({} buckets)", self.len())
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

    #[test]
    fn a_table_of_huge_page_size_starts_on_a_huge_page_and_is_empty() {
        for buckets in [MIN_BUCKETS, HUGE_PAGE / 64, HUGE_PAGE / 64 * 4] {
            let t = Table::new(buckets);
            assert_eq!(t.len(), buckets);
            let at = t.as_ptr() as usize;
            assert_eq!(at % 64, 0);
            if buckets * 64 >= HUGE_PAGE {
                assert_eq!(at % HUGE_PAGE, 0, "{buckets} buckets at {at:#x}");
            }
            assert!(t.iter().all(|b| b.tags() == [EMPTY; WIDTH]));
        }
    }

    #[test]
    fn grows_past_huge_pages_and_finds_everything() {
        // 150,000 entries: 65,536 buckets, 4 MiB, two huge pages (rebuilt on the way up).
        let mut r = Rng(0x0dd_ba11);
        let mut idx = Index::new();
        let hashes: Vec<u32> = (0..150_000).map(|_| r.next() as u32).collect();
        for (code, &h) in hashes.iter().enumerate() {
            idx.insert(h, code as u32);
        }
        assert_eq!(idx.mask + 1, 1 << 16);
        assert_eq!(idx.buckets.as_ptr() as usize % HUGE_PAGE, 0);
        for (code, &h) in hashes.iter().enumerate() {
            assert_eq!(idx.find(h, |c| c == code as u32), Some(code as u32));
        }
        for (code, &h) in hashes.iter().enumerate().step_by(2) {
            idx.remove(h, code as u32);
        }
        assert_eq!(idx.len(), 75_000);
        for (code, &h) in hashes.iter().enumerate() {
            let want = (code % 2 == 1).then_some(code as u32);
            assert_eq!(idx.find(h, |c| c == code as u32), want);
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

    /// Entries removed from full buckets leave deleted marks; a steady churn of insertions and
    /// removals (a flood at the cap) must not make the table grow or fill up with them.
    #[test]
    fn churn_keeps_the_table_size() {
        let mut r = Rng(99);
        let mut idx = Index::new();
        let mut live: std::collections::VecDeque<(u32, u32)> = Default::default();
        let mut most = 0;
        for code in 0..200_000u32 {
            // Hashes from a narrow range: full buckets, hence deleted marks.
            let h = (r.next() % 512) as u32;
            idx.insert(h, code);
            live.push_back((h, code));
            if live.len() > 300 {
                let (h, c) = live.pop_front().unwrap();
                idx.remove(h, c);
            }
            most = most.max(idx.buckets.len());
            assert!((idx.len + idx.deleted) * 2 <= idx.buckets.len() * WIDTH);
        }
        // 300 entries at most half the places: 75 buckets, rounded up, doubled once at most.
        assert!(most <= 256, "{most} buckets");
        for &(h, c) in &live {
            assert_eq!(idx.find(h, |x| x == c), Some(c));
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
