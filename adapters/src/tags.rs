//! Live tags: EC2 `DescribeTags` (batched) for instances, SSM `ListTagsForResource` for managed
//! nodes (`mi-...`), cached for a short time across warm invocations. The result is an
//! [`Inventory`] snapshot the core decides with.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;
use tagwatch_core::tags::{Inventory, TagSet};

use crate::AdapterError;

/// Tag lookups with a TTL cache.
#[derive(Debug)]
pub struct LiveTags {
    client: Client,
    ssm: Option<aws_sdk_ssm::Client>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, TagSet)>>,
}

/// `DescribeTags` accepts up to 200 values per filter.
const BATCH: usize = 200;

impl LiveTags {
    /// Instances through EC2 only; managed nodes stay unknown.
    pub fn new(client: Client, ttl: Duration) -> Self {
        LiveTags {
            client,
            ssm: None,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Managed nodes' tags through SSM `ListTagsForResource`.
    pub fn with_ssm(mut self, ssm: aws_sdk_ssm::Client) -> Self {
        self.ssm = Some(ssm);
        self
    }

    /// The tags of these instances (`i-...`) and managed nodes (`mi-...`). An instance EC2
    /// reports no tags for is untagged; a managed node SSM does not know (deregistered), or any
    /// managed node when no SSM client is configured, is left out: unknown, so decisions that
    /// need its tags are `unevaluated`.
    pub async fn gather(&self, ids: &[String]) -> Result<Inventory, AdapterError> {
        let mut inventory = Inventory::default();
        let mut missing = Vec::new();
        let mut nodes = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for id in ids.iter() {
                if id.starts_with("mi-") && self.ssm.is_some() {
                    match cache.get(id) {
                        Some((at, tags)) if at.elapsed() < self.ttl => {
                            inventory.insert(id.clone(), tags.clone())
                        }
                        _ => nodes.push(id.clone()),
                    }
                    continue;
                }
                if !id.starts_with("i-") {
                    continue;
                }
                match cache.get(id) {
                    Some((at, tags)) if at.elapsed() < self.ttl => {
                        inventory.insert(id.clone(), tags.clone())
                    }
                    _ => missing.push(id.clone()),
                }
            }
        }
        missing.sort();
        missing.dedup();
        nodes.sort();
        nodes.dedup();
        if let Some(ssm) = &self.ssm {
            for node in nodes {
                let out = ssm
                    .list_tags_for_resource()
                    .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::ManagedInstance)
                    .resource_id(&node)
                    .send()
                    .await;
                let tags: TagSet = match out {
                    Ok(out) => out
                        .tag_list()
                        .iter()
                        .map(|t| (t.key().to_string(), t.value().to_string()))
                        .collect(),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|se| se.is_invalid_resource_id()) =>
                    {
                        continue
                    }
                    Err(e) => return Err(AdapterError::aws("SSM ListTagsForResource", e)),
                };
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.insert(node.clone(), (Instant::now(), tags.clone()));
                inventory.insert(node, tags);
            }
        }
        for batch in missing.chunks(BATCH) {
            let mut found: HashMap<String, TagSet> =
                batch.iter().map(|id| (id.clone(), TagSet::new())).collect();
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
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for (id, tags) in found {
                cache.insert(id.clone(), (Instant::now(), tags.clone()));
                inventory.insert(id, tags);
            }
        }
        Ok(inventory)
    }
}
