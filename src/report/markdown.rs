//! Markdown for incident tickets (GitHub, GitLab, Jira's Markdown): a headline in plain
//! words, the scope, a table per destination, each refused attempt with its packets, its
//! evidence, what the client saw and next steps that follow from the evidence.
//!
//! The "story" (headlines, hop positions, next steps) is computed here once, as [`Rich`] text
//! (plain words and literals), and rendered by both this writer and the HTML writer.
//!
//! Nothing from the capture can become a link, an image, HTML or emphasis: literals go into
//! code spans ([`code`]), everything else through [`md`].

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;

use super::table::{answered, ms};
use super::Options;
use crate::attribute::{hops, initial_ttl, VerdictKind};
use crate::decode::{IcmpError, IcmpKind, Quote};
use crate::flow::Endpoint;
use crate::model::{AnswerRecord, AttemptRecord, Destination, Flood, Report};
use crate::track::{Outcome, Role};

/// Most refused attempts shown in detail per destination and verdict; the rest are listed
/// by number (the JSON output has every packet of every attempt).
pub(crate) const DETAIL_PER_GROUP: usize = 3;
/// Most rows in a destination's table.
pub(crate) const ROWS_PER_DESTINATION: usize = 50;

/// Escapes text for a Markdown paragraph or table cell: no HTML, links, autolinks, images,
/// emphasis, math or line structure can come out of it.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let chars: Vec<char> = super::escape(s).chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let prev = |k: usize| if i >= k { chars[i - k] } else { '\0' };
        let next = chars.get(i + 1).copied().unwrap_or('\0');
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // A zero-width space before '@' stops GFM's e-mail autolinks (escaping does not).
            '@' => out.push_str("&#8203;@"),
            '|' | '[' | ']' | '(' | ')' | '*' | '_' | '`' | '!' | '#' | '\\' | '~' | '$' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            // `http://`, `mailto:x`, `xmpp:x` autolinks and `:emoji:` shortcodes.
            ':' if next == '/' || next.is_ascii_alphabetic() => out.push_str("\\:"),
            // `www.` autolinks.
            '.' if [prev(1), prev(2), prev(3)].iter().all(|p| p.eq_ignore_ascii_case(&'w')) => out.push_str("\\."),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// A code span holding `s` literally (control characters escaped, line breaks made spaces).
/// In a table cell (`cell`), `|` is escaped as GFM requires even inside code spans.
pub fn code(s: &str, cell: bool) -> String {
    // Inside a code span `<` and `&` are literal for Markdown but would still be raw markup for
    // tools that scan the text (and entities are not decoded there): such strings, which only
    // come from outside (file names), are escaped as plain text instead.
    if s.contains(['<', '>', '&']) {
        return md(s);
    }
    let s: String = super::escape(s)
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let s = if cell { s.replace('|', "\\|") } else { s };
    // The fence is one backtick longer than the longest run inside.
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.starts_with(' ') || s.ends_with(' ') || s.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A piece of report prose: plain words or a literal (address, command, errno).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Span {
    /// Words.
    Text(String),
    /// A literal, shown as code.
    Code(String),
    /// Words shown strong.
    Strong(String),
}

/// Prose made of [`Span`]s, rendered by each writer with its own escaping.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Rich(pub Vec<Span>);

impl Rich {
    fn new() -> Rich {
        Rich(Vec::new())
    }
    fn t(mut self, s: impl Into<String>) -> Rich {
        self.0.push(Span::Text(s.into()));
        self
    }
    fn c(mut self, s: impl ToString) -> Rich {
        self.0.push(Span::Code(s.to_string()));
        self
    }
    fn b(mut self, s: impl Into<String>) -> Rich {
        self.0.push(Span::Strong(s.into()));
        self
    }
    fn extend(mut self, other: Rich) -> Rich {
        self.0.extend(other.0);
        self
    }
    /// Plain text (for tests and titles).
    pub(crate) fn plain(&self) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Span::Text(t) | Span::Code(t) | Span::Strong(t) => t.as_str(),
            })
            .collect()
    }
    /// Markdown.
    pub(crate) fn md(&self, cell: bool) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Span::Text(t) => md(t),
                Span::Code(t) => code(t, cell),
                Span::Strong(t) => format!("**{}**", md(t)),
            })
            .collect()
    }
}

fn t(s: impl Into<String>) -> Rich {
    Rich::new().t(s)
}

pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `HH:MM:SS.mmm` of an RFC 3339 timestamp (whatever precision it has).
pub(crate) fn time_of(rfc3339: &str) -> String {
    let Some(hms) = rfc3339.get(11..19) else {
        return rfc3339.to_string();
    };
    let frac: String = rfc3339
        .get(19..)
        .and_then(|r| r.strip_prefix('.'))
        .map(|r| r.chars().take_while(char::is_ascii_digit).take(3).collect())
        .unwrap_or_default();
    format!("{hms}.{frac:0<3}")
}

/// A readable ICMP name from type and code (the same table attribution uses).
pub(crate) fn icmp_label(a: &AnswerRecord) -> String {
    let (Some(ty), Some(code)) = (a.icmp_type, a.icmp_code) else {
        return "ICMP".into();
    };
    let v6 = a.sender.is_ipv6();
    let kind = if (v6 && ty == 3) || (!v6 && ty == 11) {
        IcmpKind::TimeExceeded
    } else {
        IcmpKind::Unreachable
    };
    let ep = Endpoint { ip: a.sender, port: 0 };
    let e = IcmpError {
        v6,
        kind,
        icmp_type: ty,
        code,
        quote: Quote {
            src: ep,
            dst: ep,
            seq: None,
            flags: None,
            ttl: 0,
            tcp_bytes: 0,
        },
    };
    crate::attribute::icmp_name(&e).to_string()
}

