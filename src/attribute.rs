//! Attribute stage: who refused, with evidence and a confidence.
//!
//! [`Baselines`] learns, from every packet of the capture, what each remote host looks like
//! when it really answers (hop distance from its TTL, SYN-ACK round-trip time, IP ID
//! behaviour, SYN-ACK fingerprint). [`attribute`] then compares each attempt's answers with
//! those baselines and applies the decision table in [`decide`]: one commented arm per rule,
//! each citing its source. Every verdict carries the [`Evidence`] that produced it; where the
//! wire cannot tell causes apart the verdict says so instead of guessing.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;
use smallvec::SmallVec;

use crate::decode::{IcmpError, IcmpKind, Observation, TcpInfo, L4};
use crate::track::{outcome, Attempt, Event, Outcome, Role};

/// Who (or what) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictKind {
    /// The server accepted (SYN-ACK).
    Accepted,
    /// The destination's TCP stack answered RST: nothing listens on the port. A
    /// `reject with tcp reset` rule on the host itself looks identical on the wire.
    ClosedPort,
    /// The destination's own firewall rejected it (ICMP from the destination itself).
    HostFirewall,
    /// A firewall or middlebox on the path rejected it (RST or ICMP from a nearer device).
    PathFirewall,
    /// A router reported the host unreachable (ARP/ND failed: host down or absent).
    HostUnreachable,
    /// A router has no route to the network (or the packet's TTL expired on the way).
    NetUnreachable,
    /// Nothing answered: a filter dropped the SYN, or the host is down.
    FilteredOrDown,
    /// The capture does not allow a conclusion.
    Unknown,
}

impl VerdictKind {
    /// Every kind, in declaration order (a kind's place is `kind as usize`).
    pub const ALL: [VerdictKind; 8] = [
        VerdictKind::Accepted,
        VerdictKind::ClosedPort,
        VerdictKind::HostFirewall,
        VerdictKind::PathFirewall,
        VerdictKind::HostUnreachable,
        VerdictKind::NetUnreachable,
        VerdictKind::FilteredOrDown,
        VerdictKind::Unknown,
    ];

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            VerdictKind::Accepted => "accepted",
            VerdictKind::ClosedPort => "closed-port",
            VerdictKind::HostFirewall => "host-firewall",
            VerdictKind::PathFirewall => "path-firewall",
            VerdictKind::HostUnreachable => "host-unreachable",
            VerdictKind::NetUnreachable => "net-unreachable",
            VerdictKind::FilteredOrDown => "filtered-or-down",
            VerdictKind::Unknown => "unknown",
        }
    }
}

/// Attempts counted per verdict: a small array, where a map keyed by name would allocate for
/// each of the thousands of destinations a summary counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerdictCounts([u64; VerdictKind::ALL.len()]);

impl VerdictCounts {
    /// Counts `n` attempts with verdict `kind`.
    #[inline]
    pub fn add(&mut self, kind: VerdictKind, n: u64) {
        self.0[kind as usize] += n;
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &VerdictCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// The kinds counted at least once, with their counts, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (VerdictKind, u64)> + '_ {
        VerdictKind::ALL.into_iter().zip(self.0).filter(|(_, n)| *n > 0)
    }

    /// The kind counted most often; of kinds counted equally often, the first by name.
    pub fn most_common(&self) -> Option<VerdictKind> {
        self.iter()
            .max_by_key(|(k, n)| (*n, std::cmp::Reverse(k.name())))
            .map(|(k, _)| k)
    }
}

/// How sure a verdict is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    /// Little to go on; the evidence says what would decide it.
    Low,
    /// One good signal, or several weaker ones agreeing.
    Medium,
    /// A signal that leaves no reasonable alternative.
    High,
}

impl Confidence {
    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// One fact that went into a verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// Which signal (stable snake_case name, listed in the README).
    pub signal: &'static str,
    /// What was observed.
    pub observed: String,
    /// What it was compared with, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// What it means.
    pub meaning: String,
}

fn ev(signal: &'static str, observed: String, baseline: Option<String>, meaning: impl Into<String>) -> Evidence {
    Evidence {
        signal,
        observed,
        baseline,
        meaning: meaning.into(),
    }
}

/// A verdict with its confidence, a one-line explanation and the evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// Who refused.
    pub verdict: VerdictKind,
    /// How sure.
    pub confidence: Confidence,
    /// One line in plain words.
    pub explanation: String,
    /// The facts.
    pub evidence: Vec<Evidence>,
}

/// The initial TTL a sender most likely used: the smallest common default at or above `ttl`
/// (32, 64, 128, 255: the defaults of embedded stacks, Linux/macOS, Windows, network gear).
pub fn initial_ttl(ttl: u8) -> u8 {
    match ttl {
        0..=32 => 32,
        33..=64 => 64,
        65..=128 => 128,
        _ => 255,
    }
}

/// "1 hop", "3 hops".
pub fn n_hops(n: u8) -> String {
    if n == 1 {
        "1 hop".to_string()
    } else {
        format!("{n} hops")
    }
}

/// Hops travelled, from a captured TTL.
pub fn hops(ttl: u8) -> u8 {
    initial_ttl(ttl) - ttl
}

/// How a host numbers its IPv4 packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpIdPattern {
    /// Always zero (Linux with DF on connection packets).
    Zero,
    /// A counter.
    Incrementing,
    /// No visible order.
    Random,
}

/// What one remote host looks like when it answers for itself.
#[derive(Clone, Debug, Default)]
pub struct HostBaseline {
    /// Hop distances of its non-RST TCP packets (SYN-ACKs, data, ACKs): min and max.
    pub hops: Option<(u8, u8)>,
    /// Initial TTL of those packets.
    pub initial_ttl: Option<u8>,
    /// Packets behind `hops`.
    pub packets: u64,
    /// SYN-ACKs seen from it.
    pub synacks: u64,
    /// Minimum SYN → SYN-ACK time, ms.
    pub min_rtt_ms: Option<f64>,
    /// IPv4 IDs of its non-RST packets (first [`MAX_IP_IDS`], inline: no allocation per host).
    ip_ids: SmallVec<[u16; MAX_IP_IDS]>,
    /// (window, option layout) of its first SYN-ACK.
    pub synack_fingerprint: Option<(u16, u64)>,
    /// Ports on which it sent a SYN-ACK (the first [`MAX_OPEN_PORTS`]).
    pub open_ports: SmallVec<[u16; MAX_OPEN_PORTS]>,
    /// IPv4 packets with and without the don't-fragment bit.
    pub df: (u64, u64),
    /// IPv6 packets with a non-zero and a zero flow label.
    pub flow_label: (u64, u64),
    /// TOS / traffic class of its first SYN-ACK.
    pub synack_tos: Option<u8>,
    /// TTL of its last packet (behind `hops` and `initial_ttl`).
    last_ttl: u8,
}

