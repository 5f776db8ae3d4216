//! Reading certificate files: PEM bundles (leaf first) or a single DER certificate.
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
    #[error("{path}: cannot read the file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
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
    /// Neither PEM nor DER.
    #[error(
        "{path}: not a certificate: the file is neither PEM (no BEGIN CERTIFICATE line) nor DER X.509 ({reason})"
    )]
    NotCertificate {
        /// The file.
        path: PathBuf,
        /// What the DER parser said.
        reason: String,
    },
}

/// Read a file holding one chain (or a trust bundle): DER certificates in file order.
pub fn load_certificates(path: &Path) -> Result<Vec<Vec<u8>>, InputError> {
    let bytes = std::fs::read(path).map_err(|source| InputError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_certificates(&bytes, path)
}

/// Parse file contents (see [`load_certificates`]); `path` is used in messages only.
pub fn parse_certificates(bytes: &[u8], path: &Path) -> Result<Vec<Vec<u8>>, InputError> {
    let path = path.to_owned();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Empty { path });
    }
    if !contains(bytes, b"-----BEGIN ") {
        return match CertInfo::parse(bytes) {
            Ok(_) => Ok(vec![bytes.to_vec()]),
            Err(e) => Err(InputError::NotCertificate {
                path,
                reason: e.to_string().replace("not a valid X.509 certificate: ", ""),
            }),
        };
    }
    let mut certs = Vec::new();
    for (i, block) in Pem::iter_from_buffer(bytes).enumerate() {
        let index = i + 1;
        let pem = block.map_err(|e| InputError::BadPem {
            path: path.clone(),
            index,
            reason: e.to_string(),
        })?;
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
    Ok(certs)
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
        assert!(err(b"hello").contains("neither PEM"));
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
