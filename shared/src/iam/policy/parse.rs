//! From spanned JSON to a compiled [`Policy`], reporting every error with its JSON path and
//! position (IAM JSON policy element reference; IAM JSON policy grammar).

use super::condition::{self, BaseOp, BoolValue, Condition, Family, Operator, Values};
use super::{lint, Effect, Matcher, Policy, ResourcePattern, Statement, Version};
use crate::diag::Code;
use crate::diag::Reporter;
use crate::iam::onemany::OneOrMany;
use crate::iam::values;
use crate::iam::variables::Template;
use crate::iam::wildcard::{Flavor, Pattern};
use crate::json::{Json, JsonKind, Member, Span};
use std::borrow::Cow;

const POLICY_ELEMENTS: &[&str; 3] = &["Version", "Id", "Statement"];
const STATEMENT_ELEMENTS: &[&str; 9] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Sorts `members` into slots by name (one pass), reporting unknown and duplicate elements.
/// `slots[i]` is the value of `known[i]`.
fn fields<'j, const N: usize>(
    members: &'j [Member<'j>],
    known: &[&str; N],
    what: &str,
    r: &mut Reporter<'_, 'j>,
) -> [Option<&'j Json<'j>>; N] {
    let mut slots: [Option<&'j Json<'j>>; N] = [None; N];
    for m in members {
        let key: &'j str = m.key;
        match known.iter().position(|k| *k == key) {
            Some(i) => match slots.get_mut(i) {
                Some(slot @ None) => *slot = Some(&m.value),
                _ => {
                    let mark = r.path.key(key);
                    r.error(
                        Code::DuplicateElement,
                        m.key_span,
                        format!("`{key}` appears more than once in the {what}"),
                    );
                    r.path.truncate(mark);
                }
            },
            None => {
                let hint = known
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(key))
                    .map(|k| format!(" (element names are case-sensitive: did you mean `{k}`?)"))
                    .unwrap_or_default();
                let mark = r.path.key(key);
                r.error(
                    Code::UnknownElement,
                    m.key_span,
                    format!("unknown {what} element `{key}`{hint}"),
                );
                r.path.truncate(mark);
            }
        }
    }
    slots
}

/// Parses a policy document; `None` (with errors reported) when it is not valid.
pub fn parse_policy_json<'j>(json: &'j Json<'j>, r: &mut Reporter<'_, 'j>) -> Option<Policy> {
    let Some(members) = json.as_object() else {
        r.error(
            Code::NotAnObject,
            json.span,
            format!("a policy must be a JSON object, found {}", json.type_name()),
        );
        return None;
    };
    let [version_json, id_json, statement_json] = fields(members, POLICY_ELEMENTS, "policy", r);

    let version = parse_version(json, version_json, r);
    let id = id_json.and_then(|v| {
        let mark = r.path.key("Id");
        let s = v.as_str().map(str::to_string);
        if s.is_none() {
            r.error(
                Code::InvalidId,
                v.span,
                format!("`Id` must be a string, found {}", v.type_name()),
            );
        }
        r.path.truncate(mark);
        s
    });

    let Some(stmt_json) = statement_json else {
        r.error(
            Code::MissingStatement,
            json.span,
            "the policy has no `Statement`".to_string(),
        );
        return None;
    };
    let mark = r.path.key("Statement");
    let statements = parse_statements(stmt_json, version, r);
    let policy = Policy {
        version,
        id,
        statements,
    };
    if r.lints {
        lint::policy_lints(&policy, stmt_json, r);
    }
    r.path.truncate(mark);
    Some(policy)
}

/// The `Version` element: absent (warned; AWS reads 2008-10-17), or one of the two versions.
fn parse_version<'j>(
    json: &'j Json<'j>,
    version_json: Option<&'j Json<'j>>,
    r: &mut Reporter<'_, 'j>,
) -> Version {
    match version_json {
        None => {
            r.warn(
                Code::MissingVersion,
                json.span,
                "no `Version`: AWS reads the policy as 2008-10-17, where policy variables are \
                 literal text; add \"Version\": \"2012-10-17\""
                    .to_string(),
            );
            Version::Missing
        }
        Some(v) => {
            let mark = r.path.key("Version");
            let version = match v.as_str() {
                Some("2012-10-17") => Some(Version::V2012),
                Some("2008-10-17") => Some(Version::V2008),
                _ => {
                    r.error(
                        Code::InvalidVersion,
                        v.span,
                        format!(
                            "`Version` must be \"2012-10-17\" or \"2008-10-17\", found {}",
                            shown(v)
                        ),
                    );
                    None
                }
            };
            r.path.truncate(mark);
            version.unwrap_or(Version::V2012)
        }
    }
}

