//! The bundled `events/` fixtures through the core: normalisation, verdicts and correlation,
//! with the `examples/` intent and inventory. Each fixture's expected findings are spelled out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tagwatch_core::correlate::MemoryStore;
use tagwatch_core::event::normalize;
use tagwatch_core::verdict::{Finding, FindingKind, Watcher};
use tagwatch_core::{Intent, Verdict};

use tagwatch_tests::{event, event_json, intent, inventory, root};

const A1: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60001";
const A2: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60002";
const A3: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60003";
const A9: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60009";
const COMMAND_X: &str = "e500bddf-37b0-4307-8f0f-4c3c2052e52b";

/// Runs fixtures in order through one watcher, then ends the input.
fn run(names: &[&str]) -> (Vec<Finding>, tagwatch_core::verdict::Stats) {
    let intent = intent();
    let inv = inventory();
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    let mut out = Vec::new();
    for n in names {
        out.extend(w.handle(&event(n), &inv));
    }
    out.extend(w.finish());
    (out, w.stats.clone())
}

fn summary(findings: &[Finding]) -> Vec<(FindingKind, Option<String>, Option<Verdict>)> {
    findings
        .iter()
        .map(|f| (f.kind, f.resource.clone(), f.intended))
        .collect()
}

#[test]
fn sendcommand_on_a_production_server_by_a_junior_is_a_violation() {
    let (f, stats) = run(&["cloudtrail-sendcommand-instanceids.json"]);
    assert_eq!(
        summary(&f),
        vec![(
            FindingKind::Violation,
            Some(A2.into()),
            Some(Verdict::ImplicitDeny)
        )]
    );
    assert_eq!(
        stats.resources_evaluated, 3,
        "the document and both instances"
    );
    assert_eq!(stats.compliant, 2);
    let v = &f[0];
    assert_eq!(
        v.principal.as_deref(),
        Some("arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice")
    );
    assert_eq!(v.principal_entry.as_deref(), Some("junior-engineers"));
    assert_eq!(
        v.document.as_deref(),
        Some("arn:aws:ssm:us-east-1::document/AWS-RunShellScript")
    );
    assert_eq!(v.action.as_deref(), Some("ssm:SendCommand"));
    assert!(v.command_id.is_some());
    assert!(v.reason.starts_with("alice (JuniorEngineer) ran AWS-RunShellScript on i-0a1b2c3d4e5f60002 (Environment=productionServer, Name=prod-web-1) outside intent"), "{}", v.reason);
    assert!(
        v.reason
            .contains("ssm:resourceTag/Environment was `productionServer`, not `testServer`"),
        "{}",
        v.reason
    );
    let json = serde_json::to_value(v).unwrap();
    for field in [
        "kind",
        "severity",
        "finding_id",
        "event_id",
        "event_time",
        "account",
        "region",
        "principal",
        "principal_entry",
        "action",
        "resource",
        "document",
        "command_id",
        "session_id",
        "intended",
        "actual",
        "statements",
        "reason",
    ] {
        assert!(json.get(field).is_some(), "finding lacks `{field}`: {json}");
    }
    assert_eq!(json["kind"], "violation");
    assert_eq!(json["actual"], "allowed");
    assert_eq!(json["intended"], "implicit_deny");
    assert!(
        !json.to_string().contains("HIDDEN_DUE_TO_SECURITY_REASONS"),
        "never include command parameters"
    );
}

#[test]
fn customer_document_and_quarantine_deny_through_a_vpc_endpoint() {
    let (f, _) = run(&["cloudtrail-sendcommand-vpc-endpoint.json"]);
    let s = summary(&f);
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(
        s[0],
        (
            FindingKind::Violation,
            Some("arn:aws:ssm:us-east-1:111122223333:document/Ops-RestartNginx".into()),
            Some(Verdict::ImplicitDeny)
        )
    );
    assert_eq!(
        s[1],
        (
            FindingKind::Violation,
            Some(A3.into()),
            Some(Verdict::ExplicitDeny)
        )
    );
    assert_eq!(
        f[1].statements[0].sid.as_deref(),
        Some("NoQuarantinedHosts")
    );
}

