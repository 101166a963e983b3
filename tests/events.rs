//! The bundled `events/` fixtures through the core: normalisation, verdicts and correlation,
//! with the `examples/` intent and inventory. Each fixture's expected findings are spelled out.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use tagwatch_core::watch::correlation::MemoryStore;
use tagwatch_core::watch::event::normalize;
use tagwatch_core::watch::finding::{Finding, FindingKind};
use tagwatch_core::watch::watcher::Watcher;
use tagwatch_core::{Intent, Verdict};

use tagwatch_tests::{event, event_json, intent, inventory, root};

const A1: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60001";
const A2: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60002";
const A3: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60003";
const A9: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60009";
const COMMAND_X: &str = "e500bddf-37b0-4307-8f0f-4c3c2052e52b";

/// Runs fixtures in order through one watcher, then ends the input.
fn run(names: &[&str]) -> (Vec<Finding>, tagwatch_core::watch::counts::Counts) {
    let intent = intent();
    let inv = inventory();
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    let mut out = Vec::new();
    for n in names {
        out.extend(w.handle(&event(n), &inv));
    }
    out.extend(w.finish());
    (out, w.counts)
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
    assert_eq!(w.counts.skipped, 7, "{:?}", w.counts);
    assert_eq!(w.counts.activities, 3);
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
    assert_eq!(spikes[0].meta.event_time, "2026-11-20T09:00:20Z");
    assert_eq!(spikes[0].denied_calls, Some(3));
    assert_eq!(spikes[0].resource, None);
    assert_eq!(spikes[1].meta.event_time, "2026-11-20T10:00:20Z");
    assert_ne!(spikes[0].finding_id, spikes[1].finding_id);
}

/// The managed-node SendCommand under an intent that allows it only for `aws:PrincipalOrgID`
/// `o-exampleorgid`, a key CloudTrail does not record.
fn under_org_id_intent() -> Vec<Finding> {
    let text = r#"{"principals":[{"name":"juniors","match":"arn:aws:iam::111122223333:role/JuniorEngineer","policies":[
        {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*",
          "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-exampleorgid"}}}]}]}]}"#;
    let intent = Intent::parse(text, None, &mut |_: &str| Err("no files".to_string()))
        .unwrap()
        .value;
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    w.handle(
        &event("cloudtrail-sendcommand-managed-node.json"),
        &inventory(),
    )
}