/// The `Statement` element (one object or an array of them), with duplicate Sids reported.
fn parse_statements<'j>(
    stmt_json: &'j Json<'j>,
    version: Version,
    r: &mut Reporter<'_, 'j>,
) -> Vec<Statement> {
    let mut statements = Vec::new();
    match &stmt_json.kind {
        JsonKind::Object(_) => {
            if let Some(s) = parse_statement(stmt_json, 0, version, r) {
                statements.push(s);
            }
        }
        JsonKind::Array(items) => {
            if items.is_empty() {
                r.warn(
                    Code::EmptyStatement,
                    stmt_json.span,
                    "`Statement` is empty: the policy allows nothing".to_string(),
                );
            }
            for (i, item) in items.iter().enumerate() {
                let m = r.path.index(i);
                if let Some(s) = parse_statement(item, i, version, r) {
                    statements.push(s);
                }
                r.path.truncate(m);
            }
        }
        _ => r.error(
            Code::InvalidStatement,
            stmt_json.span,
            format!(
                "`Statement` must be an object or an array of objects, found {}",
                stmt_json.type_name()
            ),
        ),
    }
    // Statement IDs must be unique within a policy.
    if let JsonKind::Array(items) = &stmt_json.kind {
        for (i, s) in statements.iter().enumerate() {
            let Some(sid) = s.sid.as_deref().filter(|s| !s.is_empty()) else {
                continue;
            };
            if statements
                .iter()
                .take(i)
                .any(|p| p.sid.as_deref() == Some(sid))
            {
                let span = items
                    .get(s.index)
                    .and_then(|j| j.get("Sid"))
                    .map_or(stmt_json.span, |j| j.span);
                let m = r.path.index(s.index);
                let m2 = r.path.key("Sid");
                r.error(
                    Code::DuplicateSid,
                    span,
                    format!("Sid `{sid}` is used by more than one statement"),
                );
                r.path.truncate(m2);
                r.path.truncate(m);
            }
        }
    }
    statements
}

fn shown(v: &Json) -> String {
    match &v.kind {
        JsonKind::String(s) => format!("`{s}`"),
        _ => v.type_name().to_string(),
    }
}

/// A string or an array of strings; errors name the offending item.
/// The items of a string or an array of strings (validated: every item is a string).
fn string_list<'j>(
    v: &'j Json<'j>,
    element: &str,
    r: &mut Reporter<'_, 'j>,
) -> Option<StringList<'j>> {
    match &v.kind {
        JsonKind::String(_) => Some(StringList(std::slice::from_ref(v))),
        JsonKind::Array(items) => {
            if items.is_empty() {
                r.error(
                    Code::EmptyList,
                    v.span,
                    format!("`{element}` must not be an empty array"),
                );
                return None;
            }
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                if item.as_str().is_none() {
                    let m = r.path.index(i);
                    r.error(
                        Code::NotAString,
                        item.span,
                        format!(
                            "`{element}` entries must be strings, found {}",
                            item.type_name()
                        ),
                    );
                    r.path.truncate(m);
                    ok = false;
                }
            }
            ok.then_some(StringList(items))
        }
        _ => {
            r.error(
                Code::NotAString,
                v.span,
                format!(
                    "`{element}` must be a string or an array of strings, found {}",
                    v.type_name()
                ),
            );
            None
        }
    }
}

/// JSON values known to be strings.
struct StringList<'j>(&'j [Json<'j>]);

impl<'j> StringList<'j> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn iter(&self) -> impl Iterator<Item = (&'j str, Span)> + '_ {
        self.0
            .iter()
            .map(|j| (j.as_str().unwrap_or_default(), j.span))
    }
}

/// Exactly one of `positive` / `negative` must be present.
fn pick<'j>(
    obj: &'j Json<'j>,
    (positive, p): (&'static str, Option<&'j Json<'j>>),
    (negative, n): (&'static str, Option<&'j Json<'j>>),
    r: &mut Reporter<'_, 'j>,
) -> Option<(&'static str, &'j Json<'j>)> {
    match (p, n) {
        (Some(p), None) => Some((positive, p)),
        (None, Some(n)) => Some((negative, n)),
        (Some(_), Some(n)) => {
            let m = r.path.key(negative);
            r.error(
                Code::BothElements,
                n.span,
                format!("a statement cannot have both `{positive}` and `{negative}`"),
            );
            r.path.truncate(m);
            None
        }
        (None, None) => {
            r.error(
                Code::MissingElement,
                obj.span,
                format!("the statement has neither `{positive}` nor `{negative}`"),
            );
            None
        }
    }
}

fn parse_statement<'j>(
    json: &'j Json<'j>,
    index: usize,
    version: Version,
    r: &mut Reporter<'_, 'j>,
) -> Option<Statement> {
    let Some(members) = json.as_object() else {
        r.error(
            Code::InvalidStatement,
            json.span,
            format!(
                "a statement must be a JSON object, found {}",
                json.type_name()
            ),
        );
        return None;
    };
    let errors_before = r.diagnostics.len();
    let [sid_json, effect_json, principal_json, not_principal_json, action_json, not_action_json, resource_json, not_resource_json, condition_json] =
        fields(members, STATEMENT_ELEMENTS, "statement", r);
    let variables = version == Version::V2012;

    let sid = sid_json.and_then(|v| parse_sid(v, r));

    let effect = parse_effect(json, effect_json, r);

    warn_ignored_principals(principal_json, not_principal_json, r);

    let actions = pick(
        json,
        ("Action", action_json),
        ("NotAction", not_action_json),
        r,
    )
    .and_then(|(name, v)| parse_actions(name, v, r));

    let resources = pick(
        json,
        ("Resource", resource_json),
        ("NotResource", not_resource_json),
        r,
    )
    .and_then(|(name, v)| parse_resources(name, v, variables, r));

    let conditions = match condition_json {
        None => Some(Vec::new()),
        Some(c) => {
            let m = r.path.key("Condition");
            let out = parse_conditions(c, variables, r);
            r.path.truncate(m);
            out
        }
    };

    let had_errors = r.diagnostics.get(errors_before..).is_some_and(|new| {
        new.iter()
            .any(|d| d.severity == crate::diag::Severity::Error)
    });
    let statement = Statement {
        index,
        sid,
        effect: effect?,
        actions: actions?,
        resources: resources?,
        conditions: conditions?,
    };
    if had_errors {
        return None;
    }
    if r.lints {
        lint::statement_lints(&statement, json, version, r);
    }
    Some(statement)
}

/// `Sid`: ASCII letters and digits (IAM JSON policy elements: Sid).
fn parse_sid<'j>(v: &'j Json<'j>, r: &mut Reporter<'_, 'j>) -> Option<String> {
    let m = r.path.key("Sid");
    let out = match v.as_str() {
        Some(s) if s.chars().all(|c| c.is_ascii_alphanumeric()) => Some(s.to_string()),
        Some(s) => {
            r.error(
                Code::InvalidSid,
                v.span,
                format!("Sid `{s}` must contain only ASCII letters and digits"),
            );
            None
        }
        None => {
            r.error(
                Code::InvalidSid,
                v.span,
                format!("`Sid` must be a string, found {}", v.type_name()),
            );
            None
        }
    };
    r.path.truncate(m);
    out
}

