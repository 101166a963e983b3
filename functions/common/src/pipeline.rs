//! One invocation, from the raw event to delivered findings:
//!
//! 1. parse in the core (malformed or unexpected events are quarantined and counted);
//! 2. write a denied call's own item, then gather the correlation state, the caller's window
//!    and the live tags the decision needs;
//! 3. decide in the core (pure);
//! 4. persist the state changes (claims and episodes conditionally), stage the findings this
//!    event won in its outbox, then delete the parked runs it finished;
//! 5. look again at the command's partition when this event wrote a record or parked a run
//!    (the other side may have written between our read and our write), and finish what is
//!    parked there; then write the sighting;
//! 6. deliver the outbox under per-finding leases, batched within each sink's limits, marking
//!    each batch (and each bus entry) the sink accepted.
//!
//! A retryable failure fails the invocation; Lambda retries it, and a retry decides nothing new
//! (the state says what was decided) but delivers whatever an earlier attempt staged and did
//! not deliver. A permanent failure keeps the event on the quarantine queue with the error
//! named and counts it (`PermanentErrors`). Findings are counted in the metrics by the attempt
//! that marked them delivered to the log group, even when a later step of it fails.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;
use tagwatch_core::intent::inventory::{Inventory, TagLookup, TagSet};
use tagwatch_core::watch::asff;
use tagwatch_core::watch::correlation::{max_calls, DenialNote, Parked};
use tagwatch_core::watch::counts::Counts;
use tagwatch_core::watch::dedupe::GroupEntry;
use tagwatch_core::watch::event::{normalize, CallOutcome, Event, Skip};
use tagwatch_core::watch::finding::Finding;
use tagwatch_core::watch::journal::{Change, DueParked, JournalStore, Lease};
use tagwatch_core::watch::links::logs_insights_link;
use tagwatch_core::watch::outputs::{
    alerts, batches, bus_entry, goes_on_bus, log_message, BUS_BATCH_BYTES, BUS_BATCH_ENTRIES,
    LOG_BATCH_BYTES, LOG_BATCH_EVENTS, LOG_EVENT_OVERHEAD,
};
use tagwatch_core::watch::silence::silent;
use tagwatch_core::watch::skeleton::skeleton;
use tagwatch_core::watch::tags::TagQuery;
use tagwatch_core::watch::watcher::{denial_caller, denial_note, Watcher};
use tagwatch_core::Intent;

use crate::ports::{
    AlertBus, Cause, FindingLog, FindingsHub, Gathered, Platform, PortError, Ports, Quarantine,
    State, TagScope, TagSource,
};

/// Which events a function is subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// "AWS API Call via CloudTrail" for SendCommand / StartSession.
    Activities,
    /// The SSM command and command-invocation status-change notifications.
    StatusChanges,
}

/// The sink names recorded in delivery marks.
pub const SINK_LOG: &str = "log";
pub const SINK_BUS: &str = "bus";
pub const SINK_SECURITY_HUB: &str = "securityhub";

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The event id (or the sweep's id); empty for a quarantined event without one.
    pub event_id: String,
    /// Counts for the EMF line: findings newly written to the log group by this invocation,
    /// and events processed or quarantined.
    pub counts: Counts,
    /// Findings this invocation wrote to the log group / sent to the bus.
    pub logged: Vec<String>,
    pub alerted: Vec<String>,
    /// Findings this invocation imported into Security Hub.
    pub exported: Vec<String>,
    /// `no_access` findings this invocation logged, by member account (EMF `NoAccess`).
    pub no_access: BTreeMap<String, u64>,
    /// The event had been processed before (a redelivery).
    pub duplicate: bool,
    /// Why the event was quarantined, when it was.
    pub quarantined: Option<String>,
}

/// One invocation of a function: who runs it and how long its delivery leases last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The function's name (metrics dimension, quarantine attribute).
    pub function: &'static str,
    /// Lambda's request id: the holder of this invocation's delivery leases. Lambda retries an
    /// asynchronous invocation under the same request id, so a retry takes its own leases
    /// back at once; a twin (the same event delivered again) has its own id and waits.
    pub request_id: String,
    /// How long a delivery lease lasts.
    pub lease: Duration,
}

