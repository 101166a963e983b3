//! The command-status watcher: "EC2 Command Invocation Status-change Notification" and "EC2
//! Command Status-change Notification". Each (command, instance) is evaluated once, against the
//! caller the CloudTrail watcher recorded; when that record has not arrived yet, the invocation
//! is parked and the CloudTrail watcher (or, when it never comes, the sweep) finishes it.

use serde_json::Value;
use tagwatch_core::Intent;
use tagwatch_lambda::config::Config;
use tagwatch_lambda::pipeline::{watch, Accept, Failed, Invocation, Outcome};
use tagwatch_lambda::ports::{AlertBus, FindingLog, Ports, Quarantine, State, Tags};

/// The function's name in metrics (`Function` dimension) and quarantined events.
pub const FUNCTION: &str = "status-watcher";

pub async fn handle<S, T, L, B, Q>(
    ports: &Ports<S, T, L, B, Q>,
    intent: &Intent,
    _config: &Config,
    inv: &Invocation,
    event: &Value,
) -> Result<Outcome, Failed>
where
    S: State,
    T: Tags,
    L: FindingLog,
    B: AlertBus,
    Q: Quarantine,
{
    watch(ports, intent, inv, Accept::StatusChanges, event).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwatch_core::verdict::FindingKind;
    use tagwatch_lambda::fakes::{self, alerted_ids, logged, quarantined};
    use tagwatch_tests::{event_json, intent, inventory};

    const CLOUDTRAIL: &str = "cloudtrail-sendcommand-tag-targets.json";
    const STATUSES: [&str; 3] = [
        "ssm-command-invocation-status-change-inprogress.json",
        "ssm-command-invocation-status-change-success.json",
        "ssm-command-status-change-success.json",
    ];

    async fn status(p: &fakes::FakePorts, i: &Intent, name: &str) -> Outcome {
        handle(
            p,
            i,
            &fakes::config(),
            &fakes::invocation(FUNCTION),
            &event_json(name),
        )
        .await
        .unwrap()
    }

    async fn cloudtrail(p: &fakes::FakePorts, i: &Intent) -> Outcome {
        // The CloudTrail watcher's pipeline, as its handler runs it.
        watch(
            p,
            i,
            &fakes::invocation("cloudtrail-watcher"),
            Accept::Activities,
            &event_json(CLOUDTRAIL),
        )
        .await
        .unwrap()
    }

    fn violations(p: &fakes::FakePorts) -> Vec<String> {
        logged(p)
            .iter()
            .filter(|f| f.kind == FindingKind::Violation)
            .map(|f| f.resource.clone().unwrap_or_default())
            .collect()
    }

    #[tokio::test]
    async fn status_events_first_are_parked_then_finished_by_the_record() {
        let p = fakes::ports(inventory());
        let i = intent();
        for s in STATUSES {
            let o = status(&p, &i, s).await;
            assert!(
                o.logged.is_empty(),
                "{s}: nothing to say before the caller is known"
            );
        }
        let parked = p.state.snapshot().parked;
        assert_eq!(parked.len(), 2, "60002 and 60003, once each: {parked:?}");
        let o = cloudtrail(&p, &i).await;
        // bob (lead) may patch production (60002) but not the quarantined 60003.
        assert_eq!(violations(&p).len(), 1, "{:?}", logged(&p));
        assert!(violations(&p)[0].ends_with("i-0a1b2c3d4e5f60003"));
        assert_eq!(o.counts.violations, 1);
        assert_eq!(alerted_ids(&p).len(), 1);
        assert!(p.state.snapshot().parked.is_empty());
        assert_eq!(p.state.snapshot().claims.len(), 2);
    }

    #[tokio::test]
    async fn the_record_first_then_each_pair_is_evaluated_once() {
        let p = fakes::ports(inventory());
        let i = intent();
        cloudtrail(&p, &i).await;
        let mut reported = 0;
        for s in STATUSES {
            reported += status(&p, &i, s).await.counts.violations;
        }
        assert_eq!(reported, 1);
        assert_eq!(violations(&p).len(), 1);
        assert!(violations(&p)[0].ends_with("i-0a1b2c3d4e5f60003"));
        // A redelivered status event after all that: nothing new.
        let again = status(&p, &i, STATUSES[2]).await;
        assert!(again.duplicate && again.logged.is_empty());
        assert_eq!(logged(&p).len(), 1);
    }

    #[tokio::test]
    async fn a_cloudtrail_event_routed_here_is_quarantined() {
        let p = fakes::ports(inventory());
        let o = status(&p, &intent(), CLOUDTRAIL).await;
        assert_eq!(o.counts.malformed_events, 1);
        assert!(quarantined(&p)[0].1.contains("CloudTrail"));
        assert!(p.state.snapshot().commands.is_empty());
    }

    #[tokio::test]
    async fn a_failing_tag_lookup_fails_and_the_retry_reports_once() {
        let p = fakes::ports(inventory());
        let i = intent();
        cloudtrail(&p, &i).await;
        p.tags.failing.set(true);
        let e = event_json(STATUSES[2]);
        assert!(
            handle(&p, &i, &fakes::config(), &fakes::invocation(FUNCTION), &e)
                .await
                .is_err()
        );
        p.tags.failing.set(false);
        handle(&p, &i, &fakes::config(), &fakes::invocation(FUNCTION), &e)
            .await
            .unwrap();
        handle(&p, &i, &fakes::config(), &fakes::invocation(FUNCTION), &e)
            .await
            .unwrap();
        assert_eq!(violations(&p).len(), 1);
    }
}
