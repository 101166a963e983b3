//! The ports over tagwatch's AWS adapters, and the cold-start wiring that builds them.

use std::collections::HashMap;

use tagwatch_aws::bus::FindingsBus;
use tagwatch_aws::dynamo::DynamoCorrelation;
use tagwatch_aws::hub::FindingsHubImport;
use tagwatch_aws::intent::{load_intent, IntentClients, IntentLoadError};
use tagwatch_aws::logs::FindingsLogStream;
use tagwatch_aws::members::{MemberTags, MemberTagsFound};
use tagwatch_aws::quarantine::QuarantineQueue;
use tagwatch_aws::tags::LiveTags;
use tagwatch_aws::{
    aws_sdk_cloudwatchlogs, aws_sdk_dynamodb, aws_sdk_ec2, aws_sdk_eventbridge, aws_sdk_s3,
    aws_sdk_securityhub, aws_sdk_sqs, aws_sdk_ssm, AdapterError,
};
use tagwatch_core::watch::asff::AsffFinding;
use tagwatch_core::watch::correlation::{DenialNote, DenialWindow, Parked};
use tagwatch_core::watch::dedupe::GroupEntry;
use tagwatch_core::watch::event::{AssociationRun, Event};
use tagwatch_core::watch::finding::Finding;
use tagwatch_core::watch::journal::{Change, DueParked, JournalStore, Lease, Persisted};
use tagwatch_core::watch::outputs::BusEntry;
use tagwatch_core::watch::silence::SourceSeen;
use tagwatch_core::watch::tags::TagQuery;
use tagwatch_core::Intent;

use crate::clock::now_ms;
use crate::config::Config;
use crate::ports::{
    AlertBus, Cause, FindingLog, FindingsHub, Gathered, Members, Platform, PortError, PortResult,
    Ports, Quarantine, SecurityHub, State, TagScope, TagSource,
};

/// The AWS adapters of a deployed function.
#[derive(Debug, Clone, Copy)]
pub struct Aws;

impl Platform for Aws {
    type State = DynamoCorrelation;
    type Tags = OrgTags;
    type Log = FindingsLogStream;
    type Bus = FindingsBus;
    type Quarantine = QuarantineQueue;
    type Hub = FindingsHubImport;
}

/// The ports of a deployed function.
pub type AwsPorts = Ports<Aws>;

impl From<AdapterError> for PortError {
    fn from(e: AdapterError) -> Self {
        let corrupt = matches!(e, AdapterError::Corrupt { .. });
        let retryable = e.is_retryable();
        let cause = Cause::with_source(e.to_string(), e);
        if corrupt {
            PortError::Corrupt(cause)
        } else if retryable {
            PortError::Retryable(cause)
        } else {
            PortError::Permanent(cause)
        }
    }
}

