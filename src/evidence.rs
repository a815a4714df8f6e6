//! Evidence capture: the frames that prove each verdict, as a pcapng file that opens in
//! Wireshark, each frame commented with the attempt it belongs to, its role and the verdict.
//!
//! For every attempt that was not accepted (and every accepted one with evidence, such as a
//! forged RST the client ignored) the capture is re-read and these frames are kept: the SYN
//! and its retransmissions, every packet of the attempt (answers, the client's ACK or RST),
//! and the baseline the verdict was compared with: SYN and SYN-ACK of accepted attempts to the
//! same server (the fastest per port, so round-trip times and open ports survive) and one
//! packet of the server for each hop distance it showed. Re-analysing the file gives the same
//! outcomes and verdicts.
//!
//! Frames keep their original timestamps (nanosecond resolution) and link types (one
//! interface per link type). Payload is cut after the TCP header, or for ICMP errors after
//! the quoted IP and TCP headers, unless asked to keep it; the original length stays honest.
//! With anonymization, addresses in IP headers and in ICMP quotes are rewritten with the
//! run's mapping ([`crate::anonymize::anonymizer`]), MAC addresses replaced, IPv4 options
//! blanked, and checksums adjusted incrementally (RFC 1624), so a checksum that was right stays
//! right and one that was wrong (offload) stays wrong. Each rewritten frame is decoded again
//! and checked; a frame that cannot be rewritten safely (an encapsulation such as Teredo) is
//! left out and counted in the file's comment.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use etherparse::{LaxIpSlice, LaxNetSlice, LaxSlicedPacket};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{PcapNgBlock, PcapNgWriter};
use pcap_file::DataLink;

use crate::anonymize::Anonymizer;
use crate::capture::{Frame, LinkType, Source};
use crate::decode::{self, Observation, L4};
use crate::model::{AnswerRecord, AttemptRecord, Report};
use crate::track::{Outcome, Role};

/// Most SYN-ACK baselines (accepted attempts) kept per server: the fastest per port.
const BASELINE_PORTS: usize = 8;
/// Most extra packets of a server kept for its hop distances.
const BASELINE_HOPS: usize = 4;

/// Writes the frames that prove each verdict of `report` to `path` as pcapng.
///
/// `anonymize` rewrites addresses with the run's mapping ([`crate::anonymize::anonymizer`]),
/// the same one the report was anonymized with.
pub fn write_evidence(
    sources: &[Source],
    report: &Report,
    path: &Path,
    keep_payload: bool,
    anonymize: bool,
) -> Result<(), String> {
    let anon = anonymize.then(crate::anonymize::anonymizer);
    write_evidence_with(sources, report, path, keep_payload, anon).map(|_| ())
}

/// What [`write_evidence_with`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvidenceStats {
    /// Frames written.
    pub frames: u64,
    /// Attempts whose frames were written.
    pub attempts: u64,
    /// Frames left out because they could not be anonymized safely.
    pub left_out: u64,
}

/// [`write_evidence`] with an explicit mapping (`None`: no anonymization).
pub fn write_evidence_with(
    sources: &[Source],
    report: &Report,
    path: &Path,
    keep_payload: bool,
    anon: Option<&Anonymizer>,
) -> Result<EvidenceStats, String> {
    if anon.is_some() && keep_payload {
        return Err("--keep-payload keeps packet contents verbatim, which --anonymize cannot scrub (host names, addresses in application data): use one or the other".into());
    }
    if sources.contains(&Source::Stdin) {
        return Err("the evidence is re-read from the capture, which is not possible from standard input: save the capture to a file and analyse that".into());
    }
    let plan = Plan::new(sources, report, anon);
    let file = File::create(path).map_err(|e| e.to_string())?;
    let mut section = SectionHeaderBlock::default();
    let listed: Vec<String> = plan.listed.iter().map(|id| format!("#{id}")).collect();
    section.options = vec![
        SectionHeaderOption::UserApplication(Cow::Owned(format!("synrst {}", env!("CARGO_PKG_VERSION")))),
        SectionHeaderOption::Comment(Cow::Owned(format!(
            "synrst evidence for attempt(s) {}: their SYNs and packets, and the baseline packets the verdicts compared with. {}{}",
            if listed.is_empty() { "(none)".to_string() } else { listed.join(", ") },
            if keep_payload {
                "Payload kept."
            } else {
                "Payload cut after the TCP header (ICMP errors: after the quoted IP and TCP headers); original lengths kept."
            },
            if anon.is_some() {
                " Addresses anonymized (prefix-preserving, the same mapping as the report)."
            } else {
                ""
            }
        ))),
    ];
    let mut w = Writer {
        report,
        out: PcapNgWriter::with_section_header(BufWriter::new(file), section).map_err(|e| e.to_string())?,
        interfaces: HashMap::new(),
        stats: EvidenceStats {
            attempts: plan.listed.len() as u64,
            ..EvidenceStats::default()
        },
        keep_payload,
        anon,
        left_out: Vec::new(),
    };
    let mut pass = Pass {
        plan,
        resolved: HashSet::new(),
        watches: HashMap::new(),
        hop_seen: HashMap::new(),
    };
    for (i, source) in sources.iter().enumerate() {
        let mut err: Option<String> = None;
        crate::capture::read_capture(source, |frame| {
            if err.is_some() {
                return;
            }
            if let Some(notes) = pass.select(i, frame) {
                if let Err(e) = w.write(frame, &notes) {
                    err = Some(e);
                }
            }
        })
        .map_err(|e| e.to_string())?;
        if let Some(e) = err {
            return Err(e);
        }
    }
    w.stats.left_out = w.left_out.len() as u64;
    if !w.left_out.is_empty() {
        let list: Vec<String> = w.left_out.iter().take(20).cloned().collect();
        eprintln!(
            "synrst: warning: {} frame(s) left out of the anonymized evidence capture (encapsulation not rewritten): {}",
            w.left_out.len(),
            list.join(", ")
        );
    }
    let mut inner = w.out.into_inner();
    std::io::Write::flush(&mut inner).map_err(|e| e.to_string())?;
    Ok(w.stats)
}