/// Short name of a packet's kind: `SYN-ACK`, `RST`, `ICMP host unreachable`.
pub(crate) fn kind_name(a: &AnswerRecord) -> String {
    match a.kind {
        Role::SynAck => "SYN-ACK".into(),
        Role::Rst => {
            if a.flags.as_deref().is_some_and(|f| f.contains('.')) {
                "RST+ACK".into()
            } else {
                "RST".into()
            }
        }
        Role::IcmpUnreachable | Role::IcmpTimeExceeded => {
            format!("ICMP{} {}", if a.sender.is_ipv6() { "v6" } else { "" }, icmp_label(a))
        }
        Role::ServerOther => "segment".into(),
        Role::ClientAck => "client ACK".into(),
        Role::ClientRst => "client RST".into(),
        Role::ResetAfterHandshake => "RST after handshake".into(),
    }
}

/// Where, in hops from the capture point, the server and the refusing device are.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Position {
    /// Hop distance of the packet that refused (RST or ICMP sender), from its TTL.
    pub refuser_hops: Option<u8>,
    /// Hop distance of the server's own packets (min, max).
    pub server_hops: Option<(u8, u8)>,
}

impl Position {
    /// Hops between the refusing device and the server, when both are known and it is nearer.
    pub fn before_server(&self) -> Option<u8> {
        let r = self.refuser_hops?;
        let (lo, _) = self.server_hops?;
        (lo > r).then(|| lo - r)
    }
}

/// The leading hop count of a baseline description: "3 hops (TTL 61 ...)", "2-4 hops",
/// "destination 198.19.0.10, 3 hops (...)".
fn parse_hops(s: &str) -> Option<(u8, u8)> {
    let i = s.find(" hops")?;
    let head = &s[..i];
    let tok = head.rsplit([' ', ',']).next()?;
    match tok.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => {
            let n = tok.parse().ok()?;
            Some((n, n))
        }
    }
}

/// The packet that refused: the deciding answer, or for a silent attempt the first RST or
/// ICMP error the client ignored.
pub(crate) fn refuser(r: &AttemptRecord) -> Option<&AnswerRecord> {
    r.answer.as_ref().filter(|a| a.kind != Role::SynAck).or_else(|| {
        r.packets
            .iter()
            .find(|p| matches!(p.kind, Role::Rst | Role::IcmpUnreachable | Role::IcmpTimeExceeded))
    })
}

/// Hop positions of an attempt, from the evidence baselines (what attribution compared
/// with) or else from the server's own packets in the report.
pub(crate) fn position(r: &AttemptRecord, report: &Report) -> Position {
    let refuser_hops = refuser(r).map(|a| hops(a.ttl));
    let from_evidence = r
        .evidence
        .iter()
        .filter(|e| matches!(e.signal, "rst_hops" | "icmp_sender"))
        .find_map(|e| e.baseline.as_deref().and_then(parse_hops));
    let server_hops = from_evidence.or_else(|| {
        let mut range: Option<(u8, u8)> = None;
        for p in report.attempts.iter().flat_map(|a| a.packets.iter()) {
            if p.sender == r.server.ip && matches!(p.kind, Role::SynAck | Role::ServerOther) {
                let h = hops(p.ttl);
                range = Some(range.map_or((h, h), |(lo, hi)| (lo.min(h), hi.max(h))));
            }
        }
        range
    });
    Position {
        refuser_hops,
        server_hops,
    }
}

fn has(r: &AttemptRecord, signal: &str) -> bool {
    r.evidence.iter().any(|e| e.signal == signal)
}

fn evidence<'a>(r: &'a AttemptRecord, signal: &str) -> Option<&'a crate::attribute::Evidence> {
    r.evidence.iter().find(|e| e.signal == signal)
}

fn hops_words(n: u8) -> String {
    plural(u64::from(n), "hop", "hops")
}

/// "1 hop from the client and 2 hops before the server".
fn where_on_path(p: &Position) -> Option<String> {
    let r = p.refuser_hops?;
    Some(match p.before_server() {
        Some(b) => format!(
            "{} from the capture point and {} before the server",
            hops_words(r),
            hops_words(b)
        ),
        None => format!("{} from the capture point", hops_words(r)),
    })
}

/// The verdict in plain words for one attempt, with hop positions (a headline clause).
pub(crate) fn verdict_clause(r: &AttemptRecord, report: &Report) -> Rich {
    let pos = position(r, report);
    let sender = refuser(r).map(|a| a.sender);
    let icmp = refuser(r).is_some_and(|a| matches!(a.kind, Role::IcmpUnreachable | Role::IcmpTimeExceeded));
    match r.verdict {
        VerdictKind::Accepted if r.evidence.is_empty() => t("connected"),
        VerdictKind::Accepted => t("connected, but a device on the path sent a RST that the client ignored"),
        VerdictKind::ClosedPort => {
            let base = t(format!(
                "refused by the server itself: nothing listens on port {}",
                r.server.port
            ));
            if has(r, "no_baseline") {
                base.t(" (or a firewall on the path: the capture has no packet of the server to compare with)")
            } else {
                base.t(" (or the server's own firewall answers with a TCP reset)")
            }
        }
        VerdictKind::HostFirewall => {
            let name = refuser(r).map(icmp_label).unwrap_or_else(|| "ICMP".into());
            t(format!("rejected by the server's own firewall ({name})"))
        }
        VerdictKind::PathFirewall => {
            let place = where_on_path(&pos);
            if has(r, "rst_then_synack") {
                let mut x = t("refused by a RST injected on the path");
                if let Some(p) = place {
                    x = x.t(format!(", {p}"));
                }
                x.t("; the server itself answered SYN-ACK")
            } else if icmp {
                let mut x = t("rejected by ");
                if let Some(s) = sender {
                    x = x.c(s).t(", ");
                }
                x = x.t("a firewall on the path");
                if let Some(p) = place {
                    x = x.t(format!(", {p}"));
                }
                x
            } else if r.outcome == Outcome::NoAnswer {
                t("disrupted on the path: forged RSTs the client ignored, then no answer")
            } else {
                let mut x = t("refused by a firewall on the path");
                if let Some(p) = place {
                    x = x.t(format!(", {p}"));
                }
                x
            }
        }
        VerdictKind::HostUnreachable => {
            let mut x = t("undeliverable: the router ");
            if let Some(s) = sender {
                x = x.c(s).t(" ");
            }
            x.t("found no host at ").c(r.server.ip).t(" (no ARP/ND answer)")
        }
        VerdictKind::NetUnreachable => {
            let exceeded = refuser(r).is_some_and(|a| a.kind == Role::IcmpTimeExceeded);
            let mut x = t(if exceeded {
                "lost: the TTL ran out at "
            } else {
                "unroutable: the router "
            });
            if let Some(s) = sender {
                x = x.c(s);
            } else {
                x = x.t("a router");
            }
            if exceeded {
                x.t(" (a routing loop?)")
            } else {
                x.t(" has no route to ").c(r.server.ip)
            }
        }
        VerdictKind::FilteredOrDown => {
            if has(r, "host_alive") {
                t(format!(
                    "not answered: the host is up, so a filter drops SYNs to port {}",
                    r.server.port
                ))
            } else {
                t("not answered: a filter drops them or the host is down")
            }
        }
        VerdictKind::Unknown => t("refused, but the capture does not show by whom"),
    }
}

