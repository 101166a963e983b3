//! Runs Systems Manager starts itself (issue 10 §5), through the core with the `events/`
//! fixtures and the `examples/` intent: State Manager associations, maintenance window Run
//! Command tasks and Automation `aws:runCommand` steps, each attributed to the principal a
//! record names exactly, or judged as the call it is.
//!
//! AWS Systems Manager User Guide: "Monitoring Systems Manager events with Amazon EventBridge"
//! (the "EC2 State Manager Instance Association State Change" event), "Viewing association
//! histories" (`DescribeAssociationExecutionTargets`: an association's Run Command output), and
//! "About the --service-role-arn option" of register-task-with-maintenance-window (without a
//! role, the service-linked role `AWSServiceRoleForAmazonSSM`).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use serde_json::{json, Value};
use tagwatch_core::intent::origins::OriginKind;
use tagwatch_core::watch::correlation::{CorrelationStore, MemoryStore};
use tagwatch_core::watch::counts::Counts;
use tagwatch_core::watch::event::{normalize, Event, Skip};
use tagwatch_core::watch::finding::{Finding, FindingKind};
use tagwatch_core::watch::watcher::Watcher;
use tagwatch_core::Intent;

use tagwatch_tests::{event_json, example_intent, intent, inventory, read};

const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice";
const BOB: &str = "arn:aws:sts::111122223333:assumed-role/LeadEngineer/bob";
const PROD_WEB: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60002";
const ASSOCIATION: &str = "8dfe3659-4309-493a-8755-0a1b2c3d0001";
const EXECUTION: &str = "4105a4fc-f944-11e6-9d32-0a1b2c3d0004";

