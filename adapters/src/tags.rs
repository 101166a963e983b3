//! Instance tags from EC2 `DescribeTags` (batched), cached for a short time across warm
//! invocations. The result is an [`Inventory`] snapshot the core decides with.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;
use tagwatch_core::tags::{Inventory, TagSet};

use crate::AdapterError;

/// EC2 tag lookups with a TTL cache.
#[derive(Debug)]
pub struct Ec2Tags {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, TagSet)>>,
}

/// `DescribeTags` accepts up to 200 values per filter.
const BATCH: usize = 200;

impl Ec2Tags {
    pub fn new(client: Client, ttl: Duration) -> Self {
        Ec2Tags {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The tags of these instances (`i-...`). Managed nodes (`mi-...`) are left out: their tags
    /// are unknown to EC2, so decisions that need them are `unevaluated`. An instance EC2 reports
    /// no tags for is untagged.
    pub async fn gather(&self, ids: &[String]) -> Result<Inventory, AdapterError> {
        let mut inventory = Inventory::default();
        let mut missing = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for id in ids.iter().filter(|id| id.starts_with("i-")) {
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