/// `Effect`: `Allow` or `Deny`, case-sensitive (IAM JSON policy elements: Effect).
fn parse_effect<'j>(
    json: &'j Json<'j>,
    effect_json: Option<&'j Json<'j>>,
    r: &mut Reporter<'_, 'j>,
) -> Option<Effect> {
    match effect_json {
        None => {
            r.error(
                Code::MissingEffect,
                json.span,
                "the statement has no `Effect`".to_string(),
            );
            None
        }
        Some(v) => {
            let m = r.path.key("Effect");
            let e = match v.as_str() {
                Some("Allow") => Some(Effect::Allow),
                Some("Deny") => Some(Effect::Deny),
                Some(s) => {
                    let hint = if s.eq_ignore_ascii_case("allow") || s.eq_ignore_ascii_case("deny")
                    {
                        " (the value is case-sensitive)"
                    } else {
                        ""
                    };
                    r.error(
                        Code::UnknownEffect,
                        v.span,
                        format!("unknown effect `{s}`; expected `Allow` or `Deny`{hint}"),
                    );
                    None
                }
                None => {
                    r.error(
                        Code::UnknownEffect,
                        v.span,
                        format!("`Effect` must be a string, found {}", v.type_name()),
                    );
                    None
                }
            };
            r.path.truncate(m);
            e
        }
    }
}

/// `Principal` / `NotPrincipal` belong in resource-based policies: identity evaluation ignores
/// them, with a warning.
fn warn_ignored_principals<'j>(
    principal_json: Option<&'j Json<'j>>,
    not_principal_json: Option<&'j Json<'j>>,
    r: &mut Reporter<'_, 'j>,
) {
    for (name, value) in [
        ("Principal", principal_json),
        ("NotPrincipal", not_principal_json),
    ] {
        if let Some(p) = value {
            let m = r.path.key(name);
            r.warn(
                Code::PrincipalIgnored,
                p.span,
                format!(
                    "`{name}` belongs in resource-based policies; identity evaluation ignores it \
                     (the intent file's `match` says whom a policy applies to)"
                ),
            );
            r.path.truncate(m);
        }
    }
}

/// `Action` / `NotAction`: `*` or `service:action` patterns.
fn parse_actions<'j>(
    name: &'static str,
    v: &'j Json<'j>,
    r: &mut Reporter<'_, 'j>,
) -> Option<Matcher<Pattern>> {
    let m = r.path.key(name);
    let out = string_list(v, name, r).and_then(|list| {
        let mut patterns = Vec::with_capacity(list.len());
        let mut ok = true;
        for (i, (a, span)) in list.iter().enumerate() {
            let valid = a == "*"
                || a.split_once(':').is_some_and(|(svc, act)| {
                    !svc.is_empty()
                        && svc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !act.is_empty()
                        && !act.contains(':')
                });
            if !valid {
                let mi = (list.len() > 1 || matches!(v.kind, JsonKind::Array(_))).then(|| r.path.index(i));
                r.error(
                    Code::InvalidAction,
                    span,
                    format!("action `{a}` must be `*` or `service:action` (for example `ssm:SendCommand`)"),
                );
                if let Some(mi) = mi {
                    r.path.truncate(mi);
                }
                ok = false;
                continue;
            }
            patterns.push(Pattern::new(a, Flavor::Glob, true));
        }
        ok.then_some(Matcher {
            negated: name == "NotAction",
            patterns,
        })
    });
    r.path.truncate(m);
    out
}

