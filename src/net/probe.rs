//! Probing one endpoint: connect, STARTTLS for XMPP, TLS handshake with a
//! recording verifier, and an [`Observation`] of what was presented, whatever
//! happened. Every step has its own timeout, so a dead or hostile server costs
//! at most the sum of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::tls::{
    RecordingVerifier, handshake_failure, is_old_protocol, note_negotiated,
    observing_client_config, provider,
};
use super::xmpp::{StartTls, starttls};
use crate::core::export::FlowLog;
use crate::core::observation::{
    Endpoint, Observation, Origin, ReferenceIdentity, Service, SourceKind, SrvContext, XmppStartTls,
};
use crate::core::observation::{Failure, Step};
use crate::core::tls::iana::Side;
use crate::net::recording::{KeyLogLines, Recording};

/// Per-step time limits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Each XMPP read before TLS.
    pub starttls: Duration,
    /// The whole TLS handshake.
    pub handshake: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            starttls: Duration::from_secs(5),
            handshake: Duration::from_secs(10),
        }
    }
}

/// One endpoint to probe, as a client would reach it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host name the client uses (SNI and the http/sip reference identity).
    pub host: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// The host's other addresses (same port), tried in order when `addr`
    /// refuses or does not answer, as a client does (RFC 8305 order).
    pub alternates: Vec<SocketAddr>,
    /// What runs over TLS.
    pub service: Service,
    /// XMPP domain (xmpp: the stream `to=` and the reference identity).
    pub xmpp_domain: Option<String>,
    /// The `_collab-edge` domain when this is an MRA edge.
    pub edge_domain: Option<String>,
    /// The SRV set it came from.
    pub srv: Option<SrvContext>,
}

impl Target {
    /// "host:port (addr)" for messages.
    pub fn label(&self) -> String {
        format!("{}:{} ({})", self.host, self.addr.port(), self.addr.ip())
    }
}

/// Probe `target`; never fails: what went wrong is in `tls.failure`.
pub async fn probe(target: &Target, timeouts: Timeouts, now: OffsetDateTime) -> Observation {
    probe_recorded(target, timeouts, now, false).await.0
}

/// As [`probe`], also returning the connection's bytes and keys when `record`.
pub async fn probe_recorded(
    target: &Target,
    timeouts: Timeouts,
    now: OffsetDateTime,
    record: bool,
) -> (Observation, Option<FlowLog>) {
    let reference = match (&target.service, &target.xmpp_domain) {
        (Service::Xmpp, Some(domain)) => ReferenceIdentity::parse(domain),
        _ => ReferenceIdentity::parse(&target.host),
    };
    let mut obs = Observation::new(
        target.service,
        reference,
        Vec::new(),
        Origin {
            kind: SourceKind::Probe,
            at: Some(now),
            locator: target.label(),
        },
    );
    obs.endpoint = Endpoint {
        host: Some(target.host.clone()),
        ip: Some(target.addr.ip()),
        port: Some(target.addr.port()),
    };
    obs.edge_domain = target.edge_domain.clone();
    obs.srv = target.srv.clone();
    let log = std::sync::Arc::new(std::sync::Mutex::new(FlowLog::default()));
    if let Err(reason) = handshake(target, timeouts, &mut obs, &log).await {
        obs.tls.failure = Some(reason);
    }
    let flow = if record {
        std::sync::Arc::try_unwrap(log)
            .ok()
            .and_then(|m| m.into_inner().ok())
    } else {
        None
    };
    (obs, flow)
}

/// Why no address answered: one address as before, several each with its fault.
fn connect_failure(tried: &[(SocketAddr, Option<std::io::Error>)], limit: Duration) -> Failure {
    let refused = |e: &Option<std::io::Error>| {
        e.as_ref()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    };
    let by = tried
        .iter()
        .all(|(_, e)| refused(e))
        .then_some(Side::Server);
    let each: Vec<String> = tried
        .iter()
        .map(|(addr, e)| match e {
            None => format!(
                "no answer from {addr} within {}s (filtered or down)",
                limit.as_secs_f32()
            ),
            Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                format!("connection refused by {addr}")
            }
            Some(e) => format!("cannot connect to {addr}: {e}"),
        })
        .collect();
    let reason = match each.as_slice() {
        [one] => one.clone(),
        many => format!("every address failed: {}", many.join("; ")),
    };
    Failure::new(Step::Connect, by, reason)
}

