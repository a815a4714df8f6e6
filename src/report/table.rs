//! The default human-readable output: attempts, destinations, capture statistics.

use std::io::{self, Write};

use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Modify, Style, Width};

use super::{escape, Options};
use crate::model::{AnswerRecord, AttemptRecord, Report};
use crate::track::{Outcome, Role};

/// Short description of an answer: `RST 198.19.0.10 ttl 61 +0.4ms`.
pub(crate) fn answer_brief(a: &AnswerRecord) -> String {
    let kind = match a.kind {
        Role::SynAck => "SYN-ACK".to_string(),
        Role::Rst => "RST".to_string(),
        Role::IcmpUnreachable | Role::IcmpTimeExceeded => {
            format!(
                "ICMP{} {}/{}",
                if a.sender.is_ipv6() { "v6" } else { "" },
                a.icmp_type.unwrap_or(0),
                a.icmp_code.unwrap_or(0)
            )
        }
        Role::ServerOther => "segment".to_string(),
        Role::ClientAck => "ACK".to_string(),
        Role::ClientRst => "client RST".to_string(),
        Role::ResetAfterHandshake => "RST after handshake".to_string(),
    };
    format!("{kind} from {} ttl {} +{}", a.sender, a.ttl, ms(a.after_ms))
}

/// Milliseconds, short.
pub(crate) fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else {
        format!("{v:.1}ms")
    }
}

fn time_of(rfc3339: &str) -> &str {
    // "2026-11-25T07:53:38.123456789Z" → "07:53:38.123"
    rfc3339.get(11..23).unwrap_or(rfc3339)
}

/// What answered, for the table: the deciding answer, or a note about silence.
pub(crate) fn answered(r: &AttemptRecord) -> String {
    match (&r.answer, r.outcome) {
        (Some(a), _) => answer_brief(a),
        (None, Outcome::NoAnswer) => {
            let ignored = r
                .packets
                .iter()
                .filter(|p| !p.acceptable && p.kind != Role::ClientAck && p.kind != Role::ClientRst)
                .count();
            let waited = r.waited_ms.map(ms).unwrap_or_default();
            if ignored > 0 {
                format!("nothing acceptable in {waited} ({ignored} ignored)")
            } else {
                format!("nothing in {waited}")
            }
        }
        (None, _) => String::new(),
    }
}

/// Writes the table report.
pub fn write_table(report: &Report, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    let shown: Vec<&AttemptRecord> = report
        .attempts
        .iter()
        .filter(|r| opts.all || r.outcome != Outcome::Accepted)
        .collect();
    let total = report.attempts.len();
    if opts.all {
        writeln!(out, "Attempts ({total}):")?;
    } else {
        writeln!(
            out,
            "Attempts not accepted: {} of {total}{}",
            shown.len(),
            if total > shown.len() {
                " (--all lists every attempt)"
            } else {
                ""
            }
        )?;
    }
    if !shown.is_empty() {
        let mut b = Builder::default();
        b.push_record([
            "#",
            "first SYN (UTC)",
            "client",
            "server",
            "SYNs",
            "outcome",
            "answer",
            "verdict",
            "client saw",
            "why",
        ]);
        for r in &shown {
            b.push_record([
                r.id.to_string(),
                time_of(&r.first_syn).to_string(),
                r.client.to_string(),
                r.server.to_string(),
                r.syns.to_string(),
                r.outcome.name().to_string(),
                answered(r),
                format!("{} ({})", r.verdict.name(), r.confidence.name()),
                r.client_error.unwrap_or("-").to_string(),
                escape(&r.explanation),
            ]);
        }
        let mut t = b.build();
        t.with(Style::sharp())
            .with(Modify::new(Columns::new(9..10)).with(Width::wrap(48).keep_words(true)));
        writeln!(out, "{t}")?;
    }

    if !report.summary.destinations.is_empty() {
        writeln!(out, "\nDestinations:")?;
        let mut b = Builder::default();
        b.push_record([
            "server",
            "attempts",
            "accepted",
            "refused",
            "unreachable",
            "no-answer",
            "verdict",
        ]);
        for d in &report.summary.destinations {
            b.push_record([
                d.server.to_string(),
                d.attempts.to_string(),
                d.accepted.to_string(),
                d.refused.to_string(),
                d.unreachable.to_string(),
                d.no_answer.to_string(),
                d.verdict.unwrap_or("-").to_string(),
            ]);
        }
        let mut t = b.build();
        t.with(Style::sharp());
        writeln!(out, "{t}")?;
    }
    for f in &report.summary.floods {
        writeln!(
            out,
            "SYN flood: {}: {} attempts from about {} source addresses, {} unanswered",
            f.server, f.attempts, f.estimated_sources, f.no_answer
        )?;
    }
    for h in &report.summary.hints {
        writeln!(out, "hint: {}", escape(h))?;
    }

    let c = &report.capture;
    writeln!(out, "\nCapture:")?;
    for f in &c.files {
        let links: Vec<String> = f
            .link_types
            .iter()
            .map(|(l, n)| format!("{} ({l}) ×{n}", crate::capture::LinkType(*l).name()))
            .collect();
        writeln!(
            out,
            "  {}: {}{}, {} frames, link types: {}",
            escape(&f.path),
            match f.format {
                crate::capture::Format::Pcap => "pcap",
                crate::capture::Format::PcapNs => "pcap (ns)",
                crate::capture::Format::Pcapng => "pcapng",
                crate::capture::Format::Live => "live capture",
            },
            if f.gzip { " (gzip)" } else { "" },
            f.frames,
            if links.is_empty() {
                "-".to_string()
            } else {
                links.join(", ")
            }
        )?;
    }
    if let (Some(a), Some(b)) = (&c.first_packet, &c.last_packet) {
        writeln!(out, "  time: {a} .. {b}")?;
    }
    writeln!(
        out,
        "  frames: {} read, {} decoded (TCP or ICMP errors), {} skipped",
        c.frames,
        c.decoded,
        c.skipped.values().sum::<u64>()
    )?;
    if !c.skipped.is_empty() {
        let s: Vec<String> = c.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "  skipped: {}", s.join(", "))?;
    }
    if c.unmatched_rst + c.unmatched_icmp + c.attempts_evicted > 0 {
        writeln!(
            out,
            "  unmatched: {} RST, {} ICMP (no SYN for them in the capture); evicted attempts: {}",
            c.unmatched_rst, c.unmatched_icmp, c.attempts_evicted
        )?;
    }
    if !c.anomalies.0.is_empty() {
        let s: Vec<String> = c.anomalies.0.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "  anomalies: {}", s.join(", "))?;
    }
    for w in &c.warnings {
        match w.offset {
            Some(o) => writeln!(
                out,
                "  warning: {} at byte {o}: {}",
                escape(&w.file),
                escape(&w.message)
            )?,
            None => writeln!(out, "  warning: {}: {}", escape(&w.file), escape(&w.message))?,
        }
    }
    Ok(())
}
