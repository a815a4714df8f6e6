//! Local targets: an address of this machine, probed with a plain `connect()`, explained with
//! the listening sockets read from procfs (like `ss -ltnp`).
//!
//! Contract: [`listeners`] reads `/proc/net/tcp` and `/proc/net/tcp6` (this network
//! namespace's sockets) and, for the sockets listening on the port, finds the owning process
//! through `/proc/<pid>/fd` → `socket:[inode]` when readable (root sees all; a user sees their
//! own). [`probe_local`] connects to each address with a timeout and turns the result and the
//! listeners into attempts with verdicts and evidence ([`diagnose`], a decision table), plus a
//! [`LocalSummary`]. No raw socket, no privilege; every loop over procfs is bounded.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::attribute::{browser_error, Confidence, Evidence, VerdictKind};
use crate::capture::Timestamp;
use crate::flow::Endpoint;
use crate::model::AttemptRecord;
use crate::track::{CloseReason, Outcome};

/// Most sockets read from one procfs table.
const MAX_SOCKETS: usize = 200_000;
/// Most processes and descriptors looked at when finding socket owners.
const MAX_PROCS: usize = 100_000;
const MAX_FDS: usize = 1_000_000;
/// TCP state number of LISTEN in procfs.
const TCP_LISTEN: u8 = 0x0A;

/// A socket listening on the probed port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listener {
    /// The address it is bound to (`0.0.0.0` / `::` for every address).
    pub address: IpAddr,
    /// The port.
    pub port: u16,
    /// The owning process's name (`/proc/<pid>/comm`), when readable.
    pub process: Option<String>,
    /// Its pid, when readable.
    pub pid: Option<u32>,
    /// Connections waiting in its accept queue, not yet accept()ed (procfs `rx_queue` of a
    /// LISTEN socket; the queue's limit is not in procfs).
    pub accept_queue: u32,
    /// Owner's uid.
    pub uid: u32,
}

impl Listener {
    /// `node (pid 1234)` or `a process of uid 1000`.
    pub fn who(&self) -> String {
        match (&self.process, self.pid) {
            (Some(p), Some(pid)) => format!("{} (pid {pid})", crate::report::escape(p)),
            _ => format!("a process of uid {} (run as root to see which)", self.uid),
        }
    }

    /// `127.0.0.1:5173` / `[::1]:5173`.
    pub fn endpoint(&self) -> String {
        Endpoint {
            ip: self.address,
            port: self.port,
        }
        .to_string()
    }

    /// Whether a connection to `ip` reaches this socket (address match, or the wildcard of
    /// the same family; `::` also takes IPv4 unless the socket is IPv6-only, which procfs
    /// does not show).
    pub fn serves(&self, ip: IpAddr) -> Serves {
        let same = match (self.address, ip) {
            (IpAddr::V6(l), IpAddr::V4(v4)) => l.to_ipv4_mapped() == Some(v4),
            (l, i) => l == i,
        };
        if same {
            return Serves::Yes;
        }
        match (self.address, ip) {
            (IpAddr::V4(l), IpAddr::V4(_)) if l.is_unspecified() => Serves::Yes,
            (IpAddr::V6(l), IpAddr::V6(_)) if l.is_unspecified() => Serves::Yes,
            (IpAddr::V6(l), IpAddr::V4(_)) if l.is_unspecified() => Serves::UnlessV6Only,
            _ => Serves::No,
        }
    }
}

/// Whether a listener takes connections to an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serves {
    /// Yes.
    Yes,
    /// A `::` socket takes IPv4 too unless it is IPv6-only.
    UnlessV6Only,
    /// No.
    No,
}

/// One connect() to one address.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LocalTry {
    /// The address.
    pub address: IpAddr,
    /// `connected`, or the errno name (`ECONNREFUSED`, `ETIMEDOUT`, …).
    pub result: String,
    /// Milliseconds until connect() returned.
    pub elapsed_ms: f64,
}

/// What a local probe saw.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LocalSummary {
    /// Every socket listening on the port, any address.
    pub listeners: Vec<Listener>,
    /// The connect() results, in order.
    pub tried: Vec<LocalTry>,
}

/// One parsed line of `/proc/net/tcp{,6}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcSocket {
    /// Local address.
    pub local: SocketAddr,
    /// TCP state (0x0A = LISTEN).
    pub state: u8,
    /// tx_queue (unsent bytes; 0 for listeners).
    pub tx_queue: u32,
    /// rx_queue (for listeners: connections waiting in the accept queue).
    pub rx_queue: u32,
    /// Owner uid.
    pub uid: u32,
    /// Socket inode.
    pub inode: u64,
}

