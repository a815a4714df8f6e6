//! The probe section that follows the report in table and Markdown output (JSON carries the
//! same facts under `probe`; NDJSON writes them as one `{"type":"probe",…}` line; the HTML
//! page has it as a section of its own, from the helpers here).
//!
//! Contract: writes only what [`ProbeSummary`] holds. Every string is escaped for where it goes
//! (process names come from procfs and are chosen by whoever started the process).

use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;

use super::{LocateDevice, ProbeMode, ProbeSummary, ReplyKind};
use crate::report::{escape, ms};

fn opt<T: ToString>(x: Option<T>) -> String {
    x.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn reply_cell(h: &super::HopRecord) -> String {
    match (h.reply, h.icmp_type, h.icmp_code) {
        (ReplyKind::TimeExceeded | ReplyKind::IcmpUnreachable, Some(t), Some(c)) => {
            format!("{} ({t}/{c})", h.reply.words())
        }
        (r, ..) => r.words().to_string(),
    }
}

/// A trace row's cells as every format shows them: the SYN's TTL, the answer, who sent it, the
/// answer's TTL, and after how long (`-` where nothing answered).
pub(crate) fn hop_cells(h: &super::HopRecord) -> [String; 5] {
    [
        h.ttl.to_string(),
        reply_cell(h),
        opt(h.from),
        opt(h.reply_ttl),
        h.rtt_ms.map(ms).unwrap_or_else(|| "-".into()),
    ]
}

/// The located device in one line.
pub fn located_line(p: &ProbeSummary) -> Option<String> {
    let l = p.locate.as_ref()?;
    let addr = l
        .address
        .map(|a| format!(" ({a})"))
        .unwrap_or_else(|| " (no address of its own)".into());
    let host = l
        .host_hop
        .map(|h| format!("; the server is hop {h}"))
        .unwrap_or_default();
    let range = if l.hop_range[0] != l.hop_range[1] {
        format!(" (between hops {} and {})", l.hop_range[0], l.hop_range[1])
    } else {
        String::new()
    };
    Some(match l.device {
        LocateDevice::Host => format!(
            "the server itself, hop {}{addr}, answers {}{host}",
            l.hop,
            l.answer.words()
        ),
        LocateDevice::Path => format!(
            "hop {}{addr}{range}, a device on the path, answers {}{host}",
            l.hop,
            l.answer.words()
        ),
        LocateDevice::LastResponding => format!(
            "no answer; the SYNs pass hop {}{addr} and are lost there or just after it{host}",
            l.hop
        ),
        LocateDevice::Unknown => format!("hop {}{addr}{range} answers {}{host}", l.hop, l.answer.words()),
    })
}

/// The probe section for the table format.
pub fn write_table(p: &ProbeSummary, out: &mut dyn Write) -> io::Result<()> {
    let mut s = String::new();
    let addrs: Vec<String> = p.addresses.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(
        s,
        "\nProbe: {} ({}; {}{}, {} packet(s) sent, {})",
        escape(&p.target),
        addrs.join(", "),
        match p.mode {
            ProbeMode::Remote => "raw SYNs",
            ProbeMode::Local => "local connect() and procfs",
        },
        p.source.map(|s| format!(" from {s}")).unwrap_or_default(),
        p.packets_sent,
        ms(p.duration_ms)
    );
    if !p.trace.is_empty() {
        let _ = writeln!(
            s,
            "  SYN TTL  answer                    from                        TTL    after"
        );
        for h in &p.trace {
            let [ttl, answer, from, reply_ttl, after] = hop_cells(h);
            let _ = writeln!(s, "  {ttl:>7}  {answer:<24}  {from:<26}  {reply_ttl:>3}  {after:>7}");
        }
    }
    if let Some(l) = located_line(p) {
        let _ = writeln!(s, "Located: {l}");
    }
    if let Some(local) = &p.local {
        if local.listeners.is_empty() {
            let _ = writeln!(s, "Listening on port {}: nothing", p.port);
        } else {
            let _ = writeln!(s, "Listening on port {}:", p.port);
            for l in &local.listeners {
                let _ = writeln!(
                    s,
                    "  {:<28} {}{}",
                    l.endpoint(),
                    l.who(),
                    if l.accept_queue > 0 {
                        format!(", {} connection(s) waiting to be accept()ed", l.accept_queue)
                    } else {
                        String::new()
                    }
                );
            }
        }
        for t in &local.tried {
            let _ = writeln!(
                s,
                "  connect {:<28} {} ({})",
                t.address,
                escape(&t.result),
                ms(t.elapsed_ms)
            );
        }
    }
    if !p.notes.is_empty() {
        let _ = writeln!(s, "Notes:");
        for n in &p.notes {
            let _ = writeln!(s, "  - {}", escape(n));
        }
    }
    out.write_all(s.as_bytes())
}

/// Markdown text: the characters that make emphasis, code, links, images, HTML, tables or
/// headings are backslash-escaped (CommonMark), `@` is an entity (no e-mail autolinks), the
/// `:` of `scheme://` and the `.` of `www.` are escaped (no GFM autolinks), control characters
/// are shown as `\u{..}`. Addresses and numbers stay readable.
fn md(s: &str) -> String {
    let s = escape(s);
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let www = c == '.' && i >= 3 && chars[i - 3..i].iter().collect::<String>().eq_ignore_ascii_case("www");
        let scheme = c == ':' && chars.get(i + 1..i + 3) == Some(&['/', '/'][..]);
        match c {
            '@' => out.push_str("&#64;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '!' | '~' | '$' | '&' | '#' => {
                out.push('\\');
                out.push(c);
            }
            _ if www || scheme => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The probe section for the Markdown format.
pub fn write_markdown(p: &ProbeSummary, out: &mut dyn Write) -> io::Result<()> {
    let mut s = String::new();
    let _ = writeln!(s, "\n### Probe of {}\n", md(&p.target));
    let _ = writeln!(
        s,
        "{} {}{}: {} packet(s) sent in {}.\n",
        match p.mode {
            ProbeMode::Remote => "Raw SYNs to",
            ProbeMode::Local => "connect() to",
        },
        md(&p.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")),
        p.source
            .map(|s| format!(" from {}", md(&s.to_string())))
            .unwrap_or_default(),
        p.packets_sent,
        md(&ms(p.duration_ms))
    );
    if let Some(l) = located_line(p) {
        let _ = writeln!(s, "**Located:** {}.\n", md(&l));
    }
    if !p.trace.is_empty() {
        let _ = writeln!(s, "| SYN TTL | answer | from | TTL | after |");
        let _ = writeln!(s, "|---:|---|---|---:|---:|");
        for h in &p.trace {
            let [ttl, answer, from, reply_ttl, after] = hop_cells(h).map(|c| md(&c));
            let _ = writeln!(s, "| {ttl} | {answer} | {from} | {reply_ttl} | {after} |");
        }
        let _ = writeln!(s);
    }
    if let Some(local) = &p.local {
        let _ = writeln!(s, "| listening on | process |");
        let _ = writeln!(s, "|---|---|");
        for l in &local.listeners {
            let _ = writeln!(s, "| {} | {} |", md(&l.endpoint()), md(&l.who()));
        }
        if local.listeners.is_empty() {
            let _ = writeln!(s, "| nothing on port {} | - |", p.port);
        }
        let _ = writeln!(s);
    }
    if !p.notes.is_empty() {
        let _ = writeln!(s, "**Notes:**\n");
        for n in &p.notes {
            let _ = writeln!(s, "- {}", md(n));
        }
    }
    out.write_all(s.as_bytes())
}

/// The NDJSON line: `{"type":"probe", …}`.
pub fn write_ndjson(p: &ProbeSummary, out: &mut dyn Write) -> io::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(flatten)]
        probe: &'a ProbeSummary,
    }
    serde_json::to_writer(
        &mut *out,
        &Line {
            kind: "probe",
            probe: p,
        },
    )?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_link_or_inject() {
        assert_eq!(md("[x](http://a)"), "\\[x\\](http\\://a)");
        assert_eq!(md("<b>"), "\\<b\\>");
        assert_eq!(md("see www.evil.example"), "see www\\.evil.example");
        assert_eq!(md("hop 2 (198.18.2.2): `x` *y*"), "hop 2 (198.18.2.2): \\`x\\` \\*y\\*");
        assert_eq!(md("a|b"), "a\\|b");
        assert_eq!(md("a@b"), "a&#64;b");
        assert!(!md("\x1b[1m").contains('\x1b'));
    }
}
