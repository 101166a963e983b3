//! The evaluator: a request against a set of identity policies, decided as IAM decides
//! (IAM policy evaluation logic: an explicit deny in any policy wins; otherwise an allow is
//! needed; otherwise the request is implicitly denied).
//!
//! [`evaluate`] is the hot path: it allocates only to record the deciding statements and any
//! missing keys. [`Decision::report`] turns a decision into the serialisable result with its
//! one-sentence explanation.

use serde::{Deserialize, Serialize};

use crate::iam::policy::condition::{BaseOp, Condition, Family};
use crate::iam::policy::{Effect, NamedPolicy, Statement, StatementMatch};
use crate::iam::request::{ContextValue, Request};

/// The three outcomes of IAM evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::ExplicitDeny => "explicit_deny",
            Verdict::ImplicitDeny => "implicit_deny",
        }
    }
}

/// A statement by position: policy index in the evaluated set, statement index in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementId {
    pub policy: usize,
    pub statement: usize,
}

/// The value `evaluate` returns: never an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The statements that decided: every applying `Allow` for an allow, every applying `Deny`
    /// for an explicit deny, none for an implicit deny.
    pub deciding: Vec<StatementId>,
    /// `Allow` statements that covered the action but stopped at the resource or a condition.
    pub near_misses: Vec<(StatementId, StatementMatch)>,
    /// Context keys the evaluation consulted and did not find (condition keys, variables).
    pub missing_keys: Vec<String>,
}

/// Evaluates `request` against the union of `policies` (like a user's own and group policies).
/// Unknown keys (see [`crate::RequestContext::mark_unknown`]) count as absent here; use
/// [`evaluate_bounded`] to learn whether the verdict depends on them.
pub fn evaluate(policies: &[&NamedPolicy], request: &Request) -> Decision {
    evaluate_assuming(policies, request, None)
}

/// A verdict with what nobody could tell taken into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounded {
    /// The decision with unknown keys counted as absent (for its statements and explanation).
    pub decision: Decision,
    /// The verdict whatever the unknown keys hold; `None` when it depends on them.
    pub certain: Option<Verdict>,
    /// The unknown keys the evaluation read (empty: the verdict is certain).
    pub unknown_keys: Vec<String>,
}

/// Evaluates `request` and says whether its verdict depends on keys the context marks unknown.
///
/// IAM's verdict is monotone in each statement's applicability: an `Allow` that applies more
/// can only make it more permissive, a `Deny` only less (IAM policy evaluation logic). So the
/// request is decided twice more, once with every test on an unknown key passing in `Allow`
/// statements and failing in `Deny` statements (the most permissive any values could make it)
/// and once the other way round (the most restrictive); when both agree, every possible value
/// of the unknown keys gives that verdict.
pub fn evaluate_bounded(policies: &[&NamedPolicy], request: &Request) -> Bounded {
    let decision = evaluate(policies, request);
    let ctx = &request.context;
    let mut unknown_keys: Vec<String> = decision
        .missing_keys
        .iter()
        .filter(|k| ctx.is_unknown_lower(&k.to_ascii_lowercase()))
        .cloned()
        .collect();
    if unknown_keys.is_empty() {
        return Bounded {
            certain: Some(decision.verdict),
            decision,
            unknown_keys,
        };
    }
    let most = evaluate_assuming(policies, request, Some(true));
    let least = evaluate_assuming(policies, request, Some(false));
    for k in most.missing_keys.iter().chain(&least.missing_keys) {
        if ctx.is_unknown_lower(&k.to_ascii_lowercase())
            && !unknown_keys.iter().any(|u| u.eq_ignore_ascii_case(k))
        {
            unknown_keys.push(k.clone());
        }
    }
    let certain = (most.verdict == least.verdict).then_some(most.verdict);
    if certain.is_some() {
        unknown_keys.clear();
    }
    Bounded {
        decision,
        certain,
        unknown_keys,
    }
}

