//! Remote targets: raw SYNs, their answers, a baseline, and TTL-limited SYNs.
//!
//! Contract: [`probe_remote`] runs four phases over a [`Wire`], one thread, one loop:
//!
//! 1. **Baseline**: a SYN to `--baseline-port` (the host speaking for itself: its SYN-ACK's TTL
//!    gives its hop distance, its delay the RTT), else, or if that port does not answer
//!    SYN-ACK, ICMP echo.
//! 2. **Main**: a SYN to the target port with the probe's own ISN, retransmitted with the same
//!    ISN like a real client (1 s, then 2 s) up to `count` SYNs, then `timeout` of waiting; after
//!    the first answer the client would act on, it listens a little longer for racing packets
//!    (an injected RST followed by the real SYN-ACK).
//! 3. **Trace**: SYNs with TTL 1, 2, … `max_hops` (own source port and ISN each), one at a
//!    time, until one meets the answer (RST, SYN-ACK, ICMP unreachable), several TTLs in a row
//!    stay silent past the last answer, or the host's hop is reached.
//! 4. **Report**: the baseline and main SYNs, the probe's RSTs and every answer to them go
//!    through [`crate::Engine`] exactly as captured frames would (decoded by
//!    [`crate::decode::decode`]); [`super::locate`] then locates the answering device and
//!    refines the verdict.
//!
//! Every received packet is decoded and matched to a probe by destination port (the probe's
//! source port) and, for ICMP errors, the quoted 4-tuple and sequence number (the ISN).
//! Packets from this machine's own address (its outgoing packets, its kernel's RSTs) are
//! never fed: the report holds what the probe sent and what answered, deterministically.
//! Every SYN-ACK is answered with a RST (at most [`MAX_RESETS`] per SYN); at most
//! [`super::MAX_PACKETS`] packets leave, at most one per `interval`; the whole run stops by
//! [`super::HARD_LIMIT`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::capture::{CaptureInfo, Format, Frame, LinkType, Timestamp};
use crate::decode::{self, IcmpKind, Skip, L4};
use crate::flow::SeqNumber;
use crate::model::Report;
use crate::track::TrackConfig;
use crate::Engine;

use super::craft::{self, Segment, DEFAULT_TTL};
use super::locate::{self, reply_hop, HopRecord, LocateInput, ReplyKind};
use super::{BaselineRecord, ProbeError, ProbeMode, ProbeSummary, Rng, Wire, HARD_LIMIT, MAX_PACKETS};

/// Most RSTs sent for the SYN-ACKs of one SYN (the server retransmits its SYN-ACK if a RST is
/// lost or filtered).
pub const MAX_RESETS: u32 = 3;
/// Longest single receive wait, so deadlines and pending RSTs are served promptly.
const POLL: Duration = Duration::from_millis(20);
/// After the first answer to the main SYN, listen this much longer for racing packets.
const LINGER: Duration = Duration::from_millis(500);
/// Stop the trace after this many silent TTLs in a row past the last one that answered.
const GAP_LIMIT: u8 = 3;

/// What to probe and how hard.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// The target address and port.
    pub target: SocketAddr,
    /// This machine's address towards it (the probes' source).
    pub source: IpAddr,
    /// The target as given, for the report.
    pub label: String,
    /// An open port of the same host, for the baseline (else ICMP echo).
    pub baseline_port: Option<u16>,
    /// SYNs of the main attempt (1-5).
    pub count: u32,
    /// Wait after the last SYN of the main attempt and of the baseline.
    pub timeout: Duration,
    /// Highest TTL of the trace.
    pub max_hops: u8,
    /// Wait for each TTL-limited SYN's answer.
    pub hop_timeout: Duration,
    /// Least time between two packets sent (rate limit).
    pub interval: Duration,
    /// Send TTL-limited SYNs.
    pub trace: bool,
    /// First source port; the probe uses consecutive ports from it ([`ports_needed`]).
    pub first_port: u16,
    /// Seed for ISNs, IP IDs and echo identifiers.
    pub seed: u64,
}