/// Why a frame is in the evidence.
#[derive(Clone, Debug)]
enum Why {
    /// The attempt's first SYN.
    Syn,
    /// A retransmission of it.
    Retransmission,
    /// `packets[i]` of the attempt.
    Packet(usize),
    /// The SYN of accepted attempt `of`, a baseline for the attempts in the note.
    BaselineSyn { of: u64 },
    /// Its SYN-ACK.
    BaselineSynAck { of: u64, ttl: u8 },
    /// Another packet of the server, for its hop distance.
    BaselineHost { ttl: u8 },
}

/// One comment to put on a frame.
#[derive(Clone, Debug)]
struct Note {
    /// The attempt it belongs to (for baselines: the first attempt it is a baseline for).
    attempt: usize,
    /// Baselines: every attempt it serves.
    for_attempts: Vec<u64>,
    why: Why,
}

/// A frame wanted by number, with what it must look like (the frame number may belong to the
/// attempt's file or, for an attempt spanning files, the next one).
#[derive(Clone, Debug)]
struct Want {
    /// Identifies the report packet, so that only one candidate is used.
    group: usize,
    /// Expected sender (in the report's address space) and TTL, when known.
    sender: IpAddr,
    ttl: Option<u8>,
    note: Note,
}

/// What to keep, from the report.
struct Plan<'r> {
    report: &'r Report,
    anon: Option<&'r Anonymizer>,
    /// (source index, frame number) → wanted.
    wants: HashMap<(usize, u64), Vec<Want>>,
    /// Attempts (indexes in report.attempts) whose first SYN starts a retransmission watch:
    /// (source index, frame) → attempt.
    syn_frames: HashMap<(usize, u64), usize>,
    /// Servers (report address space) whose hop distances need a packet each: the attempts
    /// they serve and the hop values already covered by baseline SYN-ACKs.
    hosts: HashMap<IpAddr, (Vec<u64>, HashSet<u8>)>,
    /// Attempt ids listed.
    listed: Vec<u64>,
}

fn listed(a: &AttemptRecord) -> bool {
    a.outcome != Outcome::Accepted || !a.evidence.is_empty()
}

impl<'r> Plan<'r> {
    fn new(sources: &[Source], report: &'r Report, anon: Option<&'r Anonymizer>) -> Plan<'r> {
        let names: Vec<String> = sources.iter().map(Source::display).collect();
        let candidates = |file: &str| -> Vec<usize> {
            match names.iter().position(|n| n == file) {
                Some(i) => (i..names.len().min(i + 2)).collect(),
                None => Vec::new(),
            }
        };
        let mut plan = Plan {
            report,
            anon,
            wants: HashMap::new(),
            syn_frames: HashMap::new(),
            hosts: HashMap::new(),
            listed: Vec::new(),
        };
        let mut group = 0usize;
        let mut want = |plan: &mut Plan, cands: &[usize], frame: u64, sender: IpAddr, ttl: Option<u8>, note: Note| {
            for &c in cands {
                plan.wants.entry((c, frame)).or_default().push(Want {
                    group,
                    sender,
                    ttl,
                    note: note.clone(),
                });
            }
            group += 1;
        };
        // The attempts themselves.
        let mut servers: BTreeMap<IpAddr, Vec<u64>> = BTreeMap::new();
        for (ai, a) in report.attempts.iter().enumerate() {
            if !listed(a) {
                continue;
            }
            plan.listed.push(a.id);
            servers.entry(a.server.ip).or_default().push(a.id);
            let cands = candidates(&a.file);
            let note = |why| Note {
                attempt: ai,
                for_attempts: vec![a.id],
                why,
            };
            if let Some(f) = a.syn_frame {
                want(
                    &mut plan,
                    &cands[..cands.len().min(1)],
                    f,
                    a.client.ip,
                    None,
                    note(Why::Syn),
                );
                if let Some(&c) = cands.first() {
                    plan.syn_frames.insert((c, f), ai);
                }
            }
            for (pi, p) in a.packets.iter().enumerate() {
                want(&mut plan, &cands, p.frame, p.sender, Some(p.ttl), note(Why::Packet(pi)));
            }
        }
        // Baselines: accepted attempts to the same servers, the fastest per port.
        for (server, users) in &servers {
            let mut per_port: BTreeMap<u16, (f64, usize)> = BTreeMap::new();
            for (ai, a) in report.attempts.iter().enumerate() {
                let Some(ans) = &a.answer else { continue };
                if a.server.ip != *server || ans.kind != Role::SynAck || ans.sender != *server {
                    continue;
                }
                let rtt = rtt_ms(a, ans);
                let e = per_port.entry(a.server.port).or_insert((rtt, ai));
                if rtt < e.0 {
                    *e = (rtt, ai);
                }
            }
            let mut chosen: Vec<(f64, usize)> = per_port.into_values().collect();
            chosen.sort_by(|x, y| x.0.total_cmp(&y.0));
            chosen.truncate(BASELINE_PORTS);
            let mut covered = HashSet::new();
            for (_, ai) in chosen {
                let a = &report.attempts[ai];
                let Some(ans) = &a.answer else { continue };
                covered.insert(crate::attribute::hops(ans.ttl));
                let cands = candidates(&a.file);
                let note = |why| Note {
                    attempt: ai,
                    for_attempts: users.clone(),
                    why,
                };
                if let Some(f) = a.syn_frame {
                    let c = &cands[..cands.len().min(1)];
                    want(&mut plan, c, f, a.client.ip, None, note(Why::BaselineSyn { of: a.id }));
                }
                want(
                    &mut plan,
                    &cands,
                    ans.frame,
                    ans.sender,
                    Some(ans.ttl),
                    note(Why::BaselineSynAck { of: a.id, ttl: ans.ttl }),
                );
            }
            plan.hosts.insert(*server, (users.clone(), covered));
        }
        plan
    }

    /// An address of the capture in the report's address space.
    fn to_report(&self, ip: IpAddr) -> IpAddr {
        match self.anon {
            Some(a) => a.ip(ip),
            None => ip,
        }
    }
}