/// `Resource` / `NotResource`: `*` or ARN patterns, with policy variables when the version
/// has them.
fn parse_resources<'j>(
    name: &'static str,
    v: &'j Json<'j>,
    variables: bool,
    r: &mut Reporter<'_, 'j>,
) -> Option<Matcher<ResourcePattern>> {
    let m = r.path.key(name);
    let out = string_list(v, name, r).and_then(|list| {
        let mut patterns = Vec::with_capacity(list.len());
        let mut ok = true;
        for (i, (res, span)) in list.iter().enumerate() {
            let mi = matches!(v.kind, JsonKind::Array(_)).then(|| r.path.index(i));
            match compile_resource(res, variables) {
                Ok(p) => patterns.push(p),
                Err(msg) => {
                    r.error(Code::InvalidResource, span, msg);
                    ok = false;
                }
            }
            if let Some(mi) = mi {
                r.path.truncate(mi);
            }
        }
        ok.then_some(Matcher {
            negated: name == "NotResource",
            patterns,
        })
    });
    r.path.truncate(m);
    out
}

/// Compiles one `Resource` entry (IAM JSON policy elements: Resource).
fn compile_resource(res: &str, variables: bool) -> Result<ResourcePattern, String> {
    if res != "*" && !res.starts_with("arn:") {
        return Err(format!(
            "resource `{res}` must be `*` or an ARN (`arn:partition:service:region:account:resource`)"
        ));
    }
    if !(variables && res.contains("${")) {
        return Ok(ResourcePattern::Static(Pattern::new(
            res,
            Flavor::ResourceArn,
            false,
        )));
    }
    let template = Template::parse(res, variables);
    if let Some(tokens) = template.static_tokens() {
        return Ok(ResourcePattern::Static(Pattern::from_tokens(
            res,
            &tokens,
            Flavor::ResourceArn,
            false,
        )));
    }
    // IAM policy variables: in Resource, "only in the resource part of the ARN", after the fifth
    // colon.
    if let Some(pos) = res.find("${") {
        let colons = res.get(..pos).map_or(0, |head| head.matches(':').count());
        if colons < 5 {
            return Err(format!(
                "resource `{res}` uses a policy variable before the fifth colon; variables are \
                 allowed only in the resource part of an ARN"
            ));
        }
    }
    Ok(ResourcePattern::Template {
        source: res.to_string(),
        template,
    })
}

/// A condition key and its lowercase form, shared when the key is a known one.
fn key_pair(key: &str) -> (Cow<'static, str>, Cow<'static, str>) {
    match crate::iam::intern::interned_key(key) {
        Some((k, lower)) => (Cow::Borrowed(k), Cow::Borrowed(lower)),
        None => (
            Cow::Owned(key.to_string()),
            Cow::Owned(key.to_ascii_lowercase()),
        ),
    }
}

fn scalar_text(v: &Json) -> Option<String> {
    match &v.kind {
        JsonKind::String(s) => Some(s.to_string()),
        JsonKind::Number(n) => Some((*n).to_string()),
        JsonKind::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_conditions<'j>(
    c: &'j Json<'j>,
    variables: bool,
    r: &mut Reporter<'_, 'j>,
) -> Option<Vec<Condition>> {
    let Some(ops) = c.as_object() else {
        r.error(
            Code::InvalidCondition,
            c.span,
            format!(
                "`Condition` must be an object of operators, found {}",
                c.type_name()
            ),
        );
        return None;
    };
    let count: usize = ops
        .iter()
        .map(|m| m.value.as_object().map_or(0, <[_]>::len))
        .sum();
    let mut out = Vec::with_capacity(count);
    let mut ok = true;
    for (i, op_member) in ops.iter().enumerate() {
        let m = r.path.key(op_member.key);
        if ops.iter().take(i).any(|p| p.key == op_member.key) {
            r.error(
                Code::DuplicateOperator,
                op_member.key_span,
                format!(
                    "operator `{}` appears twice in one `Condition`; merge its keys",
                    op_member.key
                ),
            );
            ok = false;
        }
        match Operator::parse(op_member.key) {
            Err(e) => {
                r.error(Code::UnknownOperator, op_member.key_span, e.to_string());
                ok = false;
            }
            Ok(op) => {
                if !op.spelled_as(op_member.key) {
                    r.warn(
                        Code::OperatorCase,
                        op_member.key_span,
                        format!("operator `{}` is spelled `{op}` by AWS", op_member.key),
                    );
                }
                if op.base == BaseOp::Null && op.qualifier.is_some() {
                    r.warn(
                        Code::NullWithQualifier,
                        op_member.key_span,
                        format!(
                            "`{op}` always evaluates to {}: Null takes no set operator",
                            op.qualifier == Some(condition::Qualifier::ForAllValues)
                        ),
                    );
                }
                if !parse_keys(op, &op_member.value, variables, r, &mut out) {
                    ok = false;
                }
            }
        }
        r.path.truncate(m);
    }
    ok.then_some(out)
}

/// Parses `{key: values}` under one operator into `out`; false when anything was invalid.
fn parse_keys<'j>(
    op: Operator,
    v: &'j Json<'j>,
    variables: bool,
    r: &mut Reporter<'_, 'j>,
    out: &mut Vec<Condition>,
) -> bool {
    let Some(keys) = v.as_object() else {
        r.error(
            Code::InvalidCondition,
            v.span,
            format!(
                "operator `{op}` must map condition keys to values, found {}",
                v.type_name()
            ),
        );
        return false;
    };
    if keys.is_empty() {
        r.warn(
            Code::EmptyCondition,
            v.span,
            format!("operator `{op}` has no keys and tests nothing"),
        );
    }
    let mut ok = true;
    for (i, km) in keys.iter().enumerate() {
        let m = r.path.key(km.key);
        if keys
            .iter()
            .take(i)
            .any(|p| p.key.eq_ignore_ascii_case(km.key))
        {
            r.error(
                Code::DuplicateKey,
                km.key_span,
                format!(
                    "condition key `{}` appears twice under `{op}` (key names are case-insensitive)",
                    km.key
                ),
            );
            ok = false;
        }
        if !km.key.contains(':') || km.key.starts_with(':') {
            r.error(
                Code::InvalidKey,
                km.key_span,
                format!(
                    "condition key `{}` must have a service prefix, like `aws:SourceVpce` or `ssm:resourceTag/Env`",
                    km.key
                ),
            );
            ok = false;
        }
        match parse_values(op, &km.value, variables, r) {
            Some((raw_values, values)) if ok => {
                let (key, key_lower) = key_pair(km.key);
                out.push(Condition {
                    operator: op,
                    key,
                    key_lower,
                    raw_values,
                    values,
                });
            }
            _ => ok = false,
        }
        r.path.truncate(m);
    }
    ok
}

