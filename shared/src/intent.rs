//! The intent file: which principals *should* be able to do what.
//!
//! ```json
//! {
//!   "principals": [
//!     {"name": "junior-engineers",
//!      "match": ["arn:aws:iam::111122223333:role/JuniorEngineer"],
//!      "policies": [{"Version": "2012-10-17", "Statement": []}, {"file": "policies/junior.json"}],
//!      "principal_tags": {"team": "web"}}
//!   ],
//!   "unlisted": "violation",
//!   "spike": {"threshold": 5, "window_seconds": 300}
//! }
//! ```
//!
//! Reading `{"file": ...}` policies is the caller's job (the core does no I/O): [`Intent::parse`]
//! takes a loader that returns the file's display name and text.

pub mod inventory;
pub mod origins;
pub mod principal;
pub mod suppression;

use crate::diag::Code;
use serde::Serialize;

use crate::diag::{self, Diagnostic, JsonPath, Rejected, Reporter, Severity, SourceText};
use crate::iam::policy::{parse_policy_json, NamedPolicy, Parsed};
use crate::iam::wildcard::{Flavor, Pattern};
use crate::intent::origins::{OriginKind, OriginPolicy, Origins};
use crate::intent::principal::{Caller, SERVICE_PREFIX};
use crate::json::{self, Json, JsonKind};

/// What happens to a caller no entry matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unlisted {
    /// Everything they do is outside intent (the default).
    Violation,
    /// They are not watched.
    Ignore,
}

/// AccessDenied spike settings (used by the spike detector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpikeSettings {
    pub threshold: u32,
    pub window_seconds: u64,
}

impl Default for SpikeSettings {
    fn default() -> Self {
        SpikeSettings {
            threshold: 5,
            window_seconds: 300,
        }
    }
}

/// One `principals` entry.
#[derive(Debug, Clone)]
pub struct PrincipalEntry {
    pub name: String,
    pub matchers: Vec<Pattern>,
    pub policies: Vec<NamedPolicy>,
    /// `aws:PrincipalTag/<k>` values CloudTrail does not carry.
    pub principal_tags: Vec<(String, String)>,
    /// Where this entry's callers must send command output (overrides the top level).
    pub command_output: Option<OutputRequirement>,
}

/// Where an accepted SendCommand must send its output (AWS's Run Command setup guide
/// recommends CloudWatch Logs): `command_output` in the intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputRequirement {
    /// `cloudWatchOutputConfig.cloudWatchOutputEnabled` must be true.
    Cloudwatch,
    /// `outputS3BucketName` must be set.
    S3,
    /// Either destination.
    Any,
}

impl OutputRequirement {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputRequirement::Cloudwatch => "cloudwatch",
            OutputRequirement::S3 => "s3",
            OutputRequirement::Any => "any",
        }
    }
}

/// A parsed, compiled intent.
#[derive(Debug, Clone)]
pub struct Intent {
    pub principals: Vec<PrincipalEntry>,
    pub unlisted: Unlisted,
    /// Where every caller's command output must go, unless its entry says otherwise.
    pub command_output: Option<OutputRequirement>,
    pub spike: SpikeSettings,
    /// What to do with runs Systems Manager starts itself, per origin (`origins`).
    pub origins: Origins,
    /// Findings people have decided to live with for a while (`suppressions`).
    pub suppressions: Vec<suppression::Suppression>,
    /// `dedupe_window_seconds` (default 3600): repeats of one finding group (kind, principal,
    /// document, resource) within one window are logged with a running `count`, alerted once.
    pub dedupe_window_seconds: u64,
}

/// The default `dedupe_window_seconds`: an hour.
pub const DEFAULT_DEDUPE_WINDOW_SECONDS: u64 = 3600;

/// The intent as it applies to one caller.
#[derive(Debug, Clone)]
pub struct Resolution<'i> {
    /// The matching entries, in file order.
    pub entries: Vec<&'i PrincipalEntry>,
    /// The union of their policies.
    pub policies: Vec<&'i NamedPolicy>,
}

