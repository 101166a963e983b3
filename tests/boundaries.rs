//! The crate boundaries the design holds to, checked on the resolved dependency graph (`cargo
//! tree`, from Cargo.lock, no build): the core has no AWS SDK, no async runtime and no I/O
//! crates, and the CLI built without its `aws` feature has no AWS SDK and no tokio.
#![expect(
    clippy::expect_used,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use std::path::Path;
use std::process::Command;

/// The normal (non-dev, non-build) dependencies of `package` with `extra` cargo arguments, one
/// crate name per line.
fn dependencies(package: &str, extra: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            package,
            "-e",
            "normal",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .args(extra)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn forbidden<'a>(deps: &'a [String], prefixes: &[&str]) -> Vec<&'a String> {
    deps.iter()
        .filter(|d| prefixes.iter().any(|p| d.starts_with(p)))
        .collect()
}

#[test]
fn the_core_has_no_aws_sdk_no_async_runtime_no_io() {
    let deps = dependencies("tagwatch-core", &[]);
    assert!(deps.iter().any(|d| d == "tagwatch-core"), "{deps:?}");
    let bad = forbidden(
        &deps,
        &["aws-", "tokio", "hyper", "reqwest", "lambda_runtime", "mio"],
    );
    assert!(bad.is_empty(), "the core depends on {bad:?}");
}

#[test]
fn the_cli_without_its_aws_feature_has_no_aws_sdk_and_no_tokio() {
    let with = dependencies("tagwatch", &[]);
    assert!(
        !forbidden(&with, &["aws-sdk-ec2"]).is_empty(),
        "the default CLI has --inventory-from-aws: {with:?}"
    );
    let without = dependencies("tagwatch", &["--no-default-features"]);
    let bad = forbidden(&without, &["aws-", "tagwatch-aws", "tokio", "hyper"]);
    assert!(bad.is_empty(), "the CLI without `aws` depends on {bad:?}");
}
