//! Replay's reading stage: one input (a file or stdin) opened, decompressed, framed into
//! records, prefiltered and parsed, and handed on in order as [`Chunk`]s of [`Item`]s. It
//! decides nothing, so inputs can be read on several threads while one deciding stage takes
//! their chunks input by input, record by record, in the order a single thread would: the
//! findings are the same whatever the number of jobs. A large uncompressed JSON-lines file is
//! read as byte ranges ([`ranges`]), each from a line start, framed as lines numbered within the
//! range; the deciding stage adds the lines of the ranges before it.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;
use std::sync::OnceLock;

use memchr::memmem;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tagwatch_core::framing::{trim, Framer, Record};

/// Where an item was in its input: the line (numbered within the range read, see
/// [`Chunk::lines`]) and the record of a log file. Rendered by the deciding stage, which knows
/// the input's name and each range's first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub line: Option<usize>,
    pub record: Option<usize>,
}

impl Origin {
    const INPUT: Origin = Origin {
        line: None,
        record: None,
    };

    fn line(line: usize) -> Origin {
        Origin {
            line: Some(line),
            record: None,
        }
    }

    fn record(self, i: usize) -> Origin {
        Origin {
            record: Some(i),
            ..self
        }
    }

    /// `NAME`, `NAME:LINE`, `NAME: Records[i]` or `NAME:LINE: Records[i]`, lines counted from
    /// `lines_before` (the lines of the input's earlier ranges).
    pub fn render(self, name: &str, lines_before: usize) -> String {
        let mut out = name.to_string();
        if let Some(line) = self.line {
            out.push_str(&format!(":{}", line + lines_before));
        }
        if let Some(i) = self.record {
            out.push_str(&format!(": Records[{i}]"));
        }
        out
    }
}

/// What the deciding stage gets, in input order.
#[derive(Debug)]
pub enum Item {
    /// A record that may be an SSM event, parsed, with where it was.
    Record { value: Value, origin: Origin },
    /// An input or record that cannot be processed, with where and why.
    Malformed { origin: Origin, reason: String },
}

/// A run of items of one input, with the counts of what was read for them.
#[derive(Debug, Default)]
pub struct Chunk {
    pub items: Vec<Item>,
    /// Events and records read (malformed ones included).
    pub read: u64,
    /// Records the prefilter skipped without a full parse (certainly not SSM).
    pub prefiltered: u64,
    /// Input bytes read for this chunk (compressed bytes for .gz).
    pub bytes: u64,
    /// The last chunk of a range: the lines the range held (the next range's lines follow).
    pub lines: usize,
}

/// Items per chunk: small enough that a chunk of a large input holds little, large enough
/// that handing chunks over costs nothing measurable.
const CHUNK_ITEMS: usize = 256;

/// A CloudTrail log file, records kept raw so that irrelevant ones are never fully parsed.
#[derive(Deserialize)]
struct LogFile<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

/// Bytes read so far of the input (compressed bytes for .gz).
#[derive(Clone, Default)]
struct ByteCounter(Rc<Cell<u64>>);

struct Counting<R> {
    inner: R,
    counter: ByteCounter,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.0.set(self.counter.0.get() + n as u64);
        Ok(n)
    }
}

/// `inner` buffered, its bytes counted as they are read.
fn counted<R: Read>(inner: R, counter: &ByteCounter) -> BufReader<Counting<R>> {
    BufReader::with_capacity(
        256 * 1024,
        Counting {
            inner,
            counter: counter.clone(),
        },
    )
}

