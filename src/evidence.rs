//! Evidence-only pcapng (in progress).

use std::path::Path;

use crate::capture::Source;
use crate::model::Report;

/// Writes the packets that prove each verdict to `path`.
pub fn write_evidence(
    _sources: &[Source],
    _report: &Report,
    _path: &Path,
    _keep_payload: bool,
    _anonymize: bool,
) -> Result<(), String> {
    Err("--evidence is not implemented yet".into())
}
