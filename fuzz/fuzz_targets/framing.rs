//! Replay framing: splitting a stream into records never loses a valid record, and never
//! depends on how the stream is cut into chunks, fed or read in place.
//!
//! The input is read as a chunk size (first byte), a limit (second byte, in KiB), and a stream;
//! the stream is also rebuilt as JSON lines of its own lines with a valid event after each, and
//! every such event must come out as a line record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::framing::{frame_all, frame_chunked as chunked, frame_filled, OwnedRecord};

const EVENT: &[u8] =
    br#"{"eventSource":"ssm.amazonaws.com","eventName":"SendCommand","eventID":"e"}"#;

fuzz_target!(|data: &[u8]| {
    let [size, kib, stream @ ..] = data else {
        return;
    };
    let limit = (usize::from(*kib) + 1) * 1024;
    let size = usize::from(*size) + 1;
    // Chunking never changes the records.
    let whole = frame_all(stream, limit);
    assert_eq!(chunked(stream, limit, size), whole);
    // Nor does reading straight into the framer's room.
    assert_eq!(frame_filled(stream, limit, size), whole);
    // Every line record is exactly that line of the input.
    let lines: Vec<&[u8]> = stream
        .strip_prefix(tagwatch_core::framing::BOM)
        .unwrap_or(stream)
        .split(|b| *b == b'\n')
        .collect();
    for r in &whole {
        if let OwnedRecord::Line { line, text } = r {
            assert_eq!(
                lines.get(line - 1).copied(),
                Some(text.as_slice()),
                "line {line}"
            );
        }
    }
    // Arbitrary lines, each followed by a valid event: every event comes out (a first line that
    // is junk never swallows the rest).
    let mut jsonl = Vec::new();
    let mut expected = 0;
    for l in stream.split(|b| *b == b'\n').take(64) {
        jsonl.extend_from_slice(l);
        jsonl.push(b'\n');
        jsonl.extend_from_slice(EVENT);
        jsonl.push(b'\n');
        expected += 1;
    }
    let got = frame_all(&jsonl, 1 << 20)
        .iter()
        .filter(|r| matches!(r, OwnedRecord::Line { text, .. } if text.as_slice() == EVENT))
        .count();
    assert!(
        got >= expected,
        "{got} of {expected} events framed from {:?}",
        String::from_utf8_lossy(&jsonl)
    );
});
