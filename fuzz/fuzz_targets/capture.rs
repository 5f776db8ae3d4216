//! Fuzz target `capture`: see `edgetap::fuzzing::capture`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::capture(data));
