//! Warnings about valid policies that do not do what their authors expect: the pitfalls users
//! actually hit when they restrict Run Command and Session Manager by tags.

use super::condition::{Family, Qualifier};
use super::{Effect, Policy, ResourcePattern, Statement, Version};
use crate::diag::Code;
use crate::diag::Reporter;
use crate::iam::catalog;
use crate::iam::request::RequestContext;
use crate::iam::wildcard::{Flavor, Pattern};
use crate::json::{Json, JsonKind, Span};

/// Sample ARN of an AWS-owned document (no account, no tags).
const AWS_DOCUMENT: &str = "arn:aws:ssm:us-east-1::document/AWS-RunShellScript";

/// Does the wildcard action name `pattern` (without prefix) match any `ssm` action?
fn ssm_action_matching(pattern: &str) -> bool {
    let lower = pattern.to_ascii_lowercase();
    let actions = catalog::ssm_actions_lower();
    if let Some(prefix) = lower.strip_suffix('*').filter(|p| !p.contains(['*', '?'])) {
        let from = actions.partition_point(|a| a.as_str() < prefix);
        return actions.get(from).is_some_and(|a| a.starts_with(prefix));
    }
    let p = Pattern::new(&lower, Flavor::Glob, false);
    actions.iter().any(|a| p.matches(a))
}

fn covers_resource(s: &Statement, arn: &str) -> bool {
    let ctx = RequestContext::new();
    let mut missing = Vec::new();
    let hit = s.resources.patterns.iter().any(|p| match p {
        ResourcePattern::Static(_) => p.matches(arn, &ctx, &mut missing),
        ResourcePattern::Template { .. } => false,
    });
    hit != s.resources.negated
}

/// Positive resource-tag conditions (documents without the tag fail them).
fn resource_tag_conditions(s: &Statement) -> impl Iterator<Item = &super::condition::Condition> {
    s.conditions.iter().filter(|c| {
        let lower = &c.key_lower;
        (lower.starts_with("ssm:resourcetag/") || lower.starts_with("aws:resourcetag/"))
            && !c.operator.if_exists
            && !c.operator.base.negated()
    })
}

/// Warns at `Statement[i].Condition.<op>.<key>` of a policy-level lint.
fn warn_at_condition<'j>(
    r: &mut Reporter<'_, 'j>,
    statements_json: &'j Json<'j>,
    s: &Statement,
    c: &super::condition::Condition,
    code: Code,
    msg: String,
) {
    let json = statement_json(statements_json, s.index);
    let mark = r.path.mark();
    if matches!(statements_json.kind, JsonKind::Array(_)) {
        r.path.index(s.index);
    }
    let op = c.operator.to_string();
    let span = condition_span(json, &op, &c.key);
    with_path(r, &["Condition", &op, &c.key], |r| r.warn(code, span, msg));
    r.path.truncate(mark);
}

fn statement_json<'j>(statements_json: &'j Json<'j>, index: usize) -> &'j Json<'j> {
    match &statements_json.kind {
        JsonKind::Array(items) => items.get(index).unwrap_or(statements_json),
        _ => statements_json,
    }
}

fn element_span(json: &Json, name: &str) -> Span {
    json.get(name).map_or(json.span, |v| v.span)
}

/// Span of `Condition.<op>.<key>` as written.
fn condition_span(json: &Json, op: &str, key: &str) -> Span {
    json.get("Condition")
        .and_then(|c| {
            c.as_object()?
                .iter()
                .filter_map(|m| m.value.as_object())
                .flat_map(|keys| keys.iter())
                .find(|k| k.key == key)
                .map(|k| k.key_span)
                .or_else(|| c.get(op).map(|o| o.span))
        })
        .unwrap_or(json.span)
}

fn with_path<F: FnOnce(&mut Reporter)>(r: &mut Reporter, keys: &[&str], f: F) {
    let mark = r.path.mark();
    for k in keys {
        r.path.key_owned(k);
    }
    f(r);
    r.path.truncate(mark);
}

/// Lints one compiled statement (`json` is its source object).
pub(super) fn statement_lints<'j>(
    s: &Statement,
    json: &'j Json<'j>,
    version: Version,
    r: &mut Reporter<'_, 'j>,
) {
    unknown_actions(s, json, r);
    instance_arns_under_ssm(s, json, r);
    condition_key_lints(s, json, r);
    if version != Version::V2012 {
        variables_in_old_version(s, json, r);
    }
}