fn hex_v4(s: &str) -> Option<Ipv4Addr> {
    // The kernel prints the __be32 as a host-order integer: its native-endian bytes are the
    // address bytes in network order.
    Some(Ipv4Addr::from(u32::from_str_radix(s, 16).ok()?.to_ne_bytes()))
}

fn hex_v6(s: &str) -> Option<Ipv6Addr> {
    if s.len() != 32 {
        return None;
    }
    let mut b = [0u8; 16];
    for i in 0..4 {
        let w = u32::from_str_radix(s.get(i * 8..i * 8 + 8)?, 16).ok()?;
        b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    Some(Ipv6Addr::from(b))
}

/// Parses the text of `/proc/net/tcp` or `/proc/net/tcp6`; malformed lines are skipped.
pub fn parse_proc_net_tcp(text: &str) -> Vec<ProcSocket> {
    let mut out = Vec::new();
    for line in text.lines().skip(1).take(MAX_SOCKETS) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let Some((addr, port)) = f[1].split_once(':') else {
            continue;
        };
        let ip = match addr.len() {
            8 => hex_v4(addr).map(IpAddr::V4),
            32 => hex_v6(addr).map(IpAddr::V6),
            _ => None,
        };
        let (Some(ip), Ok(port)) = (ip, u16::from_str_radix(port, 16)) else {
            continue;
        };
        let Ok(state) = u8::from_str_radix(f[3], 16) else {
            continue;
        };
        let (tx, rx) = f[4].split_once(':').unwrap_or(("0", "0"));
        out.push(ProcSocket {
            local: SocketAddr::new(ip, port),
            state,
            tx_queue: u32::from_str_radix(tx, 16).unwrap_or(0),
            rx_queue: u32::from_str_radix(rx, 16).unwrap_or(0),
            uid: f[7].parse().unwrap_or(0),
            inode: f[9].parse().unwrap_or(0),
        });
    }
    out
}

/// Every TCP socket of this network namespace (IPv4 and IPv6 tables).
pub fn proc_sockets(proc_root: &Path) -> Vec<ProcSocket> {
    let mut out = Vec::new();
    for t in ["net/tcp", "net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(proc_root.join(t)) {
            out.extend(parse_proc_net_tcp(&text));
        }
    }
    out
}

/// pid and process name owning each of `inodes`, where `/proc/<pid>/fd` is readable.
pub fn socket_owners(proc_root: &Path, inodes: &[u64]) -> HashMap<u64, (u32, String)> {
    let mut found = HashMap::new();
    if inodes.is_empty() {
        return found;
    }
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return found;
    };
    let mut fds_seen = 0usize;
    for entry in dir.flatten().take(MAX_PROCS) {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            fds_seen += 1;
            if fds_seen > MAX_FDS {
                return found;
            }
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = link
                .to_str()
                .and_then(|s| s.strip_prefix("socket:["))
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            if inodes.contains(&inode) && !found.contains_key(&inode) {
                let name = std::fs::read_to_string(entry.path().join("comm"))
                    .map(|s| s.trim_end().to_string())
                    .unwrap_or_default();
                found.insert(inode, (pid, name));
            }
        }
        if found.len() == inodes.len() {
            break;
        }
    }
    found
}

/// The sockets listening on `port`, with their owners where readable.
pub fn listeners(proc_root: &Path, port: u16) -> Vec<Listener> {
    let socks: Vec<ProcSocket> = proc_sockets(proc_root)
        .into_iter()
        .filter(|s| s.state == TCP_LISTEN && s.local.port() == port)
        .collect();
    let inodes: Vec<u64> = socks.iter().map(|s| s.inode).filter(|i| *i != 0).collect();
    let owners = socket_owners(proc_root, &inodes);
    let mut out: Vec<Listener> = socks
        .iter()
        .map(|s| {
            let o = owners.get(&s.inode);
            Listener {
                address: s.local.ip(),
                port,
                process: o.map(|(_, n)| n.clone()),
                pid: o.map(|(p, _)| *p),
                accept_queue: s.rx_queue,
                uid: s.uid,
            }
        })
        .collect();
    out.sort_by_key(|a| (a.address.is_ipv6(), a.address));
    out.dedup_by(|a, b| a.address == b.address && a.pid == b.pid);
    out
}