impl Resolution<'_> {
    /// True when no entry matched the caller.
    pub fn is_unlisted(&self) -> bool {
        self.entries.is_empty()
    }

    /// Principal tags of the matching entries; the first entry to set a key wins.
    pub fn principal_tags(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for e in &self.entries {
            for (k, v) in &e.principal_tags {
                if !out.iter().any(|(ok, _)| ok.eq_ignore_ascii_case(k)) {
                    out.push((k, v));
                }
            }
        }
        out
    }

    /// Whether the caller's policies use `ssm:SessionDocumentAccessCheck`: Session Manager then
    /// checks the caller's permission on the session document even when a StartSession names
    /// none (the default `SSM-SessionManagerRunShell`).
    pub fn checks_session_document(&self) -> bool {
        self.policies.iter().any(|p| {
            p.policy.statements.iter().any(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.key_lower == "ssm:sessiondocumentaccesscheck")
            })
        })
    }

    /// Where this caller's command output must go: the requirements of the matching entries
    /// that set one (all of them must hold), else the intent's top-level one.
    pub fn output_requirements(&self, top: Option<OutputRequirement>) -> Vec<OutputRequirement> {
        let mut own: Vec<OutputRequirement> = Vec::new();
        for e in &self.entries {
            if let Some(req) = e.command_output {
                if !own.contains(&req) {
                    own.push(req);
                }
            }
        }
        if own.is_empty() {
            own.extend(top);
        }
        own
    }

    /// Adds `aws:PrincipalTag/<k>` entries to a context (keys already set win).
    pub fn fill_context(&self, ctx: &mut crate::RequestContext) {
        for (k, v) in self.principal_tags() {
            ctx.insert_default(&format!("aws:PrincipalTag/{k}"), v);
        }
    }
}

/// Loads a `{"file": ...}` policy: given the path as written, returns the name to report it
/// under and its text, or a message saying why it could not be read.
pub type PolicyLoader<'a> = dyn FnMut(&str) -> Result<(String, String), String> + 'a;

impl Intent {
    /// The spike window in milliseconds.
    pub fn spike_window_ms(&self) -> i64 {
        i64::try_from(self.spike.window_seconds)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000)
    }

    /// The dedupe window in milliseconds (at least 1).
    pub fn dedupe_window_ms(&self) -> i64 {
        i64::try_from(self.dedupe_window_seconds)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000)
            .max(1)
    }

    /// Parses an intent file. Diagnostics of referenced policy files name those files.
    pub fn parse(
        text: &str,
        file: Option<&str>,
        load: &mut PolicyLoader<'_>,
    ) -> Result<Parsed<Intent>, Rejected> {
        Self::parse_with(text, file, load, false, None)
    }

    /// [`Intent::parse`] on the day `now_ms`: a suppression may then end at most a year later,
    /// and expired ones are warned about. The functions and the CLI load intents this way.
    pub fn parse_at(
        text: &str,
        file: Option<&str>,
        load: &mut PolicyLoader<'_>,
        now_ms: i64,
    ) -> Result<Parsed<Intent>, Rejected> {
        Self::parse_with(text, file, load, false, Some(now_ms))
    }

    /// [`Intent::parse`] plus the pitfall lints of `tagwatch check` on every policy.
    pub fn check(
        text: &str,
        file: Option<&str>,
        load: &mut PolicyLoader<'_>,
    ) -> Result<Parsed<Intent>, Rejected> {
        Self::parse_with(text, file, load, true, None)
    }

    /// [`Intent::check`] on the day `now_ms` (see [`Intent::parse_at`]).
    pub fn check_at(
        text: &str,
        file: Option<&str>,
        load: &mut PolicyLoader<'_>,
        now_ms: i64,
    ) -> Result<Parsed<Intent>, Rejected> {
        Self::parse_with(text, file, load, true, Some(now_ms))
    }

    fn parse_with(
        text: &str,
        file: Option<&str>,
        load: &mut PolicyLoader<'_>,
        lints: bool,
        now_ms: Option<i64>,
    ) -> Result<Parsed<Intent>, Rejected> {
        let source = SourceText::new(file, text);
        let arena = json::Bump::with_capacity(text.len() * 6);
        let root = match json::parse(text, &arena) {
            Ok(j) => j,
            Err(e) => {
                return Err(Rejected {
                    diagnostics: vec![diag::syntax_error(&source, &e)],
                })
            }
        };
        let mut r = Reporter::new(&source, JsonPath::root());
        r.lints = lints;
        let mut extra = Vec::new();
        let intent = parse_intent(&root, &mut r, load, &mut extra, now_ms);
        let mut diagnostics = r.diagnostics;
        diagnostics.extend(extra);
        match intent {
            Some(intent) if !diagnostics.iter().any(|d| d.severity == Severity::Error) => {
                Ok(Parsed {
                    value: intent,
                    warnings: diagnostics,
                })
            }
            _ => Err(Rejected { diagnostics }),
        }
    }

    /// The entries whose `match` patterns match any of the caller's identities.
    pub fn resolve(&self, caller: &Caller) -> Resolution<'_> {
        let ids = caller.identities();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.resolve_identities(&ids)
    }

    /// Like [`Intent::resolve`] with identities given directly.
    pub fn resolve_identities(&self, identities: &[&str]) -> Resolution<'_> {
        let entries: Vec<&PrincipalEntry> = self
            .principals
            .iter()
            .filter(|e| {
                e.matchers
                    .iter()
                    .any(|m| identities.iter().any(|id| m.matches(id)))
            })
            .collect();
        let policies = entries.iter().flat_map(|e| e.policies.iter()).collect();
        Resolution { entries, policies }
    }
}

