//! Capture stage: frames, timestamps and link types out of pcap/pcapng files (or stdin).
//!
//! Contract: [`read_capture`] hands every captured frame, borrowed, to a callback together
//! with its link type and a nanosecond timestamp, then returns what it saw ([`CaptureInfo`]).
//! Nothing here interprets packet contents. A file that is not a capture at all is an error
//! ([`CaptureError`], exit code 2); damage *after* valid data (a truncated record, a bad block)
//! ends reading with a warning naming the byte offset, and everything before it is kept.
//!
//! Files are streamed with constant memory: a reader thread `read()`s into a few recycled
//! buffers and the records are parsed in place with `pcap-parser`'s pure-Rust parsers (the
//! default build links no system library). A gzip-compressed capture is decompressed on the fly.

mod file;
#[cfg(feature = "live")]
pub mod live;

pub use file::{read_capture, read_capture_counting, read_capture_mapped, Source};

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

    /// RFC 3339 in UTC with nanoseconds, e.g. `2026-11-25T07:53:38.123456789Z`.
    pub fn rfc3339(self) -> String {
        match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0)) {
            Ok(t) => t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| format!("@{}ns", self.0)),
            Err(_) => format!("@{}ns", self.0),
        }
    }
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
