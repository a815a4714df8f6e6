//! Golden files: the table, JSON, Markdown and HTML reports of every capture in `captures/`
//! and of captures built here with `synrst::testutil`, compared with
//! `tests/golden/<name>.{txt,json,md,html}`.
//!
//! `UPDATE_GOLDEN=1 cargo test --test golden` writes them anew (review the diff before
//! committing). Re-recording the lab (`lab/run.sh --out captures`) changes every capture, so
//! regenerate the golden files in the same commit.
//!
//! Nothing needs scrubbing but the tool version: timestamps come from the captures, and paths
//! are relative (`captures/...`; built captures are labelled `synthetic/...`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use synrst::anonymize::{anonymize_report_with, Anonymizer};
use synrst::capture::Source;
use synrst::model::Report;
use synrst::report::{self, Format, Options};
use synrst::testutil::{icmp_error, pcap, Tcp, C4, C6, R4, S4, S6};
use synrst::track::TrackConfig;
use synrst::AnalyzeConfig;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn golden_dir() -> PathBuf {
    root().join("tests/golden")
}

fn update() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0")
}

/// Analyses a capture given by a path relative to the crate root (the working directory of
/// integration tests), so that reports name it `captures/...`.
fn analyze(source: Source) -> Report {
    let cfg = AnalyzeConfig {
        sources: vec![source],
        track: TrackConfig::default(),
        progress: None,
    };
    let mut r = synrst::analyze(&cfg, None).expect("analyze");
    r.tool.version = "VERSION";
    r
}

/// Start of the built captures, seconds since the epoch.
const T0: f64 = 1_795_081_600.0;

/// Analyses frames built here, labelling the capture `synthetic/<label>`.
fn analyze_built(name: &str, label: &str, frames: &[(f64, Vec<u8>)]) -> Report {
    let path = std::env::temp_dir().join(format!("synrst-golden-{}-{name}.pcap", std::process::id()));
    // 2026-11-19T09:46:40Z onwards: real-looking times.
    let frames: Vec<(f64, Vec<u8>)> = frames.iter().map(|(t, f)| (T0 + t, f.clone())).collect();
    std::fs::write(&path, pcap(1, &frames)).unwrap();
    let mut r = analyze(Source::Path(path.clone()));
    let _ = std::fs::remove_file(&path);
    let real = path.display().to_string();
    let label = format!("synthetic/{label}");
    for f in &mut r.capture.files {
        f.path = label.clone();
        for w in &mut f.warnings {
            w.file = label.clone();
        }
    }
    for w in &mut r.capture.warnings {
        w.file = label.clone();
    }
    for a in &mut r.attempts {
        assert_eq!(a.file, real);
        a.file = label.clone();
    }
    r
}

fn render(r: &Report, format: Format) -> String {
    let mut out = Vec::new();
    report::write(r, format, Options { all: false }, &mut out).expect("write");
    String::from_utf8(out).expect("utf-8")
}

/// A unified-ish diff: changed hunks with 3 lines of context, `-` expected, `+` got.
fn diff(expected: &str, got: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    // Longest common subsequence table (the files are small).
    let (n, m) = (a.len(), b.len());
    if n * m > 25_000_000 {
        return format!("(files too large to diff: {n} vs {m} lines)");
    }
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', i, a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i, a[i]));
            i += 1;
        } else {
            ops.push(('+', i, b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.0 != ' ')
        .map(|(k, _)| k)
        .collect();
    let mut out = String::new();
    let mut last_printed: Option<usize> = None;
    let mut shown = 0;
    for &k in &changed {
        let lo = k.saturating_sub(3);
        let hi = (k + 3).min(ops.len() - 1);
        let start = match last_printed {
            Some(p) if p + 1 >= lo => p + 1,
            _ => {
                out.push_str(&format!("@@ expected line {} @@\n", ops[lo].1 + 1));
                lo
            }
        };
        for (c, _, line) in &ops[start..=hi] {
            out.push_str(&format!("{c}{line}\n"));
            shown += 1;
        }
        last_printed = Some(hi.max(last_printed.unwrap_or(0)));
        if shown > 200 {
            out.push_str("… (diff cut)\n");
            break;
        }
    }
    out
}

/// Compares `got` with the golden file `name`, or writes it under UPDATE_GOLDEN.
fn check(name: &str, got: &str, problems: &mut Vec<String>) {
    let path = golden_dir().join(name);
    if update() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == got => {}
        Ok(expected) => problems.push(format!(
            "{} differs from the output (UPDATE_GOLDEN=1 cargo test --test golden rewrites it):\n{}",
            path.display(),
            diff(&expected, got)
        )),
        Err(_) => problems.push(format!(
            "{} is missing: run UPDATE_GOLDEN=1 cargo test --test golden and review it",
            path.display()
        )),
    }
}