const TOP_FIELDS: &[&str] = &[
    "principals",
    "unlisted",
    "spike",
    "command_output",
    "origins",
    "suppressions",
    "dedupe_window_seconds",
    "description",
];
const ENTRY_FIELDS: &[&str] = &[
    "name",
    "match",
    "policies",
    "principal_tags",
    "command_output",
    "description",
];

/// `command_output` of the top level or an entry: `Some(None)` when absent, `None` when invalid
/// (reported).
fn parse_command_output<'j>(
    obj: &'j Json<'j>,
    r: &mut Reporter<'_, 'j>,
) -> Option<Option<OutputRequirement>> {
    let Some(v) = obj.get("command_output") else {
        return Some(None);
    };
    let out = match v.as_str() {
        Some("cloudwatch") => Some(OutputRequirement::Cloudwatch),
        Some("s3") => Some(OutputRequirement::S3),
        Some("any") => Some(OutputRequirement::Any),
        _ => None,
    };
    if out.is_none() {
        let mark = r.path.key("command_output");
        r.error(
            Code::InvalidCommandOutput,
            v.span,
            "`command_output` must be \"cloudwatch\", \"s3\" or \"any\"".to_string(),
        );
        r.path.truncate(mark);
        return None;
    }
    Some(out)
}

fn unknown_fields<'j>(obj: &'j Json<'j>, known: &[&str], what: &str, r: &mut Reporter<'_, 'j>) {
    for m in obj.as_object().unwrap_or_default() {
        if !known.contains(&m.key) {
            let mark = r.path.key(m.key);
            r.error(
                Code::UnknownField,
                m.key_span,
                format!(
                    "unknown field `{}` in {what}; expected one of {}",
                    m.key,
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            r.path.truncate(mark);
        }
    }
}

fn parse_intent<'j>(
    root: &'j Json<'j>,
    r: &mut Reporter<'_, 'j>,
    load: &mut PolicyLoader<'_>,
    extra: &mut Vec<Diagnostic>,
    now_ms: Option<i64>,
) -> Option<Intent> {
    if root.as_object().is_none() {
        r.error(
            Code::NotAnObject,
            root.span,
            format!(
                "an intent file must be a JSON object, found {}",
                root.type_name()
            ),
        );
        return None;
    }
    unknown_fields(root, TOP_FIELDS, "the intent file", r);

    let unlisted = under(root, "unlisted", r, parse_unlisted).unwrap_or(Unlisted::Violation);
    let command_output = parse_command_output(root, r).unwrap_or(None);
    let origins = under(root, "origins", r, parse_origins).unwrap_or_default();
    let spike = under(root, "spike", r, parse_spike).unwrap_or_default();
    let suppressions = under(root, "suppressions", r, |v, r| {
        suppression::parse_suppressions(v, r, now_ms)
    })
    .unwrap_or_default();
    let dedupe_window_seconds =
        under(root, "dedupe_window_seconds", r, parse_dedupe_window).flatten();
    let principals = parse_principals(root, r, load, extra)?;
    Some(Intent {
        principals,
        unlisted,
        spike,
        command_output,
        origins,
        suppressions,
        dedupe_window_seconds: dedupe_window_seconds.unwrap_or(DEFAULT_DEDUPE_WINDOW_SECONDS),
    })
}

