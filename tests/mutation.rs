//! Hostile input: deterministic mutants of real and built captures through the whole pipeline
//! (`synrst::analyze` and every report writer).
//!
//! For every mutant: no panic, bounded time (a hang detector, not a benchmark), every frame
//! accounted for (`frames == decoded + Σ skipped`), reports that are well-formed (JSON parses,
//! no control characters in text formats). For truncation of valid captures: the valid prefix
//! is analysed exactly as if the file ended there, plus a warning naming the damaged record's
//! byte offset. Mutants come from a seeded xorshift generator, so every run sees the same
//! ones; a failing mutant is saved under `target/tmp/mutation-failures/`.
//!
//! Files in `tests/regressions/` (found by `cargo fuzz`, see `fuzz/README.md`) each pass the
//! same checks, plus the specific assertion of the bug they reproduce.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use synrst::capture::Source;
use synrst::model::Report;
use synrst::report::{self, Format, Options};
use synrst::testutil::{icmp_error, pcap, Tcp, C4, C6, R4, S4, S6};
use synrst::track::{Outcome, TrackConfig};
use synrst::AnalyzeConfig;

/// Every report format.
const FORMATS: [Format; 5] = [
    Format::Table,
    Format::Json,
    Format::Ndjson,
    Format::Markdown,
    Format::Html,
];
/// One mutant (analysis and every writer) taking longer than this fails the test.
const SLOW: Duration = Duration::from_secs(2);
/// Give up waiting for a mutant after this long: it hangs.
const HANG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/// xorshift64* (Vigna), seeded per input so that each capture gets its own fixed mutants.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Rng {
        // FNV-1a of the seed string; never zero.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

// ---------------------------------------------------------------------------------------------
// Running one input through everything

/// Analyses `bytes` as a capture file and renders every format; checks the per-mutant
/// properties and collects failures (with the mutant saved) instead of stopping at the first.
struct Runner {
    name: String,
    dir: PathBuf,
    seq: usize,
    failures: Vec<String>,
    runs: usize,
    slowest: (Duration, String),
}

impl Runner {
    fn new(name: &str) -> Runner {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mutation-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Runner {
            name: name.to_string(),
            dir,
            seq: 0,
            failures: Vec::new(),
            runs: 0,
            slowest: (Duration::ZERO, String::new()),
        }
    }

    /// Runs one input with the default tracker settings.
    fn run(&mut self, desc: &str, bytes: &[u8]) -> Option<Report> {
        self.run_with(desc, bytes, TrackConfig::default())
    }

    fn run_with(&mut self, desc: &str, bytes: &[u8], track: TrackConfig) -> Option<Report> {
        self.runs += 1;
        self.seq += 1;
        // A fresh path per run keeps a hung worker (if any) from racing the next run; the
        // `file` field of every report is the same, so reports of two runs can be compared.
        let path = self.dir.join("capture");
        std::fs::write(&path, bytes).expect("write mutant");
        let (tx, rx) = mpsc::channel();
        let worker_path = path.clone();
        std::thread::Builder::new()
            .name(format!("mutant-{}", self.seq))
            .spawn(move || {
                let start = Instant::now();
                let result = catch_unwind(AssertUnwindSafe(|| analyze_and_render(&worker_path, track)));
                let _ = tx.send((result, start.elapsed()));
            })
            .expect("spawn worker");
        match rx.recv_timeout(HANG) {
            Ok((Ok(Ok(report)), elapsed)) => {
                if elapsed > self.slowest.0 {
                    self.slowest = (elapsed, desc.to_string());
                }
                if elapsed > SLOW {
                    self.fail(desc, bytes, &format!("took {elapsed:?} (limit {SLOW:?})"));
                }
                report
            }
            Ok((Ok(Err(problem)), _)) => {
                self.fail(desc, bytes, &problem);
                None
            }
            Ok((Err(panic), _)) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic".into());
                self.fail(desc, bytes, &format!("panicked: {msg}"));
                None
            }
            Err(_) => {
                let saved = self.save(desc, bytes);
                panic!(
                    "[{}] {desc}: no result after {HANG:?} (hang); mutant saved to {}",
                    self.name,
                    saved.display()
                );
            }
        }
    }

    fn save(&self, desc: &str, bytes: &[u8]) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mutation-failures");
        let _ = std::fs::create_dir_all(&dir);
        let clean: String = format!("{}-{desc}", self.name)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .take(120)
            .collect();
        let path = dir.join(clean);
        let _ = std::fs::write(&path, bytes);
        path
    }

    fn fail(&mut self, desc: &str, bytes: &[u8], problem: &str) {
        // Many mutants hitting one bug would drown the report: keep the first 20.
        if self.failures.len() < 20 {
            let saved = self.save(desc, bytes);
            self.failures
                .push(format!("{desc}: {problem} (saved: {})", saved.display()));
        } else if self.failures.len() == 20 {
            self.failures.push("… more failures omitted".into());
        }
    }

    /// A failure that is not about one mutant's run (e.g. a truncation property).
    fn check(&mut self, ok: bool, desc: &str, bytes: &[u8], problem: impl FnOnce() -> String) {
        if !ok {
            let p = problem();
            self.fail(desc, bytes, &p);
        }
    }

    fn finish(self) {
        eprintln!(
            "[{}] {} runs, slowest {:?} ({})",
            self.name, self.runs, self.slowest.0, self.slowest.1
        );
        let _ = std::fs::remove_dir_all(&self.dir);
        assert!(
            self.failures.is_empty(),
            "[{}] {} failing mutant(s):\n  {}",
            self.name,
            self.failures.len(),
            self.failures.join("\n  ")
        );
    }
}

/// The work done for one mutant; `Err` is a violated property (panics are caught outside).
fn analyze_and_render(path: &Path, track: TrackConfig) -> Result<Option<Report>, String> {
    let cfg = AnalyzeConfig {
        sources: vec![Source::Path(path.to_path_buf())],
        track,
        progress: None,
    };
    let mut streamed = 0usize;
    let mut on_closed = |a: &synrst::model::AttemptRecord| {
        streamed += 1;
        report::write_ndjson_attempt(a, &mut io::sink()).expect("sink");
    };
    let report = match synrst::analyze(&cfg, Some(&mut on_closed)) {
        Ok(r) => r,
        // Not a capture at all: an error is the right answer, as long as it is one.
        Err(_) => return Ok(None),
    };
    let c = &report.capture;
    let skipped: u64 = c.skipped.values().sum();
    if c.frames != c.decoded + skipped {
        return Err(format!(
            "frame accounting: frames {} != decoded {} + skipped {} ({:?})",
            c.frames, c.decoded, skipped, c.skipped
        ));
    }
    if streamed != report.attempts.len() {
        return Err(format!(
            "{} attempts streamed, {} reported",
            streamed,
            report.attempts.len()
        ));
    }
    for format in FORMATS {
        for all in [true, false] {
            let mut out = Vec::new();
            report::write(&report, format, Options { all }, &mut out)
                .map_err(|e| format!("{format:?} writer failed: {e}"))?;
            check_output(format, &out)?;
        }
    }
    Ok(Some(report))
}