impl State for DynamoCorrelation {
    async fn record_denial(
        &self,
        caller: &str,
        event_id: &str,
        event_ms: i64,
        note: &DenialNote,
    ) -> PortResult<()> {
        Ok(DynamoCorrelation::record_denial(self, caller, event_id, event_ms, note).await?)
    }
    async fn denials(
        &self,
        caller: &str,
        event_id: &str,
        event_ms: i64,
        window_ms: i64,
        per_side: usize,
    ) -> PortResult<DenialWindow> {
        Ok(
            DynamoCorrelation::denials(self, caller, event_id, event_ms, window_ms, per_side)
                .await?,
        )
    }
    async fn gather(&self, event: &Event) -> PortResult<JournalStore> {
        Ok(DynamoCorrelation::gather(self, event).await?)
    }
    async fn has_record(&self, command_id: &str) -> PortResult<bool> {
        Ok(DynamoCorrelation::has_record(self, command_id).await?)
    }
    async fn gather_command(&self, command_id: &str, owner: &str) -> PortResult<JournalStore> {
        Ok(DynamoCorrelation::gather_command(self, command_id, owner).await?)
    }
    async fn persist(&self, owner: &str, changes: Vec<Change>) -> PortResult<Persisted> {
        Ok(DynamoCorrelation::persist(self, owner, changes).await?)
    }
    async fn dedupe(&self, entries: &[GroupEntry]) -> PortResult<Vec<u64>> {
        Ok(DynamoCorrelation::dedupe(self, entries).await?)
    }
    async fn saw_source(
        &self,
        account: &str,
        region: &str,
        partition: &str,
        event_ms: i64,
    ) -> PortResult<()> {
        Ok(DynamoCorrelation::saw_source(self, account, region, partition, event_ms).await?)
    }
    async fn sources(&self) -> PortResult<Vec<SourceSeen>> {
        Ok(DynamoCorrelation::sources(self).await?)
    }
    async fn stage(&self, outbox: &str, findings: &[Finding]) -> PortResult<()> {
        Ok(DynamoCorrelation::stage(self, outbox, findings, now_ms()).await?)
    }
    async fn staged(&self, outbox: &str) -> PortResult<Vec<Finding>> {
        Ok(DynamoCorrelation::staged(self, outbox).await?)
    }
    async fn delivered(
        &self,
        finding_ids: &[String],
        sinks: &[&str],
    ) -> PortResult<HashMap<String, Vec<String>>> {
        Ok(DynamoCorrelation::delivered(self, finding_ids, sinks).await?)
    }
    async fn lease(
        &self,
        finding_ids: &[String],
        holder: &str,
        lease_ms: i64,
    ) -> PortResult<Vec<Lease>> {
        Ok(DynamoCorrelation::lease(self, finding_ids, holder, now_ms(), lease_ms).await?)
    }
    async fn release(&self, finding_ids: &[String], holder: &str) -> PortResult<()> {
        Ok(DynamoCorrelation::release(self, finding_ids, holder).await?)
    }
    async fn mark_delivered(&self, finding_ids: &[String], sink: &str) -> PortResult<()> {
        Ok(DynamoCorrelation::mark_delivered(self, finding_ids, sink, now_ms()).await?)
    }
    async fn due_parked(&self, cutoff_ms: i64, limit: usize) -> PortResult<Vec<DueParked>> {
        Ok(DynamoCorrelation::due_parked(self, cutoff_ms, limit).await?)
    }
    async fn take_overdue(&self, parked: &Parked) -> PortResult<bool> {
        Ok(DynamoCorrelation::take_overdue(self, parked).await?)
    }
    async fn reported_overdue(&self, parked: &[Parked]) -> PortResult<()> {
        Ok(DynamoCorrelation::reported_overdue(self, parked).await?)
    }
    async fn drop_parked(&self, parked: &[Parked]) -> PortResult<()> {
        Ok(DynamoCorrelation::drop_parked(self, parked).await?)
    }
    async fn association_runs(
        &self,
        instance: &str,
        document: &str,
    ) -> PortResult<Vec<AssociationRun>> {
        Ok(DynamoCorrelation::association_runs(self, instance, document).await?)
    }
}

/// Tags at home, and in member accounts through their reader role.
#[derive(Debug)]
pub struct OrgTags {
    pub home: LiveTags,
    /// The deployment's own account (`TAGWATCH_ACCOUNT_ID`): `None`, every query is at home.
    pub home_account: Option<String>,
    /// `None`: no member account is read.
    pub members: Option<MemberTags>,
}

impl TagSource for OrgTags {
    async fn gather(&self, query: &TagQuery) -> PortResult<Gathered> {
        let at_home = query.account.is_empty()
            || self
                .home_account
                .as_deref()
                .is_none_or(|a| a == query.account);
        match (&self.members, at_home) {
            (Some(members), false) => match members.gather(query).await? {
                MemberTagsFound::Tags(tags) => Ok(Gathered::Tags(tags)),
                MemberTagsFound::NoAccess(why) => Ok(Gathered::NoAccess {
                    account: query.account.clone(),
                    why,
                }),
            },
            _ => Ok(Gathered::Tags(self.home.gather(query).await?)),
        }
    }
}

impl FindingLog for FindingsLogStream {
    async fn put(&self, messages: &[String]) -> PortResult<()> {
        Ok(FindingsLogStream::put(self, messages, now_ms()).await?)
    }
    fn group(&self) -> &str {
        FindingsLogStream::group(self)
    }
}

impl AlertBus for FindingsBus {
    async fn publish(&self, entries: &[BusEntry]) -> PortResult<Vec<Option<String>>> {
        Ok(FindingsBus::publish(self, entries).await?)
    }
}

impl FindingsHub for FindingsHubImport {
    async fn import(&self, findings: &[AsffFinding]) -> PortResult<Vec<Option<String>>> {
        Ok(FindingsHubImport::import(self, findings).await?)
    }
}

impl Quarantine for QuarantineQueue {
    async fn keep(&self, raw: &str, reason: &str, function: &str) -> PortResult<()> {
        Ok(QuarantineQueue::keep(self, raw, reason, function).await?)
    }
}

