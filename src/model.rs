//! The one serialisable [`Report`] every output format is written from (JSON schema 1).
//!
//! Keys are stable snake_case; enum values are kebab-case. Adding a key is compatible;
//! renaming or removing one bumps `schema`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::anomaly::AnomalyCounts;
use crate::capture::{CaptureInfo, Warning};
use crate::flow::Endpoint;
use crate::track::{CloseReason, Outcome, Role};

/// The JSON schema version.
pub const SCHEMA: u32 = 1;

/// Everything synrst concluded about one or more captures.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Schema version ([`SCHEMA`]).
    pub schema: u32,
    /// The program that wrote it.
    pub tool: Tool,
    /// What was read.
    pub capture: CaptureSummary,
    /// Every attempt, in order of first packet.
    pub attempts: Vec<AttemptRecord>,
    /// Counts and capture-wide conclusions.
    pub summary: Summary,
    /// `synrst probe` only: the baseline, the TTL-limited SYNs and the located device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::probe::ProbeSummary>,
}

/// Name and version of the program.
#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    /// `synrst`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

impl Default for Tool {
    fn default() -> Self {
        Tool {
            name: "synrst",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// What was read, skipped and noticed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CaptureSummary {
    /// One entry per input file.
    pub files: Vec<CaptureInfo>,
    /// Frames read in all files.
    pub frames: u64,
    /// Frames decoded into TCP segments or ICMP errors.
    pub decoded: u64,
    /// Frames not decoded, by reason (every frame is either decoded or counted here).
    pub skipped: BTreeMap<String, u64>,
    /// Damage and oddities, with byte offsets where known.
    pub warnings: Vec<Warning>,
    /// First and last capture timestamps (RFC 3339).
    pub first_packet: Option<String>,
    /// Last capture timestamp.
    pub last_packet: Option<String>,
    /// RSTs that belonged to no attempt.
    pub unmatched_rst: u64,
    /// ICMP errors quoting TCP that belonged to no attempt.
    pub unmatched_icmp: u64,
    /// Attempts closed early because of the in-flight cap.
    pub attempts_evicted: u64,
    /// Most attempts in flight at once.
    pub peak_in_flight: u64,
    /// Anomalies over all attempts and packets.
    pub anomalies: AnomalyCounts,
    /// Live capture only: interface, filter and drop counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveSummary>,
}

/// What a live capture saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveSummary {
    /// The interface.
    pub interface: String,
    /// Its link type.
    pub link_type: u32,
    /// The kernel BPF filter in force.
    pub filter: String,
    /// Packets the kernel passed to the filter.
    pub received: u64,
    /// Packets dropped by the kernel because the capture buffer was full.
    pub dropped_kernel: u64,
    /// Packets dropped by the interface or its driver.
    pub dropped_interface: u64,
    /// Seconds captured.
    pub seconds: f64,
}

/// One connection attempt as reported.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptRecord {
    /// Position in the report, from 1.
    pub id: u64,
    /// The capture its first packet came from.
    pub file: String,
    /// Who sent the SYN.
    pub client: Endpoint,
    /// Where it went.
    pub server: Endpoint,
    /// The client's initial sequence number.
    pub isn: u32,
    /// First SYN (or first packet, when the SYN is not in the capture), RFC 3339 UTC.
    pub first_syn: String,
    /// Whether the SYN itself is in the capture (false: known from an ICMP quote).
    pub syn_seen: bool,
    /// Frame number of the first SYN in its file, when the SYN is in the capture.
    pub syn_frame: Option<u64>,
    /// SYNs sent (retransmissions included; a frame captured twice counts once).
    pub syns: u32,
    /// Milliseconds from the first SYN to each SYN (the first 16).
    pub syn_times_ms: Vec<f64>,
    /// What answered, as the client saw it.
    pub outcome: Outcome,
    /// The answer that decided the outcome.
    pub answer: Option<AnswerRecord>,
    /// Every packet after the SYN in arrival order, including those the client ignored.
    pub packets: Vec<AnswerRecord>,
    /// For `no-answer`: how long the capture shows the client waiting, in milliseconds.
    pub waited_ms: Option<f64>,
    /// The error the client's connect() returned (Linux errno name).
    pub client_error: Option<&'static str>,
    /// What Chromium-based browsers show for it.
    pub browser_error: Option<&'static str>,
    /// Who refused (see README: verdicts).
    pub verdict: crate::attribute::VerdictKind,
    /// How sure.
    pub confidence: crate::attribute::Confidence,
    /// One line in plain words.
    pub explanation: String,
    /// The facts behind the verdict.
    pub evidence: Vec<crate::attribute::Evidence>,
    /// One letter per packet (README: history letters).
    pub history: String,
    /// Named anomalies seen in this attempt.
    pub anomalies: Vec<&'static str>,
    /// Why tracking stopped.
    pub closed: CloseReason,
}

