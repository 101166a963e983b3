//! Replay's reading stage: one input (a file or stdin) opened, decompressed, framed into
//! records, prefiltered and parsed, and handed on in order as [`Chunk`]s of [`Item`]s. It
//! decides nothing, so inputs can be read on several threads while one deciding stage takes
//! their chunks input by input, record by record, in the order a single thread would: the
//! findings are the same whatever the number of jobs.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::OnceLock;

use memchr::memmem;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tagwatch_core::framing::{trim, Framer, Record};

/// What the deciding stage gets, in input order.
#[derive(Debug)]
pub enum Item {
    /// A record that may be an SSM event, parsed, with where it was.
    Record { value: Value, origin: String },
    /// An input or record that cannot be processed, with where and why.
    Malformed { origin: String, reason: String },
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

/// Opens an input, decompressing gzip (detected by its magic bytes, whatever the name).
fn open(path: Option<&Path>, counter: &ByteCounter) -> std::io::Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = match path {
        None => Box::new(std::io::stdin()),
        Some(p) => Box::new(File::open(p)?),
    };
    let mut buffered = BufReader::with_capacity(
        256 * 1024,
        Counting {
            inner: raw,
            counter: counter.clone(),
        },
    );
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
pub fn certainly_irrelevant(bytes: &[u8]) -> bool {
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

    fn malformed(&mut self, origin: String, reason: String) {
        self.push(Item::Malformed { origin, reason });
    }

    /// A parsed record to decide.
    fn value(&mut self, value: Value, origin: String) {
        self.chunk.read += 1;
        self.push(Item::Record { value, origin });
    }

    fn raw_record(&mut self, raw: &RawValue, origin: &dyn Fn() -> String) {
        if certainly_irrelevant(raw.get().as_bytes()) {
            self.chunk.read += 1;
            self.chunk.prefiltered += 1;
            return;
        }
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(v) => self.value(v, origin()),
            Err(e) => {
                self.chunk.read += 1;
                self.malformed(origin(), format!("invalid JSON: {e}"));
            }
        }
    }

    /// One complete JSON text: a CloudTrail log file, an event or a record.
    fn document(&mut self, text: &[u8], origin: &dyn Fn() -> String) {
        // CloudTrail writes log files as `{"Records":[...]}` on one line.
        let log_file = trim(text.get(1..).unwrap_or_default()).starts_with(b"\"Records\"");
        if log_file {
            match serde_json::from_slice::<LogFile<'_>>(text) {
                Ok(log) => {
                    for (i, raw) in log.records.iter().enumerate() {
                        self.raw_record(raw, &|| format!("{}: Records[{i}]", origin()));
                    }
                }
                Err(e) => {
                    self.chunk.read += 1;
                    self.malformed(origin(), format!("invalid CloudTrail log file: {e}"));
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
                self.malformed(origin(), "not a JSON object".to_string());
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
                        self.value(record, format!("{}: Records[{i}]", origin()));
                    }
                }
            }
            Ok(v) => self.value(v, origin()),
            Err(e) => {
                self.chunk.read += 1;
                self.malformed(origin(), format!("invalid JSON: {e}"));
            }
        }
    }

    /// One record the framer found.
    fn record(&mut self, name: &str, r: Record<'_>) {
        match r {
            Record::Line { line, text } => {
                let text = trim(text);
                if !text.is_empty() {
                    self.document(text, &|| format!("{name}:{line}"));
                }
            }
            Record::Document { text } => self.document(text, &|| name.to_string()),
            Record::TooLong { line } => {
                // Reported with its position, never held.
                self.chunk.read += 1;
                let origin = line.map_or_else(|| name.to_string(), |n| format!("{name}:{n}"));
                let reason = format!("longer than the record limit ({} bytes)", self.max_record);
                self.malformed(origin, reason);
            }
            Record::Invalid { reason } => {
                self.chunk.read += 1;
                self.malformed(name.to_string(), format!("invalid JSON: {reason}"));
            }
        }
    }
}

/// Reads one input (`None`: stdin) through the framer, handing its items to `send` in chunks,
/// in order; stops early when `send` answers `false`.
pub fn read_input(path: Option<&Path>, max_record: usize, send: &mut dyn FnMut(Chunk) -> bool) {
    let name = path.map_or_else(|| "<stdin>".to_string(), |p| p.display().to_string());
    let counter = ByteCounter::default();
    let mut reader = Reader {
        max_record,
        chunk: Chunk::default(),
        counter: counter.clone(),
        counted: 0,
        send,
        stopped: false,
    };
    let mut input = match open(path, &counter) {
        Ok(r) => r,
        Err(e) => {
            reader.malformed(name, format!("cannot read: {e}"));
            reader.flush();
            return;
        }
    };
    // The framer (tagwatch_core::framing) decides lines or one document, skips a byte order
    // mark and holds no record past the limit; lines are handed over in place in the reader's
    // buffer.
    let mut framer = Framer::new(max_record);
    while !reader.stopped {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) => {
                let origin = format!("{name}:{}", framer.next_line());
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
            reader.record(&name, r);
            Ok(())
        });
        input.consume(n);
    }
    if !reader.stopped {
        let _ = framer.finish(&mut |r| -> Result<(), std::convert::Infallible> {
            reader.record(&name, r);
            Ok(())
        });
        reader.flush();
    }
}
