//! Fuzz target `xmpp`: see `edgetap::testing::fuzz::xmpp`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::testing::fuzz::xmpp(data));