/// Actions that do not exist in the ssm namespace.
fn unknown_actions<'j>(s: &Statement, json: &'j Json<'j>, r: &mut Reporter<'_, 'j>) {
    let action_elem = if s.actions.negated {
        "NotAction"
    } else {
        "Action"
    };

    for p in &s.actions.patterns {
        let text = p.as_str();
        let Some((svc, name)) = text.split_once(':') else {
            continue;
        };
        if !svc.eq_ignore_ascii_case("ssm") {
            continue;
        }
        let exists = if p.has_wildcard() {
            ssm_action_matching(name)
        } else {
            catalog::is_ssm_action(name)
        };
        if !exists {
            let hint = catalog::suggest_ssm_action(name)
                .map(|a| format!("; did you mean `ssm:{a}`?"))
                .unwrap_or_default();
            with_path(r, &[action_elem], |r| {
                r.warn(
                    Code::UnknownAction,
                    element_span(json, action_elem),
                    format!("`{text}` matches no action in the ssm namespace{hint}"),
                );
            });
        }
    }
}

/// Instance ARNs written with the ssm service.
fn instance_arns_under_ssm<'j>(s: &Statement, json: &'j Json<'j>, r: &mut Reporter<'_, 'j>) {
    let resource_elem = if s.resources.negated {
        "NotResource"
    } else {
        "Resource"
    };

    for p in &s.resources.patterns {
        let text = p.as_str();
        let mut parts = text.splitn(6, ':');
        let svc = parts.nth(2);
        let res = parts.nth(2);
        if let (Some(svc), Some(res)) = (svc, res) {
            if svc == "ssm" && res.starts_with("instance/") {
                with_path(r, &[resource_elem], |r| {
                    r.warn(
                        Code::InstanceArnService,
                        element_span(json, resource_elem),
                        format!(
                            "`{text}` names instances under the ssm service; EC2 instances are \
                             `arn:aws:ec2:REGION:ACCOUNT:instance/i-...` (managed nodes are \
                             `arn:aws:ssm:REGION:ACCOUNT:managed-instance/mi-...`), so this \
                             matches nothing"
                        ),
                    );
                });
            }
        }
    }
}

/// Condition keys: unknown names, set operators on the wrong kind of key, ARN values.
fn condition_key_lints<'j>(s: &Statement, json: &'j Json<'j>, r: &mut Reporter<'_, 'j>) {
    for c in &s.conditions {
        let global = catalog::global_key_lower(&c.key_lower);
        let known = global.is_some() || catalog::is_known_key_lower(&c.key_lower);
        let multivalued_plain = global.is_some_and(|g| {
            g.multivalued
                && c.operator.qualifier.is_none()
                && c.operator.base.family() != Family::Null
        });
        let all_values_single = global.is_some_and(|g| {
            !g.multivalued && c.operator.qualifier == Some(Qualifier::ForAllValues)
        });
        let short_arns: Vec<&String> = if c.operator.base.family() == Family::Arn {
            c.raw_values
                .iter()
                .filter(|v| *v != "*" && v.matches(':').count() < 5 && !v.contains("${"))
                .collect()
        } else {
            Vec::new()
        };
        if known && !multivalued_plain && !all_values_single && short_arns.is_empty() {
            continue;
        }
        let op = c.operator.to_string();
        let span = condition_span(json, &op, &c.key);
        let warn = |r: &mut Reporter, code: Code, msg: String| {
            with_path(r, &["Condition", &op, &c.key], |r| r.warn(code, span, msg));
        };
        if !known {
            let service = c.key.split(':').next().unwrap_or_default();
            let msg = if service.eq_ignore_ascii_case("aws") || service.eq_ignore_ascii_case("ssm")
            {
                format!("`{}` is not a known {service} condition key (a typo?); AWS accepts it but no request carries it", c.key)
            } else {
                format!(
                    "`{}` is not a global or ssm key; SSM requests do not carry it, so it is missing when tagwatch evaluates SendCommand and StartSession",
                    c.key
                )
            };
            warn(r, Code::UnknownConditionKey, msg);
        }
        if multivalued_plain {
            warn(
                r,
                Code::MultivaluedWithoutSetOperator,
                format!(
                    "`{}` is multivalued; use `ForAnyValue:{op}` or `ForAllValues:{op}`",
                    c.key
                ),
            );
        }
        if all_values_single {
            warn(
                r,
                Code::SetOperatorOnSingleValuedKey,
                format!(
                    "`{}` is single-valued; `ForAllValues` holds when it is missing, which can be overly permissive",
                    c.key
                ),
            );
        }
        for v in short_arns {
            warn(
                r,
                Code::ArnValueSegments,
                format!("`{v}` has fewer than six ARN segments; `{op}` compares the six segments separately, so it matches only ARNs of the same shape"),
            );
        }
    }
}

