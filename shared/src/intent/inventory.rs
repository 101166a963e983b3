//! The inventory file (resource tags by id, name or ARN) and the `TagLookup` port the watcher
//! reads tags through.
//!
//! A resource absent from the lookup is *unknown*, not untagged: a decision that depends on its
//! tags cannot be made, and the finding says so (`unevaluated`).

use crate::diag::Code;
use std::collections::{BTreeMap, HashMap};

use crate::diag::{self, JsonPath, Rejected, Reporter, SourceText};
use crate::json::{self, JsonKind};

/// Tags of one resource.
pub type TagSet = BTreeMap<String, String>;

/// Where resource tags come from (an inventory file here; EC2/SSM APIs in Lambda, gathered
/// before the decision).
pub trait TagLookup {
    /// The tags of an instance or managed node; `None` when unknown.
    fn tags(&self, id: &str) -> Option<&TagSet>;

    /// Whether the lookup can know the tags of resources in this account and region at all.
    /// When it cannot, a run there that depends on tags is `unevaluated` with cause
    /// `out_of_scope` (an account this deployment does not watch) or `no_access` (a member
    /// account whose reader role could not be assumed), not `unknown_tags`.
    fn reach(&self, _account: &str, _region: &str) -> Reach {
        Reach::Readable
    }
}

/// How far a tag lookup sees into one account and region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Tags there can be read (a resource without an answer has unknown tags).
    Readable,
    /// The account or region is not one this deployment reads.
    OutOfScope,
    /// The account is in scope, but its reader role could not be assumed.
    NoAccess,
}

/// An inventory file: `{"i-0123...": {"Env": "prod"}, "mi-0abc...": {...}, "Ops-Restart":
/// {...}}`: instances and managed nodes by id, the account's documents by name, shared
/// documents by ARN. A resource it does not list has unknown tags; `{}` is "no tags".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    resources: HashMap<String, TagSet>,
}

impl Inventory {
    /// Parses an inventory; every malformed entry is reported with its path and position.
    pub fn parse(text: &str, file: Option<&str>) -> Result<Inventory, Rejected> {
        let source = SourceText::new(file, text);
        let arena = json::Bump::new();
        let root = json::parse(text, &arena).map_err(|e| Rejected {
            diagnostics: vec![diag::syntax_error(&source, &e)],
        })?;
        let mut r = Reporter::new(&source, JsonPath::root());
        let Some(members) = root.as_object() else {
            r.error(
                Code::NotAnObject,
                root.span,
                "an inventory maps resource ids to tag objects".to_string(),
            );
            return Err(Rejected {
                diagnostics: r.diagnostics,
            });
        };
        let mut resources = HashMap::with_capacity(members.len());
        for m in members {
            let mark = r.path.key(m.key);
            match &m.value.kind {
                JsonKind::Object(tags) => {
                    let set: TagSet = crate::iam::values::tag_pairs(tags, Code::InvalidTag, &mut r)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    resources.insert(m.key.to_string(), set);
                }
                _ => r.error(
                    Code::InvalidResource,
                    m.value.span,
                    format!(
                        "`{}` must map to an object of tags, found {}",
                        m.key,
                        m.value.type_name()
                    ),
                ),
            }
            r.path.truncate(mark);
        }
        if r.has_errors() {
            return Err(Rejected {
                diagnostics: r.diagnostics,
            });
        }
        Ok(Inventory { resources })
    }

    /// Adds or replaces a resource's tags.
    pub fn insert(&mut self, id: impl Into<String>, tags: TagSet) {
        self.resources.insert(id.into(), tags);
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
}

impl TagLookup for Inventory {
    fn tags(&self, id: &str) -> Option<&TagSet> {
        self.resources.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_entry() {
        let e = Inventory::parse(
            "{\"i-1\": {\"Env\": 3},\n \"i-2\": \"prod\"}",
            Some("inv.json"),
        )
        .unwrap_err();
        assert_eq!(e.diagnostics.len(), 2);
        assert_eq!(e.diagnostics[0].path, "$[\"i-1\"].Env");
        assert_eq!(e.diagnostics[1].path, "$[\"i-2\"]");
        assert_eq!(e.diagnostics[1].location.unwrap().line, 2);
        assert!(Inventory::parse("[1]", None).is_err());
        assert!(Inventory::parse("{", None).is_err());
    }
}
