//! Replay's records: the bytes of one input (a file, an object, a range of a JSON-lines file)
//! framed ([`crate::framing`]), prefiltered and parsed into [`Item`]s, handed on in
//! [`Chunk`]s in input order. It decides nothing and reads nothing: callers feed bytes (the
//! CLI from files, stdin and S3 objects on several threads; the backfill function from S3
//! objects) and decide the items in order with the watcher, so every reader of an archive
//! sees the same records with the same origins.
//!
//! The "mentions SSM" prefilter only skips text that certainly is not an SSM event: text with
//! a `\u` escape anywhere is parsed, and a log file whose `Records` key is escaped is still a
//! log file. A log file is split into its records by structure ([`crate::logfile`]), so a
//! record that is not JSON costs only itself; one whose structure is not exactly a log file's
//! is parsed whole by serde_json, which names what is wrong.

use std::sync::OnceLock;

use memchr::memmem;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::framing::{trim, Framer, Record};
use crate::logfile;

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
    /// Input bytes read for this chunk (compressed bytes for .gz): set by the caller, which
    /// reads them.
    pub bytes: u64,
    /// The last chunk of a range: the lines the range held (the next range's lines follow).
    pub lines: usize,
}

/// Items per chunk: small enough that a chunk of a large input holds little, large enough
/// that handing chunks over costs nothing measurable.
pub const CHUNK_ITEMS: usize = 256;

/// A CloudTrail log file, records kept raw so that irrelevant ones are never fully parsed.
#[derive(Deserialize)]
struct LogFile<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

/// Could this text be an SSM event? (Cheap test before a full parse: SSM CloudTrail records
/// name `ssm.amazonaws.com`, SSM EventBridge events `aws.ssm`.)
pub fn mentions_ssm(bytes: &[u8]) -> bool {
    ssm_finder()
        .find_iter(bytes)
        .any(|at| ssm_name_at(bytes, at))
}

/// The prefilter's two searches, built once: `ssm` and `\u`.
fn ssm_finder() -> &'static memmem::Finder<'static> {
    static FINDER: OnceLock<memmem::Finder<'static>> = OnceLock::new();
    FINDER.get_or_init(|| memmem::Finder::new(b"ssm"))
}

fn escape_finder() -> &'static memmem::Finder<'static> {
    static FINDER: OnceLock<memmem::Finder<'static>> = OnceLock::new();
    FINDER.get_or_init(|| memmem::Finder::new(b"\\u"))
}

/// Whether the `ssm` at `at` is part of `ssm.amazonaws.com` or `aws.ssm`.
fn ssm_name_at(bytes: &[u8], at: usize) -> bool {
    bytes
        .get(at + 3..)
        .is_some_and(|rest| rest.starts_with(b".amazonaws.com"))
        || at
            .checked_sub(4)
            .and_then(|from| bytes.get(from..at))
            .is_some_and(|before| before == b"aws.")
}

/// Whether the text holds a `\u` escape, which can spell any letter the prefilter looks for
/// (`"\u0073sm.amazonaws.com"`): such text is parsed, never prefiltered away.
fn has_unicode_escape(bytes: &[u8]) -> bool {
    escape_finder().find(bytes).is_some()
}

/// Whether the prefilter may skip the text without a parse: certainly not an SSM event.
pub fn certainly_irrelevant(bytes: &[u8]) -> bool {
    !mentions_ssm(bytes) && !has_unicode_escape(bytes)
}

/// Where in `text` the prefilter's marks start, in order, into `out`: each `ssm` that
/// [`mentions_ssm`] counts and each `\u`. A part of `text` that holds none of these offsets
/// (and cannot hold a mark that starts before it: a log file's records start with a bracket) is
/// [`certainly_irrelevant`].
fn prefilter_marks(text: &[u8], out: &mut Vec<usize>) {
    out.clear();
    out.extend(
        ssm_finder()
            .find_iter(text)
            .filter(|&at| ssm_name_at(text, at)),
    );
    out.extend(escape_finder().find_iter(text));
    out.sort_unstable();
}