/// Why an invocation fails.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("the event cannot be processed ({reason}) and no quarantine queue is configured: failing so that the failure destination keeps it")]
    Unkept { reason: String },
    #[error("{count} findings are being delivered by another invocation whose lease has not run out; retry")]
    DeliveryInProgress { count: usize },
    #[error("EventBridge did not accept {count} entries after retries: {reasons}")]
    BusEntriesFailed { count: usize, reasons: String },
    #[error("Security Hub did not import {count} findings after retries: {reasons}")]
    SecurityHubFindingsFailed { count: usize, reasons: String },
}

impl Failure {
    /// The Lambda error type: `Retryable…` for what Lambda's retry may mend, the others for
    /// what it cannot.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Port(PortError::Retryable(_)) => "RetryableAwsError",
            Failure::Port(PortError::Permanent(_)) => "PermanentAwsError",
            Failure::Port(PortError::Corrupt(_)) => "CorruptState",
            Failure::Unkept { .. } => "MalformedEvent",
            Failure::DeliveryInProgress { .. } => "RetryableDeliveryInProgress",
            Failure::BusEntriesFailed { .. } => "RetryableBusEntries",
            Failure::SecurityHubFindingsFailed { .. } => "RetryableSecurityHubFindings",
        }
    }

    /// Whether a retry of the same invocation cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Failure::Port(PortError::Permanent(_) | PortError::Corrupt(_))
        )
    }
}

/// A failed invocation, with what it did before failing (findings it delivered are counted).
#[derive(Debug, thiserror::Error)]
#[error("{failure}")]
pub struct Failed {
    #[source]
    pub failure: Failure,
    pub outcome: Outcome,
}

fn skip_reason(skip: &Skip) -> String {
    match skip {
        Skip::OtherSsmCall(name) => {
            format!(
                "unexpected event: the SSM call `{name}` is not one tagwatch watches ({})",
                tagwatch_core::watch::event::Action::EVENT_NAMES.join(", ")
            )
        }
        Skip::OtherService(source) => {
            format!("unexpected event: a CloudTrail record of `{source}`, not SSM")
        }
        Skip::OtherEventType(t) => format!("unexpected event: detail-type `{t}`"),
    }
}

async fn reject<P: Platform>(
    ports: &Ports<P>,
    function: &str,
    raw: &Value,
    reason: String,
) -> Result<Outcome, Failure> {
    let event_id = raw
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let detail_type = raw
        .get("detail-type")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    tracing::warn!(
        event_id = event_id.as_str(),
        detail_type,
        reason = reason.as_str(),
        "event quarantined"
    );
    let Some(q) = &ports.quarantine else {
        return Err(Failure::Unkept { reason });
    };
    q.keep(&skeleton(raw).to_string(), &reason, function)
        .await?;
    Ok(Outcome {
        event_id,
        counts: Counts {
            malformed_events: 1,
            ..Counts::default()
        },
        quarantined: Some(reason),
        ..Outcome::default()
    })
}

/// The instances, managed nodes and documents whose tags deciding this event may need
/// ([`tagwatch_core::watch::watcher::tag_query`], and the runs parked for its command); none when the
/// event comes from an account or region the tag adapter cannot see (their tags stay unknown).
fn tag_query(event: &Event, intent: &Intent, journal: &JournalStore, scope: &TagScope) -> TagQuery {
    if place(event, scope).is_none() {
        return TagQuery::default();
    }
    let mut query = tagwatch_core::watch::watcher::tag_query(event, intent);
    query.targets.extend(journal.parked_instances());
    query.dedup()
}

/// Handles one event for a watcher function.
pub async fn watch<P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    inv: &Invocation,
    accept: Accept,
    raw: &Value,
) -> Result<Outcome, Failed> {
    let mut outcome = Outcome::default();
    // A record from the failure destination, redriven: the event inside it.
    let raw = tagwatch_core::watch::event::unwrap_destination(raw);
    match watch_event(ports, intent, inv, accept, raw, &mut outcome).await {
        Ok(Some(rejected)) => Ok(rejected),
        Ok(None) => Ok(outcome),
        Err(failure) => keep_or_fail(ports, inv.function, Some(raw), failure, outcome).await,
    }
}

