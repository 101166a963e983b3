//! The ports over tagwatch's AWS adapters, and the cold-start wiring that builds them.

use std::collections::HashMap;

use tagwatch_aws::archive::{Plan, S3Archive};
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
use tagwatch_core::archive::{DayPrefix, Selection};
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
    AlertBus, Archive, ArchiveObject, Cause, FindingLog, FindingsHub, Gathered, Members, Platform,
    PortError, PortResult, Ports, Quarantine, SecurityHub, State, TagScope, TagSource,
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

/// What the tag adapters are built from (the watchers' and the backfill's settings alike).
pub struct TagSettings {
    pub tag_cache: std::time::Duration,
    pub account_id: Option<String>,
    pub members: Members,
    pub partition: String,
    pub reader_role: String,
    pub reader_external_id: Option<String>,
}

impl OrgTags {
    pub fn new(
        sdk: &tagwatch_aws::aws_config::SdkConfig,
        ssm: aws_sdk_ssm::Client,
        s: &TagSettings,
    ) -> Self {
        OrgTags {
            home: LiveTags::new(aws_sdk_ec2::Client::new(sdk), s.tag_cache).with_ssm(ssm),
            home_account: s.account_id.clone(),
            members: (s.members != Members::None).then(|| {
                MemberTags::new(
                    sdk,
                    &s.partition,
                    &s.reader_role,
                    s.reader_external_id.clone(),
                    s.tag_cache,
                )
            }),
        }
    }
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

impl Archive for S3Archive {
    async fn days(
        &self,
        bucket: &str,
        prefix: &str,
        selection: &Selection,
    ) -> PortResult<Vec<DayPrefix>> {
        match self.plan(bucket, prefix, selection).await? {
            Plan::Days(days) => Ok(days),
            Plan::Flat { prefix } => Err(PortError::Permanent(
                format!(
                    "s3://{bucket}/{prefix} holds no CloudTrail layout (no AWSLogs/ folder below it): a backfill reads AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/"
                )
                .into(),
            )),
        }
    }

    async fn objects(&self, bucket: &str, prefix: &str) -> PortResult<Vec<ArchiveObject>> {
        let listing = S3Archive::objects(self, bucket, prefix, &Selection::default()).await?;
        Ok(listing
            .objects
            .into_iter()
            .map(|o| ArchiveObject {
                key: o.key,
                size: o.size,
            })
            .collect())
    }

    async fn get(&self, bucket: &str, key: &str) -> PortResult<Vec<u8>> {
        Ok(self.get_bytes(bucket, key).await?)
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> PortResult<()> {
        Ok(S3Archive::put(self, bucket, key, body, content_type).await?)
    }

    async fn exists(&self, bucket: &str, key: &str) -> PortResult<bool> {
        Ok(S3Archive::exists(self, bucket, key).await?)
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

/// What every function's cold start builds: the intent (with the deployment's overrides), the
/// findings log stream and the tag adapters.
struct Common {
    intent: Intent,
    log: FindingsLogStream,
    tags: OrgTags,
}

async fn common(
    sdk: &tagwatch_aws::aws_config::SdkConfig,
    function: &str,
    config: &Config,
) -> Result<Common, ColdStartError> {
    let source = &config.intent;
    let clients = IntentClients {
        ssm: aws_sdk_ssm::Client::new(sdk),
        s3: aws_sdk_s3::Client::new(sdk),
    };
    // The intent and the findings log stream are independent: fetch both at once.
    let log_client = aws_sdk_cloudwatchlogs::Client::new(sdk);
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
    let tags = OrgTags::new(
        sdk,
        clients.ssm,
        &TagSettings {
            tag_cache: config.tag_cache,
            account_id: config.account_id.clone(),
            members: config.members.clone(),
            partition: config.partition.clone(),
            reader_role: config.reader_role.clone(),
            reader_external_id: config.reader_external_id.clone(),
        },
    );
    Ok(Common { intent, log, tags })
}

/// Builds the clients and adapters and loads the intent, once per execution environment.
pub async fn cold_start(
    function: &str,
    config: &Config,
) -> Result<(AwsPorts, Intent), ColdStartError> {
    let sdk = tagwatch_aws::load_config().await;
    let Common { intent, log, tags } = common(&sdk, function, config).await?;
    let ttl = i64::try_from(config.state_ttl.as_secs()).unwrap_or(i64::MAX / 2000);
    let state = DynamoCorrelation::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table, ttl);
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

/// The backfill function's ports: live tags (at home and in member accounts), the findings
/// log group, and S3 (the archive and the results bucket).
pub struct BackfillPorts {
    pub tags: OrgTags,
    /// `TAGWATCH_INVENTORY`'s tags (empty without it): looked up before live tags.
    pub inventory: tagwatch_core::intent::inventory::Inventory,
    pub log: FindingsLogStream,
    pub archive: S3Archive,
    pub tag_scope: TagScope,
}

/// The backfill's cold start: clients, adapters and the intent, once per execution environment.
pub async fn cold_start_backfill(
    function: &str,
    config: &crate::config::BackfillConfig,
) -> Result<(BackfillPorts, Intent), ColdStartError> {
    let sdk = tagwatch_aws::load_config().await;
    let Common { intent, log, tags } = common(&sdk, function, &config.base).await?;
    let inventory = match &config.inventory {
        None => Default::default(),
        Some(source) => {
            let clients = IntentClients {
                ssm: aws_sdk_ssm::Client::new(&sdk),
                s3: aws_sdk_s3::Client::new(&sdk),
            };
            tagwatch_aws::intent::load_inventory(source, &clients).await?
        }
    };
    Ok((
        BackfillPorts {
            tags,
            inventory,
            log,
            archive: S3Archive::new(tagwatch_aws::archive::s3_client(&sdk), config.fetches),
            tag_scope: TagScope {
                account: config.base.account_id.clone(),
                region: config.base.region.clone(),
                members: config.base.members.clone(),
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
