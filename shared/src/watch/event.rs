//! Event normalisation: EventBridge events and raw CloudTrail records in, activities out.
//!
//! Parsing is lenient on purpose: real records omit fields (`requestID`, `userAgent`,
//! `responseElements`), add new ones, and status events carry parameter maps of arrays. Only
//! what a verdict needs is required; a missing required field is a [`EventError`] naming the
//! JSON path, never a panic and never a silent drop.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::iam::values;
use crate::intent::origins::OriginKind;

/// The calls tagwatch watches. `TerminateSession` is counted, not evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "ssm:SendCommand")]
    SendCommand,
    #[serde(rename = "ssm:StartSession")]
    StartSession,
    /// Reconnects to a session: authorised on the session (`arn:...:session/ID`).
    #[serde(rename = "ssm:ResumeSession")]
    ResumeSession,
    #[serde(rename = "ssm:TerminateSession")]
    TerminateSession,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SendCommand => "ssm:SendCommand",
            Action::StartSession => "ssm:StartSession",
            Action::ResumeSession => "ssm:ResumeSession",
            Action::TerminateSession => "ssm:TerminateSession",
        }
    }

    /// The CloudTrail `eventName` of each watched call.
    pub const EVENT_NAMES: [&'static str; 4] = [
        "SendCommand",
        "StartSession",
        "ResumeSession",
        "TerminateSession",
    ];

    /// Whether tagwatch judges this call against the intent (all but `TerminateSession`,
    /// which is counted: ending a session grants nothing).
    pub fn is_judged(self) -> bool {
        self != Action::TerminateSession
    }
}

pub use crate::intent::principal::Caller;

/// What AWS did with the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CallOutcome {
    Allowed,
    /// `AccessDenied` / `AccessDeniedException`.
    Denied {
        code: String,
        message: Option<String>,
        /// The resource named by the error message ("... on resource: ARN ..."), if any.
        resource: Option<String>,
    },
    /// Any other error: the call failed for a reason that is not authorisation.
    Failed {
        code: String,
        message: Option<String>,
    },
}

/// The kind of resource IAM authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Document,
    Instance,
    ManagedNode,
    /// A Session Manager session (`arn:aws:ssm:REGION:ACCOUNT:session/ID`); sessions carry no
    /// tags.
    Session,
}

/// One resource of an activity, with its ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRef {
    pub kind: ResourceKind,
    /// Instance or node id (`i-...`, `mi-...`) or document name.
    pub id: String,
    pub arn: String,
}

// Runs Systems Manager starts itself (see `crate::watch::origin`): the calls that set them up,
// association runs, and where a finding's run came from.

/// The CloudTrail calls that set up an origin (the functions' rule subscribes to them).
pub const SETUP_EVENT_NAMES: [&str; 6] = [
    "CreateAssociation",
    "CreateAssociationBatch",
    "UpdateAssociation",
    "RegisterTaskWithMaintenanceWindow",
    "UpdateMaintenanceWindowTask",
    "StartAutomationExecution",
];

/// The EventBridge detail-type of one association run on one node.
pub const ASSOCIATION_RUN_DETAIL_TYPE: &str = "EC2 State Manager Instance Association State Change";

/// The role maintenance window tasks run with when registered without `serviceRoleArn`.
pub fn service_linked_role(partition: &str, account: &str) -> String {
    format!(
        "arn:{partition}:iam::{account}:role/aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM"
    )
}

/// What every processed event carries: which event it is, when it happened, and where.
///
/// Flattened into the types that carry it, so their JSON (findings, persisted command records)
/// keeps these as top-level fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// CloudTrail `eventID` or EventBridge `id`.
    pub event_id: String,
    /// `eventTime` (CloudTrail) or `time` (EventBridge) as recorded.
    pub event_time: String,
    pub event_epoch_ms: i64,
    /// The account the event is about (`recipientAccountId`, or EventBridge `account`).
    pub account: String,
    pub region: String,
    /// `aws`, `aws-cn`, `aws-us-gov`, ...: from the caller's or the resources' ARNs, else the
    /// region.
    pub partition: String,
}

/// Who made a recorded call and from where: the request facts IAM saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSource {
    pub caller: Caller,
    /// `sourceIPAddress` (an IP, or a service name such as `ssm.amazonaws.com`).
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub vpc_endpoint: Option<String>,
    /// CloudTrail records `tlsDetails` for calls over TLS.
    pub tls: bool,
}

/// The call that set an origin up, with the request facts IAM saw for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupCall {
    #[serde(flatten)]
    pub meta: EventMeta,
    /// `eventName`: `CreateAssociation`, `RegisterTaskWithMaintenanceWindow`, ...
    pub event_name: String,
    #[serde(flatten)]
    pub source: CallSource,
}

/// A setup call and the origins it defined (one `CreateAssociationBatch` may define several,
/// or none when every association failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRecord {
    pub call: SetupCall,
    pub setups: Vec<OriginSetup>,
}

/// One origin as its setup call defined it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginSetup {
    pub kind: OriginKind,
    /// The association id, the window task id, or the automation execution id.
    pub id: String,
    /// The maintenance window (window tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_id: Option<String>,
    /// The document it runs (associations and window tasks; an execution's runbook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// The role Systems Manager runs it with (window tasks: `serviceRoleArn` or the
    /// service-linked role; executions: `AutomationAssumeRole`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_role: Option<String>,
    pub call: SetupCall,
}

impl OriginSetup {
    /// The principal behind the origin, as a finding names it.
    pub fn principal(&self) -> Option<String> {
        self.call
            .source
            .caller
            .arn
            .clone()
            .or_else(|| self.call.source.caller.principal_key())
    }
}

