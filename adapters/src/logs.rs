//! Findings as JSON log events in a CloudWatch Logs group (one event per finding, one
//! `PutLogEvents` call per batch the pipeline sized).

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;

use crate::AdapterError;

/// The findings log group and this instance's stream in it.
#[derive(Debug, Clone)]
pub struct FindingsLogStream {
    client: Client,
    group: String,
    stream: String,
}

impl FindingsLogStream {
    /// The log group the stream is in.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Creates the stream when missing (once, at cold start).
    pub async fn open(
        client: Client,
        group: impl Into<String>,
        stream: impl Into<String>,
    ) -> Result<Self, AdapterError> {
        let log = FindingsLogStream {
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

    /// Writes one batch of log event messages (the pipeline batches them within
    /// `PutLogEvents`' limits, see `tagwatch_core::watch::outputs::batches`), all stamped
    /// `timestamp_ms`.
    pub async fn put(&self, messages: &[String], timestamp_ms: i64) -> Result<(), AdapterError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut events = Vec::with_capacity(messages.len());
        for m in messages {
            let event = InputLogEvent::builder()
                .timestamp(timestamp_ms)
                .message(m)
                .build()
                .map_err(|e| AdapterError::aws("CloudWatch Logs InputLogEvent", e))?;
            events.push(event);
        }
        let out = self
            .client
            .put_log_events()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .set_log_events(Some(events))
            .send()
            .await
            .map_err(|e| AdapterError::aws("CloudWatch Logs PutLogEvents", e))?;
        if let Some(r) = out.rejected_log_events_info() {
            // Only timestamps are rejected this way; tagwatch stamps "now", so this is a clock
            // or a quota change nobody can retry away.
            return Err(AdapterError::permanent(
                "CloudWatch Logs PutLogEvents",
                format!("log events rejected: {r:?}"),
            ));
        }
        Ok(())
    }
}