impl HostBaseline {
    /// The IP ID pattern, if enough IPv4 packets were seen.
    pub fn ip_id_pattern(&self) -> Option<IpIdPattern> {
        if self.ip_ids.len() < 2 {
            return None;
        }
        if self.ip_ids.iter().all(|&i| i == 0) {
            return Some(IpIdPattern::Zero);
        }
        let small_steps = self
            .ip_ids
            .windows(2)
            .filter(|w| {
                let d = w[1].wrapping_sub(w[0]);
                d > 0 && d < 1024
            })
            .count();
        if small_steps * 4 >= (self.ip_ids.len() - 1) * 3 {
            Some(IpIdPattern::Incrementing)
        } else {
            Some(IpIdPattern::Random)
        }
    }

    /// Learns from one of its own TCP packets.
    #[inline(always)]
    fn learn(&mut self, o: &Observation, t: &TcpInfo) {
        // The hops and initial TTL change only with the TTL (mostly the same packet after packet).
        if self.packets == 0 || o.ip.ttl != self.last_ttl {
            let d = hops(o.ip.ttl);
            self.hops = Some(match self.hops {
                Some((lo, hi)) => (lo.min(d), hi.max(d)),
                None => (d, d),
            });
            self.initial_ttl = Some(initial_ttl(o.ip.ttl));
            self.last_ttl = o.ip.ttl;
        }
        self.packets += 1;
        if let Some(id) = o.ip.ip_id {
            if self.ip_ids.len() < MAX_IP_IDS {
                self.ip_ids.push(id);
            }
            if o.ip.df {
                self.df.0 += 1;
            } else {
                self.df.1 += 1;
            }
        }
        match o.ip.flow_label {
            Some(0) => self.flow_label.1 += 1,
            Some(_) => self.flow_label.0 += 1,
            None => {}
        }
        if t.flags.syn() && t.flags.ack() {
            self.synacks += 1;
            if self.synack_tos.is_none() {
                self.synack_tos = Some(o.ip.tos);
            }
            if self.synack_fingerprint.is_none() {
                self.synack_fingerprint = Some((t.window, t.options.layout));
            }
            if !self.open_ports.contains(&t.src_port) && self.open_ports.len() < MAX_OPEN_PORTS {
                self.open_ports.push(t.src_port);
            }
        }
    }

    fn describe_hops(&self) -> String {
        match self.hops {
            Some((lo, hi)) if lo == hi => format!(
                "{} (TTL {} from initial {})",
                n_hops(lo),
                self.initial_ttl.unwrap_or(0) - lo,
                self.initial_ttl.unwrap_or(0)
            ),
            Some((lo, hi)) => format!("{lo}-{hi} hops"),
            None => "unknown".into(),
        }
    }
}

/// Per-host baselines learned over the whole capture.
#[derive(Clone, Debug, Default)]
pub struct Baselines {
    /// Where each host's baseline lies in `list`. Keyed per process (addresses come from the
    /// wire), fast (looked up per packet).
    index: HashMap<IpAddr, u32, foldhash::fast::RandomState>,
    /// The baselines, in the order their hosts were first seen.
    list: Vec<(IpAddr, HostBaseline)>,
    /// Two hosts learned from lately, with their places in `list` (a new one takes the first
    /// place, the first moves to the second). A transfer alternates between its two ends (data
    /// one way, ACKs the other), so most packets find their host here without a lookup in
    /// `index`.
    recent: [Option<(IpAddr, u32)>; 2],
}

/// Most IP IDs kept per host.
const MAX_IP_IDS: usize = 32;
/// Most open ports kept per host.
pub const MAX_OPEN_PORTS: usize = 16;
/// Most hosts kept (memory bound under floods of random sources).
const MAX_HOSTS: usize = 100_000;

impl Baselines {
    /// Learns from one packet: every TCP packet that is not a RST is the host speaking for
    /// itself (a RST is what we are judging, so it never feeds the baseline).
    #[inline]
    pub fn observe(&mut self, o: &Observation) {
        let L4::Tcp(t) = &o.l4 else { return };
        if t.flags.rst() || (t.flags.syn() && !t.flags.ack()) {
            // SYNs are the clients' packets; they say nothing about servers.
            return;
        }
        self.learn(o, t);
    }

    #[inline]
    fn learn(&mut self, o: &Observation, t: &TcpInfo) {
        let ip = o.ip.src;
        let place = match self.recent {
            [Some((last, i)), _] if last == ip => i,
            // Left where it is: the two ends of a transfer take turns without a swap.
            [_, Some((last, i))] if last == ip => i,
            _ => match self.place(ip) {
                Some(i) => {
                    self.recent = [Some((ip, i)), self.recent[0]];
                    i
                }
                None => return,
            },
        };
        if let Some((_, h)) = self.list.get_mut(place as usize) {
            h.learn(o, t);
        }
    }

    /// The place of `ip`'s baseline in `list`, a new one if there is room.
    #[inline(never)]
    fn place(&mut self, ip: IpAddr) -> Option<u32> {
        if let Some(&i) = self.index.get(&ip) {
            return Some(i);
        }
        if self.list.len() >= MAX_HOSTS {
            return None;
        }
        let i = self.list.len() as u32;
        self.list.push((ip, HostBaseline::default()));
        self.index.insert(ip, i);
        Some(i)
    }

    fn get(&self, ip: &IpAddr) -> Option<&HostBaseline> {
        let i = *self.index.get(ip)?;
        self.list.get(i as usize).map(|(_, h)| h)
    }

    fn get_mut(&mut self, ip: &IpAddr) -> Option<&mut HostBaseline> {
        let i = *self.index.get(ip)?;
        self.list.get_mut(i as usize).map(|(_, h)| h)
    }

