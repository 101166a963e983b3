//! Cross-crate tests for tagwatch.
//!
//! The tests live beside this (empty) library: `scenarios.rs` runs the JSON scenarios in
//! `scenarios/`, which hold the evaluator to the IAM policies the AWS Systems Manager
//! documentation gives for restricting Run Command and Session Manager. The file format is
//! described at the top of `scenarios.rs`.