#[test]
fn calls_within_intent_produce_no_findings() {
    for name in [
        "cloudtrail-sendcommand-via-aws-service.json",
        "cloudtrail-sendcommand-managed-node.json",
        "cloudtrail-startsession-allowed.json",
        "cloudtrail-startsession-raw-record.json",
    ] {
        let (f, stats) = run(&[name]);
        assert!(f.is_empty(), "{name}: {:?}", summary(&f));
        assert!(stats.compliant >= 1, "{name}");
    }
}

#[test]
fn unknown_instance_tags_are_unevaluated() {
    let (f, _) = run(&["cloudtrail-sendcommand-unknown-instance.json"]);
    assert_eq!(
        summary(&f),
        vec![(FindingKind::Unevaluated, Some(A9.into()), None)]
    );
    assert!(f[0].reason.contains("tags are unknown"), "{}", f[0].reason);
}

#[test]
fn access_denied_findings_carry_the_intended_decision() {
    let (f, _) = run(&["cloudtrail-sendcommand-access-denied.json"]);
    assert_eq!(
        summary(&f),
        vec![(
            FindingKind::AccessDenied,
            Some(A2.into()),
            Some(Verdict::ImplicitDeny)
        )]
    );
    assert_eq!(f[0].error_code.as_deref(), Some("AccessDenied"));
    assert_eq!(serde_json::to_value(&f[0]).unwrap()["actual"], "denied");

    let (f, _) = run(&["cloudtrail-sendcommand-access-denied-exception.json"]);
    assert_eq!(
        summary(&f),
        vec![(
            FindingKind::AccessDenied,
            Some("arn:aws:ssm:us-east-1::document/AWS-RunShellScript".into()),
            Some(Verdict::ImplicitDeny)
        )]
    );
    assert_eq!(f[0].principal_entry, None, "mallory is unlisted");

    let (f, _) = run(&["cloudtrail-startsession-denied.json"]);
    assert_eq!(
        summary(&f),
        vec![(
            FindingKind::AccessDenied,
            Some(A3.into()),
            Some(Verdict::ExplicitDeny)
        )]
    );
}

#[test]
fn tag_target_command_is_evaluated_from_status_events_in_either_order() {
    let cloudtrail = "cloudtrail-sendcommand-tag-targets.json";
    let statuses = [
        "ssm-command-invocation-status-change-inprogress.json",
        "ssm-command-invocation-status-change-success.json",
        "ssm-command-status-change-success.json",
    ];
    let mut first: Vec<&str> = vec![cloudtrail];
    first.extend(statuses);
    let mut last: Vec<&str> = statuses.to_vec();
    last.push(cloudtrail);
    let (a, _) = run(&first);
    let (b, _) = run(&last);
    // i-...60002 (production) is allowed for leads; i-...60003 is quarantined: exactly one
    // violation, whatever the order and however many status changes arrive.
    assert_eq!(
        summary(&a),
        vec![(
            FindingKind::Violation,
            Some(A3.into()),
            Some(Verdict::ExplicitDeny)
        )]
    );
    assert_eq!(summary(&b), summary(&a));
    assert_eq!(
        a[0].finding_id, b[0].finding_id,
        "finding ids do not depend on arrival order"
    );
    assert_eq!(a[0].command_id.as_deref(), Some(COMMAND_X));
    assert_eq!(
        a[0].principal.as_deref(),
        Some("arn:aws:sts::111122223333:assumed-role/LeadEngineer/bob")
    );
}

#[test]
fn a_status_event_without_its_command_is_unevaluated_at_the_end() {
    let (f, _) = run(&["ssm-command-invocation-status-change-orphan.json"]);
    assert_eq!(
        summary(&f),
        vec![(FindingKind::Unevaluated, Some(A1.into()), None)]
    );
    assert!(f[0].reason.contains("never arrived"), "{}", f[0].reason);
}

#[test]
fn redelivered_events_yield_their_findings_once() {
    let (f, stats) = run(&[
        "cloudtrail-sendcommand-instanceids.json",
        "cloudtrail-sendcommand-instanceids.json",
    ]);
    assert_eq!(f.len(), 1);
    assert_eq!(stats.duplicates, 1);
}

