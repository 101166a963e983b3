//! Gather, decide, persist: correlation for stores that cannot be called synchronously.
//!
//! A Lambda function cannot hold correlation state in memory between invocations. It gathers
//! the state one event needs (its command's record, parked invocations, the caller's
//! AccessDenied window) into a [`JournalStore`], lets the core decide, and then writes back the
//! [`Change`]s with conditional writes. A claim that fails there (another invocation evaluated
//! the same command and instance first), or an episode another invocation opened first, drops
//! the matching finding ([`Persisted::lost_finding_ids`]), so retries and races never duplicate
//! one.

use std::sync::Arc;

use crate::intent::origins::OriginKind;
use crate::watch::correlation::{CorrelationStore, DenialWindow, Episode, MemoryStore, Parked};
use crate::watch::event::{Activity, AssociationRun, OriginSetup};

/// One state change the core made while deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An event id seen for the first time.
    Sighted { event_id: String, event_ms: i64 },
    /// A SendCommand record to remember for its status events.
    Command(Arc<Activity>),
    /// The evaluation of a (command, instance) pair was claimed.
    Claimed {
        command_id: String,
        instance_id: String,
        event_ms: i64,
    },
    /// An invocation waits for its command's record.
    Parked(Parked),
    /// Invocations that waited for this command were taken.
    Unparked {
        command_id: String,
        instance_ids: Vec<String>,
    },
    /// A caller's AccessDenied episode was opened (`opened`: its spike is this event's, if the
    /// store lets it open) or went on (a later or earlier denial of the same episode). The
    /// calls themselves are written before the decision, one item per call.
    Episode {
        caller: String,
        episode: Episode,
        opened: bool,
    },
    /// An origin's setup to remember (associations and window tasks for good, executions
    /// for the correlation window).
    Origin(Arc<OriginSetup>),
    /// An association ran on a node (kept for the correlation window).
    AssociationRan(Box<AssociationRun>),
}

/// What persisting a journal found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Persisted {
    /// The event had been processed before (its sighting already existed).
    pub duplicate_event: bool,
    /// (command, instance) pairs another event claimed first: their findings are not ours.
    pub lost_claims: Vec<(String, String)>,
    /// (caller, opened_by) episodes another event opened first: their spikes are not ours.
    pub lost_episodes: Vec<(String, String)>,
}

impl Persisted {
    /// The findings this invocation must not deliver: another event decided them.
    pub fn lost_finding_ids(&self) -> Vec<String> {
        let claims = self
            .lost_claims
            .iter()
            .map(|(c, i)| crate::watch::finding::invocation_finding_id(c, i));
        let spikes = self
            .lost_episodes
            .iter()
            .map(|(caller, by)| crate::watch::finding::spike_finding_id(caller, by));
        claims.chain(spikes).collect()
    }
}

/// An invocation the sweep is due to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueParked {
    /// Parked past the delay (`overdue: false`), or taken as overdue by a sweep that did not
    /// get to report it (`overdue: true`).
    Pair { parked: Parked, overdue: bool },
    /// A stored item that cannot be read: logged, counted and set aside, never blocking the
    /// rest.
    Unreadable { key: String, reason: String },
}

/// The answer to a delivery lease request for one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// This invocation delivers the finding now.
    Granted,
    /// Another invocation is delivering it (until its lease runs out).
    HeldElsewhere,
}

/// A [`CorrelationStore`] over gathered state that records what the decision changed.
#[derive(Debug)]
pub struct JournalStore {
    inner: MemoryStore,
    changes: Vec<Change>,
    /// Callers whose window the decision touched, with the episode as gathered.
    denial_callers: Vec<(String, Option<Episode>)>,
}

impl Default for JournalStore {
    fn default() -> Self {
        Self::new()
    }
}

impl JournalStore {
    /// An empty store; gathered state is added with the `preload_` methods. Nothing expires:
    /// the backing store's TTL and the sweep take care of age.
    pub fn new() -> Self {
        JournalStore {
            inner: MemoryStore::new(i64::MAX),
            changes: Vec::new(),
            denial_callers: Vec::new(),
        }
    }

