//! Checking one certificate's signature with a candidate issuer's public key.
//!
//! x509-parser's `verify` feature covers the common algorithms through ring, but it
//! insists on RSA keys of 2048 bits or more for SHA-2. A diagnostic tool must still
//! tell "signed by this 1024-bit CA" from "forged", so small RSA keys take ring's
//! legacy verifiers here. What neither can check (DSA, MD5, odd curves) is reported
//! as [`SigCheck::Unsupported`], never as a bad signature.

use serde::Serialize;
use x509_parser::der_parser::asn1_rs::FromDer as _;
use x509_parser::prelude::X509Certificate;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// The result of checking one signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "reason", rename_all = "lowercase")]
pub enum SigCheck {
    /// The signature verifies with the issuer's key.
    Valid,
    /// The signature does not verify with the issuer's key.
    Invalid,
    /// edgetap cannot check this algorithm or key; the reason says which.
    Unsupported(String),
}

/// Check the signature of `child_der` with the public key in `issuer_spki_der`
/// (a whole SubjectPublicKeyInfo). Malformed input yields `Invalid`.
pub fn check(child_der: &[u8], issuer_spki_der: &[u8]) -> SigCheck {
    let Ok((_, child)) = X509Certificate::from_der(child_der) else {
        return SigCheck::Invalid;
    };
    let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(issuer_spki_der) else {
        return SigCheck::Invalid;
    };
    check_parsed(&child, &spki)
}

/// Check a signature over any signed structure (an OCSP response, say):
/// `data` was signed, `algorithm_der` is its AlgorithmIdentifier DER, `signature`
/// the signature bits, `spki_der` the signer's SubjectPublicKeyInfo.
pub fn check_signed(
    data: &[u8],
    algorithm_der: &[u8],
    signature: &[u8],
    spki_der: &[u8],
) -> SigCheck {
    let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(spki_der) else {
        return SigCheck::Invalid;
    };
    let Ok((_, algorithm)) = x509_parser::x509::AlgorithmIdentifier::from_der(algorithm_der) else {
        return SigCheck::Invalid;
    };
    let bits = x509_parser::der_parser::asn1_rs::BitString::new(0, signature);
    match x509_parser::verify::verify_signature(&spki, &algorithm, &bits, data) {
        Ok(()) => SigCheck::Valid,
        Err(x509_parser::error::X509Error::SignatureUnsupportedAlgorithm) => {
            SigCheck::Unsupported(format!(
                "signature algorithm {} is not supported by the verifier",
                algorithm.algorithm
            ))
        }
        Err(_) => SigCheck::Invalid,
    }
}

fn check_parsed(child: &X509Certificate<'_>, spki: &SubjectPublicKeyInfo<'_>) -> SigCheck {
    let alg = child.signature_algorithm.algorithm.to_id_string();
    let tbs = child.tbs_certificate.as_ref();
    let sig = child.signature_value.data.as_ref();

    if let Ok(PublicKey::RSA(rsa)) = spki.parsed() {
        let bits = super::cert_bits(rsa.modulus);
        let legacy: Option<&'static dyn ring::signature::VerificationAlgorithm> = match alg.as_str()
        {
            "1.2.840.113549.1.1.11" => {
                Some(&ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY)
            }
            "1.2.840.113549.1.1.13" => {
                Some(&ring::signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY)
            }
            _ => None,
        };
        if bits > 8192 {
            return SigCheck::Unsupported(format!(
                "RSA issuer key of {bits} bits is above the 8192-bit limit of the verifier"
            ));
        }
        if bits < 2048 {
            if let Some(legacy) = legacy {
                let key = ring::signature::UnparsedPublicKey::new(
                    legacy,
                    spki.subject_public_key.data.as_ref(),
                );
                return match key.verify(tbs, sig) {
                    Ok(()) => SigCheck::Valid,
                    Err(_) => SigCheck::Invalid,
                };
            }
            if alg != "1.2.840.113549.1.1.5" && alg != "1.3.14.3.2.29" {
                return SigCheck::Unsupported(format!(
                    "RSA issuer key of {bits} bits with {alg} cannot be checked"
                ));
            }
        }
    }

    match x509_parser::verify::verify_signature(
        spki,
        &child.signature_algorithm,
        &child.signature_value,
        tbs,
    ) {
        Ok(()) => SigCheck::Valid,
        Err(x509_parser::error::X509Error::SignatureUnsupportedAlgorithm) => {
            SigCheck::Unsupported(format!(
                "signature algorithm {} is not supported by the verifier",
                super::cert_sig_name(child)
            ))
        }
        Err(_) => SigCheck::Invalid,
    }
}
