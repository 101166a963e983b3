//! Tags in an organisation's member accounts: the member's reader role (`TagwatchReader` by
//! default, created by `templates/forwarder.yaml`) is assumed with STS `AssumeRole`, and EC2
//! and SSM clients are kept per (account, region) with that session's credentials, each with
//! its own [`LiveTags`] (the same cache rules as at home). A session is assumed again five
//! minutes before it expires. A role that cannot be assumed (`AccessDenied`: missing, or not
//! trusting this deployment) is remembered for five minutes and answered as no access, so a
//! burst of events from that account asks STS once; any other STS failure is an error
//! (throttling and 5xx retryable).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_sts::config::Credentials;
use tagwatch_core::intent::inventory::Inventory;
use tagwatch_core::watch::tags::TagQuery;

use crate::tags::LiveTags;
use crate::AdapterError;

/// How long before a session's expiry it is renewed, and how long a refusal is remembered.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
const REFUSAL_KEPT: Duration = Duration::from_secs(300);
/// The session length asked for (AssumeRole's default; a role allows at least this).
const SESSION_SECONDS: i32 = 3600;

/// What a member account's lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberTagsFound {
    Tags(Inventory),
    /// The reader role could not be assumed.
    NoAccess(String),
}

/// The reader of one (account, region).
struct Reader {
    tags: Arc<LiveTags>,
    expires: SystemTime,
}

/// Member accounts' tags through their reader role.
pub struct MemberTags {
    sdk: SdkConfig,
    sts: aws_sdk_sts::Client,
    partition: String,
    role_name: String,
    external_id: Option<String>,
    tag_cache: Duration,
    readers: Mutex<HashMap<(String, String), Reader>>,
    refused: Mutex<HashMap<String, (Instant, String)>>,
}

impl std::fmt::Debug for MemberTags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberTags")
            .field("partition", &self.partition)
            .field("role_name", &self.role_name)
            .field("external_id", &self.external_id.as_ref().map(|_| "(set)"))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemberTags {
    /// `sdk` is this deployment's configuration (its credentials assume the roles);
    /// `partition` the one its account is in; `tag_cache` how long looked-up tags are reused.
    pub fn new(
        sdk: &SdkConfig,
        partition: impl Into<String>,
        role_name: impl Into<String>,
        external_id: Option<String>,
        tag_cache: Duration,
    ) -> Self {
        MemberTags {
            sdk: sdk.clone(),
            sts: aws_sdk_sts::Client::new(sdk),
            partition: partition.into(),
            role_name: role_name.into(),
            external_id,
            tag_cache,
            readers: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// The reader role's ARN in `account`.
    pub fn role_arn(&self, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role/{}",
            self.partition, self.role_name
        )
    }

    /// The tags of `query` (its account and region) through the account's reader role.
    pub async fn gather(&self, query: &TagQuery) -> Result<MemberTagsFound, AdapterError> {
        let key = (query.account.clone(), query.region.clone());
        let fresh = lock(&self.readers).get(&key).and_then(|r| {
            let left = r
                .expires
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            (left > RENEW_BEFORE).then(|| Arc::clone(&r.tags))
        });
        let tags = match fresh {
            Some(tags) => tags,
            None => match self.assume(&query.account, &query.region).await? {
                Ok(tags) => tags,
                Err(why) => return Ok(MemberTagsFound::NoAccess(why)),
            },
        };
        Ok(MemberTagsFound::Tags(tags.gather(query).await?))
    }

    /// Assumes the account's reader role and builds the region's clients; `Ok(Err(why))` when
    /// the role is refused.
    async fn assume(
        &self,
        account: &str,
        region: &str,
    ) -> Result<Result<Arc<LiveTags>, String>, AdapterError> {
        if let Some((at, why)) = lock(&self.refused).get(account) {
            if at.elapsed() < REFUSAL_KEPT {
                return Ok(Err(why.clone()));
            }
        }
        let answer = self
            .sts
            .assume_role()
            .role_arn(self.role_arn(account))
            .role_session_name("tagwatch")
            .set_external_id(self.external_id.clone())
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e) => {
                let denied = e
                    .as_service_error()
                    .and_then(aws_sdk_sts::error::ProvideErrorMetadata::code)
                    == Some("AccessDenied");
                if denied {
                    let why = format!(
                        "sts:AssumeRole on {} refused: {}",
                        self.role_arn(account),
                        aws_sdk_sts::error::DisplayErrorContext(&e)
                    );
                    lock(&self.refused).insert(account.to_string(), (Instant::now(), why.clone()));
                    return Ok(Err(why));
                }
                return Err(AdapterError::aws("STS AssumeRole", e));
            }
        };
        let Some(c) = out.credentials() else {
            return Err(AdapterError::Corrupt {
                key: self.role_arn(account),
                reason: "AssumeRole answered without credentials".into(),
            });
        };
        let expires = SystemTime::try_from(*c.expiration()).unwrap_or(SystemTime::now());
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            Some(expires),
            "tagwatch-reader",
        );
        let region = aws_config::Region::new(region.to_string());
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&self.sdk)
                .credentials_provider(credentials.clone())
                .region(region.clone())
                .build(),
        );
        let ssm = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&self.sdk)
                .credentials_provider(credentials)
                .region(region.clone())
                .build(),
        );
        let tags = Arc::new(LiveTags::new(ec2, self.tag_cache).with_ssm(ssm));
        lock(&self.refused).remove(account);
        lock(&self.readers).insert(
            (account.to_string(), region.to_string()),
            Reader {
                tags: Arc::clone(&tags),
                expires,
            },
        );
        Ok(Ok(tags))
    }
}
