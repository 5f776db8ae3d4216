//! Fuzz target `chain`: see `edgetap::testing::fuzz::chain`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::chain(data));
