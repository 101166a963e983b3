//! Runs Systems Manager starts itself: State Manager associations, maintenance window tasks and
//! Automation `aws:runCommand` steps.
//!
//! How each shows up (AWS Systems Manager User Guide and API Reference):
//! - **State Manager.** `CreateAssociation` / `CreateAssociationBatch` / `UpdateAssociation`
//!   record who defined an association (`associationId` in `responseElements`). State Manager
//!   then runs it on its schedule with no `SendCommand` call of anyone's (so no CloudTrail
//!   record): each run on a node is an "EC2 State Manager Instance Association State Change"
//!   event (`association-id`, `instance-id`, `document-name`), and its Run Command output
//!   (`DescribeAssociationExecutionTargets`: `OutputSource.OutputSourceType` `RunCommand`) makes
//!   command status events whose command has no record.
//! - **Maintenance windows.** `RegisterTaskWithMaintenanceWindow` / `UpdateMaintenanceWindowTask`
//!   record who registered a `RUN_COMMAND` task, its document (`taskArn`) and the role it runs
//!   with (`serviceRoleArn`; without one, the service-linked role `AWSServiceRoleForAmazonSSM`).
//!   When the window runs, Systems Manager calls `SendCommand` with that role: a CloudTrail
//!   record whose caller is the role's session and whose source is `ssm.amazonaws.com`.
//! - **Automation.** `StartAutomationExecution` records who started an execution
//!   (`automationExecutionId`) and its `AutomationAssumeRole`. An `aws:runCommand` step calls
//!   `SendCommand` as that role, in a session named after the execution, from
//!   `ssm.amazonaws.com`.
//!
//! tagwatch attributes a run to the principal behind it only when a record names that
//! principal exactly: the association's last definition, the one principal who registered the
//! window's tasks that run this document with this role, the execution whose id names the
//! session. Otherwise the run is judged as the call it is (the role's), and an association run
//! with no known definition is `unevaluated`: never a guess.

use crate::intent::origins::OriginKind;
use crate::intent::principal::Caller;
use crate::watch::event::{
    service_linked_role, Action, Activity, AssociationRun, CallOutcome, OriginSetup, RunOrigin,
};

/// The service that calls `SendCommand` for maintenance windows and Automation.
pub const SSM_SERVICE: &str = "ssm.amazonaws.com";

impl OriginSetup {
    /// The origin of the runs this setup starts, as a finding names it.
    fn run_origin(&self) -> RunOrigin {
        RunOrigin {
            kind: self.kind,
            id: Some(self.id.clone()),
            window_id: self.window_id.clone(),
            principal: self.principal(),
            setup_event_id: Some(self.call.meta.event_id.clone()),
        }
    }
}

/// How far apart (event time) an association run and a command status event of the same
/// document on the same node may be for the run to account for a command with no
/// `SendCommand` record.
pub const ASSOCIATION_MATCH_MS: i64 = 60 * 60 * 1000;

/// What the correlation state must hold to recognise an activity's origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginLookup {
    /// An automation execution id (the session name of a call Systems Manager made).
    pub automation: Option<String>,
    /// The (role, document) of window tasks that may have made the call.
    pub window_tasks: Option<(String, String)>,
    /// An association id.
    pub association: Option<String>,
}

impl OriginLookup {
    pub fn is_empty(&self) -> bool {
        self.automation.is_none() && self.window_tasks.is_none() && self.association.is_none()
    }
}

/// Whether Systems Manager made this call with a role of the account's (a maintenance window
/// task or an Automation step): the caller is a role session and the call came from
/// `ssm.amazonaws.com`.
pub fn made_by_ssm(a: &Activity) -> bool {
    let c = &a.source.caller;
    c.identity_type == "AssumedRole"
        && c.role_arn.is_some()
        && (c.invoked_by.as_deref() == Some(SSM_SERVICE)
            || a.source.source_ip.as_deref() == Some(SSM_SERVICE))
}

/// The session name of an assumed-role caller (`assumed-role/ROLE/SESSION`).
fn session_name(c: &Caller) -> Option<&str> {
    let arn = c.arn.as_deref()?;
    let rest = arn.split_once(":assumed-role/")?.1;
    rest.split_once('/')
        .map(|(_, s)| s)
        .filter(|s| !s.is_empty())
}

