//! Fuzz target `decap`: see `edgetap::testing::fuzz::decap`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::decap(data));