/// Parses `obj[key]` with `parse`, its diagnostics at that key's path; `None` when absent.
fn under<'j, T>(
    obj: &'j Json<'j>,
    key: &'j str,
    r: &mut Reporter<'_, 'j>,
    parse: impl FnOnce(&'j Json<'j>, &mut Reporter<'_, 'j>) -> T,
) -> Option<T> {
    let v = obj.get(key)?;
    let mark = r.path.key(key);
    let out = parse(v, r);
    r.path.truncate(mark);
    Some(out)
}

/// `unlisted`: `"violation"` (the default) or `"ignore"`.
fn parse_unlisted<'j>(v: &'j Json<'j>, r: &mut Reporter<'_, 'j>) -> Unlisted {
    match v.as_str() {
        Some("violation") => Unlisted::Violation,
        Some("ignore") => Unlisted::Ignore,
        _ => {
            r.error(
                Code::InvalidUnlisted,
                v.span,
                "`unlisted` must be \"violation\" or \"ignore\"".to_string(),
            );
            Unlisted::Violation
        }
    }
}

/// `principals`: the array of entries, each named in what is reported about it, names unique.
fn parse_principals<'j>(
    root: &'j Json<'j>,
    r: &mut Reporter<'_, 'j>,
    load: &mut PolicyLoader<'_>,
    extra: &mut Vec<Diagnostic>,
) -> Option<Vec<PrincipalEntry>> {
    let Some(principals_json) = root.get("principals") else {
        r.error(
            Code::MissingPrincipals,
            root.span,
            "the intent file has no `principals` array".to_string(),
        );
        return None;
    };
    let mark = r.path.key("principals");
    let JsonKind::Array(items) = &principals_json.kind else {
        r.error(
            Code::InvalidPrincipals,
            principals_json.span,
            format!(
                "`principals` must be an array, found {}",
                principals_json.type_name()
            ),
        );
        r.path.truncate(mark);
        return None;
    };
    if items.is_empty() {
        r.warn(
            Code::NoPrincipals,
            principals_json.span,
            "`principals` is empty: every caller is unlisted".to_string(),
        );
    }
    let mut principals = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let m = r.path.index(i);
        let (before, before_extra) = (r.diagnostics.len(), extra.len());
        let entry = parse_entry(item, r, load, extra);
        // Name the entry in everything reported about it (paths give only its index).
        if let Some(name) = item.get("name").and_then(Json::as_str) {
            let new = r
                .diagnostics
                .iter_mut()
                .skip(before)
                .chain(extra.iter_mut().skip(before_extra));
            for d in new {
                d.message = format!("{} (principal entry `{name}`)", d.message);
            }
        }
        if let Some(entry) = entry {
            if principals
                .iter()
                .any(|p: &PrincipalEntry| p.name == entry.name)
            {
                let span = item.get("name").map_or(item.span, |n| n.span);
                let m2 = r.path.key("name");
                r.error(
                    Code::DuplicateName,
                    span,
                    format!("principal entry name `{}` is used twice", entry.name),
                );
                r.path.truncate(m2);
            }
            principals.push(entry);
        }
        r.path.truncate(m);
    }
    r.path.truncate(mark);
    Some(principals)
}

/// `origins`: `{"association" | "maintenance_window" | "automation": "evaluate" | "ignore"}`.
fn parse_origins<'j>(v: &'j Json<'j>, r: &mut Reporter<'_, 'j>) -> Origins {
    let mut o = Origins::default();
    let JsonKind::Object(members) = &v.kind else {
        r.error(
            Code::InvalidOrigins,
            v.span,
            format!("`origins` must be an object, found {}", v.type_name()),
        );
        return o;
    };
    for m in members.iter() {
        let mark = r.path.key(m.key);
        match OriginKind::parse(m.key) {
            None => r.error(
                Code::InvalidOrigins,
                m.value.span,
                format!(
                    "`{}` is not an origin: use \"association\", \"maintenance_window\" or \"automation\"",
                    m.key
                ),
            ),
            Some(kind) => match m.value.as_str() {
                Some("evaluate") => o.set(kind, OriginPolicy::Evaluate),
                Some("ignore") => o.set(kind, OriginPolicy::Ignore),
                _ => r.error(
                    Code::InvalidOrigins,
                    m.value.span,
                    format!("`origins.{}` must be \"evaluate\" or \"ignore\"", m.key),
                ),
            },
        }
        r.path.truncate(mark);
    }
    o
}

