//! Every diagnostic code, with what it means: one list, shown in README's "Diagnostic codes".

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal : $description:literal,)+) => {
        /// A diagnostic's stable identifier. It is written in kebab case (`unknown-effect`) in
        /// text and JSON output; scripts match on that text.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[$doc])* #[doc = $description] $variant,)+
        }

        impl Code {
            /// Every code, in the order README lists them.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)+];

            /// The code as written in output: `unknown-effect`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)+
                }
            }

            /// One line saying what the code means.
            pub fn description(self) -> &'static str {
                match self {
                    $(Code::$variant => $description,)+
                }
            }
        }
    };
}

codes! {
    // Any document.
    InvalidJson = "invalid-json": "the text is not valid JSON",
    NotAnObject = "not-an-object": "the document (or one request) must be a JSON object",
    UnknownField = "unknown-field": "a field tagwatch does not know; the message lists the known ones",

    // IAM policy documents: validation.
    MissingVersion = "missing-version": "no `Version`: AWS reads the policy as 2008-10-17, where policy variables are literal text",
    InvalidVersion = "invalid-version": "`Version` is neither \"2012-10-17\" nor \"2008-10-17\"",
    InvalidId = "invalid-id": "the policy `Id` is not a string",
    MissingStatement = "missing-statement": "the policy has no `Statement`",
    EmptyStatement = "empty-statement": "`Statement` is an empty array: the policy allows nothing",
    InvalidStatement = "invalid-statement": "`Statement` is neither an object nor an array of objects",
    DuplicateSid = "duplicate-sid": "two statements of one policy share a `Sid`",
    InvalidSid = "invalid-sid": "a `Sid` that is not a string of ASCII letters and digits",
    DuplicateElement = "duplicate-element": "a policy or statement element written twice",
    UnknownElement = "unknown-element": "an element IAM does not define in a policy or statement",
    MissingEffect = "missing-effect": "a statement without `Effect`",
    UnknownEffect = "unknown-effect": "`Effect` is neither `Allow` nor `Deny`",
    BothElements = "both-elements": "a statement has both an element and its negation (`Action` and `NotAction`, ...)",
    MissingElement = "missing-element": "a statement has neither `Action`/`NotAction` or neither `Resource`/`NotResource`",
    EmptyList = "empty-list": "an `Action` or `Resource` element that is an empty array",
    NotAString = "not-a-string": "an `Action` or `Resource` entry that is not a string",
    PrincipalIgnored = "principal-ignored": "`Principal`/`NotPrincipal` in an identity policy: identity evaluation ignores it",
    InvalidAction = "invalid-action": "an action that is neither `*` nor `service:action`",
    InvalidResource = "invalid-resource": "a resource that is neither `*` nor an ARN (or, in an inventory, not an instance or document)",
    InvalidCondition = "invalid-condition": "`Condition` is not an object of operators",
    DuplicateOperator = "duplicate-operator": "one operator written twice in one `Condition` block",
    UnknownOperator = "unknown-operator": "a condition operator IAM does not define",
    OperatorCase = "operator-case": "an operator written in a case other than AWS's spelling",
    NullWithQualifier = "null-with-qualifier": "`Null` with a set operator, which makes it constant",
    EmptyCondition = "empty-condition": "an operator with no keys, which tests nothing",
    DuplicateKey = "duplicate-key": "one condition key written twice under one operator (keys are case-insensitive)",
    InvalidKey = "invalid-key": "a condition key without a service prefix",
    EmptyValues = "empty-values": "an operator with an empty value list, which never matches",
    InvalidValue = "invalid-value": "a condition value that is not a string, number or boolean",
    VariableNotSupported = "variable-not-supported": "a policy variable under an operator that does not expand variables",
    MalformedValue = "malformed-value": "a value its operator cannot read (a date, number, IP range, ...)",
    VariableInBool = "variable-in-bool": "a policy variable under `Bool`, which IAM Access Analyzer rejects",
    BoolCase = "bool-case": "a `Bool` value not written as lowercase `true` or `false`",
    WildcardNotSupported = "wildcard-not-supported": "a wildcard under an operator that compares exactly",

    // IAM policy documents: pitfall lints (`tagwatch check`).
    UnknownAction = "unknown-action": "an `ssm:` action (or pattern) that matches no Systems Manager action",
    InstanceArnService = "instance-arn-service": "instance ARNs written with the `ssm` service; EC2 instances are `arn:aws:ec2:...:instance/ID`",
    VariablesNeed20121017 = "variables-need-2012-10-17": "`${...}` in a policy whose version treats it as literal text",
    UnknownConditionKey = "unknown-condition-key": "a condition key no global or Systems Manager key list defines",
    MultivaluedWithoutSetOperator = "multivalued-without-set-operator": "a multivalued key under a plain operator; use `ForAnyValue:` or `ForAllValues:`",
    SetOperatorOnSingleValuedKey = "set-operator-on-single-valued-key": "`ForAllValues` on a single-valued key, which holds when the key is missing",
    ArnValueSegments = "arn-value-segments": "an ARN operator's value with fewer than six segments, which matches only ARNs of that shape",
    ResourceTagOnDocument = "resource-tag-on-document": "a resource-tag condition in a statement that also covers document ARNs: documents carry no instance tags, so the document check fails",
    MissingViaAwsService = "missing-via-aws-service": "SendCommand limited by network origin without the `aws:ViaAWSService` alternative for calls services make",

    // Intent files.
    InvalidUnlisted = "invalid-unlisted": "`unlisted` is neither \"violation\" nor \"ignore\"",
    InvalidCommandOutput = "invalid-command-output": "`command_output` is not \"cloudwatch\", \"s3\" or \"any\"",
    InvalidSpike = "invalid-spike": "`spike` is not an object of `threshold` and `window_seconds`, or holds an invalid value",
    InvalidOrigins = "invalid-origins": "`origins` is not an object of origin kinds to `judge` or `ignore`",
    InvalidDedupeWindow = "invalid-dedupe-window": "`dedupe_window_seconds` is not a whole number of seconds from 1 to 86400",
    InvalidSuppressions = "invalid-suppressions": "`suppressions` is not an array",
    InvalidSuppression = "invalid-suppression": "a suppression without `reason` or `expires`, or with an invalid field",
    SuppressionTooLong = "suppression-too-long": "a suppression that expires more than a year after the day the intent is loaded",
    SuppressionExpired = "suppression-expired": "a suppression whose `expires` has passed: it no longer suppresses anything",
    SuppressionMatchesEverything = "suppression-matches-everything": "a suppression without `match`, which silences every finding until it expires",
    MissingPrincipals = "missing-principals": "the intent file has no `principals` array",
    InvalidPrincipals = "invalid-principals": "`principals` is not an array",
    NoPrincipals = "no-principals": "`principals` is empty: every caller is unlisted",
    InvalidEntry = "invalid-entry": "a `principals` entry that is not an object",
    MissingName = "missing-name": "a `principals` entry without `name`",
    InvalidName = "invalid-name": "an entry `name` that is not a non-empty string",
    DuplicateName = "duplicate-name": "two `principals` entries share a `name`",
    MissingMatch = "missing-match": "a `principals` entry without `match` patterns",
    InvalidMatch = "invalid-match": "`match` is not an ARN pattern or a non-empty array of them",
    WildcardSessionRole = "wildcard-session-role": "a wildcard in the role part of an assumed-role pattern, which matches sessions of other roles",
    InvalidPrincipalTags = "invalid-principal-tags": "`principal_tags` is not an object of tag keys to values",
    InvalidPrincipalTag = "invalid-principal-tag": "one `principal_tags` value that is not a string",
    MissingPolicies = "missing-policies": "a `principals` entry without `policies`",
    InvalidPolicies = "invalid-policies": "`policies` is not an array",
    NoPolicies = "no-policies": "an entry with no policies: everything its callers do is outside intent",
    InvalidFile = "invalid-file": "a `{\"file\": ...}` policy whose `file` is not a path string",
    UnreadablePolicyFile = "unreadable-policy-file": "a `{\"file\": ...}` policy that cannot be read",

    // Inventory files.
    InvalidTag = "invalid-tag": "an inventory tag value that is not a string",

    // `tagwatch simulate` requests.
    MissingField = "missing-field": "a request without a required field (`action`, `resource`)",
    InvalidField = "invalid-field": "a request field that is not a non-empty string",
    InvalidContext = "invalid-context": "`context` is not an object of condition keys to values",
    InvalidTags = "invalid-tags": "`tags` is not an object of tag keys to values",
    InvalidPrincipal = "invalid-principal": "a caller ARN that is not an IAM principal ARN",
    MissingPrincipal = "missing-principal": "simulating through an intent without a caller (`--principal` or the request's `principal`)",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Scripts and tests compare codes with their text.
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_described() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "`{s}` is listed twice");
            assert!(
                s.split('-').all(|part| !part.is_empty()
                    && part
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())),
                "`{s}` is not kebab case"
            );
            assert!(!c.description().is_empty() && !c.description().ends_with('.'));
        }
    }

    /// README's "Diagnostic codes" table lists exactly `Code::ALL`, in order, each with its
    /// description.
    #[test]
    fn readme_lists_every_code_with_its_description() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("### Diagnostic codes")
            .expect("README has a `Diagnostic codes` section");
        let rows: Vec<&str> = readme[start..]
            .lines()
            .skip_while(|l| !l.starts_with("| code |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let expected: Vec<String> = Code::ALL
            .iter()
            .map(|c| format!("| `{c}` | {} |", c.description().replace('|', "\\|")))
            .collect();
        assert_eq!(rows, expected);
    }

    #[test]
    fn a_code_serialises_as_its_text() {
        assert_eq!(
            serde_json::to_string(&Code::UnknownEffect).ok().as_deref(),
            Some("\"unknown-effect\"")
        );
        assert!(Code::ResourceTagOnDocument == "resource-tag-on-document");
    }
}
