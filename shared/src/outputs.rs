//! What leaves the core for the outside world, as plain values: CloudWatch Embedded Metric
//! Format lines and findings-bus entries. The adapters only send them.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::verdict::{Finding, FindingKind, Stats};

/// The CloudWatch namespace of tagwatch's metrics.
pub const NAMESPACE: &str = "Tagwatch";

/// The metric counts of one invocation (or run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MetricCounts {
    pub violations: u64,
    pub access_denied: u64,
    pub access_denied_spikes: u64,
    pub unevaluated: u64,
    pub events_processed: u64,
    pub malformed_events: u64,
}

impl MetricCounts {
    /// The counts of a watcher's statistics plus the malformed events met outside it.
    pub fn from_stats(stats: &Stats, malformed: u64) -> Self {
        MetricCounts {
            violations: stats.violations,
            access_denied: stats.access_denied,
            access_denied_spikes: stats.spikes,
            unevaluated: stats.unevaluated,
            events_processed: stats.activities + stats.status_events + stats.skipped,
            malformed_events: malformed,
        }
    }
}

/// One Embedded Metric Format line: the metrics above under [`NAMESPACE`], per the single
/// low-cardinality dimension `Function` and as an account-wide total (no dimension). High-cardinality facts (ARNs, ids) go in
/// `properties`, which CloudWatch keeps searchable in the log but never turns into metrics.
pub fn emf_line(
    function: &str,
    counts: &MetricCounts,
    timestamp_ms: i64,
    properties: &[(&str, Value)],
) -> String {
    let metrics: [(&str, u64); 6] = [
        ("Violations", counts.violations),
        ("AccessDenied", counts.access_denied),
        ("AccessDeniedSpikes", counts.access_denied_spikes),
        ("Unevaluated", counts.unevaluated),
        ("EventsProcessed", counts.events_processed),
        ("MalformedEvents", counts.malformed_events),
    ];
    let mut root = Map::new();
    root.insert(
        "_aws".to_string(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                // Per function, and the account-wide total that alarms watch.
                "Dimensions": [["Function"], []],
                "Metrics": metrics.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        }),
    );
    root.insert("Function".to_string(), Value::String(function.to_string()));
    for (name, value) in metrics {
        root.insert(name.to_string(), json!(value));
    }
    for (k, v) in properties {
        // Properties never shadow the metric members.
        root.entry((*k).to_string()).or_insert_with(|| v.clone());
    }
    Value::Object(root).to_string()
}

/// One `PutEvents` entry for the findings bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusEntry {
    pub source: &'static str,
    pub detail_type: &'static str,
    /// The finding, as JSON.
    pub detail: String,
}

/// The bus entry of a finding that should page or route: violations, spikes and unevaluated
/// runs (single AccessDenied calls are metrics and log lines, not alerts).
pub fn bus_entry(finding: &Finding) -> Option<BusEntry> {
    let detail_type = match finding.kind {
        FindingKind::Violation => "Tagwatch Violation",
        FindingKind::AccessDeniedSpike => "Tagwatch AccessDenied Spike",
        FindingKind::Unevaluated => "Tagwatch Unevaluated",
        FindingKind::AccessDenied => return None,
    };
    Some(BusEntry {
        source: "tagwatch",
        detail_type,
        detail: serde_json::to_string(finding).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{Actual, FindingSeverity};

    #[test]
    fn emf_has_the_metrics_and_only_a_low_cardinality_dimension() {
        let counts = MetricCounts {
            violations: 2,
            events_processed: 5,
            malformed_events: 1,
            ..MetricCounts::default()
        };
        let line = emf_line(
            "cloudtrail-watcher",
            &counts,
            1_795_165_736_000,
            &[
                ("principals", json!(["arn:aws:sts::1:assumed-role/R/s"])),
                ("Violations", json!(99)),
            ],
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Tagwatch");
        assert_eq!(cw["Dimensions"], json!([["Function"], []]));
        let names: Vec<&str> = cw["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Violations",
                "AccessDenied",
                "AccessDeniedSpikes",
                "Unevaluated",
                "EventsProcessed",
                "MalformedEvents"
            ]
        );
        assert_eq!(v["Violations"], 2, "a property cannot overwrite a metric");
        assert_eq!(v["MalformedEvents"], 1);
        assert_eq!(v["Function"], "cloudtrail-watcher");
        assert_eq!(v["principals"][0], "arn:aws:sts::1:assumed-role/R/s");
        assert_eq!(v["_aws"]["Timestamp"], 1_795_165_736_000_i64);
    }

    fn finding(kind: FindingKind) -> Finding {
        Finding {
            kind,
            severity: FindingSeverity::High,
            finding_id: "f".into(),
            event_id: "e".into(),
            event_time: "2026-11-20T09:00:00Z".into(),
            account: "1".into(),
            region: "us-east-1".into(),
            principal: None,
            principal_entry: None,
            action: None,
            resource: None,
            document: None,
            command_id: None,
            session_id: None,
            intended: None,
            actual: Actual::Allowed,
            statements: Vec::new(),
            reason: "r".into(),
            unknown_keys: Vec::new(),
            error_code: None,
            error_message: None,
            denied_calls: None,
            window_seconds: None,
        }
    }

    #[test]
    fn bus_entries_for_alerts_only() {
        let v = bus_entry(&finding(FindingKind::Violation)).unwrap();
        assert_eq!(v.source, "tagwatch");
        assert_eq!(v.detail_type, "Tagwatch Violation");
        let detail: Value = serde_json::from_str(&v.detail).unwrap();
        assert_eq!(detail["kind"], "violation");
        assert_eq!(
            bus_entry(&finding(FindingKind::AccessDeniedSpike))
                .unwrap()
                .detail_type,
            "Tagwatch AccessDenied Spike"
        );
        assert_eq!(
            bus_entry(&finding(FindingKind::Unevaluated))
                .unwrap()
                .detail_type,
            "Tagwatch Unevaluated"
        );
        assert!(bus_entry(&finding(FindingKind::AccessDenied)).is_none());
    }
}
