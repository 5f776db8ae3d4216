//! Trust anchors: the public root set every profile trusts, and the enterprise
//! store only Jabber and Expressway-C can be given.
//!
//! An anchor is a subject name and a public key (the webpki model); a full
//! certificate is kept when the store had one, for display and date checks.

use serde::Serialize;

use super::cert::{CertError, CertInfo};

/// Which store an anchor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Public CA roots: on every device, including phones and TelePresence endpoints.
    Public,
    /// Enterprise CAs: added to Jabber's and Expressway-C's stores by an administrator.
    Enterprise,
}

/// One trusted subject and key.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// Subject name DER, with its SEQUENCE header.
    pub subject_der: Vec<u8>,
    /// SubjectPublicKeyInfo DER, with its SEQUENCE header.
    pub spki_der: Vec<u8>,
    /// Subject as text.
    pub subject: String,
    /// The anchor's certificate, when the store held one.
    pub cert: Option<CertInfo>,
    /// Which store it came from.
    pub store: StoreKind,
}

impl Anchor {
    /// An anchor from a full certificate.
    pub fn from_cert(cert: CertInfo, store: StoreKind) -> Anchor {
        Anchor {
            subject_der: cert.subject_der.clone(),
            spki_der: cert.spki_der.clone(),
            subject: cert.subject.clone(),
            cert: Some(cert),
            store,
        }
    }

    /// True when `cert` is this anchor itself (same subject and key).
    pub fn is(&self, cert: &CertInfo) -> bool {
        self.subject_der == cert.subject_der && self.spki_der == cert.spki_der
    }
}

/// A set of anchors.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    /// The anchors, in the order added.
    pub anchors: Vec<Anchor>,
}

impl TrustStore {
    /// The bundled public root set (Mozilla's, via webpki-roots).
    pub fn bundled_public_roots() -> TrustStore {
        let anchors = webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .map(|ta| {
                // webpki-roots stores the *contents* of the subject and SPKI
                // SEQUENCEs; certificates carry them with the header.
                let subject_der = wrap_sequence(ta.subject.as_ref());
                let subject = x509_parser::x509::X509Name::from_der_checked(&subject_der);
                Anchor {
                    spki_der: wrap_sequence(ta.subject_public_key_info.as_ref()),
                    subject,
                    subject_der,
                    cert: None,
                    store: StoreKind::Public,
                }
            })
            .collect();
        TrustStore { anchors }
    }

    /// A store from DER certificates.
    pub fn from_der_certs(
        certs: impl IntoIterator<Item = Vec<u8>>,
        store: StoreKind,
    ) -> Result<TrustStore, CertError> {
        let anchors = certs
            .into_iter()
            .map(|der| CertInfo::parse(&der).map(|c| Anchor::from_cert(c, store)))
            .collect::<Result<_, _>>()?;
        Ok(TrustStore { anchors })
    }

    /// This store followed by `other`.
    pub fn union(&self, other: &TrustStore) -> TrustStore {
        let mut anchors = self.anchors.clone();
        anchors.extend(other.anchors.iter().cloned());
        TrustStore { anchors }
    }

    /// Number of anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// True when the store has no anchors.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// Prefix DER content with a SEQUENCE tag and definite length.
pub(crate) fn wrap_sequence(content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(0x30);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

trait NameText {
    fn from_der_checked(der: &[u8]) -> String;
}

impl NameText for x509_parser::x509::X509Name<'_> {
    fn from_der_checked(der: &[u8]) -> String {
        use x509_parser::der_parser::asn1_rs::FromDer as _;
        x509_parser::x509::X509Name::from_der(der)
            .ok()
            .and_then(|(_, n)| {
                n.to_string_with_registry(x509_parser::objects::oid_registry())
                    .ok()
            })
            .unwrap_or_else(|| "(undecodable name)".into())
    }
}

/// The subject CN of the diagnostic CA `edgetap ca init` creates: a chain it
/// issued is one edgetap forged in intercept mode, never a server's own.
pub const DIAGNOSTIC_CA_CN: &str = "edgetap diagnostic CA (test devices only)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_roots_have_readable_subjects_and_keys() {
        let store = TrustStore::bundled_public_roots();
        assert!(store.len() > 100, "webpki-roots should carry >100 roots");
        let isrg = store
            .anchors
            .iter()
            .find(|a| a.subject.contains("ISRG Root X1"))
            .expect("ISRG Root X1 is in the Mozilla set");
        use x509_parser::der_parser::asn1_rs::FromDer as _;
        assert!(x509_parser::x509::SubjectPublicKeyInfo::from_der(&isrg.spki_der).is_ok());
    }

    #[test]
    fn wrap_sequence_uses_long_form_lengths() {
        assert_eq!(wrap_sequence(&[1, 2]), vec![0x30, 2, 1, 2]);
        let long = vec![0u8; 300];
        assert_eq!(&wrap_sequence(&long)[..4], &[0x30, 0x82, 0x01, 0x2c]);
    }
}
