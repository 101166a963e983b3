//! `tagwatch-backfill`: the replay core over CloudTrail archives in S3, for the backfill state
//! machine (`templates/backfill.yaml`). Two requests:
//!
//! - a **plan** (`{"plan": {"bucket", "prefix", "from", "to", "accounts", "regions", "run"},
//!   "execution"}`: the run is `plan.run`, else the execution's name):
//!   the archive's selected day folders, one item per account, region and day (so one caller's
//!   calls of a day stay together for the spike windows), written as a JSON array to
//!   `s3://RESULTS/PREFIX/RUN/items.json`, which the Distributed Map reads its items from;
//! - a **batch** (`{"Items": [...], "BatchInput": {"run"}}`, as the Map's `ItemBatcher` builds
//!   it): each day's log files read in key order through the same records and watcher as
//!   `tagwatch replay`, with live tags (at home and in member accounts, as the watchers read
//!   them). A day's findings go to the findings log group, each batch that gets through added
//!   to the day's log mark (`RUN/logged/ACCOUNT/REGION/DATE.json`: the ids logged), and to
//!   `RUN/findings/ACCOUNT/REGION/DATE.jsonl`; then its summary,
//!   `RUN/days/ACCOUNT/REGION/DATE.json`, marks it done. A run started again with the same name
//!   skips the days already done; a day done again (a failure before its summary) logs only
//!   the findings its log mark does not name. Finding ids are deterministic, so re-running a
//!   day writes the same findings under the same ids.
//!
//! A backfill judges the past: it never alerts and emits no alarm metric. A retryable failure
//! (throttling, 5xx after the SDK's retries) fails the invocation as `RetryableAwsError`, and
//! the state machine retries the batch: its finished days are skipped. An invocation near its
//! deadline stops between days and fails as `RetryableTimeBudget`, so the retry carries on.
//! Records that cannot be processed never fail a batch: each day's summary counts them and
//! lists the first ones with their `s3://` place; the objects stay where they are.

use std::collections::BTreeMap;
use std::io::Read;

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tagwatch_core::archive::{DayPrefix, Selection};
use tagwatch_core::intent::inventory::{Inventory, TagLookup};
use tagwatch_core::replay::{Chunk, Item, Records};
use tagwatch_core::watch::correlation::MemoryStore;
use tagwatch_core::watch::dedupe::Dedupe;
use tagwatch_core::watch::event::normalize;
use tagwatch_core::watch::finding::Finding;
use tagwatch_core::watch::links::logs_insights_link;
use tagwatch_core::watch::outputs::{
    log_message, LOG_BATCH_BYTES, LOG_BATCH_EVENTS, LOG_EVENT_OVERHEAD,
};
use tagwatch_core::watch::watcher::{tag_query, Watcher};
use tagwatch_core::Intent;
use tagwatch_lambda::pipeline::{gather_tags, place, Reach};
use tagwatch_lambda::ports::{Archive, FindingLog, PortError, TagScope, TagSource};

pub const FUNCTION: &str = "backfill";

/// How many unprocessable records a day's summary lists (all are counted).
pub const MALFORMED_LISTED: usize = 20;

/// `tagwatch replay`'s default `--correlation-window` (a day).
const CORRELATION_WINDOW_MS: i64 = 86_400_000;

/// The margin kept before the deadline: an invocation starts another day only with one and a
/// half times its longest day so far and this much left (the first day always starts).
pub const DEADLINE_MARGIN_MS: i64 = 5_000;

/// What the function talks to.
pub struct Ports<'a, T, L, A> {
    pub tags: &'a T,
    pub log: &'a L,
    pub archive: &'a A,
    pub scope: &'a TagScope,
    /// Tags given with the deployment (`TAGWATCH_INVENTORY`; empty without): resources it
    /// lists are judged with its tags and never looked up.
    pub inventory: &'a Inventory,
}

/// The given inventory first, then the live tags gathered so far.
struct Layered<'a> {
    given: &'a Inventory,
    live: &'a Inventory,
}

impl TagLookup for Layered<'_> {
    fn tags(&self, id: &str) -> Option<&tagwatch_core::intent::inventory::TagSet> {
        self.given.tags(id).or_else(|| self.live.tags(id))
    }
}

/// The function's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub results_bucket: String,
    /// Ends in `/` (or is empty).
    pub results_prefix: String,
    pub fetches: usize,
    pub max_record_bytes: usize,
    /// Findings per `PutLogEvents` call, at most [`LOG_BATCH_EVENTS`] (the call's limit).
    pub log_batch_events: usize,
}

/// Why an invocation fails.
#[derive(Debug)]
pub enum Failure {
    /// The request is not one this function takes.
    BadRequest(String),
    Port(PortError),
    /// Too little time left for another day; the finished days are kept.
    TimeBudget {
        done: usize,
        left: usize,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::BadRequest(why) => write!(f, "bad request: {why}"),
            Failure::Port(e) => write!(f, "{e}"),
            Failure::TimeBudget { done, left } => write!(
                f,
                "{done} days done, {left} left and too little time for another: retry to carry on (finished days are skipped)"
            ),
        }
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// Lambda's `errorType`: the state machine retries `Retryable…` ones.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::BadRequest(_) => "BadRequest",
            Failure::Port(PortError::Retryable(_)) => "RetryableAwsError",
            Failure::Port(PortError::Permanent(_)) => "PermanentAwsError",
            Failure::Port(PortError::Corrupt(_)) => "CorruptState",
            Failure::TimeBudget { .. } => "RetryableTimeBudget",
        }
    }
}

