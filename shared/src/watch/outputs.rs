//! What leaves the core for the outside world, as plain values: CloudWatch Embedded Metric
//! Format lines and findings-bus entries. The adapters only send them.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::watch::counts::Counts;
use crate::watch::finding::{Finding, FindingKind, FindingSeverity};

/// The CloudWatch namespace of tagwatch's metrics.
pub const NAMESPACE: &str = "Tagwatch";

/// One Embedded Metric Format line: the metrics above under [`NAMESPACE`], per the single
/// low-cardinality dimension `Function` and as an account-wide total (no dimension). High-cardinality facts (ARNs, ids) go in
/// `properties`, which CloudWatch keeps searchable in the log but never turns into metrics.
pub fn emf_line(
    function: &str,
    counts: &Counts,
    timestamp_ms: i64,
    properties: &[(&str, Value)],
) -> String {
    let metrics: [(&str, u64); 14] = [
        ("Violations", counts.violations),
        ("AccessDenied", counts.access_denied),
        ("AccessDeniedSpikes", counts.spikes),
        ("Unevaluated", counts.unevaluated),
        ("UnloggedCommands", counts.unlogged_commands),
        ("SilentSources", counts.silent_sources),
        ("Suppressed", counts.suppressed),
        ("TerminatedSessions", counts.terminated_sessions),
        ("OriginRuns", counts.origin_runs),
        ("OriginRunsIgnored", counts.origin_ignored),
        ("AssociationCommands", counts.association_commands),
        ("EventsProcessed", counts.events_processed),
        ("MalformedEvents", counts.malformed_events),
        ("PermanentErrors", counts.permanent_errors),
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

/// The EMF lines of the `unevaluated` findings by cause: metric `Unevaluated` under the single
/// dimension `Cause` (four values: low cardinality), one line per cause counted (an EMF line
/// carries one value per dimension). Alarms watch the actionable causes only.
pub fn emf_cause_lines(counts: &Counts, timestamp_ms: i64) -> Vec<String> {
    crate::watch::finding::UnevaluatedCause::ALL
        .iter()
        .filter(|c| counts.unevaluated_by_cause.get(**c) > 0)
        .map(|cause| {
            json!({
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Cause"]],
                        "Metrics": [{"Name": "Unevaluated", "Unit": "Count"}],
                    }],
                },
                "Cause": cause.as_str(),
                "Unevaluated": counts.unevaluated_by_cause.get(*cause),
            })
            .to_string()
        })
        .collect()
}

/// The EMF lines of the runs no member account's reader role let tagwatch judge: metric
/// `NoAccess` under the dimension `Account` (one value per member account in scope, which an
/// operator bounds), one line per account counted. Each says which account's reader role to
/// deploy or fix.
pub fn emf_no_access_lines(
    by_account: &std::collections::BTreeMap<String, u64>,
    timestamp_ms: i64,
) -> Vec<String> {
    by_account
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(account, n)| {
            json!({
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Account"]],
                        "Metrics": [{"Name": "NoAccess", "Unit": "Count"}],
                    }],
                },
                "Account": account,
                "NoAccess": n,
            })
            .to_string()
        })
        .collect()
}

/// One `PutEvents` entry for the findings bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusEntry {
    pub source: &'static str,
    pub detail_type: &'static str,
    /// The finding, as JSON.
    pub detail: String,
}

