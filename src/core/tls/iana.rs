//! TLS facts as their IANA code points, with one display name each whoever saw
//! the handshake (probe and intercept through rustls, replay and passthrough
//! through the passive parser): protocol versions, cipher suites (the IANA
//! registry's names, e.g. `TLS_AES_256_GCM_SHA384`, never a library's own
//! spelling) and alerts (RFC 8446 §6 and RFC 5246 §7.2 names).

use std::fmt;

use serde::{Serialize, Serializer};

/// A negotiated protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// A version by its code point (0x0303 is TLS 1.2, 0x7fxx a TLS 1.3 draft).
    Code(u16),
    /// Older than TLS 1.2, exact version unknown: the server refused a TLS
    /// 1.2/1.3 offer as too new for it.
    BelowTls12,
}

impl ProtocolVersion {
    /// TLS 1.2.
    pub const TLS12: ProtocolVersion = ProtocolVersion::Code(0x0303);
    /// TLS 1.3.
    pub const TLS13: ProtocolVersion = ProtocolVersion::Code(0x0304);

    /// "TLSv1.2" style name (Wireshark's), or the code point in hex.
    pub fn name(self) -> String {
        match self {
            ProtocolVersion::BelowTls12 => "below TLSv1.2".into(),
            ProtocolVersion::Code(v) => match v {
                0x0002 => "SSLv2".into(),
                0x0300 => "SSLv3".into(),
                0x0301 => "TLSv1.0".into(),
                0x0302 => "TLSv1.1".into(),
                0x0303 => "TLSv1.2".into(),
                0x0304 => "TLSv1.3".into(),
                v if v >> 8 == 0x7f => format!("TLSv1.3-draft{}", v & 0xff),
                v => format!("0x{v:04x}"),
            },
        }
    }

    /// SSL, TLS 1.0 or 1.1 (or refused as older than 1.2).
    pub fn is_below_tls12(self) -> bool {
        match self {
            ProtocolVersion::BelowTls12 => true,
            ProtocolVersion::Code(v) => matches!(v, 0x0002 | 0x0300 | 0x0301 | 0x0302),
        }
    }

    /// TLS 1.3 or one of its drafts: the certificate is encrypted.
    pub fn is_tls13(self) -> bool {
        matches!(self, ProtocolVersion::Code(v) if v == 0x0304 || v >> 8 == 0x7f)
    }
}

/// A cipher suite by its IANA code point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CipherSuite(pub u16);

impl CipherSuite {
    /// The IANA registry name, or the code point in hex for an unassigned one.
    pub fn name(self) -> String {
        tls_parser::TlsCipherSuite::from_id(self.0)
            .map_or_else(|| format!("0x{:04x}", self.0), |c| c.name.to_owned())
    }

    /// Whether the bulk cipher is AES with a 256-bit key.
    pub fn is_aes256(self) -> bool {
        let name = self.name();
        name.contains("AES_256")
    }
}

/// Who sent an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The TLS client.
    Client,
    /// The TLS server.
    Server,
}

impl Side {
    /// "client" or "server".
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// A TLS alert as sent: level and description code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Alert {
    /// Who sent it.
    pub from: Side,
    /// 1 warning, 2 fatal.
    pub level: u8,
    /// The AlertDescription code point.
    pub description: u8,
}

impl Alert {
    /// A fatal alert ends the connection.
    pub fn is_fatal(&self) -> bool {
        self.level == 2
    }

    /// "fatal" or "warning".
    pub fn level_name(&self) -> &'static str {
        if self.is_fatal() { "fatal" } else { "warning" }
    }

    /// The description's RFC name, e.g. `unknown_ca`.
    pub fn description_name(&self) -> String {
        alert_description_name(self.description)
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} from the {}",
            self.level_name(),
            self.description_name(),
            self.from.as_str()
        )
    }
}

/// The RFC 8446 §6 / RFC 5246 §7.2 name of an alert description.
pub fn alert_description_name(code: u8) -> String {
    let name = match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return format!("alert {code}"),
    };
    name.to_owned()
}

impl Serialize for ProtocolVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl Serialize for CipherSuite {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl Serialize for Alert {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_registry_names() {
        assert_eq!(ProtocolVersion::TLS12.name(), "TLSv1.2");
        assert_eq!(ProtocolVersion::Code(0x7f17).name(), "TLSv1.3-draft23");
        assert!(ProtocolVersion::Code(0x0301).is_below_tls12());
        assert!(!ProtocolVersion::TLS12.is_below_tls12());
        assert!(ProtocolVersion::Code(0x7f17).is_tls13());
        // TLS 1.3 suites by their IANA names, not rustls' TLS13_... spelling.
        assert_eq!(CipherSuite(0x1302).name(), "TLS_AES_256_GCM_SHA384");
        assert_eq!(
            CipherSuite(0xc030).name(),
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        );
        assert!(CipherSuite(0x1302).is_aes256());
        assert!(!CipherSuite(0x1301).is_aes256());
        assert_eq!(CipherSuite(0xfefe).name(), "0xfefe");
        let alert = Alert {
            from: Side::Server,
            level: 2,
            description: 22,
        };
        assert_eq!(alert.to_string(), "fatal record_overflow from the server");
        assert_eq!(alert_description_name(48), "unknown_ca");
        assert_eq!(
            serde_json::to_value(CipherSuite(0x1302)).unwrap(),
            serde_json::json!("TLS_AES_256_GCM_SHA384")
        );
    }
}
