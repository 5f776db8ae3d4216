//! Fuzz target `tcp`: see `edgetap::fuzzing::tcp`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::tcp(data));
