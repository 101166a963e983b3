//! Interning: strings policies repeat endlessly (`ssm:SendCommand`, `aws:SourceIp`, their
//! lowercase forms) shared instead of allocated per policy.

use std::borrow::Cow;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use crate::iam::catalog::{GLOBAL_KEYS, SSM_ACTIONS, SSM_CONDITION_KEYS};

struct Table {
    /// Known action and condition key names, as AWS spells them and lowercased.
    interned: FxHashMap<String, ()>,
    /// Known condition keys as AWS spells them, with their lowercase forms.
    keys: FxHashMap<&'static str, String>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut interned = FxHashMap::default();
        let mut keys = FxHashMap::default();
        let exact_keys = GLOBAL_KEYS
            .iter()
            .map(|k| k.name)
            .chain(SSM_CONDITION_KEYS.iter().copied())
            .filter(|k| !k.ends_with('/'));
        for k in exact_keys {
            interned.insert(k.to_string(), ());
            interned.insert(k.to_ascii_lowercase(), ());
            keys.insert(k, k.to_ascii_lowercase());
        }
        for a in SSM_ACTIONS {
            interned.insert(format!("ssm:{a}"), ());
        }
        Table { interned, keys }
    })
}

/// A shared copy of `text` when it is a known action or condition key name (exact spelling).
pub fn interned(text: &str) -> Option<&'static str> {
    table()
        .interned
        .get_key_value(text)
        .map(|(k, _)| k.as_str())
}

/// A known condition key (exact spelling) and its lowercase form, both shared.
pub fn interned_key(key: &str) -> Option<(&'static str, &'static str)> {
    table()
        .keys
        .get_key_value(key)
        .map(|(k, lower)| (*k, lower.as_str()))
}

/// `text` as a shared string when known, otherwise an owned copy.
pub fn intern(text: &str) -> Cow<'static, str> {
    match interned(text) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_shared() {
        assert_eq!(interned("ssm:SendCommand"), Some("ssm:SendCommand"));
        assert_eq!(interned("aws:sourceip"), Some("aws:sourceip"));
        assert_eq!(interned("ssm:Sendcommand"), None);
        assert!(matches!(intern("aws:SourceVpce"), Cow::Borrowed(_)));
        assert_eq!(
            interned_key("aws:SourceVpce"),
            Some(("aws:SourceVpce", "aws:sourcevpce"))
        );
        assert_eq!(interned_key("aws:sourcevpce"), None, "exact spelling only");
        assert!(matches!(intern("acme:Thing"), Cow::Owned(_)));
    }
}
