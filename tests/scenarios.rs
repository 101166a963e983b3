//! Scenario tests: JSON files in `scenarios/` that hold the evaluator to the IAM policies of the
//! AWS documentation. Each file becomes one `#[test]` through the [`scenarios!`] list below; a
//! further test fails when a `*.json` file in `scenarios/` is missing from that list.
//!
//! # File format
//!
//! ```text
//! {
//!   "description": "what the scenario shows",                       (required, non-empty)
//!   "source": "AWS doc page + section the policy shape comes from",  (required, non-empty)
//!
//!   exactly one of:
//!   "policy": { IAM identity policy },        evaluated alone, reported under the file name
//!   "intent": { intent file object },         {"principals": [{"name", "match", "policies":
//!                                             [inline policies]}], "unlisted": ...}; policies
//!                                             by {"file": ...} are not supported here
//!
//!   "expect_warnings": ["lint-code", ...],    (optional) codes that MUST be among the parse
//!                                             warnings (e.g. "resource-tag-on-document",
//!                                             "missing-via-aws-service")
//!   "forbid_warnings": ["lint-code", ...],    (optional) codes that must NOT be among them
//!
//!   "cases": [                                (required, non-empty)
//!     {
//!       "name": "...",                        (required, unique within the file)
//!       "principal": "arn:...",               caller ARN; required for intent scenarios (it
//!                                             picks the principals entries and fills
//!                                             aws:PrincipalArn & co.); optional for policy
//!                                             scenarios, where it only fills those keys. May
//!                                             be given inside "request" instead.
//!       "request": {request line},            as for `tagwatch simulate`: {"action",
//!                                             "resource", "context": {k: v | [v, ...]},
//!                                             "tags": {k: v}} ("tags" sets both
//!                                             ssm:resourceTag/k and aws:ResourceTag/k)
//!       "expect": "allow" | "explicit_deny" | "implicit_deny",
//!       "statements": [0, {"policy": "entry/policies[1]", "index": 2}, ...],
//!                                             (optional) the deciding statements, exactly:
//!                                             0-based `Statement` indexes, or objects that
//!                                             also name the policy (intent scenarios)
//!       "explanation_contains": ["...", ...], (optional) substrings of the explanation
//!       "missing_keys": ["...", ...]          (optional) exactly the context keys the
//!                                             evaluation consulted and did not find (order
//!                                             and case ignored)
//!     }
//!   ]
//! }
//! ```
//!
//! Unknown fields are errors, so a misspelt expectation cannot be silently ignored. Every case
//! also checks the report's own invariants: the serialised `decision` equals the verdict, an
//! implicit deny names no statement, an allow names only `Allow` statements and an explicit deny
//! only `Deny` statements. All failing cases of a file are reported together.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};
use tagwatch_core::iam::policy::Effect;
use tagwatch_core::iam::simulate::parse_request_line;
use tagwatch_core::intent::principal::Caller;
use tagwatch_core::{evaluate, Intent, NamedPolicy, Policy, Request, Verdict};

/// One `#[test]` for one scenario file.
macro_rules! scenario {
    ($name:ident, $file:literal) => {
        #[test]
        fn $name() {
            run_scenario($file, include_str!(concat!("scenarios/", $file)));
        }
    };
}

/// The registered scenarios: one test each, and the list `every_scenario_file_is_registered`
/// compares with the directory.
macro_rules! scenarios {
    ($($name:ident => $file:literal,)*) => {
        $(scenario!($name, $file);)*

        const REGISTERED: &[&str] = &[$($file),*];
    };
}

scenarios! {
    finance_webservers => "finance-webservers.json",
    two_tags_anded => "two-tags-anded.json",
    either_tag_group => "either-tag-group.json",
    aws_documents_two_regions => "aws-documents-two-regions.json",
    sourcevpce_viaawsservice => "sourcevpce-viaawsservice.json",
    sourcevpce_without_viaawsservice => "sourcevpce-without-viaawsservice.json",
    junior_lead_engineers => "junior-lead-engineers.json",
    resource_tag_on_document => "resource-tag-on-document.json",
    resource_tag_on_document_ifexists => "resource-tag-on-document-ifexists.json",
    explicit_deny_wins => "explicit-deny-wins.json",
}

