//! What a run counted: the one counter type behind the replay summary, the watcher's
//! statistics and the functions' metric lines.

use serde::Serialize;

use crate::watch::finding::{Finding, FindingKind, UnevaluatedCause};

/// Counters of what was seen and found. The watcher counts the events it handles and the
/// findings it makes; a pipeline that delivers findings counts them when it writes them
/// ([`Counts::count_finding`]), so that a retried delivery counts nothing twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Events handled (processed or skipped, redeliveries included).
    pub events_processed: u64,
    /// SendCommand / StartSession records seen (including redeliveries).
    pub activities: u64,
    pub status_events: u64,
    /// Events of other calls, services or types.
    pub skipped: u64,
    /// Redelivered events (same event id), processed once.
    pub duplicates: u64,
    /// Events that could not be processed (counted and kept, never dropped).
    pub malformed_events: u64,
    /// Permanent AWS errors and unreadable stored items (the event is kept, never retried
    /// blindly).
    pub permanent_errors: u64,
    /// Calls of callers the intent ignores (`unlisted: "ignore"`).
    pub ignored: u64,
    /// Calls that failed for reasons other than authorisation.
    pub failed_calls: u64,
    /// Resources evaluated, and those the intent allows.
    pub resources_evaluated: u64,
    pub compliant: u64,
    pub violations: u64,
    pub access_denied: u64,
    pub spikes: u64,
    pub unevaluated: u64,
    /// The `unevaluated` findings by cause (their sum is `unevaluated`).
    pub unevaluated_by_cause: CauseCounts,
    pub unlogged_commands: u64,
    /// Accounts and regions found silent (the sweep).
    pub silent_sources: u64,
    /// Findings an intent suppression matched (logged, not counted by kind, not alerted).
    pub suppressed: u64,
    /// TerminateSession calls (counted, not judged).
    pub terminated_sessions: u64,
    /// Origins set up (associations defined, window tasks registered, executions started).
    pub origin_setups: u64,
    /// Runs Systems Manager started (association runs, window task and Automation commands).
    pub origin_runs: u64,
    /// Of those, runs the intent's `origins` ignores (counted, not judged).
    pub origin_ignored: u64,
    /// Commands with no SendCommand record that an association run accounts for.
    pub association_commands: u64,
}

/// `unevaluated` findings by [`UnevaluatedCause`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CauseCounts {
    pub unknown_tags: u64,
    pub missing_record: u64,
    pub out_of_scope: u64,
    pub no_access: u64,
    pub unknown_key: u64,
}

impl CauseCounts {
    /// The count of one cause.
    pub fn get(&self, cause: UnevaluatedCause) -> u64 {
        match cause {
            UnevaluatedCause::UnknownTags => self.unknown_tags,
            UnevaluatedCause::MissingRecord => self.missing_record,
            UnevaluatedCause::OutOfScope => self.out_of_scope,
            UnevaluatedCause::NoAccess => self.no_access,
            UnevaluatedCause::UnknownKey => self.unknown_key,
        }
    }

    fn slot(&mut self, cause: UnevaluatedCause) -> &mut u64 {
        match cause {
            UnevaluatedCause::UnknownTags => &mut self.unknown_tags,
            UnevaluatedCause::MissingRecord => &mut self.missing_record,
            UnevaluatedCause::OutOfScope => &mut self.out_of_scope,
            UnevaluatedCause::NoAccess => &mut self.no_access,
            UnevaluatedCause::UnknownKey => &mut self.unknown_key,
        }
    }

    fn add(&mut self, other: &CauseCounts) {
        for cause in UnevaluatedCause::ALL {
            *self.slot(cause) += other.get(cause);
        }
    }
}

impl Counts {
    /// Counts one finding, by kind (and an `unevaluated` one by cause).
    pub fn count_finding(&mut self, finding: &Finding) {
        if finding.suppressed {
            self.suppressed += 1;
            return;
        }
        match finding.kind {
            FindingKind::Violation => self.violations += 1,
            FindingKind::AccessDenied => self.access_denied += 1,
            FindingKind::AccessDeniedSpike => self.spikes += 1,
            FindingKind::Unevaluated => {
                self.unevaluated += 1;
                // INVARIANT: every unevaluated finding names its cause; one that does not
                // (a finding from before causes existed, redriven) counts as an unknown key.
                let cause = finding.cause.unwrap_or(UnevaluatedCause::UnknownKey);
                *self.unevaluated_by_cause.slot(cause) += 1;
            }
            FindingKind::UnloggedCommand => self.unlogged_commands += 1,
            FindingKind::SilentSource => self.silent_sources += 1,
        }
    }