/// How many consecutive source ports a probe with `max_hops` uses.
pub fn ports_needed(max_hops: u8) -> u16 {
    2 + u16::from(max_hops)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Baseline,
    Main,
    Trace,
}

#[derive(Clone, Debug)]
struct Probe {
    purpose: Purpose,
    sport: u16,
    dport: u16,
    isn: u32,
    ttl: u8,
    first_sent: Timestamp,
    last_sent: Timestamp,
    syns: u32,
    reply: Option<HopRecord>,
    resets: u32,
}

#[derive(Clone, Debug, Default)]
struct Echo {
    id: u16,
    sent: Vec<(u16, Timestamp)>,
    reply: Option<(u8, f64)>,
}

/// Everything the receive callback updates (kept apart from the wire it borrows).
struct State {
    target: SocketAddr,
    source: IpAddr,
    engine: Engine<'static>,
    probes: Vec<Probe>,
    echo: Echo,
    frames: u64,
    bytes: u64,
    /// RSTs to send, and whether the engine sees them (not for trace SYNs, which it never sees).
    pending: Vec<(Vec<u8>, bool)>,
    rng: Rng,
}

impl State {
    fn feed(&mut self, ts: Timestamp, data: &[u8]) {
        self.frames += 1;
        self.bytes += data.len() as u64;
        self.engine.frame(&Frame {
            ts,
            link: LinkType::RAW,
            data,
            orig_len: data.len() as u32,
            number: self.frames,
        });
    }

    fn by_port(&self, port: u16) -> Option<usize> {
        self.probes.iter().position(|p| p.sport == port)
    }

    fn on_packet(&mut self, ts: Timestamp, data: &[u8]) {
        let frame = Frame {
            ts,
            link: LinkType::RAW,
            data,
            orig_len: data.len() as u32,
            number: 0,
        };
        let o = match decode::decode(&frame) {
            Ok(o) => o,
            Err(Skip::IcmpOther) => return self.on_echo_reply(ts, data),
            Err(_) => return,
        };
        // Only packets to this machine's probe address, and never its own (outgoing packets,
        // and the kernel's own RSTs for SYN-ACKs it has no socket for).
        if o.ip.src == self.source || o.ip.dst != self.source {
            return;
        }
        let (i, kind, acceptable, icmp) = match o.l4 {
            L4::Tcp(t) => {
                let Some(i) = self.by_port(t.dst_port) else { return };
                let p = &self.probes[i];
                if o.ip.src != self.target.ip() || t.src_port != p.dport {
                    return;
                }
                let acceptable = t.flags.ack() && t.ack.acks_syn(SeqNumber(p.isn), 0);
                let kind = if t.flags.rst() {
                    ReplyKind::Rst
                } else if t.flags.syn() && t.flags.ack() {
                    ReplyKind::SynAck
                } else {
                    ReplyKind::None
                };
                if kind == ReplyKind::SynAck && acceptable && p.resets < MAX_RESETS {
                    // RFC 9293 §3.10.7.3: answer an unwanted SYN-ACK with <SEQ=SEG.ACK><CTL=RST>.
                    let seg = Segment {
                        src: self.source,
                        dst: self.target.ip(),
                        sport: p.sport,
                        dport: p.dport,
                        seq: t.ack.0,
                        ttl: DEFAULT_TTL,
                        ip_id: self.rng.next_u32() as u16,
                        ts_val: 0,
                    };
                    self.pending.push((craft::rst(&seg), p.purpose != Purpose::Trace));
                    self.probes[i].resets += 1;
                }
                (i, kind, acceptable && kind != ReplyKind::None, None)
            }
            L4::IcmpError(e) => {
                let q = e.quote;
                if q.src.ip != self.source {
                    return;
                }
                let Some(i) = self.by_port(q.src.port) else { return };
                let p = &self.probes[i];
                if q.dst.ip != self.target.ip() || q.dst.port != p.dport {
                    return;
                }
                // ICMPv4 "fragmentation needed" (3/4) is path MTU discovery, not a refusal.
                let frag = !e.v6 && e.kind == IcmpKind::Unreachable && e.code == 4;
                let kind = match e.kind {
                    IcmpKind::TimeExceeded => ReplyKind::TimeExceeded,
                    IcmpKind::Unreachable => ReplyKind::IcmpUnreachable,
                };
                let acceptable = !frag && q.seq.is_none_or(|s| s.0 == p.isn);
                (i, kind, acceptable, Some((e.icmp_type, e.code, q.ttl)))
            }
        };
        if self.probes[i].purpose != Purpose::Trace {
            self.feed(ts, data);
        }
        let p = &mut self.probes[i];
        if acceptable && p.reply.is_none() {
            let sent = if p.purpose == Purpose::Trace {
                p.first_sent
            } else {
                p.last_sent.min(ts)
            };
            p.reply = Some(HopRecord {
                ttl: p.ttl,
                reply: kind,
                from: Some(o.ip.src),
                reply_ttl: Some(o.ip.ttl),
                rtt_ms: Some(round3(ts.millis_since(sent))),
                icmp_type: icmp.map(|x| x.0),
                icmp_code: icmp.map(|x| x.1),
                quoted_ttl: icmp.map(|x| x.2),
            });
        }
    }

