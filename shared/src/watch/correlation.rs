//! Correlation state: what has been seen, which commands are known, which invocations wait for
//! their command, and AccessDenied windows per caller.
//!
//! [`CorrelationStore`] is the port; [`MemoryStore`] keeps everything in memory, bounded by an
//! event-time TTL (state older than the newest event time minus the TTL is evicted; evicted
//! parked invocations are handed back so they are reported, never forgotten).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::intent::origins::OriginKind;
use crate::watch::event::{Activity, AssociationRun, OriginSetup, StatusChange};
use crate::watch::origin::{role_key, ASSOCIATION_MATCH_MS};

/// An invocation whose SendCommand record has not been seen yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub command_id: String,
    pub instance_id: String,
    /// The status event that named it.
    pub status: Arc<StatusChange>,
}

/// A caller's AccessDenied spike episode. It opens when the calls within one spike window
/// reach the threshold, and stays open while denials keep coming less than a window apart:
/// one spike finding per episode, however long the storm, and a late or out-of-order denial
/// never re-arms it. A full window without denials closes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Episode {
    /// The denial (event id) that opened the episode; its spike finding is named after it.
    pub opened_by: String,
    /// Event times (ms) of the episode's first and last denial.
    pub started_ms: i64,
    pub last_ms: i64,
    /// The spike window the episode was opened under.
    pub window_ms: i64,
}

impl Episode {
    /// Whether a denial at `event_ms` belongs to this episode (less than a window from it).
    pub fn covers(&self, event_ms: i64) -> bool {
        event_ms > self.opens_ms() && event_ms < self.closes_ms()
    }

    /// The earliest event time (exclusive) a denial of this episode can have.
    pub fn opens_ms(&self) -> i64 {
        self.started_ms.saturating_sub(self.window_ms)
    }

    /// The event time from which a denial starts a new episode (a full quiet window).
    pub fn closes_ms(&self) -> i64 {
        self.last_ms.saturating_add(self.window_ms)
    }

    fn extend(&mut self, event_ms: i64) {
        self.started_ms = self.started_ms.min(event_ms);
        self.last_ms = self.last_ms.max(event_ms);
    }
}

/// AccessDenied calls of one caller around the spike window, and the caller's episode.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DenialWindow {
    /// Event times (ms) and event ids, sorted by time.
    pub calls: VecDeque<(i64, String)>,
    /// The newest episode (closed ones stay until replaced; [`Episode::covers`] tells).
    #[serde(default)]
    pub episode: Option<Episode>,
    /// What each call held asked for, and its session (by event id).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notes: BTreeMap<String, DenialNote>,
}

/// What one AccessDenied call was, as its caller's window remembers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DenialNote {
    /// The session ARN, where the window counts a role's sessions together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The action asked for (`ssm:SendCommand`).
    pub action: String,
    /// The resource AWS named in its message, else the call's one resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl DenialWindow {
    /// Remembers what a call was.
    pub fn note(&mut self, event_id: &str, note: DenialNote) {
        self.notes.insert(event_id.to_string(), note);
    }

    /// The distinct sessions of the calls held, sorted.
    pub fn session_arns(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .calls
            .iter()
            .filter_map(|(_, id)| self.notes.get(id)?.session.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The distinct requests of the calls held, with their number of calls, most frequent
    /// first (then by action and resource).
    pub fn requests(&self) -> Vec<crate::watch::finding::DeniedRequest> {
        let mut counted: BTreeMap<(&str, Option<&str>), usize> = BTreeMap::new();
        for (_, id) in &self.calls {
            // A call noted without its action (an item written before actions were kept)
            // counts in the window but names no request.
            if let Some(n) = self.notes.get(id).filter(|n| !n.action.is_empty()) {
                *counted
                    .entry((n.action.as_str(), n.resource.as_deref()))
                    .or_default() += 1;
            }
        }
        let mut out: Vec<_> = counted
            .into_iter()
            .map(
                |((action, resource), calls)| crate::watch::finding::DeniedRequest {
                    action: action.to_string(),
                    resource: resource.map(str::to_string),
                    calls,
                },
            )
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.calls));
        out
    }
}

