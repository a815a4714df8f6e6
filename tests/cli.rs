//! The `synrst` binary's contract: exit codes, messages, input forms and output formats.
//! One integration binary; each test is named after what it guards.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use common::{accepted, accepted_at, merge, pcap_of, prohibited, refused, silence, TempPath};

fn synrst() -> Command {
    Command::new(env!("CARGO_BIN_EXE_synrst"))
}

fn analyze(path: &Path, extra: &[&str]) -> Output {
    synrst()
        .arg("analyze")
        .arg(path)
        .args(extra)
        .output()
        .expect("run synrst")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// Exit code 2, nothing on stdout, and a `synrst:` message on stderr.
fn assert_usage_error(o: &Output) {
    assert_eq!(o.status.code(), Some(2), "{}", describe(o));
    assert!(o.stdout.is_empty(), "nothing on stdout on error: {}", describe(o));
    let err = text(&o.stderr);
    assert!(!err.trim().is_empty(), "a message on stderr: {}", describe(o));
    assert!(!err.contains("panicked"), "{}", describe(o));
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", describe(o)))
}

/// (client port, outcome) of each attempt in a JSON report.
fn outcomes(report: &Value) -> Vec<(u64, String)> {
    report["attempts"]
        .as_array()
        .expect("attempts array")
        .iter()
        .map(|a| {
            (
                a["client"]["port"].as_u64().expect("client port"),
                a["outcome"].as_str().expect("outcome").to_string(),
            )
        })
        .collect()
}

/// A capture with one attempt of each kind: accepted, refused, prohibited (ICMP 3/13 from a
/// router), and silence.
fn all_four(test: &str) -> TempPath {
    let frames = merge(&[accepted(), refused(), prohibited(), silence()]);
    TempPath::with_bytes(test, ".pcap", &pcap_of(&frames))
}

fn all_four_outcomes() -> Vec<(u64, String)> {
    vec![
        (40_000, "accepted".into()),
        (40_001, "refused".into()),
        (40_002, "unreachable".into()),
        (40_003, "no-answer".into()),
    ]
}

// ---------------------------------------------------------------------------------------
// Inputs that are not captures: exit 2 with a message.

#[test]
fn missing_file_exits_2() {
    let t = TempPath::new("missing_file_exits_2", ".pcap");
    let o = analyze(t.path(), &[]);
    assert_usage_error(&o);
    assert!(
        text(&o.stderr).contains(&t.path().display().to_string()),
        "the message names the file: {}",
        describe(&o)
    );
}

#[test]
fn directory_exits_2() {
    let t = TempPath::new("directory_exits_2", "");
    std::fs::create_dir(t.path()).expect("mkdir");
    assert_usage_error(&analyze(t.path(), &[]));
}

#[test]
fn empty_file_exits_2() {
    let t = TempPath::with_bytes("empty_file_exits_2", ".pcap", b"");
    let o = analyze(t.path(), &[]);
    assert_usage_error(&o);
    assert!(text(&o.stderr).contains("empty"), "{}", describe(&o));
}

#[test]
fn text_file_exits_2() {
    let t = TempPath::with_bytes(
        "text_file_exits_2",
        ".pcap",
        b"this is not a capture, just some text that is long enough for a header\n",
    );
    let o = analyze(t.path(), &[]);
    assert_usage_error(&o);
    assert!(text(&o.stderr).contains("not a pcap"), "{}", describe(&o));
}

#[test]
fn unsupported_pcap_version_exits_2() {
    // Magic a1b2c3d4 (little-endian), version 9.9, then a valid-looking rest of the header.
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&9u16.to_le_bytes());
    b.extend_from_slice(&9u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&262_144u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    let t = TempPath::with_bytes("unsupported_pcap_version_exits_2", ".pcap", &b);
    let o = analyze(t.path(), &[]);
    assert_usage_error(&o);
    assert!(text(&o.stderr).contains("9.9"), "names the version: {}", describe(&o));
}

#[test]
fn bad_timeout_exits_2() {
    let t = TempPath::with_bytes("bad_timeout_exits_2", ".pcap", &pcap_of(&accepted()));
    for bad in ["0", "-1", "abc", "nan", "inf", "1e9"] {
        let o = synrst()
            .arg("analyze")
            .arg(t.path())
            .arg(format!("--timeout={bad}"))
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(2), "--timeout={bad}: {}", describe(&o));
        assert!(o.stdout.is_empty(), "--timeout={bad}: {}", describe(&o));
        assert!(text(&o.stderr).contains("timeout"), "--timeout={bad}: {}", describe(&o));
    }
}