/// SYN-ACK round-trip time from the latest SYN before it.
fn rtt_ms(a: &AttemptRecord, ans: &AnswerRecord) -> f64 {
    let sent = a
        .syn_times_ms
        .iter()
        .copied()
        .filter(|t| *t <= ans.after_ms)
        .fold(0.0f64, f64::max);
    ans.after_ms - sent
}

/// Retransmission watch: (client, client port, server, server port, ISN) → (attempt, deadline).
type FlowKey = (IpAddr, u16, IpAddr, u16, u32);

struct Pass<'r> {
    plan: Plan<'r>,
    resolved: HashSet<usize>,
    watches: HashMap<FlowKey, (usize, i64)>,
    hop_seen: HashMap<IpAddr, usize>,
}

impl Pass<'_> {
    /// The notes for this frame, if it is evidence.
    fn select(&mut self, source: usize, frame: &Frame<'_>) -> Option<Vec<Note>> {
        let wanted = self.plan.wants.contains_key(&(source, frame.number));
        let need_decode = wanted || !self.watches.is_empty() || !self.plan.hosts.is_empty();
        if !need_decode {
            return None;
        }
        let obs = decode::decode(frame).ok();
        let mut notes = Vec::new();
        if let (Some(ws), Some(o)) = (self.plan.wants.get(&(source, frame.number)), obs.as_ref()) {
            let sender = self.plan.to_report(o.ip.src);
            for w in ws {
                if self.resolved.contains(&w.group) {
                    continue;
                }
                if w.sender == sender && w.ttl.is_none_or(|t| t == o.ip.ttl) {
                    self.resolved.insert(w.group);
                    notes.push(w.note.clone());
                }
            }
        }
        let Some(o) = obs else {
            return (!notes.is_empty()).then_some(notes);
        };
        let L4::Tcp(t) = o.l4 else {
            return (!notes.is_empty()).then_some(notes);
        };
        let bare_syn = t.flags.syn() && !t.flags.ack();
        // A first SYN starts its retransmission watch.
        if let Some(&ai) = self.plan.syn_frames.get(&(source, frame.number)) {
            if bare_syn {
                let a = &self.plan.report.attempts[ai];
                let last = a.syn_times_ms.iter().copied().fold(0.0f64, f64::max);
                let deadline = frame.ts.0.saturating_add(((last + 1.5) * 1e6) as i64);
                self.watches
                    .insert((o.ip.src, t.src_port, o.ip.dst, t.dst_port, t.seq.0), (ai, deadline));
            }
        } else if bare_syn {
            let key = (o.ip.src, t.src_port, o.ip.dst, t.dst_port, t.seq.0);
            if let Some(&(ai, deadline)) = self.watches.get(&key) {
                if frame.ts.0 <= deadline {
                    notes.push(Note {
                        attempt: ai,
                        for_attempts: vec![self.plan.report.attempts[ai].id],
                        why: Why::Retransmission,
                    });
                } else {
                    self.watches.remove(&key);
                }
            }
        }
        // One packet of a server per hop distance it shows (what the baselines learn from).
        if !t.flags.rst() && !bare_syn && notes.is_empty() {
            let src = self.plan.to_report(o.ip.src);
            if let Some((users, covered)) = self.plan.hosts.get_mut(&src) {
                let n = self.hop_seen.entry(src).or_insert(0);
                let h = crate::attribute::hops(o.ip.ttl);
                if *n < BASELINE_HOPS && covered.insert(h) {
                    *n += 1;
                    let first = users.first().copied().unwrap_or(0);
                    let ai = self
                        .plan
                        .report
                        .attempts
                        .iter()
                        .position(|a| a.id == first)
                        .unwrap_or(0);
                    notes.push(Note {
                        attempt: ai,
                        for_attempts: users.clone(),
                        why: Why::BaselineHost { ttl: o.ip.ttl },
                    });
                }
            }
        }
        (!notes.is_empty()).then_some(notes)
    }
}

