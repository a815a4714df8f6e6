//! JSON (one document) and the NDJSON closing line.

use std::io::{self, Write};

use serde::Serialize;

use crate::model::{CaptureSummary, Report, Summary};

pub(super) fn write_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    // A local buffer: serde_json's many small writes would each be a dynamic call otherwise.
    let mut buf = io::BufWriter::with_capacity(64 * 1024, out);
    serde_json::to_writer_pretty(&mut buf, report)?;
    buf.write_all(b"\n")?;
    buf.flush()
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
