//! Network shells around the core: DNS, probing, and the in-process demo
//! deployment. Each turns sockets into core values and back; no verdict logic here.

pub mod lab;
pub mod pki;
pub mod probe;
pub mod resolve;
pub mod tls;
pub mod xmpp;
