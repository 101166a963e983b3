//! Findings: what tagwatch reports (the contract of its output) and their ids.

use serde::{Deserialize, Serialize};

use crate::iam::evaluator::{StatementRef, Verdict};
use crate::watch::event::{EventMeta, RunOrigin};

/// The finding kinds (the contract of tagwatch's output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// AWS allowed it, the intent does not.
    Violation,
    /// AWS denied the call.
    AccessDenied,
    /// A caller reached the spike threshold of AccessDenied calls.
    AccessDeniedSpike,
    /// A needed fact is missing (unknown tags, a command never seen).
    Unevaluated,
    /// An accepted SendCommand sends its output nowhere the intent's `command_output` requires.
    UnloggedCommand,
    /// No SSM event has come from an account and region that used to send them, for longer
    /// than the deployment's silence threshold: its forwarding may have stopped, and whatever
    /// runs there is unwatched.
    SilentSource,
}

impl FindingKind {
    /// Every kind.
    pub const ALL: [FindingKind; 6] = [
        FindingKind::Violation,
        FindingKind::AccessDenied,
        FindingKind::AccessDeniedSpike,
        FindingKind::Unevaluated,
        FindingKind::UnloggedCommand,
        FindingKind::SilentSource,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Violation => "violation",
            FindingKind::AccessDenied => "access_denied",
            FindingKind::AccessDeniedSpike => "access_denied_spike",
            FindingKind::Unevaluated => "unevaluated",
            FindingKind::UnloggedCommand => "unlogged_command",
            FindingKind::SilentSource => "silent_source",
        }
    }
}

/// How urgently a person should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingSeverity {
    High,
    Medium,
    Low,
}

impl FindingSeverity {
    /// The name in findings' JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingSeverity::High => "high",
            FindingSeverity::Medium => "medium",
            FindingSeverity::Low => "low",
        }
    }
}

/// Why an `unevaluated` finding could not be decided. Only the actionable causes go to a
/// person (severity medium, on the findings bus); the others are logged and counted (low).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnevaluatedCause {
    /// The decision depends on the resource's tags, and they could not be read (the instance
    /// or document was not found, or the lookup gave no answer).
    UnknownTags,
    /// A command ran whose SendCommand record never arrived (or an association ran whose
    /// definition was never seen): nobody knows who ran it.
    MissingRecord,
    /// The run is in an account or region whose tags this deployment does not read (forwarded
    /// from a member account, another region).
    OutOfScope,
    /// The run is in a member account in scope whose reader role could not be assumed (the
    /// role is missing, or does not trust this deployment): its tags cannot be read.
    NoAccess,
    /// The decision depends on a condition key the record cannot tell (`aws:PrincipalTag/…`
    /// the intent does not give, a key CloudTrail does not record): the intent needs work.
    UnknownKey,
}

impl UnevaluatedCause {
    /// Every cause, in the order the metrics and README list them.
    pub const ALL: [UnevaluatedCause; 5] = [
        UnevaluatedCause::UnknownTags,
        UnevaluatedCause::MissingRecord,
        UnevaluatedCause::OutOfScope,
        UnevaluatedCause::NoAccess,
        UnevaluatedCause::UnknownKey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnevaluatedCause::UnknownTags => "unknown_tags",
            UnevaluatedCause::MissingRecord => "missing_record",
            UnevaluatedCause::OutOfScope => "out_of_scope",
            UnevaluatedCause::NoAccess => "no_access",
            UnevaluatedCause::UnknownKey => "unknown_key",
        }
    }

    /// Whether someone can act on a single finding of this cause: a run nobody can attribute,
    /// or tags that should have been readable. A run outside the deployment's reach, or an
    /// intent that depends on what no record tells, repeats on every run and is a
    /// configuration matter: logged and counted, never paged.
    pub fn is_actionable(self) -> bool {
        matches!(
            self,
            UnevaluatedCause::UnknownTags | UnevaluatedCause::MissingRecord
        )
    }

    /// The severity of an `unevaluated` finding of this cause.
    pub fn severity(self) -> FindingSeverity {
        if self.is_actionable() {
            FindingSeverity::Medium
        } else {
            FindingSeverity::Low
        }
    }
}

/// Where a person goes next: the run in the Systems Manager console, and the caller's findings
/// of the hour before it in CloudWatch Logs Insights (null when unknown: no command or session,
/// no findings log group).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    #[serde(default)]
    pub console: Option<String>,
    #[serde(default)]
    pub logs_insights: Option<String>,
}

