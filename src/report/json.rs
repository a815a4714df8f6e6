//! JSON (one document) and the NDJSON closing line.
//!
//! The document is exactly what `serde_json::to_writer_pretty` writes for the [`Report`], plus
//! a newline, but the `attempts` array (nearly all of a big report) is serialised in chunks on
//! two threads: each chunk goes to a byte buffer with a [`Pretty`] formatter that starts at the
//! element's depth, and the chunks are written in order.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use serde::Serialize;
use serde_json::ser::Formatter;

use crate::model::{AttemptRecord, CaptureSummary, Destination, Report, Summary};

/// Attempts serialised per piece (a buffer of some 70 KiB).
const CHUNK: usize = 32;
/// Destinations of the summary per piece (some 60 KiB).
const DEST_CHUNK: usize = 256;

pub(super) fn write_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    write_json_chunked(report, out, CHUNK, DEST_CHUNK)
}

/// A part of the document, made into one buffer.
enum Piece<'a> {
    /// Attempts; the first ones of the array or not.
    Attempts(&'a [AttemptRecord], bool),
    /// The end of the attempts array, and the summary up to its destinations.
    SummaryHead,
    /// Destinations of the summary; the first ones or not.
    Destinations(&'a [Destination], bool),
    /// The rest of the document.
    Tail,
}

/// [`write_json`] with `chunk` attempts and `dest_chunk` destinations per piece; two threads
/// once there are several pieces.
fn write_json_chunked(report: &Report, out: &mut dyn Write, chunk: usize, dest_chunk: usize) -> io::Result<()> {
    // Every field, so that a new one cannot be forgotten here (the order is the struct's).
    let Report {
        schema,
        tool,
        capture,
        attempts,
        summary,
        probe,
    } = report;
    let Summary {
        attempts: summary_attempts,
        unlisted_attempts,
        other_destinations,
        by_outcome,
        by_verdict,
        destinations,
        floods,
        hints,
    } = summary;
    let mut head = Vec::with_capacity(64 * 1024);
    head.push(b'{');
    member(&mut head, true, 1, "schema", schema)?;
    member(&mut head, false, 1, "tool", tool)?;
    member(&mut head, false, 1, "capture", capture)?;
    head.extend_from_slice(b",\n  \"attempts\": [");
    out.write_all(&head)?;
    drop(head);
    let mut pieces: Vec<Piece> = Vec::new();
    for (i, c) in attempts.chunks(chunk.max(1)).enumerate() {
        pieces.push(Piece::Attempts(c, i == 0));
    }
    pieces.push(Piece::SummaryHead);
    for (i, c) in destinations.chunks(dest_chunk.max(1)).enumerate() {
        pieces.push(Piece::Destinations(c, i == 0));
    }
    pieces.push(Piece::Tail);
    let make = |k: usize, buf: &mut Vec<u8>| -> io::Result<()> {
        match pieces[k] {
            Piece::Attempts(items, first) => elements(items, first, 2, buf),
            Piece::Destinations(items, first) => elements(items, first, 3, buf),
            Piece::SummaryHead => {
                close_array(buf, 1, attempts.is_empty());
                buf.extend_from_slice(b",\n  \"summary\": {");
                member(buf, true, 2, "attempts", summary_attempts)?;
                member(buf, false, 2, "unlisted_attempts", unlisted_attempts)?;
                member(buf, false, 2, "other_destinations", other_destinations)?;
                member(buf, false, 2, "by_outcome", by_outcome)?;
                member(buf, false, 2, "by_verdict", by_verdict)?;
                buf.extend_from_slice(b",\n    \"destinations\": [");
                Ok(())
            }
            Piece::Tail => {
                close_array(buf, 2, destinations.is_empty());
                // `skip_serializing_if = "Vec::is_empty"`, as in the model.
                if !floods.is_empty() {
                    member(buf, false, 2, "floods", floods)?;
                }
                member(buf, false, 2, "hints", hints)?;
                buf.extend_from_slice(b"\n  }");
                if let Some(probe) = probe {
                    member(buf, false, 1, "probe", probe)?;
                }
                buf.extend_from_slice(b"\n}\n");
                Ok(())
            }
        }
    };
    in_order(pieces.len(), make, out)?;
    out.flush()
}

/// Closes an array whose elements are at `depth + 1`.
fn close_array(buf: &mut Vec<u8>, depth: usize, empty: bool) {
    if !empty {
        buf.push(b'\n');
        buf.resize(buf.len() + 2 * depth, b' ');
    }
    buf.push(b']');
}

/// Makes pieces `0..n` with `make` on this thread and one more, and writes them to `out` in
/// order, with at most a few buffers alive.
fn in_order(
    n: usize,
    make: impl Fn(usize, &mut Vec<u8>) -> io::Result<()> + Sync,
    out: &mut dyn Write,
) -> io::Result<()> {
    /// Pieces made ahead of the one to write next, at most.
    const AHEAD: usize = 4;
    // Below the allocator's mmap threshold: reused from the heap rather than mapped afresh.
    let new_buf = || Vec::with_capacity(96 * 1024);
    if n <= 2 {
        let mut buf = new_buf();
        for k in 0..n {
            buf.clear();
            make(k, &mut buf)?;
            out.write_all(&buf)?;
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    // Written buffers, to be filled again (there are never more than a few).
    let pool: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    let take = |pool: &Mutex<Vec<Vec<u8>>>| {
        let mut buf = pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_else(new_buf);
        buf.clear();
        buf
    };
    let give = |pool: &Mutex<Vec<Vec<u8>>>, buf| {
        if let Ok(mut p) = pool.lock() {
            p.push(buf);
        }
    };
    let (next, make, pool, take) = (&next, &make, &pool, &take);
    std::thread::scope(|s| {
        let (done_tx, done_rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(AHEAD);
        let worker = s.spawn(move || -> io::Result<()> {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n {
                    return Ok(());
                }
                let mut buf = take(pool);
                make(k, &mut buf)?;
                if done_tx.send((k, buf)).is_err() {
                    // The writer stopped, on an error it reports.
                    return Ok(());
                }
            }
        });
        let mut ready: Vec<Option<Vec<u8>>> = (0..n).map(|_| None).collect();
        let mut waiting = 0;
        let mut written = 0;
        let mut result = Ok(());
        while written < n {
            while let Ok((k, buf)) = done_rx.try_recv() {
                ready[k] = Some(buf);
                waiting += 1;
            }
            if let Some(buf) = ready[written].take() {
                waiting -= 1;
                written += 1;
                result = out.write_all(&buf);
                if result.is_err() {
                    break;
                }
                give(pool, buf);
                continue;
            }
            if waiting < AHEAD {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k < n {
                    let mut buf = take(pool);
                    result = make(k, &mut buf);
                    if result.is_err() {
                        break;
                    }
                    ready[k] = Some(buf);
                    waiting += 1;
                    continue;
                }
            }
            match done_rx.recv() {
                Ok((k, buf)) => {
                    ready[k] = Some(buf);
                    waiting += 1;
                }
                // The worker stopped early: its result says why.
                Err(_) => break,
            }
        }
        drop(done_rx);
        match worker.join() {
            Ok(r) => result.and(r),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// `"key": value` as a member of an object whose members are at `depth`.
fn member<T: Serialize + ?Sized>(buf: &mut Vec<u8>, first: bool, depth: usize, key: &str, value: &T) -> io::Result<()> {
    buf.extend_from_slice(if first { b"\n" } else { b",\n" });
    buf.resize(buf.len() + 2 * depth, b' ');
    buf.push(b'"');
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"\": ");
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut *buf,
        Pretty::at(depth),
    ))?;
    Ok(())
}

/// Serialises `items` as elements of an array (at `depth`) into `buf`, each preceded by its
/// separator and indent.
fn elements<T: Serialize>(items: &[T], first: bool, depth: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    for (i, a) in items.iter().enumerate() {
        buf.extend_from_slice(if first && i == 0 { b"\n" } else { b",\n" });
        buf.resize(buf.len() + 2 * depth, b' ');
        a.serialize(&mut serde_json::Serializer::with_formatter(
            &mut *buf,
            Pretty::at(depth),
        ))?;
    }
    Ok(())
}

/// serde_json's `PrettyFormatter` (two spaces per level) starting at a given depth, writing
/// each indent in one piece.
struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    fn at(depth: usize) -> Pretty {
        Pretty {
            depth,
            has_value: false,
        }
    }

    #[inline]
    fn newline_indent<W: ?Sized + Write>(&self, w: &mut W, comma: bool) -> io::Result<()> {
        const SPACES: &[u8; 66] = b",\n                                                                ";
        let end = 2 + 2 * self.depth;
        if end > SPACES.len() {
            return self.deep_newline_indent(w, comma);
        }
        w.write_all(&SPACES[usize::from(!comma)..end])
    }

    #[cold]
    fn deep_newline_indent<W: ?Sized + Write>(&self, w: &mut W, comma: bool) -> io::Result<()> {
        w.write_all(if comma { b",\n" } else { b"\n" })?;
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl Formatter for Pretty {
    #[inline]
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    #[inline]
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline_indent(w, false)?;
        }
        w.write_all(b"]")
    }

    #[inline]
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.newline_indent(w, !first)
    }

    #[inline]
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    #[inline]
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    #[inline]
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline_indent(w, false)?;
        }
        w.write_all(b"}")
    }

    #[inline]
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.newline_indent(w, !first)
    }

    #[inline]
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    #[inline]
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

