//! The probe target: `HOST:PORT` parsed, resolved, and classified as local or remote.
//!
//! Contract: [`parse_target`] accepts `NAME:PORT`, `IPV4:PORT` and `[IPV6]:PORT` (an IPv6
//! address needs brackets, since its colons would swallow the port) and never resolves.
//! [`TargetSpec::resolve`] returns the addresses in resolver order; `localhost` is always both
//! `::1` and `127.0.0.1`, in that order (what Node 17+ and most resolvers try first), whatever
//! the hosts file says, because the point is to compare the two.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use super::ProbeError;

/// A parsed `HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSpec {
    /// The host part as given (brackets removed).
    pub host: String,
    /// The port.
    pub port: u16,
}

/// Parses `HOST:PORT` (`[v6]:PORT` for IPv6 addresses).
pub fn parse_target(s: &str) -> Result<TargetSpec, ProbeError> {
    let bad = |why: &str| ProbeError::BadTarget(format!("bad target {s:?}: {why}"));
    let s = s.trim();
    if s.is_empty() {
        return Err(bad(
            "give HOST:PORT, e.g. example.org:443, 127.0.0.1:8080 or [::1]:5173",
        ));
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return Err(bad(&format!("an IPv6 address needs brackets and a port: [{s}]:PORT")));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| bad("write an IPv6 target as [ADDRESS]:PORT"))?;
        h.parse::<Ipv6Addr>()
            .map_err(|_| bad(&format!("{h:?} is not an IPv6 address")))?;
        (h, p)
    } else {
        s.rsplit_once(':')
            .ok_or_else(|| bad("no port: give HOST:PORT, e.g. example.org:443"))?
    };
    if host.is_empty() {
        return Err(bad("no host before the port"));
    }
    if host.contains(':') && !s.starts_with('[') {
        return Err(bad("an IPv6 address needs brackets: [ADDRESS]:PORT"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad(&format!("{port:?} is not a port number (1-65535)")))?;
    if port == 0 {
        return Err(bad("port 0 cannot be connected to"));
    }
    Ok(TargetSpec {
        host: host.to_string(),
        port,
    })
}

impl TargetSpec {
    /// Whether the host is the name `localhost` (or a name under `.localhost`, RFC 6761).
    pub fn is_localhost_name(&self) -> bool {
        let h = self.host.trim_end_matches('.').to_ascii_lowercase();
        h == "localhost" || h.ends_with(".localhost")
    }

    /// The addresses to probe, in resolver order, without duplicates.
    pub fn resolve(&self) -> Result<Vec<IpAddr>, ProbeError> {
        if self.is_localhost_name() {
            return Ok(vec![IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        }
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| ProbeError::Resolve {
                host: self.host.clone(),
                detail: e.to_string(),
            })?;
        let mut out: Vec<IpAddr> = Vec::new();
        for a in addrs {
            if !out.contains(&a.ip()) {
                out.push(a.ip());
            }
        }
        if out.is_empty() {
            return Err(ProbeError::Resolve {
                host: self.host.clone(),
                detail: "no address".into(),
            });
        }
        Ok(out)
    }
}

/// Whether `ip` is an address of this machine (in this network namespace): loopback, the
/// unspecified address (connecting to it reaches this host), or an address of an interface.
pub fn is_local(ip: IpAddr, interface_addresses: &[IpAddr]) -> bool {
    ip.is_loopback() || ip.is_unspecified() || interface_addresses.contains(&ip)
}

/// The addresses of this machine's interfaces (getifaddrs through pnet; no privilege needed).
pub fn interface_addresses() -> Vec<IpAddr> {
    pnet::datalink::interfaces()
        .iter()
        .flat_map(|i| i.ips.iter().map(|n| n.ip()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Result<(String, u16), String> {
        parse_target(s).map(|t| (t.host, t.port)).map_err(|e| e.to_string())
    }

    #[test]
    fn targets_parse() {
        assert_eq!(t("example.org:443"), Ok(("example.org".into(), 443)));
        assert_eq!(t("198.18.4.2:82"), Ok(("198.18.4.2".into(), 82)));
        assert_eq!(t("[2001:db8:4::2]:81"), Ok(("2001:db8:4::2".into(), 81)));
        assert_eq!(t("localhost:5173"), Ok(("localhost".into(), 5173)));
    }

    #[test]
    fn bad_targets_say_what_to_write() {
        assert!(t("example.org").unwrap_err().contains("no port"));
        assert!(t("2001:db8::1").unwrap_err().contains("[2001:db8::1]:PORT"));
        assert!(t("2001:db8::1:80").unwrap_err().contains("brackets"));
        assert!(t("host:http").unwrap_err().contains("not a port"));
        assert!(t("host:0").unwrap_err().contains("port 0"));
        assert!(t("[nope]:80").unwrap_err().contains("not an IPv6"));
        assert!(t(":80").unwrap_err().contains("no host"));
    }

    #[test]
    fn localhost_is_both_families_v6_first() {
        let spec = parse_target("LocalHost.:3000").unwrap();
        assert_eq!(
            spec.resolve().unwrap(),
            vec![IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::LOCALHOST)]
        );
        assert!(parse_target("app.localhost:1").unwrap().is_localhost_name());
    }

    #[test]
    fn local_addresses() {
        let mine = ["198.18.200.1".parse().unwrap()];
        assert!(is_local("127.0.0.2".parse().unwrap(), &mine));
        assert!(is_local("::1".parse().unwrap(), &mine));
        assert!(is_local("0.0.0.0".parse().unwrap(), &mine));
        assert!(is_local("198.18.200.1".parse().unwrap(), &mine));
        assert!(!is_local("198.18.4.2".parse().unwrap(), &mine));
    }
}
