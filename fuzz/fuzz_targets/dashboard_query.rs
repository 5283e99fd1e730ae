//! Fuzz target: the dashboard's query strings, through `accord_fuzz::dashboard_query` (see there
//! for what it runs and checks).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = accord_fuzz::dashboard_query(data);
});