/// `permissive`: `None` counts unknown keys as absent; `Some(true)` makes tests on them pass
/// in `Allow` statements and fail in `Deny` ones; `Some(false)` the opposite.
fn evaluate_assuming(
    policies: &[&NamedPolicy],
    request: &Request,
    permissive: Option<bool>,
) -> Decision {
    let mut allows = Vec::new();
    let mut denies = Vec::new();
    let mut near_misses = Vec::new();
    let mut missing_keys = Vec::new();
    for (pi, named) in policies.iter().enumerate() {
        for s in &named.policy.statements {
            let id = StatementId {
                policy: pi,
                statement: s.index,
            };
            let unknown_holds = permissive.map(|p| p == (s.effect == Effect::Allow));
            let m = s.matches_assuming(
                &request.action,
                &request.resource,
                &request.context,
                &mut missing_keys,
                unknown_holds,
            );
            match (m, s.effect) {
                (StatementMatch::Applies, Effect::Deny) => denies.push(id),
                (StatementMatch::Applies, Effect::Allow) => allows.push(id),
                (StatementMatch::Action, _) | (_, Effect::Deny) => {}
                (m, Effect::Allow) => near_misses.push((id, m)),
            }
        }
    }
    let (verdict, deciding) = if !denies.is_empty() {
        (Verdict::ExplicitDeny, denies)
    } else if !allows.is_empty() {
        (Verdict::Allow, allows)
    } else {
        (Verdict::ImplicitDeny, Vec::new())
    };
    Decision {
        verdict,
        deciding,
        near_misses,
        missing_keys,
    }
}

/// A statement named in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementRef {
    /// The policy's name (a file, or `<intent entry>/policies[i]`).
    pub policy: String,
    /// 0-based position in the policy's `Statement` array.
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: Effect,
}

/// The serialisable result of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionReport {
    pub decision: Verdict,
    pub statements: Vec<StatementRef>,
    pub explanation: String,
    /// Keys the decision depended on that the request did not carry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_keys: Vec<String>,
}

fn statement<'p>(
    policies: &[&'p NamedPolicy],
    id: StatementId,
) -> Option<(&'p NamedPolicy, &'p Statement)> {
    let named = policies.get(id.policy)?;
    let s = named
        .policy
        .statements
        .iter()
        .find(|s| s.index == id.statement)?;
    Some((named, s))
}

impl Decision {
    /// The report: verdict, deciding statements and the explanation.
    pub fn report(&self, policies: &[&NamedPolicy], request: &Request) -> DecisionReport {
        let statements = self
            .deciding
            .iter()
            .filter_map(|&id| statement(policies, id))
            .map(|(named, s)| StatementRef {
                policy: named.name.clone(),
                index: s.index,
                sid: s.sid.clone(),
                effect: s.effect,
            })
            .collect();
        DecisionReport {
            decision: self.verdict,
            statements,
            explanation: self.explain(policies, request),
            missing_keys: self.missing_keys.clone(),
        }
    }