fn norm(v: &Value) -> Event {
    normalize(v).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// The records of `events/cloudtrail-logfile-automation.json`: the execution's start, then its
/// step's SendCommand.
fn automation_records() -> Vec<Value> {
    let v: Value =
        serde_json::from_str(&read("events/cloudtrail-logfile-automation.json")).unwrap();
    v["Records"].as_array().unwrap().clone()
}

/// Runs events in order through one watcher, then ends the input.
fn run_with(intent: &Intent, events: &[Value]) -> (Vec<Finding>, Counts) {
    let inv = inventory();
    let mut w = Watcher::new(intent, MemoryStore::new(3_600_000));
    let mut out = Vec::new();
    for e in events {
        out.extend(w.handle(&norm(e), &inv));
    }
    out.extend(w.finish());
    (out, w.counts)
}

fn run(events: &[Value]) -> (Vec<Finding>, Counts) {
    run_with(&intent(), events)
}

fn fixture(name: &str) -> Value {
    event_json(name)
}

#[test]
fn setup_records_name_the_origin_and_the_principal_behind_it() {
    let Event::Origin(a) = norm(&fixture("cloudtrail-createassociation.json")) else {
        panic!("not an origin setup")
    };
    assert_eq!(a.setups.len(), 1);
    assert_eq!(a.setups[0].kind, OriginKind::Association);
    assert_eq!(a.setups[0].id, ASSOCIATION);
    assert_eq!(a.setups[0].document.as_deref(), Some("AWS-RunShellScript"));
    assert_eq!(a.setups[0].call.source.caller.arn.as_deref(), Some(ALICE));
    assert_eq!(
        a.setups[0].call.source.source_ip.as_deref(),
        Some("198.51.100.23")
    );

    let Event::Origin(w) = norm(&fixture(
        "cloudtrail-registertaskwithmaintenancewindow.json",
    )) else {
        panic!("not an origin setup")
    };
    assert_eq!(w.setups[0].kind, OriginKind::MaintenanceWindow);
    assert_eq!(w.setups[0].id, "4f7ca192-7e9a-40fe-9192-5cb15a0d0001");
    assert_eq!(
        w.setups[0].window_id.as_deref(),
        Some("mw-0c50858d01EXAMPLE")
    );
    assert_eq!(
        w.setups[0].service_role.as_deref(),
        Some("arn:aws:iam::111122223333:role/MaintenanceWindowRole")
    );
    assert_eq!(w.setups[0].call.source.caller.arn.as_deref(), Some(BOB));

    let Event::Origin(x) = norm(&automation_records()[0]) else {
        panic!("not an origin setup")
    };
    assert_eq!(x.setups[0].kind, OriginKind::Automation);
    assert_eq!(x.setups[0].id, EXECUTION);
    assert_eq!(x.setups[0].document.as_deref(), Some("Ops-RestartNginx"));
    assert_eq!(
        x.setups[0].service_role.as_deref(),
        Some("arn:aws:iam::111122223333:role/AutomationRole")
    );
}

/// A `CreateAssociationBatch` whose every entry failed ("CreateAssociationBatch" in the Systems
/// Manager API Reference: `Successful` and `Failed` lists) defines no origin, but it is still
/// the record it is: processed under its own `eventID`, never an empty id and never kept as
/// unprocessable.
#[test]
fn a_batch_that_created_nothing_keeps_its_own_event_id() {
    let mut r = fixture("cloudtrail-createassociation.json");
    r["detail"]["eventName"] = json!("CreateAssociationBatch");
    r["detail"]["responseElements"] = json!({
        "successful": [],
        "failed": [{"entry": {"name": "AWS-RunShellScript"}, "fault": "Client", "message": "Association limit exceeded"}]
    });
    let Event::Origin(batch) = norm(&r) else {
        panic!("not an origin setup")
    };
    assert!(batch.setups.is_empty());
    let id = r["detail"]["eventID"].as_str().unwrap();
    assert_eq!(batch.call.meta.event_id, id);
    assert_eq!(norm(&r).meta().map(|m| m.event_id.as_str()), Some(id));
}

#[test]
fn a_window_task_without_a_role_runs_with_the_service_linked_role() {
    let mut r = fixture("cloudtrail-registertaskwithmaintenancewindow.json");
    r["detail"]["requestParameters"]
        .as_object_mut()
        .unwrap()
        .remove("serviceRoleArn");
    let Event::Origin(w) = norm(&r) else { panic!() };
    assert_eq!(
        w.setups[0].service_role.as_deref(),
        Some("arn:aws:iam::111122223333:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM")
    );
}

#[test]
fn failed_setups_and_other_task_types_set_nothing_up() {
    let mut failed = fixture("cloudtrail-createassociation.json");
    failed["detail"]["errorCode"] = json!("AccessDenied");
    failed["detail"]["responseElements"] = Value::Null;
    assert_eq!(
        norm(&failed),
        Event::Skipped(Skip::OtherSsmCall("CreateAssociation".into()))
    );
    // An AUTOMATION task starts an execution; only RUN_COMMAND tasks call SendCommand.
    let mut lambda = fixture("cloudtrail-registertaskwithmaintenancewindow.json");
    lambda["detail"]["requestParameters"]["taskType"] = json!("AUTOMATION");
    assert!(matches!(norm(&lambda), Event::Skipped(_)));
}

#[test]
fn a_setup_record_without_its_id_names_the_path() {
    let mut r = fixture("cloudtrail-createassociation.json");
    r["detail"]["responseElements"]["associationDescription"]
        .as_object_mut()
        .unwrap()
        .remove("associationId");
    let e = normalize(&r).unwrap_err();
    assert_eq!(
        e.path,
        "$.detail.responseElements.associationDescription.associationId"
    );
    let mut w = fixture("cloudtrail-registertaskwithmaintenancewindow.json");
    w["detail"]["responseElements"] = json!({});
    let e = normalize(&w).unwrap_err();
    assert_eq!(e.path, "$.detail.responseElements.windowTaskId");
}

#[test]
fn an_association_run_is_judged_against_the_principal_who_defined_it() {
    let (findings, stats) = run(&[
        fixture("cloudtrail-createassociation.json"),
        fixture("ssm-association-run.json"),
    ]);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.kind, FindingKind::Violation);
    assert_eq!(f.principal.as_deref(), Some(ALICE));
    assert_eq!(f.principal_entry.as_deref(), Some("junior-engineers"));
    assert_eq!(f.resource.as_deref(), Some(PROD_WEB));
    assert_eq!(f.action.as_deref(), Some("ssm:SendCommand"));
    let o = f.origin.as_ref().expect("origin");
    assert_eq!(o.kind, OriginKind::Association);
    assert_eq!(o.id.as_deref(), Some(ASSOCIATION));
    assert_eq!(o.principal.as_deref(), Some(ALICE));
    assert_eq!(
        o.setup_event_id.as_deref(),
        Some("0b7f6a2e-5c1d-4e8a-9f3b-2a6d8c4e0001")
    );
    assert!(
        f.reason.contains("through State Manager association"),
        "{}",
        f.reason
    );
    assert_eq!(stats.origin_runs, 1);
    assert_eq!(stats.origin_setups, 1);
}