/// A permanent failure keeps the event (its allow-listed skeleton, which holds every field
/// tagwatch decides on) on the quarantine queue with the error
/// named, and counts it; without a queue, or for a retryable failure, the invocation fails.
async fn keep_or_fail<P: Platform>(
    ports: &Ports<P>,
    function: &str,
    raw: Option<&Value>,
    failure: Failure,
    mut outcome: Outcome,
) -> Result<Outcome, Failed> {
    if !failure.is_permanent() {
        return Err(Failed { failure, outcome });
    }
    outcome.counts.permanent_errors += 1;
    let reason = format!("permanent error ({}): {failure}", failure.kind());
    tracing::error!(
        event_id = outcome.event_id.as_str(),
        kind = failure.kind(),
        error = %failure,
        "permanent error: the event is kept, not retried"
    );
    let (Some(q), Some(raw)) = (&ports.quarantine, raw) else {
        return Err(Failed { failure, outcome });
    };
    match q.keep(&skeleton(raw).to_string(), &reason, function).await {
        Ok(()) => {
            outcome.quarantined = Some(reason);
            Ok(outcome)
        }
        Err(e) => {
            tracing::error!(error = %e, "the quarantine queue did not take the event either");
            Err(Failed { failure, outcome })
        }
    }
}

/// The caller, time and note (request, session) of a denied call, whose window the decision
/// reads (ended sessions are counted, not judged: their denials open no window).
fn denial_of(event: &Event) -> Option<(String, i64, DenialNote)> {
    match event {
        Event::Activity(a)
            if a.action.is_judged() && matches!(a.outcome, CallOutcome::Denied { .. }) =>
        {
            Some((denial_caller(a), a.meta.event_epoch_ms, denial_note(a)))
        }
        _ => None,
    }
}

/// The event's account and region, when the tag adapter reads tags there.
pub fn place(event: &Event, scope: &TagScope) -> Option<(String, String)> {
    event
        .meta()
        .filter(|m| scope.covers(&m.account, &m.region))
        .map(|m| (m.account.clone(), m.region.clone()))
}

async fn watch_event<P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    inv: &Invocation,
    accept: Accept,
    raw: &Value,
    outcome: &mut Outcome,
) -> Result<Option<Outcome>, Failure> {
    let function = inv.function;
    let event = match normalize(raw) {
        Ok(e) => e,
        Err(e) => {
            return reject(ports, function, raw, format!("malformed event: {e}"))
                .await
                .map(Some)
        }
    };
    let misrouted = match (&event, accept) {
        (Event::Skipped(skip), _) => Some(skip_reason(skip)),
        (Event::Activity(_) | Event::Origin(_), Accept::StatusChanges) => Some("unexpected event: a CloudTrail API call reached the status watcher (check the rule's pattern)".to_string()),
        (Event::Status(_) | Event::AssociationRun(_), Accept::Activities) => Some("unexpected event: a status-change notification reached the CloudTrail watcher (check the rule's pattern)".to_string()),
        _ => None,
    };
    let event_id = match (misrouted, event.meta()) {
        (None, Some(meta)) => meta.event_id.clone(),
        (Some(reason), _) => return reject(ports, function, raw, reason).await.map(Some),
        (None, None) => {
            // INVARIANT: only skipped events lack a meta, and they are rejected above.
            return reject(ports, function, raw, "an event without an id".to_string())
                .await
                .map(Some);
        }
    };
    outcome.event_id = event_id.clone();
    if let Some(meta) = event.meta() {
        // Which accounts and regions send events: the sweep notices one that goes quiet.
        ports
            .state
            .saw_source(
                &meta.account,
                &meta.region,
                &meta.partition,
                meta.event_epoch_ms,
            )
            .await?;
    }

    // INVARIANT: a denied call's own item is durable before any decision reads its window, so
    // of concurrent denials the last to write sees them all, and a spike is staged only over a
    // durable window.
    let denial = denial_of(&event);
    if let Some((caller, ms, note)) = &denial {
        ports
            .state
            .record_denial(caller, &event_id, *ms, note)
            .await?;
    }
    let mut journal = ports.state.gather(&event).await?;
    if let Some((caller, ms, _)) = &denial {
        let window_ms = intent.spike_window_ms();
        let window = ports
            .state
            .denials(
                caller,
                &event_id,
                *ms,
                window_ms,
                max_calls(intent.spike.threshold),
            )
            .await?;
        journal.preload_denials(caller, window);
    }
    let (inventory, no_access) = gather_tags(
        &ports.tags,
        &tag_query(&event, intent, &journal, &ports.tag_scope),
    )
    .await?;
    let mut watcher = Watcher::new(intent, journal);
    let findings = watcher.handle(
        &event,
        &Reach {
            tags: &inventory,
            scope: &ports.tag_scope,
            no_access: no_access.as_deref(),
        },
    );
    let duplicate = watcher.counts.duplicates > 0;
    // The findings are counted when they are written (below), by the attempt that writes them;
    // the event counts as processed once its findings are delivered.
    let mut seen = watcher.counts.without_findings();
    let processed = std::mem::take(&mut seen.events_processed);
    outcome.counts.add(&seen);
    let (sightings, changes): (Vec<Change>, Vec<Change>) = watcher
        .into_store()
        .take_changes()
        .into_iter()
        .partition(|c| matches!(c, Change::Sighted { .. }));
    // This event wrote a command's record or parked a run of it: the other side may have
    // written its half after our gather. Both sides write, then read again, so one of them
    // always sees both halves.
    let look_again = changes.iter().find_map(|c| match c {
        Change::Command(a) => a.command_id.clone(),
        Change::Parked(p) => Some(p.command_id.clone()),
        _ => None,
    });
    decide(ports, intent, &event_id, &findings, changes).await?;
    if let Some(cmd) = look_again {
        let place = place(&event, &ports.tag_scope);
        resume_command(ports, intent, &event_id, &cmd, place).await?;
    }
    let persisted = ports.state.persist(&event_id, sightings).await?;
    deliver(ports, inv, &event_id, outcome).await?;
    outcome.counts.events_processed += processed;
    outcome.duplicate = duplicate || persisted.duplicate_event;
    Ok(None)
}

