//! Correlation state in one DynamoDB table (partition key `pk`, sort key `sk`, TTL attribute
//! `expires_at`):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | an event id already processed | `event#<id>` | `seen` |
//! | a SendCommand record | `command#<id>` | `record` |
//! | an evaluated (command, instance) pair | `command#<id>` | `claim#<instance>` |
//! | an invocation waiting for its command | `command#<id>` | `parked#<instance>` |
//! | a caller's AccessDenied window | `caller#<arn>` | `denials` |
//! | a finding staged for delivery (outbox) | `event#<id>` | `finding#<finding id>` |
//! | the sinks a finding reached | `finding#<id>` | `delivered` (string set `sinks`) |
//!
//! Sightings and claims are conditional puts, so a redelivered event or a retried invocation
//! decides nothing new. Findings are staged in their event's outbox before any state is written
//! and marked per sink after each sink accepted them, so a retry after a partial failure
//! delivers what is missing and nothing twice (a crash between a sink's acceptance and its mark
//! can repeat that one sink's delivery: at least once, never lost).

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use tagwatch_core::correlate::{DenialWindow, Parked};
use tagwatch_core::event::{Activity, Event, StatusChange};
use tagwatch_core::journal::{Change, JournalStore};
use tagwatch_core::verdict::Finding;

use crate::{now_ms, AdapterError};

/// The DynamoDB correlation adapter.
#[derive(Debug, Clone)]
pub struct DynamoCorrelation {
    client: Client,
    table: String,
    /// How long items live (seconds), through the table's TTL attribute.
    ttl_seconds: i64,
}

/// What persisting a journal found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Persisted {
    /// The event had been processed before (its sighting already existed).
    pub duplicate_event: bool,
    /// (command, instance) pairs another invocation claimed first: their findings are not ours.
    pub lost_claims: Vec<(String, String)>,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn text<'i>(item: &'i Item, key: &str) -> Option<&'i str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn is_conditional_failure<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

impl DynamoCorrelation {
    pub fn new(client: Client, table: impl Into<String>, ttl_seconds: i64) -> Self {
        DynamoCorrelation {
            client,
            table: table.into(),
            ttl_seconds,
        }
    }

