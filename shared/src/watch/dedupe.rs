//! Grouping repeats: one alert per finding group and dedupe window, every finding logged.
//!
//! A finding that would alert ([`crate::watch::outputs::alerts`]) belongs to the group of its
//! kind, principal, document and resource ([`group_key`]). Event time is cut into windows of
//! the intent's `dedupe_window_seconds`, aligned on the epoch ([`window_of`]: fixed windows,
//! so every environment and a replay agree on them without talking to each other).
//!
//! The first finding of a group to be decided in a window takes the window ([`GroupEntry`]'s
//! claim: a conditional write in DynamoDB, owned by its finding id, so a retry of the owner
//! takes it again): it gets `count` 1 and goes on the bus. Every other finding of the window is
//! logged with `count` = how many of the group's findings the window has seen so far (at least
//! 2), and is not alerted. Exactly one alert per group and window, whatever order the
//! environments decide in; which occurrence alerts is the first decided.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::watch::finding::{finding_id, Finding, FindingKind};

/// The group of a finding: its kind, account, region, principal, document and resource, hashed
/// (the account and region tell apart the findings that name no resource, such as silent
/// sources).
pub fn group_key(f: &Finding) -> String {
    finding_id(&[
        "group",
        f.kind.as_str(),
        &f.meta.account,
        &f.meta.region,
        f.principal.as_deref().unwrap_or(""),
        f.document.as_deref().unwrap_or(""),
        f.resource.as_deref().unwrap_or(""),
    ])
}

/// The window a finding's event falls in (windows of `window_ms` from the epoch).
pub fn window_of(f: &Finding, window_ms: i64) -> i64 {
    f.meta.event_epoch_ms.div_euclid(window_ms.max(1))
}

/// One grouped finding, as a store keeps it: its group and window, and its own id (the owner
/// of the window when it is the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub group: String,
    pub window: i64,
    pub finding_id: String,
    pub event_ms: i64,
}

impl GroupEntry {
    pub fn of(f: &Finding, window_ms: i64) -> Self {
        GroupEntry {
            group: group_key(f),
            window: window_of(f, window_ms),
            finding_id: f.finding_id.clone(),
            event_ms: f.meta.event_epoch_ms,
        }
    }
}

/// A finding's `count` from what its window holds: 1 for the window's owner, else the number of
/// the group's findings the window has seen (at least 2: the owner and this one).
pub fn count_for(owner: bool, seen: u64) -> u64 {
    if owner {
        1
    } else {
        seen.max(2)
    }
}

/// A group by its parts (what [`group_key`] hashes): in one process the parts themselves are
/// the key, cheaper than a SHA-256 per finding and equally exact.
type GroupParts = (
    FindingKind,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn group_parts(f: &Finding) -> GroupParts {
    (
        f.kind,
        f.meta.account.clone(),
        f.meta.region.clone(),
        f.principal.clone(),
        f.document.clone(),
        f.resource.clone(),
    )
}

/// The groups' windows a single process has seen (`tagwatch replay`); the functions keep the
/// same in DynamoDB.
#[derive(Debug, Default)]
pub struct Dedupe {
    window_ms: i64,
    /// Per (group, window): the owner and the finding ids seen.
    seen: FxHashMap<(GroupParts, i64), (String, FxHashSet<String>)>,
}

impl Dedupe {
    pub fn new(window_ms: i64) -> Self {
        Dedupe {
            window_ms: window_ms.max(1),
            seen: FxHashMap::default(),
        }
    }

    /// Sets the `count` of each finding that would alert (see the module doc).
    pub fn count(&mut self, findings: &mut [Finding]) {
        for f in findings
            .iter_mut()
            .filter(|f| crate::watch::outputs::alerts(f))
        {
            let (owner, ids) = self
                .seen
                .entry((group_parts(f), window_of(f, self.window_ms)))
                .or_insert_with(|| (f.finding_id.clone(), FxHashSet::default()));
            ids.insert(f.finding_id.clone());
            f.count = count_for(*owner == f.finding_id, ids.len() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::finding::FindingSeverity;
    use crate::watch::outputs::goes_on_bus;

    const HOUR: i64 = 3_600_000;

    fn violation(id: &str, at_ms: i64, resource: &str) -> Finding {
        let mut f = crate::watch::finding::sample(FindingKind::Violation, id, at_ms);
        f.principal = Some("arn:aws:sts::1:assumed-role/Ops/alice".into());
        f.document = Some("arn:aws:ssm:us-east-1::document/AWS-RunShellScript".into());
        f.resource = Some(resource.into());
        f
    }

    #[test]
    fn repeats_in_a_window_count_up_and_alert_once() {
        let mut d = Dedupe::new(HOUR);
        let base = 1_000 * HOUR;
        let mut fs = vec![
            violation("b", base + 120_000, "i-1"),
            violation("a", base + 60_000, "i-1"),
            violation("c", base + 180_000, "i-2"),
        ];
        d.count(&mut fs);
        let counts: Vec<u64> = fs.iter().map(|f| f.count).collect();
        assert_eq!(
            counts,
            [1, 2, 1],
            "the first decided owns the window, an earlier event decided later is a repeat; i-2 is a group of its own"
        );
        assert_eq!(
            fs.iter().map(goes_on_bus).collect::<Vec<_>>(),
            [true, false, true]
        );
        // The same findings again (a retry, a redelivery): the same counts.
        let mut again = vec![
            violation("a", base + 60_000, "i-1"),
            violation("b", base + 120_000, "i-1"),
        ];
        d.count(&mut again);
        assert_eq!(again[0].count, 2);
        assert_eq!(again[1].count, 1, "the owner stays the owner");
        // The next window alerts again.
        let mut next = vec![violation("d", base + HOUR + 1, "i-1")];
        d.count(&mut next);
        assert_eq!(next[0].count, 1);
        assert!(goes_on_bus(&next[0]));
    }

    #[test]
    fn only_findings_that_would_alert_are_counted() {
        let mut d = Dedupe::new(HOUR);
        let mut low = violation("a", 5, "i-1");
        low.severity = FindingSeverity::Low;
        let mut suppressed = violation("b", 6, "i-1");
        suppressed.suppressed = true;
        let mut fs = vec![low, suppressed, violation("c", 7, "i-1")];
        d.count(&mut fs);
        assert_eq!(
            fs.iter().map(|f| f.count).collect::<Vec<_>>(),
            [1, 1, 1],
            "neither the low nor the suppressed finding takes the alert"
        );
    }

    #[test]
    fn groups_differ_by_kind_principal_document_and_resource() {
        let f = violation("a", 0, "i-1");
        let mut other = f.clone();
        other.kind = FindingKind::Unevaluated;
        assert_ne!(group_key(&f), group_key(&other));
        let mut other = f.clone();
        other.principal = None;
        assert_ne!(group_key(&f), group_key(&other));
        let mut other = f.clone();
        other.finding_id = "z".into();
        assert_eq!(
            group_key(&f),
            group_key(&other),
            "the id is not part of the group"
        );
        assert_eq!(
            (count_for(true, 7), count_for(false, 1), count_for(false, 5)),
            (1, 2, 5)
        );
    }
}
