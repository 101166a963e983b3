//! In-memory ports for the handlers' unit tests: the same contracts as the DynamoDB, EC2/SSM,
//! CloudWatch Logs, EventBridge and SQS adapters, with switchable failures.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tagwatch_aws::dynamo::Persisted;
use tagwatch_core::correlate::{DenialWindow, Parked};
use tagwatch_core::event::{Activity, Event, Outcome};
use tagwatch_core::journal::{Change, JournalStore};
use tagwatch_core::tags::{Inventory, TagLookup};
use tagwatch_core::verdict::Finding;

use crate::ports::{AlertBus, FindingLog, PortError, PortResult, Ports, Quarantine, State, Tags};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A failure switch: while on, every call of the port fails as a transient AWS error would.
#[derive(Debug, Default)]
pub struct Switch(AtomicBool);

impl Switch {
    pub fn set(&self, failing: bool) {
        self.0.store(failing, Ordering::SeqCst);
    }
    fn check(&self, what: &str) -> PortResult<()> {
        if self.0.load(Ordering::SeqCst) {
            Err(PortError::Transient(format!("{what} failed: injected")))
        } else {
            Ok(())
        }
    }
}

/// The table's contents.
#[derive(Debug, Default, Clone)]
pub struct Table {
    pub seen: HashSet<String>,
    pub commands: HashMap<String, Activity>,
    pub claims: BTreeSet<(String, String)>,
    pub parked: BTreeMap<(String, String), Parked>,
    pub denials: HashMap<String, DenialWindow>,
    pub outbox: BTreeMap<(String, String), Finding>,
    pub delivered: HashMap<String, BTreeSet<String>>,
}

/// The DynamoDB adapter's contract in memory.
#[derive(Debug, Default)]
pub struct FakeState {
    pub table: Mutex<Table>,
    /// Fails every call while on.
    pub failing: Switch,
    /// Fails `persist` only (after `stage` succeeded) while on.
    pub failing_persist: Switch,
}

impl FakeState {
    pub fn snapshot(&self) -> Table {
        lock(&self.table).clone()
    }
}

impl State for FakeState {
    async fn gather(&self, event: &Event) -> PortResult<JournalStore> {
        self.failing.check("gather")?;
        let t = lock(&self.table);
        let mut store = JournalStore::new();
        let (event_id, event_ms, command, record) = match event {
            Event::Skipped(_) => return Ok(store),
            Event::Activity(a) => (&a.event_id, a.event_epoch_ms, a.command_id.as_ref(), false),
            Event::Status(s) => (&s.event_id, s.event_epoch_ms, Some(&s.command_id), true),
        };
        if t.seen.contains(event_id) {
            store.preload_sighting(event_id, event_ms);
        }
        if let Some(cmd) = command {
            if record {
                if let Some(a) = t.commands.get(cmd) {
                    store.preload_command(Arc::new(a.clone()));
                }
            }
            // Keyed range reads, as DynamoDB's Query on the command's partition.
            let from = (cmd.clone(), String::new());
            for (c, i) in t.claims.range(from.clone()..).take_while(|(c, _)| c == cmd) {
                store.preload_claim(c, i, 0);
            }
            for (_, p) in t.parked.range(from..).take_while(|((c, _), _)| c == cmd) {
                store.preload_parked(p.clone());
            }
        }
        if let Event::Activity(a) = event {
            if let (Outcome::Denied { .. }, Some(caller)) = (&a.outcome, &a.caller.arn) {
                if let Some(w) = t.denials.get(caller) {
                    store.preload_denials(caller, w.clone());
                }
            }
        }
        Ok(store)
    }