/// Picks `n` consecutive source ports for raw probes that no socket of this namespace uses,
/// outside the kernel's ephemeral range (so no `connect()` gets one meanwhile): the kernel then
/// answers a SYN-ACK for them with a RST every time, as it has no socket for them.
pub fn pick_source_ports(proc_root: &Path, n: u16, seed: u32) -> u16 {
    let used: Vec<u16> = proc_sockets(proc_root).iter().map(|s| s.local.port()).collect();
    let (lo, hi) = std::fs::read_to_string(proc_root.join("sys/net/ipv4/ip_local_port_range"))
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    // Candidates above the ephemeral range, else below it (but above the well-known ports).
    let (start, end) = if hi < 65535 - n {
        (hi + 1, 65535 - n)
    } else {
        (1024, lo.saturating_sub(n).max(1025))
    };
    let span = u32::from(end.saturating_sub(start)).max(1);
    for i in 0..64u32 {
        let base = start + ((seed.wrapping_add(i.wrapping_mul(7919))) % span) as u16;
        if (base..base.saturating_add(n)).all(|p| !used.contains(&p)) {
            return base;
        }
    }
    start
}

/// Linux errno names for the connect() errors that matter here.
fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(1) => "EPERM".into(),
        Some(13) => "EACCES".into(),
        Some(99) => "EADDRNOTAVAIL".into(),
        Some(101) => "ENETUNREACH".into(),
        Some(110) => "ETIMEDOUT".into(),
        Some(111) => "ECONNREFUSED".into(),
        Some(113) => "EHOSTUNREACH".into(),
        Some(n) => format!("errno {n}"),
        None if e.kind() == io::ErrorKind::TimedOut => "ETIMEDOUT".into(),
        None => e.kind().to_string(),
    }
}

/// What connect() returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectResult {
    /// Connected from this local endpoint.
    Connected(SocketAddr),
    /// Failed with this errno name.
    Failed(String),
}

/// Connects to `addr` with a timeout; closes at once.
pub fn connect(addr: SocketAddr, timeout: Duration) -> ConnectResult {
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => {
            let local = s.local_addr().unwrap_or(SocketAddr::new(addr.ip(), 0));
            drop(s);
            ConnectResult::Connected(local)
        }
        Err(e) => ConnectResult::Failed(errno_name(&e)),
    }
}

/// A verdict for one local connect() (see [`diagnose`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalVerdict {
    /// Who refused.
    pub verdict: VerdictKind,
    /// How sure.
    pub confidence: Confidence,
    /// One line.
    pub explanation: String,
    /// The facts.
    pub evidence: Vec<Evidence>,
}

fn ev(signal: &'static str, observed: String, meaning: String) -> Evidence {
    Evidence {
        signal,
        observed,
        baseline: None,
        meaning,
    }
}

fn other_family_loopback(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V6(a) if a.is_loopback() => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V4(a) if a.is_loopback() => Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => None,
    }
}

