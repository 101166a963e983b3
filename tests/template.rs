//! `template.yaml` and `templates/forwarder.yaml` read as data: least privilege (no `*` action
//! anywhere; only `ec2:DescribeTags`, `ec2:DescribeInstances` and X-Ray's trace writes on `Resource: "*"`,
//! besides a KMS key policy's `*`, which names the key itself; each function
//! with its own role and no managed policies), every function with a
//! bounded retry policy and a failure destination, every function's build pointing at a real
//! binary, the configuration the functions require, the EventBridge patterns as AWS emits
//! the events, and the alert routing of issue 13 (one page per incident: a bus rule per
//! detail-type and severity, high to on-call and medium to the ticket topic, no alarm on a
//! finding count, only the functions putting events on the bus, KMS on every topic and queue).
//! CloudFormation's short tags (`!Ref`, `!Sub`, `!If`, ...) load as plain scalars and
//! sequences, which is all these checks need.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use tagwatch_core::watch::finding::{FindingKind, UnevaluatedCause};
use tagwatch_core::watch::outputs::bus_detail_type;
use tagwatch_tests::{read, root};
use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path}: one document");
    docs.remove(0)
}

fn resources(t: &Yaml) -> Vec<(String, &Yaml)> {
    t["Resources"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v))
        .collect()
}

/// Every string under a node (through sequences and mappings).
fn strings(node: &Yaml, out: &mut Vec<String>) {
    match node {
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Yaml::Hash(h) => h.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The strings under a node, in order (a scalar gives one; `!If [C, A, B]` gives C, A and B).
fn strs(node: &Yaml) -> Vec<String> {
    let mut out = Vec::new();
    strings(node, &mut out);
    out
}

/// The same, sorted.
fn sorted(node: &Yaml) -> Vec<String> {
    let mut out = strs(node);
    out.sort();
    out
}

/// The resources of one type.
fn of_type<'a>(t: &'a Yaml, ty: &str) -> Vec<(String, &'a Yaml)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .collect()
}

/// Every metric an alarm watches: its own, or those of its metric math.
fn alarm_metrics(alarm: &Yaml) -> Vec<String> {
    let p = &alarm["Properties"];
    let mut names: Vec<String> = p["MetricName"]
        .as_str()
        .map(str::to_string)
        .into_iter()
        .collect();
    for m in p["Metrics"].as_vec().into_iter().flatten() {
        names.extend(
            m["MetricStat"]["Metric"]["MetricName"]
                .as_str()
                .map(str::to_string),
        );
        // A Metrics Insights query: `SELECT SUM(Metric) FROM ...`.
        if let Some(query) = m["Expression"].as_str().filter(|e| e.starts_with("SELECT")) {
            names.extend(
                query
                    .split_once('(')
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .map(|(metric, _)| metric.trim().to_string()),
            );
        }
    }
    names
}

/// The `detail-type`s the core puts on the findings bus.
fn bus_detail_types() -> Vec<&'static str> {
    FindingKind::ALL
        .into_iter()
        .filter_map(bus_detail_type)
        .collect()
}

/// The rules on the findings bus, by logical name.
fn findings_bus_rules(t: &Yaml) -> Vec<(String, &Yaml)> {
    of_type(t, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, r)| strs(&r["Properties"]["EventBusName"]) == ["FindingsBus.Name"])
        .collect()
}

