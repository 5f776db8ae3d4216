//! Test PKI built with rcgen at fixed dates, and one `run` helper that is the
//! only way rule tests call the engine (so every test exercises the real path).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::core::analysis::engine::{Engine, Report};
use crate::core::analysis::profile::Profile;
use crate::core::analysis::rules::DetectorConfig;
use crate::core::observation::{
    Observation, Origin, ReferenceIdentity, Service, SourceKind, SrvContext, TlsParams,
    XmppStartTls,
};
use crate::core::x509::{StoreKind, TrustStore};

/// A fresh key: RSA 2048 (what Expressway wants) from a pool made once per test
/// binary, since ring cannot generate RSA keys and generating them is slow.
pub fn rsa_key() -> KeyPair {
    use rsa::pkcs8::EncodePrivateKey as _;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    const SIZE: usize = 8;
    let mut pool = POOL.lock().expect("key pool");
    if pool.is_empty() {
        let mut rng = rand::thread_rng();
        for _ in 0..SIZE {
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("rsa keygen");
            pool.push(key.to_pkcs8_der().expect("pkcs8").as_bytes().to_vec());
        }
    }
    let der = &pool[NEXT.fetch_add(1, Ordering::Relaxed) % SIZE];
    KeyPair::try_from(der.as_slice()).expect("rcgen imports RSA PKCS#8")
}

/// A key from the pool that is not `other`: [`rsa_key`] takes the pool's 8
/// keys in turn for every test of the binary, so two calls in one test can
/// meet on the same key when other tests run between them.
pub fn rsa_key_other_than(other: &KeyPair) -> KeyPair {
    loop {
        let key = rsa_key();
        if key.serialize_der() != other.serialize_der() {
            return key;
        }
    }
}

/// A fresh ECDSA P-256 key.
pub fn ec_key() -> KeyPair {
    KeyPair::generate().expect("P-256 key")
}

/// The analysis time used by rule tests.
pub const NOW: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

/// A CA that can sign.
pub struct Ca {
    pub issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }
}

/// Parameters for a CA with BasicConstraints cA=TRUE, valid 2020..2040.
pub fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "edgetap test");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    p.not_before = datetime!(2020-01-01 00:00 UTC);
    p.not_after = datetime!(2040-01-01 00:00 UTC);
    p
}

/// A self-signed root.
pub fn root(cn: &str) -> Ca {
    root_with(ca_params(cn))
}

/// A self-signed root from parameters.
pub fn root_with(params: CertificateParams) -> Ca {
    let key = rsa_key();
    Ca {
        issuer: CertifiedIssuer::self_signed(params, key).expect("self-signed root"),
    }
}

/// An intermediate CA signed by `parent`.
pub fn intermediate(cn: &str, parent: &Ca) -> Ca {
    intermediate_with(ca_params(cn), parent)
}

/// An intermediate CA from parameters.
pub fn intermediate_with(params: CertificateParams, parent: &Ca) -> Ca {
    let key = rsa_key();
    Ca {
        issuer: CertifiedIssuer::signed_by(params, key, &parent.issuer).expect("intermediate"),
    }
}

/// Parameters for a good Expressway-E style server certificate: CN and dNSName SANs,
/// server+client EKU, CRL URL, valid 2025-01-01..2027-01-01.
pub fn leaf_params(cn: &str, dns: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.subject_alt_names = dns
        .iter()
        .map(|d| SanType::DnsName((*d).try_into().expect("ia5")))
        .collect();
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec!["http://crl.example.com/ca.crl".into()],
    }];
    p.use_authority_key_identifier_extension = true;
    p.not_before = datetime!(2025-01-01 00:00 UTC);
    p.not_after = datetime!(2027-01-01 00:00 UTC);
    p
}

/// A leaf with an RSA key signed by `issuer`.
pub fn leaf(params: CertificateParams, issuer: &Ca) -> Vec<u8> {
    leaf_with_key(params, issuer, &rsa_key())
}

/// A leaf with the given key signed by `issuer`.
pub fn leaf_with_key(params: CertificateParams, issuer: &Ca, key: &KeyPair) -> Vec<u8> {
    params
        .signed_by(key, &issuer.issuer)
        .expect("leaf")
        .der()
        .to_vec()
}

/// A self-signed leaf.
pub fn self_signed_leaf(params: CertificateParams) -> Vec<u8> {
    let key = rsa_key();
    params
        .self_signed(&key)
        .expect("self-signed")
        .der()
        .to_vec()
}

/// What a rule test feeds the engine.
pub struct Case {
    pub presented: Vec<Vec<u8>>,
    pub name: String,
    pub service: Service,
    pub edge_domain: Option<String>,
    pub public: Vec<Vec<u8>>,
    pub enterprise: Vec<Vec<u8>>,
    pub now: OffsetDateTime,
    pub tls: TlsParams,
    pub srv: Option<SrvContext>,
    pub xmpp: Option<XmppStartTls>,
}

impl Case {
    /// A handshake presenting `presented` for `name`, service http, nothing trusted.
    pub fn new(presented: Vec<Vec<u8>>, name: &str) -> Case {
        Case {
            presented,
            name: name.into(),
            service: Service::Http,
            edge_domain: None,
            public: Vec::new(),
            enterprise: Vec::new(),
            now: NOW,
            tls: TlsParams::default(),
            srv: None,
            xmpp: None,
        }
    }