impl From<PortError> for Failure {
    fn from(e: PortError) -> Self {
        Failure::Port(e)
    }
}

/// What to backfill (the state machine's input).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    /// The run's name (results under `RUN/`); a run started again under the same name skips
    /// the days it finished.
    #[serde(default)]
    pub run: Option<String>,
}

/// One item of the Distributed Map: a day folder of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayItem {
    /// The archive's bucket.
    pub bucket: String,
    #[serde(flatten)]
    pub day: DayPrefix,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchInput {
    run: String,
}

#[derive(Debug, Deserialize)]
struct Batch {
    #[serde(rename = "Items")]
    items: Vec<DayItem>,
    #[serde(rename = "BatchInput")]
    batch_input: BatchInput,
}

/// A run's name: what Step Functions allows in an execution name (1 to 80 letters, digits,
/// `-` and `_`; also `.`), so it is safe in S3 keys and log stream names.
fn check_run(run: &str) -> Result<(), Failure> {
    let ok = (1..=80).contains(&run.len())
        && run
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && run != "."
        && run != "..";
    if ok {
        Ok(())
    } else {
        Err(Failure::BadRequest(format!(
            "`run` {run:?} must be 1 to 80 letters, digits, `-`, `_` or `.`"
        )))
    }
}

/// Handles one request.
pub async fn handle<T: TagSource, L: FindingLog, A: Archive>(
    ports: &Ports<'_, T, L, A>,
    intent: &Intent,
    settings: &Settings,
    event: &Value,
    deadline_ms: Option<i64>,
) -> Result<Value, Failure> {
    if event.get("Items").is_some() {
        let batch: Batch = serde_json::from_value(event.clone())
            .map_err(|e| Failure::BadRequest(format!("a batch: {e}")))?;
        check_run(&batch.batch_input.run)?;
        for (i, item) in batch.items.iter().enumerate() {
            item.day
                .check()
                .map_err(|e| Failure::BadRequest(format!("$.Items[{i}]: {e}")))?;
        }
        return run_batch(ports, intent, settings, &batch, deadline_ms).await;
    }
    if let Some(plan) = event.get("plan") {
        let input: PlanInput = serde_json::from_value(plan.clone())
            .map_err(|e| Failure::BadRequest(format!("$.plan: {e}")))?;
        // The run named in the input, else the request's, else the execution's name (the state
        // machine passes it as `execution`).
        let run = input
            .run
            .as_deref()
            .or_else(|| event.get("run").and_then(Value::as_str))
            .or_else(|| event.get("execution").and_then(Value::as_str))
            .ok_or_else(|| {
                Failure::BadRequest(
                    "$.run: a run name is required ($.plan.run, $.run or $.execution)".to_string(),
                )
            })?;
        check_run(run)?;
        return plan_run(ports, settings, &input, run).await;
    }
    Err(Failure::BadRequest(
        "expected a plan ({\"plan\": {...}, \"run\": NAME}) or a batch ({\"Items\": [...], \"BatchInput\": {\"run\": NAME}})".to_string(),
    ))
}

/// The items of a run, written where the Distributed Map reads them.
async fn plan_run<T, L, A: Archive>(
    ports: &Ports<'_, T, L, A>,
    settings: &Settings,
    input: &PlanInput,
    run: &str,
) -> Result<Value, Failure> {
    let selection = Selection::new(
        input.from.as_deref(),
        input.to.as_deref(),
        &input.accounts,
        &input.regions,
    )
    .map_err(|e| Failure::BadRequest(format!("$.plan: {e}")))?;
    let days = ports
        .archive
        .days(&input.bucket, &input.prefix, &selection)
        .await?;
    let items: Vec<DayItem> = days
        .into_iter()
        .map(|day| DayItem {
            bucket: input.bucket.clone(),
            day,
        })
        .collect();
    let key = format!("{}{run}/items.json", settings.results_prefix);
    let body = serde_json::to_vec(&items)
        .map_err(|e| Failure::Port(PortError::Permanent(e.to_string().into())))?;
    ports
        .archive
        .put(&settings.results_bucket, &key, body, "application/json")
        .await?;
    tracing::info!(
        run,
        days = items.len(),
        key = key.as_str(),
        "backfill planned"
    );
    Ok(json!({
        "run": run,
        "bucket": settings.results_bucket,
        "key": key,
        "days": items.len(),
    }))
}

/// What one day's replay found and read: its summary object.
#[derive(Debug, Default, Serialize)]
struct DaySummary {
    source: String,
    account: String,
    region: String,
    date: String,
    objects: u64,
    bytes: u64,
    /// Events and records read (malformed ones included).
    records: u64,
    /// Records skipped before a full parse: certainly not SSM.
    prefiltered: u64,
    malformed: u64,
    /// The first [`MALFORMED_LISTED`] records that could not be processed: where and why.
    malformed_examples: Vec<Value>,
    findings: BTreeMap<String, u64>,
    /// `no_access` findings: the member account's reader role was refused.
    no_access: u64,
    /// The findings' JSON lines, when there were any.
    findings_key: Option<String>,
    /// Findings a retry of the day found in the log group already (its log mark names them),
    /// so did not log again.
    already_logged: u64,
}

