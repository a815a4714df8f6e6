//! Helpers shared by the synrst fuzz targets and the seed generator.
//!
//! `decode_track` inputs are a compact frame list:
//!
//! ```text
//! byte 0      link type: LINKS[b % LINKS.len()]
//! byte 1      tracker: max_in_flight = 1 + (b & 7); bit 3 set: 1 ms timeout and linger
//! then, repeated until the input ends:
//!   u16 LE    captured length (cut to what is left of the input)
//!   u8        control: bit 0 the frame was cut (orig_len = len + 1000);
//!                      bit 1 the delta is in seconds, not microseconds (huge jumps);
//!                      bit 2 this frame uses link LINKS[control >> 4] instead
//!   i32 LE    time delta from the previous frame (negative: out of order), saturating
//!   bytes     the frame
//! ```

use std::io;
use std::path::PathBuf;

use synrst::capture::{LinkType, Source};
use synrst::report::{self, Format, Options};
use synrst::track::TrackConfig;
use synrst::AnalyzeConfig;

/// Link types a frame list can choose from: every supported one and one unsupported.
pub const LINKS: [u32; 11] = [1, 113, 276, 101, 228, 229, 12, 14, 0, 108, 147];

/// Every report format.
pub const FORMATS: [Format; 5] = [
    Format::Table,
    Format::Json,
    Format::Ndjson,
    Format::Markdown,
    Format::Html,
];

/// One frame of a frame list.
#[derive(Clone, Debug)]
pub struct Frame<'a> {
    /// Link type.
    pub link: u32,
    /// Nanoseconds since the epoch.
    pub ts: i64,
    /// Length on the wire.
    pub orig_len: u32,
    /// Captured bytes.
    pub data: &'a [u8],
}

/// A parsed `decode_track` input.
pub struct FrameList<'a> {
    /// Tracker settings chosen by the input.
    pub track: TrackConfig,
    /// The frames.
    pub frames: Vec<Frame<'a>>,
}

/// Parses a `decode_track` input (total: every byte string is some frame list).
pub fn parse_frames(data: &[u8]) -> FrameList<'_> {
    let link = LINKS[usize::from(data.first().copied().unwrap_or(0)) % LINKS.len()];
    let ctl = data.get(1).copied().unwrap_or(0);
    let mut track = TrackConfig {
        max_in_flight: 1 + usize::from(ctl & 7),
        ..TrackConfig::default()
    };
    if ctl & 8 != 0 {
        track.timeout_ns = 1_000_000;
        track.linger_ns = 1_000_000;
    }
    let mut rest = data.get(2..).unwrap_or(&[]);
    let mut ts: i64 = 1_700_000_000_000_000_000;
    let mut frames = Vec::new();
    while rest.len() >= 7 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let c = rest[2];
        let delta = i64::from(i32::from_le_bytes([rest[3], rest[4], rest[5], rest[6]]));
        rest = &rest[7..];
        let len = len.min(rest.len());
        let (bytes, tail) = rest.split_at(len);
        rest = tail;
        let unit = if c & 2 != 0 { 1_000_000_000 } else { 1_000 };
        ts = ts.saturating_add(delta.saturating_mul(unit));
        frames.push(Frame {
            link: if c & 4 != 0 {
                LINKS[usize::from(c >> 4) % LINKS.len()]
            } else {
                link
            },
            ts,
            orig_len: len as u32 + if c & 1 != 0 { 1000 } else { 0 },
            data: bytes,
        });
    }
    FrameList { track, frames }
}