    fn on_echo_reply(&mut self, ts: Timestamp, data: &[u8]) {
        let Ok(p) = etherparse::SlicedPacket::from_ip(data) else {
            return;
        };
        let (src, dst, ttl) = match &p.net {
            Some(etherparse::NetSlice::Ipv4(v4)) => {
                let h = v4.header();
                (IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()), h.ttl())
            }
            Some(etherparse::NetSlice::Ipv6(v6)) => {
                let h = v6.header();
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    h.hop_limit(),
                )
            }
            _ => return,
        };
        if src != self.target.ip() || dst != self.source || self.echo.reply.is_some() {
            return;
        }
        let (id, seq) = match &p.transport {
            Some(etherparse::TransportSlice::Icmpv4(i)) => match i.icmp_type() {
                etherparse::Icmpv4Type::EchoReply(h) => (h.id, h.seq),
                _ => return,
            },
            Some(etherparse::TransportSlice::Icmpv6(i)) => match i.icmp_type() {
                etherparse::Icmpv6Type::EchoReply(h) => (h.id, h.seq),
                _ => return,
            },
            _ => return,
        };
        if id != self.echo.id {
            return;
        }
        if let Some((_, sent)) = self.echo.sent.iter().find(|(s, _)| *s == seq) {
            self.echo.reply = Some((ttl, round3(ts.millis_since(*sent))));
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

struct Prober<'w, W: Wire> {
    wire: &'w mut W,
    cfg: RemoteConfig,
    st: State,
    sent: u32,
    resets_sent: u32,
    last_send: Option<Timestamp>,
    hard_deadline: Timestamp,
    notes: Vec<String>,
    capped: bool,
}

