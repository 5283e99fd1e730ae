//! Fuzz target: SDMX REST requests, through `accord_fuzz::sdmx_request` (see there for what it
//! runs and checks).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = accord_fuzz::sdmx_request(data);
});
