//! End to end: the real function binaries under `cargo lambda watch`'s Runtime API emulator,
//! configured against moto's server, fed the `events/` fixtures through `cargo lambda invoke`.
//! Each test builds its own world (moto, the emulator, the three functions) on free loopback
//! ports and checks what reached the findings log group, the SQS queue behind a rule on the
//! findings bus, the quarantine queue and the DynamoDB table.
//!
//! Needs `moto_server` and `cargo lambda` on PATH (`.ci/run` installs both: `pip install
//! 'moto[server]' cargo-lambda ziglang`) and the function binaries, which `cargo test
//! --workspace` builds (each function crate has an integration test of its binary).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use tagwatch_aws::aws_config::SdkConfig;
use tagwatch_aws::{
    aws_sdk_cloudwatchlogs, aws_sdk_dynamodb, aws_sdk_eventbridge, aws_sdk_sqs, aws_sdk_ssm,
};
use tagwatch_tests::{
    denied_json_at, event_json, free_port, moto, read, root, wait_for_port, Moto,
};

const CLOUDTRAIL: &str = "tagwatch-cloudtrail-watcher";
const STATUS: &str = "tagwatch-status-watcher";
const SWEEP: &str = "tagwatch-sweep";
const TABLE: &str = "tagwatch";
const LOG_GROUP: &str = "/tagwatch/findings";
const BUS: &str = "tagwatch-findings";

/// Where `cargo test` put the workspace's binaries (beside this test's `deps/` folder).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace`, which builds the function binaries",
        path.display()
    );
    path
}

/// A process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct World {
    conf: SdkConfig,
    alerts_url: String,
    quarantine_url: String,
    watch_port: u16,
    dir: PathBuf,
    functions: BTreeMap<&'static str, Proc>,
    _watch: Proc,
    moto: Moto,
}

async fn queue(conf: &SdkConfig, name: &str) -> (String, String) {
    let sqs = aws_sdk_sqs::Client::new(conf);
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    (url, arn)
}