/// The findings as they are staged: with the Logs Insights link to their caller's findings in
/// the log group the log port writes to, and, for those that would alert, their running count
/// in their group's dedupe window (only the first goes on the bus).
async fn prepared<'f, P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    findings: impl Iterator<Item = &'f Finding>,
) -> Result<Vec<Finding>, Failure> {
    let window_ms = intent.dedupe_window_ms();
    let mut out: Vec<Finding> = findings
        .map(|f| {
            let mut f = f.clone();
            f.links.logs_insights = logs_insights_link(&f, ports.log.group());
            f
        })
        .collect();
    let grouped: Vec<usize> = (0..out.len())
        .filter(|&i| out.get(i).is_some_and(alerts))
        .collect();
    if grouped.is_empty() {
        return Ok(out);
    }
    let entries: Vec<GroupEntry> = grouped
        .iter()
        .filter_map(|&i| out.get(i))
        .map(|f| GroupEntry::of(f, window_ms))
        .collect();
    let counts = ports.state.dedupe(&entries).await?;
    for (&i, count) in grouped.iter().zip(counts) {
        if let Some(f) = out.get_mut(i) {
            f.count = count;
        }
    }
    Ok(out)
}

/// The tags gathered for a decision, with the reach of the tag adapter: outside it, tags are
/// unknown because this deployment does not read them (`out_of_scope`), or because a member
/// account's reader role could not be assumed (`no_access`), not because they could not be
/// read (`unknown_tags`).
pub struct Reach<'a> {
    pub tags: &'a dyn TagLookup,
    pub scope: &'a TagScope,
    /// The member account whose reader role was refused, when it was.
    pub no_access: Option<&'a str>,
}

impl TagLookup for Reach<'_> {
    fn tags(&self, id: &str) -> Option<&TagSet> {
        self.tags.tags(id)
    }

    fn reach(&self, account: &str, region: &str) -> tagwatch_core::intent::inventory::Reach {
        use tagwatch_core::intent::inventory::Reach as R;
        if self.no_access == Some(account) {
            R::NoAccess
        } else if self.scope.covers(account, region) {
            R::Readable
        } else {
            R::OutOfScope
        }
    }
}