/// IAM: "AWS global condition context keys" — `aws:PrincipalOrgID` is in the request context,
/// but CloudTrail does not record it. A decision that depends on it is not judged: the run is
/// `unevaluated` with the key named, never a violation built on a guess.
#[test]
fn a_decision_on_a_key_the_record_cannot_tell_is_unevaluated() {
    let f = under_org_id_intent();
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
    let f = w.handle(
        &event("cloudtrail-sendcommand-managed-node.json"),
        &inventory(),
    );
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

fn activity_of(v: &serde_json::Value) -> tagwatch_core::watch::event::Activity {
    match normalize(v).unwrap() {
        tagwatch_core::watch::event::Event::Activity(a) => *a,
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
    let ctx = tagwatch_core::watch::context::activity_context(&activity_of(&v));
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
    let ctx = tagwatch_core::watch::context::activity_context(&activity_of(&fas));
    assert_eq!(ctx.get("aws:ViaAWSService").unwrap().values(), ["true"]);
    assert!(ctx.get("aws:SourceIp").is_none());
    assert!(
        ctx.get("aws:CalledVia").is_none() && !ctx.is_unknown_lower("aws:calledvia"),
        "SSM does not set aws:CalledVia"
    );
    let direct = event_json("cloudtrail-sendcommand-vpc-endpoint.json");
    let ctx = tagwatch_core::watch::context::activity_context(&activity_of(&direct));
    assert_eq!(ctx.get("aws:ViaAWSService").unwrap().values(), ["false"]);

    // A service name as the source and no `invokedBy`: the record cannot tell.
    let mut unclear = fas.clone();
    unclear["detail"]["userIdentity"]
        .as_object_mut()
        .unwrap()
        .remove("invokedBy");
    let ctx = tagwatch_core::watch::context::activity_context(&activity_of(&unclear));
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
    let ctx = tagwatch_core::watch::context::activity_context(&activity_of(&v));
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

/// SSM reserves the document name prefixes `aws`, `amazon` and `amzn` (CreateDocument `Name`):
/// `AWSSupport-*` documents are AWS's, `arn:aws:ssm:REGION::document/NAME`.
#[test]
fn an_aws_support_document_is_aws_owned() {
    let (f, stats) = run(&["cloudtrail-sendcommand-aws-support-document.json"]);
    assert!(f.is_empty(), "{:?}", summary(&f));
    assert_eq!(stats.compliant, 2, "the document and the instance");
    let a = activity_of(&event_json(
        "cloudtrail-sendcommand-aws-support-document.json",
    ));
    assert_eq!(
        a.document.unwrap().arn,
        "arn:aws:ssm:us-east-1::document/AWSSupport-RunEC2RescueForWindowsTool"
    );
}

/// An account's own document is a taggable resource (SSM AddTagsToResource, ResourceType
/// `Document`): allowed by its tag when the inventory knows it, unknown when it does not.
#[test]
fn account_documents_are_judged_by_their_tags() {
    let (f, stats) = run(&["cloudtrail-sendcommand-tagged-account-document.json"]);
    assert!(f.is_empty(), "{:?}", summary(&f));
    assert_eq!(stats.compliant, 2);

    let intent = intent();
    let mut inv = inventory();
    let mut untagged = inv.clone();
    untagged.insert("Ops-CollectLogs", Default::default());
    let v = event_json("cloudtrail-sendcommand-tagged-account-document.json");
    let e = normalize(&v).unwrap();
    let f = Watcher::new(&intent, MemoryStore::new(3_600_000)).handle(&e, &untagged);
    assert_eq!(
        summary(&f),
        vec![(
            FindingKind::Violation,
            Some("arn:aws:ssm:us-east-1:111122223333:document/Ops-CollectLogs".into()),
            Some(Verdict::ImplicitDeny)
        )]
    );
    // Not in the inventory: its tags are unknown and the decision reads them.
    inv = tagwatch_core::intent::inventory::Inventory::parse(
        &tagwatch_tests::read("examples/inventory.json")
            .replace("\"Ops-CollectLogs\"", "\"Ops-Elsewhere\""),
        None,
    )
    .unwrap();
    let f = Watcher::new(&intent, MemoryStore::new(3_600_000)).handle(&e, &inv);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].kind, FindingKind::Unevaluated);
    assert_eq!(f[0].unknown_keys, ["ssm:resourceTag/Approved"]);
    assert!(f[0].reason.contains("tags are unknown"), "{}", f[0].reason);
}

/// CloudTrail `userIdentity` type `AWSService`: no ARN, the service in `invokedBy`. The intent
/// names it `service:<name>`.
#[test]
fn an_aws_service_caller_is_matched_by_its_service_name() {
    let (f, stats) = run(&["cloudtrail-sendcommand-aws-service-caller.json"]);
    assert!(f.is_empty(), "{:?}", summary(&f));
    assert_eq!(stats.compliant, 2);
    // Without the entry it is unlisted, and everything it does is outside intent.
    let text = tagwatch_tests::read("examples/intent.json")
        .replace("service:ssm.amazonaws.com", "service:nothing.amazonaws.com");
    let intent = tagwatch_tests::example_intent(&text);
    let f = findings_for(
        &intent,
        &event_json("cloudtrail-sendcommand-aws-service-caller.json"),
    );
    assert_eq!(f.len(), 2);
    assert!(f.iter().all(|x| x.kind == FindingKind::Violation
        && x.principal.is_none()
        && x.reason.contains("matches no intent entry")));
}

/// A prober rotating session names of one role: the spike window counts per role (the
/// principal behind the sessions), so six calls from six sessions still page, once, naming the
/// role and every session.
#[test]
fn rotating_session_names_still_reach_the_spike_threshold() {
    let v = event_json("cloudtrail-logfile-rotating-sessions.json");
    let intent = intent();
    let inv = inventory();
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    let mut f = Vec::new();
    for r in v["Records"].as_array().unwrap() {
        f.extend(w.handle(&normalize(r).unwrap(), &inv));
    }
    let spikes: Vec<&Finding> = f
        .iter()
        .filter(|x| x.kind == FindingKind::AccessDeniedSpike)
        .collect();
    assert_eq!(spikes.len(), 1, "{:?}", summary(&f));
    assert_eq!(
        spikes[0].principal.as_deref(),
        Some("arn:aws:iam::111122223333:role/JuniorEngineer")
    );
    assert_eq!(spikes[0].denied_calls, Some(5));
    assert_eq!(spikes[0].sessions.len(), 5, "{:?}", spikes[0].sessions);
    assert!(spikes[0]
        .sessions
        .iter()
        .all(|s| s.starts_with("arn:aws:sts::111122223333:assumed-role/JuniorEngineer/probe-")));
    assert!(
        spikes[0].reason.contains("from 5 sessions"),
        "{}",
        spikes[0].reason
    );
    assert_eq!(
        f.iter()
            .filter(|x| x.kind == FindingKind::AccessDenied)
            .count(),
        6
    );
}

/// ResumeSession is authorised on the session (`arn:aws:ssm:REGION:ACCOUNT:session/ID`) and
/// watched like StartSession; TerminateSession is counted.
#[test]
fn resume_session_is_judged_and_terminate_session_counted() {
    let (f, stats) = run(&[
        "cloudtrail-resumesession.json",
        "cloudtrail-terminatesession.json",
    ]);
    assert_eq!(
        summary(&f),
        vec![(
            FindingKind::Violation,
            Some("arn:aws:ssm:us-east-1:111122223333:session/alice-791b1431b0650fc9d".into()),
            Some(Verdict::ImplicitDeny)
        )]
    );
    assert_eq!(f[0].action.as_deref(), Some("ssm:ResumeSession"));
    assert!(
        f[0].reason
            .contains("resumed session alice-791b1431b0650fc9d"),
        "{}",
        f[0].reason
    );
    assert_eq!(stats.terminated_sessions, 1);
    assert_eq!(stats.activities, 2);
    let own = inline_intent(
        r#"{"Effect":"Allow","Action":["ssm:ResumeSession","ssm:TerminateSession"],"Resource":"arn:aws:ssm:*:*:session/${aws:userid}-*"}"#,
    );
    let mut v = event_json("cloudtrail-resumesession.json");
    // bob's own session, by his aws:userid
    v["detail"]["userIdentity"] =
        event_json("cloudtrail-sendcommand-vpc-endpoint.json")["detail"]["userIdentity"].clone();
    let id = format!(
        "{}-0123456789abcdef0",
        v["detail"]["userIdentity"]["principalId"].as_str().unwrap()
    );
    v["detail"]["requestParameters"]["sessionId"] = id.into();
    assert!(findings_for(&own, &v).is_empty());
}

/// Session Manager: a StartSession that names no document uses `SSM-SessionManagerRunShell`,
/// and with `ssm:SessionDocumentAccessCheck` in the policy the caller needs permission on it.
#[test]
fn start_session_checks_the_default_session_document_when_the_intent_enforces_it() {
    let v = event_json("cloudtrail-startsession-raw-record.json");
    let enforcing = inline_intent(
        r#"{"Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"BoolIfExists":{"ssm:SessionDocumentAccessCheck":"true"}}}"#,
    );
    let f = findings_for(&enforcing, &v);
    assert_eq!(
        summary(&f),
        vec![(
            FindingKind::Violation,
            Some("arn:aws:ssm:us-east-1:111122223333:document/SSM-SessionManagerRunShell".into()),
            Some(Verdict::ImplicitDeny)
        )]
    );
    assert!(f[0]
        .reason
        .contains("started a session with document SSM-SessionManagerRunShell"));
    // Without the key, the default document is not authorised separately.
    let plain = inline_intent(
        r#"{"Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ec2:*:*:instance/*"}"#,
    );
    assert!(findings_for(&plain, &v).is_empty());
}

/// An AccessDenied error names the resource IAM refused; the intended decision is made on that
/// resource, even when the request does not name it (the default session document of a
/// StartSession without `documentName`).
#[test]
fn access_denied_is_judged_on_the_resource_the_message_names() {
    let mut v = event_json("cloudtrail-startsession-denied.json");
    let doc = "arn:aws:ssm:us-east-1:111122223333:document/SSM-SessionManagerRunShell";
    v["detail"]["errorMessage"] = format!(
        "User: arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice is not authorized to perform: ssm:StartSession on resource: {doc} because no identity-based policy allows the ssm:StartSession action"
    )
    .into();
    let f = findings_for(&intent(), &v);
    let denied = f
        .iter()
        .find(|x| x.kind == FindingKind::AccessDenied)
        .unwrap();
    assert_eq!(denied.resource.as_deref(), Some(doc));
    assert_eq!(
        denied.intended,
        Some(Verdict::Allow),
        "juniors may use the session document: {}",
        denied.reason
    );
    assert!(denied.reason.contains("narrower than intended"));
    // Named among several instances: that one, with its tags (the quarantined one is denied by
    // the guard; the first target would have been allowed).
    let mut s = event_json("cloudtrail-sendcommand-access-denied.json");
    s["detail"]["requestParameters"]["instanceIds"] =
        serde_json::json!(["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60003"]);
    s["detail"]["errorMessage"] = s["detail"]["errorMessage"]
        .as_str()
        .unwrap()
        .replace("i-0a1b2c3d4e5f60002", "i-0a1b2c3d4e5f60003")
        .into();
    let f = findings_for(&intent(), &s);
    let denied = f
        .iter()
        .find(|x| x.kind == FindingKind::AccessDenied)
        .unwrap();
    assert_eq!(denied.resource.as_deref(), Some(A3));
    assert_eq!(denied.intended, Some(Verdict::ExplicitDeny));
}

fn example_intent_with(patch: impl FnOnce(&mut serde_json::Value)) -> Intent {
    let mut v: serde_json::Value =
        serde_json::from_str(&tagwatch_tests::read("examples/intent.json")).unwrap();
    patch(&mut v);
    tagwatch_tests::example_intent(&v.to_string())
}

/// AWS's Run Command setup guide recommends sending command output to CloudWatch Logs; the
/// intent may require it (`command_output`), top level or per entry. SendCommand's response
/// records the destinations (`cloudWatchOutputConfig.cloudWatchOutputEnabled`,
/// `outputS3BucketName`).
#[test]
fn commands_without_the_required_output_are_unlogged_commands() {
    let cloudwatch = example_intent_with(|v| v["command_output"] = "cloudwatch".into());
    let run_with = |intent: &Intent, name: &str| findings_for(intent, &event_json(name));
    // Output nowhere: one finding for the command (not per instance), medium, no resource.
    let f = run_with(&cloudwatch, "cloudtrail-sendcommand-instanceids.json");
    let unlogged: Vec<&Finding> = f
        .iter()
        .filter(|x| x.kind == FindingKind::UnloggedCommand)
        .collect();
    assert_eq!(unlogged.len(), 1, "{f:?}");
    let u = unlogged[0];
    assert_eq!(u.resource, None);
    assert_eq!(
        u.command_id.as_deref(),
        Some("62f746b4-84e6-4ceb-95bd-447e7184d454")
    );
    assert_eq!(
        serde_json::to_value(u.severity).unwrap(),
        serde_json::json!("medium")
    );
    assert!(u.reason.contains("CloudWatch Logs output"), "{}", u.reason);
    assert_eq!(serde_json::to_value(u).unwrap()["kind"], "unlogged_command");
    // CloudWatch output on: nothing.
    assert!(run_with(
        &cloudwatch,
        "cloudtrail-sendcommand-aws-support-document.json"
    )
    .is_empty());
    // S3 only: not what "cloudwatch" asks, but "any" or "s3" is met.
    let s3 = "cloudtrail-sendcommand-tagged-account-document.json";
    assert_eq!(
        run_with(&cloudwatch, s3)
            .iter()
            .filter(|x| x.kind == FindingKind::UnloggedCommand)
            .count(),
        1
    );
    let any = example_intent_with(|v| v["command_output"] = "any".into());
    assert!(run_with(&any, s3).is_empty());
    // An entry's own requirement overrides the top level: the leads (bob) need S3.
    let leads_s3 = example_intent_with(|v| {
        v["command_output"] = "cloudwatch".into();
        v["principals"][1]["command_output"] = "s3".into();
    });
    assert!(run_with(&leads_s3, s3).is_empty());
    assert_eq!(
        run_with(
            &leads_s3,
            "cloudtrail-sendcommand-aws-support-document.json"
        )
        .len(),
        1,
        "bob's CloudWatch-only run lacks S3"
    );
    // No requirement, no finding; denied calls have no output to check.
    let none = intent();
    assert!(run_with(&none, "cloudtrail-sendcommand-instanceids.json")
        .iter()
        .all(|x| x.kind != FindingKind::UnloggedCommand));
    assert!(
        run_with(&cloudwatch, "cloudtrail-sendcommand-access-denied.json")
            .iter()
            .all(|x| x.kind != FindingKind::UnloggedCommand)
    );
    // A bad value is an error naming the path.
    let bad = r#"{"principals":[{"name":"a","match":"arn:aws:iam::1:user/x","policies":[],"command_output":"syslog"}],"command_output":1}"#;
    let e = Intent::parse(bad, None, &mut |_: &str| Err("no".to_string())).unwrap_err();
    let paths: Vec<&str> = e
        .diagnostics
        .iter()
        .filter(|d| d.code == "invalid-command-output")
        .map(|d| d.path.as_str())
        .collect();
    assert_eq!(
        paths,
        ["$.command_output", "$.principals[0].command_output"]
    );
}

/// IAM "AWS global condition context keys", aws:ResourceAccount: the account that owns the
/// resource. An instance's ARN names it; an AWS-owned document's does not (unknown).
#[test]
fn resource_account_is_the_account_in_the_resource_arn() {
    let same_account = inline_intent(
        r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"StringEquals":{"aws:ResourceAccount":"111122223333"}}}"#,
    );
    let mut v = event_json("cloudtrail-sendcommand-vpc-endpoint.json");
    v["detail"]["requestParameters"]["instanceIds"] = serde_json::json!(["i-0a1b2c3d4e5f60001"]);
    let own_doc = findings_for(&same_account, &v);
    assert!(
        own_doc.is_empty(),
        "the account's document and instance: {own_doc:?}"
    );
    v["detail"]["requestParameters"]["documentName"] = "AWS-RunShellScript".into();
    let f = findings_for(&same_account, &v);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].kind, FindingKind::Unevaluated);
    assert_eq!(f[0].unknown_keys, ["aws:ResourceAccount"]);
}

