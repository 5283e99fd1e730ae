//! Fuzz target: attestation notes from peers, through `accord_fuzz::attestation` (see there for
//! what it runs and checks).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = accord_fuzz::attestation(data);
});