/// A plain-words headline for the failures to one destination.
pub(crate) fn destination_headline(d: &Destination, attempts: &[&AttemptRecord], report: &Report) -> Option<Rich> {
    let failed: Vec<&&AttemptRecord> = attempts.iter().filter(|a| a.outcome != Outcome::Accepted).collect();
    if failed.is_empty() {
        return None;
    }
    // Verdict groups, largest first (ties: first seen).
    let mut groups: Vec<(VerdictKind, Vec<&AttemptRecord>)> = Vec::new();
    for a in &failed {
        match groups.iter_mut().find(|(v, _)| *v == a.verdict) {
            Some((_, g)) => g.push(a),
            None => groups.push((a.verdict, vec![a])),
        }
    }
    groups.sort_by_key(|(_, g)| std::cmp::Reverse(g.len()));
    let n = failed.len() as u64;
    let head = Rich::new()
        .t(format!("{n} of {} to ", plural(d.attempts, "attempt", "attempts")))
        .c(d.server);
    Some(if groups.len() == 1 {
        head.t(if n == 1 { " was " } else { " were " })
            .extend(verdict_clause(groups[0].1[0], report))
    } else {
        let mut x = head.t(" failed: ");
        for (i, (_, g)) in groups.iter().enumerate() {
            if i > 0 {
                x = x.t("; ");
            }
            x = x.t(format!("{} ", g.len())).extend(verdict_clause(g[0], report));
        }
        x
    })
}

/// The headline of a destination that got a SYN flood (it replaces the verdict headline:
/// the flood's attempts were not refused one by one).
pub(crate) fn flood_headline(f: &Flood) -> Rich {
    t("a SYN flood on ").c(f.server).t(format!(
        ": {} from about {} source addresses, {} unanswered",
        plural(f.attempts, "attempt", "attempts"),
        f.estimated_sources,
        f.no_answer
    ))
}

/// Where the capture was taken, as far as the TTLs tell.
pub(crate) fn vantage(report: &Report) -> Rich {
    let mut server_side = 0u64;
    let mut away: BTreeMap<u8, u64> = BTreeMap::new();
    let mut answers_away: BTreeMap<u8, u64> = BTreeMap::new();
    let mut loopback = false;
    for a in &report.attempts {
        if a.client.ip == a.server.ip || a.server.ip.is_loopback() {
            loopback = true;
        }
        for p in &a.packets {
            let h = hops(p.ttl);
            if p.sender == a.server.ip && matches!(p.kind, Role::SynAck | Role::ServerOther) {
                match h {
                    0 => server_side += 1,
                    h => *away.entry(h).or_insert(0) += 1,
                }
            } else if p.kind.is_answer() && h > 0 {
                *answers_away.entry(h).or_insert(0) += 1;
            }
        }
    }
    let list = |m: &BTreeMap<u8, u64>| {
        let v: Vec<String> = m.keys().map(|h| h.to_string()).collect();
        let n = m.keys().next_back().copied().unwrap_or(0);
        format!(
            "{} {}",
            v.join(", "),
            if v.len() == 1 && n == 1 { "hop" } else { "hops" }
        )
    };
    if loopback {
        return t("on the host itself (loopback): client and server are the same machine");
    }
    match (server_side > 0, away.is_empty()) {
        (true, true) => t(
            "on the server side: the servers' packets still have their initial TTL, so this capture shows what the servers sent, not what reached the client",
        ),
        (false, false) => t(format!(
            "on the client side (or on the path): the servers' own packets arrive {} away",
            list(&away)
        )),
        (true, false) => t("mixed: some servers are local (initial TTL), others arrive through routers"),
        (false, true) if !answers_away.is_empty() => t(format!(
            "on the client side (or on the path): the answers arrive {} away",
            list(&answers_away)
        )),
        (false, true) => t("not known: no answer in the capture crossed a router, and no server answered for itself"),
    }
}

/// One row of an attempt's packet list (and one mark on its timeline).
#[derive(Clone, Debug)]
pub(crate) struct PacketRow {
    /// Milliseconds after the first SYN.
    pub t_ms: f64,
    /// Frame number in the capture file, when known.
    pub frame: Option<u64>,
    /// `SYN`, `SYN (retransmission)`, `RST+ACK`, `ICMP host unreachable`, ...
    pub what: String,
    /// The packet's role, None for the client's SYNs.
    pub role: Option<Role>,
    /// Who sent it.
    pub from: IpAddr,
    /// TTL as captured (not known for SYNs).
    pub ttl: Option<u8>,
    /// It decided the outcome.
    pub decisive: bool,
    /// The client's stack ignores it.
    pub ignored: bool,
    /// What the client did with it.
    pub note: String,
}

