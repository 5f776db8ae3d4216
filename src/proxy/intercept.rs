//! Intercept mode (`--intercept --ca DIR`, never the default): edgetap ends the
//! client's TLS with a leaf forged from the upstream leaf (subject and SANs,
//! signed by the local diagnostic CA) and opens its own TLS to the upstream,
//! recording the real chain. XMPP STARTTLS is followed on both legs. Keys of
//! both legs go to the capture's Decryption Secrets Block, so Wireshark shows
//! the decrypted XMPP and HTTP of both flows.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::FlowTap;
use super::decide::{self, CAPTURE_CAP};
use super::{Proxy, RelayOutcome};
use crate::core::analysis::HandshakeReport;
use crate::core::observation::{Failure, Observation, Service, Step, XmppStartTls};
use crate::core::xmpp::{self, ClientEvent};
use crate::net::recording::{Activity, KeyLogLines, Recording};
use crate::net::tls::{RecordingVerifier, note_negotiated, observing_client_config, provider};
use crate::net::xmpp::{StartTls, read_client_event, starttls};

#[derive(Debug)]
struct Forged(Arc<CertifiedKey>);

impl ResolvesServerCert for Forged {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Both legs of an intercepted connection, each recorded (bytes for the
/// capture, keys) with its tap, and when either last moved.
struct Legs {
    client: Recording<TcpStream>,
    server: Recording<TcpStream>,
    client_log: Arc<FlowTap>,
    server_log: Arc<FlowTap>,
    activity: Arc<Activity>,
}

/// An upstream handshake that did not finish: what to put on the observation
/// and the connection's close reason.
struct UpstreamFailed {
    failure: Failure,
    reason: String,
}

impl Proxy {
    /// Intercept one connection; returns the outcome and both legs' taps
    /// (client leg, upstream leg), to be closed with the connection.
    pub(super) async fn intercept(
        &self,
        conn: &decide::Conn,
        client: TcpStream,
        server: TcpStream,
    ) -> (RelayOutcome, [Arc<FlowTap>; 2]) {
        let mut legs = self.legs(conn, client, server);
        let outcome = match self.intercept_inner(conn, &mut legs).await {
            Ok(o) => o,
            Err(reason) => RelayOutcome {
                up: 0,
                down: 0,
                reason,
                report: None,
            },
        };
        (outcome, [legs.client_log, legs.server_log])
    }

    /// The two legs, recorded: both legs' bytes are kept for the capture (up
    /// to its per-connection cap), not at all without one; both note activity
    /// for the idle timeout.
    fn legs(&self, conn: &decide::Conn, client: TcpStream, server: TcpStream) -> Legs {
        let tap = |from: Option<SocketAddr>, to: SocketAddr| {
            Arc::new(match from {
                Some(from) => self.recorder.tap(from, to),
                None => FlowTap::none(),
            })
        };
        let client_log = match client.local_addr() {
            Ok(ours) => tap(Some(conn.client), super::listen::unmapped(ours)),
            Err(_) => Arc::new(FlowTap::none()),
        };
        let server_log = tap(
            server.local_addr().ok().map(super::listen::unmapped),
            conn.upstream,
        );
        let keep = if self.recorder.capturing() {
            CAPTURE_CAP
        } else {
            0
        };
        let activity = Arc::new(Activity::new());
        Legs {
            client: Recording {
                keep,
                activity: activity.clone(),
                ..Recording::all(client, client_log.clone(), false)
            },
            server: Recording {
                keep,
                activity: activity.clone(),
                ..Recording::all(server, server_log.clone(), true)
            },
            client_log,
            server_log,
            activity,
        }
    }

    /// STARTTLS when the service needs it, the client's hello, the upstream
    /// handshake (judged), the forged leaf to the client, then the relay.
    async fn intercept_inner(
        &self,
        conn: &decide::Conn,
        legs: &mut Legs,
    ) -> Result<RelayOutcome, String> {
        let Legs {
            client: c,
            server: s,
            client_log,
            server_log,
            activity,
        } = legs;
        // XMPP STARTTLS when the client opens an XML stream, on any port, as
        // passthrough decides (`xmpp::opens_xmpp_stream`); TLS at once else.
        let xmpp = if self.client_opens_xmpp(c).await? {
            Some(Box::pin(self.starttls_both_legs(conn, c, s)).await?)
        } else {
            None
        };
        // The service the client's bytes show wins over the listener's port,
        // and is fixed: STARTTLS was decided by it before any TLS byte.
        let conn = &decide::Conn {
            service: if xmpp.is_some() {
                Service::Xmpp
            } else {
                conn.service
            },
            service_fixed: true,
            ..conn.clone()
        };
        let xmpp_domain = xmpp.as_ref().map(|(d, _)| d.clone());

        // The client's hello first: its SNI is the name to use upstream.
        // The handshake steps are boxed, here and below: their futures are
        // freed once done, so an idle connection's task holds only the two
        // sessions and the relay.
        let start = Box::pin(tokio::time::timeout(
            self.timeouts.handshake,
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), &mut *c),
        ))
        .await
        .map_err(|_| "the client sent no TLS ClientHello in time".to_owned())?
        .map_err(|e| format!("the client's TLS hello is not readable: {e}"))?;
        let sni = start.client_hello().server_name().map(str::to_owned);
        // Offer upstream what the client offered; give the client what upstream chose.
        let client_alpn: Vec<Vec<u8>> = start
            .client_hello()
            .alpn()
            .map(|offers| offers.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        let name = decide::upstream_name(sni.as_deref(), xmpp_domain.as_deref(), &conn.host);
        let (up, chain) =
            Box::pin(self.upstream_handshake(s, server_log, &name, client_alpn.clone())).await?;
        // Wall-clock time: when the handshake was seen, and the forged leaf's
        // lifetime (the client checks it against its own clock, never `--at`).
        let now = crate::clock::now();
        let mut obs = decide::intercepted_observation(decide::Intercepted {
            relayed: conn.relayed(self.domain.as_deref(), now, None),
            name: &name,
            xmpp_domain: xmpp_domain.as_deref(),
            sni,
            alpn: &client_alpn,
            xmpp: xmpp.map(|(_, features)| features),
            chain: chain.clone(),
        });
        let mut upstream_tls = match up {
            Err(failed) => {
                obs.tls.failure = Some(failed.failure);
                let report = Box::pin(self.judge(conn.id, obs, [client_log, server_log])).await;
                return Ok(RelayOutcome {
                    up: 0,
                    down: 0,
                    reason: failed.reason,
                    report,
                });
            }
            Ok(tls) => tls,
        };
        let negotiated = upstream_tls.get_ref().1;
        note_negotiated(&mut obs.tls, negotiated);
        let chosen_alpn = negotiated.alpn_protocol().map(<[u8]>::to_vec);
        let report = Box::pin(self.judge(conn.id, obs, [client_log, server_log])).await;

        let mut client_tls =
            Box::pin(self.present_forged(start, &chain, &name, now, chosen_alpn, client_log))
                .await?;
        let (up, down, reason) = self
            .relay_decrypted(&mut client_tls, &mut upstream_tls, activity)
            .await;
        Ok(RelayOutcome {
            up,
            down,
            reason,
            report,
        })
    }

    /// edgetap's own handshake with the upstream as `name`, offering `alpn`:
    /// the session (or why it did not finish) and the chain presented.
    async fn upstream_handshake<'s>(
        &self,
        server: &'s mut Recording<TcpStream>,
        server_log: &Arc<FlowTap>,
        name: &str,
        alpn: Vec<Vec<u8>>,
    ) -> Result<
        (
            Result<tokio_rustls::client::TlsStream<&'s mut Recording<TcpStream>>, UpstreamFailed>,
            Vec<Vec<u8>>,
        ),
        String,
    > {
        let recorder = RecordingVerifier::new(provider());
        let mut config =
            observing_client_config(recorder.clone(), &[]).map_err(|e| e.to_string())?;
        config.key_log = Arc::new(KeyLogLines(server_log.clone()));
        config.alpn_protocols = alpn;
        let server_name = match name.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(name.to_owned())
                .map_err(|_| format!("{name:?} is not a server name"))?,
        };
        let limit = self.timeouts.handshake;
        let connected = tokio::time::timeout(
            limit,
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server_name, server),
        )
        .await;
        let chain = recorder.take().unwrap_or_default();
        let session = match connected {
            Err(_) => Err(UpstreamFailed {
                failure: Failure::new(
                    Step::TlsHandshake,
                    None,
                    format!(
                        "the upstream TLS handshake did not finish within {}s",
                        limit.as_secs_f32()
                    ),
                ),
                reason: "upstream handshake timed out".into(),
            }),
            Ok(Err(e)) => Err(UpstreamFailed {
                failure: crate::net::tls::handshake_failure(&e),
                reason: format!("upstream TLS failed: {e}"),
            }),
            Ok(Ok(tls)) => Ok(tls),
        };
        Ok((session, chain))
    }

    /// Whether the client opens with an XMPP stream header (STARTTLS to
    /// follow) rather than a TLS ClientHello: its first bytes, looked at
    /// without taking them.
    async fn client_opens_xmpp(&self, c: &Recording<TcpStream>) -> Result<bool, String> {
        let mut first = [0u8; 64];
        let wait = tokio::time::timeout(self.timeouts.handshake, async {
            loop {
                // What the socket holds, left for the handshake to read.
                let n = c.inner.peek(&mut first).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(None);
                }
                if let Some(xmpp) = crate::core::xmpp::opens_xmpp_stream(&first[..n]) {
                    return Ok(Some(xmpp));
                }
                // Only white space so far: wait for more.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
        match wait.await {
            Err(_) => Err("the client sent nothing in time".to_owned()),
            Ok(Err(e)) => Err(format!("reading the client: {e}")),
            Ok(Ok(None)) => Err("the client closed before sending anything".to_owned()),
            Ok(Ok(Some(xmpp))) => Ok(xmpp),
        }
    }

    /// XMPP STARTTLS on both legs: read the client's stream header, negotiate
    /// STARTTLS upstream for that domain, then offer and grant it to the
    /// client. Returns the domain and what the server offered.
    async fn starttls_both_legs(
        &self,
        conn: &decide::Conn,
        c: &mut Recording<TcpStream>,
        s: &mut Recording<TcpStream>,
    ) -> Result<(String, XmppStartTls), String> {
        let (id, upstream, host) = (conn.id, conn.upstream, conn.host.as_str());
        let t = self.timeouts;
        let domain = match read_client_event(c, t.starttls).await? {
            ClientEvent::StreamOpen { to: Some(to) } => to,
            ClientEvent::StreamOpen { to: None } => {
                self.domain.clone().unwrap_or_else(|| host.to_owned())
            }
            ClientEvent::StartTls => {
                return Err("the client sent <starttls/> before its stream header".into());
            }
        };
        let features = match starttls(s, &domain, t.starttls).await? {
            StartTls::Proceed(f) => f,
            StartTls::NotOffered => {
                return Err(format!(
                    "upstream {upstream} offers no STARTTLS for {domain}; nothing to intercept"
                ));
            }
        };
        c.write_all(xmpp::server_stream_open(&domain, &format!("edgetap-{id}")).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        c.write_all(xmpp::features(true, features.required).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        match read_client_event(c, t.starttls).await? {
            ClientEvent::StartTls => c
                .write_all(xmpp::PROCEED.as_bytes())
                .await
                .map_err(|e| e.to_string())?,
            other => return Err(format!("the client sent {other:?} instead of <starttls/>")),
        }
        Ok((domain, features))
    }

    /// Finish the client's handshake with a leaf forged from the upstream leaf
    /// (`name` when there is none), giving the client upstream's ALPN choice.
    async fn present_forged<'c>(
        &self,
        start: tokio_rustls::StartHandshake<&'c mut Recording<TcpStream>>,
        chain: &[Vec<u8>],
        name: &str,
        now: time::OffsetDateTime,
        chosen_alpn: Option<Vec<u8>>,
        client_log: &Arc<FlowTap>,
    ) -> Result<tokio_rustls::server::TlsStream<&'c mut Recording<TcpStream>>, String> {
        let forger = self.forger.as_ref().ok_or("intercept without a CA")?;
        let forged = forger
            .forge(chain.first().map(Vec::as_slice).unwrap_or(&[]), name, now)
            .map_err(|e| format!("forging the leaf: {e}"))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Forged(forged)));
        config.key_log = Arc::new(KeyLogLines(client_log.clone()));
        config.alpn_protocols = chosen_alpn.into_iter().collect();
        // No resumption: the config is this connection's alone, so a ticket
        // could never be used, and its session cache and the tickets it would
        // keep are memory held for as long as the connection stays open.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        tokio::time::timeout(self.timeouts.handshake, start.into_stream(Arc::new(config)))
            .await
            .map_err(|_| "the client's TLS handshake with edgetap timed out".to_owned())?
            .map_err(|e| format!("the client refused edgetap's certificate (is the diagnostic CA trusted on this test device?): {e}"))
    }

    /// Relay the two TLS sessions until both close, the connection is idle
    /// both ways for the idle timeout, or edgetap stops.
    async fn relay_decrypted(
        &self,
        client_tls: &mut tokio_rustls::server::TlsStream<&mut Recording<TcpStream>>,
        upstream_tls: &mut tokio_rustls::client::TlsStream<&mut Recording<TcpStream>>,
        activity: &Activity,
    ) -> (u64, u64, String) {
        let mut stop = self.stop.clone();
        let copy = crate::net::relay::copy_both_ways(client_tls, upstream_tls);
        tokio::pin!(copy);
        loop {
            tokio::select! {
                r = &mut copy => return match r {
                    Ok((a, b)) => (a, b, "closed".to_owned()),
                    Err(e) => (0, 0, format!("relay ended: {e}")),
                },
                _ = stop.changed() => return (0, 0, "closed by edgetap on shutdown".into()),
                _ = tokio::time::sleep(activity.quiet_left(self.idle)) => {
                    if activity.quiet_left(self.idle).is_zero() {
                        return (0, 0, format!("idle for {}s", self.idle.as_secs()));
                    }
                }
            }
        }
    }

    /// Judge the upstream's handshake (after the online checks, with `--online`:
    /// the first connection to a server waits for them, later ones hit the cache).
    async fn judge(
        &self,
        id: usize,
        mut obs: Observation,
        legs: [&FlowTap; 2],
    ) -> Option<HandshakeReport> {
        self.check_online(&mut obs).await;
        let h = self
            .engine
            .evaluate(&[obs], self.judge_time.now())
            .handshakes
            .into_iter()
            .next()?;
        self.handshakes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (self.notify)(super::Notice::Judged { id, report: &h });
        self.capture_verdict(&legs, id, Some(&h));
        Some(h)
    }
}
