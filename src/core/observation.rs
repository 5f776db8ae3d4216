//! The one record every source produces: a single TLS handshake, as seen.
//!
//! `inspect` builds it from certificate files, `probe` from its own handshakes,
//! `proxy` from relayed traffic and `replay` from captures. The analysis engine
//! consumes nothing else, so every source gets the same verdicts.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;

use crate::core::tls::iana::{Alert, CipherSuite, ProtocolVersion, Side};
use time::OffsetDateTime;

/// The application protocol carried over TLS; it decides which name a client checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// HTTPS: edge configuration, UDS, Tomcat (8443, 443).
    Http,
    /// XMPP after STARTTLS (5222): the client checks the XMPP domain, not the host.
    Xmpp,
    /// SIP over TLS (5061).
    Sip,
}

impl Service {
    /// The service a client expects on `port` when nothing says otherwise. One
    /// set for every source (probe, proxy, replay), so a handshake gets the same
    /// reference identity whoever saw it:
    ///
    /// | port | service |
    /// |---|---|
    /// | 5222 | XMPP client-to-server, STARTTLS |
    /// | 5223 | XMPP client-to-server, legacy direct TLS |
    /// | 5269 | XMPP server-to-server, STARTTLS |
    /// | 5061 | SIP over TLS |
    /// | anything else | HTTPS |
    ///
    /// `--service` (probe, proxy listeners) and `--service-map` (replay) override it.
    pub fn for_port(port: u16) -> Service {
        match port {
            5222 | 5223 | 5269 => Service::Xmpp,
            5061 => Service::Sip,
            _ => Service::Http,
        }
    }

    /// Whether XMPP on `port` opens in plaintext and upgrades with STARTTLS
    /// (5222, 5269, any other port) or starts with TLS at once (5223).
    pub fn xmpp_starttls_on(port: u16) -> bool {
        port != 5223
    }

    /// The lowercase name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Http => "http",
            Service::Xmpp => "xmpp",
            Service::Sip => "sip",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Service {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "http" | "https" => Ok(Service::Http),
            "xmpp" => Ok(Service::Xmpp),
            "sip" | "sips" => Ok(Service::Sip),
            other => Err(format!("unknown service {other:?}: use http, xmpp or sip")),
        }
    }
}

/// Where an observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Certificate files given to `edgetap inspect`.
    Inspect,
    /// A handshake edgetap made itself.
    Probe,
    /// A handshake relayed by the inline proxy.
    Proxy,
    /// A handshake found in a recorded capture.
    Replay,
}

/// The provenance of an observation: which source, when, and a free-form locator
/// (a file name, a capture frame, a connection id).
#[derive(Debug, Clone, Serialize)]
pub struct Origin {
    /// Which source produced the observation.
    pub kind: SourceKind,
    /// When the handshake happened or the file was read, if known.
    #[serde(with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    /// A source-specific locator, e.g. the certificate file path.
    pub locator: String,
}

/// The server a client talked to, as the client knew it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Endpoint {
    /// The host name the client used (or the IP literal, as text).
    pub host: Option<String>,
    /// The server address, when known.
    pub ip: Option<IpAddr>,
    /// The server port, when known.
    pub port: Option<u16>,
}

/// The name a client compares with the certificate. Serialised as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceIdentity {
    /// A DNS name: the host name (http, sip) or the XMPP domain (xmpp).
    Dns(String),
    /// The client connected by IP literal.
    Ip(IpAddr),
}