/// The SYNs and every packet of an attempt in time order.
pub(crate) fn packet_rows(r: &AttemptRecord) -> Vec<PacketRow> {
    let mut rows: Vec<PacketRow> = Vec::new();
    for (i, t) in r.syn_times_ms.iter().enumerate() {
        rows.push(PacketRow {
            t_ms: *t,
            frame: if i == 0 { r.syn_frame } else { None },
            what: if i == 0 {
                "SYN".into()
            } else {
                format!("SYN (retransmission {i})")
            },
            role: None,
            from: r.client.ip,
            ttl: None,
            decisive: false,
            ignored: false,
            note: "sent by the client".into(),
        });
    }
    let decisive_frame = r.answer.as_ref().map(|a| (a.frame, a.after_ms.to_bits()));
    for p in &r.packets {
        let decisive = decisive_frame == Some((p.frame, p.after_ms.to_bits()));
        let client = matches!(p.kind, Role::ClientAck | Role::ClientRst);
        let ignored = p.kind.is_answer() && !p.acceptable;
        let note = if decisive {
            match r.client_error {
                Some(e) => format!("decided the outcome: {e}"),
                None => "decided the outcome: connected".into(),
            }
        } else if client {
            "sent by the client".into()
        } else if p.kind == Role::ResetAfterHandshake {
            "reset the established connection".into()
        } else if ignored {
            "ignored by the client's stack".into()
        } else if p.late {
            "late: after the timeout".into()
        } else {
            "after the outcome was decided".into()
        };
        rows.push(PacketRow {
            t_ms: p.after_ms,
            frame: Some(p.frame),
            what: kind_name(p),
            role: Some(p.kind),
            from: p.sender,
            ttl: Some(p.ttl),
            decisive,
            ignored,
            note,
        });
    }
    rows.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    rows
}

/// The answer column of a destination table: kind, sender, TTL, delay; or the silence.
pub(crate) fn answer_cell(r: &AttemptRecord) -> Rich {
    match &r.answer {
        Some(a) => t(format!("{} from ", kind_name(a)))
            .c(a.sender)
            .t(format!(", TTL {}, +{}", a.ttl, ms(a.after_ms))),
        None => t(answered(r)),
    }
}

/// TTL with the hop count it implies: `63 (1 hop)`.
pub(crate) fn ttl_words(ttl: u8) -> String {
    format!("{ttl} ({}, from {})", hops_words(hops(ttl)), initial_ttl(ttl))
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn wildcard(ip: IpAddr, port: u16) -> String {
    if ip.is_ipv4() {
        format!("0.0.0.0:{port}")
    } else {
        format!("[::]:{port}")
    }
}

fn fw_cmds(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "iptables -S"
    } else {
        "ip6tables -S"
    }
}

