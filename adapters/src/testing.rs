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