/// Policy variables written in a policy version that does not recognise them.
fn variables_in_old_version<'j>(s: &Statement, json: &'j Json<'j>, r: &mut Reporter<'_, 'j>) {
    let uses_vars = s
        .resources
        .patterns
        .iter()
        .any(|p| p.as_str().contains("${"))
        || s.conditions
            .iter()
            .any(|c| c.raw_values.iter().any(|v| v.contains("${")));
    if uses_vars {
        r.warn(
            Code::VariablesNeed20121017,
            json.span,
            "this statement uses `${...}`, which is literal text unless the policy has \"Version\": \"2012-10-17\"".to_string(),
        );
    }
}

/// Lints that need the whole policy.
pub(super) fn policy_lints<'j>(
    policy: &Policy,
    statements_json: &'j Json<'j>,
    r: &mut Reporter<'_, 'j>,
) {
    resource_tags_on_documents(policy, statements_json, r);
    via_aws_service(policy, statements_json, r);
}

/// A resource-tag condition that also applies to AWS-owned documents. SendCommand and
/// StartSession authorise the document separately from the instances, and AWS-owned documents
/// carry no tags, so the document check fails. Warned when the statement names such documents
/// itself, or covers them (`"Resource": "*"`) while no other statement allows them without a
/// tag condition (the shape AWS's setup guide uses). A statement that names only the
/// account's own documents is fine: those can be tagged (SSM `AddTagsToResource`, resource
/// type `Document`), and allowing documents by tag is a sound intent.
fn resource_tags_on_documents<'j>(
    policy: &Policy,
    statements_json: &'j Json<'j>,
    r: &mut Reporter<'_, 'j>,
) {
    let runs = |s: &Statement, action: &str| s.effect == Effect::Allow && s.covers_action(action);
    for s in &policy.statements {
        let Some(action) = ["ssm:SendCommand", "ssm:StartSession"]
            .into_iter()
            .find(|a| runs(s, a))
        else {
            continue;
        };
        if resource_tag_conditions(s).next().is_none() {
            continue;
        }
        let names_documents = !s.resources.negated
            && s.resources
                .patterns
                .iter()
                .any(|p| p.as_str().contains(":document/"))
            && covers_resource(s, AWS_DOCUMENT);
        let covers_documents = covers_resource(s, AWS_DOCUMENT);
        let documents_allowed_elsewhere = policy.statements.iter().any(|t| {
            t.index != s.index
                && runs(t, action)
                && covers_resource(t, AWS_DOCUMENT)
                && resource_tag_conditions(t).next().is_none()
        });
        if !(names_documents || (covers_documents && !documents_allowed_elsewhere)) {
            continue;
        }
        for c in resource_tag_conditions(s) {
            let msg = format!(
                "`{}` is tested in a statement that also covers document ARNs; {action} \
                 authorises the document separately and documents (AWS-owned ones at least) \
                 carry no such tag, so the document check fails; allow the documents in a \
                 statement of their own",
                c.key
            );
            warn_at_condition(r, statements_json, s, c, Code::ResourceTagOnDocument, msg);
            r.help(format!(
                "keep `{}` in a statement whose `Resource` is the instances, and allow \
                 `arn:aws:ssm:REGION::document/NAME` for {action} in a second statement \
                 without it",
                c.key
            ));
        }
    }
}

/// SendCommand limited by network-origin keys without the `aws:ViaAWSService` alternative.
fn via_aws_service<'j>(policy: &Policy, statements_json: &'j Json<'j>, r: &mut Reporter<'_, 'j>) {
    let sends = |s: &&Statement| s.effect == Effect::Allow && s.covers_action("ssm:SendCommand");
    let has_via_service = policy.statements.iter().filter(sends).any(|s| {
        s.conditions
            .iter()
            .any(|c| c.key_lower == "aws:viaawsservice")
    });
    if has_via_service {
        return;
    }
    for s in policy.statements.iter().filter(sends) {
        let Some(c) = s.conditions.iter().find(|c| {
            catalog::NETWORK_ORIGIN_KEYS
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&c.key))
        }) else {
            continue;
        };
        let msg = format!(
            "{} limits ssm:SendCommand by `{}` but no statement allows the \
             `\"Bool\": {{\"aws:ViaAWSService\": \"true\"}}` case; the Run Command setup guide \
             requires it when SendCommand is limited by global condition keys, because Systems \
             Manager makes calls on the caller's behalf",
            s.describe(),
            c.key
        );
        warn_at_condition(r, statements_json, s, c, Code::MissingViaAwsService, msg);
        r.help(
            "add a statement allowing ssm:SendCommand with \
             `\"Condition\": {\"Bool\": {\"aws:ViaAWSService\": \"true\"}}`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_action_names_match_the_catalog() {
        assert!(ssm_action_matching("Send*"));
        assert!(ssm_action_matching("send*"));
        assert!(ssm_action_matching("*Session"));
        assert!(ssm_action_matching("Get?arameter"));
        assert!(!ssm_action_matching("Get?"));
        assert!(!ssm_action_matching("Launch*"));
    }
}
