//! Regression against an independent oracle: public captures from Zeek's and tcpdump's test
//! suites in `../shared/corpus`, with `truth.tsv` (Zeek baselines, tshark/argus consensus)
//! and `MANIFEST.md` (the traps). Every test skips, with a note, when the corpus is absent.
//!
//! Failures are collected over the whole corpus and reported once, one line per problem.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use synrst::attribute::VerdictKind;
use synrst::capture::Source;
use synrst::model::{AttemptRecord, Report};
use synrst::track::{Outcome, Role, TrackConfig};
use synrst::AnalyzeConfig;

/// The corpus, or `None` after printing why the test is skipped.
fn corpus() -> Option<PathBuf> {
    let dir = common::corpus_dir();
    if dir.is_none() {
        eprintln!("skipping: ../shared/corpus not found");
    }
    dir
}

/// One row of truth.tsv.
#[derive(Clone, Debug)]
struct Truth {
    file: String,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    expected: String,
}

impl Truth {
    fn tuple(&self) -> String {
        format!(
            "{} {}:{} -> {}:{}",
            self.file, self.client.0, self.client.1, self.server.0, self.server.1
        )
    }

    fn matches(&self, a: &AttemptRecord) -> bool {
        (a.client.ip, a.client.port) == self.client && (a.server.ip, a.server.port) == self.server
    }
}

fn read_truth(dir: &Path) -> Vec<Truth> {
    let text = std::fs::read_to_string(dir.join("truth.tsv")).expect("read truth.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    assert_eq!(
        &header[..6],
        &[
            "file",
            "client_ip",
            "client_port",
            "server_ip",
            "server_port",
            "expected_outcome"
        ],
        "truth.tsv header changed"
    );
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            let bad = format!("truth.tsv line {}: cannot parse {l:?}", i + 2);
            assert!(f.len() >= 6, "{bad}");
            let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|_| panic!("{bad}"));
            let port = |s: &str| s.parse::<u16>().unwrap_or_else(|_| panic!("{bad}"));
            Truth {
                file: f[0].to_string(),
                client: (ip(f[1]), port(f[2])),
                server: (ip(f[3]), port(f[4])),
                expected: f[5].to_string(),
            }
        })
        .collect()
}

/// Files the MANIFEST's per-file table marks "no attempts expected".
fn no_attempt_files(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.md")).expect("read MANIFEST.md");
    text.lines()
        .filter(|l| l.starts_with("| `") && l.contains("no attempts expected"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_string))
        .collect()
}

/// Every capture under the corpus (.pcap, .pcapng, .gz), as paths relative to it, sorted.
fn capture_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read corpus dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if [".pcap", ".pcapng", ".gz"].iter().any(|s| name.ends_with(s)) {
                    let rel = p.strip_prefix(root).expect("under root");
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Analyses one corpus file with the default configuration; a panic or an error is a string.
fn analyze(dir: &Path, file: &str) -> Result<Report, String> {
    let cfg = AnalyzeConfig {
        sources: vec![Source::Path(dir.join(file))],
        track: TrackConfig::default(),
        progress: None,
    };
    match catch_unwind(AssertUnwindSafe(|| synrst::analyze(&cfg, None))) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(format!("error: {e}")),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panic: {msg}"))
        }
    }
}

/// Analyses each file once.
fn analyze_all<'a>(dir: &Path, files: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, Result<Report, String>> {
    let mut out = BTreeMap::new();
    for f in files {
        out.entry(f.to_string()).or_insert_with(|| analyze(dir, f));
    }
    out
}

fn fail_if_any(what: &str, problems: &[String]) {
    if !problems.is_empty() {
        panic!("{} {what}:\n  {}", problems.len(), problems.join("\n  "));
    }
}

fn outcomes(attempts: &[&AttemptRecord]) -> Vec<&'static str> {
    attempts.iter().map(|a| a.outcome.name()).collect()
}

/// truth.tsv outcome → synrst outcome, for the rows whose outcome is decided.
fn mapped(expected: &str) -> Option<Outcome> {
    match expected {
        "accepted" | "reset-after-handshake" => Some(Outcome::Accepted),
        "refused-rst" => Some(Outcome::Refused),
        "icmp-unreachable" => Some(Outcome::Unreachable),
        "no-answer" => Some(Outcome::NoAnswer),
        _ => None,
    }
}