/// What AWS did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actual {
    Allowed,
    Denied,
}

/// One finding, serialised as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: FindingSeverity,
    /// Deterministic: the same event (or the same command and instance) gives the same id.
    pub finding_id: String,
    /// The event the finding is about (a spike: the denial that crossed the threshold).
    #[serde(flatten)]
    pub meta: EventMeta,
    /// `userIdentity.arn` exactly as recorded (null when the record has none).
    pub principal: Option<String>,
    /// The first intent entry matching the caller (null when unlisted or unknown).
    pub principal_entry: Option<String>,
    pub action: Option<String>,
    /// The resource ARN (null for spikes).
    pub resource: Option<String>,
    /// The document ARN of the call.
    pub document: Option<String>,
    pub command_id: Option<String>,
    pub session_id: Option<String>,
    /// What the intent decides (null when the decision could not be made).
    pub intended: Option<Verdict>,
    pub actual: Actual,
    pub statements: Vec<StatementRef>,
    /// One sentence a person can act on.
    pub reason: String,
    /// One line for an alert, right for the kind: who did what where (never empty).
    #[serde(default)]
    pub summary: String,
    /// `unevaluated` only: why the run could not be decided.
    #[serde(default)]
    pub cause: Option<UnevaluatedCause>,
    /// The call's `sourceIPAddress` (an IP, or the AWS service that called).
    #[serde(default)]
    pub source_ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    /// `vpcEndpointId`, when the call came through an interface endpoint.
    #[serde(default)]
    pub vpc_endpoint: Option<String>,
    /// The assumed-role session name (the last part of the session ARN).
    #[serde(default)]
    pub session_name: Option<String>,
    /// The role behind the session (`sessionContext.sessionIssuer.arn`).
    #[serde(default)]
    pub session_issuer: Option<String>,
    /// `sessionContext.attributes.mfaAuthenticated`, when recorded.
    #[serde(default)]
    pub mfa: Option<bool>,
    /// The instance's or managed node's `Name` tag, when its tags are known.
    #[serde(default)]
    pub instance_name: Option<String>,
    #[serde(default)]
    pub links: Links,
    /// An intent suppression matched: the finding is logged, not alerted, and counted as
    /// `Suppressed` instead of its kind's metric.
    #[serde(default)]
    pub suppressed: bool,
    /// The matching suppression's `reason` (null when not suppressed).
    #[serde(default)]
    pub suppression_reason: Option<String>,
    /// Findings that would alert: how many of its group (kind, principal, document, resource)
    /// its dedupe window has seen up to this one, this one included. Only the first (1) goes on
    /// the bus; the repeats are logged with their running count ([`crate::watch::dedupe`]).
    #[serde(default = "one")]
    pub count: u64,
    /// Context keys the decision depended on that the event could not tell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_keys: Vec<String>,
    /// AccessDenied: the error code and message as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Spikes: the AccessDenied calls counted in the window, and the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_calls: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// Spikes: what the counted calls asked for, each distinct request with its number of
    /// calls, most frequent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_requests: Vec<DeniedRequest>,
    /// Spikes: the sessions (assumed-role session ARNs) whose calls the window counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// Where the run came from when Systems Manager started it (a State Manager association, a
    /// maintenance window task, an Automation execution), with the principal behind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<RunOrigin>,
    /// Long fields were shortened to fit a sink's size limit (the finding is never dropped).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Finding {
    /// A finding of `kind` about the event `meta`, with its id, severity and reason; every
    /// other field empty (nothing decided, nothing named) for the caller to fill in.
    pub fn new(
        kind: FindingKind,
        severity: FindingSeverity,
        finding_id: String,
        meta: EventMeta,
        reason: String,
    ) -> Self {
        Finding {
            kind,
            severity,
            finding_id,
            meta,
            principal: None,
            principal_entry: None,
            action: None,
            resource: None,
            document: None,
            command_id: None,
            session_id: None,
            intended: None,
            actual: Actual::Allowed,
            statements: Vec::new(),
            reason,
            summary: String::new(),
            cause: None,
            source_ip: None,
            user_agent: None,
            vpc_endpoint: None,
            session_name: None,
            session_issuer: None,
            mfa: None,
            instance_name: None,
            links: Links::default(),
            suppressed: false,
            suppression_reason: None,
            count: 1,
            unknown_keys: Vec::new(),
            error_code: None,
            error_message: None,
            denied_calls: None,
            window_seconds: None,
            denied_requests: Vec::new(),
            sessions: Vec::new(),
            origin: None,
            truncated: false,
        }
    }
}

