//! Fuzz target `dns`: see `edgetap::testing::fuzz::dns`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::dns(data));
