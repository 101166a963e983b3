//! A small JSON parser that keeps the byte span of every value and key.
//!
//! `serde_json` forgets where a value came from once parsed; policy validation must point at
//! the offending element by JSON path *and* line/column, so the core parses documents itself.
//! The parser is strict RFC 8259 JSON, iterative in spirit (recursion is bounded by
//! [`MAX_DEPTH`]), and never panics on any input. The tree lives in a bump arena owned by the
//! caller: strings borrow from the source text (escaped ones are copied into the arena) and
//! containers are arena slices, so a document costs a handful of allocations, not one per node.

use std::fmt;

pub use bumpalo::Bump;

/// Deepest nesting accepted; deeper input is rejected instead of exhausting the stack.
pub const MAX_DEPTH: usize = 128;

/// Byte range of a value in its source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// A parsed JSON value with its span. Strings without escapes borrow from the source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Json<'a> {
    pub kind: JsonKind<'a>,
    pub span: Span,
}

/// The shape of a [`Json`] value. Numbers keep their source text so that no precision is
/// lost before the policy layer decides how to read them.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonKind<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    String(&'a str),
    Array(&'a [Json<'a>]),
    Object(&'a [Member<'a>]),
}

/// One `"key": value` pair of an object, in source order (duplicates are kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Member<'a> {
    pub key: &'a str,
    pub key_span: Span,
    pub value: Json<'a>,
}

/// A syntax error with the byte offset where it was detected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

impl<'a> Json<'a> {
    /// A short name of the value's type, for messages ("a string", "an array", ...).
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            JsonKind::Null => "null",
            JsonKind::Bool(_) => "a boolean",
            JsonKind::Number(_) => "a number",
            JsonKind::String(_) => "a string",
            JsonKind::Array(_) => "an array",
            JsonKind::Object(_) => "an object",
        }
    }

    /// The string content, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            JsonKind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&'a [Member<'a>]> {
        match &self.kind {
            JsonKind::Object(m) => Some(m),
            _ => None,
        }
    }

    /// First member named exactly `key`.
    pub fn get(&self, key: &str) -> Option<&'a Json<'a>> {
        self.as_object()?
            .iter()
            .find(|m| m.key == key)
            .map(|m| &m.value)
    }

    /// Converts to a `serde_json::Value` (for echoing input back in output).
    pub fn to_value(&self) -> serde_json::Value {
        match &self.kind {
            JsonKind::Null => serde_json::Value::Null,
            JsonKind::Bool(b) => serde_json::Value::Bool(*b),
            JsonKind::Number(n) => serde_json::from_str(n).unwrap_or(serde_json::Value::Null),
            JsonKind::String(s) => serde_json::Value::String(s.to_string()),
            JsonKind::Array(items) => {
                serde_json::Value::Array(items.iter().map(Json::to_value).collect())
            }
            JsonKind::Object(members) => serde_json::Value::Object(
                members
                    .iter()
                    .map(|m| (m.key.to_string(), m.value.to_value()))
                    .collect(),
            ),
        }
    }
}

/// Parses one JSON document into `arena`; anything but whitespace after it is an error.
pub fn parse<'a>(text: &'a str, arena: &'a Bump) -> Result<Json<'a>, SyntaxError> {
    let mut p = Parser {
        arena,
        bytes: text.as_bytes(),
        text,
        pos: 0,
        members: Vec::new(),
        items: Vec::new(),
    };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos < p.bytes.len() {
        return Err(p.err("unexpected text after the JSON value"));
    }
    Ok(value)
}

struct Parser<'a> {
    arena: &'a Bump,
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
    /// Scratch stacks: members and items of the containers being parsed, moved into
    /// exactly-sized vectors when each container closes (one allocation per container).
    members: Vec<Member<'a>>,
    items: Vec<Json<'a>>,
}