/// Output sanity: JSON parses; text formats carry no control characters (terminal escapes).
fn check_output(format: Format, out: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(out).map_err(|e| format!("{format:?} output is not UTF-8: {e}"))?;
    match format {
        Format::Json => {
            serde_json::from_str::<serde_json::Value>(text).map_err(|e| format!("JSON output does not parse: {e}"))?;
        }
        Format::Ndjson => {
            for line in text.lines() {
                serde_json::from_str::<serde_json::Value>(line)
                    .map_err(|e| format!("NDJSON line does not parse: {e}: {line}"))?;
            }
        }
        _ => {
            if let Some(c) = text.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\t')) {
                return Err(format!("{format:?} output contains control character {:?}", c));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Capture layout (our own minimal reader, to know where records and fields are)

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pcap,
    Pcapng,
}

/// One record (pcap) or block (pcapng).
#[derive(Clone, Copy, Debug)]
struct Rec {
    start: usize,
    len: usize,
    /// pcapng block type (0 for pcap records).
    block: u32,
    /// Whether the record holds a packet (pcap record, EPB, SPB, obsolete PB).
    packet: bool,
    /// Byte order of the record's fields.
    le: bool,
}

#[derive(Clone, Debug)]
struct Layout {
    kind: Kind,
    /// Byte order of the file header / first section.
    le: bool,
    /// The pcap file header (24 bytes), or the first SHB.
    header_len: usize,
    recs: Vec<Rec>,
}

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

fn rd32(b: &[u8], off: usize, le: bool) -> u32 {
    let a = [b[off], b[off + 1], b[off + 2], b[off + 3]];
    if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    }
}

fn wr32(b: &mut [u8], off: usize, v: u32, le: bool) {
    if off + 4 <= b.len() {
        let a = if le { v.to_le_bytes() } else { v.to_be_bytes() };
        b[off..off + 4].copy_from_slice(&a);
    }
}

fn wr16(b: &mut [u8], off: usize, v: u16, le: bool) {
    if off + 2 <= b.len() {
        let a = if le { v.to_le_bytes() } else { v.to_be_bytes() };
        b[off..off + 2].copy_from_slice(&a);
    }
}

/// Splits a well-formed capture into records; None if it is not one we can walk.
fn layout(b: &[u8]) -> Option<Layout> {
    if b.len() < 24 {
        return None;
    }
    let magic = [b[0], b[1], b[2], b[3]];
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => {
            let le = magic[0] != 0xa1;
            let mut recs = Vec::new();
            let mut off = 24;
            while off + 16 <= b.len() {
                let caplen = rd32(b, off + 8, le) as usize;
                if off + 16 + caplen > b.len() {
                    return None;
                }
                recs.push(Rec {
                    start: off,
                    len: 16 + caplen,
                    block: 0,
                    packet: true,
                    le,
                });
                off += 16 + caplen;
            }
            (off == b.len()).then_some(Layout {
                kind: Kind::Pcap,
                le,
                header_len: 24,
                recs,
            })
        }
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            let mut recs = Vec::new();
            let mut off = 0;
            let mut le = true;
            let mut first_le = true;
            while off + 12 <= b.len() {
                let block_le = u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
                if block_le == SHB {
                    le = match [b[off + 8], b[off + 9], b[off + 10], b[off + 11]] {
                        [0x4d, 0x3c, 0x2b, 0x1a] => true,
                        [0x1a, 0x2b, 0x3c, 0x4d] => false,
                        _ => return None,
                    };
                    if off == 0 {
                        first_le = le;
                    }
                }
                let block = rd32(b, off, le);
                let len = rd32(b, off + 4, le) as usize;
                if len < 12 || off + len > b.len() {
                    return None;
                }
                recs.push(Rec {
                    start: off,
                    len,
                    block,
                    packet: matches!(block, EPB | SPB | PB),
                    le,
                });
                off += len;
            }
            let header_len = recs.first().map(|r| r.len)?;
            // The first record is the header itself.
            recs.remove(0);
            (off == b.len()).then_some(Layout {
                kind: Kind::Pcapng,
                le: first_le,
                header_len,
                recs,
            })
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Builders

/// A pcapng block.
fn ng_block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let len = (12 + body.len().next_multiple_of(4)) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + (body.len().next_multiple_of(4) - body.len()), 0);
    out.extend_from_slice(&len.to_le_bytes());
}

fn ng_shb(out: &mut Vec<u8>, major: u16) {
    let mut b = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    b.extend_from_slice(&major.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(-1i64).to_le_bytes());
    ng_block(out, SHB, &b);
}

/// An interface description block; `tsresol`/`tsoffset` add those options.
fn ng_idb(out: &mut Vec<u8>, link: u16, tsresol: Option<u8>, tsoffset: Option<i64>) {
    let mut b = Vec::new();
    b.extend_from_slice(&link.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&262_144u32.to_le_bytes());
    if let Some(r) = tsresol {
        b.extend_from_slice(&[9, 0, 1, 0, r, 0, 0, 0]);
    }
    if let Some(o) = tsoffset {
        b.extend_from_slice(&[14, 0, 8, 0]);
        b.extend_from_slice(&o.to_le_bytes());
    }
    if tsresol.is_some() || tsoffset.is_some() {
        b.extend_from_slice(&[0, 0, 0, 0]);
    }
    ng_block(out, IDB, &b);
}

/// An enhanced packet block at microsecond units.
fn ng_epb(out: &mut Vec<u8>, if_id: u32, units: u64, frame: &[u8]) {
    let mut b = Vec::new();
    b.extend_from_slice(&if_id.to_le_bytes());
    b.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(units as u32).to_le_bytes());
    b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    b.extend_from_slice(frame);
    ng_block(out, EPB, &b);
}

