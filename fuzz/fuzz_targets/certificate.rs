//! Fuzz target `certificate`: see `edgetap::testing::fuzz::certificate`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::certificate(data));
