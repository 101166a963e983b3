//! Splitting an input stream into JSON records, whatever its shape and however it arrives.
//!
//! Replay inputs are JSON lines (one event or one CloudTrail log file per line), or one
//! multi-line document (a pretty-printed event or log file). [`Framer`] is fed the stream in
//! chunks of any size and hands each record to a sink, without I/O of its own:
//! - a UTF-8 byte order mark at the start is skipped;
//! - the first non-blank line decides: a line that ends a JSON object starts JSON lines; one
//!   that does not starts a document candidate, which is one [`Record::Document`] if the whole
//!   input parses as one JSON text, JSON lines whose first line is bad if any of its lines is an
//!   event on its own (every line reported, the bad ones malformed by the sink), and one
//!   [`Record::Invalid`] otherwise;
//! - no record is held past the limit: a longer line is skipped to its end and reported
//!   ([`Record::TooLong`]), a longer document too.
//!
//! Lines wholly inside a chunk are handed over in place; a line that straddles chunks is copied
//! into the framer's line buffer, unless the reader reads straight into that buffer
//! ([`Framer::space`] and [`Framer::filled`]), which is how replay reads: then no line is
//! copied. The records never depend on how the stream was cut into chunks, nor on whether it
//! was fed or read in place.

use std::convert::Infallible;

