//! Reading pcap and pcapng files (plain or gzip) from a path or stdin, streaming.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use pcap_parser::nom;
use pcap_parser::pcap::PcapHeader;
use pcap_parser::pcapng::{self, Block};
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::PcapError;

use super::{CaptureError, CaptureInfo, Format, Frame, LinkType, Timestamp, Warning};

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

    /// Whether it is a regular file (not standard input, a pipe or a device): all there,
    /// rather than still being written.
    pub fn is_regular_file(&self) -> bool {
        match self {
            Source::Path(p) => std::fs::metadata(p).is_ok_and(|m| m.is_file()),
            Source::Stdin => false,
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

/// Adds the bytes of each `read` to a shared counter (progress: once per buffer, not per record).
struct Counting<R>(R, Arc<AtomicU64>);

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened input.
struct Opened {
    /// The bytes, gunzipped.
    reader: Box<dyn Read + Send>,
    /// It was gzip.
    gzip: bool,
    /// For an uncompressed regular file, a second handle on it (read by position, see
    /// [`Chunks`]).
    positional: Option<File>,
}

/// Opens `source`, transparently gunzipping. `progress` counts the bytes read from the input
/// itself (before decompression).
fn open(source: &Source, progress: Option<Arc<AtomicU64>>) -> Result<Opened, CaptureError> {
    let path = source.path().to_path_buf();
    let io_err = |e: io::Error| CaptureError::Open {
        path: path.clone(),
        source: e,
    };
    let mut positional = None;
    let inner: Box<dyn Read + Send> = match source {
        Source::Path(p) => {
            let meta = std::fs::metadata(p).map_err(io_err)?;
            if meta.is_dir() {
                return Err(io_err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory")));
            }
            let file = File::open(p).map_err(io_err)?;
            if meta.is_file() {
                positional = file.try_clone().ok();
            }
            Box::new(file)
        }
        Source::Stdin => Box::new(io::stdin()),
    };
    let inner = match progress {
        Some(counter) => Box::new(Counting(inner, counter)),
        None => inner,
    };
    let mut buffered = BufReader::with_capacity(64 * 1024, inner);
    let head = buffered.fill_buf().map_err(io_err)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(buffered);
        Ok(Opened {
            reader: Box::new(FillRead(gz)),
            gzip: true,
            positional: None,
        })
    } else {
        Ok(Opened {
            reader: Box::new(FillRead(buffered)),
            gzip: false,
            positional,
        })
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

/// Starts loading the first two cache lines of `rest` (the next record: its header and the
/// headers of its packet). Records of full-size packets lie a few lines apart, a stride the
/// CPU does not guess, in bytes that a reading thread copied on another core.
#[inline(always)]
fn fetch_ahead(rest: &[u8]) {
    if let Some(x) = rest.first() {
        crate::hint::prefetch(x);
    }
    if let Some(x) = rest.get(64) {
        crate::hint::prefetch(x);
    }
}

/// Converts `units` at `resolution` units/s plus an offset in seconds to a [`Timestamp`].
#[inline]
fn timestamp(units: u64, resolution: u64, offset_secs: i64) -> Timestamp {
    let nanos = if resolution == 1_000_000 || resolution == 1_000_000_000 {
        // The usual resolutions divide a second exactly: one multiplication, the same result.
        u128::from(units) * u128::from(1_000_000_000 / resolution)
    } else {
        let res = u128::from(resolution.max(1));
        let units = u128::from(units);
        (units / res) * 1_000_000_000 + (units % res) * 1_000_000_000 / res
    };
    let nanos = i64::try_from(nanos).unwrap_or(i64::MAX);
    Timestamp(nanos.saturating_add(offset_secs.saturating_mul(1_000_000_000)))
}

/// Reads every frame of `source`, calling `on_frame` for each, in file order.
///
/// Returns an error only when the input cannot be read as a capture at all. Damage after
/// valid data stops reading with a [`Warning`] in the returned [`CaptureInfo`].
///
/// Reading and parsing overlap: a helper thread `read()`s the input into a few recycled
/// buffers and hands them over in order, while this thread parses the records in place (only
/// the unparsed tail of a buffer, less than one record, is copied in front of the next one) and
/// calls `on_frame`. An input that fits in one buffer is read without a thread.
pub fn read_capture(source: &Source, on_frame: impl FnMut(&Frame<'_>)) -> Result<CaptureInfo, CaptureError> {
    read_capture_counting(source, None, on_frame)
}

/// [`read_capture`], adding the input's bytes to `progress` as they are read (for a progress
/// display; gzip input counts its compressed bytes, so a file's size is the total).
pub fn read_capture_counting(
    source: &Source,
    progress: Option<Arc<AtomicU64>>,
    mut on_frame: impl FnMut(&Frame<'_>),
) -> Result<CaptureInfo, CaptureError> {
    let path = source.path().to_path_buf();
    let name = source.display();
    let Opened {
        reader: input,
        gzip,
        positional,
    } = open(source, progress.clone())?;
    let mut chunks = Chunks::start(input, positional, progress).map_err(|_| CaptureError::Open {
        path: path.clone(),
        source: io::Error::other("read error (or corrupt gzip data)"),
    })?;
    let first = &chunks.cur[HEAD..HEAD + chunks.first_len];
    if first.is_empty() {
        return Err(CaptureError::Empty { path });
    }
    // A legacy header of another major version (reported after the checks pcap-parser made first).
    let mut bad_version = None;
    let mut parser = if pcapng::parse_sectionheaderblock(first).is_ok() {
        Parser::new(name.clone(), Kind::Pcapng)
    } else {
        match pcap_parser::pcap::parse_pcap_header(first) {
            Ok((_, header)) => {
                if header.version_major != 2 {
                    bad_version = Some((header.version_major, header.version_minor));
                }
                Parser::legacy(name.clone(), &header)
            }
            Err(nom::Err::Incomplete(_)) => {
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
        }
    };
    parser.info.gzip = gzip;
    chunks.go().map_err(|_| CaptureError::Open {
        path: path.clone(),
        source: io::Error::other("read error (or corrupt gzip data)"),
    })?;
    if let Some((major, minor)) = bad_version {
        return Err(CaptureError::UnsupportedVersion {
            path,
            format: "pcap",
            major,
            minor,
        });
    }
    let mut lo = HEAD;
    let mut hi = HEAD + chunks.first_len;
    if matches!(parser.kind, Kind::Legacy(..)) {
        // The file header: 24 bytes, checked above.
        lo += 24;
        parser.offset = 24;
    }
    // A record longer than the room in front of a buffer is assembled here instead.
    let mut big: Vec<u8> = Vec::new();
    let mut in_big = false;
    let mut eof = false;
    loop {
        let data: &[u8] = if in_big { &big[lo..] } else { &chunks.cur[lo..hi] };
        let (used, stop) = parser.run(data, &mut on_frame);
        lo += used;
        match stop {
            Stop::Fatal(e) => return Err(e.with_path(path)),
            Stop::Done => break,
            Stop::NeedMore(_) if eof => {
                if used < data.len() {
                    parser.warn(
                        "capture ends inside a record (truncated file); results cover the capture up to here".into(),
                    );
                }
                break;
            }
            Stop::NeedMore(total) => {
                if total.is_some_and(|t| t >= MAX_BLOCK) || (in_big && big.len() - lo >= MAX_BLOCK) {
                    // A corrupt length field: see whether the input really holds that much.
                    let have = if in_big { big.len() - lo } else { hi - lo };
                    parser.too_big(have, &mut chunks);
                    break;
                }
                match chunks.next() {
                    Msg::Data(mut buf, n) => {
                        let rest = if in_big { &big[lo..] } else { &chunks.cur[lo..hi] };
                        if rest.len() <= HEAD {
                            buf[HEAD - rest.len()..HEAD].copy_from_slice(rest);
                            lo = HEAD - rest.len();
                            hi = HEAD + n;
                            let old = std::mem::replace(&mut chunks.cur, buf);
                            chunks.recycle(old);
                            in_big = false;
                            big = Vec::new();
                        } else {
                            if !in_big {
                                big = chunks.cur[lo..hi].to_vec();
                                lo = 0;
                                in_big = true;
                            } else if lo > 0 {
                                big.drain(..lo);
                                lo = 0;
                            }
                            big.extend_from_slice(&buf[HEAD..HEAD + n]);
                            chunks.recycle(buf);
                        }
                    }
                    Msg::Eof => eof = true,
                    Msg::Error => {
                        parser.warn(format!(
                            "read error ({}); results cover the capture up to here",
                            PcapError::<&[u8]>::ReadError
                        ));
                        break;
                    }
                }
            }
        }
    }
    Ok(parser.finish())
}

/// Frames per batch handed from the mapping thread to the caller of [`read_capture_mapped`].
const BATCH: usize = 1024;
/// Batches in flight between the two threads.
const BATCHES: usize = 4;

/// What [`read_capture_mapped`] fills in on one thread, a frame at a time, and hands to the
/// other a batch at a time.
pub trait Batch: Default + Send {
    /// Frames in it.
    fn frames(&self) -> usize;
    /// Empties it, keeping its memory for the next frames.
    fn clear(&mut self);
}

/// [`read_capture`] with the work split in two: a thread reads the input, parses its records
/// and calls `map` on every frame (in file order) to add what it makes of it to a batch, while
/// this thread hands the batches to `on_batch`, in the same order.
///
/// What `map` does with the bytes (decoding) then runs on the core whose cache the bytes were
/// just read into, and only its results cross to the other core: the smaller they are, the
/// fewer cache lines go back and forth. Batches are reused, emptied with [`Batch::clear`].
pub fn read_capture_mapped<B: Batch>(
    source: &Source,
    progress: Option<Arc<AtomicU64>>,
    map: impl Fn(&Frame<'_>, &mut B) + Sync,
    mut on_batch: impl FnMut(&mut B),
) -> Result<CaptureInfo, CaptureError> {
    let map = &map;
    let worker_progress = progress.clone();
    let (full_tx, full_rx) = sync_channel::<B>(BATCHES);
    let (empty_tx, empty_rx) = channel::<B>();
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("synrst-decode".into())
            .spawn_scoped(scope, move || {
                let mut batch = B::default();
                let mut hung_up = false;
                let info = read_capture_counting(source, worker_progress, |frame| {
                    if hung_up {
                        return;
                    }
                    map(frame, &mut batch);
                    if batch.frames() == BATCH {
                        let mut next = empty_rx.try_recv().unwrap_or_default();
                        next.clear();
                        hung_up = !hand_on(&full_tx, std::mem::replace(&mut batch, next));
                    }
                });
                if batch.frames() > 0 && !hung_up {
                    let _ = full_tx.send(batch);
                }
                info
            });
        let worker = match worker {
            Ok(w) => w,
            // No thread to be had: do it all here.
            Err(_) => return Err(None),
        };
        for mut batch in full_rx.iter() {
            on_batch(&mut batch);
            let _ = empty_tx.send(batch);
        }
        match worker.join() {
            Ok(result) => result.map_err(Some),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
    .or_else(|e: Option<CaptureError>| match e {
        Some(e) => Err(e),
        None => {
            let mut one = B::default();
            read_capture_counting(source, progress, |frame| {
                map(frame, &mut one);
                on_batch(&mut one);
                one.clear();
            })
        }
    })
}

/// Sends `batch` to the tracking thread; false if it has gone.
///
/// When the channel is full (tracking is the slower side, as on SYN floods), this thread naps
/// and retries instead of blocking in `send`: a blocked sender must be woken by the receiver,
/// a system call on the tracking thread for every batch it takes, and that thread is the one
/// that sets the pace. With [`BATCHES`] batches queued the tracker has far more work in hand
/// than one nap lasts.
fn hand_on<T>(tx: &SyncSender<T>, batch: T) -> bool {
    let mut batch = batch;
    loop {
        match tx.try_send(batch) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(b)) => {
                batch = b;
                std::thread::sleep(NAP);
            }
        }
    }
}

/// How long the decoding thread waits before offering a batch again to a full channel (the
/// tracker takes tens of microseconds per batch).
const NAP: std::time::Duration = std::time::Duration::from_micros(50);

/// Size of the first read, which must hold a pcapng section header block (as with
/// pcap-parser's 1 MiB reader buffer).
const FIRST: usize = 1 << 20;
/// Size of each later read: big enough that handing buffers between threads (a wake-up each)
/// costs little, small enough that a few in flight keep memory low.
const CHUNK: usize = 1 << 19;
/// Room in front of each buffer for the unparsed tail of the previous one (one record of the
/// largest usual snap length, 256 KiB, with its header).
const HEAD: usize = 320 << 10;
/// Buffers in circulation between the reading thread and the parser.
const POOL: usize = 3;
/// The largest single record or block accepted; a bigger one is treated as damage.
const MAX_BLOCK: usize = 64 << 20;

/// What the reading side hands over.
enum Msg {
    /// A buffer holding `n` bytes of input at `HEAD..HEAD + n`.
    Data(Buffer, usize),
    /// The input ended.
    Eof,
    /// Reading failed.
    Error,
}

/// A zeroed byte buffer whose first byte starts a memory page.
///
/// Reads land at `HEAD` (a whole number of pages) into it, so the kernel's copy out of the page
/// cache writes to page-aligned memory. That matters: on AMD Zen 3 (`rep movsb`), copying 1 GB
/// from tmpfs to a destination 16 bytes past a cache line, where `malloc` puts a large block,
/// took 0.5-0.6 s instead of 0.12 s (bench/README.md).
struct Buffer {
    bytes: Vec<u8>,
    /// Where the page-aligned part of `bytes` starts.
    base: usize,
}

/// The alignment of a [`Buffer`]'s start.
const PAGE: usize = 4096;

impl Buffer {
    fn new(len: usize) -> Buffer {
        let bytes = vec![0u8; len + PAGE];
        // The heap block does not move while `bytes` lives, moved or not.
        let base = (PAGE - bytes.as_ptr() as usize % PAGE) % PAGE;
        Buffer { bytes, base }
    }

    /// Where the buffer lies in `bytes`.
    fn range(&self) -> std::ops::Range<usize> {
        self.base..self.bytes.len() - PAGE + self.base
    }
}

impl std::ops::Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[self.range()]
    }
}

impl std::ops::DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        let range = self.range();
        &mut self.bytes[range]
    }
}

/// The input as a sequence of buffers: the first read on this thread (it decides the format,
/// and a small input needs nothing more), the rest from reading threads.
///
/// A stream (stdin, gzip) is read by one thread, in order. A regular file is read by
/// [`READERS`] threads at once, each `pread`ing every [`READERS`]th chunk at its place in the
/// file: copying the bytes out of the page cache is most of the cost of reading a big capture,
/// and this spreads it over the cores. Buffers come back to this thread in file order.
struct Chunks {
    /// The buffer being parsed.
    cur: Buffer,
    /// Bytes in the first buffer.
    first_len: usize,
    /// Input still read on this thread (it fitted in the first buffer, or is being drained).
    inline: Option<Box<dyn Read + Send>>,
    /// The same file, for reading by position (plain regular files only).
    positional: Option<File>,
    /// Counts the bytes the positional readers read (the stream counts its own).
    progress: Option<Arc<AtomicU64>>,
    /// Filled buffers from the reading threads, taken in turn.
    filled: Vec<Receiver<Msg>>,
    /// Whose turn it is in `filled`.
    turn: usize,
    /// `filled` are readers by position (else one stream reader).
    by_position: bool,
    /// The input ended (no more buffers will be taken).
    ended: bool,
    /// Empty buffers, for the reading threads to reuse.
    pool: Arc<Mutex<Vec<Buffer>>>,
    /// A spare buffer for inline reads.
    spare: Option<Buffer>,
}

/// Threads reading a regular file by position.
const READERS: usize = 2;

impl Chunks {
    fn start(
        mut input: Box<dyn Read + Send>,
        positional: Option<File>,
        progress: Option<Arc<AtomicU64>>,
    ) -> io::Result<Chunks> {
        let mut cur = Buffer::new(HEAD + FIRST);
        let n = input.read(&mut cur[HEAD..])?;
        Ok(Chunks {
            cur,
            first_len: n,
            inline: Some(input),
            positional,
            progress,
            filled: Vec::new(),
            turn: 0,
            by_position: false,
            ended: false,
            pool: Arc::new(Mutex::new(Vec::new())),
            spare: None,
        })
    }

    /// After the format is known: the rest of the input comes from reading threads, unless
    /// the first read already reached its end.
    fn go(&mut self) -> io::Result<()> {
        let Some(mut input) = self.inline.take() else {
            return Ok(());
        };
        let n = self.first_len;
        if n < FIRST {
            // A short first read means the end of the input, or an error after some data: read
            // once more to know which (pcap-parser's readers did, and failed on the error).
            self.first_len += input.read(&mut self.cur[HEAD + n..])?;
            self.inline = Some(input);
            return Ok(());
        }
        // Detached: if parsing stops early (damage), a thread ends at its next hand-over; it
        // must not hold up the result while it waits on a slow input such as a pipe.
        match self.positional.take() {
            Some(file) => {
                self.by_position = true;
                let file = Arc::new(file);
                for reader in 0..READERS {
                    let (tx, rx) = sync_channel(POOL);
                    let (file, pool) = (Arc::clone(&file), Arc::clone(&self.pool));
                    let progress = self.progress.clone();
                    let start = n as u64;
                    std::thread::Builder::new()
                        .name("synrst-read".into())
                        .spawn(move || pump_at(&file, start, reader, tx, &pool, progress.as_deref()))?;
                    self.filled.push(rx);
                }
            }
            None => {
                let (tx, rx) = sync_channel(POOL);
                let pool = Arc::clone(&self.pool);
                std::thread::Builder::new()
                    .name("synrst-read".into())
                    .spawn(move || pump(input, tx, &pool))?;
                self.filled.push(rx);
            }
        }
        Ok(())
    }

    fn next(&mut self) -> Msg {
        if self.ended {
            return Msg::Eof;
        }
        if !self.filled.is_empty() {
            let msg = self.filled[self.turn].recv().unwrap_or(Msg::Eof);
            self.turn = (self.turn + 1) % self.filled.len();
            // Read by position, a short chunk is the end of the file (as it was when that
            // chunk was read: the other reader may have found more of a growing file). A
            // stream's reader says itself how its input ended (a short read, then the end or
            // an error).
            let last = match &msg {
                Msg::Data(_, n) => self.by_position && *n < CHUNK,
                Msg::Eof | Msg::Error => true,
            };
            if last {
                self.ended = true;
                self.filled.clear();
            }
            return msg;
        }
        let Some(input) = self.inline.as_mut() else {
            return Msg::Eof;
        };
        let mut buf = self.spare.take().unwrap_or_else(|| Buffer::new(HEAD + CHUNK));
        match input.read(&mut buf[HEAD..HEAD + CHUNK]) {
            Ok(0) => {
                self.inline = None;
                Msg::Eof
            }
            Ok(n) => Msg::Data(buf, n),
            Err(_) => {
                self.inline = None;
                Msg::Error
            }
        }
    }

    fn recycle(&mut self, buf: Buffer) {
        if self.filled.is_empty() {
            self.spare = Some(buf);
        } else if let Ok(mut pool) = self.pool.lock() {
            pool.push(buf);
        }
    }
}

/// An empty buffer from `pool`, or a new one.
fn take_buffer(pool: &Mutex<Vec<Buffer>>) -> Buffer {
    pool.lock()
        .ok()
        .and_then(|mut p| p.pop())
        .unwrap_or_else(|| Buffer::new(HEAD + CHUNK))
}

/// A stream's reading thread: fills buffers in order until the input ends, fails, or the
/// parser hangs up.
fn pump(mut input: Box<dyn Read + Send>, filled: SyncSender<Msg>, pool: &Mutex<Vec<Buffer>>) {
    loop {
        let mut buf = take_buffer(pool);
        let msg = match input.read(&mut buf[HEAD..HEAD + CHUNK]) {
            Ok(0) => Msg::Eof,
            Ok(n) => Msg::Data(buf, n),
            Err(_) => Msg::Error,
        };
        let last = !matches!(msg, Msg::Data(..));
        if filled.send(msg).is_err() || last {
            return;
        }
    }
}

/// One of [`READERS`] threads reading a regular file by position: chunks `reader`,
/// `reader + READERS`, … after byte `start`, each filled completely unless the file ends in it.
fn pump_at(
    file: &File,
    start: u64,
    reader: usize,
    filled: SyncSender<Msg>,
    pool: &Mutex<Vec<Buffer>>,
    progress: Option<&AtomicU64>,
) {
    use std::os::unix::fs::FileExt;
    let mut chunk = reader as u64;
    loop {
        let mut buf = take_buffer(pool);
        let mut at = 0;
        let offset = start + chunk * CHUNK as u64;
        let msg = loop {
            match file.read_at(&mut buf[HEAD + at..HEAD + CHUNK], offset + at as u64) {
                Ok(0) => break if at == 0 { Msg::Eof } else { Msg::Data(buf, at) },
                Ok(k) => {
                    at += k;
                    if at == CHUNK {
                        break Msg::Data(buf, at);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break Msg::Error,
            }
        };
        if let (Some(p), Msg::Data(_, n)) = (progress, &msg) {
            p.fetch_add(*n as u64, Ordering::Relaxed);
        }
        let last = !matches!(msg, Msg::Data(_, n) if n == CHUNK);
        if filled.send(msg).is_err() || last {
            return;
        }
        chunk += READERS as u64;
    }
}

/// The capture's format, with what decoding its records needs.
#[derive(Clone, Copy)]
enum Kind {
    /// Legacy pcap: its record layout and the one interface.
    Legacy(Layout, Interface),
    /// pcapng.
    Pcapng,
}

/// How a legacy pcap record header is laid out: the four numbers of pcap-parser's
/// `parse_pcap_frame` (little-endian), `parse_pcap_frame_be` (big-endian) or
/// `parse_pcap_frame_modified` (little-endian, 8 more bytes before the data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Le,
    Be,
    Modified,
}

/// Why [`Parser::run`] stopped.
enum Stop {
    /// The next record is incomplete; `Some(n)`: it needs `n` bytes from its start.
    NeedMore(Option<usize>),
    /// Reading ends here (a warning says why).
    Done,
    /// Not readable as a capture at all.
    Fatal(Fatal),
}

/// A [`CaptureError`] without the path, filled in by the caller.
enum Fatal {
    UnsupportedVersion { major: u16, minor: u16 },
}

impl Fatal {
    fn with_path(self, path: PathBuf) -> CaptureError {
        match self {
            Fatal::UnsupportedVersion { major, minor } => CaptureError::UnsupportedVersion {
                path,
                format: "pcapng",
                major,
                minor,
            },
        }
    }
}

/// Record-level state: the format, the interfaces, what was seen.
struct Parser {
    kind: Kind,
    info: CaptureInfo,
    name: String,
    /// Byte offset (in the decompressed stream) of the next record.
    offset: u64,
    /// pcapng: interfaces of the current section, in order of their description blocks.
    interfaces: Vec<Interface>,
    /// pcapng: the current section is big-endian.
    big_endian: bool,
    last_ts: Timestamp,
    first_block: bool,
    /// Frames of `link` not yet added to `info.link_types` (one map update per run of frames).
    link: Option<(LinkType, u64)>,
}

impl Parser {
    fn new(name: String, kind: Kind) -> Parser {
        Parser {
            kind,
            info: CaptureInfo {
                path: name.clone(),
                format: match kind {
                    Kind::Pcapng => Format::Pcapng,
                    Kind::Legacy(..) => Format::Pcap,
                },
                gzip: false,
                frames: 0,
                link_types: BTreeMap::new(),
                skipped: BTreeMap::new(),
                bytes: 0,
                warnings: Vec::new(),
            },
            name,
            offset: 0,
            interfaces: Vec::new(),
            big_endian: false,
            last_ts: Timestamp(0),
            first_block: true,
            link: None,
        }
    }

    fn legacy(name: String, h: &PcapHeader) -> Parser {
        let nanos = h.is_nanosecond_precision();
        let layout = if h.is_modified_format() {
            Layout::Modified
        } else if h.is_bigendian() {
            Layout::Be
        } else {
            Layout::Le
        };
        let ifc = Interface {
            // The upper bits of the field may carry FCS information.
            link: LinkType((h.network.0 as u32) & 0x03FF_FFFF),
            resolution: if nanos { 1_000_000_000 } else { 1_000_000 },
            offset_secs: i64::from(h.thiszone),
        };
        let mut p = Parser::new(name, Kind::Legacy(layout, ifc));
        p.info.format = if nanos { Format::PcapNs } else { Format::Pcap };
        p.first_block = false;
        p
    }

    fn warn(&mut self, message: String) {
        self.info.warnings.push(Warning {
            file: self.name.clone(),
            offset: Some(self.offset),
            message,
        });
    }

    /// A record claims `MAX_BLOCK` bytes or more: damage. If the input ends within half that
    /// (where pcap-parser's growing buffer found the end), the file was cut inside it;
    /// otherwise the length field is wrong. The bytes are counted, not kept.
    fn too_big(&mut self, mut have: usize, chunks: &mut Chunks) {
        while have <= MAX_BLOCK / 2 {
            match chunks.next() {
                Msg::Data(buf, n) => {
                    have += n;
                    chunks.recycle(buf);
                }
                Msg::Eof => {
                    self.warn(
                        "capture ends inside a record (truncated file); results cover the capture up to here".into(),
                    );
                    return;
                }
                Msg::Error => {
                    self.warn(format!(
                        "read error ({}); results cover the capture up to here",
                        PcapError::<&[u8]>::ReadError
                    ));
                    return;
                }
            }
        }
        let message = format!(
            "record or block larger than {} MiB (a corrupt length field?); results cover the capture up to here",
            MAX_BLOCK >> 20
        );
        self.warn(message);
    }

    /// Parses every complete record at the start of `data`; returns the bytes consumed and why
    /// it stopped.
    fn run(&mut self, data: &[u8], on_frame: &mut impl FnMut(&Frame<'_>)) -> (usize, Stop) {
        match self.kind {
            Kind::Legacy(Layout::Le, ifc) => self.run_legacy::<false, 16>(ifc, data, on_frame),
            Kind::Legacy(Layout::Be, ifc) => self.run_legacy::<true, 16>(ifc, data, on_frame),
            Kind::Legacy(Layout::Modified, ifc) => self.run_legacy::<false, 24>(ifc, data, on_frame),
            Kind::Pcapng => self.run_pcapng(data, on_frame),
        }
    }

    /// [`Parser::run`] of legacy pcap records of `HEADER` bytes (big-endian numbers if `BE`).
    ///
    /// The records are read in place, as pcap-parser's `parse_pcap_frame` functions read them
    /// (the tests compare the two), not through them: behind a function pointer, with nom's
    /// result around it, one call cost a third of what decoding a SYN flood's frame costs.
    #[inline(always)]
    fn run_legacy<const BE: bool, const HEADER: usize>(
        &mut self,
        ifc: Interface,
        data: &[u8],
        on_frame: &mut impl FnMut(&Frame<'_>),
    ) -> (usize, Stop) {
        let mut pos = 0;
        loop {
            let Some((rest, record)) = legacy_record::<BE, HEADER>(&data[pos..]) else {
                return (pos, Stop::NeedMore(legacy_needs::<BE, HEADER>(&data[pos..])));
            };
            // The next record's header and its packet's first bytes: asked for now, to come
            // while this frame is decoded (another core read them in).
            fetch_ahead(rest);
            let units = u64::from(record.ts_sec) * ifc.resolution + u64::from(record.ts_frac);
            let ts = timestamp(units, ifc.resolution, ifc.offset_secs);
            self.last_ts = ts;
            self.deliver(on_frame, ifc.link, ts, record.data, record.orig_len);
            let len = data.len() - pos - rest.len();
            pos += len;
            self.offset += len as u64;
        }
    }

    fn run_pcapng(&mut self, data: &[u8], on_frame: &mut impl FnMut(&Frame<'_>)) -> (usize, Stop) {
        let mut pos = 0;
        loop {
            let rest = &data[pos..];
            if rest.is_empty() {
                return (pos, Stop::NeedMore(None));
            }
            let parsed = if self.big_endian {
                pcapng::parse_block_be(rest)
            } else {
                pcapng::parse_block_le(rest)
            };
            let (rem, block) = match parsed {
                Ok(ok) => ok,
                Err(nom::Err::Incomplete(n)) => return (pos, Stop::NeedMore(needed(rest.len(), n))),
                Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                    self.damaged(&e);
                    return (pos, Stop::Done);
                }
            };
            let len = rest.len() - rem.len();
            fetch_ahead(rem);
            match block {
                Block::SectionHeader(shb) => {
                    self.big_endian = shb.big_endian();
                    if shb.major_version != 1 {
                        if self.first_block {
                            return (
                                pos,
                                Stop::Fatal(Fatal::UnsupportedVersion {
                                    major: shb.major_version,
                                    minor: shb.minor_version,
                                }),
                            );
                        }
                        self.warn(format!(
                            "pcapng section with unsupported version {}.{}; reading stopped here",
                            shb.major_version, shb.minor_version
                        ));
                        return (pos, Stop::Done);
                    }
                    self.interfaces.clear();
                }
                Block::InterfaceDescription(idb) => {
                    let resolution = match idb.ts_resolution() {
                        Some(r) if r > 0 => r,
                        _ => {
                            let message = format!(
                                "interface {} has an invalid timestamp resolution (if_tsresol {}); microseconds assumed",
                                self.interfaces.len(),
                                idb.if_tsresol
                            );
                            self.warn(message);
                            1_000_000
                        }
                    };
                    self.interfaces.push(Interface {
                        link: LinkType((idb.linktype.0 as u32) & 0xFFFF),
                        resolution,
                        offset_secs: idb.if_tsoffset,
                    });
                }
                Block::EnhancedPacket(epb) => match self.interfaces.get(epb.if_id as usize).copied() {
                    Some(ifc) => {
                        let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                        let ts = timestamp(units, ifc.resolution, ifc.offset_secs);
                        self.last_ts = ts;
                        self.deliver(on_frame, ifc.link, ts, epb.packet_data(), epb.origlen);
                    }
                    None => self.skip_unknown_interface(),
                },
                Block::SimplePacket(spb) => match self.interfaces.first().copied() {
                    // A simple packet block has no timestamp: the previous one is the best we know.
                    Some(ifc) => {
                        let ts = self.last_ts;
                        self.deliver(on_frame, ifc.link, ts, spb.packet_data(), spb.origlen);
                    }
                    None => self.skip_unknown_interface(),
                },
                _ => {}
            }
            self.first_block = false;
            pos += len;
            self.offset += len as u64;
        }
    }

    fn damaged(&mut self, e: &PcapError<&[u8]>) {
        let message = format!(
            "damaged {} ({}); results cover the capture up to here",
            if self.info.format == Format::Pcapng {
                "block"
            } else {
                "record"
            },
            describe(e)
        );
        self.warn(message);
    }

    /// A packet on an interface no description block declared: read, but not decodable.
    fn skip_unknown_interface(&mut self) {
        self.info.frames += 1;
        *self.info.skipped.entry("unknown_interface".into()).or_insert(0) += 1;
    }

    #[inline]
    fn deliver(
        &mut self,
        on_frame: &mut impl FnMut(&Frame<'_>),
        link: LinkType,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) {
        self.info.frames += 1;
        match &mut self.link {
            Some((l, n)) if *l == link => *n += 1,
            _ => {
                self.flush_link();
                self.link = Some((link, 1));
            }
        }
        on_frame(&Frame {
            ts,
            link,
            data,
            orig_len,
            number: self.info.frames,
        });
    }

    fn flush_link(&mut self) {
        if let Some((l, n)) = self.link.take() {
            *self.info.link_types.entry(l.0).or_insert(0) += n;
        }
    }

    fn finish(mut self) -> CaptureInfo {
        self.flush_link();
        self.info.bytes = self.offset;
        self.info
    }
}

/// A legacy pcap record as [`legacy_record`] reads it.
#[derive(Debug, PartialEq, Eq)]
struct LegacyRecord<'a> {
    ts_sec: u32,
    /// Micro- or nanoseconds.
    ts_frac: u32,
    orig_len: u32,
    data: &'a [u8],
}

/// The number at byte `at` of a legacy record header (big-endian if `BE`).
#[inline(always)]
fn legacy_word<const BE: bool>(head: &[u8; 16], at: usize) -> u32 {
    let w = [head[at], head[at + 1], head[at + 2], head[at + 3]];
    if BE {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// The record at the start of `bytes` and the bytes after it, when it is all there.
#[inline(always)]
fn legacy_record<const BE: bool, const HEADER: usize>(bytes: &[u8]) -> Option<(&[u8], LegacyRecord<'_>)> {
    let head: &[u8; 16] = bytes.first_chunk()?;
    let end = HEADER.checked_add(usize::try_from(legacy_word::<BE>(head, 8)).ok()?)?;
    let data = bytes.get(HEADER..end)?;
    let record = LegacyRecord {
        ts_sec: legacy_word::<BE>(head, 0),
        ts_frac: legacy_word::<BE>(head, 4),
        orig_len: legacy_word::<BE>(head, 12),
        data,
    };
    Some((&bytes[end..], record))
}

/// What [`Stop::NeedMore`] says of `bytes`, which do not hold a whole record: nothing when
/// empty, else the bytes the record needs from its start (its header's, while that is not
/// whole), as pcap-parser's `Needed` gives it.
#[cold]
fn legacy_needs<const BE: bool, const HEADER: usize>(bytes: &[u8]) -> Option<usize> {
    if bytes.is_empty() {
        return None;
    }
    let Some(head) = bytes.first_chunk::<16>().filter(|_| bytes.len() >= HEADER) else {
        return Some(HEADER);
    };
    let caplen = legacy_word::<BE>(head, 8);
    // (A length beyond the address space needs more than can ever come.)
    Some(usize::try_from(caplen).map_or(usize::MAX, |n| n.saturating_add(HEADER)))
}

/// Total bytes a record needs from its start, when the parser says.
fn needed(have: usize, n: nom::Needed) -> Option<usize> {
    match n {
        nom::Needed::Size(n) => Some(have.saturating_add(n.get())),
        nom::Needed::Unknown => None,
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

    /// `n` bytes, then a read error.
    struct FailsAfter(usize);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("device gone"));
            }
            let k = buf.len().min(self.0);
            buf[..k].fill(7);
            self.0 -= k;
            Ok(k)
        }
    }

    /// The messages `Chunks` gives after its first buffer, up to the end.
    fn rest(chunks: &mut Chunks) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match chunks.next() {
                Msg::Data(buf, n) => {
                    out.push(format!("data {n}"));
                    chunks.recycle(buf);
                }
                Msg::Eof => return [out, vec!["eof".into()]].concat(),
                Msg::Error => return [out, vec!["error".into()]].concat(),
            }
        }
    }

    #[test]
    fn a_stream_that_fails_after_a_short_read_reports_the_error() {
        let input = Box::new(FillRead(FailsAfter(FIRST + CHUNK + 100)));
        let mut chunks = Chunks::start(input, None, None).unwrap();
        chunks.go().unwrap();
        let full = format!("data {CHUNK}");
        assert_eq!(rest(&mut chunks), [full.as_str(), "data 100", "error"]);
    }

    #[test]
    fn a_file_read_by_position_ends_at_its_short_chunk() {
        let path = std::env::temp_dir().join(format!("synrst-chunks-{}", std::process::id()));
        std::fs::write(&path, vec![1u8; FIRST + 2 * CHUNK + 100]).unwrap();
        let file = File::open(&path).unwrap();
        let positional = file.try_clone().ok();
        let mut chunks = Chunks::start(Box::new(file), positional, None).unwrap();
        chunks.go().unwrap();
        assert!(chunks.by_position);
        let full = format!("data {CHUNK}");
        assert_eq!(rest(&mut chunks), [full.as_str(), full.as_str(), "data 100", "eof"]);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn reads_land_page_aligned_and_buffers_keep_their_length() {
        for len in [HEAD + CHUNK, HEAD + FIRST, 1, 0] {
            let mut b = Buffer::new(len);
            assert_eq!(b.len(), len);
            assert_eq!(b.as_ptr() as usize % PAGE, 0);
            // Moving the buffer (as the channels do) keeps its bytes where they were.
            b.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8);
            let moved = [b];
            assert_eq!(moved[0].as_ptr() as usize % PAGE, 0);
            assert!(moved[0].iter().enumerate().all(|(i, x)| *x == i as u8));
        }
        // Every read of a regular file starts a page in.
        assert_eq!(HEAD % PAGE, 0);
    }

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

    /// Everything [`read_capture`] hands on and reports, without the file's name.
    type ReadAll = (
        Vec<(Timestamp, u32, u32, u64, Vec<u8>)>,
        Format,
        u64,
        Vec<(Option<u64>, String)>,
    );

    fn read_all(path: &std::path::Path) -> ReadAll {
        let mut frames = Vec::new();
        let info = read_capture(&Source::Path(path.to_path_buf()), |f| {
            frames.push((f.ts, f.link.0, f.orig_len, f.number, f.data.to_vec()));
        })
        .expect("reads");
        assert_eq!(info.frames, frames.len() as u64);
        let warnings = info.warnings.into_iter().map(|w| (w.offset, w.message)).collect();
        (frames, info.format, info.bytes, warnings)
    }

    /// A file big enough for the reading threads (a first read, then chunks taken from the two
    /// threads in turn) gives exactly the frames and warnings of the same bytes read as one
    /// stream (gzip-compressed: one thread), in every legacy layout and in pcapng: records
    /// across chunk boundaries and records bigger than a chunk; whole, cut inside a record, and
    /// with an absurd record length in the middle.
    #[test]
    fn a_file_read_by_position_gives_what_the_same_bytes_streamed_give() {
        let mut rng = crate::probe::Rng::new(11);
        // About 4.5 MB: frames of 40-1040 bytes, and three bigger than a chunk.
        let frames: Vec<Vec<u8>> = (0..6000)
            .map(|i| {
                let len = if i % 2000 == 1000 {
                    CHUNK + 100_000 + i
                } else {
                    40 + rng.next_u32() as usize % 1000
                };
                // Bytes that differ from frame to frame and along each frame.
                (0..len)
                    .map(|k| (k.wrapping_mul(31) ^ i.wrapping_mul(7919) ^ (k >> 8)) as u8)
                    .collect()
            })
            .collect();
        // Each capture: its bytes, and where each frame's record (block) starts.
        let legacy = |magic: u32, be: bool, extra: usize| {
            let n = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
            let mut out: Vec<u8> = Vec::new();
            out.extend(n(magic));
            out.extend(if be { 2u16.to_be_bytes() } else { 2u16.to_le_bytes() });
            out.extend(if be { 4u16.to_be_bytes() } else { 4u16.to_le_bytes() });
            for v in [0, 0, 1 << 20, 1] {
                out.extend(n(v));
            }
            let mut starts = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                starts.push(out.len());
                for v in [
                    1_700_000_000 + i as u32,
                    i as u32 * 7,
                    f.len() as u32,
                    f.len() as u32 + 4,
                ] {
                    out.extend(n(v));
                }
                out.extend(std::iter::repeat_n(0u8, extra));
                out.extend(f);
            }
            (out, starts)
        };
        let pcapng = || {
            use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
            use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
            use pcap_file::pcapng::{PcapNgBlock, PcapNgWriter};
            let mut w = PcapNgWriter::new(Vec::new()).expect("section");
            let idb = InterfaceDescriptionBlock {
                linktype: pcap_file::DataLink::ETHERNET,
                snaplen: 0,
                options: vec![],
            };
            w.write_block(&idb.into_block()).expect("idb");
            let mut starts = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                starts.push(w.get_ref().len());
                let epb = EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: std::time::Duration::from_micros(1_700_000_000_000_000 + i as u64 * 7),
                    original_len: f.len() as u32 + 4,
                    data: std::borrow::Cow::Borrowed(f),
                    options: vec![],
                };
                w.write_block(&epb.into_block()).expect("epb");
            }
            (w.into_inner(), starts)
        };
        let captures = [
            ("le-us", legacy(0xa1b2_c3d4, false, 0)),
            ("be-ns", legacy(0xa1b2_3c4d, true, 0)),
            ("modified", legacy(0xa1b2_cd34, false, 8)),
            ("pcapng", pcapng()),
        ];
        let dir = std::env::temp_dir();
        let id = std::process::id();
        for (name, (whole, starts)) in captures {
            assert!(whole.len() > FIRST + 6 * CHUNK, "{name}: {} bytes", whole.len());
            // An absurd length in the record (block) that starts in the middle of a chunk read
            // by the second thread: the length is the third number of a legacy record, the
            // second of a block.
            let middle = FIRST + 3 * CHUNK + CHUNK / 2;
            let k = starts.iter().position(|&s| s >= middle).expect("a record there");
            let mut absurd = whole.clone();
            let at = starts[k] + if name == "pcapng" { 4 } else { 8 };
            absurd[at..at + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
            let cut = starts[starts.len() - 2] + 30;
            let variants = [
                ("whole", whole.clone()),
                ("cut", whole[..cut].to_vec()),
                ("absurd", absurd),
            ];
            for (variant, bytes) in variants {
                let plain = dir.join(format!("synrst-positional-{id}-{name}-{variant}.cap"));
                let packed = dir.join(format!("synrst-positional-{id}-{name}-{variant}.cap.gz"));
                std::fs::write(&plain, &bytes).unwrap();
                // (Stored, not compressed: what matters is that it is read as a stream.)
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
                io::Write::write_all(&mut gz, &bytes).unwrap();
                std::fs::write(&packed, gz.finish().unwrap()).unwrap();
                let (by_position, streamed) = (read_all(&plain), read_all(&packed));
                let _ = (std::fs::remove_file(&plain), std::fs::remove_file(&packed));
                let what = format!("{name}, {variant}");
                let expected = match variant {
                    "whole" => frames.len(),
                    "cut" => frames.len() - 2,
                    _ => k,
                };
                assert_eq!(by_position.0.len(), expected, "{what}: {:?}", by_position.3);
                assert!(
                    by_position.0.iter().zip(&frames).all(|(got, want)| got.4 == *want),
                    "{what}: frames' bytes"
                );
                assert_eq!(
                    by_position.3.is_empty(),
                    variant == "whole",
                    "{what}: {:?}",
                    by_position.3
                );
                assert!(
                    by_position == streamed,
                    "{what}: {:?} against {:?}",
                    by_position.3,
                    streamed.3
                );
            }
        }
    }

    /// The in-place record reader against pcap-parser's: the same records from the same
    /// bytes, and where a record is not whole, the same number of bytes asked for.
    #[test]
    fn legacy_records_read_as_pcap_parser_reads_them() {
        type Parse = fn(&[u8]) -> nom::IResult<&[u8], pcap_parser::pcap::LegacyPcapBlock<'_>, PcapError<&[u8]>>;
        fn compare<const BE: bool, const HEADER: usize>(parse: Parse, rng: &mut crate::probe::Rng) -> usize {
            let mut compared = 0;
            for _ in 0..200 {
                // A few records of small, large and absurd lengths, cut anywhere.
                let mut bytes = Vec::new();
                for _ in 0..(rng.next_u32() % 4) {
                    let caplen = match rng.next_u32() % 8 {
                        0 => u32::MAX - rng.next_u32() % 16,
                        1 => 70_000 + rng.next_u32() % 1000,
                        _ => rng.next_u32() % 100,
                    };
                    let numbers = [rng.next_u32(), rng.next_u32(), caplen, rng.next_u32()];
                    for n in numbers {
                        bytes.extend(if BE { n.to_be_bytes() } else { n.to_le_bytes() });
                    }
                    bytes.extend((0..HEADER - 16).map(|_| rng.next_u32() as u8));
                    bytes.extend((0..caplen.min(200)).map(|_| rng.next_u32() as u8));
                }
                let cut = rng.next_u32() as usize % (bytes.len() + 1);
                let mut rest = &bytes[..cut];
                loop {
                    compared += 1;
                    match (parse(rest), legacy_record::<BE, HEADER>(rest)) {
                        (Ok((theirs_rest, b)), Some((ours_rest, r))) => {
                            assert_eq!(
                                (b.ts_sec, b.ts_usec, b.origlen, b.data),
                                (r.ts_sec, r.ts_frac, r.orig_len, r.data)
                            );
                            assert_eq!(b.caplen as usize, r.data.len());
                            assert_eq!(theirs_rest, ours_rest);
                            rest = ours_rest;
                        }
                        (Err(nom::Err::Incomplete(n)), None) => {
                            let theirs = if rest.is_empty() { None } else { needed(rest.len(), n) };
                            assert_eq!(theirs, legacy_needs::<BE, HEADER>(rest), "{rest:?}");
                            break;
                        }
                        (theirs, ours) => panic!("{theirs:?} against {ours:?} on {rest:?}"),
                    }
                }
            }
            compared
        }
        let mut rng = crate::probe::Rng::new(7);
        let n = compare::<false, 16>(pcap_parser::pcap::parse_pcap_frame, &mut rng)
            + compare::<true, 16>(pcap_parser::pcap::parse_pcap_frame_be, &mut rng)
            + compare::<false, 24>(pcap_parser::pcap::parse_pcap_frame_modified, &mut rng);
        assert!(n > 600, "{n} comparisons");
    }
}
