//! One connection from accept to its event: route it (`decide::route`),
//! connect upstream failing over in order, relay it (passthrough or intercept),
//! then hand its capture and event to the recorder. The open-connection count
//! is a drop guard, so every way out gives it back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;
use tokio::net::TcpStream;

use super::FlowTap;
use super::Upstream;
use super::listen::{Listener, original_destination};
use super::{Notice, Proxy, RelayOutcome, decide};
use crate::core::analysis::HandshakeReport;
use crate::core::observation::Service;

/// One JSON line per connection.
#[derive(Debug, Serialize)]
pub struct ConnectionEvent {
    /// Connection id, from 1.
    pub connection: usize,
    /// Client ip:port.
    pub client: String,
    /// Upstream ip:port, when connected.
    pub upstream: Option<String>,
    /// Upstream host name.
    pub upstream_host: Option<String>,
    /// Service of the listener.
    pub service: Service,
    /// Bytes client to server.
    pub bytes_up: u64,
    /// Bytes server to client.
    pub bytes_down: u64,
    /// Milliseconds open.
    pub duration_ms: u64,
    /// Why it ended.
    pub close_reason: String,
    /// The handshake as inspect reports it, if there was one.
    pub handshake: Option<HandshakeReport>,
}

impl ConnectionEvent {
    /// The event of a connection just accepted from `client`.
    fn accepted(id: usize, client: SocketAddr, service: Service) -> ConnectionEvent {
        ConnectionEvent {
            connection: id,
            client: client.to_string(),
            upstream: None,
            upstream_host: None,
            service,
            bytes_up: 0,
            bytes_down: 0,
            duration_ms: 0,
            close_reason: String::new(),
            handshake: None,
        }
    }

    /// How the relay went: bytes, reason, handshake.
    fn relayed(&mut self, outcome: RelayOutcome) {
        self.bytes_up = outcome.up;
        self.bytes_down = outcome.down;
        self.close_reason = outcome.reason;
        self.handshake = outcome.report;
    }
}

impl Proxy {
    /// One accepted connection, from routing to its event.
    pub(super) async fn connection(
        self: Arc<Self>,
        client: TcpStream,
        peer: SocketAddr,
        listener: &Listener,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _open = OpenConnection::count(&self.active);
        let started = Instant::now();
        let _ = client.set_nodelay(true);
        let mut event = ConnectionEvent::accepted(id, peer, listener.service);
        let route = match route(&client, listener) {
            Ok(route) => route,
            Err(reason) => {
                event.close_reason = reason;
                self.say_ending(&event);
                self.write_event(&event);
                return;
            }
        };
        event.service = route.service;
        let mut say_ending = true;
        match self.connect(&route.upstreams).await {
            Err(reason) => event.close_reason = reason,
            Ok((server, host, addr)) => {
                event.upstream = Some(addr.to_string());
                event.upstream_host = Some(host.clone());
                let conn = decide::Conn {
                    id,
                    client: peer,
                    upstream: addr,
                    host,
                    service: route.service,
                    service_fixed: listener.service_fixed,
                };
                let outcome = if self.forger.is_some() {
                    // Intercept's verdict and failures are in its handshake.
                    say_ending = false;
                    // Boxed: intercept's state (two TLS sessions) is five times
                    // relay's; inline, every connection's task would be sized
                    // for it, passthrough ones included, for as long as they stay open.
                    Box::pin(self.intercepted(&conn, client, server)).await
                } else {
                    self.passed_through(&conn, client, server).await
                };
                event.relayed(outcome);
            }
        }
        event.duration_ms = started.elapsed().as_millis() as u64;
        if say_ending {
            self.say_ending(&event);
        }
        self.write_event(&event);
    }

    /// Relay `client` to `server` unchanged, recording the client's flow as
    /// it reached the server.
    async fn passed_through(
        self: &Arc<Self>,
        conn: &decide::Conn,
        client: TcpStream,
        server: TcpStream,
    ) -> RelayOutcome {
        let flow = Arc::new(self.recorder.tap(conn.client, conn.upstream));
        let outcome = self.relay(conn, client, server, &flow).await;
        if outcome.report.is_none() {
            self.capture_verdict(&[&flow], conn.id, None);
        }
        flow.close();
        outcome
    }

    /// Intercept `client` and `server` with the diagnostic CA, recording both legs.
    async fn intercepted(
        &self,
        conn: &decide::Conn,
        client: TcpStream,
        server: TcpStream,
    ) -> RelayOutcome {
        let (outcome, taps) = self.intercept(conn, client, server).await;
        if outcome.report.is_none() {
            let taps: Vec<&FlowTap> = taps.iter().map(|t| &**t).collect();
            self.capture_verdict(&taps, conn.id, None);
        }
        for tap in &taps {
            tap.close();
        }
        outcome
    }

