//! The real binary: a cold start without its configuration fails at once, with one JSON log
//! line naming what is missing, and exit status 1 (Lambda reports an init failure).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::process::Command;

#[test]
fn a_missing_setting_fails_the_cold_start_and_names_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_tagwatch-sweep"))
        .env_clear()
        .env("TAGWATCH_INTENT", "ssm:/tagwatch/intent")
        .env("TAGWATCH_FINDINGS_LOG_GROUP", "/tagwatch/findings")
        .env("TAGWATCH_FINDINGS_BUS", "tagwatch-findings")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["service"], "tagwatch");
    assert!(
        line["error"].as_str().unwrap().contains("TAGWATCH_TABLE"),
        "{line}"
    );
}