/// Linux cooked v2 framing (link type 276) of an IP packet.
fn sll2(ip: &[u8]) -> Vec<u8> {
    let proto: u16 = if ip.first().map(|b| b >> 4) == Some(6) {
        0x86dd
    } else {
        0x0800
    };
    let mut f = proto.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(ip);
    f
}

/// A small Ethernet pcap with one attempt of each outcome (v4 and v6), with retransmissions,
/// late answers and a port reuse.
fn built_pcap() -> Vec<u8> {
    let s1 = Tcp::syn(Ipv4Addr::from(C4), 40001, Ipv4Addr::from(S4), 80, 1000);
    let s2 = Tcp::syn(Ipv4Addr::from(C4), 40002, Ipv4Addr::from(S4), 81, 2000);
    let s3 = Tcp::syn(Ipv4Addr::from(C4), 40003, Ipv4Addr::from(S4), 82, 3000);
    let s4 = Tcp::syn(Ipv6Addr::from(C6), 40004, Ipv6Addr::from(S6), 443, 4000);
    let s5 = Tcp::syn(Ipv4Addr::from(C4), 40005, Ipv4Addr::from(S4), 83, 5000);
    let mut s5b = s5.clone();
    s5b.seq = 5555;
    let mut ack = Tcp::synack_to(&s1, 1);
    ack.syn = false;
    ack.src = s1.src;
    ack.dst = s1.dst;
    ack.sport = s1.sport;
    ack.dport = s1.dport;
    ack.seq = 1001;
    ack.ack = Some(2);
    pcap(
        1,
        &[
            (100.0, s1.frame()),
            (100.010, Tcp::synack_to(&s1, 1).ttl(61).frame()),
            (100.011, ack.frame()),
            (101.0, s2.frame()),
            (101.012, Tcp::rst_to(&s2).ttl(61).frame()),
            (102.0, s3.frame()),
            (
                102.005,
                icmp_error(Ipv4Addr::from(R4), Ipv4Addr::from(C4), 3, 13, &s3.ip_bytes(), 63),
            ),
            (103.0, s4.frame()),
            (103.020, Tcp::rst_to(&s4).ttl(60).frame()),
            (104.0, s5.frame()),
            (105.0, s5.frame()),
            (107.0, s5.frame()),
            (108.0, s5b.frame()),
            (112.0, Tcp::rst_to(&s5b).ttl(61).frame()),
            (115.0, Tcp::rst_to(&s5).ttl(61).frame()),
        ],
    )
}

/// A hand-built pcapng: one section, two interfaces of different link types (Ethernet and
/// Linux cooked v2) with different timestamp resolutions, packets interleaved.
fn built_pcapng() -> Vec<u8> {
    let s1 = Tcp::syn(Ipv4Addr::from(C4), 41001, Ipv4Addr::from(S4), 80, 11);
    let s2 = Tcp::syn(Ipv6Addr::from(C6), 41002, Ipv6Addr::from(S6), 22, 22);
    let s3 = Tcp::syn(Ipv4Addr::from(C4), 41003, Ipv4Addr::from(S4), 25, 33);
    let mut out = Vec::new();
    ng_shb(&mut out, 1);
    ng_idb(&mut out, 1, None, None);
    // Nanosecond interface.
    ng_idb(&mut out, 276, Some(9), None);
    let us = |t: f64| (t * 1e6) as u64;
    let ns = |t: f64| (t * 1e9) as u64;
    ng_epb(&mut out, 0, us(200.0), &s1.frame());
    ng_epb(&mut out, 1, ns(200.001), &sll2(&s2.ip_bytes()));
    ng_epb(&mut out, 0, us(200.010), &Tcp::synack_to(&s1, 7).ttl(61).frame());
    ng_epb(&mut out, 1, ns(200.030), &sll2(&Tcp::rst_to(&s2).ttl(60).ip_bytes()));
    ng_epb(&mut out, 1, ns(201.0), &sll2(&s3.ip_bytes()));
    ng_epb(
        &mut out,
        0,
        us(201.004),
        &icmp_error(Ipv4Addr::from(R4), Ipv4Addr::from(C4), 3, 10, &s3.ip_bytes()[..28], 63),
    );
    out
}

