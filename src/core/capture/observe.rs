//! Turning a [`TlsConnection`] found in a capture into an [`Observation`]: which
//! service (the user's map, then what the protocol shows, then the port),
//! which name the client checked (the XMPP stream's `to=`, else SNI, else the
//! server address), what was negotiated.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::replay::TlsConnection;
use crate::core::observation::{
    CapturePosition, Endpoint, Failure, Observation, Origin, ReferenceIdentity, Service,
    SourceKind, Step,
};
use crate::core::tls::iana::{Alert, CipherSuite, ProtocolVersion, Side, alert_description_name};
use crate::core::xmpp::{ClientEvent, ServerEvent, scan_client, scan_server};

/// The service a handshake carries: the user's map for its port first, then
/// what the connection itself shows (an XMPP stream header before TLS, an
/// HTTP CONNECT, the client's ALPN offer), then the port ([`Service::for_port`]).
pub fn service_of(c: &TlsConnection, map: &HashMap<u16, Service>) -> Service {
    let port = c.server.port();
    map.get(&port)
        .copied()
        .or_else(|| protocol_service(c))
        .unwrap_or_else(|| Service::for_port(port))
}

/// The service the connection itself shows, if it shows one: an XMPP stream
/// header before TLS, an HTTP CONNECT, or the client's ALPN offer.
pub fn protocol_service(c: &TlsConnection) -> Option<Service> {
    // scan_client decides by `xmpp::opens_xmpp_stream`, as intercept does.
    if matches!(
        scan_client(&c.client_prefix),
        Ok(Some((ClientEvent::StreamOpen { .. }, _)))
    ) {
        return Some(Service::Xmpp);
    }
    if c.client_prefix.starts_with(b"CONNECT ") {
        return Some(Service::Http);
    }
    let alpn = c
        .client_hello
        .as_ref()
        .map(|h| h.alpn.as_slice())
        .unwrap_or(&[]);
    if alpn
        .iter()
        .any(|p| p == "xmpp-client" || p == "xmpp-server")
    {
        return Some(Service::Xmpp);
    }
    if alpn.iter().any(|p| p == "h2" || p.starts_with("http/")) {
        return Some(Service::Http);
    }
    None
}

/// True when the server's leaf was issued by edgetap's diagnostic CA: the
/// client leg of intercept mode, where the chain is edgetap's forgery (the
/// server's own chain is on the upstream leg).
pub fn forged_by_edgetap(c: &TlsConnection) -> bool {
    let Some(leaf) = c.certificates.as_ref().and_then(|m| m.certs.first()) else {
        return false;
    };
    // The CA's name is in the leaf's bytes (as its issuer) or the leaf is not
    // edgetap's: most leaves are told apart without decoding them. The
    // searcher is built once: building it cost more than most searches.
    static CA_NAME: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| {
            memchr::memmem::Finder::new(crate::core::x509::trust::DIAGNOSTIC_CA_CN.as_bytes())
        });
    if CA_NAME.find(leaf).is_none() {
        return false;
    }
    x509_parser::parse_x509_certificate(leaf).is_ok_and(|(_, cert)| {
        cert.issuer()
            .iter_common_name()
            .any(|cn| cn.as_str() == Ok(crate::core::x509::trust::DIAGNOSTIC_CA_CN))
    })
}

/// The observation for one captured handshake.
pub fn observation(c: &TlsConnection, file: &str, services: &HashMap<u16, Service>) -> Observation {
    let at = OffsetDateTime::from_unix_timestamp_nanos((c.time * 1e9) as i128).ok();
    let origin = Origin {
        kind: SourceKind::Replay,
        at,
        locator: format!(
            "{file} frame {} (stream {}, {} -> {})",
            c.frame, c.stream, c.client, c.server
        ),
    };
    let mut obs = handshake_observation(c, services, origin);
    if let Some(resumed) = &obs.tls.resumed {
        obs.origin.locator += &format!("; {resumed}");
    }
    obs.capture = Some(CapturePosition {
        file: file.to_owned(),
        frame: c.frame,
        stream: c.stream,
        client: c.client.to_string(),
        server: c.server.to_string(),
    });
    obs
}

/// The client sent bytes, none of them a TLS ClientHello, and the server
/// showed no handshake of its own: a client speaking another protocol to
/// this port (plain HTTP to a TLS port), not a failure of the server. An
/// XMPP stream waiting for STARTTLS is not this.
fn no_client_hello(c: &TlsConnection) -> bool {
    c.client_hello.is_none()
        && c.server_hello.is_none()
        && c.certificates.is_none()
        && !c.client_prefix.is_empty()
        && protocol_service(c).is_none()
}