/// Decision table for one connect() to a local address, given every listener on the port.
pub fn diagnose(
    ip: IpAddr,
    port: u16,
    result: &ConnectResult,
    listeners: &[Listener],
    ipv6_disabled: bool,
) -> LocalVerdict {
    let target = Endpoint { ip, port };
    let serving: Vec<&Listener> = listeners.iter().filter(|l| l.serves(ip) == Serves::Yes).collect();
    let maybe: Vec<&Listener> = listeners
        .iter()
        .filter(|l| l.serves(ip) == Serves::UnlessV6Only)
        .collect();
    let others: Vec<&Listener> = listeners.iter().filter(|l| l.serves(ip) == Serves::No).collect();
    let mut evidence = Vec::new();
    let list = |ls: &[&Listener]| -> String {
        ls.iter()
            .map(|l| format!("{} on {}", l.who(), l.endpoint()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    evidence.push(ev(
        "local_listeners",
        if listeners.is_empty() {
            format!("no socket listens on port {port} (/proc/net/tcp, /proc/net/tcp6)")
        } else {
            list(&listeners.iter().collect::<Vec<_>>())
        },
        if serving.is_empty() && maybe.is_empty() {
            format!("none of them takes connections to {target}")
        } else {
            format!(
                "{} takes connections to {target}",
                list(&serving.iter().chain(maybe.iter()).copied().collect::<Vec<_>>())
            )
        },
    ));
    let res = match result {
        ConnectResult::Connected(_) => "connected".to_string(),
        ConnectResult::Failed(e) => e.clone(),
    };
    evidence.push(ev(
        "local_connect",
        format!("connect() to {target}: {res}"),
        match result {
            ConnectResult::Connected(_) => "the connection was accepted".into(),
            ConnectResult::Failed(e) if e == "ECONNREFUSED" => {
                "a RST (or ICMP port unreachable) answered the SYN".into()
            }
            ConnectResult::Failed(e) if e == "ETIMEDOUT" => "nothing answered the SYN".into(),
            ConnectResult::Failed(e) if e == "EPERM" || e == "EACCES" => {
                "the kernel refused to send the SYN: a local firewall rule (output chain) dropped or rejected it".into()
            }
            ConnectResult::Failed(_) => "the SYN could not be delivered".into(),
        },
    ));
    let mismatch =
        other_family_loopback(ip).and_then(|o| others.iter().find(|l| l.serves(o) != Serves::No).map(|l| (*l, o)));
    let full = serving
        .iter()
        .chain(maybe.iter())
        .filter(|l| l.accept_queue > 0)
        .max_by_key(|l| l.accept_queue)
        .copied();
    let (verdict, confidence, explanation) = match (result, serving.is_empty() && maybe.is_empty(), full) {
        // Connected: a listener took it.
        (ConnectResult::Connected(_), _, _) => (
            VerdictKind::Accepted,
            Confidence::High,
            match serving.first().or(maybe.first()) {
                Some(l) => format!("accepted by {} listening on {}", l.who(), l.endpoint()),
                None => format!("accepted on {target}"),
            },
        ),
        // IPv6 switched off: ::1 does not exist here.
        (ConnectResult::Failed(e), true, _) if ip.is_ipv6() && ipv6_disabled && e != "ECONNREFUSED" => (
            VerdictKind::NetUnreachable,
            Confidence::High,
            format!("IPv6 is disabled on this machine ({e}): {target} does not exist here, so clients that try it first must fall back to IPv4"),
        ),
        // Refused, and the port's listener is on the other loopback family: the classic
        // localhost mix-up (Node 17+ resolves localhost to ::1 first; Vite binds ::1).
        (ConnectResult::Failed(e), true, _) if e == "ECONNREFUSED" && mismatch.is_some() => {
            let (l, other) = mismatch.unwrap_or((others[0], ip));
            let fam = |a: IpAddr| if a.is_ipv6() { "IPv6" } else { "IPv4" };
            evidence.push(ev(
                "local_family_mismatch",
                format!("{} listens on {} ({}) only; the client went to {target} ({})", l.who(), l.endpoint(), fam(l.address), fam(ip)),
                "`localhost` resolves to both ::1 and 127.0.0.1; Node 17+ (and other resolvers honouring the system order) try ::1 first, and servers like Vite bind only one of them".into(),
            ));
            (
                VerdictKind::ClosedPort,
                Confidence::High,
                format!(
                    "nothing listens on {target}: {} listens on {} only. Connect to {} instead, or make the server listen on both (bind `::` with dual-stack, or both addresses; Node/Vite: `--host ::` or `host: true`)",
                    l.who(),
                    l.endpoint(),
                    Endpoint { ip: other, port }
                ),
            )
        }
        // Refused, and the port's listeners are bound to other addresses only.
        (ConnectResult::Failed(e), true, _) if e == "ECONNREFUSED" && !others.is_empty() => {
            evidence.push(ev(
                "local_bound_elsewhere",
                list(&others),
                format!("the service is bound to another address than {ip}: it takes connections only there"),
            ));
            (
                VerdictKind::ClosedPort,
                Confidence::High,
                format!(
                    "nothing listens on {target}: the service ({}) is bound to {} only. Connect to that address, or bind the service to {ip} (or to 0.0.0.0 / ::)",
                    others[0].who(),
                    others.iter().map(|l| l.endpoint()).collect::<Vec<_>>().join(", ")
                ),
            )
        }
        // Refused, nothing listens on that port anywhere: the kernel's RST.
        (ConnectResult::Failed(e), true, _) if e == "ECONNREFUSED" => (
            VerdictKind::ClosedPort,
            Confidence::High,
            format!("nothing listens on port {port} on any address of this machine (in this network namespace): the kernel answered RST. Is the service running, and on this port?"),
        ),
        // Refused although `::` listens and the client went to IPv4: an IPv6-only socket.
        (ConnectResult::Failed(e), false, _) if e == "ECONNREFUSED" && serving.is_empty() => {
            evidence.push(ev(
                "local_v6only",
                format!("{} listens on {} and the client used IPv4", maybe[0].who(), maybe[0].endpoint()),
                "a socket bound to :: takes IPv4 too unless it is IPv6-only (IPV6_V6ONLY, net.ipv6.bindv6only)".into(),
            ));
            (
                VerdictKind::ClosedPort,
                Confidence::Medium,
                format!("{} listens on {} but refused IPv4: the socket is IPv6-only (IPV6_V6ONLY); connect over IPv6 or make it dual-stack", maybe[0].who(), maybe[0].endpoint()),
            )
        }
        // Refused although a listener takes this address: a local firewall rule resets it.
        (ConnectResult::Failed(e), false, _) if e == "ECONNREFUSED" => (
            VerdictKind::HostFirewall,
            Confidence::Medium,
            format!(
                "{} listens on {} and still the connection was refused: a local firewall rule rejects it (`reject with tcp reset` or ICMP port unreachable); check `nft list ruleset` / `iptables -S`",
                serving.first().or(maybe.first()).map(|l| l.who()).unwrap_or_default(),
                serving.first().or(maybe.first()).map(|l| l.endpoint()).unwrap_or_default()
            ),
        ),
        // EPERM/EACCES from connect(): the kernel itself refused to send the SYN.
        (ConnectResult::Failed(e), _, _) if e == "EPERM" || e == "EACCES" => (
            VerdictKind::HostFirewall,
            Confidence::High,
            format!("a local firewall rule blocked the SYN before it left ({e}): check the output chain (`nft list ruleset` / `iptables -S OUTPUT`)"),
        ),
        // Time-out with connections piling up in the listener's accept queue: the application
        // does not accept(), the queue is full, and the kernel drops new SYNs.
        (ConnectResult::Failed(e), false, Some(l)) if e == "ETIMEDOUT" => {
            evidence.push(ev(
                "local_accept_queue_full",
                format!("{} connection(s) wait in the accept queue of {}", l.accept_queue, l.endpoint()),
                "the kernel drops SYNs while the accept queue is full (its limit is the listen() backlog, shown by `ss -ltn` as Send-Q)".into(),
            ));
            (
                VerdictKind::FilteredOrDown,
                Confidence::Medium,
                format!("{} listens on {} but does not accept() its connections ({} waiting): its accept queue is full, so the kernel drops new SYNs (the application is hung or too slow, or its backlog too small)", l.who(), l.endpoint(), l.accept_queue),
            )
        }
        // Nothing answered a SYN to an address of this very machine: only a drop rule does that.
        (ConnectResult::Failed(e), _, _) if e == "ETIMEDOUT" => (
            VerdictKind::HostFirewall,
            Confidence::Medium,
            "nothing answered a SYN to an address of this machine: a local firewall rule drops it (the kernel itself answers every SYN with SYN-ACK or RST)".into(),
        ),
        // ICMP errors for a local address: a local REJECT rule with an ICMP type.
        (ConnectResult::Failed(e), _, _) if e == "EHOSTUNREACH" || e == "ENETUNREACH" => (
            VerdictKind::HostFirewall,
            Confidence::Medium,
            format!("connect() got {e} for an address of this machine: a local firewall rule rejects it with an ICMP error (or a blackhole/prohibit route)"),
        ),
        (ConnectResult::Failed(e), _, _) => (
            VerdictKind::Unknown,
            Confidence::Low,
            format!("connect() failed with {e}"),
        ),
    };
    LocalVerdict {
        verdict,
        confidence,
        explanation,
        evidence,
    }
}

/// Whether IPv6 is switched off on loopback.
pub fn ipv6_disabled(proc_root: &Path) -> bool {
    std::fs::read_to_string(proc_root.join("sys/net/ipv6/conf/lo/disable_ipv6"))
        .map(|s| s.trim() == "1")
        .unwrap_or(!proc_root.join("net/if_inet6").exists())
}

/// One local attempt as a report record (no packets: the outcome is what connect() said).
pub fn record(
    id: u64,
    file: &str,
    server: Endpoint,
    start: Timestamp,
    elapsed: Duration,
    result: &ConnectResult,
    v: LocalVerdict,
) -> AttemptRecord {
    let ip = server.ip;
    let (outcome, client, client_error) = match result {
        ConnectResult::Connected(local) => (
            Outcome::Accepted,
            Endpoint {
                ip: local.ip(),
                port: local.port(),
            },
            None,
        ),
        ConnectResult::Failed(e) => {
            let outcome = match e.as_str() {
                "ECONNREFUSED" => Outcome::Refused,
                "ETIMEDOUT" => Outcome::NoAnswer,
                _ => Outcome::Unreachable,
            };
            let errno: Option<&'static str> = match e.as_str() {
                "ECONNREFUSED" => Some("ECONNREFUSED"),
                "ETIMEDOUT" => Some("ETIMEDOUT"),
                "EHOSTUNREACH" => Some("EHOSTUNREACH"),
                "ENETUNREACH" => Some("ENETUNREACH"),
                "EACCES" => Some("EACCES"),
                "EPERM" => Some("EPERM"),
                "EADDRNOTAVAIL" => Some("EADDRNOTAVAIL"),
                _ => None,
            };
            let unspecified = if ip.is_ipv6() {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            };
            // The client's port is not known when connect() failed.
            let client = if ip.is_loopback() { ip } else { unspecified };
            (outcome, Endpoint { ip: client, port: 0 }, errno)
        }
    };
    let ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    AttemptRecord {
        id,
        file: file.to_string(),
        client,
        server,
        isn: 0,
        first_syn: start.rfc3339(),
        syn_seen: false,
        syn_frame: None,
        syns: 1,
        syn_times_ms: vec![0.0],
        outcome,
        answer: None,
        packets: Vec::new(),
        waited_ms: (outcome == Outcome::NoAnswer).then_some(ms),
        client_error,
        browser_error: browser_error(client_error),
        verdict: v.verdict,
        confidence: v.confidence,
        explanation: v.explanation,
        evidence: v.evidence,
        history: String::new(),
        anomalies: Vec::new(),
        closed: CloseReason::CaptureEnd,
    }
}

/// Probes local addresses: connect() to each in order, listeners from procfs, a verdict each.
/// Returns the attempts, the summary, and plain-words notes comparing the addresses.
pub fn probe_local(
    proc_root: &Path,
    addresses: &[IpAddr],
    port: u16,
    timeout: Duration,
    file: &str,
    now: impl Fn() -> Timestamp,
) -> (Vec<AttemptRecord>, LocalSummary, Vec<String>) {
    let v6_off = ipv6_disabled(proc_root);
    let mut records = Vec::new();
    let mut tried = Vec::new();
    let mut results = Vec::new();
    for (i, ip) in addresses.iter().enumerate() {
        let start = now();
        let t0 = Instant::now();
        let result = connect(SocketAddr::new(*ip, port), timeout);
        let elapsed = t0.elapsed();
        // Read the listeners after the connect, so a listener that took it is certainly there.
        let ls = listeners(proc_root, port);
        let v = diagnose(*ip, port, &result, &ls, v6_off);
        tried.push(LocalTry {
            address: *ip,
            result: match &result {
                ConnectResult::Connected(_) => "connected".into(),
                ConnectResult::Failed(e) => e.clone(),
            },
            elapsed_ms: (elapsed.as_secs_f64() * 1e6).round() / 1e3,
        });
        results.push((*ip, result.clone(), v.verdict));
        records.push(record(
            i as u64 + 1,
            file,
            Endpoint { ip: *ip, port },
            start,
            elapsed,
            &result,
            v,
        ));
    }
    let listeners = listeners(proc_root, port);
    let mut notes = Vec::new();
    let ok: Vec<IpAddr> = results
        .iter()
        .filter(|(_, r, _)| matches!(r, ConnectResult::Connected(_)))
        .map(|(ip, _, _)| *ip)
        .collect();
    let failed: Vec<IpAddr> = results
        .iter()
        .filter(|(_, r, _)| !matches!(r, ConnectResult::Connected(_)))
        .map(|(ip, _, _)| *ip)
        .collect();
    if addresses.len() > 1 {
        match (ok.is_empty(), failed.is_empty()) {
            (false, false) if failed.iter().all(|a| a.is_ipv6()) => notes.push(format!(
                "localhost works on {} but not on {}: clients that try ::1 first (Node 17+ keeps the resolver's order, which puts ::1 first for localhost) get ECONNREFUSED unless they fall back to IPv4. Connect to {}, or make the server listen on ::1 too.",
                join(&ok),
                join(&failed),
                join(&ok)
            )),
            (false, false) => notes.push(format!(
                "localhost works on {} but not on {}: clients that go to {} (an explicit 127.0.0.1, IPv4-only tools, proxies and containers forwarding to 127.0.0.1) get ECONNREFUSED; a server that binds ::1 only (as Vite does for localhost) serves only clients that try ::1. Connect to {}, or make the server listen on 127.0.0.1 too.",
                join(&ok),
                join(&failed),
                join(&failed),
                join(&ok)
            )),
            (true, false) => notes.push(format!("Neither {} accepted a connection on port {port}.", join(&failed))),
            (false, true) => notes.push(format!("Both {} accept connections on port {port}.", join(&ok))),
            (true, true) => {}
        }
    }
    if listeners.iter().any(|l| l.process.is_none()) {
        notes.push(
            "Some listeners' processes are not shown: their /proc/<pid>/fd is not readable (run as root to see them)."
                .into(),
        );
    }
    notes.push("Only this network namespace's sockets are visible: a service in a container or another namespace does not appear here, and is reached through its own address or a published port.".into());
    (records, LocalSummary { listeners, tried }, notes)
}

/// A report holding local attempts (no packets were captured: the capture summary is empty).
pub fn build_report(label: &str, records: Vec<AttemptRecord>) -> crate::model::Report {
    use crate::model::{Destination, Summary};
    use std::collections::BTreeMap;
    let mut engine = crate::Engine::new(crate::track::TrackConfig::default(), None);
    engine.begin_source(label.to_string());
    engine.end_source(crate::capture::CaptureInfo {
        path: label.to_string(),
        format: crate::capture::Format::Live,
        gzip: false,
        frames: 0,
        link_types: BTreeMap::new(),
        skipped: BTreeMap::new(),
        bytes: 0,
        warnings: Vec::new(),
    });
    let mut report = engine.finish();
    let mut summary = Summary {
        attempts: records.len() as u64,
        ..Summary::default()
    };
    for r in &records {
        *summary.by_outcome.entry(r.outcome.name()).or_insert(0) += 1;
        let d = match summary.destinations.iter_mut().position(|d| d.server == r.server) {
            Some(i) => &mut summary.destinations[i],
            None => {
                summary.destinations.push(Destination::new(r.server));
                let n = summary.destinations.len() - 1;
                &mut summary.destinations[n]
            }
        };
        d.count(r.outcome);
    }
    report.attempts = records;
    report.summary = summary;
    super::locate::resummarize(&mut report);
    report
}

fn join(ips: &[IpAddr]) -> String {
    ips.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // From a real /proc/net/tcp and /proc/net/tcp6 (little-endian machine).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0050 0200007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1
   2: 00000000:1F90 00000000:0000 0A 00000080:00000080 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1435 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5151 1 0000000000000000 100 0 0 10 0
   1: B80D0120000000000000000002000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  0        0 6161 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn proc_net_tcp_parses_addresses_ports_states() {
        let v4 = parse_proc_net_tcp(TCP);
        assert_eq!(v4.len(), 3);
        if cfg!(target_endian = "little") {
            assert_eq!(v4[0].local, "127.0.0.1:5173".parse().unwrap());
            assert_eq!(v4[2].local, "0.0.0.0:8080".parse().unwrap());
        }
        assert_eq!((v4[0].state, v4[0].uid, v4[0].inode), (0x0A, 1000, 4242));
        assert_eq!(v4[1].state, 1);
        assert_eq!((v4[2].tx_queue, v4[2].rx_queue), (128, 128));
        let v6 = parse_proc_net_tcp(TCP6);
        if cfg!(target_endian = "little") {
            assert_eq!(v6[0].local, "[::1]:5173".parse().unwrap());
            assert_eq!(v6[1].local, "[2001:db8::2]:80".parse().unwrap());
        }
        assert!(parse_proc_net_tcp("header\ngarbage line\n 0: zz:zz 0 0A").is_empty());
    }

    fn l(addr: &str, port: u16) -> Listener {
        Listener {
            address: addr.parse().unwrap(),
            port,
            process: Some("node".into()),
            pid: Some(4242),
            accept_queue: 0,
            uid: 1000,
        }
    }

    fn refused() -> ConnectResult {
        ConnectResult::Failed("ECONNREFUSED".into())
    }

    #[test]
    fn listener_on_v4_loopback_client_on_v6() {
        let v = diagnose("::1".parse().unwrap(), 5173, &refused(), &[l("127.0.0.1", 5173)], false);
        assert_eq!(v.verdict, VerdictKind::ClosedPort);
        assert!(
            v.explanation.contains("node (pid 4242) listens on 127.0.0.1:5173 only"),
            "{}",
            v.explanation
        );
        assert!(v.evidence.iter().any(|e| e.signal == "local_family_mismatch"));
    }

    #[test]
    fn listener_on_v6_loopback_client_on_v4() {
        let v = diagnose("127.0.0.1".parse().unwrap(), 5173, &refused(), &[l("::1", 5173)], false);
        assert_eq!(v.verdict, VerdictKind::ClosedPort);
        assert!(v.explanation.contains("[::1]:5173 only"), "{}", v.explanation);
    }

    #[test]
    fn bound_to_another_address() {
        let v = diagnose(
            "127.0.0.1".parse().unwrap(),
            80,
            &refused(),
            &[l("198.18.200.1", 80)],
            false,
        );
        assert_eq!(v.verdict, VerdictKind::ClosedPort);
        assert!(
            v.explanation.contains("bound to 198.18.200.1:80 only"),
            "{}",
            v.explanation
        );
    }

    #[test]
    fn nothing_listens() {
        let v = diagnose("127.0.0.1".parse().unwrap(), 80, &refused(), &[], false);
        assert_eq!(v.verdict, VerdictKind::ClosedPort);
        assert!(v.explanation.contains("nothing listens on port 80"));
    }

    #[test]
    fn refused_while_listening_is_a_local_firewall() {
        let v = diagnose("127.0.0.1".parse().unwrap(), 80, &refused(), &[l("0.0.0.0", 80)], false);
        assert_eq!(v.verdict, VerdictKind::HostFirewall);
        let t = diagnose(
            "127.0.0.1".parse().unwrap(),
            80,
            &ConnectResult::Failed("ETIMEDOUT".into()),
            &[l("0.0.0.0", 80)],
            false,
        );
        assert_eq!(t.verdict, VerdictKind::HostFirewall);
        let p = diagnose(
            "127.0.0.1".parse().unwrap(),
            80,
            &ConnectResult::Failed("EPERM".into()),
            &[],
            false,
        );
        assert_eq!((p.verdict, p.confidence), (VerdictKind::HostFirewall, Confidence::High));
    }

    #[test]
    fn full_accept_queue_is_named() {
        let mut busy = l("0.0.0.0", 80);
        busy.accept_queue = 129;
        let v = diagnose(
            "127.0.0.1".parse().unwrap(),
            80,
            &ConnectResult::Failed("ETIMEDOUT".into()),
            &[busy],
            false,
        );
        assert!(
            v.explanation
                .contains("does not accept() its connections (129 waiting)"),
            "{}",
            v.explanation
        );
        assert!(v.evidence.iter().any(|e| e.signal == "local_accept_queue_full"));
    }

    #[test]
    fn dual_stack_wildcard_serves_v4_unless_v6only() {
        assert_eq!(l("::", 80).serves("127.0.0.1".parse().unwrap()), Serves::UnlessV6Only);
        assert_eq!(l("::", 80).serves("::1".parse().unwrap()), Serves::Yes);
        assert_eq!(l("0.0.0.0", 80).serves("::1".parse().unwrap()), Serves::No);
        assert_eq!(
            l("::ffff:127.0.0.1", 80).serves("127.0.0.1".parse().unwrap()),
            Serves::Yes
        );
        let v = diagnose("127.0.0.1".parse().unwrap(), 80, &refused(), &[l("::", 80)], false);
        assert!(v.explanation.contains("IPv6-only"), "{}", v.explanation);
    }

    #[test]
    fn ipv6_off_says_so() {
        let v = diagnose(
            "::1".parse().unwrap(),
            80,
            &ConnectResult::Failed("EADDRNOTAVAIL".into()),
            &[l("127.0.0.1", 80)],
            true,
        );
        assert_eq!(v.verdict, VerdictKind::NetUnreachable);
    }

    #[test]
    fn process_names_are_escaped() {
        let mut x = l("127.0.0.1", 1);
        x.process = Some("evil\x1b]0;x".into());
        assert!(!x.who().contains('\x1b'));
    }
}
