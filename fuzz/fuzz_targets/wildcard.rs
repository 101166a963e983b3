//! The wildcard matcher against a plain dynamic-programming reference, on arbitrary patterns
//! and texts, in every flavour and case mode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::iam::wildcard::{fold, items, tokenize, Flavor, Item, Pattern};

/// Classic O(pattern × text) matching over compiled items.
fn reference(items: &[Item], text: &[char]) -> bool {
    let accepts = |it: Item, c: char| match it {
        Item::Lit(l) => l == c,
        Item::One { colon } | Item::Star { colon } => colon || c != ':',
    };
    // dp[j]: items[..i] match text[..j].
    let mut dp = vec![false; text.len() + 1];
    dp[0] = true;
    for &it in items {
        let mut next = vec![false; text.len() + 1];
        match it {
            Item::Star { .. } => {
                next[0] = dp[0];
                for j in 1..=text.len() {
                    next[j] = dp[j] || (next[j - 1] && accepts(it, text[j - 1]));
                }
            }
            _ => {
                for j in 1..=text.len() {
                    next[j] = dp[j - 1] && accepts(it, text[j - 1]);
                }
            }
        }
        dp = next;
    }
    dp[text.len()]
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    let Some((pattern, text)) = s.split_once('\u{0}') else {
        return;
    };
    if pattern.chars().count() > 64 || text.chars().count() > 256 {
        return;
    }
    let flavor = [Flavor::Glob, Flavor::ResourceArn, Flavor::ArnCondition][usize::from(mode % 3)];
    let ignore_case = mode & 4 != 0;
    let mut compiled = items(&tokenize(pattern), flavor);
    let folded: Vec<char> = if ignore_case {
        for it in &mut compiled {
            if let Item::Lit(c) = it {
                *c = fold(*c);
            }
        }
        text.chars().map(fold).collect()
    } else {
        text.chars().collect()
    };
    let expected = reference(&compiled, &folded);
    let got = Pattern::new(pattern, flavor, ignore_case).matches(text);
    assert_eq!(
        got, expected,
        "{flavor:?} ignore_case={ignore_case} {pattern:?} vs {text:?}"
    );
});
