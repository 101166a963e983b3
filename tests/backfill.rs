//! Issue 14 §4, end to end: the `tagwatch-backfill` binary under a Runtime API, against moto's
//! S3, CloudWatch Logs and EC2: a plan lists an archive's day folders into `items.json`, batches
//! built as the Distributed Map's `ItemBatcher` builds them replay those days, and what reaches
//! the findings log group and the results bucket is what `tagwatch replay` finds in the same
//! archive, with the same live tags. Under injected S3 throttling, 500s and cut bodies (and
//! CloudWatch Logs faults), with the state machine's retries, the findings are the same.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tagwatch_aws::aws_config::SdkConfig;
use tagwatch_tests::fault_proxy::{FaultPlan, FaultProxy};
use tagwatch_tests::runtime_api::{request_id, RuntimeApi};
use tagwatch_tests::{binary, moto, read, root, Proc};

const FUNCTION: &str = "tagwatch-backfill";
const LOG_GROUP: &str = "/tagwatch/findings";
const ARCHIVE: &str = "org-trail";
const RESULTS: &str = "tagwatch-results";

/// One execution environment of the backfill, its AWS calls to `endpoint`.
fn environment(api: &RuntimeApi, endpoint: &str, log: &std::path::Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(binary(FUNCTION))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.endpoint(FUNCTION))
        .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_MAX_ATTEMPTS", "6")
        .env(
            "TAGWATCH_INTENT",
            root().join("examples/intent.json").to_str().unwrap(),
        )
        .env("TAGWATCH_FINDINGS_LOG_GROUP", LOG_GROUP)
        .env("TAGWATCH_RESULTS_BUCKET", RESULTS)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

fn gz(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

/// The bundled CloudTrail calls (the `detail` of every "AWS API Call via CloudTrail" fixture),
/// placed on `day` in the organisation trail's folder of one account and region, two log files
/// a day; with a digest beside them.
fn archive() -> Vec<(String, Vec<u8>)> {
    let records = tagwatch_tests::cloudtrail_records();
    let mut objects = Vec::new();
    for day in ["2026-11-19", "2026-11-20", "2026-11-21"] {
        let folder = format!(
            "trail/AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/{}/",
            day.replace('-', "/")
        );
        let placed: Vec<Value> = records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                let id = r["eventID"].as_str().unwrap_or("x").to_string();
                r["eventID"] = format!("{id}-{day}").into();
                if let Some(t) = r["eventTime"].as_str() {
                    r["eventTime"] = format!("{day}{}", &t[10..]).into();
                }
                if let Some(c) = r["responseElements"]["command"]["commandId"].as_str() {
                    let c = format!("{c}-{day}");
                    r["responseElements"]["command"]["commandId"] = c.into();
                }
                r
            })
            .collect();
        for (n, half) in placed.chunks(placed.len().div_ceil(2)).enumerate() {
            let key = format!("{folder}111122223333_CloudTrail_us-east-1_{n}.json.gz");
            objects.push((key, gz(&json!({ "Records": half }).to_string())));
        }
        objects.push((
            folder.replace("/CloudTrail/", "/CloudTrail-Digest/") + "digest.json.gz",
            gz("{}"),
        ));
    }
    objects
}

