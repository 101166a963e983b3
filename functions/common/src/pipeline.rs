//! One invocation, from the raw event to delivered findings:
//!
//! 1. parse in the core (malformed or unexpected events are quarantined and counted);
//! 2. gather the correlation state and the live tags the decision needs;
//! 3. decide in the core (pure);
//! 4. stage the findings in the event's outbox, then persist the state changes;
//! 5. deliver the outbox to each sink that has not had it yet, marking each sink.
//!
//! Any port failure fails the invocation; Lambda retries it, and a retry decides nothing new
//! (the state says what was decided) but delivers whatever the earlier attempt staged and did
//! not deliver.

use serde_json::Value;
use tagwatch_core::event::{normalize, Event, Skip};
use tagwatch_core::journal::JournalStore;
use tagwatch_core::outputs::{bus_entry, MetricCounts};
use tagwatch_core::verdict::{Finding, FindingKind, Watcher};
use tagwatch_core::Intent;

use crate::ports::{AlertBus, FindingLog, PortError, Ports, Quarantine, State, TagScope, Tags};

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

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The event id (or the sweep's id); empty for a quarantined event without one.
    pub event_id: String,
    /// Counts for the EMF line: findings newly written to the log group by this invocation,
    /// and events processed or quarantined.
    pub counts: MetricCounts,
    /// Findings this invocation wrote to the log group / sent to the bus.
    pub logged: Vec<String>,
    pub alerted: Vec<String>,
    /// The event had been processed before (a redelivery).
    pub duplicate: bool,
    /// Why the event was quarantined, when it was.
    pub quarantined: Option<String>,
}

/// Why an invocation fails.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("the event cannot be processed ({reason}) and no quarantine queue is configured: failing so that the failure destination keeps it")]
    Unkept { reason: String },
}

impl Failure {
    /// A short machine-readable kind for logs and error types.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Port(PortError::Transient(_)) => "TransientAwsError",
            Failure::Port(PortError::Conflict(_)) => "ConcurrentUpdate",
            Failure::Unkept { .. } => "MalformedEvent",
        }
    }
}

fn skip_reason(skip: &Skip) -> String {
    match skip {
        Skip::OtherSsmCall(name) => {
            format!("unexpected event: the SSM call `{name}` is not SendCommand or StartSession")
        }
        Skip::OtherService(source) => {
            format!("unexpected event: a CloudTrail record of `{source}`, not SSM")
        }
        Skip::OtherEventType(t) => format!("unexpected event: detail-type `{t}`"),
    }
}

/// Keys whose values are secrets or commands: replaced before an event is kept anywhere.
const REDACTED_KEYS: [&str; 3] = ["parameters", "tokenValue", "streamUrl"];
const REDACTED: &str = "REDACTED-BY-TAGWATCH";

