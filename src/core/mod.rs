//! The sans-IO core: bytes and values in, values out.
//!
//! Architecture invariant: nothing under `core` touches sockets, files, tokio or
//! the clock. Time is passed in; inputs arrive as bytes or [`Observation`]s.

pub mod analysis;
pub mod capture;
pub mod discovery;
pub mod export;
pub mod hostport;
pub mod limits;
pub mod observation;
pub mod parallel;
pub mod regress;
pub mod timestamp;
pub mod tls;
pub mod x509;
pub mod xmpp;

pub use observation::Observation;