/// One packet of an attempt after its SYN.
#[derive(Clone, Debug, Serialize)]
pub struct AnswerRecord {
    /// What it is.
    pub kind: Role,
    /// Its IP source.
    pub sender: IpAddr,
    /// Milliseconds after the first SYN.
    pub after_ms: f64,
    /// Frame number in its capture file (from 1), as Wireshark numbers it.
    pub frame: u64,
    /// TTL or hop limit as captured.
    pub ttl: u8,
    /// IPv4 identification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_id: Option<u16>,
    /// TCP flags, tcpdump style (shared text: there are few combinations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Cow<'static, str>>,
    /// TCP sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
    /// TCP acknowledgment number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<u32>,
    /// TCP window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u16>,
    /// TCP payload bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_len: Option<u32>,
    /// ICMP type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// ICMP code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    /// Whether the client's stack acts on it.
    pub acceptable: bool,
    /// Arrived after `--timeout` had closed the attempt.
    pub late: bool,
}

/// Counts and conclusions over all attempts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Number of attempts (listed and not).
    pub attempts: u64,
    /// Attempts beyond the listing cap (`--max-listed`): counted here and per destination,
    /// not listed in `attempts`.
    pub unlisted_attempts: u64,
    /// Unlisted attempts to destinations beyond the cap on destinations (in no row).
    pub other_destinations: u64,
    /// Attempts per outcome.
    pub by_outcome: BTreeMap<&'static str, u64>,
    /// Attempts per verdict.
    pub by_verdict: BTreeMap<&'static str, u64>,
    /// One row per server host:port.
    pub destinations: Vec<Destination>,
    /// Destinations that received a SYN flood (README: SYN floods); omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub floods: Vec<Flood>,
    /// Capture-wide observations (README: capture-wide hints).
    pub hints: Vec<String>,
}

/// A destination that received a SYN flood: many attempts from many sources, nearly none
/// answered (thresholds: `FLOOD_*` in the library root).
#[derive(Clone, Debug, Serialize)]
pub struct Flood {
    /// Server address and port.
    pub server: Endpoint,
    /// Attempts to it (listed and not).
    pub attempts: u64,
    /// Distinct client addresses, estimated (HyperLogLog: within a few percent).
    pub estimated_sources: u64,
    /// Attempts that got no answer.
    pub no_answer: u64,
}

/// Attempts to one server endpoint.
#[derive(Clone, Debug, Serialize)]
pub struct Destination {
    /// Server address and port.
    pub server: Endpoint,
    /// Attempts to it.
    pub attempts: u64,
    /// Per outcome.
    pub accepted: u64,
    /// Per outcome.
    pub refused: u64,
    /// Per outcome.
    pub unreachable: u64,
    /// Per outcome.
    pub no_answer: u64,
    /// The most common verdict among attempts that were not accepted.
    pub verdict: Option<&'static str>,
}

impl Destination {
    /// Counts one attempt with this outcome.
    pub fn count(&mut self, outcome: Outcome) {
        self.attempts += 1;
        match outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Unreachable => self.unreachable += 1,
            Outcome::NoAnswer => self.no_answer += 1,
        }
    }

    /// A row for `server` with nothing counted yet.
    pub fn new(server: Endpoint) -> Destination {
        Destination {
            server,
            attempts: 0,
            accepted: 0,
            refused: 0,
            unreachable: 0,
            no_answer: 0,
            verdict: None,
        }
    }
}
