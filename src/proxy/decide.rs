//! The proxy's decisions, without sockets, tasks or the clock (mitmproxy's
//! layers, rustls' sans-IO style): facts in, a decision out. The tokio shells
//! (`listen.rs`, `connection.rs`, `passthrough.rs`, `intercept.rs`) gather the
//! facts, ask here, and carry the answer out:
//! - [`route`]: which service a connection carries and which upstreams to try;
//! - [`relayed_observation`]: what a watched handshake is, as an `Observation`;
//! - [`side_probe_for`]: whether a TLS 1.3 chain must be fetched on the side;
//! - [`upstream_name`], [`intercepted_observation`]: intercept mode's name
//!   upstream and what its handshake is;
//! - [`capture_comment`] and [`ending`]: what the capture and
//!   the person watching are told when a connection ends;
//! - [`splice_after_read`], [`after_splice`], [`keep_for_capture`]: how a
//!   passthrough direction carries its next bytes (when a direction is done
//!   being watched is the watch's own answer, `Watch::side_done`).

use std::collections::HashMap;
use std::net::SocketAddr;

use time::OffsetDateTime;

use super::{ConnectionEvent, Upstream};
use crate::core::analysis::HandshakeReport;
use crate::core::capture::observe::{handshake_observation, protocol_service};
use crate::core::capture::replay::TlsConnection;
use crate::core::observation::{
    Endpoint, Failure, Observation, Origin, ReferenceIdentity, Service, SourceKind, Step,
    XmppStartTls,
};
use crate::core::tls::iana::Side;
use crate::net::probe::Target;

/// How a listener places its connections.
#[derive(Debug, Clone, Copy)]
pub enum Placement<'a> {
    /// To these upstreams, in order (static, or SRV-derived).
    Upstreams(&'a [Upstream]),
    /// To each connection's original destination (iptables REDIRECT).
    Transparent {
        /// The original destination, or why there is none.
        original: &'a Result<SocketAddr, String>,
        /// The listener's service was configured, not taken from the port.
        service_fixed: bool,
    },
}

/// Where one connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The service it carries (it decides the name a client checks).
    pub service: Service,
    /// The upstreams to try, in order.
    pub upstreams: Vec<Upstream>,
}

/// Decide a connection's route on a listener carrying `service`; an error is
/// the close reason of a connection that cannot go anywhere.
pub fn route(service: Service, placement: Placement<'_>) -> Result<Route, String> {
    match placement {
        Placement::Upstreams(list) => Ok(Route {
            service,
            upstreams: list.to_vec(),
        }),
        Placement::Transparent {
            original,
            service_fixed,
        } => {
            let dst = original.as_ref().map_err(Clone::clone)?;
            Ok(Route {
                service: if service_fixed {
                    service
                } else {
                    Service::for_port(dst.port())
                },
                upstreams: vec![Upstream {
                    host: dst.ip().to_string(),
                    port: dst.port(),
                }],
            })
        }
    }
}

/// One relayed connection, as every step of it sees it (the proxy's
/// per-connection context): made once it has an upstream.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The connection id, from 1.
    pub id: usize,
    /// The client's address.
    pub client: SocketAddr,
    /// The upstream's address.
    pub upstream: SocketAddr,
    /// The upstream's host name (as configured or from SRV).
    pub host: String,
    /// The connection's service (from the listener or its original port).
    pub service: Service,
    /// The service was configured: it wins over what the connection shows.
    pub service_fixed: bool,
}

impl Conn {
    /// What the proxy adds to a handshake of this connection, seen `at`.
    pub fn relayed<'a>(
        &'a self,
        domain: Option<&'a str>,
        at: OffsetDateTime,
        ended: Option<&'a str>,
    ) -> Relayed<'a> {
        Relayed {
            id: self.id,
            client: self.client,
            upstream: self.upstream,
            host: &self.host,
            service: self.service,
            service_fixed: self.service_fixed,
            domain,
            at,
            ended,
        }
    }
}

/// Who relayed a handshake: the facts the proxy adds to what the watch saw.
#[derive(Debug, Clone, Copy)]
pub struct Relayed<'a> {
    /// The connection id.
    pub id: usize,
    /// The client's address.
    pub client: SocketAddr,
    /// The upstream's address.
    pub upstream: SocketAddr,
    /// The upstream's host name (as configured or from SRV).
    pub host: &'a str,
    /// The connection's service (from the listener or its original port).
    pub service: Service,
    /// The service was configured: it wins over what the connection shows.
    pub service_fixed: bool,
    /// The `_collab-edge` domain, if the proxy was given one.
    pub domain: Option<&'a str>,
    /// When it was seen (wall clock).
    pub at: OffsetDateTime,
    /// How the connection ended, when it already has (the relay's close reason).
    pub ended: Option<&'a str>,
}

