//! Command-line arguments (clap derive). Doc comments here are the `--help` text; no logic.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Who refused this connection, and how do we know?
///
/// synrst pairs every TCP SYN in a capture with what answered it (SYN-ACK, RST, ICMP
/// unreachable, or silence) and explains who refused: the server's TCP stack, its own
/// firewall, a firewall on the path, a router, or a silent drop, with the evidence.
#[derive(Debug, Parser)]
#[command(name = "synrst", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse pcap/pcapng captures (plain or gzip; `-` reads stdin).
    Analyze(AnalyzeArgs),
    /// Capture live and explain refusals as they happen (needs the `live` build feature).
    Live(LiveArgs),
    /// List the interfaces live capture can use (needs the `live` build feature).
    Interfaces,
    /// Ask the network directly: send SYNs to HOST:PORT, locate the device that answers, and
    /// explain refusals on this machine (needs CAP_NET_RAW for remote targets).
    Probe(crate::probe_cmd::ProbeArgs),
}

/// `synrst analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Capture files, read in order as one capture; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Seconds to wait for an answer after the last SYN before calling it no-answer.
    #[arg(long, default_value_t = 3.0, value_name = "SECS")]
    pub timeout: f64,

    /// Most attempts tracked at once; beyond it the oldest is closed early and counted.
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    pub max_attempts: usize,

    /// Most attempts listed one by one in the report; the others are counted per destination
    /// (keeps memory and output bounded). Once the list is full, a failed attempt takes the
    /// place of a successful one listed earlier.
    #[arg(long, default_value_t = synrst::DEFAULT_MAX_LISTED, value_name = "N")]
    pub max_listed: usize,

    /// Print nothing on standard error but errors: no warnings (the report still lists them)
    /// and no progress bar.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Output options shared by the subcommands.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,

    /// Shorthand for --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// List accepted attempts too (table and markdown list only failures by default).
    #[arg(long)]
    pub all: bool,

    /// Also write the packets that prove each verdict (SYNs, answers, baseline packets) to
    /// this pcapng file, with comments naming the attempt and its verdict.
    #[arg(long, value_name = "FILE.pcapng")]
    pub evidence: Option<PathBuf>,

    /// With --evidence: keep TCP/ICMP payload bytes (cut by default).
    #[arg(long, requires = "evidence")]
    pub keep_payload: bool,

    /// Replace every IP address (and MAC address) in all outputs by a consistent pseudonym,
    /// preserving prefixes, for sharing with vendors.
    #[arg(long)]
    pub anonymize: bool,

    /// Exit with code 1 when an attempt matches: `path-firewall` (a firewall or middlebox on
    /// the path refused), `refused` (any attempt not accepted), `any` (either).
    #[arg(long, value_enum, value_name = "WHAT")]
    pub fail_on: Option<FailOnArg>,
}

/// `--format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Tables for a terminal.
    Table,
    /// One JSON document (schema 1, see README).
    Json,
    /// One JSON object per line, attempts as they resolve, then a summary line.
    Ndjson,
    /// Markdown to paste into a ticket.
    Markdown,
    /// One self-contained HTML file with a timeline of each refused attempt.
    Html,
}

/// `--fail-on` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOnArg {
    /// A firewall or middlebox on the path refused an attempt.
    PathFirewall,
    /// Any attempt was not accepted.
    Refused,
    /// Either of the above.
    Any,
}

/// `synrst live`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Interface to capture on (`any` for all interfaces on Linux).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// A BPF filter ANDed with synrst's default filter, e.g. 'host 10.0.0.5'.
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    pub filter: Option<String>,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Stop after this many attempts have been reported.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Also write the captured packets to FILE as pcapng.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// After opening the capture and the output files, switch to this user (started as root;
    /// like tcpdump -Z). `root` keeps root.
    #[arg(short = 'Z', long = "user", value_name = "USER", default_value = "nobody")]
    pub user: String,

    /// Bytes kept per packet.
    #[arg(long, default_value_t = 262_144, value_name = "BYTES")]
    pub snaplen: i32,

    /// Put the interface in promiscuous mode.
    #[arg(long)]
    pub promisc: bool,

    /// Seconds to wait for an answer after the last SYN before reporting no-answer.
    #[arg(long, default_value_t = 3.0, value_name = "SECS")]
    pub timeout: f64,

    #[command(flatten)]
    pub output: OutputArgs,
}