impl<W: Wire> Prober<'_, W> {
    fn io(what: &str) -> impl FnOnce(std::io::Error) -> ProbeError + '_ {
        move |error| ProbeError::Io {
            what: what.to_string(),
            error,
        }
    }

    fn over(&self) -> bool {
        self.wire.now() >= self.hard_deadline
    }

    /// Receives (and handles) packets until `until`; sends nothing.
    fn receive_until(&mut self, until: Timestamp) -> Result<(), ProbeError> {
        loop {
            let now = self.wire.now();
            if now >= until || now >= self.hard_deadline {
                return Ok(());
            }
            let wait = Duration::from_nanos((until.0 - now.0).max(0) as u64).min(POLL);
            let st = &mut self.st;
            self.wire
                .recv(wait, &mut |ts, data| st.on_packet(ts, data))
                .map_err(Self::io("receiving"))?;
        }
    }

    /// Receives until `until` or until `done`, sending the pending RSTs as they come up.
    fn wait_for(&mut self, until: Timestamp, done: impl Fn(&State) -> bool) -> Result<(), ProbeError> {
        loop {
            self.flush_resets()?;
            let now = self.wire.now();
            if done(&self.st) || now >= until || now >= self.hard_deadline {
                return Ok(());
            }
            let step = now.plus_nanos(nanos(POLL)).min(until);
            let st = &mut self.st;
            let wait = Duration::from_nanos((step.0 - now.0).max(0) as u64);
            self.wire
                .recv(wait, &mut |ts, data| st.on_packet(ts, data))
                .map_err(Self::io("receiving"))?;
        }
    }

    fn flush_resets(&mut self) -> Result<(), ProbeError> {
        while !self.st.pending.is_empty() {
            let (pkt, feed) = self.st.pending.remove(0);
            if self.send(pkt, feed)? {
                self.resets_sent += 1;
            }
        }
        Ok(())
    }

    /// Sends one packet, rate-limited and counted; `feed` also hands it to the engine.
    /// Returns false when the packet budget is spent.
    fn send(&mut self, pkt: Vec<u8>, feed: bool) -> Result<bool, ProbeError> {
        if self.sent >= MAX_PACKETS || self.over() {
            if !self.capped {
                self.capped = true;
                self.notes.push(format!(
                    "The probe stopped sending after {} packets (its limit) or {} s: results are partial.",
                    self.sent,
                    HARD_LIMIT.as_secs()
                ));
            }
            return Ok(false);
        }
        if let Some(last) = self.last_send {
            self.receive_until(last.plus_nanos(nanos(self.cfg.interval)))?;
        }
        let now = self.wire.now();
        self.wire
            .send(&pkt, self.cfg.target.ip())
            .map_err(Self::io("sending a probe packet"))?;
        self.sent += 1;
        self.last_send = Some(now);
        if feed {
            self.st.feed(now, &pkt);
        }
        Ok(true)
    }

    fn new_probe(&mut self, purpose: Purpose, dport: u16, ttl: u8) -> usize {
        let sport = self.cfg.first_port.wrapping_add(self.st.probes.len() as u16);
        let isn = self.st.rng.next_u32();
        self.st.probes.push(Probe {
            purpose,
            sport,
            dport,
            isn,
            ttl,
            first_sent: Timestamp::default(),
            last_sent: Timestamp::default(),
            syns: 0,
            reply: None,
            resets: 0,
        });
        self.st.probes.len() - 1
    }

    fn send_syn(&mut self, i: usize) -> Result<bool, ProbeError> {
        let p = &self.st.probes[i];
        let seg = Segment {
            src: self.cfg.source,
            dst: self.cfg.target.ip(),
            sport: p.sport,
            dport: p.dport,
            seq: p.isn,
            ttl: p.ttl,
            ip_id: self.st.rng.next_u32() as u16,
            ts_val: self.st.rng.next_u32(),
        };
        let feed = p.purpose != Purpose::Trace;
        let pkt = craft::syn(&seg);
        // The send time is taken after the rate-limit wait.
        if let Some(last) = self.last_send {
            self.receive_until(last.plus_nanos(nanos(self.cfg.interval)))?;
        }
        let now = self.wire.now();
        let ok = self.send(pkt, feed)?;
        if ok {
            let p = &mut self.st.probes[i];
            if p.syns == 0 {
                p.first_sent = now;
            }
            p.last_sent = now;
            p.syns += 1;
        }
        Ok(ok)
    }

    /// One SYN with retransmissions (same ISN, 1 s then 2 s apart, as Linux does), until an
    /// answer the client acts on; then `linger` more for racing packets.
    fn attempt(&mut self, i: usize, syns: u32, linger: Duration) -> Result<(), ProbeError> {
        let mut gap = Duration::from_secs(1);
        for n in 0..syns.max(1) {
            if !self.send_syn(i)? {
                break;
            }
            let last = n + 1 == syns.max(1);
            let until = self
                .wire
                .now()
                .plus_nanos(nanos(if last { self.cfg.timeout } else { gap }));
            self.wait_for(until, |st| st.probes[i].reply.is_some())?;
            gap *= 2;
            if self.st.probes[i].reply.is_some() {
                let until = self.wire.now().plus_nanos(nanos(linger.min(self.cfg.timeout)));
                self.wait_for(until, |_| false)?;
                break;
            }
        }
        Ok(())
    }

    fn echo_baseline(&mut self) -> Result<BaselineRecord, ProbeError> {
        self.st.echo.id = self.st.rng.next_u32() as u16;
        for seq in 1..=2u16 {
            let pkt = craft::echo_request(
                self.cfg.source,
                self.cfg.target.ip(),
                self.st.echo.id,
                seq,
                DEFAULT_TTL,
                self.st.rng.next_u32() as u16,
            );
            if !self.send(pkt, false)? {
                break;
            }
            let now = self.wire.now();
            self.st.echo.sent.push((seq, now));
            let wait = if seq == 2 {
                self.cfg.timeout
            } else {
                Duration::from_secs(1)
            };
            self.wait_for(now.plus_nanos(nanos(wait)), |st| st.echo.reply.is_some())?;
            if self.st.echo.reply.is_some() {
                break;
            }
        }
        Ok(match self.st.echo.reply {
            Some((ttl, rtt)) => BaselineRecord {
                method: "icmp-echo",
                port: None,
                answer: "echo-reply",
                ttl: Some(ttl),
                host_hop: Some(reply_hop(ttl)),
                rtt_ms: Some(rtt),
            },
            None => BaselineRecord {
                method: "icmp-echo",
                port: None,
                answer: "none",
                ttl: None,
                host_hop: None,
                rtt_ms: None,
            },
        })
    }

    fn baseline(&mut self) -> Result<BaselineRecord, ProbeError> {
        if let Some(port) = self.cfg.baseline_port.filter(|p| *p != self.cfg.target.port()) {
            let i = self.new_probe(Purpose::Baseline, port, DEFAULT_TTL);
            self.attempt(i, self.cfg.count.min(2), Duration::ZERO)?;
            let r = self.st.probes[i].reply.clone();
            let rec = match &r {
                Some(h) if h.reply == ReplyKind::SynAck => BaselineRecord {
                    method: "tcp",
                    port: Some(port),
                    answer: "syn-ack",
                    ttl: h.reply_ttl,
                    host_hop: h.reply_ttl.map(reply_hop),
                    rtt_ms: h.rtt_ms,
                },
                other => {
                    self.notes.push(format!(
                        "The baseline port {port} did not answer SYN-ACK ({}): it is no yardstick for the server; ICMP echo was tried instead.",
                        other.as_ref().map(|h| h.reply.words()).unwrap_or("no answer")
                    ));
                    let mut e = self.echo_baseline()?;
                    if e.answer == "none" {
                        e.port = Some(port);
                        e.method = "tcp";
                        e.answer = match other.as_ref().map(|h| h.reply) {
                            Some(ReplyKind::Rst) => "rst",
                            _ => "none",
                        };
                    }
                    e
                }
            };
            return Ok(rec);
        }
        self.echo_baseline()
    }

    fn trace(&mut self, host_hop: Option<u8>) -> Result<Vec<HopRecord>, ProbeError> {
        let mut idx: Vec<usize> = Vec::new();
        let mut last_answer = 0u8;
        let mut silent_run = 0u8;
        for ttl in 1..=self.cfg.max_hops.max(1) {
            let i = self.new_probe(Purpose::Trace, self.cfg.target.port(), ttl);
            if !self.send_syn(i)? {
                self.st.probes.pop();
                break;
            }
            idx.push(i);
            let until = self.wire.now().plus_nanos(nanos(self.cfg.hop_timeout));
            self.wait_for(until, |st| st.probes[i].reply.is_some())?;
            match self.st.probes[i].reply.as_ref().map(|h| h.reply) {
                Some(k) if k.is_terminal() => break,
                Some(_) => {
                    last_answer = ttl;
                    silent_run = 0;
                }
                None => silent_run += 1,
            }
            // Past the server nothing new can answer; many silent TTLs past the last answer
            // mean the SYNs are lost there.
            if host_hop.is_some_and(|h| ttl >= h) || (silent_run >= GAP_LIMIT && ttl > last_answer) {
                break;
            }
        }
        // Late time-exceeded messages for the last SYNs.
        let until = self
            .wire
            .now()
            .plus_nanos(nanos(self.cfg.hop_timeout.min(Duration::from_millis(300))));
        self.wait_for(until, |_| false)?;
        Ok(idx
            .iter()
            .map(|&i| {
                let p = &self.st.probes[i];
                p.reply.clone().unwrap_or_else(|| HopRecord::silent(p.ttl))
            })
            .collect())
    }
}