async fn provision(conf: &SdkConfig) {
    let s3 = tagwatch_aws::archive::s3_client(conf);
    for bucket in [ARCHIVE, RESULTS] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    for (key, body) in archive() {
        s3.put_object()
            .bucket(ARCHIVE)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
    tagwatch_aws::testing::create_log_group(conf, LOG_GROUP)
        .await
        .unwrap();
    tagwatch_aws::testing::tag_instances(conf, &read("examples/inventory.json"))
        .await
        .unwrap();
}

async fn object(conf: &SdkConfig, key: &str) -> Vec<u8> {
    let s3 = tagwatch_aws::archive::s3_client(conf);
    let out = s3
        .get_object()
        .bucket(RESULTS)
        .key(key)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Every finding in the log group.
async fn logged(conf: &SdkConfig) -> Vec<Value> {
    tagwatch_aws::testing::log_messages(conf, LOG_GROUP)
        .await
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect()
}

/// The state machine of `templates/backfill.yaml`, as data (CloudFormation's short tags load as
/// plain values; the definition has none).
fn definition() -> (Value, Value) {
    let docs = yaml_rust2::YamlLoader::load_from_str(&read("templates/backfill.yaml")).unwrap();
    let t = to_json(&docs[0]);
    let props = t["Resources"]["StateMachine"]["Properties"].clone();
    let params = t["Parameters"].clone();
    // The substitutions' values: the stack's parameter defaults.
    let mut subs = serde_json::Map::new();
    for (k, v) in props["DefinitionSubstitutions"].as_object().unwrap() {
        let value = match v.as_str() {
            Some(name) if params.get(name).is_some() => params[name]["Default"].to_string(),
            _ => format!("<{k}>"),
        };
        subs.insert(k.clone(), Value::String(value));
    }
    (props["Definition"].clone(), Value::Object(subs))
}

fn to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(r) => json!(r.parse::<f64>().unwrap()),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), to_json(v)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// A JSONPath of the definition (`$`, `$.a.b`, `$$.Execution.Name`) or the one intrinsic it
/// uses, `States.StringToJson('...')` (after the substitutions).
fn eval(path: &str, input: &Value, context: &Value, subs: &Value) -> Value {
    if let Some(arg) = path
        .strip_prefix("States.StringToJson('")
        .and_then(|r| r.strip_suffix("')"))
    {
        let mut text = arg.to_string();
        for (k, v) in subs.as_object().unwrap() {
            text = text.replace(&format!("${{{k}}}"), v.as_str().unwrap());
        }
        return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let (root, rest) = match path.strip_prefix("$$") {
        Some(rest) => (context, rest),
        None => (input, path.strip_prefix('$').unwrap()),
    };
    rest.split('.')
        .filter(|p| !p.is_empty())
        .fold(root.clone(), |v, key| {
            v.get(key)
                .cloned()
                .unwrap_or_else(|| panic!("{path}: no `{key}`"))
        })
}

/// Parameters rendered as Step Functions renders them: `key.$` from a path, others as given.
fn render(template: &Value, input: &Value, context: &Value, subs: &Value) -> Value {
    match template {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| match k.strip_suffix(".$") {
                    Some(key) => (
                        key.to_string(),
                        eval(v.as_str().unwrap(), input, context, subs),
                    ),
                    None => (k.clone(), render(v, input, context, subs)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A Lambda task of the definition: its payload rendered, the function invoked and retried on
/// the errors its `Retry` names (up to their `MaxAttempts`), the result as the integration
/// gives it (`{"Payload": ...}`).
fn task(api: &RuntimeApi, state: &Value, input: &Value, context: &Value, subs: &Value) -> Value {
    assert_eq!(state["Resource"], "arn:aws:states:::lambda:invoke");
    assert_eq!(state["Parameters"]["FunctionName"], "${BackfillArn}");
    let payload = render(&state["Parameters"], input, context, subs)["Payload"].clone();
    let id = request_id();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match api.invoke(FUNCTION, &payload, &id, Duration::from_secs(120)) {
            Ok(out) => return json!({ "Payload": out }),
            Err(e) => {
                let error = e["errorType"].as_str().unwrap_or("").to_string();
                let retrier = state["Retry"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| {
                        r["ErrorEquals"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|x| x == &error)
                    })
                    .unwrap_or_else(|| panic!("{error} is not retried: {e}"));
                assert!(
                    attempts <= retrier["MaxAttempts"].as_u64().unwrap(),
                    "retries exhausted: {e}"
                );
            }
        }
    }
}

/// A backfill run as the state machine's definition drives it: Plan (the function invoked with
/// the rendered payload, its result selected into `$.planned`), Settings, then the Map: items
/// read from S3 where `ItemReader` says, batched as `ItemBatcher` says, each batch a child
/// whose Replay task invokes the function. Returns the state after Settings and the children's
/// outputs.
async fn run_definition(
    api: &RuntimeApi,
    conf: &SdkConfig,
    input: Value,
    execution: &str,
) -> (Value, Vec<Value>) {
    let (def, subs) = definition();
    let context = json!({ "Execution": { "Name": execution } });
    let states = &def["States"];
    assert_eq!(def["StartAt"], "Plan");
    let plan = &states["Plan"];
    let result = task(api, plan, &input, &context, &subs);
    let selected = render(&plan["ResultSelector"], &result, &context, &subs);
    let mut state = input.clone();
    assert_eq!(plan["ResultPath"], "$.planned");
    state["planned"] = selected;
    let settings = &states[plan["Next"].as_str().unwrap()];
    assert_eq!(settings["ResultPath"], "$.settings");
    state["settings"] = render(&settings["Parameters"], &state, &context, &subs);
    let map = &states[settings["Next"].as_str().unwrap()];
    assert_eq!(
        map["ItemProcessor"]["ProcessorConfig"]["Mode"],
        "DISTRIBUTED"
    );
    assert_eq!(
        map["ItemReader"]["Resource"],
        "arn:aws:states:::s3:getObject"
    );
    assert_eq!(map["ItemReader"]["ReaderConfig"]["InputType"], "JSON");
    let at = render(&map["ItemReader"]["Parameters"], &state, &context, &subs);
    assert_eq!(at["Bucket"], RESULTS);
    let items: Vec<Value> =
        serde_json::from_slice(&object(conf, at["Key"].as_str().unwrap()).await).unwrap();
    let batcher = &map["ItemBatcher"];
    let per_batch = eval(
        batcher["MaxItemsPerBatchPath"].as_str().unwrap(),
        &state,
        &context,
        &subs,
    )
    .as_u64()
    .unwrap() as usize;
    let batch_input = render(&batcher["BatchInput"], &state, &context, &subs);
    let processor = &map["ItemProcessor"];
    let replay = &processor["States"][processor["StartAt"].as_str().unwrap()];
    assert_eq!(replay["OutputPath"], "$.Payload");
    let mut outputs = Vec::new();
    for chunk in items.chunks(per_batch.max(1)) {
        let child = json!({ "Items": chunk, "BatchInput": batch_input });
        outputs.push(task(api, replay, &child, &context, &subs)["Payload"].clone());
    }
    (state, outputs)
}

fn ids_and_kinds(findings: &[Value]) -> BTreeSet<(String, String)> {
    findings
        .iter()
        .map(|f| {
            (
                f["finding_id"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_backfill_finds_what_replay_finds_and_rides_out_faults() {
    let moto = moto();
    let conf = tagwatch_aws::testing::config(&moto.url).await;
    provision(&conf).await;
    let dir = std::env::temp_dir().join(format!("tagwatch-backfill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let api = RuntimeApi::start();
    let env = environment(&api, &moto.url, &dir.join("clean.log"));

    let input = json!({"bucket": ARCHIVE, "prefix": "trail/", "from": "2026-11-20"});
    let (state, answers) = run_definition(&api, &conf, input.clone(), "clean").await;
    assert_eq!(state["planned"]["days"], 2, "{state}");
    assert_eq!(
        state["planned"]["key"],
        "tagwatch-backfill/clean/items.json"
    );
    assert_eq!(
        state["settings"]["days_per_batch"], 4,
        "the stack's default"
    );
    let items: Vec<Value> =
        serde_json::from_slice(&object(&conf, "tagwatch-backfill/clean/items.json").await).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["bucket"], ARCHIVE);
    assert_eq!(items[0]["org"], "o-exampleorg1");
    assert_eq!(items[1]["date"], "2026-11-21");
    assert_eq!(answers.len(), 1, "one batch of up to 4 days");
    assert_eq!(answers[0]["days"], 2, "{answers:?}");

    // The same findings in the log group and in the results bucket...
    let in_log = logged(&conf).await;
    let mut in_s3 = Vec::new();
    for day in ["2026-11-20", "2026-11-21"] {
        let key = format!("tagwatch-backfill/clean/findings/111122223333/us-east-1/{day}.jsonl");
        let text = String::from_utf8(object(&conf, &key).await).unwrap();
        in_s3.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
        let summary: Value = serde_json::from_slice(
            &object(
                &conf,
                &format!("tagwatch-backfill/clean/days/111122223333/us-east-1/{day}.json"),
            )
            .await,
        )
        .unwrap();
        assert_eq!(summary["objects"], 2, "{summary}");
        assert_eq!(summary["malformed"], 0, "{summary}");
        assert_eq!(summary["already_logged"], 0, "{summary}");
        // The day's log mark names the findings that reached the log group: its findings.
        let mark: Value = serde_json::from_slice(
            &object(
                &conf,
                &format!("tagwatch-backfill/clean/logged/111122223333/us-east-1/{day}.json"),
            )
            .await,
        )
        .unwrap();
        let marked: BTreeSet<String> = mark["logged"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let of_day: BTreeSet<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["finding_id"].to_string())
            .map(|id| id.trim_matches('"').to_string())
            .collect();
        assert!(!of_day.is_empty());
        assert_eq!(marked, of_day);
    }
    assert_eq!(in_log.len(), in_s3.len());
    assert_eq!(ids_and_kinds(&in_log), ids_and_kinds(&in_s3));
    let kinds: Vec<String> = in_s3
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    for kind in ["violation", "access_denied", "unevaluated"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }

    // ...which are what `tagwatch replay` finds in the same days of the same archive, with
    // the same live tags.
    let replay = Command::new(binary("tagwatch"))
        .args([
            "replay",
            "--policy",
            "examples/intent.json",
            "--inventory-from-aws",
        ])
        .args(["--from", "2026-11-20", "s3://org-trail/trail/"])
        .current_dir(root())
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let replayed: Vec<Value> = String::from_utf8(replay.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ids_and_kinds(&replayed), ids_and_kinds(&in_s3));

    // The same run again (a new execution naming the run) does nothing: every day is done.
    let mut again_input = input.clone();
    again_input["run"] = "clean".into();
    let (_, again) = run_definition(&api, &conf, again_input, "another-execution").await;
    assert_eq!(again[0]["skipped_days"], 2, "{again:?}");
    assert_eq!(logged(&conf).await.len(), in_log.len());
    drop(env);

    // Under faults (S3 throttling, 500s and bodies cut half way; CloudWatch Logs throttling and
    // 500s before the call), with the state machine's retries: the same findings, each logged
    // once.
    let port: u16 = moto.url.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = FaultProxy::start(
        port,
        FaultPlan {
            per_mille: 350,
            seed: 0x5eed_bac4,
            s3: true,
            ..FaultPlan::clean()
        },
    );
    let api = RuntimeApi::start();
    let _env = environment(&api, &proxy.url, &dir.join("faulty.log"));
    let (state, _) = run_definition(&api, &conf, input, "faulty").await;
    assert_eq!(state["planned"]["days"], 2, "{state}");
    let mut faulty = Vec::new();
    for day in ["2026-11-20", "2026-11-21"] {
        let key = format!("tagwatch-backfill/faulty/findings/111122223333/us-east-1/{day}.jsonl");
        let text = String::from_utf8(object(&conf, &key).await).unwrap();
        faulty.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    assert_eq!(ids_and_kinds(&faulty), ids_and_kinds(&in_s3));
    let all_logged = logged(&conf).await;
    assert_eq!(
        all_logged.len(),
        2 * in_log.len(),
        "each finding logged once per run"
    );
    let stats = proxy.stats();
    let of = |what: &str| stats.get(&("s3".into(), what.into())).copied().unwrap_or(0);
    assert!(
        of("throttled") + of("failed_before") + of("cut") > 0,
        "{stats:?}"
    );
}
