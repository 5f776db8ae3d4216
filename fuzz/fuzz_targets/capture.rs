//! Fuzz target `capture`: see `edgetap::testing::fuzz::capture`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::capture(data));
