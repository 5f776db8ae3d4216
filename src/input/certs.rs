//! Reading certificate files: PEM bundles (leaf first), a single DER
//! certificate, or a PKCS#7 bundle (`.p7b`, PEM or DER: certificate teams hand
//! chains out this way), recognised by content, not by extension. A private key
//! beside the certificates in a PEM bundle is skipped with a note, never read
//! further or kept.
//!
//! Every error names the file and says what is wrong with it, so an engineer who
//! passed a private key or a truncated paste knows at once.

use std::path::{Path, PathBuf};

use thiserror::Error;
use x509_parser::pem::Pem;

use crate::core::x509::CertInfo;

/// Why a certificate file could not be used.
#[derive(Debug, Error)]
pub enum InputError {
    /// The file could not be read.
    // The OS error is in the message, not a chained source, so it is said once.
    #[error("{path}: cannot read the file: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: the file is empty; expected a PEM certificate bundle or one DER certificate")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A PEM block is something other than a certificate.
    #[error(
        "{path}: PEM block {index} is a {label}, not a certificate; give the certificate chain (BEGIN CERTIFICATE blocks)"
    )]
    NotCertificatePem {
        /// The file.
        path: PathBuf,
        /// 1-based block number.
        index: usize,
        /// The PEM label found.
        label: String,
    },
    /// A PEM block is cut short or its base64 is damaged.
    #[error(
        "{path}: PEM block {index} is truncated or damaged ({reason}); copy the whole block from BEGIN to END again"
    )]
    BadPem {
        /// The file.
        path: PathBuf,
        /// 1-based block number.
        index: usize,
        /// What the decoder said.
        reason: String,
    },
    /// A block decodes but is not a valid certificate.
    #[error("{path}: certificate {index} is not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// 1-based certificate number.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// A PKCS#12 file that could not be opened.
    #[error("{path}: a PKCS#12 (.p12/.pfx) file: {reason}")]
    Pkcs12 {
        /// The file.
        path: PathBuf,
        /// Why: no password to ask for, a wrong password, damage.
        reason: String,
    },
    /// Neither PEM nor DER.
    #[error("{path}: not a certificate: {reason}")]
    NotCertificate {
        /// The file.
        path: PathBuf,
        /// What the file is instead, and what to give or run.
        reason: String,
    },
}

/// What a file that is neither PEM nor a DER certificate is, in words, with
/// what to give or run instead: a capture, a PKCS#7/#12 file or a key, text,
/// or bytes nothing recognises.
fn what_it_is(bytes: &[u8]) -> String {
    let capture = matches!(
        bytes.get(..4),
        Some(
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x0a, 0x0d, 0x0d, 0x0a]
        )
    );
    if capture || bytes.starts_with(&[0x1f, 0x8b]) {
        return "it is a packet capture (pcap, pcapng or gzip); judge the handshakes in it with `edgetap replay FILE`".into();
    }
    if let Some(kind) = der_kind(bytes) {
        return kind.to_owned();
    }
    let text = bytes
        .iter()
        .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        .count();
    if text * 10 >= bytes.len() * 9 {
        return "it is text without a BEGIN CERTIFICATE block; give the certificate chain as PEM (BEGIN CERTIFICATE blocks) or DER".into();
    }
    "it is neither PEM nor a DER X.509 certificate; give the certificate chain as PEM (BEGIN CERTIFICATE blocks) or DER".into()
}

/// What a DER file that is not a certificate most likely is, from its first
/// elements, with what to do about it; `None` when it does not look like
/// anything certificate teams hand out. (By hand: a few bytes of structure,
/// not worth a PKCS#7/#12 parser that would then be unused.)
fn der_kind(der: &[u8]) -> Option<&'static str> {
    // SEQUENCE, its length (short or long form), then the first element.
    if der.first() != Some(&0x30) {
        return None;
    }
    let len_len = match der.get(1)? {
        l if *l < 0x80 => 0,
        l => usize::from(l & 0x7f),
    };
    let first = der.get(2 + len_len..)?;
    match first {
        // OBJECT IDENTIFIER 1.2.840.113549.1.7.x: a PKCS#7 ContentInfo.
        [
            0x06,
            0x09,
            0x2a,
            0x86,
            0x48,
            0x86,
            0xf7,
            0x0d,
            0x01,
            0x07,
            ..,
        ] => Some(
            "a PKCS#7 (.p7b) bundle; take its certificates out with `openssl pkcs7 -inform DER -print_certs -in FILE`",
        ),
        // INTEGER 3: the version of a PKCS#12 PFX.
        [0x02, 0x01, 0x03, ..] => Some(
            "a PKCS#12 (.p12/.pfx) file, which also holds a private key: `inspect` opens it (with --password, or asking on the terminal); elsewhere take the certificates out with `openssl pkcs12 -nokeys -in FILE`",
        ),
        // INTEGER 0 or 1: PKCS#8 / PKCS#1 / SEC1 private keys start this way.
        [0x02, 0x01, 0x00 | 0x01, ..] => Some(
            "a private key (DER), not a certificate; give the server's certificate file instead",
        ),
        _ => None,
    }
}