/// Opens an input, decompressing gzip (detected by its magic bytes, whatever the name).
fn open(path: Option<&Path>, counter: &ByteCounter) -> std::io::Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = match path {
        None => Box::new(std::io::stdin()),
        Some(p) => Box::new(File::open(p)?),
    };
    let mut buffered = counted(raw, counter);
    let gz = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gz {
        Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Could this text be an SSM event? (Cheap test before a full parse: SSM CloudTrail records
/// name `ssm.amazonaws.com`, SSM EventBridge events `aws.ssm`.)
fn mentions_ssm(bytes: &[u8]) -> bool {
    static FINDER: OnceLock<memmem::Finder<'static>> = OnceLock::new();
    let finder = FINDER.get_or_init(|| memmem::Finder::new(b"ssm"));
    finder.find_iter(bytes).any(|at| {
        bytes
            .get(at + 3..)
            .is_some_and(|rest| rest.starts_with(b".amazonaws.com"))
            || at
                .checked_sub(4)
                .and_then(|from| bytes.get(from..at))
                .is_some_and(|before| before == b"aws.")
    })
}

/// Whether the text holds a `\u` escape, which can spell any letter the prefilter looks for
/// (`"\u0073sm.amazonaws.com"`): such text is parsed, never prefiltered away.
fn has_unicode_escape(bytes: &[u8]) -> bool {
    static FINDER: OnceLock<memmem::Finder<'static>> = OnceLock::new();
    FINDER
        .get_or_init(|| memmem::Finder::new(b"\\u"))
        .find(bytes)
        .is_some()
}

/// Whether the prefilter may skip the text without a parse: certainly not an SSM event.
fn certainly_irrelevant(bytes: &[u8]) -> bool {
    !mentions_ssm(bytes) && !has_unicode_escape(bytes)
}

/// The reading of one input: items gathered into chunks, each handed to `send` when full (and
/// the last at the end).
struct Reader<'s> {
    max_record: usize,
    chunk: Chunk,
    counter: ByteCounter,
    /// Bytes already counted in a chunk handed over.
    counted: u64,
    /// Takes a chunk; `false` when nobody takes them any more (the run stopped).
    send: &'s mut dyn FnMut(Chunk) -> bool,
    stopped: bool,
}

impl Reader<'_> {
    fn flush(&mut self) {
        let total = self.counter.0.get();
        self.chunk.bytes = total - self.counted;
        self.counted = total;
        let chunk = std::mem::take(&mut self.chunk);
        if !(self.send)(chunk) {
            self.stopped = true;
        }
    }

    fn push(&mut self, item: Item) {
        self.chunk.items.push(item);
        if self.chunk.items.len() >= CHUNK_ITEMS {
            self.flush();
        }
    }

    fn malformed(&mut self, origin: Origin, reason: String) {
        self.push(Item::Malformed { origin, reason });
    }

    /// A parsed record to decide.
    fn value(&mut self, value: Value, origin: Origin) {
        self.chunk.read += 1;
        self.push(Item::Record { value, origin });
    }

    fn raw_record(&mut self, raw: &RawValue, origin: Origin) {
        if certainly_irrelevant(raw.get().as_bytes()) {
            self.chunk.read += 1;
            self.chunk.prefiltered += 1;
            return;
        }
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(v) => self.value(v, origin),
            Err(e) => {
                self.chunk.read += 1;
                self.malformed(origin, format!("invalid JSON: {e}"));
            }
        }
    }

    /// One complete JSON text: a CloudTrail log file, an event or a record.
    fn document(&mut self, text: &[u8], origin: Origin) {
        // CloudTrail writes log files as `{"Records":[...]}` on one line.
        let log_file = trim(text.get(1..).unwrap_or_default()).starts_with(b"\"Records\"");
        if log_file {
            match serde_json::from_slice::<LogFile<'_>>(text) {
                Ok(log) => {
                    for (i, raw) in log.records.iter().enumerate() {
                        self.raw_record(raw, origin.record(i));
                    }
                }
                Err(e) => {
                    self.chunk.read += 1;
                    self.malformed(origin, format!("invalid CloudTrail log file: {e}"));
                }
            }
            return;
        }
        if certainly_irrelevant(text) {
            // Irrelevant: skipped without a full parse. Text that cannot be a JSON object is
            // still reported.
            self.chunk.read += 1;
            if text.first() == Some(&b'{') && text.last() == Some(&b'}') {
                self.chunk.prefiltered += 1;
            } else {
                self.malformed(origin, "not a JSON object".to_string());
            }
            return;
        }
        match serde_json::from_slice::<Value>(text) {
            // A log file whose `Records` key is written with escapes.
            Ok(Value::Object(mut log))
                if log.len() == 1 && log.get("Records").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(records)) = log.remove("Records") {
                    for (i, record) in records.into_iter().enumerate() {
                        self.value(record, origin.record(i));
                    }
                }
            }
            Ok(v) => self.value(v, origin),
            Err(e) => {
                self.chunk.read += 1;
                self.malformed(origin, format!("invalid JSON: {e}"));
            }
        }
    }

    /// One record the framer found.
    fn record(&mut self, r: Record<'_>) {
        match r {
            Record::Line { line, text } => {
                let text = trim(text);
                if !text.is_empty() {
                    self.document(text, Origin::line(line));
                }
            }
            Record::Document { text } => self.document(text, Origin::INPUT),
            Record::TooLong { line } => {
                // Reported with its position, never held.
                self.chunk.read += 1;
                let origin = line.map_or(Origin::INPUT, Origin::line);
                let reason = format!("longer than the record limit ({} bytes)", self.max_record);
                self.malformed(origin, reason);
            }
            Record::Invalid { reason } => {
                self.chunk.read += 1;
                self.malformed(Origin::INPUT, format!("invalid JSON: {reason}"));
            }
        }
    }
}

/// A byte range of an uncompressed JSON-lines file, from a line start to just after a newline
/// (or the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