/// The tags of a query, and the member account whose role was refused (logged: an operator
/// must deploy or fix the reader role there).
pub async fn gather_tags<T: TagSource>(
    tags: &T,
    query: &TagQuery,
) -> Result<(Inventory, Option<String>), PortError> {
    if query.is_empty() {
        return Ok((Inventory::default(), None));
    }
    match tags.gather(query).await? {
        Gathered::Tags(tags) => Ok((tags, None)),
        Gathered::NoAccess { account, why } => {
            tracing::warn!(
                account = account.as_str(),
                region = query.region.as_str(),
                error = why.as_str(),
                "the member account's reader role could not be assumed; its runs are unevaluated (no_access)"
            );
            Ok((Inventory::default(), Some(account)))
        }
    }
}

/// Persists the changes that decide findings, stages the findings this event won, then lets go
/// of the parked runs it finished.
///
/// INVARIANT: a finding is staged only after its claim or episode is this event's, and the
/// parked runs it came from are deleted only after it is staged. A retry of the same event
/// gathers without its own claims and episode (the stores leave out what `outbox` holds), so it
/// decides the same findings again; a finding another event won is never staged.
async fn decide<P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    outbox: &str,
    findings: &[Finding],
    changes: Vec<Change>,
) -> Result<(), Failure> {
    let (unparks, changes): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .partition(|c| matches!(c, Change::Unparked { .. }));
    let lost = if changes.is_empty() {
        Vec::new()
    } else {
        ports
            .state
            .persist(outbox, changes)
            .await?
            .lost_finding_ids()
    };
    let won: Vec<Finding> = prepared(
        ports,
        intent,
        findings.iter().filter(|f| !lost.contains(&f.finding_id)),
    )
    .await?;
    if won.len() < findings.len() {
        tracing::info!(
            outbox,
            findings = findings.len() - won.len(),
            "decided concurrently by another event"
        );
    }
    if !won.is_empty() {
        ports.state.stage(outbox, &won).await?;
    }
    if !unparks.is_empty() {
        ports.state.persist(outbox, unparks).await?;
    }
    Ok(())
}

/// Finishes what is parked for a command whose record is stored (evaluated with live tags
/// of `place`, its account and region, when the tag adapter reads them; else unknown).
/// Returns whether the record was there.
async fn resume_command<P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    outbox: &str,
    command_id: &str,
    place: Option<(String, String)>,
) -> Result<bool, Failure> {
    // Most looks find no record (a status event that parked): one read by key.
    if !ports.state.has_record(command_id).await? {
        return Ok(false);
    }
    let journal = ports.state.gather_command(command_id, outbox).await?;
    if !journal.has_command(command_id) {
        return Ok(false);
    }
    let (account, region) = place.clone().unwrap_or_default();
    let query = TagQuery {
        account,
        region,
        targets: journal.parked_instances(),
        documents: Vec::new(),
    }
    .dedup();
    if query.is_empty() {
        return Ok(true);
    }
    let (inventory, no_access) = if place.is_some() {
        gather_tags(&ports.tags, &query).await?
    } else {
        (Inventory::default(), None)
    };
    let mut watcher = Watcher::new(intent, journal);
    let findings = watcher.resume(
        command_id,
        &Reach {
            tags: &inventory,
            scope: &ports.tag_scope,
            no_access: no_access.as_deref(),
        },
    );
    let changes = watcher.into_store().take_changes();
    decide(ports, intent, outbox, &findings, changes).await?;
    Ok(true)
}

/// Looks at invocations parked longer than the delay (at most `limit`): a pair whose record is
/// stored after all is evaluated normally; one already evaluated is dropped silently; the rest
/// are taken first, then reported `unevaluated`. A record that arrives later still evaluates
/// them (the overdue marker stays). `sweep_id` names the outbox (the scheduled event's id, so
/// a retry delivers what an earlier attempt staged).
/// When a source counts as silent: `after_ms` without an event, at `now_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silence {
    pub now_ms: i64,
    pub after_ms: i64,
}

pub async fn sweep<P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    inv: &Invocation,
    sweep_id: &str,
    cutoff_ms: i64,
    limit: usize,
    silence: Option<Silence>,
) -> Result<Outcome, Failed> {
    let mut outcome = Outcome {
        event_id: sweep_id.to_string(),
        ..Outcome::default()
    };
    let swept = async {
        if let Some(s) = silence {
            let findings = silent(&ports.state.sources().await?, s.now_ms, s.after_ms);
            if !findings.is_empty() {
                ports
                    .state
                    .stage(sweep_id, &prepared(ports, intent, findings.iter()).await?)
                    .await?;
            }
        }
        sweep_due(ports, intent, inv, sweep_id, cutoff_ms, limit, &mut outcome).await
    };
    let result = swept.await;
    match result {
        Ok(()) => Ok(outcome),
        Err(failure) => keep_or_fail(ports, inv.function, None, failure, outcome).await,
    }
}

