//! Findings in the AWS Security Finding Format (ASFF), for the optional Security Hub sink.
//!
//! One Security Hub finding per tagwatch `finding_id`: the ASFF `Id` is the finding id, so a
//! finding delivered again (a retry, a redrive, a status event deciding a pair its record
//! already decided) updates the same Security Hub finding instead of adding one. Only what
//! goes on the findings bus is exported ([`exported`]): high and medium findings, not
//! suppressed, the first of their group in their dedupe window; repeats and low findings stay
//! in the findings log.
//!
//! The rules followed (Security Hub User Guide, "AWS Security Finding Format (ASFF)" and
//! "BatchImportFindings for finding providers"; API reference, `AwsSecurityFinding`):
//! - required: `SchemaVersion` (`2018-10-08`), `Id`, `ProductArn`, `GeneratorId`,
//!   `AwsAccountId`, `CreatedAt`, `UpdatedAt`, `Severity`, `Title`, `Description`, `Resources`;
//! - with the default product ARN (`arn:PARTITION:securityhub:REGION:ACCOUNT:product/ACCOUNT/
//!   default`) the importing account must be the finding's `AwsAccountId`: a finding about a
//!   member account carries the central account there, and the member account as a resource;
//! - `Title` at most 256 characters, `Description` at most 1,024, at most 32 `Resources`, at
//!   most 50 `ProductFields` with names of at most 128 and values of at most 2,048 characters;
//! - `Types` as `namespace/category/classifier` with a documented namespace and category;
//! - providers set `Severity` and `Types` through `FindingProviderFields` (the top-level ones
//!   belong to the customer once they change them with `BatchUpdateFindings`); both are sent,
//!   equal, so a new finding has them either way;
//! - timestamps in ISO 8601 with milliseconds and `Z`; an update's `UpdatedAt` is the time of
//!   the export (later than the one before).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::iam::values::format_date;
use crate::watch::finding::{Finding, FindingKind, FindingSeverity};
use crate::watch::outputs::goes_on_bus;

/// The ASFF version every finding declares.
pub const SCHEMA_VERSION: &str = "2018-10-08";
/// ASFF limits (characters, not bytes).
pub const TITLE_CHARS: usize = 256;
pub const DESCRIPTION_CHARS: usize = 1024;
pub const PRODUCT_FIELD_VALUE_CHARS: usize = 2048;
/// Findings per `BatchImportFindings` call.
pub const IMPORT_BATCH: usize = 100;

/// Where findings are imported: the product ARN (Security Hub's default product for the
/// account's own findings) and the account, region and partition it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub product_arn: String,
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Home {
    /// Reads a Security Hub product ARN: `arn:PARTITION:securityhub:REGION:ACCOUNT:product/
    /// COMPANY/PRODUCT` (for the default product, COMPANY is the account and PRODUCT
    /// `default`).
    pub fn parse(product_arn: &str) -> Result<Home, String> {
        let bad = |why: &str| {
            Err(format!(
                "`{product_arn}` is not a Security Hub product ARN ({why}); expected arn:PARTITION:securityhub:REGION:ACCOUNT:product/ACCOUNT/default"
            ))
        };
        let parts: Vec<&str> = product_arn.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts.as_slice() else {
            return bad("it has fewer than six colon-separated parts");
        };
        if *arn != "arn" || *service != "securityhub" {
            return bad("it must start with arn:PARTITION:securityhub:");
        }
        if partition.is_empty() || region.is_empty() {
            return bad("the partition and region must not be empty");
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return bad("the account must be 12 digits");
        }
        let product = resource.strip_prefix("product/").unwrap_or("");
        if product.split('/').filter(|p| !p.is_empty()).count() != 2 {
            return bad("the resource must be product/COMPANY/PRODUCT");
        }
        Ok(Home {
            product_arn: product_arn.to_string(),
            partition: (*partition).to_string(),
            region: (*region).to_string(),
            account: (*account).to_string(),
        })
    }
}

/// ASFF severity labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeverityLabel {
    Low,
    Medium,
    High,
}

impl SeverityLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            SeverityLabel::Low => "LOW",
            SeverityLabel::Medium => "MEDIUM",
            SeverityLabel::High => "HIGH",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Severity {
    pub label: SeverityLabel,
    /// tagwatch's own severity (`high`, `medium`, `low`).
    pub original: String,
}

/// `FindingProviderFields`: the provider's severity and types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProviderFields {
    pub severity: Severity,
    pub types: Vec<String>,
}

/// The ASFF resource types tagwatch names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResourceType {
    AwsAccount,
    AwsEc2Instance,
    AwsIamRole,
    AwsIamUser,
    Other,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::AwsAccount => "AwsAccount",
            ResourceType::AwsEc2Instance => "AwsEc2Instance",
            ResourceType::AwsIamRole => "AwsIamRole",
            ResourceType::AwsIamUser => "AwsIamUser",
            ResourceType::Other => "Other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    #[serde(rename = "Type")]
    pub kind: ResourceType,
    pub id: String,
    pub partition: String,
    pub region: String,
}

