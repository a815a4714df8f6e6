//! Locate stage of a probe: which hop answers, from TTL-limited SYNs, the answer's own TTL and
//! the time-exceeded senders; then the probe's refinement of the capture verdict.
//!
//! Contract: pure functions over plain records, no I/O. Hop numbers count the routers that
//! decrement the TTL: hop 1 is the first router, the server is hop `routers + 1`. A packet that
//! arrives with TTL `t` was sent `hops(t)` routers away ([`crate::attribute::hops`]), i.e. by the
//! device at hop `hops(t) + 1` ([`reply_hop`]).
//!
//! Where the answer first appears is not always where the device is:
//!
//! - A router that filters *after* its TTL check (Linux's forward chain, most software
//!   firewalls) answers the SYN whose TTL expires there with time exceeded, and the next SYN
//!   (TTL one higher) with its RST or ICMP: it shows up one TTL later than its hop. The
//!   answer's own TTL, and the time-exceeded sender of the TTL before, settle which.
//! - A device that acts *before* any TTL check, or that does not decrement the TTL at all (a
//!   bridge, a transparent firewall), answers at the TTL of its own position and never sends
//!   time exceeded: it has no address in the trace.
//! - A device that sets its answer's TTL to mimic the server (TTL mirroring) defeats the
//!   answer's TTL; the TTL-limited SYNs still locate it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::attribute::{hops, Confidence, Evidence, VerdictKind};
use crate::model::{AttemptRecord, Report};
use crate::track::Outcome;

use super::BaselineRecord;

/// What answered one probe SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyKind {
    /// ICMP time exceeded / ICMPv6 hop limit exceeded: the TTL ran out at that hop.
    TimeExceeded,
    /// A RST acknowledging the SYN.
    Rst,
    /// A SYN-ACK.
    SynAck,
    /// ICMP destination unreachable / ICMPv6 type 1.
    IcmpUnreachable,
    /// Nothing within the wait.
    None,
}

impl ReplyKind {
    /// Whether this answer ends the SYN's journey at the device that sent it (not a TTL expiry).
    pub fn is_terminal(self) -> bool {
        matches!(self, ReplyKind::Rst | ReplyKind::SynAck | ReplyKind::IcmpUnreachable)
    }

    /// Words for it.
    pub fn words(self) -> &'static str {
        match self {
            ReplyKind::TimeExceeded => "time exceeded",
            ReplyKind::Rst => "RST",
            ReplyKind::SynAck => "SYN-ACK",
            ReplyKind::IcmpUnreachable => "ICMP unreachable",
            ReplyKind::None => "no answer",
        }
    }
}

/// One probe SYN and what answered it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HopRecord {
    /// The SYN's TTL (hop limit).
    pub ttl: u8,
    /// What answered.
    pub reply: ReplyKind,
    /// Who answered.
    pub from: Option<IpAddr>,
    /// The answer's TTL on arrival.
    pub reply_ttl: Option<u8>,
    /// Milliseconds from the SYN to the answer.
    pub rtt_ms: Option<f64>,
    /// ICMP type, for ICMP answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// ICMP code, for ICMP answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    /// For ICMP answers: the TTL the SYN still had when the ICMP sender quoted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_ttl: Option<u8>,
}

impl HopRecord {
    /// A SYN nothing answered.
    pub fn silent(ttl: u8) -> HopRecord {
        HopRecord {
            ttl,
            reply: ReplyKind::None,
            from: None,
            reply_ttl: None,
            rtt_ms: None,
            icmp_type: None,
            icmp_code: None,
            quoted_ttl: None,
        }
    }
}

/// Where the answering device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocateDevice {
    /// The destination host itself.
    Host,
    /// A device between this machine and the host.
    Path,
    /// Nothing answered the SYNs: `hop` is the last hop that sent time exceeded; the SYNs are
    /// lost there or right after it.
    LastResponding,
    /// The hop is known but not how it compares with the host's (no baseline).
    Unknown,
}

