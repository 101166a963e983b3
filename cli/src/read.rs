//! Replay's reading stage: one input (a file, stdin or an S3 object) opened, decompressed, and
//! fed to the core's [`Records`] (framed, prefiltered, parsed, handed on in order as [`Chunk`]s
//! of items). It
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

use tagwatch_core::replay::Records;
pub use tagwatch_core::replay::{Chunk, Item};

/// Bytes asked for at once (and the readers' buffers): a read of this size bypasses a
/// reader's buffer.
const READ_SIZE: usize = 256 * 1024;

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
        READ_SIZE,
        Counting {
            inner,
            counter: counter.clone(),
        },
    )
}

/// Where a reading thread reads from.
pub enum Source<'a> {
    Stdin,
    File(&'a Path),
    /// A range of an uncompressed JSON-lines file.
    Range(&'a Path, Range),
    /// Another stream (an S3 object), opened by the reading thread.
    Open(Box<dyn FnOnce() -> std::io::Result<Box<dyn Read + 'a>> + 'a>),
}

/// Opens an input, decompressing gzip (detected by its magic bytes, whatever the name).
fn open<'a>(source: Source<'a>, counter: &ByteCounter) -> std::io::Result<Box<dyn BufRead + 'a>> {
    let raw: Box<dyn Read + 'a> = match source {
        Source::Stdin => Box::new(std::io::stdin()),
        Source::File(p) => Box::new(File::open(p)?),
        Source::Range(p, r) => return open_range(p, r, counter),
        Source::Open(open) => open()?,
    };
    let mut buffered = counted(raw, counter);
    let gz = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if gz {
        Ok(Box::new(BufReader::with_capacity(
            READ_SIZE,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )))
    } else {
        Ok(Box::new(buffered))
    }
}

/// A byte range of an uncompressed JSON-lines file, from a line start to just after a newline
/// (or the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

/// Reads one input, or one range of a file, through the framer, handing its items to `send`
/// in chunks, in order; stops early when `send` answers `false`. A range after the first is
/// framed as JSON lines numbered from 1 within it; its last chunk says how many lines it held.
/// `buffer`: the framer's line buffer, kept by the reading thread from input to input (it
/// grows to the longest line read, at most the record limit and one read more).
pub fn read_input(
    source: Source<'_>,
    max_record: usize,
    buffer: &mut Vec<u8>,
    send: &mut dyn FnMut(Chunk) -> bool,
) {
    let later_range = matches!(source, Source::Range(_, r) if r.start > 0);
    let counter = ByteCounter::default();
    // Each chunk carries the input bytes read since the one before.
    let mut counted = 0;
    let mut send_counted = |mut chunk: Chunk| {
        let total = counter.0.get();
        chunk.bytes = total - counted;
        counted = total;
        send(chunk)
    };
    let mut records = Records::new(max_record, later_range, &mut send_counted)
        .with_buffer(std::mem::take(buffer));
    let mut input = match open(source, &counter) {
        Ok(r) => r,
        Err(e) => return records.unreadable(&e.to_string()),
    };
    while !records.stopped() {
        // Straight into the framer's room where it has some (a long line is never copied);
        // otherwise through the reader's buffer.
        if let Some(room) = records.space(READ_SIZE) {
            match input.read(room) {
                Ok(0) => break,
                Ok(n) => records.filled(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return records.broke_off(&e.to_string()),
            }
            continue;
        }
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) => return records.broke_off(&e.to_string()),
        };
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        records.feed(buf);
        input.consume(n);
    }
    *buffer = records.finish();
}

/// Opens a range of an uncompressed file.
fn open_range<'a>(
    path: &Path,
    range: Range,
    counter: &ByteCounter,
) -> std::io::Result<Box<dyn BufRead + 'a>> {
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