/// Probes a remote target over `wire` and builds the report (see the module doc).
pub fn probe_remote<W: Wire>(wire: &mut W, cfg: &RemoteConfig) -> Result<Report, ProbeError> {
    let started = wire.now();
    let mut engine = Engine::new(
        TrackConfig {
            timeout_ns: nanos(cfg.timeout),
            max_in_flight: 1024,
            ..TrackConfig::default()
        },
        None,
    );
    let label = format!("synrst probe {} from {}", cfg.label, cfg.source);
    engine.begin_source(label.clone());
    let mut p = Prober {
        hard_deadline: started.plus_nanos(nanos(HARD_LIMIT)),
        wire,
        cfg: cfg.clone(),
        st: State {
            target: cfg.target,
            source: cfg.source,
            engine,
            probes: Vec::new(),
            echo: Echo::default(),
            frames: 0,
            bytes: 0,
            pending: Vec::new(),
            rng: Rng::new(cfg.seed),
        },
        sent: 0,
        resets_sent: 0,
        last_send: None,
        notes: Vec::new(),
        capped: false,
    };

    let baseline = p.baseline()?;
    let main = p.new_probe(Purpose::Main, cfg.target.port(), DEFAULT_TTL);
    p.attempt(main, cfg.count.clamp(1, 5), LINGER)?;
    let now = p.wire.now();
    p.st.engine.advance(now);
    let main_reply = p.st.probes[main].reply.clone();
    let host_hop = baseline.host_hop.or_else(|| {
        main_reply
            .as_ref()
            .filter(|h| h.reply == ReplyKind::SynAck)
            .and_then(|h| h.reply_ttl.map(reply_hop))
    });
    let trace = if cfg.trace { p.trace(host_hop)? } else { Vec::new() };
    p.flush_resets()?;

    // The report: the engine's attempts (baseline and main), then the probe's refinement.
    let finished = p.wire.now();
    let info = CaptureInfo {
        path: label,
        format: Format::Live,
        gzip: false,
        frames: p.st.frames,
        link_types: BTreeMap::from([(LinkType::RAW.0, p.st.frames)]),
        skipped: BTreeMap::new(),
        bytes: p.st.bytes,
        warnings: Vec::new(),
    };
    let Prober {
        st,
        sent,
        resets_sent,
        mut notes,
        ..
    } = p;
    let mut engine = st.engine;
    engine.end_source(info);
    let mut report = engine.finish();

    let main_probe = &st.probes[main];
    let main_hop = main_reply.clone().unwrap_or_else(|| HopRecord::silent(DEFAULT_TTL));
    let located = locate::locate(&LocateInput {
        target: cfg.target.ip(),
        port: cfg.target.port(),
        trace: &trace,
        main: Some(&main_hop),
        host_hop,
    });
    let mut all_notes = Vec::new();
    all_notes.push(match (&baseline.method, baseline.answer, baseline.ttl, baseline.host_hop) {
        (_, "syn-ack", Some(ttl), Some(h)) => format!(
            "Baseline: port {} answered SYN-ACK with TTL {ttl}: the server is hop {h} ({} routers away), RTT {} ms.",
            baseline.port.unwrap_or(0),
            h - 1,
            baseline.rtt_ms.unwrap_or(0.0)
        ),
        (_, "echo-reply", Some(ttl), Some(h)) => format!(
            "Baseline: the server answered ICMP echo with TTL {ttl}: it is hop {h} ({} routers away), RTT {} ms (give --baseline-port with an open port for a TCP baseline).",
            h - 1,
            baseline.rtt_ms.unwrap_or(0.0)
        ),
        _ => "Baseline: the server answered neither the baseline port nor ICMP echo: its own distance is unknown, so answers cannot be compared with it (give --baseline-port with an open port).".to_string(),
    });
    all_notes.extend(located.notes.iter().cloned());
    let synacks = st.probes.iter().filter(|p| p.resets > 0).count();
    if synacks > 0 {
        all_notes.push(format!(
            "Every SYN-ACK was answered with a RST ({resets_sent} sent for {synacks} SYN(s)), so the server keeps no half-open connection. This machine's kernel, which has no socket for the probe's source ports, also answers each SYN-ACK with a RST of its own; both are expected."
        ));
    }
    all_notes.append(&mut notes);

    for r in &mut report.attempts {
        if r.client.port == main_probe.sport && r.server.port == cfg.target.port() {
            locate::refine(r, located.locate.as_ref(), Some(&baseline));
        }
    }
    locate::resummarize(&mut report);
    report.probe = Some(ProbeSummary {
        target: cfg.label.clone(),
        mode: ProbeMode::Remote,
        addresses: vec![cfg.target.ip()],
        port: cfg.target.port(),
        source: Some(cfg.source),
        baseline: Some(baseline),
        locate: located.locate,
        trace,
        packets_sent: sent,
        resets_sent,
        duration_ms: round3(finished.millis_since(started)),
        notes: all_notes,
        local: None,
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::super::sim::{Action, Sim};
    use super::*;
    use crate::attribute::{Confidence, VerdictKind};
    use crate::probe::LocateDevice;
    use crate::track::Outcome;

    fn cfg(target: &str, baseline: Option<u16>) -> RemoteConfig {
        let target: SocketAddr = target.parse().unwrap();
        RemoteConfig {
            source: if target.is_ipv6() {
                "2001:db8:1::2".parse().unwrap()
            } else {
                "198.18.1.2".parse().unwrap()
            },
            label: target.to_string(),
            target,
            baseline_port: baseline,
            count: 2,
            timeout: Duration::from_secs(2),
            max_hops: 16,
            hop_timeout: Duration::from_secs(1),
            interval: Duration::from_millis(50),
            trace: true,
            first_port: 61000,
            seed: 1,
        }
    }

    fn main_attempt(r: &Report) -> &crate::model::AttemptRecord {
        let port = r.probe.as_ref().unwrap().port;
        r.attempts.iter().find(|a| a.server.port == port).expect("main attempt")
    }

    #[test]
    fn open_port_is_accepted_and_every_synack_reset() {
        let mut sim = Sim::lab(false, None);
        let r = probe_remote(&mut sim, &cfg("198.18.4.2:80", Some(80))).unwrap();
        let a = main_attempt(&r);
        assert_eq!((a.outcome, a.verdict), (Outcome::Accepted, VerdictKind::Accepted));
        let p = r.probe.as_ref().unwrap();
        let loc = p.locate.as_ref().unwrap();
        assert_eq!((loc.hop, loc.device), (4, LocateDevice::Host));
        // One RST per SYN-ACK, sent to the server with seq = its ack.
        assert_eq!(p.resets_sent as usize, sim.synacks_sent());
        assert!(sim.half_open().is_empty(), "half-open left: {:?}", sim.half_open());
        assert!(a.history.starts_with("ShR"), "{}", a.history);
        // The trace's SYN-ACK was reset too, but that RST is not in the report's attempts.
        assert!(p.resets_sent >= 2);
        assert_eq!(r.capture.unmatched_rst, 0);
    }

    #[test]
    fn closed_port_is_the_hosts_stack() {
        let mut sim = Sim::lab(false, None);
        let r = probe_remote(&mut sim, &cfg("198.18.4.2:81", Some(80))).unwrap();
        let a = main_attempt(&r);
        assert_eq!((a.verdict, a.confidence), (VerdictKind::ClosedPort, Confidence::High));
        let loc = r.probe.as_ref().unwrap().locate.clone().unwrap();
        assert_eq!((loc.hop, loc.host_hop, loc.device), (4, Some(4), LocateDevice::Host));
    }

    #[test]
    fn path_rst_after_ttl_check_is_located_at_fw() {
        let mut sim = Sim::lab(false, Some((82, Action::Rst)));
        let r = probe_remote(&mut sim, &cfg("198.18.4.2:82", Some(80))).unwrap();
        let a = main_attempt(&r);
        assert_eq!((a.verdict, a.confidence), (VerdictKind::PathFirewall, Confidence::High));
        let p = r.probe.as_ref().unwrap();
        let loc = p.locate.as_ref().unwrap();
        assert_eq!(loc.hop, 2);
        assert_eq!(loc.address, Some("198.18.2.2".parse().unwrap()));
        assert_eq!(loc.host_hop, Some(4));
        assert!(a.evidence.iter().any(|e| e.signal == "probe_locate"));
        // The trace stopped at the first RST (TTL 3).
        assert_eq!(p.trace.len(), 3);
    }

    #[test]
    fn path_rst_with_echo_baseline_only() {
        let mut sim = Sim::lab(false, Some((82, Action::Rst)));
        let r = probe_remote(&mut sim, &cfg("198.18.4.2:82", None)).unwrap();
        let a = main_attempt(&r);
        assert_eq!(a.verdict, VerdictKind::PathFirewall);
        assert!(!a
            .evidence
            .iter()
            .any(|e| e.signal == "no_baseline" || e.signal == "host_firewall_indistinguishable"));
        let hops = a.evidence.iter().find(|e| e.signal == "rst_hops").unwrap();
        assert!(hops.meaning.contains("nearer than the server"), "{}", hops.meaning);
        assert_eq!(r.probe.as_ref().unwrap().baseline.as_ref().unwrap().method, "icmp-echo");
    }

    #[test]
    fn path_icmp_admin_prohibited_names_fw() {
        let mut sim = Sim::lab(false, Some((84, Action::Icmp(3, 13))));
        let r = probe_remote(&mut sim, &cfg("198.18.4.2:84", Some(80))).unwrap();
        let a = main_attempt(&r);
        assert_eq!(a.verdict, VerdictKind::PathFirewall);
        let loc = r.probe.as_ref().unwrap().locate.clone().unwrap();
        assert_eq!((loc.hop, loc.address), (2, Some("198.18.2.2".parse().unwrap())));
    }

    #[test]
    fn drop_is_filtered_with_last_responding_hop() {
        let mut sim = Sim::lab(false, Some((86, Action::Drop)));
        let r = probe_remote(&mut sim, &cfg("198.18.4.2:86", Some(80))).unwrap();
        let a = main_attempt(&r);
        assert_eq!(
            (a.verdict, a.confidence),
            (VerdictKind::FilteredOrDown, Confidence::High)
        );
        let loc = r.probe.as_ref().unwrap().locate.clone().unwrap();
        assert_eq!((loc.hop, loc.device), (2, LocateDevice::LastResponding));
        assert_eq!(a.syns, 2);
    }

    #[test]
    fn v6_path_rst() {
        let mut sim = Sim::lab(true, Some((82, Action::Rst)));
        let r = probe_remote(&mut sim, &cfg("[2001:db8:4::2]:82", Some(80))).unwrap();
        let a = main_attempt(&r);
        assert_eq!(a.verdict, VerdictKind::PathFirewall);
        let loc = r.probe.as_ref().unwrap().locate.clone().unwrap();
        assert_eq!((loc.hop, loc.address), (2, Some("2001:db8:2::2".parse().unwrap())));
    }

    #[test]
    fn packets_are_bounded_and_rate_limited() {
        let mut sim = Sim::lab(false, Some((86, Action::Drop)));
        sim.silent_routers = true;
        let mut c = cfg("198.18.4.2:86", None);
        c.max_hops = 64;
        let _ = probe_remote(&mut sim, &c).unwrap();
        let times = sim.send_times();
        assert!(times.len() as u32 <= MAX_PACKETS);
        for w in times.windows(2) {
            assert!(w[1].0 - w[0].0 >= 50_000_000, "packets closer than the interval");
        }
        // Silent routers and no baseline: the gap limit ends the trace early.
        assert!(sim.max_ttl_sent() <= 1 + GAP_LIMIT, "{}", sim.max_ttl_sent());
    }
}