/// The captures to mutate: every committed one plus the built ones.
fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut v = vec![
        ("built.pcap".to_string(), built_pcap()),
        ("built.pcapng".to_string(), built_pcapng()),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".pcap.gz") || n.ends_with(".pcapng.gz")
    });
    files.sort();
    if files.is_empty() {
        eprintln!("note: no captures in {}; mutating built captures only", dir.display());
    }
    for p in files {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        let Ok(mut bytes) = std::fs::read(&p) else { continue };
        if name.ends_with(".gz") {
            let mut plain = Vec::new();
            let mut gz = flate2::read::MultiGzDecoder::new(&bytes[..]);
            if io::Read::read_to_end(&mut gz, &mut plain).is_err() {
                continue;
            }
            bytes = plain;
        }
        // Very large captures would make the test slow: mutate their first 256 KiB of records.
        if bytes.len() > 256 << 10 {
            if let Some(l) = layout(&bytes) {
                let end = l
                    .recs
                    .iter()
                    .map(|r| r.start + r.len)
                    .take_while(|e| *e <= 256 << 10)
                    .last()
                    .unwrap_or(l.header_len);
                bytes.truncate(end);
            }
        }
        v.push((name, bytes));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Mutators

/// Link types worth switching to: every supported one, common unsupported ones, and junk
/// (including FCS bits in the upper pcap link-type field).
const LINKS: [u32; 16] = [
    0,
    1,
    12,
    14,
    101,
    108,
    113,
    228,
    229,
    276,
    105,
    147,
    0xFFFF,
    0x0400_0001,
    0x03FF_FFFF,
    0xFFFF_FFFF,
];

/// Length values worth trying in length fields.
fn lengths(orig: u32) -> [u32; 16] {
    [
        0,
        1,
        3,
        11,
        12,
        13,
        orig.wrapping_sub(1),
        orig.wrapping_add(1),
        orig.wrapping_add(4),
        orig.saturating_mul(2),
        1 << 20,
        64 << 20,
        (64 << 20) + 4,
        0x7FFF_FFFF,
        0xFFFF_FFFC,
        0xFFFF_FFFF,
    ]
}

type Mutant = (String, Vec<u8>);

/// Offsets of header fields (file header, record/block headers), where flips hurt most.
fn header_bytes(l: &Layout) -> Vec<usize> {
    let mut v: Vec<usize> = (0..l.header_len.min(64)).collect();
    for r in &l.recs {
        let n = match l.kind {
            Kind::Pcap => 16,
            Kind::Pcapng if r.block == EPB => 28,
            Kind::Pcapng => r.len.min(32),
        };
        v.extend(r.start..r.start + n);
    }
    v
}

fn bit_flips(rng: &mut Rng, b: &[u8], l: Option<&Layout>, n: usize) -> Vec<Mutant> {
    let headers = l.map(header_bytes).unwrap_or_default();
    let mut out = Vec::new();
    for i in 0..n {
        let mut m = b.to_vec();
        let flips = 1 + rng.below(8);
        for _ in 0..flips {
            let pos = if !headers.is_empty() && rng.chance(2) {
                rng.pick(&headers)
            } else {
                rng.below(m.len())
            };
            if let Some(byte) = m.get_mut(pos) {
                *byte ^= 1 << rng.below(8);
            }
        }
        out.push((format!("bitflip-{i}x{flips}"), m));
    }
    out
}

/// Cut points: every record boundary (at most 48, evenly spread) and two points inside each
/// of at most 48 records (one in its header, one in its data).
fn cut_points(rng: &mut Rng, l: &Layout) -> Vec<(usize, &'static str)> {
    let mut cuts = vec![(0, "empty"), (1, "1-byte"), (l.header_len - 1, "inside-header")];
    let step = (l.recs.len() / 48).max(1);
    for r in l.recs.iter().step_by(step) {
        cuts.push((r.start, "boundary"));
        let hdr = match l.kind {
            Kind::Pcap => 16,
            Kind::Pcapng => 8,
        };
        cuts.push((r.start + 1 + rng.below(hdr - 1), "in-record-header"));
        if r.len > hdr + 1 {
            cuts.push((r.start + hdr + rng.below(r.len - hdr), "in-record-data"));
        }
    }
    cuts
}

fn length_fields(rng: &mut Rng, b: &[u8], l: &Layout, n: usize) -> Vec<Mutant> {
    let mut out = Vec::new();
    if l.recs.is_empty() {
        return out;
    }
    for i in 0..n {
        let r = l.recs[rng.below(l.recs.len())];
        let mut m = b.to_vec();
        let (field, off) = match (l.kind, rng.below(4)) {
            (Kind::Pcap, 0 | 1) => ("caplen", r.start + 8),
            (Kind::Pcap, _) => ("origlen", r.start + 12),
            (Kind::Pcapng, 0) => ("block_len", r.start + 4),
            (Kind::Pcapng, 1) => ("trailing_block_len", r.start + r.len - 4),
            (Kind::Pcapng, _) if r.block == EPB => ("epb_caplen", r.start + 20),
            (Kind::Pcapng, _) => ("block_len_both", r.start + 4),
        };
        let orig = rd32(&m, off, r.le);
        let v = rng.pick(&lengths(orig));
        wr32(&mut m, off, v, r.le);
        if field == "block_len_both" {
            wr32(&mut m, r.start + r.len - 4, v, r.le);
        }
        out.push((format!("len-{i}-{field}-rec@{}={v:#x}", r.start), m));
    }
    // The file's own snap length field (pcap) or the section length (pcapng): zero and huge.
    for v in [0u32, 0xFFFF_FFFF] {
        let mut m = b.to_vec();
        match l.kind {
            Kind::Pcap => wr32(&mut m, 16, v, l.le),
            Kind::Pcapng => wr32(&mut m, 4, v, l.le),
        }
        out.push((format!("len-fileheader={v:#x}"), m));
    }
    out
}

fn timestamps(rng: &mut Rng, b: &[u8], l: &Layout, n: usize) -> Vec<Mutant> {
    let mut out = Vec::new();
    let packets: Vec<Rec> = l.recs.iter().copied().filter(|r| r.packet && r.block != SPB).collect();
    if packets.is_empty() {
        return out;
    }
    // (high/seconds, low/fraction) offsets within a packet record.
    let ts_off = |r: &Rec| match l.kind {
        Kind::Pcap => (r.start, r.start + 4),
        Kind::Pcapng => (r.start + 12, r.start + 16),
    };
    let values = [
        0u32,
        1,
        999_999,
        1_000_000,
        999_999_999,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_FFFF,
    ];
    for i in 0..n {
        let mut m = b.to_vec();
        let r = packets[rng.below(packets.len())];
        let (hi, lo) = ts_off(&r);
        let desc = match rng.below(4) {
            0 => {
                let v = rng.pick(&values);
                wr32(&mut m, hi, v, r.le);
                format!("ts-{i}-high@{}={v:#x}", r.start)
            }
            1 => {
                let v = rng.pick(&values);
                wr32(&mut m, lo, v, r.le);
                format!("ts-{i}-low@{}={v:#x}", r.start)
            }
            2 => {
                // Two packets swap times: out of order.
                let q = packets[rng.below(packets.len())];
                let (qh, ql) = ts_off(&q);
                let (a, c) = (rd32(b, hi, r.le), rd32(b, lo, r.le));
                let (d, e) = (rd32(b, qh, q.le), rd32(b, ql, q.le));
                wr32(&mut m, hi, d, r.le);
                wr32(&mut m, lo, e, r.le);
                wr32(&mut m, qh, a, q.le);
                wr32(&mut m, ql, c, q.le);
                format!("ts-{i}-swap@{}@{}", r.start, q.start)
            }
            _ => {
                // Every timestamp random: wildly out of order, some absurd.
                for p in &packets {
                    let (h, o) = ts_off(p);
                    wr32(&mut m, h, rng.next() as u32 >> rng.below(32), p.le);
                    wr32(&mut m, o, rng.next() as u32, p.le);
                }
                format!("ts-{i}-all-random")
            }
        };
        out.push((desc, m));
    }
    // Reverse order of all timestamps.
    let mut m = b.to_vec();
    for (p, q) in packets.iter().zip(packets.iter().rev()) {
        let ((ph, pl), (qh, ql)) = (ts_off(p), ts_off(q));
        wr32(&mut m, ph, rd32(b, qh, q.le), p.le);
        wr32(&mut m, pl, rd32(b, ql, q.le), p.le);
    }
    out.push(("ts-reversed".into(), m));
    if l.kind == Kind::Pcap {
        // thiszone: the file-wide offset in seconds.
        for z in [i32::MIN, -1, i32::MAX] {
            let mut m = b.to_vec();
            wr32(&mut m, 8, z as u32, l.le);
            out.push((format!("ts-thiszone={z}"), m));
        }
    }
    out
}

/// pcapng: every IDB rebuilt with absurd resolution/offset options (the EPB times stay).
fn idb_options(b: &[u8], l: &Layout) -> Vec<Mutant> {
    let mut out = Vec::new();
    if l.kind != Kind::Pcapng || !l.le {
        return out;
    }
    let combos: [(Option<u8>, Option<i64>); 9] = [
        (Some(0), None),
        (Some(19), None),
        (Some(20), None),
        (Some(0x80), None),
        (Some(0x80 | 63), None),
        (Some(0xFF), None),
        (None, Some(i64::MIN)),
        (None, Some(i64::MAX)),
        (Some(0), Some(-10_000_000_000)),
    ];
    for (resol, offset) in combos {
        let mut m = b[..l.header_len].to_vec();
        for r in &l.recs {
            let rec = &b[r.start..r.start + r.len];
            if r.block == IDB && r.len >= 20 {
                let link = u16::from_le_bytes([rec[8], rec[9]]);
                ng_idb(&mut m, link, resol, offset);
            } else {
                m.extend_from_slice(rec);
            }
        }
        out.push((format!("idb-tsresol={resol:?}-tsoffset={offset:?}"), m));
    }
    out
}

fn link_types(b: &[u8], l: &Layout) -> Vec<Mutant> {
    let mut out = Vec::new();
    for link in LINKS {
        let mut m = b.to_vec();
        match l.kind {
            Kind::Pcap => wr32(&mut m, 20, link, l.le),
            Kind::Pcapng => {
                for r in l.recs.iter().filter(|r| r.block == IDB) {
                    wr16(&mut m, r.start + 8, link as u16, r.le);
                }
            }
        }
        out.push((format!("link={link:#x}"), m));
    }
    if l.kind == Kind::Pcapng {
        // Only the first interface changes: one section, two link types.
        if let Some(r) = l.recs.iter().find(|r| r.block == IDB) {
            let mut m = b.to_vec();
            wr16(&mut m, r.start + 8, 101, r.le);
            out.push(("link-first-idb-raw".into(), m));
        }
    }
    out
}

/// Records removed, duplicated, swapped; pcapng sections restarted, unknown and bad-version
/// blocks inserted; packets on an interface that was never described.
fn structure(rng: &mut Rng, b: &[u8], l: &Layout, n: usize) -> Vec<Mutant> {
    let mut out = Vec::new();
    if l.recs.is_empty() {
        return out;
    }
    let rebuild = |order: &[usize], extra: Option<(usize, Vec<u8>)>| {
        let mut m = b[..l.header_len].to_vec();
        for (pos, &i) in order.iter().enumerate() {
            if let Some((at, bytes)) = &extra {
                if *at == pos {
                    m.extend_from_slice(bytes);
                }
            }
            let r = l.recs[i];
            m.extend_from_slice(&b[r.start..r.start + r.len]);
        }
        m
    };
    let all: Vec<usize> = (0..l.recs.len()).collect();
    for i in 0..n {
        let k = l.recs.len();
        let (desc, m) = match rng.below(6) {
            0 => {
                let mut o = all.clone();
                let x = rng.below(k);
                o.remove(x);
                (format!("struct-{i}-drop-{x}"), rebuild(&o, None))
            }
            1 => {
                let mut o = all.clone();
                let x = rng.below(k);
                o.insert(rng.below(k + 1), x);
                (format!("struct-{i}-dup-{x}"), rebuild(&o, None))
            }
            2 => {
                let mut o = all.clone();
                let (x, y) = (rng.below(k), rng.below(k));
                o.swap(x, y);
                (format!("struct-{i}-swap-{x}-{y}"), rebuild(&o, None))
            }
            3 if l.kind == Kind::Pcapng => {
                // A new section in the middle: interfaces are forgotten after it.
                let mut shb = Vec::new();
                ng_shb(&mut shb, if rng.chance(2) { 1 } else { 2 });
                let at = rng.below(k + 1);
                (format!("struct-{i}-shb-at-{at}"), rebuild(&all, Some((at, shb))))
            }
            4 if l.kind == Kind::Pcapng => {
                let mut blk = Vec::new();
                let kind = rng.pick(&[0x0BAD_u32, 4, 5, 0x8000_0001, 0x0000_0BAD, SPB, PB]);
                let body: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                ng_block(&mut blk, kind, &body);
                let at = rng.below(k + 1);
                (
                    format!("struct-{i}-block-{kind:#x}-at-{at}"),
                    rebuild(&all, Some((at, blk))),
                )
            }
            5 if l.kind == Kind::Pcapng => {
                let mut m = b.to_vec();
                for r in l.recs.iter().filter(|r| r.block == EPB) {
                    if rng.chance(2) {
                        wr32(&mut m, r.start + 8, rng.pick(&[1u32, 7, 0xFFFF_FFFF]), r.le);
                    }
                }
                (format!("struct-{i}-unknown-if_id"), m)
            }
            _ => {
                let mut o = all.clone();
                o.reverse();
                (format!("struct-{i}-reversed"), rebuild(&o, None))
            }
        };
        out.push((desc, m));
    }
    out
}

/// Where in the record the frame bytes are, and how to rewrite the record around new bytes.
fn frame_range(l: &Layout, r: &Rec, b: &[u8]) -> Option<(usize, usize)> {
    match l.kind {
        Kind::Pcap => Some((r.start + 16, r.start + r.len)),
        Kind::Pcapng if r.block == EPB && r.len >= 32 => {
            let caplen = rd32(b, r.start + 20, r.le) as usize;
            (r.start + 28 + caplen <= r.start + r.len - 4).then_some((r.start + 28, r.start + 28 + caplen))
        }
        _ => None,
    }
}

/// Replaces the frame of record `r` with `new`, fixing the record's length fields.
fn replace_frame(b: &[u8], l: &Layout, r: &Rec, new: &[u8]) -> Option<Vec<u8>> {
    let (s, e) = frame_range(l, r, b)?;
    let mut m = b[..r.start].to_vec();
    match l.kind {
        Kind::Pcap => {
            let mut hdr = b[r.start..r.start + 16].to_vec();
            wr32(&mut hdr, 8, new.len() as u32, r.le);
            wr32(&mut hdr, 12, new.len() as u32, r.le);
            m.extend_from_slice(&hdr);
            m.extend_from_slice(new);
        }
        Kind::Pcapng => {
            let padded = new.len().next_multiple_of(4);
            let opts = &b[(e.next_multiple_of(4)).min(r.start + r.len - 4)..r.start + r.len - 4];
            let total = (28 + padded + opts.len() + 4) as u32;
            let mut hdr = b[r.start..s].to_vec();
            wr32(&mut hdr, 4, total, r.le);
            wr32(&mut hdr, 20, new.len() as u32, r.le);
            wr32(&mut hdr, 24, new.len() as u32, r.le);
            m.extend_from_slice(&hdr);
            m.extend_from_slice(new);
            m.resize(m.len() + padded - new.len(), 0);
            m.extend_from_slice(opts);
            m.extend_from_slice(&if r.le { total.to_le_bytes() } else { total.to_be_bytes() });
        }
    }
    m.extend_from_slice(&b[r.start + r.len..]);
    Some(m)
}

/// Ethernet frame transforms: deep VLAN stacks, MPLS label stacks, IPv6 extension-header
/// chains, lying IP length fields.
fn frame_transforms(rng: &mut Rng, f: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if f.len() < 14 {
        return out;
    }
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    for (n, tpid) in [
        (1, 0x8100u16),
        (2, 0x88a8),
        (3, 0x8100),
        (4, 0x8100),
        (16, 0x88a8),
        (300, 0x8100),
    ] {
        let mut v = f[..12].to_vec();
        for _ in 0..n {
            v.extend_from_slice(&tpid.to_be_bytes());
            v.extend_from_slice(&(rng.next() as u16 & 0x0FFF).to_be_bytes());
        }
        v.extend_from_slice(&f[12..]);
        out.push((format!("vlan{n}-{tpid:#x}"), v));
    }
    for (n, bottom) in [(1, true), (2, true), (8, true), (9, true), (40, true), (200, false)] {
        let mut v = f[..12].to_vec();
        v.extend_from_slice(&0x8847u16.to_be_bytes());
        for i in 0..n {
            let bos = u8::from(bottom && i == n - 1);
            v.extend_from_slice(&[0, 0x10, bos, 64]);
        }
        v.extend_from_slice(&f[14..]);
        out.push((format!("mpls{n}-bottom={bottom}"), v));
    }
    if ethertype == 0x86dd && f.len() >= 54 {
        for (k, bad_last) in [(1, false), (2, false), (8, false), (31, false), (200, false), (3, true)] {
            let next = f[14 + 6];
            let mut v = f[..54].to_vec();
            // Hop-by-hop must be first; then destination options / routing / fragment (offset 0).
            let kinds = [0u8, 60, 43, 44];
            let chain: Vec<u8> = (0..k)
                .map(|i| if i == 0 { 0 } else { kinds[1 + rng.below(3)] })
                .collect();
            v[14 + 6] = chain[0];
            for (i, kind) in chain.iter().enumerate() {
                let nh = chain.get(i + 1).copied().unwrap_or(next);
                let len = if bad_last && i == k - 1 { 255 } else { 0 };
                match kind {
                    44 => v.extend_from_slice(&[nh, 0, 0, 0, 0, 0, 0, 1]),
                    43 => v.extend_from_slice(&[nh, len, 0, 0, 0, 0, 0, 0]),
                    _ => v.extend_from_slice(&[nh, len, 1, 4, 0, 0, 0, 0]),
                }
            }
            v.extend_from_slice(&f[54..]);
            let plen = (v.len() - 54) as u16;
            v[18..20].copy_from_slice(&plen.to_be_bytes());
            out.push((format!("ipv6-ext{k}-badlast={bad_last}"), v));
        }
        for plen in [0u16, 1, 0xFFFF] {
            let mut v = f.to_vec();
            v[18..20].copy_from_slice(&plen.to_be_bytes());
            out.push((format!("ipv6-payload-len={plen}"), v));
        }
    }
    if ethertype == 0x0800 && f.len() >= 34 {
        for total in [0u16, 20, 21, 0xFFFF] {
            let mut v = f.to_vec();
            v[16..18].copy_from_slice(&total.to_be_bytes());
            out.push((format!("ipv4-total-len={total}"), v));
        }
        for ihl in [0u8, 4, 15] {
            let mut v = f.to_vec();
            v[14] = 0x40 | ihl;
            out.push((format!("ipv4-ihl={ihl}"), v));
        }
        // TCP data offset 0 and 15 (options longer than the segment).
        let ihl = usize::from(f[14] & 0x0F) * 4;
        if f.len() >= 14 + ihl + 20 && f[14 + 9] == 6 {
            for off in [0u8, 1, 15] {
                let mut v = f.to_vec();
                v[14 + ihl + 12] = (off << 4) | (v[14 + ihl + 12] & 0x0F);
                out.push((format!("tcp-data-offset={off}"), v));
            }
        }
    }
    out
}

/// Frame-level mutants of a capture: a few Ethernet frames rewritten by every transform.
fn frame_mutants(rng: &mut Rng, b: &[u8], l: &Layout) -> Vec<Mutant> {
    let link_is_ethernet = match l.kind {
        Kind::Pcap => rd32(b, 20, l.le) == 1,
        Kind::Pcapng => true,
    };
    let mut out = Vec::new();
    if !link_is_ethernet {
        return out;
    }
    let candidates: Vec<Rec> = l
        .recs
        .iter()
        .copied()
        .filter(|r| {
            frame_range(l, r, b).is_some_and(|(s, e)| {
                e - s >= 14 && matches!(u16::from_be_bytes([b[s + 12], b[s + 13]]), 0x0800 | 0x86dd)
            })
        })
        .collect();
    for _ in 0..3.min(candidates.len()) {
        let r = candidates[rng.below(candidates.len())];
        let Some((s, e)) = frame_range(l, &r, b) else { continue };
        for (desc, new) in frame_transforms(rng, &b[s..e]) {
            if let Some(m) = replace_frame(b, l, &r, &new) {
                out.push((format!("frame@{}-{desc}", r.start), m));
            }
        }
    }
    out
}

/// All mutants of one capture, a few hundred at most.
fn mutants(name: &str, b: &[u8]) -> Vec<Mutant> {
    let mut rng = Rng::new(name);
    let Some(l) = layout(b) else {
        eprintln!("note: {name} is not a capture this test can walk; bit flips only");
        return bit_flips(&mut rng, b, None, 100);
    };
    let mut out = Vec::new();
    for (at, what) in cut_points(&mut rng, &l) {
        out.push((format!("cut-{what}@{at}"), b[..at.min(b.len())].to_vec()));
    }
    out.extend(bit_flips(&mut rng, b, Some(&l), 80));
    out.extend(length_fields(&mut rng, b, &l, 40));
    out.extend(timestamps(&mut rng, b, &l, 30));
    out.extend(idb_options(b, &l));
    out.extend(link_types(b, &l));
    out.extend(structure(&mut rng, b, &l, 20));
    out.extend(frame_mutants(&mut rng, b, &l));
    out
}

// ---------------------------------------------------------------------------------------------
// Tests

/// `SYNRST_MUTATION=full` runs every mutant (about 300 per capture; use `--release`, or expect
/// minutes in a debug build). By default a deterministic sample spread over every kind of
/// mutation runs, so that `cargo test` stays fast in debug builds (where pcap-parser's 1 MiB
/// buffer initialisation alone costs ~16 ms per analysed file).
fn full_run() -> bool {
    std::env::var("SYNRST_MUTATION").is_ok_and(|v| v == "full")
}

/// Every `len / keep`-th mutant, starting at a per-capture offset.
fn sample(name: &str, ms: Vec<Mutant>, keep: usize) -> Vec<Mutant> {
    if full_run() || ms.len() <= keep {
        return ms;
    }
    let stride = ms.len().div_ceil(keep);
    let first = Rng::new(name).below(stride);
    ms.into_iter().skip(first).step_by(stride).collect()
}

#[test]
fn mutants_of_captures_never_panic_hang_or_lose_frames() {
    let mut runner = Runner::new("mutants");
    let mut total = 0;
    for (name, bytes) in inputs() {
        // The built captures hold the most variety (two link types, every outcome).
        let keep = if name.starts_with("built.") { 150 } else { 36 };
        let ms = sample(&name, mutants(&name, &bytes), keep);
        total += ms.len();
        for (i, (desc, m)) in ms.iter().enumerate() {
            // Every fourth mutant with a tiny tracker: eviction and tombstones under damage.
            let track = if i % 4 == 3 {
                TrackConfig {
                    max_in_flight: 2,
                    timeout_ns: 1_000_000,
                    linger_ns: 2_000_000,
                }
            } else {
                TrackConfig::default()
            };
            runner.run_with(&format!("{name}-{desc}"), m, track);
        }
    }
    eprintln!("{total} mutants");
    runner.finish();
}

#[test]
fn gzip_captures_cut_anywhere() {
    let mut runner = Runner::new("gzip");
    for (name, bytes) in inputs().into_iter().take(6) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        io::Write::write_all(&mut gz, &bytes).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let whole = runner.run(&format!("{name}.gz"), &gz);
        let plain = runner.run(&name, &bytes);
        runner.check(
            attempts_json(&whole) == attempts_json(&plain),
            &format!("{name}.gz"),
            &gz,
            || "gzip and plain analyses differ".into(),
        );
        let mut rng = Rng::new(&name);
        for _ in 0..12 {
            let at = rng.below(gz.len());
            runner.run(&format!("{name}.gz-cut@{at}"), &gz[..at]);
        }
        let mut m = gz.clone();
        for _ in 0..4 {
            let at = rng.below(m.len());
            m[at] ^= 1 << rng.below(8);
        }
        runner.run(&format!("{name}.gz-flipped"), &m);
        // Two gzip members, the second one damaged.
        let mut two = gz.clone();
        two.extend_from_slice(&gz[..gz.len() / 2]);
        runner.run(&format!("{name}.gz-two-members"), &two);
    }
    runner.finish();
}