/// Items gathered into chunks, each handed to `send` when full (and the last at the end).
struct Gather<'s> {
    max_record: usize,
    /// A log file's record ranges and prefilter marks (kept for the next log file).
    ranges: Vec<std::ops::Range<usize>>,
    marks: Vec<usize>,
    chunk: Chunk,
    /// Takes a chunk; `false` when nobody takes them any more (the run stopped).
    send: &'s mut dyn FnMut(Chunk) -> bool,
    stopped: bool,
}

impl Gather<'_> {
    fn flush(&mut self) {
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

    /// A record of a log file; `marked`: the prefilter found a mark in it (otherwise it is
    /// certainly not an SSM event).
    fn raw_record(&mut self, record: &[u8], marked: bool, origin: Origin) {
        if !marked {
            self.chunk.read += 1;
            self.chunk.prefiltered += 1;
            return;
        }
        match serde_json::from_slice::<Value>(record) {
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
            let mut ranges = std::mem::take(&mut self.ranges);
            if logfile::split(text, &mut ranges) {
                // Split by structure: the prefilter's marks are found in the whole text at
                // once, and only the records holding one are parsed.
                let mut marks = std::mem::take(&mut self.marks);
                prefilter_marks(text, &mut marks);
                let mut next = marks.iter().peekable();
                for (i, range) in ranges.iter().enumerate() {
                    while next.next_if(|&&m| m < range.start).is_some() {}
                    let marked = next.peek().is_some_and(|&&m| m < range.end);
                    let record = text.get(range.clone()).unwrap_or_default();
                    self.raw_record(record, marked, origin.record(i));
                }
                self.marks = marks;
            } else {
                // Not exactly a log file's structure: the full parser finds the records or
                // names what is wrong.
                match serde_json::from_slice::<LogFile<'_>>(text) {
                    Ok(log) => {
                        for (i, raw) in log.records.iter().enumerate() {
                            let record = raw.get().as_bytes();
                            let marked = !certainly_irrelevant(record);
                            self.raw_record(record, marked, origin.record(i));
                        }
                    }
                    Err(e) => {
                        self.chunk.read += 1;
                        self.malformed(origin, format!("invalid CloudTrail log file: {e}"));
                    }
                }
            }
            self.ranges = ranges;
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

/// The records of one input, fed its bytes in order.
pub struct Records<'s> {
    framer: Framer,
    gather: Gather<'s>,
}

impl<'s> Records<'s> {
    /// `later_range`: the bytes are a range of a JSON-lines file after its first, framed as
    /// lines numbered from 1 within it. `send` takes each chunk, in order; when it answers
    /// `false` the reading stops ([`Records::stopped`]).
    pub fn new(
        max_record: usize,
        later_range: bool,
        send: &'s mut dyn FnMut(Chunk) -> bool,
    ) -> Self {
        // The framer decides lines or one document, skips a byte order mark and holds no
        // record past the limit; lines are handed over in place in the fed bytes.
        let framer = if later_range {
            Framer::lines_from(max_record, 1)
        } else {
            Framer::new(max_record)
        };
        Records {
            framer,
            gather: Gather {
                max_record,
                ranges: Vec::new(),
                marks: Vec::new(),
                chunk: Chunk::default(),
                send,
                stopped: false,
            },
        }
    }

    /// Frames with `buffer` for lines that straddle the fed pieces ([`Framer::with_buffer`]);
    /// [`Records::finish`] gives it back.
    pub fn with_buffer(mut self, buffer: Vec<u8>) -> Self {
        self.framer = self.framer.with_buffer(buffer);
        self
    }

    /// Whether the taker stopped taking chunks.
    pub fn stopped(&self) -> bool {
        self.gather.stopped
    }

    /// The next bytes of the input.
    pub fn feed(&mut self, bytes: &[u8]) {
        let Records { framer, gather } = self;
        // The framer's sink cannot fail here: items are only gathered.
        let _ = framer.feed(bytes, &mut |r| -> Result<(), std::convert::Infallible> {
            gather.record(r);
            Ok(())
        });
    }

    /// Room to read the next bytes of the input into, where the framer takes them without a
    /// copy ([`Framer::space`]); `None`: read elsewhere and [`Records::feed`].
    pub fn space(&mut self, want: usize) -> Option<&mut [u8]> {
        self.framer.space(want)
    }

    /// `n` bytes were read into the room [`Records::space`] gave.
    pub fn filled(&mut self, n: usize) {
        let Records { framer, gather } = self;
        let _ = framer.filled(n, &mut |r| -> Result<(), std::convert::Infallible> {
            gather.record(r);
            Ok(())
        });
    }

    /// The input could not be opened: one malformed item for the whole input, handed on.
    pub fn unreadable(mut self, reason: &str) {
        self.gather
            .malformed(Origin::INPUT, format!("cannot read: {reason}"));
        self.gather.flush();
    }

    /// Reading broke off: reported at the line it reached; what was read before is handed
    /// on.
    pub fn broke_off(mut self, reason: &str) {
        let origin = Origin::line(self.framer.next_line());
        self.gather
            .malformed(origin, format!("cannot read: {reason}"));
        self.gather.flush();
    }

    /// The end of the input: the last record framed, the last chunk (with the lines the input
    /// held) handed on. Gives back the framer's line buffer, for the next input.
    pub fn finish(self) -> Vec<u8> {
        let Records {
            mut framer,
            mut gather,
        } = self;
        if !gather.stopped {
            let _ = framer.finish(&mut |r| -> Result<(), std::convert::Infallible> {
                gather.record(r);
                Ok(())
            });
            gather.chunk.lines = framer.next_line() - 1;
            gather.flush();
        }
        framer.into_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[&[u8]], later_range: bool) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        let mut send = |c: Chunk| {
            chunks.push(c);
            true
        };
        let mut records = Records::new(1024 * 1024, later_range, &mut send);
        for b in bytes {
            records.feed(b);
        }
        records.finish();
        chunks
    }

    /// A log file's records, one relevant and one prefiltered; a JSON line that is not JSON;
    /// the origins name line and record; bytes may arrive cut anywhere.
    #[test]
    fn records_of_log_files_and_lines_with_their_origins() {
        let text = concat!(
            r#"{"Records":[{"eventSource":"s3.amazonaws.com"},{"eventSource":"ssm.amazonaws.com","eventID":"a"}]}"#,
            "\n",
            "{not json\n",
            r#"{"source":"aws.ssm","id":"b"}"#,
            "\n"
        )
        .as_bytes();
        let (head, tail) = text.split_at(37);
        let chunks = read(&[head, tail], false);
        let items: Vec<&Item> = chunks.iter().flat_map(|c| &c.items).collect();
        let read_total: u64 = chunks.iter().map(|c| c.read).sum();
        let prefiltered: u64 = chunks.iter().map(|c| c.prefiltered).sum();
        assert_eq!((read_total, prefiltered), (4, 1));
        assert_eq!(chunks.last().unwrap().lines, 3);
        match items.as_slice() {
            [Item::Record {
                value: a,
                origin: oa,
            }, Item::Malformed { origin: ob, reason }, Item::Record {
                value: c,
                origin: oc,
            }] => {
                assert_eq!(a["eventID"], "a");
                assert_eq!(oa.render("f", 0), "f:1: Records[1]");
                assert_eq!(ob.render("f", 10), "f:12");
                assert_eq!(reason, "not a JSON object");
                assert_eq!(c["id"], "b");
                assert_eq!(oc.render("f", 0), "f:3");
            }
            other => panic!("{other:?}"),
        }
    }

    fn items_of(text: &str) -> (Vec<Item>, u64, u64) {
        let chunks = read(&[text.as_bytes()], false);
        let read_total = chunks.iter().map(|c| c.read).sum();
        let prefiltered = chunks.iter().map(|c| c.prefiltered).sum();
        (
            chunks.into_iter().flat_map(|c| c.items).collect(),
            read_total,
            prefiltered,
        )
    }

    /// A log file split by structure: a record that is not JSON costs only itself (an
    /// irrelevant one is skipped as before, a relevant one is reported with its place), and
    /// the records beside it are still read. The parser used to refuse the whole file.
    #[test]
    fn a_bad_record_costs_only_itself() {
        let text = concat!(
            r#"{"Records":[{"eventSource":"s3.amazonaws.com","readOnly":tru},"#,
            r#"{"eventSource":"ssm.amazonaws.com","eventID":"bad","x":tru},"#,
            r#"{"eventSource":"ssm.amazonaws.com","eventID":"good"}]}"#
        );
        let (items, read_total, prefiltered) = items_of(text);
        assert_eq!((read_total, prefiltered), (3, 1));
        match items.as_slice() {
            [Item::Malformed { origin, reason }, Item::Record {
                value,
                origin: good,
            }] => {
                assert_eq!(origin.render("f", 0), "f:1: Records[1]");
                assert!(reason.starts_with("invalid JSON: "), "{reason}");
                assert_eq!(value["eventID"], "good");
                assert_eq!(good.render("f", 0), "f:1: Records[2]");
            }
            other => panic!("{other:?}"),
        }
    }

    /// The prefilter's marks in a split log file: `ssm.amazonaws.com`, `aws.ssm` and any
    /// `\u` escape (which can spell either) mark their own record and no other.
    #[test]
    fn marks_pick_out_their_own_records() {
        let text = concat!(
            r#"{"Records":[{"a":"ssm"},{"eventSource":"ssm.amazonaws.com"},{"b":"x"},"#,
            r#"{"source":"aws.ssm"},{"c":"ssm.amazonaws.co"},{"eventSource":"\u0073sm.amazonaws.com"},"#,
            r#"{"d":"amazonaws.com ssm"}]}"#
        );
        let (items, read_total, prefiltered) = items_of(text);
        assert_eq!((read_total, prefiltered), (7, 4));
        let parsed: Vec<String> = items
            .iter()
            .map(|i| match i {
                Item::Record { origin, .. } => origin.render("f", 0),
                Item::Malformed { reason, .. } => panic!("{reason}"),
            })
            .collect();
        assert_eq!(
            parsed,
            ["f:1: Records[1]", "f:1: Records[3]", "f:1: Records[5]"]
        );
    }

    /// What is not exactly a log file's structure goes to the full parser: a log file with
    /// another key is still read; one whose brackets do not match is one malformed input, as
    /// before.
    #[test]
    fn other_log_files_are_parsed_in_full() {
        let (items, read_total, _) = items_of(concat!(
            r#"{"Records":[{"eventSource":"ssm.amazonaws.com","eventID":"a"}],"#,
            r#""Digest":"x"}"#
        ));
        assert_eq!(read_total, 1);
        assert!(
            matches!(items.as_slice(), [Item::Record { value, .. }] if value["eventID"] == "a"),
            "{items:?}"
        );
        let (items, read_total, _) =
            items_of(r#"{"Records":[{"eventSource":"ssm.amazonaws.com"},{"a":1}}"#);
        assert_eq!(read_total, 1);
        assert!(
            matches!(items.as_slice(), [Item::Malformed { reason, .. }] if reason.starts_with("invalid CloudTrail log file: ")),
            "{items:?}"
        );
    }

    #[test]
    fn an_unreadable_input_is_one_malformed_item() {
        let mut chunks = Vec::new();
        let mut send = |c: Chunk| {
            chunks.push(c);
            true
        };
        Records::new(64, false, &mut send).unreadable("NoSuchKey");
        assert!(matches!(
            chunks.as_slice(),
            [Chunk { items, .. }] if matches!(items.as_slice(), [Item::Malformed { reason, .. }] if reason == "cannot read: NoSuchKey")
        ));
    }

    #[test]
    fn chunks_hold_at_most_chunk_items() {
        let line = format!("{}\n", r#"{"source":"aws.ssm","id":"x"}"#);
        let text = line.repeat(CHUNK_ITEMS * 2 + 3);
        let chunks = read(&[text.as_bytes()], true);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.items.len()).collect();
        assert_eq!(sizes, [CHUNK_ITEMS, CHUNK_ITEMS, 3]);
        assert_eq!(chunks.last().unwrap().lines, CHUNK_ITEMS * 2 + 3);
    }
}