/// The observation of a relayed handshake: what the watch saw, judged with the
/// connection's service, named after the connection, with the edge domain for
/// HTTPS and SIP (an XMPP client checks the XMPP domain instead).
pub fn relayed_observation(conn: &TlsConnection, r: &Relayed<'_>) -> Observation {
    // A configured service wins; otherwise what the connection shows (an XMPP
    // stream on any port), then the listener's service from its port.
    let service = if r.service_fixed {
        r.service
    } else {
        protocol_service(conn).unwrap_or(r.service)
    };
    let services: HashMap<u16, Service> = [(r.upstream.port(), service)].into_iter().collect();
    let origin = Origin {
        kind: SourceKind::Proxy,
        at: Some(r.at),
        locator: format!(
            "connection {}: {} -> {} ({})",
            r.id, r.client, r.upstream, r.host
        ),
    };
    let mut obs = handshake_observation(conn, &services, origin);
    // The watch saw every byte, so a handshake it could not follow is a fact
    // of the wire, not a gap in a capture: say how the connection went.
    if obs
        .tls
        .failure
        .as_ref()
        .is_some_and(|f| f.step == Step::Capture)
    {
        let ended = r.ended.unwrap_or("still open");
        let reason = if conn.damage.is_empty() {
            format!("the connection ended before the server's hello ({ended})")
        } else {
            format!(
                "the bytes are not a TLS handshake ({}); the connection ended ({ended})",
                conn.damage.join("; ")
            )
        };
        obs.tls.failure = Some(Failure::new(
            Step::TlsHandshake,
            r.ended.and_then(ended_by),
            reason,
        ));
    }
    obs.endpoint.host = obs
        .endpoint
        .host
        .clone()
        .or_else(|| Some(r.host.to_owned()));
    obs.edge_domain = match obs.service {
        Service::Xmpp => None,
        _ => r.domain.map(str::to_owned),
    };
    obs
}

/// The name intercept mode uses upstream: the client's SNI, else the XMPP
/// domain of its stream, else the configured host.
pub fn upstream_name(sni: Option<&str>, xmpp_domain: Option<&str>, host: &str) -> String {
    sni.or(xmpp_domain).unwrap_or(host).to_owned()
}

/// What intercept mode learned of a connection before judging it.
#[derive(Debug, Clone)]
pub struct Intercepted<'a> {
    /// The connection, as for passthrough.
    pub relayed: Relayed<'a>,
    /// The name used upstream ([`upstream_name`]).
    pub name: &'a str,
    /// The XMPP domain of the client's stream, after STARTTLS.
    pub xmpp_domain: Option<&'a str>,
    /// The client's SNI.
    pub sni: Option<String>,
    /// The ALPN protocols the client offered (and edgetap offered upstream).
    pub alpn: &'a [Vec<u8>],
    /// What the server's STARTTLS features said.
    pub xmpp: Option<XmppStartTls>,
    /// The chain upstream presented to edgetap.
    pub chain: Vec<Vec<u8>>,
}

/// The observation of an intercepted handshake: the real upstream chain, judged
/// for the XMPP domain (XMPP) or the name used upstream, with the edge domain
/// for HTTPS and SIP.
pub fn intercepted_observation(i: Intercepted<'_>) -> Observation {
    let r = i.relayed;
    let reference = ReferenceIdentity::parse(i.xmpp_domain.unwrap_or(i.name));
    let mut obs = Observation::new(
        r.service,
        reference,
        i.chain,
        Origin {
            kind: SourceKind::Proxy,
            at: Some(r.at),
            locator: format!(
                "connection {}: {} -> {} ({}, intercept)",
                r.id, r.client, r.upstream, r.host
            ),
        },
    );
    obs.endpoint = Endpoint {
        host: Some(i.name.to_owned()),
        ip: Some(r.upstream.ip()),
        port: Some(r.upstream.port()),
    };
    obs.tls.sni = i.sni;
    obs.tls.alpn = i
        .alpn
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    obs.xmpp = i.xmpp;
    if r.service != Service::Xmpp {
        obs.edge_domain = r.domain.map(str::to_owned);
    }
    obs
}

