//! Fuzz target: governance entries' payloads and proposed consortium documents, through
//! `accord_fuzz::governance` (see there for what it runs and checks).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = accord_fuzz::governance(data);
});