/// Issue 13 §2: every finding carries what on-call asks first — a one-line summary right for
/// its kind, the caller's origin (source IP, user agent, endpoint, session name and issuer,
/// MFA), the instance's `Name` tag and a link to the run in the Systems Manager console.
#[test]
fn a_violation_carries_what_on_call_asks_first() {
    let (f, _) = run(&["cloudtrail-sendcommand-instanceids.json"]);
    let v = &f[0];
    assert_eq!(
        v.summary,
        "alice (JuniorEngineer) ran AWS-RunShellScript on i-0a1b2c3d4e5f60002 (prod-web-1) outside intent in 111122223333/us-east-1"
    );
    assert_eq!(v.source_ip.as_deref(), Some("198.51.100.23"));
    assert!(v
        .user_agent
        .as_deref()
        .is_some_and(|ua| ua.starts_with("aws-cli/2.22.35")));
    assert_eq!(v.vpc_endpoint, None);
    assert_eq!(v.session_name.as_deref(), Some("alice"));
    assert_eq!(
        v.session_issuer.as_deref(),
        Some("arn:aws:iam::111122223333:role/JuniorEngineer")
    );
    assert_eq!(v.mfa, Some(false));
    assert_eq!(v.instance_name.as_deref(), Some("prod-web-1"));
    assert_eq!(
        v.links.console.as_deref(),
        Some("https://us-east-1.console.aws.amazon.com/systems-manager/run-command/62f746b4-84e6-4ceb-95bd-447e7184d454/i-0a1b2c3d4e5f60002?region=us-east-1")
    );
    assert_eq!(v.cause, None, "only unevaluated findings have a cause");
    // The JSON keeps every field, null when unknown, so alert templates never miss a path.
    let json = serde_json::to_value(v).unwrap();
    for key in [
        "summary",
        "source_ip",
        "user_agent",
        "vpc_endpoint",
        "session_name",
        "session_issuer",
        "mfa",
        "instance_name",
        "links",
        "cause",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    assert!(json["vpc_endpoint"].is_null());
}

/// Issue 13 §2: `unevaluated` says why, and only the actionable causes reach a person
/// (severity medium, on the bus); the others only log (severity low).
#[test]
fn unevaluated_findings_name_their_cause_and_only_actionable_ones_alert() {
    use tagwatch_core::watch::finding::{FindingSeverity, UnevaluatedCause};
    use tagwatch_core::watch::outputs::goes_on_bus;
    // Tags that could not be read.
    let (f, _) = run(&["cloudtrail-sendcommand-unknown-instance.json"]);
    assert_eq!(f[0].cause, Some(UnevaluatedCause::UnknownTags));
    assert_eq!(f[0].severity, FindingSeverity::Medium);
    assert!(goes_on_bus(&f[0]));
    assert!(
        f[0].summary
            .starts_with("could not check: alice (JuniorEngineer) ran")
            && f[0]
                .summary
                .ends_with(": the resource's tags could not be read"),
        "{}",
        f[0].summary
    );
    // A run whose record never came.
    let (f, counts) = run(&["ssm-command-invocation-status-change-orphan.json"]);
    assert_eq!(f[0].cause, Some(UnevaluatedCause::MissingRecord));
    assert!(goes_on_bus(&f[0]));
    assert!(
        f[0].summary
            .starts_with("could not check: an unknown caller ran"),
        "{}",
        f[0].summary
    );
    assert_eq!(counts.unevaluated_by_cause.missing_record, 1);
    // A key no record tells: the intent needs work; logged, not alerted.
    let f = under_org_id_intent();
    assert!(!f.is_empty());
    for x in &f {
        assert_eq!(x.cause, Some(UnevaluatedCause::UnknownKey), "{x:?}");
        assert_eq!(x.severity, FindingSeverity::Low);
        assert!(!goes_on_bus(x));
        assert!(x.summary.contains("aws:PrincipalOrgID"), "{}", x.summary);
    }
    // Tags out of the deployment's reach (another account): out of scope, logged only.
    struct OwnAccountOnly(tagwatch_core::intent::inventory::Inventory);
    impl tagwatch_core::intent::inventory::TagLookup for OwnAccountOnly {
        fn tags(&self, id: &str) -> Option<&tagwatch_core::intent::inventory::TagSet> {
            self.0.tags(id)
        }
        fn reach(&self, account: &str, _region: &str) -> tagwatch_core::intent::inventory::Reach {
            if account == "999999999999" {
                tagwatch_core::intent::inventory::Reach::Readable
            } else {
                tagwatch_core::intent::inventory::Reach::OutOfScope
            }
        }
    }
    let intent = tagwatch_tests::intent();
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    let f = w.handle(
        &event("cloudtrail-sendcommand-unknown-instance.json"),
        &OwnAccountOnly(inventory()),
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].cause, Some(UnevaluatedCause::OutOfScope));
    assert_eq!(f[0].severity, FindingSeverity::Low);
    assert!(!goes_on_bus(&f[0]));
    assert_eq!(w.counts.unevaluated_by_cause.out_of_scope, 1);
}

