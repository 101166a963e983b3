//! Where an alert's reader goes next: the run in the Systems Manager console and the caller's
//! findings in CloudWatch Logs Insights. Pure functions of a finding (and, for Logs Insights,
//! the findings log group the deployment writes to), so replay and the functions agree.
//!
//! AWS documents neither deep link; the forms below are the console's own (as the console
//! writes them in its address bar):
//! - Run Command: `https://REGION.CONSOLE/systems-manager/run-command/COMMAND[/INSTANCE]?region=REGION`;
//! - Session Manager has no page per session: the session history
//!   (`…/systems-manager/session-manager/sessions?region=REGION`). A link of the form
//!   `…/session-manager/INSTANCE` would *start* a shell, so it is never built;
//! - Logs Insights: `…/cloudwatch/home?region=REGION#logsV2:logs-insights$3FqueryDetail$3D` and
//!   the query detail in the console's JSURL notation (`~(key~value…)`, strings prefixed with
//!   `'`, every character outside `[A-Za-z0-9_.-]` written `*XX`), with an absolute UTC range.
//!
//! Console hosts per partition ("AWS Management Console endpoints", AWS General Reference):
//! `console.aws.amazon.com`, `console.amazonaws.cn`, `console.amazonaws-us-gov.com`, each with
//! the region as a subdomain. Other partitions have no public console: no link.

use crate::iam::values::format_date;
use crate::intent::origins::OriginKind;
use crate::watch::finding::Finding;

/// How far back the Logs Insights link looks from the finding's event, and how far after it
/// (a finding is logged after its event: status events and the sweep come later).
pub const INSIGHTS_BEFORE_MS: i64 = 3_600_000;
pub const INSIGHTS_AFTER_MS: i64 = 900_000;

fn console_host(partition: &str) -> Option<&'static str> {
    match partition {
        "aws" => Some("console.aws.amazon.com"),
        "aws-cn" => Some("console.amazonaws.cn"),
        "aws-us-gov" => Some("console.amazonaws-us-gov.com"),
        _ => None,
    }
}

/// A region as it may stand in a host name: letters, digits and dashes only (anything else is
/// no region, and gives no link).
fn region_of(f: &Finding) -> Option<&str> {
    let r = f.meta.region.as_str();
    (!r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')).then_some(r)
}

/// `https://REGION.HOST` and the region, or `None` when the partition has no public console.
fn console_base(f: &Finding) -> Option<(String, &str)> {
    let host = console_host(&f.meta.partition)?;
    let region = region_of(f)?;
    let mut base = String::with_capacity(160);
    base.push_str("https://");
    base.push_str(region);
    base.push('.');
    base.push_str(host);
    Some((base, region))
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is percent-encoded.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters stay).
fn percent(text: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(text, NOT_UNRESERVED)
}

/// The instance or managed node id of the finding's resource, when it is one.
fn target_id(f: &Finding) -> Option<&str> {
    let arn = f.resource.as_deref()?;
    let (_, id) = arn
        .split_once(":instance/")
        .or_else(|| arn.split_once(":managed-instance/"))?;
    Some(id)
}

/// The run in the Systems Manager console: the command (on the finding's instance when it
/// names one), else the Automation execution it came from, else the session history for a
/// session; `None` when there is nothing to open.
pub fn console_link(f: &Finding) -> Option<String> {
    // Built in one buffer: every finding of a replay carries its link.
    let (mut link, region) = console_base(f)?;
    if let Some(cmd) = &f.command_id {
        link.push_str("/systems-manager/run-command/");
        link.extend(percent(cmd));
        if let Some(id) = target_id(f) {
            link.push('/');
            link.extend(percent(id));
        }
    } else if let Some(id) = f
        .origin
        .as_ref()
        .filter(|o| o.kind == OriginKind::Automation)
        .and_then(|o| o.id.as_deref())
    {
        link.push_str("/systems-manager/automation/execution/");
        link.extend(percent(id));
    } else if f.session_id.is_some()
        || f.action
            .as_deref()
            .is_some_and(|a| a == "ssm:StartSession" || a == "ssm:ResumeSession")
    {
        link.push_str("/systems-manager/session-manager/sessions");
    } else {
        return None;
    }
    link.push_str("?region=");
    link.push_str(region);
    Some(link)
}

/// A string value in the console's JSURL notation: `'` then every character outside
/// `[A-Za-z0-9_.-]` as `*XX` (its UTF-8 bytes), so no `~`, `(`, `)` or `'` of the text can end
/// the value early.
fn jsurl_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2 + 1);
    out.push('\'');
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("*{b:02x}"));
        }
    }
    out
}

