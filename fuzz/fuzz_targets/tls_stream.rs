//! Fuzz target `tls_stream`: see `edgetap::fuzzing::tls_stream`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::tls_stream(data));
