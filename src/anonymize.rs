//! Consistent, prefix-preserving pseudonymisation of IP (and MAC) addresses, for reports and
//! evidence captures that are shared outside the organisation.
//!
//! One [`Anonymizer`] holds the mapping of a run ([`anonymizer`]): the report writers and the
//! evidence pcapng use the same one, so an address has the same pseudonym everywhere.
//!
//! The scheme is keyed and prefix-preserving, in the spirit of Crypto-PAn (Xu, Fan, Ammar,
//! Moon, "Prefix-preserving IP address anonymization", ICNP 2002): bit `i` of the pseudonym is
//! bit `i` of the address XOR one bit of a pseudo-random function of the key and the first
//! `i` bits. Two addresses that share their first `n` bits have pseudonyms that share exactly
//! their first `n` bits, so subnets stay subnets (and a /24 stays one /24) while the
//! addresses themselves are hidden. The PRF is SipHash-2-4 with a 128-bit key, implemented
//! here so that pseudonyms are stable across Rust releases.
//!
//! The key is random for each run, or derived from `SYNRST_ANON_KEY` when it is set (the same
//! key gives the same pseudonyms in every run: reports of several runs can then be compared).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, OnceLock};

use crate::model::{AttemptRecord, Report};

/// Environment variable holding a key (any string) for reproducible pseudonyms.
pub const KEY_ENV: &str = "SYNRST_ANON_KEY";

/// A keyed, prefix-preserving address mapping with a cache: the mapping of one run.
#[derive(Debug)]
pub struct Anonymizer {
    key: (u64, u64),
    cache: Mutex<HashMap<IpAddr, IpAddr>>,
}

/// The anonymizer of this process (this run): key from `SYNRST_ANON_KEY`, else random.
/// Every output of a run uses this one, so they agree.
pub fn anonymizer() -> &'static Anonymizer {
    static RUN: OnceLock<Anonymizer> = OnceLock::new();
    RUN.get_or_init(|| match std::env::var(KEY_ENV) {
        Ok(k) if !k.is_empty() => Anonymizer::with_key(&k),
        _ => Anonymizer::random(),
    })
}

/// Replaces every IP address in the report (endpoints, answer senders, and addresses inside
/// explanations, evidence, hints and warnings) by its pseudonym under the run's [`anonymizer`].
pub fn anonymize_report(report: &mut Report) {
    anonymize_report_with(anonymizer(), report);
}

/// Replaces every IP address in one attempt (for attempts streamed before the report is done).
pub fn anonymize_attempt(a: &Anonymizer, r: &mut AttemptRecord) {
    r.client.ip = a.ip(r.client.ip);
    r.server.ip = a.ip(r.server.ip);
    for p in r.answer.iter_mut().chain(r.packets.iter_mut()) {
        p.sender = a.ip(p.sender);
    }
    r.explanation = a.text(&r.explanation);
    for e in &mut r.evidence {
        e.observed = a.text(&e.observed);
        e.baseline = e.baseline.as_deref().map(|b| a.text(b));
        e.meaning = a.text(&e.meaning);
    }
}

/// [`anonymize_report`] with a given mapping.
pub fn anonymize_report_with(a: &Anonymizer, report: &mut Report) {
    for r in &mut report.attempts {
        anonymize_attempt(a, r);
    }
    if let Some(live) = &mut report.capture.live {
        live.filter = a.text(&live.filter);
    }
    for d in &mut report.summary.destinations {
        d.server.ip = a.ip(d.server.ip);
    }
    for f in &mut report.summary.floods {
        f.server.ip = a.ip(f.server.ip);
    }
    for h in &mut report.summary.hints {
        *h = a.text(h);
    }
    let c = &mut report.capture;
    for w in c
        .warnings
        .iter_mut()
        .chain(c.files.iter_mut().flat_map(|f| f.warnings.iter_mut()))
    {
        w.message = a.text(&w.message);
    }
}

impl Anonymizer {
    /// A mapping derived from `key` (any string): the same key always gives the same mapping.
    pub fn with_key(key: &str) -> Anonymizer {
        let k0 = siphash24((0x7379_6e72_7374_0001, 0x616e_6f6e_6b65_7901), key.as_bytes());
        let k1 = siphash24((0x7379_6e72_7374_0002, 0x616e_6f6e_6b65_7902), key.as_bytes());
        Anonymizer::from_key((k0, k1))
    }