/// JSON: the key fields, attempt by attempt, before the text comparison.
fn check_json_fields(name: &str, got: &str, problems: &mut Vec<String>) {
    let path = golden_dir().join(name);
    let Ok(expected) = std::fs::read_to_string(&path) else {
        return;
    };
    let (Ok(e), Ok(g)) = (
        serde_json::from_str::<serde_json::Value>(&expected),
        serde_json::from_str::<serde_json::Value>(got),
    ) else {
        problems.push(format!("{}: not JSON (expected or got)", path.display()));
        return;
    };
    let empty = Vec::new();
    let ea = e["attempts"].as_array().unwrap_or(&empty);
    let ga = g["attempts"].as_array().unwrap_or(&empty);
    if ea.len() != ga.len() {
        problems.push(format!("{name}: {} attempts expected, {} got", ea.len(), ga.len()));
    }
    for (x, y) in ea.iter().zip(ga) {
        for key in [
            "client",
            "server",
            "isn",
            "outcome",
            "verdict",
            "confidence",
            "client_error",
            "history",
        ] {
            if x[key] != y[key] {
                problems.push(format!(
                    "{name}: attempt #{} {key}: expected {}, got {}",
                    x["id"], x[key], y[key]
                ));
            }
        }
    }
    for key in ["by_outcome", "by_verdict"] {
        if e["summary"][key] != g["summary"][key] {
            problems.push(format!(
                "{name}: summary.{key}: expected {}, got {}",
                e["summary"][key], g["summary"][key]
            ));
        }
    }
}

fn check_all_formats(stem: &str, r: &Report, problems: &mut Vec<String>) {
    let json = render(r, Format::Json);
    check_json_fields(&format!("{stem}.json"), &json, problems);
    check(&format!("{stem}.json"), &json, problems);
    check(&format!("{stem}.txt"), &render(r, Format::Table), problems);
    check(&format!("{stem}.md"), &render(r, Format::Markdown), problems);
    check(&format!("{stem}.html"), &render(r, Format::Html), problems);
}

