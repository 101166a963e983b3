//! The scheduled sweep: invocations parked longer than `TAGWATCH_PARK_DELAY_SECONDS` (default
//! 15 minutes) whose SendCommand record never arrived are reported `unevaluated`, never
//! forgotten. A record that arrives after the sweep is still evaluated and reported.

use serde_json::Value;
use tagwatch_core::Intent;
use tagwatch_lambda::clock::now_ms;
use tagwatch_lambda::config::Config;
use tagwatch_lambda::pipeline::{sweep, Failed, Invocation, Outcome, Silence};
use tagwatch_lambda::ports::{Platform, Ports};

/// The function's name in metrics (`Function` dimension).
pub const FUNCTION: &str = "sweep";

/// The outbox of a sweep invoked without an event id (by hand): shared by such runs, which is
/// harmless because delivery marks keep sinks from getting a finding twice.
pub const MANUAL_SWEEP: &str = "manual-sweep";

pub async fn handle<P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    config: &Config,
    inv: &Invocation,
    event: &Value,
) -> Result<Outcome, Failed> {
    let delay_ms = i64::try_from(config.park_delay.as_millis()).unwrap_or(i64::MAX);
    let now = now_ms();
    let silence = config.silence_after.map(|after| Silence {
        now_ms: now,
        after_ms: i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
    });
    sweep_at(
        ports,
        intent,
        inv,
        event,
        now.saturating_sub(delay_ms),
        config.sweep_batch,
        silence,
    )
    .await
}