    /// A mapping with a fresh random key (from the operating system's randomness, through the
    /// standard library's randomly keyed hasher, plus the time and process id).
    pub fn random() -> Anonymizer {
        use std::hash::BuildHasher;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let pid = std::process::id();
        let s1 = std::collections::hash_map::RandomState::new();
        let s2 = std::collections::hash_map::RandomState::new();
        let k0 = s1.hash_one((nanos, pid, 1u8));
        let k1 = s2.hash_one((nanos, pid, 2u8));
        Anonymizer::from_key((k0, k1))
    }

    fn from_key(key: (u64, u64)) -> Anonymizer {
        Anonymizer {
            key,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The pseudonym of `ip` (same family; prefix-preserving).
    pub fn ip(&self, ip: IpAddr) -> IpAddr {
        if let Ok(cache) = self.cache.lock() {
            if let Some(p) = cache.get(&ip) {
                return *p;
            }
        }
        let p = match ip {
            IpAddr::V4(a) => {
                let x = self.bits(4, u128::from(u32::from(a)) << 96, 32);
                IpAddr::V4(Ipv4Addr::from((x >> 96) as u32))
            }
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(self.bits(6, u128::from(a), 128))),
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(ip, p);
        }
        p
    }

    /// Prefix-preserving permutation of the first `n` bits of `x` (left-aligned in a u128).
    fn bits(&self, family: u8, x: u128, n: u32) -> u128 {
        let mut out = 0u128;
        for i in 0..n {
            let prefix = if i == 0 { 0 } else { x & (!0u128 << (128 - i)) };
            let mut msg = [0u8; 18];
            msg[0] = family;
            msg[1] = i as u8;
            msg[2..].copy_from_slice(&prefix.to_be_bytes());
            let flip = siphash24(self.key, &msg) & 1;
            let bit = (x >> (127 - i)) & 1;
            out |= (bit ^ u128::from(flip)) << (127 - i);
        }
        out
    }

    /// The pseudonym of a MAC address: keyed, keeps broadcast, the multicast bit, and marks
    /// the result locally administered (so it cannot name a real vendor).
    pub fn mac(&self, mac: [u8; 6]) -> [u8; 6] {
        if mac == [0xff; 6] || mac == [0; 6] {
            return mac;
        }
        let h = siphash24(self.key, &[&b"mac"[..], &mac[..]].concat()).to_be_bytes();
        let mut out = [h[0], h[1], h[2], h[3], h[4], h[5]];
        out[0] = (out[0] & 0xfc) | 0x02 | (mac[0] & 0x01);
        out
    }

    /// `text` with every IPv4 and IPv6 address in it replaced by its pseudonym.
    pub fn text(&self, text: &str) -> String {
        scrub(text, |ip| self.ip(ip))
    }
}

/// Replaces the IP addresses found in free text, leaving everything else as it is. A
/// candidate is a maximal run of hex digits, `.` and `:`; within it, an IPv6 address (whole
/// run, trailing `.`/`:` trimmed) or dotted IPv4 quads between `:` separators (so `a.b.c.d:port`
/// keeps its port).
pub fn scrub(text: &str, mut map: impl FnMut(IpAddr) -> IpAddr) -> String {
    let is_run = |c: char| c.is_ascii_hexdigit() || c == '.' || c == ':';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_run) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let len = tail.find(|c: char| !is_run(c)).unwrap_or(tail.len());
        // A run glued to letters or digits beyond hex (`x1.2.3.4`) is still a run: the
        // preceding character is already out. A run preceded by a letter that is part of a
        // word (`abc1.2.3.4`) holds the letters too and does not parse: left alone.
        out.push_str(&scrub_run(&tail[..len], &mut map));
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

fn scrub_run(run: &str, map: &mut impl FnMut(IpAddr) -> IpAddr) -> String {
    let trimmed = run.trim_end_matches(['.', ':']);
    let suffix = &run[trimmed.len()..];
    if trimmed.matches(':').count() >= 2 {
        // An IPv6 address must have "::" or 7 colons; "::" at the very end was trimmed.
        for cand in [run.trim_end_matches('.'), trimmed] {
            if let Ok(a) = cand.parse::<Ipv6Addr>() {
                let mapped = map(IpAddr::V6(a));
                return format!("{mapped}{}", &run[cand.len()..]);
            }
        }
    }
    // IPv4 quads between ':' separators.
    let mut out = String::with_capacity(run.len());
    for (i, seg) in trimmed.split(':').enumerate() {
        if i > 0 {
            out.push(':');
        }
        let seg_trim = seg.trim_end_matches('.');
        match seg_trim.parse::<Ipv4Addr>() {
            Ok(a) if seg_trim.split('.').count() == 4 => {
                out.push_str(&map(IpAddr::V4(a)).to_string());
                out.push_str(&seg[seg_trim.len()..]);
            }
            _ => out.push_str(seg),
        }
    }
    out.push_str(suffix);
    out
}

/// SipHash-2-4 (Aumasson, Bernstein, "SipHash: a fast short-input PRF", 2012), keyed.
fn siphash24(key: (u64, u64), msg: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher24::new_with_keys(key.0, key.1);
    h.write(msg);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: (u64, u64) = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);

