//! Wildcard patterns (`*` and `?`) as IAM uses them in actions, resources and `*Like`
//! conditions, compiled once and matched in time linear in the text.
//!
//! Three flavours share one engine:
//! - plain globs (`Action`, `StringLike`): `*` and `?` match any character;
//! - `Resource` ARNs (IAM JSON policy elements: Resource, "Using wildcards in resource ARNs"):
//!   wildcards stay inside one colon-separated segment, except that a `*` that is the last
//!   character of a segment "can expand to match beyond colon boundaries"; the sixth segment
//!   (the resource id, which may itself contain colons) is matched as a plain glob;
//! - `Arn*` condition values (IAM condition operators, "Amazon Resource Name (ARN) condition
//!   operators"): "each of the six colon-delimited components of the ARN is checked
//!   separately", so wildcards in the first five segments never cross a colon.
//!
//! Matching strips the literal prefix and suffix, then runs a bit-parallel NFA over the middle,
//! so adversarial patterns such as `*a*a*a*...b` cost O(text × ⌈items/64⌉), never exponential.
//!
//! Why hand-written and not anchored `regex-lite` (which the rare shapes, `?` and stars that
//! may not cross a colon, could compile to): measured side by side (`cargo bench -p
//! tagwatch-core -- wildcard_rare_shapes`, README "Performance"), this engine matches those
//! shapes 13–25× faster on ARN-sized texts and 340× faster on a 2 KB adversarial text, and
//! compiles them 7–15× faster (compiling is on every policy load, matching on every decision).
//! Its correctness is held by the `wildcard` fuzz target, which compares it with a plain
//! dynamic-programming matcher over the same items in every flavour and case mode.

use std::borrow::Cow;

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A literal character (already case-folded for case-insensitive patterns).
    Lit(char),
    /// `?`: exactly one character; `colon` says whether that character may be `:`.
    One { colon: bool },
    /// `*`: zero or more characters; `colon` says whether they may include `:`.
    Star { colon: bool },
}

/// A token of a pattern before the ARN rules decide which wildcards may cross a colon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    Lit(char),
    One,
    Star,
}

/// How wildcards treat the colons of an ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Wildcards match any character.
    Glob,
    /// The `Resource` element rules.
    ResourceArn,
    /// The `ArnEquals` / `ArnLike` rules.
    ArnCondition,
}

/// Splits a pattern string into tokens: `*` and `?` are wildcards, everything else literal.
pub fn tokenize(pattern: &str) -> Vec<Token> {
    let mut out = Vec::with_capacity(pattern.len());
    out.extend(pattern.chars().map(|c| match c {
        '*' => Token::Star,
        '?' => Token::One,
        c => Token::Lit(c),
    }));
    out
}

/// Applies the flavour's colon rules to tokens.
pub fn items(tokens: &[Token], flavor: Flavor) -> Vec<Item> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut segment = 0usize; // number of literal colons seen so far
    for (i, tok) in tokens.iter().enumerate() {
        let in_id = flavor == Flavor::Glob || segment >= 5;
        match *tok {
            Token::Lit(c) => {
                if c == ':' {
                    segment += 1;
                }
                out.push(Item::Lit(c));
            }
            Token::One => out.push(Item::One { colon: in_id }),
            Token::Star => {
                let segment_last = matches!(tokens.get(i + 1), None | Some(Token::Lit(':')));
                let colon = in_id || (flavor == Flavor::ResourceArn && segment_last);
                out.push(Item::Star { colon });
            }
        }
    }
    out
}

/// The literal pieces between stars, when every star may match anything under `flavor` and
/// there is no `?`; `None` otherwise.
fn segments(pattern: &str, flavor: Flavor) -> Option<Box<[(usize, usize)]>> {
    let bytes = pattern.as_bytes();
    let mut ranges = Vec::with_capacity(4);
    let mut segment = 0usize;
    let mut start = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'?' => return None,
            b'*' => {
                let segment_last = matches!(bytes.get(i + 1), None | Some(b':'));
                let free = flavor == Flavor::Glob
                    || segment >= 5
                    || (flavor == Flavor::ResourceArn && segment_last);
                if !free {
                    return None;
                }
                ranges.push((start, i));
                start = i + 1;
            }
            b':' => segment += 1,
            _ => {}
        }
    }
    ranges.push((start, bytes.len()));
    Some(ranges.into_boxed_slice())
}

