//! tagwatch's AWS adapters: the edges behind the core's ports, with real SDK calls.
//!
//! - [`dynamo::DynamoCorrelation`]: correlation, idempotency and AccessDenied windows in one
//!   DynamoDB table (gather before the decision, persist the journal after it);
//! - [`logs::FindingsLog`]: findings as JSON log events in a CloudWatch Logs group;
//! - [`bus::FindingsBus`]: alert findings on an EventBridge bus;
//! - [`tags::LiveTags`]: instance tags from EC2 `DescribeTags` and managed-node tags from SSM
//!   `ListTagsForResource`, cached for a short time;
//! - [`quarantine::Quarantine`]: malformed or unexpected events kept on an SQS queue.
//!
//! Clients are built once (at cold start) from an [`aws_config::SdkConfig`]; `AWS_ENDPOINT_URL`
//! points every client at a local emulator in tests.

pub mod bus;
pub mod dynamo;
pub mod intent;
pub mod logs;
pub mod quarantine;
pub mod tags;
#[cfg(feature = "testing")]
pub mod testing;

/// Why an AWS call failed. Transient failures (throttling, 5xx, network) make the invocation
/// fail so that Lambda retries it; the message names the operation.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    /// Another invocation changed the same item first; retrying the invocation is safe.
    #[error("`{key}` changed concurrently; retry")]
    Conflict { key: String },
    #[error("stored item `{key}` is not readable: {reason}")]
    Corrupt { key: String, reason: String },
}

impl AdapterError {
    /// Wraps an SDK error with the operation it came from (the full error chain is kept in the
    /// message; SDK error types never reach the core).
    pub fn aws<E: std::error::Error>(operation: &'static str, e: E) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        AdapterError::Aws { operation, message }
    }
}

/// Wall-clock milliseconds since the epoch (outbox and delivery items live from when they are
/// written; log events and EMF lines are stamped with it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Loads the SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`).
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

// The SDK crates, for the functions' cold-start wiring (one version across the workspace).
pub use aws_config;
pub use aws_sdk_cloudwatchlogs;
pub use aws_sdk_dynamodb;
pub use aws_sdk_ec2;
pub use aws_sdk_eventbridge;
pub use aws_sdk_s3;
pub use aws_sdk_sqs;
pub use aws_sdk_ssm;