struct Writer<'a> {
    report: &'a Report,
    out: PcapNgWriter<BufWriter<File>>,
    interfaces: HashMap<u32, u32>,
    stats: EvidenceStats,
    keep_payload: bool,
    anon: Option<&'a Anonymizer>,
    left_out: Vec<String>,
}

impl Writer<'_> {
    fn write(&mut self, frame: &Frame<'_>, notes: &[Note]) -> Result<(), String> {
        let original = decode::decode(frame).ok();
        let mut data = frame.data.to_vec();
        if !self.keep_payload {
            if let Some(keep) = headers_len(frame.link, &data) {
                data.truncate(keep);
            }
        }
        if let Some(a) = self.anon {
            let ok = original
                .as_ref()
                .is_some_and(|orig| rewrite(frame.link, &mut data, a).is_some() && verify(frame, &data, orig, a));
            if !ok {
                self.left_out.push(format!("frame {}", frame.number));
                return Ok(());
            }
        }
        let interface_id = match self.interfaces.get(&frame.link.0) {
            Some(i) => *i,
            None => {
                let id = self.interfaces.len() as u32;
                let idb = InterfaceDescriptionBlock {
                    linktype: DataLink::from(frame.link.0),
                    snaplen: 0,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Owned(format!(
                            "synrst-evidence-{}",
                            frame.link.name().to_ascii_lowercase()
                        ))),
                        // Enhanced Packet Blocks carry nanoseconds (pcap-file writes them so).
                        InterfaceDescriptionOption::IfTsResol(9),
                    ],
                };
                self.out.write_block(&idb.into_block()).map_err(|e| e.to_string())?;
                self.interfaces.insert(frame.link.0, id);
                id
            }
        };
        let options = notes
            .iter()
            .map(|n| EnhancedPacketOption::Comment(Cow::Owned(comment(self.report, n, original.as_ref()))))
            .collect();
        let epb = EnhancedPacketBlock {
            interface_id,
            timestamp: Duration::from_nanos(u64::try_from(frame.ts.0).unwrap_or(0)),
            original_len: frame.orig_len.max(frame.data.len() as u32),
            data: Cow::Owned(data),
            options,
        };
        self.out.write_block(&epb.into_block()).map_err(|e| e.to_string())?;
        self.stats.frames += 1;
        Ok(())
    }
}

fn ids(v: &[u64]) -> String {
    let s: Vec<String> = v.iter().take(10).map(|i| format!("#{i}")).collect();
    format!("{}{}", s.join(", "), if v.len() > 10 { ", …" } else { "" })
}

/// A packet's kind in words: `RST+ACK`, `SYN-ACK`, `ICMP host unreachable`.
fn kind_words(p: &AnswerRecord, obs: Option<&Observation>) -> String {
    match p.kind {
        Role::SynAck => "SYN-ACK".into(),
        Role::Rst if p.flags.as_deref().is_some_and(|f| f.contains('.')) => "RST+ACK".into(),
        Role::Rst => "RST".into(),
        Role::IcmpUnreachable | Role::IcmpTimeExceeded => match obs.map(|o| o.l4) {
            Some(L4::IcmpError(i)) => format!(
                "ICMP{} {}",
                if i.v6 { "v6" } else { "" },
                crate::attribute::icmp_name(&i)
            ),
            _ => "ICMP error".into(),
        },
        Role::ServerOther => "server segment".into(),
        Role::ClientAck => "client ACK".into(),
        Role::ClientRst => "client RST".into(),
        Role::ResetAfterHandshake => "RST after the handshake".into(),
    }
}

/// The comment of one role of a frame: `synrst attempt #3 path-firewall: RST+ACK from
/// 198.19.0.10, TTL 63 (injected; the answer the client acted on)`.
fn comment(report: &Report, n: &Note, obs: Option<&Observation>) -> String {
    let a = &report.attempts[n.attempt];
    let head = format!("synrst attempt #{} {}", a.id, a.verdict.name());
    match &n.why {
        Why::Syn => format!("{head}: SYN {} → {}", a.client, a.server),
        Why::Retransmission => format!("{head}: SYN retransmission"),
        Why::Packet(i) => {
            let p = &a.packets[*i];
            let injected = a.evidence.iter().any(|e| e.signal == "rst_then_synack");
            let first_rst = a.packets.iter().position(|q| q.kind == Role::Rst) == Some(*i);
            let decisive = a
                .answer
                .as_ref()
                .is_some_and(|d| d.frame == p.frame && d.after_ms.to_bits() == p.after_ms.to_bits());
            let mut q: Vec<&str> = Vec::new();
            if p.kind == Role::Rst && injected && first_rst {
                q.push("injected");
            }
            if p.kind == Role::SynAck && injected {
                q.push("the server's own answer, after the RST");
            }
            if decisive {
                q.push("the answer the client acted on");
            } else if p.kind.is_answer() && !p.acceptable {
                q.push("ignored by the client");
            }
            if p.late {
                q.push("late");
            }
            let q = if q.is_empty() {
                String::new()
            } else {
                format!(" ({})", q.join("; "))
            };
            format!("{head}: {} from {}, TTL {}{q}", kind_words(p, obs), p.sender, p.ttl)
        }
        Why::BaselineSyn { of } => format!(
            "synrst baseline for attempt {} ({}): SYN of accepted attempt #{of}",
            ids(&n.for_attempts),
            a.server.ip
        ),
        Why::BaselineSynAck { of, ttl } => format!(
            "synrst baseline for attempt {} ({}): SYN-ACK of accepted attempt #{of}, TTL {ttl} ({} hops): the server speaking for itself",
            ids(&n.for_attempts),
            a.server.ip,
            crate::attribute::hops(*ttl)
        ),
        Why::BaselineHost { ttl } => format!(
            "synrst baseline for attempt {} ({}): a packet of the server, TTL {ttl} ({} hops)",
            ids(&n.for_attempts),
            a.server.ip,
            crate::attribute::hops(*ttl)
        ),
    }
}