/// For every truth row with a decided outcome, synrst must report that outcome for the
/// row's 4-tuple.
///
/// The rule when a 4-tuple has several records: truth.tsv has one row per 4-tuple (Zeek may
/// log several connections for it, e.g. one REJ per SYN re-sent after a RST), while synrst
/// makes one attempt per (4-tuple, ISN) — a new ISN on the same ports is a new attempt. So:
///
/// * the 4-tuple must have at least one attempt, and one of them must have the expected
///   outcome;
/// * when the truth is anything but accepted, no attempt may be `accepted`: the truth says no
///   SYN-ACK ever came on that 4-tuple;
/// * when the truth is `no-answer`, every attempt must be `no-answer`: nothing came back at
///   all, so any other outcome is a contradiction.
#[test]
fn truth_outcomes_match_for_decided_rows() {
    let Some(dir) = corpus() else { return };
    let truth = read_truth(&dir);
    let known = [
        "accepted",
        "refused-rst",
        "icmp-unreachable",
        "no-answer",
        "reset-after-handshake",
        "other",
    ];
    let mut problems = Vec::new();
    for t in truth.iter().filter(|t| !known.contains(&t.expected.as_str())) {
        problems.push(format!("{}: unknown truth outcome {:?}", t.tuple(), t.expected));
    }
    let decided: Vec<&Truth> = truth.iter().filter(|t| mapped(&t.expected).is_some()).collect();
    assert!(!decided.is_empty(), "truth.tsv has no decided rows");
    let reports = analyze_all(&dir, decided.iter().map(|t| t.file.as_str()));
    for t in &decided {
        let want = mapped(&t.expected).expect("decided");
        let report = match &reports[&t.file] {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!(
                    "{}: expected {} but the file failed: {e}",
                    t.tuple(),
                    want.name()
                ));
                continue;
            }
        };
        let attempts: Vec<&AttemptRecord> = report.attempts.iter().filter(|a| t.matches(a)).collect();
        let got = outcomes(&attempts);
        let ok = !attempts.is_empty()
            && attempts.iter().any(|a| a.outcome == want)
            && (want == Outcome::Accepted || attempts.iter().all(|a| a.outcome != Outcome::Accepted))
            && (want != Outcome::NoAnswer || attempts.iter().all(|a| a.outcome == Outcome::NoAnswer));
        if !ok {
            let got = if got.is_empty() {
                "no attempt".to_string()
            } else {
                got.join(", ")
            };
            problems.push(format!(
                "{}: expected {} (truth {}), got {got}",
                t.tuple(),
                want.name(),
                t.expected
            ));
        }
    }
    fail_if_any("truth mismatches", &problems);
}

/// Rows of kind `other` (client aborts, bare-ACK responders, bad-checksum SYNs, one-sided
/// captures) have no outcome to compare, but their files must be analysed without panic or
/// error.
#[test]
fn other_rows_analyse_without_panic() {
    let Some(dir) = corpus() else { return };
    let truth = read_truth(&dir);
    let other: Vec<&Truth> = truth.iter().filter(|t| t.expected == "other").collect();
    let reports = analyze_all(&dir, other.iter().map(|t| t.file.as_str()));
    let problems: Vec<String> = reports
        .iter()
        .filter_map(|(f, r)| r.as_ref().err().map(|e| format!("{f}: {e}")))
        .collect();
    fail_if_any("files with `other` rows failed", &problems);
}

/// No `other` row is a refusal: by the MANIFEST's vocabulary none of them has a RST or ICMP
/// error from the server side (a client RST, a bare ACK, a bad-checksum SYN, a capture of one
/// direction only). MANIFEST: syn-then-rst "must not be reported as a refusal"; the half-duplex
/// SSH capture is "never no-answer/refused". Only `refused` and `unreachable` are ruled out
/// here, since the truth leaves the rest open.
#[test]
fn other_rows_are_not_reported_as_refusals() {
    let Some(dir) = corpus() else { return };
    let truth = read_truth(&dir);
    let other: Vec<&Truth> = truth.iter().filter(|t| t.expected == "other").collect();
    let reports = analyze_all(&dir, other.iter().map(|t| t.file.as_str()));
    let mut problems = Vec::new();
    for t in &other {
        let Ok(report) = &reports[&t.file] else { continue };
        for a in report.attempts.iter().filter(|a| t.matches(a)) {
            if matches!(a.outcome, Outcome::Refused | Outcome::Unreachable) {
                problems.push(format!(
                    "{}: truth other, got {} ({}, history {})",
                    t.tuple(),
                    a.outcome.name(),
                    a.verdict.name(),
                    a.history
                ));
            }
        }
    }
    fail_if_any("`other` rows reported as refusals", &problems);
}

