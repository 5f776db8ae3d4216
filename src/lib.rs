//! edgetap: see, handshake by handshake, which certificate chain each Cisco
//! collaboration server presents, and why a real client would prompt or fail.
//!
//! ```text
//! inspect (files) ─┐                                    ┌─> terminal text
//! probe   (TLS)   ─┤                                    │
//! proxy   (relay) ─┼─> Observation ─> Engine ─> Report ─┼─> JSON
//! replay  (pcap)  ─┘                                    └─> pcapng (verdict comments, keys)
//! ```
//!
//! [`core`] does no I/O: it takes bytes and values and returns values. The
//! command shells ([`cmd`]) read files and sockets, pass `now` in, and print.

pub mod clock;
pub mod cmd;
pub mod core;
pub mod input;
#[cfg(feature = "demo")]
pub mod lab;
pub mod logs;
pub mod net;
pub mod proxy;
pub mod sink;
#[doc(hidden)]
pub mod testing;
pub mod threads;