/// Issue 13 §2: a spike names the denied calls and resources, and its summary never says
/// "null".
#[test]
fn a_spike_names_the_denied_calls_and_resources() {
    let v = event_json("cloudtrail-logfile-rotating-sessions.json");
    let intent = intent();
    let inv = inventory();
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    let mut f = Vec::new();
    for r in v["Records"].as_array().unwrap() {
        f.extend(w.handle(&normalize(r).unwrap(), &inv));
    }
    let spike = f
        .iter()
        .find(|x| x.kind == FindingKind::AccessDeniedSpike)
        .unwrap();
    // Each probe asked for AWS-RunShellScript on the production server; AWS named the
    // instance in its message.
    assert_eq!(
        spike.denied_requests,
        vec![tagwatch_core::watch::finding::DeniedRequest {
            action: "ssm:SendCommand".into(),
            resource: Some(A2.into()),
            calls: 5,
        }]
    );
    assert_eq!(
        spike.summary,
        "JuniorEngineer made 5 AccessDenied calls within 300 s in 111122223333/us-east-1: ssm:SendCommand on i-0a1b2c3d4e5f60002 x5"
    );
    for x in &f {
        assert!(!x.summary.is_empty(), "{x:?}");
        assert!(!x.summary.contains("null"), "{}", x.summary);
    }
}

