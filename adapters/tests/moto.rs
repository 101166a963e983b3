//! The adapters against moto's server over real HTTP, through the real Rust SDK. Each test
//! starts its own moto server on a free loopback port (`tagwatch_tests::moto`) and stops it
//! when done.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use tagwatch_aws::bus::FindingsBus;
use tagwatch_aws::dynamo::DynamoCorrelation;
use tagwatch_aws::logs::FindingsLogStream;
use tagwatch_aws::tags::LiveTags;
use tagwatch_core::intent::inventory::{Inventory, TagLookup};
use tagwatch_core::watch::correlation::{max_calls, DenialNote};
use tagwatch_core::watch::event::Event;
use tagwatch_core::watch::finding::{Finding, FindingKind};
use tagwatch_core::watch::outputs::{bus_entry, log_message};
use tagwatch_core::watch::tags::TagQuery;
use tagwatch_core::watch::watcher::{denial_caller, denial_note, Watcher};
use tagwatch_core::Intent;
use tagwatch_tests::{event, free_port, intent, inventory, moto, read};

async fn config(url: &str) -> SdkConfig {
    tagwatch_aws::testing::config(url).await
}

async fn create_table(conf: &SdkConfig, table: &str) {
    tagwatch_aws::testing::create_table(conf, table)
        .await
        .unwrap();
}

/// One Lambda-style invocation: a denied call's own item, gather, decide, stage, persist
/// (lost findings leave the outbox), then take from the outbox what the log sink has not had
/// yet.
async fn invoke(
    store: &DynamoCorrelation,
    intent: &Intent,
    inv: &Inventory,
    e: &Event,
) -> Vec<Finding> {
    let event_id = e.meta().expect("not a skipped event").event_id.clone();
    let mut journal = store.gather(e).await.unwrap();
    if let Event::Activity(a) = e {
        if matches!(
            a.outcome,
            tagwatch_core::watch::event::CallOutcome::Denied { .. }
        ) {
            let caller = denial_caller(a);
            store
                .record_denial(
                    &caller,
                    &a.meta.event_id,
                    a.meta.event_epoch_ms,
                    &denial_note(a),
                )
                .await
                .unwrap();
            let window = store
                .denials(
                    &caller,
                    &a.meta.event_id,
                    a.meta.event_epoch_ms,
                    intent.spike_window_ms(),
                    max_calls(intent.spike.threshold),
                )
                .await
                .unwrap();
            journal.preload_denials(&caller, window);
        }
    }
    // As the pipeline does: persist, stage what this event won.
    let mut w = Watcher::new(intent, journal);
    let findings = w.handle(e, inv);
    let persisted = store
        .persist(&event_id, w.into_store().take_changes())
        .await
        .unwrap();
    let lost = persisted.lost_finding_ids();
    let won: Vec<Finding> = findings
        .into_iter()
        .filter(|f| !lost.contains(&f.finding_id))
        .collect();
    store.stage(&event_id, &won, NOW).await.unwrap();
    let staged = store.staged(&event_id).await.unwrap();
    let ids: Vec<String> = staged.iter().map(|f| f.finding_id.clone()).collect();
    let marks = store.delivered(&ids, &["log"]).await.unwrap();
    let new: Vec<Finding> = staged
        .into_iter()
        .filter(|f| !marks.contains_key(&f.finding_id))
        .collect();
    let new_ids: Vec<String> = new.iter().map(|f| f.finding_id.clone()).collect();
    store.mark_delivered(&new_ids, "log", NOW).await.unwrap();
    new
}

/// 2026-11-20T09:00:00Z, the fixtures' day.
const NOW: i64 = 1_795_165_200_000;

#[tokio::test]
async fn dynamodb_correlation_in_either_order_and_without_duplicates() {
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    let (intent, inv) = (intent(), inventory());

    // The invocation status arrives before the tag-Targets SendCommand record: parked.
    let status = event("ssm-command-invocation-status-change-inprogress.json");
    assert!(invoke(&store, &intent, &inv, &status).await.is_empty());
    // A second status for another instance of the same command, also parked.
    let command_status = event("ssm-command-status-change-success.json");
    assert!(invoke(&store, &intent, &inv, &command_status)
        .await
        .is_empty());

    // The CloudTrail record arrives: the parked invocations are finished; the quarantined
    // instance is a violation, the production one is within intent for leads.
    let record = event("cloudtrail-sendcommand-tag-targets.json");
    let found = invoke(&store, &intent, &inv, &record).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, FindingKind::Violation);
    assert!(found[0]
        .resource
        .as_deref()
        .unwrap()
        .ends_with("i-0a1b2c3d4e5f60003"));

    // Redeliveries and later status changes produce nothing new.
    assert!(invoke(&store, &intent, &inv, &record).await.is_empty());
    let success = event("ssm-command-invocation-status-change-success.json");
    assert!(invoke(&store, &intent, &inv, &success).await.is_empty());
    assert!(invoke(&store, &intent, &inv, &command_status)
        .await
        .is_empty());

    // A plain violation, and the same event again.
    let direct = event("cloudtrail-sendcommand-instanceids.json");
    assert_eq!(invoke(&store, &intent, &inv, &direct).await.len(), 1);
    assert!(invoke(&store, &intent, &inv, &direct).await.is_empty());
}

