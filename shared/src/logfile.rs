//! Splitting a CloudTrail log file into its records by structure alone.
//!
//! CloudTrail writes a log file as `{"Records":[{...},{...}]}` on one line. Replay needs the
//! text of each record, parses in full only those that may be SSM events (about 2% of a trail)
//! and skips the rest. Finding where each record ends with a JSON parser costs a check of every
//! token of every record; [`split`] finds the ends from the structure alone: strings (with
//! their escapes) and the brackets outside them, 64 bytes at a time, with SSE2 on x86_64 and
//! eight bytes to a machine word elsewhere.
//!
//! [`split`] accepts only a text whose structure is exactly a log file: `{`, the key
//! `"Records"`, `:`, `[`, objects or arrays separated by single commas, `]`, `}`, whitespace
//! between them, every string closed and every bracket balanced. Anything else (another key, a
//! record that is a string or a number, an escaped key, a cut-off file) is refused, and the
//! caller parses the text with the full parser, which names what is wrong and where.
//!
//! What [`split`] does not check is the grammar inside a record: how its tokens are spelt,
//! control characters in its strings, its UTF-8. Every byte of the array lies in a record or
//! in the whitespace and commas between them, so a record that may be an SSM event is found
//! and parsed in full (and reported malformed on its own if it is not JSON), while one that
//! cannot be is skipped either way.

use std::ops::Range;

/// Bytes examined at once.
const BLOCK: usize = 64;

/// One bit per byte of a block, for the bytes that matter to the structure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    /// `{` and `[`.
    open: u64,
    /// `}` and `]`.
    close: u64,
}

/// The masks of a block with SSE2 (every x86_64 processor has it).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn masks(block: &[u8; BLOCK]) -> Masks {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let quote = set_splat_i8_m128i(b'"' as i8);
    let backslash = set_splat_i8_m128i(b'\\' as i8);
    // `[` and `{` differ only in bit 0x20, as do `]` and `}`.
    let case = set_splat_i8_m128i(0x20);
    let open = set_splat_i8_m128i(b'{' as i8);
    let close = set_splat_i8_m128i(b'}' as i8);
    let mut m = Masks::default();
    for (k, lane) in block.chunks_exact(16).enumerate() {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(lane);
        let v = m128i::from(bytes);
        let at = k * 16;
        let bits = |x: m128i| u64::from(move_mask_i8_m128i(x) as u16) << at;
        m.quote |= bits(cmp_eq_mask_i8_m128i(v, quote));
        m.backslash |= bits(cmp_eq_mask_i8_m128i(v, backslash));
        let folded = bitor_m128i(v, case);
        m.open |= bits(cmp_eq_mask_i8_m128i(folded, open));
        m.close |= bits(cmp_eq_mask_i8_m128i(folded, close));
    }
    m
}

/// The masks of a block, eight bytes to a machine word (no vector instructions).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn masks(block: &[u8; BLOCK]) -> Masks {
    masks_by_word(block)
}