/// Encodes frames as a `decode_track` input (for seeds): `link` must be in [`LINKS`].
pub fn encode_frames(link: u32, ctl: u8, frames: &[(i64, u32, u32, &[u8])]) -> Vec<u8> {
    let index = |l: u32| LINKS.iter().position(|x| *x == l).unwrap_or(0) as u8;
    let mut out = vec![index(link), ctl];
    let mut prev: Option<i64> = None;
    for (ts, flink, orig_len, data) in frames {
        let data = &data[..data.len().min(usize::from(u16::MAX))];
        let micros = prev.map_or(0, |p| (ts.saturating_sub(p)) / 1000);
        let delta = i32::try_from(micros).unwrap_or(if micros < 0 { i32::MIN } else { i32::MAX });
        prev = Some(prev.map_or(*ts, |p| p.saturating_add(i64::from(delta) * 1000)));
        let mut c = 0u8;
        if *orig_len as usize > data.len() {
            c |= 1;
        }
        if *flink != link {
            c |= 4 | (index(*flink) << 4);
        }
        out.extend_from_slice(&(data.len() as u16).to_le_bytes());
        out.push(c);
        out.extend_from_slice(&delta.to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

/// Writes frames as a little-endian pcapng with one interface per link type (nanosecond
/// resolution, an offset that makes the earliest timestamp representable).
pub fn pcapng(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut links: Vec<u32> = Vec::new();
    for f in frames {
        if !links.contains(&f.link) {
            links.push(f.link);
        }
    }
    let min = frames.iter().map(|f| f.ts).min().unwrap_or(0);
    let offset_secs = min.div_euclid(1_000_000_000);
    let base = i128::from(offset_secs) * 1_000_000_000;
    let mut out = Vec::new();
    block(&mut out, 0x0A0D_0D0A, &{
        let mut b = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        b
    });
    for l in &links {
        let mut b = Vec::new();
        b.extend_from_slice(&(*l as u16).to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        // if_tsresol = 9 (nanoseconds), if_tsoffset, opt_endofopt.
        b.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]);
        b.extend_from_slice(&[14, 0, 8, 0]);
        b.extend_from_slice(&offset_secs.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        block(&mut out, 1, &b);
    }
    for f in frames {
        let ifc = links.iter().position(|l| *l == f.link).unwrap_or(0) as u32;
        let units = u64::try_from(i128::from(f.ts) - base).unwrap_or(u64::MAX);
        let mut b = Vec::new();
        b.extend_from_slice(&ifc.to_le_bytes());
        b.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(units as u32).to_le_bytes());
        b.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&f.orig_len.to_le_bytes());
        b.extend_from_slice(f.data);
        b.resize(b.len().next_multiple_of(4), 0);
        block(&mut out, 6, &b);
    }
    out
}

fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let len = (12 + body.len()) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&len.to_le_bytes());
}

/// A per-process scratch file on tmpfs where available (`/dev/shm`), else the temp dir.
pub fn scratch_path(tag: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("synrst-fuzz-{tag}-{}", std::process::id()))
}

/// Runs `synrst::analyze` over `bytes` (as a file), checks the frame accounting and renders
/// every report format into a sink. Errors (not a capture) are fine; panics are not.
pub fn analyze_bytes(bytes: &[u8], track: TrackConfig, tag: &str) {
    let path = scratch_path(tag);
    std::fs::write(&path, bytes).expect("scratch file");
    let cfg = AnalyzeConfig {
        sources: vec![Source::Path(path)],
        track,
        progress: None,
    };
    let mut streamed = 0u64;
    let mut on_closed = |a: &synrst::model::AttemptRecord| {
        streamed += 1;
        report::write_ndjson_attempt(a, &mut io::sink()).expect("sink");
    };
    let result = synrst::analyze(&cfg, Some(&mut on_closed));
    // Removed at once: fork mode starts many processes, each with its own scratch file.
    let _ = std::fs::remove_file(scratch_path(tag));
    let Ok(r) = result else {
        return;
    };
    // Every packet record read is decoded or skipped with a reason.
    let skipped: u64 = r.capture.skipped.values().sum();
    assert_eq!(r.capture.frames, r.capture.decoded + skipped, "frame accounting");
    assert_eq!(streamed, r.attempts.len() as u64, "every attempt streamed once");
    for f in FORMATS {
        for all in [false, true] {
            report::write(&r, f, Options { all }, &mut io::sink()).expect("sink");
        }
    }
}

/// Whether `link` is one the frame lists can name.
pub fn listed(link: LinkType) -> bool {
    LINKS.contains(&link.0)
}