/// What one AccessDenied call did to its caller's episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialEffect {
    /// Below the threshold and outside any episode.
    Quiet,
    /// The call belongs to the open episode (no new spike).
    Continued,
    /// The call brought the window to the threshold: a new episode and its spike.
    Opened,
}

/// The correlation port.
pub trait CorrelationStore {
    /// Records an event id; false when it was seen before (a redelivery).
    fn first_sighting(&mut self, event_id: &str, event_ms: i64) -> bool;
    /// Remembers a SendCommand so that its invocations can be evaluated later.
    fn put_command(&mut self, activity: Arc<Activity>);
    /// The SendCommand record of a command id.
    fn command(&self, command_id: &str) -> Option<Arc<Activity>>;
    /// Claims the evaluation of one (command, instance) pair; false when it was claimed before.
    fn claim(&mut self, command_id: &str, instance_id: &str, event_ms: i64) -> bool;
    /// Parks an invocation until its command's record arrives.
    fn park(&mut self, parked: Parked);
    /// Takes the invocations parked for a command.
    fn unpark(&mut self, command_id: &str) -> Vec<Parked>;
    /// Evicts state older than the TTL behind `now_ms`; returns expired parked invocations.
    fn expire(&mut self, now_ms: i64) -> Vec<Parked>;
    /// Takes every parked invocation (end of input).
    fn drain_parked(&mut self) -> Vec<Parked>;
    /// The AccessDenied window of a caller.
    fn denials(&mut self, caller: &str) -> &mut DenialWindow;
    /// Remembers an origin's setup (the latest definition of an id wins). Origins outlive the
    /// correlation window: an association runs for years after its definition.
    fn put_origin(&mut self, setup: Arc<OriginSetup>);
    /// The setup of an association or automation execution.
    fn origin(&self, kind: OriginKind, id: &str) -> Option<Arc<OriginSetup>>;
    /// The maintenance window tasks registered to run `document` with `role`.
    fn window_tasks(&self, role: &str, document: &str) -> Vec<Arc<OriginSetup>>;
    /// Remembers an association run on a node (it accounts for the run's command, which has no
    /// SendCommand record).
    fn put_association_run(&mut self, run: &AssociationRun);
    /// The association whose run of `document` on `instance` is within
    /// [`ASSOCIATION_MATCH_MS`] of `event_ms`, if any.
    fn association_run_near(&self, instance: &str, document: &str, event_ms: i64)
        -> Option<String>;
}

/// Keeps the newer of two definitions of one origin.
fn newer(held: Option<&Arc<OriginSetup>>, setup: &OriginSetup) -> bool {
    held.is_none_or(|h| h.call.meta.event_epoch_ms <= setup.call.meta.event_epoch_ms)
}

/// The association of the run nearest `event_ms` within the match window.
pub fn nearest_run(runs: &[(i64, String)], event_ms: i64) -> Option<String> {
    runs.iter()
        .filter(|(t, _)| (t - event_ms).abs() <= ASSOCIATION_MATCH_MS)
        .min_by_key(|(t, id)| ((t - event_ms).abs(), id.clone()))
        .map(|(_, id)| id.clone())
}

/// In-memory correlation state with an event-time TTL.
#[derive(Debug, Default)]
pub struct MemoryStore {
    ttl_ms: i64,
    newest_ms: i64,
    seen: HashSet<String>,
    commands: HashMap<String, Arc<Activity>>,
    claimed: HashSet<(String, String)>,
    parked: HashMap<String, Vec<Parked>>,
    denials: HashMap<String, DenialWindow>,
    /// Expiry index: event time to the keys created then.
    by_time: BTreeMap<i64, Vec<Key>>,
    /// Origins never expire with the correlation window.
    origins: HashMap<(OriginKind, String), Arc<OriginSetup>>,
    /// Window tasks by (role, document), by task id.
    window_tasks: HashMap<(String, String), BTreeMap<String, Arc<OriginSetup>>>,
    /// Association runs by (node, document name): (event ms, association id).
    association_runs: HashMap<(String, String), Vec<(i64, String)>>,
    /// Association runs past the TTL, evicted at the next expiry: the invocations expired with
    /// them must still find the run that accounts for them.
    stale_runs: Vec<((String, String), i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Seen(String),
    Command(String),
    Claim(String, String),
    Parked(String),
    Denials(String),
    AssociationRun(String, String),
}

impl MemoryStore {
    /// A store that keeps state for `ttl_ms` of event time.
    pub fn new(ttl_ms: i64) -> Self {
        MemoryStore {
            ttl_ms,
            newest_ms: i64::MIN,
            ..MemoryStore::default()
        }
    }