    /// Learns SYN-ACK round-trip times from a finished attempt.
    pub fn observe_attempt(&mut self, a: &Attempt) {
        if let Some(e) = a.answer() {
            if e.role == Role::SynAck {
                let sent = a
                    .syn_times
                    .iter()
                    .filter(|t| **t <= e.obs.ts)
                    .max()
                    .copied()
                    .unwrap_or(a.start);
                let rtt = e.obs.ts.millis_since(sent);
                if rtt >= 0.0 {
                    if let Some(h) = self.get_mut(&a.server.ip) {
                        h.min_rtt_ms = Some(h.min_rtt_ms.map_or(rtt, |m| m.min(rtt)));
                    }
                }
            }
        }
    }

    /// The baseline of `ip`, if it ever spoke for itself.
    pub fn host(&self, ip: &IpAddr) -> Option<&HostBaseline> {
        self.get(ip).filter(|h| h.packets > 0)
    }

    /// All hosts with a baseline.
    pub fn hosts(&self) -> impl Iterator<Item = (&IpAddr, &HostBaseline)> {
        self.list.iter().map(|(ip, h)| (ip, h))
    }
}

/// Facts about a RST answer, computed before the decision table.
struct RstFacts {
    /// The RST is followed by a SYN-ACK or data from the "same" server (a race).
    race: bool,
    /// Several answering RSTs with different TTL/IP ID/seq (not explained by SYN retransmits).
    rst_mismatch: bool,
    /// Hop distance of the RST vs the host's.
    hop_cmp: Option<std::cmp::Ordering>,
    /// Initial TTL differs from the host's.
    init_ttl_differs: bool,
    /// Answer faster than half the host's minimum RTT.
    too_fast: bool,
    /// Fields a stack would not put in a RST answering a bare SYN.
    odd_fields: Vec<String>,
}

/// Attributes one attempt.
pub fn attribute(a: &Attempt, b: &Baselines) -> Verdict {
    let out = outcome(a);
    let mut evidence = Vec::new();
    let forged = forged_rst_evidence(a, &mut evidence);
    // Only a refusal or a silence is judged against the server's baseline (the lookup misses
    // the cache on a big capture, so accepted attempts skip it).
    let host = || b.host(&a.server.ip);
    match (out, a.answer()) {
        (Outcome::Accepted, None) => {
            if let Some(c) = a.client_continued() {
                evidence.push(ev(
                    "client_continued",
                    format!(
                        "the client sent an ACK at +{:.1} ms with no SYN-ACK in the capture",
                        c.obs.ts.millis_since(a.start)
                    ),
                    None,
                    "the client completed the handshake, so a SYN-ACK reached it: the capture sees only one direction (asymmetric routing or a one-sided tap)",
                ));
            }
            Verdict {
                verdict: VerdictKind::Accepted,
                confidence: Confidence::Medium,
                explanation:
                    "accepted: the client went on with the connection (its SYN-ACK is not in this one-sided capture)"
                        .into(),
                evidence,
            }
        }
        (Outcome::Accepted, _) => {
            let explanation = if forged {
                "accepted, but a RST that the client ignored was injected before the SYN-ACK (see evidence)".to_string()
            } else {
                "the server answered with a SYN-ACK".to_string()
            };
            Verdict {
                verdict: VerdictKind::Accepted,
                confidence: Confidence::High,
                explanation,
                evidence,
            }
        }
        (Outcome::Refused, Some(rst)) => decide_rst(a, rst, host(), evidence),
        (Outcome::Unreachable, Some(icmp)) => decide_icmp(a, icmp, host(), evidence),
        _ => decide_silence(a, b, host(), forged, evidence),
    }
}

/// Evidence of RSTs forged by a device on the path, in any outcome: RSTs the client ignored,
/// RSTs followed by a SYN-ACK, RSTs that disagree with each other. Returns whether a RST
/// looks injected.
fn forged_rst_evidence(a: &Attempt, evidence: &mut Vec<Evidence>) -> bool {
    let rsts: Vec<&Event> = a.events.iter().filter(|e| e.role == Role::Rst).collect();
    if rsts.is_empty() {
        return false;
    }
    let mut forged = false;
    // Race (Weaver, Sommer, Paxson, "Detecting Forged TCP Reset Packets", NDSS 2009): a RST
    // followed by a SYN-ACK or data for the same attempt. The real server cannot have sent both.
    let first_rst = rsts[0];
    if let Some(later) = a.events.iter().find(|e| {
        e.obs.ts >= first_rst.obs.ts
            && matches!(e.role, Role::SynAck | Role::ServerOther)
            && e.obs.ip.src == a.server.ip
    }) {
        forged = true;
        evidence.push(ev(
            "rst_then_synack",
            format!(
                "RST (TTL {}) at +{:.1} ms, then {} (TTL {}) at +{:.1} ms",
                first_rst.obs.ip.ttl,
                first_rst.obs.ts.millis_since(a.start),
                if later.role == Role::SynAck {
                    "SYN-ACK"
                } else {
                    "a segment"
                },
                later.obs.ip.ttl,
                later.obs.ts.millis_since(a.start)
            ),
            None,
            "the server answered the same SYN after the RST: the RST was injected by a device on the path",
        ));
    }
    // Fields a stack would not send for a bare SYN (RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>).
    for r in &rsts {
        if let L4::Tcp(t) = r.obs.l4 {
            let odd = odd_rst_fields(&t, a);
            if !odd.is_empty() && !r.acceptable {
                forged = true;
                evidence.push(ev(
                    "rst_ignored_by_client",
                    format!("RST with {}", odd.join(", ")),
                    Some(format!("a genuine RST for this SYN acks ISN+1 = {}", a.isn.plus(1).0)),
                    "the client's stack discards this RST (RFC 9293 §3.10.7.3); it bears the marks of a forged RST",
                ));
            }
        }
    }
    // Several RSTs that disagree (different TTL or IP ID), beyond one per SYN sent.
    if rsts.len() >= 2 {
        let ttls: Vec<u8> = rsts.iter().map(|r| r.obs.ip.ttl).collect();
        let differ = ttls.iter().any(|t| *t != ttls[0]);
        if differ && rsts.len() as u32 > a.syns.max(1) {
            forged = true;
            evidence.push(ev(
                "rst_disagree",
                format!("{} RSTs for {} SYN(s), TTLs {:?}", rsts.len(), a.syns, ttls),
                None,
                "RSTs that disagree with each other for one SYN come from more than one sender: at least one was injected",
            ));
        }
    }
    forged
}

