//! Findings as JSON log events in a CloudWatch Logs group (one event per finding, one
//! `PutLogEvents` call per batch).

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;
use tagwatch_core::verdict::Finding;

use crate::AdapterError;

/// The findings log group and this instance's stream in it.
#[derive(Debug, Clone)]
pub struct FindingsLog {
    client: Client,
    group: String,
    stream: String,
}

impl FindingsLog {
    /// Creates the stream when missing (once, at cold start).
    pub async fn open(
        client: Client,
        group: impl Into<String>,
        stream: impl Into<String>,
    ) -> Result<Self, AdapterError> {
        let log = FindingsLog {
            client,
            group: group.into(),
            stream: stream.into(),
        };
        match log
            .client
            .create_log_stream()
            .log_group_name(&log.group)
            .log_stream_name(&log.stream)
            .send()
            .await
        {
            Ok(_) => Ok(log),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_already_exists_exception()) =>
            {
                Ok(log)
            }
            Err(e) => Err(AdapterError::aws("CloudWatch Logs CreateLogStream", e)),
        }
    }

    /// Writes findings, one JSON object per log event, at `timestamp_ms`.
    pub async fn put(&self, findings: &[Finding], timestamp_ms: i64) -> Result<(), AdapterError> {
        // PutLogEvents takes at most 10,000 events per call.
        for chunk in findings.chunks(10_000) {
            let mut events = Vec::with_capacity(chunk.len());
            for f in chunk {
                let event = InputLogEvent::builder()
                    .timestamp(timestamp_ms)
                    .message(serde_json::to_string(f).unwrap_or_default())
                    .build()
                    .map_err(|e| AdapterError::aws("CloudWatch Logs InputLogEvent", e))?;
                events.push(event);
            }
            if events.is_empty() {
                continue;
            }
            self.client
                .put_log_events()
                .log_group_name(&self.group)
                .log_stream_name(&self.stream)
                .set_log_events(Some(events))
                .send()
                .await
                .map_err(|e| AdapterError::aws("CloudWatch Logs PutLogEvents", e))?;
        }
        Ok(())
    }
}
