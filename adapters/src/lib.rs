//! tagwatch's AWS adapters: the edges behind the core's ports, with real SDK calls.
//!
//! - [`dynamo::DynamoCorrelation`]: correlation, idempotency and AccessDenied windows in one
//!   DynamoDB table (gather before the decision, persist the journal after it);
//! - [`logs::FindingsLogStream`]: findings as JSON log events in a CloudWatch Logs group;
//! - [`archive::S3Archive`], [`archive::ReadAhead`]: CloudTrail archives in S3, listed by their
//!   layout and read ahead with bounded concurrency (`tagwatch replay s3://...`, the backfill);
//! - [`bus::FindingsBus`]: alert findings on an EventBridge bus;
//! - [`hub::FindingsHubImport`]: alert findings in AWS Security Hub (ASFF), when enabled;
//! - [`members::MemberTags`]: tags in member accounts, through their reader role (STS);
//! - [`tags::LiveTags`]: instance tags from EC2 `DescribeTags` and managed-node tags from SSM
//!   `ListTagsForResource`, cached for a short time;
//! - [`quarantine::QuarantineQueue`]: malformed or unexpected events kept on an SQS queue;
//! - [`redrive::Redrive`]: failure-destination records invoked again (`tagwatch redrive`).
//!
//! Clients are built once (at cold start) from an [`aws_config::SdkConfig`]; `AWS_ENDPOINT_URL`
//! points every client at a local emulator in tests.

pub mod archive;
pub mod bus;
pub mod dynamo;
pub mod hub;
pub mod intent;
pub mod logs;
pub mod members;
pub mod quarantine;
pub mod redrive;
pub mod tags;
#[cfg(feature = "testing")]
pub mod testing;

/// Whether retrying a failed call can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttling, 5xx, timeouts and network failures: a later attempt may succeed.
    Retryable,
    /// Access denied, a missing log group or bus, validation, an item too large: retrying the
    /// same request fails the same way until someone changes the deployment.
    Permanent,
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Permanent => "permanent",
        })
    }
}

/// The SDK error behind an [`AdapterError`], kept whole (its own `source()` chain included) for
/// callers that walk or downcast it. Shared, so that the error stays `Clone`.
pub type ErrorSource = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why an AWS call failed, classified from the SDK's error metadata (never guessed from a
/// message). The message names the operation and renders the whole error chain (so a log line
/// of the error alone says everything); `source()` is the SDK error itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdapterError {
    #[error("{operation} failed ({class}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Aws {
        operation: &'static str,
        class: ErrorClass,
        /// The service's error code (`ThrottlingException`, `AccessDeniedException`, ...).
        code: Option<String>,
        message: String,
        /// The SDK error (absent for failures the adapters detect themselves).
        #[source]
        source: Option<ErrorSource>,
    },
    /// Another invocation changed the same item first; retrying the invocation is safe.
    #[error("`{key}` changed concurrently; retry")]
    Conflict { key: String },
    /// A stored item cannot be read back: never retried blindly.
    #[error("stored item `{key}` is not readable: {reason}")]
    Corrupt { key: String, reason: String },
}

/// Equal when they say the same (the sources are compared by their text, which the message
/// renders).
impl PartialEq for AdapterError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                AdapterError::Aws {
                    operation: o1,
                    class: c1,
                    code: k1,
                    message: m1,
                    ..
                },
                AdapterError::Aws {
                    operation: o2,
                    class: c2,
                    code: k2,
                    message: m2,
                    ..
                },
            ) => o1 == o2 && c1 == c2 && k1 == k2 && m1 == m2,
            (AdapterError::Conflict { key: a }, AdapterError::Conflict { key: b }) => a == b,
            (
                AdapterError::Corrupt { key: a, reason: r1 },
                AdapterError::Corrupt { key: b, reason: r2 },
            ) => a == b && r1 == r2,
            _ => false,
        }
    }
}

impl Eq for AdapterError {}

/// Error codes that mean "slow down" or "try again" whatever their HTTP status (DynamoDB,
/// CloudWatch Logs and EventBridge send throttling as 400).
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "LimitExceededException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Errors the adapters can classify.
pub trait Classify: std::error::Error {
    /// The class and the service's error code, when there is one.
    fn classify(&self) -> (ErrorClass, Option<String>);
}