fn attempts_json(r: &Option<Report>) -> Option<String> {
    r.as_ref().map(|r| serde_json::to_string(&r.attempts).expect("json"))
}

/// Truncation after N complete records: what is reported equals the analysis of the first N
/// records as a file of its own (which itself has no warning), a warning names the byte
/// offset of the damaged record, and every attempt of the whole capture whose packets all lie
/// in the first N frames is there with the same outcome.
#[test]
fn truncated_capture_keeps_the_valid_prefix() {
    let mut runner = Runner::new("truncation");
    for (name, bytes) in inputs() {
        let Some(l) = layout(&bytes) else { continue };
        let Some(full) = runner.run(&name, &bytes) else {
            runner.check(false, &name, &bytes, || "valid capture not analysed".into());
            continue;
        };
        if !full.capture.warnings.is_empty() {
            // Already damaged or odd: the property is about valid captures.
            continue;
        }
        let mut rng = Rng::new(&format!("trunc-{name}"));
        let spread = if full_run() { 24 } else { 5 };
        let step = l.recs.len().div_ceil(spread).max(1);
        let mut frames_before = 0u64;
        let mut boundaries = Vec::new();
        for r in &l.recs {
            boundaries.push((r.start, frames_before, *r));
            if r.packet {
                frames_before += 1;
            }
        }
        for &(start, n, rec) in boundaries.iter().step_by(step) {
            let desc = format!("{name}-prefix-{n}-frames@{start}");
            let prefix = &bytes[..start];
            let Some(clean) = runner.run(&desc, prefix) else {
                runner.check(false, &desc, prefix, || {
                    "prefix at a record boundary not analysed".into()
                });
                continue;
            };
            runner.check(clean.capture.warnings.is_empty(), &desc, prefix, || {
                format!(
                    "a file ending at a record boundary is not damage: {:?}",
                    clean.capture.warnings
                )
            });
            runner.check(clean.capture.frames == n, &desc, prefix, || {
                format!("{} frames reported, {n} in the prefix", clean.capture.frames)
            });
            // Attempts entirely inside the prefix keep their outcome.
            for a in &full.attempts {
                let mut frames = a.packets.iter().map(|p| p.frame).chain(a.syn_frame);
                if a.syn_seen && a.syn_frame.is_none() {
                    continue;
                }
                if !frames.all(|f| f >= 1 && f <= n) {
                    continue;
                }
                let found = clean
                    .attempts
                    .iter()
                    .any(|p| p.client == a.client && p.server == a.server && p.isn == a.isn && p.outcome == a.outcome);
                runner.check(found, &desc, prefix, || {
                    format!(
                        "attempt {} ({} → {}, isn {}, {:?}) lies in the first {n} frames but is missing or changed",
                        a.id, a.client, a.server, a.isn, a.outcome
                    )
                });
            }
            // Cut inside the next record, in its header and in its data.
            let hdr = match l.kind {
                Kind::Pcap => 16,
                Kind::Pcapng => 8,
            };
            let mut cuts = vec![start + 1 + rng.below(hdr - 1)];
            if rec.len > hdr + 1 {
                cuts.push(start + hdr + rng.below(rec.len - hdr));
            }
            for cut in cuts {
                let desc = format!("{name}-cut-in-record@{start}+{}", cut - start);
                let m = &bytes[..cut];
                let Some(t) = runner.run(&desc, m) else {
                    runner.check(false, &desc, m, || "truncated capture not analysed".into());
                    continue;
                };
                runner.check(
                    attempts_json(&Some(t.clone())) == attempts_json(&Some(clean.clone())),
                    &desc,
                    m,
                    || "attempts differ from the analysis of the valid prefix".into(),
                );
                runner.check(t.capture.frames == n, &desc, m, || {
                    format!("{} frames reported, {n} complete in the file", t.capture.frames)
                });
                let offsets: Vec<Option<u64>> = t.capture.warnings.iter().map(|w| w.offset).collect();
                runner.check(offsets.contains(&Some(start as u64)), &desc, m, || {
                    format!("no warning at byte offset {start}: {:?}", t.capture.warnings)
                });
            }
        }
    }
    runner.finish();
}