/// Where the IP header that synrst decodes starts, and what holds link-layer addresses.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Offset of the IP header.
    ip: usize,
    /// Link-layer address fields (offset, length).
    macs: [Option<(usize, usize)>; 2],
}

/// Offset of `sub` inside `base`, when it is a sub-slice of it.
fn offset_in(base: &[u8], sub: &[u8]) -> Option<usize> {
    let b = base.as_ptr() as usize;
    let s = sub.as_ptr() as usize;
    (s >= b && s + sub.len() <= b + base.len()).then(|| s - b)
}

/// The offset of the (outer) IP header in a frame, as decode finds it.
fn layout(link: LinkType, data: &[u8]) -> Option<Layout> {
    let net_offset = |p: &LaxSlicedPacket<'_>, base: &[u8]| -> Option<usize> {
        match &p.net {
            Some(LaxNetSlice::Ipv4(v4)) => offset_in(base, v4.header().slice()),
            Some(LaxNetSlice::Ipv6(v6)) => offset_in(base, v6.header().slice()),
            _ => {
                // MPLS: skip the label stack, as decode does.
                let pl = p.ether_payload()?;
                if pl.ether_type.0 != 0x8847 && pl.ether_type.0 != 0x8848 {
                    return None;
                }
                let start = offset_in(base, pl.payload)?;
                let mut at = start;
                for _ in 0..8 {
                    let bottom = base.get(at + 2)? & 1 == 1;
                    at += 4;
                    if bottom {
                        return Some(at);
                    }
                }
                None
            }
        }
    };
    match link {
        LinkType::ETHERNET => {
            let p = LaxSlicedPacket::from_ethernet(data).ok()?;
            Some(Layout {
                ip: net_offset(&p, data)?,
                macs: [Some((0, 6)), Some((6, 6))],
            })
        }
        LinkType::LINUX_SLL => {
            let alen = usize::from(u16::from_be_bytes([*data.get(4)?, *data.get(5)?])).min(8);
            let proto = u16::from_be_bytes([*data.get(14)?, *data.get(15)?]);
            let p = LaxSlicedPacket::from_ether_type(etherparse::EtherType(proto), data.get(16..)?);
            Some(Layout {
                ip: net_offset(&p, data)?,
                macs: [Some((6, alen)), None],
            })
        }
        LinkType::LINUX_SLL2 => {
            let alen = usize::from(*data.get(11)?).min(8);
            let proto = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
            let p = LaxSlicedPacket::from_ether_type(etherparse::EtherType(proto), data.get(20..)?);
            Some(Layout {
                ip: net_offset(&p, data)?,
                macs: [Some((12, alen)), None],
            })
        }
        LinkType::RAW | LinkType::RAW_OPENBSD | LinkType::RAW_BSDOS | LinkType::IPV4 | LinkType::IPV6 => Some(Layout {
            ip: 0,
            macs: [None, None],
        }),
        LinkType::NULL | LinkType::LOOP => Some(Layout {
            ip: 4,
            macs: [None, None],
        }),
        _ => None,
    }
}

/// Offset of the IP payload and its protocol number, for the IP header at `ip`.
fn ip_payload(data: &[u8], ip: usize) -> Option<(usize, u8)> {
    let (slice, _) = LaxIpSlice::from_slice(data.get(ip..)?).ok()?;
    let pl = slice.payload();
    Some((offset_in(data, pl.payload)?, pl.ip_number.0))
}

/// How many bytes of the frame to keep: up to the end of the TCP header, or for an ICMP error
/// up to the end of the quoted TCP header. None: keep everything.
fn headers_len(link: LinkType, data: &[u8]) -> Option<usize> {
    let lay = layout(link, data)?;
    let (l4, proto) = ip_payload(data, lay.ip)?;
    let keep = match proto {
        6 => l4 + usize::from(*data.get(l4 + 12)? >> 4) * 4,
        1 | 58 => {
            let q = l4 + 8;
            let (qt, qproto) = ip_payload(data, q)?;
            if qproto != 6 {
                return None;
            }
            let tcp_len = match data.get(qt + 12) {
                Some(b) => usize::from(b >> 4) * 4,
                None => data.len() - qt,
            };
            qt + tcp_len.max(8)
        }
        _ => return None,
    };
    Some(keep.min(data.len()))
}