fn one() -> u64 {
    1
}

/// One distinct request of a spike's denied calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedRequest {
    pub action: String,
    /// The resource AWS named in its message, or the call's one resource (null when neither).
    pub resource: Option<String>,
    /// How many of the counted calls asked for it.
    pub calls: usize,
}

/// The last part of an ARN (`i-0abc`, `AWS-RunShellScript`, a session id), or the text itself.
fn short_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A principal ARN (or principal key) for people: `alice (JuniorEngineer)` for an assumed-role
/// session, the role or user name, or the text itself.
pub fn principal_label(arn: &str) -> String {
    let mut out = String::with_capacity(arn.len());
    push_principal_label(&mut out, arn);
    out
}

fn push_principal_label(out: &mut String, arn: &str) {
    if let Some(rest) = arn.split(":assumed-role/").nth(1) {
        if let Some((role, session)) = rest.split_once('/') {
            out.push_str(session);
            out.push_str(" (");
            out.push_str(role);
            out.push(')');
            return;
        }
    }
    match arn
        .split_once(":role/")
        .or_else(|| arn.split_once(":user/"))
    {
        Some((_, path_and_name)) => out.push_str(short_name(path_and_name)),
        None => out.push_str(arn),
    }
}

impl Finding {
    /// Who, for a summary: the caller, with the origin that ran on their behalf.
    fn push_who(&self, out: &mut String) {
        match &self.principal {
            Some(arn) => push_principal_label(out, arn),
            None => out.push_str("an unknown caller"),
        }
        if let Some(o) = &self.origin {
            out.push_str(" through ");
            let through = o.kind.describe();
            let id = o.id.as_deref().or(o.window_id.as_deref()).unwrap_or("");
            let id = id.trim_end();
            if id.is_empty() {
                out.push_str(through.trim_end());
            } else {
                out.push_str(through);
                out.push(' ');
                out.push_str(id);
            }
        }
    }

    /// The resource for a summary: `i-0abc (web-1)`, a document or session name; `false` when
    /// the finding names no resource.
    fn push_target(&self, out: &mut String) -> bool {
        let Some(arn) = self.resource.as_deref() else {
            return false;
        };
        out.push_str(short_name(arn));
        if let Some(n) = &self.instance_name {
            out.push_str(" (");
            out.push_str(n);
            out.push(')');
        }
        true
    }

    /// What the call did, for a summary: `ran AWS-RunShellScript on i-0abc (web-1)`.
    fn push_deed(&self, out: &mut String) {
        let action = self.action.as_deref().unwrap_or("a call");
        let document = self.document.as_deref().map(short_name);
        let on_document = self
            .resource
            .as_deref()
            .is_some_and(|r| r.contains(":document/"));
        let has_target = self.resource.is_some();
        let lead = match (action, has_target) {
            ("ssm:SendCommand", true) if on_document => "used document ",
            ("ssm:SendCommand", _) => {
                out.push_str("ran ");
                out.push_str(document.unwrap_or("a command"));
                " on "
            }
            ("ssm:StartSession", true) if on_document => "started a session with document ",
            ("ssm:StartSession", true) => "started a session on ",
            ("ssm:ResumeSession", true) => "resumed session ",
            (action, _) => {
                out.push_str("called ");
                out.push_str(action);
                " on "
            }
        };
        if has_target {
            out.push_str(lead);
            self.push_target(out);
        }
    }

    /// ` in ACCOUNT/REGION`.
    fn push_place(&self, out: &mut String) {
        out.push_str(" in ");
        out.push_str(&self.meta.account);
        out.push('/');
        out.push_str(&self.meta.region);
    }