/// The device that answers the SYNs (JSON `probe.locate`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Locate {
    /// Its hop number (1 = first router).
    pub hop: u8,
    /// Its address, when the trace shows one (a RST forged with the server's address does not
    /// name its maker; the time-exceeded sender at that hop does).
    pub address: Option<IpAddr>,
    /// The destination host's hop number, when known.
    pub host_hop: Option<u8>,
    /// Host, path device, or last responding hop.
    pub device: LocateDevice,
    /// What it answers.
    pub answer: ReplyKind,
    /// Lowest and highest hop consistent with the evidence (equal when certain).
    pub hop_range: [u8; 2],
    /// The smallest SYN TTL that got this answer.
    pub first_ttl: Option<u8>,
    /// The hop the answer's own TTL points at.
    pub reply_hop: Option<u8>,
    /// The TTL-limited SYNs and the answer's own TTL agree.
    pub agree: bool,
}

/// The hop number of the device that sent a packet arriving with `ttl`.
pub fn reply_hop(ttl: u8) -> u8 {
    hops(ttl).saturating_add(1)
}

/// What [`locate`] works from.
#[derive(Clone, Copy, Debug)]
pub struct LocateInput<'a> {
    /// The probed address.
    pub target: IpAddr,
    /// The probed port.
    pub port: u16,
    /// The TTL-limited SYNs, any order.
    pub trace: &'a [HopRecord],
    /// What answered the full-TTL SYN (reply `None` for silence).
    pub main: Option<&'a HopRecord>,
    /// The host's hop number from the baseline, when known.
    pub host_hop: Option<u8>,
}

/// The located device and the notes explaining how (and which pitfalls apply).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Located {
    /// The device, if any could be located.
    pub locate: Option<Locate>,
    /// Plain-words notes, in order.
    pub notes: Vec<String>,
}

fn list_te(trace: &BTreeMap<u8, &HopRecord>, upto: u8) -> String {
    let mut parts = Vec::new();
    for k in 1..=upto {
        match trace.get(&k) {
            Some(h) if h.reply == ReplyKind::TimeExceeded => {
                parts.push(h.from.map(|a| a.to_string()).unwrap_or_else(|| "?".into()))
            }
            _ => parts.push("*".into()),
        }
    }
    parts.join(", ")
}