/// Every capture in the corpus is read without panic or error, every frame is accounted for
/// (decoded or counted as skipped), and the files the MANIFEST says hold no attempt (lone RSTs)
/// produce none.
#[test]
fn every_capture_is_analysed_and_every_frame_accounted_for() {
    let Some(dir) = corpus() else { return };
    let files = capture_files(&dir);
    assert!(!files.is_empty(), "no capture files under {}", dir.display());
    let empty = no_attempt_files(&dir);
    assert!(!empty.is_empty(), "MANIFEST.md lists no \"no attempts expected\" files");
    let mut problems = Vec::new();
    for f in &empty {
        if !files.contains(f) {
            problems.push(format!("{f}: listed in MANIFEST.md but not in the corpus"));
        }
    }
    let reports = analyze_all(&dir, files.iter().map(String::as_str));
    for (f, r) in &reports {
        let report = match r {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{f}: {e}"));
                continue;
            }
        };
        let c = &report.capture;
        let skipped: u64 = c.skipped.values().sum();
        if c.frames != c.decoded + skipped {
            problems.push(format!(
                "{f}: frames {} != decoded {} + skipped {skipped} {:?}",
                c.frames, c.decoded, c.skipped
            ));
        }
        if empty.contains(f) && !report.attempts.is_empty() {
            let got: Vec<String> = report
                .attempts
                .iter()
                .map(|a| format!("{} -> {} {}", a.client, a.server, a.outcome.name()))
                .collect();
            problems.push(format!("{f}: no attempts expected, got {}", got.join("; ")));
        }
    }
    fail_if_any("capture problems", &problems);
}

/// truth.tsv has one row per connection attempt, so every attempt synrst reports must have a
/// row (of any kind) with its 4-tuple: anything else is a phantom (a duplicated frame, a
/// mid-connection packet taken for a SYN, a mis-decoded encapsulation).
#[test]
fn every_reported_attempt_has_a_truth_row() {
    let Some(dir) = corpus() else { return };
    let truth = read_truth(&dir);
    let files = capture_files(&dir);
    let reports = analyze_all(&dir, files.iter().map(String::as_str));
    let mut problems = Vec::new();
    for (f, r) in &reports {
        let Ok(report) = r else { continue };
        for a in &report.attempts {
            if !truth.iter().any(|t| &t.file == f && t.matches(a)) {
                problems.push(format!(
                    "{f} {} -> {}: {} ({}), history {}",
                    a.client,
                    a.server,
                    a.outcome.name(),
                    a.verdict.name(),
                    a.history
                ));
            }
        }
    }
    fail_if_any("attempts without a truth row", &problems);
}

/// MANIFEST trap 11: Cisco FabricPath carries every frame twice. Zeek logs each of the 16
/// attempts with history `S`: one SYN each, not a retransmission.
#[test]
fn fabric_path_copies_are_not_counted_as_retransmissions() {
    let Some(dir) = corpus() else { return };
    let file = "zeek/cisco-fabric-path.pcap";
    let report = analyze(&dir, file).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(report.attempts.len(), 16, "{file}: Zeek logs 16 attempts");
    let problems: Vec<String> = report
        .attempts
        .iter()
        .filter(|a| a.syns != 1)
        .map(|a| format!("{} -> {}: {} SYNs", a.client, a.server, a.syns))
        .collect();
    fail_if_any("FabricPath attempts with more than one SYN", &problems);
}

/// MANIFEST finding 2: in rst-inject-rae.pcap a forged RST (ack = ISN, window 16384,
/// reserved bits) arrives before the genuine SYN-ACK. The one attempt is accepted, and its
/// evidence names the injection.
#[test]
fn rst_inject_rae_is_accepted_with_injected_rst_evidence() {
    let Some(dir) = corpus() else { return };
    let file = "zeek/tcp/rst-inject-rae.pcap";
    let report = analyze(&dir, file).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(report.attempts.len(), 1, "{file}: one attempt expected");
    let a = &report.attempts[0];
    assert_eq!(
        (a.client.to_string(), a.server.to_string()),
        ("1.2.0.2:2527".to_string(), "1.2.0.3:6649".to_string())
    );
    assert_eq!(a.outcome, Outcome::Accepted, "{file}: {a:#?}");
    assert_eq!(a.verdict, VerdictKind::Accepted, "{file}: {a:#?}");
    let signals: Vec<&str> = a.evidence.iter().map(|e| e.signal).collect();
    // Both tells are present in the capture: a SYN-ACK after the RST (the race), and a RST the
    // client's stack discards (ack = ISN, not ISN+1).
    for want in ["rst_then_synack", "rst_ignored_by_client"] {
        assert!(signals.contains(&want), "{file}: evidence lacks {want}: {signals:?}");
    }
    // The first packet after the SYN is the forged RST, ignored by the client; the answer
    // that decided the outcome is the SYN-ACK that followed it.
    let first = a.packets.first().expect("packets");
    assert_eq!(first.kind, Role::Rst, "{file}: first packet {first:#?}");
    assert!(
        !first.acceptable,
        "{file}: the forged RST must be unacceptable: {first:#?}"
    );
    let answer = a.answer.as_ref().expect("answer");
    assert_eq!(answer.kind, Role::SynAck, "{file}: answer {answer:#?}");
    assert!(answer.after_ms > first.after_ms, "{file}: SYN-ACK after the RST");
}