/// The origins an allowed SendCommand may have come from, for the state to gather.
pub fn lookup_of(a: &Activity) -> OriginLookup {
    if a.action != Action::SendCommand || a.outcome != CallOutcome::Allowed || !made_by_ssm(a) {
        return OriginLookup::default();
    }
    OriginLookup {
        automation: session_name(&a.source.caller).map(str::to_string),
        window_tasks: a
            .source
            .caller
            .role_arn
            .as_ref()
            .zip(a.document.as_ref())
            .map(|(role, d)| (role_key(role), d.id.clone())),
        association: None,
    }
}

/// Roles are compared case-insensitively (IAM role names are unique regardless of case).
pub fn role_key(role: &str) -> String {
    role.to_ascii_lowercase()
}

/// The activity as the principal behind it made it: the setup call's caller and request facts,
/// this run's time, document, targets and output. IAM authorised the setup call in that
/// context; the run itself has no request of the principal's.
pub fn attributed(a: &Activity, setup: &OriginSetup) -> Activity {
    let call = &setup.call;
    Activity {
        source: call.source.clone(),
        origin: Some(setup.run_origin()),
        ..a.clone()
    }
}

/// Recognises where an allowed SendCommand came from, from the setups gathered: an automation
/// execution named by the session (exact), or the window tasks registered with this role for
/// this document. `None` when it is a call a principal made.
pub fn recognise(
    a: &Activity,
    automation: Option<&OriginSetup>,
    window_tasks: &[std::sync::Arc<OriginSetup>],
) -> Option<Activity> {
    if lookup_of(a).is_empty() {
        return None;
    }
    if let Some(setup) = automation.filter(|s| s.kind == OriginKind::Automation) {
        return Some(attributed(a, setup));
    }
    let role = a.source.caller.role_arn.as_deref().unwrap_or_default();
    let linked =
        role.eq_ignore_ascii_case(&service_linked_role(&a.meta.partition, &a.meta.account));
    if window_tasks.is_empty() && !linked {
        return None;
    }
    let mut principals: Vec<Option<String>> = window_tasks
        .iter()
        .map(|t| t.call.source.caller.principal_key())
        .collect();
    principals.sort();
    principals.dedup();
    if let ([Some(_)], Some(latest)) = (
        principals.as_slice(),
        window_tasks
            .iter()
            .max_by_key(|t| t.call.meta.event_epoch_ms),
    ) {
        return Some(attributed(a, latest));
    }
    // A maintenance window's role, but no one principal behind it: judged as the role's call.
    let window_id = {
        let mut ids: Vec<&str> = window_tasks
            .iter()
            .filter_map(|t| t.window_id.as_deref())
            .collect();
        ids.sort();
        ids.dedup();
        match ids.as_slice() {
            [one] => Some(one.to_string()),
            _ => None,
        }
    };
    Some(Activity {
        origin: Some(RunOrigin {
            kind: OriginKind::MaintenanceWindow,
            id: match window_tasks {
                [one] => Some(one.id.clone()),
                _ => None,
            },
            window_id,
            principal: None,
            setup_event_id: None,
        }),
        ..a.clone()
    })
}

/// An association run as the SendCommand of the association's definer: its document on its
/// node, in the context of the call that defined it.
pub fn association_activity(run: &AssociationRun, setup: &OriginSetup) -> Activity {
    let call = &setup.call;
    Activity {
        meta: run.meta.clone(),
        action: Action::SendCommand,
        source: call.source.clone(),
        outcome: CallOutcome::Allowed,
        command_id: None,
        session_id: None,
        document: Some(run.document.clone()),
        targets: vec![run.target.clone()],
        tag_targets: Vec::new(),
        output: None,
        origin: Some(setup.run_origin()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_names_round_trip() {
        for k in OriginKind::ALL {
            assert_eq!(OriginKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(OriginKind::parse("Association"), None);
    }

    #[test]
    fn the_service_linked_role_is_named_by_partition_and_account() {
        assert_eq!(
            service_linked_role("aws", "111122223333"),
            "arn:aws:iam::111122223333:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM"
        );
    }
}