const SCENARIO_FIELDS: &[&str] = &[
    "description",
    "source",
    "policy",
    "intent",
    "expect_warnings",
    "forbid_warnings",
    "cases",
];

const CASE_FIELDS: &[&str] = &[
    "name",
    "principal",
    "request",
    "expect",
    "statements",
    "explanation_contains",
    "missing_keys",
];

/// What a scenario evaluates against.
enum Subject {
    /// A single policy, reported under the scenario's file name.
    Policy(NamedPolicy),
    /// An intent file: each case's principal picks the policies.
    Intent(Intent),
}

/// Runs every case of one scenario file and panics with all failures.
fn run_scenario(file: &str, text: &str) {
    let root: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: invalid JSON: {e}"));
    let obj = root
        .as_object()
        .unwrap_or_else(|| panic!("{file}: a scenario must be a JSON object"));
    reject_unknown_fields(obj, SCENARIO_FIELDS, file);
    for field in ["description", "source"] {
        let ok = obj
            .get(field)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty());
        assert!(ok, "{file}: `{field}` must be a non-empty string");
    }

    let (subject, warnings) = match (obj.get("policy"), obj.get("intent")) {
        (Some(policy), None) => {
            let text = serde_json::to_string_pretty(policy).unwrap();
            let parsed = Policy::check(&text, Some(file))
                .unwrap_or_else(|e| panic!("{file}: the policy does not parse:\n{e}"));
            let named = NamedPolicy {
                name: file.to_string(),
                policy: parsed.value,
            };
            (Subject::Policy(named), parsed.warnings)
        }
        (None, Some(intent)) => {
            let text = serde_json::to_string_pretty(intent).unwrap();
            let mut no_files = |path: &str| -> Result<(String, String), String> {
                Err(format!(
                    "scenario files embed their policies; `{path}` is not read"
                ))
            };
            let parsed = Intent::check(&text, Some(file), &mut no_files)
                .unwrap_or_else(|e| panic!("{file}: the intent does not parse:\n{e}"));
            (Subject::Intent(parsed.value), parsed.warnings)
        }
        _ => panic!("{file}: give exactly one of `policy` and `intent`"),
    };

    let mut failures = Vec::new();
    let codes: Vec<&str> = warnings.iter().map(|d| d.code.as_str()).collect();
    let rendered = || {
        warnings
            .iter()
            .map(|d| format!("  {d}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for code in string_list(obj, "expect_warnings", file) {
        if !codes.contains(&code.as_str()) {
            failures.push(format!(
                "expected warning `{code}`; the warnings were {codes:?}:\n{}",
                rendered()
            ));
        }
    }
    for code in string_list(obj, "forbid_warnings", file) {
        if codes.contains(&code.as_str()) {
            failures.push(format!("unexpected warning `{code}`:\n{}", rendered()));
        }
    }

    let cases = obj
        .get("cases")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| panic!("{file}: `cases` must be a non-empty array"));
    let mut names = BTreeSet::new();
    for (i, case) in cases.iter().enumerate() {
        let case = case
            .as_object()
            .unwrap_or_else(|| panic!("{file}: cases[{i}] must be an object"));
        let name = case
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| panic!("{file}: cases[{i}] needs a non-empty `name`"));
        let label = format!("{file}: case `{name}`");
        assert!(names.insert(name), "{label}: the name is used twice");
        reject_unknown_fields(case, CASE_FIELDS, &label);
        if let Err(why) = run_case(&subject, case, &label) {
            failures.push(format!("case `{name}`: {why}"));
        }
    }

    assert!(
        failures.is_empty(),
        "{file}: {} problem(s):\n- {}",
        failures.len(),
        failures.join("\n- ")
    );
}

