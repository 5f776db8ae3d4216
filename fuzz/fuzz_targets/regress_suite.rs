//! Fuzz target `regress_suite`: see `edgetap::testing::fuzz::regress_suite`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::regress_suite(data));
