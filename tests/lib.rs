//! Cross-crate tests for tagwatch, and the fixture loaders they share.
//!
//! The tests live beside this library: `scenarios.rs` runs the JSON scenarios in `scenarios/`,
//! which hold the evaluator to the IAM policies the AWS Systems Manager documentation gives for
//! restricting Run Command and Session Manager (the file format is described at its top), and
//! `events.rs` runs every sample in `events/` through the core. The AWS adapters' tests use the
//! same loaders.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a step that fails panics and fails the test, with its message"
)]

use std::path::{Path, PathBuf};

pub mod fault_proxy;
pub mod http;
pub mod runtime_api;

use tagwatch_core::intent::inventory::Inventory;
use tagwatch_core::watch::event::{normalize, Event};
use tagwatch_core::Intent;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A workspace binary, built beside the running test's `deps/` folder (`cargo xtask test`, or
/// `cargo build --workspace --bins`, builds them).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask test` (or `cargo test --workspace`), which builds the function binaries",
        path.display()
    );
    path
}

/// A child process, killed and reaped on drop.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The text of a file under the repository root.
pub fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `examples/intent.json` with its policy files.
pub fn intent() -> Intent {
    example_intent(&read("examples/intent.json"))
}

/// An intent text whose `{"file": ...}` policies are read from `examples/` (a variant of the
/// example intent).
pub fn example_intent(text: &str) -> Intent {
    let dir = root().join("examples");
    let mut load = |p: &str| {
        std::fs::read_to_string(dir.join(p))
            .map(|t| (p.to_string(), t))
            .map_err(|e| e.to_string())
    };
    Intent::parse(text, Some("examples/intent.json"), &mut load)
        .unwrap()
        .value
}

/// `examples/inventory.json`.
pub fn inventory() -> Inventory {
    Inventory::parse(&read("examples/inventory.json"), None).unwrap()
}

/// The raw JSON of a file in `events/`.
pub fn event_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&read(&format!("events/{name}"))).unwrap()
}

/// Every CloudTrail record of the bundled events, in file-name order: the `detail` of each
/// "AWS API Call via CloudTrail" event and the records of each log file.
pub fn cloudtrail_records() -> Vec<serde_json::Value> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    let mut records = Vec::new();
    for path in names {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Some(rs) = v.get("Records").and_then(|r| r.as_array()) {
            records.extend(rs.iter().cloned());
        } else if v.get("detail-type").and_then(|t| t.as_str())
            == Some("AWS API Call via CloudTrail")
        {
            records.extend(v.get("detail").cloned());
        }
    }
    records
}

/// A file in `events/`, normalised.
pub fn event(name: &str) -> Event {
    normalize(&event_json(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// An intent where only junior engineers are listed (with no policies) and spikes trip at
/// three AccessDenied calls within `window_seconds`.
pub fn spike_intent(window_seconds: u64) -> Intent {
    let text = format!(
        r#"{{"principals":[{{"name":"juniors","match":"arn:aws:iam::111122223333:role/JuniorEngineer","policies":[]}}],"spike":{{"threshold":3,"window_seconds":{window_seconds}}}}}"#
    );
    Intent::parse(&text, None, &mut |_: &str| Err("no files".to_string()))
        .unwrap()
        .value
}

/// The AccessDenied SendCommand sample with its own event id and time (`HH:MM:SS` on the
/// sample's day).
pub fn denied_at(event_id: &str, time: &str) -> Event {
    normalize(&denied_json_at(event_id, time)).unwrap()
}

/// [`denied_at`] as the EventBridge JSON a function receives (the envelope `id` is the event
/// id too).
pub fn denied_json_at(event_id: &str, time: &str) -> serde_json::Value {
    let mut e = event_json("cloudtrail-sendcommand-access-denied.json");
    e["id"] = serde_json::json!(format!("eb-{event_id}"));
    e["detail"]["eventID"] = serde_json::json!(event_id);
    e["detail"]["eventTime"] = serde_json::json!(format!("2026-11-20T{time}Z"));
    e
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on a loopback port.
pub fn wait_for_port(port: u16, what: &str) {
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{what} did not start on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A moto server on loopback for one test (`pip install 'moto[server]'`; `.ci/run` installs
/// it), stopped on drop.
pub struct Moto {
    pub url: String,
    pub port: u16,
    child: std::process::Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto's server on a free loopback port and waits for it. It runs through
/// `tests/moto_serial.py` (moto's own server, answering one request at a time, so that racing
/// conditional writes behave as DynamoDB's atomic ones do) with the `python3` on PATH, which
/// must have moto (`cargo xtask test` puts its pinned virtual environment first).
pub fn moto() -> Moto {
    let port = free_port();
    let child = std::process::Command::new("python3")
        .arg(root().join("tests/moto_serial.py"))
        .args(["127.0.0.1", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start moto ({e}): run the tests with `cargo xtask test`, which installs it"
            )
        });
    wait_for_port(
        port,
        "moto (python3 tests/moto_serial.py; run the tests with `cargo xtask test`, which installs it)",
    );
    Moto {
        url: format!("http://127.0.0.1:{port}"),
        port,
        child,
    }
}

/// A function binary started without `TAGWATCH_TABLE` fails its cold start at once: exit
/// status 1 and one JSON log line (Powertools keys) naming the missing setting.
pub fn assert_cold_start_names_missing_setting(binary: &str) {
    assert_cold_start_names(binary, "TAGWATCH_TABLE");
}

/// The same for a function that misses `missing` (the backfill needs its results bucket).
pub fn assert_cold_start_names(binary: &str, missing: &str) {
    let out = std::process::Command::new(binary)
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
    assert!(line["error"].as_str().unwrap().contains(missing), "{line}");
}