    fn index(&mut self, event_ms: i64, key: Key) {
        self.newest_ms = self.newest_ms.max(event_ms);
        self.by_time.entry(event_ms).or_default().push(key);
    }

    /// Number of entries held (for tests and the flat-memory check).
    pub fn len(&self) -> usize {
        self.seen.len()
            + self.commands.len()
            + self.claimed.len()
            + self.parked.values().map(Vec::len).sum::<usize>()
            + self.denials.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether a (command, instance) pair was claimed.
    pub fn is_claimed(&self, command_id: &str, instance_id: &str) -> bool {
        self.claimed
            .contains(&(command_id.to_string(), instance_id.to_string()))
    }

    /// The instances of the parked invocations held (whose tags a decision may need).
    pub fn parked_instances(&self) -> Vec<String> {
        self.parked
            .values()
            .flatten()
            .map(|p| p.instance_id.clone())
            .collect()
    }
}

impl CorrelationStore for MemoryStore {
    fn first_sighting(&mut self, event_id: &str, event_ms: i64) -> bool {
        if self.seen.contains(event_id) {
            return false;
        }
        self.seen.insert(event_id.to_string());
        self.index(event_ms, Key::Seen(event_id.to_string()));
        true
    }

    fn put_command(&mut self, activity: Arc<Activity>) {
        let Some(id) = activity.command_id.clone() else {
            return;
        };
        let ms = activity.meta.event_epoch_ms;
        self.commands.insert(id.clone(), activity);
        self.index(ms, Key::Command(id));
    }

    fn command(&self, command_id: &str) -> Option<Arc<Activity>> {
        self.commands.get(command_id).cloned()
    }

    fn claim(&mut self, command_id: &str, instance_id: &str, event_ms: i64) -> bool {
        let key = (command_id.to_string(), instance_id.to_string());
        if self.claimed.contains(&key) {
            return false;
        }
        self.claimed.insert(key.clone());
        self.index(event_ms, Key::Claim(key.0, key.1));
        true
    }

    fn park(&mut self, parked: Parked) {
        let ms = parked.status.meta.event_epoch_ms;
        let id = parked.command_id.clone();
        let list = self.parked.entry(id.clone()).or_default();
        if !list.iter().any(|p| p.instance_id == parked.instance_id) {
            list.push(parked);
            self.index(ms, Key::Parked(id));
        }
    }

    fn unpark(&mut self, command_id: &str) -> Vec<Parked> {
        self.parked.remove(command_id).unwrap_or_default()
    }

