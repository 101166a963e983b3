//! The event normaliser: never a panic; every JSON input is an event (relevant), skipped, or
//! malformed with a JSON path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::watch::event::{normalize, Event};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match normalize(&v) {
        Ok(Event::Skipped(_)) => {}
        Ok(e) => assert!(e.meta().is_some(), "a relevant event without an id"),
        Err(e) => assert!(e.path.starts_with('$'), "an error without a JSON path: {e}"),
    }
    // The failure-destination wrapper and its payload decide alike.
    let inner = tagwatch_core::watch::event::unwrap_destination(&v);
    let _ = normalize(inner);
});