/// Which side ended a relayed connection, from the relay's close reason
/// (`pump.rs` words them "server error: …", "client went away: …").
pub fn ended_by(reason: &str) -> Option<Side> {
    if reason.starts_with("server ") {
        Some(Side::Server)
    } else if reason.starts_with("client ") {
        Some(Side::Client)
    } else {
        None
    }
}

/// The side connection that fetches the chain a TLS 1.3 handshake encrypted:
/// same upstream, same name (the SNI, else the host), same service. `None`
/// when the chain was seen.
pub fn side_probe_for(obs: &Observation, host: &str, upstream: SocketAddr) -> Option<Target> {
    if !obs.tls.chain_hidden {
        return None;
    }
    Some(Target {
        host: obs.tls.sni.clone().unwrap_or_else(|| host.to_owned()),
        addr: upstream,
        alternates: Vec::new(),
        service: obs.service,
        xmpp_domain: (obs.service == Service::Xmpp).then(|| obs.reference_identity.to_string()),
        edge_domain: None,
        srv: None,
    })
}

/// The comment a connection's frames carry in the capture: the verdict, or
/// that no handshake was seen.
pub fn capture_comment(id: usize, handshake: Option<&HandshakeReport>) -> String {
    handshake
        .map(crate::core::export::comment::verdict_comment)
        .unwrap_or_else(|| format!("edgetap: connection {id}: no TLS handshake seen"))
}

/// What the person watching is told when a connection ends without a judged
/// handshake (a judged one has had its own line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Nothing to say: a handshake was judged, or nothing passed either way
    /// (a port check).
    Quiet,
    /// No upstream was reached (none resolved or answered, no original
    /// destination).
    NoUpstream,
    /// Bytes passed but no TLS handshake was seen (plain text on a TLS port).
    NoHandshake,
}

/// Decide [`Ending`] from a connection's event.
pub fn ending(event: &ConnectionEvent) -> Ending {
    if event.handshake.is_some() {
        Ending::Quiet
    } else if event.upstream.is_none() {
        Ending::NoUpstream
    } else if event.bytes_up > 0 || event.bytes_down > 0 {
        Ending::NoHandshake
    } else {
        Ending::Quiet
    }
}

/// A read at least this large means bulk transfer: move to splice.
pub const BULK: usize = 64 * 1024;
/// A splice smaller than this means the bulk is over: give the pipe back.
pub const TRICKLE: usize = 16 * 1024;
/// Bytes of one connection kept for the capture; past this, the capture notes it.
pub const CAPTURE_CAP: usize = 16 * 1024 * 1024;

/// Whether a passthrough direction moves to splice after relaying `n` bytes
/// through user space: only when the read was bulk and the handshake watch
/// and the capture are both done with this direction.
pub fn splice_after_read(n: usize, watching: bool, recording: bool) -> bool {
    n >= BULK && !recording && !watching
}

/// After splicing `n` bytes: keep the pipe while bulk data flows, give it
/// back once it trickles (an idle connection holds no pipe).
pub fn after_splice(n: usize) -> bool {
    n >= TRICKLE
}