/// Every IAM-style statement (a mapping with `Effect` and `Action`) anywhere in the template,
/// with where it is.
fn statements<'a>(node: &'a Yaml, at: &str, out: &mut Vec<(String, &'a Yaml)>) {
    match node {
        Yaml::Hash(h) => {
            if !node["Effect"].is_badvalue() && !node["Action"].is_badvalue() {
                out.push((at.to_string(), node));
            }
            for (k, v) in h {
                statements(v, &format!("{at}.{}", k.as_str().unwrap_or("?")), out);
            }
        }
        Yaml::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                statements(v, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn no_wildcard_actions_and_wildcard_resources_only_for_describe_tags() {
    for path in [
        "template.yaml",
        "templates/forwarder.yaml",
        "templates/backfill.yaml",
    ] {
        let t = load(path);
        let mut found = Vec::new();
        statements(&t, "$", &mut found);
        assert!(
            found.len() >= 2,
            "{path}: statements found: {}",
            found.len()
        );
        // In a key policy, `Resource: "*"` is the key the policy is on.
        let key_policies: Vec<String> = of_type(&t, "AWS::KMS::Key")
            .into_iter()
            .map(|(name, _)| format!("$.Resources.{name}.Properties.KeyPolicy."))
            .collect();
        for (at, st) in found {
            // A Deny narrows (the results bucket refuses every call without TLS).
            if st["Effect"].as_str() == Some("Deny") {
                continue;
            }
            let mut actions = Vec::new();
            strings(&st["Action"], &mut actions);
            for a in &actions {
                assert!(!a.contains('*'), "{path} {at}: wildcard action `{a}`");
            }
            let mut res = Vec::new();
            strings(&st["Resource"], &mut res);
            let in_key_policy = key_policies.iter().any(|k| at.starts_with(k.as_str()));
            if res.iter().any(|r| r == "*") && !in_key_policy {
                // EC2 DescribeTags / DescribeInstances and X-Ray's writes have no resource-level
                // permissions.
                let allowed = [
                    "ec2:DescribeTags",
                    "ec2:DescribeInstances",
                    // The member's reader role (forwarder): no resource-level permissions.
                    "ssm:DescribeInstanceInformation",
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                ];
                assert!(
                    actions.iter().all(|a| allowed.contains(&a.as_str())),
                    "{path} {at}: {actions:?} on Resource \"*\""
                );
            }
        }
    }
}

#[test]
fn every_function_retries_a_bounded_number_of_times_into_a_failure_queue() {
    let t = load("template.yaml");
    let functions: Vec<(String, &Yaml)> = resources(&t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .collect();
    assert_eq!(functions.len(), 3);
    for (name, f) in functions {
        let p = &f["Properties"];
        let invoke = &p["EventInvokeConfig"];
        let retries = invoke["MaximumRetryAttempts"].as_i64();
        assert!(
            matches!(retries, Some(0..=2)),
            "{name}: retries {retries:?}"
        );
        assert!(
            invoke["MaximumEventAgeInSeconds"].as_i64().is_some(),
            "{name}"
        );
        let on_failure = &invoke["DestinationConfig"]["OnFailure"];
        assert_eq!(on_failure["Type"].as_str(), Some("SQS"), "{name}");
        let mut dest = Vec::new();
        strings(&on_failure["Destination"], &mut dest);
        assert!(
            dest.iter().any(|d| d.starts_with("FailureQueue")),
            "{name}: {dest:?}"
        );
        // Its own role, with no managed policies (SAM would attach ones with `*` resources).
        let mut role = Vec::new();
        strings(&p["Role"], &mut role);
        let role_name = role
            .first()
            .and_then(|r| r.strip_suffix(".Arn"))
            .unwrap_or_else(|| panic!("{name}: no explicit role"));
        assert!(
            p["Policies"].is_badvalue(),
            "{name}: SAM policies instead of its role"
        );
        let role = &t["Resources"][role_name];
        assert_eq!(role["Type"].as_str(), Some("AWS::IAM::Role"), "{name}");
        assert!(
            role["Properties"]["ManagedPolicyArns"].is_badvalue(),
            "{name}"
        );
        // Its failure queue keeps events for 14 days.
        let queue = &t["Resources"]["FailureQueue"]["Properties"];
        assert_eq!(queue["MessageRetentionPeriod"].as_i64(), Some(1_209_600));
        // Built by cargo-lambda from a crate whose binary is the one named.
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda")
        );
        let code = p["CodeUri"].as_str().unwrap();
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let manifest = std::fs::read_to_string(root().join(code).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{name}: {code}/Cargo.toml: {e}"));
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{name}: {code} has no binary {binary}"
        );
        // An explicit log group with retention.
        let mut group = Vec::new();
        strings(&p["LoggingConfig"]["LogGroup"], &mut group);
        let group = group.first().unwrap();
        assert!(
            t["Resources"][group.as_str()]["Properties"]["RetentionInDays"]
                .as_str()
                .is_some(),
            "{name}: log group {group} has a retention parameter"
        );
    }
}

#[test]
fn the_functions_get_every_required_setting() {
    let t = load("template.yaml");
    let vars = &t["Globals"]["Function"]["Environment"]["Variables"];
    for required in [
        "TAGWATCH_INTENT",
        "TAGWATCH_TABLE",
        "TAGWATCH_FINDINGS_LOG_GROUP",
        "TAGWATCH_FINDINGS_BUS",
        "TAGWATCH_QUARANTINE_QUEUE_URL",
        "TAGWATCH_ACCOUNT_ID",
    ] {
        assert!(!vars[required].is_badvalue(), "{required} is not set");
    }
    let g = &t["Globals"]["Function"];
    assert_eq!(g["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(g["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(g["Tracing"].as_str(), Some("Active"));
    assert_eq!(g["LoggingConfig"]["LogFormat"].as_str(), Some("JSON"));
    // The table the functions expect: pk/sk strings, TTL on expires_at, PITR.
    let table = &t["Resources"]["StateTable"]["Properties"];
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some("expires_at")
    );
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    let keys: Vec<(&str, &str)> = table["KeySchema"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap(),
                k["KeyType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);
    // The sweep's sparse index, as `tagwatch_aws::dynamo::PARK_INDEX` queries it.
    let index = &table["GlobalSecondaryIndexes"][0];
    assert_eq!(
        index["IndexName"].as_str(),
        Some(tagwatch_aws::dynamo::PARK_INDEX)
    );
    let index_keys: Vec<&str> = index["KeySchema"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|k| k["AttributeName"].as_str().unwrap())
        .collect();
    assert_eq!(index_keys, ["park_queue", "parked_at"]);
    // State outlives every way back to it: the failure queue's retention plus the longest
    // command lifetime (SendCommand TimeoutSeconds up to 30 days; executions up to 48 h).
    let ttl = vars["TAGWATCH_STATE_TTL_SECONDS"].as_i64().unwrap();
    let retention = t["Resources"]["FailureQueue"]["Properties"]["MessageRetentionPeriod"]
        .as_i64()
        .unwrap();
    assert!(ttl >= retention + 30 * 86_400 + 2 * 86_400, "{ttl}");
    let lease = vars["TAGWATCH_DELIVERY_LEASE_SECONDS"].as_i64().unwrap();
    let timeout = g["Timeout"].as_i64().unwrap();
    assert!(lease > timeout, "a live holder is never overtaken");
    // Permanent errors have their own alarm.
    assert_eq!(
        t["Resources"]["PermanentErrorsAlarm"]["Properties"]["MetricName"].as_str(),
        Some("PermanentErrors")
    );
}

#[test]
fn event_patterns_match_what_aws_emits() {
    let t = load("template.yaml");
    let ct = &t["Resources"]["CloudTrailWatcher"]["Properties"]["Events"]["SsmApiCalls"]
        ["Properties"]["Pattern"];
    let list = |y: &Yaml| -> Vec<String> {
        y.as_vec()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list(&ct["source"]), ["aws.ssm"]);
    assert_eq!(list(&ct["detail-type"]), ["AWS API Call via CloudTrail"]);
    assert_eq!(list(&ct["detail"]["eventSource"]), ["ssm.amazonaws.com"]);
    // Every call the watcher knows (tagwatch_core::watch::event::Action::EVENT_NAMES, and the calls
    // that set up runs Systems Manager starts itself), no other.
    let names: Vec<&str> = tagwatch_core::watch::event::Action::EVENT_NAMES
        .into_iter()
        .chain(tagwatch_core::watch::event::SETUP_EVENT_NAMES)
        .collect();
    assert_eq!(list(&ct["detail"]["eventName"]), names);
    // No errorCode filter: denied calls must reach the watcher too.
    assert!(ct["detail"]["errorCode"].is_badvalue());
    let st = &t["Resources"]["StatusWatcher"]["Properties"]["Events"]["StatusChanges"]
        ["Properties"]["Pattern"];
    assert_eq!(
        list(&st["detail-type"]),
        [
            "EC2 Command Status-change Notification",
            "EC2 Command Invocation Status-change Notification",
            tagwatch_core::watch::event::ASSOCIATION_RUN_DETAIL_TYPE,
        ]
    );
    // The fixtures carry exactly these values.
    for (file, detail_type) in [
        (
            "events/cloudtrail-sendcommand-instanceids.json",
            "AWS API Call via CloudTrail",
        ),
        (
            "events/ssm-command-invocation-status-change-success.json",
            "EC2 Command Invocation Status-change Notification",
        ),
        (
            "events/ssm-command-status-change-success.json",
            "EC2 Command Status-change Notification",
        ),
    ] {
        let e: serde_json::Value = serde_json::from_str(&read(file)).unwrap();
        assert_eq!(e["detail-type"], detail_type);
        assert_eq!(e["source"], "aws.ssm");
    }
}

/// Issue 13, one page per incident: the findings bus routes each finding once, so an alarm on a
/// finding count (Violations, AccessDeniedSpikes, UnloggedCommands) would page a second time
/// for the same finding. Alarms watch rates (to the ticket topic) and health (to on-call).
#[test]
fn no_alarm_pages_for_a_finding_the_bus_already_routes() {
    let t = load("template.yaml");
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    assert!(!alarms.is_empty());
    for (name, alarm) in &alarms {
        let metrics = alarm_metrics(alarm);
        assert!(!metrics.is_empty(), "{name}: watches no metric");
        for per_finding in ["Violations", "AccessDeniedSpikes", "UnloggedCommands"] {
            assert!(
                !metrics.iter().any(|m| m == per_finding)
                    || strs(&alarm["Properties"]["AlarmActions"]).is_empty(),
                "{name} acts on {per_finding}, which the bus rules route already"
            );
        }
    }
    for (name, topic) in [
        ("AccessDeniedAlarm", "TicketTopic"),
        ("UnevaluatedAlarm", "TicketTopic"),
        ("FunctionErrorsAlarm", "OnCallTopic"),
        ("PermanentErrorsAlarm", "OnCallTopic"),
        ("FailureQueueAlarm", "OnCallTopic"),
        ("QuarantineQueueAlarm", "OnCallTopic"),
    ] {
        assert_eq!(
            strs(&t["Resources"][name]["Properties"]["AlarmActions"]),
            [topic],
            "{name}"
        );
    }
}

/// A page EventBridge cannot deliver is not silent: an alarm sums the failed invocations of
/// every rule on the findings bus (custom-bus rule metrics carry EventBusName and RuleName,
/// "Monitoring Amazon EventBridge") and tells both topics.
#[test]
fn a_page_the_bus_cannot_deliver_raises_an_alarm() {
    let t = load("template.yaml");
    let alarm = &t["Resources"]["AlertDeliveryAlarm"];
    assert_eq!(alarm_metrics(alarm), ["FailedInvocations"]);
    let query = alarm["Properties"]["Metrics"][0]["Expression"]
        .as_str()
        .unwrap();
    assert!(
        query.contains(r#"FROM SCHEMA("AWS/Events", EventBusName, RuleName)"#)
            && query.contains("WHERE EventBusName = '${FindingsBus.Name}'"),
        "{query}"
    );
    assert_eq!(
        strs(&alarm["Properties"]["AlarmActions"]),
        ["OnCallTopic", "TicketTopic"]
    );
}

/// Issue 13, severity decides routing: every detail-type the core puts on the bus has one rule
/// per severity (high to the on-call topic, medium to the ticket topic), each turning the
/// finding into a message led by its summary and carrying its console link; no other rule
/// listens on the bus, and each topic lets exactly the rules that target it publish.
#[test]
fn every_bus_detail_type_has_a_rule_per_severity_to_its_topic() {
    let t = load("template.yaml");
    let on_bus = findings_bus_rules(&t);
    let detail_types = bus_detail_types();
    assert_eq!(detail_types.len(), 5, "{detail_types:?}");
    let mut routed = Vec::new();
    for detail_type in detail_types {
        for (severity, topic) in [("high", "OnCallTopic"), ("medium", "TicketTopic")] {
            let matching: Vec<&(String, &Yaml)> = on_bus
                .iter()
                .filter(|(_, r)| {
                    let pattern = &r["Properties"]["EventPattern"];
                    strs(&pattern["source"]) == ["tagwatch"]
                        && strs(&pattern["detail-type"]) == [detail_type]
                        && strs(&pattern["detail"]["severity"]) == [severity]
                })
                .collect();
            let [(name, rule)] = matching.as_slice() else {
                panic!("{detail_type}, {severity}: {} rules", matching.len());
            };
            let targets = rule["Properties"]["Targets"].as_vec().unwrap();
            assert_eq!(targets.len(), 1, "{name}");
            let target = &targets[0];
            assert_eq!(strs(&target["Arn"]), [topic], "{name}");
            let transformer = &target["InputTransformer"];
            let paths = transformer["InputPathsMap"].as_hash().unwrap();
            let template = transformer["InputTemplate"].as_str().unwrap();
            let variable = |path: &str| -> String {
                let found = paths.iter().find(|(_, v)| v.as_str() == Some(path));
                let var = found.and_then(|(k, _)| k.as_str());
                format!(
                    "<{}>",
                    var.unwrap_or_else(|| panic!("{name}: no variable for {path}"))
                )
            };
            // The summary (never null) leads; the console link follows.
            let summary = variable("$.detail.summary");
            let first_line = template.lines().next().unwrap();
            assert!(first_line.contains(&summary), "{name}: {template}");
            // A silent source names no run: there is no console page to link to.
            if detail_type != "Tagwatch Silent Source" {
                assert!(
                    template.contains(&variable("$.detail.links.console")),
                    "{name}: {template}"
                );
            }
            // Every variable defined is used, and every one used is defined.
            for (k, _) in paths {
                assert!(
                    template.contains(&format!("<{}>", k.as_str().unwrap())),
                    "{name}: {k:?} unused"
                );
            }
            let used = template
                .split('<')
                .skip(1)
                .filter_map(|rest| rest.split_once('>'));
            for (var, _) in used {
                assert!(
                    paths.contains_key(&Yaml::String(var.to_string())),
                    "{name}: <{var}> undefined"
                );
            }
            routed.push(name.clone());
        }
    }
    let mut all: Vec<String> = on_bus.iter().map(|(n, _)| n.clone()).collect();
    all.sort();
    routed.sort();
    assert_eq!(
        all, routed,
        "a rule on the findings bus outside the routing would page twice"
    );
    for (policy, topic) in [
        ("OnCallTopicPolicy", "OnCallTopic"),
        ("TicketTopicPolicy", "TicketTopic"),
    ] {
        let doc = &t["Resources"][policy]["Properties"];
        assert_eq!(strs(&doc["Topics"]), [topic], "{policy}");
        let granted = doc["PolicyDocument"]["Statement"].as_vec().unwrap();
        let from = |service: &str| {
            granted
                .iter()
                .find(|s| strs(&s["Principal"]["Service"]) == [service])
                .unwrap_or_else(|| panic!("{policy}: {service} may not publish"))
        };
        let mut targeting: Vec<String> = on_bus
            .iter()
            .filter(|(_, r)| strs(&r["Properties"]["Targets"][0]["Arn"]) == [topic])
            .map(|(n, _)| format!("{n}.Arn"))
            .collect();
        targeting.sort();
        let rules = from("events.amazonaws.com");
        assert_eq!(
            sorted(&rules["Condition"]["ArnEquals"]["aws:SourceArn"]),
            targeting,
            "{policy}"
        );
        let alarms = from("cloudwatch.amazonaws.com");
        assert_eq!(
            strs(&alarms["Condition"]["StringEquals"]["aws:SourceAccount"]),
            ["AWS::AccountId"],
            "{policy}"
        );
    }
}

/// Issue 13: a finding on the bus pages someone, so only the functions may put one there.
/// Within an account an identity policy's Allow suffices unless a resource policy denies: the
/// bus policy denies `events:PutEvents` to every principal whose `aws:PrincipalArn` is not one
/// of the functions' roles (a negated operator, so a request without the key is denied too).
#[test]
fn only_the_functions_may_put_events_on_the_findings_bus() {
    let t = load("template.yaml");
    let mut roles: Vec<String> = of_type(&t, "AWS::Serverless::Function")
        .iter()
        .map(|(_, f)| strs(&f["Properties"]["Role"]).concat())
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            "CloudTrailWatcherRole.Arn",
            "StatusWatcherRole.Arn",
            "SweepRole.Arn"
        ]
    );
    // The bus's own `Policy`, or an EventBusPolicy naming the bus.
    let mut found = Vec::new();
    statements(
        &t["Resources"]["FindingsBus"]["Properties"]["Policy"],
        "FindingsBus",
        &mut found,
    );
    for (name, policy) in of_type(&t, "AWS::Events::EventBusPolicy") {
        if strs(&policy["Properties"]["EventBusName"]) == ["FindingsBus.Name"] {
            statements(&policy["Properties"]["Statement"], &name, &mut found);
        }
    }
    let (at, deny) = found
        .iter()
        .find(|(_, s)| {
            s["Effect"].as_str() == Some("Deny")
                && strs(&s["Action"]).iter().any(|a| a == "events:PutEvents")
        })
        .unwrap_or_else(|| panic!("no Deny of events:PutEvents on the findings bus: {found:?}"));
    assert_eq!(strs(&deny["Principal"]), ["*"], "{at}");
    assert_eq!(strs(&deny["Resource"]), ["FindingsBus.Arn"], "{at}");
    // One operator on one key: a second condition would narrow the Deny.
    let condition = deny["Condition"].as_hash().unwrap();
    let [(operator, keys)] = condition.iter().collect::<Vec<_>>()[..] else {
        panic!("{at}: {condition:?}");
    };
    assert!(
        matches!(operator.as_str(), Some("ArnNotEquals" | "StringNotEquals")),
        "{at}: {operator:?}"
    );
    let keys = keys.as_hash().unwrap();
    let [(key, values)] = keys.iter().collect::<Vec<_>>()[..] else {
        panic!("{at}: {keys:?}");
    };
    assert!(
        key.as_str()
            .is_some_and(|k| k.eq_ignore_ascii_case("aws:PrincipalArn")),
        "{at}: {key:?}"
    );
    assert_eq!(sorted(values), roles, "{at}");
}

/// Issue 13: every topic and queue is encrypted with KMS. The queues take `KmsKeyArn` or the AWS
/// managed `alias/aws/sqs`; the topics take `KmsKeyArn` or the stack's own key, never the AWS
/// managed `alias/aws/sns`, which EventBridge and CloudWatch alarms cannot publish through.
#[test]
fn every_topic_and_queue_is_encrypted_with_kms() {
    let t = load("template.yaml");
    let topics = of_type(&t, "AWS::SNS::Topic");
    let queues = of_type(&t, "AWS::SQS::Queue");
    assert_eq!((topics.len(), queues.len()), (2, 2));
    for (name, r) in topics.iter().chain(&queues) {
        let key = strs(&r["Properties"]["KmsMasterKeyId"]);
        assert!(key.iter().any(|k| k == "KmsKeyArn"), "{name}: {key:?}");
        assert!(
            r["Properties"]["SqsManagedSseEnabled"].is_badvalue(),
            "{name}: SQS-managed encryption instead of KMS"
        );
    }
    for (name, topic) in &topics {
        let key = strs(&topic["Properties"]["KmsMasterKeyId"]);
        assert!(
            key.iter().all(|k| !k.contains("alias/aws/")),
            "{name}: {key:?}"
        );
        assert!(key.iter().any(|k| k == "TopicsKey.Arn"), "{name}: {key:?}");
    }
    for (name, queue) in &queues {
        let key = strs(&queue["Properties"]["KmsMasterKeyId"]);
        assert_eq!(key, ["HasKmsKey", "KmsKeyArn", "alias/aws/sqs"], "{name}");
    }
    // The stack's key: made only without KmsKeyArn, rotated, usable by the two publishers.
    let key = &t["Resources"]["TopicsKey"];
    assert_eq!(key["Condition"].as_str(), Some("CreateTopicsKey"));
    assert_eq!(key["Properties"]["EnableKeyRotation"].as_bool(), Some(true));
    let mut grants = Vec::new();
    statements(&key["Properties"]["KeyPolicy"], "TopicsKey", &mut grants);
    for service in ["events.amazonaws.com", "cloudwatch.amazonaws.com"] {
        let (_, grant) = grants
            .iter()
            .find(|(_, s)| strs(&s["Principal"]["Service"]) == [service])
            .unwrap_or_else(|| panic!("the topics' key does not let {service} publish"));
        assert_eq!(grant["Effect"].as_str(), Some("Allow"), "{service}");
        assert_eq!(
            sorted(&grant["Action"]),
            ["kms:Decrypt", "kms:GenerateDataKey"],
            "{service}"
        );
    }
    // With KmsKeyArn, every function's role may send to the queues under it.
    let access = &t["Resources"]["QueueKeyAccess"];
    assert_eq!(access["Condition"].as_str(), Some("HasKmsKey"));
    assert_eq!(
        sorted(&access["Properties"]["Roles"]),
        ["CloudTrailWatcherRole", "StatusWatcherRole", "SweepRole"]
    );
    let mut found = Vec::new();
    statements(
        &access["Properties"]["PolicyDocument"],
        "QueueKeyAccess",
        &mut found,
    );
    let [(_, grant)] = found.as_slice() else {
        panic!("QueueKeyAccess: {found:?}");
    };
    assert_eq!(
        sorted(&grant["Action"]),
        ["kms:Decrypt", "kms:GenerateDataKey"]
    );
    assert_eq!(strs(&grant["Resource"]), ["KmsKeyArn"]);
}

/// Issue 13: the Unevaluated alarm counts only the causes someone can act on (the core's
/// `UnevaluatedCause::is_actionable`), from the metric's `Cause` dimension; runs out of scope
/// and intents that depend on unrecorded keys never alarm. It goes to the ticket topic.
#[test]
fn the_unevaluated_alarm_watches_only_the_actionable_causes() {
    let t = load("template.yaml");
    let p = &t["Resources"]["UnevaluatedAlarm"]["Properties"];
    assert!(
        p["MetricName"].is_badvalue(),
        "the total counts every cause"
    );
    let metrics = p["Metrics"].as_vec().unwrap();
    let mut causes = Vec::new();
    let mut ids = Vec::new();
    for m in metrics.iter().filter(|m| !m["MetricStat"].is_badvalue()) {
        assert_eq!(m["ReturnData"].as_bool(), Some(false), "{m:?}");
        let metric = &m["MetricStat"]["Metric"];
        assert_eq!(metric["Namespace"].as_str(), Some("Tagwatch"));
        assert_eq!(metric["MetricName"].as_str(), Some("Unevaluated"));
        let dimensions = metric["Dimensions"].as_vec().unwrap();
        let [dimension] = dimensions.as_slice() else {
            panic!("{dimensions:?}");
        };
        assert_eq!(dimension["Name"].as_str(), Some("Cause"));
        assert_eq!(m["MetricStat"]["Period"].as_i64(), Some(3600), "per hour");
        causes.push(dimension["Value"].as_str().unwrap().to_string());
        ids.push(m["Id"].as_str().unwrap());
    }
    causes.sort();
    let mut actionable: Vec<String> = UnevaluatedCause::ALL
        .into_iter()
        .filter(|c| c.is_actionable())
        .map(|c| c.as_str().to_string())
        .collect();
    actionable.sort();
    assert_eq!(causes, actionable);
    // One expression returns data: the sum of exactly those.
    let returned: Vec<&Yaml> = metrics
        .iter()
        .filter(|m| m["ReturnData"].as_bool() == Some(true))
        .collect();
    let [sum] = returned.as_slice() else {
        panic!("{returned:?}");
    };
    let expression = sum["Expression"].as_str().unwrap();
    assert!(expression.starts_with("SUM("), "{expression}");
    for id in ids {
        assert!(expression.contains(id), "{expression} leaves out {id}");
    }
    assert_eq!(strs(&p["Threshold"]), ["UnevaluatedAlarmThreshold"]);
    assert_eq!(
        t["Parameters"]["UnevaluatedAlarmThreshold"]["Default"].as_i64(),
        Some(10)
    );
    assert_eq!(strs(&p["AlarmActions"]), ["TicketTopic"]);
}

/// Issue 13: each topic subscribes its optional e-mail and HTTPS endpoint (empty: none), and
/// `AlertEmail` keeps its name and its inline subscription (deployments depend on both).
#[test]
fn each_topic_subscribes_its_optional_email_and_https_endpoint() {
    let t = load("template.yaml");
    let inline = strs(&t["Resources"]["OnCallTopic"]["Properties"]["Subscription"]);
    assert_eq!(
        inline,
        ["HasAlertEmail", "email", "AlertEmail", "AWS::NoValue"]
    );
    for (parameter, topic, protocol) in [
        ("AlertHttpsEndpoint", "OnCallTopic", "https"),
        ("TicketEmail", "TicketTopic", "email"),
        ("TicketHttpsEndpoint", "TicketTopic", "https"),
    ] {
        let subscriptions: Vec<(String, &Yaml)> = of_type(&t, "AWS::SNS::Subscription")
            .into_iter()
            .filter(|(_, s)| strs(&s["Properties"]["Endpoint"]) == [parameter])
            .collect();
        let [(name, s)] = subscriptions.as_slice() else {
            panic!("{parameter}: {subscriptions:?}");
        };
        assert_eq!(strs(&s["Properties"]["TopicArn"]), [topic], "{name}");
        assert_eq!(
            s["Properties"]["Protocol"].as_str(),
            Some(protocol),
            "{name}"
        );
        let condition = s["Condition"].as_str().unwrap();
        assert_eq!(
            strs(&t["Conditions"][condition]),
            [parameter, ""],
            "{name}: subscribed only when {parameter} is set"
        );
    }
    for parameter in [
        "AlertEmail",
        "AlertHttpsEndpoint",
        "TicketEmail",
        "TicketHttpsEndpoint",
    ] {
        assert_eq!(
            t["Parameters"][parameter]["Default"].as_str(),
            Some(""),
            "{parameter}"
        );
    }
}

/// The deploy smoke test (`tests/deploy_smoke.py`): the SAM template transformed by
/// aws-sam-translator and created on moto's CloudFormation, then every resource checked. Needs
/// `python3` with boto3, PyYAML and aws-sam-translator on PATH (`.ci/run` installs them with
/// aws-sam-cli in its virtual environment).
#[test]
fn the_stack_deploys_on_moto_cloudformation() {
    let moto = tagwatch_tests::moto();
    let out = std::process::Command::new("python3")
        .arg(root().join("tests/deploy_smoke.py"))
        .arg(&moto.url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e})"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("CREATE_COMPLETE"), "{stdout}");
}

/// Issue 13 §3: the Security Hub sink is off unless the `SecurityHubExport` parameter turns it
/// on; then every function gets the default product's ARN, and may import findings under that
/// product only (the IAM resource of `BatchImportFindings` is the product ARN).
#[test]
fn security_hub_export_is_off_by_default_and_scoped_to_the_default_product() {
    let t = load("template.yaml");
    let param = &t["Parameters"]["SecurityHubExport"];
    assert_eq!(param["Default"].as_str(), Some("Disabled"));
    assert_eq!(sorted(&param["AllowedValues"]), ["Disabled", "Enabled"]);
    assert_eq!(
        strs(&t["Conditions"]["ExportToSecurityHub"]),
        ["SecurityHubExport", "Enabled"]
    );
    let product = "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default";
    let var =
        &t["Globals"]["Function"]["Environment"]["Variables"]["TAGWATCH_SECURITY_HUB_PRODUCT_ARN"];
    assert_eq!(
        strs(var),
        ["ExportToSecurityHub", product, "AWS::NoValue"],
        "set only when enabled"
    );
    // The ARN as CloudFormation substitutes it is one the functions accept.
    let deployed = product
        .replace("${AWS::Partition}", "aws")
        .replace("${AWS::Region}", "eu-west-1")
        .replace("${AWS::AccountId}", "111122223333");
    let home = tagwatch_core::watch::asff::Home::parse(&deployed).unwrap();
    assert_eq!(home.account, "111122223333");
    // The permission stands in its own policy, created only when enabled, on the three roles;
    // no role has it otherwise.
    let policy = &t["Resources"]["SecurityHubExportPolicy"];
    assert_eq!(policy["Type"].as_str(), Some("AWS::IAM::Policy"));
    assert_eq!(policy["Condition"].as_str(), Some("ExportToSecurityHub"));
    assert_eq!(
        sorted(&policy["Properties"]["Roles"]),
        ["CloudTrailWatcherRole", "StatusWatcherRole", "SweepRole"]
    );
    let mut found = Vec::new();
    statements(policy, "SecurityHubExportPolicy", &mut found);
    assert_eq!(found.len(), 1);
    assert_eq!(
        strs(&found[0].1["Action"]),
        ["securityhub:BatchImportFindings"]
    );
    assert_eq!(strs(&found[0].1["Resource"]), [product]);
    for role in ["CloudTrailWatcherRole", "StatusWatcherRole", "SweepRole"] {
        let mut found = Vec::new();
        statements(&t["Resources"][role], role, &mut found);
        assert!(
            found.iter().all(|(_, st)| !strs(&st["Action"])
                .iter()
                .any(|a| a.starts_with("securityhub:"))),
            "{role}"
        );
    }
}

/// Issue 14 §1: with `MemberAccounts` set, the functions may assume the members' reader role
/// (its name a parameter) and get the scope, role name, external id and partition; the
/// forwarder creates that role once per account (in `ReaderRoleRegion`), read-only (exactly
/// the four read actions) and trusted by the central functions' roles only, with the external
/// id when one is set.
#[test]
fn member_accounts_are_read_through_a_read_only_role_the_central_functions_alone_assume() {
    let t = load("template.yaml");
    assert_eq!(
        t["Parameters"]["MemberAccounts"]["Default"].as_str(),
        Some("")
    );
    assert_eq!(
        t["Parameters"]["ReaderRoleName"]["Default"].as_str(),
        Some("TagwatchReader")
    );
    assert_eq!(
        t["Parameters"]["ReaderExternalId"]["NoEcho"].as_bool(),
        Some(true)
    );
    let vars = &t["Globals"]["Function"]["Environment"]["Variables"];
    for (var, param) in [
        ("TAGWATCH_MEMBER_ACCOUNTS", "MemberAccounts"),
        ("TAGWATCH_READER_ROLE", "ReaderRoleName"),
        ("TAGWATCH_READER_EXTERNAL_ID", "ReaderExternalId"),
        ("TAGWATCH_PARTITION", "AWS::Partition"),
    ] {
        assert_eq!(strs(&vars[var]), [param], "{var}");
    }
    let policy = &t["Resources"]["MemberTagsPolicy"];
    assert_eq!(policy["Condition"].as_str(), Some("HasMemberAccounts"));
    assert_eq!(
        sorted(&policy["Properties"]["Roles"]),
        ["CloudTrailWatcherRole", "StatusWatcherRole", "SweepRole"]
    );
    let mut found = Vec::new();
    statements(policy, "MemberTagsPolicy", &mut found);
    assert_eq!(found.len(), 1);
    assert_eq!(strs(&found[0].1["Action"]), ["sts:AssumeRole"]);
    assert_eq!(
        strs(&found[0].1["Resource"]),
        ["arn:${AWS::Partition}:iam::*:role/${ReaderRoleName}"]
    );
    let output = strs(&t["Outputs"]["FunctionRoleArns"]["Value"]);
    for role in ["CloudTrailWatcherRole", "StatusWatcherRole", "SweepRole"] {
        assert!(output.contains(&format!("{role}.Arn")), "{output:?}");
    }

    let f = load("templates/forwarder.yaml");
    let role = &f["Resources"]["ReaderRole"];
    assert_eq!(role["Condition"].as_str(), Some("CreateReaderRole"));
    assert!(
        strs(&f["Conditions"]["CreateReaderRole"]).contains(&"ReaderRoleRegion".to_string()),
        "one role per account, in one region"
    );
    let p = &role["Properties"];
    assert_eq!(strs(&p["RoleName"]), ["ReaderRoleName"]);
    let trust = &p["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_vec().unwrap().len(), 1);
    assert_eq!(
        strs(&trust[0]["Principal"]["AWS"]),
        ["CentralFunctionRoleArns"]
    );
    assert_eq!(strs(&trust[0]["Action"]), ["sts:AssumeRole"]);
    assert_eq!(
        strs(&trust[0]["Condition"]),
        ["HasExternalId", "ReaderExternalId", "AWS::NoValue"],
        "the external id, when set"
    );
    let mut found = Vec::new();
    statements(&p["Policies"], "ReaderRole", &mut found);
    let mut actions: Vec<String> = found
        .iter()
        .flat_map(|(_, st)| strs(&st["Action"]))
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "ec2:DescribeInstances",
            "ec2:DescribeTags",
            "ssm:DescribeInstanceInformation",
            "ssm:ListTagsForResource"
        ]
    );
}

/// Issue 14 §4: the backfill's state machine reads its items from the plan's `items.json`,
/// batches them, runs its children with the stack's concurrency and failure tolerance (numbers
/// substituted as text and parsed back, since `DefinitionSubstitutions` gives strings), retries
/// exactly the function's retryable errors, and writes the map's results to the results bucket;
/// every placeholder has a substitution. Its role invokes the function and runs its own child
/// executions only (Step Functions: "IAM policies for using Distributed Map states").
#[test]
fn the_backfill_state_machine_batches_days_with_bounded_concurrency() {
    let t = load("templates/backfill.yaml");
    let sm = &t["Resources"]["StateMachine"]["Properties"];
    let def = &sm["Definition"];
    let subs = &sm["DefinitionSubstitutions"];
    let mut texts = Vec::new();
    strings(def, &mut texts);
    let mut used = std::collections::BTreeSet::new();
    for text in &texts {
        let mut rest = text.as_str();
        while let Some(at) = rest.find("${") {
            let tail = &rest[at + 2..];
            let end = tail.find('}').unwrap();
            used.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    let given: std::collections::BTreeSet<String> = subs
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        used, given,
        "every placeholder substituted, every substitution used"
    );
    for (name, min) in [
        ("MaxConcurrency", 1),
        ("DaysPerBatch", 1),
        ("ToleratedFailurePercentage", 0),
    ] {
        assert_eq!(subs[name].as_str(), Some(name), "{name} from the parameter");
        assert_eq!(
            t["Parameters"][name]["MinValue"].as_i64(),
            Some(min),
            "{name}"
        );
    }
    let states = &def["States"];
    let settings = &states["Settings"]["Parameters"];
    assert_eq!(
        settings["days_per_batch.$"].as_str(),
        Some("States.StringToJson('${DaysPerBatch}')")
    );
    let map = &states["Days"];
    assert_eq!(map["Type"].as_str(), Some("Map"));
    assert_eq!(
        map["ItemProcessor"]["ProcessorConfig"]["Mode"].as_str(),
        Some("DISTRIBUTED")
    );
    assert_eq!(
        map["ItemProcessor"]["ProcessorConfig"]["ExecutionType"].as_str(),
        Some("STANDARD"),
        "a batch may take Lambda's 15 minutes"
    );
    assert_eq!(
        map["ItemReader"]["Resource"].as_str(),
        Some("arn:aws:states:::s3:getObject")
    );
    assert_eq!(
        map["ItemBatcher"]["MaxItemsPerBatchPath"].as_str(),
        Some("$.settings.days_per_batch")
    );
    assert_eq!(
        map["MaxConcurrencyPath"].as_str(),
        Some("$.settings.max_concurrency")
    );
    assert_eq!(
        map["ToleratedFailurePercentagePath"].as_str(),
        Some("$.settings.tolerated_failure_percentage")
    );
    assert_eq!(
        map["ResultWriter"]["Parameters"]["Bucket"].as_str(),
        Some("${ResultsBucket}")
    );
    // The function's retryable error types (functions/backfill/src/handler.rs, Failure::kind)
    // are retried; BadRequest and PermanentAwsError are not.
    let replay = &map["ItemProcessor"]["States"]["Replay"];
    let retried = sorted(&replay["Retry"]);
    for kind in ["RetryableAwsError", "RetryableTimeBudget"] {
        assert!(retried.iter().any(|r| r == kind), "{kind}: {retried:?}");
    }
    for kind in ["BadRequest", "PermanentAwsError", "States.ALL"] {
        assert!(!retried.iter().any(|r| r == kind), "{kind}: {retried:?}");
    }
    // The function: the real binary, Lambda's longest timeout.
    let f = &t["Resources"]["Backfill"];
    assert_eq!(
        f["Metadata"]["BuildProperties"]["Binary"].as_str(),
        Some("tagwatch-backfill")
    );
    assert!(read("functions/backfill/Cargo.toml").contains("name = \"tagwatch-backfill\""));
    assert_eq!(f["Properties"]["Timeout"].as_i64(), Some(900));
    // The state machine's role: its own children only.
    let mut found = Vec::new();
    statements(&t["Resources"]["StateMachineRole"], "$", &mut found);
    let start = found
        .iter()
        .find(|(_, st)| strs(&st["Action"]) == ["states:StartExecution"])
        .unwrap();
    assert!(
        strs(&start.1["Resource"])
            .iter()
            .any(|r| r.ends_with(":stateMachine:${AWS::StackName}-backfill")),
        "{:?}",
        strs(&start.1["Resource"])
    );
    assert_eq!(
        sm["StateMachineName"].as_str(),
        Some("${AWS::StackName}-backfill")
    );
}