/// One association run on one node ("EC2 State Manager Instance Association State Change").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationRun {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub association_id: String,
    pub document: ResourceRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_version: Option<String>,
    pub target: ResourceRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Where a finding's run came from (absent for calls people made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOrigin {
    pub kind: OriginKind,
    /// The association id, window task id or automation execution id, when known.
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_id: Option<String>,
    /// The principal behind the run (null when no record names one exactly).
    pub principal: Option<String>,
    /// The CloudTrail record that names the principal.
    pub setup_event_id: Option<String>,
}

/// A SendCommand or StartSession call, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    #[serde(flatten)]
    pub meta: EventMeta,
    pub action: Action,
    #[serde(flatten)]
    pub source: CallSource,
    pub outcome: CallOutcome,
    pub command_id: Option<String>,
    pub session_id: Option<String>,
    /// The document (SendCommand; StartSession when the request names one).
    pub document: Option<ResourceRef>,
    /// Instances and managed nodes named by the request (the session, for ResumeSession).
    pub targets: Vec<ResourceRef>,
    /// Tag targets (`tag:Env` = values) of a SendCommand; CloudTrail names no instance for
    /// them, the status events do.
    pub tag_targets: Vec<(String, Vec<String>)>,
    /// Where an accepted SendCommand sends its output (`responseElements.command`); `None`
    /// when the record does not say (a denied call has no response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<CommandOutput>,
    /// Where the run came from when Systems Manager started it ([`crate::watch::origin`]); then
    /// `caller` is the principal behind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<RunOrigin>,
}

/// A command's output destinations, as SendCommand's response records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutput {
    /// `cloudWatchOutputConfig.cloudWatchOutputEnabled`.
    pub cloudwatch: bool,
    /// `cloudWatchOutputConfig.cloudWatchLogGroupName`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    /// `outputS3BucketName`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
}

fn command_output(command: &Value) -> CommandOutput {
    let cw = command.get("cloudWatchOutputConfig");
    let non_empty = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
    CommandOutput {
        cloudwatch: cw
            .and_then(|c| c.get("cloudWatchOutputEnabled"))
            .is_some_and(|e| match e {
                Value::Bool(b) => *b,
                Value::String(s) => values::parse_bool(s) == Some(true),
                _ => false,
            }),
        log_group: non_empty(cw.and_then(|c| str_at(c, "cloudWatchLogGroupName"))),
        s3_bucket: non_empty(str_at(command, "outputS3BucketName")),
    }
}

impl Activity {
    /// Every resource IAM authorises for this call: the document first, then the targets.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceRef> {
        self.document.iter().chain(self.targets.iter())
    }
}

/// Which SSM status notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    /// "EC2 Command Status-change Notification" (instances in `resources`).
    Command,
    /// "EC2 Command Invocation Status-change Notification" (one instance).
    Invocation,
}

/// An SSM command / invocation status change: which instances a command reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub kind: StatusKind,
    #[serde(flatten)]
    pub meta: EventMeta,
    pub command_id: String,
    pub document_name: Option<String>,
    pub status: Option<String>,
    /// Instances and managed nodes the command ran on.
    pub targets: Vec<ResourceRef>,
}

impl StatusChange {
    /// The same status change, about one of its targets only.
    pub fn narrowed_to(&self, target: &ResourceRef) -> StatusChange {
        StatusChange {
            kind: self.kind,
            meta: self.meta.clone(),
            command_id: self.command_id.clone(),
            document_name: self.document_name.clone(),
            status: self.status.clone(),
            targets: vec![target.clone()],
        }
    }
}

/// A record Lambda's failure destination keeps for an asynchronous invocation that failed
/// every attempt ("Capturing records of Lambda asynchronous invocations": `version` "1.0",
/// `requestContext.functionArn`, `condition`, `approximateInvokeCount`, `requestPayload`).
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRecord<'v> {
    /// The function's name, from `requestContext.functionArn` (version or alias stripped).
    pub function: Option<String>,
    /// `RetriesExhausted`, `EventAgeExceeded`, ...
    pub condition: Option<String>,
    pub invoke_count: Option<u64>,
    /// The event as the function received it.
    pub payload: &'v Value,
}

/// Reads a failure-destination record; `None` when `v` is not one (a plain event).
pub fn destination_record(v: &Value) -> Option<DestinationRecord<'_>> {
    let ctx = v.get("requestContext")?;
    let payload = v.get("requestPayload")?;
    ctx.get("functionArn")?;
    let function = ctx
        .get("functionArn")
        .and_then(Value::as_str)
        .and_then(|arn| arn.split(':').nth(6))
        .filter(|name| !name.is_empty())
        .map(str::to_string);
    Some(DestinationRecord {
        function,
        condition: ctx
            .get("condition")
            .and_then(Value::as_str)
            .map(str::to_string),
        invoke_count: ctx.get("approximateInvokeCount").and_then(Value::as_u64),
        payload,
    })
}

/// The event itself: a failure-destination record's `requestPayload`, or `v` as it is. The
/// functions accept both, so a redriven record is handled like the original event.
pub fn unwrap_destination(v: &Value) -> &Value {
    destination_record(v).map_or(v, |r| r.payload)
}

/// Why an event is not evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// An SSM API call other than SendCommand / StartSession.
    OtherSsmCall(String),
    /// A CloudTrail record of another service.
    OtherService(String),
    /// An EventBridge event of another type.
    OtherEventType(String),
}

/// One input event, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Activity(Box<Activity>),
    Status(StatusChange),
    /// A call that sets up runs Systems Manager starts itself.
    Origin(Box<OriginRecord>),
    /// One State Manager association run on one node.
    AssociationRun(Box<AssociationRun>),
    Skipped(Skip),
}

impl Event {
    /// Which event, when and where, when it is processed.
    pub fn meta(&self) -> Option<&EventMeta> {
        match self {
            Event::Activity(a) => Some(&a.meta),
            Event::Status(s) => Some(&s.meta),
            Event::Origin(o) => Some(&o.call.meta),
            Event::AssociationRun(r) => Some(&r.meta),
            Event::Skipped(_) => None,
        }
    }