    fn expire(&mut self, now_ms: i64) -> Vec<Parked> {
        let now = now_ms.max(self.newest_ms);
        let cutoff = now.saturating_sub(self.ttl_ms);
        let mut expired = Vec::new();
        for (k, before) in std::mem::take(&mut self.stale_runs) {
            if let Some(runs) = self.association_runs.get_mut(&k) {
                runs.retain(|(t, _)| *t >= before);
                if runs.is_empty() {
                    self.association_runs.remove(&k);
                }
            }
        }
        let keep = self.by_time.split_off(&cutoff);
        let old = std::mem::replace(&mut self.by_time, keep);
        for key in old.into_values().flatten() {
            match key {
                Key::Seen(id) => {
                    self.seen.remove(&id);
                }
                Key::Command(id) => {
                    self.commands.remove(&id);
                }
                Key::Claim(c, i) => {
                    self.claimed.remove(&(c, i));
                }
                Key::Parked(id) => {
                    if let Some(list) = self.parked.remove(&id) {
                        expired.extend(list);
                    }
                }
                Key::AssociationRun(instance, doc) => {
                    self.stale_runs.push(((instance, doc), cutoff));
                }
                Key::Denials(caller) => {
                    let newest = self.denials.get_mut(&caller).and_then(|w| {
                        while w.calls.front().is_some_and(|(t, _)| *t < cutoff) {
                            w.calls.pop_front();
                        }
                        w.calls.back().map(|(t, _)| *t)
                    });
                    match newest {
                        // Still active: look again when its newest call expires.
                        Some(t) => self
                            .by_time
                            .entry(t)
                            .or_default()
                            .push(Key::Denials(caller)),
                        None => {
                            self.denials.remove(&caller);
                        }
                    }
                }
            }
        }
        expired
    }

    fn drain_parked(&mut self) -> Vec<Parked> {
        let mut all: Vec<Parked> = self.parked.drain().flat_map(|(_, v)| v).collect();
        all.sort_by(|a, b| {
            (a.status.meta.event_epoch_ms, &a.command_id, &a.instance_id).cmp(&(
                b.status.meta.event_epoch_ms,
                &b.command_id,
                &b.instance_id,
            ))
        });
        all
    }

    fn denials(&mut self, caller: &str) -> &mut DenialWindow {
        if !self.denials.contains_key(caller) {
            let ms = self.newest_ms;
            self.index(ms, Key::Denials(caller.to_string()));
        }
        self.denials.entry(caller.to_string()).or_default()
    }

    fn put_origin(&mut self, setup: Arc<OriginSetup>) {
        if setup.kind == OriginKind::MaintenanceWindow {
            let (Some(role), Some(doc)) = (&setup.service_role, &setup.document) else {
                return;
            };
            // An update may move a task to another role or document.
            for tasks in self.window_tasks.values_mut() {
                if tasks.get(&setup.id).is_some_and(|h| newer(Some(h), &setup)) {
                    tasks.remove(&setup.id);
                }
            }
            let tasks = self
                .window_tasks
                .entry((role_key(role), doc.clone()))
                .or_default();
            if newer(tasks.get(&setup.id), &setup) {
                tasks.insert(setup.id.clone(), setup);
            }
            return;
        }
        let key = (setup.kind, setup.id.clone());
        if newer(self.origins.get(&key), &setup) {
            self.origins.insert(key, setup);
        }
    }

    fn origin(&self, kind: OriginKind, id: &str) -> Option<Arc<OriginSetup>> {
        self.origins.get(&(kind, id.to_string())).cloned()
    }

    fn window_tasks(&self, role: &str, document: &str) -> Vec<Arc<OriginSetup>> {
        self.window_tasks
            .get(&(role_key(role), document.to_string()))
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }

    fn put_association_run(&mut self, run: &AssociationRun) {
        let k = (run.target.id.clone(), run.document.id.clone());
        let runs = self.association_runs.entry(k.clone()).or_default();
        let entry = (run.meta.event_epoch_ms, run.association_id.clone());
        if !runs.contains(&entry) {
            runs.push(entry);
            self.index(run.meta.event_epoch_ms, Key::AssociationRun(k.0, k.1));
        }
    }

