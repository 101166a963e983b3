//! The command-status watcher: "EC2 Command Invocation Status-change Notification" and "EC2
//! Command Status-change Notification". Each (command, instance) is evaluated once, against the
//! caller the CloudTrail watcher recorded; when that record has not arrived yet, the invocation
//! is parked and the CloudTrail watcher (or, when it never comes, the sweep) finishes it.

use serde_json::Value;
use tagwatch_core::Intent;
use tagwatch_lambda::config::Config;
use tagwatch_lambda::pipeline::{watch, Accept, Failed, Invocation, Outcome};
use tagwatch_lambda::ports::{Platform, Ports};

/// The function's name in metrics (`Function` dimension) and quarantined events.
pub const FUNCTION: &str = "status-watcher";

pub async fn handle<P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    _config: &Config,
    inv: &Invocation,
    event: &Value,
) -> Result<Outcome, Failed> {
    watch(ports, intent, inv, Accept::StatusChanges, event).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwatch_core::watch::finding::FindingKind;
    use tagwatch_lambda::fakes::{self, alerted_ids, logged, quarantined};
    use tagwatch_tests::{event_json, intent, inventory};

    /// One invocation of the handler on `event`, with the test configuration.
    async fn call(p: &fakes::FakePorts, intent: &Intent, event: &Value) -> Result<Outcome, Failed> {
        handle(
            p,
            intent,
            &fakes::config(),
            &fakes::invocation(FUNCTION),
            event,
        )
        .await
    }

    const CLOUDTRAIL: &str = "cloudtrail-sendcommand-tag-targets.json";
    const STATUSES: [&str; 3] = [
        "ssm-command-invocation-status-change-inprogress.json",
        "ssm-command-invocation-status-change-success.json",
        "ssm-command-status-change-success.json",
    ];

    async fn status(p: &fakes::FakePorts, i: &Intent, name: &str) -> Outcome {
        call(p, i, &event_json(name)).await.unwrap()
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
        assert!(call(&p, &i, &e).await.is_err());
        p.tags.failing.set(false);
        call(&p, &i, &e).await.unwrap();
        call(&p, &i, &e).await.unwrap();
        assert_eq!(violations(&p).len(), 1);
    }

    /// A status event for `instance` of the tag-Targets command.
    fn invocation_of(instance: &str, n: usize) -> serde_json::Value {
        let mut e = event_json(STATUSES[0]);
        e["id"] = serde_json::json!(format!("status-{n}"));
        e["detail"]["instance-id"] = serde_json::json!(instance);
        e["resources"] = serde_json::json!([format!(
            "arn:aws:ec2:us-east-1:111122223333:instance/{instance}"
        )]);
        e
    }

    /// Issue 9: a status event that gathered before its record was written, and parked after
    /// the CloudTrail watcher had looked, used to wait for the sweep (a false "record never
    /// arrived"). The second look after parking finds the record and evaluates the pair now.
    #[tokio::test]
    async fn a_status_event_that_raced_its_record_is_evaluated_by_the_second_look() {
        let p = fakes::ports(inventory());
        let i = intent();
        cloudtrail(&p, &i).await;
        p.state.stale_gather.set(true);
        let o = call(&p, &i, &invocation_of("i-0a1b2c3d4e5f60003", 0))
            .await
            .unwrap();
        assert_eq!(violations(&p).len(), 1, "{:?}", logged(&p));
        assert_eq!(o.counts.violations, 1);
        assert!(
            p.state.snapshot().parked.is_empty(),
            "nothing left for the sweep"
        );
    }

    /// Issue 9: 1,000 parked invocations finished by one record: every finding reaches the log
    /// group in calls within `PutLogEvents`' limits, and the bus in calls of at most 10.
    #[tokio::test]
    async fn a_record_finishing_a_thousand_parked_runs_delivers_within_the_limits() {
        let mut inv = inventory();
        let ids: Vec<String> = (0..1000).map(|n| format!("i-{n:017x}")).collect();
        for id in &ids {
            inv.insert(
                id.clone(),
                [
                    ("Environment".to_string(), "productionServer".to_string()),
                    ("Quarantine".to_string(), "true".to_string()),
                ]
                .into(),
            );
        }
        let p = fakes::ports(inv);
        let i = intent();
        for (n, id) in ids.iter().enumerate() {
            let o = call(&p, &i, &invocation_of(id, n)).await.unwrap();
            assert!(o.logged.is_empty(), "parked: the caller is not known yet");
        }
        assert_eq!(p.state.snapshot().parked.len(), 1000);
        let o = cloudtrail(&p, &i).await;
        assert_eq!(o.counts.violations, 1000);
        assert_eq!(violations(&p).len(), 1000);
        assert_eq!(alerted_ids(&p).len(), 1000);
        let log_calls = p.log.calls.lock().unwrap().clone();
        assert!(log_calls.len() >= 2, "{log_calls:?}: over 1 MB in all");
        for (events, bytes) in &log_calls {
            assert!(
                *events <= 10_000 && *bytes <= 1_048_576,
                "{events} events, {bytes} bytes"
            );
        }
        let bus_calls = p.bus.calls.lock().unwrap().clone();
        assert_eq!(bus_calls.len(), 100);
        assert!(bus_calls.iter().all(|n| *n <= 10));
        // The parked items held only their own target.
        assert!(p.state.snapshot().parked.is_empty());
    }
}