    /// The instances, managed nodes and sessions the event names (the document aside); none
    /// for origin records and skipped events.
    pub fn targets(&self) -> &[ResourceRef] {
        match self {
            Event::Activity(a) => &a.targets,
            Event::Status(s) => &s.targets,
            Event::AssociationRun(r) => std::slice::from_ref(&r.target),
            Event::Origin(_) | Event::Skipped(_) => &[],
        }
    }
}

/// An event that cannot be processed: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (at {path})")]
pub struct EventError {
    /// JSON path of the offending element, e.g. `$.detail.userIdentity`.
    pub path: String,
    pub reason: String,
}

fn err(path: &str, reason: impl Into<String>) -> EventError {
    EventError {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn str_at<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn required<'v>(v: &'v Value, key: &str, base: &str) -> Result<&'v str, EventError> {
    match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(other) => Err(err(
            &format!("{base}.{key}"),
            format!("expected a non-empty string, found {}", type_name(other)),
        )),
        None => Err(err(&format!("{base}.{key}"), format!("missing `{key}`"))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const CLOUDTRAIL_API_CALL: &str = "AWS API Call via CloudTrail";
const COMMAND_STATUS: &str = "EC2 Command Status-change Notification";
const INVOCATION_STATUS: &str = "EC2 Command Invocation Status-change Notification";

/// Normalises one event: an EventBridge event (as delivered to Lambda) or a raw CloudTrail
/// record (as inside a log file's `Records`).
pub fn normalize(v: &Value) -> Result<Event, EventError> {
    if !v.is_object() {
        return Err(err(
            "$",
            format!("expected an event object, found {}", type_name(v)),
        ));
    }
    if let Some(detail_type) = v.get("detail-type") {
        let Some(detail_type) = detail_type.as_str() else {
            return Err(err("$.detail-type", "expected a string"));
        };
        return match detail_type {
            CLOUDTRAIL_API_CALL => {
                let detail = v
                    .get("detail")
                    .filter(|d| d.is_object())
                    .ok_or_else(|| err("$.detail", "missing the CloudTrail record"))?;
                normalize_record(detail, "$.detail")
            }
            COMMAND_STATUS => normalize_status(v, StatusKind::Command),
            ASSOCIATION_RUN_DETAIL_TYPE => normalize_association_run(v),
            INVOCATION_STATUS => normalize_status(v, StatusKind::Invocation),
            other => Ok(Event::Skipped(Skip::OtherEventType(other.to_string()))),
        };
    }
    if v.get("eventSource").is_some() || v.get("eventName").is_some() {
        return normalize_record(v, "$");
    }
    Err(err(
        "$",
        "neither an EventBridge event (`detail-type`) nor a CloudTrail record (`eventSource`)",
    ))
}

/// Epoch milliseconds of an ISO 8601 event time.
fn epoch_ms(time: &str, path: &str) -> Result<i64, EventError> {
    values::parse_date(time).ok_or_else(|| err(path, format!("`{time}` is not an ISO 8601 time")))
}

fn partition_of(arn: Option<&str>, region: &str) -> String {
    if let Some(p) = arn
        .and_then(|a| a.split(':').nth(1))
        .filter(|p| !p.is_empty())
    {
        return p.to_string();
    }
    if region.starts_with("cn-") {
        "aws-cn".to_string()
    } else if region.starts_with("us-gov-") {
        "aws-us-gov".to_string()
    } else {
        "aws".to_string()
    }
}

/// Whether AWS owns a document of this name: AWS reserves the name prefixes `aws`, `amazon` and
/// `amzn` (SSM API reference, CreateDocument `Name`: "You can't use the following strings as
/// document name prefixes. These are reserved by AWS"), so `AWS-RunShellScript`,
/// `AWSSupport-*`, `AWSEC2-*`, `AWSFleetManager-*` and `AmazonCloudWatch-*` are AWS's, and no
/// account can own a document named so.
pub fn aws_owned_document(name: &str) -> bool {
    ["aws", "amazon", "amzn"].iter().any(|p| {
        name.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    })
}

/// The ARN IAM authorises for a document name: AWS-owned documents ([`aws_owned_document`])
/// have no account, the account's own do, and a shared document is given by ARN.
pub fn document_arn(name: &str, partition: &str, region: &str, account: &str) -> ResourceRef {
    if name.starts_with("arn:") {
        let id = name.rsplit('/').next().unwrap_or(name).to_string();
        return ResourceRef {
            kind: ResourceKind::Document,
            id,
            arn: name.to_string(),
        };
    }
    let owner = if aws_owned_document(name) {
        ""
    } else {
        account
    };
    ResourceRef {
        kind: ResourceKind::Document,
        id: name.to_string(),
        arn: format!("arn:{partition}:ssm:{region}:{owner}:document/{name}"),
    }
}

/// The resource an ARN names (a document, or an instance, managed node or session) for an
/// event of `meta`'s partition, region and account.
pub fn resource_from_arn(arn: &str, meta: &EventMeta) -> ResourceRef {
    if arn.contains(":document/") {
        document_arn(arn, &meta.partition, &meta.region, &meta.account)
    } else {
        target_arn(arn, &meta.partition, &meta.region, &meta.account)
    }
}

/// The ARN of an instance (`i-...`, an ec2 resource) or managed node (`mi-...`, an ssm
/// resource). An ARN is accepted as given.
pub fn target_arn(id: &str, partition: &str, region: &str, account: &str) -> ResourceRef {
    if id.starts_with("arn:") {
        let short = id.rsplit('/').next().unwrap_or(id);
        // Status events name managed nodes with ec2-style ARNs; IAM authorises the ssm one.
        if short.starts_with("mi-") && !id.contains(":managed-instance/") {
            return target_arn(short, partition, region, account);
        }
        let kind = if id.contains(":managed-instance/") {
            ResourceKind::ManagedNode
        } else {
            ResourceKind::Instance
        };
        return ResourceRef {
            kind,
            id: short.to_string(),
            arn: id.to_string(),
        };
    }
    if id.starts_with("mi-") {
        ResourceRef {
            kind: ResourceKind::ManagedNode,
            id: id.to_string(),
            arn: format!("arn:{partition}:ssm:{region}:{account}:managed-instance/{id}"),
        }
    } else {
        ResourceRef {
            kind: ResourceKind::Instance,
            id: id.to_string(),
            arn: format!("arn:{partition}:ec2:{region}:{account}:instance/{id}"),
        }
    }
}

/// The ARN IAM authorises ResumeSession and TerminateSession on (SSM: "Resource types defined
/// by AWS Systems Manager", `session`).
pub fn session_arn(id: &str, partition: &str, region: &str, account: &str) -> ResourceRef {
    ResourceRef {
        kind: ResourceKind::Session,
        id: id.to_string(),
        arn: format!("arn:{partition}:ssm:{region}:{account}:session/{id}"),
    }
}

/// The session document Session Manager uses when a StartSession names none (Session Manager:
/// "Start a default shell session by specifying the default session document in IAM
/// policies").
pub const DEFAULT_SESSION_DOCUMENT: &str = "SSM-SessionManagerRunShell";

/// The resource an AccessDenied message names: "... on resource: ARN because ..." or
/// "... on resource: ARN with an explicit deny ...".
pub fn denied_resource(message: &str) -> Option<String> {
    let rest = message.split_once("on resource: ")?.1;
    let arn: String = rest
        .split_whitespace()
        .next()?
        .trim_end_matches(['.', ','])
        .to_string();
    arn.starts_with("arn:").then_some(arn)
}

fn caller(ui: &Value, base: &str) -> Result<Caller, EventError> {
    if !ui.is_object() {
        return Err(err(
            base,
            format!("expected an object, found {}", type_name(ui)),
        ));
    }
    let identity_type = str_at(ui, "type").unwrap_or("Unknown").to_string();
    let session = ui.get("sessionContext");
    let issuer = session.and_then(|s| s.get("sessionIssuer"));
    let mfa = session
        .and_then(|s| s.get("attributes"))
        .and_then(|a| a.get("mfaAuthenticated"))
        .and_then(|m| match m {
            Value::Bool(b) => Some(*b),
            Value::String(s) => values::parse_bool(s),
            _ => None,
        });
    Ok(Caller {
        identity_type,
        arn: str_at(ui, "arn").map(str::to_string),
        role_arn: issuer
            .filter(|i| str_at(i, "type") == Some("Role"))
            .and_then(|i| str_at(i, "arn"))
            .map(str::to_string),
        account: str_at(ui, "accountId").map(str::to_string),
        user_name: str_at(ui, "userName").map(str::to_string),
        principal_id: str_at(ui, "principalId").map(str::to_string),
        mfa,
        invoked_by: str_at(ui, "invokedBy").map(str::to_string),
        source_identity: session
            .and_then(|s| str_at(s, "sourceIdentity"))
            .map(str::to_string),
    })
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn normalize_record(r: &Value, base: &str) -> Result<Event, EventError> {
    let source = str_at(r, "eventSource").unwrap_or_default();
    if source != "ssm.amazonaws.com" {
        return Ok(Event::Skipped(Skip::OtherService(source.to_string())));
    }
    let name = required(r, "eventName", base)?;
    let action = match name {
        "SendCommand" => Action::SendCommand,
        "StartSession" => Action::StartSession,
        "ResumeSession" => Action::ResumeSession,
        "TerminateSession" => Action::TerminateSession,
        setup if SETUP_EVENT_NAMES.contains(&setup) => return normalize_setup(r, base, setup),
        other => return Ok(Event::Skipped(Skip::OtherSsmCall(other.to_string()))),
    };
    let call = record_call(r, base, name)?;
    let outcome = call_outcome(r);

    let req = r.get("requestParameters").filter(|v| v.is_object());
    let resp = r.get("responseElements").filter(|v| v.is_object());
    let req_path = format!("{base}.requestParameters");
    let SetupCall { meta, source, .. } = call;
    let (partition, region, account) = (
        meta.partition.clone(),
        meta.region.clone(),
        meta.account.clone(),
    );
    let mut activity = Activity {
        meta,
        action,
        source,
        outcome,
        command_id: None,
        session_id: None,
        document: None,
        targets: Vec::new(),
        tag_targets: Vec::new(),
        output: None,
        origin: None,
    };
    let Some(req) = req else {
        return Err(err(
            &req_path,
            "missing `requestParameters`: the resources are unknown",
        ));
    };
    match action {
        Action::SendCommand => send_command_resources(&mut activity, req, resp, &req_path)?,
        Action::StartSession => {
            let target = required(req, "target", &req_path)?;
            activity.targets = vec![target_arn(target, &partition, &region, &account)];
            activity.document =
                str_at(req, "documentName").map(|d| document_arn(d, &partition, &region, &account));
            activity.session_id = resp
                .and_then(|r| str_at(r, "sessionId"))
                .map(str::to_string);
        }
        Action::ResumeSession | Action::TerminateSession => {
            let id = required(req, "sessionId", &req_path)?;
            activity.session_id = Some(id.to_string());
            if action == Action::ResumeSession {
                activity.targets = vec![session_arn(id, &partition, &region, &account)];
            }
        }
    }
    Ok(Event::Activity(Box::new(activity)))
}

/// How the call ended: allowed, denied (with the resource the message names, if any), or
/// failed for another reason.
fn call_outcome(r: &Value) -> CallOutcome {
    let Some(code) = str_at(r, "errorCode") else {
        return CallOutcome::Allowed;
    };
    let message = str_at(r, "errorMessage").map(str::to_string);
    if code == "AccessDenied" || code == "AccessDeniedException" {
        CallOutcome::Denied {
            code: code.to_string(),
            resource: message.as_deref().and_then(denied_resource),
            message,
        }
    } else {
        CallOutcome::Failed {
            code: code.to_string(),
            message,
        }
    }
}

/// A `SendCommand`'s document, instances (listed and `InstanceIds` targets, each once), tag
/// targets, command id and output settings.
fn send_command_resources(
    a: &mut Activity,
    req: &Value,
    resp: Option<&Value>,
    req_path: &str,
) -> Result<(), EventError> {
    let doc = required(req, "documentName", req_path)?;
    a.document = Some(document_arn(
        doc,
        &a.meta.partition,
        &a.meta.region,
        &a.meta.account,
    ));
    let mut ids = string_list(req.get("instanceIds"));
    if let Some(Value::Array(targets)) = req.get("targets") {
        for t in targets {
            let key = str_at(t, "key").unwrap_or_default();
            let values = string_list(t.get("values"));
            if key.eq_ignore_ascii_case("InstanceIds") {
                ids.extend(values);
            } else {
                a.tag_targets.push((key.to_string(), values));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    a.targets = ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .map(|id| target_arn(id, &a.meta.partition, &a.meta.region, &a.meta.account))
        .collect();
    let command = resp
        .and_then(|r| r.get("command"))
        .filter(|c| c.is_object());
    a.command_id = command
        .and_then(|c| str_at(c, "commandId"))
        .map(str::to_string);
    a.output = command.map(command_output);
    Ok(())
}

/// The facts every CloudTrail record of a call carries: who, when, where, from where.
fn record_call(r: &Value, base: &str, name: &str) -> Result<SetupCall, EventError> {
    let event_id = required(r, "eventID", base)?.to_string();
    let event_time = required(r, "eventTime", base)?.to_string();
    let event_epoch_ms = epoch_ms(&event_time, &format!("{base}.eventTime"))?;
    let region = required(r, "awsRegion", base)?.to_string();
    let ui_path = format!("{base}.userIdentity");
    let ui = r
        .get("userIdentity")
        .ok_or_else(|| err(&ui_path, "missing `userIdentity`: the caller is unknown"))?;
    let caller = caller(ui, &ui_path)?;
    let account = str_at(r, "recipientAccountId")
        .map(str::to_string)
        .or_else(|| caller.account.clone())
        .ok_or_else(|| {
            err(
                &format!("{base}.recipientAccountId"),
                "missing both `recipientAccountId` and `userIdentity.accountId`",
            )
        })?;
    let partition = partition_of(caller.arn.as_deref(), &region);
    Ok(SetupCall {
        meta: EventMeta {
            event_id,
            event_time,
            event_epoch_ms,
            account,
            region,
            partition,
        },
        event_name: name.to_string(),
        source: CallSource {
            caller,
            source_ip: str_at(r, "sourceIPAddress").map(str::to_string),
            user_agent: str_at(r, "userAgent").map(str::to_string),
            vpc_endpoint: str_at(r, "vpcEndpointId").map(str::to_string),
            tls: r.get("tlsDetails").is_some_and(Value::is_object),
        },
    })
}

/// The document name of a `taskArn` / `name` / `documentName` (a name or a document ARN).
fn document_name(name: &str) -> String {
    if name.starts_with("arn:") {
        name.rsplit('/').next().unwrap_or(name).to_string()
    } else {
        name.to_string()
    }
}

/// A record of a call that sets up runs Systems Manager starts itself ([`crate::watch::origin`]). A
/// call that failed set nothing up: it is skipped like other SSM calls.
fn normalize_setup(r: &Value, base: &str, name: &str) -> Result<Event, EventError> {
    if str_at(r, "errorCode").is_some() {
        return Ok(Event::Skipped(Skip::OtherSsmCall(name.to_string())));
    }
    let call = record_call(r, base, name)?;
    let empty = Value::Null;
    let req = r.get("requestParameters").unwrap_or(&empty);
    let resp = r.get("responseElements").unwrap_or(&empty);
    let req_path = format!("{base}.requestParameters");
    let resp_path = format!("{base}.responseElements");
    let setup = |kind, id: &str, document: Option<&str>| OriginSetup {
        kind,
        id: id.to_string(),
        window_id: None,
        document: document.map(document_name),
        service_role: None,
        call: call.clone(),
    };
    let setups = match name {
        "CreateAssociation" | "UpdateAssociation" => {
            let path = format!("{resp_path}.associationDescription");
            let d = resp
                .get("associationDescription")
                .filter(|d| d.is_object())
                .ok_or_else(|| err(&path, "missing the association's description"))?;
            let id = required(d, "associationId", &path)?;
            let doc = str_at(d, "name").or_else(|| str_at(req, "name"));
            vec![setup(OriginKind::Association, id, doc)]
        }
        "CreateAssociationBatch" => {
            let path = format!("{resp_path}.successful");
            let Some(Value::Array(done)) = resp.get("successful") else {
                return Err(err(&path, "missing the associations created"));
            };
            let mut out = Vec::new();
            for (i, d) in done.iter().enumerate() {
                let id = required(d, "associationId", &format!("{path}[{i}]"))?;
                out.push(setup(OriginKind::Association, id, str_at(d, "name")));
            }
            out
        }
        "RegisterTaskWithMaintenanceWindow" | "UpdateMaintenanceWindowTask" => {
            let field = |k: &str| str_at(resp, k).or_else(|| str_at(req, k));
            // Only Run Command tasks call SendCommand themselves.
            if field("taskType").is_some_and(|t| t != "RUN_COMMAND") {
                return Ok(Event::Skipped(Skip::OtherSsmCall(name.to_string())));
            }
            let id = field("windowTaskId").ok_or_else(|| {
                err(
                    &format!("{resp_path}.windowTaskId"),
                    "missing `windowTaskId`",
                )
            })?;
            let window = field("windowId")
                .ok_or_else(|| err(&format!("{req_path}.windowId"), "missing `windowId`"))?;
            let mut s = setup(OriginKind::MaintenanceWindow, id, field("taskArn"));
            s.window_id = Some(window.to_string());
            s.service_role = Some(field("serviceRoleArn").map_or_else(
                || service_linked_role(&call.meta.partition, &call.meta.account),
                str::to_string,
            ));
            vec![s]
        }
        "StartAutomationExecution" => {
            let id = required(resp, "automationExecutionId", &resp_path)?;
            let mut s = setup(OriginKind::Automation, id, str_at(req, "documentName"));
            s.service_role = req
                .get("parameters")
                .and_then(|p| p.get("AutomationAssumeRole"))
                .and_then(|v| match v {
                    Value::Array(a) => a.first().and_then(Value::as_str),
                    Value::String(s) => Some(s.as_str()),
                    _ => None,
                })
                .map(str::to_string);
            vec![s]
        }
        other => return Ok(Event::Skipped(Skip::OtherSsmCall(other.to_string()))),
    };
    Ok(Event::Origin(Box::new(OriginRecord { call, setups })))
}

/// "EC2 State Manager Instance Association State Change": one association run on one node.
/// The fields every SSM EventBridge event carries, its `resources`, and its `detail` object.
struct Envelope<'v> {
    meta: EventMeta,
    resources: Vec<String>,
    detail: &'v Value,
}

fn envelope<'v>(v: &'v Value, no_detail: &str) -> Result<Envelope<'v>, EventError> {
    let event_time = required(v, "time", "$")?.to_string();
    let region = required(v, "region", "$")?.to_string();
    let resources = string_list(v.get("resources"));
    let partition = partition_of(resources.first().map(String::as_str), &region);
    Ok(Envelope {
        meta: EventMeta {
            event_id: required(v, "id", "$")?.to_string(),
            event_epoch_ms: epoch_ms(&event_time, "$.time")?,
            event_time,
            account: required(v, "account", "$")?.to_string(),
            region,
            partition,
        },
        resources,
        detail: v
            .get("detail")
            .filter(|d| d.is_object())
            .ok_or_else(|| err("$.detail", no_detail))?,
    })
}

fn normalize_association_run(v: &Value) -> Result<Event, EventError> {
    let Envelope { meta, detail, .. } = envelope(v, "missing the association detail")?;
    let association_id = required(detail, "association-id", "$.detail")?.to_string();
    let instance = required(detail, "instance-id", "$.detail")?;
    let document = required(detail, "document-name", "$.detail")?;
    let (partition, region, account) = (&meta.partition, &meta.region, &meta.account);
    Ok(Event::AssociationRun(Box::new(AssociationRun {
        association_id,
        document: document_arn(document, partition, region, account),
        document_version: str_at(detail, "document-version").map(str::to_string),
        target: target_arn(instance, partition, region, account),
        status: str_at(detail, "status").map(str::to_string),
        meta,
    })))
}

fn normalize_status(v: &Value, kind: StatusKind) -> Result<Event, EventError> {
    let Envelope {
        meta,
        resources,
        detail,
    } = envelope(v, "missing the status detail")?;
    let command_id = required(detail, "command-id", "$.detail")?.to_string();
    let (partition, region, account) = (&meta.partition, &meta.region, &meta.account);
    let mut ids: Vec<String> = resources;
    if kind == StatusKind::Invocation {
        if let Some(instance) = str_at(detail, "instance-id") {
            if !ids
                .iter()
                .any(|r| r == instance || r.ends_with(&format!("/{instance}")))
            {
                ids.push(instance.to_string());
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let targets: Vec<ResourceRef> = ids
        .iter()
        .map(|id| target_arn(id, partition, region, account))
        .filter(|t| seen.insert(t.id.clone()))
        .collect();
    if targets.is_empty() && kind == StatusKind::Invocation {
        return Err(err(
            "$.detail.instance-id",
            "the invocation names no instance",
        ));
    }
    Ok(Event::Status(StatusChange {
        kind,
        command_id,
        document_name: str_at(detail, "document-name").map(str::to_string),
        status: str_at(detail, "status").map(str::to_string),
        targets,
        meta,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(event_name: &str, req: Value, resp: Value) -> Value {
        json!({
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLEID:alice",
                "arn": "arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice",
                "accountId": "111122223333",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/JuniorEngineer", "userName": "JuniorEngineer"},
                    "attributes": {"creationDate": "2026-11-20T08:00:00Z", "mfaAuthenticated": "false"}
                }
            },
            "eventTime": "2026-11-20T09:08:56Z",
            "eventSource": "ssm.amazonaws.com",
            "eventName": event_name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.10",
            "requestParameters": req,
            "responseElements": resp,
            "eventID": "11111111-2222-3333-4444-555555555555",
            "recipientAccountId": "111122223333",
            "tlsDetails": {"tlsVersion": "TLSv1.3"}
        })
    }

    fn activity(v: &Value) -> Activity {
        match normalize(v).unwrap() {
            Event::Activity(a) => *a,
            other => panic!("not an activity: {other:?}"),
        }
    }

    #[test]
    fn send_command_resources_and_caller() {
        let r = record(
            "SendCommand",
            json!({"documentName": "AWS-RunShellScript", "instanceIds": ["i-0a1", "mi-0b2", "i-0a1"], "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
            json!({"command": {"commandId": "c-1", "status": "Pending"}}),
        );
        let a = activity(&r);
        assert_eq!(a.action, Action::SendCommand);
        assert_eq!(
            a.document.as_ref().unwrap().arn,
            "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"
        );
        let arns: Vec<&str> = a.targets.iter().map(|t| t.arn.as_str()).collect();
        assert_eq!(
            arns,
            [
                "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1",
                "arn:aws:ssm:us-east-1:111122223333:managed-instance/mi-0b2"
            ],
            "duplicates removed, managed nodes are ssm resources"
        );
        assert_eq!(a.command_id.as_deref(), Some("c-1"));
        assert_eq!(
            a.source.caller.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/JuniorEngineer")
        );
        assert_eq!(a.source.caller.mfa, Some(false));
        assert!(a.source.tls);
        assert_eq!(a.outcome, CallOutcome::Allowed);
        assert_eq!(a.meta.event_epoch_ms, 1_795_165_736_000);
    }

    #[test]
    fn documents_owned_by_aws_the_account_or_shared() {
        assert_eq!(
            document_arn("AmazonCloudWatch-ManageAgent", "aws", "eu-west-1", "1").arn,
            "arn:aws:ssm:eu-west-1::document/AmazonCloudWatch-ManageAgent"
        );
        assert_eq!(
            document_arn("Ops-Restart", "aws", "eu-west-1", "1").arn,
            "arn:aws:ssm:eu-west-1:1:document/Ops-Restart"
        );
        let shared = document_arn(
            "arn:aws:ssm:us-east-1:999988887777:document/Shared",
            "aws",
            "us-east-1",
            "1",
        );
        assert_eq!(
            shared.arn,
            "arn:aws:ssm:us-east-1:999988887777:document/Shared"
        );
        assert_eq!(shared.id, "Shared");
    }

    /// SSM CreateDocument reserves the prefixes `aws`, `amazon` and `amzn` for AWS's own
    /// documents; their ARNs have no account.
    #[test]
    fn aws_reserved_document_prefixes_are_aws_owned() {
        for name in [
            "AWSSupport-RunEC2RescueForWindowsTool",
            "AWSEC2-ConfigureSTIG",
            "AWSFleetManager-GetDiskInformation",
            "AmazonCloudWatch-ManageAgent",
            "AWS-RunShellScript",
            "amzn-linux-hardening",
        ] {
            assert_eq!(
                document_arn(name, "aws", "us-east-1", "111122223333").arn,
                format!("arn:aws:ssm:us-east-1::document/{name}"),
                "{name}"
            );
        }
        assert_eq!(
            document_arn("Ops-AWSRestart", "aws", "us-east-1", "1").arn,
            "arn:aws:ssm:us-east-1:1:document/Ops-AWSRestart"
        );
    }

    #[test]
    fn tag_targets_name_no_instance() {
        let r = record(
            "SendCommand",
            json!({"documentName": "AWS-RunShellScript", "targets": [{"key": "tag:Env", "values": ["prod"]}, {"key": "InstanceIds", "values": ["i-9"]}]}),
            json!({"command": {"commandId": "c-2"}}),
        );
        let a = activity(&r);
        assert_eq!(
            a.tag_targets,
            vec![("tag:Env".to_string(), vec!["prod".to_string()])]
        );
        assert_eq!(a.targets.len(), 1, "InstanceIds targets are instances");
    }

    #[test]
    fn access_denied_names_the_resource() {
        let mut r = record(
            "SendCommand",
            json!({"documentName": "AWS-RunShellScript", "instanceIds": ["i-2"]}),
            Value::Null,
        );
        r["errorCode"] = json!("AccessDenied");
        r["errorMessage"] = json!("User: arn:aws:sts::111122223333:assumed-role/JuniorEngineer/alice is not authorized to perform: ssm:SendCommand on resource: arn:aws:ec2:us-east-1:111122223333:instance/i-2 because no identity-based policy allows the ssm:SendCommand action");
        let a = activity(&r);
        match a.outcome {
            CallOutcome::Denied { code, resource, .. } => {
                assert_eq!(code, "AccessDenied");
                assert_eq!(
                    resource.as_deref(),
                    Some("arn:aws:ec2:us-east-1:111122223333:instance/i-2")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.command_id, None);
        assert_eq!(
            denied_resource("... on resource: arn:aws:ssm:us-east-1::document/AWS-RunShellScript with an explicit deny in a service control policy").as_deref(),
            Some("arn:aws:ssm:us-east-1::document/AWS-RunShellScript")
        );
        assert_eq!(denied_resource("no resource here"), None);
    }

    #[test]
    fn other_errors_are_failures_not_denials() {
        let mut r = record(
            "SendCommand",
            json!({"documentName": "AWS-RunShellScript", "instanceIds": ["i-2"]}),
            Value::Null,
        );
        r["errorCode"] = json!("InvalidInstanceId");
        assert!(matches!(activity(&r).outcome, CallOutcome::Failed { .. }));
    }

    #[test]
    fn start_session_target_and_document() {
        let r = record(
            "StartSession",
            json!({"target": "i-0a1", "documentName": "SSM-SessionManagerRunShell"}),
            json!({"sessionId": "alice-0a1b2c3d4e5f6a7b8", "tokenValue": "Value hidden due to security reasons."}),
        );
        let a = activity(&r);
        assert_eq!(
            a.targets[0].arn,
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0a1"
        );
        assert_eq!(
            a.document.unwrap().arn,
            "arn:aws:ssm:us-east-1:111122223333:document/SSM-SessionManagerRunShell"
        );
        assert_eq!(a.session_id.as_deref(), Some("alice-0a1b2c3d4e5f6a7b8"));
    }

    #[test]
    fn resume_and_terminate_session_name_the_session() {
        let r = record(
            "ResumeSession",
            json!({"sessionId": "alice-0a1b2c3d4e5f6a7b8"}),
            json!({"sessionId": "alice-0a1b2c3d4e5f6a7b8", "streamUrl": "wss://x", "tokenValue": "Value hidden due to security reasons."}),
        );
        let a = activity(&r);
        assert_eq!(a.action, Action::ResumeSession);
        assert_eq!(a.document, None);
        assert_eq!(
            a.targets,
            vec![ResourceRef {
                kind: ResourceKind::Session,
                id: "alice-0a1b2c3d4e5f6a7b8".into(),
                arn: "arn:aws:ssm:us-east-1:111122223333:session/alice-0a1b2c3d4e5f6a7b8".into()
            }]
        );
        let t = record(
            "TerminateSession",
            json!({"sessionId": "alice-0a1b2c3d4e5f6a7b8"}),
            json!({"sessionId": "alice-0a1b2c3d4e5f6a7b8"}),
        );
        let a = activity(&t);
        assert_eq!(a.action, Action::TerminateSession);
        assert!(!a.action.is_judged());
        assert!(a.targets.is_empty());
        assert_eq!(a.session_id.as_deref(), Some("alice-0a1b2c3d4e5f6a7b8"));
        let bad = record("ResumeSession", json!({}), json!({}));
        assert_eq!(
            normalize(&bad).unwrap_err().path,
            "$.requestParameters.sessionId"
        );
    }

    #[test]
    fn envelopes_and_skips() {
        let r = record(
            "SendCommand",
            json!({"documentName": "AWS-RunShellScript", "instanceIds": ["i-1"]}),
            json!({}),
        );
        let env = json!({"version": "0", "id": "e-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ssm", "detail": r});
        assert!(matches!(normalize(&env), Ok(Event::Activity(_))));
        let other = record("PutParameter", json!({"name": "x"}), json!({}));
        assert_eq!(
            normalize(&other).unwrap(),
            Event::Skipped(Skip::OtherSsmCall("PutParameter".into()))
        );
        let s3 = json!({"eventSource": "s3.amazonaws.com", "eventName": "PutBucketTagging"});
        assert_eq!(
            normalize(&s3).unwrap(),
            Event::Skipped(Skip::OtherService("s3.amazonaws.com".into()))
        );
        let odd = json!({"detail-type": "EC2 Instance State-change Notification", "detail": {}});
        assert!(matches!(
            normalize(&odd),
            Ok(Event::Skipped(Skip::OtherEventType(_)))
        ));
    }

    #[test]
    fn malformed_events_name_the_path() {
        let mut r = record(
            "SendCommand",
            json!({"documentName": "AWS-RunShellScript"}),
            json!({}),
        );
        r.as_object_mut().unwrap().remove("userIdentity");
        let env = json!({"detail-type": "AWS API Call via CloudTrail", "detail": r});
        let e = normalize(&env).unwrap_err();
        assert_eq!(e.path, "$.detail.userIdentity");
        let no_req = record("SendCommand", Value::Null, Value::Null);
        assert_eq!(normalize(&no_req).unwrap_err().path, "$.requestParameters");
        let bad_time = {
            let mut r = record("StartSession", json!({"target": "i-1"}), json!({}));
            r["eventTime"] = json!("yesterday");
            r
        };
        assert_eq!(normalize(&bad_time).unwrap_err().path, "$.eventTime");
        assert_eq!(normalize(&json!([1])).unwrap_err().path, "$");
        assert_eq!(normalize(&json!({"hello": 1})).unwrap_err().path, "$");
    }

    #[test]
    fn status_events_with_parameter_arrays() {
        let cmd = json!({
            "version": "0", "id": "s-1", "detail-type": "EC2 Command Status-change Notification", "source": "aws.ssm",
            "account": "111122223333", "time": "2026-11-20T09:09:30Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:111122223333:instance/i-2", "arn:aws:ec2:us-east-1:111122223333:instance/i-3"],
            "detail": {"command-id": "c-2", "document-name": "AWS-RunShellScript", "expire-after": "2026-11-20T11:09:30Z",
                       "parameters": {"commands": ["uptime"], "executionTimeout": ["3600"]}, "requested-date-time": "2026-11-20T09:08:56Z", "status": "Success"}
        });
        let Event::Status(s) = normalize(&cmd).unwrap() else {
            panic!()
        };
        assert_eq!(s.kind, StatusKind::Command);
        assert_eq!(
            s.targets.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["i-2", "i-3"]
        );
        let inv = json!({
            "version": "0", "id": "s-2", "detail-type": "EC2 Command Invocation Status-change Notification", "source": "aws.ssm",
            "account": "111122223333", "time": "2026-11-20T09:09:00Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:111122223333:instance/mi-0123"],
            "detail": {"command-id": "c-2", "document-name": "AWS-RunShellScript", "instance-id": "mi-0123", "status": "InProgress"}
        });
        let Event::Status(s) = normalize(&inv).unwrap() else {
            panic!()
        };
        assert_eq!(s.targets.len(), 1, "the instance-id repeats the resource");
        assert_eq!(
            s.targets[0].arn,
            "arn:aws:ssm:us-east-1:111122223333:managed-instance/mi-0123"
        );
        let no_cmd = json!({"id": "s-3", "detail-type": "EC2 Command Invocation Status-change Notification", "time": "2026-11-20T09:09:00Z", "region": "us-east-1", "account": "1", "detail": {}});
        assert_eq!(normalize(&no_cmd).unwrap_err().path, "$.detail.command-id");
    }

    /// Lambda's failure destination wraps the event ("Capturing records of Lambda asynchronous
    /// invocations"); a redriven record is the same event.
    #[test]
    fn failure_destination_records_unwrap_to_their_event() {
        let event = serde_json::json!({"id": "e-1", "detail-type": "Scheduled Event"});
        let record = serde_json::json!({
            "version": "1.0",
            "timestamp": "2026-11-20T09:10:00.000Z",
            "requestContext": {
                "requestId": "a1b2",
                "functionArn": "arn:aws:lambda:us-east-1:111122223333:function:tagwatch-CloudTrailWatcher-Ab12:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": "RetryableAwsError", "errorMessage": "x"}
        });
        let r = destination_record(&record).unwrap();
        assert_eq!(
            r.function.as_deref(),
            Some("tagwatch-CloudTrailWatcher-Ab12")
        );
        assert_eq!(r.condition.as_deref(), Some("RetriesExhausted"));
        assert_eq!(r.invoke_count, Some(3));
        assert_eq!(unwrap_destination(&record), &event);
        assert_eq!(
            unwrap_destination(&event),
            &event,
            "a plain event is itself"
        );
        assert!(destination_record(&serde_json::json!({"requestPayload": {}})).is_none());
    }
}