    /// Gathered: a SendCommand record.
    pub fn preload_command(&mut self, activity: Arc<Activity>) {
        self.inner.put_command(activity);
    }

    /// Gathered: an event id already processed.
    pub fn preload_sighting(&mut self, event_id: &str, event_ms: i64) {
        self.inner.first_sighting(event_id, event_ms);
    }

    /// Gathered: a claimed (command, instance) pair.
    pub fn preload_claim(&mut self, command_id: &str, instance_id: &str, event_ms: i64) {
        self.inner.claim(command_id, instance_id, event_ms);
    }

    /// Gathered: an invocation parked earlier.
    pub fn preload_parked(&mut self, parked: Parked) {
        self.inner.park(parked);
    }

    /// Gathered: a caller's AccessDenied window.
    pub fn preload_denials(&mut self, caller: &str, window: DenialWindow) {
        *self.inner.denials(caller) = window;
    }

    /// Gathered: an origin's setup.
    pub fn preload_origin(&mut self, setup: Arc<OriginSetup>) {
        self.inner.put_origin(setup);
    }

    /// Gathered: an association run on a node.
    pub fn preload_association_run(&mut self, run: &AssociationRun) {
        self.inner.put_association_run(run);
    }

    /// The instances of the gathered parked invocations: their tags are needed when the
    /// command's record finishes them.
    pub fn parked_instances(&self) -> Vec<String> {
        self.inner.parked_instances()
    }

    /// Whether the SendCommand record of a command was gathered.
    pub fn has_command(&self, command_id: &str) -> bool {
        self.inner.command(command_id).is_some()
    }

    /// Whether a (command, instance) pair was gathered as claimed.
    pub fn is_claimed(&self, command_id: &str, instance_id: &str) -> bool {
        self.inner.is_claimed(command_id, instance_id)
    }

    /// The changes since the last call, AccessDenied episodes last.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let mut out = std::mem::take(&mut self.changes);
        for (caller, gathered) in std::mem::take(&mut self.denial_callers) {
            let Some(episode) = self.inner.denials(&caller).episode.clone() else {
                continue;
            };
            if gathered.as_ref() == Some(&episode) {
                continue;
            }
            let opened = gathered.is_none_or(|g| g.opened_by != episode.opened_by);
            out.push(Change::Episode {
                caller,
                episode,
                opened,
            });
        }
        out
    }
}

impl CorrelationStore for JournalStore {
    fn first_sighting(&mut self, event_id: &str, event_ms: i64) -> bool {
        let first = self.inner.first_sighting(event_id, event_ms);
        if first {
            self.changes.push(Change::Sighted {
                event_id: event_id.to_string(),
                event_ms,
            });
        }
        first
    }

    fn put_command(&mut self, activity: Arc<Activity>) {
        if activity.command_id.is_some() {
            self.changes.push(Change::Command(Arc::clone(&activity)));
        }
        self.inner.put_command(activity);
    }

    fn command(&self, command_id: &str) -> Option<Arc<Activity>> {
        self.inner.command(command_id)
    }

    fn claim(&mut self, command_id: &str, instance_id: &str, event_ms: i64) -> bool {
        let first = self.inner.claim(command_id, instance_id, event_ms);
        if first {
            self.changes.push(Change::Claimed {
                command_id: command_id.to_string(),
                instance_id: instance_id.to_string(),
                event_ms,
            });
        }
        first
    }

    fn park(&mut self, parked: Parked) {
        self.changes.push(Change::Parked(parked.clone()));
        self.inner.park(parked);
    }

    fn unpark(&mut self, command_id: &str) -> Vec<Parked> {
        let taken = self.inner.unpark(command_id);
        if !taken.is_empty() {
            self.changes.push(Change::Unparked {
                command_id: command_id.to_string(),
                instance_ids: taken.iter().map(|p| p.instance_id.clone()).collect(),
            });
        }
        taken
    }

    fn expire(&mut self, now_ms: i64) -> Vec<Parked> {
        self.inner.expire(now_ms)
    }