async fn run_batch<T: TagSource, L: FindingLog, A: Archive>(
    ports: &Ports<'_, T, L, A>,
    intent: &Intent,
    settings: &Settings,
    batch: &Batch,
    deadline_ms: Option<i64>,
) -> Result<Value, Failure> {
    let run = &batch.batch_input.run;
    let mut done = Vec::new();
    let mut skipped = 0u64;
    let mut totals = BTreeMap::<String, u64>::new();
    let mut longest_ms = 0i64;
    for (i, item) in batch.items.iter().enumerate() {
        let started = tagwatch_lambda::clock::now_ms();
        let needed = longest_ms.saturating_mul(3) / 2 + DEADLINE_MARGIN_MS;
        if i > 0 && deadline_ms.is_some_and(|d| d - started < needed) {
            return Err(Failure::TimeBudget {
                done: i,
                left: batch.items.len() - i,
            });
        }
        let day = &item.day;
        // RUN/KIND/ACCOUNT/REGION/DATE.EXT (the day was checked: its fields are a folder's).
        let key = |kind: &str, ext: &str| {
            format!(
                "{}{run}/{kind}/{}/{}/{}.{ext}",
                settings.results_prefix, day.account, day.region, day.date
            )
        };
        let summary_key = key("days", "json");
        if ports
            .archive
            .exists(&settings.results_bucket, &summary_key)
            .await?
        {
            skipped += 1;
            continue;
        }
        // The log group first (batch by batch, each one marked when it got through), then the
        // findings object, then the summary that marks the day done: a failure in between
        // leaves the day to be done again, never marked without its findings, and the retry
        // logs only what its log mark does not name.
        let (mut summary, out) = replay_day(ports, intent, settings, item).await?;
        summary.already_logged = log_day(ports, settings, &key("logged", "json"), &out).await?;
        if !out.jsonl.is_empty() {
            let findings_key = key("findings", "jsonl");
            ports
                .archive
                .put(
                    &settings.results_bucket,
                    &findings_key,
                    out.jsonl,
                    "application/x-ndjson",
                )
                .await?;
            summary.findings_key = Some(findings_key);
        }
        let body = serde_json::to_vec_pretty(&summary)
            .map_err(|e| Failure::Port(PortError::Permanent(e.to_string().into())))?;
        ports
            .archive
            .put(
                &settings.results_bucket,
                &summary_key,
                body,
                "application/json",
            )
            .await?;
        tracing::info!(
            run = run.as_str(),
            account = day.account.as_str(),
            region = day.region.as_str(),
            date = %day.date,
            objects = summary.objects,
            records = summary.records,
            malformed = summary.malformed,
            findings = summary.findings.values().sum::<u64>(),
            "day replayed"
        );
        for (kind, n) in &summary.findings {
            *totals.entry(kind.clone()).or_default() += n;
        }
        *totals.entry("records".into()).or_default() += summary.records;
        *totals.entry("objects".into()).or_default() += summary.objects;
        *totals.entry("bytes".into()).or_default() += summary.bytes;
        *totals.entry("malformed".into()).or_default() += summary.malformed;
        done.push(summary_key);
        longest_ms = longest_ms.max(tagwatch_lambda::clock::now_ms() - started);
    }
    Ok(json!({
        "run": run,
        "days": done.len(),
        "skipped_days": skipped,
        "totals": totals,
        "summaries": done,
    }))
}

/// Decompressed bytes asked for at once.
const READ_SIZE: usize = 256 * 1024;

/// The records of one object: gunzipped when it is gzip (by its magic bytes), framed,
/// prefiltered and parsed by the core, in order.
fn records_of(bytes: &[u8], max_record: usize) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut send = |c: Chunk| {
        chunks.push(c);
        true
    };
    let mut records = Records::new(max_record, false, &mut send);
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut gz = flate2::read::MultiGzDecoder::new(bytes);
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            // Straight into the framer's room where it has some (a log file's one long line is
            // then never copied), otherwise through `buf`.
            let read = match records.space(READ_SIZE) {
                Some(room) => gz.read(room).map(|n| (n, true)),
                None => gz.read(&mut buf).map(|n| (n, false)),
            };
            match read {
                Ok((0, _)) => break,
                Ok((n, true)) => records.filled(n),
                Ok((n, false)) => records.feed(buf.get(..n).unwrap_or_default()),
                Err(e) => {
                    records.broke_off(&format!("corrupt gzip: {e}"));
                    return chunks;
                }
            }
        }
    } else {
        records.feed(bytes);
    }
    records.finish();
    chunks
}

