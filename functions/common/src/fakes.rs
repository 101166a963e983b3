//! In-memory ports for the handlers' unit tests: the same contracts as the DynamoDB, EC2/SSM,
//! CloudWatch Logs, EventBridge and SQS adapters, with switchable failures.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tagwatch_core::intent::inventory::{Inventory, TagLookup};
use tagwatch_core::intent::origins::OriginKind;
use tagwatch_core::watch::asff::AsffFinding;
use tagwatch_core::watch::correlation::{DenialNote, DenialWindow, Episode, Parked};
use tagwatch_core::watch::dedupe::{count_for, GroupEntry};
use tagwatch_core::watch::event::{Activity, AssociationRun, Event, OriginSetup};
use tagwatch_core::watch::finding::Finding;
use tagwatch_core::watch::journal::{Change, DueParked, JournalStore, Lease, Persisted};
use tagwatch_core::watch::origin::role_key;
use tagwatch_core::watch::outputs::BusEntry;
use tagwatch_core::watch::silence::SourceSeen;
use tagwatch_core::watch::tags::TagQuery;

use crate::pipeline::Invocation;
use crate::ports::{
    AlertBus, FindingLog, FindingsHub, Gathered, Platform, PortError, PortResult, Ports,
    Quarantine, State, TagSource,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A failure switch: while on, every call of the port fails as a retryable AWS error would.
#[derive(Debug, Default)]
pub struct Switch(AtomicBool);

impl Switch {
    pub fn set(&self, failing: bool) {
        self.0.store(failing, Ordering::SeqCst);
    }
    fn check(&self, what: &str) -> PortResult<()> {
        if self.0.load(Ordering::SeqCst) {
            Err(PortError::Retryable(
                format!("{what} failed: injected").into(),
            ))
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
    /// (command, instance) to the event that claimed it.
    pub claims: BTreeMap<(String, String), String>,
    pub parked: BTreeMap<(String, String), Parked>,
    /// Overdue markers, and whether their finding was staged.
    pub overdue: BTreeMap<(String, String), (Parked, bool)>,
    /// Parked items that cannot be read (key, reason): the sweep meets them first.
    pub unreadable: Vec<(String, String)>,
    pub denials: HashMap<String, BTreeSet<(i64, String)>>,
    /// What each denial was (by event id).
    pub denial_notes: HashMap<String, DenialNote>,
    /// When each (account, region) last sent an event.
    pub sources: HashMap<(String, String), SourceSeen>,
    /// Each (group, dedupe window): its owner and the finding ids it has seen.
    pub groups: HashMap<(String, i64), (String, BTreeSet<String>)>,
    pub episodes: HashMap<String, Episode>,
    pub outbox: BTreeMap<(String, String), Finding>,
    /// Finding id to the holder of its delivery lease (leases never run out by themselves
    /// here; `FakeState::leases_expired` makes them).
    pub leases: HashMap<String, String>,
    pub delivered: HashMap<String, BTreeSet<String>>,
    /// Origin setups, the newest definition of each (kind, id).
    pub origins: Vec<Arc<OriginSetup>>,
    pub association_runs: Vec<AssociationRun>,
}

/// The DynamoDB adapter's contract in memory.
#[derive(Debug, Default)]
pub struct FakeState {
    pub table: Mutex<Table>,
    /// Fails every call while on.
    pub failing: Switch,
    /// Fails `persist` only (after `stage` succeeded) while on.
    pub failing_persist: Switch,
    /// Fails `mark_delivered` only while on.
    pub failing_marks: Switch,
    /// Leases held by other holders run out at once while on (a crashed holder).
    pub leases_expired: Switch,
    /// While on, `gather` does not see stored SendCommand records (it read before the
    /// CloudTrail watcher wrote one: the race a second look closes).
    pub stale_gather: Switch,
}

impl FakeState {
    pub fn snapshot(&self) -> Table {
        lock(&self.table).clone()
    }
}

/// A command's partition as the adapter reads it: claims `owner` holds are left out.
fn load_command(t: &Table, cmd: &str, record: bool, owner: &str, store: &mut JournalStore) {
    if record {
        if let Some(a) = t.commands.get(cmd) {
            store.preload_command(Arc::new(a.clone()));
        }
    }
    // Keyed range reads, as DynamoDB's Query on the command's partition.
    let from = (cmd.to_string(), String::new());
    for ((c, i), _) in t
        .claims
        .range(from.clone()..)
        .take_while(|((c, _), _)| c == cmd)
        .filter(|(_, o)| o.as_str() != owner)
    {
        store.preload_claim(c, i, 0);
    }
    for (_, p) in t
        .parked
        .range(from.clone()..)
        .take_while(|((c, _), _)| c == cmd)
    {
        store.preload_parked(p.clone());
    }
    for (_, (p, _)) in t.overdue.range(from..).take_while(|((c, _), _)| c == cmd) {
        store.preload_parked(p.clone());
    }
}

impl State for FakeState {
    async fn record_denial(
        &self,
        caller: &str,
        event_id: &str,
        event_ms: i64,
        note: &DenialNote,
    ) -> PortResult<()> {
        self.failing.check("record_denial")?;
        let mut t = lock(&self.table);
        t.denials
            .entry(caller.to_string())
            .or_default()
            .insert((event_ms, event_id.to_string()));
        t.denial_notes.insert(event_id.to_string(), note.clone());
        Ok(())
    }

    async fn denials(
        &self,
        caller: &str,
        event_id: &str,
        event_ms: i64,
        window_ms: i64,
        per_side: usize,
    ) -> PortResult<DenialWindow> {
        self.failing.check("denials")?;
        let t = lock(&self.table);
        let mut calls: Vec<(i64, String)> = Vec::new();
        if let Some(all) = t.denials.get(caller) {
            let before = all
                .iter()
                .rev()
                .filter(|(ms, _)| *ms <= event_ms && *ms > event_ms - window_ms)
                .take(per_side);
            let after = all
                .iter()
                .filter(|(ms, _)| *ms > event_ms && *ms < event_ms + window_ms)
                .take(per_side);
            calls.extend(before.chain(after).cloned());
        }
        calls.sort();
        let notes = calls
            .iter()
            .filter_map(|(_, id)| Some((id.clone(), t.denial_notes.get(id)?.clone())))
            .collect();
        Ok(DenialWindow {
            calls: calls.into(),
            notes,
            episode: t
                .episodes
                .get(caller)
                .filter(|e| e.opened_by != event_id)
                .cloned(),
        })
    }

    async fn gather(&self, event: &Event) -> PortResult<JournalStore> {
        self.failing.check("gather")?;
        let t = lock(&self.table);
        let mut store = JournalStore::new();
        let Some(meta) = event.meta() else {
            return Ok(store);
        };
        let (event_id, event_ms) = (&meta.event_id, meta.event_epoch_ms);
        let command = match event {
            Event::Activity(a) => a.command_id.as_ref(),
            _ => None,
        };
        let lookup = match event {
            Event::AssociationRun(run) => tagwatch_core::watch::origin::OriginLookup {
                association: Some(run.association_id.clone()),
                ..Default::default()
            },
            Event::Activity(a) => tagwatch_core::watch::origin::lookup_of(a),
            _ => Default::default(),
        };
        for o in &t.origins {
            let wanted = match o.kind {
                OriginKind::Association => lookup.association.as_deref() == Some(o.id.as_str()),
                OriginKind::Automation => lookup.automation.as_deref() == Some(o.id.as_str()),
                OriginKind::MaintenanceWindow => {
                    lookup.window_tasks.as_ref().is_some_and(|(role, doc)| {
                        o.service_role.as_deref().map(role_key).as_deref() == Some(role.as_str())
                            && o.document.as_deref() == Some(doc.as_str())
                    })
                }
            };
            if wanted {
                store.preload_origin(Arc::clone(o));
            }
        }
        if t.seen.contains(event_id) {
            store.preload_sighting(event_id, event_ms);
        }
        match event {
            // A status event reads the record and its own targets' claims, by key.
            Event::Status(s) => {
                if !self.stale_gather.0.load(Ordering::SeqCst) {
                    if let Some(a) = t.commands.get(&s.command_id) {
                        store.preload_command(Arc::new(a.clone()));
                    }
                }
                for target in &s.targets {
                    let pair = (s.command_id.clone(), target.id.clone());
                    if t.claims.get(&pair).is_some_and(|o| *o != s.meta.event_id) {
                        store.preload_claim(&pair.0, &pair.1, 0);
                    }
                }
            }
            _ => {
                if let Some(cmd) = command {
                    load_command(&t, cmd, false, event_id, &mut store);
                }
            }
        }
        Ok(store)
    }

    async fn has_record(&self, command_id: &str) -> PortResult<bool> {
        self.failing.check("has_record")?;
        Ok(lock(&self.table).commands.contains_key(command_id))
    }

    async fn gather_command(&self, command_id: &str, owner: &str) -> PortResult<JournalStore> {
        self.failing.check("gather_command")?;
        let t = lock(&self.table);
        let mut store = JournalStore::new();
        load_command(&t, command_id, true, owner, &mut store);
        Ok(store)
    }

    async fn persist(&self, owner: &str, changes: Vec<Change>) -> PortResult<Persisted> {
        self.failing.check("persist")?;
        self.failing_persist.check("persist")?;
        let mut t = lock(&self.table);
        let mut result = Persisted::default();
        let mut sightings = Vec::new();
        for change in changes {
            match change {
                Change::Sighted { event_id, .. } => sightings.push(event_id),
                Change::Origin(setup) => {
                    let held = t
                        .origins
                        .iter_mut()
                        .find(|o| o.kind == setup.kind && o.id == setup.id);
                    match held {
                        Some(h) if h.call.meta.event_epoch_ms > setup.call.meta.event_epoch_ms => {}
                        Some(h) => *h = setup,
                        None => t.origins.push(setup),
                    }
                }
                Change::AssociationRan(run) => {
                    if !t.association_runs.contains(&run) {
                        t.association_runs.push(*run);
                    }
                }
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
                    match t.claims.get(&pair) {
                        Some(o) if o != owner => result.lost_claims.push(pair),
                        _ => {
                            t.claims.insert(pair, owner.to_string());
                        }
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
                        let k = (command_id.clone(), i);
                        t.parked.remove(&k);
                        t.overdue.remove(&k);
                    }
                }
                Change::Episode {
                    caller,
                    episode,
                    opened,
                } => {
                    let stored = t.episodes.get(&caller).cloned();
                    if opened {
                        let free = stored.as_ref().is_none_or(|s| {
                            s.opened_by == episode.opened_by
                                || s.closes_ms() <= episode.started_ms.min(episode.last_ms)
                                || s.opens_ms() >= episode.last_ms
                        });
                        if free {
                            t.episodes.insert(caller.clone(), episode.clone());
                        } else {
                            result
                                .lost_episodes
                                .push((caller.clone(), episode.opened_by.clone()));
                        }
                    }
                    if let Some(s) = t.episodes.get_mut(&caller) {
                        if s.last_ms < episode.last_ms && s.closes_ms() > episode.last_ms {
                            s.last_ms = episode.last_ms;
                        }
                    }
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

    async fn dedupe(&self, entries: &[GroupEntry]) -> PortResult<Vec<u64>> {
        self.failing.check("dedupe")?;
        let mut t = lock(&self.table);
        Ok(entries
            .iter()
            .map(|e| {
                let (owner, ids) = t
                    .groups
                    .entry((e.group.clone(), e.window))
                    .or_insert_with(|| (e.finding_id.clone(), BTreeSet::new()));
                ids.insert(e.finding_id.clone());
                count_for(*owner == e.finding_id, ids.len() as u64)
            })
            .collect())
    }

    async fn saw_source(
        &self,
        account: &str,
        region: &str,
        partition: &str,
        event_ms: i64,
    ) -> PortResult<()> {
        self.failing.check("saw_source")?;
        let mut t = lock(&self.table);
        let seen = t
            .sources
            .entry((account.to_string(), region.to_string()))
            .or_insert_with(|| SourceSeen {
                account: account.to_string(),
                region: region.to_string(),
                partition: partition.to_string(),
                last_ms: event_ms,
            });
        seen.last_ms = seen.last_ms.max(event_ms);
        Ok(())
    }

    async fn sources(&self) -> PortResult<Vec<SourceSeen>> {
        self.failing.check("sources")?;
        let t = lock(&self.table);
        let mut out: Vec<SourceSeen> = t.sources.values().cloned().collect();
        out.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        Ok(out)
    }

    async fn stage(&self, outbox: &str, findings: &[Finding]) -> PortResult<()> {
        self.failing.check("stage")?;
        let mut t = lock(&self.table);
        for f in findings {
            t.outbox
                .insert((outbox.to_string(), f.finding_id.clone()), f.clone());
        }
        Ok(())
    }

    async fn staged(&self, outbox: &str) -> PortResult<Vec<Finding>> {
        self.failing.check("staged")?;
        Ok(lock(&self.table)
            .outbox
            .range((outbox.to_string(), String::new())..)
            .take_while(|((e, _), _)| e == outbox)
            .map(|(_, f)| f.clone())
            .collect())
    }

    async fn delivered(
        &self,
        finding_ids: &[String],
        sinks: &[&str],
    ) -> PortResult<HashMap<String, Vec<String>>> {
        self.failing.check("delivered")?;
        let t = lock(&self.table);
        Ok(finding_ids
            .iter()
            .filter_map(|id| {
                t.delivered.get(id).map(|s| {
                    let reached = s
                        .iter()
                        .filter(|sink| sinks.contains(&sink.as_str()))
                        .cloned()
                        .collect();
                    (id.clone(), reached)
                })
            })
            .collect())
    }

    async fn lease(
        &self,
        finding_ids: &[String],
        holder: &str,
        _lease_ms: i64,
    ) -> PortResult<Vec<Lease>> {
        self.failing.check("lease")?;
        let expired = self.leases_expired.0.load(Ordering::SeqCst);
        let mut t = lock(&self.table);
        Ok(finding_ids
            .iter()
            .map(|id| match t.leases.get(id) {
                Some(h) if h != holder && !expired => Lease::HeldElsewhere,
                _ => {
                    t.leases.insert(id.clone(), holder.to_string());
                    Lease::Granted
                }
            })
            .collect())
    }

    async fn release(&self, finding_ids: &[String], holder: &str) -> PortResult<()> {
        self.failing.check("release")?;
        let mut t = lock(&self.table);
        for id in finding_ids {
            if t.leases.get(id).is_some_and(|h| h == holder) {
                t.leases.remove(id);
            }
        }
        Ok(())
    }

    async fn mark_delivered(&self, finding_ids: &[String], sink: &str) -> PortResult<()> {
        self.failing.check("mark_delivered")?;
        self.failing_marks.check("mark_delivered")?;
        let mut t = lock(&self.table);
        for id in finding_ids {
            t.delivered
                .entry(id.clone())
                .or_default()
                .insert(sink.to_string());
        }
        Ok(())
    }

    async fn due_parked(&self, cutoff_ms: i64, limit: usize) -> PortResult<Vec<DueParked>> {
        self.failing.check("due_parked")?;
        let mut t = lock(&self.table);
        let mut due: Vec<DueParked> = std::mem::take(&mut t.unreadable)
            .into_iter()
            .map(|(key, reason)| DueParked::Unreadable { key, reason })
            .collect();
        due.extend(
            t.overdue
                .values()
                .filter(|(_, reported)| !reported)
                .map(|(p, _)| DueParked::Pair {
                    parked: p.clone(),
                    overdue: true,
                }),
        );
        let mut parked: Vec<&Parked> = t
            .parked
            .values()
            .filter(|p| p.status.meta.event_epoch_ms < cutoff_ms)
            .collect();
        parked.sort_by_key(|p| p.status.meta.event_epoch_ms);
        due.extend(parked.into_iter().map(|p| DueParked::Pair {
            parked: p.clone(),
            overdue: false,
        }));
        due.truncate(limit);
        Ok(due)
    }

    async fn take_overdue(&self, parked: &Parked) -> PortResult<bool> {
        self.failing.check("take_overdue")?;
        let mut t = lock(&self.table);
        let k = (parked.command_id.clone(), parked.instance_id.clone());
        match t.parked.remove(&k) {
            Some(p) => {
                t.overdue.insert(k, (p, false));
                Ok(true)
            }
            // Taken by an earlier attempt and not reported yet: taken again.
            None => Ok(t.overdue.get(&k).is_some_and(|(_, reported)| !reported)),
        }
    }

    async fn reported_overdue(&self, parked: &[Parked]) -> PortResult<()> {
        self.failing.check("reported_overdue")?;
        let mut t = lock(&self.table);
        for p in parked {
            if let Some(entry) = t
                .overdue
                .get_mut(&(p.command_id.clone(), p.instance_id.clone()))
            {
                entry.1 = true;
            }
        }
        Ok(())
    }

    async fn association_runs(
        &self,
        instance: &str,
        document: &str,
    ) -> PortResult<Vec<AssociationRun>> {
        self.failing.check("association_runs")?;
        Ok(lock(&self.table)
            .association_runs
            .iter()
            .filter(|r| r.target.id == instance && r.document.id == document)
            .cloned()
            .collect())
    }

    async fn drop_parked(&self, parked: &[Parked]) -> PortResult<()> {
        self.failing.check("drop_parked")?;
        let mut t = lock(&self.table);
        for p in parked {
            let k = (p.command_id.clone(), p.instance_id.clone());
            t.parked.remove(&k);
            t.overdue.remove(&k);
        }
        Ok(())
    }
}

/// Tags from an inventory; ids it lacks are unknown.
#[derive(Debug, Default)]
pub struct FakeTags {
    pub inventory: Inventory,
    pub failing: Switch,
    /// Every id asked for, in order.
    pub asked: Mutex<Vec<String>>,
    /// The account of every answered query, in order.
    pub accounts: Mutex<Vec<String>>,
    /// Member accounts whose reader role is refused.
    pub no_access: Mutex<Vec<String>>,
}

impl TagSource for FakeTags {
    async fn gather(&self, query: &TagQuery) -> PortResult<Gathered> {
        self.failing.check("tags")?;
        if lock(&self.no_access).contains(&query.account) {
            return Ok(Gathered::NoAccess {
                account: query.account.clone(),
                why: "AccessDenied: not authorized to perform sts:AssumeRole (injected)".into(),
            });
        }
        let ids: Vec<&String> = query.targets.iter().chain(&query.documents).collect();
        lock(&self.asked).extend(ids.iter().map(|id| (*id).clone()));
        let mut out = Inventory::default();
        for id in ids {
            if let Some(tags) = self.inventory.tags(id) {
                out.insert(id.clone(), tags.clone());
            }
        }
        lock(&self.accounts).push(query.account.clone());
        Ok(Gathered::Tags(out))
    }
}

/// The findings log group: what was written, in order, and each `PutLogEvents` call's size.
#[derive(Debug, Default)]
pub struct FakeLog {
    pub written: Mutex<Vec<Finding>>,
    /// (events, bytes counted as CloudWatch counts them) per call.
    pub calls: Mutex<Vec<(usize, usize)>>,
    pub failing: Switch,
    /// While on, every call fails as AccessDenied on the log group would (permanent).
    pub denied: Switch,
    /// When set, that many more calls succeed, then every call fails (retryable) until it is
    /// cleared: a log group that fails part way through a day's batches.
    pub calls_left: Mutex<Option<usize>>,
}

/// The log group the fake log stands for.
pub const FAKE_LOG_GROUP: &str = "/tagwatch/test/findings";

impl FindingLog for FakeLog {
    fn group(&self) -> &str {
        FAKE_LOG_GROUP
    }
    async fn put(&self, messages: &[String]) -> PortResult<()> {
        self.failing.check("log")?;
        if let Some(left) = lock(&self.calls_left).as_mut() {
            if *left == 0 {
                return Err(PortError::Retryable(
                    "CloudWatch Logs PutLogEvents failed (retryable): injected"
                        .to_string()
                        .into(),
                ));
            }
            *left -= 1;
        }
        if self.denied.0.load(Ordering::SeqCst) {
            return Err(PortError::Permanent(
                "CloudWatch Logs PutLogEvents failed (permanent, AccessDeniedException): injected"
                    .to_string()
                    .into(),
            ));
        }
        let bytes = messages
            .iter()
            .map(|m| m.len() + tagwatch_core::watch::outputs::LOG_EVENT_OVERHEAD)
            .sum();
        lock(&self.calls).push((messages.len(), bytes));
        let mut written = lock(&self.written);
        for m in messages {
            let f: Finding = serde_json::from_str(m)
                .map_err(|e| PortError::Permanent(format!("not a finding: {e}").into()))?;
            written.push(f);
        }
        Ok(())
    }
}

/// The findings bus: what was published, in order, and each `PutEvents` call's entry count.
#[derive(Debug, Default)]
pub struct FakeBus {
    pub published: Mutex<Vec<Finding>>,
    pub calls: Mutex<Vec<usize>>,
    pub failing: Switch,
    /// Fails every other entry of each call while on (a partial `PutEvents` failure).
    pub failing_entries: Switch,
}

impl AlertBus for FakeBus {
    async fn publish(&self, entries: &[BusEntry]) -> PortResult<Vec<Option<String>>> {
        self.failing.check("bus")?;
        let partial = self.failing_entries.0.load(Ordering::SeqCst);
        lock(&self.calls).push(entries.len());
        let mut out = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if partial && i % 2 == 1 {
                out.push(Some("ThrottlingException: injected".to_string()));
                continue;
            }
            let f: Finding = serde_json::from_str(&e.detail)
                .map_err(|e| PortError::Permanent(format!("not a finding: {e}").into()))?;
            lock(&self.published).push(f);
            out.push(None);
        }
        Ok(out)
    }
}

/// Security Hub: the findings imported, in order (a re-import of an id is listed again), and
/// each call's size.
#[derive(Debug, Default)]
pub struct FakeHub {
    pub imported: Mutex<Vec<AsffFinding>>,
    pub calls: Mutex<Vec<usize>>,
    pub failing: Switch,
    /// Fails every other finding of each call while on (`FailedFindings`).
    pub failing_entries: Switch,
}

impl FindingsHub for FakeHub {
    async fn import(&self, findings: &[AsffFinding]) -> PortResult<Vec<Option<String>>> {
        self.failing.check("securityhub")?;
        let partial = self.failing_entries.0.load(Ordering::SeqCst);
        lock(&self.calls).push(findings.len());
        let mut out = Vec::with_capacity(findings.len());
        for (i, f) in findings.iter().enumerate() {
            if partial && i % 2 == 1 {
                out.push(Some("ThrottlingException: injected".to_string()));
                continue;
            }
            lock(&self.imported).push(f.clone());
            out.push(None);
        }
        Ok(out)
    }
}

/// The Security Hub home of the fakes' deployment.
pub fn hub_home() -> tagwatch_core::watch::asff::Home {
    tagwatch_core::watch::asff::Home {
        product_arn: "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default"
            .into(),
        partition: "aws".into(),
        region: "us-east-1".into(),
        account: "111122223333".into(),
    }
}

/// Fakes that also export to Security Hub.
pub fn ports_with_security_hub(inventory: Inventory) -> FakePorts {
    Ports {
        security_hub: Some(crate::ports::SecurityHub {
            port: FakeHub::default(),
            home: hub_home(),
        }),
        ..ports(inventory)
    }
}

/// The ids imported into Security Hub, in order.
pub fn imported_ids(p: &FakePorts) -> Vec<String> {
    p.security_hub
        .as_ref()
        .map(|h| {
            lock(&h.port.imported)
                .iter()
                .map(|f| f.id.clone())
                .collect()
        })
        .unwrap_or_default()
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

/// The in-memory fakes, for the handlers' unit tests.
#[derive(Debug, Clone, Copy)]
pub struct Fakes;

impl Platform for Fakes {
    type State = FakeState;
    type Tags = FakeTags;
    type Log = FakeLog;
    type Bus = FakeBus;
    type Quarantine = FakeQuarantine;
    type Hub = FakeHub;
}

/// The fakes wired together.
pub type FakePorts = Ports<Fakes>;

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
        security_hub: None,
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

/// An invocation of `function` (one request id: a retry of it takes its own leases back).
pub fn invocation(function: &'static str) -> Invocation {
    Invocation {
        function,
        request_id: "test-request".to_string(),
        lease: std::time::Duration::from_secs(40),
    }
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

/// S3 in memory: objects by (bucket, key); listings walk the keys as S3's delimiter listing
/// would, through the core's layout rules.
#[derive(Debug, Default)]
pub struct FakeArchive {
    pub objects: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    pub failing: Switch,
    /// Keys whose reads fail (retryable) while listed here.
    pub failing_keys: Mutex<BTreeSet<String>>,
    /// Keys whose writes fail (retryable) while listed here.
    pub failing_puts: Mutex<BTreeSet<String>>,
    /// Every key read, in order.
    pub reads: Mutex<Vec<String>>,
}

impl FakeArchive {
    pub fn insert(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        lock(&self.objects).insert((bucket.to_string(), key.to_string()), body.into());
    }

    pub fn body(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        lock(&self.objects)
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
    }

    /// The keys of a bucket under a prefix, in order.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        lock(&self.objects)
            .keys()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// The sub-folders of `prefix` (common prefixes with delimiter `/`).
    fn folders(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .keys(bucket, prefix)
            .iter()
            .filter_map(|k| {
                let rest = k.get(prefix.len()..)?;
                let at = rest.find('/')?;
                Some(format!("{prefix}{}", rest.get(..=at)?))
            })
            .collect();
        out.dedup();
        out
    }
}

impl crate::ports::Archive for FakeArchive {
    async fn days(
        &self,
        bucket: &str,
        prefix: &str,
        selection: &tagwatch_core::archive::Selection,
    ) -> PortResult<Vec<tagwatch_core::archive::DayPrefix>> {
        use tagwatch_core::archive::{start, Start, Step};
        self.failing.check("s3")?;
        let mut stack = match start(prefix, selection) {
            Start::Walk(c) => vec![c],
            Start::Day(d) => return Ok(vec![d]),
            Start::Excluded => return Ok(Vec::new()),
            Start::Outside => {
                return Err(PortError::Permanent(
                    format!("s3://{bucket}/{prefix} holds no CloudTrail layout").into(),
                ))
            }
        };
        let mut days = Vec::new();
        while let Some(cursor) = stack.pop() {
            let mut descended = false;
            for folder in self.folders(bucket, cursor.prefix()) {
                match cursor.step(&folder, selection) {
                    Step::Descend(c) => {
                        descended = true;
                        stack.push(c);
                    }
                    Step::Day(d) => days.push(d),
                    Step::Skip => {}
                }
            }
            if cursor.is_top() && !descended {
                return Err(PortError::Permanent(
                    format!("s3://{bucket}/{prefix} holds no CloudTrail layout").into(),
                ));
            }
        }
        days.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        Ok(days)
    }

    async fn objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> PortResult<Vec<crate::ports::ArchiveObject>> {
        use tagwatch_core::archive::{choose, Choice, Selection};
        self.failing.check("s3")?;
        let all = Selection::default();
        Ok(lock(&self.objects)
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .filter(|((_, k), _)| choose(k, &all) == Choice::Read)
            .map(|((_, k), body)| crate::ports::ArchiveObject {
                key: k.clone(),
                size: body.len() as u64,
            })
            .collect())
    }

    async fn get(&self, bucket: &str, key: &str) -> PortResult<Vec<u8>> {
        self.failing.check("s3")?;
        if lock(&self.failing_keys).contains(key) {
            return Err(PortError::Retryable(
                format!("S3 GetObject failed (retryable, InternalError): {key} (injected)").into(),
            ));
        }
        lock(&self.reads).push(key.to_string());
        self.body(bucket, key).ok_or_else(|| {
            PortError::Permanent(format!("S3 GetObject failed (NoSuchKey): {key}").into())
        })
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        _content_type: &str,
    ) -> PortResult<()> {
        self.failing.check("s3")?;
        if lock(&self.failing_puts).contains(key) {
            return Err(PortError::Retryable(
                format!("S3 PutObject failed (retryable, InternalError): {key} (injected)").into(),
            ));
        }
        self.insert(bucket, key, body);
        Ok(())
    }

    async fn exists(&self, bucket: &str, key: &str) -> PortResult<bool> {
        self.failing.check("s3")?;
        Ok(self.body(bucket, key).is_some())
    }
}