impl<'a> Parser<'a> {
    fn err(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_literal(&mut self, lit: &str) -> Result<(), SyntaxError> {
        if self.bytes.get(self.pos..self.pos + lit.len()) == Some(lit.as_bytes()) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(self.err(format!("invalid literal; expected `{lit}`")))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json<'a>, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let start = self.pos;
        let kind = match self.peek() {
            None => return Err(self.err("unexpected end of input; expected a value")),
            Some(b'n') => {
                self.expect_literal("null")?;
                JsonKind::Null
            }
            Some(b't') => {
                self.expect_literal("true")?;
                JsonKind::Bool(true)
            }
            Some(b'f') => {
                self.expect_literal("false")?;
                JsonKind::Bool(false)
            }
            Some(b'"') => JsonKind::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => JsonKind::Number(self.number()?),
            Some(b'[') => self.array(depth)?,
            Some(b'{') => self.object(depth)?,
            Some(_) => {
                let shown = self.text.get(self.pos..).and_then(|s| s.chars().next());
                return Err(self.err(format!(
                    "unexpected character `{}`; expected a value",
                    shown.unwrap_or('?')
                )));
            }
        };
        Ok(Json {
            kind,
            span: Span {
                start,
                end: self.pos,
            },
        })
    }

    fn array(&mut self, depth: usize) -> Result<JsonKind<'a>, SyntaxError> {
        self.pos += 1; // '['
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(JsonKind::Array(&[]));
        }
        let base = self.items.len();
        loop {
            self.skip_ws();
            let item = self.value(depth + 1)?;
            self.items.push(item);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    let items = self.arena.alloc_slice_fill_iter(self.items.drain(base..));
                    return Ok(JsonKind::Array(items));
                }
                None => return Err(self.err("unexpected end of input inside an array")),
                Some(_) => return Err(self.err("expected `,` or `]` in an array")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<JsonKind<'a>, SyntaxError> {
        self.pos += 1; // '{'
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(JsonKind::Object(&[]));
        }
        let base = self.members.len();
        loop {
            self.skip_ws();
            let key_start = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key in an object"));
            }
            let key = self.string()?;
            let key_span = Span {
                start: key_start,
                end: self.pos,
            };
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected `:` after an object key"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            self.members.push(Member {
                key,
                key_span,
                value,
            });
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    let members = self.arena.alloc_slice_fill_iter(self.members.drain(base..));
                    return Ok(JsonKind::Object(members));
                }
                None => return Err(self.err("unexpected end of input inside an object")),
                Some(_) => return Err(self.err("expected `,` or `}` in an object")),
            }
        }
    }

    fn number(&mut self) -> Result<&'a str, SyntaxError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number: digits expected after `.`"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number: digits expected in the exponent"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
        }
        Ok(self.text.get(start..self.pos).unwrap_or_default())
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("truncated `\\u` escape"))?;
        let v = u32::from_str_radix(digits, 16)
            .map_err(|_| self.err("invalid `\\u` escape: four hex digits expected"))?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err("invalid `\\u` escape: four hex digits expected"));
        }
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<&'a str, SyntaxError> {
        self.pos += 1; // opening quote
        let start = self.pos;
        let run = self
            .bytes
            .get(start..)
            .unwrap_or_default()
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        if let Some(n) = run {
            if self.bytes.get(start + n) == Some(&b'"') {
                self.pos = start + n + 1;
                // INVARIANT: the run stops at an ASCII quote, so it ends on a char boundary.
                return Ok(self.text.get(start..start + n).unwrap_or_default());
            }
        }
        let owned = self.string_escaped()?;
        Ok(self.arena.alloc_str(&owned))
    }

    /// The slow path: a string with escapes (the position is just after the opening quote).
    fn string_escaped(&mut self) -> Result<String, SyntaxError> {
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            self.pos += self
                .bytes
                .get(run_start..)
                .unwrap_or_default()
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(self.bytes.len().saturating_sub(run_start));
            // INVARIANT: the run stops only at ASCII bytes, so it ends on a char boundary.
            out.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self
                        .peek()
                        .ok_or_else(|| self.err("unterminated escape in a string"))?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(self.err("unpaired surrogate in `\\u` escape"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("invalid low surrogate in `\\u` escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            let c = char::from_u32(code)
                                .ok_or_else(|| self.err("`\\u` escape is not a valid character"))?;
                            out.push(c);
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("invalid escape in a string"));
                        }
                    }
                }
                Some(_) => return Err(self.err("control character inside a string")),
            }
        }
    }
}

