//! Findings in AWS Security Hub: `BatchImportFindings` with the ASFF the core builds
//! (`tagwatch_core::watch::asff`). A finding's ASFF `Id` is its `finding_id`, so importing it
//! again updates it. Findings Security Hub fails (`FailedFindings`) are sent again, alone, a
//! few times with backoff; the answer says per finding whether it was imported.

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, FindingProviderFields, FindingProviderSeverity, Partition, RecordState,
    Resource, Severity, SeverityLabel,
};
use aws_sdk_securityhub::Client;
use tagwatch_core::watch::asff::{self, AsffFinding};

use crate::AdapterError;

/// Security Hub, for the account's own findings (the default product).
#[derive(Debug, Clone)]
pub struct FindingsHubImport {
    client: Client,
}

fn label(l: asff::SeverityLabel) -> SeverityLabel {
    match l {
        asff::SeverityLabel::Low => SeverityLabel::Low,
        asff::SeverityLabel::Medium => SeverityLabel::Medium,
        asff::SeverityLabel::High => SeverityLabel::High,
    }
}

/// The SDK's form of one ASFF finding.
fn sdk_finding(a: &AsffFinding) -> AwsSecurityFinding {
    let resources: Vec<Resource> = a
        .resources
        .iter()
        .map(|r| {
            Resource::builder()
                .r#type(r.kind.as_str())
                .id(&r.id)
                .partition(Partition::from(r.partition.as_str()))
                .region(&r.region)
                .build()
        })
        .collect();
    let provider = FindingProviderFields::builder()
        .severity(
            FindingProviderSeverity::builder()
                .label(label(a.finding_provider_fields.severity.label))
                .original(&a.finding_provider_fields.severity.original)
                .build(),
        )
        .set_types(Some(a.finding_provider_fields.types.clone()))
        .build();
    AwsSecurityFinding::builder()
        .schema_version(a.schema_version)
        .id(&a.id)
        .product_arn(&a.product_arn)
        .generator_id(&a.generator_id)
        .aws_account_id(&a.aws_account_id)
        .set_types(Some(a.types.clone()))
        .first_observed_at(&a.first_observed_at)
        .last_observed_at(&a.last_observed_at)
        .created_at(&a.created_at)
        .updated_at(&a.updated_at)
        .severity(
            Severity::builder()
                .label(label(a.severity.label))
                .original(&a.severity.original)
                .build(),
        )
        .finding_provider_fields(provider)
        .title(&a.title)
        .description(&a.description)
        .set_source_url(a.source_url.clone())
        .set_product_fields(Some(a.product_fields.clone().into_iter().collect()))
        .set_resources(Some(resources))
        .record_state(RecordState::from(a.record_state))
        .build()
}

impl FindingsHubImport {
    pub fn new(client: Client) -> Self {
        FindingsHubImport { client }
    }

    /// Imports one batch (at most 100 findings). Per finding, `None` when Security Hub
    /// imported it (created or updated), or why not; a failure of the call itself is an
    /// error.
    pub async fn import(
        &self,
        findings: &[AsffFinding],
    ) -> Result<Vec<Option<String>>, AdapterError> {
        let sdk: Vec<AwsSecurityFinding> = findings.iter().map(sdk_finding).collect();
        crate::send_in_rounds(findings.len(), |pending| {
            let request: Vec<AwsSecurityFinding> = pending
                .iter()
                .filter_map(|&i| sdk.get(i).cloned())
                .collect();
            let ids: Vec<&str> = pending
                .iter()
                .map(|&i| findings.get(i).map_or("", |f| f.id.as_str()))
                .collect();
            async move {
                let out = self
                    .client
                    .batch_import_findings()
                    .set_findings(Some(request))
                    .send()
                    .await
                    .map_err(|e| AdapterError::aws("Security Hub BatchImportFindings", e))?;
                // Security Hub names the findings it failed by id.
                Ok(ids
                    .iter()
                    .map(|id| {
                        out.failed_findings()
                            .iter()
                            .find(|f| f.id() == Some(*id))
                            .map(|f| {
                                format!(
                                    "{}: {}",
                                    f.error_code().unwrap_or("Failed"),
                                    f.error_message().unwrap_or_default()
                                )
                            })
                    })
                    .collect())
            }
        })
        .await
    }
}