/// Whole captures of deep encapsulations built from scratch (not from a capture's frames):
/// VLAN and MPLS stacks and IPv6 extension-header chains around each kind of answer, and in the
/// packet quoted by an ICMPv6 error.
#[test]
fn deep_encapsulations_never_panic() {
    let mut runner = Runner::new("deep");
    let mut rng = Rng::new("deep");
    let s4 = Tcp::syn(Ipv4Addr::from(C4), 42000, Ipv4Addr::from(S4), 80, 9);
    let s6 = Tcp::syn(Ipv6Addr::from(C6), 42001, Ipv6Addr::from(S6), 80, 10);
    let frames = [
        s4.frame(),
        Tcp::rst_to(&s4).frame(),
        s6.frame(),
        Tcp::synack_to(&s6, 3).frame(),
        icmp_error(Ipv6Addr::from(S6), Ipv6Addr::from(C6), 1, 4, &s6.ip_bytes(), 60),
    ];
    for (i, f) in frames.iter().enumerate() {
        for (desc, new) in frame_transforms(&mut rng, f) {
            // Every packet of the pair wrapped the same way, then alone after a plain SYN.
            let plain: Vec<(f64, Vec<u8>)> = frames.iter().enumerate().map(|(j, f)| (j as f64, f.clone())).collect();
            let mut wrapped = plain.clone();
            wrapped[i].1 = new.clone();
            runner.run(&format!("frame{i}-{desc}"), &pcap(1, &wrapped));
        }
    }
    // The quote of an ICMPv6 error carries the extension-header chain.
    for (desc, new) in frame_transforms(&mut rng, &s6.frame()) {
        if !desc.starts_with("ipv6") {
            continue;
        }
        let quoted = &new[14..];
        let icmp = icmp_error(Ipv6Addr::from(S6), Ipv6Addr::from(C6), 1, 1, quoted, 60);
        runner.run(
            &format!("icmp6-quote-{desc}"),
            &pcap(1, &[(0.0, s6.frame()), (0.1, icmp)]),
        );
    }
    runner.finish();
}

