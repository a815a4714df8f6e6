//! Active diagnosis (`synrst probe`): ask the network instead of reading a capture.
//!
//! Contract:
//!
//! - **Remote targets** ([`remote`]): synrst sends its own SYNs (its own ISNs, crafted with
//!   `pnet`) through raw sockets and receives every packet of the host through a `pnet`
//!   datalink (AF_PACKET) channel. Each received packet is decoded by [`crate::decode::decode`],
//!   so captures and probes share one vocabulary, and matched to the probe it answers by
//!   4-tuple and ISN. The probe's own SYNs and RSTs and the answers to them go through the
//!   same [`crate::Engine`] as a capture, so the verdicts and evidence are the capture
//!   analysis's. On top of that, TTL-limited SYNs ([`locate`]) find the hop whose device
//!   answers, and the verdict is refined with what only an active probe can know.
//! - **Local targets** ([`local`]): an address of this machine is probed with a plain
//!   `connect()`, and the listening sockets are read from procfs to explain the refusal.
//! - **Bounded**: every probe sends at most [`MAX_PACKETS`] packets, at most one every
//!   `interval`, and stops by [`HARD_LIMIT`] whatever happens. Every SYN-ACK the probe gets is
//!   answered by a RST, so no half-open connection is left on the server.
//! - All network I/O goes through the [`Wire`] trait: [`RawWire`] is the real one (needs
//!   CAP_NET_RAW); tests feed a simulated network.
//!
//! Errors a caller may match are [`ProbeError`]; [`ProbeError::Permission`] names `sudo` and
//! `setcap cap_net_raw+ep`.

pub mod craft;
pub mod local;
pub mod locate;
pub mod remote;
pub mod render;
pub mod target;
mod wire;

#[cfg(test)]
mod sim;

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

pub use local::{Listener, LocalSummary, LocalTry};
pub use locate::{HopRecord, Locate, LocateDevice, ReplyKind};
pub use remote::{probe_remote, RemoteConfig};
pub use target::{parse_target, TargetSpec};
pub use wire::{RawWire, Wire};

/// Most packets one probe sends (SYNs, RSTs, echo requests), whatever the options.
pub const MAX_PACKETS: u32 = 96;
/// A probe stops after this long, whatever the options.
pub const HARD_LIMIT: Duration = Duration::from_secs(120);

/// Why a probe could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Raw sockets need CAP_NET_RAW.
    #[error(
        "probing {target} sends raw packets, which needs the CAP_NET_RAW capability ({error}). \
Run it as root: `sudo synrst probe {target} ...`, or give the binary the capability once: \
`sudo setcap cap_net_raw+ep \"$(command -v synrst)\"`. \
(Local targets - localhost, ::1, this machine's own addresses - need no privilege.)"
    )]
    Permission {
        /// The target as given.
        target: String,
        /// The operating system's error (in the message, not chained).
        error: io::Error,
    },
    /// The target is not `HOST:PORT`.
    #[error("{0}")]
    BadTarget(String),
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {detail}")]
    Resolve {
        /// The host name.
        host: String,
        /// What the resolver said.
        detail: String,
    },
    /// This machine has no route (or no source address) towards the target.
    #[error("this machine has no route to {target}: {error}")]
    NoRoute {
        /// The address.
        target: IpAddr,
        /// The operating system's error (in the message, not chained).
        error: io::Error,
    },
    /// Sending or receiving failed.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error (in the message, not chained).
        error: io::Error,
    },
}

/// How the target was probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeMode {
    /// Raw SYNs across the network.
    Remote,
    /// `connect()` to an address of this machine, plus procfs.
    Local,
}

/// What the probe learned about the target host itself, to compare the answers with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaselineRecord {
    /// `tcp` (a SYN to `--baseline-port`) or `icmp-echo`.
    pub method: &'static str,
    /// The port, for `tcp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// What answered: `syn-ack`, `rst`, `echo-reply`, or `none`.
    pub answer: &'static str,
    /// TTL of the answer as received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// The host's hop number (routers between + 1), from that TTL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_hop: Option<u8>,
    /// Round-trip time, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

/// Everything `synrst probe` adds to a report (the `probe` key of the JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeSummary {
    /// The target as given on the command line.
    pub target: String,
    /// Remote (raw SYNs) or local (connect + procfs).
    pub mode: ProbeMode,
    /// The addresses probed, in order.
    pub addresses: Vec<IpAddr>,
    /// The port.
    pub port: u16,
    /// The address the probes were sent from (remote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// What the target host looks like when it answers for itself (remote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineRecord>,
    /// The device that answers the SYNs (remote; null when nothing could be located).
    pub locate: Option<Locate>,
    /// One entry per TTL-limited SYN (remote).
    pub trace: Vec<HopRecord>,
    /// Packets sent: SYNs, RSTs, echo requests.
    pub packets_sent: u32,
    /// RSTs sent to close the half-open connections of SYN-ACKs.
    pub resets_sent: u32,
    /// How long the probe took, ms.
    pub duration_ms: f64,
    /// How the answer was located, and the pitfalls that apply, in plain words.
    pub notes: Vec<String>,
    /// Local targets: the listening sockets and each connect() result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalSummary>,
}

impl ProbeSummary {
    /// Replaces every address (and addresses inside the notes) by its pseudonym.
    pub fn anonymize(&mut self, a: &crate::anonymize::Anonymizer) {
        for ip in &mut self.addresses {
            *ip = a.ip(*ip);
        }
        self.source = self.source.map(|ip| a.ip(ip));
        if let Some(l) = &mut self.locate {
            l.address = l.address.map(|ip| a.ip(ip));
        }
        for h in &mut self.trace {
            h.from = h.from.map(|ip| a.ip(ip));
        }
        for n in &mut self.notes {
            *n = a.text(n);
        }
        if let Some(local) = &mut self.local {
            for l in &mut local.listeners {
                l.address = a.ip(l.address);
            }
            for t in &mut local.tried {
                t.address = a.ip(t.address);
            }
        }
    }
}

