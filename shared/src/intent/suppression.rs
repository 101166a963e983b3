//! Intent `suppressions`: noise an on-call team has decided to live with for a while, with the
//! reason written down and an end date.
//!
//! ```json
//! "suppressions": [
//!   {"match": {"principal": "arn:aws:iam::111122223333:role/Patching*",
//!              "document": "AWS-RunPatchBaseline",
//!              "resource_tags": {"Environment": "testServer"},
//!              "kind": "violation"},
//!    "reason": "patching role is being moved to its own entry (TICKET-42)",
//!    "expires": "2027-01-31"}
//! ]
//! ```
//!
//! Every `match` field is optional (all that are given must hold); `reason` and `expires` are
//! required, and `expires` may be at most a year after the day the intent is loaded
//! ([`MAX_SUPPRESSION_MS`]): a suppression nobody renews ends. A suppressed finding is still
//! logged (`suppressed: true` and the reason); it is not sent to the bus and not counted in the
//! paging metrics. A suppression applies to events before the end of its `expires` day (UTC):
//! an expired one stops suppressing, and `check` warns about it.

use crate::diag::{Code, Reporter};
use crate::iam::values::{format_date, parse_date};
use crate::iam::wildcard::{Flavor, Pattern};
use crate::intent::inventory::TagSet;
use crate::json::{Json, JsonKind};
use crate::watch::finding::{Finding, FindingKind};

/// How far ahead a suppression may end: 366 days (a year, leap day included).
pub const MAX_SUPPRESSION_MS: i64 = 366 * 86_400_000;

/// One suppression, compiled.
#[derive(Debug, Clone)]
pub struct Suppression {
    /// The principal pattern (matched against the caller's ARN and the role behind a session).
    pub principal: Option<Pattern>,
    /// The document name pattern (or document ARN pattern when it starts with `arn:`).
    pub document: Option<Pattern>,
    /// Tags the finding's resource must carry (values may use `*` and `?`).
    pub resource_tags: Vec<(String, Pattern)>,
    pub kind: Option<FindingKind>,
    pub reason: String,
    /// `expires` as written.
    pub expires: String,
    /// The first instant it no longer applies (the end of the `expires` day, UTC, for a date).
    pub ends_ms: i64,
}

impl Suppression {
    /// Whether it suppresses `finding`, whose resource carries `tags` (`None`: unknown, and
    /// then a `resource_tags` condition does not hold: nothing is suppressed on a guess).
    pub fn suppresses(&self, finding: &Finding, tags: Option<&TagSet>) -> bool {
        if finding.meta.event_epoch_ms >= self.ends_ms {
            return false;
        }
        if self.kind.is_some_and(|k| k != finding.kind) {
            return false;
        }
        if let Some(p) = &self.principal {
            let ids = [&finding.principal, &finding.session_issuer];
            if !ids
                .iter()
                .filter_map(|id| id.as_deref())
                .any(|id| p.matches(id))
            {
                return false;
            }
        }
        if let Some(p) = &self.document {
            let Some(arn) = finding.document.as_deref() else {
                return false;
            };
            let name = arn.rsplit_once(":document/").map_or(arn, |(_, n)| n);
            if !p.matches(name) && !p.matches(arn) {
                return false;
            }
        }
        if !self.resource_tags.is_empty() {
            let Some(tags) = tags else {
                return false;
            };
            let all = self
                .resource_tags
                .iter()
                .all(|(k, v)| tags.get(k).is_some_and(|have| v.matches(have)));
            if !all {
                return false;
            }
        }
        true
    }
}

const FIELDS: &[&str] = &["match", "reason", "expires"];
const MATCH_FIELDS: &[&str] = &["principal", "document", "resource_tags", "kind"];