/// One finding in ASFF (the attributes tagwatch sets; serialises as ASFF JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AsffFinding {
    pub schema_version: &'static str,
    pub id: String,
    pub product_arn: String,
    pub generator_id: String,
    pub aws_account_id: String,
    pub types: Vec<String>,
    pub first_observed_at: String,
    pub last_observed_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub severity: Severity,
    pub finding_provider_fields: ProviderFields,
    pub title: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub product_fields: BTreeMap<String, String>,
    pub resources: Vec<Resource>,
    pub record_state: &'static str,
}

/// Whether a finding is exported to Security Hub: exactly the findings that go on the bus.
pub fn exported(f: &Finding) -> bool {
    goes_on_bus(f)
}

/// The ASFF type of a kind (`namespace/category/classifier`; namespaces and categories from
/// the ASFF types taxonomy).
pub fn finding_type(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Violation => "Unusual Behaviors/User/Systems Manager run outside tag intent",
        FindingKind::AccessDenied => "TTPs/Discovery/Systems Manager AccessDenied",
        FindingKind::AccessDeniedSpike => "TTPs/Discovery/Systems Manager AccessDenied spike",
        FindingKind::Unevaluated => {
            "Software and Configuration Checks/AWS Security Best Practices/Systems Manager run not evaluated"
        }
        FindingKind::UnloggedCommand => {
            "Software and Configuration Checks/AWS Security Best Practices/Systems Manager command output not logged"
        }
        FindingKind::SilentSource => {
            "Software and Configuration Checks/AWS Security Best Practices/Systems Manager events no longer forwarded"
        }
    }
}

/// Epoch milliseconds as an ASFF timestamp (`2024-08-02T09:08:56.000Z`); `None` outside the
/// years 0000 to 9999.
pub fn timestamp(ms: i64) -> Option<String> {
    let mut text = format_date(ms)?;
    text.pop(); // the `Z`
    text.push('.');
    let millis = ms.rem_euclid(1000);
    for place in [100, 10, 1] {
        // A remainder of 10 fits in a u8.
        text.push(char::from(b'0' + (millis / place % 10) as u8));
    }
    text.push('Z');
    Some(text)
}

/// At most `limit` characters: the text, or its start and `…`.
fn clip(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut out: String = text.chars().take(limit.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The principal as a resource: the role behind a session, a user, or the principal's own
/// ARN as `Other`.
fn principal_resource(f: &Finding) -> Option<(ResourceType, String)> {
    if let Some(role) = f.session_issuer.as_deref().filter(|a| a.contains(":role/")) {
        return Some((ResourceType::AwsIamRole, role.to_string()));
    }
    let principal = f.principal.as_deref()?;
    if principal.contains(":role/") {
        Some((ResourceType::AwsIamRole, principal.to_string()))
    } else if principal.contains(":user/") {
        Some((ResourceType::AwsIamUser, principal.to_string()))
    } else {
        Some((ResourceType::Other, principal.to_string()))
    }
}

/// The product fields: what on-call reads beside the title, each value within the limit (a
/// link that does not fit is left out rather than cut into a broken one).
fn product_fields(f: &Finding) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut put = |name: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            fields.insert(
                format!("tagwatch/{name}"),
                clip(v, PRODUCT_FIELD_VALUE_CHARS),
            );
        }
    };
    put("finding_id", Some(&f.finding_id));
    put("kind", Some(f.kind.as_str()));
    put("event_id", Some(&f.meta.event_id));
    put("event_time", Some(&f.meta.event_time));
    put("account", Some(&f.meta.account));
    put("region", Some(&f.meta.region));
    put("principal", f.principal.as_deref());
    put("principal_entry", f.principal_entry.as_deref());
    put("action", f.action.as_deref());
    put("resource", f.resource.as_deref());
    put("document", f.document.as_deref());
    put("command_id", f.command_id.as_deref());
    put("session_id", f.session_id.as_deref());
    put("intended", f.intended.map(|v| v.as_str()));
    put("cause", f.cause.map(|c| c.as_str()));
    put("source_ip", f.source_ip.as_deref());
    put("user_agent", f.user_agent.as_deref());
    put("vpc_endpoint", f.vpc_endpoint.as_deref());
    put("session_name", f.session_name.as_deref());
    put("mfa", f.mfa.map(|m| if m { "true" } else { "false" }));
    put("instance_name", f.instance_name.as_deref());
    let unknown = f.unknown_keys.join(", ");
    put("unknown_keys", Some(&unknown));
    let calls = f.denied_calls.map(|n| n.to_string());
    put("denied_calls", calls.as_deref());
    if let Some(link) = f
        .links
        .logs_insights
        .as_deref()
        .filter(|l| l.chars().count() <= PRODUCT_FIELD_VALUE_CHARS)
    {
        fields.insert("tagwatch/logs_insights".to_string(), link.to_string());
    }
    fields
}