#[test]
fn other_calls_are_skipped_and_counted() {
    let (f, stats) = run(&["cloudtrail-other-putparameter.json"]);
    assert!(f.is_empty());
    assert_eq!(stats.skipped, 1);
}

#[test]
fn a_cloudtrail_log_file_mixes_services() {
    let text =
        std::fs::read_to_string(root().join("events/cloudtrail-logfile-mixed.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let intent = intent();
    let inv = inventory();
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    let mut out = Vec::new();
    for r in v["Records"].as_array().unwrap() {
        out.extend(w.handle(&normalize(r).unwrap(), &inv));
    }
    out.extend(w.finish());
    assert_eq!(w.stats.skipped, 7, "{:?}", w.stats);
    assert_eq!(w.stats.activities, 3);
    assert_eq!(
        summary(&out),
        vec![(
            FindingKind::AccessDenied,
            Some(A2.into()),
            Some(Verdict::ImplicitDeny)
        )]
    );
}

#[test]
fn malformed_fixtures_are_errors_with_a_path() {
    let text = std::fs::read_to_string(
        root().join("events/malformed/sendcommand-missing-useridentity.json"),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let e = normalize(&v).unwrap_err();
    assert_eq!(e.path, "$.detail.userIdentity");
}

#[test]
fn spikes_are_reported_once_per_episode() {
    let intent = tagwatch_tests::spike_intent(60);
    let inv = inventory();
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    let mut spikes = Vec::new();
    // Five denials 10 s apart, then a quiet hour, then three more.
    let times = [
        "09:00:00", "09:00:10", "09:00:20", "09:00:30", "09:00:40", "10:00:00", "10:00:10",
        "10:00:20",
    ];
    for (i, t) in times.iter().enumerate() {
        let e = tagwatch_tests::denied_at(&format!("denied-{i}"), t);
        for f in w.handle(&e, &inv) {
            if f.kind == FindingKind::AccessDeniedSpike {
                spikes.push(f);
            }
        }
    }
    assert_eq!(spikes.len(), 2, "one per episode");
    assert_eq!(spikes[0].event_time, "2026-11-20T09:00:20Z");
    assert_eq!(spikes[0].denied_calls, Some(3));
    assert_eq!(spikes[0].resource, None);
    assert_eq!(spikes[1].event_time, "2026-11-20T10:00:20Z");
    assert_ne!(spikes[0].finding_id, spikes[1].finding_id);
}

/// IAM: "AWS global condition context keys" — `aws:PrincipalOrgID` is in the request context,
/// but CloudTrail does not record it. A decision that depends on it is not judged: the run is
/// `unevaluated` with the key named, never a violation built on a guess.
#[test]
fn a_decision_on_a_key_the_record_cannot_tell_is_unevaluated() {
    let text = r#"{"principals":[{"name":"juniors","match":"arn:aws:iam::111122223333:role/JuniorEngineer","policies":[
        {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*",
          "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-exampleorgid"}}}]}]}]}"#;
    let intent = Intent::parse(text, None, &mut |_: &str| Err("no files".to_string()))
        .unwrap()
        .value;
    let inv = inventory();
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    let f = w.handle(&event("cloudtrail-sendcommand-managed-node.json"), &inv);
    assert!(!f.is_empty());
    for finding in &f {
        assert_eq!(finding.kind, FindingKind::Unevaluated, "{finding:?}");
        assert_eq!(finding.intended, None);
        assert_eq!(finding.unknown_keys, vec!["aws:PrincipalOrgID".to_string()]);
        assert!(
            finding
                .reason
                .contains("it depends on aws:PrincipalOrgID, which the record cannot tell"),
            "{}",
            finding.reason
        );
    }
    // The same key in a statement a known fact already rules out does not matter.
    let text = r#"{"principals":[{"name":"juniors","match":"arn:aws:iam::111122223333:role/JuniorEngineer","policies":[
        {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*",
          "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-exampleorgid","aws:RequestedRegion":"eu-west-1"}}}]}]}]}"#;
    let intent = Intent::parse(text, None, &mut |_: &str| Err("no files".to_string()))
        .unwrap()
        .value;
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    let f = w.handle(&event("cloudtrail-sendcommand-managed-node.json"), &inv);
    assert!(!f.is_empty());
    assert!(
        f.iter()
            .all(|x| x.kind == FindingKind::Violation && x.unknown_keys.is_empty()),
        "{f:?}"
    );
}

