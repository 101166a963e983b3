//! Redriving a failure destination: the records Lambda kept on an SQS queue for invocations
//! that failed every attempt are invoked again (synchronously, `RequestResponse`), and each
//! record whose invocation succeeded is deleted. A record that fails again, or that is not a
//! failure-destination record, stays on the queue and is reported.

use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;
use tagwatch_core::watch::event::destination_record;

use crate::AdapterError;

/// The queue and the functions.
#[derive(Debug, Clone)]
pub struct Redrive {
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Redriven {
    /// The function handled the event; the message was deleted.
    Delivered {
        message_id: String,
        function: String,
    },
    /// The function failed again; the message stays.
    Failed {
        message_id: String,
        function: String,
        error: String,
    },
    /// Not a failure-destination record (or no function named): the message stays.
    Unreadable { message_id: String, reason: String },
}

impl Redrive {
    pub fn new(sqs: aws_sdk_sqs::Client, lambda: aws_sdk_lambda::Client) -> Self {
        Redrive { sqs, lambda }
    }

    /// Redrives at most `max` messages of `queue_url`. `function` overrides the function the
    /// record names (`requestContext.functionArn`). Messages are hidden for
    /// `visibility_seconds` while they are handled, so each is seen once per run.
    pub async fn run(
        &self,
        queue_url: &str,
        function: Option<&str>,
        max: usize,
        visibility_seconds: i32,
    ) -> Result<Vec<Redriven>, AdapterError> {
        let mut out = Vec::new();
        // A message this run kept reappears once its visibility ends: seen once per run.
        let mut seen = std::collections::HashSet::new();
        while out.len() < max {
            let want = i32::try_from((max - out.len()).min(10)).unwrap_or(10);
            let got = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(want)
                .visibility_timeout(visibility_seconds)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| AdapterError::aws("SQS ReceiveMessage", e))?;
            let messages: Vec<_> = got
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter(|m| seen.insert(m.message_id.clone().unwrap_or_default()))
                .collect();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let id = m.message_id.clone().unwrap_or_default();
                let body = m.body.as_deref().unwrap_or_default();
                let parsed: Result<Value, _> = serde_json::from_str(body);
                let record = match &parsed {
                    Ok(v) => destination_record(v),
                    Err(_) => None,
                };
                let target = record
                    .as_ref()
                    .and_then(|r| function.map(str::to_string).or_else(|| r.function.clone()));
                let (Some(record), Some(target)) = (record, target) else {
                    let reason = match parsed {
                        Err(e) => format!("the body is not JSON: {e}"),
                        Ok(_) if function.is_none() => "not a Lambda failure-destination record with requestContext.functionArn and requestPayload (or pass --function)".to_string(),
                        Ok(_) => "not a Lambda failure-destination record (no requestPayload)".to_string(),
                    };
                    out.push(Redriven::Unreadable {
                        message_id: id,
                        reason,
                    });
                    continue;
                };
                let answer = self
                    .lambda
                    .invoke()
                    .function_name(&target)
                    .payload(Blob::new(record.payload.to_string()))
                    .send()
                    .await
                    .map_err(|e| AdapterError::aws("Lambda Invoke", e));
                let error = match answer {
                    Ok(a) => a.function_error.map(|kind| {
                        let payload = a
                            .payload
                            .map(|p| String::from_utf8_lossy(p.as_ref()).to_string())
                            .unwrap_or_default();
                        format!("{kind}: {payload}")
                    }),
                    Err(e) => Some(e.to_string()),
                };
                match error {
                    None => {
                        if let Some(handle) = &m.receipt_handle {
                            self.sqs
                                .delete_message()
                                .queue_url(queue_url)
                                .receipt_handle(handle)
                                .send()
                                .await
                                .map_err(|e| AdapterError::aws("SQS DeleteMessage", e))?;
                        }
                        out.push(Redriven::Delivered {
                            message_id: id,
                            function: target,
                        });
                    }
                    Some(error) => out.push(Redriven::Failed {
                        message_id: id,
                        function: target,
                        error,
                    }),
                }
            }
        }
        Ok(out)
    }
}
