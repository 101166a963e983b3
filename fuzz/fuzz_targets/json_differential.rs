//! The spanned JSON parser against serde_json: the same inputs accepted and rejected, the same
//! values (objects: the last of duplicate keys, as serde_json keeps it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::json::{parse, Bump, MAX_DEPTH};

/// Nesting depth of the brackets outside strings (serde_json stops at 128 levels too, but
/// counts differently at the edge; deeper inputs are compared for rejection only).
fn depth(text: &str) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                d += 1;
                max = max.max(d);
            }
            b']' | b'}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let arena = Bump::new();
    let ours = parse(text, &arena);
    let theirs = serde_json::from_str::<serde_json::Value>(text);
    if depth(text) >= MAX_DEPTH - 1 {
        return;
    }
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => assert_eq!(&a.to_value(), b, "values differ for {text:?}"),
        (Err(_), Err(_)) => {}
        // serde_json (without arbitrary precision) rejects numbers beyond f64; the policy
        // layer reads number text itself.
        (Ok(_), Err(e)) if e.to_string().contains("number out of range") => {}
        (a, b) => panic!("accept/reject differ for {text:?}: ours {a:?}, serde_json {b:?}"),
    }
});