/// What the client sent instead of a ClientHello, how the server answered,
/// and what to check.
fn client_spoke_first(c: &TlsConnection, fatal: Option<&(bool, u8, u8)>) -> String {
    let first = &c.client_prefix[..c.client_prefix.len().min(24)];
    let text = first
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    let shown = if text {
        let quoted: String = first
            .iter()
            .map(|b| {
                if b.is_ascii_graphic() || *b == b' ' {
                    char::from(*b)
                } else {
                    '.'
                }
            })
            .collect();
        format!("{quoted:?}")
    } else {
        let hex: Vec<String> = first.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{}, not text", hex.join(" "))
    };
    let answer = match fatal {
        Some((true, _, desc)) => format!(
            "; the server answered with a fatal {} alert",
            alert_description_name(*desc)
        ),
        _ => String::new(),
    };
    format!(
        "the client sent no TLS ClientHello (its first bytes: {shown}){answer}; check that the client speaks TLS to this port (https://, not http://)"
    )
}

/// What one watched handshake shows, whoever watched it (a capture or the
/// proxy's passthrough watch); `origin` says who, when and where.
pub fn handshake_observation(
    c: &TlsConnection,
    services: &HashMap<u16, Service>,
    origin: Origin,
) -> Observation {
    let xmpp_to = match scan_client(&c.client_prefix) {
        Ok(Some((ClientEvent::StreamOpen { to }, _))) => to,
        _ => None,
    };
    let service = service_of(c, services);
    let sni = c.client_hello.as_ref().and_then(|ch| ch.sni.clone());
    let name = match service {
        Service::Xmpp => xmpp_to.clone().or_else(|| sni.clone()),
        _ => sni.clone(),
    };
    let reference = match &name {
        Some(n) => ReferenceIdentity::parse(n),
        None => ReferenceIdentity::Ip(c.server.ip()),
    };
    let mut obs = Observation::new(
        service,
        reference,
        c.certificates
            .as_ref()
            .map(|m| m.certs.clone())
            .unwrap_or_default(),
        origin,
    );
    obs.endpoint = Endpoint {
        host: name,
        ip: Some(c.server.ip()),
        port: Some(c.server.port()),
    };
    obs.tls.sni = sni;
    if service == Service::Xmpp
        && let Ok(Some((ServerEvent::Features(starttls), _))) = scan_server(&c.server_prefix)
    {
        obs.xmpp = Some(starttls);
    }
    if let Some(ch) = &c.client_hello {
        obs.tls.alpn = ch.alpn.clone();
    }
    let tls13 = c
        .server_hello
        .is_some_and(|sh| ProtocolVersion::Code(sh.version).is_tls13());
    if let Some(sh) = &c.server_hello {
        obs.tls.version = Some(ProtocolVersion::Code(sh.version));
        obs.tls.cipher = Some(CipherSuite(sh.cipher));
    }
    obs.tls.alerts = c
        .alerts
        .iter()
        .map(|(from_server, level, desc)| Alert {
            from: if *from_server {
                Side::Server
            } else {
                Side::Client
            },
            level: *level,
            description: *desc,
        })
        .collect();
    obs.tls.chain_hidden = tls13 && c.certificates.is_none() && c.resumed.is_none();
    obs.tls.resumed = c.resumed.map(|r| r.describe());
    obs.tls.decryption = c.decryption.as_ref().map(|d| d.note.clone());
    let fatal = c.alerts.iter().find(|(_, level, _)| *level == 2);
    obs.tls.failure = match (fatal, &c.server_hello, &c.certificates) {
        _ if no_client_hello(c) => Some(Failure::new(
            Step::ClientHello,
            Some(Side::Client),
            client_spoke_first(c, fatal),
        )),
        (Some((from_server, _, desc)), _, _) => {
            let side = if *from_server {
                Side::Server
            } else {
                Side::Client
            };
            Some(Failure::new(
                Step::TlsHandshake,
                Some(side),
                format!(
                    "the {} sent a fatal {} alert",
                    side.as_str(),
                    alert_description_name(*desc)
                ),
            ))
        }
        (None, None, None) => Some(Failure::new(
            Step::Capture,
            None,
            if c.damage.is_empty() {
                "no ServerHello in the capture: the server never answered, or its side was not captured"
                    .to_owned()
            } else {
                format!("the handshake could not be read: {}", c.damage.join("; "))
            },
        )),
        _ => None,
    };
    if let Some(cm) = &c.certificates
        && let Some(problem) = &cm.problem
    {
        obs.tls.failure.get_or_insert_with(|| {
            Failure::new(
                Step::TlsHandshake,
                Some(Side::Server),
                format!("malformed Certificate message: {problem}"),
            )
        });
    }
    obs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tls::ClientHello;

    fn connection(port: u16, client_prefix: &[u8], alpn: &[&str]) -> TlsConnection {
        TlsConnection {
            stream: 0,
            client: "192.0.2.7:40000".parse().unwrap(),
            server: std::net::SocketAddr::from(([192, 0, 2, 1], port)),
            frame: 1,
            time: 0.0,
            client_hello: Some(ClientHello {
                sni: Some("cup.example.com".into()),
                alpn: alpn.iter().map(|p| (*p).to_owned()).collect(),
                ..ClientHello::default()
            }),
            server_hello: None,
            certificates: None,
            client_certificate: false,
            alerts: Vec::new(),
            client_prefix: client_prefix.to_vec(),
            server_prefix: Vec::new(),
            damage: Vec::new(),
            decryption: None,
            server_flight: Vec::new(),
            client_flight: Vec::new(),
            resumed: None,
            ticket: None,
        }
    }

    /// Plain HTTP sent to a TLS port: the client never sent a ClientHello
    /// and the server answered with a fatal alert. The client's doing, said
    /// so; no server failure (the engine judges it unknown, not fail).
    #[test]
    fn a_client_that_sent_no_client_hello_is_not_a_server_failure() {
        let none = HashMap::new();
        let mut http = connection(8443, b"GET / HTTP/1.1\r\nHost: expe\r\n\r\n", &[]);
        http.client_hello = None;
        http.alerts = vec![(true, 2, 50)];
        let failure = observation(&http, "c.pcap", &none).tls.failure.unwrap();
        assert_eq!(failure.step, Step::ClientHello);
        assert_eq!(failure.by, Some(Side::Client));
        assert!(
            failure.reason.starts_with("the client sent no TLS ClientHello (its first bytes: \"GET / HTTP/1.1..Host: ex\"); the server answered with a fatal decode_error alert"),
            "{}",
            failure.reason
        );
        // An XMPP client waiting for STARTTLS, and a handshake whose client
        // side was not captured, are not this.
        let mut xmpp = connection(
            5222,
            crate::core::xmpp::client_stream_open("example.com").as_bytes(),
            &[],
        );
        xmpp.client_hello = None;
        let obs = observation(&xmpp, "c.pcap", &none);
        assert_ne!(obs.tls.failure.map(|f| f.step), Some(Step::ClientHello));
        let mut unseen = connection(8443, b"", &[]);
        unseen.client_hello = None;
        unseen.alerts = vec![(true, 2, 50)];
        let obs = observation(&unseen, "c.pcap", &none);
        assert_eq!(obs.tls.failure.map(|f| f.by), Some(Some(Side::Server)));
    }

    #[test]
    fn the_protocol_decides_the_service_before_the_port() {
        let xmpp = format!(
            "{}{}",
            crate::core::xmpp::client_stream_open("example.com"),
            crate::core::xmpp::STARTTLS
        );
        let none = HashMap::new();
        // XMPP STARTTLS on a port nobody maps: XMPP, judged for the stream's domain.
        let obs = observation(&connection(15222, xmpp.as_bytes(), &[]), "c.pcap", &none);
        assert_eq!(obs.service, Service::Xmpp);
        assert_eq!(obs.reference_identity.to_string(), "example.com");
        // --service-map still wins.
        let map: HashMap<u16, Service> = [(15222, Service::Http)].into_iter().collect();
        let obs = observation(&connection(15222, xmpp.as_bytes(), &[]), "c.pcap", &map);
        assert_eq!(obs.service, Service::Http);
        // ALPN hints, then the port.
        let alpn =
            |p: &[&str], port| observation(&connection(port, b"", p), "c.pcap", &none).service;
        assert_eq!(alpn(&["xmpp-client"], 443), Service::Xmpp);
        assert_eq!(alpn(&["h2", "http/1.1"], 5223), Service::Http);
        assert_eq!(alpn(&[], 5061), Service::Sip);
        assert_eq!(alpn(&[], 15222), Service::Http);
        // An HTTP CONNECT before TLS.
        let connect = observation(
            &connection(5222, b"CONNECT cup.example.com:443 HTTP/1.1\r\n\r\n", &[]),
            "c.pcap",
            &none,
        );
        assert_eq!(connect.service, Service::Http);
    }
}
