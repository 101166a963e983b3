//! The small async ports the invocation pipeline talks to. Each has one AWS adapter
//! (`crate::aws`) and one in-memory fake (`crate::fakes`, for the handlers' unit tests). Only
//! core types cross them.

use std::collections::HashMap;
use std::future::Future;

use tagwatch_core::intent::inventory::Inventory;
use tagwatch_core::watch::asff::{AsffFinding, Home};
use tagwatch_core::watch::correlation::{DenialNote, DenialWindow, Parked};
use tagwatch_core::watch::dedupe::GroupEntry;
use tagwatch_core::watch::event::{AssociationRun, Event};
use tagwatch_core::watch::finding::Finding;
use tagwatch_core::watch::journal::{Change, DueParked, JournalStore, Lease, Persisted};
use tagwatch_core::watch::outputs::BusEntry;
use tagwatch_core::watch::silence::SourceSeen;
use tagwatch_core::watch::tags::TagQuery;

/// Why a port call failed, by what a retry can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Throttling, 5xx, timeouts, network, a concurrent update: Lambda's retry may succeed.
    #[error(transparent)]
    Retryable(Cause),
    /// Access denied on an output, a missing log group or bus, validation, an item too
    /// large: the event is kept with the error named, not retried blindly.
    #[error(transparent)]
    Permanent(Cause),
    /// Stored state that cannot be read back: kept and named, never retried blindly.
    #[error(transparent)]
    Corrupt(Cause),
}

/// What a port error says, and the adapter's error behind it (whose own chain goes on to the
/// SDK's), so nothing between the SDK and the handler flattens the cause into text only.
#[derive(Debug, Clone)]
pub struct Cause {
    message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Cause {
    /// A cause with the error behind it.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Cause {
            message: message.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Cause {
            message,
            source: None,
        }
    }
}

/// Equal when they say the same.
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for Cause {}

pub type PortResult<T> = Result<T, PortError>;

