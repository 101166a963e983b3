//! End-to-end tests of the `tagwatch` binary: exit codes, output contracts, error messages.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rstest::rstest;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn tagwatch(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagwatch"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// A scratch directory unique to one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tagwatch-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

const FINANCE: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Documents", "Effect": "Allow", "Action": "ssm:SendCommand",
     "Resource": "arn:aws:ssm:*::document/AWS-RunShellScript"},
    {"Sid": "WebServers", "Effect": "Allow", "Action": "ssm:SendCommand",
     "Resource": "arn:aws:ec2:*:*:instance/*",
     "Condition": {"StringLike": {"ssm:resourceTag/Finance": ["WebServers"]}}}
  ]
}"#;

#[test]
fn check_accepts_the_bundled_intent() {
    let o = tagwatch(&["check", "--policy", "examples/intent.json"], None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("examples/intent.json: valid (0 errors, 0 warnings)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_lists_every_error_with_file_line_and_path() {
    let dir = scratch("check-errors");
    let file = dir.join("bad.json");
    std::fs::write(
        &file,
        "{\"Version\": \"2012-10-17\",\n \"Statement\": [\n  {\"Effect\": \"Alow\", \"Action\": \"ssm:SendCommand\", \"Resource\": \"*\"},\n  {\"Effect\": \"Allow\", \"Action\": \"ssm:SendCommand\", \"Resource\": \"*\",\n   \"Condition\": {\"IpAddress\": {\"aws:SourceIp\": \"10.0.0.0/40\"}}}]}",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let o = tagwatch(&["check", "--iam-policy", path], None);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("{path}:3:14: error[unknown-effect]")),
        "{out}"
    );
    assert!(out.contains("(at $.Statement[0].Effect)"), "{out}");
    assert!(out.contains("error[malformed-value]"), "{out}");
    assert!(
        out.contains(r#"(at $.Statement[1].Condition.IpAddress["aws:SourceIp"])"#),
        "{out}"
    );
    assert!(out.contains("invalid (2 errors"), "{out}");
}

#[test]
fn check_warns_about_pitfalls_but_passes() {
    let dir = scratch("check-lints");
    let file = dir.join("lints.json");
    std::fs::write(
        &file,
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["ssm:SendCommand","ssm:SendComand"],"Resource":["arn:aws:ssm:*:*:instance/*","arn:aws:ssm:*::document/AWS-RunShellScript"],
             "Condition":{"StringEquals":{"ssm:resourceTag/Env":"dev","aws:SourceVpce":"vpce-1"}}},
            {"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:*::document/AWS-RunShellScript","Condition":{"StringEquals":{"aws:SourceVpce":"vpce-1"}}}]}"#,
    )
    .unwrap();
    let o = tagwatch(
        &[
            "check",
            "--iam-policy",
            file.to_str().unwrap(),
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report = &json_lines(&stdout(&o))[0];
    assert_eq!(report["valid"], true);
    let codes: Vec<&str> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    for code in [
        "unknown-action",
        "instance-arn-service",
        "resource-tag-on-document",
        "missing-via-aws-service",
    ] {
        assert!(codes.contains(&code), "{code} not in {codes:?}");
    }
}

#[test]
fn simulate_batch_prints_one_line_per_request_in_order() {
    let dir = scratch("batch");
    let policy = dir.join("finance.json");
    std::fs::write(&policy, FINANCE).unwrap();
    let requests = [
        r#"{"action":"ssm:SendCommand","resource":"arn:aws:ec2:us-east-1:111122223333:instance/i-1","context":{"ssm:resourceTag/Finance":"WebServers"}}"#,
        "",
        r#"{"action":"ssm:SendCommand","resource":"arn:aws:ec2:us-east-1:111122223333:instance/i-2","tags":{"Finance":"Payroll"}}"#,
        r#"{"action":"ssm:SendCommand","resource":"arn:aws:ssm:us-east-1::document/AWS-RunShellScript"}"#,
    ]
    .join("\n");
    let o = tagwatch(
        &[
            "simulate",
            "--iam-policy",
            policy.to_str().unwrap(),
            "--requests",
            "-",
        ],
        Some(&requests),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&stdout(&o));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["decision"], "allow");
    assert_eq!(lines[0]["statements"][0]["sid"], "WebServers");
    assert_eq!(lines[0]["statements"][0]["index"], 1);
    assert_eq!(lines[1]["decision"], "implicit_deny");
    assert!(lines[1]["explanation"]
        .as_str()
        .unwrap()
        .contains("statement 2 (Sid WebServers) matched action and resource but ssm:resourceTag/Finance was `Payroll`, not `WebServers`"));
    assert_eq!(lines[1]["statements"], serde_json::json!([]));
    assert_eq!(lines[2]["decision"], "allow");
    assert_eq!(
        lines[2]["resource"],
        "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"
    );
}

