//! The policy parser and evaluator: never a panic, and a parsed policy always decides (a
//! verdict for requests built from the fuzz input, with and without unknown keys).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::iam::policy::{NamedPolicy, Policy};
use tagwatch_core::{evaluate, evaluate_bounded, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Policy::check(text, Some("fuzz.json"));
    let Ok(parsed) = Policy::parse(text, Some("fuzz.json")) else {
        return;
    };
    let named = NamedPolicy {
        name: "fuzz".into(),
        policy: parsed.value,
    };
    let policies = [&named];
    for (action, resource) in [
        (
            "ssm:SendCommand",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60001",
        ),
        (
            "ssm:StartSession",
            "arn:aws:ssm:us-east-1::document/AWS-RunShellScript",
        ),
        ("s3:GetObject", "*"),
    ] {
        let mut req = Request::new(action, resource);
        req.context
            .insert("ssm:resourceTag/Environment", "testServer");
        req.context.insert("aws:SourceIp", "198.51.100.23");
        req.context.insert("aws:MultiFactorAuthPresent", "true");
        req.context
            .insert("aws:CurrentTime", "2026-11-20T09:00:00Z");
        let _ = evaluate(&policies, &req);
        req.context.mark_unknown("aws:PrincipalOrgID");
        req.context.mark_unknown("ssm:resourceTag/");
        let _ = evaluate_bounded(&policies, &req);
    }
});
