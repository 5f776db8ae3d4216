//! What to do about each rule, and where the behaviour behind its effects is
//! written down: a fix in the deployment guides' words and the source
//! documents (seed file and section, or the standard) for every rule in the
//! catalogue. `edgetap rules ID` prints them; a test keeps this table and the
//! catalogue in step (one entry per rule, no stray IDs). A finding's own fix
//! may be more specific: it knows the certificate.

/// One source behind a rule's effects.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Source {
    /// The document: a seed file (`004_5e43c45a1d250561.txt`, the MRA
    /// certificates TechNote) or a standard (`RFC 5280`).
    pub document: &'static str,
    /// The section (or clause) that says it.
    pub section: &'static str,
    /// What it says that decides the effect.
    pub says: &'static str,
}

/// A rule's fix and sources.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Guidance {
    /// The rule ID.
    pub id: &'static str,
    /// What to change, and where.
    pub fix: &'static str,
    /// The documents behind the effects.
    pub sources: &'static [Source],
}

/// The guidance for rule `id`.
pub fn for_rule(id: &str) -> Option<&'static Guidance> {
    GUIDANCE.iter().find(|g| g.id == id)
}

const JABBER_000: &str = "000_560ca029fa2826e9.txt (Jabber certificate validation how-to)";
const JABBER_001: &str =
    "001_da694bef8c7ab174.txt (Jabber deployment guide, Security and Certificates)";
const IMP_002: &str = "002_b2a489e2f73dee01.txt (IM and Presence security configuration)";
const EXPRESSWAY_003: &str =
    "003_cf4e34c33f84cebd.txt (Expressway Certificate Creation and Use X14.0)";
const MRA_004: &str = "004_5e43c45a1d250561.txt (MRA certificates TechNote)";
const RFC5280: &str = "RFC 5280 (Internet X.509 PKI certificate profile)";
const CABF: &str = "CA/Browser Forum Baseline Requirements";
const OPENSSL: &str = "OpenSSL default verification (x509-limbo cases in tests/data/limbo)";
const RFC6125: &str = "RFC 6125 (service identity in TLS)";

/// Shorthand for a [`Source`].
const fn src(document: &'static str, section: &'static str, says: &'static str) -> Source {
    Source {
        document,
        section,
        says,
    }
}

const UNTRUSTED_PROMPTS: Source = src(
    JABBER_000,
    "What does this mean",
    "Jabber shows an accept-or-decline prompt for a chain it cannot validate: prompt",
);
const PHONES_PUBLIC_ONLY: Source = src(
    MRA_004,
    "Synergy Light Endpoints",
    "7800/8800 phones hold a fixed list of public CAs and fail without a prompt: fail for ip-phone and tc-endpoint",
);
const CHAIN_BUILT: Source = src(
    MRA_004,
    "How Certificate Chains Work",
    "a client builds the chain from the leaf through each issuer to a root it holds",
);
const TRUST_EACH_OTHER: Source = src(
    MRA_004,
    "Configure the Expressway-C and Expressway-E to Trust Each Other",
    "Expressway-C rejects a chain it cannot tie to a root in its trusted CA list: fail",
);
const OPENSSL_REFUSES: Source = src(
    OPENSSL,
    "x509-limbo case checked per rule in tests/cli/limbo.rs",
    "phones, TelePresence endpoints and Expressway verify with OpenSSL, which refuses it: fail; Jabber's platform validators are not documented to: warn",
);
const OPENSSL_TAKES: Source = src(
    OPENSSL,
    "x509-limbo case checked per rule in tests/cli/limbo.rs",
    "OpenSSL's default verification accepts it, strict validators refuse it: warn for every profile",
);
const IDENTITY_FIELDS: Source = src(
    JABBER_000,
    "Identifier Fields",
    "the client matches the name it connected to against SAN dNSName, then the subject CN (XMPP: xmppAddr and SRVName first)",
);
const MISMATCH_PROMPTS: Source = src(
    JABBER_001,
    "Prevent Identity Mismatch",
    "a name the certificate does not carry makes Jabber prompt; devices without a prompt fail",
);
const REVOCATION_SERVERS: Source = src(
    JABBER_001,
    "Revocation Servers",
    "Jabber checks revocation through an HTTP URL in the CRL distribution points or AIA; a revoked certificate does not connect, an unreachable server fails silently",
);
const SERVER_REQUIREMENTS: Source = src(
    EXPRESSWAY_003,
    "Expressway-E server certificate requirements",
    "MRA clients look up _collab-edge._tls.<domain> and reach Expressway-E on 8443 with the names its certificate carries",
);
const GENERATE_CSRS: Source = src(
    MRA_004,
    "Generate and Sign CSRs",
    "without <domain> or collab-edge.<domain> as a SAN, Jabber prompts on first connection and TelePresence endpoints fail",
);
const HANDSHAKE_SUMMARY: Source = src(
    MRA_004,
    "SSL Handshake Summary",
    "Expressway certificates need TLS Web Server and TLS Web Client authentication; without both the traversal zone cannot authenticate",
);
const CLUSTER_CERTS: Source = src(
    MRA_004,
    "Cluster Certificates",
    "a clustered Expressway carries the cluster FQDN as CN and every peer FQDN as SAN; one key on every peer is a security risk",
);
const ON_PREM_ENCRYPTION: Source = src(
    JABBER_001,
    "On-Premises Encryption",
    "on premises, Jabber's client-to-server session is TLS 1.2 with AES 256",
);
const XMPP_MODES: Source = src(
    IMP_002,
    "XMPP security modes",
    "XMPP client-to-IM and Presence secure mode is on by default; turned off, credentials travel in the clear",
);
const OUTSIDE_VALIDITY: Source = src(
    RFC5280,
    "6.1.3 (a)(2)",
    "a certificate outside its validity period fails path validation",
);
const ASSUMED_TLS: Source = src(
    "client-behaviour.md (edgetap's design notes)",
    "TLS parameters",
    "assumption where the seeds are silent: a device that cannot complete the handshake cannot connect",
);