/// Locates the answering device (decision table in the body, one comment per rule).
pub fn locate(inp: &LocateInput<'_>) -> Located {
    let mut notes = Vec::new();
    let by_ttl: BTreeMap<u8, &HopRecord> = inp.trace.iter().map(|h| (h.ttl, h)).collect();
    let te = |k: u8| -> Option<IpAddr> {
        by_ttl
            .get(&k)
            .filter(|h| h.reply == ReplyKind::TimeExceeded)
            .and_then(|h| h.from)
    };
    let terminal = by_ttl.values().find(|h| h.reply.is_terminal()).copied();
    // The host's distance: the baseline, else a SYN-ACK from the target itself in the trace.
    let host_hop = inp.host_hop.or_else(|| {
        terminal
            .filter(|t| t.reply == ReplyKind::SynAck && t.from == Some(inp.target))
            .map(|t| t.ttl)
    });
    if inp.trace.is_empty() {
        return Located {
            locate: None,
            notes: vec!["No TTL-limited SYNs were sent (--no-trace): the answering device is not located.".into()],
        };
    }
    let last_sent = by_ttl.keys().next_back().copied().unwrap_or(0);

    let Some(t) = terminal else {
        // Silence at every TTL: the last hop that sent time exceeded is where the SYNs vanish.
        let last = by_ttl
            .values()
            .filter(|h| h.reply == ReplyKind::TimeExceeded)
            .map(|h| h.ttl)
            .max();
        return match last {
            Some(l) => {
                let at_host = host_hop == Some(l + 1);
                notes.push(format!(
                    "TTL-limited SYNs to port {}: TTL 1-{l} expired at {} (time exceeded); TTL {}-{last_sent} got no answer.",
                    inp.port,
                    list_te(&by_ttl, l),
                    l + 1
                ));
                notes.push(format!(
                    "The SYNs pass hop {l} ({}) and nothing answers beyond it: they are dropped at hop {l} (a filter after its TTL check, as Linux's forward chain does) or at hop {}{}.",
                    te(l).map(|a| a.to_string()).unwrap_or_else(|| "address unknown".into()),
                    l + 1,
                    if at_host { ", which is the server itself (its own firewall)" } else { "" }
                ));
                Located {
                    locate: Some(Locate {
                        hop: l,
                        address: te(l),
                        host_hop,
                        device: LocateDevice::LastResponding,
                        answer: ReplyKind::None,
                        hop_range: [l, l.saturating_add(1)],
                        first_ttl: None,
                        reply_hop: None,
                        agree: true,
                    }),
                    notes,
                }
            }
            None => {
                notes.push(format!(
                    "No TTL-limited SYN got any answer (TTL 1-{last_sent}): the first router already drops them, or every router on the path filters ICMP time exceeded."
                ));
                Located { locate: None, notes }
            }
        };
    };

    let f = t.ttl;
    let before = f.saturating_sub(1);
    let r = t.reply_ttl.map(reply_hop);
    let from_target = t.from == Some(inp.target);
    notes.push(format!(
        "TTL-limited SYNs to port {}: {}from TTL {f} on the answer is {}{}{}.",
        inp.port,
        if before >= 1 {
            format!(
                "TTL 1-{before} expired at {} (time exceeded); ",
                list_te(&by_ttl, before)
            )
        } else {
            String::new()
        },
        t.reply.words(),
        t.from.map(|a| format!(" from {a}")).unwrap_or_default(),
        match (t.reply_ttl, r) {
            (Some(ttl), Some(r)) => format!(
                " (TTL {ttl} on arrival: sent {} away, i.e. by hop {r})",
                match r - 1 {
                    0 => "0 routers".to_string(),
                    1 => "1 router".to_string(),
                    n => format!("{n} routers"),
                }
            ),
            _ => String::new(),
        }
    ));
    let mut after_ttl_check = false;
    // Decision table: (what answered, where its own TTL points) → hop and address.
    let (hop, address, agree) = match (t.reply, r) {
        // An ICMP error from the target itself: the host answers (its own firewall).
        (ReplyKind::IcmpUnreachable, _) if from_target => (f, t.from, r == Some(f)),
        // An ICMP error whose sender expired the SYN one TTL earlier: a router that filters
        // after its TTL check (the ICMP source names it).
        (ReplyKind::IcmpUnreachable, _) if before >= 1 && te(before).is_some() && te(before) == t.from => {
            after_ttl_check = true;
            (before, t.from, r.is_none_or(|r| r == before))
        }
        // An ICMP error whose own TTL points at the TTL where it first appeared: a device that
        // acts before its TTL check.
        (ReplyKind::IcmpUnreachable, Some(r)) if r == f => (f, t.from, true),
        (ReplyKind::IcmpUnreachable, Some(r)) if r == before && before >= 1 => {
            after_ttl_check = true;
            (before, t.from, true)
        }
        (ReplyKind::IcmpUnreachable, _) => (f, t.from, false),
        // A RST or SYN-ACK whose own TTL points one hop before the first TTL that got it: the
        // device at that hop filters after its TTL check; the time-exceeded sender there is
        // its address (the RST itself carries the server's address).
        (_, Some(r)) if r == before && before >= 1 => {
            after_ttl_check = true;
            (before, te(before), true)
        }
        // Own TTL and first TTL agree: the device at hop F answers before any TTL check. It is
        // the host when the host is that far.
        (_, Some(r)) if r == f => {
            let host_here = host_hop == Some(f) || (host_hop.is_none() && from_target && t.reply == ReplyKind::SynAck);
            (f, if host_here { t.from } else { te(f) }, true)
        }
        // They disagree: the answer's TTL is mirrored or its initial TTL unusual; the
        // TTL-limited SYNs are what locate it (hop F, or F-1 if it filters after a TTL check).
        _ => (f, if host_hop == Some(f) { t.from } else { None }, false),
    };
    let device = match host_hop {
        _ if t.reply == ReplyKind::IcmpUnreachable && !from_target => LocateDevice::Path,
        Some(h) if hop == h => LocateDevice::Host,
        Some(h) if hop < h => LocateDevice::Path,
        _ => LocateDevice::Unknown,
    };
    let hop_range = if agree { [hop, hop] } else { [before.max(1).min(hop), f] };

    if after_ttl_check {
        notes.push(format!(
            "Hop {hop}{} answered the TTL-{hop} SYN with time exceeded and the TTL-{f} SYN with its {}: it checks the TTL before its filter (as Linux's forward chain does), so a filtering router shows up one TTL later than its hop number.{}",
            address.map(|a| format!(" ({a})")).unwrap_or_default(),
            t.reply.words(),
            if r == Some(hop) {
                format!(" The answer's own TTL ({}) confirms hop {hop}.", t.reply_ttl.unwrap_or(0))
            } else {
                String::new()
            }
        ));
    }
    if t.reply == ReplyKind::Rst && from_target && device == LocateDevice::Path {
        notes.push(format!(
            "The RST carries the server's address ({}), but it was made at hop {hop}: a `reject with tcp reset` rule forges the server's address.",
            inp.target
        ));
    }
    if !agree {
        notes.push(format!(
            "The answer's own TTL ({}) points at hop {}, but SYNs first met it at TTL {f}: the device sets the TTL of its answers to look like another distance (TTL mirroring) or uses an uncommon initial TTL. The TTL-limited SYNs locate it (hop {}-{f}); the answer's TTL does not.",
            t.reply_ttl.map(|x| x.to_string()).unwrap_or_else(|| "?".into()),
            r.map(|x| x.to_string()).unwrap_or_else(|| "?".into()),
            hop_range[0]
        ));
    }
    if let Some(m) = inp.main {
        if m.reply == t.reply && m.from == t.from && m.reply_ttl.is_some() && m.reply_ttl != t.reply_ttl {
            notes.push(format!(
                "The answer's TTL changed with the SYN's TTL ({} for the TTL-{} SYN, {} for the TTL-{f} SYN): the device mirrors the TTL of what it answers, so TTLs of its answers say nothing about its distance.",
                m.reply_ttl.unwrap_or(0),
                m.ttl,
                t.reply_ttl.unwrap_or(0)
            ));
        } else if m.reply != t.reply && m.reply != ReplyKind::None {
            notes.push(format!(
                "The full-TTL SYN got {} but the TTL-limited SYNs got {}: the answers differ between SYNs (load balancing, rate limiting, or a rule that looks at the TTL).",
                m.reply.words(),
                t.reply.words()
            ));
        }
    }
    if agree && address.is_none() && device != LocateDevice::Host && hop == f {
        notes.push(format!(
            "No time exceeded came from hop {f}: the device answering there acts before any TTL check or does not decrement the TTL at all (a bridge or transparent firewall), so it has no address of its own in the trace."
        ));
    }
    let silent: Vec<String> = (1..hop)
        .filter(|k| by_ttl.get(k).is_none_or(|h| h.reply == ReplyKind::None))
        .map(|k| k.to_string())
        .collect();
    if !silent.is_empty() {
        notes.push(format!(
            "Hop(s) {} sent no time exceeded (ICMP filtered or rate-limited): their addresses are unknown; the hop numbers still count them.",
            silent.join(", ")
        ));
    }
    match (device, host_hop) {
        (LocateDevice::Path, Some(h)) if t.reply == ReplyKind::SynAck => notes.push(format!(
            "A SYN-ACK came from hop {hop}, nearer than the server (hop {h}): a SYN proxy, load balancer or transparent proxy answers for it."
        )),
        // Path and host: `locate` and its one-line rendering say it; no note repeats it.
        (LocateDevice::Path | LocateDevice::Host, _) => {}
        (LocateDevice::Unknown, Some(h)) => notes.push(format!(
            "The answer comes from hop {hop}, further than the server's own packets (hop {h}): another device behind it, or a route that differs by direction."
        )),
        (LocateDevice::Unknown, None) => notes.push(format!(
            "The answer comes from hop {hop}; with no baseline (no --baseline-port and no echo reply) it cannot be compared with the server's distance. Give --baseline-port with an open port of the server."
        )),
        (LocateDevice::LastResponding, _) => {}
    }
    Located {
        locate: Some(Locate {
            hop,
            address,
            host_hop,
            device,
            answer: t.reply,
            hop_range,
            first_ttl: Some(f),
            reply_hop: r,
            agree,
        }),
        notes,
    }
}