/// Reads one input (`None`: stdin), or one range of it, through the framer, handing its items
/// to `send` in chunks, in order; stops early when `send` answers `false`. A range after the
/// first is framed as JSON lines numbered from 1 within it; its last chunk says how many
/// lines it held.
pub fn read_input(
    path: Option<&Path>,
    range: Option<Range>,
    max_record: usize,
    send: &mut dyn FnMut(Chunk) -> bool,
) {
    let counter = ByteCounter::default();
    let mut reader = Reader {
        max_record,
        chunk: Chunk::default(),
        counter: counter.clone(),
        counted: 0,
        send,
        stopped: false,
    };
    let opened = match (path, range) {
        (Some(p), Some(r)) => open_range(p, r, &counter),
        _ => open(path, &counter),
    };
    let mut input = match opened {
        Ok(r) => r,
        Err(e) => {
            reader.malformed(Origin::INPUT, format!("cannot read: {e}"));
            reader.flush();
            return;
        }
    };
    // The framer (tagwatch_core::framing) decides lines or one document, skips a byte order
    // mark and holds no record past the limit; lines are handed over in place in the reader's
    // buffer. A later range is lines from its first byte.
    let mut framer = match range {
        Some(r) if r.start > 0 => Framer::lines_from(max_record, 1),
        _ => Framer::new(max_record),
    };
    while !reader.stopped {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) => {
                let origin = Origin::line(framer.next_line());
                reader.malformed(origin, format!("cannot read: {e}"));
                break;
            }
        };
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        // The framer's sink cannot fail here: items are only gathered.
        let _ = framer.feed(buf, &mut |r| -> Result<(), std::convert::Infallible> {
            reader.record(r);
            Ok(())
        });
        input.consume(n);
    }
    if !reader.stopped {
        let _ = framer.finish(&mut |r| -> Result<(), std::convert::Infallible> {
            reader.record(r);
            Ok(())
        });
        reader.chunk.lines = framer.next_line() - 1;
        reader.flush();
    }
}

/// Opens a range of an uncompressed file.
fn open_range(
    path: &Path,
    range: Range,
    counter: &ByteCounter,
) -> std::io::Result<Box<dyn BufRead>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(range.start))?;
    let len = range.end.saturating_sub(range.start);
    Ok(Box::new(counted(file.take(len), counter)))
}

/// The ranges to read a large uncompressed JSON-lines file in, about `size` bytes each, each
/// ending just after a newline; `None` (read it whole) for a smaller file, a compressed one,
/// one with a byte order mark, or one whose first line is not an event on its own (then the
/// framer's rules for documents and bad first lines need the whole input).
pub fn ranges(path: &Path, size: u64) -> Option<Vec<Range>> {
    let len = std::fs::metadata(path).ok()?.len();
    if size == 0 || len <= size {
        return None;
    }
    let mut file = File::open(path).ok()?;
    let mut head = vec![0u8; 64 * 1024];
    let n = read_up_to(&mut file, &mut head).ok()?;
    let head = head.get(..n)?;
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(tagwatch_core::framing::BOM) {
        return None;
    }
    let first_end = memchr::memchr(b'\n', head)?;
    if !tagwatch_core::framing::is_event_line(head.get(..first_end)?) {
        return None;
    }
    let mut cuts = vec![0u64];
    let mut at = size.max(first_end as u64 + 1);
    while at < len {
        let cut = next_line_start(&mut file, at, len).ok()?;
        if cut >= len {
            break;
        }
        if cuts.last().is_some_and(|&c| cut > c) {
            cuts.push(cut);
        }
        at = cut.max(at) + size;
    }
    cuts.push(len);
    Some(
        cuts.windows(2)
            .filter_map(|w| match w {
                [start, end] => Some(Range {
                    start: *start,
                    end: *end,
                }),
                _ => None,
            })
            .collect(),
    )
}

/// Reads until `buf` is full or the end; returns the bytes read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(buf.get_mut(filled..).unwrap_or_default())? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The offset just after the first newline at or after `at` (`len` when there is none).
fn next_line_start(file: &mut File, at: u64, len: u64) -> std::io::Result<u64> {
    let mut pos = at;
    let mut buf = vec![0u8; 64 * 1024];
    while pos < len {
        file.seek(SeekFrom::Start(pos))?;
        let n = read_up_to(file, &mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(i) = memchr::memchr(b'\n', buf.get(..n).unwrap_or_default()) {
            return Ok(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tagwatch-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A large JSON-lines file is cut into ranges that cover it exactly, each ending after a
    /// newline; a small one, a gzipped one, one with a byte order mark and one whose first
    /// line is not an event are read whole.
    #[test]
    fn ranges_cover_the_file_and_end_after_newlines() {
        let text: String = (0..500)
            .map(|i| {
                format!(
                    r#"{{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventID":"{i}"}}"#
                ) + "\n"
            })
            .collect();
        let path = file("lines.jsonl", text.as_bytes());
        let parts = ranges(&path, 2048).unwrap();
        assert!(parts.len() > 10, "{}", parts.len());
        assert_eq!(parts[0].start, 0);
        assert_eq!(parts.last().unwrap().end, text.len() as u64);
        for w in parts.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert_eq!(text.as_bytes()[w[0].end as usize - 1], b'\n');
        }
        assert_eq!(ranges(&path, text.len() as u64), None, "small enough");
        let mut bom = tagwatch_core::framing::BOM.to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(ranges(&file("bom.jsonl", &bom), 2048), None);
        let pretty = format!("{{\n\"Records\": []\n}}\n{text}");
        assert_eq!(ranges(&file("doc.json", pretty.as_bytes()), 2048), None);
        let mut gz = vec![0x1f, 0x8b];
        gz.extend_from_slice(text.as_bytes());
        assert_eq!(ranges(&file("x.gz", &gz), 2048), None);
    }
}