/// Whether the next bytes still go to the capture: only while one is written
/// and the connection has not reached [`CAPTURE_CAP`].
pub fn keep_for_capture(capturing: bool, kept: usize) -> bool {
    capturing && kept < CAPTURE_CAP
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tls::{ClientHello, ServerHello};

    fn up(host: &str, port: u16) -> Upstream {
        Upstream {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn route_static_transparent_and_unredirected() {
        let list = [up("expe.example.com", 8443), up("expe2.example.com", 8443)];
        let r = route(Service::Http, Placement::Upstreams(&list)).unwrap();
        assert_eq!(r.upstreams, list, "static and SRV lists keep their order");

        let original: Result<SocketAddr, String> = Ok("10.77.2.2:5222".parse().unwrap());
        let from_port = route(
            Service::Http,
            Placement::Transparent {
                original: &original,
                service_fixed: false,
            },
        )
        .unwrap();
        assert_eq!(
            from_port.service,
            Service::Xmpp,
            "service from the original port"
        );
        assert_eq!(from_port.upstreams, [up("10.77.2.2", 5222)]);
        let fixed = route(
            Service::Http,
            Placement::Transparent {
                original: &original,
                service_fixed: true,
            },
        )
        .unwrap();
        assert_eq!(fixed.service, Service::Http, "a configured service wins");

        let none: Result<SocketAddr, String> = Err("no original destination".into());
        let why = route(
            Service::Http,
            Placement::Transparent {
                original: &none,
                service_fixed: false,
            },
        )
        .unwrap_err();
        assert_eq!(why, "no original destination");
    }

    fn tls13_without_chain(sni: Option<&str>) -> TlsConnection {
        TlsConnection {
            stream: 0,
            client: "192.0.2.7:40000".parse().unwrap(),
            server: "192.0.2.1:8443".parse().unwrap(),
            frame: 0,
            time: 0.0,
            client_hello: Some(ClientHello {
                sni: sni.map(str::to_owned),
                ..ClientHello::default()
            }),
            server_hello: Some(ServerHello {
                version: 0x0304,
                cipher: 0x1302,
                retry: false,
                ..ServerHello::default()
            }),
            certificates: None,
            client_certificate: false,
            alerts: Vec::new(),
            client_prefix: Vec::new(),
            server_prefix: Vec::new(),
            damage: Vec::new(),
            decryption: None,
            server_flight: Vec::new(),
            client_flight: Vec::new(),
            resumed: None,
            ticket: None,
        }
    }

    fn relayed(service: Service) -> Relayed<'static> {
        Relayed {
            id: 7,
            client: "192.0.2.7:40000".parse().unwrap(),
            upstream: "192.0.2.1:8443".parse().unwrap(),
            host: "expe.example.com",
            service,
            service_fixed: false,
            domain: Some("example.com"),
            at: time::macros::datetime!(2026-06-01 00:00 UTC),
            ended: None,
        }
    }

    #[test]
    fn a_relayed_tls13_handshake_is_named_and_asks_for_a_side_probe() {
        let conn = tls13_without_chain(Some("collab-edge.example.com"));
        let obs = relayed_observation(&conn, &relayed(Service::Http));
        assert_eq!(obs.origin.kind, SourceKind::Proxy);
        assert!(
            obs.origin
                .locator
                .starts_with("connection 7: 192.0.2.7:40000 -> 192.0.2.1:8443")
        );
        assert_eq!(obs.edge_domain.as_deref(), Some("example.com"));
        assert!(
            obs.capture.is_none(),
            "a relayed handshake has no capture position"
        );
        let side = side_probe_for(&obs, "expe.example.com", "192.0.2.1:8443".parse().unwrap())
            .expect("the chain was encrypted");
        assert_eq!(
            side.host, "collab-edge.example.com",
            "the name the client asked for"
        );

        // Without SNI the configured host is the name; XMPP has no edge domain.
        let obs = relayed_observation(&tls13_without_chain(None), &relayed(Service::Xmpp));
        assert_eq!(obs.edge_domain, None);
        let side =
            side_probe_for(&obs, "cup.example.com", "192.0.2.1:5222".parse().unwrap()).unwrap();
        assert_eq!(side.host, "cup.example.com");
    }

    #[test]
    fn a_seen_chain_needs_no_side_probe() {
        let mut conn = tls13_without_chain(Some("expe.example.com"));
        conn.server_hello = Some(ServerHello {
            version: 0x0303,
            cipher: 0xc030,
            retry: false,
            ..ServerHello::default()
        });
        let obs = relayed_observation(&conn, &relayed(Service::Http));
        assert!(side_probe_for(&obs, "expe.example.com", conn.server).is_none());
    }

    #[test]
    fn what_the_end_of_a_connection_says() {
        assert_eq!(
            capture_comment(3, None),
            "edgetap: connection 3: no TLS handshake seen"
        );
        let mut event = ConnectionEvent {
            connection: 1,
            client: "192.0.2.7:40000".into(),
            upstream: None,
            upstream_host: None,
            service: Service::Http,
            bytes_up: 0,
            bytes_down: 0,
            duration_ms: 0,
            close_reason: "upstream unreachable".into(),
            handshake: None,
        };
        assert_eq!(ending(&event), Ending::NoUpstream);
        event.upstream = Some("192.0.2.1:8443".into());
        assert_eq!(
            ending(&event),
            Ending::Quiet,
            "reached, nothing sent: a port check"
        );
        event.bytes_up = 17;
        assert_eq!(
            ending(&event),
            Ending::NoHandshake,
            "plain bytes on a TLS port"
        );
    }

    #[test]
    fn a_direction_splices_only_bulk_nobody_watches() {
        assert!(splice_after_read(BULK, false, false));
        assert!(
            !splice_after_read(BULK, true, false),
            "the handshake is still watched"
        );
        assert!(
            !splice_after_read(4 * BULK, false, true),
            "the capture keeps the bytes"
        );
        assert!(!splice_after_read(BULK - 1, false, false), "not bulk");
        assert!(after_splice(TRICKLE) && !after_splice(TRICKLE - 1));
        assert!(keep_for_capture(true, CAPTURE_CAP - 1));
        assert!(
            !keep_for_capture(true, CAPTURE_CAP),
            "capped per connection"
        );
        assert!(!keep_for_capture(false, 0), "no capture, nothing kept");
    }

    #[test]
    fn intercept_names_and_judges_the_upstream_chain() {
        assert_eq!(
            upstream_name(Some("expe.example.com"), Some("example.com"), "h"),
            "expe.example.com"
        );
        assert_eq!(
            upstream_name(None, Some("example.com"), "cup.example.com"),
            "example.com"
        );
        assert_eq!(
            upstream_name(None, None, "cup.example.com"),
            "cup.example.com"
        );
        let alpn = [b"h2".to_vec()];
        let obs = intercepted_observation(Intercepted {
            relayed: relayed(Service::Xmpp),
            name: "example.com",
            xmpp_domain: Some("example.com"),
            sni: None,
            alpn: &alpn,
            xmpp: Some(XmppStartTls {
                offered: true,
                required: true,
            }),
            chain: vec![vec![0x30]],
        });
        assert_eq!(
            obs.reference_identity.to_string(),
            "example.com",
            "XMPP: the domain"
        );
        assert_eq!(obs.edge_domain, None);
        assert_eq!(obs.tls.alpn, ["h2"]);
        assert!(obs.origin.locator.ends_with("intercept)"));
        let obs = intercepted_observation(Intercepted {
            relayed: relayed(Service::Http),
            name: "expe.example.com",
            xmpp_domain: None,
            sni: Some("expe.example.com".into()),
            alpn: &[],
            xmpp: None,
            chain: Vec::new(),
        });
        assert_eq!(obs.reference_identity.to_string(), "expe.example.com");
        assert_eq!(
            obs.edge_domain.as_deref(),
            Some("example.com"),
            "HTTPS: the edge domain"
        );
    }

    /// The watch saw every byte: a handshake cut short is a fact of the wire,
    /// with the side that ended it, never "not in the capture".
    #[test]
    fn a_relayed_handshake_cut_short_says_who_ended_it() {
        let mut conn = tls13_without_chain(Some("expe.example.com"));
        conn.server_hello = None;
        let mut r = relayed(Service::Http);
        r.ended = Some("server error: Connection reset by peer (os error 104)");
        let obs = relayed_observation(&conn, &r);
        let f = obs.tls.failure.expect("a failure");
        assert_eq!(f.step, Step::TlsHandshake);
        assert_eq!(f.by, Some(Side::Server));
        assert!(
            f.reason.contains("before the server's hello"),
            "{}",
            f.reason
        );
        assert_eq!(
            ended_by("client went away: broken pipe"),
            Some(Side::Client)
        );
        assert_eq!(ended_by("closed"), None);
    }

    /// XMPP STARTTLS relayed on a port the listener calls HTTP is judged as
    /// XMPP for the stream's domain, unless the service was configured.
    #[test]
    fn a_relayed_xmpp_stream_is_xmpp_on_any_port() {
        let mut conn = tls13_without_chain(Some("cup.example.com"));
        conn.client_prefix = format!(
            "{}{}",
            crate::core::xmpp::client_stream_open("example.com"),
            crate::core::xmpp::STARTTLS
        )
        .into_bytes();
        conn.server = "192.0.2.1:15222".parse().unwrap();
        let mut r = relayed(Service::Http);
        r.upstream = conn.server;
        let obs = relayed_observation(&conn, &r);
        assert_eq!(obs.service, Service::Xmpp);
        assert_eq!(obs.reference_identity.to_string(), "example.com");
        assert_eq!(obs.edge_domain, None, "XMPP checks the XMPP domain");
        r.service_fixed = true;
        assert_eq!(relayed_observation(&conn, &r).service, Service::Http);
    }
}
