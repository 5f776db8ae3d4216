//! Fuzz target `tcp`: see `edgetap::testing::fuzz::tcp`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::tcp(data));