async fn handshake(
    target: &Target,
    t: Timeouts,
    obs: &mut Observation,
    log: &std::sync::Arc<std::sync::Mutex<FlowLog>>,
) -> Result<(), Failure> {
    let result = handshake_inner(target, t, obs, log).await;
    if let Ok(mut l) = log.lock()
        && l.opened.is_some()
    {
        l.closed = Some(crate::clock::wall());
    }
    result
}

async fn handshake_inner(
    target: &Target,
    t: Timeouts,
    obs: &mut Observation,
    log: &std::sync::Arc<std::sync::Mutex<FlowLog>>,
) -> Result<(), Failure> {
    let mut tried = Vec::new();
    let mut tcp = None;
    for addr in std::iter::once(target.addr).chain(target.alternates.iter().copied()) {
        match tokio::time::timeout(t.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Err(_) => tried.push((addr, None)),
            Ok(Err(e)) => tried.push((addr, Some(e))),
        }
    }
    let Some(tcp) = tcp else {
        return Err(connect_failure(&tried, t.connect));
    };
    if let Ok(peer) = tcp.peer_addr()
        && peer != target.addr
    {
        // An alternate answered: say which address the handshake is from.
        obs.endpoint.ip = Some(peer.ip());
        obs.origin.locator = format!("{}:{} ({})", target.host, peer.port(), peer.ip());
    }
    let _ = tcp.set_nodelay(true);
    if let Ok(mut l) = log.lock() {
        l.client = tcp.local_addr().ok();
        l.server = tcp.peer_addr().ok();
        l.opened = Some(crate::clock::wall());
    }
    let mut tcp = Recording::all(tcp, log.clone(), true);

    if target.service == Service::Xmpp && Service::xmpp_starttls_on(target.addr.port()) {
        let domain = target
            .xmpp_domain
            .clone()
            .unwrap_or_else(|| target.host.clone());
        let negotiated = starttls(&mut tcp, &domain, t.starttls)
            .await
            .map_err(|reason| Failure::new(Step::Starttls, None, reason))?;
        match negotiated {
            StartTls::NotOffered => {
                obs.xmpp = Some(XmppStartTls {
                    offered: false,
                    required: false,
                });
                let _ = tcp.shutdown().await;
                return Ok(());
            }
            StartTls::Proceed(features) => obs.xmpp = Some(features),
        }
    }

    let recorder = RecordingVerifier::new(provider());
    let alpn: &[&str] = match target.service {
        Service::Http => &["http/1.1"],
        _ => &[],
    };
    let setup = |reason: String| Failure::new(Step::TlsHandshake, None, reason);
    let mut config = observing_client_config(recorder.clone(), alpn)
        .map_err(|e| setup(format!("TLS setup: {e}")))?;
    config.key_log = std::sync::Arc::new(KeyLogLines(log.clone()));
    // XMPP clients name the XMPP domain (RFC 6120 13.7.2.1); others the host they dialled.
    let sni_host = match (&target.service, &target.xmpp_domain) {
        (Service::Xmpp, Some(domain)) => domain.clone(),
        _ => target.host.clone(),
    };
    let name = match sni_host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(sni_host.clone())
            .map_err(|_| setup(format!("{sni_host:?} is not a valid server name")))?,
    };
    obs.tls.sni = match &name {
        ServerName::DnsName(d) => Some(d.as_ref().to_owned()),
        _ => None,
    };
    obs.tls.alpn = alpn.iter().map(|s| (*s).to_owned()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let result = tokio::time::timeout(t.handshake, connector.connect(name, tcp)).await;
    if let Some(chain) = recorder.take() {
        obs.presented = chain;
    }
    match result {
        Err(_) => Err(setup(format!(
            "the TLS handshake did not finish within {}s",
            t.handshake.as_secs_f32()
        ))),
        Ok(Err(e)) => {
            if is_old_protocol(&e) {
                obs.tls.version = Some(crate::core::tls::iana::ProtocolVersion::BelowTls12);
            }
            Err(handshake_failure(&e))
        }
        Ok(Ok(mut tls)) => {
            note_negotiated(&mut obs.tls, tls.get_ref().1);
            if let (Service::Xmpp, Some(domain)) = (target.service, &target.xmpp_domain) {
                // Re-open the stream over TLS as a client does, and read the
                // server's answer: harmless, and it shows in decrypted captures.
                use tokio::io::AsyncReadExt;
                let _ = tls
                    .write_all(crate::core::xmpp::client_stream_open(domain).as_bytes())
                    .await;
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(500), tls.read(&mut buf)).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
            Ok(())
        }
    }
}
