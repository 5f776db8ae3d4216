//! Network shells around the core: DNS, probing, TLS set-up, XMPP STARTTLS,
//! recording streams. Each turns sockets into core values and back; no
//! verdict logic here. (The demo deployment is `lab`.)

pub mod limits;
pub mod probe;
pub mod recording;
pub mod relay;
pub mod resolve;
pub mod revocation;
pub mod tls;
pub mod xmpp;