/// Next steps that follow from the verdict and the evidence of one attempt.
pub(crate) fn next_steps(r: &AttemptRecord, report: &Report) -> Vec<Rich> {
    let ip = r.server.ip;
    let port = r.server.port;
    let pos = position(r, report);
    let refuser = refuser(r);
    let sender = refuser.map(|a| a.sender);
    let mut steps = Vec::new();
    let traceroute = |x: Rich| {
        x.c(format!(
            "traceroute{} -n -T -p {port} {ip}",
            if ip.is_ipv6() { " -6" } else { "" }
        ))
        .t(" (or ")
        .c(format!("mtr -n -T -P {port} {ip}"))
        .t(")")
    };
    match r.verdict {
        VerdictKind::Accepted => {}
        VerdictKind::ClosedPort => {
            let v6only = if ip.is_ipv6() {
                " (with net.ipv6.bindv6only=0 a wildcard IPv6 listener also takes IPv4, not the other way round)"
            } else {
                ""
            };
            steps.push(
                t("On the server, check that the service runs and listens on this address and family: ")
                    .c(format!("ss -ltnp 'sport = :{port}'"))
                    .t(". A listener on ")
                    .c(Endpoint { ip, port })
                    .t(" or ")
                    .c(wildcard(ip, port))
                    .t(format!(
                        " accepts this {} SYN; one on 127.0.0.1/::1 only, on another address, or on the other family only answers exactly like this{v6only}.",
                        family(ip)
                    )),
            );
            steps.push(
                t("If it does listen, the server's own firewall resets the connection (it looks the same on the wire): look for a TCP-reset reject rule: ")
                    .c("nft list ruleset | grep -n 'reject with tcp reset'")
                    .t(", ")
                    .c(format!("{} | grep -- '--reject-with tcp-reset'", fw_cmds(ip)))
                    .t("."),
            );
            if has(r, "no_baseline") {
                steps.push(
                    t("This capture has no packet of ")
                        .c(ip)
                        .t(" speaking for itself, so a firewall on the path forging the RST is not ruled out: capture while connecting to a port that works (e.g. ")
                        .c(format!("nc -vz {ip} 22"))
                        .t(") and run synrst again: it compares the RST's TTL with the server's."),
                );
            }
        }
        VerdictKind::HostFirewall => {
            let (ty, code) = refuser
                .map(|a| (a.icmp_type.unwrap_or(0), a.icmp_code.unwrap_or(0)))
                .unwrap_or((0, 0));
            let rule = match (ip.is_ipv6(), ty, code) {
                (false, 3, 3) | (true, 1, 4) => t("a REJECT rule with the default reply (iptables ")
                    .c("-j REJECT")
                    .t(", nftables ")
                    .c("reject")
                    .t(")"),
                (false, 3, 13) => t("a rule ")
                    .c("reject with icmp type admin-prohibited")
                    .t(" (iptables ")
                    .c("--reject-with icmp-admin-prohibited")
                    .t(")"),
                (false, 3, 10) => t("firewalld's default reject, or ").c("--reject-with icmp-host-prohibited"),
                (false, 3, 9) => t("a rule rejecting with ").c("icmp-net-prohibited"),
                (true, 1, 1) => t("a rule rejecting with ")
                    .c("icmp6-adm-prohibited")
                    .t(" (firewalld's IPv6 default)"),
                (_, _, _) => t("a REJECT rule"),
            };
            steps.push(
                t(format!(
                    "The server's own firewall rejects TCP port {port} from this client: look for "
                ))
                .extend(rule)
                .t(": ")
                .c("nft list ruleset | grep -n reject")
                .t(", ")
                .c(format!("{} INPUT | grep REJECT", fw_cmds(ip)))
                .t(", ")
                .c("firewall-cmd --list-all")
                .t("."),
            );
            steps.push(t(format!(
                "Allow the client's address (or its network) to TCP port {port}, or fix the rule's match, then retry while capturing."
            )));
        }
        VerdictKind::PathFirewall => {
            if has(r, "rst_then_synack") {
                let syn_ack_at = r
                    .packets
                    .iter()
                    .find(|p| p.kind == Role::SynAck)
                    .map(|p| ms(p.after_ms))
                    .unwrap_or_default();
                steps.push(
                    t(format!(
                        "The server itself answered (SYN-ACK at +{syn_ack_at}): the port is open and reachable. A device on the path injects RSTs without dropping the SYN: an IPS, a DPI box, or a firewall with a "
                    ))
                    .c("reset-client")
                    .t(" or ")
                    .c("reset-both")
                    .t(" action (Suricata ")
                    .c("reject")
                    .t(", Snort ")
                    .c("resp")
                    .t(")."),
                );
            }
            // `synrst probe` already located the device with TTL-limited SYNs: say where.
            let located = report
                .probe
                .as_ref()
                .and_then(|p| p.locate.as_ref())
                .filter(|l| l.device == crate::probe::LocateDevice::Path);
            if let Some(l) = located {
                let mut x = t(format!("The probe located the device that answers: hop {}", l.hop));
                if let Some(a) = l.address {
                    x = x.t(" (").c(a).t(")");
                }
                if let Some(h) = l.host_hop {
                    x = x.t(format!("; the server is hop {h}"));
                }
                x = x.t(format!(". Look at that device's rules for TCP port {port}."));
                if !l.agree {
                    x = x.t(" The answer's own TTL disagrees with the hop that the TTL-limited SYNs found (TTL mirroring?): see the probe's notes.");
                }
                steps.push(x);
            } else if let Some(p) = where_on_path(&pos) {
                let mut x = t("Find the device ");
                if let Some(s) = sender.filter(|s| *s != ip) {
                    x = x.t("(").c(s).t(") ");
                }
                x = x.t(format!("{p}: list the hops with "));
                x = traceroute(x);
                // A sender k routers away is traceroute's hop k+1, or a transparent device
                // just before it.
                let suspect = pos.refuser_hops.unwrap_or(0) + 1;
                x = x.t(format!(
                    " from the capture point: the suspect is traceroute's hop {suspect}, or a transparent (bridging) device just before it."
                ));
                if refuser.is_some_and(|a| a.kind == Role::Rst) {
                    x = x.t(" Injectors may forge the TTL, so take the hop number as a strong hint, not proof.");
                }
                steps.push(x);
            } else if let Some(s) = sender {
                steps.push(
                    t("Find the device ")
                        .c(s)
                        .t(" on the path: ")
                        .extend(traceroute(Rich::new()))
                        .t("."),
                );
            }
            if refuser.is_some_and(|a| matches!(a.kind, Role::IcmpUnreachable | Role::IcmpTimeExceeded)) {
                let name = refuser.map(icmp_label).unwrap_or_default();
                let mut x = t(format!(
                    "On that device, look for the rule that answers {name} for TCP port {port} to "
                ))
                .c(ip)
                .t(" (ACL, security policy; on Linux ")
                .c("nft list ruleset | grep -n reject")
                .t(" or ")
                .c(format!("{} FORWARD", fw_cmds(ip)))
                .t(")");
                if name.contains("host unreachable") {
                    x = x
                        .t(", or a blackhole/unreachable route: ")
                        .c(format!("ip route get {ip}"));
                }
                steps.push(x.t("."));
            } else {
                steps.push(
                    t(format!(
                    "On that device, look for a firewall, load balancer or proxy rule that resets TCP port {port} to "
                ))
                    .c(ip)
                    .t("."),
                );
            }
        }
        VerdictKind::HostUnreachable => {
            let waited = refuser.map(|a| ms(a.after_ms)).unwrap_or_default();
            let mut x = t("The last router");
            if let Some(s) = sender {
                x = x.t(" ").c(s);
            }
            steps.push(
                x.t(format!(" gave up after {waited} of ARP/ND: check that "))
                    .c(ip)
                    .t(" is up and has this address (")
                    .c("ip addr")
                    .t(" on it), its cable/VLAN/switch port, and the router's neighbour entry: ")
                    .c(format!("ip neigh show {ip}"))
                    .t(" (FAILED or INCOMPLETE confirms)."),
            );
            steps.push(t(
                "If the address is wrong (a stale DNS record, a moved service), fix the client's target instead.",
            ));
        }
        VerdictKind::NetUnreachable => {
            let exceeded = refuser.is_some_and(|a| a.kind == Role::IcmpTimeExceeded);
            let mut x = if exceeded {
                t("The SYN's TTL ran out at ")
            } else {
                t("The router ")
            };
            if let Some(s) = sender {
                x = x.c(s);
            } else {
                x = x.t("on the path");
            }
            if exceeded {
                steps.push(
                    x.t(": look for a routing loop (repeating hops in ")
                        .c(format!("traceroute -n {ip}"))
                        .t(") or a client TTL too small for the path."),
                );
            } else {
                steps.push(
                    x.t(" has no route to ")
                        .c(ip)
                        .t(": on it, ")
                        .c(format!("ip route get {ip}"))
                        .t("; check the routing table and the announcements (BGP/OSPF, static routes) for that prefix."),
                );
            }
        }
        VerdictKind::FilteredOrDown => {
            if let Some(e) = evidence(r, "host_alive") {
                steps.push(
                    t("The host is up (")
                        .t(e.observed.clone())
                        .t(format!(
                            "), so something drops SYNs to port {port}. Capture on the server: "
                        ))
                        .c(format!(
                            "tcpdump -ni any 'tcp port {port} and tcp[tcpflags] & tcp-syn != 0'"
                        ))
                        .t(". If the SYNs arrive, its own firewall drops them (")
                        .c("nft list ruleset | grep -n drop")
                        .t(", ")
                        .c(format!("{} | grep DROP", fw_cmds(ip)))
                        .t(", cloud security groups); if they do not, a device on the path drops them: ")
                        .extend(traceroute(Rich::new()))
                        .t("."),
                );
            } else {
                steps.push(
                    t("Tell a drop from a dead host: while capturing, ")
                        .c(format!("ping -c 3 {ip}"))
                        .t(" and try a port that should be open (")
                        .c(format!("nc -vz {ip} 22"))
                        .t("). Any answer means the host is up and a filter drops port ")
                        .t(format!("{port}; none at all, with "))
                        .c(format!("ip neigh show {ip}"))
                        .t(" FAILED on the last router, means the host is down."),
                );
                steps.push(
                    t("A capture on the server settles it: SYNs that arrive and get no answer point to the host's own firewall (DROP rule); SYNs that never arrive point to the path (")
                        .extend(traceroute(Rich::new()))
                        .t(")."),
                );
            }
            if has(r, "ignored_answers") {
                steps.push(t("The client ignored answers with wrong sequence numbers (see the packets): a middlebox on the path interferes; compare with a capture on the server side."));
            }
            if r.syns <= 1 {
                steps.push(t(
                    "Only one SYN was captured: capture longer (a Linux client retries for about 127 s) to see the retransmissions.",
                ));
            }
        }
        VerdictKind::Unknown => {
            steps.push(t("Capture at both ends at the same time: the server-side capture shows whether the server sent this answer.").t(" Then run synrst on both captures."));
        }
    }
    steps
}

