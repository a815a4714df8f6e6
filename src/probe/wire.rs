//! The probe's network I/O, behind one trait so that tests can feed a simulated network.
//!
//! [`RawWire`] sends whole IP packets (header included) through raw sockets (`IPPROTO_RAW`:
//! IPv4 with `IP_HDRINCL`, IPv6 with the header included as Linux does for `IPPROTO_RAW`, so
//! the probe sets the TTL/hop limit of every packet itself) and receives through a `pnet`
//! datalink channel: an AF_PACKET `SOCK_DGRAM` socket for every protocol on every interface,
//! which hands over whole IP packets (link header removed) with their TTL, in both directions,
//! not in promiscuous mode. Both need CAP_NET_RAW. Timestamps are the receive time.

use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pnet::datalink::{self, Channel, ChannelType, DataLinkReceiver, DataLinkSender, NetworkInterface};
use pnet::packet::ip::IpNextHeaderProtocol;
use pnet::packet::ipv4::Ipv4Packet;
use pnet::packet::ipv6::Ipv6Packet;
use pnet::transport::{transport_channel, TransportChannelType, TransportProtocol, TransportSender};

use crate::capture::Timestamp;

/// Sends and receives whole IP packets.
pub trait Wire {
    /// The current time (monotonic within a probe).
    fn now(&self) -> Timestamp;
    /// Sends one IP packet (header included) to `dst`.
    fn send(&mut self, packet: &[u8], dst: IpAddr) -> io::Result<()>;
    /// Waits at most `wait` for one received IP packet and hands it to `on_packet`, borrowed.
    /// Returns without calling it when nothing came.
    fn recv(&mut self, wait: Duration, on_packet: &mut dyn FnMut(Timestamp, &[u8])) -> io::Result<()>;
}

/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// `IPPROTO_RAW`: send-only raw socket with the IP header included.
const IPPROTO_RAW: u8 = 255;
/// Longest single wait inside the receiver, so callers' deadlines hold.
const POLL: Duration = Duration::from_millis(10);

/// The real network: raw sockets out, an AF_PACKET channel in.
pub struct RawWire {
    v4: Option<TransportSender>,
    v6: Option<TransportSender>,
    rx: Box<dyn DataLinkReceiver>,
    _tx: Box<dyn DataLinkSender>,
    start: Instant,
    start_ts: Timestamp,
}

impl RawWire {
    /// Opens the sockets for one address family. Fails with `PermissionDenied` without
    /// CAP_NET_RAW.
    pub fn open(v6: bool) -> io::Result<RawWire> {
        let proto = IpNextHeaderProtocol(IPPROTO_RAW);
        let (v4s, v6s) = if v6 {
            let (tx, _) = transport_channel(0, TransportChannelType::Layer4(TransportProtocol::Ipv6(proto)))?;
            (None, Some(tx))
        } else {
            let (tx, _) = transport_channel(0, TransportChannelType::Layer3(proto))?;
            (Some(tx), None)
        };
        // Interface index 0: every interface (the answer may come back on another one).
        let any = NetworkInterface {
            name: "any".into(),
            description: String::new(),
            index: 0,
            mac: None,
            ips: Vec::new(),
            flags: 0,
        };
        let config = datalink::Config {
            read_buffer_size: 65_536,
            read_timeout: Some(POLL),
            channel_type: ChannelType::Layer3(ETH_P_ALL),
            promiscuous: false,
            ..datalink::Config::default()
        };
        let (tx, rx) = match datalink::channel(&any, config)? {
            Channel::Ethernet(tx, rx) => (tx, rx),
            _ => return Err(io::Error::other("unexpected datalink channel type")),
        };
        let start_ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| Timestamp(d.as_nanos() as i64))
            .unwrap_or_default();
        Ok(RawWire {
            v4: v4s,
            v6: v6s,
            rx,
            _tx: tx,
            start: Instant::now(),
            start_ts,
        })
    }
}

impl Wire for RawWire {
    fn now(&self) -> Timestamp {
        self.start_ts.plus_nanos(self.start.elapsed().as_nanos() as i64)
    }

    fn send(&mut self, packet: &[u8], dst: IpAddr) -> io::Result<()> {
        match dst {
            IpAddr::V4(_) => {
                let tx = self.v4.as_mut().ok_or_else(|| io::Error::other("no IPv4 socket"))?;
                let p = Ipv4Packet::new(packet).ok_or_else(|| io::Error::other("short IPv4 packet"))?;
                tx.send_to(p, dst)?;
            }
            IpAddr::V6(_) => {
                let tx = self.v6.as_mut().ok_or_else(|| io::Error::other("no IPv6 socket"))?;
                let p = Ipv6Packet::new(packet).ok_or_else(|| io::Error::other("short IPv6 packet"))?;
                tx.send_to(p, dst)?;
            }
        }
        Ok(())
    }

    fn recv(&mut self, wait: Duration, on_packet: &mut dyn FnMut(Timestamp, &[u8])) -> io::Result<()> {
        let until = Instant::now() + wait;
        loop {
            match self.rx.next() {
                Ok(data) => {
                    let ts = self.start_ts.plus_nanos(self.start.elapsed().as_nanos() as i64);
                    on_packet(ts, data);
                    return Ok(());
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() >= until {
                return Ok(());
            }
        }
    }
}
