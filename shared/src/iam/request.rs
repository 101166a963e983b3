//! The request an IAM decision is made about: action, resource and request context.

use std::collections::BTreeMap;

use serde::Serialize;

/// Values of one context key. A key with several values in the request is *multivalued*
/// (IAM: "Single-valued vs. multivalued context keys"); the distinction is the number of
/// values in the request, not in the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ContextValue {
    Single(String),
    Multi(Vec<String>),
}

impl ContextValue {
    /// All values as a slice.
    pub fn values(&self) -> &[String] {
        match self {
            ContextValue::Single(v) => std::slice::from_ref(v),
            ContextValue::Multi(vs) => vs,
        }
    }
}

/// Request context keys and values. Key names are case-insensitive (IAM JSON policy elements:
/// Condition — "Condition key names are not case-sensitive"), so keys are stored lowercased,
/// with the spelling first given kept for display.
///
/// A context also says which absent keys are *unknown* rather than absent: the request had a
/// value the caller of the evaluator cannot tell (an instance's tags that could not be read,
/// `aws:ViaAWSService` for a session a service assumed). [`crate::iam::evaluator::evaluate_bounded`]
/// decides such a request both ways and says whether the verdict depends on them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    entries: BTreeMap<String, (String, ContextValue)>,
    /// Lowercased keys whose value is unknown; an entry ending in `/` covers every key it
    /// starts (`ssm:resourcetag/`).
    unknown: Vec<String>,
    /// `Some`: every absent key is unknown except these (lowercase, `/`-prefixes allowed):
    /// the keys a CloudTrail record settles, shared by every context built from a record.
    settled: Option<&'static [&'static str]>,
    /// Further keys known absent (lowercased, `/`-prefixes allowed).
    absent: Vec<String>,
}

fn covers<S: AsRef<str>>(list: &[S], lower: &str) -> bool {
    list.iter().any(|k| {
        let k = k.as_ref();
        k == lower || (k.ends_with('/') && lower.starts_with(k))
    })
}

impl RequestContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued key, replacing any previous value.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.entries.insert(
            key.to_ascii_lowercase(),
            (key.to_string(), ContextValue::Single(value.into())),
        );
    }

    /// Sets a multivalued key. An empty set means the key is absent from the request.
    pub fn insert_multi(&mut self, key: &str, values: Vec<String>) {
        let lower = key.to_ascii_lowercase();
        if values.is_empty() {
            self.entries.remove(&lower);
        } else {
            self.entries
                .insert(lower, (key.to_string(), ContextValue::Multi(values)));
        }
    }

    /// Sets a key only when it is not present yet.
    pub fn insert_default(&mut self, key: &str, value: impl Into<String>) {
        let lower = key.to_ascii_lowercase();
        self.entries
            .entry(lower)
            .or_insert_with(|| (key.to_string(), ContextValue::Single(value.into())));
    }

    /// Removes a key.
    pub fn remove(&mut self, key: &str) {
        self.entries.remove(&key.to_ascii_lowercase());
    }

    /// Looks a key up by its lowercased name.
    pub fn get_lower(&self, lower_key: &str) -> Option<&ContextValue> {
        self.entries.get(lower_key).map(|(_, v)| v)
    }

    /// Looks a key up, ignoring case.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.get_lower(&key.to_ascii_lowercase())
    }

    /// Keys (as first spelled) and values, ordered by lowercased key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.entries.values().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Marks a key (or, ending in `/`, every key with that prefix) as unknown: the request has
    /// a value nobody can tell. A key set later is known again.
    pub fn mark_unknown(&mut self, key_or_prefix: &str) {
        let lower = key_or_prefix.to_ascii_lowercase();
        if !self.unknown.contains(&lower) {
            self.unknown.push(lower);
        }
    }

    /// Makes every absent key unknown except those listed (lowercase keys or `/`-prefixes)
    /// and those added by [`RequestContext::known_absent`]: the context of a request seen from
    /// its record, where only some absences are facts.
    pub fn absent_is_unknown_except(&mut self, settled: &'static [&'static str]) {
        debug_assert!(settled.iter().all(|k| k.to_ascii_lowercase() == *k));
        self.settled = Some(settled);
    }

    /// Adds a key (or `/`-prefix) known to be absent from the request.
    pub fn known_absent(&mut self, key_or_prefix: &str) {
        let lower = key_or_prefix.to_ascii_lowercase();
        self.unknown.retain(|k| k != &lower);
        if self.settled.is_some() && !self.absent.contains(&lower) {
            self.absent.push(lower);
        }
    }

    /// Whether the request has a value for this (lowercased) key that nobody can tell.
    pub fn is_unknown_lower(&self, lower_key: &str) -> bool {
        if self.entries.contains_key(lower_key) {
            return false;
        }
        covers(&self.unknown, lower_key)
            || self.settled.is_some_and(|settled| {
                !covers(settled, lower_key) && !covers(&self.absent, lower_key)
            })
    }

    /// Whether any key is unknown (then a decision may depend on what nobody can tell).
    pub fn has_unknowns(&self) -> bool {
        !self.unknown.is_empty() || self.settled.is_some()
    }

    /// Sets `ssm:resourceTag/<k>` and `aws:ResourceTag/<k>` for each tag.
    pub fn set_resource_tags<'a>(&mut self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for (k, v) in tags {
            self.insert(&format!("ssm:resourceTag/{k}"), v);
            self.insert(&format!("aws:ResourceTag/{k}"), v);
        }
    }
}

