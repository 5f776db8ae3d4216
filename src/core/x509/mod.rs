//! X.509 analysis without I/O: certificate summaries, signatures, trust anchors,
//! path building and name matching.

pub mod cert;
pub mod names;
pub mod path;
pub mod revocation;
pub mod signature;
pub mod structure;
pub mod trust;

pub use cert::{CertError, CertInfo, KeyInfo, SanEntry, SignatureHash};
pub use path::{ChainPath, Link, PathEnd, PathNode};
pub use signature::SigCheck;
pub use trust::{Anchor, StoreKind, TrustStore};

/// Bit length of an RSA modulus (see [`cert`] for why x509-parser's is not used).
pub(crate) fn cert_bits(modulus: &[u8]) -> usize {
    cert::bit_length(modulus)
}

/// The signature algorithm name of a parsed certificate.
pub(crate) fn cert_sig_name(c: &x509_parser::prelude::X509Certificate<'_>) -> String {
    cert::oid_name(
        &c.signature_algorithm.algorithm,
        x509_parser::objects::oid_registry(),
    )
}
