//! Named anomalies ("weirds", after Zeek): a closed list of snake_case names, counted per
//! attempt and per capture, never logged per packet.

use std::collections::BTreeMap;

use serde::Serialize;

macro_rules! anomalies {
    ($($(#[doc = $doc:expr])* $variant:ident => $name:literal,)*) => {
        /// Something odd seen on the wire, worth counting.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Anomaly { $($(#[doc = $doc])* $variant,)* }

        impl Anomaly {
            /// Every anomaly, in declaration order.
            pub const ALL: &'static [Anomaly] = &[$(Anomaly::$variant,)*];
            /// The stable snake_case name used in reports.
            pub fn name(self) -> &'static str {
                match self { $(Anomaly::$variant => $name,)* }
            }
        }
    };
}

anomalies! {
    /// The same frame captured twice (same packet within 1 ms): counted once.
    DuplicateFrame => "duplicate_frame",
    /// A TCP checksum that does not verify (on the capturing host's own packets: offload).
    BadChecksum => "bad_checksum",
    /// A SYN carrying payload.
    SynWithData => "syn_with_data",
    /// A RST whose ack is not ISN+1: the client ignores it (RFC 9293 §3.10.7.3).
    RstBadAck => "rst_bad_ack",
    /// A RST without the ACK flag answering a SYN: the client ignores it.
    RstNoAck => "rst_no_ack",
    /// A RST carrying payload.
    RstWithPayload => "rst_with_payload",
    /// A SYN-ACK whose ack is not ISN+1: the client answers it with a RST.
    SynAckBadAck => "synack_bad_ack",
    /// A segment from the server that is neither SYN-ACK nor RST while the client waits.
    ServerUnexpectedSegment => "server_unexpected_segment",
    /// An ICMP error quoting too little TCP to check its sequence number: the client ignores it.
    IcmpQuoteNoSeq => "icmp_quote_no_seq",
    /// An ICMP error quoting the attempt's ports but another sequence number.
    IcmpSeqMismatch => "icmp_seq_mismatch",
    /// ICMP "fragmentation needed" for a SYN: a path-MTU signal, not a refusal.
    IcmpFragNeeded => "icmp_frag_needed",
    /// An answer that came later than --timeout after the last SYN.
    LateAnswer => "late_answer",
    /// A SYN retransmitted after --timeout had already closed the attempt.
    SynAfterTimeout => "syn_after_timeout",
    /// The attempt was closed early because too many attempts were in flight.
    Evicted => "evicted",
    /// A new SYN (new ISN) on the same 4-tuple closed this attempt.
    PortReuse => "port_reuse",
    /// An answer arrived before the SYN it answers (timestamps out of order).
    AnswerBeforeSyn => "answer_before_syn",
    /// Too many events for one attempt: later ones were counted, not kept.
    EventsCapped => "events_capped",
}

/// A small set of anomalies (one bit each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AnomalySet(u32);

impl AnomalySet {
    /// Adds one.
    pub fn insert(&mut self, a: Anomaly) {
        self.0 |= 1 << (a as u8);
    }
    /// Whether it holds `a`.
    pub fn contains(self, a: Anomaly) -> bool {
        self.0 & (1 << (a as u8)) != 0
    }
    /// The names it holds, in declaration order.
    pub fn names(self) -> Vec<&'static str> {
        Anomaly::ALL
            .iter()
            .filter(|a| self.contains(**a))
            .map(|a| a.name())
            .collect()
    }
}

/// Capture-wide counts per anomaly.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct AnomalyCounts(pub BTreeMap<&'static str, u64>);

impl AnomalyCounts {
    /// Counts one occurrence.
    pub fn bump(&mut self, a: Anomaly) {
        *self.0.entry(a.name()).or_insert(0) += 1;
    }
}
