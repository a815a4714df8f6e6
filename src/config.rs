//! Resolves raw command-line arguments into a validated configuration (ripgrep's
//! LowArgs → HiArgs split): everything below this module is free of clap.

use std::path::PathBuf;

use synrst::capture::Source;
use synrst::report::Format;
use synrst::track::TrackConfig;
use synrst::AnalyzeConfig;

use crate::cli::{AnalyzeArgs, FailOnArg, FormatArg, OutputArgs};

/// When to exit with code 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    /// A path firewall refused.
    PathFirewall,
    /// Anything not accepted.
    Refused,
}

/// Output settings.
#[derive(Clone, Debug)]
pub struct Output {
    pub format: Format,
    pub path: Option<PathBuf>,
    pub all: bool,
    pub fail_on: Vec<FailOn>,
    pub evidence: Option<PathBuf>,
    pub keep_payload: bool,
    pub anonymize: bool,
    /// Print no warnings (and no progress bar) on standard error.
    pub quiet: bool,
}

/// A validated `analyze` configuration.
#[derive(Clone, Debug)]
pub struct Analyze {
    pub analyze: AnalyzeConfig,
    pub max_listed: usize,
    pub output: Output,
}

pub fn output(o: &OutputArgs) -> Output {
    let format = if o.json {
        Format::Json
    } else {
        match o.format {
            FormatArg::Table => Format::Table,
            FormatArg::Json => Format::Json,
            FormatArg::Ndjson => Format::Ndjson,
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Html => Format::Html,
        }
    };
    let fail_on = match o.fail_on {
        None => vec![],
        Some(FailOnArg::PathFirewall) => vec![FailOn::PathFirewall],
        Some(FailOnArg::Refused) => vec![FailOn::Refused],
        Some(FailOnArg::Any) => vec![FailOn::PathFirewall, FailOn::Refused],
    };
    Output {
        format,
        path: o.output.clone(),
        all: o.all,
        fail_on,
        evidence: o.evidence.clone(),
        keep_payload: o.keep_payload,
        anonymize: o.anonymize,
        quiet: false,
    }
}

pub fn analyze(a: &AnalyzeArgs) -> Result<Analyze, String> {
    if !(a.timeout.is_finite() && a.timeout > 0.0 && a.timeout <= 3600.0) {
        return Err(format!(
            "--timeout must be between 0 and 3600 seconds, got {}",
            a.timeout
        ));
    }
    if a.max_attempts == 0 {
        return Err("--max-attempts must be at least 1".into());
    }
    let stdin_count = a.files.iter().filter(|f| f.as_str() == "-").count();
    if stdin_count > 1 {
        return Err("standard input (-) can be given only once".into());
    }
    if stdin_count > 0 && a.output.evidence.is_some() {
        return Err(
            "--evidence re-reads the capture, so it cannot come from standard input (-): save it to a file first"
                .into(),
        );
    }
    Ok(Analyze {
        max_listed: a.max_listed,
        analyze: AnalyzeConfig {
            sources: a.files.iter().map(|f| Source::from_arg(f)).collect(),
            track: TrackConfig {
                timeout_ns: (a.timeout * 1e9) as i64,
                max_in_flight: a.max_attempts,
                ..TrackConfig::default()
            },
            progress: None,
        },
        output: Output {
            quiet: a.quiet,
            ..output(&a.output)
        },
    })
}
