//! Capture stage: frames, timestamps and link types out of pcap/pcapng files (or stdin).
//!
//! Contract: [`read_capture`] hands every captured frame, borrowed, to a callback together
//! with its link type and a nanosecond timestamp, then returns what it saw ([`CaptureInfo`]).
//! Nothing here interprets packet contents. A file that is not a capture at all is an error
//! ([`CaptureError`], exit code 2); damage *after* valid data (a truncated record, a bad block)
//! ends reading with a warning naming the byte offset, and everything before it is kept.
//!
//! Files are streamed with constant memory: reader threads `read()` into a few recycled
//! buffers and the records are parsed in place: file headers and pcapng blocks with
//! `pcap-parser`'s pure-Rust parsers, legacy pcap records (16 bytes of four numbers, once per
//! frame) directly, the same way (the default build links no system library). A
//! gzip-compressed capture is decompressed on the fly.

mod file;
#[cfg(feature = "live")]
pub mod live;

pub use file::{read_capture, read_capture_counting, read_capture_mapped, Batch, Source};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

/// A point in time, nanoseconds since the Unix epoch (UTC), as read from the capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds from `earlier` to `self` (negative if `self` is earlier).
    pub fn millis_since(self, earlier: Timestamp) -> f64 {
        (self.0.saturating_sub(earlier.0)) as f64 / 1e6
    }

    /// `self` plus a duration in nanoseconds, saturating.
    pub fn plus_nanos(self, nanos: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(nanos))
    }

    /// RFC 3339 in UTC with nanoseconds, e.g. `2026-11-25T07:53:38.123456789Z`: what the
    /// `time` crate writes (the fraction without trailing zeros, none for whole seconds).
    pub fn rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000) as u32;
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        if !(0..10_000).contains(&year) {
            return format!("@{}ns", self.0);
        }
        let sod = secs.rem_euclid(86_400) as u32;
        let mut b = [0u8; 30];
        put_digits(&mut b[0..4], year as u32);
        b[4] = b'-';
        put_digits(&mut b[5..7], month);
        b[7] = b'-';
        put_digits(&mut b[8..10], day);
        b[10] = b'T';
        put_digits(&mut b[11..13], sod / 3600);
        b[13] = b':';
        put_digits(&mut b[14..16], sod / 60 % 60);
        b[16] = b':';
        put_digits(&mut b[17..19], sod % 60);
        let mut n = 19;
        if nanos != 0 {
            b[19] = b'.';
            put_digits(&mut b[20..29], nanos);
            n = 29;
            while b[n - 1] == b'0' {
                n -= 1;
            }
        }
        b[n] = b'Z';
        std::str::from_utf8(&b[..=n]).map_or_else(|_| format!("@{}ns", self.0), str::to_owned)
    }
}

/// Writes `v` in decimal into all of `out`, zero-padded (the digits beyond it are dropped).
fn put_digits(out: &mut [u8], mut v: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A link-layer header type, as numbered in the tcpdump.org LINKTYPE registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II (with 802.1Q/802.1ad tags).
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP (OpenBSD's DLT_RAW number).
    pub const RAW_OPENBSD: LinkType = LinkType(12);
    /// Raw IP (BSD/OS DLT_RAW number).
    pub const RAW_BSDOS: LinkType = LinkType(14);
    /// Raw IPv4 or IPv6.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1 (`tcpdump -i any`, older libpcap).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2 (`tcpdump -i any`, libpcap ≥ 1.10).
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The registry's name, for messages (`LINKTYPE_` dropped).
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "NULL",
            1 => "ETHERNET",
            12 | 14 | 101 => "RAW",
            108 => "LOOP",
            113 => "LINUX_SLL",
            228 => "IPV4",
            229 => "IPV6",
            276 => "LINUX_SLL2",
            105 => "IEEE802_11",
            127 => "IEEE802_11_RADIOTAP",
            147..=162 => "USER",
            _ => "unknown",
        }
    }
}

