//! The small async ports the invocation pipeline talks to. Each has one AWS adapter
//! (`crate::aws`) and one in-memory fake (`crate::fakes`, for the handlers' unit tests).

use std::collections::HashMap;
use std::future::Future;

use tagwatch_aws::dynamo::Persisted;
use tagwatch_aws::AdapterError;
use tagwatch_core::correlate::Parked;
use tagwatch_core::event::Event;
use tagwatch_core::journal::{Change, JournalStore};
use tagwatch_core::tags::Inventory;
use tagwatch_core::verdict::Finding;

/// Why a port call failed. Every variant fails the invocation, so that Lambda retries it and
/// the failure destination keeps the event when retries run out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Throttling, 5xx, network: retrying later may succeed.
    #[error("{0}")]
    Transient(String),
    /// Another invocation changed the same state first; a retry decides again.
    #[error("{0}")]
    Conflict(String),
}

impl From<AdapterError> for PortError {
    fn from(e: AdapterError) -> Self {
        match e {
            AdapterError::Conflict { .. } => PortError::Conflict(e.to_string()),
            other => PortError::Transient(other.to_string()),
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// Correlation, idempotency and the findings outbox (DynamoDB).
pub trait State {
    /// The state one event's decision needs.
    fn gather(&self, event: &Event) -> impl Future<Output = PortResult<JournalStore>> + Send;
    /// Writes back what the decision changed (the event's sighting last).
    fn persist(&self, changes: Vec<Change>) -> impl Future<Output = PortResult<Persisted>> + Send;
    /// Stages findings in an event's outbox.
    fn stage(
        &self,
        event_id: &str,
        findings: &[Finding],
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Removes one staged finding.
    fn unstage(
        &self,
        event_id: &str,
        finding_id: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// The findings staged for an event.
    fn staged(&self, event_id: &str) -> impl Future<Output = PortResult<Vec<Finding>>> + Send;
    /// The sinks each finding already reached.
    fn delivered(
        &self,
        finding_ids: &[String],
    ) -> impl Future<Output = PortResult<HashMap<String, Vec<String>>>> + Send;
    /// Records that findings reached a sink.
    fn mark_delivered(
        &self,
        finding_ids: &[String],
        sink: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Invocations parked before `cutoff_ms` (event time).
    fn parked_before(&self, cutoff_ms: i64)
        -> impl Future<Output = PortResult<Vec<Parked>>> + Send;
    /// Deletes a parked invocation; false when it was already gone.
    fn take_parked(&self, parked: &Parked) -> impl Future<Output = PortResult<bool>> + Send;
}

/// Live tags of instances and managed nodes; ids it does not know are left out (unknown).
pub trait Tags {
    fn gather(&self, ids: &[String]) -> impl Future<Output = PortResult<Inventory>> + Send;
}

/// The findings log group (every finding, one JSON log event each).
pub trait FindingLog {
    fn put(&self, findings: &[Finding]) -> impl Future<Output = PortResult<()>> + Send;
}

/// The findings bus (violations, spikes, unevaluated).
pub trait AlertBus {
    /// Sends the alert findings among `findings`; returns how many were sent.
    fn publish(&self, findings: &[Finding]) -> impl Future<Output = PortResult<usize>> + Send;
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

/// The account and region whose tags the tag adapter can see (its credentials' account, its
/// client's region). Instances of other accounts or regions (events forwarded from an
/// organisation) have *unknown* tags, never "none": their runs are reported `unevaluated`
/// instead of judged as untagged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagScope {
    /// `None`: any account.
    pub account: Option<String>,
    /// `None`: any region.
    pub region: Option<String>,
}

impl TagScope {
    pub fn covers(&self, account: &str, region: &str) -> bool {
        self.account.as_deref().is_none_or(|a| a == account)
            && self.region.as_deref().is_none_or(|r| r == region)
    }
}

/// Everything a function talks to.
#[derive(Debug)]
pub struct Ports<S, T, L, B, Q> {
    pub state: S,
    pub tags: T,
    pub log: L,
    pub bus: B,
    /// `None`: no quarantine queue is configured; a malformed event then fails the invocation
    /// so that the failure destination keeps it.
    pub quarantine: Option<Q>,
    /// Whose tags `tags` can see.
    pub tag_scope: TagScope,
}