/// Read a file holding one chain (or a trust bundle): DER certificates in file order.
pub fn load_certificates(path: &Path) -> Result<Vec<Vec<u8>>, InputError> {
    let bytes = std::fs::read(path).map_err(|cause| InputError::Read {
        path: path.to_owned(),
        cause,
    })?;
    parse_certificates(&bytes, path)
}

/// As [`load_certificates`], and a PKCS#12 file is opened with the password
/// `password` gives (asked for only when the file is one).
pub fn load_certificates_with(
    path: &Path,
    password: &mut dyn FnMut(&Path) -> Result<String, String>,
) -> Result<Vec<Vec<u8>>, InputError> {
    let bytes = std::fs::read(path).map_err(|cause| InputError::Read {
        path: path.to_owned(),
        cause,
    })?;
    if !is_pkcs12(&bytes) {
        return parse_certificates(&bytes, path);
    }
    let fail = |reason: String| InputError::Pkcs12 {
        path: path.to_owned(),
        reason,
    };
    let secret = password(path).map_err(fail)?;
    pkcs12_certificates(&bytes, &secret).map_err(fail)
}

/// True when the bytes look like a PKCS#12 PFX: a DER SEQUENCE whose first
/// element is INTEGER 3 (its version).
pub fn is_pkcs12(bytes: &[u8]) -> bool {
    der_kind(bytes).is_some_and(|k| k.contains("PKCS#12"))
}

/// The certificates of a PKCS#12 file (p12-keystore decodes and decrypts it),
/// leaf first. The library decrypts any private key inside too: it is dropped
/// at once, never printed or kept.
pub fn pkcs12_certificates(bytes: &[u8], password: &str) -> Result<Vec<Vec<u8>>, String> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password).map_err(|e| {
        format!("it does not open with that password, or it is damaged ({e}); check the password the certificate team gave")
    })?;
    let p12_keystore::Pkcs12Archive { keys, certs, .. } = archive;
    drop(keys);
    let certs: Vec<CertInfo> = certs
        .iter()
        .filter_map(|bag| CertInfo::parse(bag.cert.as_der()).ok())
        .collect();
    if certs.is_empty() {
        return Err("it holds no certificate".into());
    }
    Ok(chain_order(certs))
}

/// Parse file contents (see [`load_certificates`]); `path` is used in messages only.
pub fn parse_certificates(bytes: &[u8], path: &Path) -> Result<Vec<Vec<u8>>, InputError> {
    let path = path.to_owned();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Empty { path });
    }
    if !contains(bytes, b"-----BEGIN ") {
        if let Some(certs) = pkcs7_certificates(bytes) {
            return certs.map_err(|reason| InputError::NotCertificate { path, reason });
        }
        return match CertInfo::parse(bytes) {
            Ok(_) => Ok(vec![bytes.to_vec()]),
            Err(_) => Err(InputError::NotCertificate {
                path,
                reason: what_it_is(bytes),
            }),
        };
    }
    let mut certs = Vec::new();
    let mut skipped_key = None;
    for (i, block) in Pem::iter_from_buffer(bytes).enumerate() {
        let index = i + 1;
        let pem = block.map_err(|e| InputError::BadPem {
            path: path.clone(),
            index,
            reason: e.to_string(),
        })?;
        if pem.label == "PKCS7" || pem.label == "PKCS #7 SIGNED DATA" || pem.label == "CMS" {
            match pkcs7_certificates(&pem.contents) {
                Some(Ok(found)) => certs.extend(found),
                Some(Err(reason)) => {
                    return Err(InputError::BadCertificate {
                        path,
                        index,
                        reason,
                    });
                }
                None => {
                    return Err(InputError::BadCertificate {
                        path,
                        index,
                        reason: "the PKCS#7 block is not a ContentInfo".into(),
                    });
                }
            }
            continue;
        }
        if pem.label.ends_with("PRIVATE KEY") {
            // A key pasted beside the certificates (a server's own bundle): not
            // ours to read, never decoded or kept; said once below.
            skipped_key.get_or_insert((index, pem.label));
            continue;
        }
        if pem.label != "CERTIFICATE"
            && pem.label != "TRUSTED CERTIFICATE"
            && pem.label != "X509 CERTIFICATE"
        {
            return Err(InputError::NotCertificatePem {
                path,
                index,
                label: pem.label,
            });
        }
        CertInfo::parse(&pem.contents).map_err(|e| InputError::BadCertificate {
            path: path.clone(),
            index,
            reason: e.to_string().replace("not a valid X.509 certificate: ", ""),
        })?;
        certs.push(pem.contents);
    }
    match skipped_key {
        // Only a key: the wrong file, not a bundle with a key in it (one
        // error, no note about the same block before it).
        Some((index, label)) if certs.is_empty() => {
            return Err(InputError::NotCertificatePem { path, index, label });
        }
        Some((index, label)) => tracing::warn!(
            "{}: PEM block {index} is a {label}: skipped (edgetap reads only the certificates and keeps no key)",
            path.display()
        ),
        None => {}
    }
    Ok(certs)
}

