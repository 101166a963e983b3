//! From normalised events to findings: evaluate every resource of every activity against the
//! caller's intended policies, join status events to their SendCommand, count AccessDenied
//! spikes, and never drop a fact silently.

use std::sync::Arc;

use crate::iam::evaluator::{evaluate_bounded, Verdict};
use crate::iam::request::Request;
use crate::intent::inventory::{Reach, TagLookup};
use crate::intent::origins::{OriginKind, OriginPolicy};
use crate::intent::{Intent, OutputRequirement, Resolution, Unlisted};
use crate::watch::context::activity_context;
use crate::watch::correlation::{
    record_denial, CorrelationStore, DenialEffect, DenialNote, Parked,
};
use crate::watch::counts::Counts;
use crate::watch::event::{
    Action, Activity, AssociationRun, CallOutcome, Event, EventMeta, OriginSetup, ResourceKind,
    ResourceRef, RunOrigin, StatusChange,
};
use crate::watch::finding::{
    finding_id, invocation_finding_id, spike_finding_id, Actual, Finding, FindingKind,
    FindingSeverity, UnevaluatedCause,
};
use crate::watch::tags::{tags_of, ResourceTags, TagQuery};

/// The intent's decision over a denied call's candidate resources (`Watcher::intended_on`).
struct Intended {
    /// The decision, when the candidates settle it.
    decided: Option<crate::iam::evaluator::DecisionReport>,
    /// Otherwise the keys it depends on.
    undecided: Vec<String>,
    /// Whether a candidate's tags were unknown (rather than absent).
    unknown_tags: bool,
}

/// Whose AccessDenied window a denied call counts in: the principal behind the session (the
/// role for an assumed-role session, so a prober rotating session names still reaches the
/// threshold; the user for an IAM user; [`crate::intent::principal::Caller::principal_key`]), else one
/// window per account for callers the record does not name. The watcher and every store key
/// windows by this, so gathering and persisting always meet.
pub fn denial_caller(a: &Activity) -> String {
    a.source
        .caller
        .principal_key()
        .unwrap_or_else(|| format!("unknown-caller:{}", a.meta.account))
}

/// The session ARN of a denied call when its window counts more than that session (an
/// assumed-role session, counted with its role's other sessions).
pub fn denial_session(a: &Activity) -> Option<&str> {
    let arn = a.source.caller.arn.as_deref()?;
    (a.source.caller.principal_key().as_deref() != Some(arn)).then_some(arn)
}

/// What the window remembers of a denied call: its session (see [`denial_session`]), the
/// action, and the resource AWS named (else the call's one resource).
pub fn denial_note(a: &Activity) -> DenialNote {
    let named = match &a.outcome {
        CallOutcome::Denied { resource, .. } => resource.clone(),
        _ => None,
    };
    let resource = named.or_else(|| {
        let mut all = a.resources();
        match (all.next(), all.next()) {
            (Some(only), None) => Some(only.arn.clone()),
            _ => None,
        }
    });
    DenialNote {
        session: denial_session(a).map(str::to_string),
        action: a.action.as_str().to_string(),
        resource,
    }
}

/// An association run whose definition (CreateAssociation / UpdateAssociation) was never seen:
/// the principal behind it is unknown, so the run is `unevaluated`. One finding id per
/// association, so its every run on every node is one alert (each run is still counted).
fn unattributed_run(run: &AssociationRun) -> Finding {
    let reason = format!(
        "State Manager association {} ran {} on {}, but the record that defined it (CreateAssociation or UpdateAssociation) was not seen, so the principal behind it is unknown and the run could not be checked against the intent",
        run.association_id, run.document.id, run.target.id
    );
    Finding {
        action: Some(Action::SendCommand.as_str().to_string()),
        resource: Some(run.target.arn.clone()),
        document: Some(run.document.arn.clone()),
        origin: Some(RunOrigin {
            kind: OriginKind::Association,
            id: Some(run.association_id.clone()),
            window_id: None,
            principal: None,
            setup_event_id: None,
        }),
        cause: Some(UnevaluatedCause::MissingRecord),
        ..Finding::new(
            FindingKind::Unevaluated,
            UnevaluatedCause::MissingRecord.severity(),
            finding_id(&["unattributed", &run.association_id]),
            run.meta.clone(),
            reason,
        )
    }
}

/// Processes events into findings with correlation state `S`.
#[derive(Debug)]
pub struct Watcher<'i, S> {
    intent: &'i Intent,
    store: S,
    pub counts: Counts,
    /// Findings matched per suppression (in intent order).
    suppression_hits: Vec<u64>,
}

/// A short name for people: `alice (JuniorEngineer)`, `mallory`, or the ARN; for a run
/// Systems Manager started, with its origin: `alice (Ops) through State Manager association ID`.
fn who(a: &Activity) -> String {
    let name = caller_name(a);
    match &a.origin {
        None => name,
        Some(o) => {
            let id = o.id.as_deref().or(o.window_id.as_deref());
            let origin = match id {
                Some(id) => format!("{} {id}", o.kind.describe()),
                None => format!("a {}", o.kind.describe()),
            };
            if o.principal.is_some() {
                format!("{name} through {origin}")
            } else {
                format!("{name} (for {origin} whose principal is unknown)")
            }
        }
    }
}

