//! Live tags: EC2 `DescribeTags` (batched) for instances, SSM `ListTagsForResource` for managed
//! nodes (`mi-...`) and documents, cached for a short time across warm invocations. The result
//! is an [`Inventory`] snapshot the core decides with.
//!
//! Unknown is not untagged. EC2 `DescribeTags` answers the same for an instance that does not
//! exist and for one with no tags, so the instances it reports no tags for are asked
//! `DescribeInstances` (by the `instance-id` filter, which leaves unknown ids out instead of
//! failing the call): only those EC2 returns are untagged; the others are left out of the
//! snapshot, so their tags are unknown and a decision that needs them is `unevaluated`. SSM
//! `ListTagsForResource` tells the two apart itself: it answers `InvalidResourceId` for a
//! managed node or document it does not know, and such a resource is left out too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;
use aws_sdk_ssm::types::ResourceTypeForTagging;
use tagwatch_core::intent::inventory::{Inventory, TagSet};
use tagwatch_core::watch::tags::TagQuery;

use crate::AdapterError;

/// What a cache entry holds: the resource's tags, or that it does not exist.
#[derive(Debug, Clone)]
enum Known {
    Tags(TagSet),
    Missing,
}

/// Tag lookups with a TTL cache.
#[derive(Debug)]
pub struct LiveTags {
    client: Client,
    ssm: Option<aws_sdk_ssm::Client>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Known)>>,
}

/// `DescribeTags` and `DescribeInstances` accept up to 200 values per filter.
const BATCH: usize = 200;

impl LiveTags {
    /// Instances through EC2 only; managed nodes and documents stay unknown.
    pub fn new(client: Client, ttl: Duration) -> Self {
        LiveTags {
            client,
            ssm: None,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Managed nodes' and documents' tags through SSM `ListTagsForResource`.
    pub fn with_ssm(mut self, ssm: aws_sdk_ssm::Client) -> Self {
        self.ssm = Some(ssm);
        self
    }

    /// The tags of the instances (`i-...`), managed nodes (`mi-...`) and documents (by name, or
    /// ARN for shared ones) of `query`. A resource EC2 or SSM does not know is left out, as is
    /// every managed node and document when no SSM client is configured: its tags are unknown.
    pub async fn gather(&self, query: &TagQuery) -> Result<Inventory, AdapterError> {
        let mut inventory = Inventory::default();
        let mut instances = Vec::new();
        let mut ssm_resources = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let mut lookup = |id: &String, kind: Option<ResourceTypeForTagging>| match cache.get(id)
            {
                Some((at, known)) if at.elapsed() < self.ttl => {
                    if let Known::Tags(tags) = known {
                        inventory.insert(id.clone(), tags.clone());
                    }
                }
                _ => match kind {
                    None => instances.push(id.clone()),
                    Some(kind) => ssm_resources.push((kind, id.clone())),
                },
            };
            for id in &query.targets {
                if id.starts_with("i-") {
                    lookup(id, None);
                } else if id.starts_with("mi-") && self.ssm.is_some() {
                    lookup(id, Some(ResourceTypeForTagging::ManagedInstance));
                }
            }
            if self.ssm.is_some() {
                for name in &query.documents {
                    lookup(name, Some(ResourceTypeForTagging::Document));
                }
            }
        }
        instances.sort();
        instances.dedup();
        ssm_resources.sort_by(|a, b| a.1.cmp(&b.1));
        ssm_resources.dedup_by(|a, b| a.1 == b.1);
        let mut learned: Vec<(String, Known)> = Vec::new();
        if let Some(ssm) = &self.ssm {
            for (kind, id) in ssm_resources {
                learned.push((id.clone(), self.ssm_tags(ssm, kind, &id).await?));
            }
        }
        for batch in instances.chunks(BATCH) {
            learned.extend(self.instance_tags(batch).await?);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for (id, known) in learned {
            if let Known::Tags(tags) = &known {
                inventory.insert(id.clone(), tags.clone());
            }
            cache.insert(id, (Instant::now(), known));
        }
        Ok(inventory)
    }

    /// One managed node's or document's tags; `Missing` when SSM does not know it.
    async fn ssm_tags(
        &self,
        ssm: &aws_sdk_ssm::Client,
        kind: ResourceTypeForTagging,
        id: &str,
    ) -> Result<Known, AdapterError> {
        let out = ssm
            .list_tags_for_resource()
            .resource_type(kind.clone())
            .resource_id(id)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Known::Tags(
                out.tag_list()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
            )),
            Err(e)
                if e.as_service_error().is_some_and(|se| {
                    se.is_invalid_resource_id() || se.is_invalid_resource_type()
                }) =>
            {
                Ok(Known::Missing)
            }
            Err(e) => Err(AdapterError::aws("SSM ListTagsForResource", e)),
        }
    }

    /// Tags of up to [`BATCH`] instances: `DescribeTags`, then `DescribeInstances` for the ids
    /// it reported no tags for (no tags, or no such instance).
    async fn instance_tags(&self, batch: &[String]) -> Result<Vec<(String, Known)>, AdapterError> {
        let mut found: HashMap<String, TagSet> = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_tags()
                .filters(
                    Filter::builder()
                        .name("resource-id")
                        .set_values(Some(batch.to_vec()))
                        .build(),
                )
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AdapterError::aws("EC2 DescribeTags", e))?;
            for t in out.tags() {
                if let (Some(id), Some(k)) = (t.resource_id(), t.key()) {
                    found
                        .entry(id.to_string())
                        .or_default()
                        .insert(k.to_string(), t.value().unwrap_or_default().to_string());
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        let untagged: Vec<String> = batch
            .iter()
            .filter(|id| !found.contains_key(*id))
            .cloned()
            .collect();
        let existing = if untagged.is_empty() {
            Vec::new()
        } else {
            self.existing_instances(&untagged).await?
        };
        Ok(batch
            .iter()
            .map(|id| {
                let known = match found.remove(id) {
                    Some(tags) => Known::Tags(tags),
                    None if existing.contains(id) => Known::Tags(TagSet::new()),
                    None => Known::Missing,
                };
                (id.clone(), known)
            })
            .collect())
    }

    /// The ids of `ids` EC2 knows (`DescribeInstances` by the `instance-id` filter).
    async fn existing_instances(&self, ids: &[String]) -> Result<Vec<String>, AdapterError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_instances()
                .filters(
                    Filter::builder()
                        .name("instance-id")
                        .set_values(Some(ids.to_vec()))
                        .build(),
                )
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AdapterError::aws("EC2 DescribeInstances", e))?;
            for r in page.reservations() {
                for i in r.instances() {
                    if let Some(id) = i.instance_id() {
                        out.push(id.to_string());
                    }
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }
}
