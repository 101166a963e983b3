//! Warnings about valid policies that do not do what their authors expect: the pitfalls users
//! actually hit when they restrict Run Command and Session Manager by tags.

use super::condition::{Family, Qualifier};
use super::{Effect, Policy, ResourcePattern, Statement, Version};
use crate::catalog;
use crate::context::RequestContext;
use crate::diag::Reporter;
use crate::json::{Json, JsonKind, Span};

/// Sample ARNs of the documents SendCommand and StartSession authorise.
const DOCUMENT_SAMPLES: &[&str] = &[
    "arn:aws:ssm:us-east-1::document/AWS-RunShellScript",
    "arn:aws:ssm:us-east-1:111122223333:document/Custom-Document",
];

fn covers_document(s: &Statement) -> bool {
    let ctx = RequestContext::new();
    let mut missing = Vec::new();
    DOCUMENT_SAMPLES.iter().any(|doc| {
        let hit = s.resources.patterns.iter().any(|p| match p {
            ResourcePattern::Static(_) => p.matches(doc, &ctx, &mut missing),
            ResourcePattern::Template { .. } => false,
        });
        hit != s.resources.negated
    })
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
    let mark = r.path.as_str().len();
    for k in keys {
        r.path.key(k);
    }
    f(r);
    r.path.truncate(mark);
}

/// Lints one compiled statement (`json` is its source object).
pub(super) fn statement_lints(s: &Statement, json: &Json, version: Version, r: &mut Reporter) {
    let action_elem = if s.actions.negated {
        "NotAction"
    } else {
        "Action"
    };
    let resource_elem = if s.resources.negated {
        "NotResource"
    } else {
        "Resource"
    };

    // Actions that do not exist in the ssm namespace.
    for p in &s.actions.patterns {
        let text = p.as_str();
        let Some((svc, name)) = text.split_once(':') else {
            continue;
        };
        if !svc.eq_ignore_ascii_case("ssm") {
            continue;
        }
        let exists = if p.has_wildcard() {
            catalog::SSM_ACTIONS
                .iter()
                .any(|a| p.matches(&format!("ssm:{a}")))
        } else {
            catalog::is_ssm_action(name)
        };
        if !exists {
            let hint = catalog::suggest_ssm_action(name)
                .map(|a| format!("; did you mean `ssm:{a}`?"))
                .unwrap_or_default();
            with_path(r, &[action_elem], |r| {
                r.warn(
                    "unknown-action",
                    element_span(json, action_elem),
                    format!("`{text}` matches no action in the ssm namespace{hint}"),
                );
            });
        }
    }

    // Instance ARNs written with the ssm service.
    for p in &s.resources.patterns {
        let text = p.as_str();
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        if let [_, _, svc, _, _, res] = parts.as_slice() {
            if *svc == "ssm" && res.starts_with("instance/") {
                with_path(r, &[resource_elem], |r| {
                    r.warn(
                        "instance-arn-service",
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

    // A resource-tag condition in the same statement as document ARNs.
    let runs = s.covers_action("ssm:SendCommand") || s.covers_action("ssm:StartSession");
    if s.effect == Effect::Allow && runs && covers_document(s) {
        for c in &s.conditions {
            let lower = &c.key_lower;
            let tag_key =
                lower.starts_with("ssm:resourcetag/") || lower.starts_with("aws:resourcetag/");
            if tag_key && !c.operator.if_exists && !c.operator.base.negated() {
                let span = condition_span(json, &c.operator.to_string(), &c.key);
                with_path(r, &["Condition", &c.operator.to_string(), &c.key], |r| {
                    r.warn(
                        "resource-tag-on-document",
                        span,
                        format!(
                            "`{}` is tested in a statement that also covers document ARNs; \
                             SendCommand authorises the document separately and documents \
                             (AWS-owned ones at least) carry no such tag, so the document check \
                             fails; put the documents in a statement of their own (or use `{}IfExists`)",
                            c.key, c.operator
                        ),
                    );
                });
            }
        }
    }

    // Condition keys: unknown names, set operators on the wrong kind of key, ARN values.
    for c in &s.conditions {
        let op = c.operator.to_string();
        let span = condition_span(json, &op, &c.key);
        let global = catalog::global_key(&c.key);
        if !catalog::is_known_key(&c.key) {
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
            with_path(r, &["Condition", &op, &c.key], |r| {
                r.warn("unknown-condition-key", span, msg)
            });
        }
        if let Some(g) = global {
            if g.multivalued
                && c.operator.qualifier.is_none()
                && c.operator.base.family() != Family::Null
            {
                with_path(r, &["Condition", &op, &c.key], |r| {
                    r.warn(
                        "multivalued-without-set-operator",
                        span,
                        format!(
                            "`{}` is multivalued; use `ForAnyValue:{op}` or `ForAllValues:{op}`",
                            c.key
                        ),
                    );
                });
            }
            if !g.multivalued && c.operator.qualifier == Some(Qualifier::ForAllValues) {
                with_path(r, &["Condition", &op, &c.key], |r| {
                    r.warn(
                        "set-operator-on-single-valued-key",
                        span,
                        format!(
                            "`{}` is single-valued; `ForAllValues` holds when it is missing, which can be overly permissive",
                            c.key
                        ),
                    );
                });
            }
        }
        if c.operator.base.family() == Family::Arn {
            for v in &c.raw_values {
                if v != "*" && v.matches(':').count() < 5 && !v.contains("${") {
                    with_path(r, &["Condition", &op, &c.key], |r| {
                        r.warn(
                            "arn-value-segments",
                            span,
                            format!("`{v}` has fewer than six ARN segments; `{op}` compares the six segments separately, so it matches only ARNs of the same shape"),
                        );
                    });
                }
            }
        }
    }

    // Policy variables written in a policy version that does not recognise them.
    if version != Version::V2012 {
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
                "variables-need-2012-10-17",
                json.span,
                "this statement uses `${...}`, which is literal text unless the policy has \"Version\": \"2012-10-17\"".to_string(),
            );
        }
    }
}

/// Lints that need the whole policy.
pub(super) fn policy_lints(policy: &Policy, statements_json: &Json, r: &mut Reporter) {
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
        let json = match &statements_json.kind {
            JsonKind::Array(items) => items.get(s.index).unwrap_or(statements_json),
            _ => statements_json,
        };
        let mark = r.path.as_str().len();
        if matches!(statements_json.kind, JsonKind::Array(_)) {
            r.path.index(s.index);
        }
        let op = c.operator.to_string();
        let span = condition_span(json, &op, &c.key);
        with_path(r, &["Condition", &op, &c.key], |r| {
            r.warn(
                "missing-via-aws-service",
                span,
                format!(
                    "{} limits ssm:SendCommand by `{}` but no statement allows the \
                     `\"Bool\": {{\"aws:ViaAWSService\": \"true\"}}` case; the Run Command setup \
                     guide requires it when SendCommand is limited by global condition keys, \
                     because Systems Manager makes calls on the caller's behalf",
                    s.describe(),
                    c.key
                ),
            );
        });
        r.path.truncate(mark);
    }
}
