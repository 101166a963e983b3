//! The CloudTrail watcher: "AWS API Call via CloudTrail" events for `ssm:SendCommand` and
//! `ssm:StartSession`, allowed or denied. Each is evaluated resource by resource against the
//! intent with live tags; each SendCommand is recorded for its status events, and invocations
//! parked waiting for it are finished; AccessDenied calls feed the caller's spike window.

use serde_json::Value;
use tagwatch_core::Intent;
use tagwatch_lambda::config::Config;
use tagwatch_lambda::pipeline::{watch, Accept, Failed, Invocation, Outcome};
use tagwatch_lambda::ports::{Platform, Ports};

/// The function's name in metrics (`Function` dimension) and quarantined events.
pub const FUNCTION: &str = "cloudtrail-watcher";

pub async fn handle<P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    _config: &Config,
    inv: &Invocation,
    event: &Value,
) -> Result<Outcome, Failed> {
    watch(ports, intent, inv, Accept::Activities, event).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwatch_core::watch::finding::FindingKind;
    use tagwatch_lambda::fakes::{self, alerted_ids, logged, logged_ids, quarantined};
    use tagwatch_tests::{denied_json_at, event_json, intent, inventory, spike_intent};

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

    async fn run(p: &fakes::FakePorts, intent: &Intent, name: &str) -> Outcome {
        call(p, intent, &event_json(name)).await.unwrap()
    }

    /// Issue 13 §1: the same violation again (alice, AWS-RunShellScript, the production
    /// server) within the intent's dedupe window is logged with its running count and not
    /// alerted; in the next window it alerts again; a retry counts nothing twice.
    #[tokio::test]
    async fn repeats_within_the_dedupe_window_are_logged_with_a_count_and_alerted_once() {
        let p = fakes::ports(inventory());
        let i = intent();
        let again = |n: u32, time: &str| {
            let mut e = event_json("cloudtrail-sendcommand-instanceids.json");
            e["id"] = Value::from(format!("repeat-{n}"));
            e["detail"]["eventID"] = Value::from(format!("repeat-{n}"));
            e["detail"]["eventTime"] = Value::from(time);
            e["detail"]["responseElements"]["command"]["commandId"] =
                Value::from(format!("00000000-0000-4000-8000-00000000000{n}"));
            e
        };
        // 2026-11-20 09:08:56 and 09:38:56 share the 09:00-10:00 window; 10:08:56 does not.
        for (n, time) in [
            (1, "2026-11-20T09:08:56Z"),
            (2, "2026-11-20T09:38:56Z"),
            (3, "2026-11-20T10:08:56Z"),
        ] {
            call(&p, &i, &again(n, time)).await.unwrap();
        }
        // A retry of the second event.
        call(&p, &i, &again(2, "2026-11-20T09:38:56Z"))
            .await
            .unwrap();
        let found = logged(&p);
        let counts: Vec<(String, u64)> = found
            .iter()
            .map(|f| (f.meta.event_id.clone(), f.count))
            .collect();
        assert_eq!(
            counts,
            [
                ("repeat-1".to_string(), 1),
                ("repeat-2".to_string(), 2),
                ("repeat-3".to_string(), 1)
            ],
            "every finding logged once, with its running count"
        );
        let alerted: Vec<String> = found
            .iter()
            .filter(|f| f.count == 1)
            .map(|f| f.finding_id.clone())
            .collect();
        assert_eq!(alerted_ids(&p), alerted, "one alert per window");
    }

    #[tokio::test]
    async fn a_violation_is_logged_alerted_and_counted() {
        let p = fakes::ports(inventory());
        let o = run(&p, &intent(), "cloudtrail-sendcommand-instanceids.json").await;
        let found = logged(&p);
        // alice (junior) on 60001 (testServer) is in policy; 60002 (productionServer) is not.
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, FindingKind::Violation);
        assert!(found[0]
            .resource
            .as_deref()
            .unwrap()
            .ends_with("i-0a1b2c3d4e5f60002"));
        assert_eq!(alerted_ids(&p), logged_ids(&p));
        assert_eq!(o.counts.violations, 1);
        assert_eq!(o.counts.events_processed, 1);
        assert_eq!(o.counts.malformed_events, 0);
        // Both instances' tags were looked up, in one call.
        let asked = p.tags.asked.lock().unwrap().clone();
        assert_eq!(asked, ["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002"]);
    }

    #[tokio::test]
    async fn instances_of_another_account_have_unknown_tags_not_none() {
        // Forwarded from a member account: the tag adapter sees only its own account, so the
        // runs are unevaluated, never judged as untagged.
        let mut p = fakes::ports(inventory());
        p.tag_scope.account = Some("999999999999".to_string());
        let o = run(&p, &intent(), "cloudtrail-sendcommand-instanceids.json").await;
        assert!(p.tags.asked.lock().unwrap().is_empty());
        let kinds: Vec<FindingKind> = logged(&p).iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::Unevaluated, FindingKind::Unevaluated]);
        assert_eq!(o.counts.violations, 0);
    }

    /// Issue 14 §1: a run forwarded from a member account in scope is judged with that
    /// account's own tags (read through its reader role).
    #[tokio::test]
    async fn a_member_accounts_run_is_judged_with_its_own_tags() {
        use tagwatch_lambda::ports::Members;
        let mut p = fakes::ports(inventory());
        p.tag_scope.account = Some("999999999999".to_string());
        p.tag_scope.members = Members::Only(["111122223333".to_string()].into());
        let o = run(&p, &intent(), "cloudtrail-sendcommand-instanceids.json").await;
        let kinds: Vec<FindingKind> = logged(&p).iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::Violation]);
        assert_eq!(o.counts.violations, 1);
        assert_eq!(*p.tags.accounts.lock().unwrap(), ["111122223333"]);
    }

    /// Issue 14 §1: a member account whose reader role cannot be assumed gives `unevaluated`
    /// with cause `no_access`: logged and counted, never paged.
    #[tokio::test]
    async fn a_member_without_the_reader_role_is_no_access_not_a_page() {
        use tagwatch_core::watch::finding::{FindingSeverity, UnevaluatedCause};
        use tagwatch_lambda::ports::Members;
        let mut p = fakes::ports(inventory());
        p.tag_scope.account = Some("999999999999".to_string());
        p.tag_scope.members = Members::All;
        p.tags
            .no_access
            .lock()
            .unwrap()
            .push("111122223333".to_string());
        let o = run(&p, &intent(), "cloudtrail-sendcommand-instanceids.json").await;
        let found = logged(&p);
        assert_eq!(found.len(), 2, "{found:?}");
        for f in &found {
            assert_eq!(f.kind, FindingKind::Unevaluated);
            assert_eq!(f.cause, Some(UnevaluatedCause::NoAccess));
            assert_eq!(f.severity, FindingSeverity::Low);
            assert!(f.summary.contains("reader role"), "{}", f.summary);
        }
        assert!(alerted_ids(&p).is_empty());
        assert_eq!(o.counts.unevaluated_by_cause.no_access, 2);
        assert_eq!(o.no_access, [("111122223333".to_string(), 2)].into());
    }

    #[tokio::test]
    async fn a_compliant_call_reports_nothing() {
        let p = fakes::ports(inventory());
        let o = run(&p, &intent(), "cloudtrail-startsession-allowed.json").await;
        assert!(logged(&p).is_empty(), "{:?}", logged(&p));
        assert!(alerted_ids(&p).is_empty());
        assert_eq!(o.counts.events_processed, 1);
        assert_eq!(o.counts.violations + o.counts.unevaluated, 0);
    }

    #[tokio::test]
    async fn the_same_event_twice_reports_once() {
        let p = fakes::ports(inventory());
        let i = intent();
        run(&p, &i, "cloudtrail-sendcommand-instanceids.json").await;
        let again = run(&p, &i, "cloudtrail-sendcommand-instanceids.json").await;
        assert!(again.duplicate);
        assert!(again.logged.is_empty() && again.alerted.is_empty());
        assert_eq!(logged_ids(&p).len(), 1);
        assert_eq!(alerted_ids(&p).len(), 1);
        assert_eq!(
            again.counts.violations, 0,
            "metrics count new findings only"
        );
    }

    #[tokio::test]
    async fn a_single_access_denied_is_logged_not_alerted() {
        let p = fakes::ports(inventory());
        let o = run(&p, &intent(), "cloudtrail-sendcommand-access-denied.json").await;
        let found = logged(&p);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, FindingKind::AccessDenied);
        assert!(alerted_ids(&p).is_empty());
        assert_eq!(o.counts.access_denied, 1);
    }

    #[tokio::test]
    async fn an_access_denied_burst_raises_one_spike() {
        let p = fakes::ports(inventory());
        let i = spike_intent(60);
        for (n, t) in ["09:00:00", "09:00:10", "09:00:20", "09:00:30", "09:00:40"]
            .iter()
            .enumerate()
        {
            call(&p, &i, &denied_json_at(&format!("d-{n}"), t))
                .await
                .unwrap();
        }
        let kinds: Vec<FindingKind> = logged(&p).iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == FindingKind::AccessDenied)
                .count(),
            5
        );
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == FindingKind::AccessDeniedSpike)
                .count(),
            1
        );
        // Only the spike is an alert.
        assert_eq!(alerted_ids(&p).len(), 1);
        let spike = logged(&p)
            .into_iter()
            .find(|f| f.kind == FindingKind::AccessDeniedSpike)
            .unwrap();
        assert_eq!(spike.denied_calls, Some(3));
    }

    #[tokio::test]
    async fn malformed_and_unexpected_events_are_quarantined_and_counted() {
        let p = fakes::ports(inventory());
        let i = intent();
        let missing = event_json("malformed/sendcommand-missing-useridentity.json");
        let o = call(&p, &i, &missing).await.unwrap();
        assert_eq!(o.counts.malformed_events, 1);
        assert_eq!(o.counts.events_processed, 0);
        let other = run(&p, &i, "cloudtrail-other-putparameter.json").await;
        assert_eq!(other.counts.malformed_events, 1);
        let status = run(&p, &i, "ssm-command-invocation-status-change-success.json").await;
        assert_eq!(status.counts.malformed_events, 1);
        let kept = quarantined(&p);
        assert_eq!(kept.len(), 3);
        assert!(
            kept[0].1.contains("userIdentity"),
            "the reason names the path: {}",
            kept[0].1
        );
        assert!(kept[1].1.contains("PutParameter"), "{}", kept[1].1);
        assert!(kept[2].1.contains("status-change"), "{}", kept[2].1);
        assert!(kept.iter().all(|k| k.2 == FUNCTION));
        // Kept as received, minus secrets, and still an event that parses.
        let back: Value = serde_json::from_str(&kept[0].0).unwrap();
        assert_eq!(back["id"], missing["id"]);
        assert!(logged(&p).is_empty());
    }

    #[tokio::test]
    async fn quarantined_events_lose_parameters_and_session_tokens() {
        let p = fakes::ports(inventory());
        let mut e = event_json("cloudtrail-startsession-allowed.json");
        e["detail"]["eventName"] = Value::from("ResumeSession");
        e["detail"]["responseElements"]["tokenValue"] = Value::from("SECRET-TOKEN");
        e["detail"]["requestParameters"]["parameters"] =
            serde_json::json!({"commands": ["echo SECRET-COMMAND"]});
        call(&p, &intent(), &e).await.unwrap();
        let kept = quarantined(&p);
        assert_eq!(kept.len(), 1);
        assert!(!kept[0].0.contains("SECRET"), "{}", kept[0].0);
        // The skeleton keeps every path, each free-text value as its size.
        let body: Value = serde_json::from_str(&kept[0].0).unwrap();
        assert_eq!(
            body["detail"]["responseElements"]["tokenValue"],
            "<string, 12 bytes>"
        );
        assert_eq!(body["detail"]["eventName"], "ResumeSession");
    }

    #[tokio::test]
    async fn without_a_quarantine_queue_a_malformed_event_fails_the_invocation() {
        let mut p = fakes::ports(inventory());
        p.quarantine = None;
        let e = event_json("malformed/sendcommand-missing-useridentity.json");
        let err = call(&p, &intent(), &e).await.unwrap_err();
        assert_eq!(err.failure.kind(), "MalformedEvent");
        assert!(err.to_string().contains("userIdentity"), "{err}");
    }

    #[tokio::test]
    async fn a_failing_sink_fails_the_invocation_and_the_retry_delivers_without_duplicates() {
        let p = fakes::ports(inventory());
        let i = intent();
        let e = event_json("cloudtrail-sendcommand-instanceids.json");
        // The bus fails after the log accepted the finding.
        p.bus.failing.set(true);
        let err = call(&p, &i, &e).await.unwrap_err();
        assert_eq!(err.failure.kind(), "RetryableAwsError");
        assert_eq!(logged_ids(&p).len(), 1);
        assert!(alerted_ids(&p).is_empty());
        // Issue 9: the attempt that logged the violation counts it, though it failed later;
        // the retry, which logs nothing, counts nothing (it used to report 0 and 0).
        assert_eq!(err.outcome.counts.violations, 1);
        p.bus.failing.set(false);
        let retry = call(&p, &i, &e).await.unwrap();
        assert!(retry.logged.is_empty(), "the log already has it");
        assert_eq!(retry.counts.violations, 0);
        assert_eq!(retry.alerted.len(), 1, "the bus gets it now");
        assert_eq!(logged_ids(&p).len(), 1);
        assert_eq!(alerted_ids(&p), logged_ids(&p));
    }

    #[tokio::test]
    async fn a_failure_after_staging_loses_nothing() {
        let p = fakes::ports(inventory());
        let i = intent();
        let e = event_json("cloudtrail-sendcommand-instanceids.json");
        p.state.failing_persist.set(true);
        assert!(call(&p, &i, &e).await.is_err());
        assert!(
            logged(&p).is_empty(),
            "nothing is delivered before the state is written"
        );
        p.state.failing_persist.set(false);
        call(&p, &i, &e).await.unwrap();
        assert_eq!(logged_ids(&p).len(), 1);
        assert_eq!(alerted_ids(&p).len(), 1);
        // A third delivery (Lambda's own retry after a timeout, say) adds nothing.
        call(&p, &i, &e).await.unwrap();
        assert_eq!(logged_ids(&p).len(), 1);
    }

    #[tokio::test]
    async fn unreachable_state_or_tags_fail_before_deciding() {
        let p = fakes::ports(inventory());
        let i = intent();
        let e = event_json("cloudtrail-sendcommand-instanceids.json");
        p.tags.failing.set(true);
        assert!(call(&p, &i, &e).await.is_err());
        p.tags.failing.set(false);
        p.state.failing.set(true);
        assert!(call(&p, &i, &e).await.is_err());
        assert!(p.state.snapshot().seen.is_empty());
        p.state.failing.set(false);
        call(&p, &i, &e).await.unwrap();
        assert_eq!(logged_ids(&p).len(), 1);
    }

    #[tokio::test]
    async fn a_send_command_is_recorded_for_its_status_events() {
        let p = fakes::ports(inventory());
        run(&p, &intent(), "cloudtrail-sendcommand-tag-targets.json").await;
        let t = p.state.snapshot();
        assert_eq!(t.commands.len(), 1);
        assert!(t
            .commands
            .contains_key("e500bddf-37b0-4307-8f0f-4c3c2052e52b"));
        assert!(logged(&p).is_empty(), "tag targets name no instance yet");
    }

    /// Issue 9: a partial `PutEvents` failure sends again only the entries that failed; the
    /// accepted ones are marked at once and never sent twice.
    #[tokio::test]
    async fn a_partial_bus_failure_resends_only_the_failed_entries() {
        let p = fakes::ports(tagwatch_core::intent::inventory::Inventory::default());
        let i = intent();
        // Unknown tags on both instances: two unevaluated findings, both alerts.
        let e = event_json("cloudtrail-sendcommand-instanceids.json");
        p.bus.failing_entries.set(true);
        let err = call(&p, &i, &e).await.unwrap_err();
        assert_eq!(err.failure.kind(), "RetryableBusEntries");
        assert_eq!(alerted_ids(&p).len(), 1, "the accepted entry");
        assert_eq!(err.outcome.alerted.len(), 1);
        p.bus.failing_entries.set(false);
        let retry = call(&p, &i, &e).await.unwrap();
        assert_eq!(retry.alerted.len(), 1, "only the one that failed");
        let mut ids = alerted_ids(&p);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 2);
        assert_eq!(alerted_ids(&p).len(), 2, "none twice");
    }

    /// Issue 13 §3: with Security Hub on, what goes on the bus is imported as ASFF, once per
    /// finding id; what does not alert (a single AccessDenied) is not.
    #[tokio::test]
    async fn alerts_are_imported_into_security_hub_once() {
        let p = fakes::ports_with_security_hub(inventory());
        let i = intent();
        let o = run(&p, &i, "cloudtrail-sendcommand-instanceids.json").await;
        assert_eq!(fakes::imported_ids(&p), alerted_ids(&p));
        assert_eq!(o.exported, alerted_ids(&p));
        let hub = p.security_hub.as_ref().unwrap();
        let imported = hub.port.imported.lock().unwrap().clone();
        assert_eq!(imported[0].aws_account_id, fakes::hub_home().account);
        assert_eq!(imported[0].product_arn, fakes::hub_home().product_arn);
        assert_eq!(imported[0].description, logged(&p)[0].reason);
        // The same event again: nothing new is imported.
        run(&p, &i, "cloudtrail-sendcommand-instanceids.json").await;
        assert_eq!(fakes::imported_ids(&p).len(), 1);
        // A single AccessDenied is logged, never exported.
        let o = run(&p, &i, "cloudtrail-sendcommand-access-denied.json").await;
        assert!(!o.logged.is_empty() && o.exported.is_empty());
        assert_eq!(fakes::imported_ids(&p).len(), 1);
    }

    /// Issue 13 §3: a Security Hub outage fails the invocation (retryable) after the log and
    /// the bus were served and marked; the retry imports what was missing and sends nothing
    /// else again. Findings Security Hub failed are imported by the retry, none twice.
    #[tokio::test]
    async fn a_security_hub_failure_is_retried_without_duplicates() {
        let p =
            fakes::ports_with_security_hub(tagwatch_core::intent::inventory::Inventory::default());
        let i = intent();
        let e = event_json("cloudtrail-sendcommand-instanceids.json");
        let hub = &p.security_hub.as_ref().unwrap().port;
        hub.failing.set(true);
        let err = call(&p, &i, &e).await.unwrap_err();
        assert_eq!(err.failure.kind(), "RetryableAwsError");
        assert_eq!(alerted_ids(&p).len(), 2, "the bus was served first");
        assert!(fakes::imported_ids(&p).is_empty());
        hub.failing.set(false);
        hub.failing_entries.set(true);
        let err = call(&p, &i, &e).await.unwrap_err();
        assert_eq!(err.failure.kind(), "RetryableSecurityHubFindings");
        assert_eq!(fakes::imported_ids(&p).len(), 1);
        hub.failing_entries.set(false);
        let retry = call(&p, &i, &e).await.unwrap();
        assert_eq!(retry.exported.len(), 1, "only the one that failed");
        assert!(retry.alerted.is_empty() && retry.logged.is_empty());
        let mut ids = fakes::imported_ids(&p);
        assert_eq!(ids.len(), 2);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 2, "none twice");
        assert_eq!(logged_ids(&p).len(), 2);
        assert_eq!(alerted_ids(&p).len(), 2);
    }

    /// Issue 9: a permanent error (AccessDenied on the log group) is not retried blindly: the
    /// event is kept on the quarantine queue with the error named and counted.
    #[tokio::test]
    async fn a_permanent_error_keeps_the_event_named_and_counted() {
        let p = fakes::ports(inventory());
        p.log.denied.set(true);
        let e = event_json("cloudtrail-sendcommand-instanceids.json");
        let o = call(&p, &intent(), &e).await.unwrap();
        assert_eq!(o.counts.permanent_errors, 1);
        let reason = o.quarantined.unwrap();
        assert!(reason.contains("AccessDeniedException"), "{reason}");
        let kept = quarantined(&p);
        assert_eq!(kept.len(), 1);
        assert!(kept[0].1.contains("PermanentAwsError"), "{}", kept[0].1);
        // Without a queue, the invocation fails with the permanent kind (the failure
        // destination keeps it).
        let mut p = fakes::ports(inventory());
        p.quarantine = None;
        p.log.denied.set(true);
        let err = call(&p, &intent(), &e).await.unwrap_err();
        assert_eq!(err.failure.kind(), "PermanentAwsError");
        assert_eq!(err.outcome.counts.permanent_errors, 1);
    }

    /// Issue 9: a twin (the same event on another execution environment) finds the finding's
    /// lease held and waits for the holder instead of sending it again; a holder that died
    /// (its lease ran out) is replaced.
    #[tokio::test]
    async fn a_twin_waits_for_the_lease_holder_instead_of_sending_again() {
        let p = fakes::ports(inventory());
        let i = intent();
        let e = event_json("cloudtrail-sendcommand-instanceids.json");
        // The first environment staged and leased the finding, then its bus call failed and
        // its lease could not be released (it died).
        p.bus.failing.set(true);
        p.state.failing_marks.set(false);
        let first = fakes::invocation(FUNCTION);
        assert!(handle(&p, &i, &fakes::config(), &first, &e).await.is_err());
        p.bus.failing.set(false);
        let f = logged_ids(&p);
        p.state
            .table
            .lock()
            .unwrap()
            .leases
            .insert(f[0].clone(), "dead-environment".to_string());
        let mut twin = fakes::invocation(FUNCTION);
        twin.request_id = "twin".to_string();
        let err = handle(&p, &i, &fakes::config(), &twin, &e)
            .await
            .unwrap_err();
        assert_eq!(err.failure.kind(), "RetryableDeliveryInProgress");
        assert!(
            alerted_ids(&p).is_empty(),
            "not sent while another holds it"
        );
        p.state.leases_expired.set(true);
        let o = handle(&p, &i, &fakes::config(), &twin, &e).await.unwrap();
        assert_eq!(o.alerted.len(), 1);
        assert_eq!(logged_ids(&p).len(), 1, "the log had it: never twice");
    }
}
