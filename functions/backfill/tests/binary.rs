//! The real binary: a cold start without its results bucket fails at once, with one JSON log
//! line naming what is missing, and exit status 1 (Lambda reports an init failure).

#[test]
fn a_missing_setting_fails_the_cold_start_and_names_it() {
    tagwatch_tests::assert_cold_start_names(
        env!("CARGO_BIN_EXE_tagwatch-backfill"),
        "TAGWATCH_RESULTS_BUCKET",
    );
}
