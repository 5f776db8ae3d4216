//! Online revocation without I/O: the OCSP request for a certificate, and what a
//! fetched CRL or OCSP response says about it once its signature, freshness and
//! serial are checked. The shell (`net::revocation`) fetches the bytes; the
//! results ride on the observation to the `revocation.*` detectors, so every
//! source judges them alike.
//!
//! OCSP structures come from the RustCrypto `x509-ocsp` crate, CRLs from
//! x509-parser; signatures are checked with the same verifier as certificates.

use time::OffsetDateTime;
use x509_ocsp::{CertStatus, OcspResponseStatus};
use x509_parser::der_parser::asn1_rs::FromDer as _;

use super::cert::{CertInfo, hex};
use crate::core::observation::RevocationStatus as Status;

/// The issuer's parts revocation needs: its name and key.
#[derive(Debug, Clone, Copy)]
pub struct Issuer<'a> {
    /// Subject name DER (with its SEQUENCE header).
    pub subject_der: &'a [u8],
    /// SubjectPublicKeyInfo DER.
    pub spki_der: &'a [u8],
}

/// Why an OCSP request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The issuer's key or the serial could not be encoded.
    #[error("cannot build the OCSP request: {0}")]
    Encoding(String),
}

/// SHA-1, the CertID hash every responder understands (RFC 6960 4.1.1; RFC 5019 2.1.1).
const SHA1_OID: &str = "1.3.14.3.2.26";

/// The DER of an OCSP request for `cert` issued by `issuer` (one CertID, SHA-1
/// hashes, no nonce: RFC 5019's lightweight profile, which responders cache).
pub fn ocsp_request(cert: &CertInfo, issuer: Issuer<'_>) -> Result<Vec<u8>, RequestError> {
    use der::Encode as _;
    use x509_ocsp::{OcspRequest, Request, TbsRequest, Version};
    let cert_id = cert_id(cert, issuer)?;
    let request = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    request
        .to_der()
        .map_err(|e| RequestError::Encoding(e.to_string()))
}

fn sha1(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
        .as_ref()
        .to_vec()
}

/// The issuer key's bits: the subjectPublicKey BIT STRING's contents.
fn key_bits(spki_der: &[u8]) -> Option<Vec<u8>> {
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der).ok()?;
    Some(spki.subject_public_key.data.to_vec())
}

fn cert_id(cert: &CertInfo, issuer: Issuer<'_>) -> Result<x509_ocsp::CertId, RequestError> {
    use der::asn1::{Null, OctetString};
    let bad = |e: der::Error| RequestError::Encoding(e.to_string());
    let key = key_bits(issuer.spki_der)
        .ok_or_else(|| RequestError::Encoding("the issuer's public key does not decode".into()))?;
    Ok(x509_ocsp::CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: SHA1_OID
                .parse()
                .map_err(|_| RequestError::Encoding("SHA-1 OID".into()))?,
            parameters: Some(Null.into()),
        },
        issuer_name_hash: OctetString::new(sha1(issuer.subject_der)).map_err(bad)?,
        issuer_key_hash: OctetString::new(sha1(&key)).map_err(bad)?,
        serial_number: x509_cert::serial_number::SerialNumber::new(&cert.structure.serial_octets)
            .map_err(bad)?,
    })
}

fn unreachable(why: impl Into<String>) -> Status {
    Status::Unreachable { why: why.into() }
}