/// Where the RST's IP header habits (DF, IP ID, IPv6 flow label, TOS) differ from the host's
/// own packets, one evidence entry each.
fn header_habits(rst: &Event, host: Option<&HostBaseline>) -> Vec<Evidence> {
    let Some(h) = host else { return Vec::new() };
    let ip = &rst.obs.ip;
    let mut out = Vec::new();
    // The don't-fragment bit: stacks set it on all their TCP packets or on none (RFC 1191).
    if ip.ip_id.is_some() && h.df.0 + h.df.1 >= 2 {
        let host_df = if h.df.1 == 0 {
            Some(true)
        } else if h.df.0 == 0 {
            Some(false)
        } else {
            None
        };
        if let Some(host_df) = host_df.filter(|d| *d != ip.df) {
            out.push(ev(
                "rst_df",
                format!("RST {} the don't-fragment bit", if ip.df { "sets" } else { "lacks" }),
                Some(format!(
                    "all {} of the server's packets {} it",
                    h.df.0 + h.df.1,
                    if host_df { "set" } else { "lack" }
                )),
                "the RST was not built like the server's own packets: another stack, or a rule that crafts it",
            ));
        }
    }
    // IP ID: a host whose packets all carry IP ID 0 (Linux with DF) sends its RSTs with 0 too.
    if let (Some(id), Some(IpIdPattern::Zero)) = (ip.ip_id, h.ip_id_pattern()) {
        if id != 0 {
            out.push(ev(
                "rst_ip_id",
                format!("RST with IP ID {id}"),
                Some("the server's packets all carry IP ID 0".into()),
                "the RST was numbered by another IP stack",
            ));
        }
    }
    // IPv6 flow label: Linux's own RST for a closed port carries one (from the connection's
    // hash); the RSTs that nftables/iptables `reject with tcp reset` builds carry 0 — on the
    // host or on the path. Other stacks differ, so this is a hint.
    if let Some(0) = ip.flow_label {
        if h.flow_label.0 > 0 && h.flow_label.1 == 0 {
            out.push(ev(
                "rst_flow_label",
                "RST with flow label 0".into(),
                Some(format!("all {} of the server's IPv6 packets carry a flow label", h.flow_label.0)),
                "on Linux the kernel's own RST for a closed port carries a flow label and a `reject with tcp reset` rule's does not: this leans to a firewall rule (on the server or the path)",
            ));
        }
    }
    // TOS / traffic class: a RST made by the server's stack usually carries what its SYN-ACKs do.
    if let Some(tos) = h.synack_tos.filter(|t| *t != ip.tos) {
        out.push(ev(
            "rst_tos",
            format!("RST with TOS {:#04x}", ip.tos),
            Some(format!("the server's SYN-ACKs carry TOS {tos:#04x}")),
            "a hint that something else built the RST",
        ));
    }
    out
}

/// What a RST carries that a TCP stack answering a bare SYN would not.
fn odd_rst_fields(t: &TcpInfo, a: &Attempt) -> Vec<String> {
    let mut odd = Vec::new();
    if !t.flags.ack() {
        odd.push("no ACK flag".to_string());
    } else if !t.ack.acks_syn(a.isn, a.syn_payload) {
        odd.push(format!("ack {} (not ISN+1 = {})", t.ack.0, a.isn.plus(1).0));
    }
    if t.window != 0 {
        odd.push(format!("window {}", t.window));
    }
    if t.payload_len > 0 {
        odd.push(format!("{} bytes of payload", t.payload_len));
    }
    if t.options.len > 0 {
        odd.push("TCP options".to_string());
    }
    if t.flags.reserved() != 0 {
        odd.push(format!("reserved bits {:#x}", t.flags.reserved()));
    }
    odd
}

fn rst_facts(a: &Attempt, rst: &Event, host: Option<&HostBaseline>, evidence: &[Evidence]) -> RstFacts {
    let t = match rst.obs.l4 {
        L4::Tcp(t) => t,
        _ => unreachable_tcp(),
    };
    let race = evidence.iter().any(|e| e.signal == "rst_then_synack");
    let rst_mismatch = evidence.iter().any(|e| e.signal == "rst_disagree");
    let d = hops(rst.obs.ip.ttl);
    let (hop_cmp, init_ttl_differs) = match host.and_then(|h| h.hops.map(|hh| (hh, h.initial_ttl))) {
        Some(((lo, hi), init)) => {
            let cmp = if d < lo {
                std::cmp::Ordering::Less
            } else if d > hi {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            };
            (Some(cmp), init.is_some_and(|i| i != initial_ttl(rst.obs.ip.ttl)))
        }
        None => (None, false),
    };
    let sent = a
        .syn_times
        .iter()
        .filter(|s| **s <= rst.obs.ts)
        .max()
        .copied()
        .unwrap_or(a.start);
    let rtt = rst.obs.ts.millis_since(sent);
    let too_fast = host
        .and_then(|h| h.min_rtt_ms)
        .is_some_and(|m| m > 1.0 && rtt < m * 0.5);
    let mut odd = odd_rst_fields(&t, a);
    // An acceptable RST has the ACK right by definition; keep only the other oddities.
    odd.retain(|s| !s.starts_with("ack ") && s != "no ACK flag");
    RstFacts {
        race,
        rst_mismatch,
        hop_cmp,
        init_ttl_differs,
        too_fast,
        odd_fields: odd,
    }
}

fn unreachable_tcp() -> TcpInfo {
    // A Role::Rst event always holds a TCP observation; this keeps the function total.
    TcpInfo {
        src_port: 0,
        dst_port: 0,
        seq: Default::default(),
        ack: Default::default(),
        flags: Default::default(),
        window: 0,
        options: Default::default(),
        payload_len: 0,
        checksum: crate::decode::Checksum::Unknown,
    }
}

