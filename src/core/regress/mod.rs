//! Regression of handshake behaviour: suites of cases with expected verdicts
//! ([`suite`]), checked against the engine's reports ([`check`]), and
//! baselines that catch drift between runs ([`baseline`]). The shell
//! (`cmd::regress`) runs the cases through the same sources as the other
//! commands; nothing here does I/O.

pub mod baseline;
pub mod check;
pub mod suite;