pub(super) fn write_ndjson_summary(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        schema: u32,
        capture: &'a CaptureSummary,
        summary: &'a Summary,
    }
    serde_json::to_writer(
        &mut *out,
        &Line {
            kind: "summary",
            schema: report.schema,
            capture: &report.capture,
            summary: &report.summary,
        },
    )?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Source;
    use crate::{analyze, AnalyzeConfig};

    fn pretty(report: &Report) -> Vec<u8> {
        let mut want = serde_json::to_vec_pretty(report).expect("serialises");
        want.push(b'\n');
        want
    }

    fn chunked(report: &Report, chunk: usize) -> Vec<u8> {
        let mut got = Vec::new();
        write_json_chunked(report, &mut got, chunk, chunk + 1).expect("writes");
        got
    }

    fn lab_reports() -> Vec<(String, Report)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("captures/")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
            .collect();
        paths.sort();
        assert!(paths.len() >= 20, "the lab captures are in {}", dir.display());
        paths
            .into_iter()
            .map(|p| {
                let cfg = AnalyzeConfig {
                    sources: vec![Source::Path(p.clone())],
                    track: Default::default(),
                    progress: None,
                };
                (p.display().to_string(), analyze(&cfg, None).expect("analyses"))
            })
            .collect()
    }

    /// The document is byte for byte what `to_writer_pretty` writes, whatever the chunking
    /// (one thread or two, first and last chunks short or full).
    #[test]
    fn chunked_document_is_to_writer_pretty() {
        for (name, report) in lab_reports() {
            let want = pretty(&report);
            for chunk in [1, 2, 3, 5, CHUNK] {
                assert!(chunked(&report, chunk) == want, "{name}, chunks of {chunk}");
            }
        }
    }

    /// An NDJSON attempt line is what serde's `flatten` writes for the record behind a `type`
    /// key, and one line.
    #[test]
    fn ndjson_attempt_lines_are_the_flattened_records() {
        #[derive(Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            attempt: &'a crate::model::AttemptRecord,
        }
        let mut lines = 0;
        for (name, report) in lab_reports() {
            for a in &report.attempts {
                let mut want = serde_json::to_vec(&Line {
                    kind: "attempt",
                    attempt: a,
                })
                .expect("serialises");
                want.push(b'\n');
                let mut got = Vec::new();
                super::super::write_ndjson_attempt(a, &mut got).expect("writes");
                assert!(got == want, "{name}, attempt {}", a.id);
                lines += 1;
            }
        }
        assert!(lines >= 40, "{lines} lines compared");
    }

    /// All attempts and destinations of all lab captures in one report: many pieces on both
    /// threads.
    #[test]
    fn many_chunks_with_probe_and_no_attempts() {
        let mut reports = lab_reports();
        let (_, mut all) = reports.pop().expect("a report");
        for (_, r) in reports {
            all.attempts.extend(r.attempts);
            all.summary.destinations.extend(r.summary.destinations);
        }
        assert!(all.attempts.len() >= 40, "{} attempts", all.attempts.len());
        assert!(
            all.summary.destinations.len() >= 20,
            "{} destinations",
            all.summary.destinations.len()
        );
        let want = pretty(&all);
        for chunk in [1, 4, 7] {
            assert!(chunked(&all, chunk) == want, "chunks of {chunk}");
        }
        all.probe = Some(crate::probe::ProbeSummary {
            target: "example.test:443".into(),
            mode: crate::probe::ProbeMode::Local,
            addresses: vec!["192.0.2.1".parse().expect("address")],
            port: 443,
            source: None,
            baseline: None,
            locate: None,
            trace: Vec::new(),
            packets_sent: 3,
            resets_sent: 0,
            duration_ms: 1.5,
            notes: vec!["a \"quoted\"\nnote".into()],
            local: None,
        });
        assert!(chunked(&all, 3) == pretty(&all), "with a probe summary");
        let server = all.summary.destinations[0].server;
        all.summary.floods = vec![crate::model::Flood {
            server,
            attempts: 5000,
            estimated_sources: 4321,
            no_answer: 4999,
        }];
        assert!(chunked(&all, 3) == pretty(&all), "with a flood");
        all.attempts.clear();
        assert!(chunked(&all, 3) == pretty(&all), "with no attempts");
        all.summary.destinations.clear();
        assert!(chunked(&all, 3) == pretty(&all), "with no destinations");
    }

    /// Depths beyond the indent table are indented like serde_json does.
    #[test]
    fn deep_nesting_matches_pretty_formatter() {
        let mut v = serde_json::json!({"leaf": [1, {"a": []}, {}]});
        for i in 0..40 {
            v = serde_json::json!({ format!("k{i}"): [v, i] });
        }
        let want = serde_json::to_vec_pretty(&v).expect("serialises");
        let mut got = Vec::new();
        v.serialize(&mut serde_json::Serializer::with_formatter(&mut got, Pretty::at(0)))
            .expect("serialises");
        assert!(got == want);
    }
}
