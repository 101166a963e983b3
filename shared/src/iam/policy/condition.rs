//! Condition operators and their evaluation (IAM JSON policy elements: Condition operators;
//! Creating a condition with multiple context keys or values; Single-valued vs. multivalued
//! context keys).

use std::borrow::Cow;
use std::fmt;

use crate::iam::onemany::OneOrMany;
use crate::iam::request::{ContextValue, RequestContext};
use crate::iam::values::{self, Cidr, EpochMillis};
use crate::iam::variables::{tokens_to_string, Template, Unresolved};
use crate::iam::wildcard::{Flavor, Pattern};

/// The operator families: they decide how values are read and whether variables apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    String,
    Numeric,
    Date,
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

macro_rules! base_ops {
    ($($name:ident => $family:ident, $negated:literal;)*) => {
        /// A condition operator without qualifier or `IfExists`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum BaseOp { $($name),* }

        impl BaseOp {
            /// Every operator, in documentation order.
            pub const ALL: &'static [BaseOp] = &[$(BaseOp::$name),*];

            /// The operator's name as AWS spells it.
            pub fn name(self) -> &'static str {
                match self { $(BaseOp::$name => stringify!($name)),* }
            }

            pub fn family(self) -> Family {
                match self { $(BaseOp::$name => Family::$family),* }
            }

            /// Negated operators hold when no policy value matches (and when the key is missing).
            pub fn negated(self) -> bool {
                match self { $(BaseOp::$name => $negated),* }
            }
        }
    };
}

base_ops! {
    StringEquals => String, false;
    StringNotEquals => String, true;
    StringEqualsIgnoreCase => String, false;
    StringNotEqualsIgnoreCase => String, true;
    StringLike => String, false;
    StringNotLike => String, true;
    NumericEquals => Numeric, false;
    NumericNotEquals => Numeric, true;
    NumericLessThan => Numeric, false;
    NumericLessThanEquals => Numeric, false;
    NumericGreaterThan => Numeric, false;
    NumericGreaterThanEquals => Numeric, false;
    DateEquals => Date, false;
    DateNotEquals => Date, true;
    DateLessThan => Date, false;
    DateLessThanEquals => Date, false;
    DateGreaterThan => Date, false;
    DateGreaterThanEquals => Date, false;
    Bool => Bool, false;
    BinaryEquals => Binary, false;
    IpAddress => Ip, false;
    NotIpAddress => Ip, true;
    ArnEquals => Arn, false;
    ArnLike => Arn, false;
    ArnNotEquals => Arn, true;
    ArnNotLike => Arn, true;
    Null => Null, false;
}

impl BaseOp {
    /// Finds an operator by name, ignoring case.
    pub fn from_name(name: &str) -> Option<BaseOp> {
        if let Some(op) = BaseOp::ALL.iter().copied().find(|op| op.name() == name) {
            return Some(op);
        }
        BaseOp::ALL
            .iter()
            .copied()
            .find(|op| op.name().eq_ignore_ascii_case(name))
    }

    /// Whether policy variables are substituted in this operator's values (IAM condition
    /// operators: supported for String, Boolean and ARN operators only).
    pub fn supports_variables(self) -> bool {
        matches!(self.family(), Family::String | Family::Bool | Family::Arn)
    }

    fn ignore_case(self) -> bool {
        matches!(
            self,
            BaseOp::StringEqualsIgnoreCase | BaseOp::StringNotEqualsIgnoreCase
        )
    }

    fn like(self) -> bool {
        matches!(self, BaseOp::StringLike | BaseOp::StringNotLike)
    }
}

/// `ForAnyValue:` / `ForAllValues:`, the set operators for multivalued keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    ForAnyValue,
    ForAllValues,
}

/// A full condition operator: qualifier, base operator and `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub qualifier: Option<Qualifier>,
    pub base: BaseOp,
    pub if_exists: bool,
}

/// Why an operator name is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("unknown condition operator `{0}`")]
    Unknown(String),
    #[error("unknown set operator `{0}`; expected `ForAnyValue` or `ForAllValues`")]
    UnknownQualifier(String),
    #[error("`IfExists` cannot be added to the `Null` operator")]
    NullIfExists,
}

impl Operator {
    /// Parses `[ForAnyValue:|ForAllValues:]Base[IfExists]` (names match case-insensitively).
    pub fn parse(text: &str) -> Result<Operator, OperatorError> {
        let (qualifier, rest) = match text.split_once(':') {
            Some((q, rest)) => {
                let qualifier = if q.eq_ignore_ascii_case("ForAnyValue") {
                    Qualifier::ForAnyValue
                } else if q.eq_ignore_ascii_case("ForAllValues") {
                    Qualifier::ForAllValues
                } else {
                    return Err(OperatorError::UnknownQualifier(q.to_string()));
                };
                (Some(qualifier), rest)
            }
            None => (None, text),
        };
        let (base_name, if_exists) = match rest.len().checked_sub("IfExists".len()) {
            Some(cut)
                if rest
                    .get(cut..)
                    .is_some_and(|s| s.eq_ignore_ascii_case("IfExists")) =>
            {
                (rest.get(..cut).unwrap_or_default(), true)
            }
            _ => (rest, false),
        };
        let base = BaseOp::from_name(base_name)
            .or_else(|| if_exists.then(|| BaseOp::from_name(rest)).flatten())
            .ok_or_else(|| OperatorError::Unknown(text.to_string()))?;
        if base == BaseOp::Null && if_exists {
            return Err(OperatorError::NullIfExists);
        }
        Ok(Operator {
            qualifier,
            base,
            if_exists,
        })
    }
}

