//! Passive TLS: finding the handshake in one direction of a byte stream and
//! decoding what it shows (hellos, the certificate chain, alerts) until the
//! traffic turns encrypted.

pub mod build;
pub mod iana;
pub mod messages;
pub mod stream;

pub use messages::{Certificates, ClientHello, ServerHello};
pub use stream::{DirectionParser, TlsEvent};