/// The AWS side of a deployment, as `template.yaml` creates it, on moto.
async fn provision(conf: &SdkConfig) -> (String, String) {
    tagwatch_aws::testing::create_table(conf, TABLE)
        .await
        .unwrap();
    aws_sdk_cloudwatchlogs::Client::new(conf)
        .create_log_group()
        .log_group_name(LOG_GROUP)
        .send()
        .await
        .unwrap();
    let events = aws_sdk_eventbridge::Client::new(conf);
    events.create_event_bus().name(BUS).send().await.unwrap();
    let (alerts_url, alerts_arn) = queue(conf, "tagwatch-alerts").await;
    let (quarantine_url, _) = queue(conf, "tagwatch-quarantine").await;
    events
        .put_rule()
        .name("tagwatch-alerts")
        .event_bus_name(BUS)
        .event_pattern(json!({"source": ["tagwatch"]}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("tagwatch-alerts")
        .event_bus_name(BUS)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("alerts-queue")
                .arn(alerts_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // The intent and its policy files as SSM parameters.
    let ssm = aws_sdk_ssm::Client::new(conf);
    for (name, file) in [
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
        ssm.put_parameter()
            .name(name)
            .value(read(file))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    }
    // The instances' live tags (the example inventory's, on the fixtures' instance ids).
    tagwatch_aws::testing::tag_instances(conf, &read("examples/inventory.json"))
        .await
        .unwrap();
    (alerts_url, quarantine_url)
}

impl World {
    async fn new() -> World {
        let moto = moto();
        let conf = tagwatch_aws::testing::config(&moto.url).await;
        let (alerts_url, quarantine_url) = provision(&conf).await;
        let dir = std::env::temp_dir().join(format!("tagwatch-e2e-{}", free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let watch_port = free_port();
        let watch_log = std::fs::File::create(dir.join("watch.log")).unwrap();
        // `cargo-lambda lambda ...` is what `cargo lambda ...` runs, without a `cargo` parent
        // process that would outlive a kill.
        let watch = Command::new("cargo-lambda")
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
            .args(["-P", &watch_port.to_string()])
            .current_dir(root())
            .stdout(watch_log.try_clone().unwrap())
            .stderr(watch_log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `cargo lambda watch` ({e}): pip install cargo-lambda ziglang")
            });
        let watch = Proc(watch);
        wait_for_port(watch_port, "cargo lambda watch");
        let mut world = World {
            conf,
            alerts_url,
            quarantine_url,
            watch_port,
            dir,
            functions: BTreeMap::new(),
            _watch: watch,
            moto,
        };
        for f in [CLOUDTRAIL, STATUS, SWEEP] {
            world.start(f, &[]);
        }
        world
    }

    /// Starts (or restarts) a function's execution environment, with extra environment
    /// variables; stdout (JSON logs and EMF lines) goes to `<dir>/<function>.log`.
    fn start(&mut self, function: &'static str, extra: &[(&str, String)]) {
        self.functions.remove(function);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{function}.log")))
            .unwrap();
        let mut cmd = Command::new(binary(function));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt/{function}", self.watch_port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_ENDPOINT_URL", &self.moto.url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("TAGWATCH_INTENT", "ssm:/tagwatch/intent")
            .env("TAGWATCH_TABLE", TABLE)
            .env("TAGWATCH_FINDINGS_LOG_GROUP", LOG_GROUP)
            .env("TAGWATCH_FINDINGS_BUS", BUS)
            .env("TAGWATCH_QUARANTINE_QUEUE_URL", &self.quarantine_url)
            .env("TAGWATCH_PARK_DELAY_SECONDS", "60");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.functions.insert(function, Proc(child));
    }

    /// Invokes a function through the emulator; Ok(response) or Err(error output).
    fn invoke(&self, function: &str, event: &Value) -> Result<Value, String> {
        let file = self.dir.join(format!("event-{}.json", free_port()));
        std::fs::write(&file, event.to_string()).unwrap();
        let out = Command::new("cargo-lambda")
            .args(["lambda", "invoke", function, "-A", "127.0.0.1"])
            .args(["-P", &self.watch_port.to_string(), "--data-file"])
            .arg(&file)
            .current_dir(root())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            Ok(serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}")))
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn ok(&self, function: &str, event: &Value) -> Value {
        self.invoke(function, event)
            .unwrap_or_else(|e| panic!("{function} failed: {e}\n{}", self.function_log(function)))
    }

    fn function_log(&self, function: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{function}.log"))).unwrap_or_default()
    }

    /// The EMF lines a function printed.
    fn metrics(&self, function: &str) -> Vec<Value> {
        self.function_log(function)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect()
    }

    /// Every finding in the findings log group.
    async fn findings(&self) -> Vec<Value> {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&self.conf);
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = logs
                .filter_log_events()
                .log_group_name(LOG_GROUP)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            for e in page.events() {
                out.push(serde_json::from_str(e.message().unwrap()).unwrap());
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return out;
            }
        }
    }

    /// Drains a queue: every message body (and its attributes).
    async fn drain(&self, url: &str) -> Vec<(Value, BTreeMap<String, String>)> {
        let sqs = aws_sdk_sqs::Client::new(&self.conf);
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                let attrs = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.clone(), v.string_value().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push((serde_json::from_str(m.body().unwrap()).unwrap(), attrs));
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// The alerts that reached the SQS queue through the rule on the findings bus.
    async fn alerts(&self) -> Vec<Value> {
        self.drain(&self.alerts_url)
            .await
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    /// The table's items as (pk, sk) pairs, sorted.
    async fn keys(&self) -> Vec<(String, String)> {
        let ddb = aws_sdk_dynamodb::Client::new(&self.conf);
        let items = ddb.scan().table_name(TABLE).send().await.unwrap();
        let mut keys: Vec<(String, String)> = items
            .items()
            .iter()
            .map(|i| {
                (
                    i["pk"].as_s().unwrap().clone(),
                    i["sk"].as_s().unwrap().clone(),
                )
            })
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Kept when a test fails: the functions' logs are the first thing to read.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn kinds(findings: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

fn resource_ends_with(f: &Value, suffix: &str) -> bool {
    f["resource"].as_str().is_some_and(|r| r.ends_with(suffix))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_violation_reaches_the_log_group_the_bus_and_the_table() {
    let w = World::new().await;
    let event = event_json("cloudtrail-sendcommand-instanceids.json");
    let response = w.ok(CLOUDTRAIL, &event);
    assert_eq!(response["logged"], 1, "{response}");
    assert_eq!(response["alerted"], 1);

    let findings = w.findings().await;
    assert_eq!(kinds(&findings), ["violation"], "{findings:?}");
    let f = &findings[0];
    assert!(resource_ends_with(f, "i-0a1b2c3d4e5f60002"), "{f}");
    assert_eq!(
        f["principal"],
        "arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice"
    );
    assert_eq!(f["principal_entry"], "junior-engineers");

    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["source"], "tagwatch");
    assert_eq!(alerts[0]["detail-type"], "Tagwatch Violation");
    assert_eq!(alerts[0]["detail"]["finding_id"], f["finding_id"]);

    let id = f["finding_id"].as_str().unwrap();
    let event_id = event["detail"]["eventID"].as_str().unwrap();
    let keys = w.keys().await;
    for want in [
        (format!("event#{event_id}"), "seen".to_string()),
        (format!("event#{event_id}"), format!("finding#{id}")),
        (format!("finding#{id}"), "sink#log".to_string()),
        (format!("finding#{id}"), "sink#bus".to_string()),
    ] {
        assert!(keys.contains(&want), "{want:?} not in {keys:?}");
    }
    let metrics = w.metrics(CLOUDTRAIL);
    assert_eq!(metrics.last().unwrap()["Violations"], 1);
    assert_eq!(metrics.last().unwrap()["EventsProcessed"], 1);
    // The function's logs never carry the command (parameters are in the event).
    assert!(!w.function_log(CLOUDTRAIL).contains("commands"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compliant_call_reports_nothing() {
    let w = World::new().await;
    let response = w.ok(
        CLOUDTRAIL,
        &event_json("cloudtrail-startsession-allowed.json"),
    );
    assert_eq!(response["logged"], 0, "{response}");
    assert!(w.findings().await.is_empty());
    assert!(w.alerts().await.is_empty());
    let keys = w.keys().await;
    assert_eq!(keys.len(), 1, "only the sighting: {keys:?}");
    assert_eq!(keys[0].1, "seen");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_denied_burst_raises_one_spike() {
    let w = World::new().await;
    // The example intent trips at 5 calls within 300 s; 7 calls 20 s apart are one burst.
    for n in 0..7 {
        let e = denied_json_at(
            &format!("burst-{n}"),
            &format!("09:0{}:{:02}", n / 3, (n % 3) * 20),
        );
        w.ok(CLOUDTRAIL, &e);
    }
    let findings = w.findings().await;
    let spikes: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "access_denied_spike")
        .collect();
    assert_eq!(spikes.len(), 1, "{findings:?}");
    assert_eq!(spikes[0]["denied_calls"], 5);
    assert_eq!(
        findings
            .iter()
            .filter(|f| f["kind"] == "access_denied")
            .count(),
        7
    );
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1, "single AccessDenied calls are not alerts");
    assert_eq!(alerts[0]["detail-type"], "Tagwatch AccessDenied Spike");
    // One item per denied call, and the caller's episode.
    let keys = w.keys().await;
    let caller = "caller#arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice";
    assert_eq!(
        keys.iter()
            .filter(|(pk, sk)| pk == caller && sk.starts_with("denial#"))
            .count(),
        7
    );
    assert!(keys.contains(&(caller.to_string(), "episode".to_string())));
    let spikes_counted: u64 = w
        .metrics(CLOUDTRAIL)
        .iter()
        .map(|m| m["AccessDeniedSpikes"].as_u64().unwrap())
        .sum();
    assert_eq!(spikes_counted, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_targets_with_invocation_events_first() {
    let w = World::new().await;
    for s in [
        "ssm-command-invocation-status-change-inprogress.json",
        "ssm-command-invocation-status-change-success.json",
        "ssm-command-status-change-success.json",
    ] {
        let r = w.ok(STATUS, &event_json(s));
        assert_eq!(r["logged"], 0, "{s}: the caller is not known yet");
    }
    let command = "command#e500bddf-37b0-4307-8f0f-4c3c2052e52b";
    let parked: Vec<String> = w
        .keys()
        .await
        .into_iter()
        .filter(|(pk, sk)| pk == command && sk.starts_with("parked#"))
        .map(|(_, sk)| sk)
        .collect();
    assert_eq!(
        parked,
        ["parked#i-0a1b2c3d4e5f60002", "parked#i-0a1b2c3d4e5f60003"]
    );
    let r = w.ok(
        CLOUDTRAIL,
        &event_json("cloudtrail-sendcommand-tag-targets.json"),
    );
    assert_eq!(r["logged"], 1, "{r}");
    let findings = w.findings().await;
    assert_eq!(kinds(&findings), ["violation"]);
    // bob (lead) may patch production, but not the quarantined 60003.
    assert!(resource_ends_with(&findings[0], "i-0a1b2c3d4e5f60003"));
    assert_eq!(findings[0]["principal_entry"], "lead-engineers");
    assert_eq!(w.alerts().await.len(), 1);
    let keys = w.keys().await;
    assert!(
        keys.iter().all(|(_, sk)| !sk.starts_with("parked#")),
        "{keys:?}"
    );
    assert!(keys.contains(&(command.to_string(), "record".to_string())));
    assert!(keys.contains(&(command.to_string(), "claim#i-0a1b2c3d4e5f60003".to_string())));
    // A late status change for an evaluated pair adds nothing.
    let r = w.ok(
        STATUS,
        &event_json("ssm-command-invocation-status-change-success.json"),
    );
    assert_eq!(r["logged"], 0);
    assert_eq!(w.findings().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_event_twice_is_one_finding() {
    let w = World::new().await;
    let e = event_json("cloudtrail-sendcommand-vpc-endpoint.json");
    let first = w.ok(CLOUDTRAIL, &e);
    let second = w.ok(CLOUDTRAIL, &e);
    assert_eq!(second["duplicate"], true, "{second}");
    assert_eq!(second["logged"], 0);
    let findings = w.findings().await;
    assert_eq!(findings.len(), first["logged"].as_u64().unwrap() as usize);
    assert!(!findings.is_empty());
    assert_eq!(
        w.alerts().await.len(),
        first["alerted"].as_u64().unwrap() as usize
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_event_is_counted_and_kept() {
    let w = World::new().await;
    let e = event_json("malformed/sendcommand-missing-useridentity.json");
    let r = w.ok(CLOUDTRAIL, &e);
    assert!(
        r["quarantined"].as_str().unwrap().contains("userIdentity"),
        "{r}"
    );
    let kept = w.drain(&w.quarantine_url).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0["id"], e["id"], "kept as received");
    assert!(kept[0].1["reason"].contains("$.detail.userIdentity"));
    assert_eq!(kept[0].1["function"], "cloudtrail-watcher");
    assert_eq!(w.metrics(CLOUDTRAIL).last().unwrap()["MalformedEvents"], 1);
    assert!(w.findings().await.is_empty());
    assert!(w.keys().await.is_empty(), "nothing was recorded for it");
    // An event routed to the wrong function is unexpected: kept too, not retried.
    let r = w.ok(
        STATUS,
        &event_json("cloudtrail-sendcommand-instanceids.json"),
    );
    assert!(r["quarantined"]
        .as_str()
        .unwrap()
        .contains("status watcher"));
    assert_eq!(w.drain(&w.quarantine_url).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_errors_fail_the_invocation_and_the_retry_does_not_duplicate() {
    let mut w = World::new().await;
    let e = event_json("cloudtrail-sendcommand-instanceids.json");
    // The bus's endpoint is a closed port: the log group gets the finding, then PutEvents
    // fails after the SDK's attempts and the invocation fails.
    let closed = format!("http://127.0.0.1:{}", free_port());
    w.start(
        CLOUDTRAIL,
        &[
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", closed.clone()),
            ("AWS_MAX_ATTEMPTS", "2".to_string()),
        ],
    );
    let err = w.invoke(CLOUDTRAIL, &e).unwrap_err();
    assert!(
        err.contains("TransientAwsError") || err.contains("PutEvents"),
        "{err}"
    );
    assert_eq!(w.findings().await.len(), 1);
    assert!(w.alerts().await.is_empty());

    // With DynamoDB unreachable too, nothing is decided and nothing is lost.
    w.start(
        CLOUDTRAIL,
        &[
            ("AWS_ENDPOINT_URL_DYNAMODB", closed),
            ("AWS_MAX_ATTEMPTS", "2".to_string()),
        ],
    );
    let other = event_json("cloudtrail-sendcommand-vpc-endpoint.json");
    assert!(w.invoke(CLOUDTRAIL, &other).is_err());
    assert_eq!(w.findings().await.len(), 1);

    // Lambda retries both events in a healthy environment: each finding once, everywhere.
    w.start(CLOUDTRAIL, &[]);
    let retry = w.ok(CLOUDTRAIL, &e);
    assert_eq!(retry["logged"], 0, "the log group already has it: {retry}");
    assert_eq!(retry["alerted"], 1);
    let retried = w.ok(CLOUDTRAIL, &other);
    assert!(retried["logged"].as_u64().unwrap() >= 1);
    let findings = w.findings().await;
    let mut ids: Vec<&str> = findings
        .iter()
        .map(|f| f["finding_id"].as_str().unwrap())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no finding twice in the log group");
    let alerts = w.alerts().await;
    assert_eq!(
        alerts.len(),
        1 + retried["alerted"].as_u64().unwrap() as usize
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_reports_invocations_whose_record_never_came() {
    let w = World::new().await;
    w.ok(
        STATUS,
        &event_json("ssm-command-invocation-status-change-orphan.json"),
    );
    assert_eq!(
        w.keys()
            .await
            .iter()
            .filter(|(_, sk)| sk.starts_with("parked#"))
            .count(),
        1
    );
    let schedule = json!({
        "version": "0", "id": "5e1d1e5a-0000-4000-8000-000000000001",
        "detail-type": "Scheduled Event", "source": "aws.events", "account": "111122223333",
        "time": "2026-11-22T09:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:111122223333:rule/tagwatch-sweep"], "detail": {}
    });
    let r = w.ok(SWEEP, &schedule);
    assert_eq!(r["logged"], 1, "{r}");
    let findings = w.findings().await;
    assert_eq!(kinds(&findings), ["unevaluated"]);
    assert!(findings[0]["reason"]
        .as_str()
        .unwrap()
        .contains("did not arrive"));
    let alerts = w.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["detail-type"], "Tagwatch Unevaluated");
    // The scheduled event redelivered, and the next run: nothing new.
    assert_eq!(w.ok(SWEEP, &schedule)["logged"], 0);
    assert_eq!(w.findings().await.len(), 1);
    assert!(w
        .keys()
        .await
        .iter()
        .all(|(_, sk)| !sk.starts_with("parked#")));
}

#[test]
fn an_invalid_intent_fails_the_cold_start_with_a_clear_message() {
    // No AWS needed: a bundled intent file that is invalid.
    let dir = std::env::temp_dir().join(format!("tagwatch-e2e-intent-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("intent.json"),
        r#"{"principals":[{"name":"x","match":"arn:aws:iam::1:role/X","policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"ssm:SendCommand","Resource":"*"}]}]}]}"#,
    )
    .unwrap();
    let out = Command::new(binary(CLOUDTRAIL))
        .env_clear()
        .env("LAMBDA_TASK_ROOT", &dir)
        .env("TAGWATCH_INTENT", "intent.json")
        .env("TAGWATCH_TABLE", TABLE)
        .env("TAGWATCH_FINDINGS_LOG_GROUP", LOG_GROUP)
        .env("TAGWATCH_FINDINGS_BUS", BUS)
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["message"], "cold start failed");
    let error = line["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "{}",
            Path::new(&dir).join("intent.json").display()
        )),
        "{error}"
    );
    assert!(error.contains("$.principals[0]"), "{error}");
    assert!(error.contains("Effect"), "{error}");
    let _ = std::fs::remove_dir_all(dir);
}
