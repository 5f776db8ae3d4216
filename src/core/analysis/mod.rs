//! Rules, profiles and the engine that turns observations into verdicts.

pub mod catalog;
pub mod engine;
pub mod finding;
pub mod guidance;
pub mod profile;
pub mod rules;

pub use engine::{Engine, HandshakeReport, Report, Verdict};
pub use finding::{CertRef, Evidence, Finding};
pub use profile::{Effect, Outcome, Profile};
