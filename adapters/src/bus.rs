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
        let mut result: Vec<Option<String>> = vec![None; entries.len()];
        let mut pending: Vec<usize> = (0..entries.len()).collect();
        for round in 0..ENTRY_ROUNDS {
            if pending.is_empty() {
                break;
            }
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
            }
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
            let out = self
                .client
                .put_events()
                .set_entries(Some(request))
                .send()
                .await
                .map_err(|e| AdapterError::aws("EventBridge PutEvents", e))?;
            let answers = out.entries();
            let mut still = Vec::new();
            for (n, &i) in pending.iter().enumerate() {
                // An entry without an answer is not known to be accepted: sent again.
                let failed =
                    answers
                        .get(n)
                        .map_or(Some("no answer for the entry".to_string()), |a| {
                            a.error_code().map(|code| {
                                format!("{code}: {}", a.error_message().unwrap_or_default())
                            })
                        });
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
}

/// How often an entry EventBridge failed is sent before it is reported failed.
const ENTRY_ROUNDS: u32 = 4;