/// Decision table for an attempt refused by a RST.
fn decide_rst(a: &Attempt, rst: &Event, host: Option<&HostBaseline>, mut evidence: Vec<Evidence>) -> Verdict {
    use std::cmp::Ordering::*;
    let f = rst_facts(a, rst, host, &evidence);
    let d = hops(rst.obs.ip.ttl);
    let observed_hops = format!(
        "{} (TTL {} from initial {})",
        n_hops(d),
        rst.obs.ip.ttl,
        initial_ttl(rst.obs.ip.ttl)
    );
    if rst.obs.ip.src != a.server.ip {
        evidence.push(ev(
            "rst_sender",
            rst.obs.ip.src.to_string(),
            Some(a.server.ip.to_string()),
            "the RST's source address is not the server's",
        ));
    }
    match (f.hop_cmp, host) {
        (Some(Less), Some(h)) => evidence.push(ev(
            "rst_hops",
            observed_hops.clone(),
            Some(h.describe_hops()),
            "the RST came from nearer than the server: a device on the path sent it",
        )),
        (Some(Equal), Some(h)) => evidence.push(ev(
            "rst_hops",
            observed_hops.clone(),
            Some(h.describe_hops()),
            "the RST travelled as far as the server's own packets: consistent with the server's TCP stack",
        )),
        (Some(Greater), Some(h)) => evidence.push(ev(
            "rst_hops",
            observed_hops.clone(),
            Some(h.describe_hops()),
            "the RST travelled further than the server's own packets: another sender, or a route change",
        )),
        _ => evidence.push(ev(
            "rst_hops",
            observed_hops.clone(),
            None,
            "no packet in the capture shows how far the server itself is: nothing to compare the RST with",
        )),
    }
    if f.init_ttl_differs {
        evidence.push(ev(
            "rst_initial_ttl",
            format!("initial TTL {}", initial_ttl(rst.obs.ip.ttl)),
            host.and_then(|h| h.initial_ttl).map(|i| format!("initial TTL {i}")),
            "the RST was sent by a different TCP/IP stack than the server's own packets",
        ));
    }
    if f.too_fast {
        evidence.push(ev(
            "rst_faster_than_rtt",
            format!("{:.2} ms after the SYN", rst.obs.ts.millis_since(a.start)),
            host.and_then(|h| h.min_rtt_ms)
                .map(|m| format!("server's fastest SYN-ACK: {m:.2} ms")),
            "answered faster than the server can: something nearer answered",
        ));
    }
    if !f.odd_fields.is_empty() {
        evidence.push(ev(
            "rst_odd_fields",
            f.odd_fields.join(", "),
            Some("window 0, no payload, no options".into()),
            "fields a TCP stack does not put in a RST answering a SYN",
        ));
    }
    // Header habits of the host's own packets (issue: IP ID, DF, flow label, TOS). They vary
    // between stacks and rules but are never proof alone, so they only add evidence and lower
    // the confidence of a closed-port verdict; they never accuse the path by themselves.
    let habits = header_habits(rst, host);
    let habits_disagree = !habits.is_empty();
    evidence.extend(habits);
    let nearer = matches!(f.hop_cmp, Some(Less));
    let same = matches!(f.hop_cmp, Some(Equal));
    // The decision table. First matching arm wins.
    let (verdict, confidence, explanation) = match (f.race, f.rst_mismatch, nearer, same, f.init_ttl_differs, f.too_fast, f.odd_fields.is_empty()) {
        // A RST followed by the server's own SYN-ACK for the same SYN: the server cannot have
        // sent both, so the RST was injected (NDSS 2009). Near-conclusive.
        (true, ..) => (VerdictKind::PathFirewall, Confidence::High, format!("RST injected by a device on the path (the server answered SYN-ACK afterwards); RST arrived {observed_hops}")),
        // RSTs for one SYN that disagree in TTL come from two senders.
        (_, true, ..) => (VerdictKind::PathFirewall, Confidence::Medium, "RSTs from more than one sender for one SYN: at least one injected on the path".to_string()),
        // Hop distance shorter than the server's own packets (TTL analysis, as in NDSS 2009 §4):
        // a device between client and server generated the RST.
        (_, _, true, _, _, fast, _) => (
            VerdictKind::PathFirewall,
            if fast || host.is_some_and(|h| h.synacks > 0) { Confidence::High } else { Confidence::Medium },
            format!(
                "RST sent by a device {} from the client; the server is {}",
                n_hops(hops(rst.obs.ip.ttl)),
                host.map(|h| h.describe_hops()).unwrap_or_default()
            ),
        ),
        // Same distance but a different initial TTL: a different TCP/IP stack sent the RST,
        // so a middlebox answered, less surely than by distance.
        (_, _, false, _, true, _, _) => (
            VerdictKind::PathFirewall,
            Confidence::Medium,
            "RST from a different TCP/IP stack than the server's (initial TTL differs): a middlebox answered".to_string(),
        ),
        // Same distance as the server's own packets, nothing odd: the server's TCP stack sent
        // it (RFC 9293 §3.10.7.1, a SYN to a CLOSED port). A `reject with tcp reset` rule on
        // the server itself is indistinguishable on the wire. Timing alone never overrides the
        // distance (it varies with load), but it lowers the confidence.
        (_, _, false, true, false, fast, true) => (
            VerdictKind::ClosedPort,
            if host.is_some_and(|h| h.synacks > 0) && !fast && !habits_disagree { Confidence::High } else { Confidence::Medium },
            format!("the server's own TCP stack answered RST: nothing listens on port {} (or the server's own firewall rejects with tcp-reset)", a.server.port),
        ),
        // Same distance but odd fields: probably the host, but something rewrote or forged it.
        (_, _, false, true, false, _, false) => (
            VerdictKind::ClosedPort,
            Confidence::Low,
            "RST from the server's distance but with fields a stack would not send".to_string(),
        ),
        // Further than the server: route change or a second device behind it; no conclusion.
        _ if matches!(f.hop_cmp, Some(Greater)) => (
            VerdictKind::Unknown,
            Confidence::Low,
            "RST from further away than the server's own packets; cannot tell who sent it".to_string(),
        ),
        // No baseline: the RST is consistent with a closed port, but a firewall on the path
        // sends the same bytes. Say so and say what would decide it.
        _ => (
            VerdictKind::ClosedPort,
            Confidence::Low,
            format!("RST answered the SYN ({observed_hops}); no packet from the server to compare with, so a firewall on the path cannot be ruled out"),
        ),
    };
    if verdict == VerdictKind::ClosedPort {
        evidence.push(ev(
            "host_firewall_indistinguishable",
            "RST+ACK acknowledging ISN+1, window 0".into(),
            None,
            "a `reject with tcp reset` rule on the server itself sends exactly this: the wire cannot tell a closed port from it",
        ));
    }
    if host.is_none() {
        evidence.push(ev(
            "no_baseline",
            format!("no SYN-ACK or other packet from {} in the capture", a.server.ip),
            None,
            format!(
                "to decide, capture a working connection to another port of {} (or run `synrst probe`), so its distance can be compared",
                a.server.ip
            ),
        ));
    }
    Verdict {
        verdict,
        confidence,
        explanation,
        evidence,
    }
}