/// `suppressions`: an array of suppressions. `now_ms` (the day the intent is loaded) bounds
/// `expires` and tells which have expired; without it neither is checked.
pub(super) fn parse_suppressions<'j>(
    v: &'j Json<'j>,
    r: &mut Reporter<'_, 'j>,
    now_ms: Option<i64>,
) -> Vec<Suppression> {
    let JsonKind::Array(items) = &v.kind else {
        r.error(
            Code::InvalidSuppressions,
            v.span,
            format!("`suppressions` must be an array, found {}", v.type_name()),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mark = r.path.index(i);
        if let Some(s) = parse_one(item, r, now_ms) {
            out.push(s);
        }
        r.path.truncate(mark);
    }
    out
}

fn parse_one<'j>(
    item: &'j Json<'j>,
    r: &mut Reporter<'_, 'j>,
    now_ms: Option<i64>,
) -> Option<Suppression> {
    if item.as_object().is_none() {
        r.error(
            Code::InvalidSuppression,
            item.span,
            format!(
                "a suppression must be an object of `match`, `reason` and `expires`, found {}",
                item.type_name()
            ),
        );
        return None;
    }
    super::unknown_fields(item, FIELDS, "a suppression", r);
    let reason = required_text(item, "reason", r);
    let expires = required_text(item, "expires", r)
        .and_then(|text| parse_expiry(item, text, r, now_ms).map(|ends| (text, ends)));
    let matched = match item.get("match") {
        Some(_) => super::under(item, "match", r, parse_match).flatten(),
        None => Some(Match::default()),
    };
    let (reason, (expires, ends_ms), matched) = (reason?, expires?, matched?);
    if matched.is_empty() && r.lints {
        r.warn(
            Code::SuppressionMatchesEverything,
            item.span,
            "this suppression has no `match`: it silences every finding until it expires"
                .to_string(),
        );
    }
    Some(Suppression {
        principal: matched.principal,
        document: matched.document,
        resource_tags: matched.resource_tags,
        kind: matched.kind,
        reason: reason.to_string(),
        expires: expires.to_string(),
        ends_ms,
    })
}

/// A required non-empty string field of a suppression.
fn required_text<'j>(
    item: &'j Json<'j>,
    key: &'j str,
    r: &mut Reporter<'_, 'j>,
) -> Option<&'j str> {
    match item.get(key) {
        None => {
            r.error(
                Code::InvalidSuppression,
                item.span,
                format!("a suppression needs `{key}`"),
            );
            None
        }
        Some(v) => match v.as_str() {
            Some(s) if !s.trim().is_empty() => Some(s),
            _ => {
                let mark = r.path.key(key);
                r.error(
                    Code::InvalidSuppression,
                    v.span,
                    format!("`{key}` must be a non-empty string"),
                );
                r.path.truncate(mark);
                None
            }
        },
    }
}

/// `expires`: a date (`2027-01-31`, through the end of that day, UTC) or an ISO 8601 instant,
/// at most [`MAX_SUPPRESSION_MS`] after `now_ms`; past ones are warned about.
fn parse_expiry<'j>(
    item: &'j Json<'j>,
    text: &str,
    r: &mut Reporter<'_, 'j>,
    now_ms: Option<i64>,
) -> Option<i64> {
    let span = item.get("expires").map_or(item.span, |v| v.span);
    let mark = r.path.key("expires");
    // A calendar date or a time, never epoch seconds (a bare number is ambiguous here).
    let dated = text.get(4..5) == Some("-") && text.len() >= 10;
    let date_only = dated && text.len() == 10;
    let ends = parse_date(text)
        .filter(|_| dated)
        .map(|ms| if date_only { ms + 86_400_000 } else { ms });
    let Some(ends) = ends else {
        r.error(
            Code::InvalidSuppression,
            span,
            format!("`expires` must be a date such as \"2027-01-31\" or an ISO 8601 time, found `{text}`"),
        );
        r.path.truncate(mark);
        return None;
    };
    if let Some(now) = now_ms {
        if ends - now > MAX_SUPPRESSION_MS {
            let limit = format_date(now + MAX_SUPPRESSION_MS)
                .map(|d| d.get(..10).unwrap_or(&d).to_string())
                .unwrap_or_default();
            r.error(
                Code::SuppressionTooLong,
                span,
                format!("`expires` {text} is more than a year away: a suppression may run until {limit} at the latest, then be renewed on purpose"),
            );
            r.path.truncate(mark);
            return None;
        }
        if ends <= now {
            r.warn(
                Code::SuppressionExpired,
                span,
                format!("this suppression expired ({text}): it no longer suppresses anything; renew it or remove it"),
            );
        }
    }
    r.path.truncate(mark);
    Some(ends)
}

/// The parsed `match` of a suppression.
#[derive(Default)]
struct Match {
    principal: Option<Pattern>,
    document: Option<Pattern>,
    resource_tags: Vec<(String, Pattern)>,
    kind: Option<FindingKind>,
}

impl Match {
    fn is_empty(&self) -> bool {
        self.principal.is_none()
            && self.document.is_none()
            && self.resource_tags.is_empty()
            && self.kind.is_none()
    }
}