/// Issue 10 §5: origin setups outlive the event that wrote them (associations run for years),
/// an older definition never replaces a newer one, and the runs find the principal behind them
/// in the table.
#[tokio::test]
async fn origins_are_stored_and_found_by_their_runs() {
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    let (intent, inv) = (intent(), inventory());
    let alice = "arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice";

    assert!(invoke(
        &store,
        &intent,
        &inv,
        &event("cloudtrail-createassociation.json")
    )
    .await
    .is_empty());
    // An older UpdateAssociation by bob, delivered late: alice's newer definition stays.
    let mut older = tagwatch_tests::event_json("cloudtrail-createassociation.json");
    older["id"] = serde_json::json!("late-update");
    older["detail"]["eventID"] = serde_json::json!("late-update");
    older["detail"]["eventName"] = serde_json::json!("UpdateAssociation");
    older["detail"]["eventTime"] = serde_json::json!("2026-11-20T11:00:00Z");
    older["detail"]["userIdentity"] =
        tagwatch_tests::event_json("cloudtrail-registertaskwithmaintenancewindow.json")["detail"]
            ["userIdentity"]
            .clone();
    let older = tagwatch_core::watch::event::normalize(&older).unwrap();
    assert!(invoke(&store, &intent, &inv, &older).await.is_empty());

    let found = invoke(&store, &intent, &inv, &event("ssm-association-run.json")).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].kind, FindingKind::Violation);
    assert_eq!(found[0].principal.as_deref(), Some(alice));
    let runs = store
        .association_runs("i-0a1b2c3d4e5f60002", "AWS-RunShellScript")
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].association_id,
        "8dfe3659-4309-493a-8755-0a1b2c3d0001"
    );

    // A window task registered by a lead engineer: its run is his, and within intent.
    assert!(invoke(
        &store,
        &intent,
        &inv,
        &event("cloudtrail-registertaskwithmaintenancewindow.json")
    )
    .await
    .is_empty());
    assert!(invoke(
        &store,
        &intent,
        &inv,
        &event("cloudtrail-sendcommand-maintenance-window.json")
    )
    .await
    .is_empty());

    // An Automation execution started by alice: its step's SendCommand is hers.
    let log: serde_json::Value =
        serde_json::from_str(&read("events/cloudtrail-logfile-automation.json")).unwrap();
    let mut found = Vec::new();
    for r in log["Records"].as_array().unwrap() {
        let e = tagwatch_core::watch::event::normalize(r).unwrap();
        found.extend(invoke(&store, &intent, &inv, &e).await);
    }
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].principal.as_deref(), Some(alice));
    assert_eq!(
        found[0].origin.as_ref().map(|o| o.kind),
        Some(tagwatch_core::intent::origins::OriginKind::Automation)
    );
}

#[tokio::test]
async fn access_denied_windows_survive_between_invocations() {
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    let intent = tagwatch_tests::spike_intent(300);
    let inv = inventory();
    let mut spikes = 0;
    for i in 0..5 {
        let e = tagwatch_tests::denied_at(&format!("burst-{i}"), &format!("09:00:{:02}", i * 10));
        let found = invoke(&store, &intent, &inv, &e).await;
        spikes += found
            .iter()
            .filter(|f| f.kind == FindingKind::AccessDeniedSpike)
            .count();
    }
    assert_eq!(
        spikes, 1,
        "one spike per episode across separate invocations"
    );
}

fn finding(kind: FindingKind, id: &str) -> Finding {
    let intent = intent();
    let mut w = Watcher::new(
        &intent,
        tagwatch_core::watch::correlation::MemoryStore::new(0),
    );
    let mut f = w
        .handle(
            &event("cloudtrail-sendcommand-instanceids.json"),
            &inventory(),
        )
        .remove(0);
    f.kind = kind;
    f.finding_id = id.to_string();
    f
}