impl ReferenceIdentity {
    /// Parse what a user typed: an IP literal (IPv6 may be bracketed) or a DNS name.
    /// A trailing dot is dropped and the name is lowercased.
    pub fn parse(s: &str) -> ReferenceIdentity {
        let trimmed = s.trim().trim_start_matches('[').trim_end_matches(']');
        match trimmed.parse::<IpAddr>() {
            Ok(ip) => ReferenceIdentity::Ip(ip),
            Err(_) => ReferenceIdentity::Dns(s.trim().trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

impl Serialize for ReferenceIdentity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for ReferenceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceIdentity::Dns(name) => f.write_str(name),
            ReferenceIdentity::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The step of setting up a TLS session that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Opening the TCP connection (refused, unreachable, no answer).
    Connect,
    /// The XMPP STARTTLS exchange before TLS.
    Starttls,
    /// The TLS handshake itself (alert, reset, timeout, no common version).
    TlsHandshake,
    /// Reading what was captured (damaged or missing server side): what
    /// happened on the wire is not known.
    Capture,
    /// The client never sent a TLS ClientHello (plain HTTP to a TLS port,
    /// another protocol): the client's doing, and nothing about the server's
    /// certificate can be judged from it.
    ClientHello,
}

/// Why a handshake did not complete: which step, which side ended it when
/// that is known (an alert names its sender; a refused connection is the
/// server's), and the reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The step that failed.
    pub step: Step,
    /// The side that ended it, when known.
    pub by: Option<Side>,
    /// What happened, for people.
    pub reason: String,
}

impl Failure {
    /// A failure at `step`, ended by `by` when known.
    pub fn new(step: Step, by: Option<Side>, reason: impl Into<String>) -> Failure {
        Failure {
            step,
            by,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// TLS parameters of the handshake, when the source saw them.
#[derive(Debug, Clone, Default)]
pub struct TlsParams {
    /// Negotiated protocol version (JSON: its name, e.g. "TLSv1.2").
    pub version: Option<ProtocolVersion>,
    /// Negotiated cipher suite (JSON: its IANA name).
    pub cipher: Option<CipherSuite>,
    /// Server name the client sent (SNI).
    pub sni: Option<String>,
    /// ALPN protocols offered or selected.
    pub alpn: Vec<String>,
    /// Alerts seen (JSON: "fatal handshake_failure from the server").
    pub alerts: Vec<Alert>,
    /// Why the handshake did not complete (alert, reset, timeout), if it did
    /// not. JSON: `failure` (the reason), `failure_step`, `failure_by`.
    pub failure: Option<Failure>,
    /// The Certificate message was encrypted (TLS 1.3 seen passively); any
    /// presented chain came from a side probe, not from this handshake.
    pub chain_hidden: bool,
    /// What became of the encrypted part of a recorded TLS 1.3 handshake:
    /// decrypted with which keys, or why not.
    pub decryption: Option<String>,
    /// The handshake resumed a session (no chain on the wire), and where
    /// its chain came from, in words.
    pub resumed: Option<String>,
}

impl Serialize for TlsParams {
    // By hand so the failure keeps its one-string `failure` field (a contract)
    // and adds its step and side beside it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("TlsParams", 11)?;
        st.serialize_field("version", &self.version)?;
        st.serialize_field("cipher", &self.cipher)?;
        st.serialize_field("sni", &self.sni)?;
        st.serialize_field("alpn", &self.alpn)?;
        st.serialize_field("alerts", &self.alerts)?;
        st.serialize_field("failure", &self.failure.as_ref().map(|f| &f.reason))?;
        st.serialize_field("failure_step", &self.failure.as_ref().map(|f| f.step))?;
        st.serialize_field(
            "failure_by",
            &self.failure.as_ref().and_then(|f| f.by).map(Side::as_str),
        )?;
        st.serialize_field("chain_hidden", &self.chain_hidden)?;
        if let Some(d) = &self.decryption {
            st.serialize_field("decryption", d)?;
        }
        if let Some(r) = &self.resumed {
            st.serialize_field("resumed", r)?;
        }
        st.end()
    }
}

/// The SRV record set an endpoint was found through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SrvContext {
    /// The SRV owner name, e.g. `_collab-edge._tls.example.com`.
    pub name: String,
    /// This endpoint's target FQDN.
    pub target: String,
    /// This endpoint's port.
    pub port: u16,
    /// Every target of the set (the cluster peers), in SRV order.
    pub peers: Vec<String>,
}

/// Where in a capture a handshake was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapturePosition {
    /// The capture file.
    pub file: String,
    /// Frame number (from 1) that completed the server's Certificate (or ServerHello).
    pub frame: u64,
    /// TCP stream index (0-based, in order of first appearance).
    pub stream: usize,
    /// Client ip:port.
    pub client: String,
    /// Server ip:port.
    pub server: String,
}

/// What an XMPP server offered before TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct XmppStartTls {
    /// `<starttls/>` was among the stream features.
    pub offered: bool,
    /// It carried `<required/>`.
    pub required: bool,
}

/// How a revocation status was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationMethod {
    /// A CRL from a cRLDistributionPoints URL.
    Crl,
    /// An OCSP responder from the authorityInfoAccess.
    Ocsp,
}

impl RevocationMethod {
    /// "CRL" or "OCSP".
    pub fn label(self) -> &'static str {
        match self {
            RevocationMethod::Crl => "CRL",
            RevocationMethod::Ocsp => "OCSP",
        }
    }
}

/// What one revocation source said about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum RevocationStatus {
    /// Checked: not revoked.
    Good,
    /// Checked: revoked.
    Revoked {
        /// When, as the CRL or responder says.
        #[serde(with = "time::serde::rfc3339")]
        at: time::OffsetDateTime,
        /// The reason code's name, when given.
        reason: Option<String>,
    },
    /// The responder knows nothing of the certificate (OCSP "unknown").
    Unknown,
    /// No answer could be had or trusted; `why` names the step that failed
    /// (DNS, refused, timeout, HTTP status, unparsable, bad signature, stale, ...).
    Unreachable {
        /// The failed step, for people.
        why: String,
    },
}