fn caller_name(a: &Activity) -> String {
    let arn = a
        .source
        .caller
        .arn
        .as_deref()
        .unwrap_or("an unknown caller");
    if let Some(rest) = arn.split(":assumed-role/").nth(1) {
        if let Some((role, session)) = rest.split_once('/') {
            return format!("{session} ({role})");
        }
    }
    if let Some(name) = &a.source.caller.user_name {
        return name.clone();
    }
    arn.to_string()
}

/// What the intent says about one resource.
enum Judged {
    /// The intent allows it, whatever the unknown keys hold (the report when asked for).
    Allowed(Option<crate::iam::evaluator::DecisionReport>),
    /// The intent does not allow it, whatever the unknown keys hold.
    Refused(crate::iam::evaluator::DecisionReport),
    /// Whether the intent allows it depends on keys nobody can tell.
    Undecided { unknown: Vec<String> },
}

/// "it depends on ssm:resourceTag/Env, and the resource's tags are unknown".
fn depends_on(keys: &[String], tags: ResourceTags<'_>) -> String {
    let tag_key = |k: &String| {
        let lower = k.to_ascii_lowercase();
        lower.starts_with("ssm:resourcetag/") || lower.starts_with("aws:resourcetag/")
    };
    let (tag_keys, others): (Vec<&String>, Vec<&String>) = keys.iter().partition(|k| tag_key(k));
    let list = |ks: &[&String]| ks.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    if !tag_keys.is_empty() && tags == ResourceTags::Unknown {
        parts.push(format!(
            "it depends on {}, and the resource's tags are unknown",
            list(&tag_keys)
        ));
    } else if !tag_keys.is_empty() {
        parts.push(format!(
            "it depends on {}, which is unknown",
            list(&tag_keys)
        ));
    }
    if !others.is_empty() {
        parts.push(format!(
            "it depends on {}, which the record cannot tell",
            list(&others)
        ));
    }
    parts.join("; ")
}

/// The resources whose tags deciding `event` under `intent` needs: every resource IAM
/// authorises for an activity ([`resources_of`], the default session document included when
/// the caller's intent checks it), a status event's targets. The functions and `replay
/// --inventory-from-aws` ask for exactly these.
pub fn tag_query(event: &Event, intent: &Intent) -> TagQuery {
    let mut query = TagQuery::default();
    if let Some(m) = event.meta() {
        query.account.clone_from(&m.account);
        query.region.clone_from(&m.region);
    }
    match event {
        Event::Activity(a) => query.add(
            &resources_of(a, &intent.resolve(&a.source.caller)),
            &a.meta.account,
        ),
        Event::Status(s) => query.add(&s.targets, &s.meta.account),
        Event::AssociationRun(r) => {
            query.add(&[r.document.clone(), r.target.clone()], &r.meta.account)
        }
        Event::Origin(_) | Event::Skipped(_) => {}
    }
    query
}

/// Every resource IAM authorises for the call: its document (for a StartSession that names
/// none, the default session document when the caller's intent enforces the session document
/// check with `ssm:SessionDocumentAccessCheck`), then its instances or session.
fn resources_of(a: &Activity, resolution: &Resolution<'_>) -> Vec<ResourceRef> {
    let mut out: Vec<ResourceRef> = a.resources().cloned().collect();
    if a.action == Action::StartSession
        && a.document.is_none()
        && resolution.checks_session_document()
    {
        out.insert(
            0,
            crate::watch::event::document_arn(
                crate::watch::event::DEFAULT_SESSION_DOCUMENT,
                &a.meta.partition,
                &a.meta.region,
                &a.meta.account,
            ),
        );
    }
    out
}

/// What the caller did to the resource, for a reason sentence.
fn what(a: &Activity, r: &ResourceRef, tags: ResourceTags<'_>) -> String {
    match (a.action, r.kind) {
        (Action::ResumeSession, _) => format!("resumed session {}", r.id),
        (Action::TerminateSession, _) => format!("terminated session {}", r.id),
        (Action::SendCommand, ResourceKind::Document) => format!("used document {}", r.id),
        (Action::SendCommand, _) => format!(
            "ran {} on {}{}",
            a.document.as_ref().map_or("a command", |d| d.id.as_str()),
            r.id,
            describe_tags(tags)
        ),
        (Action::StartSession, ResourceKind::Document) => {
            format!("started a session with document {}", r.id)
        }
        (Action::StartSession, _) => {
            format!("started a session on {}{}", r.id, describe_tags(tags))
        }
    }
}

