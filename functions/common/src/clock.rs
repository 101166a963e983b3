//! The functions' wall clock. The core takes times as arguments; the adapters are handed them
//! (outbox and delivery items live from when they are written, log events and EMF lines are
//! stamped with it).

/// Wall-clock milliseconds since the epoch; a clock before 1970 reads as 0.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