/// Which address family to probe when a name has both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// Everything `synrst probe` needs, resolved from the command line (no clap here).
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// `HOST:PORT` as given.
    pub target: String,
    /// Restrict a host name to one family.
    pub family: Option<Family>,
    /// An open port of the same host for the baseline (else ICMP echo).
    pub baseline_port: Option<u16>,
    /// SYNs of the main attempt (1-5).
    pub count: u32,
    /// Wait after the last SYN (and the connect() timeout of local probes).
    pub timeout: Duration,
    /// Highest TTL of the TTL-limited SYNs.
    pub max_hops: u8,
    /// Wait for each TTL-limited SYN.
    pub hop_timeout: Duration,
    /// Least time between two packets sent.
    pub interval: Duration,
    /// Send TTL-limited SYNs.
    pub trace: bool,
}

fn now_ts() -> crate::capture::Timestamp {
    crate::capture::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0),
    )
}

/// The address this machine would send from towards `ip` (a UDP `connect()`: no packet leaves).
pub fn source_address(ip: IpAddr, port: u16) -> Result<IpAddr, ProbeError> {
    let bind: std::net::SocketAddr = if ip.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(bind).map_err(|error| ProbeError::NoRoute { target: ip, error })?;
    s.connect((ip, port))
        .map_err(|error| ProbeError::NoRoute { target: ip, error })?;
    Ok(s.local_addr()
        .map_err(|error| ProbeError::NoRoute { target: ip, error })?
        .ip())
}

/// Runs `synrst probe`: resolves the target, probes it locally (an address of this machine)
/// or remotely (raw SYNs), and returns the report with its [`ProbeSummary`].
pub fn run(opts: &ProbeOptions) -> Result<crate::model::Report, ProbeError> {
    let spec = parse_target(&opts.target)?;
    let resolved = spec.resolve()?;
    let addrs: Vec<IpAddr> = resolved
        .iter()
        .copied()
        .filter(|a| match opts.family {
            Some(Family::V4) => a.is_ipv4(),
            Some(Family::V6) => a.is_ipv6(),
            None => true,
        })
        .collect();
    if addrs.is_empty() {
        return Err(ProbeError::BadTarget(format!(
            "{} has no {} address",
            spec.host,
            if opts.family == Some(Family::V4) {
                "IPv4"
            } else {
                "IPv6"
            }
        )));
    }
    let mine = target::interface_addresses();
    let proc_root = std::path::Path::new("/proc");
    if addrs.iter().all(|a| target::is_local(*a, &mine)) {
        let started = std::time::Instant::now();
        let label = format!("synrst probe {} (local)", opts.target);
        let (records, local, notes) = local::probe_local(proc_root, &addrs, spec.port, opts.timeout, &label, now_ts);
        let mut report = local::build_report(&label, records);
        report.probe = Some(ProbeSummary {
            target: opts.target.clone(),
            mode: ProbeMode::Local,
            addresses: addrs,
            port: spec.port,
            source: None,
            baseline: None,
            locate: None,
            trace: Vec::new(),
            packets_sent: 0,
            resets_sent: 0,
            duration_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            notes,
            local: Some(local),
        });
        return Ok(report);
    }
    let ip = addrs
        .iter()
        .copied()
        .find(|a| !target::is_local(*a, &mine))
        .unwrap_or(addrs[0]);
    let source = source_address(ip, spec.port)?;
    let mut wire = RawWire::open(ip.is_ipv6()).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => ProbeError::Permission {
            target: opts.target.clone(),
            error: e,
        },
        _ => ProbeError::Io {
            what: "cannot open raw sockets".into(),
            error: e,
        },
    })?;
    let mut rng = Rng::from_entropy();
    let first_port = local::pick_source_ports(proc_root, remote::ports_needed(opts.max_hops), rng.next_u32());
    let cfg = RemoteConfig {
        target: std::net::SocketAddr::new(ip, spec.port),
        source,
        label: opts.target.clone(),
        baseline_port: opts.baseline_port,
        count: opts.count,
        timeout: opts.timeout,
        max_hops: opts.max_hops,
        hop_timeout: opts.hop_timeout,
        interval: opts.interval,
        trace: opts.trace,
        first_port,
        seed: rng.next_u64(),
    };
    let mut report = probe_remote(&mut wire, &cfg)?;
    if addrs.len() > 1 {
        if let Some(p) = &mut report.probe {
            let all: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            p.notes.push(format!(
                "{} resolves to {}; only {ip} (the first) was probed: give an address, or -4/-6, to probe another.",
                spec.host,
                all.join(", ")
            ));
        }
    }
    Ok(report)
}

/// Small deterministic generator (splitmix64) for ISNs, IP IDs and echo identifiers.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Seeded from the process's random hasher keys (std only; not cryptographic, which ISNs
    /// of a diagnostic probe do not need).
    pub fn from_entropy() -> Rng {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        Rng(h.finish())
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_per_seed() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u32(), b.next_u32());
        assert_ne!(a.next_u32(), Rng::new(8).next_u32());
    }

    #[test]
    fn permission_message_names_sudo_and_setcap() {
        let e = ProbeError::Permission {
            target: "198.18.4.2:82".into(),
            error: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let m = e.to_string();
        assert!(m.contains("sudo synrst probe 198.18.4.2:82"), "{m}");
        assert!(m.contains("setcap cap_net_raw+ep"), "{m}");
    }
}