/// The "what the client saw" line.
pub(crate) fn client_saw(r: &AttemptRecord) -> Rich {
    match (r.client_error, r.browser_error) {
        (Some(e), Some(b)) => Rich::new()
            .c(e)
            .t(" from connect() (")
            .t(errno_words(e))
            .t("); a Chromium-based browser shows ")
            .c(b),
        (Some(e), None) => Rich::new().c(e).t(" from connect()"),
        _ => t("a connection"),
    }
}

fn errno_words(e: &str) -> &'static str {
    match e {
        "ECONNREFUSED" => "\"Connection refused\"",
        "EHOSTUNREACH" => "\"No route to host\"",
        "ENETUNREACH" => "\"Network is unreachable\"",
        "EACCES" => "\"Permission denied\"",
        "ETIMEDOUT" => "\"Connection timed out\", after the client's retries",
        _ => "an error",
    }
}

/// Attempts grouped per destination (report order of `summary.destinations`).
pub(crate) fn by_destination(report: &Report) -> Vec<(&Destination, Vec<&AttemptRecord>)> {
    report
        .summary
        .destinations
        .iter()
        .map(|d| (d, report.attempts.iter().filter(|a| a.server == d.server).collect()))
        .collect()
}

/// The failing attempts of a destination to show in detail, and the ids of the others.
pub(crate) fn detailed<'a>(attempts: &[&'a AttemptRecord]) -> (Vec<&'a AttemptRecord>, Vec<u64>) {
    let mut shown = Vec::new();
    let mut rest = Vec::new();
    let mut per_verdict: BTreeMap<VerdictKind, usize> = BTreeMap::new();
    for a in attempts.iter().filter(|a| worth_detail(a)) {
        let n = per_verdict.entry(a.verdict).or_insert(0);
        *n += 1;
        if *n <= DETAIL_PER_GROUP {
            shown.push(*a);
        } else {
            rest.push(a.id);
        }
    }
    (shown, rest)
}

/// Failed attempts, and accepted ones with evidence (a forged RST the client ignored).
pub(crate) fn worth_detail(a: &AttemptRecord) -> bool {
    a.outcome != Outcome::Accepted || !a.evidence.is_empty()
}

/// Scope facts in plain words: destinations, clients, vantage point, time span.
pub(crate) fn scope(report: &Report) -> Vec<Rich> {
    let mut lines = Vec::new();
    let dests = &report.summary.destinations;
    let mut clients: Vec<IpAddr> = report.attempts.iter().map(|a| a.client.ip).collect();
    clients.sort();
    clients.dedup();
    let failing = dests.iter().filter(|d| d.accepted < d.attempts).count();
    let dest_line = match dests.len() {
        0 => t("no TCP connection attempt in the capture"),
        1 => t("one destination, ").c(dests[0].server),
        n => t(format!("{n} destinations, {failing} of them failing")),
    };
    let client_line = match clients.len() {
        0 => Rich::new(),
        1 => t(", one client, ").c(clients[0]),
        n => t(format!(", {n} clients")),
    };
    lines.push(
        Rich::new()
            .b("Scope:")
            .t(" ")
            .extend(dest_line)
            .extend(client_line)
            .t("."),
    );
    if !report.attempts.is_empty() {
        lines.push(Rich::new().b("Capture point:").t(" ").extend(vantage(report)).t("."));
    }
    let c = &report.capture;
    let files: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
    let mut x = Rich::new()
        .b(if files.len() == 1 {
            "Capture file:"
        } else {
            "Capture files:"
        })
        .t(" ");
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            x = x.t(", ");
        }
        x = x.c(f);
    }
    if let (Some(a), Some(b)) = (&c.first_packet, &c.last_packet) {
        x = x.t(format!(
            ", {} {} to {} UTC",
            a.get(..10).unwrap_or(a),
            time_of(a),
            time_of(b)
        ));
    }
    lines.push(x.t("."));
    lines
}