/// What an OCSP response says about `cert`: status successful, signed by the
/// issuer or by a responder the issuer delegated to (OCSPSigning EKU), current
/// at `now` (thisUpdate ≤ now ≤ nextUpdate), for this CertID.
pub fn read_ocsp(bytes: &[u8], cert: &CertInfo, issuer: Issuer<'_>, now: OffsetDateTime) -> Status {
    use der::{Decode as _, Encode as _};
    let response = match x509_ocsp::OcspResponse::from_der(bytes) {
        Ok(r) => r,
        Err(e) => return unreachable(format!("the OCSP response does not decode: {e}")),
    };
    if response.response_status != OcspResponseStatus::Successful {
        return unreachable(format!(
            "the responder answered {:?} instead of a status",
            response.response_status
        ));
    }
    let Some(body) = response.response_bytes else {
        return unreachable("the OCSP response is successful but empty");
    };
    let basic = match x509_ocsp::BasicOcspResponse::from_der(body.response.as_bytes()) {
        Ok(b) => b,
        Err(e) => return unreachable(format!("the basic OCSP response does not decode: {e}")),
    };
    let (Ok(tbs), Ok(alg)) = (
        basic.tbs_response_data.to_der(),
        basic.signature_algorithm.to_der(),
    ) else {
        return unreachable("the OCSP response cannot be re-encoded to check its signature");
    };
    let signature = basic.signature.raw_bytes();
    // The issuer itself, or a delegated responder certificate it signed.
    let mut signer = None;
    if super::signature::check_signed(&tbs, &alg, signature, issuer.spki_der)
        == super::SigCheck::Valid
    {
        signer = Some("the issuer".to_owned());
    } else {
        for responder in basic.certs.iter().flatten() {
            let Ok(der) = responder.to_der() else {
                continue;
            };
            let Ok(info) = CertInfo::parse(&der) else {
                continue;
            };
            let delegated = info.issuer_der == issuer.subject_der
                && super::signature::check(&der, issuer.spki_der) == super::SigCheck::Valid
                && ocsp_signing(&der)
                && info.not_before <= now
                && now <= info.not_after;
            if delegated
                && super::signature::check_signed(&tbs, &alg, signature, &info.spki_der)
                    == super::SigCheck::Valid
            {
                signer = Some(format!("delegated responder {}", info.short_name()));
                break;
            }
        }
    }
    if signer.is_none() {
        return unreachable(
            "the OCSP response's signature verifies neither with the issuer's key nor with a responder certificate the issuer delegated (OCSPSigning)",
        );
    }
    let Ok(wanted) = cert_id(cert, issuer) else {
        return unreachable("the certificate's CertID cannot be computed");
    };
    let Some(single) = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| same_cert_id(&r.cert_id, &wanted))
    else {
        return unreachable(format!(
            "the OCSP response has no status for serial {}",
            hex(&cert.structure.serial_octets)
        ));
    };
    let this_update = ocsp_time(&single.this_update);
    let next_update = single.next_update.as_ref().map(ocsp_time);
    if let Some(t) = this_update
        && t > now + time::Duration::minutes(5)
    {
        return unreachable(format!(
            "the OCSP response is dated in the future (thisUpdate {t})"
        ));
    }
    if let Some(Some(t)) = next_update
        && t < now
    {
        return unreachable(format!("the OCSP response is stale (nextUpdate {t})"));
    }
    match &single.cert_status {
        CertStatus::Good(_) => Status::Good,
        CertStatus::Unknown(_) => Status::Unknown,
        CertStatus::Revoked(info) => Status::Revoked {
            at: ocsp_time(&info.revocation_time).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            reason: info.revocation_reason.map(|r| format!("{r:?}")),
        },
    }
}

/// CertIDs match on name hash, key hash and serial (the hash algorithm is SHA-1 in both).
fn same_cert_id(a: &x509_ocsp::CertId, b: &x509_ocsp::CertId) -> bool {
    a.hash_algorithm.oid == b.hash_algorithm.oid
        && a.issuer_name_hash == b.issuer_name_hash
        && a.issuer_key_hash == b.issuer_key_hash
        && a.serial_number == b.serial_number
}

fn ocsp_time(t: &x509_ocsp::OcspGeneralizedTime) -> Option<OffsetDateTime> {
    let secs = t.0.to_unix_duration().as_secs();
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()
}

/// Does this certificate carry the OCSPSigning EKU?
fn ocsp_signing(der: &[u8]) -> bool {
    use x509_parser::extensions::ParsedExtension;
    let Ok((_, cert)) = x509_parser::prelude::X509Certificate::from_der(der) else {
        return false;
    };
    cert.extensions().iter().any(|e| {
        matches!(e.parsed_extension(), ParsedExtension::ExtendedKeyUsage(eku) if eku.ocsp_signing)
    })
}

/// What a CRL (DER, or PEM "X509 CRL") says about `cert`: signed by the issuer,
/// issued by it by name, current at `now`, and whether the serial is listed.
pub fn read_crl(bytes: &[u8], cert: &CertInfo, issuer: Issuer<'_>, now: OffsetDateTime) -> Status {
    let der;
    let bytes = if bytes.starts_with(b"-----BEGIN") {
        match ::pem::parse(bytes) {
            Ok(p) if p.tag() == "X509 CRL" => {
                der = p.into_contents();
                der.as_slice()
            }
            Ok(p) => {
                return unreachable(format!(
                    "the CRL URL served PEM {:?}, not an X509 CRL",
                    p.tag()
                ));
            }
            Err(e) => return unreachable(format!("the CRL is PEM that does not decode: {e}")),
        }
    } else {
        bytes
    };
    let crl = match x509_parser::revocation_list::CertificateRevocationList::from_der(bytes) {
        Ok((_, crl)) => crl,
        Err(e) => return unreachable(format!("the CRL does not decode: {e}")),
    };
    if crl.issuer().as_raw() != issuer.subject_der {
        return unreachable(format!(
            "the CRL is issued by {}, not by the certificate's issuer",
            crl.issuer()
        ));
    }
    let Ok((_, spki)) = x509_parser::x509::SubjectPublicKeyInfo::from_der(issuer.spki_der) else {
        return unreachable("the issuer's public key does not decode");
    };
    if crl.verify_signature(&spki).is_err() {
        return unreachable("the CRL's signature does not verify with the issuer's key");
    }
    let this_update = crl.last_update().to_datetime();
    if this_update > now + time::Duration::minutes(5) {
        return unreachable(format!(
            "the CRL is dated in the future (thisUpdate {this_update})"
        ));
    }
    if let Some(next) = crl.next_update().map(|t| t.to_datetime())
        && next < now
    {
        return unreachable(format!("the CRL is stale (nextUpdate {next})"));
    }
    let serial = &cert.structure.serial_octets;
    match crl
        .iter_revoked_certificates()
        .find(|r| strip_zeros(r.raw_serial()) == strip_zeros(serial))
    {
        Some(revoked) => Status::Revoked {
            at: revoked.revocation_date.to_datetime(),
            reason: revoked.reason_code().map(|(_, code)| format!("{code}")),
        },
        None => Status::Good,
    }
}

