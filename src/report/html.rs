//! One self-contained HTML page: the Markdown report's content (headline, scope, a table per
//! destination, each refused attempt with evidence and next steps, the probe's section after a
//! `synrst probe`) plus a timeline picture (inline SVG) per refused attempt. No external asset, no JavaScript; inline CSS only, and a
//! Content-Security-Policy that forbids scripts and remote loads in case anything slipped.
//!
//! Every string is HTML-escaped ([`esc`]): a hostile capture (or file name) cannot inject markup.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::markdown::{
    answer_cell, client_saw, detailed, next_steps, packet_rows, plural, scope, time_of, ttl_words, verdict_clause,
    worth_detail, Overview, PacketRow, Rich, Span, ROWS_PER_DESTINATION,
};
use super::ms;
use super::Options;
use crate::attribute::hops;
use crate::model::{AttemptRecord, Report};
use crate::probe::{ProbeMode, ProbeSummary};
use crate::track::{Outcome, Role};

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in super::escape(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn rich(r: &Rich) -> String {
    r.0.iter()
        .map(|s| match s {
            Span::Text(t) => esc(t),
            Span::Code(t) => format!("<code>{}</code>", esc(t)),
            Span::Strong(t) => format!("<strong>{}</strong>", esc(t)),
        })
        .collect()
}

const CSS: &str = r#"
:root{--fg:#1d232b;--muted:#5b6570;--line:#d9dee4;--bg:#fff;--soft:#f5f7f9;
--ok:#1a7f37;--closed:#b35900;--hostfw:#c2410c;--pathfw:#c0262d;--unreach:#7c3aed;--silent:#475569;--unknown:#6b7280}
*{box-sizing:border-box}
body{margin:0;background:var(--soft);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 40px}
code,.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:.9em}
code{background:#eef1f4;border-radius:4px;padding:0 .3em;overflow-wrap:anywhere}
td code{white-space:nowrap}
header.top{background:var(--bg);border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin-bottom:18px}
.tool{color:var(--muted);font-size:13px;letter-spacing:.04em;text-transform:uppercase}
h1{font-size:22px;line-height:1.35;margin:6px 0 10px}
h1 code{font-size:.85em}
ul.headlines{margin:0 0 10px;padding-left:20px}
ul.headlines li{margin:3px 0}
dl.scope{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0 0;color:var(--fg)}
dl.scope dt{color:var(--muted)}
dl.scope dd{margin:0}
section{background:var(--bg);border:1px solid var(--line);border-radius:10px;padding:16px 22px;margin:0 0 18px}
h2{font-size:18px;margin:0 0 10px}
h3{font-size:16px;margin:0 0 6px}
h4{font-size:13px;margin:14px 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
table{border-collapse:collapse;width:100%;font-size:14px;margin:4px 0 8px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600;font-size:13px;color:var(--muted)}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:999px;padding:1px 10px;font-size:12.5px;font-weight:600;color:#fff;white-space:nowrap;background:var(--unknown)}
.v-accepted .badge,.badge.v-accepted{background:var(--ok)}
.v-closed-port .badge,.badge.v-closed-port{background:var(--closed)}
.v-host-firewall .badge,.badge.v-host-firewall{background:var(--hostfw)}
.v-path-firewall .badge,.badge.v-path-firewall{background:var(--pathfw)}
.v-host-unreachable .badge,.badge.v-host-unreachable,.v-net-unreachable .badge,.badge.v-net-unreachable{background:var(--unreach)}
.v-filtered-or-down .badge,.badge.v-filtered-or-down{background:var(--silent)}
article.attempt{border:1px solid var(--line);border-left:6px solid var(--unknown);border-radius:8px;padding:12px 16px;margin:14px 0}
article.v-accepted{border-left-color:var(--ok)}article.v-closed-port{border-left-color:var(--closed)}
article.v-host-firewall{border-left-color:var(--hostfw)}article.v-path-firewall{border-left-color:var(--pathfw)}
article.v-host-unreachable,article.v-net-unreachable{border-left-color:var(--unreach)}
article.v-filtered-or-down{border-left-color:var(--silent)}
p.verdict{margin:4px 0 8px;font-size:15.5px}
p.facts{margin:2px 0;color:var(--fg)}
p.facts b{color:var(--muted);font-weight:600}
figure.timeline{margin:10px 0 6px;padding:8px 6px 2px;background:#fbfcfd;border:1px solid var(--line);border-radius:6px}
figure.timeline svg{display:block;width:100%;height:auto}
figure.timeline figcaption{font-size:12.5px;color:var(--muted);padding:2px 8px 4px}
tr.decisive td{background:#fff6e0;font-weight:600}
tr.ignored td{color:var(--muted);text-decoration:line-through;text-decoration-color:#aab2bb}
td.sig{white-space:nowrap}
ol.steps{margin:4px 0 0;padding-left:22px}ol.steps li{margin:4px 0}
.more{color:var(--muted);font-size:14px}
ul.hints{margin:0;padding-left:20px}
footer{color:var(--muted);font-size:13px;padding:4px 4px 0}
.warn{color:#8a4b00}
"#;

/// Writes the HTML report.
pub fn write_html(report: &Report, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    let mut h = String::with_capacity(64 * 1024);
    let Overview {
        total,
        failed,
        groups,
        headlines,
    } = Overview::of(report);
    let (title_html, title_plain) = match headlines.len() {
        0 if total == 0 => (
            "No TCP connection attempts in the capture".to_string(),
            "no TCP connection attempts".to_string(),
        ),
        0 if failed == 0 => {
            let s = format!(
                "All {} accepted",
                plural(total, "connection attempt was", "connection attempts were")
            );
            (esc(&s), s)
        }
        1 => (rich(&headlines[0]), headlines[0].plain()),
        _ => {
            let s = format!("{failed} of {total} connection attempts failed");
            (esc(&s), s)
        }
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"generator\" content=\"synrst {}\">\n<title>synrst: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(report.tool.version),
        esc(&title_plain)
    );

    // Headline and scope.
    let _ = write!(
        h,
        "<header class=\"top\">\n<div class=\"tool\">synrst · who refused the connection</div>\n<h1>{title_html}</h1>\n"
    );
    if headlines.len() > 1 {
        h.push_str("<ul class=\"headlines\">\n");
        for x in &headlines {
            let _ = writeln!(h, "<li>{}</li>", rich(x));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<dl class=\"scope\">\n");
    for line in scope(report) {
        // Each scope line starts with a strong label: render it as a definition list row.
        let mut spans = line.0.clone();
        let label = match spans.first() {
            Some(Span::Strong(l)) => {
                let l = l.trim_end_matches(':').to_string();
                spans.remove(0);
                l
            }
            _ => String::new(),
        };
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(&label), rich(&Rich(spans)).trim());
    }
    h.push_str("</dl>\n</header>\n");

    if !report.summary.hints.is_empty() {
        h.push_str("<section class=\"hints\">\n<h2>Across the capture</h2>\n<ul class=\"hints\">\n");
        for x in &report.summary.hints {
            let _ = writeln!(h, "<li>{}</li>", esc(x));
        }
        h.push_str("</ul>\n</section>\n");
    }

    if groups.len() > 1 {
        h.push_str("<section>\n<h2>Destinations</h2>\n<table>\n<thead><tr><th>server</th><th class=\"n\">attempts</th><th class=\"n\">accepted</th><th class=\"n\">refused</th><th class=\"n\">unreachable</th><th class=\"n\">no answer</th><th>who refused</th></tr></thead>\n<tbody>\n");
        for (d, _) in &groups {
            let verdict = match d.verdict {
                Some(v) => format!("<span class=\"badge v-{0}\">{0}</span>", esc(v)),
                None => "<span class=\"badge v-accepted\">accepted</span>".into(),
            };
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{verdict}</td></tr>",
                esc(&d.server.to_string()),
                d.attempts,
                d.accepted,
                d.refused,
                d.unreachable,
                d.no_answer
            );
        }
        h.push_str("</tbody>\n</table>\n</section>\n");
    }

    for (d, attempts) in &groups {
        if !opts.all && !attempts.iter().any(|a| worth_detail(a)) {
            continue;
        }
        let failing = d.attempts - d.accepted;
        let _ = write!(
            h,
            "<section class=\"dest\">\n<h2><code>{}</code> — {} of {} failed</h2>\n",
            esc(&d.server.to_string()),
            failing,
            esc(&plural(d.attempts, "attempt", "attempts"))
        );
        let rows: Vec<&&AttemptRecord> = attempts.iter().filter(|a| opts.all || worth_detail(a)).collect();
        h.push_str("<table>\n<thead><tr><th class=\"n\">#</th><th>first SYN (UTC)</th><th>client</th><th class=\"n\">SYNs</th><th>answer</th><th>who refused</th><th>the client saw</th></tr></thead>\n<tbody>\n");
        for a in rows.iter().take(ROWS_PER_DESTINATION) {
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{}</td><td class=\"mono\">{}</td><td><code>{}</code></td><td class=\"n\">{}</td><td>{}</td><td><span class=\"badge v-{}\">{}</span> {}</td><td>{}</td></tr>",
                a.id,
                esc(&time_of(&a.first_syn)),
                esc(&a.client.to_string()),
                a.syns,
                rich(&answer_cell(a)),
                a.verdict.name(),
                a.verdict.name(),
                a.confidence.name(),
                a.client_error.map(|e| format!("<code>{}</code>", esc(e))).unwrap_or_else(|| "-".into())
            );
        }
        h.push_str("</tbody>\n</table>\n");
        if rows.len() > ROWS_PER_DESTINATION {
            let _ = writeln!(
                h,
                "<p class=\"more\">… and {} more (<code>--format json</code> lists every attempt).</p>",
                rows.len() - ROWS_PER_DESTINATION
            );
        }
        if !opts.all && d.accepted > 0 {
            let _ = writeln!(
                h,
                "<p class=\"more\">{} to this destination not listed (<code>--all</code> lists them).</p>",
                esc(&plural(d.accepted, "accepted attempt", "accepted attempts"))
            );
        }
        let (shown, rest) = detailed(attempts);
        for a in shown {
            write_attempt(&mut h, a, report);
        }
        if !rest.is_empty() {
            let ids: Vec<String> = rest.iter().take(30).map(|i| format!("#{i}")).collect();
            let _ = writeln!(
                h,
                "<p class=\"more\">Attempts {}{} have the same verdicts as those above; <code>--format json</code> has their packets.</p>",
                esc(&ids.join(", ")),
                if rest.len() > 30 { ", …" } else { "" }
            );
        }
        h.push_str("</section>\n");
    }

    if let Some(p) = &report.probe {
        write_probe(&mut h, p);
    }

    // Footer.
    let c = &report.capture;
    let skipped: u64 = c.skipped.values().sum();
    let mut foot = format!(
        "synrst {} · {} frames read, {} decoded, {} skipped",
        esc(report.tool.version),
        c.frames,
        c.decoded,
        skipped
    );
    if !c.skipped.is_empty() {
        let s: Vec<String> = c.skipped.iter().map(|(k, v)| format!("{} {v}", esc(k))).collect();
        let _ = write!(foot, " ({})", s.join(", "));
    }
    if !c.anomalies.0.is_empty() {
        let s: Vec<String> = c.anomalies.0.iter().map(|(k, v)| format!("{} {v}", esc(k))).collect();
        let _ = write!(foot, " · anomalies: {}", s.join(", "));
    }
    let _ = writeln!(h, "<footer>\n<p>{foot}</p>");
    for w in &c.warnings {
        let _ = writeln!(
            h,
            "<p class=\"warn\">Warning: <code>{}</code>{}: {}</p>",
            esc(&w.file),
            w.offset.map(|o| format!(" at byte {o}")).unwrap_or_default(),
            esc(&w.message)
        );
    }
    h.push_str("</footer>\n</main>\n</body>\n</html>\n");
    out.write_all(h.as_bytes())
}

/// The probe's section (`synrst probe`): what was sent, the located device, the TTL-limited
/// SYNs, the local listeners and connect() results, the notes; the Markdown section's content.
fn write_probe(h: &mut String, p: &ProbeSummary) {
    use crate::probe::render::{hop_cells, located_line};
    let _ = writeln!(
        h,
        "<section class=\"probe\">\n<h2>Probe of <code>{}</code></h2>",
        esc(&p.target)
    );
    let addrs: Vec<String> = p.addresses.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(
        h,
        "<p>{} <code>{}</code>{}: {} sent in {}.</p>",
        match p.mode {
            ProbeMode::Remote => "Raw SYNs to",
            ProbeMode::Local => "connect() to",
        },
        esc(&addrs.join(", ")),
        p.source
            .map(|s| format!(" from <code>{}</code>", esc(&s.to_string())))
            .unwrap_or_default(),
        esc(&plural(u64::from(p.packets_sent), "packet", "packets")),
        esc(&ms(p.duration_ms))
    );
    if let Some(l) = located_line(p) {
        let _ = writeln!(h, "<p><strong>Located:</strong> {}.</p>", esc(&l));
    }
    if !p.trace.is_empty() {
        h.push_str("<table>\n<thead><tr><th class=\"n\">SYN TTL</th><th>answer</th><th>from</th><th class=\"n\">TTL</th><th class=\"n\">after</th></tr></thead>\n<tbody>\n");
        for hop in &p.trace {
            let [ttl, answer, from, reply_ttl, after] = hop_cells(hop).map(|c| esc(&c));
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{ttl}</td><td>{answer}</td><td><code>{from}</code></td><td class=\"n\">{reply_ttl}</td><td class=\"n\">{after}</td></tr>"
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
    if let Some(local) = &p.local {
        h.push_str("<table>\n<thead><tr><th>listening on</th><th>process</th><th class=\"n\">waiting to be accept()ed</th></tr></thead>\n<tbody>\n");
        for l in &local.listeners {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(&l.endpoint()),
                esc(&l.who()),
                l.accept_queue
            );
        }
        if local.listeners.is_empty() {
            let _ = writeln!(
                h,
                "<tr><td>nothing on port {}</td><td>-</td><td class=\"n\">-</td></tr>",
                p.port
            );
        }
        h.push_str("</tbody>\n</table>\n");
        if !local.tried.is_empty() {
            h.push_str("<table>\n<thead><tr><th>connect() to</th><th>result</th><th class=\"n\">after</th></tr></thead>\n<tbody>\n");
            for t in &local.tried {
                let _ = writeln!(
                    h,
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td class=\"n\">{}</td></tr>",
                    esc(&t.address.to_string()),
                    esc(&t.result),
                    esc(&ms(t.elapsed_ms))
                );
            }
            h.push_str("</tbody>\n</table>\n");
        }
    }
    if !p.notes.is_empty() {
        h.push_str("<h3>Notes</h3>\n<ul>\n");
        for n in &p.notes {
            let _ = writeln!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
}

fn write_attempt(h: &mut String, a: &AttemptRecord, report: &Report) {
    let v = a.verdict.name();
    let _ = write!(
        h,
        "<article class=\"attempt v-{v}\" id=\"attempt-{}\">\n<h3>Attempt #{}: <code>{}</code> → <code>{}</code></h3>\n",
        a.id,
        a.id,
        esc(&a.client.to_string()),
        esc(&a.server.to_string())
    );
    let _ = writeln!(
        h,
        "<p class=\"verdict\"><span class=\"badge\">{v}</span> {} confidence: {}.</p>",
        a.confidence.name(),
        rich(&verdict_clause(a, report))
    );
    let _ = writeln!(
        h,
        "<p class=\"facts\"><b>Why:</b> {}.</p>",
        esc(a.explanation.trim_end_matches('.'))
    );
    if a.outcome != Outcome::Accepted {
        let _ = writeln!(
            h,
            "<p class=\"facts\"><b>The client saw:</b> {}.</p>",
            rich(&client_saw(a))
        );
    }
    let _ = writeln!(
        h,
        "<p class=\"facts\"><b>First SYN:</b> <span class=\"mono\">{}</span> in <code>{}</code>{}.</p>",
        esc(&a.first_syn),
        esc(&a.file),
        if a.syn_seen {
            ""
        } else {
            " (the SYN itself is not in the capture: known from an ICMP quote)"
        }
    );
    let rows = packet_rows(a);
    let (svg, caption) = timeline(a, &rows);
    let _ = writeln!(
        h,
        "<figure class=\"timeline\">\n{svg}<figcaption>{}</figcaption>\n</figure>",
        esc(&caption)
    );
    h.push_str("<table class=\"packets\">\n<thead><tr><th class=\"n\">time</th><th class=\"n\">frame</th><th>packet</th><th>from</th><th>TTL</th><th>the client</th></tr></thead>\n<tbody>\n");
    for p in &rows {
        let class = if p.decisive {
            " class=\"decisive\""
        } else if p.ignored {
            " class=\"ignored\""
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<tr{class}><td class=\"n mono\">+{}</td><td class=\"n\">{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&ms(p.t_ms)),
            p.frame.map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
            esc(&p.what),
            esc(&p.from.to_string()),
            p.ttl.map(|t| esc(&ttl_words(t))).unwrap_or_else(|| "-".into()),
            esc(&p.note)
        );
    }
    h.push_str("</tbody>\n</table>\n");
    if !a.evidence.is_empty() {
        h.push_str("<h4>Evidence</h4>\n<table class=\"evidence\">\n<thead><tr><th>signal</th><th>observed</th><th>compared with</th><th>meaning</th></tr></thead>\n<tbody>\n");
        for e in &a.evidence {
            let _ = writeln!(
                h,
                "<tr><td class=\"sig\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(e.signal),
                esc(&e.observed),
                e.baseline.as_deref().map(esc).unwrap_or_else(|| "-".into()),
                esc(&e.meaning)
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
    let steps = next_steps(a, report);
    if !steps.is_empty() {
        h.push_str("<h4>Next steps</h4>\n<ol class=\"steps\">\n");
        for s in &steps {
            let _ = writeln!(h, "<li>{}</li>", rich(s));
        }
        h.push_str("</ol>\n");
    }
    h.push_str("</article>\n");
}

/// Colours of the timeline marks.
fn colour(p: &PacketRow) -> &'static str {
    match p.role {
        None => "#2563eb",
        Some(Role::SynAck) => "#1a7f37",
        Some(Role::Rst) => "#c0262d",
        Some(Role::IcmpUnreachable | Role::IcmpTimeExceeded) => "#c2410c",
        Some(Role::ServerOther) => "#0f766e",
        Some(Role::ClientAck | Role::ClientRst) => "#64748b",
        Some(Role::ResetAfterHandshake) => "#9f1239",
    }
}

/// A readable tick step (1, 2, 5 × 10^k ms) giving at most `max` intervals over `span`.
fn tick_step(span: f64, max: f64) -> f64 {
    let raw = (span / max).max(1e-6);
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= raw {
            return m * mag;
        }
    }
    10.0 * mag
}

fn tick_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let decimals = |step: f64| (-step.log10().floor()).max(0.0) as usize;
    if step >= 100.0 {
        let d = decimals(step / 1000.0);
        format!("{:.d$} s", v / 1000.0)
    } else {
        let d = decimals(step);
        format!("{v:.d$} ms")
    }
}

/// A label placed on a timeline: lines of text, anchored at `x`, in row `row`.
struct Placed {
    x: f64,
    row: usize,
    right: bool,
    lines: [String; 2],
    colour: &'static str,
    bold: bool,
    dashed: bool,
    above: bool,
}

const CHAR_W: f64 = 7.3;
const ROW_H: f64 = 36.0;

/// Greedy row assignment: the first row where the label does not overlap the previous ones.
fn place(rows: &mut Vec<Vec<(f64, f64)>>, start: f64, end: f64) -> usize {
    for (i, r) in rows.iter_mut().enumerate() {
        if r.iter().all(|(s, e)| end + 10.0 < *s || start > *e + 10.0) {
            r.push((start, end));
            return i;
        }
    }
    rows.push(vec![(start, end)]);
    rows.len() - 1
}

/// The timeline of one attempt as inline SVG: client packets above the time axis, answers
/// below, each labelled with kind, sender, TTL and time; the deciding answer stands out.
fn timeline(a: &AttemptRecord, rows: &[PacketRow]) -> (String, String) {
    // Geometry: a gutter on the left for the lane names, the time axis in the middle, client
    // packets above it and answers below, labels stacked in rows so that none overlap.
    const W: f64 = 1030.0;
    const L: f64 = 96.0;
    const R: f64 = 18.0;
    let mut tmax = rows.iter().map(|p| p.t_ms).fold(0.0f64, f64::max);
    if let Some(w) = a.waited_ms {
        tmax = tmax.max(w);
    }
    if tmax <= 0.0 {
        tmax = 1.0;
    }
    let span = tmax * 1.04;
    let x_of = |t: f64| L + (t.max(0.0) / span) * (W - L - R);

    let mut up_rows: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut down_rows: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut placed: Vec<Placed> = Vec::new();
    for p in rows {
        let x = x_of(p.t_ms);
        let above = p.role.is_none() || matches!(p.role, Some(Role::ClientAck | Role::ClientRst));
        let first = match p.ttl.filter(|_| !above) {
            Some(ttl) => format!(
                "{} · TTL {ttl} ({} hop{})",
                p.what,
                hops(ttl),
                if hops(ttl) == 1 { "" } else { "s" }
            ),
            None => p.what.clone(),
        };
        let second = if p.decisive {
            format!(
                "{} · +{} · {}",
                p.from,
                ms(p.t_ms),
                p.note.trim_start_matches("decided the outcome: ")
            )
        } else if p.ignored {
            format!("{} · +{} · ignored by the client", p.from, ms(p.t_ms))
        } else {
            format!("{} · +{}", p.from, ms(p.t_ms))
        };
        let width = first.chars().count().max(second.chars().count()) as f64 * CHAR_W + 6.0;
        let right = x + width > W - 2.0;
        let (start, end) = if right { (x - width, x) } else { (x, x + width) };
        let row = if above {
            place(&mut up_rows, start, end)
        } else {
            place(&mut down_rows, start, end)
        };
        placed.push(Placed {
            x,
            row,
            right,
            lines: [first, second],
            colour: colour(p),
            bold: p.decisive,
            dashed: p.ignored,
            above,
        });
    }
    let n_up = up_rows.len().max(1) as f64;
    let n_down = down_rows.len().max(1) as f64;
    let axis_y = 8.0 + n_up * ROW_H + 14.0;
    let down_top = axis_y + 30.0;
    let height = down_top + n_down * ROW_H + 4.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {height:.0}\" width=\"{W}\" height=\"{height:.0}\" role=\"img\" aria-label=\"timeline of attempt {}\" font-family=\"ui-monospace, Menlo, Consolas, 'DejaVu Sans Mono', monospace\" font-size=\"12\">",
        a.id
    );
    // Lane names in the gutter.
    let _ = writeln!(
        s,
        "<text x=\"6\" y=\"{:.1}\" fill=\"#5b6570\" font-family=\"system-ui, sans-serif\">client →</text><text x=\"6\" y=\"{:.1}\" fill=\"#5b6570\" font-family=\"system-ui, sans-serif\">← answers</text>",
        axis_y - 12.0,
        down_top + 14.0,
    );
    // Waiting band: the time the client waited with no answer it would act on.
    if a.outcome == Outcome::NoAnswer {
        let end = a.waited_ms.unwrap_or(tmax);
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" fill=\"#e2e8f0\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#475569\" text-anchor=\"end\">no answer the client acts on: waited {}</text>",
            x_of(0.0),
            axis_y - 5.0,
            (x_of(end) - x_of(0.0)).max(1.0),
            x_of(end) - 4.0,
            down_top + 14.0,
            esc(&ms(end))
        );
    }
    // Axis and ticks.
    let step = tick_step(span, 8.0);
    let _ = writeln!(
        s,
        "<line x1=\"{L}\" y1=\"{axis_y:.1}\" x2=\"{:.1}\" y2=\"{axis_y:.1}\" stroke=\"#334155\" stroke-width=\"1.5\"/>",
        W - R
    );
    let mut i = 0u32;
    loop {
        let v = f64::from(i) * step;
        if v > span + 1e-9 {
            break;
        }
        let x = x_of(v);
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#334155\"/><text x=\"{x:.1}\" y=\"{:.1}\" fill=\"#6b7280\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
            axis_y,
            axis_y + 5.0,
            axis_y + 18.0,
            esc(&tick_label(v, step))
        );
        i += 1;
    }
    // Marks and labels; the deciding answer last, so that it is drawn on top.
    let mut order: Vec<&Placed> = placed.iter().collect();
    order.sort_by_key(|p| p.bold);
    for p in order {
        let (first_y, stem_end) = if p.above {
            let top = axis_y - 14.0 - (p.row as f64 + 1.0) * ROW_H;
            (top + 12.0, top + 30.0)
        } else {
            let top = down_top + p.row as f64 * ROW_H;
            (top + 14.0, top + 2.0)
        };
        let dash = if p.dashed { " stroke-dasharray=\"3 3\"" } else { "" };
        // Client packets sit just above the axis, answers just below: both stay visible when
        // they coincide in time.
        let mark_y = if p.above { axis_y - 5.0 } else { axis_y + 5.0 };
        let _ = writeln!(
            s,
            "<line x1=\"{:.1}\" y1=\"{mark_y:.1}\" x2=\"{:.1}\" y2=\"{stem_end:.1}\" stroke=\"{}\" stroke-width=\"{}\"{dash}/>",
            p.x,
            p.x,
            p.colour,
            if p.bold { 2.5 } else { 1.2 }
        );
        let fill = if p.dashed { "#fff" } else { p.colour };
        let r = if p.bold { 6.0 } else { 4.5 };
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{mark_y:.1}\" r=\"{r}\" fill=\"{fill}\" stroke=\"{}\" stroke-width=\"1.8\"/>",
            p.x, p.colour
        );
        let (tx, anchor) = if p.right {
            (p.x - 5.0, "end")
        } else {
            (p.x + 5.0, "start")
        };
        let weight = if p.bold { " font-weight=\"700\"" } else { "" };
        let _ = writeln!(
            s,
            "<text x=\"{tx:.1}\" y=\"{first_y:.1}\" fill=\"{}\" text-anchor=\"{anchor}\"{weight}><tspan x=\"{tx:.1}\">{}</tspan><tspan x=\"{tx:.1}\" dy=\"14\" fill=\"#334155\">{}</tspan></text>",
            p.colour,
            esc(&p.lines[0]),
            esc(&p.lines[1])
        );
    }
    s.push_str("</svg>\n");

    // A caption that says what the picture shows, in words.
    let mut caption = String::from("Time from the first SYN. ");
    let first_rst = rows.iter().find(|p| p.role == Some(Role::Rst));
    let later_synack = first_rst.and_then(|r| rows.iter().find(|p| p.role == Some(Role::SynAck) && p.t_ms >= r.t_ms));
    if let (Some(r), Some(sa)) = (first_rst, later_synack) {
        let _ = write!(
            caption,
            "The race: a RST at +{} (TTL {}), then the server's own SYN-ACK at +{} (TTL {}). ",
            ms(r.t_ms),
            r.ttl.unwrap_or(0),
            ms(sa.t_ms),
            sa.ttl.unwrap_or(0)
        );
    }
    if let Some(d) = rows.iter().find(|p| p.decisive) {
        if d.t_ms >= 2000.0 && matches!(d.role, Some(Role::IcmpUnreachable)) {
            let _ = write!(
                caption,
                "The ICMP error came {} after the first SYN: the router's ARP/ND wait (about 3 s). ",
                ms(d.t_ms)
            );
        }
    }
    if a.syns > 1 {
        let _ = write!(caption, "{} SYNs (the client retransmitted). ", a.syns);
    }
    (s, caption.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(esc("\x1b[0m"), "\\u{1b}[0m");
    }

    /// A probe's section: what `synrst probe` found, in the page (before the footer), with
    /// every string from outside escaped: the target as typed, a process name from procfs
    /// (chosen by whoever started the process), the notes.
    #[test]
    fn the_probe_section_is_in_the_page_and_escaped() {
        use crate::probe::{HopRecord, Listener, LocalSummary, LocalTry, Locate, LocateDevice, ReplyKind};
        use std::net::{IpAddr, Ipv4Addr};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let cfg = crate::AnalyzeConfig {
            sources: vec![crate::capture::Source::Path(dir.join("syn-rst-path.pcap"))],
            track: Default::default(),
            progress: None,
        };
        let mut report = crate::analyze(&cfg, None).expect("analyses");
        let ip = |d: u8| IpAddr::V4(Ipv4Addr::new(198, 18, 2, d));
        let hop = |ttl: u8, reply: ReplyKind, from: IpAddr| HopRecord {
            ttl,
            reply,
            from: Some(from),
            reply_ttl: Some(63),
            rtt_ms: Some(0.4),
            icmp_type: None,
            icmp_code: None,
            quoted_ttl: None,
        };
        report.probe = Some(ProbeSummary {
            target: "evil<b>host</b>:82".into(),
            mode: ProbeMode::Remote,
            addresses: vec![ip(9)],
            port: 82,
            source: Some(ip(1)),
            baseline: None,
            locate: Some(Locate {
                hop: 2,
                address: Some(ip(2)),
                host_hop: Some(3),
                device: LocateDevice::Path,
                answer: ReplyKind::Rst,
                hop_range: [2, 2],
                first_ttl: Some(2),
                reply_hop: Some(2),
                agree: true,
            }),
            trace: vec![
                hop(1, ReplyKind::TimeExceeded, ip(1)),
                hop(2, ReplyKind::Rst, ip(9)),
                HopRecord::silent(3),
            ],
            packets_sent: 5,
            resets_sent: 0,
            duration_ms: 1234.0,
            notes: vec!["a <script>alert(1)</script> note".into()],
            local: Some(LocalSummary {
                listeners: vec![Listener {
                    address: ip(9),
                    port: 82,
                    process: Some("<img src=x onerror=alert(1)>".into()),
                    pid: Some(42),
                    accept_queue: 3,
                    uid: 0,
                }],
                tried: vec![LocalTry {
                    address: ip(9),
                    result: "ECONNREFUSED".into(),
                    elapsed_ms: 0.2,
                }],
            }),
        });
        let mut out = Vec::new();
        write_html(&report, Options::default(), &mut out).expect("writes");
        let page = String::from_utf8(out).expect("UTF-8");
        let section = page.find("<section class=\"probe\">").expect("a probe section");
        assert!(section < page.find("<footer>").expect("a footer"), "before the footer");
        for want in [
            "<h2>Probe of <code>evil&lt;b&gt;host&lt;/b&gt;:82</code></h2>",
            "Raw SYNs to <code>198.18.2.9</code> from <code>198.18.2.1</code>: 5 packets sent in 1.23s.",
            "<strong>Located:</strong> hop 2 (198.18.2.2), a device on the path, answers RST; the server is hop 3.",
            "<td class=\"n\">2</td><td>RST</td><td><code>198.18.2.9</code></td>",
            "<td class=\"n\">3</td><td>no answer</td><td><code>-</code></td>",
            "&lt;img src=x onerror=alert(1)&gt; (pid 42)</td><td class=\"n\">3</td>",
            "<td><code>ECONNREFUSED</code></td>",
            "<li>a &lt;script&gt;alert(1)&lt;/script&gt; note</li>",
        ] {
            assert!(page[section..].contains(want), "{want}\n---\n{}", &page[section..]);
        }
        assert!(!page.contains("<script>") && !page.contains("<img") && !page.contains("<b>host"));
    }

    #[test]
    fn ticks_are_readable() {
        assert_eq!(tick_step(3200.0, 8.0), 500.0);
        assert_eq!(tick_step(0.1, 8.0), 0.02);
        assert_eq!(tick_label(1000.0, 500.0), "1.0 s");
        assert_eq!(tick_label(2000.0, 1000.0), "2 s");
        assert_eq!(tick_label(0.04, 0.02), "0.04 ms");
        assert_eq!(tick_label(40.0, 20.0), "40 ms");
    }
}
