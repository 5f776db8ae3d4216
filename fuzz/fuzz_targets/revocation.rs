//! Fuzz target `revocation`: see `edgetap::testing::fuzz::revocation`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::revocation(data));