fn ev(signal: &'static str, observed: String, baseline: Option<String>, meaning: String) -> Evidence {
    Evidence {
        signal,
        observed,
        baseline,
        meaning,
    }
}

/// Adds what the probe knows to the attempt of the full-TTL SYN, and refines its verdict where
/// the probe decides what a capture could not (decision table in the body).
pub fn refine(rec: &mut AttemptRecord, loc: Option<&Locate>, baseline: Option<&BaselineRecord>) {
    let host_hop = baseline.and_then(|b| b.host_hop);
    if let Some(h) = host_hop {
        // The capture-only advice ("capture a working connection or run synrst probe") is moot.
        rec.evidence.retain(|e| e.signal != "no_baseline");
        // The probe's baseline is what the capture lacked: compare the RST's distance with it.
        let how = baseline
            .map(|b| match (b.port, b.ttl) {
                (Some(p), Some(t)) => format!("server at hop {h} (SYN-ACK from port {p}, TTL {t})"),
                (_, Some(t)) => format!("server at hop {h} (echo reply, TTL {t})"),
                _ => format!("server at hop {h}"),
            })
            .unwrap_or_default();
        let rst_hop = rec
            .answer
            .as_ref()
            .filter(|a| a.kind == crate::track::Role::Rst)
            .map(|a| reply_hop(a.ttl));
        for e in rec
            .evidence
            .iter_mut()
            .filter(|e| e.signal == "rst_hops" && e.baseline.is_none())
        {
            let Some(r) = rst_hop else { continue };
            e.baseline = Some(how.clone());
            e.meaning = match r.cmp(&h) {
                std::cmp::Ordering::Less => "the RST came from nearer than the server: a device on the path sent it",
                std::cmp::Ordering::Equal => {
                    "the RST travelled as far as the server's own packets: consistent with the server's TCP stack"
                }
                std::cmp::Ordering::Greater => {
                    "the RST travelled further than the server's own packets: another sender, or a route change"
                }
            }
            .into();
        }
    }
    if let Some(b) = baseline {
        rec.evidence.push(ev(
            "probe_baseline",
            match (b.answer, b.port, b.ttl) {
                ("none", Some(p), _) => format!("no answer from port {p}"),
                ("none", None, _) => "no echo reply".into(),
                (a, Some(p), Some(ttl)) => format!("{a} from port {p}, TTL {ttl}"),
                (a, _, Some(ttl)) => format!("{a}, TTL {ttl}"),
                (a, _, None) => a.to_string(),
            },
            None,
            match b.host_hop {
                Some(h) => format!("the server itself is hop {h}: its answers are the yardstick for the others"),
                None => "the server's own distance is not known".into(),
            },
        ));
    }
    let Some(l) = loc else { return };
    let observed = format!(
        "{}{}{}",
        match l.first_ttl {
            Some(f) => format!("{} first at SYN TTL {f}", l.answer.words()),
            None => "no answer at any SYN TTL".into(),
        },
        l.reply_hop
            .map(|r| format!("; the answer's TTL points at hop {r}"))
            .unwrap_or_default(),
        l.address.map(|a| format!("; hop {} is {a}", l.hop)).unwrap_or_default()
    );
    let baseline_text = l.host_hop.map(|h| format!("server at hop {h}"));
    let where_ = match l.address {
        Some(a) => format!("hop {} ({a})", l.hop),
        None => format!("hop {}", l.hop),
    };
    let meaning = match l.device {
        LocateDevice::Host => format!("the server itself ({where_}) answers"),
        LocateDevice::Path => format!("a device at {where_}, before the server, answers"),
        LocateDevice::LastResponding => format!("the SYNs get no answer beyond {where_}: lost there or just after"),
        LocateDevice::Unknown => format!("the answer comes from {where_}"),
    };
    rec.evidence.push(ev("probe_locate", observed, baseline_text, meaning));

    let alive = baseline.is_some_and(|b| b.answer != "none");
    let sure = if l.agree { Confidence::High } else { Confidence::Medium };
    // Decision table: (outcome, where the answering device is, the capture's verdict).
    match (rec.outcome, l.device, rec.verdict) {
        // A RST located nearer than the server by TTL-limited SYNs: a device on the path made
        // it (it carries the server's address, as `reject with tcp reset` does).
        (Outcome::Refused, LocateDevice::Path, _) => {
            // A closed port's caveat does not apply to a RST made on the path.
            rec.evidence.retain(|e| e.signal != "host_firewall_indistinguishable");
            rec.verdict = VerdictKind::PathFirewall;
            rec.confidence = sure;
            rec.explanation = format!(
                "RST made by a device at {where_} on the path (the server is hop {}): located by TTL-limited SYNs",
                l.host_hop.map(|h| h.to_string()).unwrap_or_else(|| "?".into())
            );
        }
        // A RST from the server's own hop: its TCP stack (nothing listens), or its own reset rule.
        (Outcome::Refused, LocateDevice::Host, VerdictKind::ClosedPort | VerdictKind::Unknown) => {
            rec.verdict = VerdictKind::ClosedPort;
            rec.confidence = rec.confidence.max(sure);
            rec.explanation = format!(
                "the server's own TCP stack answered RST (located at its hop {}): nothing listens on port {} (or the server's own firewall rejects with tcp-reset)",
                l.hop, rec.server.port
            );
        }
        // The capture and the probe disagree: keep the capture's verdict, less sure.
        (Outcome::Refused, LocateDevice::Host, _) => {
            rec.confidence = rec.confidence.min(Confidence::Medium);
        }
        // An ICMP error: its sender already says who; the probe adds where.
        (Outcome::Unreachable, _, _) if l.agree => {
            rec.confidence = rec.confidence.max(Confidence::Medium);
        }
        // Silence with the host alive (baseline answered): a filter drops this port.
        (Outcome::NoAnswer, _, VerdictKind::FilteredOrDown) if alive => {
            rec.confidence = Confidence::High;
            rec.explanation = format!(
                "no answer; the server is up (it answered the baseline), so a filter drops SYNs to port {}; they get no answer beyond {where_}",
                rec.server.port
            );
            rec.evidence.push(ev(
                "host_alive",
                "the server answered the probe's baseline".into(),
                None,
                "the host is up: a filter drops SYNs to this port".into(),
            ));
        }
        (Outcome::NoAnswer, _, VerdictKind::FilteredOrDown) => {
            rec.explanation = format!(
                "no answer to {} SYN(s): a filter drops them or the host is down; they get no answer beyond {where_}",
                rec.syns
            );
        }
        _ => {}
    }
}

