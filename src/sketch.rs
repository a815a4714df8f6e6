//! Counting distinct client addresses per destination in bounded memory (SYN flood detection).
//!
//! Contract: [`Sources::add`] costs one multiply-xorshift hash and one byte compare, never
//! allocates after a destination's second distinct address, and [`Sources::estimate`] is
//! exact up to one address and within a few percent beyond (HyperLogLog, Flajolet et al. 2007,
//! with 512 one-byte registers: standard error 1.04/√512 ≈ 4.6 %). The hash is fixed (not
//! keyed), so the same capture always gives the same estimate; addresses chosen to collide can
//! only make it wrong, and it is only an estimate.

use std::net::IpAddr;

/// log2 of the number of registers.
const P: u32 = 9;
/// Registers of a sketch: 512 bytes.
const M: usize = 1 << P;

/// A HyperLogLog sketch of 64-bit hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hll {
    registers: [u8; M],
}

impl Default for Hll {
    fn default() -> Self {
        Hll { registers: [0; M] }
    }
}

impl Hll {
    /// Counts one hash: the first `P` bits pick a register, which keeps the longest run of
    /// leading zeros (+1) seen in the other bits.
    #[inline]
    pub fn add_hash(&mut self, h: u64) {
        let i = (h >> (64 - P)) as usize;
        // A guard bit stops the count at 64 - P + 1.
        let rank = ((h << P) | (1 << (P - 1))).leading_zeros() as u8 + 1;
        let r = &mut self.registers[i];
        if rank > *r {
            *r = rank;
        }
    }

    /// Counts a [`mark`]: the same as [`Hll::add_hash`] of the hash it was made from.
    #[inline]
    pub fn add_mark(&mut self, m: Mark) {
        let r = &mut self.registers[usize::from(m.0 >> 7)];
        let rank = (m.0 & 0x7f) as u8;
        if rank > *r {
            *r = rank;
        }
    }

    /// Adds everything `other` counted (the sketch of the union).
    pub fn merge(&mut self, other: &Hll) {
        for (a, b) in self.registers.iter_mut().zip(other.registers.iter()) {
            *a = (*a).max(*b);
        }
    }

    /// Estimated number of distinct hashes added.
    pub fn estimate(&self) -> u64 {
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let (sum, zeros) = self.registers.iter().fold((0.0f64, 0usize), |(s, z), &r| {
            (s + 1.0 / f64::from(1u32 << r.min(31)), z + usize::from(r == 0))
        });
        let raw = alpha * m * m / sum;
        // Small range: linear counting over the empty registers is far more accurate.
        // (With 64-bit hashes no large-range correction is needed.)
        let e = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        e.round() as u64
    }
}

/// What counting an address changes in a sketch (its register and rank, in 9 + 7 bits), worked
/// out ahead, where the address is at hand (on the decoding thread): never zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark(u16);

/// The [`Mark`] of `ip`.
#[inline]
pub fn mark(ip: IpAddr) -> Mark {
    let h = hash_ip(ip);
    let i = (h >> (64 - P)) as u16;
    // As in `Hll::add_hash`: at most 64 - P + 1 = 56, seven bits.
    let rank = ((h << P) | (1 << (P - 1))).leading_zeros() as u16 + 1;
    Mark((i << 7) | rank)
}

/// A cheap, well-mixed 64-bit hash of an address (the splitmix64 finaliser; IPv6 folds its
/// halves through it twice). Not keyed: see the module contract.
#[inline]
pub fn hash_ip(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => mix(u64::from(u32::from(v4))),
        IpAddr::V6(v6) => {
            let x = u128::from(v6);
            mix((x >> 64) as u64 ^ mix(x as u64) ^ 0x6a09_e667_f3bc_c909)
        }
    }
}