    /// Tell the person watching how a connection without a judged handshake ended.
    fn say_ending(&self, event: &ConnectionEvent) {
        let id = event.connection;
        match decide::ending(event) {
            decide::Ending::NoUpstream => (self.notify)(Notice::UpstreamFailed {
                id,
                client: &event.client,
                reason: &event.close_reason,
            }),
            decide::Ending::NoHandshake => (self.notify)(Notice::NoHandshake {
                id,
                client: &event.client,
                upstream: event.upstream.as_deref().unwrap_or("-"),
                reason: &event.close_reason,
            }),
            decide::Ending::Quiet => {}
        }
    }

    async fn connect(
        &self,
        upstreams: &[Upstream],
    ) -> Result<(TcpStream, String, SocketAddr), String> {
        let mut reasons = Vec::new();
        for u in upstreams {
            let addrs = match self.addresses(&u.host).await {
                Ok(a) => a,
                Err(e) => {
                    reasons.push(format!("{}: {e}", u.host));
                    continue;
                }
            };
            for ip in addrs {
                let addr = SocketAddr::new(ip, u.port);
                match tokio::time::timeout(self.timeouts.connect, TcpStream::connect(addr)).await {
                    Ok(Ok(s)) => {
                        let _ = s.set_nodelay(true);
                        return Ok((s, u.host.clone(), addr));
                    }
                    Ok(Err(e)) => reasons.push(format!("{} ({addr}): {e}", u.host)),
                    Err(_) => reasons.push(format!(
                        "{} ({addr}): no answer within {}s",
                        u.host,
                        self.timeouts.connect.as_secs_f32()
                    )),
                }
            }
        }
        Err(format!("upstream unreachable: {}", reasons.join("; ")))
    }
}

impl Proxy {
    /// `host`'s addresses: a fresh look-up, or, when DNS fails mid-run, the
    /// last answer it gave (said once per host on the terminal, as relaying on
    /// old addresses may reach a server the records no longer name).
    async fn addresses(&self, host: &str) -> Result<Vec<std::net::IpAddr>, String> {
        let fresh = self.dns.addresses(host).await;
        // Only names from the configuration or SRV records are kept (a
        // bounded set); an address literal (transparent mode) needs no DNS.
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
        let Ok(mut last) = self.last_addresses.lock() else {
            return fresh;
        };
        if literal {
            return fresh;
        }
        match fresh {
            Ok(addresses) => {
                last.insert(
                    host.to_owned(),
                    super::LastAddresses {
                        addresses: addresses.clone(),
                        stale_said: false,
                    },
                );
                Ok(addresses)
            }
            Err(e) => match last.get_mut(host) {
                Some(known) => {
                    if !known.stale_said {
                        known.stale_said = true;
                        tracing::warn!(host, error = %e, addresses = ?known.addresses, "DNS look-up failed; relaying to the addresses it last gave");
                    }
                    Ok(known.addresses.clone())
                }
                None => Err(e),
            },
        }
    }
}

/// Where a connection goes: its original destination (transparent) or the
/// listener's upstreams, in order.
fn route(client: &TcpStream, listener: &Listener) -> Result<decide::Route, String> {
    if listener.transparent {
        let original = original_destination(client);
        decide::route(
            listener.service,
            decide::Placement::Transparent {
                original: &original,
                service_fixed: listener.service_fixed,
            },
        )
    } else {
        let list = listener
            .upstreams
            .read()
            .map(|u| u.clone())
            .unwrap_or_default();
        decide::route(listener.service, decide::Placement::Upstreams(&list))
    }
}

/// One open connection in the proxy's count, for as long as this lives: every
/// way out of a connection task (return, early error, panic) gives it back.
struct OpenConnection<'a>(&'a AtomicUsize);

impl<'a> OpenConnection<'a> {
    fn count(active: &'a AtomicUsize) -> OpenConnection<'a> {
        active.fetch_add(1, Ordering::Relaxed);
        OpenConnection(active)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_connections_are_given_back_on_every_exit() {
        let active = AtomicUsize::new(0);
        {
            let _a = OpenConnection::count(&active);
            let _b = OpenConnection::count(&active);
            assert_eq!(active.load(Ordering::Relaxed), 2);
        }
        assert_eq!(active.load(Ordering::Relaxed), 0);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _c = OpenConnection::count(&active);
            panic!("a bug while relaying");
        }));
        assert!(panicked.is_err());
        assert_eq!(active.load(Ordering::Relaxed), 0, "given back on panic too");
    }
}