#[test]
fn parked_invocations_expire_into_unevaluated_findings() {
    // With a one-minute correlation window, a status event whose command record has not come
    // by the time event time moves two hours on is reported, not kept forever.
    let intent = intent();
    let inv = inventory();
    let mut w = Watcher::new(&intent, MemoryStore::new(60_000));
    let mut out = w.handle(
        &event("ssm-command-invocation-status-change-orphan.json"),
        &inv,
    );
    assert!(out.is_empty(), "parked, not yet reported");
    let mut v: serde_json::Value = event_json("cloudtrail-sendcommand-unknown-instance.json");
    v["detail"]["eventTime"] = serde_json::json!("2026-11-20T13:00:00Z");
    let later = w.handle(&normalize(&v).unwrap(), &inv);
    out.extend(later);
    let expired: Vec<&Finding> = out
        .iter()
        .filter(|f| {
            f.reason
                .contains("did not arrive within the correlation window")
        })
        .collect();
    assert_eq!(expired.len(), 1, "{:?}", summary(&out));
    assert_eq!(expired[0].resource.as_deref(), Some(A1));
    assert!(w.finish().is_empty(), "reported once");
    assert!(
        w.store().len() <= 8,
        "state stays bounded: {}",
        w.store().len()
    );
}

fn inline_intent(statements: &str) -> Intent {
    let text = format!(
        r#"{{"principals":[{{"name":"leads","match":"arn:aws:iam::111122223333:role/LeadEngineer","policies":[
            {{"Version":"2012-10-17","Statement":[{statements}]}}]}}]}}"#
    );
    Intent::parse(&text, None, &mut |_: &str| Err("no files".to_string()))
        .unwrap()
        .value
}

fn activity_of(v: &serde_json::Value) -> tagwatch_core::event::Activity {
    match normalize(v).unwrap() {
        tagwatch_core::event::Event::Activity(a) => *a,
        other => panic!("{other:?}"),
    }
}

fn findings_for(intent: &Intent, v: &serde_json::Value) -> Vec<Finding> {
    let mut w = Watcher::new(intent, MemoryStore::new(3_600_000));
    let e = normalize(v).unwrap();
    w.handle(&e, &inventory())
}

/// IAM "AWS global condition context keys": through a VPC endpoint `aws:SourceVpce` is the
/// endpoint and `aws:VpcSourceIp` the caller's private address, and `aws:SourceIp` is absent
/// ("This key is not included in the request context ... if the requester uses a VPC endpoint").
#[test]
fn through_a_vpc_endpoint_the_private_address_is_vpc_source_ip_and_source_ip_is_absent() {
    let v = event_json("cloudtrail-sendcommand-vpc-endpoint.json");
    let ctx = tagwatch_core::context::activity_context(&activity_of(&v));
    assert_eq!(
        ctx.get("aws:SourceVpce").unwrap().values(),
        ["vpce-0a1b2c3d4e5f67890"]
    );
    assert_eq!(ctx.get("aws:VpcSourceIp").unwrap().values(), ["10.0.1.25"]);
    assert!(ctx.get("aws:SourceIp").is_none());
    assert!(
        !ctx.is_unknown_lower("aws:sourceip"),
        "absent, not unknown: the record settles it"
    );
    // An office-range allow cannot be met by a private address behind an endpoint...
    let office = inline_intent(
        r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
    );
    let f = findings_for(&office, &v);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f
        .iter()
        .all(|x| x.kind == FindingKind::Violation && x.intended == Some(Verdict::ImplicitDeny)));
    // ...and an allow by the private address holds for every endpoint call.
    let private = inline_intent(
        r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"IpAddress":{"aws:VpcSourceIp":"10.0.0.0/16"},"StringEquals":{"aws:SourceVpce":"vpce-0a1b2c3d4e5f67890"}}}"#,
    );
    assert!(findings_for(&private, &v).is_empty());
}