impl Serialize for RequestContext {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// One authorisation question: may this request context perform `action` on `resource`?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub action: String,
    pub resource: String,
    pub context: RequestContext,
}

impl Request {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Request {
            action: action.into(),
            resource: resource.into(),
            context: RequestContext::new(),
        }
    }

    /// Builder-style context entry.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.context.insert(key, value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        let mut c = RequestContext::new();
        c.insert("aws:SourceVpce", "vpce-1");
        assert_eq!(
            c.get("AWS:SOURCEVPCE"),
            Some(&ContextValue::Single("vpce-1".into()))
        );
        c.insert("aws:sourcevpce", "vpce-2");
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("aws:SourceVpce").unwrap().values(), ["vpce-2"]);
    }

    #[test]
    fn empty_multivalued_key_is_absent() {
        let mut c = RequestContext::new();
        c.insert_multi("aws:TagKeys", vec![]);
        assert!(c.get("aws:TagKeys").is_none());
        c.insert_multi("aws:TagKeys", vec!["a".into(), "b".into()]);
        assert_eq!(c.get("aws:tagkeys").unwrap().values().len(), 2);
    }

    #[test]
    fn unknown_keys_and_prefixes() {
        let mut c = RequestContext::new();
        assert!(!c.has_unknowns());
        c.mark_unknown("ssm:resourceTag/");
        c.mark_unknown("aws:ViaAWSService");
        assert!(c.is_unknown_lower("ssm:resourcetag/env"));
        assert!(c.is_unknown_lower("aws:viaawsservice"));
        assert!(!c.is_unknown_lower("aws:sourceip"), "absent, not unknown");
        c.insert("aws:ViaAWSService", "true");
        assert!(
            !c.is_unknown_lower("aws:viaawsservice"),
            "set keys are known"
        );

        let mut open = RequestContext::new();
        open.absent_is_unknown_except(&["aws:sourceip", "aws:requesttag/"]);
        assert!(!open.is_unknown_lower("aws:sourceip"));
        assert!(!open.is_unknown_lower("aws:requesttag/team"));
        assert!(open.is_unknown_lower("aws:principalorgid"));
        open.known_absent("aws:PrincipalOrgID");
        assert!(!open.is_unknown_lower("aws:principalorgid"));
    }

    #[test]
    fn resource_tags_fill_both_keys() {
        let mut c = RequestContext::new();
        c.set_resource_tags([("Finance", "WebServers")]);
        assert!(c.get("ssm:resourceTag/Finance").is_some());
        assert!(c.get("aws:ResourceTag/finance").is_some());
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["ssm:resourceTag/Finance"], "WebServers");
    }
}
