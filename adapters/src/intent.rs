//! Loading the intent at cold start: from an SSM parameter, an S3 object, or a file bundled
//! with the function. `{"file": ...}` policies are fetched from beside the intent (sibling
//! parameters, keys or files) before the core parses it, so parsing stays synchronous and pure.

use std::collections::HashMap;

use tagwatch_core::diag::Rejected;
use tagwatch_core::Intent;

use crate::AdapterError;

/// Where the intent lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentSource {
    /// `ssm:/tagwatch/intent`: a (Secure)String parameter.
    Ssm(String),
    /// `s3://bucket/key.json`.
    S3 { bucket: String, key: String },
    /// `file:/path/intent.json` (or a plain path): bundled with the function.
    File(String),
}

/// Why the intent could not be loaded: the cold start fails with this message.
#[derive(Debug, thiserror::Error)]
pub enum IntentLoadError {
    #[error("intent source `{0}` is not `ssm:/NAME`, `s3://BUCKET/KEY` or a file path")]
    Source(String),
    #[error(transparent)]
    Aws(#[from] AdapterError),
    #[error("cannot read `{path}`: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the intent is invalid:\n{0}")]
    Invalid(#[from] Rejected),
    #[error("the inventory is invalid:\n{0}")]
    InvalidInventory(Rejected),
}

impl IntentSource {
    /// Parses `ssm:/NAME`, `s3://BUCKET/KEY`, `file:PATH` or a plain path.
    pub fn parse(text: &str) -> Result<Self, IntentLoadError> {
        if let Some(name) = text.strip_prefix("ssm:") {
            if name.is_empty() {
                return Err(IntentLoadError::Source(text.to_string()));
            }
            return Ok(IntentSource::Ssm(name.to_string()));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            return match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                    Ok(IntentSource::S3 {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                    })
                }
                _ => Err(IntentLoadError::Source(text.to_string())),
            };
        }
        let path = text.strip_prefix("file:").unwrap_or(text);
        if path.is_empty() || text.contains("://") {
            return Err(IntentLoadError::Source(text.to_string()));
        }
        Ok(IntentSource::File(path.to_string()))
    }

    /// The source as written (`ssm:/NAME`, `s3://BUCKET/KEY` or the path).
    pub fn display(&self) -> String {
        match self {
            IntentSource::Ssm(n) => format!("ssm:{n}"),
            IntentSource::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
            IntentSource::File(p) => p.clone(),
        }
    }

    /// The location of `rel`, a `{"file": ...}` reference, beside this source.
    fn sibling(&self, rel: &str) -> IntentSource {
        fn join(base: &str, rel: &str) -> String {
            match base.rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/{rel}"),
                None => rel.to_string(),
            }
        }
        match self {
            IntentSource::Ssm(n) => IntentSource::Ssm(join(n, rel)),
            IntentSource::S3 { bucket, key } => IntentSource::S3 {
                bucket: bucket.clone(),
                key: join(key, rel),
            },
            IntentSource::File(p) => IntentSource::File(join(p, rel)),
        }
    }
}

/// The clients a source may need (built once at cold start).
#[derive(Debug, Clone)]
pub struct IntentClients {
    pub ssm: aws_sdk_ssm::Client,
    pub s3: aws_sdk_s3::Client,
}

async fn fetch(source: &IntentSource, clients: &IntentClients) -> Result<String, IntentLoadError> {
    match source {
        IntentSource::Ssm(name) => {
            let out = clients
                .ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| AdapterError::aws("SSM GetParameter", e))?;
            Ok(out
                .parameter()
                .and_then(|p| p.value())
                .unwrap_or_default()
                .to_string())
        }
        IntentSource::S3 { bucket, key } => {
            let out = clients
                .s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| AdapterError::aws("S3 GetObject", e))?;
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| AdapterError::aws("S3 GetObject body", e))?
                .into_bytes();
            String::from_utf8(bytes.to_vec()).map_err(|e| {
                IntentLoadError::Aws(AdapterError::Corrupt {
                    key: source.display(),
                    reason: e.to_string(),
                })
            })
        }
        IntentSource::File(path) => {
            std::fs::read_to_string(path).map_err(|e| IntentLoadError::File {
                path: path.clone(),
                source: e,
            })
        }
    }
}