#[cfg(not(feature = "live"))]
#[test]
fn live_without_feature_exits_2_and_says_how_to_build() {
    let o = synrst().args(["live", "-i", "lo"]).output().expect("run synrst");
    assert_usage_error(&o);
    assert!(text(&o.stderr).contains("--features live"), "{}", describe(&o));
}

/// Bare `synrst live` on a build without the feature: the missing feature is the problem to
/// report, not a missing `--interface` that would only lead to this message next.
#[cfg(not(feature = "live"))]
#[test]
fn bare_live_without_feature_says_how_to_build() {
    let o = synrst().arg("live").output().expect("run synrst");
    assert_usage_error(&o);
    assert!(text(&o.stderr).contains("--features live"), "{}", describe(&o));
}

#[cfg(not(feature = "live"))]
#[test]
fn interfaces_without_feature_exits_2_and_says_how_to_build() {
    let o = synrst().arg("interfaces").output().expect("run synrst");
    assert_usage_error(&o);
    assert!(text(&o.stderr).contains("--features live"), "{}", describe(&o));
}

// ---------------------------------------------------------------------------------------
// Damage after valid data: a warning with the byte offset, exit 0, results kept.

#[test]
fn truncated_capture_warns_with_offset_and_keeps_earlier_attempts() {
    let good = merge(&[accepted(), refused()]);
    let full = pcap_of(&good);
    // One more record (a SYN at t = 9 s), cut in the middle of its packet data.
    let extra = accepted_at(9.0, 40_009, 443);
    let with_extra = pcap_of(&merge(&[good.clone(), extra[..1].to_vec()]));
    let damaged_at = full.len();
    let cut = damaged_at + 16 + (with_extra.len() - damaged_at - 16) / 2;
    let t = TempPath::with_bytes(
        "truncated_capture_warns_with_offset_and_keeps_earlier_attempts",
        ".pcap",
        &with_extra[..cut],
    );
    let o = analyze(t.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let err = text(&o.stderr);
    assert!(err.contains("warning"), "{}", describe(&o));
    assert!(
        err.contains(&format!("byte {damaged_at}")),
        "the warning names the damaged record's offset {damaged_at}: {}",
        describe(&o)
    );
    let report = json(&o);
    assert_eq!(
        outcomes(&report),
        vec![(40_000, "accepted".to_string()), (40_001, "refused".to_string())],
        "{}",
        describe(&o)
    );
    assert_eq!(report["capture"]["frames"], good.len() as u64);
    assert_eq!(report["capture"]["warnings"][0]["offset"], damaged_at as u64);
}

/// A minimal little-endian pcapng: one section, one Ethernet interface (id 0, microseconds),
/// then one enhanced packet block per (interface id, seconds, frame).
fn pcapng(packets: &[(u32, f64, Vec<u8>)]) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = (12 + body.len()) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&len.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&262_144u32.to_le_bytes());
    block(&mut out, 1, &idb);
    for (ifc, t, data) in packets {
        let micros = (t * 1e6).round() as u64;
        let mut epb = Vec::new();
        epb.extend_from_slice(&ifc.to_le_bytes());
        epb.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(micros as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        epb.resize(epb.len().next_multiple_of(4), 0);
        block(&mut out, 6, &epb);
    }
    out
}

