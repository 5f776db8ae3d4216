//! Fuzz target `proxy_config`: see `edgetap::testing::fuzz::proxy_config`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::proxy_config(data));
