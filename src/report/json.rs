//! JSON (one document) and the NDJSON closing line.

use std::io::{self, Write};

use serde::Serialize;

use crate::model::{CaptureSummary, Report, Summary};

pub(super) fn write_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
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