/// Sweeps what was parked before `cutoff_ms` (at most `limit` invocations); the outbox is
/// named by the scheduled event's id, so Lambda's retry of the same event delivers what an
/// earlier attempt staged.
pub async fn sweep_at<P: Platform>(
    ports: &Ports<P>,
    intent: &Intent,
    inv: &Invocation,
    event: &Value,
    cutoff_ms: i64,
    limit: usize,
    silence: Option<Silence>,
) -> Result<Outcome, Failed> {
    let id = tagwatch_core::watch::event::unwrap_destination(event)
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| MANUAL_SWEEP.to_string(), |id| format!("sweep-{id}"));
    sweep(ports, intent, inv, &id, cutoff_ms, limit, silence).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tagwatch_core::watch::finding::FindingKind;
    use tagwatch_lambda::fakes::{self, alerted_ids, logged};
    use tagwatch_lambda::pipeline::{watch, Accept};
    use tagwatch_tests::{event_json, intent, inventory};

    /// 2026-11-21T00:00:00Z: the fixtures' status events are all earlier.
    const LATER: i64 = 1_795_219_200_000;

    fn scheduled(id: &str) -> Value {
        json!({"id": id, "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
    }

    /// A sweep run for the scheduled event `id`, everything parked before [`LATER`] due.
    async fn swept(p: &fakes::FakePorts, i: &Intent, id: &str) -> Outcome {
        sweep_at(
            p,
            i,
            &fakes::invocation(FUNCTION),
            &scheduled(id),
            LATER,
            500,
            None,
        )
        .await
        .unwrap()
    }

    async fn status(p: &fakes::FakePorts, name: &str) {
        watch(
            p,
            &intent(),
            &fakes::invocation("status-watcher"),
            Accept::StatusChanges,
            &event_json(name),
        )
        .await
        .unwrap();
    }

    /// Issue 13 §4: an account and region that sent events and then nothing for longer than
    /// the threshold is one `silent_source` finding (medium: the ticket topic), reported once
    /// however many sweeps see the same silence; a source within the threshold is not.
    #[tokio::test]
    async fn a_source_gone_quiet_is_reported_once() {
        let p = fakes::ports(inventory());
        let i = intent();
        status(&p, "ssm-command-invocation-status-change-inprogress.json").await;
        let last: Vec<_> = p.state.snapshot().sources.into_values().collect();
        assert_eq!(last.len(), 1, "{last:?}");
        let hour = 3_600_000;
        let run = |id: &'static str, now: i64| {
            let p = &p;
            let i = &i;
            async move {
                sweep_at(
                    p,
                    i,
                    &fakes::invocation(FUNCTION),
                    &scheduled(id),
                    0,
                    500,
                    Some(Silence {
                        now_ms: now,
                        after_ms: 6 * hour,
                    }),
                )
                .await
                .unwrap()
            }
        };
        let quiet_since = last[0].last_ms;
        assert!(run("s-1", quiet_since + 5 * hour).await.logged.is_empty());
        let o = run("s-2", quiet_since + 7 * hour).await;
        assert_eq!(o.counts.silent_sources, 1);
        let found = logged(&p);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, FindingKind::SilentSource);
        assert_eq!(
            (
                found[0].meta.account.as_str(),
                found[0].meta.region.as_str()
            ),
            ("111122223333", "us-east-1")
        );
        assert!(found[0]
            .summary
            .starts_with("no SSM events from 111122223333/us-east-1 since "));
        assert_eq!(alerted_ids(&p), [found[0].finding_id.clone()]);
        // Later sweeps see the same silence: nothing new.
        run("s-3", quiet_since + 8 * hour).await;
        assert_eq!(logged(&p).len(), 1);
    }

    #[tokio::test]
    async fn overdue_parked_invocations_are_reported_once() {
        let p = fakes::ports(inventory());
        let i = intent();
        status(&p, "ssm-command-invocation-status-change-orphan.json").await;
        assert_eq!(p.state.snapshot().parked.len(), 1);
        // Not overdue yet: nothing.
        let early = sweep_at(
            &p,
            &i,
            &fakes::invocation(FUNCTION),
            &scheduled("s-0"),
            0,
            500,
            None,
        )
        .await
        .unwrap();
        assert!(early.logged.is_empty());
        let o = swept(&p, &i, "s-1").await;
        assert_eq!(o.counts.unevaluated, 1);
        let found = logged(&p);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, FindingKind::Unevaluated);
        assert!(
            found[0].reason.contains("did not arrive"),
            "{}",
            found[0].reason
        );
        assert_eq!(alerted_ids(&p).len(), 1, "unevaluated runs are alerts");
        assert!(p.state.snapshot().parked.is_empty());
        // The next run (and a retry of this one) finds nothing new.
        swept(&p, &i, "s-2").await;
        swept(&p, &i, "s-1").await;
        assert_eq!(logged(&p).len(), 1);
    }

    #[tokio::test]
    async fn a_failed_sweep_is_retried_without_losing_or_repeating() {
        let p = fakes::ports(inventory());
        let i = intent();
        status(&p, "ssm-command-invocation-status-change-orphan.json").await;
        p.log.failing.set(true);
        assert!(sweep_at(
            &p,
            &i,
            &fakes::invocation(FUNCTION),
            &scheduled("s-1"),
            LATER,
            500,
            None
        )
        .await
        .is_err());
        assert!(
            p.state.snapshot().parked.is_empty(),
            "taken, but staged in the outbox"
        );
        p.log.failing.set(false);
        let retry = swept(&p, &i, "s-1").await;
        assert_eq!(retry.counts.unevaluated, 1);
        assert_eq!(logged(&p).len(), 1);
        assert_eq!(alerted_ids(&p).len(), 1);
    }

    #[tokio::test]
    async fn a_record_arriving_after_the_sweep_is_still_evaluated() {
        let p = fakes::ports(inventory());
        let i = intent();
        // A status event for the instance-id command's run on 60002, long before its record.
        let record = event_json("cloudtrail-sendcommand-instanceids.json");
        let command = record["detail"]["responseElements"]["command"]["commandId"].clone();
        let mut st = event_json("ssm-command-invocation-status-change-success.json");
        st["detail"]["command-id"] = command;
        st["detail"]["instance-id"] = json!("i-0a1b2c3d4e5f60002");
        st["resources"] =
            json!(["arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60002"]);
        watch(
            &p,
            &i,
            &fakes::invocation("status-watcher"),
            Accept::StatusChanges,
            &st,
        )
        .await
        .unwrap();
        swept(&p, &i, "s-1").await;
        watch(
            &p,
            &i,
            &fakes::invocation("cloudtrail-watcher"),
            Accept::Activities,
            &record,
        )
        .await
        .unwrap();
        let found = logged(&p);
        let kinds: Vec<FindingKind> = found.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::Unevaluated, FindingKind::Violation]);
        assert_ne!(found[0].finding_id, found[1].finding_id);
        assert!(found[1]
            .resource
            .as_deref()
            .unwrap()
            .ends_with("i-0a1b2c3d4e5f60002"));
        assert_eq!(alerted_ids(&p).len(), 2);
    }

    /// The Success invocation event of the tag-Targets command, on `instance`.
    fn success_on(instance: &str) -> Value {
        let mut st = event_json("ssm-command-invocation-status-change-success.json");
        st["detail"]["instance-id"] = json!(instance);
        st["resources"] = json!([format!(
            "arn:aws:ec2:us-east-1:111122223333:instance/{instance}"
        )]);
        st
    }

    /// Issue 9: a tag-Targets run the sweep reported, whose record then arrives: still
    /// evaluated (the overdue marker stays for the record to find).
    #[tokio::test]
    async fn a_tag_targets_record_arriving_after_the_sweep_is_still_evaluated() {
        let p = fakes::ports(inventory());
        let i = intent();
        let st = success_on("i-0a1b2c3d4e5f60003");
        watch(
            &p,
            &i,
            &fakes::invocation("status-watcher"),
            Accept::StatusChanges,
            &st,
        )
        .await
        .unwrap();
        let o = swept(&p, &i, "s-1").await;
        assert_eq!(o.counts.unevaluated, 1);
        let record = event_json("cloudtrail-sendcommand-tag-targets.json");
        watch(
            &p,
            &i,
            &fakes::invocation("cloudtrail-watcher"),
            Accept::Activities,
            &record,
        )
        .await
        .unwrap();
        let kinds: Vec<FindingKind> = logged(&p).iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::Unevaluated, FindingKind::Violation]);
        assert!(p.state.snapshot().overdue.is_empty(), "finished");
        // The next sweep reports nothing more.
        let o = swept(&p, &i, "s-2").await;
        assert!(o.logged.is_empty());
    }

    /// Issue 9: before reporting, the sweep checks the command's record: a run whose record
    /// raced its park is evaluated normally, never reported "never arrived".
    #[tokio::test]
    async fn the_sweep_evaluates_a_run_whose_record_is_there_after_all() {
        let p = fakes::ports(inventory());
        let i = intent();
        watch(
            &p,
            &i,
            &fakes::invocation("cloudtrail-watcher"),
            Accept::Activities,
            &event_json("cloudtrail-sendcommand-tag-targets.json"),
        )
        .await
        .unwrap();
        // A park written after both sides looked (a crash between park and second look).
        let st = success_on("i-0a1b2c3d4e5f60003");
        let Ok(tagwatch_core::watch::event::Event::Status(status)) =
            tagwatch_core::watch::event::normalize(&st)
        else {
            panic!("a status event")
        };
        let target = status.targets[0].clone();
        p.state.table.lock().unwrap().parked.insert(
            (status.command_id.clone(), target.id.clone()),
            tagwatch_core::watch::correlation::Parked {
                command_id: status.command_id.clone(),
                instance_id: target.id.clone(),
                status: std::sync::Arc::new(status.narrowed_to(&target)),
            },
        );
        let o = swept(&p, &i, "s-1").await;
        assert_eq!(o.counts.violations, 1);
        assert_eq!(o.counts.unevaluated, 0, "no false \"never arrived\"");
        assert!(p.state.snapshot().parked.is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_parked_item_is_counted_and_skipped() {
        let p = fakes::ports(inventory());
        let i = intent();
        status(&p, "ssm-command-invocation-status-change-orphan.json").await;
        p.state
            .table
            .lock()
            .unwrap()
            .unreadable
            .push(("command#x parked#i-1".into(), "expected value".into()));
        let o = swept(&p, &i, "s-1").await;
        assert_eq!(o.counts.permanent_errors, 1);
        assert_eq!(o.counts.unevaluated, 1, "the rest is still reported");
    }

    /// Issue 10 §5: State Manager runs an association without a SendCommand call; its command
    /// is accounted for by the association run (judged against who defined it), not reported
    /// "never arrived" by the sweep.
    #[tokio::test]
    async fn an_association_run_accounts_for_its_command_at_the_sweep() {
        let p = fakes::ports(inventory());
        let i = intent();
        watch(
            &p,
            &i,
            &fakes::invocation("cloudtrail-watcher"),
            Accept::Activities,
            &event_json("cloudtrail-createassociation.json"),
        )
        .await
        .unwrap();
        status(&p, "ssm-command-invocation-status-change-association.json").await;
        let run = watch(
            &p,
            &i,
            &fakes::invocation("status-watcher"),
            Accept::StatusChanges,
            &event_json("ssm-association-run.json"),
        )
        .await
        .unwrap();
        assert_eq!(
            run.counts.violations, 1,
            "alice's association on a production server"
        );
        assert_eq!(run.counts.origin_runs, 1);
        let o = swept(&p, &i, "s-1").await;
        assert_eq!(o.counts.unevaluated, 0);
        assert_eq!(o.counts.association_commands, 1);
        let found = logged(&p);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            found[0]
                .origin
                .as_ref()
                .and_then(|o| o.principal.as_deref()),
            Some("arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice")
        );
        assert!(p.state.snapshot().parked.is_empty());
        // Without the run, the same command is reported.
        let q = fakes::ports(inventory());
        status(&q, "ssm-command-invocation-status-change-association.json").await;
        assert_eq!(swept(&q, &i, "s-1").await.counts.unevaluated, 1);
    }
}
