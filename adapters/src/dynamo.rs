//! Correlation state in one DynamoDB table (partition key `pk`, sort key `sk`, TTL attribute
//! `expires_at`, and a sparse index `by-park-time` on `park_queue` + `parked_at`):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | an event id already processed | `event#<id>` | `seen` |
//! | a SendCommand record | `command#<id>` | `record` |
//! | an evaluated (command, instance) pair | `command#<id>` | `claim#<instance>` (`owner`: the event) |
//! | an invocation waiting for its command | `command#<id>` | `parked#<instance>` (indexed, queue `parked`) |
//! | an invocation the sweep reported overdue | `command#<id>` | `overdue#<instance>` (indexed, queue `overdue`, until reported) |
//! | one AccessDenied call | `caller#<key>` | `denial#<event ms, 15 digits>#<event id>` |
//! | a caller's spike episode, per window-long bucket of event time it reaches | `caller#<key>` | `episode#<bucket>` |
//! | a finding staged for delivery (outbox) | `event#<id>` | `finding#<finding id>` |
//! | a finding of a group's dedupe window | `group#<group>#<window>` | `f#<finding id>` |
//! | the finding that owns (alerted for) a group's dedupe window | `group#<group>#<window>` | `owner` (`owner`: its finding id) |
//! | who is delivering a finding now | `finding#<id>` | `lease` (`holder`, `until_ms`) |
//! | a sink a finding reached | `finding#<id>` | `sink#<sink>` |
//! | an association's definition (no TTL: associations run for years) | `origin#association#<id>` | `setup` |
//! | an Automation execution's start | `origin#automation#<id>` | `setup` |
//! | a maintenance window Run Command task (no TTL) | `origin#window-task#<role, lower case>#<document>` | `task#<window task id>` |
//! | an association run on a node | `assocrun#<node>#<document>` | `run#<event ms, 15 digits>#<association id>` |
//! | when an account and region last sent an event (no TTL) | `sources` | `<account>#<region>` (`last_ms`, `partition`) |
//!
//! Origin setups are written only over an older definition of the same id (`set_at`), so a
//! redelivered or late record never replaces a newer one.
//!
//! Every write two execution environments can race on is conditional or commutative: sightings,
//! claims, episodes and leases are conditional; denials are one item per call (a put keyed by
//! the event id), so concurrent denials never conflict; parked items, outbox entries and
//! delivery marks are idempotent puts. Findings are staged in their event's outbox before any
//! state is written, delivered under a lease and marked per sink after each sink accepted them.
//! A crash between a sink's acceptance and its mark, or a holder slower than its lease, can
//! repeat that one sink's delivery: at least once, never lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use tagwatch_core::intent::origins::OriginKind;
use tagwatch_core::watch::correlation::{DenialNote, DenialWindow, Episode, Parked};
use tagwatch_core::watch::dedupe::{count_for, GroupEntry};
use tagwatch_core::watch::event::{Activity, AssociationRun, Event, OriginSetup, StatusChange};
use tagwatch_core::watch::finding::Finding;
use tagwatch_core::watch::journal::{Change, DueParked, JournalStore, Lease, Persisted};
use tagwatch_core::watch::origin::role_key;
use tagwatch_core::watch::silence::SourceSeen;

use crate::AdapterError;

/// How many single-item requests one invocation keeps in flight.
const CONCURRENCY: usize = 16;
/// BatchWriteItem takes at most 25 requests, BatchGetItem at most 100 keys.
const WRITE_BATCH: usize = 25;
const GET_BATCH: usize = 100;
/// Rounds of retrying what a batch call left unprocessed before failing (retryable).
const UNPROCESSED_ROUNDS: u32 = 8;
/// The sparse index the sweep reads parked and unreported overdue invocations from.
pub const PARK_INDEX: &str = "by-park-time";
const QUEUE_PARKED: &str = "parked";
const QUEUE_OVERDUE: &str = "overdue";

/// The DynamoDB correlation adapter.
#[derive(Debug, Clone)]
pub struct DynamoCorrelation {
    client: Client,
    table: String,
    /// How long items live (seconds), through the table's TTL attribute.
    ttl_seconds: i64,
    /// The source times this execution environment last wrote (a source's item is written at
    /// most once a minute of event time per environment).
    sources_written: std::sync::Arc<std::sync::Mutex<HashMap<(String, String), i64>>>,
}

/// How far a source's last event time must move before an environment writes it again.
const SOURCE_WRITE_MS: i64 = 60_000;

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn text<'i>(item: &'i Item, key: &str) -> Option<&'i str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn number(item: &Item, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn is_conditional_failure<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

fn to_json<T: serde::Serialize>(value: &T, key: &str) -> Result<AttributeValue, AdapterError> {
    serde_json::to_string(value)
        .map(s)
        .map_err(|e| AdapterError::Corrupt {
            key: key.to_string(),
            reason: format!("cannot be written: {e}"),
        })
}

fn origin_pk(kind: OriginKind, id: &str) -> String {
    format!("origin#{}#{id}", kind.as_str())
}

fn window_tasks_pk(role_key: &str, document: &str) -> String {
    format!("origin#window-task#{role_key}#{document}")
}

/// The spike-window-long bucket of event time an instant falls in.
fn bucket(ms: i64, window_ms: i64) -> i64 {
    ms.div_euclid(window_ms.max(1))
}

fn episode_sk(bucket: i64) -> String {
    format!("episode#{:012}", bucket.max(0))
}

fn denial_sk(event_ms: i64, event_id: &str) -> String {
    format!("denial#{:015}#{event_id}", event_ms.max(0))
}

