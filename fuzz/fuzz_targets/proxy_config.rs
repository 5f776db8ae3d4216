//! Fuzz target `proxy_config`: see `edgetap::fuzzing::proxy_config`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::proxy_config(data));