/// Maps byte offsets of one source text to 1-based line and column (in characters).
#[derive(Debug, Clone)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for LineCol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { line_starts }
    }

    /// Line and column of `offset` within `text` (the same text the index was built from).
    pub fn locate(&self, text: &str, offset: usize) -> LineCol {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = text
            .get(start..offset.min(text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        LineCol { line, column }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_values_with_spans() {
        let text = r#" {"a": [1, -2.5e3, "x\u00e9\n"], "b": {"c": null, "d": true}} "#;
        let arena = Bump::new();
        let v = parse(text, &arena).unwrap();
        let a = v.get("a").unwrap();
        assert_eq!(
            &text[a.span.start..a.span.end],
            r#"[1, -2.5e3, "x\u00e9\n"]"#
        );
        match &a.kind {
            JsonKind::Array(items) => {
                assert_eq!(items[1].kind, JsonKind::Number("-2.5e3"));
                assert_eq!(items[2].as_str(), Some("xé\n"));
            }
            other => panic!("not an array: {other:?}"),
        }
        assert_eq!(
            v.get("b").unwrap().get("d").unwrap().kind,
            JsonKind::Bool(true)
        );
    }

    #[test]
    fn surrogate_pairs_decode() {
        let arena = Bump::new();
        let v = parse(r#""\ud83d\ude00""#, &arena).unwrap();
        assert_eq!(v.as_str(), Some("😀"));
        assert!(parse(r#""\ud83d""#, &arena).is_err());
        assert!(parse(r#""\ude00""#, &arena).is_err());
    }

    #[test]
    fn keeps_duplicate_keys_in_order() {
        let arena = Bump::new();
        let v = parse(r#"{"k": 1, "k": 2}"#, &arena).unwrap();
        let members = v.as_object().unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[1].value.kind, JsonKind::Number("2"));
    }

    #[test]
    fn rejects_malformed_input_with_offsets() {
        for (text, offset) in [
            ("{\"a\" 1}", 5),
            ("[1,]", 3),
            ("01", 1),
            ("\"abc", 4),
            ("{} x", 3),
            ("nul", 0),
            ("[1 2]", 3),
            ("\"a\tb\"", 2),
            ("-", 1),
            ("1.", 2),
        ] {
            let e = parse(text, &Bump::new()).unwrap_err();
            assert_eq!(e.offset, offset, "{text:?}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        let e = parse(&text, &Bump::new()).unwrap_err();
        assert!(e.message.contains("nesting"), "{e}");
    }

    #[test]
    fn line_index_counts_lines_and_chars() {
        let text = "ab\néé\n  x";
        let idx = LineIndex::new(text);
        assert_eq!(idx.locate(text, 0), LineCol { line: 1, column: 1 });
        assert_eq!(idx.locate(text, 3), LineCol { line: 2, column: 1 });
        // 'x' is after two 2-byte chars and a newline: byte 10.
        assert_eq!(idx.locate(text, 10), LineCol { line: 3, column: 3 });
        assert_eq!(idx.locate(text, 999), LineCol { line: 3, column: 4 });
    }

    #[test]
    fn to_value_round_trips() {
        let text = r#"{"a":[1,2.5,"s",null,false],"b":{}}"#;
        let v = parse(text, &Bump::new()).unwrap().to_value();
        assert_eq!(v, serde_json::from_str::<serde_json::Value>(text).unwrap());
    }
}