    async fn persist(&self, changes: Vec<Change>) -> PortResult<Persisted> {
        self.failing.check("persist")?;
        self.failing_persist.check("persist")?;
        let mut t = lock(&self.table);
        let mut result = Persisted::default();
        let mut sightings = Vec::new();
        for change in changes {
            match change {
                Change::Sighted { event_id, .. } => sightings.push(event_id),
                Change::Command(a) => {
                    if let Some(cmd) = &a.command_id {
                        t.commands.insert(cmd.clone(), (*a).clone());
                    }
                }
                Change::Claimed {
                    command_id,
                    instance_id,
                    ..
                } => {
                    let pair = (command_id, instance_id);
                    if !t.claims.insert(pair.clone()) {
                        result.lost_claims.push(pair);
                    }
                }
                Change::Parked(p) => {
                    t.parked
                        .insert((p.command_id.clone(), p.instance_id.clone()), p);
                }
                Change::Unparked {
                    command_id,
                    instance_ids,
                } => {
                    for i in instance_ids {
                        t.parked.remove(&(command_id.clone(), i));
                    }
                }
                Change::Denials { caller, mut window } => {
                    let stored = t.denials.get(&caller).map_or(0, |w| w.version);
                    if stored != window.version {
                        return Err(PortError::Conflict(format!("`caller#{caller}` changed")));
                    }
                    window.version += 1;
                    t.denials.insert(caller, window);
                }
            }
        }
        for id in sightings {
            if !t.seen.insert(id) {
                result.duplicate_event = true;
            }
        }
        Ok(result)
    }

    async fn stage(&self, event_id: &str, findings: &[Finding]) -> PortResult<()> {
        self.failing.check("stage")?;
        let mut t = lock(&self.table);
        for f in findings {
            t.outbox
                .insert((event_id.to_string(), f.finding_id.clone()), f.clone());
        }
        Ok(())
    }

    async fn unstage(&self, event_id: &str, finding_id: &str) -> PortResult<()> {
        self.failing.check("unstage")?;
        lock(&self.table)
            .outbox
            .remove(&(event_id.to_string(), finding_id.to_string()));
        Ok(())
    }

    async fn staged(&self, event_id: &str) -> PortResult<Vec<Finding>> {
        self.failing.check("staged")?;
        Ok(lock(&self.table)
            .outbox
            .range((event_id.to_string(), String::new())..)
            .take_while(|((e, _), _)| e == event_id)
            .map(|(_, f)| f.clone())
            .collect())
    }

    async fn delivered(&self, finding_ids: &[String]) -> PortResult<HashMap<String, Vec<String>>> {
        self.failing.check("delivered")?;
        let t = lock(&self.table);
        Ok(finding_ids
            .iter()
            .filter_map(|id| {
                t.delivered
                    .get(id)
                    .map(|s| (id.clone(), s.iter().cloned().collect()))
            })
            .collect())
    }

    async fn mark_delivered(&self, finding_ids: &[String], sink: &str) -> PortResult<()> {
        self.failing.check("mark_delivered")?;
        let mut t = lock(&self.table);
        for id in finding_ids {
            t.delivered
                .entry(id.clone())
                .or_default()
                .insert(sink.to_string());
        }
        Ok(())
    }

    async fn parked_before(&self, cutoff_ms: i64) -> PortResult<Vec<Parked>> {
        self.failing.check("parked_before")?;
        Ok(lock(&self.table)
            .parked
            .values()
            .filter(|p| p.status.event_epoch_ms < cutoff_ms)
            .cloned()
            .collect())
    }

    async fn take_parked(&self, parked: &Parked) -> PortResult<bool> {
        self.failing.check("take_parked")?;
        Ok(lock(&self.table)
            .parked
            .remove(&(parked.command_id.clone(), parked.instance_id.clone()))
            .is_some())
    }
}

/// Tags from an inventory; ids it lacks are unknown.
#[derive(Debug, Default)]
pub struct FakeTags {
    pub inventory: Inventory,
    pub failing: Switch,
    /// Every id asked for, in order.
    pub asked: Mutex<Vec<String>>,
}

