//! The diagnostic CA for intercept mode: created once on this machine (key file
//! mode 0600, never overwritten, never sent anywhere), and the leaves forged from
//! each upstream leaf's subject and SANs, cached per upstream certificate.
//!
//! Lifetimes follow the wall clock the test device checks them against: the CA
//! is valid for a year ([`CA_DAYS`]) and refused once expired; a forged leaf for
//! [`LEAF_DAYS`] (never past the CA), forged again a day before it runs out, so
//! a proxy left running for weeks never presents an expired leaf.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use time::{Duration, OffsetDateTime};

use crate::core::x509::{CertInfo, SanEntry};

/// File names inside the CA directory.
pub const CERT_FILE: &str = "edgetap-diagnostic-ca.pem";
/// The private key; mode 0600.
pub const KEY_FILE: &str = "edgetap-diagnostic-ca.key";

/// How long a new diagnostic CA is valid.
pub const CA_DAYS: i64 = 365;
/// How long a forged leaf is valid (at most until the CA expires).
pub const LEAF_DAYS: i64 = 30;

/// Create a diagnostic CA in `dir`. Refuses to overwrite an existing one.
pub fn init(dir: &Path, now: OffsetDateTime) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the directory", dir.display()))?;
    let key_path = dir.join(KEY_FILE);
    let cert_path = dir.join(CERT_FILE);
    if key_path.exists() || cert_path.exists() {
        anyhow::bail!(
            "{} already holds a diagnostic CA; edgetap never overwrites one (delete it yourself to start over)",
            dir.display()
        );
    }
    let key = KeyPair::generate().context("generating the CA key")?;
    let mut p = CertificateParams::default();
    p.distinguished_name.push(
        DnType::CommonName,
        crate::core::x509::trust::DIAGNOSTIC_CA_CN,
    );
    p.distinguished_name
        .push(DnType::OrganizationName, "edgetap");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(CA_DAYS);
    let cert = p.self_signed(&key).context("signing the CA certificate")?;
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&key_path)
        .with_context(|| format!("{}: cannot create the key file", key_path.display()))?;
    f.write_all(key.serialize_pem().as_bytes())?;
    f.sync_all()?;
    std::fs::write(&cert_path, cert.pem())
        .with_context(|| format!("{}: cannot write the certificate", cert_path.display()))?;
    Ok(cert_path)
}

/// A loaded CA that forges leaves.
pub struct Forger {
    issuer: Issuer<'static, KeyPair>,
    ca_der: Vec<u8>,
    ca_not_after: OffsetDateTime,
    leaf_key: KeyPair,
    /// Forged leaves by upstream certificate, with their notAfter.
    cache: Mutex<HashMap<String, (Arc<CertifiedKey>, OffsetDateTime)>>,
}