/// The certificates of a PKCS#7 / CMS SignedData bundle (RFC 5652; the `cms`
/// crate decodes it), leaf first: the set is stored sorted, not in chain
/// order, so the order is rebuilt by issuer names. `None` when the bytes are
/// not a ContentInfo at all; an error when they are one without certificates.
pub fn pkcs7_certificates(der: &[u8]) -> Option<Result<Vec<Vec<u8>>, String>> {
    use cms::cert::CertificateChoices;
    use der::{Decode as _, Encode as _};
    let info = cms::content_info::ContentInfo::from_der(der).ok()?;
    // id-signedData, RFC 5652 5.1.
    if info.content_type != der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2") {
        return Some(Err(format!(
            "a PKCS#7 ContentInfo of type {}, not a SignedData certificate bundle",
            info.content_type
        )));
    }
    let signed = match info.content.decode_as::<cms::signed_data::SignedData>() {
        Ok(s) => s,
        Err(e) => return Some(Err(format!("the PKCS#7 SignedData does not decode: {e}"))),
    };
    let mut certs = Vec::new();
    for choice in signed.certificates.iter().flat_map(|set| set.0.iter()) {
        if let CertificateChoices::Certificate(cert) = choice
            && let Ok(der) = cert.to_der()
            && let Ok(info) = CertInfo::parse(&der)
        {
            certs.push(info);
        }
    }
    if certs.is_empty() {
        return Some(Err("the PKCS#7 bundle holds no certificate".into()));
    }
    Some(Ok(chain_order(certs)))
}

/// Leaf first, then each issuer by name; what is left (other branches, extra
/// roots) after, in the order found.
fn chain_order(mut certs: Vec<CertInfo>) -> Vec<Vec<u8>> {
    let issues_another = |c: &CertInfo, all: &[CertInfo]| {
        all.iter()
            .any(|o| o.sha256 != c.sha256 && o.issuer_der == c.subject_der && !o.self_issued)
    };
    let leaf = (0..certs.len())
        .find(|&i| !issues_another(&certs[i], &certs) && !certs[i].self_issued)
        .or_else(|| (0..certs.len()).find(|&i| !issues_another(&certs[i], &certs)))
        .unwrap_or(0);
    let mut ordered = vec![certs.remove(leaf)];
    while let Some(next) = ordered
        .last()
        .filter(|c| !c.self_issued)
        .and_then(|c| certs.iter().position(|o| o.subject_der == c.issuer_der))
    {
        ordered.push(certs.remove(next));
    }
    ordered.extend(certs);
    ordered.into_iter().map(|c| c.der).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(bytes: &[u8]) -> String {
        parse_certificates(bytes, Path::new("x.pem"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn messages_name_the_problem() {
        assert!(err(b"").contains("empty"));
        assert!(err(b"hello").contains("it is text without a BEGIN CERTIFICATE block"));
        assert!(err(b"\x00\x01\xff junk").contains("neither PEM nor a DER X.509"));
        let pcapng = [
            0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a,
        ];
        assert!(err(&pcapng).contains("packet capture") && err(&pcapng).contains("edgetap replay"));
        for e in [err(b"hello"), err(&pcapng)] {
            assert!(!e.contains("NomError") && !e.contains("Der("), "{e}");
        }
        assert!(
            err(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .contains("PRIVATE KEY, not a certificate")
        );
        assert!(err(b"-----BEGIN CERTIFICATE-----\nMIIB\n").contains("truncated"));
        assert!(
            err(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .contains("certificate 1 is not a valid X.509")
        );
    }
}