/// Ones'-complement incremental update of checksum `cs` for 16-bit words changed from `old`
/// to `new` (RFC 1624, eqn. 3). Both slices start at a word boundary of the checksummed data.
fn csum_adjust(cs: u16, old: &[u8], new: &[u8]) -> u16 {
    let word = |c: &[u8]| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]);
    let mut sum = u32::from(!cs);
    for (o, n) in old.chunks(2).zip(new.chunks(2)) {
        let (o, n) = (word(o), word(n));
        if o != n {
            sum += u32::from(!o) + u32::from(n);
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn get16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn set16(d: &mut [u8], at: usize, v: u16) {
    if let Some(s) = d.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// Adjusts the checksum at `at` (if captured) for a change of the words `old` → `new`.
fn fix(d: &mut [u8], at: usize, old: &[u8], new: &[u8]) {
    if let Some(cs) = get16(d, at) {
        set16(d, at, csum_adjust(cs, old, new));
    }
}

/// Rewrites the addresses of the IP header at `ip` (and of the packet its ICMP error quotes,
/// when `quote` allows). Returns the offset and protocol of its payload, and the old and new
/// address bytes (for pseudo-header checksums).
fn rewrite_ip(d: &mut [u8], ip: usize, a: &Anonymizer) -> Option<(usize, u8, Vec<u8>, Vec<u8>)> {
    let version = d.get(ip)? >> 4;
    let (addr_at, addr_len) = match version {
        4 => (ip + 12, 8),
        6 => (ip + 8, 32),
        _ => return None,
    };
    let old = d.get(addr_at..addr_at + addr_len)?.to_vec();
    let map = |b: &[u8]| -> Vec<u8> {
        let ip: IpAddr = if b.len() == 4 {
            IpAddr::from(<[u8; 4]>::try_from(b).unwrap_or([0; 4]))
        } else {
            IpAddr::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16]))
        };
        match a.ip(ip) {
            IpAddr::V4(x) => x.octets().to_vec(),
            IpAddr::V6(x) => x.octets().to_vec(),
        }
    };
    let half = addr_len / 2;
    let mut new = map(&old[..half]);
    new.extend(map(&old[half..]));
    if version == 4 {
        // Blank IPv4 options (record-route and timestamp options hold addresses) with NOPs.
        let ihl = usize::from(d[ip] & 0x0f) * 4;
        let hdr_old = d.get(ip..ip + ihl.max(20))?.to_vec();
        d[addr_at..addr_at + addr_len].copy_from_slice(&new);
        if ihl > 20 {
            if let Some(opts) = d.get_mut(ip + 20..ip + ihl) {
                opts.fill(1);
            }
        }
        let hdr_new = d.get(ip..ip + ihl.max(20))?.to_vec();
        fix(d, ip + 10, &hdr_old, &hdr_new);
    } else {
        d[addr_at..addr_at + addr_len].copy_from_slice(&new);
    }
    let (l4, proto) = ip_payload(d, ip)?;
    Some((l4, proto, old, new))
}

/// Anonymizes a frame in place: link-layer addresses, IP addresses, ICMP quotes, checksums.
fn rewrite(link: LinkType, d: &mut [u8], a: &Anonymizer) -> Option<()> {
    let lay = layout(link, d)?;
    for (at, len) in lay.macs.into_iter().flatten() {
        let Some(m) = d.get_mut(at..at + len) else { continue };
        match <[u8; 6]>::try_from(&*m) {
            Ok(mac) => m.copy_from_slice(&a.mac(mac)),
            Err(_) => m.fill(0),
        }
    }
    let (l4, proto, old, new) = rewrite_ip(d, lay.ip, a)?;
    match proto {
        6 => fix(d, l4 + 16, &old, &new),
        1 | 58 => {
            let msg_old = d.get(l4..)?.to_vec();
            if msg_old.len() < 8 {
                return None;
            }
            let q = l4 + 8;
            let (qt, qproto, qold, qnew) = rewrite_ip(d, q, a)?;
            if qproto == 6 && d.len() >= qt + 18 {
                fix(d, qt + 16, &qold, &qnew);
            }
            let msg_new = d.get(l4..)?.to_vec();
            let mut cs_old = msg_old.clone();
            let mut cs_new = msg_new;
            if proto == 58 {
                // ICMPv6 covers a pseudo-header with the outer addresses.
                cs_old.extend_from_slice(&old);
                cs_new.extend_from_slice(&new);
            }
            // Exclude the checksum field itself from the comparison.
            cs_old[2..4].copy_from_slice(&[0, 0]);
            cs_new[2..4].copy_from_slice(&[0, 0]);
            // Odd-length messages: the pseudo-header words must stay aligned.
            if msg_old.len() % 2 == 1 && proto == 58 {
                cs_old.insert(msg_old.len(), 0);
                cs_new.insert(msg_old.len(), 0);
            }
            fix(d, l4 + 2, &cs_old, &cs_new);
        }
        // Anything else (UDP: a tunnel such as Teredo) is not rewritten: refuse.
        _ => return None,
    }
    Some(())
}