fn finish(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} golden problem(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Every capture file in captures/ (pcap, pcapng, gzip-compressed or not).
fn lab_captures() -> Vec<String> {
    let dir = root().join("captures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".pcap"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn stem(file: &str) -> &str {
    file.split(".pcap").next().unwrap_or(file)
}

#[test]
fn lab_captures_match_their_golden_reports() {
    let names = lab_captures();
    if names.is_empty() {
        eprintln!("note: no captures in captures/; only the built captures are compared");
        return;
    }
    let mut problems = Vec::new();
    let mut stems = BTreeSet::new();
    for n in &names {
        let s = stem(n);
        assert!(stems.insert(s.to_string()), "two captures share the golden name {s}");
        let r = analyze(Source::Path(PathBuf::from(format!("captures/{n}"))));
        assert_eq!(r.capture.files[0].path, format!("captures/{n}"));
        // The lab's scenarios are single connections, never a SYN flood.
        assert!(
            r.summary.floods.is_empty(),
            "{n}: named a flood: {:?}",
            r.summary.floods
        );
        check_all_formats(s, &r, &mut problems);
    }
    // Golden files of captures that are gone.
    if let Ok(d) = std::fs::read_dir(golden_dir()) {
        for e in d.filter_map(|e| e.ok()) {
            let f = e.file_name().to_string_lossy().into_owned();
            let s = f.rsplit_once('.').map(|(s, _)| s).unwrap_or(&f);
            if !s.starts_with("synthetic-") && !stems.contains(s) {
                eprintln!("note: {f} belongs to no capture in captures/ (stale golden file?)");
            }
        }
    }
    finish(problems);
}

// ---- Built captures -------------------------------------------------------------------

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn syn(dst: IpAddr, port: u16, sport: u16) -> Tcp {
    let src = if dst.is_ipv4() {
        v4(C4)
    } else {
        IpAddr::V6(Ipv6Addr::from(C6))
    };
    Tcp::syn(src, sport, dst, port, 1_000_000 + u32::from(sport))
}

/// One attempt of every verdict, spaced in time; the server is 3 hops away (TTL 61), the
/// firewall on the path 1 hop away (TTL 63), as in the lab.
fn every_verdict() -> Vec<(f64, Vec<u8>)> {
    let s4 = v4(S4);
    let r4 = v4(R4);
    let s6 = IpAddr::V6(Ipv6Addr::from(S6));
    let mut f: Vec<(f64, Vec<u8>)> = Vec::new();
    let mut t = 0.0;
    let mut next = |gap: f64| {
        t += gap;
        t
    };
    // Baseline: port 80 accepted.
    let ok = syn(s4, 80, 40000);
    let at = next(0.0);
    f.push((at, ok.frame()));
    f.push((at + 0.010, Tcp::synack_to(&ok, 7).ttl(61).frame()));
    // closed-port: RST from the server's distance.
    let s = syn(s4, 81, 40001);
    let at = next(1.0);
    f.push((at, s.frame()));
    f.push((at + 0.0101, Tcp::rst_to(&s).ttl(61).frame()));
    // path-firewall: RST from 1 hop away.
    let s = syn(s4, 82, 40002);
    let at = next(1.0);
    f.push((at, s.frame()));
    f.push((at + 0.0004, Tcp::rst_to(&s).ttl(63).frame()));
    // path-firewall: injected RST raced by the real SYN-ACK.
    let s = syn(s4, 443, 40003);
    let at = next(1.0);
    f.push((at, s.frame()));
    f.push((at + 0.0037, Tcp::rst_to(&s).ttl(63).frame()));
    f.push((at + 0.0110, Tcp::synack_to(&s, 9).ttl(61).frame()));
    // host-firewall: ICMP port unreachable from the server itself.
    let s = syn(s4, 83, 40004);
    let at = next(1.0);
    f.push((at, s.frame()));
    f.push((at + 0.0102, icmp_error(s4, v4(C4), 3, 3, &s.ip_bytes(), 61)));
    // path-firewall: ICMP administratively prohibited from a router.
    let s = syn(s4, 84, 40005);
    let at = next(1.0);
    f.push((at, s.frame()));
    f.push((at + 0.0005, icmp_error(r4, v4(C4), 3, 13, &s.ip_bytes(), 63)));
    // host-unreachable: no ARP answer for ~3 s on the server's subnet.
    let dead = v4([198, 19, 0, 99]);
    let s = syn(dead, 80, 40006);
    let at = next(1.0);
    for d in [0.0, 1.0, 3.0] {
        f.push((at + d, s.frame()));
    }
    f.push((
        at + 3.05,
        icmp_error(v4([198, 19, 0, 1]), v4(C4), 3, 1, &s.ip_bytes(), 62),
    ));
    // net-unreachable: the first router has no route.
    let s = syn(v4([203, 0, 113, 5]), 443, 40007);
    let at = next(4.0);
    f.push((at, s.frame()));
    f.push((at + 0.0003, icmp_error(r4, v4(C4), 3, 0, &s.ip_bytes(), 64)));
    // filtered-or-down: silence from a host that is up.
    let s = syn(s4, 86, 40008);
    let at = next(1.0);
    for d in [0.0, 1.0, 3.0] {
        f.push((at + d, s.frame()));
    }
    // filtered-or-down: silence from a host never heard of.
    let s = syn(v4([192, 0, 2, 7]), 22, 40009);
    let at = next(0.5);
    for d in [0.0, 1.0, 3.0] {
        f.push((at + d, s.frame()));
    }
    // unknown: a RST from further away than the server.
    let s = syn(s4, 87, 40010);
    let at = next(7.0);
    f.push((at, s.frame()));
    f.push((at + 0.020, Tcp::rst_to(&s).ttl(57).frame()));
    // accepted, with a forged RST the client ignored (wrong ack, window) first.
    let s = syn(s4, 8443, 40011);
    let at = next(1.0);
    f.push((at, s.frame()));
    let mut forged = Tcp::rst_to(&s).ttl(63);
    forged.ack = Some(s.seq);
    forged.window = 16384;
    f.push((at + 0.001, forged.frame()));
    f.push((at + 0.011, Tcp::synack_to(&s, 11).ttl(61).frame()));
    // IPv6: baseline, closed port, firewall on the path.
    let ok6 = syn(s6, 80, 40012);
    let at = next(1.0);
    f.push((at, ok6.frame()));
    f.push((at + 0.010, Tcp::synack_to(&ok6, 13).ttl(61).frame()));
    let s = syn(s6, 81, 40013);
    let at = next(1.0);
    f.push((at, s.frame()));
    f.push((at + 0.0101, Tcp::rst_to(&s).ttl(61).frame()));
    let s = syn(s6, 84, 40014);
    let r6 = IpAddr::V6(Ipv6Addr::from([0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    let at = next(1.0);
    f.push((at, s.frame()));
    f.push((
        at + 0.0005,
        icmp_error(r6, IpAddr::V6(Ipv6Addr::from(C6)), 1, 1, &s.ip_bytes(), 63),
    ));
    // Keep the capture running past the last timeout.
    let s = syn(s4, 80, 40015);
    let at = next(5.0);
    f.push((at, s.frame()));
    f.push((at + 0.010, Tcp::synack_to(&s, 15).ttl(61).frame()));
    f.sort_by(|a, b| a.0.total_cmp(&b.0));
    f
}

/// A frame that is not IP (an ARP request).
fn not_ip() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&synrst::testutil::MAC_C);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&synrst::testutil::MAC_C);
    f.extend_from_slice(&C4);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&S4);
    f
}

/// Markdown with its code spans (CommonMark: a run of n backticks up to the next run of n)
/// removed.
fn outside_code_spans(md: &str) -> String {
    let mut out = String::new();
    let mut rest = md;
    while let Some(i) = rest.find('`') {
        out.push_str(&rest[..i]);
        let run = rest[i..].chars().take_while(|c| *c == '`').count();
        let fence = "`".repeat(run);
        let after = &rest[i + run..];
        // The closing run must be exactly as long.
        let mut search = 0;
        let mut close = None;
        while let Some(j) = after[search..].find(&fence) {
            let at = search + j;
            let longer = after[at + run..].starts_with('`') || (at > 0 && after[..at].ends_with('`'));
            if !longer {
                close = Some(at);
                break;
            }
            search = at + run;
        }
        match close {
            Some(c) => rest = &after[c + run..],
            None => {
                out.push_str(&fence);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A file name made to break out of Markdown and HTML.
const HOSTILE: &str = "<img src=x onerror=alert(1)>[click](http://evil.example)|**x**`y`@www.evil.example.pcap";

#[test]
fn built_captures_match_their_golden_reports() {
    let mut problems = Vec::new();
    let r = analyze_built("verdicts", "every-verdict.pcap", &every_verdict());
    let verdicts: BTreeSet<&str> = r.attempts.iter().map(|a| a.verdict.name()).collect();
    assert_eq!(
        verdicts.into_iter().collect::<Vec<_>>(),
        [
            "accepted",
            "closed-port",
            "filtered-or-down",
            "host-firewall",
            "host-unreachable",
            "net-unreachable",
            "path-firewall",
            "unknown"
        ]
    );
    check_all_formats("synthetic-every-verdict", &r, &mut problems);

    let empty = analyze_built("empty", "not-ip.pcap", &[(0.0, not_ip())]);
    assert!(empty.attempts.is_empty());
    check_all_formats("synthetic-no-attempts", &empty, &mut problems);

    // Hostile file name: nothing may become markup, a link or an image.
    let s = syn(v4(S4), 81, 40001);
    let hostile = analyze_built(
        "hostile",
        HOSTILE,
        &[(0.0, s.frame()), (0.01, Tcp::rst_to(&s).ttl(61).frame())],
    );
    let html = render(&hostile, Format::Html);
    assert!(!html.contains("<img"), "raw markup in HTML");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // In Markdown the name is escaped text: no markup, no link, no code span to break out of.
    let md = render(&hostile, Format::Markdown);
    assert!(!md.contains('<'), "raw `<` in Markdown");
    let prose = outside_code_spans(&md);
    assert!(!prose.contains("](http"), "a link in Markdown: {prose}");
    let escaped = r"synthetic/&lt;img src=x onerror=alert\(1\)&gt;\[click\]\(http\://evil.example\)\|\*\*x\*\*\`y\`&#8203;@www\.evil.example.pcap";
    assert!(md.contains(escaped), "{md}");
    check_all_formats("synthetic-hostile-name", &hostile, &mut problems);
    finish(problems);
}

/// Whether `text` holds the address `ip` as a whole token (198.19.0.1 is not in 198.19.0.10).
fn holds_address(text: &str, ip: IpAddr) -> bool {
    let s = ip.to_string();
    let hex = |c: char| c.is_ascii_hexdigit();
    text.match_indices(&s).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let rest = &text[i + s.len()..];
        let mut after = rest.chars();
        let (a1, a2) = (after.next(), after.next());
        let glued_before = before.is_some_and(|c| hex(c) || c == '.' || c == ':');
        let glued_after = match ip {
            IpAddr::V4(_) => {
                a1.is_some_and(|c| c.is_ascii_digit()) || (a1 == Some('.') && a2.is_some_and(|c| c.is_ascii_digit()))
            }
            IpAddr::V6(_) => a1.is_some_and(|c| hex(c) || c == ':'),
        };
        !glued_before && !glued_after
    })
}

#[test]
fn anonymized_reports_hide_every_address_and_match_their_golden_files() {
    let mut r = analyze_built("anon", "every-verdict.pcap", &every_verdict());
    let mut real: BTreeSet<IpAddr> = BTreeSet::new();
    for a in &r.attempts {
        real.insert(a.client.ip);
        real.insert(a.server.ip);
        for p in &a.packets {
            real.insert(p.sender);
        }
    }
    assert!(real.len() >= 8, "{real:?}");
    let key = Anonymizer::with_key("synrst golden test key");
    anonymize_report_with(&key, &mut r);
    let mut problems = Vec::new();
    for format in [Format::Table, Format::Json, Format::Markdown, Format::Html] {
        let out = render(&r, format);
        for ip in &real {
            assert!(!holds_address(&out, *ip), "{ip} left in the {format:?} output");
        }
    }
    check_all_formats("synthetic-every-verdict.anonymized", &r, &mut problems);
    finish(problems);
}

#[test]
fn address_tokens_are_found_whole() {
    let ip: IpAddr = "198.19.0.1".parse().unwrap();
    assert!(holds_address("to 198.19.0.1:80.", ip));
    assert!(!holds_address("to 198.19.0.10:80", ip));
    assert!(!holds_address("to 2198.19.0.1", ip));
    let ip6: IpAddr = "2001:db8::1".parse().unwrap();
    assert!(holds_address("[2001:db8::1]:80", ip6));
    assert!(!holds_address("2001:db8::10", ip6));
}

#[test]
fn the_diff_shows_changed_lines_with_context() {
    let d = diff("a\nb\nc\nd\ne\nf\ng\nh\ni\n", "a\nb\nc\nd\ne\nF\ng\nh\ni\n");
    assert!(d.starts_with("@@ expected line 3 @@\n"), "{d}");
    assert!(d.contains("-f\n+F\n"), "{d}");
    assert!(d.contains(" e\n") && d.contains(" i\n"), "{d}");
    assert!(!d.contains(" b\n"), "{d}");
}

/// The Markdown golden files through a GitHub-flavoured renderer, when one is installed
/// (Debian: cmark-gfm): no link, image, raw HTML or strikethrough may come out.
#[test]
fn markdown_golden_files_render_without_links_or_html() {
    let Ok(d) = std::fs::read_dir(golden_dir()) else { return };
    let mut checked = 0;
    for e in d.filter_map(|e| e.ok()) {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "md") {
            continue;
        }
        let out = match std::process::Command::new("cmark-gfm")
            .args([
                "-e",
                "autolink",
                "-e",
                "table",
                "-e",
                "strikethrough",
                "-e",
                "tagfilter",
            ])
            .arg(&path)
            .output()
        {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            _ => {
                eprintln!("skipping: cmark-gfm not installed (Debian: apt-get install cmark-gfm)");
                return;
            }
        };
        for bad in ["<a ", "<img", "raw HTML", "<del>", "<script"] {
            assert!(!out.contains(bad), "{} renders {bad}:\n{out}", path.display());
        }
        checked += 1;
    }
    eprintln!("{checked} Markdown files rendered");
}

/// The command line: `--anonymize` with `--evidence` writes a report and an evidence capture
/// that agree (same pseudonyms), and the evidence re-analyses to the same verdicts.
#[test]
fn cli_anonymized_report_and_evidence_agree() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("every-verdict.pcap");
    let frames: Vec<(f64, Vec<u8>)> = every_verdict().into_iter().map(|(t, f)| (T0 + t, f)).collect();
    std::fs::write(&cap, pcap(1, &frames)).unwrap();
    let ev = dir.join("evidence.pcapng");
    let run = |args: &[&std::ffi::OsStr]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_synrst"))
            .env("SYNRST_ANON_KEY", "cli test")
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let report = run(&[
        "analyze".as_ref(),
        cap.as_os_str(),
        "--json".as_ref(),
        "--anonymize".as_ref(),
        "--evidence".as_ref(),
        ev.as_os_str(),
    ]);
    let again = run(&["analyze".as_ref(), ev.as_os_str(), "--json".as_ref()]);
    let key = |a: &serde_json::Value| format!("{} {} {} {}", a["client"], a["server"], a["isn"], a["outcome"]);
    let verdicts = |r: &serde_json::Value| -> BTreeSet<(String, String)> {
        r["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["outcome"] != "accepted" || !a["evidence"].as_array().unwrap().is_empty())
            .map(|a| (key(a), a["verdict"].to_string()))
            .collect()
    };
    assert!(!verdicts(&report).is_empty());
    assert_eq!(verdicts(&report), verdicts(&again));
    let text = report.to_string();
    for real in ["198.19.0.10", "198.18.0.2", "2001:db8:9::10"] {
        assert!(
            !holds_address(&text, real.parse().unwrap()),
            "{real} in the anonymized report"
        );
    }
    // Anonymization and kept payload do not go together.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_synrst"))
        .arg("analyze")
        .arg(&cap)
        .args(["--anonymize", "--keep-payload", "--evidence"])
        .arg(&ev)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--keep-payload"));
}
