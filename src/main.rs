//! The `synrst` binary: arguments → configuration → pipeline → report; exit codes 0/1/2.
#![forbid(unsafe_code)]

mod cli;
mod config;
#[cfg(feature = "live")]
mod live;
mod probe_cmd;
mod progress;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use synrst::attribute::VerdictKind;
use synrst::model::Report;
use synrst::report::{self, Format};
use synrst::track::Outcome;

use cli::{Cli, Command};
use config::FailOn;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`synrst … | head`) is not an error.
            if e.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("synrst: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Analyze(args) => {
            let cfg = config::analyze(&args).map_err(anyhow::Error::msg)?;
            analyze(&cfg)
        }
        #[cfg(feature = "live")]
        Command::Live(args) => live::run(&args),
        #[cfg(feature = "live")]
        Command::Interfaces => live::interfaces(),
        #[cfg(not(feature = "live"))]
        Command::Live(_) | Command::Interfaces => live_unavailable(),
        Command::Probe(args) => probe_cmd::run(&args),
    }
}

pub(crate) fn open_output(path: &Option<std::path::PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    })
}

fn analyze(cfg: &config::Analyze) -> anyhow::Result<ExitCode> {
    // Open the output first, so a bad -o fails before any work.
    let mut out = open_output(&cfg.output.path)?;
    let streaming = cfg.output.format == Format::Ndjson;
    let mut write_err: Option<io::Error> = None;
    // NDJSON lines streamed to a terminal would tear the bar.
    let streams_to_terminal = streaming && cfg.output.path.is_none() && io::stdout().is_terminal();
    let bar = if cfg.output.quiet || streams_to_terminal {
        None
    } else {
        progress::Bar::start(&cfg.analyze.sources)
    };
    let analyze_cfg = synrst::AnalyzeConfig {
        progress: bar.as_ref().map(progress::Bar::counter),
        ..cfg.analyze.clone()
    };
    // Lines of a capture still being written (a pipe from tcpdump) go out as they come; those
    // of files are buffered (flushed, each line was a write system call: a million of them for
    // a million-SYN flood).
    let flush_lines = streaming && cfg.analyze.sources.iter().any(|s| !s.is_regular_file());
    let report = {
        let anonymize = cfg.output.anonymize;
        let mut line = |r: &synrst::model::AttemptRecord| {
            if write_err.is_some() {
                return;
            }
            let written = if anonymize {
                let mut r = r.clone();
                synrst::anonymize::anonymize_attempt(synrst::anonymize::anonymizer(), &mut r);
                report::write_ndjson_attempt(&r, &mut out)
            } else {
                report::write_ndjson_attempt(r, &mut out)
            };
            if let Err(e) = written.and_then(|_| if flush_lines { out.flush() } else { Ok(()) }) {
                write_err = Some(e);
            }
        };
        let on_closed: Option<&mut dyn FnMut(&synrst::model::AttemptRecord)> =
            if streaming { Some(&mut line) } else { None };
        synrst::analyze_listing(&analyze_cfg, cfg.max_listed, on_closed)?
    };
    // Cleared before anything else is written to the terminal.
    drop(bar);
    if let Some(e) = write_err {
        return Err(e.into());
    }
    emit(report, &cfg.output, &cfg.analyze.sources, &mut out)
}

/// Everything after the analysis: warnings to stderr, anonymisation, the evidence capture,
/// the report itself, and the exit code.
pub(crate) fn emit(
    mut report: Report,
    output: &config::Output,
    sources: &[synrst::capture::Source],
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if output.anonymize {
        synrst::anonymize::anonymize_report(&mut report);
    }
    for w in report.capture.warnings.iter().filter(|_| !output.quiet) {
        let file = report::escape(&w.file);
        let message = report::escape(&w.message);
        match w.offset {
            Some(o) => eprintln!("synrst: warning: {file} at byte {o}: {message}"),
            None => eprintln!("synrst: warning: {file}: {message}"),
        }
    }
    if let Some(path) = &output.evidence {
        synrst::evidence::write_evidence(sources, &report, path, output.keep_payload, output.anonymize)
            .map_err(|e| anyhow::anyhow!("cannot write evidence capture {}: {e}", path.display()))?;
    }
    let opts = report::Options { all: output.all };
    report::write(&report, output.format, opts, out)?;
    out.flush()?;
    let code = exit_code(&report, &output.fail_on);
    // The process ends next: freeing thousands of records one by one would only cost time.
    std::mem::forget(report);
    Ok(code)
}

pub(crate) fn exit_code(report: &Report, fail_on: &[FailOn]) -> ExitCode {
    let hit = report.attempts.iter().any(|a| {
        fail_on.iter().any(|f| match f {
            FailOn::PathFirewall => a.verdict == VerdictKind::PathFirewall,
            FailOn::Refused => a.outcome != Outcome::Accepted,
        })
    });
    if hit {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(not(feature = "live"))]
fn live_unavailable() -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "live capture is not in this build. It needs libpcap: install it (Debian/Ubuntu: `sudo apt-get install libpcap-dev`, Fedora: `sudo dnf install libpcap-devel`, macOS: included) and build with `cargo build --release --features live`"
    )
}