/// Every rule's guidance, in catalogue order.
pub static GUIDANCE: &[Guidance] = &[
    Guidance {
        id: "chain.self-signed",
        fix: "have the certificate signed by a CA (a public CA for phones and TelePresence endpoints over MRA), or for Jabber add it to the clients' enterprise trust store",
        sources: &[
            src(
                JABBER_001,
                "Signed Certificates",
                "Jabber always prompts for a self-signed server certificate",
            ),
            PHONES_PUBLIC_ONLY,
            TRUST_EACH_OTHER,
        ],
    },
    Guidance {
        id: "chain.untrusted-root",
        fix: "for Jabber and Expressway-C, add the root to their trust stores (enterprise trust, trusted CA list); for phones and TelePresence endpoints over MRA, have Expressway-E signed by a public CA they ship with",
        sources: &[UNTRUSTED_PROMPTS, PHONES_PUBLIC_ONLY, TRUST_EACH_OTHER],
    },
    Guidance {
        id: "chain.missing-intermediate",
        fix: "upload the intermediate CA certificate(s) with the server certificate so the server sends the whole chain (Expressway: Maintenance > Security > Trusted CA list and the server certificate's chain)",
        sources: &[
            src(
                MRA_004,
                "Configure the Expressway-C and Expressway-E to Trust Each Other",
                "without the intermediate a client cannot tie the leaf to the root: rejected",
            ),
            CHAIN_BUILT,
            UNTRUSTED_PROMPTS,
            PHONES_PUBLIC_ONLY,
        ],
    },
    Guidance {
        id: "chain.bad-signature",
        fix: "download the certificate again from the CA and reinstall it with the matching intermediate; a certificate altered or signed by another key is refused by every client",
        sources: &[
            CHAIN_BUILT,
            src(
                RFC5280,
                "6.1.3 (a)(1)",
                "a signature that does not verify ends path validation",
            ),
        ],
    },
    Guidance {
        id: "chain.out-of-order",
        fix: "reorder the server's chain file: server certificate first, then each intermediate up towards the root",
        sources: &[
            CHAIN_BUILT,
            src(
                "RFC 8446 / RFC 5246",
                "4.4.2 / 7.4.2 Certificate",
                "the sender's certificate comes first, each following one certifies the one before",
            ),
        ],
    },
    Guidance {
        id: "chain.root-sent",
        fix: "optional: drop the root from the server's chain; clients use their own copy",
        sources: &[CHAIN_BUILT],
    },
    Guidance {
        id: "chain.unrelated-cert",
        fix: "remove the certificate that is not part of the path from the server's chain file",
        sources: &[CHAIN_BUILT],
    },
    Guidance {
        id: "validity.expired",
        fix: "renew the certificate: generate a CSR, have it signed and upload it with its chain before clients see it expire",
        sources: &[UNTRUSTED_PROMPTS, PHONES_PUBLIC_ONLY, OUTSIDE_VALIDITY],
    },
    Guidance {
        id: "validity.not-yet-valid",
        fix: "check the clocks on client and server (NTP); if they are right, reissue the certificate with a correct start date",
        sources: &[UNTRUSTED_PROMPTS, PHONES_PUBLIC_ONLY, OUTSIDE_VALIDITY],
    },
    Guidance {
        id: "validity.expires-soon",
        fix: "renew the certificate now (and its chain if the intermediate expires too); the warning window is --expiry-warn-days",
        sources: &[src(
            RFC5280,
            "4.1.2.5 Validity",
            "after notAfter every client refuses the certificate",
        )],
    },
    Guidance {
        id: "validity.beyond-2050",
        fix: "reissue the certificate with an expiry date before 2050",
        sources: &[src(
            EXPRESSWAY_003,
            "Points to be Aware",
            "expiry dates beyond 2050 can cause operational issues on Expressway",
        )],
    },
    Guidance {
        id: "identity.mismatch",
        fix: "reissue the certificate with the name clients connect to as a SAN (the FQDN in the SRV target or URL; for XMPP the XMPP domain)",
        sources: &[IDENTITY_FIELDS, MISMATCH_PROMPTS, PHONES_PUBLIC_ONLY],
    },
    Guidance {
        id: "identity.ip-address",
        fix: "have clients connect by the FQDN the certificate carries (fix the SRV target or configured address); public CAs do not issue IP identities",
        sources: &[
            src(
                JABBER_000,
                "Prevent Identity Mismatch",
                "connecting by IP address to a certificate that names an FQDN is an identity mismatch; public CAs do not issue IP identities",
            ),
            src(
                MRA_004,
                "Configure Trust Between CUCM and Expressway-C",
                "an IP works only as an IP SAN",
            ),
        ],
    },
    Guidance {
        id: "identity.xmpp-domain-missing",
        fix: "reissue the cup-xmpp (or Expressway-E) certificate with the XMPP domain as a SAN (dNSName, or xmppAddr / SRVName)",
        sources: &[
            IDENTITY_FIELDS,
            src(
                JABBER_001,
                "Identifier Fields",
                "XMPP certificates are checked against the XMPP domain, not the host FQDN",
            ),
        ],
    },
    Guidance {
        id: "identity.wildcard",
        fix: "issue certificates with each FQDN as a SAN instead of a wildcard; Expressway does not support wildcard certificates",
        sources: &[
            src(
                EXPRESSWAY_003,
                "Points to be Aware",
                "Expressway does not support wildcard certificates",
            ),
            src(
                JABBER_000,
                "Identifier Fields",
                "a wildcard may only be the leftmost label; CUCM, CUP and Unity Connection may not support wildcard certificates (CSCta14114)",
            ),
        ],
    },
    Guidance {
        id: "identity.cn-only",
        fix: "reissue the certificate with the name as a SAN dNSName as well as the CN",
        sources: &[
            IDENTITY_FIELDS,
            src(
                RFC6125,
                "6.4.4",
                "the CN is a legacy fallback that current clients read only when no SAN is present",
            ),
        ],
    },
    Guidance {
        id: "edge.domain-san-missing",
        fix: "on Expressway-E, generate a CSR with the Unified CM registrations domain (or collab-edge.<domain>) as an additional SAN and have it signed",
        sources: &[
            GENERATE_CSRS,
            src(
                MRA_004,
                "Cluster Certificates",
                "IP phones also need the domain SAN for MRA registration",
            ),
        ],
    },
    Guidance {
        id: "edge.san-over-999",
        fix: "shorten the SAN list (drop unused names, or split services across certificates) so the names clients need fit in the first 999 characters",
        sources: &[src(
            MRA_004,
            "the last note (before Video Resources)",
            "names past 999 characters of SAN are ignored by VCS/Expressway as if absent",
        )],
    },
    Guidance {
        id: "edge.shared-key",
        fix: "generate a separate key and CSR on each cluster peer and have each certificate signed",
        sources: &[CLUSTER_CERTS],
    },
    Guidance {
        id: "edge.cluster-san",
        fix: "reissue each peer's certificate with the cluster FQDN as CN and the cluster and every peer FQDN as SANs",
        sources: &[
            src(
                EXPRESSWAY_003,
                "Server Certificates and Clustered Systems",
                "CN = cluster FQDN; SAN = peer FQDN and cluster FQDN",
            ),
            CLUSTER_CERTS,
        ],
    },
    Guidance {
        id: "usage.eku-client-auth-missing",
        fix: "reissue the certificate from a CSR requesting TLS Web Client as well as TLS Web Server Authentication (the Expressway CSR page does by default)",
        sources: &[HANDSHAKE_SUMMARY],
    },
    Guidance {
        id: "usage.eku-server-auth-missing",
        fix: "reissue the certificate from a CSR requesting TLS Web Server Authentication",
        sources: &[
            HANDSHAKE_SUMMARY,
            src(
                RFC5280,
                "4.2.1.12",
                "a certificate with an EKU may be used only for the purposes it lists",
            ),
        ],
    },
    Guidance {
        id: "usage.ca-basic-constraints-missing",
        fix: "have the CA certificate reissued with BasicConstraints cA=TRUE (critical)",
        sources: &[src(
            EXPRESSWAY_003,
            "Points to be Aware",
            "Expressway's CA certificate checking requires the BasicConstraints extension",
        )],
    },
    Guidance {
        id: "key.rsa-too-small",
        fix: "generate a new 2048-bit (or 4096-bit) RSA key and CSR and have the certificate reissued",
        sources: &[
            src(
                JABBER_001,
                "Required Certificates",
                "IM and Presence keys are 2048 bits",
            ),
            OPENSSL_REFUSES,
        ],
    },
    Guidance {
        id: "key.rsa-8192",
        fix: "reissue with a 2048- or 4096-bit RSA key",
        sources: &[src(
            EXPRESSWAY_003,
            "Certificates with Key Length of 8192 Bits",
            "8192-bit keys are a known Expressway troubleshooting topic",
        )],
    },
    Guidance {
        id: "key.not-rsa",
        fix: "use an RSA key for Expressway and UC server certificates",
        sources: &[src(
            EXPRESSWAY_003,
            "Points to be Aware",
            "RSA keys are highly recommended; DSA and other key types are not tested and may not work",
        )],
    },
    Guidance {
        id: "signature.sha1",
        fix: "have the CA reissue the certificate with SHA-256",
        sources: &[
            src(
                EXPRESSWAY_003,
                "Creating a CSR",
                "SHA-256 is the default; SHA-1 cannot be selected from X8.10",
            ),
            OPENSSL_REFUSES,
        ],
    },
    Guidance {
        id: "subject.unsupported-oid",
        fix: "request the certificate without the unsupported subject attribute",
        sources: &[src(
            EXPRESSWAY_003,
            "Points to be Aware",
            "only three EV OIDs (1.3.6.1.4.1.311.60.2.1.1/.2/.3) are supported in subjects",
        )],
    },
    Guidance {
        id: "revocation.no-info",
        fix: "have the CA include an HTTP CRL distribution point or OCSP URL (AIA) in the certificates it issues",
        sources: &[REVOCATION_SERVERS],
    },
    Guidance {
        id: "revocation.unreachable",
        fix: "make the CRL or OCSP URL reachable over HTTP from where the clients are, or have the certificate reissued with a URL they can reach",
        sources: &[REVOCATION_SERVERS],
    },
    Guidance {
        id: "revocation.revoked",
        fix: "replace the certificate: generate a new CSR, have it signed, and upload it with its chain",
        sources: &[REVOCATION_SERVERS],
    },
    Guidance {
        id: "trust.duplicate-self-signed-cn",
        fix: "sign the CUCM / IM and Presence certificates (tomcat, CallManager, cup-xmpp) with a CA and trust that CA alone on Expressway-C",
        sources: &[src(
            MRA_004,
            "CUCM Servers With Self Signed Certificates",
            "Expressway stops at the first trusted certificate whose subject matches, so only one of two self-signed certificates with one CN can be trusted",
        )],
    },
    Guidance {
        id: "tls.version-below-1.2",
        fix: "enable TLS 1.2 (and 1.3) on the server and disable older versions",
        sources: &[
            ON_PREM_ENCRYPTION,
            src(
                JABBER_001,
                "Federal Information Processing Standards",
                "in FIPS mode voicemail accepts only TLS 1.2",
            ),
        ],
    },
    Guidance {
        id: "tls.cipher-not-aes256",
        fix: "prefer AES-256-GCM suites on the server",
        sources: &[ON_PREM_ENCRYPTION],
    },
    Guidance {
        id: "tls.handshake-failed",
        fix: "read the failure's reason: check the server's TLS settings, the port and the certificate it is configured to present",
        sources: &[ASSUMED_TLS],
    },
    Guidance {
        id: "tls.certificate-not-visible",
        fix: "nothing to fix on the server; to see the chain in the connection itself, use intercept mode or a TLS 1.2 capture",
        sources: &[src(
            "RFC 8446",
            "4.4.2 Certificate",
            "TLS 1.3 encrypts the Certificate message",
        )],
    },
    Guidance {
        id: "xmpp.starttls-not-offered",
        fix: "enable TLS for client connections on the IM and Presence / XMPP server (XMPP client security mode)",
        sources: &[XMPP_MODES],
    },
    Guidance {
        id: "xmpp.starttls-not-required",
        fix: "turn the XMPP client-to-server secure mode back on (IM and Presence: Security Settings, XMPP Client To IM/P Service Secure Mode)",
        sources: &[XMPP_MODES],
    },
    Guidance {
        id: "dns.collab-edge-missing",
        fix: "publish _collab-edge._tls.<domain> SRV records in public DNS pointing at Expressway-E port 8443",
        sources: &[SERVER_REQUIREMENTS],
    },
    Guidance {
        id: "dns.internal-srv-exposed",
        fix: "remove _cisco-uds._tcp and _cuplogin._tcp from the DNS that outside clients use",
        sources: &[src(
            "client-behaviour.md (edgetap's design notes)",
            "Service discovery (DNS)",
            "assumption from Jabber deployment practice: a visible _cisco-uds record makes clients believe they are inside and never try the edge",
        )],
    },
    Guidance {
        id: "dns.target-unresolvable",
        fix: "publish A/AAAA records for every SRV target",
        sources: &[SERVER_REQUIREMENTS],
    },
    Guidance {
        id: "dns.target-not-in-cert",
        fix: "reissue the certificate with the SRV target FQDN as a SAN, or point the SRV record at a name the certificate carries",
        sources: &[SERVER_REQUIREMENTS, MISMATCH_PROMPTS],
    },
    Guidance {
        id: "dns.unexpected-port",
        fix: "point _collab-edge at port 8443 on the Expressway-E",
        sources: &[SERVER_REQUIREMENTS],
    },
    Guidance {
        id: "dns.lookup-failed",
        fix: "check the resolver (--nameserver) and that the domain's nameservers answer; run again once they do",
        sources: &[SERVER_REQUIREMENTS],
    },
    Guidance {
        id: "chain.malformed-certificate",
        fix: "re-export the certificate chain from the CA and upload it again",
        sources: &[src(
            RFC5280,
            "4.1",
            "a certificate is a DER-encoded structure; one that does not decode cannot be validated",
        )],
    },
    Guidance {
        id: "chain.issuer-not-ca",
        fix: "issue the server certificate from a real CA certificate; a server certificate cannot sign others",
        sources: &[src(
            RFC5280,
            "6.1.4 (k), (n)",
            "an issuer on the path must be a CA with keyCertSign",
        )],
    },
    Guidance {
        id: "chain.duplicate-cert",
        fix: "remove the duplicate from the server's certificate chain",
        sources: &[CHAIN_BUILT],
    },
    Guidance {
        id: "chain.name-constraints",
        fix: "have a CA whose name constraints cover this name issue the certificate",
        sources: &[src(
            RFC5280,
            "4.2.1.10 and 6.1.3 (b), (c)",
            "names outside a CA's permitted subtrees fail path validation",
        )],
    },
    Guidance {
        id: "chain.path-len-exceeded",
        fix: "issue the server certificate directly from an intermediate the CA's path length allows, or have the CA reissued without the constraint",
        sources: &[src(
            RFC5280,
            "4.2.1.9 and 6.1.4 (l), (m)",
            "more intermediates than pathLenConstraint allows fail path validation",
        )],
    },
    Guidance {
        id: "chain.unknown-critical-extension",
        fix: "have the CA reissue the certificate without marking that extension critical",
        sources: &[src(
            RFC5280,
            "4.2",
            "a client must reject a certificate with a critical extension it does not recognise",
        )],
    },
    Guidance {
        id: "signature.unverifiable",
        fix: "reissue with an RSA SHA-256 or ECDSA signature; clients that cannot check this signature reject the chain",
        sources: &[src(
            RFC5280,
            "6.1.3 (a)(1)",
            "a signature that cannot be verified ends path validation",
        )],
    },
    Guidance {
        id: "identity.cn-ignored-with-san",
        fix: "reissue the certificate with the name as a SAN dNSName",
        sources: &[
            IDENTITY_FIELDS,
            src(
                RFC6125,
                "6.4.4",
                "a client must not check the CN when the certificate has a dNSName SAN (OpenSSL's host-name check)",
            ),
        ],
    },
    Guidance {
        id: "x509.version-not-v3",
        fix: "have the CA reissue it as an X.509 v3 certificate",
        sources: &[
            src(CABF, "7.1.1", "certificates are X.509 v3"),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.serial-invalid",
        fix: "have the CA reissue the certificate with a positive serial number of at most 20 octets",
        sources: &[
            src(
                RFC5280,
                "4.1.2.2",
                "the serial is a positive integer of at most 20 octets",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.duplicate-extension",
        fix: "have the CA reissue the certificate with each extension once",
        sources: &[
            src(
                RFC5280,
                "4.2",
                "a certificate must not include more than one instance of an extension",
            ),
            OPENSSL_REFUSES,
        ],
    },
    Guidance {
        id: "x509.extension-malformed",
        fix: "have the CA reissue the certificate with the extension encoded correctly",
        sources: &[
            src(RFC5280, "4.2.1", "the extensions a validator reads"),
            OPENSSL_REFUSES,
        ],
    },
    Guidance {
        id: "x509.informational-extension-malformed",
        fix: "have the CA reissue the certificate with the extension encoded correctly",
        sources: &[
            src(
                RFC5280,
                "4.2.2",
                "AIA, SIA and policies are not read while verifying",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.extension-empty",
        fix: "have the CA reissue the certificate without the empty extension, or with its entries",
        sources: &[
            src(RFC5280, "4.2.1", "these extensions hold at least one entry"),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.critical-not-allowed",
        fix: "have the CA reissue the certificate with this extension non-critical",
        sources: &[
            src(
                RFC5280,
                "4.2.1.1, 4.2.1.2, 4.2.2.1, 4.2.2.2",
                "AKI, SKI, AIA and SIA are non-critical",
            ),
            OPENSSL_REFUSES,
        ],
    },
    Guidance {
        id: "x509.critical-flag",
        fix: "have the CA reissue the certificate with the extension's criticality as RFC 5280 requires",
        sources: &[
            src(
                RFC5280,
                "4.2.1.9, 4.2.1.10, 4.2.1.6",
                "basicConstraints of a CA and nameConstraints are critical",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.aki-missing",
        fix: "have the CA reissue the certificate with an authorityKeyIdentifier",
        sources: &[
            src(
                RFC5280,
                "4.2.1.1",
                "certificates not self-signed carry an authorityKeyIdentifier",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.aki-incomplete",
        fix: "have the CA reissue the certificate with an authorityKeyIdentifier holding only the issuer's keyIdentifier",
        sources: &[
            src(
                CABF,
                "7.1.2",
                "the AKI holds the keyIdentifier and nothing else",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.aki-mismatch",
        fix: "have the certificate reissued by its real issuer (its AKI then names that issuer's key)",
        sources: &[
            src(
                RFC5280,
                "4.2.1.1",
                "the AKI identifies the issuer's public key",
            ),
            OPENSSL_REFUSES,
        ],
    },
    Guidance {
        id: "x509.ski-missing",
        fix: "have the CA certificate reissued with a subjectKeyIdentifier",
        sources: &[
            src(
                RFC5280,
                "4.2.1.2",
                "CA certificates carry a subjectKeyIdentifier",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.ca-subject-empty",
        fix: "have the CA certificate reissued with a subject name",
        sources: &[
            src(RFC5280, "4.1.2.6", "a CA's subject is a non-empty name"),
            OPENSSL_REFUSES,
        ],
    },
    Guidance {
        id: "x509.leaf-is-ca",
        fix: "request the server certificate from a CSR for a server (TLS Web Server/Client authentication), not from a CA template",
        sources: &[
            src(CABF, "7.1.2.7", "a subscriber certificate is not a CA"),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.name-constraints-in-leaf",
        fix: "have the certificate reissued without nameConstraints",
        sources: &[
            src(
                RFC5280,
                "4.2.1.10",
                "nameConstraints appear only in CA certificates",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.name-constraints-unsupported",
        fix: "have the CA certificate reissued without constraints on that name form, or the server certificate without such names",
        sources: &[
            src(
                RFC5280,
                "4.2.1.10",
                "an application that cannot check a constrained name form rejects the certificate",
            ),
            OPENSSL_REFUSES,
        ],
    },
    Guidance {
        id: "x509.name-constraints-too-many",
        fix: "split the names over several certificates, or have the CA issue from a CA with fewer constraints",
        sources: &[OPENSSL_REFUSES],
    },
    Guidance {
        id: "x509.dns-name-invalid",
        fix: "have the certificate reissued with the host's name in preferred name syntax",
        sources: &[
            src(
                RFC5280,
                "4.2.1.6",
                "dNSName is in preferred name syntax (RFC 1034 3.5)",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.cn-not-in-san",
        fix: "have the certificate reissued with its CN also as a SAN entry, character for character",
        sources: &[
            src(
                CABF,
                "7.1.4.3",
                "a subject CN repeats one of the SAN entries",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.eku-not-cabf",
        fix: "have the certificate reissued with an EKU of TLS Web Server (and Client) Authentication only",
        sources: &[
            src(
                CABF,
                "7.1.2.7.10",
                "subscriber certificates carry serverAuth and no anyExtendedKeyUsage; roots carry no EKU",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.key-not-allowed",
        fix: "generate a new RSA 2048-bit (or P-256) key and CSR and have the certificate reissued",
        sources: &[
            src(
                CABF,
                "6.1.5",
                "RSA with a modulus a multiple of 8 bits, or ECDSA on P-256/P-384/P-521",
            ),
            OPENSSL_TAKES,
        ],
    },
    Guidance {
        id: "x509.key-explicit-curve",
        fix: "generate the key on a named curve (or use RSA 2048) and have the certificate reissued",
        sources: &[
            src(
                "RFC 5480",
                "2.1.1",
                "the curve is named; implicit and explicit parameters must not be used",
            ),
            OPENSSL_REFUSES,
        ],
    },
    Guidance {
        id: "x509.signature-algorithm-not-allowed",
        fix: "have the certificate reissued by a CA key that signs with SHA-256 RSA or ECDSA",
        sources: &[
            src(CABF, "7.1.3.2", "the signature algorithms a CA may use"),
            OPENSSL_TAKES,
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::analysis::catalog::ALL;

    /// Every rule has one entry, in catalogue order, with a fix and at least
    /// one source; no entry names a rule the catalogue lacks.
    #[test]
    fn every_rule_has_guidance() {
        let ids: Vec<&str> = GUIDANCE.iter().map(|g| g.id).collect();
        let rules: Vec<&str> = ALL.iter().map(|r| r.id).collect();
        assert_eq!(ids, rules);
        for g in GUIDANCE {
            assert!(!g.fix.is_empty() && !g.sources.is_empty(), "{}", g.id);
        }
        assert!(for_rule("chain.missing-intermediate").is_some());
        assert!(for_rule("chain.nonexistent").is_none());
    }
}