#[test]
fn the_latest_definition_of_an_association_decides() {
    // bob (a lead engineer) updates the association after alice created it: its runs are his.
    let mut update = fixture("cloudtrail-createassociation.json");
    let d = &mut update["detail"];
    d["eventName"] = json!("UpdateAssociation");
    d["eventID"] = json!("0b7f6a2e-5c1d-4e8a-9f3b-2a6d8c4e00aa");
    d["eventTime"] = json!("2026-11-20T12:10:00Z");
    d["userIdentity"] = fixture("cloudtrail-registertaskwithmaintenancewindow.json")["detail"]
        ["userIdentity"]
        .clone();
    update["id"] = json!("0b7f6a2e-5c1d-4e8a-9f3b-2a6d8c4e00aa");
    let create = fixture("cloudtrail-createassociation.json");
    let run_event = fixture("ssm-association-run.json");
    // Whatever order the two records arrive in.
    for order in [
        [create.clone(), update.clone()],
        [update.clone(), create.clone()],
    ] {
        let (findings, _) = run(&[order[0].clone(), order[1].clone(), run_event.clone()]);
        assert!(findings.is_empty(), "{findings:#?}");
    }
}

#[test]
fn an_association_run_whose_definition_was_never_seen_is_unevaluated_once_per_association() {
    let first = fixture("ssm-association-run-undefined.json");
    let mut second = first.clone();
    second["id"] = json!("a3c1e5f7-2b4d-4f6a-8c0e-1a3b5c7d00bb");
    second["detail"]["instance-id"] = json!("i-0a1b2c3d4e5f60002");
    let (findings, stats) = run(&[first, second]);
    assert_eq!(findings.len(), 2);
    assert!(findings.iter().all(|f| f.kind == FindingKind::Unevaluated));
    assert_eq!(
        findings[0].finding_id, findings[1].finding_id,
        "one alert per association, however many runs"
    );
    assert!(findings[0].reason.contains("was not seen"));
    assert_eq!(findings[0].principal, None);
    assert_eq!(
        findings[0].origin.as_ref().map(|o| o.kind),
        Some(OriginKind::Association)
    );
    assert_eq!(stats.origin_runs, 2);
}

#[test]
fn a_command_without_a_record_is_accounted_for_by_its_association_run() {
    let status = fixture("ssm-command-invocation-status-change-association.json");
    // Alone, it is a command whose record never came.
    let (alone, _) = run(std::slice::from_ref(&status));
    assert_eq!(alone.len(), 1);
    assert!(alone[0].reason.contains("never arrived"));
    // With the association run of the same document on the same node, in either order, the
    // run is judged and the command is accounted for.
    for events in [
        vec![
            fixture("cloudtrail-createassociation.json"),
            status.clone(),
            fixture("ssm-association-run.json"),
        ],
        vec![
            fixture("cloudtrail-createassociation.json"),
            fixture("ssm-association-run.json"),
            status.clone(),
        ],
    ] {
        let (findings, stats) = run(&events);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].kind, FindingKind::Violation);
        assert_eq!(stats.association_commands, 1);
        assert_eq!(stats.unevaluated, 0);
    }
    // A run of another document on that node does not account for it.
    let mut other = fixture("ssm-association-run.json");
    other["detail"]["document-name"] = json!("AWS-GatherSoftwareInventory");
    let (findings, _) = run(&[status, other]);
    assert!(findings
        .iter()
        .any(|f| f.kind == FindingKind::Unevaluated && f.reason.contains("never arrived")));
}

