//! Self-contained HTML report (in progress).

use std::io::{self, Write};

use super::Options;
use crate::model::Report;

/// Writes the HTML report.
pub fn write_html(_report: &Report, _opts: Options, _out: &mut dyn Write) -> io::Result<()> {
    Err(io::Error::other("--format html is not implemented yet"))
}
