//! Fuzz target `tls_stream`: see `edgetap::testing::fuzz::tls_stream`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::tls_stream(data));