    /// The findings counted, by kind.
    pub fn findings(&self) -> u64 {
        self.violations
            + self.access_denied
            + self.spikes
            + self.unevaluated
            + self.unlogged_commands
            + self.silent_sources
            + self.suppressed
    }

    /// These counts without the findings: what a delivering pipeline takes from a watcher's
    /// run before it counts the findings it writes itself.
    pub fn without_findings(&self) -> Counts {
        Counts {
            violations: 0,
            access_denied: 0,
            spikes: 0,
            unevaluated: 0,
            unevaluated_by_cause: CauseCounts::default(),
            unlogged_commands: 0,
            silent_sources: 0,
            suppressed: 0,
            ..*self
        }
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        let Counts {
            events_processed,
            activities,
            status_events,
            skipped,
            duplicates,
            malformed_events,
            permanent_errors,
            ignored,
            failed_calls,
            resources_evaluated,
            compliant,
            violations,
            access_denied,
            spikes,
            unevaluated,
            unevaluated_by_cause,
            unlogged_commands,
            silent_sources,
            suppressed,
            terminated_sessions,
            origin_setups,
            origin_runs,
            origin_ignored,
            association_commands,
        } = *other;
        self.events_processed += events_processed;
        self.activities += activities;
        self.status_events += status_events;
        self.skipped += skipped;
        self.duplicates += duplicates;
        self.malformed_events += malformed_events;
        self.permanent_errors += permanent_errors;
        self.ignored += ignored;
        self.failed_calls += failed_calls;
        self.resources_evaluated += resources_evaluated;
        self.compliant += compliant;
        self.violations += violations;
        self.access_denied += access_denied;
        self.spikes += spikes;
        self.unevaluated += unevaluated;
        self.unevaluated_by_cause.add(&unevaluated_by_cause);
        self.unlogged_commands += unlogged_commands;
        self.silent_sources += silent_sources;
        self.suppressed += suppressed;
        self.terminated_sessions += terminated_sessions;
        self.origin_setups += origin_setups;
        self.origin_runs += origin_runs;
        self.origin_ignored += origin_ignored;
        self.association_commands += association_commands;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_findings_keeps_the_event_counts_and_drops_only_the_findings() {
        let mut c = Counts {
            events_processed: 3,
            origin_runs: 2,
            ..Counts::default()
        };
        for kind in FindingKind::ALL {
            let mut f = Finding::new(
                kind,
                crate::watch::finding::FindingSeverity::Low,
                String::new(),
                crate::watch::event::EventMeta {
                    event_id: String::new(),
                    event_time: String::new(),
                    event_epoch_ms: 0,
                    account: String::new(),
                    region: String::new(),
                    partition: String::new(),
                },
                String::new(),
            );
            if kind == FindingKind::Unevaluated {
                f.cause = Some(UnevaluatedCause::OutOfScope);
            }
            c.count_finding(&f);
        }
        assert_eq!(c.findings(), 6);
        assert_eq!(c.unevaluated_by_cause.out_of_scope, 1);
        assert_eq!(c.unevaluated_by_cause.get(UnevaluatedCause::UnknownTags), 0);
        let bare = c.without_findings();
        assert_eq!(bare.findings(), 0);
        assert_eq!(bare.events_processed, 3);
        assert_eq!(bare.origin_runs, 2);
    }

    #[test]
    fn add_sums_every_counter() {
        let mut a = Counts {
            skipped: 1,
            association_commands: 4,
            ..Counts::default()
        };
        let b = Counts {
            skipped: 2,
            malformed_events: 1,
            ..Counts::default()
        };
        a.add(&b);
        assert_eq!(a.skipped, 3);
        assert_eq!(a.malformed_events, 1);
        assert_eq!(a.association_commands, 4);
    }
}
