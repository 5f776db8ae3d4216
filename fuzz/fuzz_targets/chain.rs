//! Fuzz target `chain`: see `edgetap::fuzzing::chain`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::chain(data));
