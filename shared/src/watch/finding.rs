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
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Violation => "violation",
            FindingKind::AccessDenied => "access_denied",
            FindingKind::AccessDeniedSpike => "access_denied_spike",
            FindingKind::Unevaluated => "unevaluated",
            FindingKind::UnloggedCommand => "unlogged_command",
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
            unknown_keys: Vec::new(),
            error_code: None,
            error_message: None,
            denied_calls: None,
            window_seconds: None,
            sessions: Vec::new(),
            origin: None,
            truncated: false,
        }
    }
}

/// A stable 128-bit id: the first 16 bytes of SHA-256, in lowercase hex, over the parts, each
/// preceded by its length (8 bytes, big-endian) so that no two part lists hash the same input.
/// The id is the idempotency key of every sink: a collision would drop a finding, so it comes
/// from a cryptographic hash (2^64 ids before a collision is even likely), not an ad-hoc one.
pub fn finding_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut id = String::with_capacity(32);
    for b in digest.iter().take(16) {
        // Writing to a String cannot fail.
        let _ = write!(id, "{b:02x}");
    }
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
