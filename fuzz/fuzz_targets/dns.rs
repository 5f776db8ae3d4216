//! Fuzz target `dns`: see `edgetap::fuzzing::dns`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::dns(data));