#[test]
fn a_command_and_its_association_run_expiring_together_are_still_accounted_for() {
    let intent = intent();
    let inv = inventory();
    let mut w = Watcher::new(&intent, MemoryStore::new(60_000));
    for name in [
        "ssm-command-invocation-status-change-association.json",
        "ssm-association-run.json",
    ] {
        w.handle(&norm(&fixture(name)), &inv);
    }
    // Hours later: both are past the TTL and expire in the same sweep of the store.
    let mut later = fixture("ssm-association-run-undefined.json");
    later["time"] = json!("2026-11-20T18:00:00Z");
    let findings = w.handle(&norm(&later), &inv);
    assert!(
        findings
            .iter()
            .all(|f| !f.reason.contains("did not arrive")),
        "{findings:#?}"
    );
    assert_eq!(w.counts.association_commands, 1);
    // The run is kept until the next expiry, then let go: memory stays bounded.
    let Event::AssociationRun(run) = norm(&fixture("ssm-association-run.json")) else {
        panic!()
    };
    let near = |w: &Watcher<'_, MemoryStore>| {
        w.store()
            .association_run_near(&run.target.id, &run.document.id, run.meta.event_epoch_ms)
    };
    assert_eq!(near(&w).as_deref(), Some(ASSOCIATION));
    later["id"] = json!("a3c1e5f7-2b4d-4f6a-8c0e-1a3b5c7d00ee");
    later["time"] = json!("2026-11-20T19:00:00Z");
    w.handle(&norm(&later), &inv);
    assert_eq!(near(&w), None);
}

#[test]
fn a_maintenance_window_run_is_judged_against_who_registered_the_task() {
    let register = fixture("cloudtrail-registertaskwithmaintenancewindow.json");
    let send = fixture("cloudtrail-sendcommand-maintenance-window.json");
    // bob, a lead engineer, may run AWS-RunShellScript on production servers.
    let (findings, stats) = run(&[register, send.clone()]);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(stats.origin_runs, 1);
    assert_eq!(stats.compliant, 2);
    // Without the registration the call is the role's own, which the intent does not allow.
    let (findings, stats) = run(&[send]);
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert!(findings.iter().all(|f| f.kind == FindingKind::Violation
        && f.principal
            .as_deref()
            .is_some_and(|p| p.contains("MaintenanceWindowRole"))
        && f.origin.is_none()));
    assert_eq!(stats.origin_runs, 0);
}

#[test]
fn window_tasks_of_two_principals_leave_the_run_to_its_role() {
    let bob = fixture("cloudtrail-registertaskwithmaintenancewindow.json");
    let mut alice = bob.clone();
    let d = &mut alice["detail"];
    d["eventID"] = json!("0b7f6a2e-5c1d-4e8a-9f3b-2a6d8c4e00cc");
    d["userIdentity"] =
        fixture("cloudtrail-createassociation.json")["detail"]["userIdentity"].clone();
    d["responseElements"]["windowTaskId"] = json!("4f7ca192-7e9a-40fe-9192-5cb15a0d00cc");
    alice["id"] = json!("0b7f6a2e-5c1d-4e8a-9f3b-2a6d8c4e00cc");
    let (findings, stats) = run(&[
        bob,
        alice,
        fixture("cloudtrail-sendcommand-maintenance-window.json"),
    ]);
    assert_eq!(stats.origin_runs, 1);
    assert_eq!(findings.len(), 2, "{findings:#?}");
    for f in &findings {
        let o = f.origin.as_ref().unwrap();
        assert_eq!(o.kind, OriginKind::MaintenanceWindow);
        assert_eq!(o.principal, None, "two registrants: nobody is guessed");
        assert_eq!(o.window_id.as_deref(), Some("mw-0c50858d01EXAMPLE"));
        assert!(f
            .principal
            .as_deref()
            .unwrap()
            .contains("MaintenanceWindowRole"));
        assert!(
            f.reason.contains("whose principal is unknown"),
            "{}",
            f.reason
        );
    }
}

