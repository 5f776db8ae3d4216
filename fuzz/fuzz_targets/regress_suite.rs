//! Fuzz target `regress_suite`: see `edgetap::fuzzing::regress_suite`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::regress_suite(data));
