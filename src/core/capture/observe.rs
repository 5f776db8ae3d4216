//! Turning a [`TlsConnection`] found in a capture into an [`Observation`]: which
//! service (by server port, overridable), which name the client checked (the
//! XMPP stream's `to=`, else SNI, else the server address), what was negotiated.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::replay::TlsConnection;
use crate::core::observation::{
    CapturePosition, Endpoint, Failure, Observation, Origin, ReferenceIdentity, Service,
    SourceKind, Step,
};
use crate::core::tls::iana::{Alert, CipherSuite, ProtocolVersion, Side, alert_description_name};
use crate::core::xmpp::{ClientEvent, ServerEvent, scan_client, scan_server};

/// Service for a server port: the user's map first, then the usual ports.
pub fn service_for(port: u16, map: &HashMap<u16, Service>) -> Service {
    map.get(&port)
        .copied()
        .unwrap_or_else(|| Service::for_port(port))
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
    obs.capture = Some(CapturePosition {
        file: file.to_owned(),
        frame: c.frame,
        stream: c.stream,
        client: c.client.to_string(),
        server: c.server.to_string(),
    });
    obs
}

/// What one watched handshake shows, whoever watched it (a capture or the
/// proxy's passthrough watch); `origin` says who, when and where.
pub fn handshake_observation(
    c: &TlsConnection,
    services: &HashMap<u16, Service>,
    origin: Origin,
) -> Observation {
    let service = service_for(c.server.port(), services);
    let xmpp_to = match scan_client(&c.client_prefix) {
        Ok(Some((ClientEvent::StreamOpen { to }, _))) => to,
        _ => None,
    };
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
    obs.tls.chain_hidden = tls13 && c.certificates.is_none();
    let fatal = c.alerts.iter().find(|(_, level, _)| *level == 2);
    obs.tls.failure = match (fatal, &c.server_hello, &c.certificates) {
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
