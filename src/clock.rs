//! The one place edgetap reads the system clock.
//!
//! The core never reads it: every analysis takes `now` as an argument. The
//! shells ask here, and tell apart two times that only coincide by default:
//! - wall-clock time ([`now`], [`wall`]): when something was observed, capture
//!   timestamps, certificate lifetimes edgetap itself issues (lab PKI, forged
//!   leaves, the diagnostic CA), cache ages;
//! - judgement time ([`JudgeTime`]): the instant verdicts are judged at, which
//!   `--at` fixes (to look at fixed-date fixtures, or at next month's expiry).
//!
//! CI runs the test suite under libfaketime at +400 days and +5 years
//! (`.ci/run`), so a test or command that depends on the day it runs fails there
//! first rather than on the day it would start failing for real.

use std::time::SystemTime;

use time::OffsetDateTime;

/// The current UTC time.
#[allow(clippy::disallowed_methods)] // this module is the clock
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The current wall-clock time, for capture timestamps.
#[allow(clippy::disallowed_methods)] // this module is the clock
pub fn wall() -> SystemTime {
    SystemTime::now()
}

/// The instant verdicts are judged at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JudgeTime {
    /// The clock at each judgement (a proxy running for days judges each
    /// handshake at the time it passes).
    #[default]
    Clock,
    /// A fixed instant (`--at`).
    At(OffsetDateTime),
}

impl JudgeTime {
    /// `--at` when given, else the clock.
    pub fn from_flag(at: Option<OffsetDateTime>) -> JudgeTime {
        at.map_or(JudgeTime::Clock, JudgeTime::At)
    }

    /// The instant to judge at now.
    pub fn now(self) -> OffsetDateTime {
        match self {
            JudgeTime::Clock => now(),
            JudgeTime::At(at) => at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_instant_stays_fixed_and_the_clock_moves_on() {
        let at = time::macros::datetime!(2026-06-01 00:00 UTC);
        assert_eq!(JudgeTime::from_flag(Some(at)).now(), at);
        let before = now();
        let judged = JudgeTime::from_flag(None).now();
        assert!(judged >= before && judged <= now());
    }
}