    fn association_run_near(
        &self,
        instance: &str,
        document: &str,
        event_ms: i64,
    ) -> Option<String> {
        let runs = self
            .association_runs
            .get(&(instance.to_string(), document.to_string()))?;
        nearest_run(runs, event_ms)
    }
}

/// Records an AccessDenied call in a caller's window and says what it did to the caller's
/// episode (see [`Episode`]). Calls may arrive out of order (the window is kept sorted by event
/// time) and may already be in the window (a persistent store gathers the call it has just
/// written).
pub fn record_denial(
    w: &mut DenialWindow,
    event_id: &str,
    event_ms: i64,
    window_ms: i64,
    threshold: u32,
) -> DenialEffect {
    if !w.calls.iter().any(|(_, id)| id == event_id) {
        let pos = w.calls.partition_point(|(t, _)| *t <= event_ms);
        w.calls.insert(pos, (event_ms, event_id.to_string()));
    }
    let newest = w.calls.back().map_or(event_ms, |(t, _)| *t);
    while w
        .calls
        .front()
        .is_some_and(|(t, _)| *t <= newest - window_ms)
    {
        w.calls.pop_front();
    }
    // A storm of denials must not grow the window without bound: the newest calls are enough
    // to compare any window with the threshold.
    let cap = max_calls(threshold);
    while w.calls.len() > cap {
        w.calls.pop_front();
    }
    if !w.notes.is_empty() {
        let calls = &w.calls;
        w.notes
            .retain(|id, _| calls.iter().any(|(_, held)| held == id));
    }
    if let Some(e) = w.episode.as_mut().filter(|e| e.covers(event_ms)) {
        e.extend(event_ms);
        return DenialEffect::Continued;
    }
    let Some((first, last)) = busiest_span(w, event_ms, window_ms, threshold) else {
        return DenialEffect::Quiet;
    };
    w.episode = Some(Episode {
        opened_by: event_id.to_string(),
        started_ms: first.min(event_ms),
        last_ms: last.max(event_ms),
        window_ms,
    });
    DenialEffect::Opened
}

/// How many calls a window keeps: twice the threshold (at least 16), so a count can always
/// reach the threshold from the calls kept, whatever the storm.
pub fn max_calls(threshold: u32) -> usize {
    (threshold as usize).saturating_mul(2).max(16)
}

/// The most calls any `window_ms`-long window containing `event_ms` holds (late calls can
/// complete a burst that ended before them).
pub fn busiest_window(w: &DenialWindow, event_ms: i64, window_ms: i64) -> usize {
    let times: Vec<i64> = w
        .calls
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| *t > event_ms - window_ms && *t < event_ms + window_ms)
        .collect();
    let mut best = 0;
    let mut start = 0;
    for (end, &t) in times.iter().enumerate() {
        while times.get(start).is_some_and(|&s| s <= t - window_ms) {
            start += 1;
        }
        let covers_event = times.get(start).is_some_and(|&s| s <= event_ms) && t >= event_ms;
        if covers_event {
            best = best.max(end + 1 - start);
        }
    }
    best
}

/// The first and last call times of a `window_ms`-long window containing `event_ms` that holds
/// at least `threshold` calls, if there is one.
fn busiest_span(
    w: &DenialWindow,
    event_ms: i64,
    window_ms: i64,
    threshold: u32,
) -> Option<(i64, i64)> {
    let times: Vec<i64> = w
        .calls
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| *t > event_ms - window_ms && *t < event_ms + window_ms)
        .collect();
    let need = (threshold as usize).max(1);
    let mut start = 0;
    for (end, &t) in times.iter().enumerate() {
        while times.get(start).is_some_and(|&s| s <= t - window_ms) {
            start += 1;
        }
        let first = times.get(start).copied()?;
        if first <= event_ms && t >= event_ms && end + 1 - start >= need {
            return Some((first, t));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    use DenialEffect::{Continued, Opened, Quiet};

    #[test]
    fn spike_once_per_episode_then_a_quiet_window_closes_it() {
        let mut w = DenialWindow::default();
        let s = 1000;
        // threshold 3 in 60 s
        assert_eq!(record_denial(&mut w, "a", 0, 60 * s, 3), Quiet);
        assert_eq!(record_denial(&mut w, "b", 10 * s, 60 * s, 3), Quiet);
        assert_eq!(
            record_denial(&mut w, "c", 20 * s, 60 * s, 3),
            Opened,
            "third call in the window opens an episode"
        );
        assert_eq!(w.episode.as_ref().unwrap().opened_by, "c");
        assert_eq!(w.episode.as_ref().unwrap().started_ms, 0);
        assert_eq!(record_denial(&mut w, "d", 30 * s, 60 * s, 3), Continued);
        assert_eq!(
            record_denial(&mut w, "c", 20 * s, 60 * s, 3),
            Continued,
            "a call already in the window is not counted again"
        );
        // A trickle below the threshold, each call less than a window after the last, keeps
        // the episode: no second page for one incident.
        assert_eq!(record_denial(&mut w, "e", 85 * s, 60 * s, 3), Continued);
        // A full quiet window closes it; a new burst is a new episode.
        assert_eq!(record_denial(&mut w, "f", 200 * s, 60 * s, 3), Quiet);
        assert_eq!(record_denial(&mut w, "g", 210 * s, 60 * s, 3), Quiet);
        assert_eq!(record_denial(&mut w, "h", 220 * s, 60 * s, 3), Opened);
        assert_eq!(w.episode.as_ref().unwrap().opened_by, "h");
    }

    #[test]
    fn a_denial_storm_keeps_the_window_bounded_and_spikes_once() {
        let mut w = DenialWindow::default();
        let mut spikes = 0;
        for i in 0..10_000i64 {
            if record_denial(&mut w, &format!("e{i}"), i * 10, 300_000, 5) == Opened {
                spikes += 1;
            }
            assert!(w.calls.len() <= max_calls(5));
        }
        assert_eq!(spikes, 1, "one episode: the storm never pauses");
        assert_eq!(w.calls.len(), 16);
    }

    /// Issue 9: a late denial into a full (16-call) window used to find the count below the
    /// threshold (its neighbours had been trimmed) and re-arm the episode: a second spike.
    #[test]
    fn a_late_denial_into_a_full_window_continues_the_episode() {
        let mut w = DenialWindow::default();
        let mut spikes = 0;
        for i in 0..40i64 {
            if record_denial(&mut w, &format!("e{i}"), 100_000 + i * 1000, 300_000, 5) == Opened {
                spikes += 1;
            }
        }
        assert_eq!(w.calls.len(), 16, "full");
        // Arrives late: older than every call kept.
        assert_eq!(record_denial(&mut w, "late", 90_000, 300_000, 5), Continued);
        for i in 40..45i64 {
            if record_denial(&mut w, &format!("e{i}"), 100_000 + i * 1000, 300_000, 5) == Opened {
                spikes += 1;
            }
        }
        assert_eq!(spikes, 1);
    }

    #[test]
    fn out_of_order_calls_count_by_event_time() {
        let mut w = DenialWindow::default();
        let s = 1000;
        assert_eq!(record_denial(&mut w, "late", 50 * s, 60 * s, 3), Quiet);
        assert_eq!(record_denial(&mut w, "early", 5 * s, 60 * s, 3), Quiet);
        assert_eq!(record_denial(&mut w, "mid", 30 * s, 60 * s, 3), Opened);
        assert_eq!(
            w.calls.iter().map(|(t, _)| *t / s).collect::<Vec<_>>(),
            [5, 30, 50]
        );
        let e = w.episode.unwrap();
        assert_eq!((e.started_ms, e.last_ms), (5 * s, 50 * s));
    }

    #[test]
    fn a_gathered_window_that_already_holds_the_call_still_decides() {
        // A persistent store writes the call, then gathers the window with it inside.
        let mut w = DenialWindow::default();
        for (i, t) in [0, 1, 2].iter().enumerate() {
            w.calls.push_back((t * 1000, format!("c{i}")));
        }
        assert_eq!(record_denial(&mut w, "c2", 2000, 60_000, 3), Opened);
    }

    #[test]
    fn claims_dedup_and_ttl() {
        let mut st = MemoryStore::new(60_000);
        assert!(st.first_sighting("e1", 0));
        assert!(!st.first_sighting("e1", 0));
        assert!(st.claim("c1", "i-1", 0));
        assert!(!st.claim("c1", "i-1", 10));
        assert!(st.claim("c1", "i-2", 10));
        assert_eq!(st.expire(1_000_000), vec![]);
        assert!(
            st.first_sighting("e1", 1_000_000),
            "forgotten after the TTL"
        );
        assert!(st.claim("c1", "i-1", 1_000_000));
    }
}