/// A serial's octets without sign padding, so 00:80 equals 80.
fn strip_zeros(octets: &[u8]) -> &[u8] {
    let first = octets.iter().position(|b| *b != 0).unwrap_or(octets.len());
    &octets[first..]
}

/// The URL of a GET request for small OCSP requests (RFC 6960 appendix A.1:
/// base64 of the DER, URL-encoded, appended to the responder URL), when the
/// whole is under 255 bytes; POST otherwise.
pub fn ocsp_get_url(responder: &str, request_der: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(request_der);
    let escaped: String = encoded
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_owned(),
            '/' => "%2F".to_owned(),
            '=' => "%3D".to_owned(),
            c => c.to_string(),
        })
        .collect();
    let url = format!("{}/{}", responder.trim_end_matches('/'), escaped);
    (url.len() < 255).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
        IsCa, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
    };
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

    fn ca(cn: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("ca")
    }

    fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, serial: u8) -> CertInfo {
        let mut p = CertificateParams::new(vec!["expe.example.com".into()]).expect("params");
        p.serial_number = Some(SerialNumber::from(vec![serial]));
        let cert = p
            .signed_by(&KeyPair::generate().expect("key"), ca)
            .expect("leaf");
        CertInfo::parse(cert.der()).expect("parses")
    }

    fn crl(ca: &CertifiedIssuer<'static, KeyPair>, next_update: OffsetDateTime) -> Vec<u8> {
        CertificateRevocationListParams {
            this_update: datetime!(2026-05-30 00:00 UTC),
            next_update,
            crl_number: SerialNumber::from(vec![1]),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(vec![0x22]),
                revocation_time: datetime!(2026-05-30 12:00 UTC),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(ca)
        .expect("crl")
        .der()
        .to_vec()
    }

    fn issuer(ca: &CertifiedIssuer<'static, KeyPair>) -> CertInfo {
        CertInfo::parse(ca.der()).expect("ca parses")
    }

    #[test]
    fn a_crl_says_good_revoked_stale_or_foreign() {
        let root = ca("CRL Root");
        let info = issuer(&root);
        let parts = Issuer {
            subject_der: &info.subject_der,
            spki_der: &info.spki_der,
        };
        let current = crl(&root, datetime!(2026-06-07 00:00 UTC));
        assert_eq!(
            read_crl(&current, &leaf(&root, 0x21), parts, NOW),
            Status::Good
        );
        match read_crl(&current, &leaf(&root, 0x22), parts, NOW) {
            Status::Revoked { at, reason } => {
                assert_eq!(at, datetime!(2026-05-30 12:00 UTC));
                assert_eq!(reason.as_deref(), Some("KeyCompromise"));
            }
            other => panic!("{other:?}"),
        }
        let pem = ::pem::encode(&::pem::Pem::new("X509 CRL", current.clone()));
        assert_eq!(
            read_crl(pem.as_bytes(), &leaf(&root, 0x21), parts, NOW),
            Status::Good
        );
        let stale = crl(&root, datetime!(2026-05-31 00:00 UTC));
        assert!(
            matches!(read_crl(&stale, &leaf(&root, 0x21), parts, NOW), Status::Unreachable { why } if why.contains("stale"))
        );
        let other = ca("CRL Root");
        let forged = crl(&other, datetime!(2026-06-07 00:00 UTC));
        assert!(
            matches!(read_crl(&forged, &leaf(&root, 0x21), parts, NOW), Status::Unreachable { why } if why.contains("signature"))
        );
        assert!(
            matches!(read_crl(b"<html>", &leaf(&root, 0x21), parts, NOW), Status::Unreachable { why } if why.contains("does not decode"))
        );
    }

    #[test]
    fn the_ocsp_request_names_the_serial_and_issuer() {
        use der::Decode as _;
        let root = ca("OCSP Root");
        let info = issuer(&root);
        let parts = Issuer {
            subject_der: &info.subject_der,
            spki_der: &info.spki_der,
        };
        let cert = leaf(&root, 0x33);
        let der = ocsp_request(&cert, parts).expect("request");
        let request = x509_ocsp::OcspRequest::from_der(&der).expect("decodes");
        let id = &request.tbs_request.request_list[0].req_cert;
        assert_eq!(id.serial_number.as_bytes(), &[0x33]);
        assert_eq!(
            id.issuer_name_hash.as_bytes(),
            sha1(&info.subject_der).as_slice()
        );
        let get = ocsp_get_url("http://ocsp.example.com", &der).expect("small enough for GET");
        assert!(get.starts_with("http://ocsp.example.com/M"), "{get}");
        assert!(!get[25..].contains('/') && !get.contains('+'), "{get}");
        assert!(
            matches!(read_ocsp(b"junk", &cert, parts, NOW), Status::Unreachable { why } if why.contains("does not decode"))
        );
    }
}
