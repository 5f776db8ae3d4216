//! Fuzz target `revocation`: see `edgetap::fuzzing::revocation`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::revocation(data));