fn positive_int(v: &Json) -> Option<u64> {
    match &v.kind {
        JsonKind::Number(n) => n.parse::<u64>().ok().filter(|&n| n > 0),
        _ => None,
    }
}

/// `dedupe_window_seconds`: a positive number of seconds, at most a day (a longer window would
/// hide a repeat for longer than anyone remembers the first alert).
fn parse_dedupe_window<'j>(v: &'j Json<'j>, r: &mut Reporter<'_, 'j>) -> Option<u64> {
    match positive_int(v).filter(|n| *n <= 86_400) {
        Some(n) => Some(n),
        None => {
            r.error(
                Code::InvalidDedupeWindow,
                v.span,
                "`dedupe_window_seconds` must be a whole number of seconds from 1 to 86400"
                    .to_string(),
            );
            None
        }
    }
}

fn parse_spike<'j>(v: &'j Json<'j>, r: &mut Reporter<'_, 'j>) -> SpikeSettings {
    let mut s = SpikeSettings::default();
    if v.as_object().is_none() {
        r.error(
            Code::InvalidSpike,
            v.span,
            format!("`spike` must be an object, found {}", v.type_name()),
        );
        return s;
    }
    unknown_fields(v, &["threshold", "window_seconds"], "`spike`", r);
    if let Some(t) = v.get("threshold") {
        let m = r.path.key("threshold");
        match positive_int(t).and_then(|n| u32::try_from(n).ok()) {
            Some(n) => s.threshold = n,
            None => r.error(
                Code::InvalidSpike,
                t.span,
                "`threshold` must be a positive integer".to_string(),
            ),
        }
        r.path.truncate(m);
    }
    if let Some(w) = v.get("window_seconds") {
        let m = r.path.key("window_seconds");
        match positive_int(w) {
            Some(n) => s.window_seconds = n,
            None => r.error(
                Code::InvalidSpike,
                w.span,
                "`window_seconds` must be a positive integer".to_string(),
            ),
        }
        r.path.truncate(m);
    }
    s
}

fn parse_entry<'j>(
    item: &'j Json<'j>,
    r: &mut Reporter<'_, 'j>,
    load: &mut PolicyLoader<'_>,
    extra: &mut Vec<Diagnostic>,
) -> Option<PrincipalEntry> {
    if item.as_object().is_none() {
        r.error(
            Code::InvalidEntry,
            item.span,
            format!(
                "a principals entry must be an object, found {}",
                item.type_name()
            ),
        );
        return None;
    }
    unknown_fields(item, ENTRY_FIELDS, "a principals entry", r);
    let name = parse_name(item, r);
    let label = name.clone().unwrap_or_else(|| "?".to_string());
    let matchers = match under(item, "match", r, |m, r| parse_match(m, &label, r)) {
        Some(out) => out,
        None => {
            r.error(
                Code::MissingMatch,
                item.span,
                format!("entry `{label}` has no `match` patterns"),
            );
            None
        }
    };
    let principal_tags =
        under(item, "principal_tags", r, parse_principal_tags).unwrap_or(Some(Vec::new()));
    let policies = match under(item, "policies", r, |p, r| {
        parse_policies(p, &label, r, load, extra)
    }) {
        Some(out) => out,
        None => {
            r.error(
                Code::MissingPolicies,
                item.span,
                format!("entry `{label}` has no `policies`"),
            );
            None
        }
    };

    let command_output = parse_command_output(item, r)?;
    Some(PrincipalEntry {
        name: name?,
        matchers: matchers?,
        policies: policies?,
        principal_tags: principal_tags?,
        command_output,
    })
}

/// An entry's `name`: a non-empty string (reported when absent or not one).
fn parse_name<'j>(item: &'j Json<'j>, r: &mut Reporter<'_, 'j>) -> Option<String> {
    let Some(n) = item.get("name") else {
        r.error(
            Code::MissingName,
            item.span,
            "the entry has no `name`".to_string(),
        );
        return None;
    };
    match n.as_str() {
        Some(s) if !s.trim().is_empty() => Some(s.to_string()),
        _ => {
            let m = r.path.key("name");
            r.error(
                Code::InvalidName,
                n.span,
                "`name` must be a non-empty string".to_string(),
            );
            r.path.truncate(m);
            None
        }
    }
}