// ---------------------------------------------------------------------------------------------
// Regressions found by cargo fuzz (tests/regressions/, see fuzz/README.md)

fn regression(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every regression file passes the generic checks (no panic, bounded time, frame accounting,
/// well-formed reports), with the default tracker and with a tiny one.
#[test]
fn every_regression_file_passes_the_generic_checks() {
    let mut runner = Runner::new("regressions");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"));
    files.sort();
    for p in &files {
        let bytes = std::fs::read(p).expect("read regression");
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        runner.run(&name, &bytes);
        let tiny = TrackConfig {
            max_in_flight: 1,
            timeout_ns: 1,
            linger_ns: 1,
        };
        runner.run_with(&format!("{name}-tiny-tracker"), &bytes, tiny);
    }
    runner.finish();
}

/// F1: a pcapng packet on an interface no IDB declared was counted in `skipped` but not in
/// `frames` (fixed in src/capture/file.rs, `skip_unknown_interface`).
#[test]
fn regression_unknown_interface_packet_is_a_counted_frame() {
    let bytes = regression("pcapng-epb-unknown-interface.pcapng");
    let mut runner = Runner::new("f1");
    let r = runner.run("f1", &bytes).expect("analysed");
    let c = &r.capture;
    assert_eq!(c.frames, 3, "{c:?}");
    assert_eq!(c.skipped.get("unknown_interface"), Some(&2), "{:?}", c.skipped);
    assert_eq!(c.frames, c.decoded + c.skipped.values().sum::<u64>());
    assert_eq!(r.attempts.len(), 1);
    runner.finish();
}

/// F2: one SYN and its RST each captured twice, at i64::MAX ns (interface 0: if_tsresol 0,
/// timestamp 2^64−1 s) and at i64::MIN ns (interface 1: if_tsoffset −2^63 s). The tracker's
/// duplicate checks computed `a.ts − b.ts` in i64 (src/track.rs `on_syn` and `is_duplicate`):
/// overflow, a panic in debug builds; in release the difference wrapped to 1 ns and the
/// retransmission and the second RST were dropped as duplicate frames.
#[test]
fn regression_far_apart_timestamps_do_not_overflow() {
    let bytes = regression("pcapng-timestamps-far-apart.pcapng");
    let mut runner = Runner::new("f2");
    let r = runner.run("f2", &bytes);
    runner.finish();
    let a = &r.expect("analysed").attempts;
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].syns, 2,
        "SYNs 2^64 ns apart are a retransmission, not one frame captured twice"
    );
    assert_eq!(
        a[0].packets.len(),
        2,
        "RSTs 2^64 ns apart are two packets: {:?}",
        a[0].packets
    );
    assert_eq!(a[0].outcome, Outcome::Refused);
}