/// The `{"file": ...}` references of an intent text (best effort: a malformed intent is
/// reported by the parser afterwards).
fn references(text: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let principals = v.get("principals").and_then(serde_json::Value::as_array);
    for entry in principals.into_iter().flatten() {
        let policies = entry.get("policies").and_then(serde_json::Value::as_array);
        for p in policies.into_iter().flatten() {
            if let Some(f) = p.get("file").and_then(serde_json::Value::as_str) {
                if !out.iter().any(|o| o == f) {
                    out.push(f.to_string());
                }
            }
        }
    }
    out
}

/// Loads and validates an inventory of tags (`{"i-0123...": {"Env": "prod"}, ...}`, as
/// `tagwatch replay --inventory` reads it) from the same kinds of source as the intent.
pub async fn load_inventory(
    source: &IntentSource,
    clients: &IntentClients,
) -> Result<tagwatch_core::intent::inventory::Inventory, IntentLoadError> {
    let text = fetch(source, clients).await?;
    tagwatch_core::intent::inventory::Inventory::parse(&text, Some(&source.display()))
        .map_err(IntentLoadError::InvalidInventory)
}

/// Loads and validates the intent; warnings are returned beside it for logging.
pub async fn load_intent(
    source: &IntentSource,
    clients: &IntentClients,
    now_ms: i64,
) -> Result<(Intent, Vec<tagwatch_core::Diagnostic>), IntentLoadError> {
    let text = fetch(source, clients).await?;
    // Policy files are fetched concurrently: the cold start waits for the slowest, not the sum.
    let mut tasks = tokio::task::JoinSet::new();
    for rel in references(&text) {
        let sibling = source.sibling(&rel);
        let clients = clients.clone();
        tasks.spawn(async move {
            let fetched = fetch(&sibling, &clients)
                .await
                .map(|t| (sibling.display(), t))
                .map_err(|e| e.to_string());
            (rel, fetched)
        });
    }
    let mut files: HashMap<String, Result<(String, String), String>> = HashMap::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((rel, fetched)) => {
                files.insert(rel, fetched);
            }
            Err(e) => {
                return Err(IntentLoadError::Aws(AdapterError::permanent(
                    "intent policy fetch",
                    e.to_string(),
                )))
            }
        }
    }
    let mut loader = |rel: &str| {
        files
            .get(rel)
            .cloned()
            .unwrap_or_else(|| Err(format!("`{rel}` was not fetched")))
    };
    let parsed = Intent::parse_at(&text, Some(&source.display()), &mut loader, now_ms)?;
    Ok((parsed.value, parsed.warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_siblings() {
        assert_eq!(
            IntentSource::parse("ssm:/tagwatch/intent").unwrap(),
            IntentSource::Ssm("/tagwatch/intent".into())
        );
        assert_eq!(
            IntentSource::parse("s3://b/conf/intent.json").unwrap(),
            IntentSource::S3 {
                bucket: "b".into(),
                key: "conf/intent.json".into()
            }
        );
        assert_eq!(
            IntentSource::parse("intent.json").unwrap(),
            IntentSource::File("intent.json".into())
        );
        for bad in ["ssm:", "s3://bucket", "s3://", "http://x/y", ""] {
            assert!(IntentSource::parse(bad).is_err(), "{bad}");
        }
        let s = IntentSource::parse("ssm:/tagwatch/intent").unwrap();
        assert_eq!(
            s.sibling("policies/junior.json"),
            IntentSource::Ssm("/tagwatch/policies/junior.json".into())
        );
        let o = IntentSource::parse("s3://b/conf/intent.json").unwrap();
        assert_eq!(o.sibling("p.json").display(), "s3://b/conf/p.json");
    }

    #[test]
    fn finds_file_references() {
        let text = r#"{"principals":[{"name":"a","match":"arn:aws:iam::1:role/A","policies":[{"file":"p/a.json"},{"Version":"2012-10-17","Statement":[]}]},
                                       {"name":"b","match":"arn:aws:iam::1:role/B","policies":[{"file":"p/a.json"},{"file":"p/b.json"}]}]}"#;
        assert_eq!(references(text), ["p/a.json", "p/b.json"]);
        assert!(references("not json").is_empty());
    }
}
