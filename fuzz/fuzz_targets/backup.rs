#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = accord_fuzz::backup(data);
});