/// Recomputes the per-verdict counts after [`refine`] changed verdicts.
pub fn resummarize(report: &mut Report) {
    let mut by_verdict: BTreeMap<&'static str, u64> = BTreeMap::new();
    for r in &report.attempts {
        *by_verdict.entry(r.verdict.name()).or_insert(0) += 1;
    }
    report.summary.by_verdict = by_verdict;
    for d in &mut report.summary.destinations {
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        for r in report.attempts.iter().filter(|r| r.server == d.server) {
            if r.outcome != Outcome::Accepted {
                *counts.entry(r.verdict.name()).or_insert(0) += 1;
            }
        }
        d.verdict = counts
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)))
            .map(|(name, _)| name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SV: &str = "198.18.4.2";

    fn te(ttl: u8, from: &str, reply_ttl: u8) -> HopRecord {
        HopRecord {
            reply: ReplyKind::TimeExceeded,
            from: Some(from.parse().unwrap()),
            reply_ttl: Some(reply_ttl),
            icmp_type: Some(11),
            icmp_code: Some(0),
            quoted_ttl: Some(1),
            ..HopRecord::silent(ttl)
        }
    }

    fn ans(ttl: u8, kind: ReplyKind, from: &str, reply_ttl: u8) -> HopRecord {
        HopRecord {
            reply: kind,
            from: Some(from.parse().unwrap()),
            reply_ttl: Some(reply_ttl),
            ..HopRecord::silent(ttl)
        }
    }

    fn run(trace: &[HopRecord], main: Option<&HopRecord>, host_hop: Option<u8>) -> Located {
        locate(&LocateInput {
            target: SV.parse().unwrap(),
            port: 82,
            trace,
            main,
            host_hop,
        })
    }

    fn lab_prefix() -> Vec<HopRecord> {
        vec![te(1, "198.18.1.1", 64), te(2, "198.18.2.2", 63)]
    }

    #[test]
    fn path_rst_after_ttl_check_is_hop_before_first_rst() {
        let mut trace = lab_prefix();
        trace.push(ans(3, ReplyKind::Rst, SV, 63));
        let main = ans(64, ReplyKind::Rst, SV, 63);
        let l = run(&trace, Some(&main), Some(4));
        let loc = l.locate.unwrap();
        assert_eq!(loc.hop, 2);
        assert_eq!(loc.address, Some("198.18.2.2".parse().unwrap()));
        assert_eq!(loc.device, LocateDevice::Path);
        assert!(loc.agree);
        assert_eq!(loc.hop_range, [2, 2]);
        let notes = l.notes.join("\n");
        assert!(notes.contains("checks the TTL before its filter"), "{notes}");
        assert!(notes.contains("forges the server's address"), "{notes}");
    }

    #[test]
    fn path_icmp_names_its_sender() {
        let mut trace = lab_prefix();
        trace.push(HopRecord {
            icmp_type: Some(3),
            icmp_code: Some(13),
            ..ans(3, ReplyKind::IcmpUnreachable, "198.18.2.2", 63)
        });
        let loc = run(&trace, None, Some(4)).locate.unwrap();
        assert_eq!((loc.hop, loc.device), (2, LocateDevice::Path));
        assert_eq!(loc.address, Some("198.18.2.2".parse().unwrap()));
    }

    #[test]
    fn closed_port_is_the_host() {
        let mut trace = lab_prefix();
        trace.push(te(3, "198.18.3.2", 62));
        trace.push(ans(4, ReplyKind::Rst, SV, 61));
        let loc = run(&trace, None, Some(4)).locate.unwrap();
        assert_eq!((loc.hop, loc.device), (4, LocateDevice::Host));
        assert_eq!(loc.address, Some(SV.parse().unwrap()));
    }

    #[test]
    fn host_hop_from_trace_synack_without_baseline() {
        let mut trace = lab_prefix();
        trace.push(te(3, "198.18.3.2", 62));
        trace.push(ans(4, ReplyKind::SynAck, SV, 61));
        let loc = run(&trace, None, None).locate.unwrap();
        assert_eq!((loc.hop, loc.host_hop, loc.device), (4, Some(4), LocateDevice::Host));
    }

    #[test]
    fn mirrored_ttl_is_not_trusted() {
        // A device at hop 2 answers the TTL-2 SYN before any TTL check but mimics the server's
        // TTL (61 → hop 4).
        let trace = vec![te(1, "198.18.1.1", 64), ans(2, ReplyKind::Rst, SV, 61)];
        let main = ans(64, ReplyKind::Rst, SV, 61);
        let l = run(&trace, Some(&main), Some(4));
        let loc = l.locate.unwrap();
        assert_eq!(loc.hop, 2);
        assert_eq!(loc.device, LocateDevice::Path);
        assert!(!loc.agree);
        assert_eq!(loc.hop_range, [1, 2]);
        assert!(l.notes.join("\n").contains("TTL mirroring"));
    }

    #[test]
    fn ttl_that_follows_the_syn_is_called_mirroring() {
        let trace = vec![te(1, "198.18.1.1", 64), ans(2, ReplyKind::Rst, SV, 2)];
        let main = ans(64, ReplyKind::Rst, SV, 64);
        let l = run(&trace, Some(&main), Some(4));
        assert!(l.notes.join("\n").contains("mirrors the TTL"), "{:?}", l.notes);
    }

    #[test]
    fn non_decrementing_device_has_no_address() {
        // A bridge between hop 1 and hop 2 answers the TTL-2 SYN; its RST (TTL 64, one router
        // on the way back) points at hop 2.
        let trace = vec![te(1, "198.18.1.1", 64), ans(2, ReplyKind::Rst, SV, 63)];
        let l = run(&trace, None, Some(4));
        let loc = l.locate.unwrap();
        assert_eq!((loc.hop, loc.address, loc.device), (2, None, LocateDevice::Path));
        assert!(loc.agree);
        assert!(
            l.notes.join("\n").contains("does not decrement the TTL"),
            "{:?}",
            l.notes
        );
    }

    #[test]
    fn silence_locates_the_last_responding_hop() {
        let mut trace = lab_prefix();
        trace.push(HopRecord::silent(3));
        trace.push(HopRecord::silent(4));
        let l = run(&trace, None, Some(4));
        let loc = l.locate.unwrap();
        assert_eq!(loc.device, LocateDevice::LastResponding);
        assert_eq!((loc.hop, loc.hop_range), (2, [2, 3]));
        assert_eq!(loc.address, Some("198.18.2.2".parse().unwrap()));
    }

    #[test]
    fn silent_middle_hops_are_named() {
        let trace = vec![
            te(1, "198.18.1.1", 64),
            HopRecord::silent(2),
            te(3, "198.18.3.2", 62),
            ans(4, ReplyKind::Rst, SV, 61),
        ];
        let l = run(&trace, None, Some(4));
        assert!(
            l.notes.join("\n").contains("Hop(s) 2 sent no time exceeded"),
            "{:?}",
            l.notes
        );
    }

    #[test]
    fn synack_nearer_than_host_is_a_proxy() {
        let trace = vec![te(1, "198.18.1.1", 64), ans(2, ReplyKind::SynAck, SV, 63)];
        let l = run(&trace, None, Some(4));
        let loc = l.locate.unwrap();
        assert_eq!((loc.hop, loc.device), (2, LocateDevice::Path));
        assert!(l.notes.join("\n").contains("SYN proxy"));
    }

    #[test]
    fn reply_hop_counts_routers_plus_one() {
        assert_eq!(reply_hop(64), 1);
        assert_eq!(reply_hop(63), 2);
        assert_eq!(reply_hop(61), 4);
        assert_eq!(reply_hop(255), 1);
    }
}