#[test]
fn simulate_through_the_intent() {
    let o = tagwatch(
        &[
            "simulate",
            "--policy",
            "examples/intent.json",
            "--requests",
            "examples/requests.jsonl",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&stdout(&o));
    let decisions: Vec<&str> = lines
        .iter()
        .map(|l| l["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        [
            "allow",
            "implicit_deny",
            "allow",
            "implicit_deny",
            "allow",
            "explicit_deny",
            "implicit_deny",
            "implicit_deny"
        ]
    );
    assert_eq!(
        lines[0]["principal"]["entries"],
        serde_json::json!(["junior-engineers", "ops-deny-guard"])
    );
    assert_eq!(lines[5]["statements"][0]["sid"], "NoQuarantinedHosts");
    assert_eq!(
        lines[5]["statements"][0]["policy"],
        "ops-deny-guard/policies[0]"
    );
    assert_eq!(lines[7]["principal"]["unlisted"], false);
}

#[test]
fn simulate_single_request_from_flags() {
    let o = tagwatch(
        &[
            "simulate",
            "--policy",
            "examples/intent.json",
            "--principal",
            "arn:aws:sts::111122223333:assumed-role/LeadEngineer/bob",
            "--action",
            "ssm:StartSession",
            "--resource",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-9",
            "--tag",
            "Environment=productionServer",
            "--context",
            "aws:SourceIp=203.0.113.7",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let line = &json_lines(&stdout(&o))[0];
    assert_eq!(line["decision"], "allow");
    assert_eq!(line["statements"][0]["sid"], "TestAndProductionServers");

    let text = tagwatch(
        &[
            "simulate",
            "--policy",
            "examples/intent.json",
            "--principal",
            "arn:aws:sts::111122223333:assumed-role/Stranger/x",
            "--action",
            "ssm:StartSession",
            "--resource",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-9",
            "--format",
            "text",
        ],
        None,
    );
    let out = stdout(&text);
    assert!(
        out.starts_with(
            "DENY (implicit)  ssm:StartSession on arn:aws:ec2:us-east-1:111122223333:instance/i-9"
        ),
        "{out}"
    );
    assert!(
        out.contains("caller: arn:aws:sts::111122223333:assumed-role/Stranger/x (ops-deny-guard)"),
        "{out}"
    );
}

#[test]
fn simulate_unlisted_caller_says_so() {
    let dir = scratch("unlisted");
    let intent = dir.join("intent.json");
    std::fs::write(
        &intent,
        format!(r#"{{"principals":[{{"name":"web","match":"arn:aws:iam::111122223333:role/Web","policies":[{FINANCE}]}}],"unlisted":"violation"}}"#),
    )
    .unwrap();
    let o = tagwatch(
        &[
            "simulate",
            "--policy",
            intent.to_str().unwrap(),
            "--principal",
            "arn:aws:iam::111122223333:user/mallory",
            "--action",
            "ssm:SendCommand",
            "--resource",
            "arn:aws:ec2:us-east-1:1:instance/i-1",
            "--format",
            "json",
        ],
        None,
    );
    let line = &json_lines(&stdout(&o))[0];
    assert_eq!(line["decision"], "implicit_deny");
    assert_eq!(line["principal"]["unlisted"], true);
    assert_eq!(line["principal"]["unlisted_policy"], "violation");
    assert!(line["explanation"]
        .as_str()
        .unwrap()
        .contains("matches no intent entry"));
}

#[test]
fn malformed_request_line_fails_whole_batch_with_location() {
    let dir = scratch("malformed");
    let policy = dir.join("finance.json");
    std::fs::write(&policy, FINANCE).unwrap();
    let requests = dir.join("requests.jsonl");
    std::fs::write(
        &requests,
        "{\"action\":\"ssm:SendCommand\",\"resource\":\"arn:aws:ec2:us-east-1:1:instance/i-1\"}\n{\"action\":\"ssm:SendCommand\",\"resource\":42}\n{\"action\": \n",
    )
    .unwrap();
    let req = requests.to_str().unwrap();
    let o = tagwatch(
        &[
            "simulate",
            "--iam-policy",
            policy.to_str().unwrap(),
            "--requests",
            req,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "", "no partial output");
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{req}:2:40: error[invalid-field]")),
        "{err}"
    );
    assert!(err.contains("(at $.resource)"), "{err}");
    assert!(
        err.contains(&format!("{req}:3:")) && err.contains("invalid-json"),
        "{err}"
    );
}

#[test]
fn repeated_context_keys_are_multivalued() {
    let dir = scratch("multi");
    let policy = dir.join("p.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:AddTagsToResource","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["Env","Team"]}}}}"#,
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let run = |keys: &[&str]| {
        let mut args = vec![
            "simulate",
            "--iam-policy",
            p,
            "--action",
            "ssm:AddTagsToResource",
            "--resource",
            "arn:aws:ec2:us-east-1:1:instance/i-1",
            "--format",
            "json",
        ];
        let ctx: Vec<String> = keys.iter().map(|k| format!("aws:TagKeys={k}")).collect();
        for c in &ctx {
            args.push("--context");
            args.push(c);
        }
        let o = tagwatch(&args, None);
        json_lines(&stdout(&o))[0]["decision"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(run(&["Env", "Team"]), "allow");
    assert_eq!(run(&["Env", "Owner"]), "implicit_deny");
}

/// Exit status and the message on stderr, one row per way a run can end: 0 done, 1 findings of
/// a `--fail-on` kind, 2 bad input or usage (with what and where).
#[rstest]
#[case::check_of_a_missing_file(&["check", "--policy", "does/not/exist.json"], None, 2, Some("cannot read `does/not/exist.json`"))]
#[case::simulate_an_invalid_policy(&["simulate", "--iam-policy", "cli/tests/data/no-resource-policy.json", "--action", "ssm:SendCommand", "--resource", "*"], None, 2, Some("missing-element"))]
#[case::simulate_a_context_flag_without_value(&["simulate", "--iam-policy", "examples/policies/junior-engineers.json", "--action", "ssm:SendCommand", "--resource", "*", "--context", "novalue"], None, 2, Some("--context `novalue`: expected KEY=VALUE"))]
#[case::simulate_without_requests(&["simulate", "--iam-policy", "examples/policies/junior-engineers.json"], None, 2, Some("give --requests FILE"))]
#[case::simulate_through_an_intent_without_a_principal(&["simulate", "--policy", "examples/intent.json", "--requests", "-"], Some(r#"{"action":"ssm:SendCommand","resource":"arn:aws:ec2:us-east-1:1:instance/i-1"}"#), 2, Some("missing-principal"))]
#[case::simulate_with_a_principal_that_is_no_arn(&["simulate", "--policy", "examples/intent.json", "--principal", "bob", "--action", "ssm:SendCommand", "--resource", "arn:aws:ec2:us-east-1:1:instance/i-1"], None, 2, Some("`bob` is not a caller ARN"))]
#[case::replay_fails_on_a_violation(&["replay", "--policy", "examples/intent.json", "--inventory", "examples/inventory.json", "--fail-on", "violation", "events/cloudtrail-sendcommand-instanceids.json"], None, 1, None)]
#[case::replay_without_the_failing_kind(&["replay", "--policy", "examples/intent.json", "--inventory", "examples/inventory.json", "--fail-on", "violation", "events/cloudtrail-startsession-allowed.json"], None, 0, None)]
#[case::replay_strict_on_malformed_input(&["replay", "--policy", "examples/intent.json", "--inventory", "examples/inventory.json", "--strict", "events/malformed/not-json.json", "events/cloudtrail-startsession-allowed.json"], None, 2, Some("malformed"))]
#[case::replay_of_a_missing_file(&["replay", "--policy", "examples/intent.json", "--inventory", "examples/inventory.json", "events/no-such-file.json"], None, 2, Some("events/no-such-file.json"))]
fn exit_status_and_message(
    #[case] args: &[&str],
    #[case] stdin: Option<&str>,
    #[case] status: i32,
    #[case] on_stderr: Option<&str>,
) {
    let o = tagwatch(args, stdin);
    assert_eq!(o.status.code(), Some(status), "{}", stderr(&o));
    if let Some(text) = on_stderr {
        assert!(stderr(&o).contains(text), "{}", stderr(&o));
    }
}

// ---- replay ---------------------------------------------------------------------------------

fn replay(extra: &[&str], paths: &[&str], stdin: Option<&str>) -> Output {
    let mut args = vec![
        "replay",
        "--policy",
        "examples/intent.json",
        "--inventory",
        "examples/inventory.json",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(paths);
    tagwatch(&args, stdin)
}

fn kinds(findings: &[serde_json::Value]) -> Vec<String> {
    let mut k: Vec<String> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

#[test]
fn replay_of_the_bundled_events() {
    let o = replay(&[], &["events/"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let findings = json_lines(&stdout(&o));
    let k = kinds(&findings);
    // Violations: the junior on a production server, the customer document and the
    // quarantined host through the VPC endpoint, the tag-targeted patch run reaching the
    // quarantined host, a ResumeSession outside intent, and the junior's runs on a production
    // server through a State Manager association and an Automation execution (attributed to
    // her). AccessDenied: four single calls and the prober's six rotating sessions, which are
    // one spike of their role. Unevaluated: an unknown instance, a command whose record never
    // came, and a run of an association whose definition was never seen.
    assert_eq!(k.iter().filter(|k| *k == "violation").count(), 7, "{k:?}");
    assert_eq!(
        k.iter().filter(|k| *k == "access_denied").count(),
        10,
        "{k:?}"
    );
    assert_eq!(
        k.iter().filter(|k| *k == "access_denied_spike").count(),
        1,
        "{k:?}"
    );
    assert_eq!(k.iter().filter(|k| *k == "unevaluated").count(), 3, "{k:?}");
    let err = stderr(&o);
    for bad in [
        "events/malformed/corrupt.json.gz",
        "events/malformed/not-json.json",
        "events/malformed/sendcommand-missing-useridentity.json",
    ] {
        assert!(
            err.contains(bad) && err.contains("malformed"),
            "{bad} not reported: {err}"
        );
    }
    assert!(err.contains("(at $.detail.userIdentity)"), "{err}");
    assert!(err.contains("3 malformed"), "{err}");
    assert!(
        err.contains(
            "findings: 7 violation, 10 access_denied, 1 access_denied_spike, 3 unevaluated"
        ),
        "{err}"
    );
    // Finding ids are unique and deterministic.
    let again = json_lines(&stdout(&replay(&[], &["events/"], None)));
    let ids = |f: &[serde_json::Value]| {
        f.iter()
            .map(|x| x["finding_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&findings), ids(&again));
    let mut unique = ids(&findings);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), findings.len());
}

#[test]
fn replay_reads_gzip_log_files_like_their_plain_twins() {
    let plain = json_lines(&stdout(&replay(
        &[],
        &["events/cloudtrail-logfile-mixed.json"],
        None,
    )));
    let gz = json_lines(&stdout(&replay(
        &[],
        &["events/cloudtrail-logfile-mixed.json.gz"],
        None,
    )));
    assert_eq!(plain.len(), 1);
    assert_eq!(plain, gz);
    let o = replay(&[], &["events/cloudtrail-logfile-mixed.json.gz"], None);
    assert!(stderr(&o).contains("10 events read"), "{}", stderr(&o));
    assert!(stderr(&o).contains("7 skipped"), "{}", stderr(&o));
}

#[test]
fn replay_reads_json_lines_from_stdin_with_line_numbers() {
    let one = |name: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(repo().join("events").join(name)).unwrap(),
        )
        .unwrap();
        v.to_string()
    };
    let input = [
        one("cloudtrail-sendcommand-tag-targets.json"),
        "{\"broken\": ".to_string(),
        one("ssm-command-status-change-success.json"),
        one("ssm-command-invocation-status-change-success.json"),
    ]
    .join("\n");
    let o = replay(&["--format", "table"], &["-"], Some(&input));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("KIND"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("violation")).count(),
        1,
        "{out}"
    );
    assert!(out.contains("i-0a1b2c3d4e5f60003"), "{out}");
    assert!(
        stderr(&o).contains("<stdin>:2: malformed: not a JSON object"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn replay_reads_pretty_printed_log_files_and_gzipped_json_lines() {
    let dir = scratch("replay-shapes");
    let log: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("events/cloudtrail-logfile-mixed.json")).unwrap(),
    )
    .unwrap();
    let pretty = dir.join("pretty.json");
    std::fs::write(&pretty, serde_json::to_string_pretty(&log).unwrap()).unwrap();
    // The same records as JSON lines, gzip-compressed, with a name that does not say so.
    let lines: Vec<String> = log["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    let gz = dir.join("records.jsonl.gz");
    {
        use flate2::write::GzEncoder;
        let mut e = GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(lines.join("\n").as_bytes()).unwrap();
        e.finish().unwrap();
    }
    let a = json_lines(&stdout(&replay(&[], &[pretty.to_str().unwrap()], None)));
    let b = json_lines(&stdout(&replay(&[], &[gz.to_str().unwrap()], None)));
    assert_eq!(a.len(), 1);
    assert_eq!(a, b);
    let o = replay(&[], &[gz.to_str().unwrap()], None);
    assert!(stderr(&o).contains("10 events read"), "{}", stderr(&o));
}

/// Tags the example inventory's instances in moto (the same ids as the fixtures).
async fn tag_instances_in_moto(url: &str) {
    let conf = tagwatch_aws::testing::config(url).await;
    let inventory = std::fs::read_to_string(repo().join("examples/inventory.json")).unwrap();
    tagwatch_aws::testing::tag_instances(&conf, &inventory)
        .await
        .unwrap();
}

/// The environment of a `tagwatch` that talks to `endpoint` (moto or a proxy) with test
/// credentials, the SDK making up to `attempts` attempts per call.
fn aws_env<'a>(endpoint: &'a str, attempts: &'a str) -> [(&'static str, &'a str); 6] {
    [
        ("NO_COLOR", "1"),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_MAX_ATTEMPTS", attempts),
    ]
}

fn replay_from_aws(endpoint: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        "--policy",
        "examples/intent.json",
        "--inventory-from-aws",
    ];
    args.extend_from_slice(extra);
    args.push("events/");
    Command::new(env!("CARGO_BIN_EXE_tagwatch"))
        .args(&args)
        .current_dir(repo())
        .envs(aws_env(endpoint, "1"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn replay_with_live_tags_from_aws() {
    let moto = tagwatch_tests::moto();
    tag_instances_in_moto(&moto.url).await;
    let live = replay_from_aws(&moto.url, &[]);
    assert_eq!(live.status.code(), Some(0), "{}", stderr(&live));
    let file = replay(&[], &["events/"], None);
    let by_resource = |o: &Output| {
        let mut v: Vec<(String, String)> = json_lines(&stdout(o))
            .iter()
            .map(|f| {
                (
                    f["resource"].as_str().unwrap_or("-").to_string(),
                    f["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let (live, file) = (by_resource(&live), by_resource(&file));
    // The instances both sources know give the same findings.
    let known = |v: &[(String, String)]| -> Vec<(String, String)> {
        v.iter()
            .filter(|(r, _)| r.contains("i-0a1b2c3d4e5f6000") && !r.ends_with("60009"))
            .cloned()
            .collect()
    };
    assert_eq!(known(&live), known(&file));
    assert!(!known(&live).is_empty());
    // Documents too: the account's documents' tags come from SSM ListTagsForResource.
    let docs = |v: &[(String, String)]| -> Vec<(String, String)> {
        v.iter()
            .filter(|(r, _)| r.contains(":document/"))
            .cloned()
            .collect()
    };
    assert_eq!(docs(&live), docs(&file));
    assert!(!docs(&live).is_empty());
    // 60009 is in no inventory file and EC2 does not know it either (DescribeTags answers
    // nothing, DescribeInstances does not list it): unknown in both, never "untagged".
    let of = |v: &[(String, String)], suffix: &str| -> Vec<String> {
        v.iter()
            .filter(|(r, _)| r.ends_with(suffix))
            .map(|(_, k)| k.clone())
            .collect()
    };
    assert_eq!(of(&file, "60009"), ["unevaluated"]);
    assert_eq!(of(&live, "60009"), ["unevaluated"]);
    // The managed node is in the file; SSM (moto) does not know it, so live it is unknown.
    assert!(of(&live, "mi-0123456789abcdef0")
        .iter()
        .all(|k| k == "unevaluated"));
    assert!(!of(&live, "mi-0123456789abcdef0").is_empty());
}

#[test]
fn replay_with_live_tags_fails_clearly_when_aws_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = replay_from_aws(&format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--inventory-from-aws") && err.contains("EC2 DescribeTags"),
        "{err}"
    );
}

/// Colour follows the stream and the conventions (`CLICOLOR_FORCE` forces it, `NO_COLOR` wins
/// over it; a pipe gets none): diagnostics on stdout for `check`, the whole error on stderr.
#[test]
fn colour_is_forced_by_clicolor_force_and_refused_by_no_color() {
    let dir = scratch("colour");
    let file = dir.join("bad.json");
    std::fs::write(&file, "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Alow\", \"Action\": \"ssm:SendCommand\", \"Resource\": \"*\"}]}").unwrap();
    let path = file.to_str().unwrap();
    let run = |vars: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tagwatch"));
        cmd.args(args)
            .current_dir(repo())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("CLICOLOR");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let check = ["check", "--iam-policy", path];
    let forced = run(&[("CLICOLOR_FORCE", "1")], &check);
    assert!(stdout(&forced).contains("\x1b[31m"), "{}", stdout(&forced));
    assert!(stdout(&forced).contains("error[unknown-effect]"));
    let refused = run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], &check);
    assert!(!stdout(&refused).contains('\x1b'), "{}", stdout(&refused));
    let piped = run(&[], &check);
    assert!(!stdout(&piped).contains('\x1b'));
    assert_eq!(stdout(&piped), stdout(&refused));
    // A usage error on stderr: red when forced, and the same text otherwise.
    let missing = ["check", "--iam-policy", "/nonexistent/policy.json"];
    let forced = run(&[("CLICOLOR_FORCE", "1")], &missing);
    assert_eq!(forced.status.code(), Some(2));
    assert!(
        stderr(&forced).starts_with("\x1b[31mcannot read"),
        "{}",
        stderr(&forced)
    );
    let plain = run(&[], &missing);
    assert!(
        stderr(&plain).starts_with("cannot read"),
        "{}",
        stderr(&plain)
    );
}

// ---- exact text, where the text is the contract (insta snapshots in `snapshots/`) ----------

/// `check`'s text for an invalid policy: each error's line (what scripts match), the offending
/// source line with a caret under the element, and the verdict line.
#[test]
fn check_text_shows_each_error_under_its_source_line() {
    let o = tagwatch(
        &[
            "check",
            "--iam-policy",
            "cli/tests/data/invalid-policy.json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&o));
}

/// Lint warnings with their help texts.
#[test]
fn check_text_gives_the_lints_help() {
    let o = tagwatch(
        &[
            "check",
            "--iam-policy",
            "cli/tests/data/pitfalls-policy.json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&o));
}

/// One simulated request through the example intent, as people read it.
#[test]
fn simulate_text_names_the_caller_the_entries_and_what_was_missing() {
    let o = tagwatch(
        &[
            "simulate",
            "--policy",
            "examples/intent.json",
            "--principal",
            "arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice",
            "--action",
            "ssm:SendCommand",
            "--resource",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60002",
            "--tag",
            "Environment=test",
            "--format",
            "text",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
}

/// Issue 14 §2: replay reads inputs on several threads and decides them in input order, so the
/// findings (and the malformed-input reports) are the same for every `--jobs`: a shuffled
/// archive of plain and gzipped JSON-lines files, with a denial burst spread over files, repeats
/// and malformed lines, and one larger JSON-lines file read in ranges (`--split-bytes`; its
/// malformed lines keep their line numbers), replayed with 1, 3 and 8 jobs.
#[test]
fn replay_gives_the_same_findings_on_any_number_of_jobs() {
    use flate2::write::GzEncoder;
    let dir = scratch("jobs");
    let mut records: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(repo().join("events")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                records.push(v.to_string());
            }
        }
    }
    for n in 0..12 {
        let at = format!("09:0{}:{:02}", n / 6, (n % 6) * 10);
        records.push(tagwatch_tests::denied_json_at(&format!("burst-{n}"), &at).to_string());
    }
    for n in 0..300 {
        records.push(format!(
            r#"{{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"noise-{n}","eventTime":"2026-11-20T09:00:00Z","awsRegion":"us-east-1","recipientAccountId":"111122223333"}}"#
        ));
    }
    records.push("{not json".to_string());
    records.push(
        r#"{"source": "aws.ssm", "detail-type": "EC2 Command Status-change Notification"}"#
            .to_string(),
    );
    // A fixed shuffle (a linear congruential generator), then nine files in turn.
    let mut seed: u64 = 0x5eed;
    for i in (1..records.len()).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        records.swap(i, (seed >> 33) as usize % (i + 1));
    }
    let files = 9;
    for f in 0..files {
        let text: String = records
            .iter()
            .skip(f)
            .step_by(files)
            .map(|r| format!("{r}\n"))
            .collect();
        if f % 2 == 0 {
            let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(text.as_bytes()).unwrap();
            std::fs::write(
                dir.join(format!("part-{f:02}.jsonl.gz")),
                gz.finish().unwrap(),
            )
            .unwrap();
        } else {
            std::fs::write(dir.join(format!("part-{f:02}.jsonl")), text).unwrap();
        }
    }
    // The whole archive again as one file, noise first (its first line an event on its own,
    // so it may be read in ranges).
    let mut all: Vec<&String> = records.iter().filter(|r| r.contains("noise-0\"")).collect();
    all.extend(records.iter().filter(|r| !r.contains("noise-0\"")));
    let all: String = all.iter().map(|r| format!("{r}\n")).collect();
    assert!(all.len() > 16 * 2048, "several ranges: {}", all.len());
    std::fs::write(dir.join("whole.jsonl"), all).unwrap();
    let dir = dir.to_str().unwrap();
    let run = |jobs: &str| {
        let o = replay(&["--jobs", jobs, "--split-bytes", "2048"], &[dir], None);
        assert!(o.status.success(), "{}", stderr(&o));
        // The summary's timing differs from run to run; everything else may not.
        let err: Vec<String> = stderr(&o)
            .lines()
            .map(|l| l.split(" in ").next().unwrap_or(l).to_string())
            .collect();
        (stdout(&o), err)
    };
    let (one, one_err) = run("1");
    let findings = json_lines(&one);
    let found = kinds(&findings);
    for kind in ["violation", "access_denied_spike", "unevaluated"] {
        assert!(found.iter().any(|k| k == kind), "{kind} in {found:?}");
    }
    assert!(
        one_err.iter().any(|l| l.contains("malformed")),
        "{one_err:?}"
    );
    for jobs in ["3", "8"] {
        let (out, err) = run(jobs);
        assert_eq!(
            out, one,
            "--jobs {jobs}: the same findings, in the same order"
        );
        assert_eq!(err, one_err, "--jobs {jobs}: the same reports");
    }
}

// ---- replay from S3 (issue 14 §3) -----------------------------------------------------------

/// A CloudTrail archive as CloudTrail lays it out (a trail's and an organisation trail's
/// folders, two regions, three days, digest files beside them, a note), each place holding the
/// bundled records as if they happened there that day (in two log files); written under
/// `dir/trail/`. Returns the keys, relative to `dir`.
#[expect(
    clippy::indexing_slicing,
    reason = "test data built from the bundled events"
)]
fn write_archive(dir: &Path) -> Vec<String> {
    use flate2::write::GzEncoder;
    let records = tagwatch_tests::cloudtrail_records();
    let mut keys = Vec::new();
    let places = [
        ("", "111122223333", "us-east-1"),
        ("", "111122223333", "eu-west-1"),
        ("o-exampleorg1/", "444455556666", "us-east-1"),
    ];
    for (org, account, region) in places {
        for day in ["2026-11-19", "2026-11-20", "2026-11-21"] {
            let folder = format!(
                "trail/AWSLogs/{org}{account}/CloudTrail/{region}/{}/",
                day.replace('-', "/")
            );
            let placed: Vec<serde_json::Value> = records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    let id = r["eventID"].as_str().unwrap_or("x").to_string();
                    r["eventID"] = format!("{id}-{account}-{region}-{day}").into();
                    if let Some(t) = r["eventTime"].as_str() {
                        r["eventTime"] = format!("{day}{}", &t[10..]).into();
                    }
                    r["awsRegion"] = region.into();
                    r["recipientAccountId"] = account.into();
                    r
                })
                .collect();
            for (n, half) in placed.chunks(placed.len().div_ceil(2)).enumerate() {
                let key = format!(
                    "{folder}{account}_CloudTrail_{region}_{}T00{n}5Z_f{n}.json.gz",
                    day.replace('-', "")
                );
                let text = serde_json::json!({ "Records": half }).to_string();
                let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(text.as_bytes()).unwrap();
                let path = dir.join(&key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, gz.finish().unwrap()).unwrap();
                keys.push(key);
            }
            let digest = format!(
                "trail/AWSLogs/{org}{account}/CloudTrail-Digest/{region}/{}/digest.json.gz",
                day.replace('-', "/")
            );
            let path = dir.join(&digest);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, br#"{"awsAccountId":"111122223333","logFiles":[]}"#).unwrap();
            keys.push(digest);
        }
    }
    std::fs::write(dir.join("trail/AWSLogs/README.txt"), b"notes").unwrap();
    keys.push("trail/AWSLogs/README.txt".to_string());
    keys
}

/// Uploads `keys` (files under `dir`) to a new bucket in moto.
async fn upload(endpoint: &str, bucket: &str, dir: &Path, keys: &[String]) {
    let conf = tagwatch_aws::testing::config(endpoint).await;
    let s3 = tagwatch_aws::archive::s3_client(&conf);
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    for key in keys {
        let body = std::fs::read(dir.join(key)).unwrap();
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
}

/// `tagwatch replay` with AWS settings for `endpoint`; `args` after the intent and inventory.
fn replay_with_aws(endpoint: &str, args: &[&str], attempts: &str) -> Output {
    let mut all = vec![
        "replay",
        "--policy",
        "examples/intent.json",
        "--inventory",
        "examples/inventory.json",
    ];
    all.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_tagwatch"))
        .args(&all)
        .current_dir(repo())
        .envs(aws_env(endpoint, attempts))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The summary lines without their timing.
fn summary(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("tagwatch replay:") || l.starts_with("findings:"))
        .map(|l| l.split(" in ").next().unwrap_or(l).to_string())
        .collect()
}

/// Issue 14 §3: an archive replayed from S3 gives exactly what the same archive gives from a
/// local copy (findings in the same order, the same counts), with or without a selection by
/// day, account and region (which lists only the selected folders); digests, Insights files
/// and notes are passed over and said so.
#[tokio::test]
async fn replay_from_s3_is_the_replay_of_the_same_archive_on_disk() {
    let dir = scratch("s3-archive");
    let keys = write_archive(&dir);
    let moto = tagwatch_tests::moto();
    upload(&moto.url, "trail-logs", &dir, &keys).await;
    let local_root = dir.join("trail");
    let local_root = local_root.to_str().unwrap();

    let from_s3 = replay_with_aws(&moto.url, &["s3://trail-logs/trail/"], "3");
    assert_eq!(from_s3.status.code(), Some(0), "{}", stderr(&from_s3));
    let local = replay(&[], &[local_root], None);
    assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));
    assert_eq!(
        stdout(&from_s3),
        stdout(&local),
        "the same findings, in order"
    );
    assert_eq!(summary(&from_s3), summary(&local));
    let all = json_lines(&stdout(&from_s3));
    assert!(all.len() > 9, "{}", all.len());
    let err = stderr(&from_s3);
    assert!(
        err.contains("s3://trail-logs/trail/: 18 objects")
            && err.contains("in 9 day folders of the CloudTrail layout")
            && !err.contains("passed over"),
        "{err}"
    );
    assert!(err.contains("from 18 inputs"), "{err}");
    assert!(
        stderr(&local).contains("passed over 9 digest or Insights files"),
        "{}",
        stderr(&local)
    );

    // A selection: one day, the member account only, one region.
    let select = [
        "--from",
        "2026-11-20",
        "--to",
        "2026-11-20",
        "--accounts",
        "444455556666",
        "--regions",
        "us-east-1",
    ];
    let mut args = select.to_vec();
    args.push("s3://trail-logs/trail");
    let some = replay_with_aws(&moto.url, &args, "3");
    assert_eq!(some.status.code(), Some(0), "{}", stderr(&some));
    let mut args = select.to_vec();
    args.push(local_root);
    let local_some = replay(&args, &[], None);
    assert_eq!(stdout(&some), stdout(&local_some));
    assert_eq!(summary(&some), summary(&local_some));
    assert!(
        stderr(&some).contains(": 2 objects") && stderr(&some).contains("in 1 day folder "),
        "{}",
        stderr(&some)
    );
    assert!(
        stderr(&local_some)
            .contains("passed over 9 digest or Insights files, 16 files not selected"),
        "{}",
        stderr(&local_some)
    );
    // Without the layout (a flat prefix), every input-named object is read; with a selection
    // the ones outside the layout are not selected, and said so.
    let flat = replay_with_aws(
        &moto.url,
        &["--accounts", "111122223333", "s3://trail-logs/"],
        "3",
    );
    assert_eq!(flat.status.code(), Some(0), "{}", stderr(&flat));
    assert!(
        stderr(&flat).contains("s3://trail-logs/: 12 objects")
            && stderr(&flat).contains(
                "under a prefix without the CloudTrail layout; passed over 9 digest or Insights files, 6 not selected"
            ),
        "{}",
        stderr(&flat)
    );
    let local_flat = replay(&["--accounts", "111122223333", local_root], &[], None);
    assert_eq!(stdout(&flat), stdout(&local_flat));
    let selected = json_lines(&stdout(&some));
    assert!(!selected.is_empty() && selected.len() < all.len());
    for f in &selected {
        let text = f.to_string();
        assert!(
            text.contains("2026-11-20-444455556666") || text.contains("2026-11-20"),
            "{text}"
        );
        assert!(!text.contains("-111122223333-"), "{text}");
    }

    // A prefix inside the layout: one account's region.
    let region = replay_with_aws(
        &moto.url,
        &["s3://trail-logs/trail/AWSLogs/111122223333/CloudTrail/eu-west-1/"],
        "3",
    );
    assert!(
        stderr(&region).contains(": 6 objects") && stderr(&region).contains("in 3 day folders"),
        "{}",
        stderr(&region)
    );
}

/// Throttling (`SlowDown`), 500s and object bodies cut off half way, on listings and reads:
/// the SDK retries the answers, a cut body is read again from where it broke; the findings
/// are exactly those of a clean run.
#[tokio::test]
async fn replay_from_s3_rides_out_throttling_500s_and_cut_bodies() {
    use tagwatch_tests::fault_proxy::{FaultPlan, FaultProxy};
    let dir = scratch("s3-faults");
    let keys = write_archive(&dir);
    let moto = tagwatch_tests::moto();
    upload(&moto.url, "trail-logs", &dir, &keys).await;
    let clean = replay_with_aws(&moto.url, &["s3://trail-logs/trail/"], "3");
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    let port: u16 = moto.url.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = FaultProxy::start(
        port,
        FaultPlan {
            per_mille: 250,
            seed: 0x53_fa17,
            s3: true,
            ..FaultPlan::clean()
        },
    );
    let faulty = replay_with_aws(
        &proxy.url,
        &["--s3-concurrency", "4", "s3://trail-logs/trail/"],
        "8",
    );
    assert_eq!(faulty.status.code(), Some(0), "{}", stderr(&faulty));
    assert_eq!(stdout(&faulty), stdout(&clean));
    assert_eq!(summary(&faulty), summary(&clean));
    let stats = proxy.stats();
    let of = |what: &str| stats.get(&("s3".into(), what.into())).copied().unwrap_or(0);
    assert!(of("throttled") > 0 && of("failed_before") > 0, "{stats:?}");
    assert!(of("cut") > 0, "bodies were cut: {stats:?}");
}

/// An object S3 refuses to hand over (403 `AccessDenied` on `GetObject`, as for an object
/// whose KMS key the reader may not use) is never dropped in silence: the replay goes on with
/// the others, reports that object by its URL with S3's reason, and counts it malformed; the
/// findings are those of the archive without it.
#[tokio::test]
async fn replay_from_s3_reports_an_object_it_may_not_read_and_goes_on() {
    use tagwatch_tests::fault_proxy::{FaultPlan, FaultProxy};
    let dir = scratch("s3-denied");
    let keys = write_archive(&dir);
    let moto = tagwatch_tests::moto();
    upload(&moto.url, "trail-logs", &dir, &keys).await;
    const DENIED: &str = "444455556666_CloudTrail_us-east-1_20261120T0005Z_f0.json.gz";
    let denied = DENIED;
    let denied_key = keys.iter().find(|k| k.ends_with(denied)).unwrap().clone();
    let port: u16 = moto.url.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = FaultProxy::start(
        port,
        FaultPlan {
            deny_s3_keys: &[DENIED],
            ..FaultPlan::clean()
        },
    );
    let o = replay_with_aws(&proxy.url, &["s3://trail-logs/trail/"], "3");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains(&format!("s3://trail-logs/{denied_key}")))
        .unwrap_or_else(|| panic!("the denied object is not named: {err}"));
    assert!(
        line.contains("malformed") && line.contains("cannot read") && line.contains("AccessDenied"),
        "{line}"
    );
    assert!(
        err.contains("from 18 inputs") && err.contains("1 malformed"),
        "{err}"
    );
    let stats = proxy.stats();
    assert_eq!(
        stats.get(&("s3".into(), "denied".into())),
        Some(&1),
        "{stats:?}"
    );

    // The same archive on disk without that object gives the same findings.
    std::fs::remove_file(dir.join(&denied_key)).unwrap();
    let local = replay(&[], &[dir.join("trail").to_str().unwrap()], None);
    assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));
    assert!(!stdout(&local).is_empty());
    assert_eq!(stdout(&o), stdout(&local));
    // And the refused object's records are really missing from it.
    let all = replay_with_aws(&moto.url, &["s3://trail-logs/trail/"], "3");
    assert_ne!(stdout(&all), stdout(&o));
}

/// A bucket that cannot be listed stops the replay with the URL and S3's reason (exit 2); a
/// malformed URL or selection is a usage error.
#[tokio::test]
async fn replay_from_s3_names_what_it_cannot_list() {
    let moto = tagwatch_tests::moto();
    let o = replay_with_aws(&moto.url, &["s3://no-such-bucket/AWSLogs/"], "1");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("cannot list `s3://no-such-bucket/AWSLogs/`")
            && err.contains("S3 ListObjectsV2")
            && err.contains("NoSuchBucket"),
        "{err}"
    );
    let o = replay_with_aws(&moto.url, &["s3://Bad_Bucket/x"], "1");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is not an S3 bucket name"),
        "{}",
        stderr(&o)
    );
    let o = replay_with_aws(&moto.url, &["--from", "2026-11-31", "s3://b-b/x"], "1");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a calendar day"), "{}", stderr(&o));
}
