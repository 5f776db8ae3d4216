//! Captures without I/O: frames in, TLS handshakes out.
//!
//! `decap` turns a frame into a TCP segment, `tcp` reassembles each direction,
//! `crate::core::tls` finds and parses the handshake in each direction, and
//! `replay` ties them together per connection and yields one record per
//! handshake, with where in the capture it was found; `decrypt` reads the
//! encrypted part of TLS 1.3 handshakes when a key log holds their secrets.

pub mod decap;
pub mod decrypt;
pub mod dns;
pub mod observe;
pub mod replay;
pub mod resume;
pub mod tcp;
pub mod watch;

use serde::Serialize;

/// What replay made of one capture file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptureFileReport {
    /// The file.
    pub file: String,
    /// "pcap", "pcapng", "+gzip".
    pub format: String,
    /// Why the file could not be read at all, if it could not.
    pub error: Option<String>,
    /// Why reading stopped before the end, if it did.
    pub truncated: Option<String>,
    /// Frame and connection counters.
    pub stats: replay::Stats,
    /// TLS handshakes found.
    pub tls_handshakes: usize,
    /// Server certificate chains found.
    pub chains: usize,
    /// TLS 1.3 handshakes, whose certificates are encrypted.
    pub tls13_handshakes: usize,
    /// Of those, the ones decrypted with a key log.
    pub decrypted: usize,
    /// TLS 1.3 handshake secrets the file itself carried (pcapng Decryption Secrets Blocks).
    pub embedded_secrets: usize,
    /// Handshakes left out: the client legs of edgetap's intercept mode,
    /// whose chain is edgetap's forged leaf (the real one is on the upstream leg).
    pub intercept_legs: usize,
    /// DNS responses read (UDP and TCP port 53).
    pub dns_responses: u64,
    /// Domains whose SRV answers (`_collab-edge._tls`, `_xmpp-client._tcp`, ...) the capture shows.
    pub dns_domains: Vec<String>,
    /// Those answers, as discovery would report them.
    #[serde(skip)]
    pub discoveries: Vec<dns::CapturedDiscovery>,
    /// One line per connection that could not be read whole.
    pub damaged: Vec<String>,
}
