//! Helpers for tests against a local AWS emulator (moto's server): an SDK configuration for an
//! endpoint with static test credentials, and the DynamoDB table the functions use. Enabled by
//! the `testing` feature (dev-dependencies only).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

use crate::AdapterError;

/// An SDK configuration for `endpoint` (region us-east-1, test credentials).
pub async fn config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// `conf` with the credentials of a session in another `account` (moto hands out a session
/// for any role and keeps each account's resources apart), for setting up a member account.
pub async fn config_in_account(conf: &SdkConfig, account: &str) -> Result<SdkConfig, AdapterError> {
    let out = aws_sdk_sts::Client::new(conf)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/TestSetup"))
        .role_session_name("test-setup")
        .send()
        .await
        .map_err(|e| AdapterError::aws("STS AssumeRole", e))?;
    let Some(c) = out.credentials() else {
        return Err(AdapterError::Corrupt {
            key: account.to_string(),
            reason: "AssumeRole answered without credentials".to_string(),
        });
    };
    let creds = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "test-setup",
    );
    Ok(conf
        .to_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            creds,
        ))
        .build())
}

/// Creates the correlation table as `template.yaml` does: `pk` (S) and `sk` (S), on demand,
/// with the sparse index the sweep reads (`by-park-time`: `park_queue` (S) + `parked_at` (N)).
pub async fn create_table(conf: &SdkConfig, table: &str) -> Result<(), AdapterError> {
    let attribute = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .map_err(|e| AdapterError::aws("DynamoDB AttributeDefinition", e))
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| AdapterError::aws("DynamoDB KeySchemaElement", e))
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name(crate::dynamo::PARK_INDEX)
        .key_schema(key("park_queue", KeyType::Hash)?)
        .key_schema(key("parked_at", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| AdapterError::aws("DynamoDB GlobalSecondaryIndex", e))?;
    aws_sdk_dynamodb::Client::new(conf)
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("sk", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("park_queue", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("parked_at", ScalarAttributeType::N)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(index)
        .send()
        .await
        .map_err(|e| AdapterError::aws("DynamoDB CreateTable", e))?;
    Ok(())
}

/// Makes an inventory file's text (`{"i-...": {"Key": "Value"}, "Ops-Doc": {...}}`) live: the
/// instances (`i-...`) tagged in EC2 (`CreateTags`), the documents (any other key but a managed
/// node's `mi-...`, which moto cannot tag) created in SSM as Command documents with their tags.
/// E.g. the fixtures' resources from `examples/inventory.json`.
pub async fn tag_instances(conf: &SdkConfig, inventory_json: &str) -> Result<(), AdapterError> {
    let inventory: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        serde_json::from_str(inventory_json).map_err(|e| AdapterError::Corrupt {
            key: "inventory".to_string(),
            reason: e.to_string(),
        })?;
    let ec2 = aws_sdk_ec2::Client::new(conf);
    let ssm = aws_sdk_ssm::Client::new(conf);
    for (id, tags) in &inventory {
        if id.starts_with("i-") {
            let mut req = ec2.create_tags().resources(id);
            for (k, v) in tags {
                req = req.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
            }
            req.send()
                .await
                .map_err(|e| AdapterError::aws("EC2 CreateTags", e))?;
        } else if !id.starts_with("mi-") {
            let mut req = ssm
                .create_document()
                .name(id)
                .document_type(aws_sdk_ssm::types::DocumentType::Command)
                .content(
                    r#"{"schemaVersion":"2.2","description":"tagwatch test document","mainSteps":[{"action":"aws:runShellScript","name":"run","inputs":{"runCommand":["true"]}}]}"#,
                );
            for (k, v) in tags {
                let tag = aws_sdk_ssm::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| AdapterError::aws("SSM Tag", e))?;
                req = req.tags(tag);
            }
            req.send()
                .await
                .map_err(|e| AdapterError::aws("SSM CreateDocument", e))?;
        }
    }
    Ok(())
}

/// Creates the findings log group (the template creates it; the functions only write to it).
pub async fn create_log_group(conf: &SdkConfig, group: &str) -> Result<(), AdapterError> {
    aws_sdk_cloudwatchlogs::Client::new(conf)
        .create_log_group()
        .log_group_name(group)
        .send()
        .await
        .map_err(|e| AdapterError::aws("CloudWatch Logs CreateLogGroup", e))?;
    Ok(())
}

/// Every message in a log group, every page, as `FilterLogEvents` answers.
pub async fn log_messages(conf: &SdkConfig, group: &str) -> Result<Vec<String>, AdapterError> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(conf);
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = logs
            .filter_log_events()
            .log_group_name(group)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| AdapterError::aws("CloudWatch Logs FilterLogEvents", e))?;
        out.extend(
            page.events()
                .iter()
                .filter_map(|e| e.message().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}
