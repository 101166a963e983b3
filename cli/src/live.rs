//! Live tags for `tagwatch replay --inventory-from-aws` (the `aws` feature): EC2 and SSM
//! through the AWS SDK, on a current-thread runtime.

use std::time::Duration;

use tagwatch_core::intent::inventory::{Inventory, TagLookup};
use tagwatch_core::watch::event::Event;
use tagwatch_core::watch::watcher::tag_query;
use tagwatch_core::Intent;

use crate::input::InputError;

/// Live tag lookups for `--inventory-from-aws`: each id is asked once, when an event first
/// names it.
pub struct LiveInventory {
    runtime: tokio::runtime::Runtime,
    tags: tagwatch_aws::tags::LiveTags,
    asked: std::collections::HashSet<String>,
    /// The first AWS failure (the replay stops there).
    pub failure: Option<tagwatch_aws::AdapterError>,
}

impl LiveInventory {
    pub fn new() -> Result<Self, InputError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(InputError::AwsRuntime)?;
        let sdk = runtime.block_on(tagwatch_aws::load_config());
        let tags = tagwatch_aws::tags::LiveTags::new(
            tagwatch_aws::aws_sdk_ec2::Client::new(&sdk),
            Duration::from_secs(u64::MAX / 4),
        )
        .with_ssm(tagwatch_aws::aws_sdk_ssm::Client::new(&sdk));
        Ok(LiveInventory {
            runtime,
            tags,
            asked: std::collections::HashSet::new(),
            failure: None,
        })
    }

    /// Adds the tags of the event's instances, managed nodes and documents not asked for
    /// before. A resource EC2 or SSM does not know stays out of the inventory: unknown, not
    /// untagged.
    pub fn fill(
        &mut self,
        event: &Event,
        intent: &Intent,
        inventory: &mut Inventory,
    ) -> std::io::Result<()> {
        let mut query = tag_query(event, intent);
        let asked = &self.asked;
        query
            .targets
            .retain(|id| inventory.tags(id).is_none() && !asked.contains(id));
        query
            .documents
            .retain(|id| inventory.tags(id).is_none() && !asked.contains(id));
        let query = query.dedup();
        if query.is_empty() {
            return Ok(());
        }
        self.asked
            .extend(query.targets.iter().chain(&query.documents).cloned());
        match self.runtime.block_on(self.tags.gather(&query)) {
            Ok(found) => {
                for id in query.targets.iter().chain(&query.documents) {
                    if let Some(t) = found.tags(id) {
                        inventory.insert(id.clone(), t.clone());
                    }
                }
                Ok(())
            }
            Err(e) => {
                let message = format!("--inventory-from-aws: {e}");
                self.failure = Some(e);
                Err(std::io::Error::other(message))
            }
        }
    }
}
