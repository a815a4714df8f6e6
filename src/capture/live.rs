//! Live capture through libpcap (cargo feature `live`): frames from an interface, with a
//! kernel BPF filter that keeps only what the tracker and the baselines need.
//!
//! This is the one place that talks to a C library; the `pcap` crate wraps it, so this file
//! stays free of `unsafe`.

use std::time::Duration;

use super::{Frame, LinkType, Timestamp};

/// The core filter: SYN or RST set (SYN, SYN-ACK, RST — SYN-ACKs also feed the baselines),
/// and ICMP/ICMPv6 destination-unreachable and time-exceeded errors. libpcap's `tcp[]` and
/// `icmp6[]` indexing do not work for IPv6, so IPv6 is matched by offsets from the fixed
/// header (next header = TCP/ICMPv6 directly; packets with extension headers are missed).
const CORE_FILTER: &str = "(tcp[tcpflags] & (tcp-syn|tcp-rst) != 0) \
or (icmp[icmptype] == icmp-unreach or icmp[icmptype] == icmp-timxceed) \
or (ip6 and ip6[6] == 6 and ip6[53] & 0x06 != 0) \
or (ip6 and ip6[6] == 58 and (ip6[40] == 1 or ip6[40] == 3))";

/// The default kernel filter: [`CORE_FILTER`] on untagged and on VLAN-tagged frames.
pub fn default_filter() -> String {
    format!("({CORE_FILTER}) or (vlan and ({CORE_FILTER}))")
}

/// What to capture.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Interface name (`any` for all on Linux).
    pub interface: String,
    /// A user filter, ANDed with the default one.
    pub filter: Option<String>,
    /// Bytes kept per packet.
    pub snaplen: i32,
    /// Put the interface in promiscuous mode.
    pub promisc: bool,
}

/// Why live capture failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Capturing needs privileges this process does not have.
    #[error("cannot capture on {interface}: {detail}\n  run it as root (sudo synrst live -i {interface}), or give the binary the capture capabilities once:\n    sudo setcap cap_net_raw,cap_net_admin+ep \"$(command -v synrst)\"")]
    Permission {
        /// The interface.
        interface: String,
        /// libpcap's words.
        detail: String,
    },
    /// The interface does not exist or cannot be opened.
    #[error("cannot capture on {interface}: {detail} (`synrst interfaces` lists what can be captured)")]
    Device {
        /// The interface.
        interface: String,
        /// libpcap's words.
        detail: String,
    },
    /// The BPF filter did not compile.
    #[error("invalid capture filter {filter:?}: {detail}")]
    Filter {
        /// The filter.
        filter: String,
        /// libpcap's words.
        detail: String,
    },
    /// Any other libpcap error.
    #[error("live capture failed: {0}")]
    Pcap(String),
}

fn classify(interface: &str, e: pcap::Error) -> LiveError {
    let detail = e.to_string();
    let lower = detail.to_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") || lower.contains("eperm") {
        LiveError::Permission {
            interface: interface.to_string(),
            detail,
        }
    } else {
        LiveError::Device {
            interface: interface.to_string(),
            detail,
        }
    }
}

/// An open live capture.
pub struct Live {
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    number: u64,
    filter: String,
}

/// Kernel and libpcap counters.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct LiveCounters {
    /// Packets the kernel passed to the filter.
    pub received: u32,
    /// Packets dropped because the capture buffer was full.
    pub dropped: u32,
    /// Packets dropped by the interface or its driver.
    pub if_dropped: u32,
}

impl Live {
    /// Opens the interface and installs the filter.
    pub fn open(opts: &LiveOptions) -> Result<Live, LiveError> {
        let iface = opts.interface.as_str();
        let inactive = pcap::Capture::from_device(iface).map_err(|e| classify(iface, e))?;
        let mut cap = inactive
            .promisc(opts.promisc)
            .snaplen(opts.snaplen)
            .immediate_mode(true)
            .buffer_size(16 << 20)
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(|e| classify(iface, e))?
            // Non-blocking: a read timeout is not honoured in immediate mode on every platform,
            // and the caller must see its stop conditions even when no packet comes.
            .setnonblock()
            .map_err(|e| classify(iface, e))?;
        let base = default_filter();
        let combined = |core: &str| match &opts.filter {
            Some(user) => format!("({core}) and ({user})"),
            None => core.to_string(),
        };
        // Some link types (Linux cooked "any") reject `vlan`: fall back to the core filter.
        let mut filter = combined(&base);
        if cap.filter(&filter, true).is_err() {
            filter = combined(CORE_FILTER);
            cap.filter(&filter, true).map_err(|e| LiveError::Filter {
                filter: filter.clone(),
                detail: e.to_string(),
            })?;
        }
        let link = LinkType(cap.get_datalink().0 as u32);
        Ok(Live {
            cap,
            link,
            number: 0,
            filter,
        })
    }

    /// The interface's link type.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The BPF filter in force.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Takes the next packet if one is waiting (else sleeps [`POLL`] and returns false).
    pub fn next(&mut self, on_frame: impl FnOnce(&Frame<'_>)) -> Result<bool, LiveError> {
        match self.cap.next_packet() {
            Ok(p) => {
                self.number += 1;
                // time_t and suseconds_t are i64 here but narrower on some platforms.
                #[allow(clippy::useless_conversion)]
                let secs = i64::from(p.header.ts.tv_sec);
                // Nanosecond precision was requested; tv_usec then holds nanoseconds.
                #[allow(clippy::useless_conversion)]
                let frac = i64::from(p.header.ts.tv_usec);
                let frame = Frame {
                    ts: Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(frac)),
                    link: self.link,
                    data: p.data,
                    orig_len: p.header.len,
                    number: self.number,
                };
                on_frame(&frame);
                Ok(true)
            }
            Err(pcap::Error::TimeoutExpired) => {
                std::thread::sleep(POLL);
                Ok(false)
            }
            Err(e) => Err(LiveError::Pcap(e.to_string())),
        }
    }

    /// Kernel and libpcap counters so far.
    pub fn counters(&mut self) -> Option<LiveCounters> {
        self.cap.stats().ok().map(|s| LiveCounters {
            received: s.received,
            dropped: s.dropped,
            if_dropped: s.if_dropped,
        })
    }
}

/// One capturable interface.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InterfaceInfo {
    /// Name to pass to `-i`.
    pub name: String,
    /// Description, when libpcap has one.
    pub description: Option<String>,
    /// Addresses.
    pub addresses: Vec<String>,
    /// Up and running.
    pub up: bool,
    /// Loopback.
    pub loopback: bool,
}

/// The interfaces libpcap can capture on.
pub fn interfaces() -> Result<Vec<InterfaceInfo>, LiveError> {
    let list = pcap::Device::list().map_err(|e| LiveError::Pcap(e.to_string()))?;
    Ok(list
        .into_iter()
        .map(|d| InterfaceInfo {
            addresses: d.addresses.iter().map(|a| a.addr.to_string()).collect(),
            up: d.flags.is_up() && d.flags.is_running(),
            loopback: d.flags.is_loopback(),
            name: d.name,
            description: d.desc,
        })
        .collect())
}

/// Pause between polls when nothing arrives.
pub const POLL: Duration = Duration::from_millis(10);