impl<E> Classify
    for aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    fn classify(&self) -> (ErrorClass, Option<String>) {
        use aws_sdk_dynamodb::error::SdkError;
        match self {
            SdkError::ConstructionFailure(_) => (ErrorClass::Permanent, None),
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => (ErrorClass::Retryable, None),
            SdkError::ServiceError(ctx) => {
                let code = ctx.err().code().map(str::to_string);
                let status = ctx.raw().status().as_u16();
                let retryable = status >= 500
                    || status == 429
                    || code
                        .as_deref()
                        .is_some_and(|c| RETRYABLE_CODES.contains(&c));
                let class = if retryable {
                    ErrorClass::Retryable
                } else {
                    ErrorClass::Permanent
                };
                (class, code)
            }
            _ => (ErrorClass::Retryable, None),
        }
    }
}

impl Classify for aws_sdk_dynamodb::error::BuildError {
    fn classify(&self) -> (ErrorClass, Option<String>) {
        (ErrorClass::Permanent, None)
    }
}

impl Classify for aws_sdk_s3::primitives::ByteStreamError {
    /// A body that broke off while streaming: the network.
    fn classify(&self) -> (ErrorClass, Option<String>) {
        (ErrorClass::Retryable, None)
    }
}

impl AdapterError {
    /// Wraps an SDK error with the operation it came from, classified by its metadata (SDK
    /// error types never reach the core).
    pub fn aws<E: Classify + Send + Sync + 'static>(operation: &'static str, e: E) -> Self {
        let (class, code) = e.classify();
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        AdapterError::Aws {
            operation,
            class,
            code,
            message,
            source: Some(std::sync::Arc::new(e)),
        }
    }

    /// A failure no retry of the same request can mend.
    pub fn permanent(operation: &'static str, message: impl Into<String>) -> Self {
        AdapterError::Aws {
            operation,
            class: ErrorClass::Permanent,
            code: None,
            message: message.into(),
            source: None,
        }
    }

    /// A failure a later attempt may not meet (e.g. entries a service left unprocessed).
    pub fn retryable(operation: &'static str, message: impl Into<String>) -> Self {
        AdapterError::Aws {
            operation,
            class: ErrorClass::Retryable,
            code: None,
            message: message.into(),
            source: None,
        }
    }

    /// Whether retrying the invocation may succeed. Corrupt state never is.
    pub fn is_retryable(&self) -> bool {
        match self {
            AdapterError::Aws { class, .. } => *class == ErrorClass::Retryable,
            AdapterError::Conflict { .. } => true,
            AdapterError::Corrupt { .. } => false,
        }
    }
}

/// Loads the SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`).
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// How often an entry a batch call failed (EventBridge's failed entries, Security Hub's
/// `FailedFindings`) is sent before it is reported failed.
pub(crate) const ENTRY_ROUNDS: u32 = 4;

/// Sends `count` entries through `send` in up to [`ENTRY_ROUNDS`] rounds with backoff: `send`
/// gets the indices still pending and answers, per pending index in that order, `None` when the
/// service accepted the entry or why not; the failed ones go again. The answer holds each
/// entry's last outcome; an error of the call itself ends the rounds.
pub(crate) async fn send_in_rounds<F, Fut>(
    count: usize,
    mut send: F,
) -> Result<Vec<Option<String>>, AdapterError>
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Option<String>>, AdapterError>>,
{
    let mut result: Vec<Option<String>> = vec![None; count];
    let mut pending: Vec<usize> = (0..count).collect();
    for round in 0..ENTRY_ROUNDS {
        if pending.is_empty() {
            break;
        }
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
        }
        let answers = send(pending.clone()).await?;
        let mut still = Vec::new();
        for (n, &i) in pending.iter().enumerate() {
            // An entry without an answer is not known to be accepted: sent again.
            let failed = answers
                .get(n)
                .cloned()
                .unwrap_or_else(|| Some("no answer for the entry".to_string()));
            if let Some(slot) = result.get_mut(i) {
                *slot = failed.clone();
            }
            if failed.is_some() {
                still.push(i);
            }
        }
        pending = still;
    }
    Ok(result)
}

// The SDK crates, for the functions' cold-start wiring (one version across the workspace).
pub use aws_config;
pub use aws_sdk_cloudwatchlogs;
pub use aws_sdk_dynamodb;
pub use aws_sdk_ec2;
pub use aws_sdk_eventbridge;
pub use aws_sdk_lambda;
pub use aws_sdk_s3;
pub use aws_sdk_securityhub;
pub use aws_sdk_sqs;
pub use aws_sdk_ssm;
pub use aws_sdk_sts;