    /// The one-line `summary` of this finding, from its own fields (never empty, never
    /// "null"): who did what, where, and the kind's point. Built in one buffer: it is made
    /// for every finding, on replay's hot path.
    pub fn summarize(&self) -> String {
        let mut out = String::with_capacity(160);
        match self.kind {
            FindingKind::Violation => {
                self.push_who(&mut out);
                out.push(' ');
                self.push_deed(&mut out);
                out.push_str(" outside intent");
                self.push_place(&mut out);
                if self.principal_entry.is_none() {
                    out.push_str(" (caller not in the intent)");
                }
            }
            FindingKind::AccessDenied => {
                out.push_str("AWS denied ");
                self.push_who(&mut out);
                out.push(' ');
                out.push_str(self.action.as_deref().unwrap_or("a call"));
                out.push_str(" on ");
                if !self.push_target(&mut out) {
                    out.push_str("its resources");
                }
                self.push_place(&mut out);
                out.push_str(" (");
                out.push_str(self.error_code.as_deref().unwrap_or("AccessDenied"));
                out.push(')');
            }
            FindingKind::AccessDeniedSpike => {
                self.push_who(&mut out);
                out.push_str(" made ");
                push_number(&mut out, self.denied_calls.unwrap_or(0));
                out.push_str(" AccessDenied calls within ");
                push_number(&mut out, self.window_seconds.unwrap_or(0));
                out.push_str(" s");
                self.push_place(&mut out);
                for (i, r) in self.denied_requests.iter().take(3).enumerate() {
                    out.push_str(if i == 0 { ": " } else { ", " });
                    out.push_str(&r.action);
                    if let Some(a) = r.resource.as_deref() {
                        out.push_str(" on ");
                        out.push_str(short_name(a));
                    }
                    out.push_str(" x");
                    push_number(&mut out, r.calls);
                }
                if self.denied_requests.len() > 3 {
                    out.push_str(", ");
                    push_number(&mut out, self.denied_requests.len() - 3);
                    out.push_str(" more");
                }
            }
            FindingKind::Unevaluated => {
                out.push_str("could not check: ");
                self.push_who(&mut out);
                out.push(' ');
                self.push_deed(&mut out);
                self.push_place(&mut out);
                out.push_str(": ");
                match self.cause {
                    Some(UnevaluatedCause::UnknownTags) => {
                        out.push_str("the resource's tags could not be read");
                    }
                    Some(UnevaluatedCause::MissingRecord) => {
                        out.push_str("the record naming the caller never arrived");
                    }
                    Some(UnevaluatedCause::OutOfScope) => {
                        out.push_str("the account or region is outside this deployment's reach");
                    }
                    Some(UnevaluatedCause::NoAccess) => {
                        out.push_str("tagwatch's reader role in the account could not be assumed");
                    }
                    Some(UnevaluatedCause::UnknownKey) | None if !self.unknown_keys.is_empty() => {
                        out.push_str("the intent depends on ");
                        out.push_str(&self.unknown_keys.join(", "));
                        out.push_str(", which the record cannot tell");
                    }
                    Some(UnevaluatedCause::UnknownKey) | None => {
                        out.push_str("a fact the decision needs is unknown");
                    }
                }
            }
            FindingKind::UnloggedCommand => {
                self.push_who(&mut out);
                out.push_str(" ran ");
                out.push_str(self.document.as_deref().map_or("a command", short_name));
                out.push_str(" as command ");
                out.push_str(self.command_id.as_deref().unwrap_or("(unknown)"));
                self.push_place(&mut out);
                out.push_str(" without the output destination the intent requires");
            }
            FindingKind::SilentSource => {
                out.push_str("no SSM events from ");
                out.push_str(&self.meta.account);
                out.push('/');
                out.push_str(&self.meta.region);
                out.push_str(" since ");
                out.push_str(&self.meta.event_time);
                out.push_str(
                    ": its forwarding to tagwatch may have stopped, and what runs there is unwatched",
                );
            }
        }
        out
    }
}

/// Appends a number in decimal (summaries are built for every finding: no format machinery).
fn push_number(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// A finding for unit tests: `kind`, high, with id and event id `id`, at `at_ms`, in account
/// `1`, `us-east-1`, `aws`; nothing else named.
#[cfg(test)]
pub(crate) fn sample(kind: FindingKind, id: &str, at_ms: i64) -> Finding {
    Finding::new(
        kind,
        FindingSeverity::High,
        id.into(),
        EventMeta {
            event_id: id.into(),
            event_time: String::new(),
            event_epoch_ms: at_ms,
            account: "1".into(),
            region: "us-east-1".into(),
            partition: "aws".into(),
        },
        "r".into(),
    )
}

/// A stable 128-bit id: the first 16 bytes of SHA-256, in lowercase hex, over the parts, each
/// preceded by its length (8 bytes, big-endian) so that no two part lists hash the same input.
/// The id is the idempotency key of every sink: a collision would drop a finding, so it comes
/// from a cryptographic hash (2^64 ids before a collision is even likely), not an ad-hoc one.
pub fn finding_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    // The first 16 bytes are the first 32 hex digits.
    let mut id = hex::encode(h.finalize());
    id.truncate(32);
    id
}