/// Decision table for an attempt answered by an ICMP error.
fn decide_icmp(a: &Attempt, e: &Event, host: Option<&HostBaseline>, mut evidence: Vec<Evidence>) -> Verdict {
    let L4::IcmpError(icmp) = e.obs.l4 else {
        return Verdict {
            verdict: VerdictKind::Unknown,
            confidence: Confidence::Low,
            explanation: "unexpected answer".into(),
            evidence,
        };
    };
    let sender = e.obs.ip.src;
    let from_server = sender == a.server.ip;
    // From the first SYN: a router queues the SYNs while it resolves the address, and answers
    // them all when ARP/ND gives up (Linux: about 3 s), whatever SYN came last.
    let delay_ms = e.obs.ts.millis_since(a.start);
    let name = icmp_name(&icmp);
    evidence.push(ev(
        "icmp_type",
        format!(
            "{name} (type {} code {}) from {sender}, {delay_ms:.1} ms after the first SYN",
            icmp.icmp_type, icmp.code
        ),
        None,
        icmp_meaning(&icmp),
    ));
    evidence.push(ev(
        "icmp_sender",
        format!("{sender}, {} away", n_hops(hops(e.obs.ip.ttl))),
        Some(format!(
            "destination {}{}",
            a.server.ip,
            host.map(|h| format!(", {}", h.describe_hops())).unwrap_or_default()
        )),
        if from_server {
            "sent by the destination itself"
        } else {
            "sent by a device on the path, not by the destination"
        },
    ));
    let class = icmp_class(&icmp);
    // Decision table for ICMP answers (RFC 792, RFC 1812 §5.2.7.1, RFC 4443 §3.1).
    let (verdict, confidence, explanation) = match (class, from_server) {
        // Port unreachable in answer to TCP: a TCP stack answers a closed port with RST, never
        // with ICMP, so only a REJECT rule sends this (iptables' default REJECT, nft `reject`).
        (IcmpClass::PortUnreachable, true) => (VerdictKind::HostFirewall, Confidence::High, "the server's own firewall rejected the SYN (ICMP port unreachable: a TCP stack answers with RST, only a REJECT rule sends this)".to_string()),
        (IcmpClass::PortUnreachable, false) => (VerdictKind::PathFirewall, Confidence::High, format!("a firewall at {sender} on the path rejected the SYN (ICMP port unreachable for TCP comes only from a REJECT rule)")),
        // Communication administratively prohibited (RFC 1812 code 13, host/net prohibited
        // codes 9/10, ICMPv6 codes 1, 5, 6): a filter said no.
        (IcmpClass::Prohibited, true) => (VerdictKind::HostFirewall, Confidence::High, format!("the server's own firewall rejected the SYN ({name})")),
        (IcmpClass::Prohibited, false) => (VerdictKind::PathFirewall, Confidence::High, format!("a firewall at {sender} on the path rejected the SYN ({name})")),
        // Host unreachable after about 3 s: the last router's ARP/ND for the host went unanswered
        // (Linux: 3 probes, 1 s apart). The host is down or the address unused.
        (IcmpClass::HostUnreachable, false) if delay_ms >= 2000.0 => (VerdictKind::HostUnreachable, Confidence::High, format!("the router {sender} could not reach the host (no ARP/ND answer for {:.1} s): the host is down or the address is not in use", delay_ms / 1000.0)),
        // Host unreachable at once: no ARP wait, so a REJECT rule (`icmp-host-unreachable`) or
        // a route to nowhere; the wire leans to a rule.
        (IcmpClass::HostUnreachable, false) => (VerdictKind::PathFirewall, Confidence::Medium, format!("{sender} answered host-unreachable at once ({delay_ms:.1} ms, no ARP wait): most likely a REJECT rule on the path, or a blackhole route")),
        (IcmpClass::HostUnreachable, true) => (VerdictKind::HostFirewall, Confidence::Medium, "the destination itself answered host-unreachable: a REJECT rule on the host".to_string()),
        (IcmpClass::NetUnreachable, _) => (VerdictKind::NetUnreachable, Confidence::High, format!("the router {sender} has no route to {}", a.server.ip)),
        (IcmpClass::TimeExceeded, _) => (VerdictKind::NetUnreachable, Confidence::Medium, format!("the SYN's TTL expired at {sender}: a routing loop, or a TTL too small for the path")),
        (IcmpClass::Other, _) => (VerdictKind::Unknown, Confidence::Low, format!("{name} from {sender}")),
    };
    Verdict {
        verdict,
        confidence,
        explanation,
        evidence,
    }
}