/// The (time, event id) of a denial item's sort key.
fn parse_denial_sk(sk: &str) -> Option<(i64, String)> {
    let rest = sk.strip_prefix("denial#")?;
    let (ms, id) = rest.split_once('#')?;
    Some((ms.parse().ok()?, id.to_string()))
}

async fn pause(round: u32) {
    let ms = 25u64.saturating_mul(1 << round.min(6)).min(1_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// A decision's changes, sorted by how `DynamoCorrelation::persist` writes them.
#[derive(Default)]
struct Sorted {
    writes: Vec<WriteRequest>,
    claims: Vec<(String, String, i64)>,
    episodes: Vec<(String, Episode, bool)>,
    origins: Vec<Arc<OriginSetup>>,
    sightings: Vec<(String, i64)>,
}

impl DynamoCorrelation {
    pub fn new(client: Client, table: impl Into<String>, ttl_seconds: i64) -> Self {
        DynamoCorrelation {
            client,
            table: table.into(),
            ttl_seconds,
            sources_written: Default::default(),
        }
    }

    fn expiry(&self, at_ms: i64) -> AttributeValue {
        n(at_ms / 1000 + self.ttl_seconds)
    }

    fn item(&self, pk: String, sk: String, at_ms: i64) -> Item {
        let mut item = key(pk, sk);
        item.insert("expires_at".to_string(), self.expiry(at_ms));
        item
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, AdapterError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AdapterError::aws("DynamoDB GetItem", e))?;
        Ok(out.item)
    }

    /// Every item of a partition (whose sort key starts with `prefix`), strongly consistent.
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

    /// Writes requests in batches of 25, several batches at once, retrying what DynamoDB left
    /// unprocessed (with backoff) until it is all written.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), AdapterError> {
        let batches: Vec<Vec<WriteRequest>> =
            requests.chunks(WRITE_BATCH).map(<[_]>::to_vec).collect();
        stream::iter(batches)
            .map(|batch| self.write_batch(batch))
            .buffer_unordered(CONCURRENCY / 2)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn write_batch(&self, mut pending: Vec<WriteRequest>) -> Result<(), AdapterError> {
        for round in 0..UNPROCESSED_ROUNDS {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| AdapterError::aws("DynamoDB BatchWriteItem", e))?;
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(&self.table))
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
            pause(round).await;
        }
        Err(AdapterError::retryable(
            "DynamoDB BatchWriteItem",
            format!("{} items still unprocessed after retries", pending.len()),
        ))
    }

    fn put_request(item: Item) -> Result<WriteRequest, AdapterError> {
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| AdapterError::aws("DynamoDB PutRequest", e))?;
        Ok(WriteRequest::builder().put_request(put).build())
    }

    fn delete_request(k: Item) -> Result<WriteRequest, AdapterError> {
        let delete = DeleteRequest::builder()
            .set_key(Some(k))
            .build()
            .map_err(|e| AdapterError::aws("DynamoDB DeleteRequest", e))?;
        Ok(WriteRequest::builder().delete_request(delete).build())
    }

    /// Reads items by key in batches of 100 (strongly consistent), retrying unprocessed keys.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, AdapterError> {
        let batches: Vec<Vec<Item>> = keys.chunks(GET_BATCH).map(<[_]>::to_vec).collect();
        let found: Vec<Vec<Item>> = stream::iter(batches)
            .map(|batch| self.get_batch(batch))
            .buffer_unordered(CONCURRENCY / 2)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn get_batch(&self, mut pending: Vec<Item>) -> Result<Vec<Item>, AdapterError> {
        let mut found = Vec::new();
        for round in 0..UNPROCESSED_ROUNDS {
            let ask = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(|e| AdapterError::aws("DynamoDB KeysAndAttributes", e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, ask)
                .send()
                .await
                .map_err(|e| AdapterError::aws("DynamoDB BatchGetItem", e))?;
            if let Some(mut r) = out.responses {
                found.extend(r.remove(&self.table).unwrap_or_default());
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut m| m.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
            pause(round).await;
        }
        Err(AdapterError::retryable(
            "DynamoDB BatchGetItem",
            format!("{} keys still unprocessed after retries", pending.len()),
        ))
    }

    /// Writes one AccessDenied call of `caller` (one item per call, keyed by its event time and
    /// id: idempotent, and concurrent calls never conflict). Written before the decision, so
    /// the window a decision reads always holds the call it decides.
    pub async fn record_denial(
        &self,
        caller: &str,
        event_id: &str,
        event_ms: i64,
        note: &DenialNote,
    ) -> Result<(), AdapterError> {
        let mut item = self.item(
            format!("caller#{caller}"),
            denial_sk(event_ms, event_id),
            event_ms,
        );
        if let Some(session) = &note.session {
            item.insert("session".to_string(), s(session));
        }
        item.insert("action".to_string(), s(&note.action));
        if let Some(resource) = &note.resource {
            item.insert("resource".to_string(), s(resource));
        }
        self.put(item).await?;
        Ok(())
    }

    /// A caller's window around `event_ms`: the `per_side` calls nearest before (and at) it and
    /// after it within `window_ms` (enough to tell whether any window holding the call reaches
    /// the threshold, however many calls a storm wrote), and the caller's episode.
    ///
    /// An episode `event_id` opened itself (an earlier attempt of this event) is left out, so a
    /// retry decides the same spike again.
    pub async fn denials(
        &self,
        caller: &str,
        event_id: &str,
        event_ms: i64,
        window_ms: i64,
        per_side: usize,
    ) -> Result<DenialWindow, AdapterError> {
        let pk = format!("caller#{caller}");
        let limit = i32::try_from(per_side.max(1)).unwrap_or(i32::MAX);
        let side = |from: String, to: String, forward: bool| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to))
                .scan_index_forward(forward)
                .limit(limit)
                .consistent_read(true)
                .send()
        };
        let lo = event_ms.saturating_sub(window_ms).saturating_add(1).max(0);
        let hi = event_ms.saturating_add(window_ms).saturating_sub(1);
        // `~` sorts after every event id character: the whole millisecond is included.
        let (before, after, episodes) = tokio::join!(
            side(
                format!("denial#{lo:015}#"),
                format!("denial#{event_ms:015}#~"),
                false
            ),
            side(
                format!("denial#{:015}#", event_ms.saturating_add(1)),
                format!("denial#{hi:015}#~"),
                true
            ),
            self.batch_get(
                [-1, 0, 1]
                    .iter()
                    .map(|d| key(&pk, episode_sk(bucket(event_ms, window_ms) + d)))
                    .collect()
            ),
        );
        let mut calls: Vec<(i64, String)> = Vec::new();
        let mut notes = std::collections::BTreeMap::new();
        for out in [before, after] {
            let out = out.map_err(|e| AdapterError::aws("DynamoDB Query", e))?;
            for item in out.items.unwrap_or_default() {
                if let Some(call) = text(&item, "sk").and_then(parse_denial_sk) {
                    // Items written before the action was kept still count, with no request.
                    if let Some(action) = text(&item, "action") {
                        notes.insert(
                            call.1.clone(),
                            DenialNote {
                                session: text(&item, "session").map(str::to_string),
                                action: action.to_string(),
                                resource: text(&item, "resource").map(str::to_string),
                            },
                        );
                    } else if let Some(session) = text(&item, "session") {
                        notes.insert(
                            call.1.clone(),
                            DenialNote {
                                session: Some(session.to_string()),
                                ..DenialNote::default()
                            },
                        );
                    }
                    calls.push(call);
                }
            }
        }
        calls.sort();
        calls.dedup();
        // Of the episodes marked in the call's bucket and its neighbours, the one that covers
        // the call (else the one marked in its own bucket, which blocks a new one there).
        let mut found = Vec::new();
        for item in episodes? {
            let field = |name: &str| {
                number(&item, name).ok_or_else(|| AdapterError::Corrupt {
                    key: format!("{pk} {}", text(&item, "sk").unwrap_or_default()),
                    reason: format!("no number `{name}`"),
                })
            };
            let own_bucket =
                text(&item, "sk") == Some(episode_sk(bucket(event_ms, window_ms)).as_str());
            found.push((
                own_bucket,
                Episode {
                    opened_by: text(&item, "opened_by").unwrap_or_default().to_string(),
                    started_ms: field("started_ms")?,
                    last_ms: field("last_ms")?,
                    window_ms: field("window_ms")?,
                },
            ));
        }
        let episode = found
            .iter()
            .find(|(_, e)| e.covers(event_ms))
            .or_else(|| found.iter().find(|(own, _)| *own))
            .map(|(_, e)| e.clone());
        Ok(DenialWindow {
            calls: calls.into(),
            episode: episode.filter(|e| e.opened_by != event_id),
            notes,
        })
    }

    /// Gathers the state one event's decision needs (AccessDenied windows are gathered by
    /// [`Self::denials`]).
    ///
    /// A SendCommand record reads its command's whole partition (it finishes every parked
    /// run). A status event reads only the record and its own targets' claims, by key: reading
    /// the partition there made a fleet of N instances cost N² item reads.
    pub async fn gather(&self, event: &Event) -> Result<JournalStore, AdapterError> {
        let mut store = JournalStore::new();
        let Some(meta) = event.meta() else {
            return Ok(store);
        };
        let (event_id, event_ms) = (&meta.event_id, meta.event_epoch_ms);
        let seen_key = format!("event#{event_id}");
        let seen = self.get(&seen_key, "seen");
        let (seen, gathered) = match event {
            Event::Activity(a) => match &a.command_id {
                Some(cmd) => {
                    let (seen, g) =
                        tokio::join!(seen, self.load_command(cmd, false, &a.meta.event_id));
                    (seen?, Some(g?))
                }
                None => (seen.await?, None),
            },
            Event::Status(st) => {
                let (seen, g) = tokio::join!(seen, self.load_pairs(st));
                (seen?, Some(g?))
            }
            Event::Origin(_) | Event::AssociationRun(_) | Event::Skipped(_) => (seen.await?, None),
        };
        if let Some(g) = gathered {
            g.merge_into(&mut store);
        }
        for setup in self.origins_for(event).await? {
            store.preload_origin(Arc::new(setup));
        }
        if seen.is_some() {
            store.preload_sighting(event_id, event_ms);
        }
        Ok(store)
    }

    /// The origin setups deciding `event` needs: an association run's definition, and for a
    /// SendCommand Systems Manager made, the execution its session names and the window tasks
    /// of its role and document.
    async fn origins_for(&self, event: &Event) -> Result<Vec<OriginSetup>, AdapterError> {
        let lookup = match event {
            Event::AssociationRun(run) => tagwatch_core::watch::origin::OriginLookup {
                association: Some(run.association_id.clone()),
                ..Default::default()
            },
            Event::Activity(a) => tagwatch_core::watch::origin::lookup_of(a),
            _ => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        for (kind, id) in [
            (OriginKind::Association, &lookup.association),
            (OriginKind::Automation, &lookup.automation),
        ] {
            let Some(id) = id else { continue };
            let pk = origin_pk(kind, id);
            if let Some(item) = self.get(&pk, "setup").await? {
                out.push(Self::json(&item, &pk)?);
            }
        }
        if let Some((role, doc)) = &lookup.window_tasks {
            let pk = window_tasks_pk(role, doc);
            for item in self.query_prefix(&pk, "task#").await? {
                out.push(Self::json(&item, &pk)?);
            }
        }
        Ok(out)
    }

    /// The association runs recorded on a node for a document (the sweep asks before it
    /// reports a command that has no record).
    pub async fn association_runs(
        &self,
        instance: &str,
        document: &str,
    ) -> Result<Vec<AssociationRun>, AdapterError> {
        let pk = format!("assocrun#{instance}#{document}");
        self.query_prefix(&pk, "run#")
            .await?
            .iter()
            .map(|item| Self::json(item, &pk))
            .collect()
    }

    /// Writes an origin's setup unless a newer definition of the same id is stored.
    async fn put_origin(&self, setup: &OriginSetup) -> Result<(), AdapterError> {
        let (pk, sk) = match setup.kind {
            OriginKind::MaintenanceWindow => {
                let (Some(role), Some(doc)) = (&setup.service_role, &setup.document) else {
                    return Ok(());
                };
                (
                    window_tasks_pk(&role_key(role), doc),
                    format!("task#{}", setup.id),
                )
            }
            kind => (origin_pk(kind, &setup.id), "setup".to_string()),
        };
        let mut item = if setup.kind == OriginKind::Automation {
            self.item(pk.clone(), sk, setup.call.meta.event_epoch_ms)
        } else {
            key(pk.clone(), sk)
        };
        item.insert("json".into(), to_json(setup, &pk)?);
        item.insert("set_at".into(), n(setup.call.meta.event_epoch_ms));
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR set_at <= :ms")
            .expression_attribute_values(":ms", n(setup.call.meta.event_epoch_ms))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(AdapterError::aws("DynamoDB PutItem", e)),
        }
    }

    /// What a status event needs of its command's partition: the record and its targets'
    /// claims, by key.
    async fn load_pairs(&self, st: &StatusChange) -> Result<Gathered, AdapterError> {
        let pk = format!("command#{}", st.command_id);
        let mut keys = vec![key(&pk, "record")];
        keys.extend(
            st.targets
                .iter()
                .map(|t| key(&pk, format!("claim#{}", t.id))),
        );
        let mut out = Gathered::default();
        for item in self.batch_get(keys).await? {
            let sk = text(&item, "sk").unwrap_or_default();
            if sk == "record" {
                out.record = Some(Self::json(&item, &pk)?);
            } else if let Some(instance) = sk.strip_prefix("claim#") {
                if text(&item, "owner") != Some(st.meta.event_id.as_str()) {
                    out.claims
                        .push((st.command_id.clone(), instance.to_string()));
                }
            }
        }
        Ok(out)
    }

    /// Whether a command's SendCommand record is stored.
    pub async fn has_record(&self, command_id: &str) -> Result<bool, AdapterError> {
        Ok(self
            .get(&format!("command#{command_id}"), "record")
            .await?
            .is_some())
    }

    /// A command's record, claims (but those `owner` holds), and parked and overdue
    /// invocations.
    pub async fn gather_command(
        &self,
        command_id: &str,
        owner: &str,
    ) -> Result<JournalStore, AdapterError> {
        let mut store = JournalStore::new();
        self.load_command(command_id, true, owner)
            .await?
            .merge_into(&mut store);
        Ok(store)
    }

    /// Claims `owner` holds are left out: an earlier attempt of the same event made them, and
    /// a retry must decide their findings again (it has not staged them yet, maybe).
    async fn load_command(
        &self,
        cmd: &str,
        record: bool,
        owner: &str,
    ) -> Result<Gathered, AdapterError> {
        let pk = format!("command#{cmd}");
        let mut out = Gathered::default();
        for item in self.query_prefix(&pk, "").await? {
            let sk = text(&item, "sk").unwrap_or_default();
            if sk == "record" {
                if record {
                    out.record = Some(Self::json(&item, &pk)?);
                }
            } else if let Some(instance) = sk.strip_prefix("claim#") {
                if text(&item, "owner") != Some(owner) {
                    out.claims.push((cmd.to_string(), instance.to_string()));
                }
            } else if let Some(instance) = sk
                .strip_prefix("parked#")
                .or_else(|| sk.strip_prefix("overdue#"))
            {
                let status: StatusChange = Self::json(&item, &format!("{pk} {sk}"))?;
                out.parked.push(Parked {
                    command_id: cmd.to_string(),
                    instance_id: instance.to_string(),
                    status: Arc::new(status),
                });
            }
        }
        Ok(out)
    }

    /// Writes back what a decision of `owner`'s (the event id, whose outbox holds the
    /// findings) changed. Claims are conditional (a twin of the same event may claim again:
    /// they share one outbox); episodes open only over a closed one. Sightings are written
    /// last, so a retry after a partial failure decides again from the same state.
    pub async fn persist(
        &self,
        owner: &str,
        changes: Vec<Change>,
    ) -> Result<Persisted, AdapterError> {
        let Sorted {
            writes,
            claims,
            episodes,
            origins,
            sightings,
        } = self.sort(changes)?;
        let mut result = Persisted::default();
        for setup in origins {
            self.put_origin(&setup).await?;
        }
        self.batch_write(writes).await?;
        let lost: Vec<Option<(String, String)>> = stream::iter(claims)
            .map(|(cmd, instance, ms)| self.claim(owner, cmd, instance, ms))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        result.lost_claims = lost.into_iter().flatten().collect();
        for (caller, episode, opened) in episodes {
            // An episode this event opened is stored whole; one it joined is carried forward
            // to its call. An opener that lost leaves the episode to the calls that found it.
            if !opened {
                self.extend_episode(&caller, &episode).await?;
            } else if !self.open_episode(&caller, &episode).await? {
                result
                    .lost_episodes
                    .push((caller.clone(), episode.opened_by.clone()));
            }
        }
        for (event_id, event_ms) in sightings {
            result.duplicate_event |= !self.sight(&event_id, event_ms).await?;
        }
        Ok(result)
    }

    /// An unconditional `PutItem`.
    async fn put(&self, item: HashMap<String, AttributeValue>) -> Result<(), AdapterError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| AdapterError::aws("DynamoDB PutItem", e))?;
        Ok(())
    }

    /// Records an event as seen; `false` when it already was.
    async fn sight(&self, event_id: &str, event_ms: i64) -> Result<bool, AdapterError> {
        let item = self.item(format!("event#{event_id}"), "seen".into(), event_ms);
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(AdapterError::aws("DynamoDB PutItem", e)),
        }
    }

    /// Sorts a decision's changes by how they are written: plain puts and deletes (batched),
    /// conditional claims, episodes, origins and sightings.
    fn sort(&self, changes: Vec<Change>) -> Result<Sorted, AdapterError> {
        let mut sorted = Sorted::default();
        let Sorted {
            writes,
            claims,
            episodes,
            origins,
            sightings,
        } = &mut sorted;
        for change in changes {
            match change {
                Change::Sighted { event_id, event_ms } => sightings.push((event_id, event_ms)),
                Change::Command(a) => {
                    let Some(cmd) = &a.command_id else { continue };
                    let pk = format!("command#{cmd}");
                    let mut item = self.item(pk.clone(), "record".into(), a.meta.event_epoch_ms);
                    item.insert("json".into(), to_json(&*a, &pk)?);
                    writes.push(Self::put_request(item)?);
                }
                Change::Claimed {
                    command_id,
                    instance_id,
                    event_ms,
                } => claims.push((command_id, instance_id, event_ms)),
                Change::Parked(p) => {
                    let pk = format!("command#{}", p.command_id);
                    let mut item = self.item(
                        pk.clone(),
                        format!("parked#{}", p.instance_id),
                        p.status.meta.event_epoch_ms,
                    );
                    item.insert("json".into(), to_json(&*p.status, &pk)?);
                    item.insert("park_queue".into(), s(QUEUE_PARKED));
                    item.insert("parked_at".into(), n(p.status.meta.event_epoch_ms));
                    writes.push(Self::put_request(item)?);
                }
                Change::Unparked {
                    command_id,
                    instance_ids,
                } => {
                    for instance in instance_ids {
                        for state in ["parked", "overdue"] {
                            writes.push(Self::delete_request(key(
                                format!("command#{command_id}"),
                                format!("{state}#{instance}"),
                            ))?);
                        }
                    }
                }
                Change::Episode {
                    caller,
                    episode,
                    opened,
                } => episodes.push((caller, episode, opened)),
                Change::Origin(setup) => origins.push(setup),
                Change::AssociationRan(run) => {
                    let pk = format!("assocrun#{}#{}", run.target.id, run.document.id);
                    let mut item = self.item(
                        pk.clone(),
                        format!(
                            "run#{:015}#{}",
                            run.meta.event_epoch_ms.max(0),
                            run.association_id
                        ),
                        run.meta.event_epoch_ms,
                    );
                    item.insert("json".into(), to_json(&*run, &pk)?);
                    writes.push(Self::put_request(item)?);
                }
            }
        }
        Ok(sorted)
    }

    /// Claims a pair for `owner`; the pair when another event holds it.
    async fn claim(
        &self,
        owner: &str,
        command_id: String,
        instance_id: String,
        event_ms: i64,
    ) -> Result<Option<(String, String)>, AdapterError> {
        let mut item = self.item(
            format!("command#{command_id}"),
            format!("claim#{instance_id}"),
            event_ms,
        );
        item.insert("owner".into(), s(owner));
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(sk) OR #owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match out {
            Ok(_) => Ok(None),
            Err(e) if is_conditional_failure(&e) => Ok(Some((command_id, instance_id))),
            Err(e) => Err(AdapterError::aws("DynamoDB PutItem", e)),
        }
    }

    /// Opens an episode unless another covers it. An episode marks every spike-window-long
    /// bucket of event time it could reach (from a window before its first call to a window
    /// after its last), in one transaction of conditional puts: of two openers whose episodes
    /// overlap, one transaction fails. Episodes that arrive out of order (a late burst an hour
    /// back) mark other buckets and never replace each other. A retry by the same opener
    /// succeeds again.
    async fn open_episode(&self, caller: &str, e: &Episode) -> Result<bool, AdapterError> {
        let pk = format!("caller#{caller}");
        let first = bucket(e.opens_ms(), e.window_ms);
        let last = bucket(e.closes_ms(), e.window_ms);
        let mut items = Vec::new();
        for b in first..=last.min(first + 90) {
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(self.episode_item(&pk, b, e)))
                // Free, ours (a retry), or marked by an episode this one does not reach (it
                // closed a full window before our first call, or opens after our last).
                .condition_expression(
                    "attribute_not_exists(pk) OR opened_by = :me OR closes_ms <= :started OR opens_ms >= :last",
                )
                .expression_attribute_values(":me", s(&e.opened_by))
                .expression_attribute_values(":started", n(e.started_ms.min(e.last_ms)))
                .expression_attribute_values(":last", n(e.last_ms))
                .build()
                .map_err(|err| AdapterError::aws("DynamoDB Put", err))?;
            items.push(
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .put(put)
                    .build(),
            );
        }
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(err) => {
                let lost = err
                    .as_service_error()
                    .and_then(|se| match se {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => Some(t),
                        _ => None,
                    })
                    .is_some_and(|t| {
                        t.cancellation_reasons()
                            .iter()
                            .any(|r| r.code() == Some("ConditionalCheckFailed"))
                    });
                if lost {
                    Ok(false)
                } else {
                    Err(AdapterError::aws("DynamoDB TransactWriteItems", err))
                }
            }
        }
    }

    fn episode_item(&self, pk: &str, b: i64, e: &Episode) -> Item {
        let mut item = self.item(pk.to_string(), episode_sk(b), e.last_ms);
        item.insert("opened_by".into(), s(&e.opened_by));
        item.insert("started_ms".into(), n(e.started_ms));
        item.insert("last_ms".into(), n(e.last_ms));
        item.insert("window_ms".into(), n(e.window_ms));
        item.insert("opens_ms".into(), n(e.opens_ms()));
        item.insert("closes_ms".into(), n(e.closes_ms()));
        item
    }

    /// Carries an episode forward to a later call: the buckets the call's window reaches are
    /// marked for it (unless another episode holds them), and its last call moves forward (a
    /// commutative maximum, so concurrent extensions never conflict).
    async fn extend_episode(&self, caller: &str, e: &Episode) -> Result<(), AdapterError> {
        let pk = format!("caller#{caller}");
        let from = bucket(e.last_ms, e.window_ms);
        for b in from..=bucket(e.closes_ms(), e.window_ms) {
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(&pk, episode_sk(b))))
                .update_expression(
                    "SET opened_by = :me, started_ms = if_not_exists(started_ms, :started), opens_ms = if_not_exists(opens_ms, :opens), window_ms = :w, last_ms = :last, closes_ms = :closes, expires_at = :exp",
                )
                .condition_expression(
                    "attribute_not_exists(pk) OR (opened_by = :me AND last_ms < :last)",
                )
                .expression_attribute_values(":me", s(&e.opened_by))
                .expression_attribute_values(":started", n(e.started_ms))
                .expression_attribute_values(":opens", n(e.opens_ms()))
                .expression_attribute_values(":closes", n(e.closes_ms()))
                .expression_attribute_values(":w", n(e.window_ms))
                .expression_attribute_values(":last", n(e.last_ms))
                .expression_attribute_values(":exp", self.expiry(e.last_ms))
                .send()
                .await;
            match out {
                Ok(_) => {}
                Err(err) if is_conditional_failure(&err) => {}
                Err(err) => return Err(AdapterError::aws("DynamoDB UpdateItem", err)),
            }
        }
        Ok(())
    }

    /// Invocations due for the sweep, at most `limit`: overdue ones not yet reported (a sweep
    /// that took them and stopped), then those parked before `cutoff_ms`, oldest first, from
    /// the sparse index. An unreadable item is taken out of the index and returned as such.
    pub async fn due_parked(
        &self,
        cutoff_ms: i64,
        limit: usize,
    ) -> Result<Vec<DueParked>, AdapterError> {
        let mut due = Vec::new();
        for (queue, overdue) in [(QUEUE_OVERDUE, true), (QUEUE_PARKED, false)] {
            let mut start: Option<Item> = None;
            while due.len() < limit {
                let left = i32::try_from(limit - due.len()).unwrap_or(i32::MAX);
                let mut req = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(PARK_INDEX)
                    .expression_attribute_values(":q", s(queue))
                    .limit(left)
                    .set_exclusive_start_key(start.take());
                req = if overdue {
                    req.key_condition_expression("park_queue = :q")
                } else {
                    req.key_condition_expression("park_queue = :q AND parked_at < :cutoff")
                        .expression_attribute_values(":cutoff", n(cutoff_ms))
                };
                let out = req
                    .send()
                    .await
                    .map_err(|e| AdapterError::aws("DynamoDB Query", e))?;
                for item in out.items.unwrap_or_default() {
                    due.push(self.due_item(&item, overdue).await?);
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        due.truncate(limit);
        Ok(due)
    }

    async fn due_item(&self, item: &Item, overdue: bool) -> Result<DueParked, AdapterError> {
        let pk = text(item, "pk").unwrap_or_default().to_string();
        let sk = text(item, "sk").unwrap_or_default().to_string();
        let name = format!("{pk} {sk}");
        let pair = pk.strip_prefix("command#").zip(
            sk.strip_prefix("parked#")
                .or_else(|| sk.strip_prefix("overdue#")),
        );
        let status = Self::json::<StatusChange>(item, &name);
        match (pair, status) {
            (Some((command_id, instance_id)), Ok(status)) => Ok(DueParked::Pair {
                parked: Parked {
                    command_id: command_id.to_string(),
                    instance_id: instance_id.to_string(),
                    status: Arc::new(status),
                },
                overdue,
            }),
            (_, status) => {
                let reason = match status {
                    Err(e) => e.to_string(),
                    Ok(_) => "not a parked invocation's key".to_string(),
                };
                // Kept for inspection, out of the sweep's way.
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(&pk, &sk)))
                    .update_expression("REMOVE park_queue SET unreadable = :why")
                    .expression_attribute_values(":why", s(&reason))
                    .send()
                    .await
                    .map_err(|e| AdapterError::aws("DynamoDB UpdateItem", e))?;
                Ok(DueParked::Unreadable { key: name, reason })
            }
        }
    }

    /// Takes a parked invocation for the sweep's report: it becomes an overdue marker (still
    /// indexed until [`Self::reported_overdue`], so a sweep that stops after taking it reports
    /// it next time; still gathered, so a record that arrives later evaluates it). False when
    /// it was gone (the CloudTrail watcher finished it meanwhile). Idempotent: the marker is
    /// written before the parked item is deleted, so a call whose answer was lost (a 500 after
    /// DynamoDB did the work) is retried to the same result instead of losing the pair.
    pub async fn take_overdue(&self, parked: &Parked) -> Result<bool, AdapterError> {
        let pk = format!("command#{}", parked.command_id);
        let parked_sk = format!("parked#{}", parked.instance_id);
        let overdue_sk = format!("overdue#{}", parked.instance_id);
        let Some(mut item) = self.get(&pk, &parked_sk).await? else {
            // Taken by an earlier attempt of ours, or finished by the CloudTrail watcher.
            let marker = self.get(&pk, &overdue_sk).await?;
            return Ok(marker.is_some_and(|m| text(&m, "park_queue") == Some(QUEUE_OVERDUE)));
        };
        item.insert("sk".into(), s(&overdue_sk));
        item.insert("park_queue".into(), s(QUEUE_OVERDUE));
        self.put(item).await?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&pk, &parked_sk)))
            .send()
            .await
            .map_err(|e| AdapterError::aws("DynamoDB DeleteItem", e))?;
        Ok(true)
    }

    /// The overdue invocations' findings are staged: out of the sweep's index.
    pub async fn reported_overdue(&self, parked: &[Parked]) -> Result<(), AdapterError> {
        let keys: Vec<Item> = parked
            .iter()
            .map(|p| {
                key(
                    format!("command#{}", p.command_id),
                    format!("overdue#{}", p.instance_id),
                )
            })
            .collect();
        stream::iter(keys)
            .map(|k| {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(k))
                    .update_expression("REMOVE park_queue")
                    .condition_expression("attribute_exists(pk)")
                    .send()
            })
            .buffer_unordered(CONCURRENCY)
            .map(|out| match out {
                Ok(_) => Ok(()),
                Err(e) if is_conditional_failure(&e) => Ok(()),
                Err(e) => Err(AdapterError::aws("DynamoDB UpdateItem", e)),
            })
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Removes parked invocations that need no report (their pair was evaluated).
    pub async fn drop_parked(&self, parked: &[Parked]) -> Result<(), AdapterError> {
        let mut writes = Vec::new();
        for p in parked {
            for state in ["parked", "overdue"] {
                writes.push(Self::delete_request(key(
                    format!("command#{}", p.command_id),
                    format!("{state}#{}", p.instance_id),
                ))?);
            }
        }
        self.batch_write(writes).await
    }

    /// Stages findings in the outbox of the event (or sweep) that produced them, before any
    /// state is written: a retry of the same event delivers what an earlier attempt staged.
    /// Records grouped findings in their windows, [`CONCURRENCY`] at a time, each count in
    /// the order of `entries`.
    pub async fn dedupe(&self, entries: &[GroupEntry]) -> Result<Vec<u64>, AdapterError> {
        stream::iter(entries.to_vec())
            .map(|e| async move { self.dedupe_one(&e).await })
            .buffered(CONCURRENCY)
            .try_collect()
            .await
    }

    /// One grouped finding: its own item (writes commute, a retry writes the same item), then
    /// the window's owner item, written only when there is none or it is this finding's (so
    /// exactly one finding owns a window, and a retry of the owner owns it again); a finding
    /// that does not own the window counts the window's findings (strongly consistent, page by
    /// page).
    async fn dedupe_one(&self, e: &GroupEntry) -> Result<u64, AdapterError> {
        let pk = format!("group#{}#{}", e.group, e.window);
        self.put(self.item(pk.clone(), format!("f#{}", e.finding_id), e.event_ms))
            .await?;
        let mut owner = self.item(pk.clone(), "owner".into(), e.event_ms);
        owner.insert("owner".into(), s(&e.finding_id));
        let claimed = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(owner))
            .condition_expression("attribute_not_exists(pk) OR #o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", s(&e.finding_id))
            .send()
            .await;
        match claimed {
            Ok(_) => return Ok(count_for(true, 1)),
            Err(err) if is_conditional_failure(&err) => {}
            Err(err) => return Err(AdapterError::aws("DynamoDB PutItem", err)),
        }
        let mut seen: u64 = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :f)")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":f", s("f#"))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| AdapterError::aws("DynamoDB Query", e))?;
            seen += u64::from(out.count.unsigned_abs());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(count_for(false, seen))
    }

    /// Moves a source's last event time forward (a conditional write: an older time never
    /// overwrites a newer one), at most once a minute of event time per environment.
    pub async fn saw_source(
        &self,
        account: &str,
        region: &str,
        partition: &str,
        event_ms: i64,
    ) -> Result<(), AdapterError> {
        let key_pair = (account.to_string(), region.to_string());
        {
            let written = self
                .sources_written
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if written
                .get(&key_pair)
                .is_some_and(|ms| event_ms < ms + SOURCE_WRITE_MS)
            {
                return Ok(());
            }
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key("sources", format!("{account}#{region}"))))
            .update_expression("SET last_ms = :ms, #p = :p, account = :a, #r = :r")
            .condition_expression("attribute_not_exists(last_ms) OR last_ms < :ms")
            .expression_attribute_names("#p", "partition")
            .expression_attribute_names("#r", "region")
            .expression_attribute_values(":ms", n(event_ms))
            .expression_attribute_values(":p", s(partition))
            .expression_attribute_values(":a", s(account))
            .expression_attribute_values(":r", s(region))
            .send()
            .await;
        match out {
            Ok(_) => {}
            // A newer event of the source is already written.
            Err(e) if is_conditional_failure(&e) => {}
            Err(e) => return Err(AdapterError::aws("DynamoDB UpdateItem", e)),
        }
        self.sources_written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key_pair, event_ms);
        Ok(())
    }

    /// Every source with its last event time.
    pub async fn sources(&self) -> Result<Vec<SourceSeen>, AdapterError> {
        let mut out = Vec::new();
        for item in self.query_prefix("sources", "").await? {
            let corrupt = |reason: &str| AdapterError::Corrupt {
                key: format!("sources {}", text(&item, "sk").unwrap_or_default()),
                reason: reason.to_string(),
            };
            out.push(SourceSeen {
                account: text(&item, "account")
                    .ok_or_else(|| corrupt("no `account`"))?
                    .to_string(),
                region: text(&item, "region")
                    .ok_or_else(|| corrupt("no `region`"))?
                    .to_string(),
                partition: text(&item, "partition")
                    .ok_or_else(|| corrupt("no `partition`"))?
                    .to_string(),
                last_ms: number(&item, "last_ms").ok_or_else(|| corrupt("no number `last_ms`"))?,
            });
        }
        Ok(out)
    }

    pub async fn stage(
        &self,
        outbox: &str,
        findings: &[Finding],
        now_ms: i64,
    ) -> Result<(), AdapterError> {
        let mut writes = Vec::with_capacity(findings.len());
        for f in findings {
            let pk = format!("event#{outbox}");
            let mut item = self.item(pk.clone(), format!("finding#{}", f.finding_id), now_ms);
            item.insert("json".into(), to_json(f, &pk)?);
            writes.push(Self::put_request(item)?);
        }
        self.batch_write(writes).await
    }

    /// The findings staged for an event, in finding-id order.
    pub async fn staged(&self, outbox: &str) -> Result<Vec<Finding>, AdapterError> {
        let pk = format!("event#{outbox}");
        let mut out = Vec::new();
        for item in self.query_prefix(&pk, "finding#").await? {
            out.push(Self::json(&item, &pk)?);
        }
        Ok(out)
    }

    /// The sinks each finding has already reached (ids absent from the map reached none).
    pub async fn delivered(
        &self,
        finding_ids: &[String],
        sinks: &[&str],
    ) -> Result<HashMap<String, Vec<String>>, AdapterError> {
        let keys = finding_ids
            .iter()
            .flat_map(|id| {
                sinks
                    .iter()
                    .map(move |sink| key(format!("finding#{id}"), format!("sink#{sink}")))
            })
            .collect();
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for item in self.batch_get(keys).await? {
            let id = text(&item, "pk").and_then(|pk| pk.strip_prefix("finding#"));
            let sink = text(&item, "sk").and_then(|sk| sk.strip_prefix("sink#"));
            if let (Some(id), Some(sink)) = (id, sink) {
                out.entry(id.to_string())
                    .or_default()
                    .push(sink.to_string());
            }
        }
        Ok(out)
    }

    /// Takes the delivery lease of each finding for `holder` until `now_ms + lease_ms`: granted
    /// when nobody holds it, the holder's lease ran out, or `holder` already holds it (Lambda
    /// retries an invocation under the same request id).
    pub async fn lease(
        &self,
        finding_ids: &[String],
        holder: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<Lease>, AdapterError> {
        stream::iter(finding_ids.to_vec())
            .map(|id| async move {
                let out = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(format!("finding#{id}"), "lease")))
                    .update_expression("SET holder = :me, until_ms = :until, expires_at = :exp")
                    .condition_expression(
                        "attribute_not_exists(pk) OR holder = :me OR until_ms < :now",
                    )
                    .expression_attribute_values(":me", s(holder))
                    .expression_attribute_values(":until", n(now_ms.saturating_add(lease_ms)))
                    .expression_attribute_values(":now", n(now_ms))
                    .expression_attribute_values(":exp", self.expiry(now_ms))
                    .send()
                    .await;
                match out {
                    Ok(_) => Ok(Lease::Granted),
                    Err(e) if is_conditional_failure(&e) => Ok(Lease::HeldElsewhere),
                    Err(e) => Err(AdapterError::aws("DynamoDB UpdateItem", e)),
                }
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await
    }

    /// Gives back the leases `holder` took (a failed attempt: whoever retries need not wait).
    pub async fn release(&self, finding_ids: &[String], holder: &str) -> Result<(), AdapterError> {
        stream::iter(finding_ids.to_vec())
            .map(|id| async move {
                let out = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(format!("finding#{id}"), "lease")))
                    .condition_expression("holder = :me")
                    .expression_attribute_values(":me", s(holder))
                    .send()
                    .await;
                match out {
                    Ok(_) => Ok(()),
                    Err(e) if is_conditional_failure(&e) => Ok(()),
                    Err(e) => Err(AdapterError::aws("DynamoDB DeleteItem", e)),
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Records that findings reached `sink` (idempotent puts, in batches).
    pub async fn mark_delivered(
        &self,
        finding_ids: &[String],
        sink: &str,
        now_ms: i64,
    ) -> Result<(), AdapterError> {
        let mut writes = Vec::with_capacity(finding_ids.len());
        for id in finding_ids {
            writes.push(Self::put_request(self.item(
                format!("finding#{id}"),
                format!("sink#{sink}"),
                now_ms,
            ))?);
        }
        self.batch_write(writes).await
    }
}

/// What a command's partition held.
#[derive(Debug, Default)]
struct Gathered {
    record: Option<Activity>,
    claims: Vec<(String, String)>,
    parked: Vec<Parked>,
}

impl Gathered {
    fn merge_into(self, store: &mut JournalStore) {
        if let Some(a) = self.record {
            store.preload_command(Arc::new(a));
        }
        for (c, i) in self.claims {
            store.preload_claim(&c, &i, 0);
        }
        for p in self.parked {
            store.preload_parked(p);
        }
    }
}