fn describe_tags(tags: ResourceTags<'_>) -> String {
    match tags {
        ResourceTags::Known(t) if !t.is_empty() => {
            let list: Vec<String> = t.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(" ({})", list.join(", "))
        }
        ResourceTags::Known(_) | ResourceTags::None => " (no tags)".to_string(),
        ResourceTags::Unknown => String::new(),
    }
}

/// Why an undecided resource is undecided: its tags when the decision depends on them and they
/// are unknown (out of the lookup's reach, or unreadable), else a key the record cannot tell.
fn undecided_cause(
    unknown: &[String],
    tags: ResourceTags<'_>,
    lookup: &dyn TagLookup,
    meta: &EventMeta,
) -> UnevaluatedCause {
    let on_tags = unknown.iter().any(|k| {
        let lower = k.to_ascii_lowercase();
        lower.starts_with("ssm:resourcetag/") || lower.starts_with("aws:resourcetag/")
    });
    match (on_tags, tags) {
        (true, ResourceTags::Unknown) => match lookup.reach(&meta.account, &meta.region) {
            Reach::Readable => UnevaluatedCause::UnknownTags,
            Reach::OutOfScope => UnevaluatedCause::OutOfScope,
            Reach::NoAccess => UnevaluatedCause::NoAccess,
        },
        _ => UnevaluatedCause::UnknownKey,
    }
}

/// An instance's or managed node's `Name` tag, when its tags are known.
fn name_tag(r: &ResourceRef, tags: ResourceTags<'_>) -> Option<String> {
    match (r.kind, tags) {
        (ResourceKind::Instance | ResourceKind::ManagedNode, ResourceTags::Known(t)) => {
            t.get("Name").cloned()
        }
        _ => None,
    }
}

/// Completes findings for people: the one-line summary and the console link, from the
/// finding's own fields.
fn complete(mut findings: Vec<Finding>) -> Vec<Finding> {
    for f in &mut findings {
        f.summary = f.summarize();
        f.links.console = crate::watch::links::console_link(f);
    }
    findings
}

impl<'i, S: CorrelationStore> Watcher<'i, S> {
    pub fn new(intent: &'i Intent, store: S) -> Self {
        Watcher {
            intent,
            store,
            counts: Counts::default(),
            suppression_hits: vec![0; intent.suppressions.len()],
        }
    }