impl BusEntry {
    /// The entry's size as EventBridge counts it.
    pub fn size(&self) -> usize {
        self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

/// The bus entry of a finding that should page or route: violations, spikes, unlogged commands
/// and unevaluated runs of an actionable cause, i.e. every finding of high or medium severity
/// (single AccessDenied calls and low findings are metrics and log lines, not alerts). The
/// detail is fitted to one `PutEvents` call.
///
/// A finding always serialises (plain strings, numbers and lists); should a future field not,
/// the error is returned, never an empty detail.
pub fn bus_entry(finding: &Finding) -> Result<Option<BusEntry>, serde_json::Error> {
    let Some(detail_type) = bus_detail_type(finding.kind).filter(|_| goes_on_bus(finding)) else {
        return Ok(None);
    };
    let source = "tagwatch";
    let room = BUS_BATCH_BYTES - source.len() - detail_type.len();
    Ok(Some(BusEntry {
        source,
        detail_type,
        detail: fit(finding, room)?,
    }))
}

/// Whether a finding goes on the findings bus: one that [`alerts`] and is the first of its
/// group in its dedupe window (low findings, suppressed ones and repeats only log: a person
/// hears of high findings through on-call and of medium ones through the ticket topic, once a
/// window). Delivery asks the same to know when a finding is done.
pub fn goes_on_bus(finding: &Finding) -> bool {
    alerts(finding) && finding.count <= 1
}

/// Whether a finding would reach a person if it were the first of its group in its dedupe
/// window: a kind with a bus detail-type, of high or medium severity, not suppressed. Only such
/// findings are grouped ([`crate::watch::dedupe`]).
pub fn alerts(finding: &Finding) -> bool {
    bus_detail_type(finding.kind).is_some()
        && finding.severity != FindingSeverity::Low
        && !finding.suppressed
}

/// The bus `detail-type` of a kind that goes on the bus; `None` for one that does not.
pub fn bus_detail_type(kind: FindingKind) -> Option<&'static str> {
    match kind {
        FindingKind::Violation => Some("Tagwatch Violation"),
        FindingKind::AccessDeniedSpike => Some("Tagwatch AccessDenied Spike"),
        FindingKind::Unevaluated => Some("Tagwatch Unevaluated"),
        FindingKind::UnloggedCommand => Some("Tagwatch Unlogged Command"),
        FindingKind::SilentSource => Some("Tagwatch Silent Source"),
        FindingKind::AccessDenied => None,
    }
}

/// CloudWatch Logs `PutLogEvents` limits ("CloudWatch Logs quotas"; `PutLogEvents` API
/// reference): a batch holds at most 1,048,576 bytes, counted as each message's UTF-8 bytes plus
/// 26 per event, and at most 10,000 events; one event is at most 256 KB.
pub const LOG_BATCH_BYTES: usize = 1_048_576;
pub const LOG_EVENT_OVERHEAD: usize = 26;
pub const LOG_BATCH_EVENTS: usize = 10_000;
pub const LOG_EVENT_BYTES: usize = 262_144;

/// EventBridge `PutEvents` limits ("Amazon EventBridge quotas"; "Calculating PutEvents event
/// entry size"): at most 10 entries and 256 KB per call; an entry's size is the UTF-8 bytes of
/// its `Source`, `DetailType` and `Detail` (plus 14 for a `Time`, which tagwatch does not set).
pub const BUS_BATCH_BYTES: usize = 262_144;
pub const BUS_BATCH_ENTRIES: usize = 10;

/// Consecutive batches of items of these sizes, each within `max_bytes` (counting `overhead`
/// per item) and `max_items`. An item that alone exceeds `max_bytes` gets a batch of its own
/// (callers fit items to the limit first, see [`fit`]).
pub fn batches(
    sizes: &[usize],
    overhead: usize,
    max_bytes: usize,
    max_items: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        let size = size.saturating_add(overhead);
        let full = i > start && (bytes + size > max_bytes || i - start >= max_items.max(1));
        if full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

fn shorten(text: &mut String, max_chars: usize) -> bool {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => {
            text.truncate(cut);
            text.push('…');
            true
        }
        None => false,
    }
}

/// A finding's JSON, shortened to at most `max_bytes` when it is longer: the reason, the error
/// message, the statement list and the unknown keys are cut step by step, then every string,
/// and `truncated: true` says so. Ids, kind, principal and resource survive every step but the
/// last, so a finding is never dropped for its size.
pub fn fit(finding: &Finding, max_bytes: usize) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(finding)?;
    if json.len() <= max_bytes {
        return Ok(json);
    }
    let mut f = finding.clone();
    f.truncated = true;
    for cap in [4096, 1024, 256, 64] {
        shorten(&mut f.reason, cap);
        shorten(&mut f.summary, cap);
        for m in [&mut f.error_message, &mut f.user_agent]
            .into_iter()
            .flatten()
        {
            shorten(m, cap);
        }
        f.statements.truncate(cap / 64);
        f.denied_requests.truncate(cap / 64);
        f.sessions.truncate(cap / 64);
        f.unknown_keys.truncate(cap / 32);
        let json = serde_json::to_string(&f)?;
        if json.len() <= max_bytes {
            return Ok(json);
        }
    }
    // Pathologically long ARNs or ids: every string is cut.
    for cap in [1024, 256, 64, 16] {
        for field in [
            &mut f.finding_id,
            &mut f.meta.event_id,
            &mut f.meta.event_time,
            &mut f.meta.account,
            &mut f.meta.region,
            &mut f.reason,
            &mut f.summary,
        ] {
            shorten(field, cap);
        }
        for field in [
            &mut f.principal,
            &mut f.principal_entry,
            &mut f.action,
            &mut f.resource,
            &mut f.document,
            &mut f.command_id,
            &mut f.session_id,
            &mut f.error_code,
            &mut f.error_message,
            &mut f.source_ip,
            &mut f.user_agent,
            &mut f.vpc_endpoint,
            &mut f.session_name,
            &mut f.session_issuer,
            &mut f.instance_name,
            &mut f.links.console,
            &mut f.links.logs_insights,
        ]
        .into_iter()
        .flatten()
        {
            shorten(field, cap);
        }
        f.statements.clear();
        f.unknown_keys.clear();
        f.denied_requests.clear();
        f.sessions.clear();
        let json = serde_json::to_string(&f)?;
        if json.len() <= max_bytes {
            return Ok(json);
        }
    }
    serde_json::to_string(&f)
}