    fn expiry(&self, event_ms: i64) -> AttributeValue {
        AttributeValue::N((event_ms / 1000 + self.ttl_seconds).to_string())
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, AdapterError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AdapterError::aws("DynamoDB GetItem", e))?;
        Ok(out.item)
    }

    async fn query_prefix(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, AdapterError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk));
            req = if prefix.is_empty() {
                req.key_condition_expression("pk = :pk")
            } else {
                req.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let out = req
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AdapterError::aws("DynamoDB Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    fn json<T: serde::de::DeserializeOwned>(item: &Item, key: &str) -> Result<T, AdapterError> {
        let raw = text(item, "json").ok_or_else(|| AdapterError::Corrupt {
            key: key.to_string(),
            reason: "no `json` attribute".to_string(),
        })?;
        serde_json::from_str(raw).map_err(|e| AdapterError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })
    }

    /// Gathers the state one event's decision needs.
    pub async fn gather(&self, event: &Event) -> Result<JournalStore, AdapterError> {
        let mut store = JournalStore::new();
        match event {
            Event::Skipped(_) => {}
            Event::Activity(a) => {
                if self
                    .get(&format!("event#{}", a.event_id), "seen")
                    .await?
                    .is_some()
                {
                    store.preload_sighting(&a.event_id, a.event_epoch_ms);
                }
                if let Some(cmd) = &a.command_id {
                    self.gather_command(cmd, &mut store, false).await?;
                }
                if let (tagwatch_core::event::Outcome::Denied { .. }, Some(caller)) =
                    (&a.outcome, &a.caller.arn)
                {
                    let key = format!("caller#{caller}");
                    if let Some(item) = self.get(&key, "denials").await? {
                        let window: DenialWindow = Self::json(&item, &key)?;
                        store.preload_denials(caller, window);
                    }
                }
            }
            Event::Status(st) => {
                if self
                    .get(&format!("event#{}", st.event_id), "seen")
                    .await?
                    .is_some()
                {
                    store.preload_sighting(&st.event_id, st.event_epoch_ms);
                }
                self.gather_command(&st.command_id, &mut store, true)
                    .await?;
            }
        }
        Ok(store)
    }

    async fn gather_command(
        &self,
        cmd: &str,
        store: &mut JournalStore,
        record: bool,
    ) -> Result<(), AdapterError> {
        let pk = format!("command#{cmd}");
        for item in self.query_prefix(&pk, "").await? {
            let sk = text(&item, "sk").unwrap_or_default();
            if sk == "record" && record {
                let activity: Activity = Self::json(&item, &pk)?;
                store.preload_command(Arc::new(activity));
            } else if let Some(instance) = sk.strip_prefix("claim#") {
                store.preload_claim(cmd, instance, 0);
            } else if let Some(instance) = sk.strip_prefix("parked#") {
                let status: StatusChange = Self::json(&item, &pk)?;
                store.preload_parked(Parked {
                    command_id: cmd.to_string(),
                    instance_id: instance.to_string(),
                    status: Arc::new(status),
                });
            }
        }
        Ok(())
    }

    async fn put(&self, item: Item, conditional: bool) -> Result<bool, AdapterError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        if conditional {
            req = req.condition_expression("attribute_not_exists(pk)");
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional && is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(AdapterError::aws("DynamoDB PutItem", e)),
        }
    }

    fn item(&self, pk: String, sk: String, event_ms: i64) -> Item {
        HashMap::from([
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(sk)),
            ("expires_at".to_string(), self.expiry(event_ms)),
        ])
    }

    /// Writes back what a decision changed. State writes come before the sighting, so a retry
    /// after a partial failure decides again from the same state.
    pub async fn persist(&self, changes: Vec<Change>) -> Result<Persisted, AdapterError> {
        let mut result = Persisted::default();
        let mut sightings = Vec::new();
        for change in changes {
            match change {
                Change::Sighted { event_id, event_ms } => sightings.push((event_id, event_ms)),
                Change::Command(a) => {
                    let Some(cmd) = &a.command_id else { continue };
                    let mut item =
                        self.item(format!("command#{cmd}"), "record".into(), a.event_epoch_ms);
                    item.insert(
                        "json".into(),
                        s(serde_json::to_string(&*a).unwrap_or_default()),
                    );
                    self.put(item, false).await?;
                }
                Change::Claimed {
                    command_id,
                    instance_id,
                    event_ms,
                } => {
                    let item = self.item(
                        format!("command#{command_id}"),
                        format!("claim#{instance_id}"),
                        event_ms,
                    );
                    let mut req = self
                        .client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(item));
                    req = req.condition_expression("attribute_not_exists(sk)");
                    match req.send().await {
                        Ok(_) => {}
                        Err(e) if is_conditional_failure(&e) => {
                            result.lost_claims.push((command_id, instance_id))
                        }
                        Err(e) => return Err(AdapterError::aws("DynamoDB PutItem", e)),
                    }
                }
                Change::Parked(p) => {
                    let mut item = self.item(
                        format!("command#{}", p.command_id),
                        format!("parked#{}", p.instance_id),
                        p.status.event_epoch_ms,
                    );
                    item.insert(
                        "json".into(),
                        s(serde_json::to_string(&*p.status).unwrap_or_default()),
                    );
                    item.insert(
                        "parked_at".into(),
                        AttributeValue::N((p.status.event_epoch_ms / 1000).to_string()),
                    );
                    self.put(item, false).await?;
                }
                Change::Unparked {
                    command_id,
                    instance_ids,
                } => {
                    for instance in instance_ids {
                        self.client
                            .delete_item()
                            .table_name(&self.table)
                            .key("pk", s(format!("command#{command_id}")))
                            .key("sk", s(format!("parked#{instance}")))
                            .send()
                            .await
                            .map_err(|e| AdapterError::aws("DynamoDB DeleteItem", e))?;
                    }
                }
                Change::Denials { caller, mut window } => {
                    // Optimistic concurrency: write only over the version that was gathered.
                    let key = format!("caller#{caller}");
                    let read_at = window.version;
                    window.version = read_at + 1;
                    let newest = window.calls.back().map_or(0, |(t, _)| *t);
                    let mut item = self.item(key.clone(), "denials".into(), newest);
                    item.insert(
                        "json".into(),
                        s(serde_json::to_string(&window).unwrap_or_default()),
                    );
                    item.insert(
                        "version".into(),
                        AttributeValue::N(window.version.to_string()),
                    );
                    let out = self
                        .client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk) OR version = :read_at")
                        .expression_attribute_values(
                            ":read_at",
                            AttributeValue::N(read_at.to_string()),
                        )
                        .send()
                        .await;
                    match out {
                        Ok(_) => {}
                        Err(e) if is_conditional_failure(&e) => {
                            return Err(AdapterError::Conflict { key })
                        }
                        Err(e) => return Err(AdapterError::aws("DynamoDB PutItem", e)),
                    }
                }
            }
        }
        for (event_id, event_ms) in sightings {
            let item = self.item(format!("event#{event_id}"), "seen".into(), event_ms);
            if !self.put(item, true).await? {
                result.duplicate_event = true;
            }
        }
        Ok(result)
    }

    /// Invocations parked before `cutoff_ms` (event time): their SendCommand record is overdue.
    /// For the scheduled sweep; a scan, which suits a table holding a day of state.
    pub async fn parked_before(&self, cutoff_ms: i64) -> Result<Vec<Parked>, AdapterError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(sk, :parked) AND parked_at < :cutoff")
                .expression_attribute_values(":parked", s("parked#"))
                .expression_attribute_values(
                    ":cutoff",
                    AttributeValue::N((cutoff_ms / 1000).to_string()),
                )
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AdapterError::aws("DynamoDB Scan", e))?;
            for item in out.items.unwrap_or_default() {
                let pk = text(&item, "pk").unwrap_or_default();
                let sk = text(&item, "sk").unwrap_or_default();
                let (Some(command_id), Some(instance_id)) =
                    (pk.strip_prefix("command#"), sk.strip_prefix("parked#"))
                else {
                    continue;
                };
                let status: StatusChange = Self::json(&item, pk)?;
                found.push(Parked {
                    command_id: command_id.to_string(),
                    instance_id: instance_id.to_string(),
                    status: Arc::new(status),
                });
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(found),
            }
        }
    }

    /// Takes a parked invocation for the sweep: deletes it and says whether it was still there
    /// (false when the CloudTrail watcher finished it meanwhile).
    pub async fn take_parked(&self, parked: &Parked) -> Result<bool, AdapterError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("command#{}", parked.command_id)))
            .key("sk", s(format!("parked#{}", parked.instance_id)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| AdapterError::aws("DynamoDB DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// Stages findings in the outbox of the event (or sweep) that produced them, before any
    /// state is written: a retry of the same event delivers what an earlier attempt staged.
    pub async fn stage(&self, event_id: &str, findings: &[Finding]) -> Result<(), AdapterError> {
        for f in findings {
            let mut item = self.item(
                format!("event#{event_id}"),
                format!("finding#{}", f.finding_id),
                now_ms(),
            );
            item.insert(
                "json".into(),
                s(serde_json::to_string(f).unwrap_or_default()),
            );
            self.put(item, false).await?;
        }
        Ok(())
    }

    /// Removes a staged finding (the sweep's, when the invocation was finished meanwhile).
    pub async fn unstage(&self, event_id: &str, finding_id: &str) -> Result<(), AdapterError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("event#{event_id}")))
            .key("sk", s(format!("finding#{finding_id}")))
            .send()
            .await
            .map_err(|e| AdapterError::aws("DynamoDB DeleteItem", e))?;
        Ok(())
    }

    /// The findings staged for an event, in finding-id order.
    pub async fn staged(&self, event_id: &str) -> Result<Vec<Finding>, AdapterError> {
        let pk = format!("event#{event_id}");
        let mut out = Vec::new();
        for item in self.query_prefix(&pk, "finding#").await? {
            out.push(Self::json(&item, &pk)?);
        }
        Ok(out)
    }

    /// The sinks each finding has already reached (finding ids absent from the map reached
    /// none).
    pub async fn delivered(
        &self,
        finding_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, AdapterError> {
        let mut out = HashMap::new();
        for id in finding_ids {
            if let Some(item) = self.get(&format!("finding#{id}"), "delivered").await? {
                let sinks = item
                    .get("sinks")
                    .and_then(|v| v.as_ss().ok())
                    .cloned()
                    .unwrap_or_default();
                out.insert(id.clone(), sinks);
            }
        }
        Ok(out)
    }

    /// Records that these findings reached `sink` (an atomic set add, so marks from concurrent
    /// invocations never overwrite each other).
    pub async fn mark_delivered(
        &self,
        finding_ids: &[String],
        sink: &str,
    ) -> Result<(), AdapterError> {
        let expires = self.expiry(now_ms());
        for id in finding_ids {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("finding#{id}")))
                .key("sk", s("delivered"))
                .update_expression("ADD sinks :sink SET expires_at = :exp")
                .expression_attribute_values(":sink", AttributeValue::Ss(vec![sink.to_string()]))
                .expression_attribute_values(":exp", expires.clone())
                .send()
                .await
                .map_err(|e| AdapterError::aws("DynamoDB UpdateItem", e))?;
        }
        Ok(())
    }
}
