//! Engine benchmarks: one decision on the seed policies, decision plus explanation, parsing a
//! 10 KB policy, and an adversarial wildcard. Run with `cargo bench -p tagwatch-core`.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark set-up on fixed inputs: a failure panics and stops the run"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tagwatch_core::iam::wildcard::{items, tokenize, Flavor, Item, Pattern};
use tagwatch_core::intent::principal::Caller;
use tagwatch_core::{evaluate, Intent, NamedPolicy, Policy, Request};

const JUNIOR: &str = include_str!("../../examples/policies/junior-engineers.json");
const LEAD: &str = include_str!("../../examples/policies/lead-engineers.json");
const INTENT: &str = include_str!("../../examples/intent.json");

fn seed_intent() -> Intent {
    let mut load = |path: &str| match path {
        "policies/junior-engineers.json" => Ok((path.to_string(), JUNIOR.to_string())),
        "policies/lead-engineers.json" => Ok((path.to_string(), LEAD.to_string())),
        _ => Err(format!("unknown {path}")),
    };
    Intent::parse(INTENT, None, &mut load).unwrap().value
}

fn request(caller: &Caller, intent: &Intent, resource: &str, tags: &[(&str, &str)]) -> Request {
    let mut r = Request::new("ssm:SendCommand", resource);
    r.context.set_resource_tags(tags.iter().copied());
    r.context.insert("aws:SourceIp", "203.0.113.10");
    r.context.insert("aws:RequestedRegion", "us-east-1");
    r.context.insert("aws:CurrentTime", "2026-11-22T05:22:15Z");
    caller.fill_context(&mut r.context);
    intent.resolve(caller).fill_context(&mut r.context);
    r
}

/// A 10 KB condition-dense policy: every statement tests tags, source IP, time and MFA.
fn condition_dense_policy() -> String {
    let mut statements = vec![r#"{"Sid":"ViaService","Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"Bool":{"aws:ViaAWSService":"true"}}}"#.to_string()];
    grow_to_10kb(&mut statements, |i| {
        format!(
            r#"{{"Sid":"S{i}","Effect":"{effect}","Action":["ssm:SendCommand","ssm:StartSession","ssm:Get*"],
"Resource":["arn:aws:ec2:us-east-1:111122223333:instance/*","arn:aws:ec2:us-west-2:111122223333:instance/*"],
"Condition":{{"StringEquals":{{"ssm:resourceTag/Team{i}":["web","api"]}},"IpAddress":{{"aws:SourceIp":["203.0.113.0/24","2001:DB8::/32"]}},
"DateLessThan":{{"aws:CurrentTime":"2027-01-01T00:00:00Z"}},"Bool":{{"aws:MultiFactorAuthPresent":"true"}}}}}}"#,
            effect = if i % 5 == 4 { "Deny" } else { "Allow" }
        )
    })
}

/// A 10 KB policy shaped like AWS managed policies: long action lists, ARN patterns, a few
/// tag conditions.
fn action_heavy_policy() -> String {
    let actions = [
        "Describe*",
        "Get*",
        "List*",
        "SendCommand",
        "StartSession",
        "ResumeSession",
        "TerminateSession",
        "CancelCommand",
        "CreateAssociation",
        "UpdateAssociation",
        "DeleteAssociation",
        "PutParameter",
        "GetParameter",
        "GetParameters",
        "GetParametersByPath",
        "LabelParameterVersion",
        "AddTagsToResource",
        "RemoveTagsFromResource",
        "StartAutomationExecution",
        "StopAutomationExecution",
    ]
    .map(|a| format!("\"ssm:{a}\""))
    .join(",");
    let mut statements = Vec::new();
    grow_to_10kb(&mut statements, |i| {
        if i % 2 == 0 {
            format!(
                r#"{{"Sid":"Ops{i}","Effect":"Allow","Action":[{actions}],"Resource":["arn:aws:ssm:*:111122223333:document/*","arn:aws:ssm:*::document/AWS-*","arn:aws:ec2:*:111122223333:instance/*","arn:aws:ssm:*:111122223333:managed-instance/*","arn:aws:ssm:*:111122223333:parameter/app/{i}/*"]}}"#
            )
        } else {
            format!(
                r#"{{"Sid":"Tagged{i}","Effect":"Allow","Action":["ssm:SendCommand","ssm:StartSession"],"Resource":"arn:aws:ec2:*:*:instance/*","Condition":{{"StringEquals":{{"ssm:resourceTag/Team":"team{i}"}}}}}}"#
            )
        }
    })
}