/// An entry's `principal_tags`: an object of tag keys to string values.
fn parse_principal_tags<'j>(
    t: &'j Json<'j>,
    r: &mut Reporter<'_, 'j>,
) -> Option<Vec<(String, String)>> {
    let Some(members) = t.as_object() else {
        r.error(
            Code::InvalidPrincipalTags,
            t.span,
            "`principal_tags` must be an object of tag keys to values".to_string(),
        );
        return None;
    };
    crate::iam::values::tag_pairs(members, Code::InvalidPrincipalTag, r).map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

fn parse_match<'j>(m: &'j Json<'j>, label: &str, r: &mut Reporter<'_, 'j>) -> Option<Vec<Pattern>> {
    let items: Vec<&Json> = match &m.kind {
        JsonKind::String(_) => vec![m],
        JsonKind::Array(items) if !items.is_empty() => items.iter().collect(),
        _ => {
            r.error(
                Code::InvalidMatch,
                m.span,
                format!("`match` of `{label}` must be an ARN pattern or a non-empty array of them"),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, it) in items.iter().enumerate() {
        let mi = matches!(m.kind, JsonKind::Array(_)).then(|| r.path.index(i));
        match it.as_str() {
            Some(s) if s == "*" || s.starts_with("arn:") => {
                if r.lints {
                    if let Some(role) = wildcard_role_part(s) {
                        r.warn(
                            Code::WildcardSessionRole,
                            it.span,
                            format!(
                                "`{s}` has a wildcard in the role part (`{role}`) of an assumed-role ARN: \
                                 whoever assumes a role chooses the session name, so a session of any \
                                 role it matches can pose as this entry; match the role ARN \
                                 (`arn:aws:iam::ACCOUNT:role/NAME`) instead"
                            ),
                        );
                    }
                }
                out.push(Pattern::new(s, Flavor::Glob, false));
            }
            Some(s) if s.len() > SERVICE_PREFIX.len() && s.starts_with(SERVICE_PREFIX) => {
                out.push(Pattern::new(s, Flavor::Glob, false));
            }
            _ => {
                r.error(
                    Code::InvalidMatch,
                    it.span,
                    "a `match` pattern must be an ARN (wildcards allowed), e.g. \
                     `arn:aws:iam::111122223333:role/Lead*`, or `service:<name>` for an AWS \
                     service caller, e.g. `service:ssm.amazonaws.com`"
                        .to_string(),
                );
                ok = false;
            }
        }
        if let Some(mi) = mi {
            r.path.truncate(mi);
        }
    }
    ok.then_some(out)
}

/// The role part of an assumed-role ARN pattern when it has a wildcard
/// (`arn:aws:sts::1:assumed-role/*/alice` gives `*`).
fn wildcard_role_part(pattern: &str) -> Option<&str> {
    let rest = pattern.split_once(":assumed-role/")?.1;
    let role = rest.split('/').next().unwrap_or(rest);
    role.contains(['*', '?']).then_some(role)
}

fn parse_policies<'j>(
    p: &'j Json<'j>,
    label: &str,
    r: &mut Reporter<'_, 'j>,
    load: &mut PolicyLoader<'_>,
    extra: &mut Vec<Diagnostic>,
) -> Option<Vec<NamedPolicy>> {
    let JsonKind::Array(items) = &p.kind else {
        r.error(
            Code::InvalidPolicies,
            p.span,
            format!(
                "`policies` of `{label}` must be an array, found {}",
                p.type_name()
            ),
        );
        return None;
    };
    if items.is_empty() {
        r.warn(
            Code::NoPolicies,
            p.span,
            format!("entry `{label}` has no policies: everything its callers do is outside intent"),
        );
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let mi = r.path.index(i);
        let file = item.get("file");
        let is_ref = file.is_some() && item.as_object().is_some_and(|members| members.len() == 1);
        if is_ref {
            let file = file.and_then(Json::as_str);
            match file {
                None => {
                    r.error(
                        Code::InvalidFile,
                        item.span,
                        "`file` must be a path string".to_string(),
                    );
                    ok = false;
                }
                Some(path) => match load(path) {
                    Err(why) => {
                        let m2 = r.path.key("file");
                        r.error(
                            Code::UnreadablePolicyFile,
                            item.span,
                            format!("cannot read policy file `{path}`: {why}"),
                        );
                        r.path.truncate(m2);
                        ok = false;
                    }
                    Ok((name, text)) => match if r.lints {
                        crate::iam::policy::Policy::check(&text, Some(&name))
                    } else {
                        crate::iam::policy::Policy::parse(&text, Some(&name))
                    } {
                        Ok(parsed) => {
                            extra.extend(parsed.warnings);
                            out.push(NamedPolicy {
                                name,
                                policy: parsed.value,
                            });
                        }
                        Err(e) => {
                            extra.extend(e.diagnostics);
                            ok = false;
                        }
                    },
                },
            }
        } else {
            match parse_policy_json(item, r) {
                Some(policy) => out.push(NamedPolicy {
                    name: format!("{label}/policies[{i}]"),
                    policy,
                }),
                None => ok = false,
            }
        }
        r.path.truncate(mi);
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(path: &str) -> Result<(String, String), String> {
        Err(format!("no file {path}"))
    }

    const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:*","Resource":"*"}}"#;

    #[test]
    fn dedupe_window_defaults_to_an_hour_and_is_bounded_to_a_day() {
        let with = |w: &str| {
            let extra = if w.is_empty() {
                String::new()
            } else {
                format!(r#","dedupe_window_seconds":{w}"#)
            };
            Intent::parse(
                &format!(r#"{{"principals":[]{extra}}}"#),
                Some("intent.json"),
                &mut no_files,
            )
        };
        let default = with("").unwrap().value;
        assert_eq!(default.dedupe_window_seconds, 3600);
        assert_eq!(default.dedupe_window_ms(), 3_600_000);
        assert_eq!(with("600").unwrap().value.dedupe_window_seconds, 600);
        for bad in ["0", "86401", "-5", "1.5", "\"1h\""] {
            let err = with(bad).unwrap_err();
            assert!(
                err.diagnostics
                    .iter()
                    .any(|d| d.code == Code::InvalidDedupeWindow),
                "{bad}: {:?}",
                err.diagnostics
            );
        }
    }

    #[test]
    fn union_of_matching_entries() {
        let text = format!(
            r#"{{"principals":[
                {{"name":"a","match":"arn:aws:iam::1:role/Lead*","policies":[{ALLOW_ALL}]}},
                {{"name":"b","match":["arn:aws:iam::1:role/LeadEngineer"],"policies":[{ALLOW_ALL},{ALLOW_ALL}],"principal_tags":{{"team":"web"}}}},
                {{"name":"c","match":"arn:aws:iam::1:user/*","policies":[]}}
            ]}}"#
        );
        let intent = Intent::parse(&text, Some("intent.json"), &mut no_files)
            .unwrap()
            .value;
        let caller = Caller::from_arn("arn:aws:sts::1:assumed-role/LeadEngineer/s").unwrap();
        let res = intent.resolve(&caller);
        assert_eq!(res.entries.len(), 2);
        assert_eq!(res.policies.len(), 3);
        assert_eq!(res.policies[1].name, "b/policies[0]");
        assert_eq!(res.principal_tags(), vec![("team", "web")]);
        assert_eq!(intent.unlisted, Unlisted::Violation);
        assert_eq!(
            intent.spike,
            SpikeSettings {
                threshold: 5,
                window_seconds: 300
            }
        );
        let nobody = Caller::from_arn("arn:aws:sts::1:assumed-role/Other/s").unwrap();
        assert!(intent.resolve(&nobody).is_unlisted());
    }

    /// CloudTrail `userIdentity` for AWS services: `type` `AWSService`, no ARN, the service in
    /// `invokedBy`. Such callers are matched by `service:<name>`.
    #[test]
    fn service_callers_match_service_patterns() {
        let text = format!(
            r#"{{"principals":[
                {{"name":"ssm-itself","match":"service:ssm.amazonaws.com","policies":[{ALLOW_ALL}]}},
                {{"name":"any-service","match":["service:*.amazonaws.com"],"policies":[]}}
            ]}}"#
        );
        let intent = Intent::parse(&text, None, &mut no_files).unwrap().value;
        let ssm = Caller::service("ssm.amazonaws.com", Some("1"));
        let names: Vec<&str> = intent
            .resolve(&ssm)
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["ssm-itself", "any-service"]);
        let other = Caller::service("config.amazonaws.com", Some("1"));
        assert_eq!(intent.resolve(&other).entries.len(), 1);
        let person = Caller::from_arn("arn:aws:iam::1:user/service").unwrap();
        assert!(intent.resolve(&person).is_unlisted());
        let bad = r#"{"principals":[{"name":"a","match":"service:","policies":[]}]}"#;
        let e = Intent::parse(bad, None, &mut no_files).unwrap_err();
        assert!(e.diagnostics.iter().any(|d| d.code == "invalid-match"));
    }

    #[test]
    fn check_warns_about_wildcards_in_the_role_of_a_session_pattern() {
        let text = format!(
            r#"{{"principals":[
                {{"name":"a","match":["arn:aws:sts::1:assumed-role/*/alice","arn:aws:sts::1:assumed-role/Ops/*"],"policies":[{ALLOW_ALL}]}}
            ]}}"#
        );
        let parsed = Intent::check(&text, None, &mut no_files).unwrap();
        let warned: Vec<&str> = parsed
            .warnings
            .iter()
            .filter(|d| d.code == "wildcard-session-role")
            .map(|d| d.path.as_str())
            .collect();
        assert_eq!(
            warned,
            ["$.principals[0].match[0]"],
            "only the role part counts"
        );
        let plain = Intent::parse(&text, None, &mut no_files).unwrap();
        assert!(plain
            .warnings
            .iter()
            .all(|d| d.code != "wildcard-session-role"));
    }

    #[test]
    fn file_policies_are_loaded_through_the_loader() {
        let text = r#"{"principals":[{"name":"a","match":"arn:aws:iam::1:user/x","policies":[{"file":"p.json"}]}],
                       "unlisted":"ignore","spike":{"threshold":3,"window_seconds":60}}"#;
        let mut seen = Vec::new();
        let mut load = |p: &str| {
            seen.push(p.to_string());
            Ok((format!("dir/{p}"), ALLOW_ALL.to_string()))
        };
        let intent = Intent::parse(text, None, &mut load).unwrap().value;
        assert_eq!(seen, ["p.json"]);
        assert_eq!(intent.principals[0].policies[0].name, "dir/p.json");
        assert_eq!(intent.unlisted, Unlisted::Ignore);
        assert_eq!(intent.spike.threshold, 3);
    }

    #[test]
    fn errors_name_the_entry_path_and_line() {
        let text = "{\"principals\":[\n {\"name\":\"a\",\"match\":\"arn:aws:iam::1:user/x\",\n  \"policies\":[{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Alow\",\"Action\":\"ssm:SendCommand\",\"Resource\":\"*\"}}]}]}";
        let e = Intent::parse(text, Some("intent.json"), &mut no_files).unwrap_err();
        let d = e
            .diagnostics
            .iter()
            .find(|d| d.code == "unknown-effect")
            .unwrap();
        assert_eq!(d.path, "$.principals[0].policies[0].Statement.Effect");
        assert_eq!(d.location.unwrap().line, 3);
        assert_eq!(d.file.as_deref(), Some("intent.json"));
    }

    #[test]
    fn bad_fields_and_files_are_reported_together() {
        let text = r#"{"principals":[{"name":"a","match":"role/x","policies":[{"file":"gone.json"}],"extra":1}],
                       "unlisted":"maybe","spike":{"threshold":0}}"#;
        let e = Intent::parse(text, None, &mut no_files).unwrap_err();
        let codes: Vec<_> = e.diagnostics.iter().map(|d| d.code.as_str()).collect();
        for code in [
            "unknown-field",
            "invalid-match",
            "unreadable-policy-file",
            "invalid-unlisted",
            "invalid-spike",
        ] {
            assert!(codes.contains(&code), "{code} missing from {codes:?}");
        }
        let unreadable = e
            .diagnostics
            .iter()
            .find(|d| d.code == "unreadable-policy-file")
            .unwrap();
        assert!(unreadable.message.contains("gone.json"));
        assert_eq!(unreadable.path, "$.principals[0].policies[0].file");
    }

    #[test]
    fn errors_in_policy_files_name_that_file() {
        let text = r#"{"principals":[{"name":"a","match":"arn:aws:iam::1:user/x","policies":[{"file":"bad.json"}]}]}"#;
        let mut load = |p: &str| {
            Ok((
                p.to_string(),
                "{\"Statement\": {\"Effect\": \"Allow\"}}".to_string(),
            ))
        };
        let e = Intent::parse(text, None, &mut load).unwrap_err();
        assert!(e
            .diagnostics
            .iter()
            .all(|d| d.file.as_deref() == Some("bad.json") || d.severity == Severity::Warning));
        assert!(e.diagnostics.iter().any(|d| d.code == "missing-element"));
    }
}
