//! Events tagwatch cannot process, kept on an SQS queue with the reason, so nothing is dropped
//! silently and nothing is retried forever.

use aws_sdk_sqs::types::MessageAttributeValue;
use aws_sdk_sqs::Client;

use crate::AdapterError;

/// SQS messages are at most 256 KiB; EventBridge events are at most 256 KiB too, but the reason
/// attribute and the envelope count, so longer bodies are cut (and say so).
const MAX_BODY: usize = 250 * 1024;

/// The quarantine queue.
#[derive(Debug, Clone)]
pub struct QuarantineQueue {
    client: Client,
    queue_url: String,
}

impl QuarantineQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        QuarantineQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Keeps the raw event with the reason it could not be processed and the function that
    /// met it (as message attributes `reason` and `function`).
    pub async fn keep(&self, raw: &str, reason: &str, function: &str) -> Result<(), AdapterError> {
        let body = if raw.len() > MAX_BODY {
            let mut cut = MAX_BODY;
            while !raw.is_char_boundary(cut) {
                cut -= 1;
            }
            format!(
                "{}... [cut at {cut} of {} bytes]",
                raw.get(..cut).unwrap_or_default(),
                raw.len()
            )
        } else {
            raw.to_string()
        };
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| AdapterError::aws("SQS MessageAttributeValue", e))
        };
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("reason", attr(reason)?)
            .message_attributes("function", attr(function)?)
            .send()
            .await
            .map_err(|e| AdapterError::aws("SQS SendMessage", e))?;
        Ok(())
    }
}