/// The rewritten frame decodes to the mapped addresses of the original.
fn verify(frame: &Frame<'_>, data: &[u8], orig: &Observation, a: &Anonymizer) -> bool {
    let f = Frame {
        data,
        orig_len: frame.orig_len,
        ..*frame
    };
    let Ok(o) = decode::decode(&f) else { return false };
    let same_l4 = match (orig.l4, o.l4) {
        (L4::Tcp(_), L4::Tcp(_)) => true,
        (L4::IcmpError(x), L4::IcmpError(y)) => {
            y.quote.src.ip == a.ip(x.quote.src.ip) && y.quote.dst.ip == a.ip(x.quote.dst.ip)
        }
        _ => false,
    };
    same_l4 && o.ip.src == a.ip(orig.ip.src) && o.ip.dst == a.ip(orig.ip.dst)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::path::PathBuf;

    use super::*;
    use crate::testutil::{icmp_error, pcap, Tcp, C4, C6, R4, S4, S6};
    use crate::track::TrackConfig;
    use crate::AnalyzeConfig;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("synrst-evidence-{}-{name}", std::process::id()))
    }

    fn c4() -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(C4))
    }
    fn s4() -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(S4))
    }

    /// Every verdict family in one capture, IPv4 and IPv6, with baselines.
    fn frames() -> Vec<(f64, Vec<u8>)> {
        let mut f = Vec::new();
        // Baseline: port 80 works (server 3 hops away).
        let ok = Tcp::syn(c4(), 40000, s4(), 80, 1000);
        f.push((0.0, ok.frame()));
        f.push((0.010, Tcp::synack_to(&ok, 77).ttl(61).frame()));
        // A RST from 1 hop away, answering a SYN that carries data (payload to cut).
        let mut data_syn = Tcp::syn(c4(), 40001, s4(), 81, 2000);
        data_syn.payload = b"GET / HTTP/1.0\r\n\r\n".to_vec();
        f.push((1.0, data_syn.frame()));
        let mut rst = Tcp::rst_to(&data_syn).ttl(63);
        rst.ack = Some(data_syn.seq.wrapping_add(1 + data_syn.payload.len() as u32));
        f.push((1.001, rst.frame()));
        // ICMP administratively prohibited from a router.
        let p = Tcp::syn(c4(), 40002, s4(), 8443, 3000);
        f.push((2.0, p.frame()));
        f.push((
            2.002,
            icmp_error(IpAddr::V4(Ipv4Addr::from(R4)), c4(), 3, 13, &p.ip_bytes(), 64),
        ));
        // Silence, three SYNs.
        let s = Tcp::syn(c4(), 40003, s4(), 9999, 4000);
        f.push((3.0, s.frame()));
        f.push((4.0, s.frame()));
        f.push((6.0, s.frame()));
        // IPv6: baseline and a closed port.
        let (c6, s6) = (IpAddr::V6(Ipv6Addr::from(C6)), IpAddr::V6(Ipv6Addr::from(S6)));
        let ok6 = Tcp::syn(c6, 40004, s6, 80, 5000);
        f.push((7.0, ok6.frame()));
        f.push((7.010, Tcp::synack_to(&ok6, 88).ttl(61).frame()));
        let cl6 = Tcp::syn(c6, 40005, s6, 81, 6000);
        f.push((8.0, cl6.frame()));
        f.push((8.010, Tcp::rst_to(&cl6).ttl(61).frame()));
        // ICMPv6 prohibited from a router.
        let p6 = Tcp::syn(c6, 40006, s6, 8443, 7000);
        let r6 = IpAddr::V6(Ipv6Addr::from([0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
        f.push((9.0, p6.frame()));
        f.push((9.001, icmp_error(r6, c6, 1, 1, &p6.ip_bytes(), 63)));
        f.push((20.0, Tcp::syn(c4(), 40009, s4(), 80, 9000).frame()));
        f
    }

    fn analyze(path: &Path) -> Report {
        let cfg = AnalyzeConfig {
            sources: vec![Source::Path(path.to_path_buf())],
            track: TrackConfig::default(),
            progress: None,
        };
        crate::analyze(&cfg, None).expect("analyze")
    }

    type Key = (IpAddr, u16, IpAddr, u16, u32);
    fn verdicts(r: &Report) -> BTreeMap<Key, (&'static str, &'static str)> {
        r.attempts
            .iter()
            .filter(|a| listed(a))
            .map(|a| {
                (
                    (a.client.ip, a.client.port, a.server.ip, a.server.port, a.isn),
                    (a.outcome.name(), a.verdict.name()),
                )
            })
            .collect()
    }

    fn comments(path: &Path) -> Vec<(u32, u32, Vec<String>)> {
        let mut r = pcap_file::pcapng::PcapNgReader::new(File::open(path).unwrap()).unwrap();
        let mut out = Vec::new();
        while let Some(b) = r.next_block() {
            if let pcap_file::pcapng::Block::EnhancedPacket(e) = b.unwrap() {
                let c = e
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                        _ => None,
                    })
                    .collect();
                out.push((e.data.len() as u32, e.original_len, c));
            }
        }
        out
    }

    #[test]
    fn evidence_reanalyses_to_the_same_verdicts_with_comments_and_cut_payload() {
        let cap = tmp("plain.pcap");
        std::fs::write(&cap, pcap(1, &frames())).unwrap();
        let report = analyze(&cap);
        let out = tmp("plain.pcapng");
        let stats = write_evidence_with(&[Source::Path(cap.clone())], &report, &out, false, None).unwrap();
        let again = analyze(&out);
        assert_eq!(verdicts(&report), verdicts(&again));
        assert!(verdicts(&report).len() >= 5);
        let blocks = comments(&out);
        assert_eq!(blocks.len() as u64, stats.frames);
        let all: Vec<String> = blocks.iter().flat_map(|b| b.2.clone()).collect();
        assert!(
            all.iter()
                .any(|c| c.contains("path-firewall: RST+ACK from 198.19.0.10, TTL 63")),
            "{all:#?}"
        );
        assert!(
            all.iter().any(|c| c.contains("SYN-ACK of accepted attempt #1")),
            "{all:#?}"
        );
        assert!(
            all.iter().any(|c| c.contains("filtered-or-down: SYN retransmission")),
            "{all:#?}"
        );
        assert!(
            all.iter()
                .any(|c| c.contains("ICMPv6 communication administratively prohibited")),
            "{all:#?}"
        );
        // The SYN with data (and the RST echoing it) are cut after the TCP header; their
        // original lengths are kept.
        let cut: Vec<&(u32, u32, Vec<String>)> = blocks.iter().filter(|b| b.0 < b.1).collect();
        assert_eq!(cut.len(), 2, "{blocks:?}");
        assert!(
            cut.iter().all(|b| b.1 - b.0 == 18 && b.2[0].contains("attempt #2")),
            "{cut:?}"
        );
        // With --keep-payload nothing is cut.
        write_evidence_with(&[Source::Path(cap.clone())], &report, &out, true, None).unwrap();
        assert!(comments(&out).iter().all(|b| b.0 == b.1));
        if let Ok(o) = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&out)
            .arg("-V")
            .output()
        {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert!(String::from_utf8_lossy(&o.stdout).contains("synrst attempt #2 path-firewall"));
        }
        let _ = std::fs::remove_file(&cap);
        let _ = std::fs::remove_file(&out);
    }

    /// Ones'-complement sum over `data`, for checking checksums from scratch.
    fn sum(data: &[u8]) -> u32 {
        data.chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
            .sum()
    }
    fn fold(mut s: u32) -> u16 {
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn anonymized_evidence_agrees_with_the_anonymized_report_and_checksums_hold() {
        let cap = tmp("anon.pcap");
        std::fs::write(&cap, pcap(1, &frames())).unwrap();
        let mut report = analyze(&cap);
        let a = Anonymizer::with_key("evidence-test");
        crate::anonymize::anonymize_report_with(&a, &mut report);
        let out = tmp("anon.pcapng");
        let stats = write_evidence_with(&[Source::Path(cap.clone())], &report, &out, false, Some(&a)).unwrap();
        assert_eq!(stats.left_out, 0);
        let again = analyze(&out);
        assert_eq!(verdicts(&report), verdicts(&again));
        // No original address or MAC is left in the file.
        let bytes = std::fs::read(&out).unwrap();
        for needle in [&S4[..], &C4[..], &R4[..], &S6[..], &C6[..], &crate::testutil::MAC_C[..]] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{needle:?} left");
        }
        // Checksums: TCP verified by the decoder, IPv4 headers and ICMPv4 from scratch.
        crate::capture::read_capture(&Source::Path(out.clone()), |f| {
            let o = decode::decode(f).unwrap();
            if let L4::Tcp(t) = o.l4 {
                if !o.truncated {
                    assert_eq!(t.checksum, decode::Checksum::Good, "frame {}", f.number);
                }
            }
            let ip = &f.data[14..];
            if ip[0] >> 4 == 4 {
                let ihl = usize::from(ip[0] & 15) * 4;
                assert_eq!(fold(sum(&ip[..ihl])), 0xffff, "IPv4 header of frame {}", f.number);
                if ip[9] == 1 {
                    assert_eq!(fold(sum(&ip[ihl..])), 0xffff, "ICMP of frame {}", f.number);
                    let q = &ip[ihl + 8..];
                    assert_eq!(fold(sum(&q[..20])), 0xffff, "quoted header of frame {}", f.number);
                }
            } else if ip[6] == 58 {
                let mut pseudo = ip[8..40].to_vec();
                let len = ip.len() - 40;
                pseudo.extend_from_slice(&(len as u32).to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, 58]);
                assert_eq!(
                    fold(sum(&pseudo) + sum(&ip[40..])),
                    0xffff,
                    "ICMPv6 of frame {}",
                    f.number
                );
            }
        })
        .unwrap();
        let _ = std::fs::remove_file(&cap);
        let _ = std::fs::remove_file(&out);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let report = Report {
            schema: 1,
            tool: Default::default(),
            capture: Default::default(),
            attempts: Vec::new(),
            summary: Default::default(),
            probe: None,
        };
        let a = Anonymizer::with_key("x");
        let out = tmp("refuse.pcapng");
        let e = write_evidence_with(&[Source::Path(out.clone())], &report, &out, true, Some(&a)).unwrap_err();
        assert!(e.contains("--keep-payload"), "{e}");
        let e = write_evidence_with(&[Source::Stdin], &report, &out, false, None).unwrap_err();
        assert!(e.contains("standard input"), "{e}");
    }

    #[test]
    fn incremental_checksum_matches_recomputation() {
        let mut d = vec![
            0x45u8, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 2, 198, 19, 0, 10,
        ];
        let cs = !fold(sum(&d));
        d[10..12].copy_from_slice(&cs.to_be_bytes());
        let old = d.clone();
        d[12..20].copy_from_slice(&[10, 1, 2, 3, 172, 16, 5, 9]);
        let adjusted = csum_adjust(cs, &old[12..20], &d[12..20]);
        d[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(adjusted, !fold(sum(&d)));
    }
}