/// One day folder through the replay core: its objects in key order (fetched a few at once),
/// their records decided in order by one watcher, with the live tags each event needs. Each
/// finding goes to the log group (in `PutLogEvents`-sized batches) and into the day's JSON
/// lines as it is decided, so a day holds its findings' text once, never their structures.
async fn replay_day<T: TagSource, L: FindingLog, A: Archive>(
    ports: &Ports<'_, T, L, A>,
    intent: &Intent,
    settings: &Settings,
    item: &DayItem,
) -> Result<(DaySummary, DayOut), Failure> {
    let day = &item.day;
    let objects = ports.archive.objects(&item.bucket, &day.prefix).await?;
    let mut summary = DaySummary {
        source: format!("s3://{}/{}", item.bucket, day.prefix),
        account: day.account.clone(),
        region: day.region.clone(),
        date: day.date.to_string(),
        objects: objects.len() as u64,
        ..DaySummary::default()
    };
    // Correlation within the day, with `tagwatch replay`'s default window (a day of
    // CloudTrail holds calls, not status events, so nothing waits across days).
    let mut watcher = Watcher::new(intent, MemoryStore::new(CORRELATION_WINDOW_MS));
    let mut dedupe = Dedupe::new(intent.dedupe_window_ms());
    let mut inventory = Inventory::default();
    let mut out = DayOut::default();
    let calls: Vec<_> = objects
        .iter()
        .map(|o| ports.archive.get(&item.bucket, &o.key))
        .collect();
    let mut bodies = stream::iter(calls).buffered(settings.fetches.max(1));
    let mut next = objects.iter();
    while let Some(body) = bodies.next().await {
        let (Some(object), body) = (next.next(), body?) else {
            break;
        };
        summary.bytes += body.len() as u64;
        let name = format!("s3://{}/{}", item.bucket, object.key);
        for chunk in records_of(&body, settings.max_record_bytes) {
            summary.records += chunk.read;
            summary.prefiltered += chunk.prefiltered;
            for record in chunk.items {
                let (value, origin) = match record {
                    Item::Record { value, origin } => (value, origin),
                    Item::Malformed { origin, reason } => {
                        malformed(&mut summary, &origin.render(&name, 0), &reason);
                        continue;
                    }
                };
                let event = match normalize(&value) {
                    Ok(e) => e,
                    Err(e) => {
                        malformed(&mut summary, &origin.render(&name, 0), &e.to_string());
                        continue;
                    }
                };
                let mut no_access = None;
                if place(&event, ports.scope).is_some() {
                    let mut query = tag_query(&event, intent);
                    let known = Layered {
                        given: ports.inventory,
                        live: &inventory,
                    };
                    query.targets.retain(|id| known.tags(id).is_none());
                    query.documents.retain(|id| known.tags(id).is_none());
                    let query = query.dedup();
                    let (found, refused) = gather_tags(ports.tags, &query).await?;
                    for id in query.targets.iter().chain(&query.documents) {
                        if let Some(t) = found.tags(id) {
                            inventory.insert(id.clone(), t.clone());
                        }
                    }
                    no_access = refused;
                }
                let mut decided = watcher.handle(
                    &event,
                    &Reach {
                        tags: &Layered {
                            given: ports.inventory,
                            live: &inventory,
                        },
                        scope: ports.scope,
                        no_access: no_access.as_deref(),
                    },
                );
                dedupe.count(&mut decided);
                for f in decided {
                    out.push(ports.log.group(), &mut summary, f)?;
                }
            }
        }
    }
    let mut tail = watcher.finish();
    dedupe.count(&mut tail);
    for f in tail {
        out.push(ports.log.group(), &mut summary, f)?;
    }
    Ok((summary, out))
}

/// A day's findings, decided: their JSON lines and, per finding in order, its id and its log
/// message. A day holds its findings' text once, never their structures: a message is its JSON
/// line (a range of `jsonl`) unless the log needed it shortened.
#[derive(Default)]
struct DayOut {
    jsonl: Vec<u8>,
    messages: Vec<Logged>,
}

/// One finding's place in the day's log batches.
struct Logged {
    id: String,
    /// Its JSON line in [`DayOut::jsonl`] (without the newline).
    line: std::ops::Range<usize>,
    /// The message when it is not the JSON line (cut to fit a log event).
    shortened: Option<String>,
}

impl DayOut {
    fn push(
        &mut self,
        group: &str,
        summary: &mut DaySummary,
        mut f: Finding,
    ) -> Result<(), Failure> {
        let permanent =
            |e: serde_json::Error| Failure::Port(PortError::Permanent(e.to_string().into()));
        f.links.logs_insights = logs_insights_link(&f, group);
        *summary
            .findings
            .entry(f.kind.as_str().to_string())
            .or_default() += 1;
        if f.cause.is_some_and(|c| c.as_str() == "no_access") {
            summary.no_access += 1;
        }
        let start = self.jsonl.len();
        serde_json::to_writer(&mut self.jsonl, &f).map_err(permanent)?;
        let line = start..self.jsonl.len();
        self.jsonl.push(b'\n');
        let message = log_message(&f).map_err(permanent)?;
        let shortened =
            (self.jsonl.get(line.clone()) != Some(message.as_bytes())).then_some(message);
        self.messages.push(Logged {
            id: f.finding_id,
            line,
            shortened,
        });
        Ok(())
    }

    /// The log message of `m`.
    fn message(&self, m: &Logged) -> String {
        match &m.shortened {
            Some(text) => text.clone(),
            None => String::from_utf8_lossy(self.jsonl.get(m.line.clone()).unwrap_or_default())
                .into_owned(),
        }
    }
}

/// A day's log mark (`RUN/logged/ACCOUNT/REGION/DATE.json`): the ids of its findings that
/// reached the log group, written after each batch that got through.
#[derive(Default, Serialize, Deserialize)]
struct LogMark {
    logged: std::collections::BTreeSet<String>,
}

