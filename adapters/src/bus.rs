//! Alert findings on an EventBridge bus: `source: "tagwatch"`, a `detail-type` per kind, the
//! finding as `detail` (see `tagwatch_core::outputs::bus_entry`).

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use tagwatch_core::outputs::bus_entry;
use tagwatch_core::verdict::Finding;

use crate::AdapterError;

/// The findings bus.
#[derive(Debug, Clone)]
pub struct FindingsBus {
    client: Client,
    bus_name: String,
}

impl FindingsBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        FindingsBus {
            client,
            bus_name: bus_name.into(),
        }
    }

    /// Puts the alert findings (violations, spikes, unevaluated); returns how many were sent.
    pub async fn publish(&self, findings: &[Finding]) -> Result<usize, AdapterError> {
        let entries: Vec<PutEventsRequestEntry> = findings
            .iter()
            .filter_map(bus_entry)
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(e.source)
                    .detail_type(e.detail_type)
                    .detail(e.detail)
                    .build()
            })
            .collect();
        let sent = entries.len();
        // PutEvents takes at most 10 entries per call.
        for chunk in entries.chunks(10) {
            let out = self
                .client
                .put_events()
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| AdapterError::aws("EventBridge PutEvents", e))?;
            if out.failed_entry_count() > 0 {
                let reasons: Vec<String> = out
                    .entries()
                    .iter()
                    .filter_map(|r| r.error_message().map(str::to_string))
                    .collect();
                return Err(AdapterError::Aws {
                    operation: "EventBridge PutEvents",
                    message: format!(
                        "{} entries failed: {}",
                        out.failed_entry_count(),
                        reasons.join("; ")
                    ),
                });
            }
        }
        Ok(sent)
    }
}
