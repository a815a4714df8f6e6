//! Reading pcap and pcapng files (plain or gzip) from a path or stdin, streaming.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{PcapBlockOwned, PcapError};

use super::{CaptureError, CaptureInfo, Format, Frame, LinkType, Timestamp, Warning};

/// Size of each read from the file and of the reader's starting buffer.
const CHUNK: usize = 1 << 20;
/// The largest single record or block accepted; a bigger one is treated as damage.
const MAX_BLOCK: usize = 64 << 20;

/// Where a capture comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file path.
    Path(PathBuf),
    /// Standard input (`-` on the command line).
    Stdin,
}

impl Source {
    /// `-` means stdin, anything else is a path.
    pub fn from_arg(arg: &str) -> Source {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::Path(PathBuf::from(arg))
        }
    }

    /// The name used in messages and reports.
    pub fn display(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Stdin => "-".to_string(),
        }
    }

    fn path(&self) -> &Path {
        match self {
            Source::Path(p) => p,
            Source::Stdin => Path::new("-"),
        }
    }
}

/// A `Read` that fills the caller's buffer as far as the input allows, so that a pipe
/// delivering small pieces still gives the pcap reader whole headers on its first read.
struct FillRead<R>(R);

impl<R: Read> Read for FillRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.0.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if filled > 0 => {
                    // Report what we have; the error will come back on the next call.
                    let _ = e;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}

/// Opens `source`, transparently gunzipping, and returns a reader plus whether it was gzip.
fn open(source: &Source) -> Result<(Box<dyn Read + Send>, bool), CaptureError> {
    let path = source.path().to_path_buf();
    let io_err = |e: io::Error| CaptureError::Open {
        path: path.clone(),
        source: e,
    };
    let inner: Box<dyn Read + Send> = match source {
        Source::Path(p) => {
            let meta = std::fs::metadata(p).map_err(io_err)?;
            if meta.is_dir() {
                return Err(io_err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory")));
            }
            Box::new(File::open(p).map_err(io_err)?)
        }
        Source::Stdin => Box::new(io::stdin()),
    };
    let mut buffered = BufReader::with_capacity(64 * 1024, inner);
    let head = buffered.fill_buf().map_err(io_err)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(buffered);
        Ok((Box::new(FillRead(gz)), true))
    } else {
        Ok((Box::new(FillRead(buffered)), false))
    }
}

/// Per-interface decoding parameters of a pcapng section.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp.
    offset_secs: i64,
}

/// Converts `units` at `resolution` units/s plus an offset in seconds to a [`Timestamp`].
fn timestamp(units: u64, resolution: u64, offset_secs: i64) -> Timestamp {
    let res = u128::from(resolution.max(1));
    let units = u128::from(units);
    let nanos = (units / res) * 1_000_000_000 + (units % res) * 1_000_000_000 / res;
    let nanos = i64::try_from(nanos).unwrap_or(i64::MAX);
    Timestamp(nanos.saturating_add(offset_secs.saturating_mul(1_000_000_000)))
}