fn parse_values<'j>(
    op: Operator,
    v: &'j Json<'j>,
    variables: bool,
    r: &mut Reporter<'_, 'j>,
) -> Option<(OneOrMany<String>, Values)> {
    let items: &[Json] = match &v.kind {
        JsonKind::Array(items) => items,
        _ => std::slice::from_ref(v),
    };
    if items.is_empty() {
        r.warn(
            Code::EmptyValues,
            v.span,
            format!(
                "`{op}` has an empty value list: it never matches{}",
                if op.base.negated() {
                    " (so this negated operator always holds)"
                } else {
                    ""
                }
            ),
        );
    }
    let is_array = matches!(v.kind, JsonKind::Array(_));
    let base = op.base;
    let family = base.family();
    let mut raw = OneOrMany::new();
    let mut ok = true;
    let mut acc = empty_values(family);
    for (i, item) in items.iter().enumerate() {
        let mi = is_array.then(|| r.path.index(i));
        let Some(text) = scalar_text(item) else {
            r.error(
                Code::InvalidValue,
                item.span,
                format!(
                    "condition values must be strings, numbers or booleans, found {}",
                    item.type_name()
                ),
            );
            ok = false;
            if let Some(mi) = mi {
                r.path.truncate(mi);
            }
            continue;
        };
        if !base.supports_variables()
            && variables
            && text.contains("${")
            && Template::parse(&text, true).has_variables()
        {
            r.error(
                Code::VariableNotSupported,
                item.span,
                format!("`{op}` does not support policy variables (only String, ARN and Bool operators do)"),
            );
            ok = false;
            if let Some(mi) = mi {
                r.path.truncate(mi);
            }
            continue;
        }
        ok &= parse_value(op, &text, item, variables, &mut acc, r);
        if matches!(
            family,
            Family::Numeric | Family::Date | Family::Binary | Family::Ip
        ) && (text.contains('*') || text.contains('?'))
        {
            r.warn(
                Code::WildcardNotSupported,
                item.span,
                format!("`{op}` does not support wildcards"),
            );
        }
        raw.push(text);
        if let Some(mi) = mi {
            r.path.truncate(mi);
        }
    }
    if !ok {
        return None;
    }
    Some((raw, acc))
}

/// An empty value list of `family`'s type.
fn empty_values(family: Family) -> Values {
    match family {
        Family::String | Family::Arn => Values::Text(OneOrMany::new()),
        Family::Numeric => Values::Numeric(OneOrMany::new()),
        Family::Date => Values::Date(OneOrMany::new()),
        Family::Bool => Values::Bool(OneOrMany::new()),
        Family::Binary => Values::Binary(OneOrMany::new()),
        Family::Ip => Values::Ip(OneOrMany::new()),
        Family::Null => Values::Null(OneOrMany::new()),
    }
}