/// A UTF-8 byte order mark: not part of the JSON text.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the framer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// One line of JSON lines (1-based), not trimmed; blank lines are not records.
    Line { line: usize, text: &'a [u8] },
    /// The whole input as one JSON text (trimmed).
    Document { text: &'a [u8] },
    /// A line (`Some(n)`) or the document (`None`) longer than the limit.
    TooLong { line: Option<usize> },
    /// The input is one multi-line text that is not JSON.
    Invalid { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Only blank lines so far.
    Undecided,
    /// One JSON text per line.
    Lines,
    /// A multi-line document from line `first`, held until the end or the limit.
    Document { first: usize, text: Vec<u8> },
    /// The rest of the input is ignored (a document over the limit).
    Discard,
}

/// The push-based framer; see the module documentation.
#[derive(Debug, Clone)]
pub struct Framer {
    limit: usize,
    started: bool,
    /// The first bytes, until they tell whether the input starts with a byte order mark (which
    /// may be split across chunks).
    head: Vec<u8>,
    /// The unfinished line (bytes since the last newline), when it straddles chunks.
    partial: Held,
    /// Inside a line longer than the limit: skipped to its end.
    skipping: bool,
    /// Lines ended so far.
    line_no: usize,
    state: State,
}

/// Trims ASCII whitespace at both ends.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// A first line that does not end a JSON object starts a multi-line document.
fn starts_document(line: &[u8]) -> bool {
    let t = trim(line);
    !t.is_empty() && !t.ends_with(b"}")
}

/// Whether a line is, on its own, an event or a log file (a JSON object with a key events
/// have): what tells JSON lines whose first line is bad from a multi-line document.
pub fn is_event_line(line: &[u8]) -> bool {
    let t = trim(line);
    t.first() == Some(&b'{')
        && serde_json::from_slice::<std::collections::HashMap<String, serde::de::IgnoredAny>>(t)
            .is_ok_and(|m| {
                [
                    "detail-type",
                    "eventSource",
                    "eventName",
                    "Records",
                    "eventVersion",
                ]
                .iter()
                .any(|k| m.contains_key(*k))
            })
}

impl Framer {
    /// A framer that holds no record longer than `limit` bytes (at least 1).
    pub fn new(limit: usize) -> Self {
        Framer {
            limit: limit.max(1),
            started: false,
            head: Vec::new(),
            partial: Held::default(),
            skipping: false,
            line_no: 0,
            state: State::Undecided,
        }
    }

    /// A framer for a byte range of JSON lines that starts at a line start, after the input's
    /// first line (whose being an event decided JSON lines): no byte order mark is looked
    /// for, every line is a line, and lines are numbered from `first_line`. Framing an input in
    /// such ranges gives the records framing it whole gives.
    pub fn lines_from(limit: usize, first_line: usize) -> Self {
        Framer {
            started: true,
            line_no: first_line.saturating_sub(1),
            state: State::Lines,
            ..Framer::new(limit)
        }
    }

    /// The framer holds lines that straddle chunks in `buffer` (cleared first): a buffer
    /// taken back with [`Framer::into_buffer`] from the framer of an earlier input saves
    /// growing a new one, which for a log file of one long line means copying it twice more.
    pub fn with_buffer(mut self, buffer: Vec<u8>) -> Self {
        self.partial = Held {
            bytes: buffer,
            len: 0,
        };
        self
    }

    /// The line buffer, for the framer of the next input.
    pub fn into_buffer(self) -> Vec<u8> {
        self.partial.bytes
    }

    /// Room for the next bytes of the stream (`want` of them, at most), straight after the
    /// unfinished line, when the framer can take them where they are read: a line that
    /// straddles reads is then never copied. `None` when it cannot (before the start of the
    /// stream is settled, inside a document, or while skipping a line over the limit): feed
    /// the bytes instead. Report what was read into it with [`Framer::filled`].
    pub fn space(&mut self, want: usize) -> Option<&mut [u8]> {
        let in_place =
            self.started && !self.skipping && matches!(self.state, State::Undecided | State::Lines);
        in_place.then(|| self.partial.room(want.max(1)))
    }

    /// `n` bytes were read into the room [`Framer::space`] gave: frames them as
    /// [`Framer::feed`] would have.
    pub fn filled<E>(
        &mut self,
        n: usize,
        sink: &mut dyn FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let from = self.partial.len;
        self.partial.len = (from + n).min(self.partial.bytes.len());
        // The lines ended in the new bytes, handed over where they are.
        let mut held = std::mem::take(&mut self.partial);
        let result = self.lines_in(&mut held, from, sink);
        if self.partial.bytes.capacity() == 0 {
            self.partial = held;
        }
        result
    }

    /// Frames the lines of `held` that end in its bytes from `from` on, then keeps its
    /// unfinished line (or hands the rest on, if a line started a document).
    fn lines_in<E>(
        &mut self,
        held: &mut Held,
        from: usize,
        sink: &mut dyn FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut start = 0;
        let mut scan = from;
        while let Some(nl) = held
            .as_slice()
            .get(scan..)
            .and_then(|rest| memchr::memchr(b'\n', rest))
        {
            let end = scan + nl;
            let line = held.bytes.get(start..end).unwrap_or_default();
            self.line_no += 1;
            start = end + 1;
            scan = start;
            if line.len() > self.limit {
                sink(Record::TooLong {
                    line: Some(self.line_no),
                })?;
            } else {
                self.line(self.line_no, line, sink)?;
            }
            if !matches!(self.state, State::Undecided | State::Lines) {
                // A document started: the rest is its text.
                let rest = held.bytes.get(start..held.len).unwrap_or_default();
                let result = self.push(rest, sink);
                held.len = 0;
                return result;
            }
        }
        held.keep_from(start);
        if held.len > self.limit {
            held.len = 0;
            self.skipping = true;
        }
        Ok(())
    }

    /// The number of the line being read (1-based), for read errors.
    pub fn next_line(&self) -> usize {
        self.line_no + 1
    }

    /// Feeds the next chunk of the stream.
    pub fn feed<E>(
        &mut self,
        mut chunk: &[u8],
        sink: &mut dyn FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.started {
            let take = (BOM.len() - self.head.len()).min(chunk.len());
            self.head
                .extend_from_slice(chunk.get(..take).unwrap_or_default());
            chunk = chunk.get(take..).unwrap_or_default();
            if self.head.len() < BOM.len() && BOM.starts_with(&self.head) {
                return Ok(());
            }
            self.start(sink)?;
        }
        self.push(chunk, sink)
    }

    /// The first bytes are in: without a byte order mark, they are the stream's.
    fn start<E>(&mut self, sink: &mut dyn FnMut(Record<'_>) -> Result<(), E>) -> Result<(), E> {
        self.started = true;
        let head = std::mem::take(&mut self.head);
        self.push(head.strip_prefix(BOM).unwrap_or(&head), sink)
    }

    fn push<E>(
        &mut self,
        mut chunk: &[u8],
        sink: &mut dyn FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        while !chunk.is_empty() {
            match &mut self.state {
                State::Discard => return Ok(()),
                State::Document { text, .. } => {
                    let room = (self.limit + 1).saturating_sub(text.len());
                    let take = room.min(chunk.len());
                    text.extend_from_slice(chunk.get(..take).unwrap_or_default());
                    chunk = chunk.get(take..).unwrap_or_default();
                    if text.len() > self.limit {
                        self.over_limit(sink)?;
                    }
                    continue;
                }
                State::Undecided | State::Lines => {}
            }
            let Some(nl) = memchr::memchr(b'\n', chunk) else {
                if !self.skipping {
                    if self.partial.len + chunk.len() > self.limit {
                        self.skipping = true;
                        self.partial.clear();
                    } else {
                        self.partial.extend(chunk);
                    }
                }
                return Ok(());
            };
            let here = chunk.get(..nl).unwrap_or_default();
            chunk = chunk.get(nl + 1..).unwrap_or_default();
            self.line_no += 1;
            let line_no = self.line_no;
            if self.skipping || self.partial.len + here.len() > self.limit {
                self.skipping = false;
                self.partial.clear();
                sink(Record::TooLong {
                    line: Some(line_no),
                })?;
            } else if self.partial.len == 0 {
                self.line(line_no, here, sink)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend(here);
                self.line(line_no, line.as_slice(), sink)?;
                if self.partial.bytes.capacity() == 0 {
                    // Reuse the allocation for the next straddling line.
                    line.clear();
                    self.partial = line;
                }
            }
        }
        Ok(())
    }

    /// The end of the stream.
    pub fn finish<E>(
        &mut self,
        sink: &mut dyn FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match std::mem::replace(&mut self.state, State::Discard) {
            State::Discard => Ok(()),
            State::Document { first, text } => self.decide(first, text, true, sink),
            state @ (State::Undecided | State::Lines) => {
                self.state = state;
                if self.skipping {
                    self.skipping = false;
                    self.line_no += 1;
                    sink(Record::TooLong {
                        line: Some(self.line_no),
                    })?;
                } else if self.partial.len > 0 {
                    self.line_no += 1;
                    let mut line = std::mem::take(&mut self.partial);
                    self.line(self.line_no, line.as_slice(), sink)?;
                    line.clear();
                    self.partial = line;
                    if let State::Document { first, text } =
                        std::mem::replace(&mut self.state, State::Discard)
                    {
                        return self.decide(first, text, true, sink);
                    }
                }
                self.state = State::Discard;
                Ok(())
            }
        }
    }

    /// One whole line, as the framing decided so far.
    fn line<E>(
        &mut self,
        line_no: usize,
        line: &[u8],
        sink: &mut dyn FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.state == State::Undecided {
            if trim(line).is_empty() {
                return Ok(());
            }
            if starts_document(line) {
                let mut text = Vec::with_capacity(line.len() + 1);
                text.extend_from_slice(line);
                text.push(b'\n');
                self.state = State::Document {
                    first: line_no,
                    text,
                };
                return Ok(());
            }
            self.state = State::Lines;
        }
        if trim(line).is_empty() {
            return Ok(());
        }
        sink(Record::Line {
            line: line_no,
            text: line,
        })
    }

    /// The document candidate reached the limit before the end: JSON lines if its complete
    /// lines hold an event, otherwise a document too long to read.
    fn over_limit<E>(
        &mut self,
        sink: &mut dyn FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let State::Document { first, text } = std::mem::replace(&mut self.state, State::Discard)
        else {
            return Ok(());
        };
        self.decide(first, text, false, sink)
    }

    /// Decides a document candidate: `complete` when it is the whole input.
    fn decide<E>(
        &mut self,
        first: usize,
        text: Vec<u8>,
        complete: bool,
        sink: &mut dyn FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let whole = if complete {
            let t = trim(&text);
            match serde_json::from_slice::<serde::de::IgnoredAny>(t) {
                Ok(_) => {
                    self.state = State::Discard;
                    return sink(Record::Document { text: t });
                }
                Err(e) => Some(e.to_string()),
            }
        } else {
            None
        };
        let cut = if complete {
            text.len()
        } else {
            memchr::memrchr(b'\n', &text).map_or(0, |i| i + 1)
        };
        let body = text.get(..cut).unwrap_or_default();
        if !body.split(|b| *b == b'\n').any(is_event_line) {
            self.state = State::Discard;
            return match whole {
                Some(reason) => sink(Record::Invalid { reason }),
                None => sink(Record::TooLong { line: None }),
            };
        }
        self.state = State::Lines;
        let mut n = first;
        let mut lines = body.split(|b| *b == b'\n').peekable();
        while let Some(line) = lines.next() {
            // The empty piece after a final newline is not a line.
            if lines.peek().is_none() && line.is_empty() {
                break;
            }
            if !trim(line).is_empty() {
                sink(Record::Line {
                    line: n,
                    text: line,
                })?;
            }
            n += 1;
        }
        self.line_no = n - 1;
        if complete {
            self.state = State::Discard;
            return Ok(());
        }
        // Read on from the unfinished line (the limit can cut a line, never lose it).
        let tail = text.get(cut..).unwrap_or_default();
        self.partial.clear();
        if tail.len() > self.limit {
            self.skipping = true;
        } else {
            self.partial.extend(tail);
        }
        Ok(())
    }
}

/// The unfinished line, `bytes[..len]`. The rest of `bytes` is room already allocated and
/// written, so that reads can go straight into it ([`Framer::space`]) with nothing to clear.
#[derive(Debug, Clone, Default)]
struct Held {
    bytes: Vec<u8>,
    len: usize,
}

impl Held {
    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// `want` bytes of room after the line (the buffer grown if need be: only bytes never
    /// written before are cleared).
    fn room(&mut self, want: usize) -> &mut [u8] {
        let end = self.len + want;
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes.get_mut(self.len..end).unwrap_or_default()
    }

    fn extend(&mut self, more: &[u8]) {
        let from = self.len;
        if let Some(room) = self.room(more.len()).get_mut(..more.len()) {
            room.copy_from_slice(more);
            self.len = from + more.len();
        }
    }

    /// Keeps the bytes from `start` on, moved to the front.
    fn keep_from(&mut self, start: usize) {
        if start > 0 {
            self.bytes.copy_within(start..self.len, 0);
            self.len -= start;
        }
    }
}

/// Frames a whole input at once (for tests and callers that hold it).
pub fn frame_all(input: &[u8], limit: usize) -> Vec<OwnedRecord> {
    frame_chunked(input, limit, input.len())
}

/// Frames an input fed in chunks of `size` bytes (the framing fuzz target and tests compare
/// chunkings).
pub fn frame_chunked(input: &[u8], limit: usize, size: usize) -> Vec<OwnedRecord> {
    framed(limit, |f, sink| {
        for c in input.chunks(size.max(1)) {
            let _ = f.feed(c, sink);
        }
    })
}

/// The records a new framer gives when `read` gives it the stream, then the end.
fn framed(
    limit: usize,
    read: impl FnOnce(&mut Framer, &mut dyn FnMut(Record<'_>) -> Result<(), Infallible>),
) -> Vec<OwnedRecord> {
    let mut out = Vec::new();
    let mut f = Framer::new(limit);
    let mut sink = |r: Record<'_>| -> Result<(), Infallible> {
        out.push(OwnedRecord::from(r));
        Ok(())
    };
    read(&mut f, &mut sink);
    let _ = f.finish(&mut sink);
    out
}

/// Frames an input read in pieces of `size` bytes straight into the framer's room
/// ([`Framer::space`]), fed where it has none (the framing fuzz target and tests compare this
/// with feeding).
pub fn frame_filled(input: &[u8], limit: usize, size: usize) -> Vec<OwnedRecord> {
    framed(limit, |f, sink| {
        let mut rest = input;
        while !rest.is_empty() {
            let take = size.max(1).min(rest.len());
            let (piece, after) = rest.split_at(take);
            rest = after;
            match f.space(take) {
                Some(room) => {
                    // A reader may fill less than the room it is given.
                    let n = room.len().min(piece.len());
                    room.get_mut(..n)
                        .unwrap_or_default()
                        .copy_from_slice(piece.get(..n).unwrap_or_default());
                    let _ = f.filled(n, sink);
                }
                None => {
                    let _ = f.feed(piece, sink);
                }
            }
        }
    })
}

/// A [`Record`] that owns its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedRecord {
    Line { line: usize, text: Vec<u8> },
    Document { text: Vec<u8> },
    TooLong { line: Option<usize> },
    Invalid { reason: String },
}

impl From<Record<'_>> for OwnedRecord {
    fn from(r: Record<'_>) -> Self {
        match r {
            Record::Line { line, text } => OwnedRecord::Line {
                line,
                text: text.to_vec(),
            },
            Record::Document { text } => OwnedRecord::Document {
                text: text.to_vec(),
            },
            Record::TooLong { line } => OwnedRecord::TooLong { line },
            Record::Invalid { reason } => OwnedRecord::Invalid { reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replay reads a large JSON-lines input as ranges on several threads: ranges cut after
    /// any newline past the first line, each framed by `lines_from`, give the whole input's
    /// records (long lines, blank lines and a last line without a newline included).
    #[test]
    fn json_lines_framed_in_ranges_give_the_whole_inputs_records() {
        let input = b"{\"eventSource\":\"ssm.amazonaws.com\"}\n\n{\"a\":1}\r\n{\"b\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}\nnot json\n\n{\"c\":2}";
        let limit = 20;
        let whole = frame_all(input, limit);
        let newlines: Vec<usize> = input
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        for (n, &cut) in newlines.iter().enumerate() {
            for &cut2 in newlines.iter().skip(n + 1) {
                let mut got = frame_all(&input[..cut], limit);
                for (from, range) in [(n + 2, &input[cut..cut2]), (0, &input[cut2..])] {
                    let first = if from == 0 {
                        input[..cut2].iter().filter(|b| **b == b'\n').count() + 1
                    } else {
                        from
                    };
                    let mut f = Framer::lines_from(limit, first);
                    let mut sink = |r: Record<'_>| -> Result<(), std::convert::Infallible> {
                        got.push(OwnedRecord::from(r));
                        Ok(())
                    };
                    let _ = f.feed(range, &mut sink);
                    let _ = f.finish(&mut sink);
                }
                assert_eq!(got, whole, "cut after bytes {cut} and {cut2}");
            }
        }
    }

    use super::frame_chunked as chunked;

    const EVENT: &str = r#"{"eventSource":"ssm.amazonaws.com","eventName":"SendCommand"}"#;

    #[test]
    fn json_lines_with_blank_lines_and_no_final_newline() {
        let input = format!("{EVENT}\n\n  \n{EVENT}");
        let r = frame_all(input.as_bytes(), 1 << 20);
        assert_eq!(
            r,
            vec![
                OwnedRecord::Line {
                    line: 1,
                    text: EVENT.into()
                },
                OwnedRecord::Line {
                    line: 4,
                    text: EVENT.into()
                },
            ]
        );
    }

    #[test]
    fn records_never_depend_on_the_chunks() {
        let pretty = "{\n  \"Records\": [\n    {\"eventSource\": \"ssm.amazonaws.com\"}\n  ]\n}\n";
        let bad_first = format!("{{\"cut\": \n{EVENT}\n{EVENT}\n");
        let long = format!(
            "{{\"Records\":[{{\"x\":\"{}\"}},\n{EVENT}]}}",
            "y".repeat(5000)
        );
        for input in [pretty.to_string(), bad_first, long] {
            let whole = frame_all(input.as_bytes(), 1 << 20);
            for size in [1, 2, 3, 7, 64, 4096] {
                assert_eq!(chunked(input.as_bytes(), 1 << 20, size), whole, "{size}");
            }
        }
    }

    /// Bytes read straight into the framer's room give the records fed bytes give, however
    /// they are cut: lines, blank lines, over-long lines, documents, a byte order mark.
    #[test]
    fn bytes_read_in_place_frame_as_fed_bytes() {
        let pretty = "{\n  \"Records\": [\n    {\"eventSource\": \"ssm.amazonaws.com\"}\n  ]\n}\n";
        let inputs = [
            format!(
                "{EVENT}\n\n  \n{EVENT}\n{{\"x\":\"{}\"}}\n{EVENT}",
                "y".repeat(300)
            ),
            format!("\u{feff}{EVENT}\r\n{EVENT}\n"),
            format!("\n\n{pretty}"),
            format!("{{\"cut\": \n{EVENT}\n{EVENT}\n"),
            format!(
                "{{\"Records\":[{{\"x\":\"{}\"}},\n{EVENT}]}}",
                "z".repeat(5000)
            ),
            "z".repeat(1000),
        ];
        for input in &inputs {
            for limit in [100, 400, 1 << 20] {
                let whole = frame_all(input.as_bytes(), limit);
                for size in [1, 2, 3, 7, 64, 333, 4096] {
                    assert_eq!(
                        super::frame_filled(input.as_bytes(), limit, size),
                        whole,
                        "{size} {limit} {input}"
                    );
                }
            }
        }
    }

    /// A line buffer handed from input to input (what a reading thread does) changes no
    /// record: not after an input that ended inside a line, a line over the limit or a
    /// document.
    #[test]
    fn a_buffer_from_an_earlier_input_changes_nothing() {
        let inputs = [
            format!("{EVENT}\n{{\"tail\":\"{}\"}}", "t".repeat(300)),
            format!("{{\"long\":\"{}\"}}\n{EVENT}\n", "z".repeat(500)),
            "{\n  \"Records\": []\n}\n".to_string(),
            format!("{EVENT}\n{EVENT}"),
        ];
        let limit = 400;
        let mut buffer = Vec::new();
        for input in &inputs {
            let mut got = Vec::new();
            let mut f = Framer::new(limit).with_buffer(std::mem::take(&mut buffer));
            let mut sink = |r: Record<'_>| -> Result<(), std::convert::Infallible> {
                got.push(OwnedRecord::from(r));
                Ok(())
            };
            for c in input.as_bytes().chunks(7) {
                let _ = f.feed(c, &mut sink);
            }
            let _ = f.finish(&mut sink);
            buffer = f.into_buffer();
            assert_eq!(got, frame_all(input.as_bytes(), limit), "{input}");
        }
        assert!(buffer.len() >= 300, "the buffer is kept");
    }

    /// Found by the `framing` fuzz target: a byte order mark split across chunks.
    #[test]
    fn a_byte_order_mark_split_across_chunks_is_skipped() {
        let input = format!("\u{feff}{EVENT}\n");
        for size in [1, 2, 3] {
            assert_eq!(
                chunked(input.as_bytes(), 1 << 20, size),
                vec![OwnedRecord::Line {
                    line: 1,
                    text: EVENT.into()
                }],
                "{size}"
            );
        }
        assert_eq!(chunked(b"\xEF\xBB", 100, 1), frame_all(b"\xEF\xBB", 100));
    }

    #[test]
    fn a_document_is_one_record_and_a_bad_one_is_invalid() {
        let pretty = "\u{feff}\n\n{\n  \"a\": 1\n}\n";
        assert_eq!(
            frame_all(pretty.as_bytes(), 100),
            vec![OwnedRecord::Document {
                text: b"{\n  \"a\": 1\n}".to_vec()
            }]
        );
        assert!(matches!(
            frame_all(b"{\n  \"a\": \n", 100).as_slice(),
            [OwnedRecord::Invalid { .. }]
        ));
    }

    #[test]
    fn a_bad_first_line_leaves_the_other_lines() {
        let input = format!("{{\"cut\": \n{EVENT}\n");
        assert_eq!(
            frame_all(input.as_bytes(), 1 << 20),
            vec![
                OwnedRecord::Line {
                    line: 1,
                    text: b"{\"cut\": ".to_vec()
                },
                OwnedRecord::Line {
                    line: 2,
                    text: EVENT.into()
                },
            ]
        );
    }

    #[test]
    fn lines_over_the_limit_are_reported_and_skipped() {
        let input = format!("{EVENT}\n{}\n{EVENT}\n{}", " ".repeat(500), "z".repeat(300));
        let r = chunked(input.as_bytes(), 200, 50);
        assert_eq!(
            r,
            vec![
                OwnedRecord::Line {
                    line: 1,
                    text: EVENT.into()
                },
                OwnedRecord::TooLong { line: Some(2) },
                OwnedRecord::Line {
                    line: 3,
                    text: EVENT.into()
                },
                OwnedRecord::TooLong { line: Some(4) },
            ]
        );
    }

    #[test]
    fn a_document_candidate_over_the_limit_reads_on_as_lines_when_it_holds_events() {
        // A bad first line, then more JSON lines than the limit holds.
        let mut input = String::from("{\"cut\": \n");
        for _ in 0..50 {
            input.push_str(EVENT);
            input.push('\n');
        }
        let r = chunked(input.as_bytes(), 500, 33);
        let lines = r
            .iter()
            .filter(|x| matches!(x, OwnedRecord::Line { text, .. } if text == EVENT.as_bytes()))
            .count();
        assert_eq!(lines, 50, "{r:?}");
        // A pretty document over the limit, with no event on a line of its own.
        let pretty = format!("{{\n\"a\": \"{}\"\n}}\n", "b".repeat(600));
        assert_eq!(
            frame_all(pretty.as_bytes(), 500),
            vec![OwnedRecord::TooLong { line: None }]
        );
    }
}