async fn sweep_due<P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    inv: &Invocation,
    sweep_id: &str,
    cutoff_ms: i64,
    limit: usize,
    outcome: &mut Outcome,
) -> Result<(), Failure> {
    let mut by_command: BTreeMap<String, Vec<DuePair>> = BTreeMap::new();
    for due in ports.state.due_parked(cutoff_ms, limit).await? {
        match due {
            DueParked::Pair { parked, overdue } => by_command
                .entry(parked.command_id.clone())
                .or_default()
                .push((parked, overdue)),
            DueParked::Unreadable { key, reason } => {
                outcome.counts.permanent_errors += 1;
                tracing::error!(
                    key = key.as_str(),
                    reason = reason.as_str(),
                    "unreadable parked item set aside"
                );
            }
        }
    }
    for (cmd, pairs) in by_command {
        // A command's runs are in its own account and region.
        let place = pairs
            .iter()
            .map(|(p, _)| &p.status.meta)
            .find(|m| ports.tag_scope.covers(&m.account, &m.region))
            .map(|m| (m.account.clone(), m.region.clone()));
        // The record is stored after all (it raced the park): evaluate normally.
        if resume_command(ports, intent, sweep_id, &cmd, place).await? {
            continue;
        }
        let journal = ports.state.gather_command(&cmd, sweep_id).await?;
        let (evaluated, open): (Vec<DuePair>, Vec<DuePair>) = pairs
            .into_iter()
            .partition(|(p, _)| journal.is_claimed(&cmd, &p.instance_id));
        if !evaluated.is_empty() {
            let evaluated: Vec<Parked> = evaluated.into_iter().map(|(p, _)| p).collect();
            ports.state.drop_parked(&evaluated).await?;
        }
        // Take before staging: a sweep that stops here reports them next time (an overdue
        // marker stays due until reported), and never reports a run finished meanwhile.
        let mut report = Vec::new();
        for (p, overdue) in open {
            if overdue || ports.state.take_overdue(&p).await? {
                report.push(p);
            }
        }
        if report.is_empty() {
            continue;
        }
        // An association run may account for a command that has no record.
        let mut runs = JournalStore::new();
        for p in &report {
            if let Some(doc) = &p.status.document_name {
                for run in ports.state.association_runs(&p.instance_id, doc).await? {
                    runs.preload_association_run(&run);
                }
            }
        }
        let mut watcher = Watcher::new(intent, runs);
        let findings = watcher.expired(&report);
        outcome.counts.add(&watcher.counts.without_findings());
        ports
            .state
            .stage(sweep_id, &prepared(ports, intent, findings.iter()).await?)
            .await?;
        ports.state.reported_overdue(&report).await?;
    }
    deliver(ports, inv, sweep_id, outcome).await
}

/// A due invocation and whether a sweep already took it as overdue.
type DuePair = (Parked, bool);

/// How long an invocation waits for another's delivery of the same findings.
const LEASE_WAIT_ROUNDS: u32 = 12;