/// The id of the finding on one (command, instance) pair: every status event and the record
/// of one run share it, so whichever evaluates the pair first reports it, once.
pub fn invocation_finding_id(command_id: &str, instance_id: &str) -> String {
    finding_id(&["invocation", command_id, instance_id])
}

/// The id of the spike finding of the episode that `opened_by` (an event id) opened.
pub fn spike_finding_id(caller: &str, opened_by: &str) -> String {
    finding_id(&["spike", caller, opened_by])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_right_for_each_shape() {
        use crate::intent::origins::OriginKind;
        let mut f = sample(FindingKind::Violation, "v", 0);
        f.principal = Some("arn:aws:sts::1:assumed-role/Ops/alice".into());
        f.principal_entry = Some("ops".into());
        f.action = Some("ssm:SendCommand".into());
        f.document = Some("arn:aws:ssm:us-east-1::document/AWS-RunShellScript".into());
        f.resource = Some("arn:aws:ec2:us-east-1:1:instance/i-0abc".into());
        f.instance_name = Some("web-1".into());
        f.origin = Some(RunOrigin {
            kind: OriginKind::Association,
            id: Some("assoc-1 ".into()),
            window_id: None,
            principal: None,
            setup_event_id: None,
        });
        assert_eq!(
            f.summarize(),
            "alice (Ops) through State Manager association assoc-1 ran AWS-RunShellScript on i-0abc (web-1) outside intent in 1/us-east-1"
        );
        // An origin without an id; a document as the resource; a caller not in the intent.
        f.origin.as_mut().unwrap().id = None;
        f.principal_entry = None;
        f.resource = f.document.clone();
        f.instance_name = None;
        assert_eq!(
            f.summarize(),
            "alice (Ops) through State Manager association used document AWS-RunShellScript outside intent in 1/us-east-1 (caller not in the intent)"
        );
        let mut d = sample(FindingKind::AccessDenied, "d", 0);
        d.principal = Some("arn:aws:iam::1:user/path/bob".into());
        assert_eq!(
            d.summarize(),
            "AWS denied bob a call on its resources in 1/us-east-1 (AccessDenied)"
        );
        let mut s = sample(FindingKind::AccessDeniedSpike, "s", 0);
        s.denied_calls = Some(12);
        s.window_seconds = Some(300);
        s.denied_requests = (0..5)
            .map(|i| DeniedRequest {
                action: format!("ssm:A{i}"),
                resource: (i == 0).then(|| "arn:aws:ec2:us-east-1:1:instance/i-1".to_string()),
                calls: 2,
            })
            .collect();
        assert_eq!(
            s.summarize(),
            "an unknown caller made 12 AccessDenied calls within 300 s in 1/us-east-1: ssm:A0 on i-1 x2, ssm:A1 x2, ssm:A2 x2, 2 more"
        );
        let mut u = sample(FindingKind::UnloggedCommand, "u", 0);
        u.command_id = Some("c-1".into());
        assert_eq!(
            u.summarize(),
            "an unknown caller ran a command as command c-1 in 1/us-east-1 without the output destination the intent requires"
        );
        let mut e = sample(FindingKind::Unevaluated, "e", 0);
        e.action = Some("ssm:StartSession".into());
        assert_eq!(
            e.summarize(),
            "could not check: an unknown caller called ssm:StartSession in 1/us-east-1: a fact the decision needs is unknown"
        );
    }

    #[test]
    fn ids_follow_the_documented_derivation() {
        // README, "finding_id": SHA-256 over length-prefixed parts, first 16 bytes in hex; the
        // expected value is Python's hashlib over the same bytes.
        assert_eq!(
            invocation_finding_id(
                "11111111-2222-3333-4444-555555555555",
                "i-0a1b2c3d4e5f60001"
            ),
            "3cdfc332a97288b4b53fe375f0f17266"
        );
    }

    #[test]
    fn parts_never_run_together() {
        // Without the length prefix both lists would hash "ab" + "c".
        assert_ne!(finding_id(&["ab", "c"]), finding_id(&["a", "bc"]));
        assert_ne!(finding_id(&["a", ""]), finding_id(&["a"]));
        assert_eq!(finding_id(&["x", "y"]), finding_id(&["x", "y"]));
        assert_eq!(finding_id(&["x"]).len(), 32);
    }
}
