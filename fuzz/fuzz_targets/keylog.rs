//! Fuzz target `keylog`: see `edgetap::fuzzing::keylog`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::keylog(data));