/// Glob matching of literal pieces separated by unrestricted stars: the first piece anchors at
/// the start, the last at the end, and the middle ones are found leftmost-first (which is
/// optimal when stars match anything).
fn match_segments(source: &str, ranges: &[(usize, usize)], text: &str) -> bool {
    let piece = |&(a, b): &(usize, usize)| source.get(a..b).unwrap_or_default();
    let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
        return false;
    };
    let (head, tail) = (piece(first), piece(last));
    if ranges.len() < 2 || text.len() < head.len() + tail.len() {
        return false;
    }
    if !text.starts_with(head) || !text.ends_with(tail) {
        return false;
    }
    let Some(mut rest) = text.get(head.len()..text.len() - tail.len()) else {
        return false;
    };
    for r in ranges.get(1..ranges.len() - 1).unwrap_or_default() {
        let p = piece(r);
        match rest.find(p) {
            Some(i) => rest = rest.get(i + p.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    true
}

/// [`items`] straight from a pattern string (no policy variables involved).
fn items_of_str(pattern: &str, flavor: Flavor) -> Vec<Item> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut segment = 0usize;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let in_id = flavor == Flavor::Glob || segment >= 5;
        out.push(match c {
            '*' => {
                let segment_last = matches!(chars.peek(), None | Some(':'));
                Item::Star {
                    colon: in_id || (flavor == Flavor::ResourceArn && segment_last),
                }
            }
            '?' => Item::One { colon: in_id },
            c => {
                if c == ':' {
                    segment += 1;
                }
                Item::Lit(c)
            }
        });
    }
    out
}

/// Case folding used by case-insensitive patterns (IAM action names).
pub fn fold(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => l,
            _ => c,
        }
    }
}

fn item_accepts(item: Item, c: char) -> bool {
    match item {
        Item::Lit(l) => l == c,
        Item::One { colon } | Item::Star { colon } => colon || c != ':',
    }
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: Cow<'static, str>,
    ignore_case: bool,
    shape: Shape,
}

#[derive(Debug, Clone)]
enum Shape {
    /// No wildcard: the pattern's own source (ASCII when the pattern ignores case).
    SourceExact,
    /// The source's first `n` bytes followed by one `*` that may match anything (ASCII when
    /// the pattern ignores case).
    SourcePrefix(usize),
    /// Stars that may all match anything, no `?`, case-sensitive: literal pieces of the source
    /// (byte ranges), matched as prefix, suffix and leftmost occurrences in between. `str::find`
    /// is the two-way algorithm, so matching stays linear in the text.
    Segments(Box<[(usize, usize)]>),
    /// No wildcard at all.
    Exact(String),
    /// A literal followed by one `*` that may match anything.
    Prefix(String),
    /// A lone `*` that may match anything.
    Anything,
    /// No `*`: literals and `?`, one item per character.
    Fixed(Vec<Item>),
    /// Literal/`?` prefix and suffix around a middle that starts and ends with `*`.
    General {
        /// All items; `items[..first]` is the prefix, `items[last + 1..]` the suffix.
        items: Vec<Item>,
        first: usize,
        last: usize,
        nfa: Box<Nfa>,
    },
}

impl Pattern {
    /// Compiles a pattern string with the given flavour.
    pub fn new(pattern: &str, flavor: Flavor, ignore_case: bool) -> Self {
        // Fast paths for the shapes nearly every policy uses: no wildcard at all, and a single
        // trailing `*` (which may cross colons in every flavour but `ArnCondition`).
        match pattern.bytes().position(|b| b == b'*' || b == b'?') {
            None => return Self::literal(pattern, ignore_case),
            Some(pos) if pos + 1 == pattern.len() && pattern.ends_with('*') => {
                let head = pattern.get(..pos).unwrap_or_default();
                let arn_segment = flavor == Flavor::ArnCondition && head.matches(':').count() < 5;
                if !arn_segment && (!ignore_case || head.is_ascii()) {
                    return Pattern {
                        source: Cow::Owned(pattern.to_string()),
                        ignore_case,
                        shape: if head.is_empty() {
                            Shape::Anything
                        } else {
                            Shape::SourcePrefix(pos)
                        },
                    };
                }
            }
            Some(_) => {}
        }
        if !ignore_case {
            if let Some(ranges) = segments(pattern, flavor) {
                return Pattern {
                    source: Cow::Owned(pattern.to_string()),
                    ignore_case,
                    shape: Shape::Segments(ranges),
                };
            }
        }
        Self::from_items(pattern, items_of_str(pattern, flavor), ignore_case)
    }

