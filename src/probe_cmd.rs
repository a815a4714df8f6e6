//! `synrst probe`: raw arguments (clap derive; doc comments are `--help`) → validated
//! [`synrst::probe::ProbeOptions`] → [`synrst::probe::run`] → the report in every format, plus
//! the probe section (located device, trace, listeners, notes) → exit code 0/1/2.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use synrst::probe::{self, Family, ProbeOptions};
use synrst::report::{self, Format};

use crate::cli::{FailOnArg, FormatArg, OutputArgs};

/// `synrst probe HOST:PORT`.
///
/// For a remote target, sends SYNs with its own ISNs through raw sockets (needs CAP_NET_RAW:
/// run with sudo, or `sudo setcap cap_net_raw+ep "$(command -v synrst)"`), learns the host's
/// distance from a baseline (an open port given with --baseline-port, else ICMP echo), then
/// sends SYNs with TTL 1, 2, ... to find the hop whose device answers. Every SYN-ACK is
/// answered with a RST. For an address of this machine (localhost, ::1, a local address), it
/// connects normally and reads the listening sockets from /proc to explain the refusal: no
/// privilege needed.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Where to probe: NAME:PORT, IPV4:PORT or [IPV6]:PORT. `localhost` probes both ::1 and
    /// 127.0.0.1.
    #[arg(value_name = "HOST:PORT")]
    pub target: String,

    /// An open port of the same host, whose SYN-ACK shows how far the host is (its hop
    /// distance and round-trip time). Without it, ICMP echo is used.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub baseline_port: Option<u16>,

    /// Highest TTL of the TTL-limited SYNs that locate the answering device.
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=64))]
    pub max_hops: u8,

    /// SYNs sent to the port (retransmitted with the same ISN, 1 s then 2 s apart, like a
    /// client), until something answers.
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=5))]
    pub count: u32,

    /// Seconds to wait for an answer after the last SYN (local targets: the connect() timeout).
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub timeout: f64,

    /// Seconds to wait for the answer to each TTL-limited SYN.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub hop_timeout: f64,

    /// Most packets sent per second.
    #[arg(long, default_value_t = 20, value_name = "PPS", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rate: u32,

    /// Do not send TTL-limited SYNs (the answering device is then not located).
    #[arg(long)]
    pub no_trace: bool,

    /// Probe the host name's IPv4 address.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Probe the host name's IPv6 address.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,

    /// Shorthand for --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,

    /// List accepted attempts too (table and markdown list only failures by default).
    #[arg(long)]
    pub all: bool,

    /// Replace every IP address in all outputs by a consistent pseudonym.
    #[arg(long)]
    pub anonymize: bool,

    /// Exit with code 1 when the probe was refused by a firewall on the path
    /// (`path-firewall`), was not accepted (`refused`), or either (`any`).
    #[arg(long, value_enum, value_name = "WHAT")]
    pub fail_on: Option<FailOnArg>,
}

fn seconds(name: &str, v: f64) -> anyhow::Result<Duration> {
    if !(v.is_finite() && v > 0.0 && v <= 60.0) {
        anyhow::bail!("--{name} must be between 0 and 60 seconds, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Validates the arguments into the library's options.
pub fn options(args: &ProbeArgs) -> anyhow::Result<ProbeOptions> {
    Ok(ProbeOptions {
        target: args.target.clone(),
        family: match (args.ipv4, args.ipv6) {
            (true, _) => Some(Family::V4),
            (_, true) => Some(Family::V6),
            _ => None,
        },
        baseline_port: args.baseline_port,
        count: args.count,
        timeout: seconds("timeout", args.timeout)?,
        max_hops: args.max_hops,
        hop_timeout: seconds("hop-timeout", args.hop_timeout)?,
        interval: Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))),
        trace: !args.no_trace,
    })
}

/// Runs `synrst probe`.
pub fn run(args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let opts = options(args)?;
    let output = crate::config::output(&OutputArgs {
        format: args.format,
        json: args.json,
        output: args.output.clone(),
        all: args.all,
        evidence: None,
        keep_payload: false,
        anonymize: args.anonymize,
        fail_on: args.fail_on,
    });
    // Open the output first, so a bad -o fails before any packet is sent.
    let mut out = crate::open_output(&output.path)?;
    let mut report = probe::run(&opts)?;
    if output.anonymize {
        let a = synrst::anonymize::anonymizer();
        synrst::anonymize::anonymize_report_with(a, &mut report);
        if let Some(p) = &mut report.probe {
            p.anonymize(a);
        }
    }
    let opts_w = report::Options { all: output.all };
    let summary = report.probe.clone();
    match output.format {
        Format::Ndjson => {
            for a in &report.attempts {
                report::write_ndjson_attempt(a, &mut out)?;
            }
            if let Some(p) = &summary {
                probe::render::write_ndjson(p, &mut out)?;
            }
            report::write(&report, Format::Ndjson, opts_w, &mut out)?;
        }
        Format::Table => {
            report::write(&report, Format::Table, opts_w, &mut out)?;
            if let Some(p) = &summary {
                probe::render::write_table(p, &mut out)?;
            }
        }
        Format::Markdown => {
            report::write(&report, Format::Markdown, opts_w, &mut out)?;
            if let Some(p) = &summary {
                probe::render::write_markdown(p, &mut out)?;
            }
        }
        f => report::write(&report, f, opts_w, &mut out)?,
    }
    out.flush()?;
    Ok(crate::exit_code(&report, &output.fail_on))
}