/// Logs a day's findings in `PutLogEvents`-sized batches, leaving out the ones its log mark
/// names (a retry of a day that got part or all of the way), and marks each batch that gets
/// through. The number left out.
async fn log_day<T, L: FindingLog, A: Archive>(
    ports: &Ports<'_, T, L, A>,
    settings: &Settings,
    mark_key: &str,
    out: &DayOut,
) -> Result<u64, Failure> {
    if out.messages.is_empty() {
        return Ok(0);
    }
    let bucket = &settings.results_bucket;
    let mut mark = if ports.archive.exists(bucket, mark_key).await? {
        let body = ports.archive.get(bucket, mark_key).await?;
        serde_json::from_slice::<LogMark>(&body).map_err(|e| {
            Failure::Port(PortError::Corrupt(
                format!("s3://{bucket}/{mark_key} is not a log mark: {e}").into(),
            ))
        })?
    } else {
        LogMark::default()
    };
    let todo: Vec<&Logged> = out
        .messages
        .iter()
        .filter(|m| !mark.logged.contains(&m.id))
        .collect();
    let already = (out.messages.len() - todo.len()) as u64;
    let limit = settings.log_batch_events.clamp(1, LOG_BATCH_EVENTS);
    let size =
        |m: &Logged| m.shortened.as_ref().map_or(m.line.len(), String::len) + LOG_EVENT_OVERHEAD;
    let mut batch: Vec<String> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    let mut bytes = 0;
    let mut todo = todo.into_iter().peekable();
    while let Some(m) = todo.next() {
        bytes += size(m);
        batch.push(out.message(m));
        ids.push(&m.id);
        let full = todo
            .peek()
            .is_none_or(|next| batch.len() >= limit || bytes + size(next) > LOG_BATCH_BYTES);
        if full {
            ports.log.put(&batch).await?;
            mark.logged.extend(ids.drain(..).map(str::to_string));
            let body = serde_json::to_vec(&mark)
                .map_err(|e| Failure::Port(PortError::Permanent(e.to_string().into())))?;
            ports
                .archive
                .put(bucket, mark_key, body, "application/json")
                .await?;
            batch.clear();
            bytes = 0;
        }
    }
    Ok(already)
}