/// A copy of an event with command parameters and session tokens replaced.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    if REDACTED_KEYS.contains(&k.as_str()) {
                        (k.clone(), Value::String(REDACTED.to_string()))
                    } else {
                        (k.clone(), redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

async fn reject<S, T, L, B, Q: Quarantine>(
    ports: &Ports<S, T, L, B, Q>,
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
    q.keep(&redact(raw).to_string(), &reason, function).await?;
    Ok(Outcome {
        event_id,
        counts: MetricCounts {
            malformed_events: 1,
            ..MetricCounts::default()
        },
        quarantined: Some(reason),
        ..Outcome::default()
    })
}

/// The instances and managed nodes whose tags deciding this event may need; none when the
/// event comes from an account or region the tag adapter cannot see (their tags stay unknown).
fn tag_ids(event: &Event, journal: &JournalStore, scope: &TagScope) -> Vec<String> {
    let (account, region, targets) = match event {
        Event::Activity(a) => (&a.account, &a.region, &a.targets),
        Event::Status(s) => (&s.account, &s.region, &s.targets),
        Event::Skipped(_) => return Vec::new(),
    };
    if !scope.covers(account, region) {
        return Vec::new();
    }
    let mut ids: Vec<String> = targets.iter().map(|r| r.id.clone()).collect();
    ids.extend(journal.parked_instances());
    ids.sort();
    ids.dedup();
    ids
}

/// Handles one event for a watcher function.
pub async fn watch<S, T, L, B, Q>(
    ports: &Ports<S, T, L, B, Q>,
    intent: &Intent,
    function: &str,
    accept: Accept,
    raw: &Value,
) -> Result<Outcome, Failure>
where
    S: State,
    T: Tags,
    L: FindingLog,
    B: AlertBus,
    Q: Quarantine,
{
    let event = match normalize(raw) {
        Ok(e) => e,
        Err(e) => return reject(ports, function, raw, format!("malformed event: {e}")).await,
    };
    let event_id = match (&event, accept) {
        (Event::Skipped(skip), _) => return reject(ports, function, raw, skip_reason(skip)).await,
        (Event::Activity(a), Accept::Activities) => a.event_id.clone(),
        (Event::Status(s), Accept::StatusChanges) => s.event_id.clone(),
        (Event::Activity(_), Accept::StatusChanges) => {
            let reason = "unexpected event: a CloudTrail API call reached the status watcher (check the rule's pattern)";
            return reject(ports, function, raw, reason.to_string()).await;
        }
        (Event::Status(_), Accept::Activities) => {
            let reason = "unexpected event: a status-change notification reached the CloudTrail watcher (check the rule's pattern)";
            return reject(ports, function, raw, reason.to_string()).await;
        }
    };

    let journal = ports.state.gather(&event).await?;
    let inventory = ports
        .tags
        .gather(&tag_ids(&event, &journal, &ports.tag_scope))
        .await?;
    let mut watcher = Watcher::new(intent, journal);
    let findings = watcher.handle(&event, &inventory);
    let duplicate = watcher.stats.duplicates > 0;
    let changes = watcher.into_store().take_changes();

    ports.state.stage(&event_id, &findings).await?;
    let persisted = ports.state.persist(changes).await?;
    if !persisted.lost_claims.is_empty() {
        // Another invocation evaluated these pairs at the same time; the findings share their
        // ids, so delivery marks keep each sink from getting them twice.
        tracing::info!(
            event_id = event_id.as_str(),
            pairs = persisted.lost_claims.len(),
            "evaluated concurrently elsewhere"
        );
    }
    let mut outcome = deliver(ports, &event_id).await?;
    outcome.counts.events_processed = 1;
    outcome.duplicate = duplicate || persisted.duplicate_event;
    Ok(outcome)
}

/// Reports invocations parked before `cutoff_ms` whose SendCommand record never arrived.
/// `sweep_id` names the outbox (the scheduled event's id, so a retry delivers what an earlier
/// attempt staged).
pub async fn sweep<S, T, L, B, Q>(
    ports: &Ports<S, T, L, B, Q>,
    intent: &Intent,
    sweep_id: &str,
    cutoff_ms: i64,
) -> Result<Outcome, Failure>
where
    S: State,
    L: FindingLog,
    B: AlertBus,
{
    let parked = ports.state.parked_before(cutoff_ms).await?;
    let mut watcher = Watcher::new(intent, JournalStore::new());
    let findings = watcher.expired(&parked);
    ports.state.stage(sweep_id, &findings).await?;
    for (p, f) in parked.iter().zip(&findings) {
        if !ports.state.take_parked(p).await? {
            // The CloudTrail watcher finished this invocation after the scan.
            ports.state.unstage(sweep_id, &f.finding_id).await?;
        }
    }
    deliver(ports, sweep_id).await
}

/// Delivers an outbox: the log group gets every finding it has not had, the bus every alert
/// it has not had; each sink is marked after it accepted them.
pub async fn deliver<S, T, L, B, Q>(
    ports: &Ports<S, T, L, B, Q>,
    outbox: &str,
) -> Result<Outcome, Failure>
where
    S: State,
    L: FindingLog,
    B: AlertBus,
{
    let mut outcome = Outcome {
        event_id: outbox.to_string(),
        ..Outcome::default()
    };
    let staged = ports.state.staged(outbox).await?;
    if staged.is_empty() {
        return Ok(outcome);
    }
    let ids: Vec<String> = staged.iter().map(|f| f.finding_id.clone()).collect();
    let marks = ports.state.delivered(&ids).await?;
    let reached = |f: &Finding, sink: &str| {
        marks
            .get(&f.finding_id)
            .is_some_and(|sinks| sinks.iter().any(|s| s == sink))
    };

    let to_log: Vec<Finding> = staged
        .iter()
        .filter(|f| !reached(f, SINK_LOG))
        .cloned()
        .collect();
    if !to_log.is_empty() {
        ports.log.put(&to_log).await?;
        let logged: Vec<String> = to_log.iter().map(|f| f.finding_id.clone()).collect();
        ports.state.mark_delivered(&logged, SINK_LOG).await?;
        for f in &to_log {
            let c = &mut outcome.counts;
            match f.kind {
                FindingKind::Violation => c.violations += 1,
                FindingKind::AccessDenied => c.access_denied += 1,
                FindingKind::AccessDeniedSpike => c.access_denied_spikes += 1,
                FindingKind::Unevaluated => c.unevaluated += 1,
            }
        }
        outcome.logged = logged;
    }

    let to_bus: Vec<Finding> = staged
        .iter()
        .filter(|f| bus_entry(f).is_some() && !reached(f, SINK_BUS))
        .cloned()
        .collect();
    if !to_bus.is_empty() {
        ports.bus.publish(&to_bus).await?;
        let alerted: Vec<String> = to_bus.iter().map(|f| f.finding_id.clone()).collect();
        ports.state.mark_delivered(&alerted, SINK_BUS).await?;
        outcome.alerted = alerted;
    }
    Ok(outcome)
}
