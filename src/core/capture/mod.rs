//! Captures without I/O: frames in, TLS handshakes out.
//!
//! `decap` turns a frame into a TCP segment, `tcp` reassembles each direction,
//! `crate::core::tls` finds and parses the handshake in each direction, and
//! `replay` ties them together per connection and yields one record per
//! handshake, with where in the capture it was found.

pub mod decap;
pub mod observe;
pub mod replay;
pub mod tcp;
pub mod watch;