impl Operator {
    /// Is `text` the canonical (AWS) spelling of this operator?
    pub fn spelled_as(&self, text: &str) -> bool {
        let rest = match self.qualifier {
            Some(Qualifier::ForAnyValue) => text.strip_prefix("ForAnyValue:"),
            Some(Qualifier::ForAllValues) => text.strip_prefix("ForAllValues:"),
            None => Some(text),
        };
        let rest = rest.and_then(|r| r.strip_prefix(self.base.name()));
        match rest {
            Some("IfExists") => self.if_exists,
            Some("") => !self.if_exists,
            _ => false,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.qualifier {
            Some(Qualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            Some(Qualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            None => {}
        }
        f.write_str(self.base.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

/// A string-family or ARN value, compiled when it has no variables.
#[derive(Debug, Clone)]
pub enum TextValue {
    /// Equality operators: the condition's raw value at the same position.
    Raw,
    /// Equality operators: text that differs from the raw value (filled-in templates).
    Exact(String),
    /// `StringLike` / ARN operators: a compiled pattern.
    Pattern(Box<Pattern>),
    /// A value with policy variables, filled in per request.
    Template(Template),
}

/// A boolean value, possibly a variable.
#[derive(Debug, Clone)]
pub enum BoolValue {
    Fixed(bool),
    Template(Template),
}

/// The policy values of one condition, typed by the operator family.
#[derive(Debug, Clone)]
pub enum Values {
    Text(OneOrMany<TextValue>),
    Numeric(OneOrMany<f64>),
    Date(OneOrMany<EpochMillis>),
    Bool(OneOrMany<BoolValue>),
    Binary(OneOrMany<Vec<u8>>),
    Ip(OneOrMany<Cidr>),
    Null(OneOrMany<bool>),
}

/// One `operator: { key: values }` test.
#[derive(Debug, Clone)]
pub struct Condition {
    pub operator: Operator,
    /// The key as written.
    pub key: Cow<'static, str>,
    /// Lowercased key, for lookups.
    pub key_lower: Cow<'static, str>,
    /// The values as written (for explanations).
    pub raw_values: OneOrMany<String>,
    pub values: Values,
}

/// Records the request-context keys an evaluation consulted but did not find.
pub(crate) fn note_missing(missing: &mut Vec<String>, key: &str) {
    if !missing.iter().any(|k| k.eq_ignore_ascii_case(key)) {
        missing.push(key.to_string());
    }
}

impl Condition {
    /// Tests the condition against the request context. Keys it needed and did not find
    /// (the condition key itself, or a policy variable without default) go to `missing`.
    pub fn evaluate(&self, ctx: &RequestContext, missing: &mut Vec<String>) -> bool {
        self.evaluate_assuming(ctx, missing, None)
    }

    /// The unknown keys (see [`RequestContext::mark_unknown`]) this condition reads: its key,
    /// or a policy variable in its values.
    fn reads_unknown(&self, ctx: &RequestContext) -> Option<String> {
        if ctx.is_unknown_lower(&self.key_lower) {
            return Some(self.key.to_string());
        }
        let templates: Vec<&Template> = match &self.values {
            Values::Text(vals) => vals
                .iter()
                .filter_map(|v| match v {
                    TextValue::Template(t) => Some(t),
                    _ => None,
                })
                .collect(),
            Values::Bool(vals) => vals
                .iter()
                .filter_map(|v| match v {
                    BoolValue::Template(t) => Some(t),
                    BoolValue::Fixed(_) => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        templates
            .iter()
            .flat_map(|t| t.variables())
            .find(|v| ctx.is_unknown_lower(&v.key_lower))
            .map(|v| v.key.clone())
    }

    /// [`Condition::evaluate`], except that a condition reading an unknown key holds exactly
    /// when `unknown_holds` says (`None`: unknown keys count as absent). Deciding a request once
    /// with unknown conditions at their most permissive and once at their most restrictive
    /// bounds every value they could have had.
    pub fn evaluate_assuming(
        &self,
        ctx: &RequestContext,
        missing: &mut Vec<String>,
        unknown_holds: Option<bool>,
    ) -> bool {
        if let Some(holds) = unknown_holds {
            if let Some(key) = self.reads_unknown(ctx) {
                note_missing(missing, &key);
                return holds;
            }
        }
        let op = self.operator;
        let found = ctx.get_lower(&self.key_lower);
        if found.is_none() {
            note_missing(missing, &self.key);
        }
        if op.base == BaseOp::Null {
            // Access Analyzer (NULL_WITH_QUALIFIER): with a set operator, Null is always true
            // under ForAllValues and always false under ForAnyValue.
            match op.qualifier {
                Some(Qualifier::ForAllValues) => return true,
                Some(Qualifier::ForAnyValue) => return false,
                None => {}
            }
            // "true": the key must be absent; "false": present. Several values: OR.
            let present = found.is_some();
            let Values::Null(expect_absent) = &self.values else {
                return false;
            };
            return expect_absent.iter().any(|&absent| absent != present);
        }
        let Some(found) = found else {
            // IAM condition operators: a missing key makes the condition false, except for
            // negated operators and `...IfExists` (true); `ForAllValues` on a missing key is
            // true; `ForAnyValue` on a missing key is false.
            return match op.qualifier {
                Some(Qualifier::ForAllValues) => true,
                Some(Qualifier::ForAnyValue) => op.if_exists,
                None => op.if_exists || op.base.negated(),
            };
        };
        let negated = op.base.negated();
        let mut test = |v: &str| self.any_value_matches(v, ctx, missing) != negated;
        match (op.qualifier, found) {
            (None | Some(Qualifier::ForAnyValue), ContextValue::Single(v)) => test(v),
            // Without a set operator a multivalued key is compared value by value and the
            // condition holds when one value satisfies it (the ForAnyValue reading); `check`
            // warns about known multivalued keys used without a set operator.
            (None | Some(Qualifier::ForAnyValue), ContextValue::Multi(vs)) => {
                vs.iter().any(|v| test(v))
            }
            (Some(Qualifier::ForAllValues), found) => found.values().iter().all(|v| test(v)),
        }
    }

    /// Does `v` satisfy the positive form of the operator for at least one policy value?
    fn any_value_matches(&self, v: &str, ctx: &RequestContext, missing: &mut Vec<String>) -> bool {
        let base = self.operator.base;
        match &self.values {
            Values::Text(vals) => vals
                .iter()
                .zip(self.raw_values.iter())
                .any(|(pv, raw)| text_matches(base, pv, raw, v, ctx, missing)),
            Values::Numeric(nums) => values::parse_number(v)
                .is_some_and(|x| nums.iter().any(|&p| compare(base, x.partial_cmp(&p)))),
            Values::Date(dates) => values::parse_date(v)
                .is_some_and(|x| dates.iter().any(|&p| compare(base, Some(x.cmp(&p))))),
            Values::Bool(bools) => {
                let Some(x) = values::parse_bool(v) else {
                    return false;
                };
                bools.iter().any(|b| {
                    let p = match b {
                        BoolValue::Fixed(p) => Some(*p),
                        BoolValue::Template(t) => resolve(t, ctx, missing)
                            .and_then(|tokens| values::parse_bool(&tokens_to_string(&tokens))),
                    };
                    p == Some(x)
                })
            }
            Values::Binary(blobs) => {
                let bytes = values::decode_base64(v).unwrap_or_else(|| v.as_bytes().to_vec());
                blobs.contains(&bytes)
            }
            Values::Ip(cidrs) => {
                values::parse_ip(v).is_some_and(|ip| cidrs.iter().any(|c| c.contains(ip)))
            }
            Values::Null(_) => false,
        }
    }
}

/// Fills in a template. A variable with no value and no default makes the value "effectively
/// null" (IAM policy variables, "Policy variables with no value"): it matches nothing, so
/// positive operators fail on it and negated operators hold.
pub(crate) fn resolve(
    t: &Template,
    ctx: &RequestContext,
    missing: &mut Vec<String>,
) -> Option<Vec<crate::iam::wildcard::Token>> {
    match t.resolve(ctx) {
        Ok(tokens) => Some(tokens),
        Err(Unresolved { key, .. }) => {
            note_missing(missing, &key);
            None
        }
    }
}

fn compare(base: BaseOp, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let Some(ord) = ord else { return false };
    match base {
        BaseOp::NumericEquals
        | BaseOp::NumericNotEquals
        | BaseOp::DateEquals
        | BaseOp::DateNotEquals => ord == Equal,
        BaseOp::NumericLessThan | BaseOp::DateLessThan => ord == Less,
        BaseOp::NumericLessThanEquals | BaseOp::DateLessThanEquals => ord != Greater,
        BaseOp::NumericGreaterThan | BaseOp::DateGreaterThan => ord == Greater,
        BaseOp::NumericGreaterThanEquals | BaseOp::DateGreaterThanEquals => ord != Less,
        _ => false,
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

fn text_matches(
    base: BaseOp,
    pv: &TextValue,
    raw: &str,
    v: &str,
    ctx: &RequestContext,
    missing: &mut Vec<String>,
) -> bool {
    match pv {
        TextValue::Raw => {
            if base.ignore_case() {
                eq_ignore_case(v, raw)
            } else {
                raw == v
            }
        }
        TextValue::Exact(p) => {
            if base.ignore_case() {
                eq_ignore_case(v, p)
            } else {
                p == v
            }
        }
        TextValue::Pattern(p) => p.matches(v),
        TextValue::Template(t) => {
            let Some(tokens) = resolve(t, ctx, missing) else {
                return false;
            };
            if base.family() == Family::Arn {
                Pattern::from_tokens("", &tokens, Flavor::ArnCondition, false).matches(v)
            } else if base.like() {
                Pattern::from_tokens("", &tokens, Flavor::Glob, false).matches(v)
            } else if base.ignore_case() {
                eq_ignore_case(v, &tokens_to_string(&tokens).to_lowercase())
            } else {
                tokens_to_string(&tokens) == v
            }
        }
    }
}

/// Compiles one string/ARN value for `base` (the caller has checked the family).
pub fn compile_text(base: BaseOp, raw: &str, variables: bool) -> TextValue {
    let plain = !(variables && base.supports_variables() && raw.contains("${"));
    if plain {
        if base.family() == Family::Arn {
            return TextValue::Pattern(Box::new(Pattern::new(raw, Flavor::ArnCondition, false)));
        } else if base.like() {
            return TextValue::Pattern(Box::new(Pattern::new(raw, Flavor::Glob, false)));
        }
        return TextValue::Raw;
    }
    let template = Template::parse(raw, variables && base.supports_variables());
    let Some(tokens) = template.static_tokens() else {
        return TextValue::Template(template);
    };
    if base.family() == Family::Arn {
        TextValue::Pattern(Box::new(Pattern::from_tokens(
            raw,
            &tokens,
            Flavor::ArnCondition,
            false,
        )))
    } else if base.like() {
        TextValue::Pattern(Box::new(Pattern::from_tokens(
            raw,
            &tokens,
            Flavor::Glob,
            false,
        )))
    } else if base.ignore_case() {
        TextValue::Exact(tokens_to_string(&tokens).to_lowercase())
    } else {
        TextValue::Exact(tokens_to_string(&tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn parses_qualifiers_and_if_exists() {
        let op = Operator::parse("ForAllValues:StringLikeIfExists").unwrap();
        assert_eq!(op.qualifier, Some(Qualifier::ForAllValues));
        assert_eq!(op.base, BaseOp::StringLike);
        assert!(op.if_exists);
        assert_eq!(op.to_string(), "ForAllValues:StringLikeIfExists");
        assert!(op.spelled_as("ForAllValues:StringLikeIfExists"));
        assert!(!op.spelled_as("forallvalues:StringLikeIfExists"));
        assert!(!op.spelled_as("ForAllValues:StringLike"));
        assert_eq!(
            Operator::parse("stringequals").unwrap().base,
            BaseOp::StringEquals
        );
        assert!(matches!(
            Operator::parse("StringEqualz"),
            Err(OperatorError::Unknown(_))
        ));
        assert!(matches!(
            Operator::parse("ForSomeValues:StringEquals"),
            Err(OperatorError::UnknownQualifier(_))
        ));
        // IAM condition operators, "...IfExists condition operators": "You can add IfExists to
        // the end of any condition operator name except the Null condition".
        assert_eq!(
            Operator::parse("NullIfExists"),
            Err(OperatorError::NullIfExists)
        );
        // Access Analyzer only suggests against a set operator on Null; IAM accepts it.
        assert!(Operator::parse("ForAnyValue:Null").is_ok());
        assert!(matches!(
            Operator::parse("IfExists"),
            Err(OperatorError::Unknown(_))
        ));
    }

    #[test]
    fn every_operator_has_a_family_and_name() {
        assert_eq!(BaseOp::ALL.len(), 27);
        let negated: Vec<_> = BaseOp::ALL
            .iter()
            .filter(|o| o.negated())
            .map(|o| o.name())
            .collect();
        assert_eq!(
            negated,
            [
                "StringNotEquals",
                "StringNotEqualsIgnoreCase",
                "StringNotLike",
                "NumericNotEquals",
                "DateNotEquals",
                "NotIpAddress",
                "ArnNotEquals",
                "ArnNotLike"
            ]
        );
    }

    // ---- evaluation, one operator family at a time -------------------------------------

    use crate::iam::policy::Policy;
    use crate::iam::request::RequestContext;
    use serde_json::json;

    /// The conditions of a one-statement policy with `condition` as its Condition block.
    fn conditions(condition: serde_json::Value) -> Vec<Condition> {
        let doc = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*", "Condition": condition}});
        let parsed = Policy::parse(&doc.to_string(), None).unwrap_or_else(|e| panic!("{e}"));
        parsed
            .value
            .statements
            .into_iter()
            .next()
            .unwrap()
            .conditions
    }

    fn ctx(pairs: &[(&str, &str)]) -> RequestContext {
        let mut c = RequestContext::new();
        for (k, v) in pairs {
            c.insert(k, *v);
        }
        c
    }

    /// Does the whole condition block hold (all conditions AND)?
    fn holds(condition: serde_json::Value, context: &RequestContext) -> bool {
        let mut missing = Vec::new();
        conditions(condition)
            .iter()
            .all(|c| c.evaluate(context, &mut missing))
    }

    fn one(op: &str, key: &str, values: serde_json::Value, context: &[(&str, &str)]) -> bool {
        holds(json!({op: {key: values}}), &ctx(context))
    }

    /// One operator, one key, its policy values and the request's context: does it hold?
    /// (IAM JSON policy elements: Condition operators.)
    #[rstest]
    #[case::string_equals_is_case_sensitive_and_ors_values_1("StringEquals", "ssm:resourceTag/Finance", json!("WebServers"), &[("ssm:resourceTag/Finance", "WebServers")], true)]
    #[case::string_equals_is_case_sensitive_and_ors_values_2("StringEquals", "ssm:resourceTag/Finance", json!("WebServers"), &[("ssm:resourceTag/Finance", "webservers")], false)]
    #[case::string_equals_is_case_sensitive_and_ors_values_3("StringEquals", "ssm:resourceTag/Finance", json!(["Payroll", "WebServers"]), &[("ssm:resourceTag/Finance", "WebServers")], true)]
    // no wildcards in Equals
    #[case::string_equals_is_case_sensitive_and_ors_values_4("StringEquals", "ssm:resourceTag/Finance", json!("Web*"), &[("ssm:resourceTag/Finance", "WebServers")], false)]
    // "Creating a condition with multiple context keys or values": with a negated operator
    // the request value must match none of the policy values.
    #[case::negated_operators_nor_their_values_1("StringNotEquals", "aws:PrincipalTag/team", json!(["a", "b"]), &[("aws:PrincipalTag/team", "c")], true)]
    #[case::negated_operators_nor_their_values_2("StringNotEquals", "aws:PrincipalTag/team", json!(["a", "b"]), &[("aws:PrincipalTag/team", "b")], false)]
    #[case::negated_operators_nor_their_values_3("StringNotEqualsIgnoreCase", "aws:PrincipalTag/team", json!(["a", "b"]), &[("aws:PrincipalTag/team", "c")], true)]
    #[case::negated_operators_nor_their_values_4("StringNotEqualsIgnoreCase", "aws:PrincipalTag/team", json!(["a", "b"]), &[("aws:PrincipalTag/team", "B")], false)]
    #[case::negated_operators_nor_their_values_5("StringNotLike", "aws:PrincipalTag/team", json!(["x*", "b?"]), &[("aws:PrincipalTag/team", "bc")], false)]
    #[case::negated_operators_nor_their_values_6("StringNotLike", "aws:PrincipalTag/team", json!(["x*", "b?"]), &[("aws:PrincipalTag/team", "bcd")], true)]
    #[case::ignore_case_operators_1("StringEqualsIgnoreCase", "aws:PrincipalTag/team", json!("WebServers"), &[("aws:PrincipalTag/team", "WEBSERVERS")], true)]
    // Simple lowercase comparison: `ß` does not fold to `ss`.
    #[case::ignore_case_operators_2("StringEqualsIgnoreCase", "aws:PrincipalTag/team", json!("Straße"), &[("aws:PrincipalTag/team", "STRASSE")], false)]
    #[case::ignore_case_operators_3("StringEqualsIgnoreCase", "aws:PrincipalTag/team", json!("ÉQUIPE"), &[("aws:PrincipalTag/team", "équipe")], true)]
    #[case::ignore_case_operators_4("StringEqualsIgnoreCase", "aws:PrincipalTag/team", json!("web"), &[("aws:PrincipalTag/team", "webs")], false)]
    #[case::string_like_wildcards_1("StringLike", "ssm:resourceTag/Name", json!("web-*"), &[("ssm:resourceTag/Name", "web-01")], true)]
    #[case::string_like_wildcards_2("StringLike", "ssm:resourceTag/Name", json!("web-??"), &[("ssm:resourceTag/Name", "web-01")], true)]
    #[case::string_like_wildcards_3("StringLike", "ssm:resourceTag/Name", json!("web-??"), &[("ssm:resourceTag/Name", "web-1")], false)]
    // StringLike is case-sensitive
    #[case::string_like_wildcards_4("StringLike", "ssm:resourceTag/Name", json!("Web-*"), &[("ssm:resourceTag/Name", "web-01")], false)]
    #[case::string_like_wildcards_5("StringLike", "ssm:resourceTag/Name", json!("*"), &[("ssm:resourceTag/Name", "")], true)]
    #[case::bool_operator_1("Bool", "aws:ViaAWSService", json!("true"), &[("aws:ViaAWSService", "true")], true)]
    #[case::bool_operator_2("Bool", "aws:ViaAWSService", json!("true"), &[("aws:ViaAWSService", "false")], false)]
    #[case::bool_operator_3("Bool", "aws:ViaAWSService", json!(false), &[("aws:ViaAWSService", "false")], true)]
    #[case::bool_operator_4("Bool", "aws:ViaAWSService", json!("true"), &[("aws:ViaAWSService", "yes")], false)]
    // IAM condition operators, BinaryEquals: "compares the value of the specified key byte
    // for byte against a base-64 encoded representation of the binary value in the policy".
    #[case::binary_equals_compares_decoded_bytes_1("BinaryEquals", "custom:blob", json!("QmluYXJ5VmFsdWVJbkJhc2U2NA=="), &[("custom:blob", "QmluYXJ5VmFsdWVJbkJhc2U2NA==")], true)]
    #[case::binary_equals_compares_decoded_bytes_2("BinaryEquals", "custom:blob", json!("QmluYXJ5VmFsdWVJbkJhc2U2NA=="), &[("custom:blob", "YWJj")], false)]
    #[case::ip_operators_v4_and_v6_1("IpAddress", "aws:SourceIp", json!("203.0.113.0/24"), &[("aws:SourceIp", "203.0.113.9")], true)]
    #[case::ip_operators_v4_and_v6_2("IpAddress", "aws:SourceIp", json!("203.0.113.0/24"), &[("aws:SourceIp", "198.51.100.9")], false)]
    #[case::ip_operators_v4_and_v6_3("IpAddress", "aws:SourceIp", json!(["203.0.113.0/24", "2001:DB8:1234:5678::/64"]), &[("aws:SourceIp", "2001:db8:1234:5678::17")], true)]
    #[case::ip_operators_v4_and_v6_4("NotIpAddress", "aws:SourceIp", json!("203.0.113.0/24"), &[("aws:SourceIp", "198.51.100.9")], true)]
    #[case::ip_operators_v4_and_v6_5("NotIpAddress", "aws:SourceIp", json!("203.0.113.0/24"), &[("aws:SourceIp", "203.0.113.1")], false)]
    // a service name is not an IP
    #[case::ip_operators_v4_and_v6_6("IpAddress", "aws:SourceIp", json!("203.0.113.0/24"), &[("aws:SourceIp", "ssm.amazonaws.com")], false)]
    #[case::null_checks_presence_1("Null", "aws:TokenIssueTime", json!("true"), &[], true)]
    #[case::null_checks_presence_2("Null", "aws:TokenIssueTime", json!("true"), &[("aws:TokenIssueTime", "2024-01-01T00:00:00Z")], false)]
    #[case::null_checks_presence_3("Null", "aws:TokenIssueTime", json!("false"), &[("aws:TokenIssueTime", "2024-01-01T00:00:00Z")], true)]
    #[case::null_checks_presence_4("Null", "aws:TokenIssueTime", json!("false"), &[], false)]
    // IAM condition operators (introduction): a missing key makes the condition false,
    // except for negated operators (true), `...IfExists` (true) and Null.
    #[case::missing_keys_follow_the_documented_rules_1("StringEquals", "aws:SourceVpce", json!("vpce-1"), &[], false)]
    #[case::missing_keys_follow_the_documented_rules_2("StringNotEquals", "aws:SourceVpce", json!("vpce-1"), &[], true)]
    #[case::missing_keys_follow_the_documented_rules_3("StringEqualsIfExists", "aws:SourceVpce", json!("vpce-1"), &[], true)]
    // IfExists tests a present key normally
    #[case::missing_keys_follow_the_documented_rules_4("StringEqualsIfExists", "aws:SourceVpce", json!("vpce-1"), &[("aws:SourceVpce", "vpce-2")], false)]
    #[case::missing_keys_follow_the_documented_rules_5("ArnNotLike", "aws:SourceArn", json!("arn:aws:sns:*:*:*"), &[], true)]
    #[case::missing_keys_follow_the_documented_rules_6("NumericLessThan", "aws:MultiFactorAuthAge", json!(60), &[], false)]
    #[case::missing_keys_follow_the_documented_rules_7("NumericLessThanIfExists", "aws:MultiFactorAuthAge", json!(60), &[], true)]
    // Single-vs-multivalued context keys: ForAllValues on a missing key is true,
    // ForAnyValue on a missing key is false.
    #[case::missing_keys_follow_the_documented_rules_8("ForAllValues:StringEquals", "aws:TagKeys", json!(["a"]), &[], true)]
    #[case::missing_keys_follow_the_documented_rules_9("ForAnyValue:StringEquals", "aws:TagKeys", json!(["a"]), &[], false)]
    #[case::missing_keys_follow_the_documented_rules_10("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", json!(["a"]), &[], true)]
    #[case::condition_key_names_are_case_insensitive_1("StringEquals", "AWS:SOURCEVPCE", json!("vpce-1"), &[("aws:SourceVpce", "vpce-1")], true)]
    #[case::condition_key_names_are_case_insensitive_2("StringEquals", "ssm:ResourceTag/finance", json!("x"), &[("ssm:resourceTag/Finance", "x")], true)]
    #[case::policy_variables_in_condition_values_1("StringEquals", "ssm:resourceTag/Owner", json!("${aws:username}"), &[("ssm:resourceTag/Owner", "alice"), ("aws:username", "alice")], true)]
    #[case::policy_variables_in_condition_values_2("StringEquals", "ssm:resourceTag/Owner", json!("${aws:username}"), &[("ssm:resourceTag/Owner", "alice"), ("aws:username", "bob")], false)]
    #[case::policy_variables_in_condition_values_3("StringLike", "ssm:resourceTag/Owner", json!("team-${aws:PrincipalTag/team}-*"), &[("ssm:resourceTag/Owner", "team-web-1"), ("aws:PrincipalTag/team", "web")], true)]
    #[case::policy_variables_in_condition_values_4("ArnLike", "aws:SourceArn", json!("arn:aws:iam::*:user/${aws:username}"), &[("aws:SourceArn", "arn:aws:iam::1:user/alice"), ("aws:username", "alice") ], true)]
    // IAM policy variables, "Policy variables with no value": StringEquals does not match a
    // variable with no value, inverted operators do.
    #[case::policy_variables_in_condition_values_5("StringEquals", "ssm:resourceTag/Owner", json!("${aws:username}"), &[("ssm:resourceTag/Owner", "alice")], false)]
    #[case::policy_variables_in_condition_values_6("StringNotEquals", "ssm:resourceTag/Owner", json!("${aws:username}"), &[("ssm:resourceTag/Owner", "alice")], true)]
    #[case::policy_variables_in_condition_values_7("StringEquals", "ssm:resourceTag/Owner", json!("${aws:username, 'nobody'}"), &[("ssm:resourceTag/Owner", "nobody")], true)]
    // "${*}" is a literal asterisk even under StringLike.
    #[case::policy_variables_in_condition_values_8("StringLike", "ssm:resourceTag/Owner", json!("a${*}"), &[("ssm:resourceTag/Owner", "a*")], true)]
    #[case::policy_variables_in_condition_values_9("StringLike", "ssm:resourceTag/Owner", json!("a${*}"), &[("ssm:resourceTag/Owner", "ab")], false)]
    // Access Analyzer NULL_WITH_QUALIFIER: ForAllValues:Null is always true, ForAnyValue:Null
    // always false.
    #[case::null_with_set_operators_is_constant_1("ForAllValues:Null", "aws:TagKeys", json!("false"), &[], true)]
    #[case::null_with_set_operators_is_constant_2("ForAnyValue:Null", "aws:TagKeys", json!("true"), &[], false)]
    fn one_operator(
        #[case] op: &str,
        #[case] key: &str,
        #[case] values: serde_json::Value,
        #[case] context: &[(&str, &str)],
        #[case] expected: bool,
    ) {
        assert_eq!(one(op, key, values, context), expected);
    }

    #[test]
    fn numeric_operators() {
        let k = "aws:MultiFactorAuthAge";
        let c = |op: &str, v: &str, actual: &str| one(op, k, json!(v), &[(k, actual)]);
        assert!(c("NumericEquals", "10", "10.0"));
        assert!(!c("NumericEquals", "10", "11"));
        assert!(c("NumericNotEquals", "10", "11"));
        assert!(c("NumericLessThan", "10", "9.5"));
        assert!(!c("NumericLessThan", "10", "10"));
        assert!(c("NumericLessThanEquals", "10", "10"));
        assert!(c("NumericGreaterThan", "10", "10.01"));
        assert!(!c("NumericGreaterThan", "10", "10"));
        assert!(c("NumericGreaterThanEquals", "-1", "-1"));
        assert!(
            one("NumericLessThan", k, json!(3600), &[(k, "42")]),
            "JSON numbers are accepted"
        );
        assert!(
            !c("NumericLessThan", "10", "ten"),
            "a non-numeric request value never matches"
        );
        assert!(
            c("NumericNotEquals", "10", "ten"),
            "...so the negated operator holds"
        );
    }

    #[test]
    fn date_operators_mix_iso8601_and_epoch() {
        let k = "aws:CurrentTime";
        let c = |op: &str, v: &str, actual: &str| one(op, k, json!(v), &[(k, actual)]);
        assert!(c("DateEquals", "2024-08-02T09:08:56Z", "1722589736"));
        assert!(c(
            "DateNotEquals",
            "2024-08-02T09:08:56Z",
            "2024-08-02T09:08:57Z"
        ));
        assert!(c("DateLessThan", "2024-08-02", "2024-08-01T23:59:59Z"));
        assert!(!c("DateLessThan", "2024-08-02", "2024-08-02T00:00:00Z"));
        assert!(c(
            "DateLessThanEquals",
            "2024-08-02",
            "2024-08-02T00:00:00Z"
        ));
        assert!(c(
            "DateGreaterThan",
            "2024-08-02T00:00:00+02:00",
            "2024-08-01T22:00:01Z"
        ));
        assert!(c(
            "DateGreaterThanEquals",
            "1722556800",
            "2024-08-02T00:00:00Z"
        ));
        assert!(!c("DateGreaterThan", "2024-08-02", "not a date"));
    }

    #[test]
    fn arn_operators_match_segment_by_segment() {
        let k = "aws:PrincipalArn";
        let role = "arn:aws:iam::111122223333:role/JuniorEngineer";
        assert!(
            one(
                "ArnEquals",
                k,
                json!("arn:aws:iam::111122223333:role/Junior*"),
                &[(k, role)]
            ),
            "ArnEquals and ArnLike behave identically"
        );
        assert!(one(
            "ArnLike",
            k,
            json!("arn:aws:iam::*:role/JuniorEngineer"),
            &[(k, role)]
        ));
        assert!(!one(
            "ArnLike",
            k,
            json!("arn:aws:iam::*:role/Lead*"),
            &[(k, role)]
        ));
        assert!(one(
            "ArnNotLike",
            k,
            json!("arn:aws:iam::*:role/Lead*"),
            &[(k, role)]
        ));
        assert!(!one("ArnNotEquals", k, json!(role), &[(k, role)]));
        assert!(!one(
            "ArnLike",
            k,
            json!("arn:aws:iam::*:role/*"),
            &[(k, "not-an-arn")]
        ));
    }

    fn multi(key: &str, values: &[&str]) -> RequestContext {
        let mut c = RequestContext::new();
        c.insert_multi(key, values.iter().map(|v| v.to_string()).collect());
        c
    }

    #[test]
    fn set_operators_on_multivalued_keys() {
        let k = "aws:TagKeys";
        let both = multi(k, &["Env", "Team"]);
        assert!(holds(
            json!({"ForAllValues:StringEquals": {k: ["Env", "Team", "Cost"]}}),
            &both
        ));
        assert!(!holds(
            json!({"ForAllValues:StringEquals": {k: ["Env"]}}),
            &both
        ));
        assert!(holds(
            json!({"ForAnyValue:StringEquals": {k: ["Env"]}}),
            &both
        ));
        assert!(!holds(
            json!({"ForAnyValue:StringEquals": {k: ["Cost"]}}),
            &both
        ));
        // ForAllValues:StringNotEquals: no request value is in the list.
        assert!(holds(
            json!({"ForAllValues:StringNotEquals": {k: ["Cost"]}}),
            &both
        ));
        assert!(!holds(
            json!({"ForAllValues:StringNotEquals": {k: ["Env"]}}),
            &both
        ));
        // ForAnyValue:StringNotEquals: at least one request value is not in the list.
        assert!(holds(
            json!({"ForAnyValue:StringNotEquals": {k: ["Env"]}}),
            &both
        ));
        assert!(!holds(
            json!({"ForAnyValue:StringNotEquals": {k: ["Env", "Team"]}}),
            &both
        ));
        assert!(holds(json!({"ForAnyValue:StringLike": {k: ["T*"]}}), &both));
        // A single-valued key is a set of one.
        assert!(holds(
            json!({"ForAnyValue:StringEquals": {"aws:SourceVpce": ["vpce-1"]}}),
            &ctx(&[("aws:SourceVpce", "vpce-1")])
        ));
    }

    #[test]
    fn several_keys_and_several_operators_are_anded() {
        let both = ctx(&[
            ("ssm:resourceTag/Finance", "WebServers"),
            ("ssm:resourceTag/Env", "prod"),
        ]);
        let one_key = ctx(&[("ssm:resourceTag/Finance", "WebServers")]);
        let block = json!({"StringEquals": {"ssm:resourceTag/Finance": "WebServers", "ssm:resourceTag/Env": "prod"}});
        assert!(holds(block.clone(), &both));
        assert!(!holds(block, &one_key));
        let two_ops = json!({"StringEquals": {"ssm:resourceTag/Finance": "WebServers"}, "StringLike": {"ssm:resourceTag/Env": "dev*"}});
        assert!(!holds(two_ops, &both));
    }

    #[test]
    fn missing_keys_and_variables_are_recorded() {
        let cs = conditions(
            json!({"StringEquals": {"ssm:resourceTag/Owner": "${aws:username}"}, "StringNotEquals": {"aws:SourceVpce": "vpce-1"}}),
        );
        let c = ctx(&[("ssm:resourceTag/Owner", "alice")]);
        let mut missing = Vec::new();
        for cond in &cs {
            cond.evaluate(&c, &mut missing);
        }
        assert!(missing.contains(&"aws:username".to_string()), "{missing:?}");
        assert!(
            missing.contains(&"aws:SourceVpce".to_string()),
            "{missing:?}"
        );
    }
}