/// What the top of a report says, shared by the Markdown and HTML writers.
pub(crate) struct Overview<'a> {
    /// Attempts, listed or not.
    pub total: u64,
    /// Of which not accepted.
    pub failed: u64,
    /// Attempts per destination, in report order.
    pub groups: Vec<(&'a Destination, Vec<&'a AttemptRecord>)>,
    /// One headline per failing destination (a SYN flood is named as one).
    pub headlines: Vec<Rich>,
}

impl<'a> Overview<'a> {
    pub(crate) fn of(report: &'a Report) -> Overview<'a> {
        let groups = by_destination(report);
        let headlines = groups
            .iter()
            .filter_map(
                |(d, a)| match report.summary.floods.iter().find(|f| f.server == d.server) {
                    Some(f) => Some(flood_headline(f)),
                    None => destination_headline(d, a, report),
                },
            )
            .collect();
        // From the summary: it counts the attempts beyond the listing cap too.
        let total = report.summary.attempts.max(report.attempts.len() as u64);
        let accepted = report
            .summary
            .by_outcome
            .get(Outcome::Accepted.name())
            .copied()
            .unwrap_or(0);
        let listed_failed = report
            .attempts
            .iter()
            .filter(|r| r.outcome != Outcome::Accepted)
            .count() as u64;
        Overview {
            total,
            failed: total.saturating_sub(accepted).max(listed_failed),
            groups,
            headlines,
        }
    }
}

/// Writes the Markdown report.
pub fn write_markdown(report: &Report, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    let Overview {
        total,
        failed,
        groups,
        headlines,
    } = Overview::of(report);

    // Headline.
    match headlines.len() {
        0 if total == 0 => writeln!(out, "## synrst: no TCP connection attempts in the capture\n")?,
        0 if failed == 0 => writeln!(
            out,
            "## synrst: all {} accepted\n",
            plural(total, "connection attempt was", "connection attempts were")
        )?,
        1 => writeln!(out, "## synrst: {}\n", headlines[0].md(false))?,
        // Several failing destinations, or failures among the unlisted attempts only.
        _ => {
            writeln!(out, "## synrst: {failed} of {total} connection attempts failed\n")?;
            for h in &headlines {
                writeln!(out, "- {}", h.md(false))?;
            }
            writeln!(out)?;
        }
    }
    for line in scope(report) {
        writeln!(out, "{}  ", line.md(false))?;
    }
    writeln!(out)?;
    if !report.summary.hints.is_empty() {
        writeln!(out, "**Across the capture:**\n")?;
        for h in &report.summary.hints {
            writeln!(out, "- {}", md(h))?;
        }
        writeln!(out)?;
    }

    if groups.len() > 1 {
        writeln!(out, "### Destinations\n")?;
        writeln!(
            out,
            "| server | attempts | accepted | refused | unreachable | no answer | who refused |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---|")?;
        for (d, _) in &groups {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                code(&d.server.to_string(), true),
                d.attempts,
                d.accepted,
                d.refused,
                d.unreachable,
                d.no_answer,
                d.verdict.unwrap_or("-")
            )?;
        }
        writeln!(out)?;
    }

    for (d, attempts) in &groups {
        let failing = d.attempts - d.accepted;
        if !opts.all && !attempts.iter().any(|a| worth_detail(a)) {
            continue;
        }
        writeln!(
            out,
            "### {} — {} of {} failed\n",
            code(&d.server.to_string(), false),
            failing,
            plural(d.attempts, "attempt", "attempts")
        )?;
        let rows: Vec<&&AttemptRecord> = attempts.iter().filter(|a| opts.all || worth_detail(a)).collect();
        writeln!(
            out,
            "| # | first SYN (UTC) | client | SYNs | answer | who refused | the client saw |"
        )?;
        writeln!(out, "|---:|---|---|---:|---|---|---|")?;
        for a in rows.iter().take(ROWS_PER_DESTINATION) {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} ({}) | {} |",
                a.id,
                md(&time_of(&a.first_syn)),
                code(&a.client.to_string(), true),
                a.syns,
                answer_cell(a).md(true),
                a.verdict.name(),
                a.confidence.name(),
                a.client_error.map(|e| code(e, true)).unwrap_or_else(|| "-".into())
            )?;
        }
        writeln!(out)?;
        if rows.len() > ROWS_PER_DESTINATION {
            writeln!(
                out,
                "… and {} more (`--format json` lists every attempt).\n",
                rows.len() - ROWS_PER_DESTINATION
            )?;
        }
        if !opts.all && d.accepted > 0 {
            writeln!(
                out,
                "{} to this destination not listed (`--all` lists them).\n",
                plural(d.accepted, "accepted attempt", "accepted attempts")
            )?;
        }
        let (shown, rest) = detailed(attempts);
        for a in shown {
            write_attempt(a, report, out)?;
        }
        if !rest.is_empty() {
            let ids: Vec<String> = rest.iter().take(30).map(|i| format!("#{i}")).collect();
            writeln!(
                out,
                "Attempts {}{} have the same verdicts as those above; `--format json` has their packets.\n",
                ids.join(", "),
                if rest.len() > 30 { ", …" } else { "" }
            )?;
        }
    }

    // Footer.
    let c = &report.capture;
    let skipped: u64 = c.skipped.values().sum();
    let mut foot = format!(
        "synrst {} · {} frames read, {} decoded, {} skipped",
        md(report.tool.version),
        c.frames,
        c.decoded,
        skipped
    );
    if !c.skipped.is_empty() {
        let s: Vec<String> = c.skipped.iter().map(|(k, v)| format!("{} {v}", md(k))).collect();
        foot.push_str(&format!(" ({})", s.join(", ")));
    }
    if !c.anomalies.0.is_empty() {
        let s: Vec<String> = c.anomalies.0.iter().map(|(k, v)| format!("{} {v}", md(k))).collect();
        foot.push_str(&format!(" · anomalies: {}", s.join(", ")));
    }
    writeln!(out, "---\n\n{foot}")?;
    for w in &c.warnings {
        writeln!(
            out,
            "\n> **Warning:** {}{}",
            code(&w.file, false),
            match w.offset {
                Some(o) => format!(" at byte {o}: {}", md(&w.message)),
                None => format!(": {}", md(&w.message)),
            }
        )?;
    }
    Ok(())
}

