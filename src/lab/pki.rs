//! A throwaway PKI for the demo deployment and tests, made with rcgen: RSA-2048
//! keys (what Expressway expects; generated with the `rsa` crate because ring,
//! rcgen's backend, cannot generate RSA), a root, an issuing CA, server leaves.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::Identity;

/// A CA that can issue.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// What went wrong making a certificate.
pub type PkiResult<T> = Result<T, rcgen::Error>;

/// A fresh RSA-2048 key.
pub fn rsa_key() -> PkiResult<KeyPair> {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
        .map_err(|_| rcgen::Error::KeyGenerationUnavailable)?;
    let der = key
        .to_pkcs8_der()
        .map_err(|_| rcgen::Error::KeyGenerationUnavailable)?;
    KeyPair::try_from(der.as_bytes())
}

fn ca_params(cn: &str, now: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::OrganizationName, "edgetap lab");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // As real CAs do (RFC 5280 4.2.1.1); a root's names its own key.
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - Duration::days(30);
    // Three years: long enough for any lab, short enough that a presented
    // intermediate stays clear of `validity.beyond-2050` until 2047.
    p.not_after = now + Duration::days(3 * 365);
    p
}

impl Ca {
    /// A self-signed root valid around `now`.
    pub fn root(cn: &str, now: OffsetDateTime) -> PkiResult<Ca> {
        Ok(Ca {
            issuer: CertifiedIssuer::self_signed(ca_params(cn, now), rsa_key()?)?,
        })
    }

    /// An issuing CA under this one.
    pub fn intermediate(&self, cn: &str, now: OffsetDateTime) -> PkiResult<Ca> {
        Ok(Ca {
            issuer: CertifiedIssuer::signed_by(ca_params(cn, now), rsa_key()?, &self.issuer)?,
        })
    }

    /// This CA's certificate.
    pub fn der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// A server certificate: CN, dNSName SANs, optional xmppAddr, server+client EKU,
    /// an HTTP CRL URL. `key` lets cluster peers share one (a defect to detect).
    pub fn leaf(
        &self,
        cn: &str,
        dns: &[&str],
        xmpp_addr: Option<&str>,
        key: Option<&KeyPair>,
        now: OffsetDateTime,
    ) -> PkiResult<(Vec<u8>, Vec<u8>)> {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        for d in dns {
            p.subject_alt_names.push(SanType::DnsName((*d).try_into()?));
        }
        if let Some(x) = xmpp_addr {
            p.subject_alt_names.push(SanType::OtherName((
                vec![1, 3, 6, 1, 5, 5, 7, 8, 5],
                x.into(),
            )));
        }
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec!["http://crl.example.com/lab.crl".into()],
        }];
        p.use_authority_key_identifier_extension = true;
        p.not_before = now - Duration::days(1);
        p.not_after = now + Duration::days(365);
        let fresh;
        let key = match key {
            Some(k) => k,
            None => {
                fresh = rsa_key()?;
                &fresh
            }
        };
        let cert = p.signed_by(key, &self.issuer)?;
        Ok((cert.der().to_vec(), key.serialize_der()))
    }

    /// A server identity: a leaf from this CA, sent with `extra` (e.g. the intermediate).
    pub fn identity(
        &self,
        cn: &str,
        dns: &[&str],
        xmpp_addr: Option<&str>,
        extra: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> PkiResult<Identity> {
        let (leaf, key) = self.leaf(cn, dns, xmpp_addr, None, now)?;
        let mut chain = vec![leaf];
        chain.extend_from_slice(extra);
        Ok(Identity { chain, key })
    }
}

/// A self-signed server identity (CUCM's default certificates look like this).
pub fn self_signed(cn: &str, dns: &[&str], now: OffsetDateTime) -> PkiResult<Identity> {
    let key = rsa_key()?;
    let mut p = CertificateParams::new(dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(365);
    let cert = p.self_signed(&key)?;
    Ok(Identity {
        chain: vec![cert.der().to_vec()],
        key: key.serialize_der(),
    })
}

/// A DER certificate as PEM.
pub fn pem(der: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new("CERTIFICATE", der))
}
