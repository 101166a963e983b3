//! `template.yaml` and `templates/forwarder.yaml` read as data: least privilege (no `*` action
//! anywhere; only `ec2:DescribeTags`, `ec2:DescribeInstances` and X-Ray's trace writes on `Resource: "*"`; each function
//! with its own role and no managed policies), every function with a
//! bounded retry policy and a failure destination, every function's build pointing at a real
//! binary, the configuration the functions require, and the EventBridge patterns as AWS emits
//! the events. CloudFormation's short tags (`!Ref`, `!Sub`, `!If`, ...) load as plain scalars and
//! sequences, which is all these checks need.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

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
    for path in ["template.yaml", "templates/forwarder.yaml"] {
        let t = load(path);
        let mut found = Vec::new();
        statements(&t, "$", &mut found);
        assert!(
            found.len() >= 2,
            "{path}: statements found: {}",
            found.len()
        );
        for (at, st) in found {
            let mut actions = Vec::new();
            strings(&st["Action"], &mut actions);
            for a in &actions {
                assert!(!a.contains('*'), "{path} {at}: wildcard action `{a}`");
            }
            let mut res = Vec::new();
            strings(&st["Resource"], &mut res);
            if res.iter().any(|r| r == "*") {
                // EC2 DescribeTags / DescribeInstances and X-Ray's writes have no resource-level
                // permissions.
                let allowed = [
                    "ec2:DescribeTags",
                    "ec2:DescribeInstances",
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
    // The alert rule routes violations and spikes from tagwatch to the on-call topic.
    let alert = &t["Resources"]["AlertRule"]["Properties"];
    assert_eq!(list(&alert["EventPattern"]["source"]), ["tagwatch"]);
    assert_eq!(
        list(&alert["EventPattern"]["detail-type"]),
        ["Tagwatch Violation", "Tagwatch AccessDenied Spike"]
    );
    let template = alert["Targets"][0]["InputTransformer"]["InputTemplate"]
        .as_str()
        .unwrap();
    for part in [
        "<principal>",
        "<entry>",
        "<document>",
        "<resource>",
        "outside intent",
    ] {
        assert!(template.contains(part), "{template}");
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
