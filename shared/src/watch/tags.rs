//! The tags a decision needs: which resources to look up, and what the lookup tells of each.

use crate::intent::inventory::{TagLookup, TagSet};
use crate::watch::event::{ResourceKind, ResourceRef};

/// The resources a decision needs the tags of: instances (`i-...`) and managed nodes (`mi-...`)
/// by id, and documents: the account's own by name, shared ones by ARN. AWS-owned documents
/// carry no tags and are never asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagQuery {
    /// The account and region the resources are in (the event's); empty when unknown.
    pub account: String,
    pub region: String,
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
pub enum ResourceTags<'a> {
    Known(&'a TagSet),
    /// Known to carry no tags (AWS-owned documents).
    None,
    Unknown,
}

/// The tags of `resource` (of a call in `account`) through the lookup, unknown when absent.
/// AWS-owned documents (their ARN has no account) and sessions carry no tags; the account's
/// documents are looked up by name, shared ones by ARN.
pub fn tags_of<'a>(
    lookup: &'a dyn TagLookup,
    resource: &ResourceRef,
    account: &str,
) -> ResourceTags<'a> {
    match resource.kind {
        ResourceKind::Document if aws_owned(resource) => return ResourceTags::None,
        ResourceKind::Session => return ResourceTags::None,
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
        Some(t) => ResourceTags::Known(t),
        None => ResourceTags::Unknown,
    }
}

/// An AWS-owned document: `arn:aws:ssm:REGION::document/NAME`.
pub fn aws_owned(resource: &ResourceRef) -> bool {
    resource.arn.split(':').nth(4) == Some("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::inventory::Inventory;
    use crate::watch::event::{document_arn, target_arn};

    #[test]
    fn parses_and_looks_up() {
        let inv = Inventory::parse(r#"{"i-1": {"Env": "prod"}, "mi-2": {}}"#, None).unwrap();
        assert_eq!(inv.len(), 2);
        let i1 = target_arn("i-1", "aws", "us-east-1", "1");
        match tags_of(&inv, &i1, "1") {
            ResourceTags::Known(t) => assert_eq!(t.get("Env").map(String::as_str), Some("prod")),
            other => panic!("{other:?}"),
        }
        let mi2 = target_arn("mi-2", "aws", "us-east-1", "1");
        assert!(
            matches!(tags_of(&inv, &mi2, "1"), ResourceTags::Known(t) if t.is_empty()),
            "known, untagged"
        );
        let missing = target_arn("i-9", "aws", "us-east-1", "1");
        assert_eq!(
            tags_of(&inv, &missing, "1"),
            ResourceTags::Unknown,
            "absent is unknown, not untagged"
        );
        let doc = document_arn("AWS-RunShellScript", "aws", "us-east-1", "1");
        assert_eq!(
            tags_of(&inv, &doc, "1"),
            ResourceTags::None,
            "AWS-owned documents carry no tags"
        );
        let own = document_arn("Ops-Restart", "aws", "us-east-1", "1");
        assert_eq!(
            tags_of(&inv, &own, "1"),
            ResourceTags::Unknown,
            "an account's document absent from the inventory has unknown tags"
        );
    }
}