/// Evaluates one case; `Err` says everything that did not hold.
fn run_case(subject: &Subject, case: &Map<String, Value>, label: &str) -> Result<(), String> {
    let request_json = case
        .get("request")
        .filter(|r| r.is_object())
        .unwrap_or_else(|| panic!("{label}: `request` must be an object"));
    let line = serde_json::to_string(request_json).unwrap();
    let spec = parse_request_line(&line, Some(label), 1).map_err(|diags| {
        let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
        format!("the request does not parse: {}", text.join("; "))
    })?;
    let case_principal = case.get("principal").map(|p| {
        p.as_str()
            .unwrap_or_else(|| panic!("{label}: `principal` must be a string"))
            .to_string()
    });
    let principal = match (case_principal, spec.principal) {
        (Some(_), Some(_)) => panic!("{label}: give `principal` once, in the case or the request"),
        (p, None) | (None, p) => p,
    };
    let caller = principal
        .as_deref()
        .map(|arn| Caller::from_arn(arn).unwrap_or_else(|e| panic!("{label}: bad principal: {e}")));
    let mut request = spec.request;
    if let Some(c) = &caller {
        c.fill_context(&mut request.context);
    }

    match subject {
        Subject::Policy(named) => check(&[named], &request, case, label),
        Subject::Intent(intent) => {
            let caller = caller.unwrap_or_else(|| {
                panic!("{label}: intent scenarios need a `principal` in every case")
            });
            let res = intent.resolve(&caller);
            res.fill_context(&mut request.context);
            if res.is_unlisted() {
                check(&[], &request, case, label)
            } else {
                check(&res.policies, &request, case, label)
            }
        }
    }
}

/// Evaluates `request` against `policies` and compares with the case's expectations.
fn check(
    policies: &[&NamedPolicy],
    request: &Request,
    case: &Map<String, Value>,
    label: &str,
) -> Result<(), String> {
    let expect = case
        .get("expect")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{label}: `expect` must be a string"));
    assert!(
        ["allow", "explicit_deny", "implicit_deny"].contains(&expect),
        "{label}: `expect` must be \"allow\", \"explicit_deny\" or \"implicit_deny\", not {expect:?}"
    );

    let decision = evaluate(policies, request);
    let report = decision.report(policies, request);
    let report_json = serde_json::to_value(&report).unwrap();
    let mut problems = Vec::new();

    // The verdict, as serialised.
    let got = report_json["decision"].as_str().unwrap_or_default();
    if got != expect {
        problems.push(format!("expected {expect}, got {got}"));
    }

    // Invariants of every report.
    if report.decision != decision.verdict {
        problems.push("the report's decision differs from the evaluation's".to_string());
    }
    match decision.verdict {
        Verdict::ImplicitDeny if !report.statements.is_empty() => {
            problems.push("an implicit deny names deciding statements".to_string());
        }
        Verdict::Allow if report.statements.iter().any(|s| s.effect != Effect::Allow) => {
            problems.push("an allow is decided by a Deny statement".to_string());
        }
        Verdict::ExplicitDeny if report.statements.iter().any(|s| s.effect != Effect::Deny) => {
            problems.push("an explicit deny is decided by an Allow statement".to_string());
        }
        Verdict::Allow | Verdict::ExplicitDeny if report.statements.is_empty() => {
            problems.push("an allow or explicit deny names no statement".to_string());
        }
        _ => {}
    }

    // The deciding statements.
    if let Some(expected) = case.get("statements") {
        let expected = expected
            .as_array()
            .unwrap_or_else(|| panic!("{label}: `statements` must be an array"));
        let expected: Vec<(Option<String>, usize)> =
            expected.iter().map(|s| statement_ref(s, label)).collect();
        let named = expected.iter().any(|(p, _)| p.is_some());
        let mut want: Vec<(String, usize)> = expected
            .iter()
            .map(|(p, i)| (p.clone().unwrap_or_default(), *i))
            .collect();
        let mut have: Vec<(String, usize)> = report
            .statements
            .iter()
            .map(|s| {
                let policy = if named {
                    s.policy.clone()
                } else {
                    String::new()
                };
                (policy, s.index)
            })
            .collect();
        want.sort();
        have.sort();
        if want != have {
            let got: Vec<String> = report
                .statements
                .iter()
                .map(|s| format!("{} #{}", s.policy, s.index))
                .collect();
            problems.push(format!(
                "expected deciding statements {want:?}, got [{}]",
                got.join(", ")
            ));
        }
    }

    // The explanation.
    for needle in string_list(case, "explanation_contains", label) {
        if !report.explanation.contains(&needle) {
            problems.push(format!(
                "the explanation does not contain {needle:?}: {:?}",
                report.explanation
            ));
        }
    }

    // The missing keys.
    if case.contains_key("missing_keys") {
        let lower = |keys: &[String]| -> BTreeSet<String> {
            keys.iter().map(|k| k.to_ascii_lowercase()).collect()
        };
        let want = lower(&string_list(case, "missing_keys", label));
        let have = lower(&report.missing_keys);
        if want != have {
            problems.push(format!(
                "expected missing keys {want:?}, got {:?}",
                report.missing_keys
            ));
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n    request: {} on {}\n    report: {}",
            problems.join("; "),
            request.action,
            request.resource,
            report_json
        ))
    }
}