/// Issue 13 §1: a suppressed finding is still reported (logged) with the reason, never sent to
/// the bus, counted as suppressed instead of by kind; a suppression that does not match leaves
/// the finding alone, and the watcher counts each suppression's matches.
#[test]
fn a_suppressed_violation_is_logged_with_its_reason_and_never_alerted() {
    use tagwatch_core::watch::outputs::{bus_entry, goes_on_bus};
    let intent = example_intent_with(|v| {
        v["suppressions"] = serde_json::json!([
            {"match": {"principal": "arn:aws:iam::111122223333:role/Junior*",
                       "resource_tags": {"Environment": "production*"}, "kind": "violation"},
             "reason": "juniors on prod during the migration (OPS-7)", "expires": "2026-12-31"},
            {"match": {"document": "Ops-*"}, "reason": "never matches here", "expires": "2026-12-31"}
        ]);
    });
    let inv = inventory();
    let mut w = Watcher::new(&intent, MemoryStore::new(3_600_000));
    let f = w.handle(&event("cloudtrail-sendcommand-instanceids.json"), &inv);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].suppressed);
    assert_eq!(
        f[0].suppression_reason.as_deref(),
        Some("juniors on prod during the migration (OPS-7)")
    );
    assert_eq!(f[0].kind, FindingKind::Violation, "the finding is whole");
    assert!(!goes_on_bus(&f[0]));
    assert_eq!(bus_entry(&f[0]).unwrap(), None);
    assert_eq!(w.counts.violations, 0, "not counted in the paging metric");
    assert_eq!(w.counts.suppressed, 1);
    assert_eq!(w.suppression_hits(), [1, 0]);
    // The event time is past the end of 2026-12-31: the suppression no longer applies.
    let later = {
        let mut v = event_json("cloudtrail-sendcommand-instanceids.json");
        v["detail"]["eventTime"] = serde_json::json!("2027-01-01T00:00:00Z");
        v["detail"]["eventID"] = serde_json::json!("later-1");
        v["id"] = serde_json::json!("later-1");
        normalize(&v).unwrap()
    };
    let f = w.handle(&later, &inv);
    assert!(f.iter().all(|x| !x.suppressed), "{f:?}");
    assert_eq!(w.counts.violations, 1);
}

/// Issue 13 §4: the quarantine keeps an allow-listed skeleton, and what it keeps of an SSM
/// event is everything tagwatch decides on: every fixture (each record of a log file)
/// normalises from its skeleton to exactly what it normalised to before, so a kept event can
/// be sent back once the deployment is fixed.
#[test]
fn every_fixture_normalises_the_same_from_its_quarantine_skeleton() {
    use tagwatch_core::watch::skeleton::skeleton;
    let mut checked = 0;
    let mut names: Vec<_> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let v = event_json(&name);
        let records: Vec<serde_json::Value> = match v.get("Records").and_then(|r| r.as_array()) {
            Some(rs) => rs.clone(),
            None => vec![v],
        };
        for r in records {
            let kept = skeleton(&r);
            assert_eq!(
                normalize(&kept).ok(),
                normalize(&r).ok(),
                "{name}: the skeleton normalises differently; kept: {kept}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} events checked");
}
