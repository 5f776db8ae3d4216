//! Passive TLS: finding the handshake in one direction of a byte stream and
//! decoding what it shows (hellos, the certificate chain, alerts) until the
//! traffic turns encrypted; and, with a key log, the encrypted rest of a
//! TLS 1.3 handshake.

/// Test scaffolding (the parsers' and exporter's tests, the replay bench):
/// not part of the documented API; reached as `testing::tls_records`.
#[doc(hidden)]
pub mod build;
pub mod iana;
pub mod keylog;
pub mod messages;
pub mod stream;
pub mod tls13;

pub use messages::{Certificates, ClientHello, ServerHello};
pub use stream::{DirectionParser, TlsEvent};