    /// The intent the watcher decides with.
    pub fn intent(&self) -> &'i Intent {
        self.intent
    }

    /// The correlation state (for inspection and tests).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the correlation state back (to persist what the decisions changed).
    pub fn into_store(self) -> S {
        self.store
    }

    /// Processes one event; returns its findings (possibly none).
    pub fn handle(&mut self, event: &Event, tags: &dyn TagLookup) -> Vec<Finding> {
        self.counts.events_processed += 1;
        let out = match event {
            Event::Skipped(_) => {
                self.counts.skipped += 1;
                Vec::new()
            }
            Event::Activity(a) => {
                self.counts.activities += 1;
                self.activity(a, tags)
            }
            Event::Status(s) => {
                self.counts.status_events += 1;
                self.status(s, tags)
            }
            Event::Origin(record) => {
                self.origin_setups(&record.setups);
                Vec::new()
            }
            Event::AssociationRun(run) => {
                self.counts.status_events += 1;
                self.association_run(run, tags)
            }
        };
        self.found(out, Some(tags))
    }

    /// End of input: invocations whose SendCommand never arrived become `unevaluated`.
    pub fn finish(&mut self) -> Vec<Finding> {
        let parked = self.store.drain_parked();
        let out = self.orphans(&parked, "never arrived");
        self.found(out, None)
    }

    /// `unevaluated` findings for invocations whose SendCommand record did not arrive in time
    /// (the scheduled sweep of a persistent store).
    pub fn expired(&mut self, parked: &[Parked]) -> Vec<Finding> {
        let out = self.orphans(parked, "did not arrive within the correlation window");
        self.found(out, None)
    }

    /// The findings a public entry point returns: completed for people, matched against the
    /// intent's suppressions (with the resource's tags from `tags`, when there are any to
    /// ask), and counted.
    fn found(&mut self, out: Vec<Finding>, tags: Option<&dyn TagLookup>) -> Vec<Finding> {
        let mut out = complete(out);
        if !self.intent.suppressions.is_empty() {
            for f in &mut out {
                self.suppress(f, tags);
            }
        }
        for f in &out {
            self.counts.count_finding(f);
        }
        out
    }

    /// Marks `f` suppressed by the first suppression that matches it, and counts the hit.
    fn suppress(&mut self, f: &mut Finding, lookup: Option<&dyn TagLookup>) {
        let tags = match (lookup, f.resource.as_deref()) {
            (Some(lookup), Some(arn)) => {
                let r = crate::watch::event::resource_from_arn(arn, &f.meta);
                match tags_of(lookup, &r, &f.meta.account) {
                    ResourceTags::Known(t) => Some(t.clone()),
                    ResourceTags::None => Some(Default::default()),
                    ResourceTags::Unknown => None,
                }
            }
            _ => None,
        };
        let hit = self
            .intent
            .suppressions
            .iter()
            .position(|s| s.suppresses(f, tags.as_ref()));
        if let Some(i) = hit {
            if let (Some(s), Some(n)) = (
                self.intent.suppressions.get(i),
                self.suppression_hits.get_mut(i),
            ) {
                f.suppressed = true;
                f.suppression_reason = Some(s.reason.clone());
                *n += 1;
            }
        }
    }

    /// How many findings each of the intent's suppressions matched (in intent order).
    pub fn suppression_hits(&self) -> &[u64] {
        &self.suppression_hits
    }

    fn expire(&mut self, now_ms: i64) -> Vec<Finding> {
        let expired = self.store.expire(now_ms);
        self.orphans(&expired, "did not arrive within the correlation window")
    }

    /// The `unevaluated` findings of parked invocations whose record did not come, but those
    /// an association run accounts for.
    fn orphans(&mut self, parked: &[Parked], why: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        for p in parked {
            if !self.accounted_for(p) {
                out.push(self.orphan(p, why));
            }
        }
        out
    }

    /// Whether an association run accounts for a parked invocation whose SendCommand record
    /// never came: State Manager runs associations without a SendCommand call, so their
    /// commands have no record; the run of the same document on the same node, near in time,
    /// is judged in its own right ([`Self::association_run`]).
    fn accounted_for(&mut self, p: &Parked) -> bool {
        let Some(doc) = &p.status.document_name else {
            return false;
        };
        let found = self
            .store
            .association_run_near(&p.instance_id, doc, p.status.meta.event_epoch_ms)
            .is_some();
        if found {
            self.counts.association_commands += 1;
        }
        found
    }

    /// Remembers the origins a setup record defines.
    fn origin_setups(&mut self, setups: &[OriginSetup]) {
        let Some(first) = setups.first() else {
            return;
        };
        if !self.first_time(&first.call.meta) {
            return;
        }
        for s in setups {
            self.counts.origin_setups += 1;
            self.store.put_origin(Arc::new(s.clone()));
        }
    }

    /// One association run on one node, judged as the SendCommand of the principal who defined
    /// the association (its last CreateAssociation / UpdateAssociation record); `unevaluated`
    /// when no such record was seen.
    fn association_run(&mut self, run: &AssociationRun, tags: &dyn TagLookup) -> Vec<Finding> {
        if !self.first_time(&run.meta) {
            return Vec::new();
        }
        let mut out = self.expire(run.meta.event_epoch_ms);
        self.store.put_association_run(run);
        self.counts.origin_runs += 1;
        if self.intent.origins.policy(OriginKind::Association) == OriginPolicy::Ignore {
            self.counts.origin_ignored += 1;
            return out;
        }
        let Some(setup) = self
            .store
            .origin(OriginKind::Association, &run.association_id)
        else {
            out.push(unattributed_run(run));
            return out;
        };
        let a = crate::watch::origin::association_activity(run, &setup);
        let resolution = self.intent.resolve(&a.source.caller);
        if resolution.is_unlisted() && self.intent.unlisted == Unlisted::Ignore {
            self.counts.ignored += 1;
            return out;
        }
        for r in &resources_of(&a, &resolution) {
            out.extend(self.evaluate(&a, r, &resolution, tags, &a.meta.event_id));
        }
        out
    }

    /// An allowed SendCommand as the principal behind it made it, when Systems Manager made the
    /// call for a maintenance window task or an Automation step ([`crate::watch::origin::recognise`]).
    fn attributed(&mut self, a: &Activity) -> Option<Activity> {
        let lookup = crate::watch::origin::lookup_of(a);
        if lookup.is_empty() {
            return None;
        }
        let automation = lookup
            .automation
            .as_deref()
            .and_then(|id| self.store.origin(OriginKind::Automation, id));
        let tasks = lookup
            .window_tasks
            .as_ref()
            .map(|(role, doc)| self.store.window_tasks(role, doc))
            .unwrap_or_default();
        let found = crate::watch::origin::recognise(a, automation.as_deref(), &tasks)?;
        self.counts.origin_runs += 1;
        Some(found)
    }

    /// Whether the intent's `origins` ignores the run.
    fn origin_ignored(&self, a: &Activity) -> bool {
        a.origin
            .as_ref()
            .is_some_and(|o| self.intent.origins.policy(o.kind) == OriginPolicy::Ignore)
    }

    fn orphan(&self, p: &Parked, why: &str) -> Finding {
        let s = &p.status;
        let resource = s.targets.iter().find(|t| t.id == p.instance_id);
        let reason = format!(
            "command {} ran on {} but its SendCommand record {why}, so the caller is unknown and the run could not be checked against the intent",
            p.command_id, p.instance_id
        );
        Finding {
            action: Some(Action::SendCommand.as_str().to_string()),
            resource: resource.map(|r| r.arn.clone()),
            document: s.document_name.as_ref().map(|d| {
                crate::watch::event::document_arn(
                    d,
                    &s.meta.partition,
                    &s.meta.region,
                    &s.meta.account,
                )
                .arn
            }),
            command_id: Some(p.command_id.clone()),
            cause: Some(UnevaluatedCause::MissingRecord),
            ..Finding::new(
                FindingKind::Unevaluated,
                UnevaluatedCause::MissingRecord.severity(),
                // Not the pair's own id: a record that arrives after the sweep must still be
                // evaluated and reported under `invocation`.
                finding_id(&["overdue", &p.command_id, &p.instance_id]),
                s.meta.clone(),
                reason,
            )
        }
    }

    /// Whether the event is seen for the first time; a redelivery is counted and skipped.
    fn first_time(&mut self, meta: &EventMeta) -> bool {
        let first = self
            .store
            .first_sighting(&meta.event_id, meta.event_epoch_ms);
        if !first {
            self.counts.duplicates += 1;
        }
        first
    }

    fn activity(&mut self, a: &Activity, tags: &dyn TagLookup) -> Vec<Finding> {
        if !self.first_time(&a.meta) {
            return Vec::new();
        }
        let mut out = self.expire(a.meta.event_epoch_ms);
        if !a.action.is_judged() {
            self.counts.terminated_sessions += 1;
            return out;
        }
        let resolution = self.intent.resolve(&a.source.caller);
        let ignored = resolution.is_unlisted() && self.intent.unlisted == Unlisted::Ignore;
        match &a.outcome {
            CallOutcome::Failed { .. } => self.counts.failed_calls += 1,
            CallOutcome::Denied { .. } if ignored => self.counts.ignored += 1,
            CallOutcome::Denied {
                code,
                message,
                resource,
            } => {
                out.extend(self.denied(
                    a,
                    &resolution,
                    tags,
                    code,
                    message.as_deref(),
                    resource.as_deref(),
                ));
            }
            CallOutcome::Allowed => {
                let attributed = self.attributed(a);
                let a = attributed.as_ref().unwrap_or(a);
                let resolution = self.intent.resolve(&a.source.caller);
                let origin_ignored = self.origin_ignored(a);
                if origin_ignored {
                    self.counts.origin_ignored += 1;
                }
                let ignored = origin_ignored
                    || (resolution.is_unlisted() && self.intent.unlisted == Unlisted::Ignore);
                let shared = Arc::new(a.clone());
                if let Some(cmd) = &a.command_id {
                    for t in &a.targets {
                        self.store.claim(cmd, &t.id, a.meta.event_epoch_ms);
                    }
                    self.store.put_command(Arc::clone(&shared));
                }
                if ignored {
                    if !origin_ignored {
                        self.counts.ignored += 1;
                    }
                } else {
                    for r in &resources_of(a, &resolution) {
                        out.extend(self.evaluate(a, r, &resolution, tags, &a.meta.event_id));
                    }
                    out.extend(self.unlogged(a, &resolution));
                }
                out.extend(self.resume_parked(a, &resolution, ignored, tags));
            }
        }
        out
    }

    /// Finishes the invocations parked for an allowed SendCommand: each pair is claimed and
    /// evaluated once.
    fn resume_parked(
        &mut self,
        a: &Activity,
        resolution: &Resolution<'_>,
        ignored: bool,
        tags: &dyn TagLookup,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let Some(cmd) = &a.command_id else {
            return out;
        };
        for p in self.store.unpark(cmd) {
            if self
                .store
                .claim(cmd, &p.instance_id, p.status.meta.event_epoch_ms)
                && !ignored
            {
                if let Some(t) = p.status.targets.iter().find(|t| t.id == p.instance_id) {
                    out.extend(self.evaluate(a, t, resolution, tags, &a.meta.event_id));
                }
            }
        }
        out
    }

    /// Finishes the invocations parked for `command_id` when its SendCommand record is known
    /// (a persistent store's second look after a race, or the sweep finding the record there
    /// after all). Nothing when the record is not known.
    pub fn resume(&mut self, command_id: &str, tags: &dyn TagLookup) -> Vec<Finding> {
        let Some(a) = self.store.command(command_id) else {
            return Vec::new();
        };
        if a.outcome != CallOutcome::Allowed {
            return Vec::new();
        }
        let resolution = self.intent.resolve(&a.source.caller);
        let ignored = self.origin_ignored(&a)
            || (resolution.is_unlisted() && self.intent.unlisted == Unlisted::Ignore);
        let out = self.resume_parked(&a, &resolution, ignored, tags);
        self.found(out, Some(tags))
    }

    fn status(&mut self, s: &StatusChange, tags: &dyn TagLookup) -> Vec<Finding> {
        if !self.first_time(&s.meta) {
            return Vec::new();
        }
        let mut out = self.expire(s.meta.event_epoch_ms);
        match self.store.command(&s.command_id) {
            Some(a) => {
                let resolution = self.intent.resolve(&a.source.caller);
                let ignored = self.origin_ignored(&a)
                    || (resolution.is_unlisted() && self.intent.unlisted == Unlisted::Ignore);
                for t in &s.targets {
                    if self
                        .store
                        .claim(&s.command_id, &t.id, s.meta.event_epoch_ms)
                        && !ignored
                    {
                        out.extend(self.evaluate(&a, t, &resolution, tags, &a.meta.event_id));
                    }
                }
            }
            None => {
                // INVARIANT: a parked invocation holds only its own target, so what is stored per
                // pair does not grow with the fleet a command reached.
                for t in &s.targets {
                    self.store.park(Parked {
                        command_id: s.command_id.clone(),
                        instance_id: t.id.clone(),
                        status: Arc::new(s.narrowed_to(t)),
                    });
                }
            }
        }
        out
    }

    /// The `unlogged_command` finding of an accepted SendCommand whose output goes nowhere the
    /// caller's `command_output` requirement names (one per command, whatever its targets).
    fn unlogged(&self, a: &Activity, resolution: &Resolution<'_>) -> Option<Finding> {
        if a.action != Action::SendCommand {
            return None;
        }
        let (Some(cmd), Some(output)) = (&a.command_id, &a.output) else {
            return None;
        };
        let missing: Vec<&str> = resolution
            .output_requirements(self.intent.command_output)
            .into_iter()
            .filter_map(|req| {
                let met = match req {
                    OutputRequirement::Cloudwatch => output.cloudwatch,
                    OutputRequirement::S3 => output.s3_bucket.is_some(),
                    OutputRequirement::Any => output.cloudwatch || output.s3_bucket.is_some(),
                };
                (!met).then_some(match req {
                    OutputRequirement::Cloudwatch => {
                        "CloudWatch Logs output (cloudWatchOutputConfig.cloudWatchOutputEnabled is false)"
                    }
                    OutputRequirement::S3 => "S3 output (no outputS3BucketName)",
                    OutputRequirement::Any => {
                        "any output destination (neither CloudWatch Logs nor an S3 bucket)"
                    }
                })
            })
            .collect();
        if missing.is_empty() {
            return None;
        }
        let mut f = self.base_finding(a, FindingKind::UnloggedCommand, resolution);
        f.severity = FindingSeverity::Medium;
        f.finding_id = finding_id(&["unlogged", cmd]);
        f.resource = None;
        f.reason = format!(
            "{} ran {} as command {cmd} without {}, which the intent requires: its output is kept nowhere it can be reviewed",
            who(a),
            a.document.as_ref().map_or("a command", |d| d.id.as_str()),
            missing.join(" and ")
        );
        Some(f)
    }

    fn base_finding(
        &self,
        a: &Activity,
        kind: FindingKind,
        resolution: &Resolution<'_>,
    ) -> Finding {
        let caller = &a.source.caller;
        let session_name = caller
            .arn
            .as_deref()
            .and_then(|arn| arn.split(":assumed-role/").nth(1))
            .and_then(|rest| rest.split_once('/'))
            .map(|(_, session)| session.to_string());
        Finding {
            principal: caller.arn.clone(),
            principal_entry: resolution.entries.first().map(|e| e.name.clone()),
            action: Some(a.action.as_str().to_string()),
            document: a.document.as_ref().map(|d| d.arn.clone()),
            command_id: a.command_id.clone(),
            session_id: a.session_id.clone(),
            origin: a.origin.clone(),
            source_ip: a.source.source_ip.clone(),
            user_agent: a.source.user_agent.clone(),
            vpc_endpoint: a.source.vpc_endpoint.clone(),
            session_issuer: session_name.as_ref().and(caller.role_arn.clone()),
            session_name,
            mfa: caller.mfa,
            ..Finding::new(
                kind,
                FindingSeverity::Low,
                String::new(),
                a.meta.clone(),
                String::new(),
            )
        }
    }

    /// What the intent says about one resource of an activity, with what nobody can tell (the
    /// record's unknown keys, tags that could not be read) taken into account: IAM's verdict
    /// whatever those hold, or "it depends". The report (with its explanation) is built only
    /// when asked for or when the intent does not allow: compliant resources are the common
    /// case.
    fn judge(
        &self,
        a: &Activity,
        r: &ResourceRef,
        resolution: &Resolution<'_>,
        tags: ResourceTags<'_>,
        report_allow: bool,
    ) -> Judged {
        let mut request = Request {
            action: a.action.as_str().to_string(),
            resource: r.arn.clone(),
            context: activity_context(a),
        };
        match tags {
            ResourceTags::Known(t) => {
                request
                    .context
                    .set_resource_tags(t.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                request.context.known_absent("ssm:resourceTag/");
                request.context.known_absent("aws:ResourceTag/");
            }
            ResourceTags::None => {
                request.context.known_absent("ssm:resourceTag/");
                request.context.known_absent("aws:ResourceTag/");
            }
            ResourceTags::Unknown => {
                request.context.mark_unknown("ssm:resourceTag/");
                request.context.mark_unknown("aws:ResourceTag/");
            }
        }
        resolution.fill_context(&mut request.context);
        // aws:ResourceAccount: the account that owns the resource, in its ARN (AWS-owned
        // documents name none: unknown).
        if let Some(owner) = r.arn.split(':').nth(4).filter(|acct| !acct.is_empty()) {
            request.context.insert("aws:ResourceAccount", owner);
        }
        if a.action == Action::StartSession && resolution.checks_session_document() {
            // The intent enforces the session document check: Session Manager then authorises
            // the session document too (the default one when the request names none).
            request
                .context
                .insert("ssm:SessionDocumentAccessCheck", "true");
        }
        let bounded = evaluate_bounded(&resolution.policies, &request);
        match bounded.certain {
            Some(Verdict::Allow) if !report_allow => Judged::Allowed(None),
            Some(Verdict::Allow) => Judged::Allowed(Some(
                bounded.decision.report(&resolution.policies, &request),
            )),
            Some(_) => Judged::Refused(bounded.decision.report(&resolution.policies, &request)),
            None => Judged::Undecided {
                unknown: bounded.unknown_keys,
            },
        }
    }

    fn evaluate(
        &mut self,
        a: &Activity,
        r: &ResourceRef,
        resolution: &Resolution<'_>,
        lookup: &dyn TagLookup,
        event_id: &str,
    ) -> Option<Finding> {
        self.counts.resources_evaluated += 1;
        let tags = tags_of(lookup, r, &a.meta.account);
        let key = match (&a.command_id, r.kind) {
            (Some(cmd), ResourceKind::Instance | ResourceKind::ManagedNode) => {
                invocation_finding_id(cmd, &r.id)
            }
            _ => finding_id(&["resource", event_id, &r.arn]),
        };
        let report = match self.judge(a, r, resolution, tags, false) {
            Judged::Allowed(_) => {
                self.counts.compliant += 1;
                return None;
            }
            Judged::Undecided { unknown } => {
                let cause = undecided_cause(&unknown, tags, lookup, &a.meta);
                let mut f = self.base_finding(a, FindingKind::Unevaluated, resolution);
                f.severity = cause.severity();
                f.cause = Some(cause);
                f.finding_id = key;
                f.resource = Some(r.arn.clone());
                f.instance_name = name_tag(r, tags);
                f.reason = format!(
                    "{} {}; cannot tell whether the intent allows it: {}",
                    who(a),
                    what(a, r, tags),
                    depends_on(&unknown, tags)
                );
                f.unknown_keys = unknown;
                return Some(f);
            }
            Judged::Refused(report) => report,
        };
        let mut f = self.base_finding(a, FindingKind::Violation, resolution);
        f.severity = FindingSeverity::High;
        f.finding_id = key;
        f.resource = Some(r.arn.clone());
        f.instance_name = name_tag(r, tags);
        f.intended = Some(report.decision);
        f.statements = report.statements;
        let unlisted = if resolution.is_unlisted() {
            "; the caller matches no intent entry"
        } else {
            ""
        };
        f.reason = format!(
            "{} {} outside intent{unlisted}: {}",
            who(a),
            what(a, r, tags),
            report.explanation,
        );
        Some(f)
    }

    /// The resource a denied call was denied on: the one AWS's message names (which need not
    /// be among the request's resources as tagwatch names them), built from its ARN if need be.
    fn denied_resources(
        a: &Activity,
        resolution: &Resolution<'_>,
        named: Option<&str>,
    ) -> Vec<ResourceRef> {
        let resources = resources_of(a, resolution);
        let Some(arn) = named else {
            // The message names none: the document and every instance were each a candidate.
            return resources;
        };
        if let Some(r) = resources.into_iter().find(|r| r.arn == arn) {
            return vec![r];
        }
        vec![crate::watch::event::resource_from_arn(arn, &a.meta)]
    }

    fn denied(
        &mut self,
        a: &Activity,
        resolution: &Resolution<'_>,
        lookup: &dyn TagLookup,
        code: &str,
        message: Option<&str>,
        resource: Option<&str>,
    ) -> Vec<Finding> {
        let mut out = vec![self.denied_finding(a, resolution, lookup, code, message, resource)];
        out.extend(self.denial_spike(a, resolution));
        out
    }

    /// The `access_denied` finding: what AWS refused, and what the intent says about it.
    fn denied_finding(
        &mut self,
        a: &Activity,
        resolution: &Resolution<'_>,
        lookup: &dyn TagLookup,
        code: &str,
        message: Option<&str>,
        resource: Option<&str>,
    ) -> Finding {
        let mut f = self.base_finding(a, FindingKind::AccessDenied, resolution);
        f.finding_id = finding_id(&["access_denied", &a.meta.event_id]);
        f.actual = Actual::Denied;
        f.error_code = Some(code.to_string());
        f.error_message = message.map(str::to_string);
        // The intended decision on the resource AWS named (with its tags); when the message
        // names none, on every resource of the call: the intent denies it too when it denies
        // any of them, and access is narrower than intended when it allows them all.
        let candidates = Self::denied_resources(a, resolution, resource);
        f.resource = match (resource, candidates.as_slice()) {
            (Some(arn), _) => Some(arn.to_string()),
            (None, [only]) => Some(only.arn.clone()),
            (None, _) => None,
        };
        if let [only] = candidates.as_slice() {
            f.instance_name = name_tag(only, tags_of(lookup, only, &a.meta.account));
        }
        let on = f.resource.as_deref().unwrap_or("its resources");
        let Intended {
            decided,
            undecided,
            unknown_tags,
        } = self.intended_on(a, resolution, lookup, &candidates);
        match decided {
            Some(report) => {
                f.intended = Some(report.decision);
                f.statements = report.statements;
                let intent = if report.decision == Verdict::Allow {
                    "the intent allows it, so access is narrower than intended"
                } else {
                    "the intent denies it too"
                };
                f.reason = format!(
                    "AWS denied {} {} on {on} ({code}); {intent}: {}",
                    who(a),
                    a.action.as_str(),
                    report.explanation,
                );
            }
            None => {
                let why = if undecided.is_empty() {
                    "the call names no resource".to_string()
                } else {
                    depends_on(
                        &undecided,
                        if unknown_tags {
                            ResourceTags::Unknown
                        } else {
                            ResourceTags::None
                        },
                    )
                };
                f.reason = format!(
                    "AWS denied {} {} on {on} ({code}); the intended decision is unknown: {why}",
                    who(a),
                    a.action.as_str()
                );
                f.unknown_keys = undecided;
            }
        }
        f
    }

    /// The intended decision over the candidate resources of a denied call: a refusal of any
    /// of them decides; an allow decides only when every candidate was decided. Otherwise the
    /// keys the decision depends on, and whether unknown tags were among the reasons.
    fn intended_on(
        &self,
        a: &Activity,
        resolution: &Resolution<'_>,
        lookup: &dyn TagLookup,
        candidates: &[ResourceRef],
    ) -> Intended {
        let mut allowed: Option<crate::iam::evaluator::DecisionReport> = None;
        let mut refused: Option<crate::iam::evaluator::DecisionReport> = None;
        let mut undecided: Vec<String> = Vec::new();
        let mut unknown_tags = false;
        for r in candidates {
            let tags = tags_of(lookup, r, &a.meta.account);
            match self.judge(a, r, resolution, tags, true) {
                Judged::Refused(report) => {
                    refused.get_or_insert(report);
                }
                Judged::Allowed(report) => {
                    if allowed.is_none() {
                        allowed = report;
                    }
                }
                Judged::Undecided { unknown } => {
                    unknown_tags |= tags == ResourceTags::Unknown;
                    for k in unknown {
                        if !undecided.contains(&k) {
                            undecided.push(k);
                        }
                    }
                }
            }
        }
        let decided = match (refused, undecided.is_empty(), allowed) {
            (Some(report), _, _) => Some(report),
            (None, true, Some(report)) => Some(report),
            _ => None,
        };
        Intended {
            decided,
            undecided,
            unknown_tags,
        }
    }

    /// Spike detection per caller, on event time: the `access_denied_spike` finding when this
    /// denial opens a window over the threshold.
    fn denial_spike(&mut self, a: &Activity, resolution: &Resolution<'_>) -> Option<Finding> {
        let caller = denial_caller(a);
        let spike = self.intent.spike;
        let window_ms = self.intent.spike_window_ms();
        let window = self.store.denials(&caller);
        window.note(&a.meta.event_id, denial_note(a));
        let effect = record_denial(
            window,
            &a.meta.event_id,
            a.meta.event_epoch_ms,
            window_ms,
            spike.threshold,
        );
        if effect == DenialEffect::Opened {
            let count =
                crate::watch::correlation::busiest_window(window, a.meta.event_epoch_ms, window_ms);
            let sessions = window.session_arns();
            let requests = window.requests();
            let mut s = self.base_finding(a, FindingKind::AccessDeniedSpike, resolution);
            s.severity = FindingSeverity::High;
            s.finding_id = spike_finding_id(&caller, &a.meta.event_id);
            s.actual = Actual::Denied;
            s.resource = None;
            s.denied_calls = Some(count);
            s.window_seconds = Some(spike.window_seconds);
            // The principal behind the sessions: the window counts a role's sessions together.
            s.principal = Some(caller.clone());
            s.sessions = sessions;
            s.denied_requests = requests;
            let sessions = match s.sessions.len() {
                0 | 1 => String::new(),
                n => format!(" from {n} sessions"),
            };
            s.reason = format!(
                "{} made {count} AccessDenied calls within {} s{sessions} (threshold {}): someone is probing or a policy broke",
                crate::watch::finding::principal_label(&caller),
                spike.window_seconds,
                spike.threshold
            );
            return Some(s);
        }
        None
    }
}
