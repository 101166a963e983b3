//! Resource tags: the `TagLookup` port and the inventory file.
//!
//! A resource absent from the lookup is *unknown*, not untagged: a decision that depends on its
//! tags cannot be made, and the verdict says so (`unevaluated`).

use std::collections::{BTreeMap, HashMap};

use crate::diag::{self, Diagnostic, JsonPath, Reporter, SourceText};
use crate::event::{ResourceKind, ResourceRef};
use crate::json::{self, JsonKind, Member};

/// Tags of one resource.
pub type TagSet = BTreeMap<String, String>;

/// Where resource tags come from (an inventory file here; EC2/SSM APIs in Lambda, gathered
/// before the decision).
pub trait TagLookup {
    /// The tags of an instance or managed node; `None` when unknown.
    fn tags(&self, id: &str) -> Option<&TagSet>;
}

/// The resources a decision needs the tags of: instances (`i-...`) and managed nodes (`mi-...`)
/// by id, and documents: the account's own by name, shared ones by ARN. AWS-owned documents
/// carry no tags and are never asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagQuery {
    pub targets: Vec<String>,
    pub documents: Vec<String>,
}

impl TagQuery {
    /// Adds the resources of these refs (sessions and AWS-owned documents need no tags). A
    /// document of `account` is asked by name, another account's (shared) by ARN.
    pub fn add(&mut self, resources: &[ResourceRef], account: &str) {
        for r in resources {
            match r.kind {
                ResourceKind::Instance | ResourceKind::ManagedNode => {
                    self.targets.push(r.id.clone())
                }
                ResourceKind::Document if !aws_owned(r) => {
                    let own = r.arn.split(':').nth(4) == Some(account);
                    self.documents
                        .push(if own { r.id.clone() } else { r.arn.clone() });
                }
                ResourceKind::Document | ResourceKind::Session => {}
            }
        }
    }

    /// Sorted, without repeats.
    pub fn dedup(mut self) -> Self {
        self.targets.sort();
        self.targets.dedup();
        self.documents.sort();
        self.documents.dedup();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.documents.is_empty()
    }
}

/// Tags of a resource as evaluation sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tags<'a> {
    Known(&'a TagSet),
    /// Known to carry no tags (AWS-owned documents).
    None,
    Unknown,
}

/// The tags of `resource` (of a call in `account`) through the lookup, unknown when absent.
/// AWS-owned documents (their ARN has no account) and sessions carry no tags; the account's
/// documents are looked up by name, shared ones by ARN.
pub fn tags_of<'a>(lookup: &'a dyn TagLookup, resource: &ResourceRef, account: &str) -> Tags<'a> {
    match resource.kind {
        ResourceKind::Document if aws_owned(resource) => return Tags::None,
        ResourceKind::Session => return Tags::None,
        _ => {}
    }
    // A shared document (another account's) is known by its ARN only: its name may be one of
    // the account's own documents too.
    let found = match resource.kind {
        ResourceKind::Document if resource.arn.split(':').nth(4) == Some(account) => lookup
            .tags(&resource.id)
            .or_else(|| lookup.tags(&resource.arn)),
        ResourceKind::Document => lookup.tags(&resource.arn),
        _ => lookup.tags(&resource.id),
    };
    match found {
        Some(t) => Tags::Known(t),
        None => Tags::Unknown,
    }
}

/// An AWS-owned document: `arn:aws:ssm:REGION::document/NAME`.
pub fn aws_owned(resource: &ResourceRef) -> bool {
    resource.arn.split(':').nth(4) == Some("")
}

/// The `"key": "value"` pairs of a tag object; every non-string value is reported (with
/// `code`) and makes the result `None`.
pub(crate) fn tag_pairs<'j>(
    members: &'j [Member<'j>],
    code: &'static str,
    r: &mut Reporter<'_, 'j>,
) -> Option<Vec<(&'j str, &'j str)>> {
    let mut pairs = Vec::with_capacity(members.len());
    let mut ok = true;
    for m in members {
        match m.value.as_str() {
            Some(v) => pairs.push((m.key, v)),
            None => {
                let mark = r.path.key(m.key);
                r.error(
                    code,
                    m.value.span,
                    format!("tag `{}` must have a string value", m.key),
                );
                r.path.truncate(mark);
                ok = false;
            }
        }
    }
    ok.then_some(pairs)
}

/// An inventory file: `{"i-0123...": {"Env": "prod"}, "mi-0abc...": {...}, "Ops-Restart":
/// {...}}`: instances and managed nodes by id, the account's documents by name, shared
/// documents by ARN. A resource it does not list has unknown tags; `{}` is "no tags".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    resources: HashMap<String, TagSet>,
}

/// Why an inventory file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", diag::render(.diagnostics))]
pub struct InventoryError {
    pub diagnostics: Vec<Diagnostic>,
}

impl Inventory {
    /// Parses an inventory; every malformed entry is reported with its path and position.
    pub fn parse(text: &str, file: Option<&str>) -> Result<Inventory, InventoryError> {
        let source = SourceText::new(file, text);
        let arena = json::Bump::new();
        let root = json::parse(text, &arena).map_err(|e| InventoryError {
            diagnostics: vec![diag::syntax_error(&source, &e)],
        })?;
        let mut r = Reporter::new(&source, JsonPath::root());
        let Some(members) = root.as_object() else {
            r.error(
                "not-an-object",
                root.span,
                "an inventory maps resource ids to tag objects".to_string(),
            );
            return Err(InventoryError {
                diagnostics: r.diagnostics,
            });
        };
        let mut resources = HashMap::with_capacity(members.len());
        for m in members {
            let mark = r.path.key(m.key);
            match &m.value.kind {
                JsonKind::Object(tags) => {
                    let set: TagSet = tag_pairs(tags, "invalid-tag", &mut r)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    resources.insert(m.key.to_string(), set);
                }
                _ => r.error(
                    "invalid-resource",
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
            return Err(InventoryError {
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
    use crate::event::{document_arn, target_arn};

    #[test]
    fn parses_and_looks_up() {
        let inv = Inventory::parse(r#"{"i-1": {"Env": "prod"}, "mi-2": {}}"#, None).unwrap();
        assert_eq!(inv.len(), 2);
        let i1 = target_arn("i-1", "aws", "us-east-1", "1");
        match tags_of(&inv, &i1, "1") {
            Tags::Known(t) => assert_eq!(t.get("Env").map(String::as_str), Some("prod")),
            other => panic!("{other:?}"),
        }
        let mi2 = target_arn("mi-2", "aws", "us-east-1", "1");
        assert!(
            matches!(tags_of(&inv, &mi2, "1"), Tags::Known(t) if t.is_empty()),
            "known, untagged"
        );
        let missing = target_arn("i-9", "aws", "us-east-1", "1");
        assert_eq!(
            tags_of(&inv, &missing, "1"),
            Tags::Unknown,
            "absent is unknown, not untagged"
        );
        let doc = document_arn("AWS-RunShellScript", "aws", "us-east-1", "1");
        assert_eq!(
            tags_of(&inv, &doc, "1"),
            Tags::None,
            "AWS-owned documents carry no tags"
        );
        let own = document_arn("Ops-Restart", "aws", "us-east-1", "1");
        assert_eq!(
            tags_of(&inv, &own, "1"),
            Tags::Unknown,
            "an account's document absent from the inventory has unknown tags"
        );
    }

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