/// A finding in ASFF, imported into `home` at `now_ms`; `None` when its event time cannot be
/// written as an ASFF timestamp (no such time parses from a record).
pub fn finding(f: &Finding, home: &Home, now_ms: i64) -> Option<AsffFinding> {
    let observed = timestamp(f.meta.event_epoch_ms)?;
    let updated = timestamp(now_ms.max(f.meta.event_epoch_ms))?;
    let label = match f.severity {
        FindingSeverity::High => SeverityLabel::High,
        FindingSeverity::Medium => SeverityLabel::Medium,
        FindingSeverity::Low => SeverityLabel::Low,
    };
    let severity = Severity {
        label,
        original: f.severity.as_str().to_string(),
    };
    let types = vec![finding_type(f.kind).to_string()];
    let partition = if f.meta.partition.is_empty() {
        home.partition.clone()
    } else {
        f.meta.partition.clone()
    };
    let resource = |kind: ResourceType, id: String| Resource {
        kind,
        id,
        partition: partition.clone(),
        region: f.meta.region.clone(),
    };
    let mut resources = Vec::new();
    if let Some((kind, id)) = principal_resource(f) {
        resources.push(resource(kind, id));
    }
    if let Some(arn) = f.resource.as_deref() {
        let kind = if arn.contains(":instance/") {
            ResourceType::AwsEc2Instance
        } else {
            ResourceType::Other
        };
        resources.push(resource(kind, arn.to_string()));
    }
    if let Some(doc) = f
        .document
        .as_deref()
        .filter(|d| Some(*d) != f.resource.as_deref())
    {
        resources.push(resource(ResourceType::Other, doc.to_string()));
    }
    resources.push(resource(
        ResourceType::AwsAccount,
        format!("AWS::::Account:{}", f.meta.account),
    ));
    let summary = if f.summary.is_empty() {
        f.reason.as_str()
    } else {
        f.summary.as_str()
    };
    Some(AsffFinding {
        schema_version: SCHEMA_VERSION,
        id: f.finding_id.clone(),
        product_arn: home.product_arn.clone(),
        generator_id: format!("tagwatch/{}", f.kind.as_str()),
        aws_account_id: home.account.clone(),
        types: types.clone(),
        first_observed_at: observed.clone(),
        last_observed_at: observed.clone(),
        created_at: observed,
        updated_at: updated,
        severity: severity.clone(),
        finding_provider_fields: ProviderFields { severity, types },
        title: clip(summary, TITLE_CHARS),
        description: clip(&f.reason, DESCRIPTION_CHARS),
        source_url: f.links.console.clone(),
        product_fields: product_fields(f),
        resources,
        record_state: "ACTIVE",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::finding::sample;

    fn home() -> Home {
        Home::parse("arn:aws:securityhub:eu-west-1:999988887777:product/999988887777/default")
            .unwrap()
    }

    fn violation() -> Finding {
        let mut f = sample(FindingKind::Violation, "f1", 1_722_589_736_042);
        f.meta.account = "111122223333".into();
        f.meta.event_time = "2024-08-02T09:08:56Z".into();
        f.principal = Some("arn:aws:sts::111122223333:assumed-role/Ops/alice".into());
        f.session_issuer = Some("arn:aws:iam::111122223333:role/Ops".into());
        f.principal_entry = Some("ops".into());
        f.action = Some("ssm:SendCommand".into());
        f.resource = Some("arn:aws:ec2:us-east-1:111122223333:instance/i-0abc".into());
        f.document = Some("arn:aws:ssm:us-east-1::document/AWS-RunShellScript".into());
        f.command_id = Some("c-1".into());
        f.reason = "the intent allows ops only on Env=dev instances".into();
        f.summary = f.summarize();
        f.links.console = Some("https://example.test/run".into());
        f
    }

    #[test]
    fn the_default_product_arn_names_the_importing_account() {
        let h = home();
        assert_eq!(h.account, "999988887777");
        assert_eq!(h.region, "eu-west-1");
        assert_eq!(h.partition, "aws");
        for bad in [
            "arn:aws:securityhub:eu-west-1:9999:product/9999/default",
            "arn:aws:sns:eu-west-1:999988887777:product/999988887777/default",
            "arn:aws:securityhub:eu-west-1:999988887777:hub/default",
            "securityhub",
        ] {
            let e = Home::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    /// ASFF: the importing account is `AwsAccountId` (default product ARN); the member account
    /// the run happened in is a resource; principal, instance and document are resources; the
    /// reason is the description; the id is the finding id (a re-import updates it).
    #[test]
    fn a_violation_in_asff() {
        let f = violation();
        let a = finding(&f, &home(), 1_722_589_800_000).unwrap();
        assert_eq!(a.schema_version, "2018-10-08");
        assert_eq!(a.id, "f1");
        assert_eq!(a.aws_account_id, "999988887777");
        assert_eq!(a.generator_id, "tagwatch/violation");
        assert_eq!(a.created_at, "2024-08-02T09:08:56.042Z");
        assert_eq!(a.first_observed_at, a.created_at);
        assert_eq!(a.updated_at, "2024-08-02T09:10:00.000Z");
        assert_eq!(a.severity.label, SeverityLabel::High);
        assert_eq!(a.finding_provider_fields.severity, a.severity);
        assert_eq!(a.finding_provider_fields.types, a.types);
        assert_eq!(a.title, f.summary);
        assert_eq!(a.description, f.reason);
        assert_eq!(a.source_url.as_deref(), Some("https://example.test/run"));
        let resources: Vec<(&str, &str)> = a
            .resources
            .iter()
            .map(|r| (r.kind.as_str(), r.id.as_str()))
            .collect();
        assert_eq!(
            resources,
            [
                ("AwsIamRole", "arn:aws:iam::111122223333:role/Ops"),
                (
                    "AwsEc2Instance",
                    "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc"
                ),
                (
                    "Other",
                    "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"
                ),
                ("AwsAccount", "AWS::::Account:111122223333"),
            ]
        );
        assert!(a
            .resources
            .iter()
            .all(|r| r.partition == "aws" && r.region == "us-east-1"));
        assert_eq!(a.product_fields["tagwatch/principal_entry"], "ops");
        assert_eq!(a.product_fields["tagwatch/command_id"], "c-1");
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["Severity"]["Label"], "HIGH");
        assert_eq!(json["Resources"][1]["Type"], "AwsEc2Instance");
        assert_eq!(json["FindingProviderFields"]["Types"][0], a.types[0]);
        assert!(json.get("SourceUrl").is_some());
    }

    /// ASFF limits: Title ≤ 256 and Description ≤ 1,024 characters, product field values ≤
    /// 2,048; at most 50 product fields and 32 resources.
    #[test]
    fn long_text_fits_the_asff_limits() {
        let mut f = violation();
        f.summary = "é".repeat(400);
        f.reason = "x".repeat(5000);
        f.user_agent = Some("u".repeat(3000));
        f.links.logs_insights = Some(format!("https://x/{}", "q".repeat(3000)));
        let a = finding(&f, &home(), 0).unwrap();
        assert_eq!(a.title.chars().count(), TITLE_CHARS);
        assert!(a.title.ends_with('…'));
        assert_eq!(a.description.chars().count(), DESCRIPTION_CHARS);
        assert_eq!(
            a.product_fields["tagwatch/user_agent"].chars().count(),
            PRODUCT_FIELD_VALUE_CHARS
        );
        assert!(
            !a.product_fields.contains_key("tagwatch/logs_insights"),
            "a link is left out, not cut"
        );
        assert!(a.product_fields.len() <= 50);
        assert!(a.product_fields.keys().all(|k| k.len() <= 128));
        assert!(a.resources.len() <= 32);
        assert_eq!(
            a.updated_at, a.created_at,
            "never updated before the event it reports"
        );
    }

    #[test]
    fn every_kind_has_a_documented_type_and_a_resource() {
        const NAMESPACES: [&str; 3] = [
            "Software and Configuration Checks/",
            "TTPs/",
            "Unusual Behaviors/",
        ];
        for kind in FindingKind::ALL {
            let t = finding_type(kind);
            assert!(NAMESPACES.iter().any(|n| t.starts_with(n)), "{t}");
            assert_eq!(t.split('/').count(), 3, "{t}");
            let a = finding(&sample(kind, "k", 0), &home(), 0).unwrap();
            assert!(!a.resources.is_empty(), "{kind:?}");
            assert!(!a.title.is_empty() || !a.description.is_empty());
        }
    }

    #[test]
    fn only_what_goes_on_the_bus_is_exported() {
        let mut f = violation();
        assert!(exported(&f));
        f.count = 2;
        assert!(!exported(&f), "a repeat of its group stays in the log");
        f.count = 1;
        f.suppressed = true;
        assert!(!exported(&f));
        let mut low = sample(FindingKind::Unevaluated, "l", 0);
        low.severity = FindingSeverity::Low;
        assert!(!exported(&low));
    }

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(timestamp(0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            timestamp(1_722_589_736_007).as_deref(),
            Some("2024-08-02T09:08:56.007Z")
        );
        assert_eq!(timestamp(i64::MAX), None);
    }
}