fn write_attempt(a: &AttemptRecord, report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "#### Attempt #{}: {} → {}\n",
        a.id,
        code(&a.client.to_string(), false),
        code(&a.server.to_string(), false)
    )?;
    let clause = verdict_clause(a, report);
    writeln!(
        out,
        "**Verdict:** `{}` ({} confidence): {}.  ",
        a.verdict.name(),
        a.confidence.name(),
        clause.md(false)
    )?;
    writeln!(out, "**Why:** {}.  ", md(a.explanation.trim_end_matches('.')))?;
    if a.outcome != Outcome::Accepted {
        writeln!(out, "**The client saw:** {}.  ", client_saw(a).md(false))?;
    }
    writeln!(
        out,
        "**First SYN:** {} in {}{}.\n",
        md(&a.first_syn),
        code(&a.file, false),
        if a.syn_seen {
            String::new()
        } else {
            " (the SYN itself is not in the capture: known from an ICMP quote)".into()
        }
    )?;
    writeln!(out, "| time | frame | packet | from | TTL | the client |")?;
    writeln!(out, "|---:|---:|---|---|---|---|")?;
    for p in packet_rows(a) {
        let note = if p.decisive {
            format!("**{}**", md(&p.note))
        } else {
            md(&p.note)
        };
        writeln!(
            out,
            "| +{} | {} | {} | {} | {} | {} |",
            md(&ms(p.t_ms)),
            p.frame.map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
            md(&p.what),
            code(&p.from.to_string(), true),
            p.ttl.map(|t| md(&ttl_words(t))).unwrap_or_else(|| "-".into()),
            note
        )?;
    }
    writeln!(out)?;
    if !a.evidence.is_empty() {
        writeln!(out, "**Evidence:**\n")?;
        for e in &a.evidence {
            match &e.baseline {
                Some(b) => writeln!(
                    out,
                    "- `{}`: {} (compared with: {}): {}.",
                    e.signal,
                    md(&e.observed),
                    md(b),
                    md(e.meaning.trim_end_matches('.'))
                )?,
                None => writeln!(
                    out,
                    "- `{}`: {}: {}.",
                    e.signal,
                    md(&e.observed),
                    md(e.meaning.trim_end_matches('.'))
                )?,
            }
        }
        writeln!(out)?;
    }
    let steps = next_steps(a, report);
    if !steps.is_empty() {
        writeln!(out, "**Next steps:**\n")?;
        for (i, s) in steps.iter().enumerate() {
            writeln!(out, "{}. {}", i + 1, s.md(false))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_links_images_html() {
        assert_eq!(md("[x](http://a)"), "\\[x\\]\\(http\\://a\\)");
        assert_eq!(
            md("mailto:a xmpp:b :smile: 08:07 a: b"),
            "mailto\\:a xmpp\\:b \\:smile: 08:07 a: b"
        );
        assert_eq!(md("<img src=x>"), "&lt;img src=x&gt;");
        assert_eq!(md("a|b"), "a\\|b");
        assert_eq!(md("![i](x)"), "\\!\\[i\\]\\(x\\)");
        assert_eq!(md("www.evil.example"), "www\\.evil.example");
        assert_eq!(md("u@evil.example"), "u&#8203;@evil.example");
        assert_eq!(
            md("*a* _b_ ~~c~~ $x$ `d`"),
            "\\*a\\* \\_b\\_ \\~\\~c\\~\\~ \\$x\\$ \\`d\\`"
        );
        assert_eq!(md("line\nbreak"), "line\\\\u\\{a\\}break");
        assert_eq!(md("\x1b[31m"), "\\\\u\\{1b\\}\\[31m");
    }

    #[test]
    fn code_spans_hold_anything() {
        assert_eq!(code("198.19.0.10:443", false), "`198.19.0.10:443`");
        assert_eq!(code("a`b", false), "``a`b``");
        assert_eq!(code("`x", false), "`` `x ``");
        assert_eq!(code("a|b", true), "`a\\|b`");
        assert_eq!(code("a\nb", false), "`a\\u{a}b`");
        assert_eq!(code("<b>x</b>", false), "&lt;b&gt;x&lt;/b&gt;");
    }

    #[test]
    fn times_of_day_have_milliseconds() {
        assert_eq!(time_of("2026-11-25T08:07:50.751282Z"), "08:07:50.751");
        assert_eq!(time_of("1970-01-01T00:00:01Z"), "00:00:01.000");
        assert_eq!(time_of("1970-01-01T00:00:27.51Z"), "00:00:27.510");
        assert_eq!(time_of("@-5ns"), "@-5ns");
    }

    #[test]
    fn hop_counts_parse_from_baselines() {
        assert_eq!(parse_hops("3 hops (TTL 61 from initial 64)"), Some((3, 3)));
        assert_eq!(parse_hops("2-4 hops"), Some((2, 4)));
        assert_eq!(
            parse_hops("destination 198.19.0.10, 3 hops (TTL 61 from initial 64)"),
            Some((3, 3))
        );
        assert_eq!(parse_hops("destination 198.19.0.10"), None);
    }
}