impl Forger {
    /// Load the CA from `dir`; refused when it is not valid at `now` (a test
    /// device would reject every leaf it signs).
    pub fn load(dir: &Path, now: OffsetDateTime) -> anyhow::Result<Forger> {
        let cert_pem = std::fs::read_to_string(dir.join(CERT_FILE)).with_context(|| {
            format!(
                "{}: no diagnostic CA here; create one with `edgetap ca init --dir {}`",
                dir.display(),
                dir.display()
            )
        })?;
        let key_pem = std::fs::read_to_string(dir.join(KEY_FILE))
            .with_context(|| format!("{}: cannot read the CA key", dir.display()))?;
        let key = KeyPair::from_pem(&key_pem).context("the CA key is not a PEM private key")?;
        let ca_der =
            crate::input::certs::parse_certificates(cert_pem.as_bytes(), &dir.join(CERT_FILE))?
                .into_iter()
                .next()
                .context("the CA file holds no certificate")?;
        let info = CertInfo::parse(&ca_der)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(CERT_FILE).display()))?;
        if now > info.not_after || now < info.not_before {
            let when = if now > info.not_after {
                format!("expired on {}", info.not_after.date())
            } else {
                format!("is not valid before {}", info.not_before.date())
            };
            anyhow::bail!(
                "the diagnostic CA in {} {when}: test devices would reject every leaf it signs. \
                 Create a new one with `edgetap ca init --dir NEW_DIR`, import it on the test \
                 device and remove the old one there",
                dir.display()
            );
        }
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(ca_der.clone()), key)
            .context("the CA certificate and key do not go together")?;
        Ok(Forger {
            issuer,
            ca_der,
            ca_not_after: info.not_after,
            leaf_key: KeyPair::generate().context("generating the forged-leaf key")?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// When the CA expires.
    pub fn ca_not_after(&self) -> OffsetDateTime {
        self.ca_not_after
    }

    /// A leaf with the upstream leaf's subject CN and SANs, signed by the CA,
    /// valid at `now` (wall-clock time) for at least a day more.
    pub fn forge(
        &self,
        upstream_leaf: &[u8],
        fallback_name: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<Arc<CertifiedKey>> {
        // The cache key is the upstream leaf's fingerprint (the name when
        // there is no leaf); the leaf is parsed only to forge, on a miss.
        let key = if upstream_leaf.is_empty() {
            fallback_name.to_owned()
        } else {
            crate::core::x509::cert::sha256_hex(upstream_leaf)
        };
        let fresh = |not_after: OffsetDateTime| now + Duration::days(1) < not_after;
        if let Some((hit, not_after)) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned())
            && fresh(not_after)
        {
            return Ok(hit);
        }
        let info = CertInfo::parse(upstream_leaf).ok();
        if now >= self.ca_not_after {
            anyhow::bail!(
                "the diagnostic CA expired on {}: create a new one with `edgetap ca init`",
                self.ca_not_after.date()
            );
        }
        let mut p = CertificateParams::default();
        let cn = info
            .as_ref()
            .map_or_else(|| fallback_name.to_owned(), |i| i.short_name());
        p.distinguished_name.push(DnType::CommonName, cn);
        let mut sans = Vec::new();
        for entry in info
            .as_ref()
            .and_then(|i| i.san.clone())
            .unwrap_or_default()
        {
            match entry {
                SanEntry::Dns(d) => sans.push(SanType::DnsName(d.as_str().try_into()?)),
                SanEntry::Ip(ip) => sans.push(SanType::IpAddress(ip)),
                SanEntry::XmppAddr(x) => sans.push(SanType::OtherName((
                    vec![1, 3, 6, 1, 5, 5, 7, 8, 5],
                    x.into(),
                ))),
                _ => {}
            }
        }
        if sans.is_empty() {
            match fallback_name.parse::<IpAddr>() {
                Ok(ip) => sans.push(SanType::IpAddress(ip)),
                Err(_) => sans.push(SanType::DnsName(fallback_name.try_into()?)),
            }
        }
        p.subject_alt_names = sans;
        p.is_ca = IsCa::ExplicitNoCa;
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.not_before = now - Duration::hours(1);
        p.not_after = (now + Duration::days(LEAF_DAYS)).min(self.ca_not_after);
        let not_after = p.not_after;
        let cert = p.signed_by(&self.leaf_key, &self.issuer)?;
        let chain = vec![
            CertificateDer::from(cert.der().to_vec()),
            CertificateDer::from(self.ca_der.clone()),
        ];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let certified = Arc::new(CertifiedKey::from_der(
            chain,
            key_der,
            &crate::net::tls::provider(),
        )?);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, (certified.clone(), not_after));
        }
        Ok(certified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_makes_a_private_key_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let now = time::macros::datetime!(2026-06-01 00:00 UTC);
        init(dir.path(), now).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "the CA key is readable by its owner only"
            );
        }
        assert!(
            init(dir.path(), now)
                .unwrap_err()
                .to_string()
                .contains("never overwrites")
        );
        let forger = Forger::load(dir.path(), now).unwrap();
        let a = forger
            .forge(b"not a cert", "expe.example.com", now)
            .unwrap();
        let b = forger
            .forge(b"not a cert", "expe.example.com", now)
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b), "forged leaves are cached");
        let leaf = CertInfo::parse(a.cert[0].as_ref()).unwrap();
        assert_eq!(leaf.san_dns().collect::<Vec<_>>(), vec!["expe.example.com"]);
    }

    #[test]
    fn forged_leaves_are_renewed_before_they_expire_and_an_expired_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = time::macros::datetime!(2026-06-01 00:00 UTC);
        init(dir.path(), t0).unwrap();
        let forger = Forger::load(dir.path(), t0).unwrap();
        let leaf_at = |t: OffsetDateTime| {
            let forged = forger.forge(b"not a cert", "expe.example.com", t).unwrap();
            let der = forged.cert[0].as_ref().to_vec();
            (forged, CertInfo::parse(&der).unwrap())
        };
        let (first, info) = leaf_at(t0);
        assert_eq!(info.not_after, t0 + Duration::days(LEAF_DAYS));
        let (again, _) = leaf_at(t0 + Duration::days(LEAF_DAYS - 2));
        assert!(Arc::ptr_eq(&first, &again), "still fresh: the cached leaf");
        let (renewed, info) = leaf_at(t0 + Duration::days(LEAF_DAYS) - Duration::hours(12));
        assert!(
            !Arc::ptr_eq(&first, &renewed),
            "a day from expiry: forged again"
        );
        assert!(info.not_after > t0 + Duration::days(LEAF_DAYS));

        // Near the CA's end a leaf never outlives it; past it, nothing is forged.
        let ca_end = forger.ca_not_after();
        assert_eq!(ca_end, t0 + Duration::days(CA_DAYS));
        let (_, info) = leaf_at(ca_end - Duration::days(10));
        assert_eq!(info.not_after, ca_end);
        assert!(
            forger
                .forge(
                    b"not a cert",
                    "other.example.com",
                    ca_end + Duration::hours(1)
                )
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
        let refused = Forger::load(dir.path(), ca_end + Duration::days(1))
            .err()
            .unwrap()
            .to_string();
        assert!(
            refused.contains("expired on") && refused.contains("ca init"),
            "{refused}"
        );
    }
}