    #[test]
    fn siphash_reference_vectors() {
        // The reference implementation's vectors (key 00..0f, message 00..len-1).
        assert_eq!(siphash24(TEST_KEY, &[]), 0x726f_db47_dd0e_0e31);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(TEST_KEY, &msg), 0xa129_ca61_49be_45e5);
    }

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn common_prefix(a: IpAddr, b: IpAddr) -> u32 {
        match (a, b) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)).leading_zeros(),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b)).leading_zeros(),
            _ => 0,
        }
    }

    #[test]
    fn prefix_preserving_and_consistent_v4_and_v6() {
        let a = Anonymizer::with_key("test");
        let addrs = [
            "198.19.0.10",
            "198.19.0.11",
            "198.19.1.10",
            "198.18.0.2",
            "10.0.0.1",
            "2001:db8:9::10",
            "2001:db8:9::11",
            "2001:db8:1::2",
            "fe80::1",
        ];
        for x in addrs {
            for y in addrs {
                let (x, y) = (v4(x), v4(y));
                if x.is_ipv4() != y.is_ipv4() {
                    continue;
                }
                assert_eq!(common_prefix(x, y), common_prefix(a.ip(x), a.ip(y)), "{x} {y}");
            }
            let x = v4(x);
            assert_ne!(a.ip(x), x, "{x} unchanged");
            assert_eq!(a.ip(x), a.ip(x));
            assert_eq!(a.ip(x).is_ipv4(), x.is_ipv4());
        }
        // Same key, same mapping (a fresh anonymizer, no shared cache); another key differs.
        let b = Anonymizer::with_key("test");
        let c = Anonymizer::with_key("other");
        assert_eq!(a.ip(v4("198.19.0.10")), b.ip(v4("198.19.0.10")));
        assert_ne!(a.ip(v4("198.19.0.10")), c.ip(v4("198.19.0.10")));
    }

    #[test]
    fn mapping_is_a_bijection_on_a_small_range() {
        let a = Anonymizer::with_key("k");
        let mut seen = std::collections::HashSet::new();
        for i in 0..=255u8 {
            assert!(seen.insert(a.ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)))));
        }
    }

    #[test]
    fn text_addresses_are_found_and_replaced() {
        let a = Anonymizer::with_key("t");
        let s4 = a.ip(v4("198.19.0.10"));
        let s6 = a.ip(v4("2001:db8:9::10"));
        let r4 = a.ip(v4("198.18.0.1"));
        assert_eq!(
            a.text("no SYN-ACK or other packet from 198.19.0.10 in the capture."),
            format!("no SYN-ACK or other packet from {s4} in the capture.")
        );
        assert_eq!(
            a.text("198.19.0.10:443, [2001:db8:9::10]:80"),
            format!("{s4}:443, [{s6}]:80")
        );
        assert_eq!(a.text("2001:db8:9::10, 2 hops"), format!("{s6}, 2 hops"));
        assert_eq!(a.text("router 198.18.0.1: no route"), format!("router {r4}: no route"));
        // Things that are not addresses stay.
        for s in [
            "1 hops (TTL 63 from initial 64)",
            "TTLs [61, 63], +3.7 ms, 1.0.2",
            "reserved bits 0xf00, ack 1001 (not ISN+1 = 1001)",
            "port(s) [80, 443] at 08:07:50.751",
            "deadbeef: cafe",
        ] {
            assert_eq!(a.text(s), s);
        }
    }

    #[test]
    fn mac_pseudonyms_are_local_and_keep_multicast() {
        let a = Anonymizer::with_key("m");
        let m = a.mac([0x00, 0x1b, 0x21, 1, 2, 3]);
        assert_eq!(m[0] & 0x03, 0x02);
        assert_eq!(a.mac([0x01, 0, 0x5e, 0, 0, 1])[0] & 1, 1);
        assert_eq!(a.mac([0xff; 6]), [0xff; 6]);
        assert_eq!(m, a.mac([0x00, 0x1b, 0x21, 1, 2, 3]));
    }
}