impl Tags for FakeTags {
    async fn gather(&self, ids: &[String]) -> PortResult<Inventory> {
        self.failing.check("tags")?;
        lock(&self.asked).extend(ids.iter().cloned());
        let mut out = Inventory::default();
        for id in ids {
            if let Some(tags) = self.inventory.tags(id) {
                out.insert(id.clone(), tags.clone());
            }
        }
        Ok(out)
    }
}

/// The findings log group: what was written, in order.
#[derive(Debug, Default)]
pub struct FakeLog {
    pub written: Mutex<Vec<Finding>>,
    pub failing: Switch,
}

impl FindingLog for FakeLog {
    async fn put(&self, findings: &[Finding]) -> PortResult<()> {
        self.failing.check("log")?;
        lock(&self.written).extend(findings.iter().cloned());
        Ok(())
    }
}

/// The findings bus: what was published, in order.
#[derive(Debug, Default)]
pub struct FakeBus {
    pub published: Mutex<Vec<Finding>>,
    pub failing: Switch,
}

impl AlertBus for FakeBus {
    async fn publish(&self, findings: &[Finding]) -> PortResult<usize> {
        self.failing.check("bus")?;
        let alerts: Vec<Finding> = findings
            .iter()
            .filter(|f| tagwatch_core::outputs::bus_entry(f).is_some())
            .cloned()
            .collect();
        let n = alerts.len();
        lock(&self.published).extend(alerts);
        Ok(n)
    }
}

/// The quarantine queue: (raw event, reason, function) kept.
#[derive(Debug, Default)]
pub struct FakeQuarantine {
    pub kept: Mutex<Vec<(String, String, String)>>,
    pub failing: Switch,
}

impl Quarantine for FakeQuarantine {
    async fn keep(&self, raw: &str, reason: &str, function: &str) -> PortResult<()> {
        self.failing.check("quarantine")?;
        lock(&self.kept).push((raw.to_string(), reason.to_string(), function.to_string()));
        Ok(())
    }
}

/// The fakes wired together.
pub type FakePorts = Ports<FakeState, FakeTags, FakeLog, FakeBus, FakeQuarantine>;

/// Fakes over an inventory, with a quarantine queue.
pub fn ports(inventory: Inventory) -> FakePorts {
    Ports {
        state: FakeState::default(),
        tags: FakeTags {
            inventory,
            ..FakeTags::default()
        },
        log: FakeLog::default(),
        bus: FakeBus::default(),
        quarantine: Some(FakeQuarantine::default()),
        tag_scope: crate::ports::TagScope::default(),
    }
}

/// The findings written to the log, by id.
pub fn logged_ids(p: &FakePorts) -> Vec<String> {
    lock(&p.log.written)
        .iter()
        .map(|f| f.finding_id.clone())
        .collect()
}

/// The findings published on the bus, by id.
pub fn alerted_ids(p: &FakePorts) -> Vec<String> {
    lock(&p.bus.published)
        .iter()
        .map(|f| f.finding_id.clone())
        .collect()
}

/// The quarantined (raw, reason, function) triples.
pub fn quarantined(p: &FakePorts) -> Vec<(String, String, String)> {
    p.quarantine
        .as_ref()
        .map(|q| lock(&q.kept).clone())
        .unwrap_or_default()
}

/// The findings written to the log.
pub fn logged(p: &FakePorts) -> Vec<Finding> {
    lock(&p.log.written).clone()
}

/// A configuration with the defaults (names of resources the fakes ignore).
pub fn config() -> crate::config::Config {
    let env = |k: &str| match k {
        "TAGWATCH_INTENT" => Some("intent.json".to_string()),
        "TAGWATCH_TABLE" => Some("tagwatch".to_string()),
        "TAGWATCH_FINDINGS_LOG_GROUP" => Some("/tagwatch/findings".to_string()),
        "TAGWATCH_FINDINGS_BUS" => Some("tagwatch-findings".to_string()),
        _ => None,
    };
    match crate::config::Config::from_lookup(env) {
        Ok(c) => c,
        Err(e) => unreachable!("the fake configuration is complete: {e}"),
    }
}