/// One captured frame, borrowed from the reader's buffer: it lives only during the callback.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// When the frame was captured.
    pub ts: Timestamp,
    /// How to decode `data`.
    pub link: LinkType,
    /// The captured bytes (possibly cut at the snap length).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// Position in its file, from 1 (Wireshark's frame number).
    pub number: u64,
}

/// On-disk format of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Classic libpcap, microsecond timestamps.
    Pcap,
    /// Classic libpcap, nanosecond timestamps.
    PcapNs,
    /// pcapng.
    Pcapng,
    /// Captured live from an interface.
    Live,
}

/// A problem met while reading that did not stop the analysis of what came before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The capture it concerns.
    pub file: String,
    /// Byte offset in the (decompressed) capture, where one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// What happened and what it means for the results.
    pub message: String,
}

/// What reading one capture saw.
#[derive(Clone, Debug, Serialize)]
pub struct CaptureInfo {
    /// The path as given (`-` for stdin).
    pub path: String,
    /// pcap or pcapng.
    pub format: Format,
    /// Whether the file was gzip-compressed.
    pub gzip: bool,
    /// Frames handed to the decoder.
    pub frames: u64,
    /// Frames per link type.
    pub link_types: BTreeMap<u32, u64>,
    /// Frames not handed on, by reason (e.g. `unknown_interface`).
    pub skipped: BTreeMap<String, u64>,
    /// Bytes of capture file consumed (after decompression).
    pub bytes: u64,
    /// Damage and oddities.
    pub warnings: Vec<Warning>,
}

/// Why a capture could not be read at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Open {
        /// The path as given.
        path: PathBuf,
        /// The operating system's error (in the message, so not chained again).
        source: std::io::Error,
    },
    /// The input holds no data.
    #[error("{path}: empty file, not a capture")]
    Empty {
        /// The path as given.
        path: PathBuf,
    },
    /// Neither a pcap nor a pcapng header.
    #[error("{path}: not a pcap or pcapng capture ({detail})")]
    NotACapture {
        /// The path as given.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// A pcap/pcapng version this reader does not know.
    #[error("{path}: unsupported {format} version {major}.{minor}")]
    UnsupportedVersion {
        /// The path as given.
        path: PathBuf,
        /// `pcap` or `pcapng`.
        format: &'static str,
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the `time` crate writes, which [`Timestamp::rfc3339`] replaces.
    fn by_time_crate(t: Timestamp) -> String {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0))
            .expect("in range")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formats")
    }

    #[test]
    fn rfc3339_is_what_the_time_crate_writes() {
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp(1_795_593_218_123_456_789).rfc3339(),
            "2026-11-25T07:53:38.123456789Z"
        );
        let day = 86_400 * 1_000_000_000_i64;
        let mut cases = vec![
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            i64::MAX - 1,
            -1,
            1,
            10,
            100_000,
            day - 1,
            -day,
        ];
        // Around leap days and century years, before and after the epoch.
        for (y, m, d) in [
            (1900, 2, 28),
            (1900, 3, 1),
            (2000, 2, 29),
            (2000, 3, 1),
            (2024, 2, 29),
            (2100, 2, 28),
            (1969, 12, 31),
            (1972, 2, 29),
        ] {
            let date = time::Date::from_calendar_date(y, time::Month::try_from(m).expect("month"), d).expect("date");
            let t = date.midnight().assume_utc().unix_timestamp_nanos() as i64;
            cases.extend([t - 1, t, t + 1, t + day - 1, t + 500_000_000]);
        }
        // Every number of fraction digits.
        let mut frac = 1;
        for _ in 0..9 {
            cases.extend([
                frac,
                1_700_000_000_000_000_000 + frac,
                1_700_000_000_000_000_000 + 7 * frac,
            ]);
            frac *= 10;
        }
        // And a spread over the whole range.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(x as i64);
            // Truncated to whole seconds, milliseconds and microseconds too.
            cases.push((x as i64) / 1_000_000_000 * 1_000_000_000);
            cases.push((x as i64) / 1_000_000 * 1_000_000);
            cases.push((x as i64) / 1000 * 1000);
        }
        for c in cases {
            assert_eq!(Timestamp(c).rfc3339(), by_time_crate(Timestamp(c)), "{c} ns");
        }
    }
}