/// Decision table for an attempt that got no answer the client acted on.
fn decide_silence(
    a: &Attempt,
    b: &Baselines,
    host: Option<&HostBaseline>,
    forged: bool,
    mut evidence: Vec<Evidence>,
) -> Verdict {
    let waited = a.closed.0.millis_since(a.start);
    evidence.push(ev(
        "silence",
        format!(
            "{} SYN(s) over {:.1} s, no answer the client would act on",
            a.syns,
            waited / 1000.0
        ),
        None,
        "a filter dropped the SYN (or the answer), or the host is down",
    ));
    let ignored: Vec<&Event> = a
        .events
        .iter()
        .filter(|e| e.role.is_answer() && !e.acceptable)
        .collect();
    if !ignored.is_empty() {
        evidence.push(ev(
            "ignored_answers",
            format!("{} packet(s) the client's stack discards", ignored.len()),
            None,
            "what the client saw was a timeout, not a refusal",
        ));
    }
    if let Some(h) = host {
        if !h.open_ports.is_empty() {
            evidence.push(ev(
                "host_alive",
                format!(
                    "{} answered SYN-ACK on port(s) {:?} in this capture",
                    a.server.ip,
                    &h.open_ports[..]
                ),
                None,
                "the host is up: a filter drops SYNs to this port",
            ));
        } else {
            evidence.push(ev(
                "host_alive",
                format!("{} sent other packets in this capture", a.server.ip),
                None,
                "the host is up",
            ));
        }
    }
    let _ = b;
    let (verdict, confidence, explanation) = match (a.syns, host.is_some(), forged) {
        // Forged RSTs the client ignored, then nothing: a middlebox interferes.
        (_, _, true) => (
            VerdictKind::PathFirewall,
            Confidence::Medium,
            "a device on the path injected RSTs the client ignored, and no real answer came".to_string(),
        ),
        // The host answers on other ports: it is up, so a filter dropped this SYN.
        (_, true, _) => (
            VerdictKind::FilteredOrDown,
            Confidence::High,
            format!(
                "no answer; {} is up (it answered other packets), so a filter drops SYNs to port {}",
                a.server.ip, a.server.port
            ),
        ),
        // Retransmitted SYNs, no answer: a drop rule or a dead host; the wire cannot say which.
        (n, false, _) if n >= 2 => (
            VerdictKind::FilteredOrDown,
            Confidence::Medium,
            format!("no answer to {n} SYNs: a filter drops them or the host is down"),
        ),
        // One SYN, then the capture ended: too early to say much.
        _ => (
            VerdictKind::FilteredOrDown,
            Confidence::Low,
            "no answer to a single SYN before the capture or the timeout ended".to_string(),
        ),
    };
    if host.is_none() {
        evidence.push(ev(
            "no_baseline",
            format!("no packet from {} in the capture", a.server.ip),
            None,
            format!(
                "to tell a drop from a dead host, ping {} or try another port of it while capturing",
                a.server.ip
            ),
        ));
    }
    Verdict {
        verdict,
        confidence,
        explanation,
        evidence,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IcmpClass {
    PortUnreachable,
    Prohibited,
    HostUnreachable,
    NetUnreachable,
    TimeExceeded,
    Other,
}

fn icmp_class(i: &IcmpError) -> IcmpClass {
    match (i.v6, i.kind, i.code) {
        (_, IcmpKind::TimeExceeded, _) => IcmpClass::TimeExceeded,
        // ICMPv4 type 3 (RFC 792, RFC 1122, RFC 1812).
        (false, _, 3) => IcmpClass::PortUnreachable,
        (false, _, 9 | 10 | 13) => IcmpClass::Prohibited,
        (false, _, 1 | 7 | 12) => IcmpClass::HostUnreachable,
        (false, _, 0 | 6 | 11) => IcmpClass::NetUnreachable,
        // ICMPv6 type 1 (RFC 4443 §3.1).
        (true, _, 4) => IcmpClass::PortUnreachable,
        (true, _, 1 | 5 | 6) => IcmpClass::Prohibited,
        (true, _, 3) => IcmpClass::HostUnreachable,
        (true, _, 0) => IcmpClass::NetUnreachable,
        _ => IcmpClass::Other,
    }
}

/// A readable name for an ICMP error.
pub fn icmp_name(i: &IcmpError) -> &'static str {
    match (i.v6, i.kind, i.code) {
        (false, IcmpKind::TimeExceeded, _) | (true, IcmpKind::TimeExceeded, _) => "time exceeded",
        (false, _, 0) => "net unreachable",
        (false, _, 1) => "host unreachable",
        (false, _, 2) => "protocol unreachable",
        (false, _, 3) => "port unreachable",
        (false, _, 4) => "fragmentation needed",
        (false, _, 5) => "source route failed",
        (false, _, 6) => "destination network unknown",
        (false, _, 7) => "destination host unknown",
        (false, _, 9) => "network administratively prohibited",
        (false, _, 10) => "host administratively prohibited",
        (false, _, 11) => "network unreachable for TOS",
        (false, _, 12) => "host unreachable for TOS",
        (false, _, 13) => "communication administratively prohibited",
        (false, _, 14) => "host precedence violation",
        (false, _, 15) => "precedence cutoff",
        (true, _, 0) => "no route to destination",
        (true, _, 1) => "communication administratively prohibited",
        (true, _, 2) => "beyond scope of source address",
        (true, _, 3) => "address unreachable",
        (true, _, 4) => "port unreachable",
        (true, _, 5) => "source address failed ingress/egress policy",
        (true, _, 6) => "reject route to destination",
        _ => "unreachable (unknown code)",
    }
}

fn icmp_meaning(i: &IcmpError) -> &'static str {
    match icmp_class(i) {
        IcmpClass::PortUnreachable => {
            "TCP stacks answer closed ports with RST: an ICMP port unreachable for TCP comes from a REJECT rule"
        }
        IcmpClass::Prohibited => "a packet filter rejected the SYN (RFC 1812 §5.2.7.1, RFC 4443 §3.1)",
        IcmpClass::HostUnreachable => "the last router could not deliver to the host (or a REJECT rule says so)",
        IcmpClass::NetUnreachable => "a router has no route to the destination network",
        IcmpClass::TimeExceeded => "the SYN's TTL ran out in transit",
        IcmpClass::Other => "an ICMP error the client acts on",
    }
}

/// The errno a Linux client's connect() returns for this attempt (RFC 9293 §3.10.7.3 for RST;
/// the kernel's `icmp_err_convert` and `icmpv6_err_convert` tables for ICMP; ETIMEDOUT when
/// nothing acceptable came).
pub fn client_error(a: &Attempt) -> Option<&'static str> {
    if outcome(a) == Outcome::Accepted {
        return None;
    }
    match a.answer() {
        Some(e) => match (e.role, e.obs.l4) {
            (Role::SynAck, _) => None,
            (Role::Rst, _) => Some("ECONNREFUSED"),
            (_, L4::IcmpError(i)) => Some(icmp_errno(&i)),
            _ => Some("ETIMEDOUT"),
        },
        None => Some("ETIMEDOUT"),
    }
}

fn icmp_errno(i: &IcmpError) -> &'static str {
    match (i.v6, i.kind, i.code) {
        (_, IcmpKind::TimeExceeded, _) => "EHOSTUNREACH",
        // net/ipv4/icmp.c icmp_err_convert[]
        (false, _, 0 | 6 | 9 | 11) => "ENETUNREACH",
        (false, _, 1 | 10 | 12 | 13 | 14 | 15) => "EHOSTUNREACH",
        (false, _, 2) => "ENOPROTOOPT",
        (false, _, 3) => "ECONNREFUSED",
        (false, _, 4) => "EMSGSIZE",
        (false, _, 5) => "EOPNOTSUPP",
        (false, _, 7) => "EHOSTDOWN",
        (false, _, 8) => "ENONET",
        // net/ipv6/icmp.c tab_unreach[]
        (true, _, 0) => "ENETUNREACH",
        (true, _, 1 | 5 | 6) => "EACCES",
        (true, _, 2 | 3) => "EHOSTUNREACH",
        (true, _, 4) => "ECONNREFUSED",
        (true, _, _) => "EPROTO",
        _ => "EHOSTUNREACH",
    }
}