async fn backoff(round: u32) {
    let ms = 50u64.saturating_mul(1 << round.min(4)).min(800);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Marks delivered findings, retrying a throttled or failed mark a few times: an accepted
/// batch whose mark is lost is sent again by the retry (the at-least-once window).
async fn mark<S: State>(state: &S, ids: &[String], sink: &str) -> Result<(), Failure> {
    let mut round = 0;
    loop {
        match state.mark_delivered(ids, sink).await {
            Ok(()) => return Ok(()),
            Err(PortError::Retryable(e)) if round < 4 => {
                tracing::warn!(sink, error = e.as_str(), "delivery mark failed; retrying");
                backoff(round).await;
                round += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Delivers an outbox: each finding under its delivery lease, to each sink it has not reached.
/// Findings another invocation is delivering are waited for; if its lease does not end in that
/// time, the invocation fails (retryable) so a retry makes sure.
pub async fn deliver<P: Platform>(
    ports: &Ports<P>,
    inv: &Invocation,
    outbox: &str,
    outcome: &mut Outcome,
) -> Result<(), Failure> {
    let staged = ports.state.staged(outbox).await?;
    let mut pending = staged;
    let lease_ms = i64::try_from(inv.lease.as_millis()).unwrap_or(i64::MAX);
    for round in 0..=LEASE_WAIT_ROUNDS {
        if pending.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = pending.iter().map(|f| f.finding_id.clone()).collect();
        let sinks: &[&str] = if ports.security_hub.is_some() {
            &[SINK_LOG, SINK_BUS, SINK_SECURITY_HUB]
        } else {
            &[SINK_LOG, SINK_BUS]
        };
        let marks = ports.state.delivered(&ids, sinks).await?;
        let reached = |f: &Finding, sink: &str| {
            marks
                .get(&f.finding_id)
                .is_some_and(|sinks| sinks.iter().any(|s| s == sink))
        };
        pending.retain(|f| {
            !reached(f, SINK_LOG)
                || (goes_on_bus(f) && !reached(f, SINK_BUS))
                || (ports.security_hub.is_some()
                    && asff::exported(f)
                    && !reached(f, SINK_SECURITY_HUB))
        });
        if pending.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = pending.iter().map(|f| f.finding_id.clone()).collect();
        let leases = ports.state.lease(&ids, &inv.request_id, lease_ms).await?;
        let mut mine = Vec::new();
        let mut elsewhere = Vec::new();
        for (f, lease) in pending.into_iter().zip(leases) {
            match lease {
                Lease::Granted => mine.push(f),
                Lease::HeldElsewhere => elsewhere.push(f),
            }
        }
        if let Err(failure) = send(ports, &mine, &marks, outcome).await {
            // Whoever delivers next (Lambda's retry, a redrive) need not wait for our lease.
            let held: Vec<String> = mine.iter().map(|f| f.finding_id.clone()).collect();
            if let Err(e) = ports.state.release(&held, &inv.request_id).await {
                tracing::warn!(error = %e, "delivery leases not released; they run out by themselves");
            }
            return Err(failure);
        }
        pending = elsewhere;
        if !pending.is_empty() && round < LEASE_WAIT_ROUNDS {
            backoff(round).await;
        }
    }
    if pending.is_empty() {
        Ok(())
    } else {
        Err(Failure::DeliveryInProgress {
            count: pending.len(),
        })
    }
}

/// A finding that cannot be written as JSON: permanent (a retry writes the same finding), so
/// the event is kept with the finding named.
fn unwritable(f: &Finding, e: serde_json::Error) -> Failure {
    Failure::Port(PortError::Permanent(Cause::with_source(
        format!("finding {} cannot be written as JSON: {e}", f.finding_id),
        e,
    )))
}

/// Sends leased findings to the sinks they have not reached: the log group in byte-sized
/// batches, the bus in batches of ten, each batch (each accepted entry) marked at once.
async fn send<P: Platform>(
    ports: &Ports<P>,
    findings: &[Finding],
    marks: &HashMap<String, Vec<String>>,
    outcome: &mut Outcome,
) -> Result<(), Failure> {
    let reached = |f: &Finding, sink: &str| {
        marks
            .get(&f.finding_id)
            .is_some_and(|sinks| sinks.iter().any(|s| s == sink))
    };
    let to_log: Vec<&Finding> = findings.iter().filter(|f| !reached(f, SINK_LOG)).collect();
    let messages = to_log
        .iter()
        .map(|f| log_message(f).map_err(|e| unwritable(f, e)))
        .collect::<Result<Vec<String>, Failure>>()?;
    let sizes: Vec<usize> = messages.iter().map(String::len).collect();
    for batch in batches(
        &sizes,
        LOG_EVENT_OVERHEAD,
        LOG_BATCH_BYTES,
        LOG_BATCH_EVENTS,
    ) {
        let (Some(msgs), Some(fs)) = (messages.get(batch.clone()), to_log.get(batch)) else {
            continue;
        };
        ports.log.put(msgs).await?;
        let ids: Vec<String> = fs.iter().map(|f| f.finding_id.clone()).collect();
        mark(&ports.state, &ids, SINK_LOG).await?;
        // Counted by the attempt that marked them delivered: retries count nothing twice.
        for f in fs {
            outcome.counts.count_finding(f);
            if f.cause == Some(tagwatch_core::watch::finding::UnevaluatedCause::NoAccess) {
                *outcome.no_access.entry(f.meta.account.clone()).or_default() += 1;
            }
        }
        outcome.logged.extend(ids);
    }

    let to_bus: Vec<(&Finding, tagwatch_core::watch::outputs::BusEntry)> = findings
        .iter()
        .filter(|f| !reached(f, SINK_BUS))
        .filter_map(|f| match bus_entry(f) {
            Ok(entry) => entry.map(|e| Ok((f, e))),
            Err(e) => Some(Err(unwritable(f, e))),
        })
        .collect::<Result<_, Failure>>()?;
    let sizes: Vec<usize> = to_bus.iter().map(|(_, e)| e.size()).collect();
    let mut failed = Vec::new();
    let mut failed_count = 0;
    for batch in batches(&sizes, 0, BUS_BATCH_BYTES, BUS_BATCH_ENTRIES) {
        let Some(part) = to_bus.get(batch) else {
            continue;
        };
        let entries: Vec<tagwatch_core::watch::outputs::BusEntry> =
            part.iter().map(|(_, e)| e.clone()).collect();
        let answers = ports.bus.publish(&entries).await?;
        let mut accepted = Vec::new();
        for ((f, _), answer) in part.iter().zip(answers) {
            match answer {
                None => accepted.push(f.finding_id.clone()),
                Some(why) => {
                    failed_count += 1;
                    failed.push(why);
                }
            }
        }
        if !accepted.is_empty() {
            mark(&ports.state, &accepted, SINK_BUS).await?;
            outcome.alerted.extend(accepted);
        }
    }
    // Security Hub goes on even when some bus entries failed: its marks spare the retry.
    let hub = match &ports.security_hub {
        Some(hub) => export(hub, &ports.state, findings, &reached, outcome).await,
        None => Ok(()),
    };
    if !failed.is_empty() {
        failed.sort();
        failed.dedup();
        return Err(Failure::BusEntriesFailed {
            count: failed_count,
            reasons: failed.join("; "),
        });
    }
    hub
}

/// Imports the exported findings that have not reached Security Hub, in batches of 100, each
/// imported finding marked at once. A finding is imported under its `finding_id`, so one
/// imported again (its mark lost) updates the Security Hub finding instead of adding one.
async fn export<H: FindingsHub, S: State>(
    hub: &crate::ports::SecurityHub<H>,
    state: &S,
    findings: &[Finding],
    reached: &impl Fn(&Finding, &str) -> bool,
    outcome: &mut Outcome,
) -> Result<(), Failure> {
    let now = crate::clock::now_ms();
    let mut unrepresentable = Vec::new();
    let to_hub: Vec<asff::AsffFinding> = findings
        .iter()
        .filter(|f| asff::exported(f) && !reached(f, SINK_SECURITY_HUB))
        .filter_map(|f| {
            let a = asff::finding(f, &hub.home, now);
            if a.is_none() {
                unrepresentable.push(f.finding_id.clone());
            }
            a
        })
        .collect();
    if !unrepresentable.is_empty() {
        // No record yields such a time; should one, the finding stays in the log and on the
        // bus, and is not waited for.
        tracing::warn!(findings = ?unrepresentable, "finding time has no ASFF timestamp; not exported to Security Hub");
        mark(state, &unrepresentable, SINK_SECURITY_HUB).await?;
    }
    let mut failed = Vec::new();
    let mut failed_count = 0;
    for batch in to_hub.chunks(asff::IMPORT_BATCH) {
        let answers = hub.port.import(batch).await?;
        let mut imported = Vec::new();
        for (a, answer) in batch.iter().zip(answers) {
            match answer {
                None => imported.push(a.id.clone()),
                Some(why) => {
                    failed_count += 1;
                    failed.push(why);
                }
            }
        }
        if !imported.is_empty() {
            mark(state, &imported, SINK_SECURITY_HUB).await?;
            outcome.exported.extend(imported);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        failed.sort();
        failed.dedup();
        Err(Failure::SecurityHubFindingsFailed {
            count: failed_count,
            reasons: failed.join("; "),
        })
    }
}
