//! Report stage: one writer per format over one finished [`Report`].
//!
//! Every string that came from the wire is built by synrst from numbers and addresses, never
//! copied from packet payloads; the writers still escape for where text goes ([`escape`]).

pub mod html;
mod json;
mod markdown;
mod table;

use std::io::{self, Write};

use crate::model::{AttemptRecord, Report};

pub use markdown::write_markdown;
pub(crate) use table::ms;
pub use table::write_table;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable tables (default).
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line: attempts as they resolve, then a summary.
    Ndjson,
    /// Markdown for incident tickets.
    Markdown,
    /// One self-contained HTML page with timelines.
    Html,
}

/// Writer options.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Table/Markdown: list accepted attempts too.
    pub all: bool,
}

/// Writes a finished report in `format`. (NDJSON attempt lines are streamed by the caller
/// with [`write_ndjson_attempt`]; here NDJSON writes only the closing summary line.)
pub fn write(report: &Report, format: Format, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => write_table(report, opts, out),
        Format::Json => json::write_json(report, out),
        Format::Ndjson => json::write_ndjson_summary(report, out),
        Format::Markdown => write_markdown(report, opts, out),
        Format::Html => html::write_html(report, opts, out),
    }
}

/// One NDJSON line for an attempt: `{"type":"attempt", ...}`.
///
/// The line is made in memory and written in one piece: serde_json writes every key, value and
/// comma separately, which through `dyn Write` cost more than making the line (a flood's
/// millions of lines). The `type` key goes in front of the record's own object, as
/// `#[serde(flatten)]` would put it (without its map serialiser).
pub fn write_ndjson_attempt(a: &AttemptRecord, out: &mut dyn Write) -> io::Result<()> {
    const TYPE: &[u8] = b"{\"type\":\"attempt\",";
    let mut line = Vec::with_capacity(2048);
    line.extend_from_slice(TYPE);
    serde_json::to_writer(&mut line, a)?;
    // Drop the record's opening brace: the line opened its object before the `type` key.
    debug_assert_eq!(line.get(TYPE.len()), Some(&b'{'));
    line.remove(TYPE.len());
    line.push(b'\n');
    out.write_all(&line)
}

/// Replaces control characters (which could drive a terminal: ANSI/OSC escapes) with `\u{..}`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_terminal_controls() {
        assert_eq!(escape("a\x1b]0;x\x07b"), "a\\u{1b}]0;x\\u{7}b");
        assert_eq!(escape("plain"), "plain");
    }
}
