//! Log files split by structure: `logfile::split` never panics, never finds records other than
//! a JSON parser's, and never refuses a valid log file of exactly CloudTrail's shape.
//!
//! The input is tried as it is (any text) and inside `{"Records":[` ... `]}`: when the input is
//! a valid list of objects and arrays, that is a log file `split` must accept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tagwatch_core::logfile::split;

/// Where `split` accepts valid JSON, it finds the parser's records.
fn agrees(text: &[u8]) -> bool {
    let mut ranges = Vec::new();
    let accepted = split(text, &mut ranges);
    if accepted {
        if let Ok(Value::Object(top)) = serde_json::from_slice::<Value>(text) {
            let found: Vec<Value> = ranges
                .iter()
                .map(|r| serde_json::from_slice(&text[r.clone()]).expect("a record of valid JSON"))
                .collect();
            assert_eq!(Some(&Value::Array(found)), top.get("Records"));
        }
    }
    accepted
}

fuzz_target!(|data: &[u8]| {
    agrees(data);
    let mut wrapped = b"{\"Records\":[".to_vec();
    wrapped.extend_from_slice(data);
    wrapped.extend_from_slice(b"]}");
    let accepted = agrees(&wrapped);
    let mut list = b"[".to_vec();
    list.extend_from_slice(data);
    list.push(b']');
    if let Ok(records) = serde_json::from_slice::<Vec<Value>>(&list) {
        if records.iter().all(|r| r.is_object() || r.is_array()) {
            assert!(accepted, "a valid log file was refused");
        }
    }
});