    fn drain_parked(&mut self) -> Vec<Parked> {
        self.inner.drain_parked()
    }

    fn put_origin(&mut self, setup: Arc<OriginSetup>) {
        self.changes.push(Change::Origin(Arc::clone(&setup)));
        self.inner.put_origin(setup);
    }

    fn origin(&self, kind: OriginKind, id: &str) -> Option<Arc<OriginSetup>> {
        self.inner.origin(kind, id)
    }

    fn window_tasks(&self, role: &str, document: &str) -> Vec<Arc<OriginSetup>> {
        self.inner.window_tasks(role, document)
    }

    fn put_association_run(&mut self, run: &AssociationRun) {
        self.changes
            .push(Change::AssociationRan(Box::new(run.clone())));
        self.inner.put_association_run(run);
    }

    fn association_run_near(
        &self,
        instance: &str,
        document: &str,
        event_ms: i64,
    ) -> Option<String> {
        self.inner
            .association_run_near(instance, document, event_ms)
    }

    fn denials(&mut self, caller: &str) -> &mut DenialWindow {
        if !self.denial_callers.iter().any(|(c, _)| c == caller) {
            let gathered = self.inner.denials(caller).episode.clone();
            self.denial_callers.push((caller.to_string(), gathered));
        }
        self.inner.denials(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::inventory::Inventory;
    use crate::intent::Intent;
    use crate::watch::event::{normalize, Event};
    use crate::watch::finding::FindingKind;
    use crate::watch::watcher::Watcher;
    use serde_json::json;

    fn intent() -> Intent {
        let text = r#"{"principals":[{"name":"juniors","match":"arn:aws:iam::111122223333:role/JuniorEngineer","policies":[
            {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*",
             "Condition":{"StringEqualsIfExists":{"ssm:resourceTag/Env":"test"}}}]}]}],"spike":{"threshold":2,"window_seconds":60}}"#;
        Intent::parse(text, None, &mut |_: &str| Err("no files".to_string()))
            .unwrap()
            .value
    }

    fn send_command(event_id: &str, time: &str, error: bool) -> Event {
        let mut r = json!({
            "eventSource": "ssm.amazonaws.com", "eventName": "SendCommand", "eventID": event_id,
            "eventTime": time, "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice",
                "accountId": "111122223333", "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/JuniorEngineer"}}},
            "requestParameters": {"documentName": "AWS-RunShellScript", "targets": [{"key": "tag:Env", "values": ["prod"]}]},
            "responseElements": {"command": {"commandId": "cmd-1"}}
        });
        if error {
            r["errorCode"] = json!("AccessDenied");
            r["responseElements"] = serde_json::Value::Null;
        }
        normalize(&r).unwrap()
    }

    fn invocation(id: &str, instance: &str) -> Event {
        normalize(&json!({
            "id": id, "detail-type": "EC2 Command Invocation Status-change Notification", "source": "aws.ssm",
            "account": "111122223333", "time": "2026-11-20T09:00:30Z", "region": "us-east-1",
            "resources": [format!("arn:aws:ec2:us-east-1:111122223333:instance/{instance}")],
            "detail": {"command-id": "cmd-1", "instance-id": instance, "status": "Success"}
        }))
        .unwrap()
    }

    #[test]
    fn status_first_then_command_across_two_invocations() {
        let intent = intent();
        let mut inv = Inventory::default();
        inv.insert("i-1", [("Env".to_string(), "prod".to_string())].into());
        // Invocation 1 (status watcher): no command record gathered -> parked.
        let mut w = Watcher::new(&intent, JournalStore::new());
        assert!(w.handle(&invocation("s-1", "i-1"), &inv).is_empty());
        let changes = w.into_store().take_changes();
        let parked: Vec<&Parked> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Parked(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(parked.len(), 1);
        // Invocation 2 (CloudTrail watcher): the parked invocation is gathered and finished.
        let mut store = JournalStore::new();
        store.preload_parked(parked[0].clone());
        let mut w = Watcher::new(&intent, store);
        let findings = w.handle(&send_command("e-1", "2026-11-20T09:00:00Z", false), &inv);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].kind, FindingKind::Violation);
        let changes = w.into_store().take_changes();
        assert!(changes
            .iter()
            .any(|c| matches!(c, Change::Command(a) if a.command_id.as_deref() == Some("cmd-1"))));
        assert!(changes.iter().any(
            |c| matches!(c, Change::Unparked { instance_ids, .. } if instance_ids == &["i-1"])
        ));
        assert!(changes
            .iter()
            .any(|c| matches!(c, Change::Claimed { instance_id, .. } if instance_id == "i-1")));
    }

    #[test]
    fn gathered_claims_and_sightings_prevent_duplicates() {
        let intent = intent();
        let mut inv = Inventory::default();
        inv.insert("i-1", [("Env".to_string(), "prod".to_string())].into());
        let activity = match send_command("e-1", "2026-11-20T09:00:00Z", false) {
            Event::Activity(a) => a,
            _ => panic!(),
        };
        let mut store = JournalStore::new();
        store.preload_command(Arc::from(*activity));
        store.preload_claim("cmd-1", "i-1", 0);
        let mut w = Watcher::new(&intent, store);
        assert!(
            w.handle(&invocation("s-2", "i-1"), &inv).is_empty(),
            "already claimed"
        );
        let mut store = JournalStore::new();
        store.preload_sighting("e-1", 0);
        let mut w = Watcher::new(&intent, store);
        assert!(w
            .handle(&send_command("e-1", "2026-11-20T09:00:00Z", false), &inv)
            .is_empty());
        assert_eq!(w.counts.duplicates, 1);
    }

    /// A window as a store gathers it: the calls already written (one item per call).
    fn window_of(calls: &[(i64, &str)]) -> DenialWindow {
        DenialWindow {
            calls: calls.iter().map(|(t, id)| (*t, id.to_string())).collect(),
            episode: None,
            notes: Default::default(),
        }
    }

    #[test]
    fn denial_episodes_are_gathered_and_written_back() {
        let intent = intent();
        let inv = Inventory::default();
        // Windows count a role's sessions together: keyed by the role.
        let caller = "arn:aws:iam::111122223333:role/JuniorEngineer";
        // The store gathers the calls already written, this one included.
        let window = window_of(&[(1_795_165_200_000, "d-1"), (1_795_165_210_000, "d-2")]);
        let mut store = JournalStore::new();
        store.preload_denials(caller, window);
        let mut w = Watcher::new(&intent, store);
        let second = w.handle(&send_command("d-2", "2026-11-20T09:00:10Z", true), &inv);
        let spike = second
            .iter()
            .find(|f| f.kind == FindingKind::AccessDeniedSpike)
            .expect("threshold 2 reached");
        let episode = match w.into_store().take_changes().pop() {
            Some(Change::Episode {
                caller: c,
                episode,
                opened: true,
            }) if c == caller => episode,
            other => panic!("{other:?}"),
        };
        assert_eq!(episode.opened_by, "d-2");
        assert_eq!(
            spike.finding_id,
            crate::watch::finding::spike_finding_id(caller, "d-2")
        );
        // The next denial gathers the open episode: it goes on, no second spike.
        let mut window = window_of(&[
            (1_795_165_200_000, "d-1"),
            (1_795_165_210_000, "d-2"),
            (1_795_165_220_000, "d-3"),
        ]);
        window.episode = Some(episode);
        let mut store = JournalStore::new();
        store.preload_denials(caller, window);
        let mut w = Watcher::new(&intent, store);
        let third = w.handle(&send_command("d-3", "2026-11-20T09:00:20Z", true), &inv);
        assert!(third.iter().all(|f| f.kind == FindingKind::AccessDenied));
        match w.into_store().take_changes().pop() {
            Some(Change::Episode {
                opened: false,
                episode,
                ..
            }) => assert_eq!(episode.last_ms, 1_795_165_220_000),
            other => panic!("{other:?}"),
        }
    }
}