/// Every frame read is either decoded or counted as skipped, including a packet block that
/// names an interface the section never described (README: `capture.skipped`).
#[test]
fn every_frame_is_accounted_for_including_unknown_interfaces() {
    let mut packets: Vec<(u32, f64, Vec<u8>)> = accepted().into_iter().map(|(t, f)| (0, t, f)).collect();
    let (t, f) = refused().remove(0);
    packets.push((7, t, f));
    let file = TempPath::with_bytes(
        "every_frame_is_accounted_for_including_unknown_interfaces",
        ".pcapng",
        &pcapng(&packets),
    );
    let o = analyze(file.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let report = json(&o);
    let c = &report["capture"];
    let skipped: u64 = c["skipped"]
        .as_object()
        .expect("skipped")
        .values()
        .map(|v| v.as_u64().expect("count"))
        .sum();
    assert_eq!(c["decoded"], 3, "{c:#}");
    assert_eq!(skipped, 1, "the packet on interface 7 is counted as skipped: {c:#}");
    assert_eq!(
        c["frames"].as_u64(),
        Some(c["decoded"].as_u64().unwrap() + skipped),
        "frames == decoded + skipped: {c:#}"
    );
    assert_eq!(outcomes(&report), vec![(40_000, "accepted".to_string())]);
}

// ---------------------------------------------------------------------------------------
// Input forms.

#[test]
fn dash_reads_stdin() {
    let bytes = pcap_of(&merge(&[accepted(), refused(), prohibited(), silence()]));
    let mut child = synrst()
        .args(["analyze", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    // Write from another thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || {
        stdin.write_all(&bytes).expect("write stdin");
    });
    let o = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let report = json(&o);
    assert_eq!(outcomes(&report), all_four_outcomes());
    assert_eq!(report["capture"]["files"][0]["path"], "-");
}

/// Reading a pipe that is still open, an attempt's NDJSON line comes out as soon as it is
/// made, not when the input ends (files are written in blocks: see the README).
#[test]
fn ndjson_from_a_pipe_comes_before_the_input_ends() {
    use std::net::{IpAddr, Ipv4Addr};
    use synrst::testutil::{Tcp, C4, S4};
    // A refused attempt, then 1.7 MB of a connection's ACKs (no attempt of their own) whose
    // times move past the attempt's timeout: its line is made while those are read, and the
    // first 1.5 MiB of a pipe are read before more is waited for.
    let syn = Tcp::syn(
        IpAddr::V4(Ipv4Addr::from(C4)),
        50_000,
        IpAddr::V4(Ipv4Addr::from(S4)),
        80,
        9_000,
    );
    let ack = common::client_ack(&syn, &Tcp::synack_to(&syn, 77_000));
    let mut frames = refused();
    frames.extend((0..25_000).map(|i| (10.0 + f64::from(i) * 0.001, ack.frame())));
    let bytes = pcap_of(&frames);
    assert!(bytes.len() > 1_700_000, "{} bytes", bytes.len());
    let mut child = synrst()
        .args(["analyze", "-", "--format", "ndjson"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.expect("stdout line")).is_err() {
                break;
            }
        }
    });
    stdin.write_all(&bytes).expect("write stdin");
    // The pipe stays open: the line must come without the end of the input.
    let first = rx.recv_timeout(std::time::Duration::from_secs(30));
    drop(stdin);
    let status = child.wait().expect("wait");
    reader.join().expect("reader");
    let first = first.expect("an attempt's line before the input ended");
    let line: Value = serde_json::from_str(&first).expect("JSON line");
    assert_eq!(line["type"], "attempt", "{first}");
    assert_eq!(line["outcome"], "refused", "{first}");
    let rest: Vec<String> = rx.iter().collect();
    assert_eq!(rest.len(), 1, "then only the summary: {rest:?}");
    assert!(rest[0].starts_with("{\"type\":\"summary\""), "{rest:?}");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn gzip_capture_is_read_transparently() {
    let bytes = pcap_of(&merge(&[accepted(), refused(), prohibited(), silence()]));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let t = TempPath::with_bytes("gzip_capture_is_read_transparently", ".pcap.gz", &gz);
    let o = analyze(t.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let report = json(&o);
    assert_eq!(outcomes(&report), all_four_outcomes());
    assert_eq!(report["capture"]["files"][0]["gzip"], true);
}

// ---------------------------------------------------------------------------------------
// Output formats.

#[test]
fn json_has_schema_1_and_every_attempt_key() {
    let t = all_four("json_has_schema_1_and_every_attempt_key");
    let o = analyze(t.path(), &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let report = json(&o);
    assert_eq!(report["schema"], 1);
    assert_eq!(outcomes(&report), all_four_outcomes());
    let keys = [
        "client",
        "server",
        "first_syn",
        "syns",
        "outcome",
        "answer",
        "client_error",
        "browser_error",
        "verdict",
        "confidence",
        "evidence",
    ];
    for a in report["attempts"].as_array().expect("attempts") {
        let obj = a.as_object().expect("attempt object");
        for k in keys {
            assert!(obj.contains_key(k), "attempt lacks {k:?}: {a:#}");
        }
        for side in ["client", "server"] {
            assert!(a[side]["ip"].is_string(), "{side}.ip: {a:#}");
            assert!(a[side]["port"].is_u64(), "{side}.port: {a:#}");
        }
        assert!(a["evidence"].is_array(), "{a:#}");
    }
}

#[test]
fn json_flag_is_the_same_as_format_json() {
    let t = all_four("json_flag_is_the_same_as_format_json");
    let a = analyze(t.path(), &["--json"]);
    let b = analyze(t.path(), &["--format", "json"]);
    assert_eq!(a.status.code(), Some(0), "{}", describe(&a));
    assert_eq!(json(&a), json(&b));
}

#[test]
fn ndjson_is_attempt_lines_then_one_summary() {
    let t = all_four("ndjson_is_attempt_lines_then_one_summary");
    let o = analyze(t.path(), &["--format", "ndjson"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let out = text(&o.stdout);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line is not JSON ({e}): {l}")))
        .collect();
    let (summary, attempts) = lines.split_last().expect("at least a summary line");
    assert_eq!(summary["type"], "summary", "last line: {summary:#}");
    assert_eq!(summary["schema"], 1);
    assert_eq!(attempts.len(), 4, "{out}");
    for a in attempts {
        assert_eq!(a["type"], "attempt", "{a:#}");
        assert!(a["outcome"].is_string(), "{a:#}");
    }
    let mut got: Vec<(u64, String)> = attempts
        .iter()
        .map(|a| {
            (
                a["client"]["port"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, all_four_outcomes());
    assert_eq!(summary["summary"]["attempts"], 4);
}

#[test]
fn markdown_output_contains_no_raw_html() {
    let t = all_four("markdown_output_contains_no_raw_html");
    let o = analyze(t.path(), &["--format", "markdown", "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let out = text(&o.stdout);
    assert!(!out.trim().is_empty());
    let raw: Vec<&str> = out.lines().filter(|l| l.contains('<')).collect();
    assert!(raw.is_empty(), "raw `<` in Markdown output:\n{}", raw.join("\n"));
}

/// Text that comes from outside (here the file name) must not turn into HTML in a ticket.
#[cfg(unix)]
#[test]
fn markdown_escapes_html_in_file_names() {
    let t = TempPath::with_bytes(
        "markdown_escapes_html_in_file_names",
        "<img src=x onerror=alert(1)>.pcap",
        &pcap_of(&refused()),
    );
    let o = analyze(t.path(), &["--format", "markdown"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let out = text(&o.stdout);
    assert!(!out.contains("<img"), "{out}");
}

#[test]
fn output_flag_writes_the_file_and_nothing_to_stdout() {
    let t = all_four("output_flag_writes_the_file_and_nothing_to_stdout");
    let out = TempPath::new("output_flag_writes_the_file_and_nothing_to_stdout", ".json");
    let o = synrst()
        .arg("analyze")
        .arg(t.path())
        .arg("--json")
        .arg("-o")
        .arg(out.path())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(o.stdout.is_empty(), "{}", describe(&o));
    let written = std::fs::read(out.path()).expect("the report file exists");
    let report: Value = serde_json::from_slice(&written).expect("the file holds JSON");
    assert_eq!(outcomes(&report), all_four_outcomes());
}

#[test]
fn table_is_the_default_format() {
    let t = all_four("table_is_the_default_format");
    let o = analyze(t.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let out = text(&o.stdout);
    assert!(serde_json::from_str::<Value>(&out).is_err(), "not JSON by default");
    for word in ["refused", "no-answer", "unreachable"] {
        assert!(out.contains(word), "table mentions {word}: {out}");
    }
}

// ---------------------------------------------------------------------------------------
// --fail-on.

#[test]
fn fail_on_refused_exits_1_when_an_attempt_is_refused() {
    let t = TempPath::with_bytes(
        "fail_on_refused_exits_1_when_an_attempt_is_refused",
        ".pcap",
        &pcap_of(&merge(&[accepted(), refused()])),
    );
    let o = analyze(t.path(), &["--fail-on", "refused"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(!o.stdout.is_empty(), "the report is still written: {}", describe(&o));
}

#[test]
fn fail_on_refused_exits_0_when_all_are_accepted() {
    let t = TempPath::with_bytes(
        "fail_on_refused_exits_0_when_all_are_accepted",
        ".pcap",
        &pcap_of(&merge(&[accepted(), accepted_at(0.5, 40_100, 443)])),
    );
    let o = analyze(t.path(), &["--fail-on", "refused"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
}

/// `--fail-on refused` means any attempt not accepted (README, `--help`): silence counts.
#[test]
fn fail_on_refused_counts_no_answer() {
    let t = TempPath::with_bytes(
        "fail_on_refused_counts_no_answer",
        ".pcap",
        &pcap_of(&merge(&[accepted(), silence()])),
    );
    let o = analyze(t.path(), &["--fail-on", "refused"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
}

#[test]
fn fail_on_path_firewall_exits_0_for_a_closed_port() {
    // The server answers SYN-ACK on 443 and RST on 81 from the same distance: its own stack.
    let t = TempPath::with_bytes(
        "fail_on_path_firewall_exits_0_for_a_closed_port",
        ".pcap",
        &pcap_of(&merge(&[accepted(), refused()])),
    );
    let o = analyze(t.path(), &["--fail-on", "path-firewall", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let report = json(&o);
    assert_eq!(report["attempts"][1]["outcome"], "refused");
    assert_eq!(report["attempts"][1]["verdict"], "closed-port");
}

#[test]
fn fail_on_path_firewall_exits_1_for_a_router_rejection() {
    let t = TempPath::with_bytes(
        "fail_on_path_firewall_exits_1_for_a_router_rejection",
        ".pcap",
        &pcap_of(&prohibited()),
    );
    let o = analyze(t.path(), &["--fail-on", "path-firewall", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert_eq!(json(&o)["attempts"][0]["verdict"], "path-firewall");
}

#[test]
fn no_fail_on_exits_0_whatever_the_outcomes() {
    let t = all_four("no_fail_on_exits_0_whatever_the_outcomes");
    let o = analyze(t.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
}

// ---------------------------------------------------------------------------------------
// A closed pipe (`synrst analyze BIG --format ndjson | head -1`) is not an error.

/// Runs `synrst analyze FILE ARGS…`, reads one line of its stdout, closes the pipe, and checks
/// that the program exits 0 without complaint.
fn assert_quiet_after_head_1(file: &Path, args: &[&str]) {
    // The premise: the whole output is far larger than a pipe buffer (64 KiB on Linux).
    let full = analyze(file, args);
    assert!(
        full.stdout.len() > 1 << 18,
        "{args:?}: only {} bytes of output",
        full.stdout.len()
    );
    let mut child = synrst()
        .arg("analyze")
        .arg(file)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    // The reader (and the pipe's read end) is dropped at the end of this statement, like
    // `head -1` exiting.
    BufReader::new(stdout).read_line(&mut first).expect("read one line");
    assert!(!first.is_empty(), "{args:?}: no output");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{args:?}: stderr: {err}");
    assert!(!err.contains("panicked"), "{args:?}: stderr: {err}");
    assert!(!err.to_lowercase().contains("broken pipe"), "{args:?}: stderr: {err}");
}

#[test]
fn closed_stdout_pipe_exits_quietly() {
    // 3000 accepted attempts: megabytes of NDJSON and hundreds of KiB of table, far beyond
    // any pipe buffer, so the writes after `head -1` really meet a closed pipe.
    let frames: Vec<(f64, Vec<u8>)> = (0..3000u16)
        .flat_map(|i| accepted_at(f64::from(i) * 0.01, 20_000 + i, 443))
        .collect();
    let t = TempPath::with_bytes("closed_stdout_pipe_exits_quietly", ".pcap", &pcap_of(&frames));
    // NDJSON streams attempt lines while the capture is read; the table is written at the end.
    assert_quiet_after_head_1(t.path(), &["--format", "ndjson"]);
    assert_quiet_after_head_1(t.path(), &["--all"]);
    assert_quiet_after_head_1(t.path(), &["--json"]);
}

// ---------------------------------------------------------------------------------------
// SYN floods: named when many sources hammer one destination unanswered, and only then.

/// `n` SYNs to port 80 of the server, one every 100 µs, from source addresses drawn
/// (xorshift, fixed seed) from the first `pool` addresses of 10.0.0.0/8, each answered by the
/// server's RST when `refuse`. Returns the frames and the number of distinct sources.
fn syn_storm(n: u32, pool: u32, refuse: bool) -> (Vec<(f64, Vec<u8>)>, usize) {
    use std::net::{IpAddr, Ipv4Addr};
    use synrst::testutil::{Tcp, S4};
    let mut x: u64 = 0x05EE_D0FF_100D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut sources = std::collections::HashSet::new();
    let mut frames = Vec::new();
    for i in 0..n {
        let r = next();
        let src = Ipv4Addr::from(0x0A00_0000 + (r % u64::from(pool)) as u32);
        sources.insert(src);
        let s = Tcp::syn(
            IpAddr::V4(src),
            1024 + (i % 60_000) as u16,
            IpAddr::V4(Ipv4Addr::from(S4)),
            80,
            (r >> 32) as u32,
        );
        let t = f64::from(i) * 0.000_1;
        frames.push((t, s.frame()));
        if refuse {
            frames.push((t + 0.000_05, Tcp::rst_to(&s).frame()));
        }
    }
    (frames, sources.len())
}

#[test]
fn syn_flood_is_named_in_every_format_whether_its_attempts_are_listed_or_counted() {
    let (frames, distinct) = syn_storm(5000, 1 << 16, false);
    let t = TempPath::with_bytes(
        "syn_flood_is_named_in_every_format_whether_its_attempts_are_listed_or_counted",
        ".pcap",
        &pcap_of(&frames),
    );
    let mut estimates = Vec::new();
    // 100: most attempts are counted per destination (`Collector::fold`); 100000 lists all.
    for (max_listed, unlisted) in [("100", 4900), ("100000", 0)] {
        let o = analyze(t.path(), &["--json", "--max-listed", max_listed]);
        assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
        let r = json(&o);
        let s = &r["summary"];
        assert_eq!(s["unlisted_attempts"], unlisted, "--max-listed {max_listed}");
        let floods = s["floods"].as_array().unwrap_or_else(|| panic!("no floods: {s}"));
        assert_eq!(floods.len(), 1, "{s}");
        let f = &floods[0];
        assert_eq!(f["server"]["ip"], "198.19.0.10");
        assert_eq!(f["server"]["port"], 80);
        assert_eq!(f["attempts"], 5000);
        assert_eq!(f["no_answer"], 5000);
        let est = f["estimated_sources"].as_u64().expect("estimated_sources");
        // The sketch's standard error is 1.04/√512 ≈ 4.6 % (the unit tests check 10 % on
        // fixed sets); an unbiased estimate misses by four of them about once in 15,000 sets.
        let error = (est as f64 - distinct as f64).abs() / distinct as f64;
        assert!(error < 0.19, "estimated {est} sources, {distinct} distinct");
        estimates.push(est);
        let hints: Vec<&str> = s["hints"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            hints.iter().any(|h| h.starts_with("198.19.0.10:80 got a SYN flood")),
            "{hints:?}"
        );
    }
    assert_eq!(
        estimates[0], estimates[1],
        "listing or counting an attempt counts its source alike"
    );

    // --anonymize hides the flooded address in the flood and its hint too.
    let o = analyze(t.path(), &["--json", "--max-listed", "100", "--anonymize"]);
    let s = &json(&o)["summary"];
    assert_eq!(s["floods"].as_array().map(Vec::len), Some(1), "{s}");
    assert_ne!(s["floods"][0]["server"]["ip"], "198.19.0.10", "{s}");
    assert_eq!(
        s["floods"][0]["server"]["ip"], s["destinations"][0]["server"]["ip"],
        "{s}"
    );
    assert!(!s.to_string().contains("198.19.0.10"), "{s}");

    let table = text(&analyze(t.path(), &["--max-listed", "100"]).stdout);
    assert!(
        table.contains(&format!(
            "SYN flood: 198.19.0.10:80: 5000 attempts from about {} source addresses",
            estimates[0]
        )),
        "{table}"
    );
    let md = text(&analyze(t.path(), &["--max-listed", "100", "--format", "markdown"]).stdout);
    assert!(
        md.starts_with("## synrst: a SYN flood on `198.19.0.10:80`: 5000 attempts"),
        "{}",
        md.lines().next().unwrap_or_default()
    );
    let html = text(&analyze(t.path(), &["--max-listed", "100", "--format", "html"]).stdout);
    assert!(
        html.contains("<title>synrst: a SYN flood on 198.19.0.10:80: 5000 attempts"),
        "{}",
        html.lines().find(|l| l.contains("<title>")).unwrap_or_default()
    );
}

/// `floods` is absent from the JSON, and no format mentions a flood.
fn assert_no_flood(path: &Path, what: &str) {
    for max_listed in ["100", "100000"] {
        let o = analyze(path, &["--json", "--max-listed", max_listed]);
        assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
        let r = json(&o);
        assert!(
            r["summary"]["attempts"].as_u64() >= Some(1000),
            "{what}: {}",
            r["summary"]
        );
        assert!(r["summary"].get("floods").is_none(), "{what}: {}", r["summary"]);
        let table = text(&analyze(path, &["--max-listed", max_listed]).stdout);
        assert!(!table.contains("SYN flood"), "{what}: {table}");
    }
}

#[test]
fn many_unanswered_attempts_from_one_source_are_not_a_flood() {
    let (frames, distinct) = syn_storm(2000, 1, false);
    assert_eq!(distinct, 1);
    let t = TempPath::with_bytes(
        "many_unanswered_attempts_from_one_source_are_not_a_flood",
        ".pcap",
        &pcap_of(&frames),
    );
    assert_no_flood(t.path(), "one source");
}

#[test]
fn many_sources_refused_by_rst_are_not_a_flood() {
    // Answered (refused): the no-answer rule, not the source count, keeps it from being a flood.
    let (frames, distinct) = syn_storm(2000, 1 << 16, true);
    assert!(distinct > 1000);
    let t = TempPath::with_bytes(
        "many_sources_refused_by_rst_are_not_a_flood",
        ".pcap",
        &pcap_of(&frames),
    );
    assert_no_flood(t.path(), "refused storm");
}

// ---------------------------------------------------------------------------------------
// Standard error: warnings unless --quiet; a progress bar only on a terminal.

#[test]
fn quiet_suppresses_warning_lines_but_the_report_keeps_them() {
    // A capture cut inside its last record: one warning.
    let good = pcap_of(&merge(&[accepted(), refused()]));
    let with_extra = pcap_of(&merge(&[
        accepted(),
        refused(),
        accepted_at(9.0, 40_009, 443)[..1].to_vec(),
    ]));
    let cut = good.len() + 16 + (with_extra.len() - good.len() - 16) / 2;
    let t = TempPath::with_bytes("quiet_suppresses_warning_lines", ".pcap", &with_extra[..cut]);

    let loud = analyze(t.path(), &["--json"]);
    assert!(text(&loud.stderr).contains("synrst: warning:"), "{}", describe(&loud));
    for flag in ["-q", "--quiet"] {
        let o = analyze(t.path(), &["--json", flag]);
        assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
        assert!(o.stderr.is_empty(), "{flag}: {}", describe(&o));
        let report = json(&o);
        assert_eq!(
            report["capture"]["warnings"],
            json(&loud)["capture"]["warnings"],
            "{flag}"
        );
        assert_eq!(
            report["capture"]["warnings"].as_array().map(Vec::len),
            Some(1),
            "{flag}"
        );
    }
    // Errors are not warnings: still reported.
    let missing = analyze(Path::new("/nonexistent/capture.pcap"), &["--quiet"]);
    assert_usage_error(&missing);
}

/// A pcap above the progress bar's size threshold (64 MiB) that reads fast: 270 records of
/// 256 KiB that are not IP (skipped), then one SYN.
fn large_capture(test: &str) -> TempPath {
    use synrst::testutil::Tcp;
    let mut big = vec![0u8; 262_144];
    big[12..14].copy_from_slice(&[0x08, 0x06]); // ARP: skipped as not_ip
    let mut frames: Vec<(f64, Vec<u8>)> = (0..270).map(|i| (f64::from(i) * 0.001, big.clone())).collect();
    let syn = Tcp::syn(
        std::net::Ipv4Addr::new(198, 18, 0, 2),
        40_000,
        std::net::Ipv4Addr::new(198, 19, 0, 10),
        443,
        1,
    );
    frames.push((1.0, syn.frame()));
    let t = TempPath::with_bytes(test, ".pcap", &pcap_of(&frames));
    assert!(std::fs::metadata(t.path()).unwrap().len() > 64 << 20);
    t
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let t = large_capture("no_progress_bar_when_stderr_is_not_a_terminal");
    let o = analyze(t.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_eq!(json(&o)["capture"]["frames"], 271);
    // Not a byte: no bar, no carriage return or escape sequence.
    assert!(o.stderr.is_empty(), "{}", describe(&o));
}

#[test]
fn progress_bar_on_a_terminal_unless_quiet() {
    // `script` (util-linux) gives the child a terminal; without it this cannot be checked.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("note: no `script` command: the progress bar on a terminal is not checked");
        return;
    }
    let t = large_capture("progress_bar_on_a_terminal_unless_quiet");
    let out = TempPath::new("progress_bar_on_a_terminal_unless_quiet", ".json");
    let run = |extra: &str| {
        let cmd = format!(
            "{} analyze {} --json -o {} {extra}",
            env!("CARGO_BIN_EXE_synrst"),
            t.path().display(),
            out.path().display()
        );
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("run script");
        assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
        let report: Value = serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
        assert_eq!(report["capture"]["frames"], 271);
        text(&o.stdout)
    };
    let shown = run("");
    assert!(shown.contains("synrst: reading"), "{shown:?}");
    // Cleared before the report: the line ends erased.
    assert!(shown.trim_end().ends_with("\x1b[2K"), "{shown:?}");
    let quiet = run("--quiet");
    assert!(!quiet.contains("synrst: reading"), "{quiet:?}");
}

#[test]
fn a_full_listing_gives_way_to_failures() {
    // 30 accepted attempts, then 5 refused ones, listing at most 10: the refusals are listed
    // (in place of the oldest successes) and everything is still counted.
    use std::net::{IpAddr, Ipv4Addr};
    use synrst::testutil::{Tcp, C4, S4};
    let mut frames = Vec::new();
    for i in 0..35u16 {
        let s = Tcp::syn(
            IpAddr::V4(Ipv4Addr::from(C4)),
            20_000 + i,
            IpAddr::V4(Ipv4Addr::from(S4)),
            if i < 30 { 443 } else { 444 },
            1000 + u32::from(i),
        );
        let t = f64::from(i) * 0.01;
        frames.push((t, s.frame()));
        let answer = if i < 30 { Tcp::synack_to(&s, 7) } else { Tcp::rst_to(&s) };
        frames.push((t + 0.001, answer.frame()));
    }
    let t = TempPath::with_bytes("a_full_listing_gives_way_to_failures", ".pcap", &pcap_of(&frames));
    let o = analyze(t.path(), &["--json", "--max-listed", "10"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let r = json(&o);
    let listed = r["attempts"].as_array().expect("attempts");
    assert_eq!(listed.len(), 10);
    let refused: Vec<u64> = listed
        .iter()
        .filter(|a| a["outcome"] == "refused")
        .map(|a| a["client"]["port"].as_u64().unwrap())
        .collect();
    assert_eq!(refused, vec![20_030, 20_031, 20_032, 20_033, 20_034]);
    // The first ten successes were listed, the next twenty counted; of the ten, the oldest
    // five gave way.
    let accepted: Vec<u64> = listed
        .iter()
        .filter(|a| a["outcome"] == "accepted")
        .map(|a| a["client"]["port"].as_u64().unwrap())
        .collect();
    assert_eq!(accepted, vec![20_005, 20_006, 20_007, 20_008, 20_009]);
    let s = &r["summary"];
    assert_eq!(s["attempts"], 35);
    assert_eq!(s["unlisted_attempts"], 25);
    assert_eq!(s["by_outcome"]["accepted"], 30);
    assert_eq!(s["by_outcome"]["refused"], 5);
    let warnings = r["capture"]["warnings"].to_string();
    assert!(
        warnings.contains("25 attempt(s) are counted in the summary"),
        "{warnings}"
    );
}

#[test]
fn counts_cover_destinations_beyond_the_cap() {
    // 30 attempts to 30 servers (one refused in three), listing 5: 5 listed, 5 more
    // destinations counted one by one, the other 20 only in the capture-wide counts.
    use std::net::{IpAddr, Ipv4Addr};
    use synrst::testutil::{Tcp, C4};
    let mut frames = Vec::new();
    for i in 0..30u8 {
        let s = Tcp::syn(
            IpAddr::V4(Ipv4Addr::from(C4)),
            30_000 + u16::from(i),
            IpAddr::V4(Ipv4Addr::new(198, 19, 1, 1 + i)),
            443,
            1000,
        );
        let t = f64::from(i) * 0.01;
        frames.push((t, s.frame()));
        let answer = if i % 3 == 0 {
            Tcp::rst_to(&s)
        } else {
            Tcp::synack_to(&s, 7)
        };
        frames.push((t + 0.001, answer.frame()));
    }
    let t = TempPath::with_bytes("counts_cover_destinations_beyond_the_cap", ".pcap", &pcap_of(&frames));
    let o = analyze(t.path(), &["--json", "--max-listed", "5"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let r = json(&o);
    let s = &r["summary"];
    assert_eq!(s["attempts"], 30);
    assert_eq!(s["other_destinations"], 20, "{s}");
    let sum = |v: &Value| {
        v.as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum(&s["by_outcome"]), 30, "{s}");
    assert_eq!(sum(&s["by_verdict"]), 30, "{s}");
    assert_eq!(s["by_outcome"]["refused"], 10, "{s}");
    assert_eq!(s["by_outcome"]["accepted"], 20, "{s}");
    let md = text(&analyze(t.path(), &["--max-listed", "5", "--format", "markdown"]).stdout);
    assert!(
        md.starts_with("## synrst: 10 of 30 connection attempts failed"),
        "{}",
        md.lines().next().unwrap_or_default()
    );
}