    pub fn public(mut self, roots: Vec<Vec<u8>>) -> Case {
        self.public = roots;
        self
    }

    pub fn enterprise(mut self, roots: Vec<Vec<u8>>) -> Case {
        self.enterprise = roots;
        self
    }

    pub fn service(mut self, service: Service) -> Case {
        self.service = service;
        self
    }

    pub fn edge(mut self, domain: &str) -> Case {
        self.edge_domain = Some(domain.into());
        self
    }

    pub fn at(mut self, now: OffsetDateTime) -> Case {
        self.now = now;
        self
    }

    pub fn observation(&self) -> Observation {
        let mut obs = Observation::new(
            self.service,
            ReferenceIdentity::parse(&self.name),
            self.presented.clone(),
            Origin {
                kind: SourceKind::Inspect,
                at: None,
                locator: "test".into(),
            },
        );
        obs.edge_domain = self.edge_domain.clone();
        obs.tls = self.tls.clone();
        obs.srv = self.srv.clone();
        obs.xmpp = self.xmpp;
        obs
    }

    pub fn engine(&self) -> Engine {
        let public = TrustStore::from_der_certs(self.public.clone(), StoreKind::Public)
            .expect("public roots decode");
        let enterprise = TrustStore::from_der_certs(self.enterprise.clone(), StoreKind::Enterprise)
            .expect("enterprise roots decode");
        Engine::new(public, enterprise, DetectorConfig::default())
    }

    /// Analyse this one handshake.
    pub fn run(&self) -> Report {
        self.engine().evaluate(&[self.observation()], self.now)
    }
}

/// Analyse several handshakes together.
pub fn run_all(cases: &[Case]) -> Report {
    let observations: Vec<_> = cases.iter().map(Case::observation).collect();
    cases[0].engine().evaluate(&observations, cases[0].now)
}

/// Rule IDs that fired on the first handshake.
pub fn fired(report: &Report) -> Vec<&'static str> {
    report.handshakes[0]
        .findings
        .iter()
        .map(|f| f.rule.id)
        .collect()
}

/// Assert `rule` fired on the first handshake, and return the first such finding's
/// profiles for further checks.
#[track_caller]
pub fn assert_fires(report: &Report, rule: &str) -> Vec<Profile> {
    let finding = report.handshakes[0]
        .findings
        .iter()
        .find(|f| f.rule.id == rule)
        .unwrap_or_else(|| panic!("{rule} did not fire; fired: {:?}", fired(report)));
    assert!(!finding.message.is_empty(), "{rule} has no message");
    assert!(!finding.fix.is_empty(), "{rule} has no fix");
    finding.profiles.iter().collect()
}

/// Assert `rule` did not fire on the first handshake.
#[track_caller]
pub fn assert_quiet(report: &Report, rule: &str) {
    assert!(
        !fired(report).contains(&rule),
        "{rule} fired unexpectedly: {:?}",
        report.handshakes[0].findings
    );
}

/// A trusted, well-formed MRA edge: enterprise root -> intermediate -> leaf with the
/// edge-domain SAN. Returns (case presenting leaf+intermediate, root DER).
pub fn good_edge() -> (Case, Ca, Ca) {
    let root = root("Example Root CA");
    let inter = intermediate("Example Issuing CA", &root);
    let leaf = leaf(
        leaf_params(
            "expe.example.com",
            &["expe.example.com", "collab-edge.example.com", "example.com"],
        ),
        &inter,
    );
    let case = Case::new(vec![leaf, inter.der()], "expe.example.com")
        .public(vec![root.der()])
        .edge("example.com");
    (case, root, inter)
}

/// An RSA public key of exactly `bits` bits that nobody holds the private half of:
/// enough for a leaf, whose key signs nothing in these tests.
pub struct FakeRsaKey(Vec<u8>);

impl rcgen::PublicKeyData for FakeRsaKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

/// See [`FakeRsaKey`].
pub fn fake_rsa_public_key(bits: usize) -> FakeRsaKey {
    let bytes = bits.div_ceil(8);
    let mut modulus = vec![0xc5u8; bytes];
    let top_bits = bits - (bytes - 1) * 8;
    modulus[0] = (0xffu16 >> (8 - top_bits)) as u8 | (1 << (top_bits - 1)) as u8;
    modulus[bytes - 1] |= 1;
    // DER INTEGERs are minimal: a leading zero only when the top bit is set.
    let mut n = if modulus[0] & 0x80 != 0 {
        vec![0u8]
    } else {
        Vec::new()
    };
    n.extend_from_slice(&modulus);
    let mut body = der_tlv(0x02, &n);
    body.extend(der_tlv(0x02, &[0x01, 0x00, 0x01]));
    FakeRsaKey(der_tlv(0x30, &body))
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = crate::core::x509::trust::wrap_sequence(content);
    out[0] = tag;
    out
}

/// A leaf carrying `key` (which need not be able to sign), signed by `issuer`.
pub fn leaf_with_public_key(
    params: CertificateParams,
    issuer: &Ca,
    key: &impl rcgen::PublicKeyData,
) -> Vec<u8> {
    params
        .signed_by(key, &issuer.issuer)
        .expect("leaf")
        .der()
        .to_vec()
}