#[tokio::test]
async fn findings_reach_the_log_group() {
    let m = moto();
    let conf = config(&m.url).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    tagwatch_aws::testing::create_log_group(&conf, "/tagwatch/findings")
        .await
        .unwrap();
    let sink = FindingsLogStream::open(logs.clone(), "/tagwatch/findings", "cloudtrail-watcher")
        .await
        .unwrap();
    let sink_again =
        FindingsLogStream::open(logs.clone(), "/tagwatch/findings", "cloudtrail-watcher").await;
    assert!(sink_again.is_ok(), "an existing stream is fine");
    sink.put(
        &[
            log_message(&finding(FindingKind::Violation, "f-1")).unwrap(),
            log_message(&finding(FindingKind::AccessDenied, "f-2")).unwrap(),
        ],
        // CloudWatch Logs rejects events older than 14 days ("PutLogEvents": `tooOldLogEvent`),
        // and so does moto: a fixed date here fails two weeks after it was written.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    )
    .await
    .unwrap();
    let out = logs
        .get_log_events()
        .log_group_name("/tagwatch/findings")
        .log_stream_name("cloudtrail-watcher")
        .start_from_head(true)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = out
        .events()
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(e.message().unwrap()).unwrap()["finding_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["f-1", "f-2"]);
}

#[tokio::test]
async fn alerts_reach_an_sqs_queue_through_a_rule_on_the_bus() {
    let m = moto();
    let conf = config(&m.url).await;
    let eb = aws_sdk_eventbridge::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    eb.create_event_bus()
        .name("tagwatch-findings")
        .send()
        .await
        .unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name("oncall")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    eb.put_rule()
        .name("violations")
        .event_bus_name("tagwatch-findings")
        .event_pattern(r#"{"source": ["tagwatch"], "detail-type": ["Tagwatch Violation"]}"#)
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("violations")
        .event_bus_name("tagwatch-findings")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let bus = FindingsBus::new(eb, "tagwatch-findings");
    let entries: Vec<_> = [
        finding(FindingKind::Violation, "v-1"),
        finding(FindingKind::AccessDenied, "d-1"),
        finding(FindingKind::Unevaluated, "u-1"),
    ]
    .iter()
    .filter_map(|f| bus_entry(f).unwrap())
    .collect();
    assert_eq!(entries.len(), 2, "AccessDenied calls are not alerts");
    let answers = bus.publish(&entries).await.unwrap();
    assert_eq!(answers, [None, None], "each entry accepted");
    let msgs = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let bodies: Vec<serde_json::Value> = msgs
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(bodies.len(), 1, "only the rule's detail-type: {bodies:?}");
    assert_eq!(bodies[0]["source"], "tagwatch");
    assert_eq!(bodies[0]["detail"]["finding_id"], "v-1");
    assert_eq!(bodies[0]["detail"]["kind"], "violation");
}

/// Runs `n` instances in moto's EC2, tagged with `tag` when given; their ids.
/// Issue 13 §3: findings reach Security Hub through the real SDK as ASFF, one Security Hub
/// finding per finding id: importing the same finding again (a retry, a redrive) updates it,
/// with a later `UpdatedAt`, and never adds a second one.
#[tokio::test]
async fn findings_reach_security_hub_once_per_finding_id() {
    use tagwatch_aws::aws_sdk_securityhub;
    use tagwatch_core::watch::asff;
    let m = moto();
    let conf = config(&m.url).await;
    let client = aws_sdk_securityhub::Client::new(&conf);
    let hub = tagwatch_aws::hub::FindingsHubImport::new(client.clone());
    // moto's account.
    let home = asff::Home::parse(
        "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default",
    )
    .unwrap();
    let mut v = finding(FindingKind::Violation, "v-1");
    v.summary = v.summarize();
    let u = finding(FindingKind::Unevaluated, "u-1");
    let first_at = v.meta.event_epoch_ms + 60_000;
    let batch: Vec<asff::AsffFinding> = [&v, &u]
        .iter()
        .map(|f| asff::finding(f, &home, first_at).unwrap())
        .collect();
    assert_eq!(hub.import(&batch).await.unwrap(), [None, None]);
    // The violation again, a minute later: an update of the same finding.
    let again = asff::finding(&v, &home, first_at + 60_000).unwrap();
    assert_eq!(hub.import(&[again]).await.unwrap(), [None]);
    let found = client.get_findings().send().await.unwrap();
    let ours: Vec<&aws_sdk_securityhub::types::AwsSecurityFinding> = found
        .findings()
        .iter()
        .filter(|f| f.product_arn() == Some(home.product_arn.as_str()))
        .collect();
    let mut ids: Vec<&str> = ours.iter().filter_map(|f| f.id()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["u-1", "v-1"],
        "one Security Hub finding per finding id"
    );
    let sh = ours.iter().find(|f| f.id() == Some("v-1")).unwrap();
    assert_eq!(sh.aws_account_id(), Some("123456789012"));
    assert_eq!(sh.generator_id(), Some("tagwatch/violation"));
    assert_eq!(sh.title(), Some(v.summary.as_str()));
    assert_eq!(sh.description(), Some(v.reason.as_str()));
    assert_eq!(
        sh.updated_at(),
        asff::timestamp(first_at + 60_000).as_deref(),
        "the recurrence updated it"
    );
    assert_eq!(
        sh.created_at(),
        asff::timestamp(v.meta.event_epoch_ms).as_deref()
    );
    assert_eq!(
        sh.severity().and_then(|s| s.label()),
        Some(&aws_sdk_securityhub::types::SeverityLabel::High)
    );
    let resources: Vec<(&str, &str)> = sh
        .resources()
        .iter()
        .map(|r| (r.r#type().unwrap_or(""), r.id().unwrap_or("")))
        .collect();
    assert!(
        resources.contains(&("AwsEc2Instance", v.resource.as_deref().unwrap())),
        "{resources:?}"
    );
    assert!(
        resources.contains(&("Other", v.document.as_deref().unwrap())),
        "{resources:?}"
    );
    assert!(
        resources
            .iter()
            .any(|(t, _)| *t == "AwsIamRole" || *t == "Other"),
        "the principal: {resources:?}"
    );
    assert_eq!(
        sh.product_fields()
            .and_then(|p| p.get("tagwatch/finding_id"))
            .map(String::as_str),
        Some("v-1")
    );
}

/// An EC2 client in another `account` (a session there) and `region`.
async fn ec2_in(conf: &SdkConfig, account: &str, region: &str) -> aws_sdk_ec2::Client {
    let member = tagwatch_aws::testing::config_in_account(conf, account)
        .await
        .unwrap();
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&member)
            .region(Region::new(region.to_string()))
            .build(),
    )
}

/// Issue 14 §1: a member account's instance tags are read through its reader role (STS
/// AssumeRole into the member account, clients for the event's region); the home account does
/// not see them. A member whose role STS refuses (`AccessDenied`) is answered as no access, and
/// remembered: a second lookup does not ask STS again.
#[tokio::test]
async fn member_account_tags_through_the_reader_role() {
    use tagwatch_aws::members::{MemberTags, MemberTagsFound};
    use tagwatch_tests::fault_proxy::{FaultPlan, FaultProxy};
    let m = moto();
    let conf = config(&m.url).await;
    let member = "222233334444";
    let ids = launch(
        &ec2_in(&conf, member, "eu-west-1").await,
        1,
        Some(("Env", "prod")),
    )
    .await;
    let query = |account: &str| TagQuery {
        account: account.to_string(),
        region: "eu-west-1".to_string(),
        targets: ids.clone(),
        documents: Vec::new(),
    };
    // At home (moto's default account) the instance does not exist.
    let home = LiveTags::new(
        aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&conf)
                .region(Region::new("eu-west-1"))
                .build(),
        ),
        Duration::from_secs(60),
    );
    assert_eq!(
        home.gather(&query(member)).await.unwrap().tags(&ids[0]),
        None
    );
    // The refusals come from a proxy in front of moto, which hands out any role.
    let proxy = FaultProxy::start(
        m.port,
        FaultPlan {
            refuse_roles_in: &["444455556666"],
            ..FaultPlan::clean()
        },
    );
    let members = MemberTags::new(
        &config(&proxy.url).await,
        "aws",
        "TagwatchReader",
        Some("tagwatch-test".to_string()),
        Duration::from_secs(60),
    );
    assert_eq!(
        members.role_arn(member),
        "arn:aws:iam::222233334444:role/TagwatchReader"
    );
    for _ in 0..2 {
        let MemberTagsFound::Tags(found) = members.gather(&query(member)).await.unwrap() else {
            panic!("the member's role was assumed");
        };
        assert_eq!(
            found
                .tags(&ids[0])
                .and_then(|t| t.get("Env"))
                .map(String::as_str),
            Some("prod")
        );
    }
    for _ in 0..2 {
        let found = members.gather(&query("444455556666")).await.unwrap();
        let MemberTagsFound::NoAccess(why) = found else {
            panic!("refused: {found:?}");
        };
        assert!(
            why.contains("arn:aws:iam::444455556666:role/TagwatchReader")
                && why.contains("AccessDenied"),
            "{why}"
        );
    }
    let refused = proxy
        .stats()
        .get(&("sts".to_string(), "refused".to_string()))
        .copied();
    assert_eq!(refused, Some(1), "a refusal is remembered");
}

async fn launch(ec2: &aws_sdk_ec2::Client, n: i32, tag: Option<(&str, &str)>) -> Vec<String> {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let mut req = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(n)
        .max_count(n);
    if let Some((k, v)) = tag {
        req = req.tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key(k).value(v).build())
                .build(),
        );
    }
    let run = req.send().await.unwrap();
    run.instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn ec2_tags_for_running_instances() {
    let m = moto();
    let conf = config(&m.url).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let ids = launch(&ec2, 2, Some(("Environment", "productionServer"))).await;
    let tags = LiveTags::new(ec2, Duration::from_secs(60));
    let mut wanted = TagQuery {
        targets: ids.clone(),
        ..TagQuery::default()
    };
    wanted.targets.push("mi-0123456789abcdef0".to_string());
    let inv = tags.gather(&wanted).await.unwrap();
    use tagwatch_core::intent::inventory::TagLookup;
    for id in &ids {
        assert_eq!(
            inv.tags(id).unwrap().get("Environment").map(String::as_str),
            Some("productionServer")
        );
    }
    assert!(
        inv.tags("mi-0123456789abcdef0").is_none(),
        "managed-node tags are unknown to EC2"
    );
    // Through SSM ListTagsForResource: a node SSM does not know (moto answers
    // InvalidResourceId, as AWS does for a deregistered node) stays unknown, not untagged.
    let with_ssm = LiveTags::new(aws_sdk_ec2::Client::new(&conf), Duration::from_secs(60))
        .with_ssm(aws_sdk_ssm::Client::new(&conf));
    let inv = with_ssm.gather(&wanted).await.unwrap();
    assert!(inv.tags("mi-0123456789abcdef0").is_none());
    assert_eq!(inv.len(), ids.len());
    // Served from the cache the second time (same answer, even with the server gone).
    drop(m);
    let again = tags
        .gather(&TagQuery {
            targets: ids.clone(),
            ..TagQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(again.len(), ids.len());
}

/// EC2 `DescribeTags` returns nothing both for an instance with no tags and for one that does
/// not exist; `DescribeInstances` tells them apart. SSM `ListTagsForResource` answers
/// `InvalidResourceId` for a document it does not know.
#[tokio::test]
async fn unknown_resources_are_not_untagged_ones() {
    let m = moto();
    let conf = config(&m.url).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let untagged = launch(&ec2, 1, None).await.remove(0);
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let content = r#"{"schemaVersion":"2.2","description":"collect logs","mainSteps":[{"action":"aws:runShellScript","name":"collect","inputs":{"runCommand":["tar czf /tmp/logs.tgz /var/log"]}}]}"#;
    let approved = aws_sdk_ssm::types::Tag::builder()
        .key("Approved")
        .value("true")
        .build()
        .unwrap();
    for (name, tags) in [
        ("Ops-CollectLogs", vec![approved]),
        ("Ops-Untagged", vec![]),
    ] {
        ssm.create_document()
            .name(name)
            .content(content)
            .document_type(aws_sdk_ssm::types::DocumentType::Command)
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
    }
    let tags = LiveTags::new(ec2, Duration::from_secs(60)).with_ssm(ssm);
    let query = TagQuery {
        targets: vec![untagged.clone(), "i-0a1b2c3d4e5f69999".to_string()],
        documents: vec![
            "Ops-CollectLogs".to_string(),
            "Ops-Untagged".to_string(),
            "Ops-NoSuchDocument".to_string(),
        ],
        ..TagQuery::default()
    };
    let inv = tags.gather(&query).await.unwrap();
    assert_eq!(
        inv.tags(&untagged).map(|t| t.len()),
        Some(0),
        "a running instance without tags is untagged"
    );
    assert!(
        inv.tags("i-0a1b2c3d4e5f69999").is_none(),
        "an instance EC2 does not know is unknown, not untagged"
    );
    assert_eq!(
        inv.tags("Ops-CollectLogs")
            .and_then(|t| t.get("Approved"))
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(inv.tags("Ops-Untagged").map(|t| t.len()), Some(0));
    assert!(inv.tags("Ops-NoSuchDocument").is_none());
    // The answers, "does not exist" included, are cached.
    drop(m);
    let again = tags.gather(&query).await.unwrap();
    assert_eq!(again.len(), 3);
    assert!(again.tags("i-0a1b2c3d4e5f69999").is_none());
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_error_naming_the_operation() {
    let port = free_port();
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    let err = store
        .gather(&event("cloudtrail-sendcommand-instanceids.json"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("DynamoDB GetItem failed (retryable"),
        "{err}"
    );
    assert!(err.is_retryable(), "a network failure is retryable");
}

/// Issue 9: one window item per caller made concurrent denials fail each other (a conditional
/// version check), so 7 of 20 parallel environments failed. Now each call is its own item,
/// and of two environments crossing the threshold together exactly one opens the episode.
#[tokio::test]
async fn concurrent_denials_never_conflict_and_open_one_episode() {
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    let intent = tagwatch_tests::spike_intent(300);
    let inv = inventory();
    let calls: Vec<Event> = (0..6)
        .map(|i| tagwatch_tests::denied_at(&format!("c-{i}"), &format!("09:00:{:02}", i * 5)))
        .collect();
    let caller = match &calls[0] {
        Event::Activity(a) => denial_caller(a),
        _ => panic!(),
    };
    // Every call is written first, as concurrent environments would; then each decides.
    for e in &calls {
        let Event::Activity(a) = e else { panic!() };
        store
            .record_denial(
                &caller,
                &a.meta.event_id,
                a.meta.event_epoch_ms,
                &denial_note(a),
            )
            .await
            .unwrap();
    }
    let mut decided = Vec::new();
    for e in &calls {
        let Event::Activity(a) = e else { panic!() };
        let window = store
            .denials(
                &caller,
                &a.meta.event_id,
                a.meta.event_epoch_ms,
                300_000,
                max_calls(3),
            )
            .await
            .unwrap();
        assert!(window.calls.len() >= 3, "every earlier call is visible");
        let mut journal = store.gather(e).await.unwrap();
        journal.preload_denials(&caller, window);
        let mut w = Watcher::new(&intent, journal);
        let spikes = w
            .handle(e, &inv)
            .into_iter()
            .filter(|f| f.kind == FindingKind::AccessDeniedSpike)
            .count();
        decided.push((
            a.meta.event_id.clone(),
            spikes,
            w.into_store().take_changes(),
        ));
    }
    // Each saw the threshold reached with no episode stored: they all try to open one.
    assert!(decided.iter().filter(|(_, s, _)| *s == 1).count() >= 2);
    let mut won = 0;
    for (id, spikes, changes) in decided {
        let p = store.persist(&id, changes).await.unwrap();
        won += spikes - p.lost_episodes.len();
    }
    assert_eq!(won, 1, "exactly one spike for the episode");
    // The winner's retry (before it staged, say) leaves its own episode out and decides the
    // same spike again; another event's retry does not.
    let opener = store
        .denials(&caller, "nobody", NOW, 300_000, max_calls(3))
        .await
        .unwrap()
        .episode
        .unwrap()
        .opened_by;
    let own = store
        .denials(&caller, &opener, NOW, 300_000, max_calls(3))
        .await
        .unwrap();
    assert!(own.episode.is_none(), "the opener's retry decides it again");
    // A redelivery of every call (their sightings written) decides nothing, and the episode
    // keeps its opener.
    let mut again = Vec::new();
    for e in &calls {
        again.extend(
            invoke(&store, &intent, &inv, e)
                .await
                .into_iter()
                .filter(|f| f.kind == FindingKind::AccessDeniedSpike)
                .map(|f| f.finding_id),
        );
    }
    assert!(again.is_empty(), "{again:?}");
    let stored = store
        .denials(&caller, "nobody", NOW, 300_000, max_calls(3))
        .await
        .unwrap();
    assert_eq!(stored.episode.unwrap().opened_by, opener);
}

/// Issue 9: a caller's bursts arriving out of order (an hour-old burst handled after a newer
/// one: CloudTrail delays, a redrive) are separate episodes that never replace each other, so
/// the rest of the newer burst does not page again.
#[tokio::test]
async fn out_of_order_bursts_are_separate_episodes_with_one_spike_each() {
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    let intent = tagwatch_tests::spike_intent(300);
    let inv = inventory();
    let burst = |hour: u32, from: u32, to: u32| -> Vec<Event> {
        (from..to)
            .map(|i| {
                tagwatch_tests::denied_at(&format!("h{hour}-{i}"), &format!("{hour:02}:00:{i:02}"))
            })
            .collect()
    };
    let mut spikes = Vec::new();
    for e in burst(11, 0, 4)
        .iter()
        .chain(&burst(9, 0, 6))
        .chain(&burst(11, 4, 10))
    {
        for f in invoke(&store, &intent, &inv, e).await {
            if f.kind == FindingKind::AccessDeniedSpike {
                spikes.push(f.meta.event_id.clone());
            }
        }
    }
    assert_eq!(
        spikes,
        ["h11-2", "h9-2"],
        "one spike per burst, each at its threshold (3)"
    );
    // A short burst a little more than one quiet window after the 09:00 burst (its buckets
    // overlap the old episode's marks, its calls do not): a new episode, paged.
    let mut late = Vec::new();
    for i in 0..3 {
        let e = tagwatch_tests::denied_at(&format!("h9b-{i}"), &format!("09:05:{:02}", 30 + i));
        for f in invoke(&store, &intent, &inv, &e).await {
            if f.kind == FindingKind::AccessDeniedSpike {
                late.push(f.meta.event_id.clone());
            }
        }
    }
    assert_eq!(late, ["h9b-2"]);
}

/// Issue 13 §1: the first finding of a group decided in a window owns it (count 1, one item
/// written conditionally); a retry of the owner owns it again; every other finding counts the
/// window's findings; windows and groups are separate; a count runs over several Query pages.
#[tokio::test]
async fn dedupe_windows_have_one_owner_and_count_the_rest() {
    use tagwatch_core::watch::dedupe::GroupEntry;
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    let entry = |group: &str, window: i64, id: &str, ms: i64| GroupEntry {
        group: group.into(),
        window,
        finding_id: id.into(),
        event_ms: ms,
    };
    let counts = store
        .dedupe(&[
            entry("g", 7, "b", NOW + 20),
            entry("g", 7, "a", NOW + 10),
            entry("g", 8, "c", NOW + 30),
            entry("h", 7, "d", NOW + 40),
        ])
        .await
        .unwrap();
    assert_eq!(counts.len(), 4);
    assert_eq!(
        (counts[2], counts[3]),
        (1, 1),
        "another window, another group: owners"
    );
    // Of two findings of one window decided together, exactly one owns it.
    let mut first_two = [counts[0], counts[1]];
    first_two.sort();
    assert_eq!(first_two, [1, 2], "{counts:?}");
    let owner = if counts[0] == 1 { "b" } else { "a" };
    let again = store.dedupe(&[entry("g", 7, owner, NOW)]).await.unwrap();
    assert_eq!(again, [1], "a retry of the owner owns the window again");
    let later = store.dedupe(&[entry("g", 7, "e", NOW + 50)]).await.unwrap();
    assert_eq!(later, [3], "the window has seen a, b and e");
    // Enough findings for several pages of a COUNT query.
    let storm: Vec<GroupEntry> = (0..300i64)
        .map(|i| entry("storm", 1, &format!("x{i}"), NOW + i))
        .collect();
    let counts = store.dedupe(&storm).await.unwrap();
    assert_eq!(counts.iter().filter(|c| **c == 1).count(), 1, "one owner");
    assert_eq!(
        store.dedupe(&[entry("storm", 1, "z", NOW)]).await.unwrap(),
        [301]
    );
}

/// Issue 13 §4: the sources the functions have heard from, each with its newest event time; an
/// older event never moves it back, and an environment writes a source at most once a minute
/// of event time.
#[tokio::test]
async fn sources_keep_their_newest_event_time() {
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let one = DynamoCorrelation::new(client.clone(), "tagwatch", 86_400);
    let other = DynamoCorrelation::new(client, "tagwatch", 86_400);
    one.saw_source("111122223333", "us-east-1", "aws", NOW)
        .await
        .unwrap();
    // Within a minute of what this environment wrote: not written again.
    one.saw_source("111122223333", "us-east-1", "aws", NOW + 30_000)
        .await
        .unwrap();
    // Another environment with an older event: never moves the time back.
    other
        .saw_source("111122223333", "us-east-1", "aws", NOW - 3_600_000)
        .await
        .unwrap();
    other
        .saw_source("444455556666", "eu-west-1", "aws", NOW + 5)
        .await
        .unwrap();
    let mut seen = one.sources().await.unwrap();
    seen.sort_by(|a, b| a.account.cmp(&b.account));
    let got: Vec<(&str, &str, &str, i64)> = seen
        .iter()
        .map(|s| {
            (
                s.account.as_str(),
                s.region.as_str(),
                s.partition.as_str(),
                s.last_ms,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("111122223333", "us-east-1", "aws", NOW),
            ("444455556666", "eu-west-1", "aws", NOW + 5)
        ]
    );
    one.saw_source("111122223333", "us-east-1", "aws", NOW + 120_000)
        .await
        .unwrap();
    let moved = one.sources().await.unwrap();
    assert!(moved
        .iter()
        .any(|s| s.account == "111122223333" && s.last_ms == NOW + 120_000));
}

/// A storm writes many calls; the window read stays bounded (the nearest calls either side).
#[tokio::test]
async fn a_denial_window_read_is_bounded_by_the_threshold() {
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    for i in 0..60i64 {
        store
            .record_denial(
                "arn:x",
                &format!("e{i}"),
                NOW + i * 1000,
                &DenialNote::default(),
            )
            .await
            .unwrap();
    }
    // A redelivered call writes nothing new.
    store
        .record_denial("arn:x", "e5", NOW + 5000, &DenialNote::default())
        .await
        .unwrap();
    let w = store
        .denials("arn:x", "e30", NOW + 30_000, 300_000, 4)
        .await
        .unwrap();
    let times: Vec<i64> = w.calls.iter().map(|(t, _)| (t - NOW) / 1000).collect();
    assert_eq!(times, [27, 28, 29, 30, 31, 32, 33, 34]);
    assert!(w.episode.is_none());
    // Calls outside the window are not read.
    let w = store
        .denials("arn:x", "e30", NOW + 30_000, 2_000, 10)
        .await
        .unwrap();
    let times: Vec<i64> = w.calls.iter().map(|(t, _)| (t - NOW) / 1000).collect();
    assert_eq!(times, [29, 30, 31]);
}

#[tokio::test]
async fn the_sweep_index_finds_overdue_parked_invocations_once() {
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    let (intent, inv) = (intent(), inventory());
    let orphan = event("ssm-command-invocation-status-change-orphan.json");
    assert!(
        invoke(&store, &intent, &inv, &orphan).await.is_empty(),
        "parked"
    );
    let Event::Status(status) = &orphan else {
        panic!()
    };
    let pair = |d: &tagwatch_core::watch::journal::DueParked| match d {
        tagwatch_core::watch::journal::DueParked::Pair { parked, overdue } => {
            (parked.clone(), *overdue)
        }
        other => panic!("{other:?}"),
    };
    // Not overdue yet at its own time; overdue 15 minutes later.
    assert!(store
        .due_parked(status.meta.event_epoch_ms, 10)
        .await
        .unwrap()
        .is_empty());
    let due = store
        .due_parked(status.meta.event_epoch_ms + 15 * 60 * 1000 + 1000, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    let (parked, overdue) = pair(&due[0]);
    assert!(!overdue);
    assert_eq!(
        parked.status.targets.len(),
        1,
        "a parked item holds its own target only"
    );
    assert!(store.take_overdue(&parked).await.unwrap());
    assert!(
        store.take_overdue(&parked).await.unwrap(),
        "a retried take (its first answer lost) takes it again, never loses it"
    );
    // Taken but not reported yet (a sweep that stopped): still due, as overdue.
    let due = store.due_parked(i64::MAX / 2, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(pair(&due[0]).1);
    store
        .reported_overdue(std::slice::from_ref(&parked))
        .await
        .unwrap();
    assert!(
        store.due_parked(i64::MAX / 2, 10).await.unwrap().is_empty(),
        "reported once"
    );
    // The overdue marker is still gathered: a record that arrives later finishes the pair.
    let journal = store
        .gather_command(&parked.command_id, "another-event")
        .await
        .unwrap();
    assert_eq!(
        journal.parked_instances(),
        std::slice::from_ref(&parked.instance_id)
    );
}

#[tokio::test]
async fn an_unreadable_parked_item_is_set_aside_not_blocking_the_rest() {
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    let (intent, inv) = (intent(), inventory());
    invoke(
        &store,
        &intent,
        &inv,
        &event("ssm-command-invocation-status-change-orphan.json"),
    )
    .await;
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    use aws_sdk_dynamodb::types::AttributeValue as A;
    ddb.put_item()
        .table_name("tagwatch")
        .item("pk", A::S("command#broken".into()))
        .item("sk", A::S("parked#i-1".into()))
        .item("json", A::S("{not json".into()))
        .item("park_queue", A::S("parked".into()))
        .item("parked_at", A::N("1".into()))
        .send()
        .await
        .unwrap();
    let due = store.due_parked(i64::MAX / 2, 10).await.unwrap();
    assert_eq!(due.len(), 2, "{due:?}");
    assert!(matches!(
        &due[0],
        tagwatch_core::watch::journal::DueParked::Unreadable { key, .. } if key == "command#broken parked#i-1"
    ));
    assert!(matches!(
        &due[1],
        tagwatch_core::watch::journal::DueParked::Pair { .. }
    ));
    let due = store.due_parked(i64::MAX / 2, 10).await.unwrap();
    assert_eq!(due.len(), 1, "set aside: not read again");
}

#[tokio::test]
async fn the_outbox_leases_and_per_sink_delivery_marks() {
    let m = moto();
    let conf = config(&m.url).await;
    create_table(&conf, "tagwatch").await;
    let store = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&conf), "tagwatch", 86_400);
    let a = finding(FindingKind::Violation, "f-a");
    let b = finding(FindingKind::AccessDenied, "f-b");
    store
        .stage("e-1", &[a.clone(), b.clone()], NOW)
        .await
        .unwrap();
    // Staging again (a retry) changes nothing.
    store
        .stage("e-1", std::slice::from_ref(&a), NOW)
        .await
        .unwrap();
    let staged = store.staged("e-1").await.unwrap();
    assert_eq!(
        staged,
        vec![a.clone(), b.clone()],
        "round-trips the finding contract"
    );
    assert!(store.staged("e-2").await.unwrap().is_empty());
    let ids = vec!["f-a".to_string(), "f-b".to_string()];
    let sinks = ["log", "bus"];
    assert!(store.delivered(&ids, &sinks).await.unwrap().is_empty());
    // Leases: the first holder gets them; another waits until they run out; the same holder
    // (Lambda's retry keeps the request id) gets them back at once.
    use tagwatch_core::watch::journal::Lease::{Granted, HeldElsewhere};
    assert_eq!(
        store.lease(&ids, "req-1", NOW, 40_000).await.unwrap(),
        [Granted, Granted]
    );
    assert_eq!(
        store.lease(&ids, "req-2", NOW + 1, 40_000).await.unwrap(),
        [HeldElsewhere, HeldElsewhere]
    );
    assert_eq!(
        store
            .lease(&ids[..1], "req-1", NOW + 2, 40_000)
            .await
            .unwrap(),
        [Granted]
    );
    assert_eq!(
        store
            .lease(&ids, "req-2", NOW + 50_000, 40_000)
            .await
            .unwrap(),
        [Granted, Granted]
    );
    // A failed attempt gives its leases back: the next one need not wait; others' stay.
    store.release(&ids, "req-9").await.unwrap();
    assert_eq!(
        store
            .lease(&ids, "req-3", NOW + 50_001, 40_000)
            .await
            .unwrap(),
        [HeldElsewhere, HeldElsewhere]
    );
    store.release(&ids, "req-2").await.unwrap();
    assert_eq!(
        store
            .lease(&ids, "req-3", NOW + 50_002, 40_000)
            .await
            .unwrap(),
        [Granted, Granted]
    );
    store.mark_delivered(&ids, "log", NOW).await.unwrap();
    store.mark_delivered(&ids[..1], "bus", NOW).await.unwrap();
    store.mark_delivered(&ids[..1], "bus", NOW).await.unwrap();
    let marks = store.delivered(&ids, &sinks).await.unwrap();
    let mut a_sinks = marks["f-a"].clone();
    a_sinks.sort();
    assert_eq!(a_sinks, ["bus", "log"]);
    assert_eq!(marks["f-b"], ["log"]);
    // Batches beyond one call: 60 findings staged, marked and read back.
    let many: Vec<Finding> = (0..60)
        .map(|i| finding(FindingKind::Violation, &format!("m-{i:02}")))
        .collect();
    store.stage("e-3", &many, NOW).await.unwrap();
    assert_eq!(store.staged("e-3").await.unwrap().len(), 60);
    let many_ids: Vec<String> = many.iter().map(|f| f.finding_id.clone()).collect();
    store.mark_delivered(&many_ids, "log", NOW).await.unwrap();
    assert_eq!(store.delivered(&many_ids, &sinks).await.unwrap().len(), 60);
    // Every item carries the TTL attribute.
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let items = ddb.scan().table_name("tagwatch").send().await.unwrap();
    assert!(items.count() >= 3);
    for item in items.items() {
        assert!(item.contains_key("expires_at"), "{item:?}");
    }
}

#[tokio::test]
async fn malformed_events_are_kept_on_the_quarantine_queue() {
    let m = moto();
    let conf = config(&m.url).await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let url = sqs
        .create_queue()
        .queue_name("tagwatch-quarantine")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let q = tagwatch_aws::quarantine::QuarantineQueue::new(sqs.clone(), &url);
    let raw = read("events/malformed/sendcommand-missing-useridentity.json");
    q.keep(&raw, "missing $.detail.userIdentity", "cloudtrail-watcher")
        .await
        .unwrap();
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let msg = &got.messages()[0];
    assert_eq!(msg.body(), Some(raw.as_str()));
    let attrs = msg.message_attributes().unwrap();
    assert_eq!(
        attrs["reason"].string_value(),
        Some("missing $.detail.userIdentity")
    );
    assert_eq!(attrs["function"].string_value(), Some("cloudtrail-watcher"));
    // An oversized body is cut and says so, instead of failing forever.
    let big = "x".repeat(300 * 1024);
    q.keep(&big, "too big", "f").await.unwrap();
}

fn intent_clients(conf: &SdkConfig) -> tagwatch_aws::intent::IntentClients {
    // moto serves S3 on path-style addresses.
    let s3_conf = aws_sdk_s3::config::Builder::from(conf)
        .force_path_style(true)
        .build();
    tagwatch_aws::intent::IntentClients {
        ssm: aws_sdk_ssm::Client::new(conf),
        s3: aws_sdk_s3::Client::from_conf(s3_conf),
    }
}

#[tokio::test]
async fn intent_from_ssm_parameters_with_sibling_policy_files() {
    use tagwatch_aws::intent::{load_intent, IntentLoadError, IntentSource};
    let m = moto();
    let conf = config(&m.url).await;
    let clients = intent_clients(&conf);
    for (name, rel) in [
        ("/tagwatch/intent", "examples/intent.json"),
        (
            "/tagwatch/policies/junior-engineers.json",
            "examples/policies/junior-engineers.json",
        ),
        (
            "/tagwatch/policies/lead-engineers.json",
            "examples/policies/lead-engineers.json",
        ),
    ] {
        clients
            .ssm
            .put_parameter()
            .name(name)
            .value(read(rel))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    }
    let (intent, warnings) = load_intent(
        &IntentSource::parse("ssm:/tagwatch/intent").unwrap(),
        &clients,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(intent.principals.len(), 4);
    assert_eq!(
        intent.principals[0].policies[0].name,
        "ssm:/tagwatch/policies/junior-engineers.json"
    );
    assert!(warnings.is_empty(), "{warnings:?}");

    // An invalid intent fails the cold start with the path and the parameter named.
    clients
        .ssm
        .put_parameter()
        .name("/tagwatch/broken")
        .value(r#"{"principals":[{"name":"x","match":"arn:aws:iam::1:role/X","policies":[{"Version":"2012-10-17","Statement":{"Effect":"Alow","Action":"ssm:SendCommand","Resource":"*"}}]}]}"#)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let err = load_intent(
        &IntentSource::parse("ssm:/tagwatch/broken").unwrap(),
        &clients,
        NOW,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, IntentLoadError::Invalid(_)));
    let text = err.to_string();
    assert!(
        text.contains("ssm:/tagwatch/broken:1:") && text.contains("unknown-effect"),
        "{text}"
    );
    let missing = load_intent(
        &IntentSource::parse("ssm:/tagwatch/none").unwrap(),
        &clients,
        NOW,
    )
    .await
    .unwrap_err();
    assert!(
        missing.to_string().starts_with("SSM GetParameter failed"),
        "{missing}"
    );
}

#[tokio::test]
async fn intent_from_an_s3_object() {
    use tagwatch_aws::intent::{load_intent, IntentSource};
    let m = moto();
    let conf = config(&m.url).await;
    let clients = intent_clients(&conf);
    clients
        .s3
        .create_bucket()
        .bucket("tagwatch-config")
        .send()
        .await
        .unwrap();
    for (key, rel) in [
        ("prod/intent.json", "examples/intent.json"),
        (
            "prod/policies/junior-engineers.json",
            "examples/policies/junior-engineers.json",
        ),
        (
            "prod/policies/lead-engineers.json",
            "examples/policies/lead-engineers.json",
        ),
    ] {
        clients
            .s3
            .put_object()
            .bucket("tagwatch-config")
            .key(key)
            .body(read(rel).into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    let (intent, _) = load_intent(
        &IntentSource::parse("s3://tagwatch-config/prod/intent.json").unwrap(),
        &clients,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(intent.principals.len(), 4);
    assert_eq!(
        intent.principals[1].policies[0].name,
        "s3://tagwatch-config/prod/policies/lead-engineers.json"
    );
}
