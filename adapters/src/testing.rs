//! Helpers for tests against a local AWS emulator (moto's server): an SDK configuration for an
//! endpoint with static test credentials, and the DynamoDB table the functions use. Enabled by
//! the `testing` feature (dev-dependencies only).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
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

/// Creates the correlation table: `pk` (S) and `sk` (S), on demand.
pub async fn create_table(conf: &SdkConfig, table: &str) -> Result<(), AdapterError> {
    let mut create = aws_sdk_dynamodb::Client::new(conf)
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in [("pk", KeyType::Hash), ("sk", KeyType::Range)] {
        create = create
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| AdapterError::aws("DynamoDB AttributeDefinition", e))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
                    .map_err(|e| AdapterError::aws("DynamoDB KeySchemaElement", e))?,
            );
    }
    create
        .send()
        .await
        .map_err(|e| AdapterError::aws("DynamoDB CreateTable", e))?;
    Ok(())
}

/// Tags the instances (`i-...`) of an inventory file's text (`{"i-...": {"Key": "Value"}}`) in
/// EC2 (`CreateTags`), e.g. the fixtures' instance ids from `examples/inventory.json`.
pub async fn tag_instances(conf: &SdkConfig, inventory_json: &str) -> Result<(), AdapterError> {
    let inventory: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        serde_json::from_str(inventory_json).map_err(|e| AdapterError::Corrupt {
            key: "inventory".to_string(),
            reason: e.to_string(),
        })?;
    let ec2 = aws_sdk_ec2::Client::new(conf);
    for (id, tags) in inventory.iter().filter(|(id, _)| id.starts_with("i-")) {
        let mut req = ec2.create_tags().resources(id);
        for (k, v) in tags {
            req = req.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
        }
        req.send()
            .await
            .map_err(|e| AdapterError::aws("EC2 CreateTags", e))?;
    }
    Ok(())
}