fn malformed(summary: &mut DaySummary, at: &str, reason: &str) {
    summary.malformed += 1;
    tracing::warn!(at, reason, "record not processed");
    if summary.malformed_examples.len() < MALFORMED_LISTED {
        summary
            .malformed_examples
            .push(json!({ "at": at, "reason": reason }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use tagwatch_lambda::fakes::{FakeArchive, FakeLog, FakeTags, FAKE_LOG_GROUP};
    use tagwatch_tests::{event_json, intent, inventory};

    const ARCHIVE: &str = "org-trail";
    const RESULTS: &str = "results";

    fn settings() -> Settings {
        Settings {
            results_bucket: RESULTS.into(),
            results_prefix: "tagwatch-backfill/".into(),
            fetches: 3,
            max_record_bytes: 1024 * 1024,
            log_batch_events: LOG_BATCH_EVENTS,
        }
    }

    struct World {
        settings: Settings,
        tags: FakeTags,
        log: FakeLog,
        archive: FakeArchive,
        scope: TagScope,
        given: Inventory,
    }

    impl World {
        fn new() -> World {
            World {
                settings: settings(),
                tags: FakeTags {
                    inventory: inventory(),
                    ..FakeTags::default()
                },
                log: FakeLog::default(),
                archive: FakeArchive::default(),
                scope: TagScope::default(),
                given: Inventory::default(),
            }
        }

        fn ports(&self) -> Ports<'_, FakeTags, FakeLog, FakeArchive> {
            Ports {
                tags: &self.tags,
                log: &self.log,
                archive: &self.archive,
                scope: &self.scope,
                inventory: &self.given,
            }
        }

        async fn call(&self, event: Value) -> Result<Value, Failure> {
            handle(&self.ports(), &intent(), &self.settings, &event, None).await
        }
    }

    /// The CloudTrail records of the bundled EventBridge events `names` (their `detail`).
    fn records(names: &[&str]) -> Vec<Value> {
        names
            .iter()
            .map(|n| event_json(n)["detail"].clone())
            .collect()
    }

    fn gz(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    const VIOLATION: &str = "cloudtrail-sendcommand-instanceids.json";
    const DENIED: &str = "cloudtrail-startsession-denied.json";
    const ALLOWED: &str = "cloudtrail-startsession-allowed.json";

    /// Two days of one account and region (two log files on the first), a digest beside them.
    fn two_days(w: &World) {
        let day = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/";
        let log = |rs: Vec<Value>| gz(&json!({ "Records": rs }).to_string());
        w.archive.insert(
            ARCHIVE,
            &format!("{day}a.json.gz"),
            log(records(&[VIOLATION])),
        );
        w.archive.insert(
            ARCHIVE,
            &format!("{day}b.json.gz"),
            log(records(&[DENIED, ALLOWED])),
        );
        w.archive.insert(
            ARCHIVE,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21/c.json.gz",
            log(
                records(&["cloudtrail-sendcommand-vpc-endpoint.json", DENIED])
                    .into_iter()
                    .map(|mut r| {
                        let id = format!("{}-next-day", r["eventID"].as_str().unwrap());
                        r["eventID"] = id.into();
                        let t = r["eventTime"]
                            .as_str()
                            .unwrap()
                            .replace("2026-11-20", "2026-11-21");
                        r["eventTime"] = t.into();
                        r
                    })
                    .collect(),
            ),
        );
        w.archive.insert(
            ARCHIVE,
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/20/d.json.gz",
            b"{}".to_vec(),
        );
    }

    fn plan(run: &str, extra: Value) -> Value {
        let mut plan = json!({"bucket": ARCHIVE, "prefix": "AWSLogs/"});
        if let (Some(p), Some(e)) = (plan.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        json!({ "plan": plan, "run": run })
    }

    fn items(w: &World, run: &str) -> Vec<DayItem> {
        let key = format!("tagwatch-backfill/{run}/items.json");
        serde_json::from_slice(&w.archive.body(RESULTS, &key).unwrap()).unwrap()
    }

    /// The summary a run wrote for a day of 111122223333 in us-east-1.
    fn day_summary(w: &World, run: &str, date: &str) -> Value {
        let key = format!("tagwatch-backfill/{run}/days/111122223333/us-east-1/{date}.json");
        serde_json::from_slice(&w.archive.body(RESULTS, &key).unwrap()).unwrap()
    }

    fn batch(items: &[DayItem], run: &str) -> Value {
        json!({ "Items": items, "BatchInput": { "run": run } })
    }

    #[tokio::test]
    async fn a_plan_writes_one_item_per_selected_day_for_the_map_to_read() {
        let w = World::new();
        two_days(&w);
        let out = w.call(plan("r1", json!({}))).await.unwrap();
        assert_eq!(out["days"], 2);
        assert_eq!(out["bucket"], RESULTS);
        assert_eq!(out["key"], "tagwatch-backfill/r1/items.json");
        let all = items(&w, "r1");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].bucket, ARCHIVE);
        assert_eq!(
            all[0].day.prefix,
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/"
        );
        // The item's JSON is flat: what the state machine and a person read.
        let text = serde_json::to_value(&all[1]).unwrap();
        assert_eq!(text["date"], "2026-11-21");
        assert_eq!(text["account"], "111122223333");

        let out = w
            .call(plan(
                "r2",
                json!({"from": "2026-11-21", "regions": ["us-east-1"]}),
            ))
            .await
            .unwrap();
        assert_eq!(out["days"], 1);
        assert_eq!(items(&w, "r2")[0].day.date.to_string(), "2026-11-21");
    }

    #[tokio::test]
    async fn requests_that_are_not_a_plan_or_a_batch_are_refused_with_their_place() {
        let w = World::new();
        for (event, says) in [
            (json!({"hello": 1}), "expected a plan"),
            (
                plan("r", json!({"from": "2026-02-30"})),
                "$.plan: `2026-02-30`",
            ),
            (
                plan("r", json!({"form": "2026-02-01"})),
                "unknown field `form`",
            ),
            (plan("../x", json!({})), "`run`"),
            (json!({"plan": {"bucket": ARCHIVE}}), "$.run"),
            (
                json!({"Items": [{"bucket": ARCHIVE}], "BatchInput": {"run": "r"}}),
                "a batch",
            ),
        ] {
            let e = w.call(event.clone()).await.unwrap_err();
            assert_eq!(e.kind(), "BadRequest", "{event}");
            assert!(e.to_string().contains(says), "{event}: {e}");
        }
        // An archive without the layout is a permanent failure, named.
        w.archive.insert(ARCHIVE, "exports/x.jsonl", b"{}".to_vec());
        let e = w
            .call(json!({"plan": {"bucket": ARCHIVE, "prefix": "exports/"}, "run": "r"}))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "PermanentAwsError");
        assert!(e.to_string().contains("no CloudTrail layout"), "{e}");
    }

    /// A batch replays each day through the core: the findings go to the log group and to the
    /// day's JSON lines (the same, in the same order), and the day's summary says what was read.
    #[tokio::test]
    async fn a_batch_replays_each_day_to_the_log_group_and_s3() {
        let w = World::new();
        two_days(&w);
        w.call(plan("r", json!({}))).await.unwrap();
        let out = w.call(batch(&items(&w, "r"), "r")).await.unwrap();
        assert_eq!(out["days"], 2);
        assert_eq!(out["skipped_days"], 0);
        assert_eq!(out["totals"]["objects"], 3);
        assert_eq!(out["totals"]["records"], 5);
        let logged: Vec<Finding> = w.log.written.lock().unwrap().clone();
        let in_s3: Vec<Finding> = ["20", "21"]
            .iter()
            .flat_map(|d| {
                let key = format!(
                    "tagwatch-backfill/r/findings/111122223333/us-east-1/2026-11-{d}.jsonl"
                );
                let body = String::from_utf8(w.archive.body(RESULTS, &key).unwrap()).unwrap();
                body.lines()
                    .map(|l| serde_json::from_str::<Finding>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(logged, in_s3);
        let kinds: Vec<&str> = logged.iter().map(|f| f.kind.as_str()).collect();
        assert!(
            kinds.iter().filter(|k| **k == "violation").count() >= 2,
            "{kinds:?}"
        );
        assert_eq!(kinds.iter().filter(|k| **k == "access_denied").count(), 2);
        assert!(logged.iter().all(|f| f.links.logs_insights.is_some()));
        let summary: Value = day_summary(&w, "r", "2026-11-20");
        assert_eq!(summary["objects"], 2);
        assert_eq!(summary["records"], 3);
        assert_eq!(summary["findings"]["violation"], 1);
        assert_eq!(
            summary["source"],
            "s3://org-trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/"
        );
    }

    /// The finding ids in the log group, checked to be there once each.
    fn logged_once(w: &World) -> Vec<String> {
        let logged = w.log.written.lock().unwrap();
        let mut ids: Vec<String> = logged.iter().map(|f| f.finding_id.clone()).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "a finding logged twice ({n} logged)");
        ids
    }

    /// The finding ids of a day's JSON lines in S3.
    fn in_s3(w: &World, run: &str, date: &str) -> Vec<String> {
        let key = format!("tagwatch-backfill/{run}/findings/111122223333/us-east-1/{date}.jsonl");
        let body = String::from_utf8(w.archive.body(RESULTS, &key).unwrap()).unwrap();
        body.lines()
            .map(|l| serde_json::from_str::<Finding>(l).unwrap().finding_id)
            .collect()
    }

    /// A day whose findings reached the log group but whose summary could not be written (S3
    /// failing after the SDK's retries) is done again by the retry, which decides the same
    /// findings; its log mark says they are in the log group already, so none is logged twice,
    /// and the summary says how many the retry found there.
    #[tokio::test]
    async fn a_day_retried_after_its_findings_were_logged_logs_none_twice() {
        let w = World::new();
        two_days(&w);
        w.call(plan("r", json!({}))).await.unwrap();
        let all = items(&w, "r");
        let summary = "tagwatch-backfill/r/days/111122223333/us-east-1/2026-11-20.json";
        w.archive
            .failing_puts
            .lock()
            .unwrap()
            .insert(summary.into());
        let e = w.call(batch(&all, "r")).await.unwrap_err();
        assert_eq!(e.kind(), "RetryableAwsError");
        let first = logged_once(&w);
        assert!(!first.is_empty());
        w.archive.failing_puts.lock().unwrap().clear();
        let out = w.call(batch(&all, "r")).await.unwrap();
        assert_eq!(
            (out["days"].clone(), out["skipped_days"].clone()),
            (json!(2), json!(0))
        );
        let mut expected = in_s3(&w, "r", "2026-11-20");
        expected.extend(in_s3(&w, "r", "2026-11-21"));
        expected.sort_unstable();
        assert_eq!(logged_once(&w), expected, "every finding logged, once");
        assert_eq!(
            day_summary(&w, "r", "2026-11-20")["already_logged"],
            json!(first.len())
        );
        assert_eq!(
            day_summary(&w, "r", "2026-11-21")["already_logged"],
            json!(0)
        );
    }

    /// The log group failing part way through a day's batches (after the SDK's retries): the
    /// invocation fails as retryable, and the retry logs only the batches that did not get
    /// through.
    #[tokio::test]
    async fn a_log_group_failing_part_way_through_a_day_loses_and_doubles_nothing() {
        let mut w = World::new();
        w.settings.log_batch_events = 1;
        two_days(&w);
        w.call(plan("r", json!({}))).await.unwrap();
        let all = items(&w, "r");
        *w.log.calls_left.lock().unwrap() = Some(1);
        let e = w.call(batch(&all, "r")).await.unwrap_err();
        assert_eq!(e.kind(), "RetryableAwsError");
        assert_eq!(logged_once(&w).len(), 1);
        *w.log.calls_left.lock().unwrap() = None;
        w.call(batch(&all, "r")).await.unwrap();
        let mut expected = in_s3(&w, "r", "2026-11-20");
        expected.extend(in_s3(&w, "r", "2026-11-21"));
        expected.sort_unstable();
        assert!(expected.len() > 2, "{expected:?}");
        assert_eq!(logged_once(&w), expected);
        assert_eq!(
            day_summary(&w, "r", "2026-11-20")["already_logged"],
            json!(1)
        );
    }

    /// A finding too long for one log event goes to the log group shortened (and marked
    /// truncated) while its JSON line in S3 keeps it whole; the others' messages are their lines.
    #[tokio::test]
    async fn a_finding_too_long_for_a_log_event_is_logged_shortened_and_kept_whole() {
        let w = World::new();
        two_days(&w);
        w.call(plan("r", json!({}))).await.unwrap();
        w.call(batch(&items(&w, "r"), "r")).await.unwrap();
        let sample = w.log.written.lock().unwrap()[0].clone();
        let mut long = sample.clone();
        long.reason = "x".repeat(300 * 1024);
        let mut out = DayOut::default();
        let mut summary = DaySummary::default();
        out.push(FAKE_LOG_GROUP, &mut summary, sample).unwrap();
        out.push(FAKE_LOG_GROUP, &mut summary, long).unwrap();
        let [short, cut] = out.messages.as_slice() else {
            panic!("two messages")
        };
        assert!(short.shortened.is_none());
        assert_eq!(
            out.message(short).as_bytes(),
            &out.jsonl[short.line.clone()]
        );
        let logged: Finding = serde_json::from_str(&out.message(cut)).unwrap();
        assert!(logged.truncated && logged.reason.len() < 300 * 1024);
        assert!(out.message(cut).len() + LOG_EVENT_OVERHEAD <= 256 * 1024);
        let whole: Finding = serde_json::from_slice(&out.jsonl[cut.line.clone()]).unwrap();
        assert_eq!(whole.reason.len(), 300 * 1024);
        assert!(!whole.truncated);
    }

    /// A batch that fails part way (an object that cannot be read after the SDK's retries)
    /// fails as retryable; the retry skips the day already done, so nothing is logged twice.
    #[tokio::test]
    async fn a_retried_batch_skips_finished_days_and_logs_nothing_twice() {
        let w = World::new();
        two_days(&w);
        w.call(plan("r", json!({}))).await.unwrap();
        let all = items(&w, "r");
        let second = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/21/c.json.gz";
        w.archive.failing_keys.lock().unwrap().insert(second.into());
        let e = w.call(batch(&all, "r")).await.unwrap_err();
        assert_eq!(e.kind(), "RetryableAwsError");
        let after_first = w.log.written.lock().unwrap().len();
        assert!(after_first > 0);
        w.archive.failing_keys.lock().unwrap().clear();
        let out = w.call(batch(&all, "r")).await.unwrap();
        assert_eq!(
            (out["days"].clone(), out["skipped_days"].clone()),
            (json!(1), json!(1))
        );
        let logged = w.log.written.lock().unwrap().clone();
        let mut ids: Vec<&str> = logged.iter().map(|f| f.finding_id.as_str()).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "no finding logged twice");
        // A whole run again under the same name does nothing; under a new name, the same ids.
        let again = w.call(batch(&all, "r")).await.unwrap();
        assert_eq!(again["skipped_days"], 2);
        assert_eq!(w.log.written.lock().unwrap().len(), n);
        w.call(plan("r-again", json!({}))).await.unwrap();
        w.call(batch(&items(&w, "r-again"), "r-again"))
            .await
            .unwrap();
        let rerun: Vec<String> = w.log.written.lock().unwrap()[n..]
            .iter()
            .map(|f| f.finding_id.clone())
            .collect();
        let first: Vec<String> = logged.iter().map(|f| f.finding_id.clone()).collect();
        assert_eq!(rerun, first, "deterministic ids");
    }

    /// Records that cannot be processed are counted and listed with their place; they never
    /// fail the batch.
    #[tokio::test]
    async fn unprocessable_records_are_counted_and_listed_with_their_place() {
        let w = World::new();
        let day = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/";
        let mut bad = records(&[VIOLATION]);
        bad.push(json!({"eventSource": "ssm.amazonaws.com", "eventName": "SendCommand"}));
        w.archive.insert(
            ARCHIVE,
            &format!("{day}a.json.gz"),
            gz(&json!({ "Records": bad }).to_string()),
        );
        w.archive.insert(
            ARCHIVE,
            &format!("{day}b.json.gz"),
            b"\x1f\x8bnot gzip".to_vec(),
        );
        w.call(plan("r", json!({}))).await.unwrap();
        let out = w.call(batch(&items(&w, "r"), "r")).await.unwrap();
        assert_eq!(out["totals"]["malformed"], 2);
        let summary: Value = day_summary(&w, "r", "2026-11-20");
        let at: Vec<&str> = summary["malformed_examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["at"].as_str().unwrap())
            .collect();
        assert_eq!(
            at,
            [
                format!("s3://org-trail/{day}a.json.gz:1: Records[1]"),
                format!("s3://org-trail/{day}b.json.gz:1"),
            ]
        );
        assert_eq!(summary["findings"]["violation"], 1);
    }

    #[tokio::test]
    async fn an_invocation_near_its_deadline_stops_between_days() {
        let w = World::new();
        two_days(&w);
        w.call(plan("r", json!({}))).await.unwrap();
        let all = items(&w, "r");
        let soon = tagwatch_lambda::clock::now_ms() + DEADLINE_MARGIN_MS / 2;
        let (intent, settings, event) = (intent(), settings(), batch(&all, "r"));
        let ports = w.ports();
        let call = |deadline| handle(&ports, &intent, &settings, &event, deadline);
        let e = call(Some(soon)).await.unwrap_err();
        assert_eq!(e.kind(), "RetryableTimeBudget");
        assert!(e.to_string().starts_with("1 days done, 1 left"), "{e}");
        let first_day = w.log.written.lock().unwrap().len();
        assert!(first_day > 0, "the first day always runs");
        let out = call(None).await.unwrap();
        assert_eq!(
            (out["days"].clone(), out["skipped_days"].clone()),
            (json!(1), json!(1))
        );
    }

    /// With an inventory given (`TAGWATCH_INVENTORY`), its resources are judged with its tags
    /// and never looked up live; without it, the same day with no live tags is unevaluated.
    #[tokio::test]
    async fn a_given_inventory_comes_before_live_tags() {
        let run = |given: Inventory| async move {
            let mut w = World::new();
            w.tags = FakeTags::default();
            w.given = given;
            two_days(&w);
            w.call(plan("r", json!({}))).await.unwrap();
            w.call(batch(&items(&w, "r"), "r")).await.unwrap();
            let kinds: Vec<String> = w
                .log
                .written
                .lock()
                .unwrap()
                .iter()
                .map(|f| f.kind.as_str().to_string())
                .collect();
            let asked = w.tags.asked.lock().unwrap().clone();
            (kinds, asked)
        };
        let (with, asked) = run(inventory()).await;
        assert!(with.iter().any(|k| k == "violation"), "{with:?}");
        let given = inventory();
        assert!(
            asked.iter().all(|id| given.tags(id).is_none()),
            "listed ids were looked up: {asked:?}"
        );
        let (without, _) = run(Inventory::default()).await;
        assert!(!without.iter().any(|k| k == "violation"), "{without:?}");
        assert!(without.iter().any(|k| k == "unevaluated"), "{without:?}");
    }
}