fn parse_match<'j>(m: &'j Json<'j>, r: &mut Reporter<'_, 'j>) -> Option<Match> {
    if m.as_object().is_none() {
        r.error(
            Code::InvalidSuppression,
            m.span,
            format!(
                "`match` must be an object of {}, found {}",
                MATCH_FIELDS.join(", "),
                m.type_name()
            ),
        );
        return None;
    }
    super::unknown_fields(m, MATCH_FIELDS, "a suppression's `match`", r);
    let pattern = |key: &'j str, r: &mut Reporter<'_, 'j>| -> Option<Option<Pattern>> {
        let Some(v) = m.get(key) else {
            return Some(None);
        };
        match v.as_str() {
            Some(s) if !s.is_empty() => Some(Some(Pattern::new(s, Flavor::Glob, false))),
            _ => {
                let mark = r.path.key(key);
                r.error(
                    Code::InvalidSuppression,
                    v.span,
                    format!("`{key}` must be a non-empty pattern string (`*` and `?` wildcards)"),
                );
                r.path.truncate(mark);
                None
            }
        }
    };
    let principal = pattern("principal", r);
    let document = pattern("document", r);
    let kind = match m.get("kind") {
        None => Some(None),
        Some(v) => {
            let found = v
                .as_str()
                .and_then(|s| FindingKind::ALL.iter().find(|k| k.as_str() == s).copied());
            if found.is_none() {
                let mark = r.path.key("kind");
                r.error(
                    Code::InvalidSuppression,
                    v.span,
                    format!(
                        "`kind` must be one of {}",
                        FindingKind::ALL
                            .iter()
                            .map(|k| format!("\"{}\"", k.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                r.path.truncate(mark);
                None
            } else {
                Some(found)
            }
        }
    };
    let resource_tags = match m.get("resource_tags") {
        None => Some(Vec::new()),
        Some(t) => {
            let mark = r.path.key("resource_tags");
            let out = match t.as_object() {
                Some(members) => {
                    crate::iam::values::tag_pairs(members, Code::InvalidSuppression, r).map(
                        |pairs| {
                            pairs
                                .into_iter()
                                .map(|(k, v)| (k.to_string(), Pattern::new(v, Flavor::Glob, false)))
                                .collect()
                        },
                    )
                }
                None => {
                    r.error(
                        Code::InvalidSuppression,
                        t.span,
                        "`resource_tags` must be an object of tag keys to values".to_string(),
                    );
                    None
                }
            };
            r.path.truncate(mark);
            out
        }
    };
    Some(Match {
        principal: principal?,
        document: document?,
        resource_tags: resource_tags?,
        kind: kind?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::Intent;

    /// 2026-12-07T00:00:00Z.
    const TODAY: i64 = 1_796_601_600_000;

    fn intent_with(suppressions: &str, now: Option<i64>) -> Result<Intent, Vec<String>> {
        let text = format!(
            r#"{{"principals": [{{"name": "ops", "match": "arn:aws:iam::1:role/Ops", "policies": []}}],
                "suppressions": {suppressions}}}"#
        );
        let mut no_files = |_: &str| Err("no files".to_string());
        let parsed = match now {
            Some(now) => Intent::parse_at(&text, Some("intent.json"), &mut no_files, now),
            None => Intent::parse(&text, Some("intent.json"), &mut no_files),
        };
        parsed
            .map(|p| p.value)
            .map_err(|e| e.diagnostics.iter().map(|d| d.to_string()).collect())
    }

    fn warnings(suppressions: &str, now: i64) -> Vec<String> {
        let text = format!(
            r#"{{"principals": [{{"name": "ops", "match": "arn:aws:iam::1:role/Ops", "policies": []}}],
                "suppressions": {suppressions}}}"#
        );
        let mut no_files = |_: &str| Err("no files".to_string());
        Intent::check_at(&text, Some("intent.json"), &mut no_files, now)
            .unwrap()
            .warnings
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    fn violation(at_ms: i64) -> Finding {
        let mut f = crate::watch::finding::sample(FindingKind::Violation, "f", at_ms);
        f.principal = Some("arn:aws:sts::1:assumed-role/PatchingRole/i-0abc".into());
        f.session_issuer = Some("arn:aws:iam::1:role/PatchingRole".into());
        f.document = Some("arn:aws:ssm:us-east-1::document/AWS-RunPatchBaseline".into());
        f.resource = Some("arn:aws:ec2:us-east-1:1:instance/i-0abc".into());
        f
    }

    fn tags(pairs: &[(&str, &str)]) -> TagSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_given_field_must_hold() {
        let intent = intent_with(
            r#"[{"match": {"principal": "arn:aws:iam::1:role/Patching*", "document": "AWS-RunPatch*",
                           "resource_tags": {"Environment": "test*"}, "kind": "violation"},
                 "reason": "patching moves to its own entry (OPS-42)", "expires": "2027-01-31"}]"#,
            Some(TODAY),
        )
        .unwrap();
        let s = &intent.suppressions[0];
        let f = violation(TODAY);
        let test = tags(&[("Environment", "testServer")]);
        assert!(
            s.suppresses(&f, Some(&test)),
            "the role behind the session matches"
        );
        assert!(!s.suppresses(&f, Some(&tags(&[("Environment", "prod")]))));
        assert!(
            !s.suppresses(&f, None),
            "unknown tags never match a tag condition"
        );
        let mut spike = f.clone();
        spike.kind = FindingKind::AccessDeniedSpike;
        assert!(!s.suppresses(&spike, Some(&test)), "another kind");
        let mut other_doc = f.clone();
        other_doc.document = Some("arn:aws:ssm:us-east-1::document/AWS-RunShellScript".into());
        assert!(!s.suppresses(&other_doc, Some(&test)));
        let mut other_caller = f.clone();
        other_caller.principal = Some("arn:aws:sts::1:assumed-role/Ops/alice".into());
        other_caller.session_issuer = Some("arn:aws:iam::1:role/Ops".into());
        assert!(!s.suppresses(&other_caller, Some(&test)));
    }

    #[test]
    fn a_date_suppresses_through_the_end_of_that_day_utc() {
        let intent = intent_with(
            r#"[{"reason": "noisy week", "expires": "2026-12-08", "match": {"kind": "violation"}}]"#,
            Some(TODAY),
        )
        .unwrap();
        let s = &intent.suppressions[0];
        let end = TODAY + 2 * 86_400_000;
        assert!(s.suppresses(&violation(end - 1), None));
        assert!(
            !s.suppresses(&violation(end), None),
            "expired: stops suppressing"
        );
        assert_eq!(s.ends_ms, end, "the first instant it no longer applies");
    }

    #[test]
    fn reason_and_expires_are_required_and_expires_is_at_most_a_year_out() {
        let errs = intent_with(r#"[{"expires": "2027-01-31"}]"#, Some(TODAY)).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.contains("error[invalid-suppression]") && e.contains("needs `reason`")),
            "{errs:?}"
        );
        let errs = intent_with(r#"[{"reason": "x"}]"#, Some(TODAY)).unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("needs `expires`")),
            "{errs:?}"
        );
        let errs =
            intent_with(r#"[{"reason": "x", "expires": "2028-01-01"}]"#, Some(TODAY)).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.contains("error[suppression-too-long]")
                    && e.contains("(at $.suppressions[0].expires)")),
            "{errs:?}"
        );
        // A year to the day is allowed.
        assert!(intent_with(r#"[{"reason": "x", "expires": "2027-12-07"}]"#, Some(TODAY)).is_ok());
        for bad in [
            r#"[{"reason": "x", "expires": "1800000000"}]"#,
            r#"[{"reason": "x", "expires": "soon"}]"#,
            r#"[{"reason": "x", "expires": "2027-01-31", "match": {"kind": "violations"}}]"#,
            r#"[{"reason": "x", "expires": "2027-01-31", "match": {"principle": "arn:*"}}]"#,
            r#"[{"reason": "x", "expires": "2027-01-31", "match": {"resource_tags": {"Env": 1}}}]"#,
            r#"[{"reason": "", "expires": "2027-01-31"}]"#,
            r#"{"reason": "x"}"#,
        ] {
            assert!(intent_with(bad, Some(TODAY)).is_err(), "{bad}");
        }
    }

    #[test]
    fn check_warns_about_expired_and_match_everything_suppressions() {
        let w = warnings(
            r#"[{"reason": "old", "expires": "2026-11-30", "match": {"kind": "violation"}},
                {"reason": "all", "expires": "2027-01-31"}]"#,
            TODAY,
        );
        assert!(
            w.iter().any(|d| d.contains("warning[suppression-expired]")
                && d.contains("(at $.suppressions[0].expires)")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|d| d.contains("warning[suppression-matches-everything]")),
            "{w:?}"
        );
        // Without a day, nothing is judged against the calendar.
        assert!(intent_with(r#"[{"reason": "x", "expires": "2099-01-01"}]"#, None).is_ok());
    }
}