/// A `statements` entry: an index, or `{"policy": name, "index": n}`.
fn statement_ref(v: &Value, label: &str) -> (Option<String>, usize) {
    let index = |v: &Value| {
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or_else(|| panic!("{label}: statement indexes are non-negative integers"))
    };
    match v {
        Value::Object(o) => {
            reject_unknown_fields(o, &["policy", "index"], label);
            let policy = o
                .get("policy")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{label}: a statement object needs a `policy` string"));
            let i = o
                .get("index")
                .unwrap_or_else(|| panic!("{label}: a statement object needs an `index`"));
            (Some(policy.to_string()), index(i))
        }
        other => (None, index(other)),
    }
}

/// An optional array of strings.
fn string_list(obj: &Map<String, Value>, field: &str, label: &str) -> Vec<String> {
    match obj.get(field) {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .unwrap_or_else(|| panic!("{label}: `{field}` must be an array of strings")),
    }
}

fn reject_unknown_fields(obj: &Map<String, Value>, known: &[&str], label: &str) {
    for key in obj.keys() {
        assert!(
            known.contains(&key.as_str()),
            "{label}: unknown field `{key}`; expected one of {known:?}"
        );
    }
}

#[test]
fn every_scenario_file_is_registered() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let unregistered: Vec<&String> = on_disk
        .iter()
        .filter(|f| !REGISTERED.contains(&f.as_str()))
        .collect();
    assert!(
        unregistered.is_empty(),
        "scenario files missing from the `scenarios!` list in scenarios.rs: {unregistered:?}"
    );
    let distinct: BTreeSet<&str> = REGISTERED.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        REGISTERED.len(),
        "a scenario file is registered twice"
    );
}

/// The runner itself must fail on a wrong expectation, a misspelt field or a missing warning,
/// or a passing scenario would prove nothing.
#[test]
fn the_runner_rejects_wrong_expectations() {
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "ssm:SendCommand", "Resource": "arn:aws:ec2:*:*:instance/*"}]}"#;
    let scenario = |extra: &str, case: &str| {
        format!(
            r#"{{"description": "d", "source": "s", "policy": {policy}{extra},
                "cases": [{{"name": "c", "request": {{"action": "ssm:SendCommand",
                "resource": "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0"}}
                {case}}}]}}"#
        )
    };
    let passes =
        |text: String| std::panic::catch_unwind(|| run_scenario("self-test.json", &text)).is_ok();
    assert!(passes(scenario(
        "",
        r#", "expect": "allow", "statements": [0]"#
    )));
    let failing = [
        scenario("", r#", "expect": "implicit_deny""#),
        scenario("", r#", "expect": "allow", "statements": [1]"#),
        scenario(
            "",
            r#", "expect": "allow", "explanation_contains": ["nope"]"#,
        ),
        scenario(
            "",
            r#", "expect": "allow", "missing_keys": ["aws:SourceVpce"]"#,
        ),
        scenario("", r#", "expected": "allow""#),
        scenario(
            r#", "expect_warnings": ["missing-via-aws-service"]"#,
            r#", "expect": "allow""#,
        ),
    ];
    for text in failing {
        assert!(!passes(text.clone()), "the runner accepted:\n{text}");
    }
}