/// IAM "AWS global condition context keys", aws:ViaAWSService: true when a service calls with
/// the principal's credentials (a forward access session: `invokedBy` is the service and
/// `sourceIPAddress` its name), false for a call from an address; when the record cannot tell,
/// a decision that depends on it is `unevaluated`.
#[test]
fn via_aws_service_is_true_false_or_unknown_as_the_record_tells() {
    let fas = event_json("cloudtrail-sendcommand-via-aws-service.json");
    let ctx = tagwatch_core::context::activity_context(&activity_of(&fas));
    assert_eq!(ctx.get("aws:ViaAWSService").unwrap().values(), ["true"]);
    assert!(ctx.get("aws:SourceIp").is_none());
    assert!(
        ctx.get("aws:CalledVia").is_none() && !ctx.is_unknown_lower("aws:calledvia"),
        "SSM does not set aws:CalledVia"
    );
    let direct = event_json("cloudtrail-sendcommand-vpc-endpoint.json");
    let ctx = tagwatch_core::context::activity_context(&activity_of(&direct));
    assert_eq!(ctx.get("aws:ViaAWSService").unwrap().values(), ["false"]);

    // A service name as the source and no `invokedBy`: the record cannot tell.
    let mut unclear = fas.clone();
    unclear["detail"]["userIdentity"]
        .as_object_mut()
        .unwrap()
        .remove("invokedBy");
    let ctx = tagwatch_core::context::activity_context(&activity_of(&unclear));
    assert!(ctx.get("aws:ViaAWSService").is_none());
    assert!(ctx.is_unknown_lower("aws:viaawsservice"));
    let guard = inline_intent(
        r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*"},
           {"Effect":"Deny","Action":"ssm:SendCommand","Resource":"*","Condition":{"Bool":{"aws:ViaAWSService":"true"}}}"#,
    );
    let f = findings_for(&guard, &unclear);
    assert_eq!(f.len(), 2, "document and instance: {f:?}");
    for x in &f {
        assert_eq!(x.kind, FindingKind::Unevaluated, "{x:?}");
        assert_eq!(x.unknown_keys, ["aws:ViaAWSService"]);
    }
    // The same guard judges the forward access session (a violation) and the direct call
    // (compliant).
    assert!(findings_for(&guard, &fas)
        .iter()
        .all(|x| x.kind == FindingKind::Violation));
    let mut direct_lead = direct.clone();
    direct_lead["detail"]["requestParameters"]["documentName"] = "AWS-RunShellScript".into();
    assert!(findings_for(&guard, &direct_lead).is_empty());
    // A policy that does not read the key judges the unclear record as before.
    let open = inline_intent(r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*"}"#);
    assert!(findings_for(&open, &unclear).is_empty());
}

/// IAM "AWS global condition context keys", aws:CalledVia: set by the services that support it
/// (CloudFormation among them) when they call on a principal's behalf.
#[test]
fn called_via_names_the_service_that_made_the_call() {
    let mut v = event_json("cloudtrail-sendcommand-via-aws-service.json");
    v["detail"]["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com".into();
    v["detail"]["sourceIPAddress"] = "cloudformation.amazonaws.com".into();
    let ctx = tagwatch_core::context::activity_context(&activity_of(&v));
    assert_eq!(
        ctx.get("aws:CalledVia").unwrap().values(),
        ["cloudformation.amazonaws.com"]
    );
    assert_eq!(
        ctx.get("aws:CalledViaFirst").unwrap().values(),
        ["cloudformation.amazonaws.com"]
    );
    assert_eq!(
        ctx.get("aws:CalledViaLast").unwrap().values(),
        ["cloudformation.amazonaws.com"]
    );
    let only_cfn = inline_intent(
        r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:CalledVia":"cloudformation.amazonaws.com"}}}"#,
    );
    assert!(findings_for(&only_cfn, &v).is_empty());
    let direct = event_json("cloudtrail-sendcommand-vpc-endpoint.json");
    let mut direct = direct.clone();
    direct["detail"]["requestParameters"]["documentName"] = "AWS-RunShellScript".into();
    let f = findings_for(&only_cfn, &direct);
    assert!(
        !f.is_empty() && f.iter().all(|x| x.kind == FindingKind::Violation),
        "a direct call has no aws:CalledVia: {f:?}"
    );
}
