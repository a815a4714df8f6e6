//! Markdown for incident tickets (GitHub, GitLab, Jira's Markdown): a headline in plain
//! words, a table per destination, each refused attempt with its evidence and next steps.

use std::io::{self, Write};

use super::table::{answered, ms};
use super::Options;
use crate::attribute::VerdictKind;
use crate::model::{AttemptRecord, Report};
use crate::track::Outcome;

/// Escapes text for a Markdown table cell or paragraph: no HTML, links, images or emphasis.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in super::escape(s).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' | '[' | ']' | '(' | ')' | '*' | '_' | '`' | '!' | '#' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

fn next_step(v: VerdictKind, r: &AttemptRecord) -> String {
    let port = r.server.port;
    match v {
        VerdictKind::ClosedPort => format!(
            "Check that the service runs and listens on {} for this address family: `ss -ltnp 'sport = :{port}'` on the server. If it does, look for a `reject with tcp reset` rule in the server's own firewall (`nft list ruleset`, `iptables -S`).",
            md(&r.server.ip.to_string())
        ),
        VerdictKind::HostFirewall => "Look at the server's own firewall for a REJECT rule matching this port and source (`nft list ruleset`, `iptables -S`, cloud security groups applied on the host).".into(),
        VerdictKind::PathFirewall => "A device between client and server rejects this traffic: find the firewall, load balancer or IPS at the hop named in the evidence and its rule for this port.".into(),
        VerdictKind::HostUnreachable => "The last router got no ARP/ND answer: check that the host is up and has this address, and the VLAN/subnet between them.".into(),
        VerdictKind::NetUnreachable => "A router has no route: check routing to this network from the router named in the evidence.".into(),
        VerdictKind::FilteredOrDown => "Nothing answered: ping the host or try another of its ports while capturing; if it answers, a firewall drops this port (look for DROP rules on the host and the path).".into(),
        VerdictKind::Unknown | VerdictKind::Accepted => "Capture on both ends at once, or run `synrst probe`, to get a baseline to compare with.".into(),
    }
}

/// Writes the Markdown report.
pub fn write_markdown(report: &Report, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    let total = report.attempts.len();
    let failed: Vec<&AttemptRecord> = report
        .attempts
        .iter()
        .filter(|r| r.outcome != Outcome::Accepted)
        .collect();
    writeln!(out, "## synrst report\n")?;
    // Headline per destination in plain words.
    if total == 0 {
        writeln!(out, "No TCP connection attempts were found in the capture.\n")?;
    }
    for d in &report.summary.destinations {
        let bad = d.attempts - d.accepted;
        if bad == 0 {
            continue;
        }
        let verdict = d.verdict.unwrap_or("unknown");
        writeln!(
            out,
            "- **{} of {} attempts to {} failed**: {}.",
            bad,
            d.attempts,
            md(&d.server.to_string()),
            headline_for(verdict)
        )?;
    }
    if failed.is_empty() && total > 0 {
        writeln!(out, "All {total} connection attempts were accepted.")?;
    }
    for h in &report.summary.hints {
        writeln!(out, "- {}", md(h))?;
    }
    writeln!(out)?;
    if !report.summary.destinations.is_empty() {
        writeln!(
            out,
            "| server | attempts | accepted | refused | unreachable | no answer | verdict |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---|")?;
        for d in &report.summary.destinations {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md(&d.server.to_string()),
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
    let listed: Vec<&AttemptRecord> = report
        .attempts
        .iter()
        .filter(|r| opts.all || r.outcome != Outcome::Accepted)
        .collect();
    for r in listed {
        writeln!(
            out,
            "### #{} {} → {}: {} — {} ({} confidence)\n",
            r.id,
            md(&r.client.to_string()),
            md(&r.server.to_string()),
            r.outcome.name(),
            r.verdict.name(),
            r.confidence.name()
        )?;
        writeln!(out, "{}\n", md(&r.explanation))?;
        writeln!(
            out,
            "- first SYN: {} ({} SYN{})",
            md(&r.first_syn),
            r.syns,
            if r.syns == 1 { "" } else { "s" }
        )?;
        writeln!(out, "- answer: {}", md(&answered(r)))?;
        if let Some(e) = r.client_error {
            writeln!(
                out,
                "- the client saw: `{e}` (browsers: `{}`)",
                r.browser_error.unwrap_or("-")
            )?;
        }
        writeln!(out, "- history: `{}`", r.history)?;
        if !r.evidence.is_empty() {
            writeln!(out, "- evidence:")?;
            for e in &r.evidence {
                match &e.baseline {
                    Some(b) => writeln!(
                        out,
                        "  - `{}`: {} (compared with: {}) — {}",
                        e.signal,
                        md(&e.observed),
                        md(b),
                        md(&e.meaning)
                    )?,
                    None => writeln!(out, "  - `{}`: {} — {}", e.signal, md(&e.observed), md(&e.meaning))?,
                }
            }
        }
        if r.outcome != Outcome::Accepted {
            writeln!(out, "- next step: {}", next_step(r.verdict, r))?;
        }
        writeln!(out)?;
    }
    let c = &report.capture;
    let files: Vec<String> = c.files.iter().map(|f| md(&f.path)).collect();
    writeln!(
        out,
        "---\n\nsynrst {} · {} · {} frames, {} decoded, {} skipped{}",
        report.tool.version,
        files.join(", "),
        c.frames,
        c.decoded,
        c.skipped.values().sum::<u64>(),
        if let (Some(a), Some(b)) = (&c.first_packet, &c.last_packet) {
            format!(" · {} – {}", md(a), md(b))
        } else {
            String::new()
        }
    )?;
    for w in &c.warnings {
        writeln!(
            out,
            "\n> warning: {}{}",
            md(&w.file),
            match w.offset {
                Some(o) => format!(" at byte {o}: {}", md(&w.message)),
                None => format!(": {}", md(&w.message)),
            }
        )?;
    }
    let _ = ms;
    Ok(())
}

fn headline_for(verdict: &str) -> &'static str {
    match verdict {
        "closed-port" => {
            "the server's TCP stack refused them: nothing listens on that port (or the server's own firewall resets)"
        }
        "host-firewall" => "the server's own firewall rejected them",
        "path-firewall" => "a firewall or middlebox on the path rejected them",
        "host-unreachable" => "the last router could not reach the host (down or absent)",
        "net-unreachable" => "a router has no route to the network",
        "filtered-or-down" => "nothing answered: a filter drops them or the host is down",
        _ => "the capture does not show who refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_links_images_html() {
        assert_eq!(md("[x](http://a)"), "\\[x\\]\\(http://a\\)");
        assert_eq!(md("<img src=x>"), "&lt;img src=x&gt;");
        assert_eq!(md("a|b"), "a\\|b");
    }
}
