//! Reading inputs: files, stdin, intent files with their referenced policies.

use std::io::Read;
use std::path::{Path, PathBuf};

use tagwatch_core::diag;
use tagwatch_core::diag::Rejected;
use tagwatch_core::iam::policy::Parsed;
use tagwatch_core::{Diagnostic, Intent, NamedPolicy, Policy};

/// Why an input could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An output file that cannot be written (`replay --report`).
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", diag::render(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("{0}")]
    Usage(String),
    /// A result that cannot be written as JSON.
    #[error("cannot write the result as JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The AWS client runtime could not start (`--inventory-from-aws`).
    #[cfg(feature = "aws")]
    #[error("cannot start the AWS client runtime: {0}")]
    AwsRuntime(#[source] std::io::Error),
    /// An AWS call failed (`--inventory-from-aws`); the adapter error keeps the SDK's chain.
    #[cfg(feature = "aws")]
    #[error("--inventory-from-aws: {0}")]
    Aws(#[source] tagwatch_aws::AdapterError),
    /// An S3 archive that cannot be listed (`replay s3://...`).
    #[cfg(feature = "aws")]
    #[error("cannot list `{url}`: {source}")]
    S3 {
        url: String,
        #[source]
        source: tagwatch_aws::AdapterError,
    },
}

impl From<Rejected> for InputError {
    fn from(e: Rejected) -> Self {
        InputError::Invalid(e.diagnostics)
    }
}

/// Reads a file, or stdin for `-`.
pub fn read_text(path: &str) -> Result<String, InputError> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|source| InputError::Read {
                path: "<stdin>".to_string(),
                source,
            })?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_string(),
        source,
    })
}

/// Loads one IAM policy file; `lints` adds `check`'s pitfall warnings.
pub fn load_policy(path: &Path, lints: bool) -> Result<Parsed<NamedPolicy>, InputError> {
    let name = path.display().to_string();
    let text = read_text(&name)?;
    let parsed = if lints {
        Policy::check(&text, Some(&name))?
    } else {
        Policy::parse(&text, Some(&name))?
    };
    Ok(Parsed {
        value: NamedPolicy {
            name,
            policy: parsed.value,
        },
        warnings: parsed.warnings,
    })
}

/// Loads an intent file; `{"file": ...}` policies are read relative to its directory.
/// `lints` adds `check`'s pitfall warnings.
pub fn load_intent(path: &Path, lints: bool) -> Result<Parsed<Intent>, InputError> {
    let name = path.display().to_string();
    let text = read_text(&name)?;
    let base: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut loader = |rel: &str| {
        let full = base.join(rel);
        let shown = full.display().to_string();
        std::fs::read_to_string(&full)
            .map(|t| (shown, t))
            .map_err(|e| e.to_string())
    };
    // Suppressions are bounded by today (at most a year out) and warned about once expired.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    if lints {
        Ok(Intent::check_at(&text, Some(&name), &mut loader, now_ms)?)
    } else {
        Ok(Intent::parse_at(&text, Some(&name), &mut loader, now_ms)?)
    }
}