/// Correlation, idempotency, AccessDenied windows and the findings outbox (DynamoDB).
pub trait State {
    /// Writes one AccessDenied call of `caller` (idempotent), before the decision, with what
    /// it asked for and the session that made it when the window counts a role's sessions
    /// together.
    fn record_denial(
        &self,
        caller: &str,
        event_id: &str,
        event_ms: i64,
        note: &DenialNote,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// The caller's calls nearest `event_ms` (at most `per_side` on each side within
    /// `window_ms`) and its episode (unless `event_id` opened it: a retry decides it again).
    fn denials(
        &self,
        caller: &str,
        event_id: &str,
        event_ms: i64,
        window_ms: i64,
        per_side: usize,
    ) -> impl Future<Output = PortResult<DenialWindow>> + Send;
    /// The state one event's decision needs (sighting, command record, claims, parked); claims
    /// the event itself holds (an earlier attempt's) are left out, so a retry decides again.
    fn gather(&self, event: &Event) -> impl Future<Output = PortResult<JournalStore>> + Send;
    /// Whether a command's SendCommand record is stored.
    fn has_record(&self, command_id: &str) -> impl Future<Output = PortResult<bool>> + Send;
    /// A command's record, claims (but those `owner` holds), and parked and overdue
    /// invocations.
    fn gather_command(
        &self,
        command_id: &str,
        owner: &str,
    ) -> impl Future<Output = PortResult<JournalStore>> + Send;
    /// Writes back what a decision of `owner` (the event whose outbox holds its findings)
    /// changed, the sightings last.
    fn persist(
        &self,
        owner: &str,
        changes: Vec<Change>,
    ) -> impl Future<Output = PortResult<Persisted>> + Send;
    /// Records grouped findings in their groups' dedupe windows (idempotent) and returns each
    /// one's `count`: 1 for the finding that owns its window (the first decided; a retry of it
    /// owns it again), else how many of the group's findings the window has seen, at least 2
    /// ([`tagwatch_core::watch::dedupe`]).
    fn dedupe(&self, entries: &[GroupEntry]) -> impl Future<Output = PortResult<Vec<u64>>> + Send;
    /// Remembers that an account and region sent an event at `event_ms` (only moves forward;
    /// an adapter may skip writes that would move it by less than a minute).
    fn saw_source(
        &self,
        account: &str,
        region: &str,
        partition: &str,
        event_ms: i64,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Every account and region that has sent an event, with its last event time.
    fn sources(&self) -> impl Future<Output = PortResult<Vec<SourceSeen>>> + Send;
    /// Stages findings in an outbox.
    fn stage(
        &self,
        outbox: &str,
        findings: &[Finding],
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// The findings staged in an outbox.
    fn staged(&self, outbox: &str) -> impl Future<Output = PortResult<Vec<Finding>>> + Send;
    /// The sinks (of `sinks`) each finding already reached.
    fn delivered(
        &self,
        finding_ids: &[String],
        sinks: &[&str],
    ) -> impl Future<Output = PortResult<HashMap<String, Vec<String>>>> + Send;
    /// Takes each finding's delivery lease for `holder` for `lease_ms`.
    fn lease(
        &self,
        finding_ids: &[String],
        holder: &str,
        lease_ms: i64,
    ) -> impl Future<Output = PortResult<Vec<Lease>>> + Send;
    /// Gives back leases `holder` took (after a failed delivery).
    fn release(
        &self,
        finding_ids: &[String],
        holder: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Records that findings reached a sink.
    fn mark_delivered(
        &self,
        finding_ids: &[String],
        sink: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Invocations due for the sweep (at most `limit`).
    fn due_parked(
        &self,
        cutoff_ms: i64,
        limit: usize,
    ) -> impl Future<Output = PortResult<Vec<DueParked>>> + Send;
    /// Turns a parked invocation into an overdue marker; false when it was gone.
    fn take_overdue(&self, parked: &Parked) -> impl Future<Output = PortResult<bool>> + Send;
    /// The overdue invocations' findings are staged.
    fn reported_overdue(&self, parked: &[Parked]) -> impl Future<Output = PortResult<()>> + Send;
    /// Removes parked invocations whose pair was evaluated.
    fn drop_parked(&self, parked: &[Parked]) -> impl Future<Output = PortResult<()>> + Send;
    /// The association runs recorded on a node for a document.
    fn association_runs(
        &self,
        instance: &str,
        document: &str,
    ) -> impl Future<Output = PortResult<Vec<AssociationRun>>> + Send;
}

/// Live tags of instances and managed nodes in the query's account and region (this
/// deployment's own, or a member account's through its reader role); ids it does not know are
/// left out (unknown).
pub trait TagSource {
    fn gather(&self, query: &TagQuery) -> impl Future<Output = PortResult<Gathered>> + Send;
}

/// What a tag lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gathered {
    Tags(Inventory),
    /// The member account's reader role could not be assumed (AccessDenied): its tags cannot
    /// be read, and its runs are `unevaluated` with cause `no_access`.
    NoAccess {
        account: String,
        why: String,
    },
}

/// The findings log group (every finding, one JSON log event each).
pub trait FindingLog {
    /// Writes one batch of messages (within `PutLogEvents`' limits).
    fn put(&self, messages: &[String]) -> impl Future<Output = PortResult<()>> + Send;
    /// The log group written to, which findings link to (Logs Insights).
    fn group(&self) -> &str;
}

/// The findings bus (violations, spikes, unevaluated).
pub trait AlertBus {
    /// Sends one batch of entries; per entry, `None` when accepted or why not.
    fn publish(
        &self,
        entries: &[BusEntry],
    ) -> impl Future<Output = PortResult<Vec<Option<String>>>> + Send;
}

/// AWS Security Hub, when the deployment exports findings there (ASFF, `BatchImportFindings`).
pub trait FindingsHub {
    /// Imports one batch (at most [`tagwatch_core::watch::asff::IMPORT_BATCH`] findings); per
    /// finding, `None` when imported (created or updated) or why not.
    fn import(
        &self,
        findings: &[AsffFinding],
    ) -> impl Future<Output = PortResult<Vec<Option<String>>>> + Send;
}

/// The optional Security Hub sink: the port and where findings are imported.
#[derive(Debug, Clone)]
pub struct SecurityHub<H> {
    pub port: H,
    pub home: Home,
}

/// Where malformed or unexpected events are kept.
pub trait Quarantine {
    fn keep(
        &self,
        raw: &str,
        reason: &str,
        function: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// Whose tags the tag adapter can read: this deployment's own account and region (its
/// credentials' account, its client's region), and the member accounts in scope, in any
/// region, through their reader role. Instances elsewhere (events forwarded from an account
/// out of scope) have *unknown* tags, never "none": their runs are reported `unevaluated`
/// (`out_of_scope`) instead of judged as untagged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagScope {
    /// `None`: any account.
    pub account: Option<String>,
    /// `None`: any region.
    pub region: Option<String>,
    /// Member accounts read through their reader role.
    pub members: Members,
}

/// Which member accounts a deployment reads (`TAGWATCH_MEMBER_ACCOUNTS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Members {
    /// None: only the deployment's own account (the default).
    #[default]
    None,
    /// These accounts.
    Only(std::collections::BTreeSet<String>),
    /// Every account whose events reach the deployment (the organisation's, which the bus
    /// policy admits).
    All,
}

impl TagScope {
    /// Whether tags in this account and region are read (at home, or in a member account).
    pub fn covers(&self, account: &str, region: &str) -> bool {
        let home = self.account.as_deref().is_none_or(|a| a == account)
            && self.region.as_deref().is_none_or(|r| r == region);
        home || self.is_member(account)
    }

    /// Whether an account is a member account read through its reader role.
    pub fn is_member(&self, account: &str) -> bool {
        if self.account.as_deref() == Some(account) {
            return false;
        }
        match &self.members {
            Members::None => false,
            Members::Only(accounts) => accounts.contains(account),
            Members::All => true,
        }
    }
}

/// One set of ports, named once: the AWS adapters ([`crate::aws::Aws`]) or the in-memory fakes
/// ([`crate::fakes::Fakes`]). The pipeline and the handlers are generic over it.
pub trait Platform {
    type State: State;
    type Tags: TagSource;
    type Log: FindingLog;
    type Bus: AlertBus;
    type Quarantine: Quarantine;
    type Hub: FindingsHub;
}

/// Everything a function talks to.
pub struct Ports<P: Platform> {
    pub state: P::State,
    pub tags: P::Tags,
    pub log: P::Log,
    pub bus: P::Bus,
    /// `None`: no quarantine queue is configured; a malformed event then fails the invocation
    /// so that the failure destination keeps it.
    pub quarantine: Option<P::Quarantine>,
    /// `None`: findings are not exported to Security Hub (the default).
    pub security_hub: Option<SecurityHub<P::Hub>>,
    /// Whose tags `tags` can see.
    pub tag_scope: TagScope,
}

/// An object of an archive folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveObject {
    pub key: String,
    pub size: u64,
}

/// CloudTrail archives in S3, and the backfill's results bucket.
pub trait Archive {
    /// The day folders of `bucket`/`prefix` that `selection` admits, in key order (an error
    /// when the prefix holds no CloudTrail layout).
    fn days(
        &self,
        bucket: &str,
        prefix: &str,
        selection: &tagwatch_core::archive::Selection,
    ) -> impl Future<Output = PortResult<Vec<tagwatch_core::archive::DayPrefix>>> + Send;
    /// The log files of calls in one folder, in key order.
    fn objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> impl Future<Output = PortResult<Vec<ArchiveObject>>> + Send;
    /// An object's bytes.
    fn get(&self, bucket: &str, key: &str) -> impl Future<Output = PortResult<Vec<u8>>> + Send;
    /// Writes an object whole.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Whether an object exists.
    fn exists(&self, bucket: &str, key: &str) -> impl Future<Output = PortResult<bool>> + Send;
}