/// Reads one condition value of `op` into `acc` (a list of `op`'s family); false when it is
/// malformed (reported).
fn parse_value<'j>(
    op: Operator,
    text: &str,
    item: &'j Json<'j>,
    variables: bool,
    acc: &mut Values,
    r: &mut Reporter<'_, 'j>,
) -> bool {
    let base = op.base;
    let bad = |r: &mut Reporter, what: &str| {
        r.error(
            Code::MalformedValue,
            item.span,
            format!("`{text}` is not a valid {what} for `{op}`"),
        );
        false
    };
    match acc {
        Values::Text(list) => {
            list.push(condition::compile_text(base, text, variables));
            true
        }
        Values::Numeric(list) => match values::parse_number(text) {
            Some(n) => {
                list.push(n);
                true
            }
            None => bad(r, "number"),
        },
        Values::Date(list) => match values::parse_date(text) {
            Some(d) => {
                list.push(d);
                true
            }
            None => bad(
                r,
                "date (ISO 8601, e.g. 2024-08-02T09:08:56Z, or epoch seconds)",
            ),
        },
        Values::Bool(list) => {
            let template = (variables && text.contains("${"))
                .then(|| Template::parse(text, true))
                .filter(Template::has_variables);
            if let Some(template) = template {
                r.warn(
                    Code::VariableInBool,
                    item.span,
                    "IAM Access Analyzer accepts policy variables only with String and ARN operators"
                        .to_string(),
                );
                list.push(BoolValue::Template(template));
                return true;
            }
            match values::parse_bool(text) {
                Some(b) => {
                    if text != "true" && text != "false" {
                        r.warn(
                            Code::BoolCase,
                            item.span,
                            format!(
                                "write `{b}` in lowercase; AWS documents only `true` and `false`"
                            ),
                        );
                    }
                    list.push(BoolValue::Fixed(b));
                    true
                }
                None => bad(r, "boolean (`true` or `false`)"),
            }
        }
        Values::Binary(list) => match values::decode_base64(text) {
            Some(b) => {
                list.push(b);
                true
            }
            None => bad(r, "base64 value"),
        },
        Values::Ip(list) => match values::Cidr::parse(text) {
            Some(c) => {
                list.push(c);
                true
            }
            None => bad(
                r,
                "IP address or CIDR (e.g. 203.0.113.0/24 or 2001:DB8::/32)",
            ),
        },
        Values::Null(list) => match values::parse_bool(text) {
            Some(b) => {
                list.push(b);
                true
            }
            None => bad(r, "Null test (`true`: the key is absent, `false`: present)"),
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::diag::{Diagnostic, Severity};
    use crate::iam::policy::{Effect, Policy, Version};
    use proptest::prelude::*;

    fn errors(text: &str) -> Vec<Diagnostic> {
        match Policy::parse(text, Some("p.json")) {
            Ok(p) => panic!(
                "expected errors, got a policy with warnings {:?}",
                p.warnings
            ),
            Err(e) => e
                .diagnostics
                .into_iter()
                .filter(|d| d.severity == Severity::Error)
                .collect(),
        }
    }

    fn error(text: &str, code: &str) -> Diagnostic {
        let all = errors(text);
        all.iter()
            .find(|d| d.code == code)
            .cloned()
            .unwrap_or_else(|| panic!("no `{code}` in {all:#?}"))
    }

    fn warnings(text: &str) -> Vec<Diagnostic> {
        Policy::check(text, None)
            .unwrap_or_else(|e| panic!("{e}"))
            .warnings
    }

    #[test]
    fn parse_skips_the_lints_check_runs_them() {
        let text = stmt(r#"{"Effect":"Allow","Action":"ssm:SendComand","Resource":"*"}"#);
        assert!(Policy::parse(&text, None).unwrap().warnings.is_empty());
        assert!(warnings(&text).iter().any(|d| d.code == "unknown-action"));
    }

    fn stmt(body: &str) -> String {
        format!(r#"{{"Version": "2012-10-17", "Statement": [{body}]}}"#)
    }

    #[test]
    fn accepts_every_element_in_either_form() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Id":"seed","Statement":{"Sid":"A1","Effect":"Deny","NotAction":["ssm:Get*","ssm:List*"],"NotResource":"arn:aws:ssm:*:*:parameter/public/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}"#,
            None,
        )
        .unwrap()
        .value;
        assert_eq!(p.version, Version::V2012);
        assert_eq!(p.id.as_deref(), Some("seed"));
        let s = &p.statements[0];
        assert_eq!(s.effect, Effect::Deny);
        assert!(s.actions.negated && s.resources.negated);
        assert_eq!(s.actions.patterns.len(), 2);
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.sid.as_deref(), Some("A1"));
    }

    #[test]
    fn unknown_effect_names_path_line_and_column() {
        let text = "{\"Version\": \"2012-10-17\",\n \"Statement\": [\n  {\"Effect\": \"Alow\", \"Action\": \"ssm:SendCommand\", \"Resource\": \"*\"}]}";
        let d = error(text, "unknown-effect");
        assert_eq!(d.path, "$.Statement[0].Effect");
        let loc = d.location.unwrap();
        assert_eq!((loc.line, loc.column), (3, 14));
        assert_eq!(d.file.as_deref(), Some("p.json"));
        assert!(d.message.contains("`Alow`"));
        let lower = error(
            &stmt(r#"{"Effect":"allow","Action":"ssm:SendCommand","Resource":"*"}"#),
            "unknown-effect",
        );
        assert!(lower.message.contains("case-sensitive"));
    }

    #[test]
    fn action_and_resource_presence_rules() {
        let both = error(
            &stmt(r#"{"Effect":"Allow","Action":"ssm:A","NotAction":"ssm:B","Resource":"*"}"#),
            "both-elements",
        );
        assert_eq!(both.path, "$.Statement[0].NotAction");
        let neither = error(
            &stmt(r#"{"Effect":"Allow","Resource":"*"}"#),
            "missing-element",
        );
        assert!(neither.message.contains("`Action`"));
        let no_resource = error(
            &stmt(r#"{"Effect":"Allow","Action":"ssm:SendCommand"}"#),
            "missing-element",
        );
        assert!(no_resource.message.contains("`Resource`"));
        assert_eq!(no_resource.path, "$.Statement[0]");
    }

    #[test]
    fn malformed_condition_values_are_errors() {
        let cases = [
            (
                r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/33"}}"#,
                "$.Statement[0].Condition.IpAddress[\"aws:SourceIp\"]",
            ),
            (
                r#"{"DateLessThan":{"aws:CurrentTime":"next tuesday"}}"#,
                "$.Statement[0].Condition.DateLessThan[\"aws:CurrentTime\"]",
            ),
            (
                r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":["60","sixty"]}}"#,
                "$.Statement[0].Condition.NumericLessThan[\"aws:MultiFactorAuthAge\"][1]",
            ),
            (
                r#"{"Bool":{"aws:SecureTransport":"yes"}}"#,
                "$.Statement[0].Condition.Bool[\"aws:SecureTransport\"]",
            ),
            (
                r#"{"BinaryEquals":{"custom:blob":"not base64!"}}"#,
                "$.Statement[0].Condition.BinaryEquals[\"custom:blob\"]",
            ),
            (
                r#"{"Null":{"aws:TokenIssueTime":"maybe"}}"#,
                "$.Statement[0].Condition.Null[\"aws:TokenIssueTime\"]",
            ),
        ];
        for (cond, path) in cases {
            let d = error(
                &stmt(&format!(
                    r#"{{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{cond}}}"#
                )),
                "malformed-value",
            );
            assert_eq!(d.path, path, "{cond}");
        }
    }

    #[test]
    fn operator_errors() {
        let body = |op: &str| {
            stmt(&format!(
                r#"{{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{{"{op}":{{"aws:SourceVpce":"true"}}}}}}"#
            ))
        };
        let d = error(&body("StringEqualz"), "unknown-operator");
        assert_eq!(d.path, "$.Statement[0].Condition.StringEqualz");
        // IAM condition operators: IfExists may not be added to Null.
        assert!(error(&body("NullIfExists"), "unknown-operator")
            .message
            .contains("Null"));
        assert!(
            error(&body("ForEveryValue:StringEquals"), "unknown-operator")
                .message
                .contains("ForEveryValue")
        );
        let w = warnings(&body("stringequals"));
        assert!(w.iter().any(|d| d.code == "operator-case"));
    }

    #[test]
    fn structural_errors_are_all_listed() {
        let text = r#"{"Version":"2013-01-01","Statment":[],"Statement":[
            {"Sid":"has space","Effect":"Allow","Action":"SendCommand","Resource":"i-123"},
            {"Sid":"Dup","Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"NumericEquals":{"aws:x":"${aws:username}"}}},
            {"Sid":"Dup","Effect":"Allow","Action":[],"Resource":"*"}]}"#;
        let codes: Vec<&str> = errors(text).iter().map(|d| d.code.as_str()).collect();
        for code in [
            "invalid-version",
            "unknown-element",
            "invalid-sid",
            "invalid-action",
            "invalid-resource",
            "variable-not-supported",
            "empty-list",
        ] {
            assert!(codes.contains(&code), "{code} not in {codes:?}");
        }
    }

    #[test]
    fn duplicate_sids_are_rejected() {
        let d = error(
            &stmt(
                r#"{"Sid":"A","Effect":"Allow","Action":"ssm:SendCommand","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"ssm:SendCommand","Resource":"*"}"#,
            ),
            "duplicate-sid",
        );
        assert_eq!(d.path, "$.Statement[1].Sid");
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        let d = error(
            "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [,]\n}",
            "invalid-json",
        );
        let loc = d.location.unwrap();
        assert_eq!((loc.line, loc.column), (3, 17));
    }

    #[test]
    fn variables_only_after_the_fifth_colon() {
        // IAM policy variables: in Resource, variables go only in the resource part of the ARN.
        let d = error(
            &stmt(
                r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ec2:${aws:RequestedRegion}:1:instance/*"}"#,
            ),
            "invalid-resource",
        );
        assert!(d.message.contains("fifth colon"));
        assert!(Policy::parse(&stmt(r#"{"Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ssm:*:*:session/${aws:username}-*"}"#), None).is_ok());
    }

    #[test]
    fn principal_is_ignored_with_a_warning() {
        let w = warnings(&stmt(
            r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ssm:SendCommand","Resource":"*"}"#,
        ));
        let d = w.iter().find(|d| d.code == "principal-ignored").unwrap();
        assert_eq!(d.path, "$.Statement[0].Principal");
    }

    #[test]
    fn missing_version_warns() {
        let w = warnings(
            r#"{"Statement":{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:*:*:session/${aws:username}-*"}}"#,
        );
        let codes: Vec<_> = w.iter().map(|d| d.code.as_str()).collect();
        assert!(codes.contains(&"missing-version"));
        assert!(codes.contains(&"variables-need-2012-10-17"));
    }

    // ---- lints for the pitfalls users hit ---------------------------------------------------

    fn lint_codes(text: &str) -> Vec<&'static str> {
        warnings(text).iter().map(|d| d.code.as_str()).collect()
    }

    #[test]
    fn lint_resource_tag_with_documents() {
        let text = stmt(
            r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":["arn:aws:ec2:*:*:instance/*","arn:aws:ssm:*::document/AWS-RunShellScript"],"Condition":{"StringLike":{"ssm:resourceTag/Finance":["WebServers"]}}}"#,
        );
        let w = warnings(&text);
        let d = w
            .iter()
            .find(|d| d.code == "resource-tag-on-document")
            .unwrap();
        assert_eq!(
            d.path,
            "$.Statement[0].Condition.StringLike[\"ssm:resourceTag/Finance\"]"
        );
        assert!(
            d.help
                .as_deref()
                .is_some_and(|h| h.contains("second statement")),
            "{:?}",
            d.help
        );
        // Split into two statements: no warning.
        let split = stmt(
            r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"StringLike":{"ssm:resourceTag/Finance":"WebServers"}}},{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:*::document/AWS-RunShellScript"}"#,
        );
        assert!(!lint_codes(&split).contains(&"resource-tag-on-document"));
        // `Resource: *` covers documents too.
        let star = stmt(
            r#"{"Effect":"Allow","Action":"ssm:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/Env":"dev"}}}"#,
        );
        assert!(lint_codes(&star).contains(&"resource-tag-on-document"));
    }

    #[test]
    fn lint_missing_via_aws_service() {
        let only_vpce = stmt(
            r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}}"#,
        );
        let w = warnings(&only_vpce);
        let d = w
            .iter()
            .find(|d| d.code == "missing-via-aws-service")
            .unwrap();
        assert_eq!(
            d.path,
            "$.Statement[0].Condition.StringEquals[\"aws:SourceVpce\"]"
        );
        assert!(d
            .help
            .as_deref()
            .is_some_and(|h| h.contains("aws:ViaAWSService")));
        let paired = stmt(
            r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}},{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"Bool":{"aws:ViaAWSService":"true"}}}"#,
        );
        assert!(!lint_codes(&paired).contains(&"missing-via-aws-service"));
    }

    #[test]
    fn lint_instance_arn_with_ssm_service() {
        let text = stmt(
            r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:us-east-1:111122223333:instance/*"}"#,
        );
        assert!(lint_codes(&text).contains(&"instance-arn-service"));
        let ok = stmt(
            r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:us-east-1:111122223333:managed-instance/*"}"#,
        );
        assert!(!lint_codes(&ok).contains(&"instance-arn-service"));
    }

    #[test]
    fn lint_unknown_ssm_actions() {
        let w = warnings(&stmt(
            r#"{"Effect":"Allow","Action":["ssm:SendComand","ssm:Start*","ssm:Frobnicate*","ec2:Whatever"],"Resource":"*"}"#,
        ));
        let msgs: Vec<&str> = w
            .iter()
            .filter(|d| d.code == "unknown-action")
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("did you mean `ssm:SendCommand`"));
        assert!(msgs[1].contains("ssm:Frobnicate*"));
    }

    #[test]
    fn lint_condition_keys() {
        let w = lint_codes(&stmt(
            r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpcee":"v","aws:TagKeys":"Env"},"ForAllValues:StringEquals":{"aws:SourceVpce":"v"},"ArnLike":{"aws:SourceArn":"arn:aws:sns:*"}}}"#,
        ));
        for code in [
            "unknown-condition-key",
            "multivalued-without-set-operator",
            "set-operator-on-single-valued-key",
            "arn-value-segments",
        ] {
            assert!(w.contains(&code), "{code} not in {w:?}");
        }
        // Unknown keys are accepted (a warning, not an error).
        assert!(Policy::parse(&stmt(r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*","Condition":{"StringEquals":{"acme:Whatever":"x"}}}"#), None).is_ok());
    }

    // ---- never panics -----------------------------------------------------------------------

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            prop::sample::select(vec![
                "Allow",
                "Deny",
                "2012-10-17",
                "*",
                "ssm:SendCommand",
                "arn:aws:ec2:*:*:instance/*",
                "${aws:username}",
                "${",
                "203.0.113.0/24",
                "true",
                "2020-01-01",
                "",
                "é",
                "a:b:c:d:e:f",
            ])
            .prop_map(|s| serde_json::Value::String(s.to_string())),
            ".{0,12}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "Version",
                            "Statement",
                            "Effect",
                            "Action",
                            "NotAction",
                            "Resource",
                            "NotResource",
                            "Condition",
                            "Sid",
                            "Principal",
                            "StringEquals",
                            "ForAnyValue:StringLike",
                            "NullIfExists",
                            "IpAddress",
                            "DateLessThan",
                            "aws:SourceIp",
                            "ssm:resourceTag/Env",
                            "Bool",
                            "Id",
                            "x",
                        ]),
                        inner,
                    ),
                    0..6
                )
                .prop_map(|kv| serde_json::Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn arbitrary_json_never_panics(doc in arb_json()) {
            let text = doc.to_string();
            if let Ok(parsed) = Policy::parse(&text, Some("fuzz.json")) {
                let named = crate::iam::policy::NamedPolicy { name: "fuzz".into(), policy: parsed.value };
                let request = crate::iam::request::Request::new("ssm:SendCommand", "arn:aws:ec2:us-east-1:1:instance/i-1")
                    .with("aws:SourceIp", "203.0.113.5")
                    .with("ssm:resourceTag/Env", "prod");
                let d = crate::iam::evaluator::evaluate(&[&named], &request);
                let _ = d.report(&[&named], &request);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = Policy::parse(&text, None);
        }
    }
}
