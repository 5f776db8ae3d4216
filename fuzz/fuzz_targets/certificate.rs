//! Fuzz target `certificate`: see `edgetap::fuzzing::certificate`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::certificate(data));