    /// A pattern that matches only `text` itself (no wildcards).
    pub fn literal(text: &str, ignore_case: bool) -> Self {
        if !ignore_case || text.is_ascii() {
            return Pattern {
                source: crate::iam::intern::intern(text),
                ignore_case,
                shape: Shape::SourceExact,
            };
        }
        let folded: String = if ignore_case {
            text.chars().map(fold).collect()
        } else {
            text.to_string()
        };
        Pattern {
            source: Cow::Owned(text.to_string()),
            ignore_case,
            shape: Shape::Exact(folded),
        }
    }

    /// Compiles already tokenized input (policy-variable expansion produces literal `*`).
    /// `source` is kept for display only.
    pub fn from_tokens(source: &str, tokens: &[Token], flavor: Flavor, ignore_case: bool) -> Self {
        Self::from_items(source, items(tokens, flavor), ignore_case)
    }

    fn from_items(source: &str, mut items: Vec<Item>, ignore_case: bool) -> Self {
        if ignore_case {
            for it in &mut items {
                if let Item::Lit(c) = it {
                    *c = fold(*c);
                }
            }
        }
        // Adjacent stars are one star that may cross a colon if either may.
        items.dedup_by(|next, kept| match (next, kept) {
            (Item::Star { colon: b }, Item::Star { colon: a }) => {
                *a |= *b;
                true
            }
            _ => false,
        });
        Pattern {
            source: Cow::Owned(source.to_string()),
            ignore_case,
            shape: Shape::build(items),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern has a wildcard.
    pub fn has_wildcard(&self) -> bool {
        !matches!(self.shape, Shape::Exact(_) | Shape::SourceExact)
    }

    /// Does `text` match the whole pattern?
    pub fn matches(&self, text: &str) -> bool {
        if self.ignore_case && !text.is_ascii() {
            let folded: String = text.chars().map(fold).collect();
            return self.matches_folded(&folded);
        }
        self.matches_folded(text)
    }

    /// `text` is ASCII when `ignore_case` (or already folded).
    fn matches_folded(&self, text: &str) -> bool {
        match &self.shape {
            Shape::Segments(ranges) => match_segments(&self.source, ranges, text),
            Shape::SourceExact => {
                if self.ignore_case {
                    self.source.eq_ignore_ascii_case(text)
                } else {
                    self.source == text
                }
            }
            Shape::SourcePrefix(n) => {
                let (Some(lit), Some(head)) = (self.source.get(..*n), text.get(..*n)) else {
                    return false;
                };
                if self.ignore_case {
                    head.eq_ignore_ascii_case(lit)
                } else {
                    head == lit
                }
            }
            Shape::Exact(lit) => {
                if self.ignore_case {
                    lit.eq_ignore_ascii_case(text)
                } else {
                    lit == text
                }
            }
            Shape::Prefix(lit) => {
                text.len() >= lit.len()
                    && text.get(..lit.len()).is_some_and(|head| {
                        if self.ignore_case {
                            head.eq_ignore_ascii_case(lit)
                        } else {
                            head == lit
                        }
                    })
            }
            Shape::Anything => true,
            Shape::Fixed(items) => {
                let mut chars = text.chars();
                for &it in items {
                    match chars.next() {
                        Some(c) if item_accepts(it, self.case(c)) => {}
                        _ => return false,
                    }
                }
                chars.next().is_none()
            }
            Shape::General {
                items,
                first,
                last,
                nfa,
            } => {
                let prefix = items.get(..*first).unwrap_or_default();
                let suffix = items.get(last + 1..).unwrap_or_default();
                let mut rest = text;
                for &it in prefix {
                    let mut chars = rest.chars();
                    match chars.next() {
                        Some(c) if item_accepts(it, self.case(c)) => rest = chars.as_str(),
                        _ => return false,
                    }
                }
                for &it in suffix.iter().rev() {
                    let mut chars = rest.chars();
                    match chars.next_back() {
                        Some(c) if item_accepts(it, self.case(c)) => rest = chars.as_str(),
                        _ => return false,
                    }
                }
                nfa.run(rest, self.ignore_case)
            }
        }
    }

    fn case(&self, c: char) -> char {
        if self.ignore_case {
            fold(c)
        } else {
            c
        }
    }
}

impl Shape {
    fn build(items: Vec<Item>) -> Shape {
        let first_star = items.iter().position(|i| matches!(i, Item::Star { .. }));
        let Some(first) = first_star else {
            if items.iter().all(|i| matches!(i, Item::Lit(_))) {
                return Shape::Exact(
                    items
                        .iter()
                        .filter_map(|i| match i {
                            Item::Lit(c) => Some(*c),
                            _ => None,
                        })
                        .collect(),
                );
            }
            return Shape::Fixed(items);
        };
        let last = items
            .iter()
            .rposition(|i| matches!(i, Item::Star { .. }))
            .unwrap_or(first);
        let prefix = items.get(..first).unwrap_or_default();
        let middle = items.get(first..=last).unwrap_or_default();
        let suffix = items.get(last + 1..).unwrap_or_default();
        if middle == [Item::Star { colon: true }]
            && suffix.is_empty()
            && prefix.iter().all(|i| matches!(i, Item::Lit(_)))
        {
            if prefix.is_empty() {
                return Shape::Anything;
            }
            return Shape::Prefix(
                prefix
                    .iter()
                    .filter_map(|i| match i {
                        Item::Lit(c) => Some(*c),
                        _ => None,
                    })
                    .collect(),
            );
        }
        let nfa = Box::new(Nfa::new(middle));
        Shape::General {
            items,
            first,
            last,
            nfa,
        }
    }
}

/// Bit-parallel simulation of the Thompson NFA of a star-delimited middle.
///
/// Bit `i` (for `i < k`) is "about to match item `i`"; bit `k` is accept. A star item keeps its
/// bit on characters it accepts and passes it on by an ε-move; other items shift it forward.
/// Masks are kept per distinct literal character (a 128-entry class table for ASCII), so
/// compiling costs O(items) and about a kilobyte.
#[derive(Debug, Clone)]
struct Nfa {
    words: usize,
    accept_bit: usize,
    /// ASCII character to 1 + index of its literal mask (0: no literal item has it).
    class: [usize; 128],
    /// Non-ASCII literal characters and their literal-mask indexes.
    unicode: Vec<(char, usize)>,
    /// `words` words each: `?` items, `?` items that may match `:`, star items, star items
    /// that may match `:`, then one literal mask per distinct literal character.
    masks: Vec<u64>,
}

const ONES: usize = 0;
const ONES_COLON: usize = 1;
const STARS: usize = 2;
const STARS_COLON: usize = 3;
const LITERALS: usize = 4;

fn set_bit(words: &mut [u64], bit: usize) {
    if let Some(w) = words.get_mut(bit / 64) {
        *w |= 1u64 << (bit % 64);
    }
}

fn test_bit(words: &[u64], bit: usize) -> bool {
    words
        .get(bit / 64)
        .is_some_and(|w| w & (1u64 << (bit % 64)) != 0)
}

fn word(words: &[u64], i: usize) -> u64 {
    words.get(i).copied().unwrap_or(0)
}

impl Nfa {
    fn new(middle: &[Item]) -> Self {
        let k = middle.len();
        let words = (k + 1).div_ceil(64);
        let mut nfa = Nfa {
            words,
            accept_bit: k,
            class: [0; 128],
            unicode: Vec::new(),
            masks: vec![0; (LITERALS + k) * words],
        };
        let mut distinct = 0usize;
        for (bit, &item) in middle.iter().enumerate() {
            let row = match item {
                Item::Star { colon } => {
                    if colon {
                        nfa.set(STARS_COLON, bit);
                    }
                    STARS
                }
                Item::One { colon } => {
                    if colon {
                        nfa.set(ONES_COLON, bit);
                    }
                    ONES
                }
                Item::Lit(c) => {
                    let idx = nfa.literal_index(c).unwrap_or_else(|| {
                        let i = distinct;
                        distinct += 1;
                        if c.is_ascii() {
                            if let Some(slot) = nfa.class.get_mut(c as usize) {
                                // The index counts every distinct literal, non-ASCII ones
                                // too, so it is not bounded by 128.
                                *slot = i + 1;
                            }
                        } else {
                            nfa.unicode.push((c, i));
                        }
                        i
                    });
                    LITERALS + idx
                }
            };
            nfa.set(row, bit);
        }
        nfa.masks.truncate((LITERALS + distinct) * words);
        nfa
    }

    fn set(&mut self, row: usize, bit: usize) {
        let words = self.words;
        if let Some(r) = self.masks.get_mut(row * words..(row + 1) * words) {
            set_bit(r, bit);
        }
    }

    fn row(&self, row: usize) -> &[u64] {
        self.masks
            .get(row * self.words..(row + 1) * self.words)
            .unwrap_or_default()
    }

    fn literal_index(&self, c: char) -> Option<usize> {
        if c.is_ascii() {
            self.class
                .get(c as usize)
                .copied()
                .filter(|&x| x != 0)
                .map(|x| x - 1)
        } else {
            self.unicode.iter().find(|(u, _)| *u == c).map(|(_, i)| *i)
        }
    }

    /// The literal-advance mask row for `c` (empty when no literal item is `c`).
    fn lit(&self, c: char) -> &[u64] {
        self.literal_index(c)
            .map_or(&[][..], |i| self.row(LITERALS + i))
    }

    fn run(&self, text: &str, ignore_case: bool) -> bool {
        if self.words == 1 {
            return self.run_single(text, ignore_case);
        }
        let mut d = vec![0u64; self.words];
        set_bit(&mut d, 0);
        self.close(&mut d);
        let mut next = vec![0u64; self.words];
        for c in text.chars() {
            let c = if ignore_case { fold(c) } else { c };
            let lit = self.lit(c);
            let (ones, stars) = if c == ':' {
                (self.row(ONES_COLON), self.row(STARS_COLON))
            } else {
                (self.row(ONES), self.row(STARS))
            };
            let mut carry = 0u64;
            let mut any = 0u64;
            for (i, n) in next.iter_mut().enumerate() {
                let cur = word(&d, i);
                let moved = cur & (word(lit, i) | word(ones, i));
                *n = (moved << 1) | carry | (cur & word(stars, i));
                carry = moved >> 63;
                any |= *n;
            }
            std::mem::swap(&mut d, &mut next);
            if any == 0 {
                return false;
            }
            self.close(&mut d);
        }
        test_bit(&d, self.accept_bit)
    }

    /// ε-moves: a star may match nothing. Stars are never adjacent, so one hop suffices.
    fn close(&self, d: &mut [u64]) {
        let mut carry = 0u64;
        for (i, w) in d.iter_mut().enumerate() {
            let moved = *w & word(self.row(STARS), i);
            *w |= (moved << 1) | carry;
            carry = moved >> 63;
        }
    }

    fn run_single(&self, text: &str, ignore_case: bool) -> bool {
        let stars = word(self.row(STARS), 0);
        let stars_colon = word(self.row(STARS_COLON), 0);
        let ones = word(self.row(ONES), 0);
        let ones_colon = word(self.row(ONES_COLON), 0);
        let mut d: u64 = 1;
        d |= (d & stars) << 1;
        for c in text.chars() {
            let c = if ignore_case { fold(c) } else { c };
            let lit = word(self.lit(c), 0);
            let (one, stay) = if c == ':' {
                (ones_colon, stars_colon)
            } else {
                (ones, stars)
            };
            d = ((d & (lit | one)) << 1) | (d & stay);
            if d == 0 {
                return false;
            }
            d |= (d & stars) << 1;
        }
        d & (1u64 << self.accept_bit) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obviously correct (and slow) matcher the property tests hold the engine against.
    fn reference_match(items: &[Item], text: &[char]) -> bool {
        // table[i][j]: items[i..] match text[j..]
        let n = items.len();
        let m = text.len();
        let mut table = vec![vec![false; m + 1]; n + 1];
        table[n][m] = true;
        for i in (0..n).rev() {
            for j in (0..=m).rev() {
                table[i][j] = match items[i] {
                    Item::Star { .. } => {
                        table[i + 1][j]
                            || (j < m && item_accepts(items[i], text[j]) && table[i][j + 1])
                    }
                    it => j < m && item_accepts(it, text[j]) && table[i + 1][j + 1],
                };
            }
        }
        table[0][0]
    }

    fn glob(p: &str) -> Pattern {
        Pattern::new(p, Flavor::Glob, false)
    }

    #[test]
    fn glob_basics() {
        assert!(glob("*").matches(""));
        assert!(glob("*").matches("anything:at/all"));
        assert!(glob("abc").matches("abc"));
        assert!(!glob("abc").matches("abcd"));
        assert!(glob("a?c").matches("abc"));
        assert!(!glob("a?c").matches("ac"));
        assert!(glob("a*").matches("a"));
        assert!(glob("*c").matches("abc"));
        assert!(glob("a*c").matches("ac"));
        assert!(glob("a*b*c").matches("a-b-b-c"));
        assert!(!glob("a*b*c").matches("a-c-b"));
        assert!(
            glob("??").matches("éé"),
            "`?` is one character, not one byte"
        );
        assert!(!glob("?").matches("éé"));
        assert!(glob("é*ü").matches("é---ü"));
        assert!(glob("*ü*").matches("aüb"));
        assert!(!glob("*ü*").matches("aub"));
    }

    #[test]
    fn an_ascii_literal_after_hundreds_of_distinct_non_ascii_literals_still_matches() {
        // The literal-mask index of `a` is 300 here: it once overflowed a byte and was lost.
        let many: String = (0x4e00u32..0x4e00 + 300)
            .filter_map(char::from_u32)
            .collect();
        let p = glob(&format!("*?{many}a*"));
        assert!(p.matches(&format!("x{many}a")));
        assert!(p.matches(&format!("-x{many}a-")));
        assert!(!p.matches(&format!("x{many}b")));
    }

    #[test]
    fn case_insensitive_actions() {
        // IAM JSON policy elements: Action — action names are case-insensitive.
        let p = Pattern::new("ssm:send*", Flavor::Glob, true);
        assert!(p.matches("SSM:SendCommand"));
        assert!(Pattern::new("SSM:StartSession", Flavor::Glob, true).matches("ssm:startsession"));
        assert!(Pattern::new("ssm:*Session", Flavor::Glob, true).matches("ssm:STARTSESSION"));
        assert!(!Pattern::new("ssm:*Session", Flavor::Glob, true).matches("ssm:SendCommand"));
        assert!(Pattern::new("É*", Flavor::Glob, true).matches("éa"));
    }

    #[test]
    fn resources_are_case_sensitive() {
        let p = Pattern::new("arn:aws:ec2:*:*:instance/i-ABC", Flavor::ResourceArn, false);
        assert!(p.matches("arn:aws:ec2:us-east-1:111122223333:instance/i-ABC"));
        assert!(!p.matches("arn:aws:ec2:us-east-1:111122223333:instance/i-abc"));
    }

    #[test]
    fn resource_wildcards_stay_in_their_segment_unless_last() {
        // IAM JSON policy elements: Resource — "Using wildcards in resource ARNs": wildcards are
        // used within segments; a `*` that is the last character of a segment can expand to
        // match beyond colon boundaries.
        let mid = Pattern::new(
            "arn:aws:ec2:us-*-1:111122223333:instance/*",
            Flavor::ResourceArn,
            false,
        );
        assert!(mid.matches("arn:aws:ec2:us-east-1:111122223333:instance/i-1"));
        assert!(!mid.matches("arn:aws:ec2:us-x:y-1:111122223333:instance/i-1"));
        let q = Pattern::new(
            "arn:aws:ec2:us-east-?:*:instance/*",
            Flavor::ResourceArn,
            false,
        );
        assert!(q.matches("arn:aws:ec2:us-east-1:1:instance/i-1"));
        assert!(!q.matches("arn:aws:ec2:us-east-::1:instance/i-1"));
        let trailing = Pattern::new("arn:aws:ssm:*", Flavor::ResourceArn, false);
        assert!(trailing.matches("arn:aws:ssm:us-east-1::document/AWS-RunShellScript"));
        let id = Pattern::new("arn:aws:logs:*:*:log-group:a*b", Flavor::ResourceArn, false);
        assert!(
            id.matches("arn:aws:logs:r:1:log-group:a:x:b"),
            "the resource id is a plain glob"
        );
    }

    #[test]
    fn arn_condition_checks_segments_separately() {
        // IAM condition operators, ARN condition operators: the documented example.
        let p = Pattern::new(
            "arn:aws:someservice:*:111122223333:finance/*",
            Flavor::ArnCondition,
            false,
        );
        let v = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt";
        assert!(!p.matches(v));
        assert!(glob("arn:aws:someservice:*:111122223333:finance/*").matches(v));
        assert!(p.matches("arn:aws:someservice:us-east-2:111122223333:finance/x:y"));
    }

    #[test]
    fn adversarial_pattern_is_fast_and_correct() {
        let pattern = format!("{}b", "*a".repeat(200));
        let text = "a".repeat(20_000);
        let p = glob(&pattern);
        assert!(!p.matches(&text));
        let text_b = format!("{text}b");
        assert!(p.matches(&text_b));
    }

    #[test]
    fn long_middles_use_several_words() {
        let pattern = format!("x*{}*y", "ab?".repeat(40)); // middle of 122 items
        let p = glob(&pattern);
        let hit = format!("x--{}--y", "abc".repeat(40));
        let miss = format!("x--{}--y", "abc".repeat(39));
        assert!(p.matches(&hit));
        assert!(!p.matches(&miss));
    }

    #[test]
    fn literal_patterns_ignore_wildcard_characters() {
        let p = Pattern::literal("a*b", false);
        assert!(p.matches("a*b"));
        assert!(!p.matches("axb"));
        let t = Pattern::from_tokens(
            "a${*}*",
            &[Token::Lit('a'), Token::Lit('*'), Token::Star],
            Flavor::Glob,
            false,
        );
        assert!(t.matches("a*zz"));
        assert!(!t.matches("azz"));
    }

    fn arb_tokens() -> impl Strategy<Value = Vec<Token>> {
        prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(vec!['a', 'b', ':', 'é', 'A']).prop_map(Token::Lit),
                1 => Just(Token::One),
                2 => Just(Token::Star),
            ],
            0..12,
        )
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!['a', 'b', ':', 'é', 'A', 'É']),
            0..16,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn items_of_str_agrees_with_tokens(tokens in arb_tokens(), flavor in prop_oneof![Just(Flavor::Glob), Just(Flavor::ResourceArn), Just(Flavor::ArnCondition)]) {
            let source: String = tokens.iter().map(|t| match t { Token::Lit(c) => *c, Token::Star => '*', Token::One => '?' }).collect();
            prop_assert_eq!(items_of_str(&source, flavor), items(&tokens, flavor));
        }

        #[test]
        fn fast_paths_agree_with_the_general_compiler(tokens in arb_tokens(), text in arb_text(), flavor in prop_oneof![Just(Flavor::Glob), Just(Flavor::ResourceArn), Just(Flavor::ArnCondition)], ignore_case in any::<bool>()) {
            let source: String = tokens.iter().map(|t| match t { Token::Lit(c) => *c, Token::Star => '*', Token::One => '?' }).collect();
            let fast = Pattern::new(&source, flavor, ignore_case);
            let general = Pattern::from_tokens(&source, &tokens, flavor, ignore_case);
            prop_assert_eq!(fast.matches(&text), general.matches(&text), "pattern {:?} text {:?}", source, text);
        }

        #[test]
        fn engine_agrees_with_reference(tokens in arb_tokens(), text in arb_text(), flavor in prop_oneof![Just(Flavor::Glob), Just(Flavor::ResourceArn), Just(Flavor::ArnCondition)], ignore_case in any::<bool>()) {
            let mut its = items(&tokens, flavor);
            let folded_text: Vec<char> = if ignore_case { text.chars().map(fold).collect() } else { text.chars().collect() };
            if ignore_case {
                for it in &mut its { if let Item::Lit(c) = it { *c = fold(*c); } }
            }
            let expected = reference_match(&its, &folded_text);
            let p = Pattern::from_tokens("", &tokens, flavor, ignore_case);
            prop_assert_eq!(p.matches(&text), expected, "tokens {:?} text {:?}", tokens, text);
        }

        #[test]
        fn long_patterns_agree_with_reference(tokens in prop::collection::vec(prop_oneof![4 => prop::sample::select(vec!['a','b']).prop_map(Token::Lit), 1 => Just(Token::One), 1 => Just(Token::Star)], 60..150), text in prop::collection::vec(prop::sample::select(vec!['a','b']), 0..200).prop_map(|v| v.into_iter().collect::<String>())) {
            let its = items(&tokens, Flavor::Glob);
            let chars: Vec<char> = text.chars().collect();
            let p = Pattern::from_tokens("", &tokens, Flavor::Glob, false);
            prop_assert_eq!(p.matches(&text), reference_match(&its, &chars));
        }
    }
}