/// The log event message of a finding: its JSON, fitted to one log event.
pub fn log_message(finding: &Finding) -> Result<String, serde_json::Error> {
    fit(finding, LOG_EVENT_BYTES - LOG_EVENT_OVERHEAD)
}

/// How many finding ids an EMF line lists (the rest are counted): an EMF line is one log line,
/// and must stay far below CloudWatch's 256 KB event limit.
pub const EMF_FINDING_IDS: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::event::EventMeta;

    #[test]
    fn no_access_is_counted_per_member_account() {
        let by_account: std::collections::BTreeMap<String, u64> = [
            ("444455556666".to_string(), 2),
            ("777788889999".to_string(), 0),
        ]
        .into();
        let lines = emf_no_access_lines(&by_account, 5);
        assert_eq!(lines.len(), 1, "accounts without refusals print nothing");
        let line: Value = serde_json::from_str(&lines[0]).unwrap();
        let cw = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Dimensions"], json!([["Account"]]));
        assert_eq!(cw["Metrics"][0]["Name"], "NoAccess");
        assert_eq!(line["Account"], "444455556666");
        assert_eq!(line["NoAccess"], 2);
    }

    #[test]
    fn emf_has_the_metrics_and_only_a_low_cardinality_dimension() {
        let counts = Counts {
            violations: 2,
            events_processed: 5,
            malformed_events: 1,
            ..Counts::default()
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
                "UnloggedCommands",
                "SilentSources",
                "Suppressed",
                "TerminatedSessions",
                "OriginRuns",
                "OriginRunsIgnored",
                "AssociationCommands",
                "EventsProcessed",
                "MalformedEvents",
                "PermanentErrors"
            ]
        );
        assert_eq!(v["Violations"], 2, "a property cannot overwrite a metric");
        assert_eq!(v["MalformedEvents"], 1);
        assert_eq!(v["Function"], "cloudtrail-watcher");
        assert_eq!(v["principals"][0], "arn:aws:sts::1:assumed-role/R/s");
        assert_eq!(v["_aws"]["Timestamp"], 1_795_165_736_000_i64);
    }

    #[test]
    fn unevaluated_by_cause_is_one_line_per_cause_with_a_cause_dimension() {
        let mut counts = Counts::default();
        counts.unevaluated_by_cause.unknown_tags = 2;
        counts.unevaluated_by_cause.out_of_scope = 1;
        let lines = emf_cause_lines(&counts, 1_795_165_736_000);
        assert_eq!(lines.len(), 2, "causes with nothing counted write no line");
        let v: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for (line, (cause, n)) in v.iter().zip([("unknown_tags", 2), ("out_of_scope", 1)]) {
            let cw = &line["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(cw["Namespace"], "Tagwatch");
            assert_eq!(cw["Dimensions"], json!([["Cause"]]));
            assert_eq!(
                cw["Metrics"],
                json!([{"Name": "Unevaluated", "Unit": "Count"}])
            );
            assert_eq!(line["Cause"], cause);
            assert_eq!(line["Unevaluated"], n);
        }
        assert!(emf_cause_lines(&Counts::default(), 0).is_empty());
    }

    #[test]
    fn only_high_and_medium_unsuppressed_findings_go_on_the_bus() {
        let mut f = finding(FindingKind::Unevaluated);
        f.severity = FindingSeverity::Medium;
        assert!(goes_on_bus(&f));
        assert!(bus_entry(&f).unwrap().is_some());
        f.severity = FindingSeverity::Low;
        assert!(!goes_on_bus(&f), "low only logs");
        assert_eq!(bus_entry(&f).unwrap(), None);
        let mut v = finding(FindingKind::Violation);
        v.suppressed = true;
        assert!(!goes_on_bus(&v), "suppressed only logs");
        assert_eq!(bus_entry(&v).unwrap(), None);
    }

    fn finding(kind: FindingKind) -> Finding {
        Finding::new(
            kind,
            FindingSeverity::High,
            "f".into(),
            EventMeta {
                event_id: "e".into(),
                event_time: "2026-11-20T09:00:00Z".into(),
                event_epoch_ms: 1_795_165_200_000,
                account: "1".into(),
                region: "us-east-1".into(),
                partition: "aws".into(),
            },
            "r".into(),
        )
    }

    /// CloudWatch Logs: a `PutLogEvents` batch is at most 1,048,576 bytes counting 26 bytes per
    /// event, and at most 10,000 events (PutLogEvents API reference).
    #[test]
    fn log_batches_respect_bytes_and_counts() {
        // 1,000 findings of ~2 KB: one call used to carry them all (over 1 MB).
        let sizes = vec![2_000; 1_000];
        let b = batches(
            &sizes,
            LOG_EVENT_OVERHEAD,
            LOG_BATCH_BYTES,
            LOG_BATCH_EVENTS,
        );
        assert_eq!(b.len(), 2);
        for r in &b {
            let bytes: usize = sizes[r.clone()].iter().map(|s| s + 26).sum();
            assert!(bytes <= LOG_BATCH_BYTES, "{bytes}");
        }
        assert_eq!(b.iter().map(|r| r.len()).sum::<usize>(), 1_000);
        assert_eq!(b[0], 0..517, "1,048,576 / 2,026 = 517.6; filled greedily");
        let tiny = vec![1; 25_000];
        let b = batches(&tiny, LOG_EVENT_OVERHEAD, LOG_BATCH_BYTES, LOG_BATCH_EVENTS);
        assert_eq!(
            b.iter().map(|r| r.len()).collect::<Vec<_>>(),
            [10_000, 10_000, 5_000]
        );
        assert!(batches(&[], 26, 100, 10).is_empty());
    }

    #[test]
    fn bus_batches_hold_ten_entries_and_256_kb() {
        let sizes = vec![100_000, 100_000, 100_000, 10, 10];
        let b = batches(&sizes, 0, BUS_BATCH_BYTES, BUS_BATCH_ENTRIES);
        assert_eq!(b, [0..2, 2..5]);
        let b = batches(&[10; 25], 0, BUS_BATCH_BYTES, BUS_BATCH_ENTRIES);
        assert_eq!(b, [0..10, 10..20, 20..25]);
    }

    #[test]
    fn an_oversized_finding_is_shortened_never_dropped() {
        let mut f = finding(FindingKind::Violation);
        f.reason = "x".repeat(400_000);
        f.resource = Some("arn:aws:ec2:us-east-1:1:instance/i-1".into());
        let msg = log_message(&f).unwrap();
        assert!(msg.len() + LOG_EVENT_OVERHEAD <= LOG_EVENT_BYTES);
        let back: Finding = serde_json::from_str(&msg).unwrap();
        assert!(back.truncated);
        assert_eq!(back.finding_id, f.finding_id);
        assert_eq!(back.resource, f.resource);
        assert!(back.reason.ends_with('…'));
        let entry = bus_entry(&f).unwrap().unwrap();
        assert!(entry.size() <= BUS_BATCH_BYTES);
        // Short findings are untouched.
        let small = finding(FindingKind::Violation);
        assert_eq!(
            log_message(&small).unwrap(),
            serde_json::to_string(&small).unwrap()
        );
        assert!(!log_message(&small).unwrap().contains("truncated"));
        // Even every field long: still within the limit.
        let mut huge = f.clone();
        huge.principal = Some("p".repeat(300_000));
        huge.finding_id = "i".repeat(300_000);
        assert!(fit(&huge, 10_000).unwrap().len() <= 10_000);
    }

    #[test]
    fn bus_entries_for_alerts_only() {
        let v = bus_entry(&finding(FindingKind::Violation))
            .unwrap()
            .unwrap();
        assert_eq!(v.source, "tagwatch");
        assert_eq!(v.detail_type, "Tagwatch Violation");
        let detail: Value = serde_json::from_str(&v.detail).unwrap();
        assert_eq!(detail["kind"], "violation");
        assert_eq!(
            bus_entry(&finding(FindingKind::AccessDeniedSpike))
                .unwrap()
                .unwrap()
                .detail_type,
            "Tagwatch AccessDenied Spike"
        );
        assert_eq!(
            bus_entry(&finding(FindingKind::UnloggedCommand))
                .unwrap()
                .unwrap()
                .detail_type,
            "Tagwatch Unlogged Command"
        );
        assert_eq!(
            bus_entry(&finding(FindingKind::Unevaluated))
                .unwrap()
                .unwrap()
                .detail_type,
            "Tagwatch Unevaluated"
        );
        assert!(bus_entry(&finding(FindingKind::AccessDenied))
            .unwrap()
            .is_none());
        assert!(bus_detail_type(FindingKind::AccessDenied).is_none());
    }
}
