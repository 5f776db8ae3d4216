//! Fuzz target `xmpp`: see `edgetap::fuzzing::xmpp`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edgetap::fuzzing::xmpp(data));