/// A string literal of the Logs Insights query language.
fn query_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The Logs Insights query of a caller's findings: by its principal, and by the role behind
/// it (the role's other sessions, and its spikes, which name the role).
pub fn caller_query(f: &Finding) -> Option<String> {
    let mut filters = Vec::new();
    if let Some(p) = &f.principal {
        filters.push(format!("principal = {}", query_string(p)));
    }
    if let Some(role) = &f.session_issuer {
        filters.push(format!("session_issuer = {}", query_string(role)));
        filters.push(format!("principal = {}", query_string(role)));
    }
    if filters.is_empty() {
        return None;
    }
    Some(format!(
        "fields @timestamp, kind, severity, summary, resource, source_ip | filter {} | sort @timestamp desc | limit 200",
        filters.join(" or ")
    ))
}

/// The caller's findings in `log_group` from an hour before the finding's event to
/// [`INSIGHTS_AFTER_MS`] after it, in CloudWatch Logs Insights; `None` without a caller, a
/// console, or a representable time.
pub fn logs_insights_link(f: &Finding, log_group: &str) -> Option<String> {
    let (base, region) = console_base(f)?;
    let query = caller_query(f)?;
    let at = |ms: i64| format_date(ms).map(|d| format!("{}.000Z", d.trim_end_matches('Z')));
    let start = at(f.meta.event_epoch_ms.checked_sub(INSIGHTS_BEFORE_MS)?)?;
    let end = at(f.meta.event_epoch_ms.checked_add(INSIGHTS_AFTER_MS)?)?;
    let detail = format!(
        "~(end~{}~start~{}~timeType~'ABSOLUTE~tz~'UTC~editorString~{}~source~(~{}))",
        jsurl_string(&end),
        jsurl_string(&start),
        jsurl_string(&query),
        jsurl_string(log_group),
    );
    Some(format!(
        "{base}/cloudwatch/home?region={region}#logsV2:logs-insights$3FqueryDetail$3D{detail}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::event::{EventMeta, RunOrigin};
    use crate::watch::finding::{FindingKind, FindingSeverity};

    fn finding(partition: &str) -> Finding {
        Finding::new(
            FindingKind::Violation,
            FindingSeverity::High,
            "f".into(),
            EventMeta {
                event_id: "e".into(),
                event_time: "2024-08-02T09:08:56Z".into(),
                event_epoch_ms: 1_722_589_736_000,
                account: "111122223333".into(),
                region: "us-east-1".into(),
                partition: partition.into(),
            },
            "r".into(),
        )
    }

    #[test]
    fn a_command_opens_its_invocation_on_the_instance() {
        let mut f = finding("aws");
        f.command_id = Some("11111111-2222-3333-4444-555555555555".into());
        f.resource = Some("arn:aws:ec2:us-east-1:111122223333:instance/i-0abc".into());
        assert_eq!(
            console_link(&f).unwrap(),
            "https://us-east-1.console.aws.amazon.com/systems-manager/run-command/11111111-2222-3333-4444-555555555555/i-0abc?region=us-east-1"
        );
        // The document resource of the same command: the command itself.
        f.resource = Some("arn:aws:ssm:us-east-1::document/AWS-RunShellScript".into());
        assert!(console_link(&f)
            .unwrap()
            .ends_with("/run-command/11111111-2222-3333-4444-555555555555?region=us-east-1"));
    }

    #[test]
    fn sessions_open_the_history_never_a_shell() {
        let mut f = finding("aws-us-gov");
        f.meta.region = "us-gov-west-1".into();
        f.action = Some("ssm:StartSession".into());
        f.session_id = Some("alice-0abc".into());
        f.resource = Some("arn:aws-us-gov:ec2:us-gov-west-1:1:instance/i-0abc".into());
        let link = console_link(&f).unwrap();
        assert_eq!(
            link,
            "https://us-gov-west-1.console.amazonaws-us-gov.com/systems-manager/session-manager/sessions?region=us-gov-west-1"
        );
        assert!(!link.contains("i-0abc"));
    }

    #[test]
    fn automation_runs_open_their_execution_and_odd_places_get_no_link() {
        let mut f = finding("aws-cn");
        f.meta.region = "cn-north-1".into();
        f.origin = Some(RunOrigin {
            kind: OriginKind::Automation,
            id: Some("exec/1".into()),
            window_id: None,
            principal: None,
            setup_event_id: None,
        });
        assert_eq!(
            console_link(&f).unwrap(),
            "https://cn-north-1.console.amazonaws.cn/systems-manager/automation/execution/exec%2F1?region=cn-north-1"
        );
        f.meta.partition = "aws-iso".into();
        assert_eq!(console_link(&f), None, "no public console");
        f.meta.partition = "aws".into();
        f.meta.region = "us-east-1/../evil".into();
        assert_eq!(console_link(&f), None, "a region that is no region");
        let bare = finding("aws");
        assert_eq!(console_link(&bare), None, "nothing to open");
    }

    #[test]
    fn logs_insights_link_in_the_consoles_notation() {
        let mut f = finding("aws");
        f.principal = Some("arn:aws:sts::111122223333:assumed-role/Ops/alice".into());
        f.session_issuer = Some("arn:aws:iam::111122223333:role/Ops".into());
        let link = logs_insights_link(&f, "/tagwatch/stack/findings").unwrap();
        let (head, detail) = link.split_once("$3FqueryDetail$3D").unwrap();
        assert_eq!(
            head,
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:logs-insights"
        );
        assert!(detail.starts_with(
            "~(end~'2024-08-02T09*3a23*3a56.000Z~start~'2024-08-02T08*3a08*3a56.000Z~timeType~'ABSOLUTE~tz~'UTC~editorString~'fields*20*40timestamp"
        ), "{detail}");
        assert!(detail.ends_with("~source~(~'*2ftagwatch*2fstack*2ffindings))"));
        // The query's own characters never close the notation early.
        let editor = detail.split("editorString~").nth(1).unwrap();
        let value = editor.split('~').next().unwrap();
        assert!(!value.contains(['(', ')', '"', ' ', '|', '=']), "{value}");
        assert!(value.contains("principal*20*3d*20*22arn*3aaws*3asts*3a*3a111122223333*3aassumed-role*2fOps*2falice*22"));
        assert!(value.contains(
            "session_issuer*20*3d*20*22arn*3aaws*3aiam*3a*3a111122223333*3arole*2fOps*22"
        ));
    }

    #[test]
    fn path_parts_keep_only_rfc3986_unreserved_characters() {
        // RFC 3986 section 2.3: ALPHA DIGIT - . _ ~ stay; every other byte of the UTF-8 text
        // is %XX in upper case (section 2.1).
        assert_eq!(
            percent("i-0a.B_c~d/e f%é").to_string(),
            "i-0a.B_c~d%2Fe%20f%25%C3%A9"
        );
        assert_eq!(jsurl_string("a~b(c)'é"), "'a*7eb*28c*29*27*c3*a9");
    }

    #[test]
    fn no_caller_no_query() {
        let f = finding("aws");
        assert_eq!(logs_insights_link(&f, "/g"), None);
        let mut q = finding("aws");
        q.principal = Some("arn:aws:iam::1:user/a\"b\\c".into());
        assert_eq!(
            caller_query(&q).unwrap(),
            "fields @timestamp, kind, severity, summary, resource, source_ip | filter principal = \"arn:aws:iam::1:user/a\\\"b\\\\c\" | sort @timestamp desc | limit 200"
        );
    }
}