    /// One sentence saying why.
    pub fn explain(&self, policies: &[&NamedPolicy], request: &Request) -> String {
        let name = |named: &NamedPolicy, s: &Statement| {
            if policies.len() > 1 {
                format!("{} of {}", s.describe(), named.name)
            } else {
                s.describe()
            }
        };
        let target = format!("{} on {}", request.action, request.resource);
        match self.verdict {
            Verdict::Allow | Verdict::ExplicitDeny => {
                let deciders: Vec<_> = self
                    .deciding
                    .iter()
                    .filter_map(|&id| statement(policies, id))
                    .collect();
                let (verb, lead) = if self.verdict == Verdict::Allow {
                    ("allows", "allowed")
                } else {
                    ("denies", "denied explicitly")
                };
                let mut text = match deciders.first() {
                    Some((named, s)) => {
                        let mut t = format!("{lead}: {} {verb} {target}", name(named, s));
                        let facts = condition_facts(s, request);
                        if !facts.is_empty() {
                            t.push_str(&format!(" ({})", facts.join(", ")));
                        }
                        t
                    }
                    None => format!("{lead}: {target}"),
                };
                if deciders.len() > 1 {
                    let others: Vec<String> =
                        deciders.iter().skip(1).map(|(n, s)| name(n, s)).collect();
                    text.push_str(&format!("; also {}", others.join(", ")));
                }
                text
            }
            Verdict::ImplicitDeny => {
                if policies.is_empty() {
                    format!("denied: no policy applies, so nothing allows {target}")
                } else {
                    let mut text = format!("denied: no statement allows {target}");
                    let conditions: Vec<String> = self
                        .near_misses
                        .iter()
                        .filter_map(|&(id, m)| match m {
                            StatementMatch::Condition(ci) => {
                                let (named, s) = statement(policies, id)?;
                                let c = s.conditions.get(ci)?;
                                Some(format!(
                                    "{} matched action and resource but {}",
                                    name(named, s),
                                    describe_failure(c, request)
                                ))
                            }
                            _ => None,
                        })
                        .take(3)
                        .collect();
                    if conditions.is_empty() {
                        let resource_misses: Vec<String> = self
                            .near_misses
                            .iter()
                            .filter(|(_, m)| *m == StatementMatch::Resource)
                            .filter_map(|&(id, _)| statement(policies, id))
                            .map(|(n, s)| name(n, s))
                            .take(3)
                            .collect();
                        if resource_misses.is_empty() {
                            text.push_str("; no Allow statement covers the action");
                        } else {
                            text.push_str(&format!(
                                "; {} cover{} the action but not this resource",
                                resource_misses.join(", "),
                                if resource_misses.len() == 1 { "s" } else { "" }
                            ));
                        }
                    } else {
                        text.push_str("; ");
                        text.push_str(&conditions.join("; "));
                    }
                    text
                }
            }
        }
    }
}

fn quoted(values: &[String]) -> String {
    let q: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
    match q.len() {
        0 => "no value".to_string(),
        1 => q.concat(),
        _ => format!("any of {}", q.join(", ")),
    }
}