fn grow_to_10kb(statements: &mut Vec<String>, next: impl Fn(usize) -> String) -> String {
    let mut i = 0;
    loop {
        statements.push(next(i));
        i += 1;
        let text = format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            statements.join(",")
        );
        if text.len() >= 10 * 1024 {
            return text;
        }
    }
}

fn benches(c: &mut Criterion) {
    let intent = seed_intent();
    let junior =
        Caller::from_arn("arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice").unwrap();
    let lead = Caller::from_arn("arn:aws:sts::111122223333:assumed-role/LeadEngineer/bob").unwrap();
    let instance = "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60001";
    let cases = [
        (
            "junior_allow_test_server",
            &junior,
            request(&junior, &intent, instance, &[("Environment", "testServer")]),
        ),
        (
            "junior_deny_production",
            &junior,
            request(
                &junior,
                &intent,
                instance,
                &[("Environment", "productionServer")],
            ),
        ),
        (
            "lead_allow_production",
            &lead,
            request(
                &lead,
                &intent,
                instance,
                &[("Environment", "productionServer")],
            ),
        ),
        (
            "lead_explicit_deny_quarantine",
            &lead,
            request(
                &lead,
                &intent,
                instance,
                &[("Environment", "productionServer"), ("Quarantine", "true")],
            ),
        ),
        (
            "junior_document",
            &junior,
            request(
                &junior,
                &intent,
                "arn:aws:ssm:us-east-1::document/AWS-RunShellScript",
                &[],
            ),
        ),
    ];
    let mut group = c.benchmark_group("decision");
    for (name, caller, req) in &cases {
        let policies: Vec<&NamedPolicy> = intent.resolve(caller).policies;
        group.bench_function(*name, |b| {
            b.iter(|| evaluate(black_box(&policies), black_box(req)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decision_with_explanation");
    for (name, caller, req) in &cases {
        let policies: Vec<&NamedPolicy> = intent.resolve(caller).policies;
        group.bench_function(*name, |b| {
            b.iter(|| evaluate(black_box(&policies), black_box(req)).report(&policies, req))
        });
    }
    group.finish();

    c.bench_function("resolve_caller", |b| {
        b.iter(|| intent.resolve(black_box(&junior)).policies.len())
    });

    let mut group = c.benchmark_group("parse_10kb_policy");
    for (name, text) in [
        ("action_heavy", action_heavy_policy()),
        ("condition_dense", condition_dense_policy()),
    ] {
        assert!(
            text.len() >= 10 * 1024 && text.len() < 11 * 1024,
            "{}",
            text.len()
        );
        let parsed = Policy::check(&text, None).unwrap();
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        group.bench_function(name, |b| {
            b.iter(|| Policy::parse(black_box(&text), None).unwrap())
        });
        group.bench_function(format!("{name}_with_lints"), |b| {
            b.iter(|| Policy::check(black_box(&text), None).unwrap())
        });
    }
    group.finish();

    // Adversarial wildcards: a long literal piece between stars (substring search), and `?`
    // items that force the bit-parallel NFA. Both must stay linear in the text.
    let text = "a".repeat(2048);
    let long_piece = Pattern::new(&format!("*{}b*", "a".repeat(64)), Flavor::Glob, false);
    c.bench_function("wildcard_adversarial_2kb/substring", |b| {
        b.iter(|| long_piece.matches(black_box(&text)))
    });
    let nfa = Pattern::new(&format!("{}b", "*a?".repeat(20)), Flavor::Glob, false);
    let text_b = format!("{}b", "a".repeat(2047));
    assert!(nfa.matches(&text_b) && !long_piece.matches(&text));
    c.bench_function("wildcard_adversarial_2kb/nfa", |b| {
        b.iter(|| nfa.matches(black_box(&text_b)))
    });
}

/// The same pattern as an anchored `regex-lite` expression (`?` is `.`, `*` is `.*`, each
/// `[^:]` where the flavour keeps it inside a segment): the alternative the wildcard module
/// was measured against.
fn as_regex(pattern: &str, flavor: Flavor) -> regex_lite::Regex {
    let mut re = String::from("(?s)^");
    for item in items(&tokenize(pattern), flavor) {
        match item {
            Item::Lit(c) => re.push_str(&regex_lite::escape(&c.to_string())),
            Item::One { colon: true } => re.push('.'),
            Item::One { colon: false } => re.push_str("[^:]"),
            Item::Star { colon: true } => re.push_str(".*"),
            Item::Star { colon: false } => re.push_str("[^:]*"),
        }
    }
    re.push('$');
    regex_lite::Regex::new(&re).unwrap()
}

/// The rare wildcard shapes (`?`, stars that may not cross a colon), hand-written engine
/// against anchored `regex-lite`, side by side: compiling (once per policy load) and matching
/// (once per decision).
fn rare_shapes(c: &mut Criterion) {
    let cases: [(&str, &str, Flavor, &str); 4] = [
        (
            "question_marks",
            "web-??-*",
            Flavor::Glob,
            "web-01-frontend",
        ),
        (
            "arn_condition_segments",
            "arn:aws:iam::*:role/ops-?*",
            Flavor::ArnCondition,
            "arn:aws:iam::111122223333:role/ops-admin",
        ),
        (
            "resource_arn_segments",
            "arn:aws:ec2:us-*-?:*:instance/*",
            Flavor::ResourceArn,
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60002",
        ),
        (
            "adversarial_2kb",
            "*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?b",
            Flavor::Glob,
            "",
        ),
    ];
    let long = format!("{}b", "a".repeat(2047));
    let mut group = c.benchmark_group("wildcard_rare_shapes");
    for (name, pattern, flavor, text) in cases {
        let text = if text.is_empty() { long.as_str() } else { text };
        let ours = Pattern::new(pattern, flavor, false);
        let theirs = as_regex(pattern, flavor);
        assert_eq!(ours.matches(text), theirs.is_match(text), "{name}");
        assert!(ours.matches(text), "{name}");
        group.bench_function(format!("{name}/match/tagwatch"), |b| {
            b.iter(|| ours.matches(black_box(text)))
        });
        group.bench_function(format!("{name}/match/regex-lite"), |b| {
            b.iter(|| theirs.is_match(black_box(text)))
        });
        group.bench_function(format!("{name}/compile/tagwatch"), |b| {
            b.iter(|| Pattern::new(black_box(pattern), flavor, false))
        });
        group.bench_function(format!("{name}/compile/regex-lite"), |b| {
            b.iter(|| as_regex(black_box(pattern), flavor))
        });
    }
    group.finish();
}

/// A CloudTrail log file of `records` records shaped like the generated benchmark archive's
/// (`bench/gen_cloudtrail.py`): nested identities, short strings, one SSM call in fifty.
fn log_file(records: usize) -> String {
    let mut out = String::from("{\"Records\":[");
    for i in 0..records {
        if i > 0 {
            out.push(',');
        }
        let (source, name) = if i % 50 == 0 {
            ("ssm.amazonaws.com", "SendCommand")
        } else {
            ("ec2.amazonaws.com", "DescribeInstances")
        };
        out.push_str(&format!(
            concat!(
                r#"{{"eventVersion":"1.10","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:s{i}","#,
                r#""arn":"arn:aws:sts::111122223333:assumed-role/ops/s{i}","accountId":"111122223333","#,
                r#""sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::111122223333:role/ops"}},"#,
                r#""attributes":{{"creationDate":"2026-11-20T08:00:00Z","mfaAuthenticated":"false"}}}}}},"#,
                r#""eventTime":"2026-11-20T11:36:00Z","eventSource":"{source}","eventName":"{name}","#,
                r#""awsRegion":"us-east-1","sourceIPAddress":"198.51.100.{octet}","userAgent":"Boto3/1.34.0 md/Botocore#1.34.0","#,
                r#""requestParameters":{{"instanceIds":["i-0a1b2c3d4e5f6{i:04}"],"comment":"a \"quoted\" note"}},"#,
                r#""responseElements":null,"requestID":"req-{i}","eventID":"ev-{i}","readOnly":true,"#,
                r#""eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333"}}"#
            ),
            i = i,
            source = source,
            name = name,
            octet = i % 250
        ));
    }
    out.push_str("]}");
    out
}

/// Finding a log file's records: the structural split replay uses against serde_json's
/// raw-value scan it replaced, side by side on the same text.
fn log_file_split(c: &mut Criterion) {
    #[derive(serde::Deserialize)]
    struct LogFile<'a> {
        #[serde(borrow, rename = "Records")]
        records: Vec<&'a serde_json::value::RawValue>,
    }
    let text = log_file(5000);
    let mut group = c.benchmark_group("log_file_records");
    group.throughput(criterion::Throughput::Bytes(text.len() as u64));
    group.bench_function("structural_split", |b| {
        let mut ranges = Vec::new();
        b.iter(|| {
            assert!(tagwatch_core::logfile::split(
                std::hint::black_box(text.as_bytes()),
                &mut ranges
            ));
            ranges.len()
        })
    });
    group.bench_function("serde_json_raw_values", |b| {
        b.iter(|| {
            let log: LogFile<'_> =
                serde_json::from_slice(std::hint::black_box(text.as_bytes())).unwrap();
            log.records.len()
        })
    });
    group.finish();
}

criterion_group!(engine, benches, rare_shapes, log_file_split);
criterion_main!(engine);