/// Why a cold start failed.
#[derive(Debug, thiserror::Error)]
pub enum ColdStartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Intent(#[from] IntentLoadError),
    #[error(transparent)]
    Aws(#[from] AdapterError),
}

/// The findings log stream of this execution environment: Lambda's own stream name is unique
/// per environment, so concurrent environments never share a stream.
fn stream_name(function: &str, config: &Config) -> String {
    match &config.log_stream {
        Some(s) => format!("{function}/{s}"),
        None => format!(
            "{function}/{}/{}",
            crate::logging::rfc3339_ms(now_ms()).get(..10).unwrap_or(""),
            std::process::id()
        ),
    }
}

/// Builds the clients and adapters and loads the intent, once per execution environment.
pub async fn cold_start(
    function: &str,
    config: &Config,
) -> Result<(AwsPorts, Intent), ColdStartError> {
    let sdk = tagwatch_aws::load_config().await;
    let source = &config.intent;
    let clients = IntentClients {
        ssm: aws_sdk_ssm::Client::new(&sdk),
        s3: aws_sdk_s3::Client::new(&sdk),
    };
    // The intent and the findings log stream are independent: fetch both at once.
    let log_client = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let (loaded, log) = tokio::join!(
        load_intent(source, &clients, crate::clock::now_ms()),
        FindingsLogStream::open(
            log_client,
            &config.findings_log_group,
            stream_name(function, config)
        )
    );
    let (mut intent, warnings) = loaded?;
    if let Some(t) = config.spike_threshold {
        intent.spike.threshold = t;
    }
    if let Some(w) = config.spike_window_seconds {
        intent.spike.window_seconds = w;
    }
    let log = log?;
    for w in &warnings {
        tracing::warn!(source = source.display().as_str(), warning = %w, "intent warning");
    }
    let ttl = i64::try_from(config.state_ttl.as_secs()).unwrap_or(i64::MAX / 2000);
    let state = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table, ttl);
    let tags = OrgTags {
        home: LiveTags::new(aws_sdk_ec2::Client::new(&sdk), config.tag_cache).with_ssm(clients.ssm),
        home_account: config.account_id.clone(),
        members: (config.members != Members::None).then(|| {
            MemberTags::new(
                &sdk,
                &config.partition,
                &config.reader_role,
                config.reader_external_id.clone(),
                config.tag_cache,
            )
        }),
    };
    let bus = FindingsBus::new(aws_sdk_eventbridge::Client::new(&sdk), &config.findings_bus);
    let quarantine = config
        .quarantine_queue_url
        .as_ref()
        .map(|url| QuarantineQueue::new(aws_sdk_sqs::Client::new(&sdk), url));
    Ok((
        Ports {
            state,
            tags,
            log,
            bus,
            quarantine,
            security_hub: config.security_hub.clone().map(|home| SecurityHub {
                port: FindingsHubImport::new(aws_sdk_securityhub::Client::new(&sdk)),
                home,
            }),
            tag_scope: TagScope {
                account: config.account_id.clone(),
                region: config.region.clone(),
                members: config.members.clone(),
            },
        },
        intent,
    ))
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use tagwatch_aws::{Classify, ErrorClass};

    /// An SDK-like error whose own source is the network's.
    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Dispatch(#[source] std::io::Error);

    impl Classify for Dispatch {
        fn classify(&self) -> (ErrorClass, Option<String>) {
            (ErrorClass::Retryable, None)
        }
    }

    /// The whole chain survives from the SDK error to the port error the pipeline sees: the
    /// message renders it for the log, and `source()` leads back to the original errors.
    #[test]
    fn a_port_error_keeps_the_sdk_error_chain() {
        let e = AdapterError::aws(
            "DynamoDB GetItem",
            Dispatch(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused",
            )),
        );
        assert_eq!(
            e.to_string(),
            "DynamoDB GetItem failed (retryable): dispatch failure: connection refused"
        );
        let port = PortError::from(e);
        assert!(matches!(port, PortError::Retryable(_)));
        let mut chain = Vec::new();
        let mut next = port.source();
        while let Some(s) = next {
            chain.push(s.to_string());
            next = s.source();
        }
        assert_eq!(
            chain,
            [
                "DynamoDB GetItem failed (retryable): dispatch failure: connection refused",
                "dispatch failure",
                "connection refused",
            ]
        );
    }
}