/// A refusal is blamed on a firewall on the path only with evidence that points there: a
/// SYN-ACK after the RST (`rst_then_synack`) or a RST from nearer than the server's own
/// packets (`rst_hops` saying "nearer"). The corpus's
/// refusals are RST+ACK with ack = ISN+1 from the scanned or loopback hosts themselves, with
/// no packet that could make them look nearer.
#[test]
fn corpus_refusals_blame_the_path_only_with_evidence() {
    let Some(dir) = corpus() else { return };
    let files = capture_files(&dir);
    let reports = analyze_all(&dir, files.iter().map(String::as_str));
    let mut problems = Vec::new();
    let mut refused = 0;
    for (f, r) in &reports {
        let Ok(report) = r else { continue };
        for a in report.attempts.iter().filter(|a| a.outcome == Outcome::Refused) {
            refused += 1;
            let justified = a
                .evidence
                .iter()
                .any(|e| e.signal == "rst_then_synack" || (e.signal == "rst_hops" && e.meaning.contains("nearer")));
            if a.verdict == VerdictKind::PathFirewall && !justified {
                let signals: Vec<&str> = a.evidence.iter().map(|e| e.signal).collect();
                problems.push(format!(
                    "{f} {} -> {}: path-firewall with evidence {signals:?}",
                    a.client, a.server
                ));
            }
        }
    }
    // truth.tsv has 9 refused-rst rows; if none is reported as refused, this test is vacuous.
    assert!(
        refused > 0,
        "no refused attempt in the corpus: the check above tested nothing"
    );
    fail_if_any("refusals blamed on the path without evidence", &problems);
}

/// redis/almost-resp.pcap: the ::1 attempt is refused over loopback, where no device sits
/// between client and server. Only the host's own stack (or its own firewall, which the wire
/// cannot tell apart) can have sent the RST: the verdict must be closed-port.
#[test]
fn loopback_refusal_is_the_hosts_own_stack() {
    let Some(dir) = corpus() else { return };
    let file = "zeek/redis/almost-resp.pcap";
    let report = analyze(&dir, file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let refused: Vec<&AttemptRecord> = report
        .attempts
        .iter()
        .filter(|a| a.server.ip.is_loopback() && a.outcome == Outcome::Refused)
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "{file}: one refused loopback attempt expected: {:#?}",
        report.attempts
    );
    let a = refused[0];
    assert_eq!(a.server.to_string(), "[::1]:6379");
    assert_eq!(a.verdict, VerdictKind::ClosedPort, "{file}: {a:#?}");
    assert_eq!(a.client_error, Some("ECONNREFUSED"));
}

/// A RST that arrives after the handshake (the client has its SYN-ACK) ends an established
/// connection; it is not a forged answer to the SYN. get-to-ssh-server, the LDAP captures,
/// redis, pop3-starttls and ssh.pcap's port-2200 connection all end with the server's own
/// RST after data (Zeek: RSTR / `r` after `ShAD`). Evidence of injection must come from RSTs
/// that arrived before the SYN-ACK: no forged-RST signal or "injected" explanation without
/// one, and no more `rst_ignored_by_client` entries than there were such RSTs.
#[test]
fn resets_after_the_handshake_are_not_called_injected() {
    let Some(dir) = corpus() else { return };
    let files = capture_files(&dir);
    let reports = analyze_all(&dir, files.iter().map(String::as_str));
    let forged_signals = ["rst_then_synack", "rst_ignored_by_client", "rst_disagree"];
    let mut problems = Vec::new();
    for (f, r) in &reports {
        let Ok(report) = r else { continue };
        for a in report.attempts.iter().filter(|a| a.outcome == Outcome::Accepted) {
            let Some(synack) = a.answer.as_ref() else { continue };
            let early_rsts = a
                .packets
                .iter()
                .filter(|p| p.kind == Role::Rst && p.after_ms <= synack.after_ms)
                .count();
            let ignored = a
                .evidence
                .iter()
                .filter(|e| e.signal == "rst_ignored_by_client")
                .count();
            let claims: Vec<&str> = a
                .evidence
                .iter()
                .map(|e| e.signal)
                .filter(|s| forged_signals.contains(s))
                .collect();
            let says_injected = a.explanation.contains("inject");
            if (early_rsts == 0 && (!claims.is_empty() || says_injected)) || ignored > early_rsts {
                problems.push(format!(
                    "{f} {} -> {}: {early_rsts} RST(s) before the SYN-ACK, but evidence {claims:?}, explanation {:?}",
                    a.client, a.server, a.explanation
                ));
            }
        }
    }
    fail_if_any("post-handshake resets called injected", &problems);
}