/// Bit `i` set for each byte `i` of `word` (little-endian) equal to `byte`, exactly (no carry
/// crosses bytes).
#[cfg(any(test, not(target_arch = "x86_64")))]
fn equal_bits(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    // The high bit of each byte of `zero` is set when that byte of `x` is zero.
    let zero = !(((x & LOW7) + LOW7) | x | LOW7);
    // Gather the eight high bits into the top byte, then down.
    ((zero >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

#[cfg(any(test, not(target_arch = "x86_64")))]
fn masks_by_word(block: &[u8; BLOCK]) -> Masks {
    let mut m = Masks::default();
    for (k, chunk) in block.chunks_exact(8).enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let word = u64::from_le_bytes(bytes);
        let folded = word | 0x2020_2020_2020_2020;
        let at = k * 8;
        m.quote |= equal_bits(word, b'"') << at;
        m.backslash |= equal_bits(word, b'\\') << at;
        m.open |= equal_bits(folded, b'{') << at;
        m.close |= equal_bits(folded, b'}') << at;
    }
    m
}

/// Each bit set to the parity of the set bits at and below it: from the quotes, the bytes
/// inside strings (the opening quote included, the closing one not).
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The bytes a backslash escapes. `carry`: the previous block ended with a backslash that
/// escapes this block's first byte; updated for the next block.
#[inline(always)]
fn escaped(backslash: u64, carry: &mut bool) -> u64 {
    if backslash == 0 && !*carry {
        return 0;
    }
    let mut escaped = u64::from(*carry);
    *carry = false;
    let mut rest = backslash & !escaped;
    while rest != 0 {
        let i = rest.trailing_zeros();
        // This backslash escapes the next byte, which cannot start an escape of its own.
        if i == 63 {
            *carry = true;
        } else {
            escaped |= 1 << (i + 1);
        }
        rest &= !(3u64 << i);
    }
    escaped
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_space(text: &[u8], mut at: usize) -> usize {
    while text.get(at).copied().is_some_and(is_space) {
        at += 1;
    }
    at
}

/// `{ "Records" : [`: where the array's contents start.
fn header(text: &[u8]) -> Option<usize> {
    let mut at = skip_space(text, 0);
    for part in [&b"{"[..], b"\"Records\"", b":", b"["] {
        at = skip_space(text, at);
        if !text.get(at..)?.starts_with(part) {
            return None;
        }
        at += part.len();
    }
    Some(at)
}

/// What lies between records: whitespace, with one comma unless it is before the first
/// record or after the last.
fn gap_ok(gap: &[u8], comma: bool) -> bool {
    let mut commas = 0;
    for &b in gap {
        match b {
            b',' => commas += 1,
            b if is_space(b) => {}
            _ => return false,
        }
    }
    commas == usize::from(comma)
}

/// The records of a CloudTrail log file, as byte ranges of `text` in order, into `out`; `false`
/// (and `out` unspecified) when `text` is not exactly a log file's structure (see the module
/// documentation).
pub fn split(text: &[u8], out: &mut Vec<Range<usize>>) -> bool {
    split_with(text, out, masks)
}

/// [`split`] with the given way of finding a block's masks (the tests run both ways on every
/// machine).
#[inline(always)]
fn split_with(
    text: &[u8],
    out: &mut Vec<Range<usize>>,
    masks: impl Fn(&[u8; BLOCK]) -> Masks,
) -> bool {
    out.clear();
    let Some(contents) = header(text) else {
        return false;
    };
    // Depth inside the `Records` array: 0 between records.
    let mut depth = 0usize;
    let mut start = contents;
    let mut gap_from = contents;
    let mut in_string = 0u64;
    let mut carry = false;
    let mut base = contents;
    while base < text.len() {
        let m = match text
            .get(base..base + BLOCK)
            .and_then(|b| <&[u8; BLOCK]>::try_from(b).ok())
        {
            Some(block) => masks(block),
            None => {
                // The last, short block, padded with spaces.
                let mut block = [b' '; BLOCK];
                let tail = text.get(base..).unwrap_or_default();
                if let Some(dst) = block.get_mut(..tail.len()) {
                    dst.copy_from_slice(tail);
                }
                masks(&block)
            }
        };
        let quotes = m.quote & !escaped(m.backslash, &mut carry);
        let inside = prefix_xor(quotes) ^ in_string;
        in_string = ((inside as i64) >> 63) as u64;
        let mut brackets = (m.open | m.close) & !inside;
        while brackets != 0 {
            let i = brackets.trailing_zeros();
            brackets &= brackets - 1;
            let at = base + i as usize;
            if m.open >> i & 1 == 1 {
                if depth == 0 {
                    if !gap_ok(text.get(gap_from..at).unwrap_or_default(), !out.is_empty()) {
                        return false;
                    }
                    start = at;
                }
                depth += 1;
            } else if depth == 0 {
                // The end of the array: nothing but `}` may follow.
                let gap = text.get(gap_from..at).unwrap_or_default();
                let array_closed = text.get(at) == Some(&b']');
                let rest = text.get(at + 1..).unwrap_or_default();
                let tail = crate::framing::trim(rest);
                return array_closed && gap_ok(gap, false) && tail == b"}";
            } else {
                depth -= 1;
                if depth == 0 {
                    // The record closes with its own kind of bracket.
                    let kinds = (text.get(start), text.get(at));
                    if !matches!(kinds, (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']'))) {
                        return false;
                    }
                    out.push(start..at + 1);
                    gap_from = at + 1;
                }
            }
        }
        base += BLOCK;
    }
    // The text ended inside the array.
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::value::RawValue;

    #[derive(Deserialize)]
    struct LogFile<'a> {
        #[serde(borrow, rename = "Records")]
        records: Vec<&'a RawValue>,
    }

    /// What a full parser finds: the records' texts, when the text is a log file.
    fn parsed(text: &[u8]) -> Option<Vec<&[u8]>> {
        let log: LogFile<'_> = serde_json::from_slice(text).ok()?;
        Some(log.records.iter().map(|r| r.get().as_bytes()).collect())
    }

    /// The records `split` finds, checked to be those it finds word by word.
    fn split_texts(text: &[u8]) -> Option<Vec<&[u8]>> {
        let mut out = Vec::new();
        let found = split(text, &mut out).then(|| out.clone());
        let mut by_word = Vec::new();
        let found_by_word = split_with(text, &mut by_word, masks_by_word).then_some(by_word);
        assert_eq!(found, found_by_word);
        found.map(|ranges| ranges.into_iter().map(|r| &text[r]).collect())
    }

    #[test]
    fn records_are_the_parsers_records() {
        let text = br#" { "Records" : [ {"a":"}]\"{[","b":[1,{"c":"\\"}]} ,
            {"eventSource":"ssm.amazonaws.com"},[1,2] ] }
        "#;
        let got = split_texts(text).unwrap();
        assert_eq!(got, parsed(text).unwrap());
        assert_eq!(got.len(), 3);
        assert_eq!(
            split_texts(br#"{"Records":[]}"#).unwrap(),
            Vec::<&[u8]>::new()
        );
    }

    #[test]
    fn anything_but_a_log_files_structure_is_refused() {
        for text in [
            &br#"{"Records":[{"a":1}]"#[..],      // cut off
            br#"{"Records":[{"a":1}]}, "#,        // something after
            br#"{"Records":[{"a":1}],"x":1}"#,    // another key
            br#"{"x":1,"Records":[{"a":1}]}"#,    // another key first
            br#"{"Records":[{"a":1},]}"#,         // a trailing comma
            br#"{"Records":[,{"a":1}]}"#,         // a leading comma
            br#"{"Records":[{"a":1}{"b":2}]}"#,   // no comma
            br#"{"Records":[{"a":1},,{"b":2}]}"#, // two commas
            br#"{"Records":["x",{"a":1}]}"#,      // a string record
            br#"{"Records":[1]}"#,                // a number record
            br#"{"Records":[{"a":"]}"]"#,         // the string never closes
            br#"{"Records":[{"a":[1}]}"#,         // a record closed by the wrong kind
            br#"{"Records":[{"a":1]]}"#,          // a record closed by the wrong kind
            br#"{"Records":[{"a":1}}}"#,          // the array closed by the wrong kind
            br#"{"Records":[{"a":1}]]"#,          // the object closed by the wrong kind
            br#"{"Rec\u006frds":[{"a":1}]}"#,     // an escaped key
            br#"["Records"]"#,
            b"",
        ] {
            assert!(
                split_texts(text).is_none(),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    /// Escapes are followed across blocks: a run of backslashes that ends a block decides
    /// whether the next block's first quote ends the string.
    #[test]
    fn escapes_are_followed_across_blocks() {
        for pad in 0..80 {
            for slashes in 0..5 {
                let inner = format!("{}{}", "x".repeat(pad), "\\\\".repeat(slashes));
                let text = format!(r#"{{"Records":[{{"a":"{inner}\"]}}\\"}},{{"b":"{inner}"}}]}}"#);
                assert_eq!(
                    split_texts(text.as_bytes()),
                    parsed(text.as_bytes()),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn the_word_masks_are_the_vector_masks() {
        let mut block = [0u8; BLOCK];
        for (i, b) in block.iter_mut().enumerate() {
            *b = b"\"\\{}[]a\x7b\xfb\xdb\x00\xa2"[i % 12];
        }
        assert_eq!(masks_by_word(&block), masks(&block));
        // Every byte value in every position.
        for v in 0..=255u8 {
            let mut block = [b'x'; BLOCK];
            for (i, b) in block.iter_mut().enumerate() {
                if i % 3 == usize::from(v) % 3 {
                    *b = v;
                }
            }
            assert_eq!(masks_by_word(&block), masks(&block), "byte {v:#x}");
        }
    }

    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("1".to_string()),
            Just("null".to_string()),
            "[a-z\\[\\]{}\"\\\\ ,:]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-z\"\\\\{]{0,6}", inner), 0..4).prop_map(|v| {
                    let members: Vec<String> = v
                        .iter()
                        .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    proptest! {
        /// On log files of any records, `split` finds the full parser's records; on any
        /// text, when it accepts, the ranges it gives are the parser's records or the text is
        /// not JSON at all (it never finds different records in valid JSON).
        #[test]
        fn split_agrees_with_the_parser(
            records in prop::collection::vec(json_value(), 0..6),
            space in "[ \n]{0,2}",
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let objects: Vec<String> = records
                .iter()
                .map(|r| if r.starts_with('{') || r.starts_with('[') { r.clone() } else { format!("{{\"v\":{r}}}") })
                .collect();
            let text = format!("{{{space}\"Records\"{space}:[{}]{space}}}", objects.join(&format!("{space},")));
            prop_assert_eq!(split_texts(text.as_bytes()), parsed(text.as_bytes()));
            // Cut short or one byte changed: where both accept, they agree.
            let cut_text = &text.as_bytes()[..cut.index(text.len())];
            prop_assert!(split_texts(cut_text).is_none());
            let mut changed = text.clone().into_bytes();
            let at = flip.index(changed.len());
            changed[at] = b"\"{}[],\\x"[at % 8];
            if let (Some(a), Some(b)) = (split_texts(&changed), parsed(&changed)) {
                prop_assert_eq!(a, b);
            }
        }
    }
}
