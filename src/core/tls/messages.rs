//! Decoding the handshake messages a passive observer cares about. Hellos go
//! through tls-parser; the Certificate list is split here by hand so that a
//! truncated or malformed list still yields the certificates that are whole.

use serde::Serialize;
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

/// What a ClientHello offered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientHello {
    /// The record-layer hello version (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// server_name, if sent.
    pub sni: Option<String>,
    /// supported_versions, if sent.
    pub versions: Vec<u16>,
    /// Offered cipher suites.
    pub ciphers: Vec<u16>,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// An SSLv2-format hello (old clients), which carries no extensions.
    pub sslv2_format: bool,
    /// The client random: what key logs index their secrets by.
    #[serde(skip)]
    pub random: Option<[u8; 32]>,
    /// The session ID offered: a TLS 1.2 session to resume (or TLS 1.3's
    /// compatibility value).
    #[serde(skip)]
    pub session_id: Vec<u8>,
    /// The session ticket presented (RFC 5077): a TLS 1.2 session to resume.
    #[serde(skip)]
    pub session_ticket: Vec<u8>,
}

/// The ticket of a TLS 1.2 NewSessionTicket body (lifetime hint, then the
/// ticket with a 2-byte length); `None` when the body is cut or empty.
pub fn session_ticket(body: &[u8]) -> Option<Vec<u8>> {
    let len = usize::from(u16::from_be_bytes(body.get(4..6)?.try_into().ok()?));
    let ticket = body.get(6..6 + len)?;
    (!ticket.is_empty()).then(|| ticket.to_vec())
}

/// A session ID as a ServerHello carries it (at most 32 bytes), kept by
/// value so a ServerHello stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionId {
    len: u8,
    bytes: [u8; 32],
}

impl SessionId {
    /// The ID of `bytes` (cut at 32, the most TLS allows).
    pub fn new(bytes: &[u8]) -> SessionId {
        let len = bytes.len().min(32);
        let mut id = SessionId {
            len: len as u8,
            bytes: [0; 32],
        };
        id.bytes[..len].copy_from_slice(&bytes[..len]);
        id
    }

    /// The ID's bytes (empty: none).
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// What a ServerHello chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ServerHello {
    /// Negotiated version: supported_versions if present, else the hello version.
    pub version: u16,
    /// Chosen cipher suite.
    pub cipher: u16,
    /// A HelloRetryRequest (RFC 8446 §4.1.4): the handshake starts again with a
    /// second ClientHello, still in plaintext.
    #[serde(skip)]
    pub retry: bool,
    /// The session ID the server chose (TLS 1.2: the client's again when
    /// it resumes that session).
    #[serde(skip)]
    pub session_id: SessionId,
    /// TLS 1.3: the server took a pre-shared key, so the session resumes
    /// one set up before.
    #[serde(skip)]
    pub psk: bool,
}

/// The ServerHello random that marks a HelloRetryRequest (RFC 8446 §4.1.3).
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A Certificate message: the certificates that are whole, and what was wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Certificates {
    /// DER certificates, leaf first.
    #[serde(skip)]
    pub certs: Vec<Vec<u8>>,
    /// Set when the list was malformed or cut short.
    pub problem: Option<String>,
}

