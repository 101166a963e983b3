//! Alert findings on an EventBridge bus: `source: "tagwatch"`, a `detail-type` per kind, the
//! finding as `detail` (see `tagwatch_core::watch::outputs::bus_entry`). Partial failures are
//! retried per entry.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use tagwatch_core::watch::outputs::BusEntry;

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

    /// Puts one batch of entries (at most 10 and 256 KB, see
    /// `tagwatch_core::watch::outputs::batches`). Entries EventBridge fails are sent again, alone,
    /// a few times with backoff; the answer says per entry whether it was accepted (`None`) or
    /// why not. A failure of the call itself is an error.
    pub async fn publish(&self, entries: &[BusEntry]) -> Result<Vec<Option<String>>, AdapterError> {
        crate::send_in_rounds(entries.len(), |pending| {
            let request: Vec<PutEventsRequestEntry> = pending
                .iter()
                .filter_map(|&i| entries.get(i))
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(e.source)
                        .detail_type(e.detail_type)
                        .detail(&e.detail)
                        .build()
                })
                .collect();
            async move {
                let out = self
                    .client
                    .put_events()
                    .set_entries(Some(request))
                    .send()
                    .await
                    .map_err(|e| AdapterError::aws("EventBridge PutEvents", e))?;
                // Answers come in the order of the request's entries.
                Ok(out
                    .entries()
                    .iter()
                    .map(|a| {
                        a.error_code().map(|code| {
                            format!("{code}: {}", a.error_message().unwrap_or_default())
                        })
                    })
                    .collect())
            }
        })
        .await
    }
}