/// What Chromium shows for a connect() errno (net/base/net_errors_posix.cc, MapConnectError).
pub fn browser_error(errno: Option<&str>) -> Option<&'static str> {
    Some(match errno? {
        "ECONNREFUSED" => "net::ERR_CONNECTION_REFUSED",
        "EHOSTUNREACH" | "EHOSTDOWN" | "ENETUNREACH" => "net::ERR_ADDRESS_UNREACHABLE",
        "EACCES" => "net::ERR_NETWORK_ACCESS_DENIED",
        "ETIMEDOUT" => "net::ERR_CONNECTION_TIMED_OUT",
        "EMSGSIZE" => "net::ERR_MSG_TOO_BIG",
        "EOPNOTSUPP" => "net::ERR_NOT_IMPLEMENTED",
        _ => "net::ERR_CONNECTION_FAILED",
    })
}

/// Capture-wide hints over all attempts, given as (server address, verdict).
pub fn capture_hints(verdicts: impl ExactSizeIterator<Item = (IpAddr, VerdictKind)>, b: &Baselines) -> Vec<String> {
    let mut hints = Vec::new();
    // The same TTL and SYN-ACK fingerprint for every remote host: one device answers for all.
    let fps: Vec<(u8, (u16, u64))> = b
        .hosts()
        .filter_map(|(_, h)| Some((h.hops?.0, h.synack_fingerprint?)))
        .collect();
    if fps.len() >= 3 && fps.iter().all(|f| *f == fps[0]) {
        hints.push(format!(
            "all {} servers that answered are {} away with the same SYN-ACK fingerprint: a NAT, proxy or load balancer may be answering for all of them",
            fps.len(),
            n_hops(fps[0].0)
        ));
    }
    // Only counts: the order of the map never shows (the names are sorted).
    let mut by_dest: HashMap<IpAddr, (u64, u64), foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(verdicts.len().min(1 << 16), Default::default());
    for (server, verdict) in verdicts {
        let e = by_dest.entry(server).or_default();
        if verdict == VerdictKind::Accepted {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let failing: Vec<&IpAddr> = by_dest
        .iter()
        .filter(|(_, (ok, bad))| *ok == 0 && *bad > 0)
        .map(|(ip, _)| ip)
        .collect();
    let working = by_dest.values().filter(|(ok, _)| *ok > 0).count();
    if !failing.is_empty() && working > 0 && failing.len() <= 3 {
        let mut names: Vec<String> = failing.iter().map(|ip| ip.to_string()).collect();
        names.sort();
        hints.push(format!(
            "only {} failed while {} other destination(s) worked: the problem is at that destination or on its path, not on the client",
            names.join(", "),
            working
        ));
    }
    if by_dest.len() >= 2 && working == 0 {
        hints.push(format!(
            "every attempt to all {} destinations failed: look at the client side first (local firewall, proxy, VPN, default route)",
            by_dest.len()
        ));
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_ttl_guesses() {
        assert_eq!((initial_ttl(61), hops(61)), (64, 3));
        assert_eq!((initial_ttl(64), hops(64)), (64, 0));
        assert_eq!((initial_ttl(120), hops(120)), (128, 8));
        assert_eq!((initial_ttl(250), hops(250)), (255, 5));
        assert_eq!((initial_ttl(30), hops(30)), (32, 2));
    }

    #[test]
    fn every_packet_is_learned_by_its_own_host_whatever_the_order() {
        use crate::capture::{Frame, LinkType, Timestamp};
        use crate::testutil::Tcp;
        use std::net::Ipv4Addr;
        let client = Ipv4Addr::new(198, 18, 0, 2);
        let servers = [1u8, 2, 3, 4].map(|n| Ipv4Addr::new(198, 19, 0, n));
        let mut b = Baselines::default();
        // Per server: packets, lowest and highest hop count, TTL of the last packet.
        let mut want = [(0u64, u8::MAX, 0u8, 0u8); 4];
        // Alternations (the two ends of a transfer), rotations of three and four hosts, and
        // repeats, with TTLs that move: the recent-hosts shortcut must not mix them up.
        let mut x = 0x2545_f491u32;
        for k in 0..2000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let s = match k / 500 {
                0 => (k % 2) as usize,
                1 => (k % 3) as usize,
                2 => (k % 4) as usize,
                _ => (x % 4) as usize,
            };
            let ttl = 50 + (x >> 8) as u8 % 14;
            let syn = Tcp::syn(client, 40000, servers[s], 80, k);
            let mut seg = Tcp::synack_to(&syn, k).ttl(ttl);
            seg.syn = k % 7 == 0;
            let f = seg.frame();
            let frame = Frame {
                ts: Timestamp(i64::from(k)),
                link: LinkType::ETHERNET,
                data: &f,
                orig_len: f.len() as u32,
                number: u64::from(k) + 1,
            };
            b.observe(&crate::decode::decode(&frame).unwrap());
            let d = hops(ttl);
            let w = &mut want[s];
            *w = (w.0 + 1, w.1.min(d), w.2.max(d), ttl);
        }
        for (s, (packets, lo, hi, last)) in servers.iter().zip(want) {
            let h = b.host(&IpAddr::V4(*s)).unwrap();
            assert_eq!(h.packets, packets, "{s}");
            assert_eq!(h.hops, Some((lo, hi)), "{s}");
            assert_eq!(h.initial_ttl, Some(initial_ttl(last)), "{s}");
        }
        assert_eq!(b.hosts().count(), 4);
        assert!(b.host(&IpAddr::V4(client)).is_none());
    }

    #[test]
    fn browser_errors_follow_chromium() {
        assert_eq!(browser_error(Some("ECONNREFUSED")), Some("net::ERR_CONNECTION_REFUSED"));
        assert_eq!(
            browser_error(Some("EHOSTUNREACH")),
            Some("net::ERR_ADDRESS_UNREACHABLE")
        );
        assert_eq!(browser_error(Some("EACCES")), Some("net::ERR_NETWORK_ACCESS_DENIED"));
        assert_eq!(browser_error(Some("ETIMEDOUT")), Some("net::ERR_CONNECTION_TIMED_OUT"));
        assert_eq!(browser_error(None), None);
    }
}