#[test]
fn the_service_linked_role_marks_a_maintenance_window_run() {
    let mut send = fixture("cloudtrail-sendcommand-maintenance-window.json");
    let ui = &mut send["detail"]["userIdentity"];
    let role = "arn:aws:iam::111122223333:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM";
    ui["arn"] = json!("arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForAmazonSSM/8a3f0c5e");
    ui["sessionContext"]["sessionIssuer"]["arn"] = json!(role);
    ui["sessionContext"]["sessionIssuer"]["userName"] = json!("AWSServiceRoleForAmazonSSM");
    let (findings, stats) = run(&[send]);
    assert_eq!(stats.origin_runs, 1);
    assert!(!findings.is_empty());
    assert!(findings.iter().all(|f| f
        .origin
        .as_ref()
        .is_some_and(|o| o.kind == OriginKind::MaintenanceWindow && o.principal.is_none())));
}

#[test]
fn an_automation_step_is_attributed_to_who_started_the_execution() {
    let records = automation_records();
    let (findings, stats) = run(&records);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.kind, FindingKind::Violation);
    assert_eq!(f.principal.as_deref(), Some(ALICE));
    assert_eq!(f.resource.as_deref(), Some(PROD_WEB));
    let o = f.origin.as_ref().unwrap();
    assert_eq!(o.kind, OriginKind::Automation);
    assert_eq!(o.id.as_deref(), Some(EXECUTION));
    assert_eq!(stats.origin_runs, 1);
    // The status event of the step's command joins the attributed record: judged once.
    let mut status = fixture("ssm-command-invocation-status-change-success.json");
    status["id"] = json!("b4d2f6a8-3c5e-4a7b-9d1f-2b4c6d8e00dd");
    status["detail"]["command-id"] = records[1]["responseElements"]["command"]["commandId"].clone();
    status["detail"]["instance-id"] = json!("i-0a1b2c3d4e5f60002");
    status["resources"] = json!([PROD_WEB]);
    let (again, _) = run(&[records[0].clone(), records[1].clone(), status]);
    assert_eq!(again.len(), 1);
    // The step's record processed before the start's: judged as the role's own call (the
    // execution is not known yet); never attributed by guess.
    let (early, stats) = run(&[records[1].clone(), records[0].clone()]);
    assert_eq!(stats.origin_runs, 0);
    assert!(early
        .iter()
        .all(|f| f.origin.is_none() && f.principal.as_deref().unwrap().contains("AutomationRole")));
}

#[test]
fn the_intent_can_ignore_each_origin() {
    let mut text: Value = serde_json::from_str(&read("examples/intent.json")).unwrap();
    text["origins"] =
        json!({"association": "ignore", "maintenance_window": "ignore", "automation": "ignore"});
    let quiet = example_intent(&text.to_string());
    let mut events = vec![
        fixture("cloudtrail-createassociation.json"),
        fixture("ssm-command-invocation-status-change-association.json"),
        fixture("ssm-association-run.json"),
        fixture("ssm-association-run-undefined.json"),
        fixture("cloudtrail-registertaskwithmaintenancewindow.json"),
        fixture("cloudtrail-sendcommand-maintenance-window.json"),
    ];
    events.extend(automation_records());
    let (findings, stats) = run_with(&quiet, &events);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(stats.origin_runs, 4);
    assert_eq!(stats.origin_ignored, 4);
    assert_eq!(
        stats.association_commands, 1,
        "ignored runs still account for their commands"
    );
    // Evaluated (the default), the same events page for alice's runs.
    let (findings, _) = run(&events);
    assert_eq!(
        findings
            .iter()
            .filter(|f| f.kind == FindingKind::Violation)
            .count(),
        2
    );
}

#[test]
fn invalid_origins_are_reported_with_their_path() {
    for (origins, path) in [
        (json!({"associations": "ignore"}), "$.origins.associations"),
        (json!({"automation": "skip"}), "$.origins.automation"),
        (json!(["association"]), "$.origins"),
    ] {
        let mut text: Value = serde_json::from_str(&read("examples/intent.json")).unwrap();
        text["origins"] = origins;
        let dir = tagwatch_tests::root().join("examples");
        let mut load = |p: &str| {
            std::fs::read_to_string(dir.join(p))
                .map(|t| (p.to_string(), t))
                .map_err(|e| e.to_string())
        };
        let err = Intent::parse(&text.to_string(), None, &mut load).unwrap_err();
        let d = err
            .diagnostics
            .iter()
            .find(|d| d.code == "invalid-origins")
            .unwrap_or_else(|| panic!("{:?}", err.diagnostics));
        assert_eq!(d.path, path);
    }
}