/// Decode a whole ClientHello message (header included).
pub fn client_hello(message: &[u8]) -> Result<ClientHello, String> {
    let (_, parsed) = tls_parser::parse_tls_message_handshake(message)
        .map_err(|e| format!("ClientHello: {e}"))?;
    let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = parsed else {
        return Err("not a ClientHello".into());
    };
    let mut out = ClientHello {
        legacy_version: ch.version.0,
        ciphers: ch.ciphers.iter().map(|c| c.0).collect(),
        random: <[u8; 32]>::try_from(ch.random).ok(),
        session_id: ch.session_id.unwrap_or_default().to_vec(),
        ..ClientHello::default()
    };
    if let Some(ext) = ch.ext
        && let Ok((_, exts)) = tls_parser::parse_tls_client_hello_extensions(ext)
    {
        for e in exts {
            match e {
                TlsExtension::SNI(names) => {
                    out.sni = names
                        .first()
                        .map(|(_, n)| String::from_utf8_lossy(n).into_owned());
                }
                TlsExtension::SupportedVersions(v) => {
                    out.versions = v.iter().map(|v| v.0).collect()
                }
                TlsExtension::ALPN(p) => {
                    out.alpn = p
                        .iter()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect()
                }
                TlsExtension::SessionTicket(t) => out.session_ticket = t.to_vec(),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Decode a whole ServerHello message (header included).
pub fn server_hello(message: &[u8]) -> Result<ServerHello, String> {
    let (_, parsed) = tls_parser::parse_tls_message_handshake(message)
        .map_err(|e| format!("ServerHello: {e}"))?;
    let (version, cipher, ext, retry, session_id) = match parsed {
        TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)) => (
            sh.version.0,
            sh.cipher.0,
            sh.ext,
            sh.random == HELLO_RETRY_RANDOM,
            SessionId::new(sh.session_id.unwrap_or_default()),
        ),
        TlsMessage::Handshake(TlsMessageHandshake::ServerHelloV13Draft18(sh)) => (
            sh.version.0,
            sh.cipher.0,
            sh.ext,
            false,
            SessionId::default(),
        ),
        TlsMessage::Handshake(TlsMessageHandshake::HelloRetryRequest(hrr)) => (
            hrr.version.0,
            hrr.cipher.0,
            hrr.ext,
            true,
            SessionId::default(),
        ),
        _ => return Err("not a ServerHello".into()),
    };
    let mut negotiated = version;
    let mut psk = false;
    if let Some(ext) = ext
        && let Ok((_, exts)) = tls_parser::parse_tls_server_hello_extensions(ext)
    {
        for e in exts {
            match e {
                TlsExtension::SupportedVersions(v) => {
                    if let Some(v) = v.first() {
                        negotiated = v.0;
                    }
                }
                TlsExtension::PreSharedKey(_) => psk = true,
                _ => {}
            }
        }
    }
    Ok(ServerHello {
        version: negotiated,
        cipher,
        retry,
        session_id,
        psk,
    })
}

/// Split a TLS 1.0-1.2 Certificate message body (after the 4-byte header).
pub fn certificates(body: &[u8]) -> Certificates {
    let mut out = Certificates::default();
    if body.len() < 3 {
        out.problem = Some(format!(
            "Certificate message of {} bytes has no list length",
            body.len()
        ));
        return out;
    }
    let declared = be24(body, 0);
    let available = body.len() - 3;
    if declared != available {
        out.problem = Some(format!(
            "certificate list declares {declared} bytes, the message carries {available}"
        ));
    }
    let mut list = &body[3..3 + declared.min(available)];
    let mut index = 0;
    while !list.is_empty() {
        if list.len() < 3 {
            out.problem = Some(format!(
                "certificate {index}: {} stray bytes where a length belongs",
                list.len()
            ));
            break;
        }
        let len = be24(list, 0);
        if len > list.len() - 3 {
            out.problem = Some(format!(
                "certificate {index} declares {len} bytes, only {} present",
                list.len() - 3
            ));
            break;
        }
        out.certs.push(list[3..3 + len].to_vec());
        list = &list[3 + len..];
        index += 1;
    }
    out
}

/// Split a TLS 1.3 Certificate message body (RFC 8446 §4.4.2): a request
/// context, then entries of a certificate and its extensions.
pub fn certificates_tls13(body: &[u8]) -> Certificates {
    let mut out = Certificates::default();
    let Some(&context) = body.first() else {
        out.problem = Some("TLS 1.3 Certificate message is empty".into());
        return out;
    };
    let start = 1 + usize::from(context);
    if body.len() < start + 3 {
        out.problem = Some(format!(
            "TLS 1.3 Certificate message of {} bytes has no list length",
            body.len()
        ));
        return out;
    }
    let declared = be24(body, start);
    let available = body.len() - start - 3;
    if declared != available {
        out.problem = Some(format!(
            "certificate list declares {declared} bytes, the message carries {available}"
        ));
    }
    let mut list = &body[start + 3..start + 3 + declared.min(available)];
    let mut index = 0;
    while !list.is_empty() {
        let len = if list.len() >= 3 {
            be24(list, 0)
        } else {
            usize::MAX
        };
        if len == usize::MAX || len > list.len() - 3 || list.len() - 3 - len < 2 {
            out.problem = Some(format!(
                "certificate entry {index} is cut short ({} bytes left)",
                list.len()
            ));
            break;
        }
        let cert = &list[3..3 + len];
        let ext_len = usize::from(u16::from_be_bytes([list[3 + len], list[4 + len]]));
        if ext_len > list.len() - 5 - len {
            out.problem = Some(format!(
                "certificate entry {index} declares {ext_len} bytes of extensions, only {} present",
                list.len() - 5 - len
            ));
            out.certs.push(cert.to_vec());
            break;
        }
        out.certs.push(cert.to_vec());
        list = &list[5 + len + ext_len..];
        index += 1;
    }
    out
}

/// Big-endian 24-bit length at `at` (caller checked bounds).
pub fn be24(b: &[u8], at: usize) -> usize {
    (usize::from(b[at]) << 16) | (usize::from(b[at + 1]) << 8) | usize::from(b[at + 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(certs: &[&[u8]]) -> Vec<u8> {
        let mut body: Vec<u8> = Vec::new();
        for c in certs {
            body.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            body.extend_from_slice(c);
        }
        let mut out = (body.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend(body);
        out
    }

    #[test]
    fn certificate_list_whole_and_damaged() {
        let body = list(&[b"leaf-der", b"inter-der"]);
        let c = certificates(&body);
        assert_eq!(c.certs, vec![b"leaf-der".to_vec(), b"inter-der".to_vec()]);
        assert_eq!(c.problem, None);
        let cut = certificates(&body[..body.len() - 3]);
        assert_eq!(
            cut.certs,
            vec![b"leaf-der".to_vec()],
            "whole certificates survive a cut"
        );
        assert!(cut.problem.unwrap().contains("declares"));
        for n in 0..body.len() {
            let _ = certificates(&body[..n]);
        }
    }

    #[test]
    fn tls13_certificate_entries_with_extensions() {
        let mut entries = Vec::new();
        for (cert, ext) in [
            (&b"leaf-der"[..], &b"\x00\x05\x00\x00"[..]),
            (b"ca-der", b""),
        ] {
            entries.extend_from_slice(&(cert.len() as u32).to_be_bytes()[1..]);
            entries.extend_from_slice(cert);
            entries.extend_from_slice(&(ext.len() as u16).to_be_bytes());
            entries.extend_from_slice(ext);
        }
        let mut body = vec![0u8];
        body.extend_from_slice(&(entries.len() as u32).to_be_bytes()[1..]);
        body.extend(entries);
        let c = certificates_tls13(&body);
        assert_eq!(c.certs, vec![b"leaf-der".to_vec(), b"ca-der".to_vec()]);
        assert_eq!(c.problem, None);
        for n in 0..body.len() {
            let cut = certificates_tls13(&body[..n]);
            assert!(cut.problem.is_some(), "cut at {n}");
        }
    }
}