/// Reads every frame of `source`, calling `on_frame` for each, in file order.
///
/// Returns an error only when the input cannot be read as a capture at all. Damage after
/// valid data stops reading with a [`Warning`] in the returned [`CaptureInfo`].
pub fn read_capture(source: &Source, mut on_frame: impl FnMut(&Frame<'_>)) -> Result<CaptureInfo, CaptureError> {
    let path = source.path().to_path_buf();
    let name = source.display();
    let (input, gzip) = open(source)?;
    let mut reader = match pcap_parser::create_reader(CHUNK, input) {
        Ok(r) => r,
        Err(PcapError::Eof) => return Err(CaptureError::Empty { path }),
        Err(PcapError::ReadError) => {
            return Err(CaptureError::Open {
                path,
                source: io::Error::other("read error (or corrupt gzip data)"),
            })
        }
        Err(PcapError::Incomplete(_)) => {
            return Err(CaptureError::NotACapture {
                path,
                detail: "too short for a capture header".into(),
            })
        }
        Err(_) => {
            return Err(CaptureError::NotACapture {
                path,
                detail: "no pcap or pcapng magic number".into(),
            })
        }
    };

    let mut info = CaptureInfo {
        path: name.clone(),
        format: Format::Pcap,
        gzip,
        frames: 0,
        link_types: BTreeMap::new(),
        skipped: BTreeMap::new(),
        bytes: 0,
        warnings: Vec::new(),
    };
    // Legacy pcap: one link type and resolution for the whole file.
    let mut legacy: Option<Interface> = None;
    // pcapng: interfaces of the current section, in order of their description blocks.
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut last_ts = Timestamp(0);
    let mut capacity = CHUNK;
    let mut stalled = 0u32;
    let mut first_block = true;

    loop {
        let offset = reader.consumed() as u64;
        match reader.next() {
            Ok((len, block)) => {
                stalled = 0;
                let mut stop: Option<CaptureError> = None;
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        if h.version_major != 2 {
                            stop = Some(CaptureError::UnsupportedVersion {
                                path: path.clone(),
                                format: "pcap",
                                major: h.version_major,
                                minor: h.version_minor,
                            });
                        }
                        let nanos = h.is_nanosecond_precision();
                        info.format = if nanos { Format::PcapNs } else { Format::Pcap };
                        legacy = Some(Interface {
                            // The upper bits of the field may carry FCS information.
                            link: LinkType((h.network.0 as u32) & 0x03FF_FFFF),
                            resolution: if nanos { 1_000_000_000 } else { 1_000_000 },
                            offset_secs: i64::from(h.thiszone),
                        });
                    }
                    PcapBlockOwned::Legacy(b) => {
                        if let Some(ifc) = legacy {
                            let units = u64::from(b.ts_sec) * ifc.resolution + u64::from(b.ts_usec);
                            let ts = timestamp(units, ifc.resolution, ifc.offset_secs);
                            last_ts = ts;
                            deliver(&mut info, &mut on_frame, ifc.link, ts, b.data, b.origlen);
                        }
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                        info.format = Format::Pcapng;
                        if shb.major_version != 1 {
                            if first_block {
                                stop = Some(CaptureError::UnsupportedVersion {
                                    path: path.clone(),
                                    format: "pcapng",
                                    major: shb.major_version,
                                    minor: shb.minor_version,
                                });
                            } else {
                                info.warnings.push(Warning {
                                    file: name.clone(),
                                    offset: Some(offset),
                                    message: format!(
                                        "pcapng section with unsupported version {}.{}; reading stopped here",
                                        shb.major_version, shb.minor_version
                                    ),
                                });
                                break;
                            }
                        }
                        interfaces.clear();
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let resolution = match idb.ts_resolution() {
                            Some(r) if r > 0 => r,
                            _ => {
                                info.warnings.push(Warning {
                                    file: name.clone(),
                                    offset: Some(offset),
                                    message: format!(
                                        "interface {} has an invalid timestamp resolution (if_tsresol {}); microseconds assumed",
                                        interfaces.len(),
                                        idb.if_tsresol
                                    ),
                                });
                                1_000_000
                            }
                        };
                        interfaces.push(Interface {
                            link: LinkType((idb.linktype.0 as u32) & 0xFFFF),
                            resolution,
                            offset_secs: idb.if_tsoffset,
                        });
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        match interfaces.get(epb.if_id as usize).copied() {
                            Some(ifc) => {
                                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                let ts = timestamp(units, ifc.resolution, ifc.offset_secs);
                                last_ts = ts;
                                let data = epb.packet_data();
                                deliver(&mut info, &mut on_frame, ifc.link, ts, data, epb.origlen);
                            }
                            None => skip_unknown_interface(&mut info),
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => match interfaces.first().copied() {
                        // A simple packet block has no timestamp: the previous one is the best we know.
                        Some(ifc) => {
                            let data = spb.packet_data();
                            deliver(&mut info, &mut on_frame, ifc.link, last_ts, data, spb.origlen);
                        }
                        None => skip_unknown_interface(&mut info),
                    },
                    PcapBlockOwned::NG(_) => {}
                }
                first_block = false;
                reader.consume(len);
                if let Some(e) = stop {
                    return Err(e);
                }
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                stalled += 1;
                if stalled > 3 {
                    // No progress although the buffer was refilled: the block is larger than the buffer.
                    if !grow(&mut *reader, &mut capacity) {
                        info.warnings.push(too_big(&name, offset));
                        break;
                    }
                }
                if let Err(e) = reader.refill() {
                    info.warnings.push(Warning {
                        file: name.clone(),
                        offset: Some(offset),
                        message: format!("read error ({e}); results cover the capture up to here"),
                    });
                    break;
                }
            }
            Err(PcapError::BufferTooSmall) => {
                if !grow(&mut *reader, &mut capacity) {
                    info.warnings.push(too_big(&name, offset));
                    break;
                }
                if reader.refill().is_err() {
                    info.warnings.push(too_big(&name, offset));
                    break;
                }
            }
            Err(PcapError::UnexpectedEof) => {
                info.warnings.push(Warning {
                    file: name.clone(),
                    offset: Some(offset),
                    message: "capture ends inside a record (truncated file); results cover the capture up to here"
                        .into(),
                });
                break;
            }
            Err(e) => {
                info.warnings.push(Warning {
                    file: name.clone(),
                    offset: Some(offset),
                    message: format!(
                        "damaged {} ({}); results cover the capture up to here",
                        if info.format == Format::Pcapng {
                            "block"
                        } else {
                            "record"
                        },
                        describe(&e)
                    ),
                });
                break;
            }
        }
    }
    info.bytes = reader.consumed() as u64;
    Ok(info)
}

/// A packet on an interface no description block declared: read, but not decodable.
fn skip_unknown_interface(info: &mut CaptureInfo) {
    info.frames += 1;
    *info.skipped.entry("unknown_interface".into()).or_insert(0) += 1;
}

fn deliver(
    info: &mut CaptureInfo,
    on_frame: &mut impl FnMut(&Frame<'_>),
    link: LinkType,
    ts: Timestamp,
    data: &[u8],
    orig_len: u32,
) {
    info.frames += 1;
    let number = info.frames;
    *info.link_types.entry(link.0).or_insert(0) += 1;
    on_frame(&Frame {
        ts,
        link,
        data,
        orig_len,
        number,
    });
}

fn grow(reader: &mut dyn PcapReaderIterator, capacity: &mut usize) -> bool {
    if *capacity >= MAX_BLOCK {
        return false;
    }
    *capacity = (*capacity * 2).min(MAX_BLOCK);
    reader.grow(*capacity)
}

fn too_big(name: &str, offset: u64) -> Warning {
    Warning {
        file: name.to_string(),
        offset: Some(offset),
        message: format!(
            "record or block larger than {} MiB (a corrupt length field?); results cover the capture up to here",
            MAX_BLOCK >> 20
        ),
    }
}

fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("invalid structure: {}", kind.description())
        }
        PcapError::HeaderNotRecognized => "header not recognized".into(),
        PcapError::ReadError => "read error".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(timestamp(1_500_000, 1_000_000, 0), Timestamp(1_500_000_000));
        assert_eq!(timestamp(1_500_000_000, 1_000_000_000, 0), Timestamp(1_500_000_000));
        // 2^-10 s resolution (binary if_tsresol).
        assert_eq!(timestamp(1024 + 512, 1024, 0), Timestamp(1_500_000_000));
        assert_eq!(timestamp(1, 1_000_000, 10), Timestamp(10_000_001_000));
        // No overflow on absurd values.
        assert_eq!(timestamp(u64::MAX, 1, 0), Timestamp(i64::MAX));
    }
}
