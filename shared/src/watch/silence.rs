//! Sources gone quiet: an account and region that used to send SSM events and has sent none for
//! longer than the deployment's threshold. In an organisation a member account forwards its
//! events to the central bus (templates/forwarder.yaml); when that stops (a deleted rule, a
//! trail turned off, a region left out), nothing pages by itself: the runs there are simply
//! not seen. The functions remember when each source last sent an event; the scheduled sweep
//! asks [`silent`] which have gone quiet.

use crate::iam::values::format_date;
use crate::watch::event::EventMeta;
use crate::watch::finding::{finding_id, Finding, FindingKind, FindingSeverity};

/// When an account and region last sent an event (by event time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSeen {
    pub account: String,
    pub region: String,
    pub partition: String,
    pub last_ms: i64,
}

/// A `silent_source` finding for each source whose last event is more than `after_ms` before
/// `now_ms`. One finding per silence: its id names the source and its last event, so the sweep
/// finding the same silence every run decides the same finding (delivered once), and a source
/// that resumes and goes quiet again is a new finding.
pub fn silent(sources: &[SourceSeen], now_ms: i64, after_ms: i64) -> Vec<Finding> {
    sources
        .iter()
        .filter(|s| now_ms.saturating_sub(s.last_ms) > after_ms)
        .map(|s| {
            let last = format_date(s.last_ms).unwrap_or_else(|| format!("{} ms", s.last_ms));
            let hours = now_ms.saturating_sub(s.last_ms) / 3_600_000;
            let id = finding_id(&["silent", &s.account, &s.region, &s.last_ms.to_string()]);
            let mut f = Finding::new(
                FindingKind::SilentSource,
                FindingSeverity::Medium,
                id.clone(),
                EventMeta {
                    event_id: format!("silent-{id}"),
                    event_time: last.clone(),
                    event_epoch_ms: s.last_ms,
                    account: s.account.clone(),
                    region: s.region.clone(),
                    partition: s.partition.clone(),
                },
                format!(
                    "no SSM event from account {} in {} for {hours} hours (the last at {last}; threshold {} hours): \
                     check that the account's forwarding rule (templates/forwarder.yaml) and its CloudTrail trail are in place",
                    s.account,
                    s.region,
                    after_ms / 3_600_000
                ),
            );
            f.summary = f.summarize();
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn seen(account: &str, region: &str, last_ms: i64) -> SourceSeen {
        SourceSeen {
            account: account.into(),
            region: region.into(),
            partition: "aws".into(),
            last_ms,
        }
    }

    #[test]
    fn a_source_quiet_past_the_threshold_is_one_finding_per_silence() {
        let now = 1_795_165_200_000;
        let sources = [
            seen("111122223333", "us-east-1", now - HOUR),
            seen("444455556666", "eu-west-1", now - 7 * HOUR),
        ];
        let found = silent(&sources, now, 6 * HOUR);
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(f.kind, FindingKind::SilentSource);
        assert_eq!(f.severity, FindingSeverity::Medium);
        assert_eq!(
            (f.meta.account.as_str(), f.meta.region.as_str()),
            ("444455556666", "eu-west-1")
        );
        assert_eq!(
            f.summary,
            "no SSM events from 444455556666/eu-west-1 since 2026-11-20T02:00:00Z: its forwarding to tagwatch may have stopped, and what runs there is unwatched"
        );
        assert!(f.reason.contains("for 7 hours"), "{}", f.reason);
        // The next sweep decides the same finding; a new silence is a new one.
        assert_eq!(
            silent(&sources, now + HOUR, 6 * HOUR)[0].finding_id,
            f.finding_id
        );
        let later = [seen("444455556666", "eu-west-1", now + HOUR)];
        assert_ne!(
            silent(&later, now + 9 * HOUR, 6 * HOUR)[0].finding_id,
            f.finding_id
        );
        assert!(
            silent(&sources, now, 8 * HOUR).is_empty(),
            "within the threshold"
        );
    }
}
