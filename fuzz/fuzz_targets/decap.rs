//! Fuzz target `decap`: see `edgetap::fuzzing::decap`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::decap(data));