/// One online revocation look-up (`--online`): which certificate, where, the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevocationCheck {
    /// The certificate's position in the chain as sent.
    pub position: usize,
    /// Its subject, for messages.
    pub subject: String,
    /// CRL or OCSP.
    pub method: RevocationMethod,
    /// The URL asked.
    pub url: String,
    /// The answer.
    pub status: RevocationStatus,
}

/// An issuer certificate fetched from an authorityInfoAccess caIssuers URL (`--online`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchedIssuer {
    /// The URL it came from.
    pub url: String,
    /// Its subject.
    pub subject: String,
    /// SHA-256 of its DER.
    pub sha256: String,
    /// The certificate, DER.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// One TLS handshake seen from any source: the unit the engine judges.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    /// The server as the client addressed it.
    pub endpoint: Endpoint,
    /// What runs over the TLS session.
    pub service: Service,
    /// The name the client checks: the XMPP domain for xmpp, else the host or IP.
    pub reference_identity: ReferenceIdentity,
    /// The domain of the `_collab-edge` lookup, when this server is an MRA edge.
    pub edge_domain: Option<String>,
    /// The certificates the server sent, DER, in the order sent.
    #[serde(skip)]
    pub presented: Vec<Vec<u8>>,
    /// TLS parameters, when known.
    pub tls: TlsParams,
    /// The SRV set this endpoint was discovered through, if any.
    pub srv: Option<SrvContext>,
    /// XMPP stream features seen before TLS (xmpp only).
    pub xmpp: Option<XmppStartTls>,
    /// Where in a capture it was found (replay only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<CapturePosition>,
    /// Where this observation came from.
    pub origin: Origin,
    /// Revocation look-ups made online (`--online`); empty when offline.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revocation: Vec<RevocationCheck>,
    /// Issuers fetched from caIssuers URLs for a missing link (`--online`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fetched_issuers: Vec<FetchedIssuer>,
}

impl Observation {
    /// A copy without the presented chain's bytes: what a report keeps (the
    /// chain lives on, decoded, in its entries; a chain seen 2,000 times is
    /// not copied 2,000 times).
    pub fn without_chain(&self) -> Observation {
        let Observation {
            endpoint,
            service,
            reference_identity,
            edge_domain,
            presented: _,
            tls,
            srv,
            xmpp,
            capture,
            origin,
            revocation,
            fetched_issuers,
        } = self;
        Observation {
            endpoint: endpoint.clone(),
            service: *service,
            reference_identity: reference_identity.clone(),
            edge_domain: edge_domain.clone(),
            presented: Vec::new(),
            tls: tls.clone(),
            srv: srv.clone(),
            xmpp: *xmpp,
            capture: capture.clone(),
            origin: origin.clone(),
            revocation: revocation.clone(),
            fetched_issuers: fetched_issuers.clone(),
        }
    }

    /// An observation with the essentials; the rest starts empty.
    pub fn new(
        service: Service,
        reference_identity: ReferenceIdentity,
        presented: Vec<Vec<u8>>,
        origin: Origin,
    ) -> Observation {
        Observation {
            endpoint: Endpoint {
                host: Some(reference_identity.to_string()),
                ip: None,
                port: None,
            },
            service,
            reference_identity,
            edge_domain: None,
            presented,
            tls: TlsParams::default(),
            srv: None,
            xmpp: None,
            capture: None,
            origin,
            revocation: Vec::new(),
            fetched_issuers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn one_port_policy_for_every_source() {
        for (port, service) in [
            (5222, Service::Xmpp),
            (5223, Service::Xmpp),
            (5269, Service::Xmpp),
            (5061, Service::Sip),
            (8443, Service::Http),
            (443, Service::Http),
            (15222, Service::Http),
        ] {
            assert_eq!(Service::for_port(port), service, "port {port}");
        }
        assert!(Service::xmpp_starttls_on(5222) && Service::xmpp_starttls_on(5269));
        assert!(!Service::xmpp_starttls_on(5223), "5223 is direct TLS");
    }

    use super::*;

    #[test]
    fn reference_identity_parses_ips_and_names() {
        assert_eq!(
            ReferenceIdentity::parse("192.0.2.7"),
            ReferenceIdentity::Ip("192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            ReferenceIdentity::parse("[2001:db8::1]"),
            ReferenceIdentity::Ip("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            ReferenceIdentity::parse("ExpE.Example.COM."),
            ReferenceIdentity::Dns("expe.example.com".into())
        );
    }

    #[test]
    fn service_parses_aliases_and_rejects_others() {
        assert_eq!("HTTPS".parse::<Service>(), Ok(Service::Http));
        assert_eq!("xmpp".parse::<Service>(), Ok(Service::Xmpp));
        assert!("ftp".parse::<Service>().is_err());
    }
}