#[inline]
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The distinct client addresses of one destination: nothing, one address (most destinations
/// have one client, and then no sketch is allocated), or a sketch.
#[derive(Clone, Debug, Default)]
pub enum Sources {
    /// No attempt counted.
    #[default]
    None,
    /// Every attempt so far came from this address.
    One(IpAddr),
    /// At least two distinct addresses.
    Many(Box<Hll>),
}

impl Sources {
    /// Counts an attempt from `ip`.
    #[inline]
    pub fn add(&mut self, ip: IpAddr) {
        match self {
            Sources::Many(h) => h.add_hash(hash_ip(ip)),
            Sources::One(first) if *first == ip => {}
            Sources::One(first) => {
                let mut h = Box::<Hll>::default();
                h.add_hash(hash_ip(*first));
                h.add_hash(hash_ip(ip));
                *self = Sources::Many(h);
            }
            Sources::None => *self = Sources::One(ip),
        }
    }

    /// [`Sources::add`] with `m` = [`mark`]`(ip)` worked out before (a default mark: not).
    #[inline]
    pub fn add_marked(&mut self, ip: IpAddr, m: Mark) {
        match self {
            Sources::Many(h) if m != Mark::default() => h.add_mark(m),
            _ => self.add(ip),
        }
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &Sources) {
        match other {
            Sources::None => {}
            Sources::One(ip) => self.add(*ip),
            Sources::Many(h) => match self {
                Sources::Many(mine) => mine.merge(h),
                _ => {
                    let mut all = h.clone();
                    if let Sources::One(ip) = self {
                        all.add_hash(hash_ip(*ip));
                    }
                    *self = Sources::Many(all);
                }
            },
        }
    }

    /// Estimated number of distinct addresses (exact for 0 and 1).
    pub fn estimate(&self) -> u64 {
        match self {
            Sources::None => 0,
            Sources::One(_) => 1,
            Sources::Many(h) => h.estimate().max(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    /// Relative error of the estimate of `n` distinct addresses made by `addr`.
    fn error_of(n: u32, addr: impl Fn(u32) -> IpAddr) -> f64 {
        let mut s = Sources::default();
        for i in 0..n {
            s.add(addr(i));
            // Repeats do not count.
            s.add(addr(i / 2));
        }
        (s.estimate() as f64 - f64::from(n)).abs() / f64::from(n)
    }

    #[test]
    fn estimate_within_ten_percent_on_ten_and_hundred_thousand_addresses() {
        // Consecutive addresses (a /16 sweep) and scattered ones, IPv4 and IPv6.
        let sequential = |i: u32| IpAddr::V4(Ipv4Addr::from(0xc612_0000 + i));
        let scattered = |i: u32| IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)));
        let v6 = |i: u32| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, (i >> 16) as u16, i as u16));
        for n in [10_000, 100_000] {
            for (name, e) in [
                ("sequential", error_of(n, sequential)),
                ("scattered", error_of(n, scattered)),
                ("ipv6", error_of(n, v6)),
            ] {
                assert!(e < 0.10, "{name} {n}: relative error {e:.3}");
            }
        }
    }

    #[test]
    fn one_address_needs_no_sketch_and_small_counts_are_close() {
        assert_eq!(Sources::default().estimate(), 0);
        let mut one = Sources::default();
        for _ in 0..5_000 {
            one.add(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
        }
        assert_eq!(one.estimate(), 1);
        assert!(matches!(one, Sources::One(_)), "no sketch for a single client: {one:?}");
        // Linear counting below 2.5 × 512: the flood threshold (100) is in this range.
        let seq = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        for n in [2, 10, 100, 300, 1_000] {
            let e = error_of(n, seq);
            assert!(e < 0.10, "{n} addresses: relative error {e:.3}");
        }
    }

    #[test]
    fn merge_is_the_union() {
        let addr = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let (mut a, mut b, mut all) = (Sources::default(), Sources::default(), Sources::default());
        for i in 0..3_000 {
            all.add(addr(i));
            if i < 2_000 {
                a.add(addr(i));
            }
            if i >= 1_000 {
                b.add(addr(i));
            }
        }
        let mut one = Sources::One(addr(0));
        one.merge(&b);
        a.merge(&b);
        assert_eq!(a.estimate(), all.estimate(), "the union of overlapping halves");
        let mut b_first = b.clone();
        b_first.add(addr(0));
        assert_eq!(one.estimate(), b_first.estimate(), "merging into a single address");
        let mut none = Sources::default();
        none.merge(&Sources::One(addr(7)));
        assert_eq!(none.estimate(), 1);
    }

    #[test]
    fn a_mark_counts_as_its_address() {
        let (mut plain, mut marked) = (Sources::default(), Sources::default());
        for i in 0..20_000u32 {
            let ip = if i % 3 == 0 {
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, (i >> 16) as u16, i as u16))
            } else {
                IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)))
            };
            plain.add(ip);
            // Every few, no mark: the address is hashed then.
            let m = if i % 7 == 0 { Mark::default() } else { mark(ip) };
            assert_ne!(mark(ip), Mark::default());
            marked.add_marked(ip, m);
        }
        match (&plain, &marked) {
            (Sources::Many(a), Sources::Many(b)) => assert_eq!(a, b, "the same registers"),
            other => panic!("{other:?}"),
        }
    }
}
