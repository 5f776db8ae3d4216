//! Fuzz target `keylog`: see `edgetap::testing::fuzz::keylog`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::keylog(data));