fn actual(v: &ContextValue) -> String {
    match v {
        ContextValue::Single(s) => format!("`{s}`"),
        ContextValue::Multi(vs) => format!(
            "[{}]",
            vs.iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Why a condition failed, e.g. "ssm:resourceTag/Finance was `Payroll`, not `WebServers`".
fn describe_failure(c: &Condition, request: &Request) -> String {
    let Some(found) = request.context.get_lower(&c.key_lower) else {
        return format!("{} was not in the request ({} needs it)", c.key, c.operator);
    };
    let base = c.operator.base;
    let positive_equality = matches!(
        base,
        BaseOp::StringEquals
            | BaseOp::StringEqualsIgnoreCase
            | BaseOp::ArnEquals
            | BaseOp::Bool
            | BaseOp::NumericEquals
            | BaseOp::DateEquals
    ) && c.operator.qualifier.is_none();
    let literal_like = matches!(base, BaseOp::StringLike | BaseOp::ArnLike)
        && c.operator.qualifier.is_none()
        && !c
            .raw_values
            .iter()
            .any(|v| v.contains('*') || v.contains('?'));
    if positive_equality || literal_like {
        format!(
            "{} was {}, not {}",
            c.key,
            actual(found),
            quoted(&c.raw_values)
        )
    } else if matches!(base, BaseOp::StringLike | BaseOp::ArnLike) && c.operator.qualifier.is_none()
    {
        format!(
            "{} was {}, which does not match {}",
            c.key,
            actual(found),
            quoted(&c.raw_values)
        )
    } else if base.family() == Family::Null {
        format!("{} was present, which `Null: true` excludes", c.key)
    } else {
        format!(
            "{} was {}, which fails `{}` {}",
            c.key,
            actual(found),
            c.operator,
            quoted(&c.raw_values)
        )
    }
}

/// The request values behind a deciding statement's conditions (first few).
fn condition_facts(s: &Statement, request: &Request) -> Vec<String> {
    s.conditions
        .iter()
        .take(3)
        .map(|c| match request.context.get_lower(&c.key_lower) {
            Some(v) => format!("{} was {}", c.key, actual(v)),
            None => format!("{} was absent", c.key),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::policy::Policy;
    use crate::Request;

    fn named(name: &str, text: &str) -> NamedPolicy {
        NamedPolicy {
            name: name.to_string(),
            policy: Policy::parse(text, None)
                .unwrap_or_else(|e| panic!("{e}"))
                .value,
        }
    }

    const INSTANCE: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0";

    const FINANCE: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Documents","Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:*::document/AWS-RunShellScript"},
        {"Sid":"WebServers","Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ec2:*:*:instance/*",
         "Condition":{"StringLike":{"ssm:resourceTag/Finance":["WebServers"]}}}]}"#;

    #[test]
    fn explanation_names_the_near_miss_and_values() {
        let p = named("finance.json", FINANCE);
        let req =
            Request::new("ssm:SendCommand", INSTANCE).with("ssm:resourceTag/Finance", "Payroll");
        let d = evaluate(&[&p], &req);
        assert_eq!(d.verdict, Verdict::ImplicitDeny);
        let text = d.explain(&[&p], &req);
        assert!(
            text.starts_with(&format!("denied: no statement allows ssm:SendCommand on {INSTANCE}; statement 2 (Sid WebServers) matched action and resource but ssm:resourceTag/Finance was `Payroll`, not `WebServers`")),
            "{text}"
        );
        let ok =
            Request::new("ssm:SendCommand", INSTANCE).with("ssm:resourceTag/Finance", "WebServers");
        let d = evaluate(&[&p], &ok);
        assert_eq!(d.verdict, Verdict::Allow);
        assert_eq!(
            d.deciding,
            vec![StatementId {
                policy: 0,
                statement: 1
            }]
        );
        let report = d.report(&[&p], &ok);
        assert_eq!(report.statements[0].sid.as_deref(), Some("WebServers"));
        assert_eq!(report.statements[0].policy, "finance.json");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["decision"], "allow");
        assert_eq!(json["statements"][0]["index"], 1);
    }

    #[test]
    fn explicit_deny_in_any_policy_wins() {
        // IAM policy evaluation logic: an explicit deny in any policy overrides any allow.
        let allow = named(
            "allow",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:*","Resource":"*"}}"#,
        );
        let deny = named(
            "deny",
            r#"{"Version":"2012-10-17","Statement":{"Sid":"NoProd","Effect":"Deny","Action":"ssm:SendCommand","Resource":"*","Condition":{"StringEquals":{"ssm:resourceTag/Env":"prod"}}}}"#,
        );
        let prod = Request::new("ssm:SendCommand", INSTANCE).with("ssm:resourceTag/Env", "prod");
        let d = evaluate(&[&allow, &deny], &prod);
        assert_eq!(d.verdict, Verdict::ExplicitDeny);
        assert_eq!(
            d.deciding,
            vec![StatementId {
                policy: 1,
                statement: 0
            }]
        );
        assert!(d
            .explain(&[&allow, &deny], &prod)
            .starts_with("denied explicitly: statement 1 (Sid NoProd) of deny denies"));
        let dev = Request::new("ssm:SendCommand", INSTANCE).with("ssm:resourceTag/Env", "dev");
        assert_eq!(evaluate(&[&allow, &deny], &dev).verdict, Verdict::Allow);
    }

    #[test]
    fn no_policy_means_implicit_deny() {
        let req = Request::new("ssm:SendCommand", INSTANCE);
        let d = evaluate(&[], &req);
        assert_eq!(d.verdict, Verdict::ImplicitDeny);
        assert!(d.deciding.is_empty());
        assert!(d.explain(&[], &req).contains("no policy applies"));
    }

    #[test]
    fn actions_ignore_case_resources_do_not() {
        let p = named(
            "p",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"SSM:sendcommand","Resource":"arn:aws:ec2:*:*:instance/i-ABC"}}"#,
        );
        let upper = "arn:aws:ec2:us-east-1:1:instance/i-ABC";
        let lower = "arn:aws:ec2:us-east-1:1:instance/i-abc";
        assert_eq!(
            evaluate(&[&p], &Request::new("ssm:SendCommand", upper)).verdict,
            Verdict::Allow
        );
        assert_eq!(
            evaluate(&[&p], &Request::new("ssm:SendCommand", lower)).verdict,
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn not_action_and_not_resource() {
        let p = named(
            "p",
            r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","NotAction":"ssm:StartSession","Resource":"*"},
            {"Effect":"Deny","Action":"ssm:*","NotResource":"arn:aws:ec2:us-east-1:*:instance/*"}]}"#,
        );
        assert_eq!(
            evaluate(&[&p], &Request::new("ssm:SendCommand", INSTANCE)).verdict,
            Verdict::Allow
        );
        assert_eq!(
            evaluate(&[&p], &Request::new("ssm:StartSession", INSTANCE)).verdict,
            Verdict::ImplicitDeny
        );
        let west = "arn:aws:ec2:us-west-2:111122223333:instance/i-1";
        assert_eq!(
            evaluate(&[&p], &Request::new("ssm:SendCommand", west)).verdict,
            Verdict::ExplicitDeny
        );
    }

    #[test]
    fn resource_variables() {
        let p = named(
            "p",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:TerminateSession","Resource":"arn:aws:ssm:*:*:session/${aws:username}-*"}}"#,
        );
        let mine = Request::new(
            "ssm:TerminateSession",
            "arn:aws:ssm:us-east-1:1:session/alice-0a1b",
        )
        .with("aws:username", "alice");
        assert_eq!(evaluate(&[&p], &mine).verdict, Verdict::Allow);
        let theirs = Request::new(
            "ssm:TerminateSession",
            "arn:aws:ssm:us-east-1:1:session/bob-0a1b",
        )
        .with("aws:username", "alice");
        assert_eq!(evaluate(&[&p], &theirs).verdict, Verdict::ImplicitDeny);
        // IAM policy variables, "Policy variables with no value": a Resource whose variable has
        // no value matches no resource.
        let role = Request::new(
            "ssm:TerminateSession",
            "arn:aws:ssm:us-east-1:1:session/-0a1b",
        );
        let d = evaluate(&[&p], &role);
        assert_eq!(d.verdict, Verdict::ImplicitDeny);
        assert_eq!(d.missing_keys, vec!["aws:username".to_string()]);
    }

    #[test]
    fn version_2008_reads_variables_literally() {
        // IAM JSON policy elements: Version — with 2008-10-17 `${aws:username}` is a literal.
        let p = named(
            "p",
            r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"ssm:TerminateSession","Resource":"arn:aws:ssm:*:*:session/${aws:username}-*"}}"#,
        );
        let literal = Request::new(
            "ssm:TerminateSession",
            "arn:aws:ssm:us-east-1:1:session/${aws:username}-1",
        )
        .with("aws:username", "alice");
        assert_eq!(evaluate(&[&p], &literal).verdict, Verdict::Allow);
        let substituted = Request::new(
            "ssm:TerminateSession",
            "arn:aws:ssm:us-east-1:1:session/alice-1",
        )
        .with("aws:username", "alice");
        assert_eq!(evaluate(&[&p], &substituted).verdict, Verdict::ImplicitDeny);
    }

    #[test]
    fn every_allowing_statement_is_reported() {
        let p = named(
            "p",
            r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"A","Effect":"Allow","Action":"ssm:SendCommand","Resource":"*"},
            {"Sid":"B","Effect":"Allow","Action":"ssm:Send*","Resource":"arn:aws:ec2:*:*:instance/*"},
            {"Sid":"C","Effect":"Allow","Action":"ssm:StartSession","Resource":"*"}]}"#,
        );
        let req = Request::new("ssm:SendCommand", INSTANCE);
        let d = evaluate(&[&p], &req);
        assert_eq!(d.deciding.len(), 2);
        assert!(d
            .explain(&[&p], &req)
            .contains("; also statement 2 (Sid B)"));
    }

    #[test]
    fn resource_miss_is_explained() {
        let p = named("p", FINANCE);
        let req = Request::new(
            "ssm:SendCommand",
            "arn:aws:ssm:us-east-1::document/AWS-ApplyPatchBaseline",
        );
        let text = evaluate(&[&p], &req).explain(&[&p], &req);
        assert!(text.contains("statement 1 (Sid Documents), statement 2 (Sid WebServers) cover the action but not this resource"), "{text}");
        let other = Request::new("ssm:StartSession", INSTANCE);
        assert!(evaluate(&[&p], &other)
            .explain(&[&p], &other)
            .contains("no Allow statement covers the action"));
    }

    /// Unknown keys: the verdict is reported certain only when every value of them gives it.
    #[test]
    fn bounded_verdicts_say_when_they_depend_on_unknown_keys() {
        let p = named("p", FINANCE);
        let mut req = Request::new("ssm:SendCommand", INSTANCE);
        req.context.mark_unknown("ssm:resourceTag/");
        let b = evaluate_bounded(&[&p], &req);
        assert_eq!(b.certain, None, "the tag decides it and is unknown");
        assert_eq!(b.unknown_keys, ["ssm:resourceTag/Finance"]);
        assert_eq!(
            b.decision.verdict,
            Verdict::ImplicitDeny,
            "absent-counting decision kept"
        );

        // The document statement does not read the tag: certain despite the unknown tags.
        let mut doc = Request::new(
            "ssm:SendCommand",
            "arn:aws:ssm:us-east-1::document/AWS-RunShellScript",
        );
        doc.context.mark_unknown("ssm:resourceTag/");
        let b = evaluate_bounded(&[&p], &doc);
        assert_eq!(b.certain, Some(Verdict::Allow));
        assert!(b.unknown_keys.is_empty());

        // A Deny on an unknown key: could be an explicit deny, could be an allow.
        let deny = named(
            "d",
            r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*"},
            {"Effect":"Deny","Action":"ssm:SendCommand","Resource":"*","Condition":{"Bool":{"aws:ViaAWSService":"false"}}}]}"#,
        );
        let mut via = Request::new("ssm:SendCommand", INSTANCE);
        via.context.mark_unknown("aws:ViaAWSService");
        let b = evaluate_bounded(&[&deny], &via);
        assert_eq!(b.certain, None);
        assert_eq!(b.unknown_keys, ["aws:ViaAWSService"]);
        via.context.insert("aws:ViaAWSService", "true");
        assert_eq!(
            evaluate_bounded(&[&deny], &via).certain,
            Some(Verdict::Allow)
        );

        // An unknown key in a statement that fails on a known fact first does not matter.
        let both = named(
            "b",
            r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*",
             "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1","aws:RequestedRegion":"eu-west-1"}}}]}"#,
        );
        let mut open =
            Request::new("ssm:SendCommand", INSTANCE).with("aws:RequestedRegion", "us-east-1");
        open.context.absent_is_unknown_except(&[]);
        let b = evaluate_bounded(&[&both], &open);
        assert_eq!(b.certain, Some(Verdict::ImplicitDeny), "{b:?}");
    }

    #[test]
    fn missing_tag_is_named_in_the_explanation() {
        let p = named("p", FINANCE);
        let req = Request::new("ssm:SendCommand", INSTANCE);
        let d = evaluate(&[&p], &req);
        assert_eq!(d.missing_keys, vec!["ssm:resourceTag/Finance".to_string()]);
        let text = d.explain(&[&p], &req);
        assert!(
            text.contains("ssm:resourceTag/Finance was not in the request"),
            "{text}"
        );
    }
}
