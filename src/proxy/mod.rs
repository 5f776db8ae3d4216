//! The inline proxy, passthrough mode: accept, connect upstream (failing over in
//! SRV order), relay bytes unchanged both ways, and watch a copy of the handshake
//! with the replay parsers. Analysis runs in its own task, off the copy path;
//! each direction's parsing stops once it is encrypted (see `pump.rs`). Each
//! connection's failure ends only that connection and becomes an event with
//! its reason.

pub mod ca;
pub mod config;
pub mod decide;
pub mod intercept;
mod pump;
pub mod recorder;
mod side;
use pump::Pump;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::core::analysis::{Engine, HandshakeReport};
use crate::core::capture::watch::Watch;
use crate::core::export::FlowLog;
use crate::core::observation::Service;
use crate::net::probe::Timeouts;
use crate::net::resolve::Dns;
pub use config::{ListenerConfig, ProxyConfig};
pub use recorder::{Outputs, PcapRotation, Recorder};

/// Where a listener sends connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Host name (for SNI of side probes and reports).
    pub host: String,
    /// Port.
    pub port: u16,
}

/// A ready listener.
pub struct Listener {
    /// Its socket.
    pub socket: TcpListener,
    /// What it carries.
    pub service: Service,
    /// The service was configured; otherwise a transparent listener takes it
    /// from each connection's original port.
    pub service_fixed: bool,
    /// Upstreams in order of preference (empty for a transparent listener);
    /// an SRV-derived list is replaced when the records change.
    pub upstreams: std::sync::RwLock<Vec<Upstream>>,
    /// Take each connection's original destination instead.
    pub transparent: bool,
    /// For an SRV-derived listener: its configuration, to resolve again every
    /// `srv_refresh` (the records may move while edgetap runs for hours).
    pub srv: Option<ListenerConfig>,
}

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

/// Shared state of a running proxy.
pub struct Proxy {
    engine: Arc<Engine>,
    domain: Option<String>,
    dns: Arc<Dns>,
    timeouts: Timeouts,
    idle: Duration,
    /// How often SRV-derived upstreams are resolved again.
    pub srv_refresh: Duration,
    next_id: AtomicUsize,
    active: AtomicUsize,
    recorder: Recorder,
    side_probes: side::SideProbes,
    stop: watch::Receiver<bool>,
    /// Handshakes judged so far.
    pub handshakes: AtomicU64,
    /// Set in intercept mode: the diagnostic CA that forges leaves.
    pub forger: Option<ca::Forger>,
    /// When handshakes are judged: as they pass (the default) or at `--at`.
    pub judge_time: crate::clock::JudgeTime,
    /// Where notices for the person watching go (the command renders them).
    pub notify: Notify,
}

/// What the proxy tells the person watching, as it happens; the command
/// decides how it looks (`sink::text::proxy_handshake`, `proxy_upstream_failed`).
#[derive(Debug)]
pub enum Notice<'a> {
    /// A handshake was judged.
    Judged {
        /// The connection.
        id: usize,
        /// Its report.
        report: &'a HandshakeReport,
    },
    /// No upstream could be reached for a connection.
    UpstreamFailed {
        /// The connection.
        id: usize,
        /// The client, as in the event.
        client: &'a str,
        /// Why.
        reason: &'a str,
    },
}

/// A receiver of [`Notice`]s.
pub type Notify = Box<dyn Fn(Notice<'_>) + Send + Sync>;

impl Proxy {
    /// A proxy judging with `engine`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        domain: Option<String>,
        dns: Dns,
        timeouts: Timeouts,
        idle: Duration,
        recorder: Recorder,
        stop: watch::Receiver<bool>,
    ) -> Proxy {
        Proxy {
            engine: Arc::new(engine),
            domain,
            dns: Arc::new(dns),
            timeouts,
            idle,
            srv_refresh: Duration::from_secs(300),
            next_id: AtomicUsize::new(1),
            active: AtomicUsize::new(0),
            recorder,
            side_probes: side::SideProbes::default(),
            stop,
            handshakes: AtomicU64::new(0),
            forger: None,
            judge_time: crate::clock::JudgeTime::Clock,
            notify: Box::new(|_| {}),
        }
    }

    /// Connections currently open.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Accept on `listener` until `accepting` turns true; each connection in its own task.
    pub async fn serve(
        self: Arc<Self>,
        listener: Listener,
        tasks: Arc<Mutex<tokio::task::JoinSet<()>>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let listener = Arc::new(listener);
        if listener.srv.is_some() {
            tokio::spawn(self.clone().refresh_srv(listener.clone(), stop.clone()));
        }
        loop {
            let accepted = tokio::select! {
                a = listener.socket.accept() => a,
                _ = stop.changed() => return,
            };
            let (client, peer) = match accepted {
                Ok((c, peer)) => (c, unmapped(peer)),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let me = self.clone();
            let l = listener.clone();
            if let Ok(mut set) = tasks.lock() {
                set.spawn(async move { me.connection(client, peer, &l).await });
            }
        }
    }

    /// Resolve an SRV-derived listener's upstreams again every `srv_refresh`,
    /// until the proxy stops; a failed look-up keeps the list it had.
    async fn refresh_srv(
        self: Arc<Self>,
        listener: Arc<Listener>,
        mut stop: watch::Receiver<bool>,
    ) {
        let Some(config) = &listener.srv else { return };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.srv_refresh) => {}
                _ = stop.changed() => return,
            }
            match upstreams(self.domain.as_deref(), config, &self.dns).await {
                Ok(fresh) => {
                    let Ok(mut current) = listener.upstreams.write() else {
                        return;
                    };
                    if *current != fresh {
                        let list: Vec<String> = fresh
                            .iter()
                            .map(|u| format!("{}:{}", u.host, u.port))
                            .collect();
                        tracing::info!(listener = %config.listen, upstreams = %list.join(", "), "SRV records changed");
                        *current = fresh;
                    }
                }
                Err(e) => {
                    tracing::warn!(listener = %config.listen, error = %e, "SRV look-up failed; keeping the upstreams found before");
                }
            }
        }
    }

    async fn connection(self: Arc<Self>, client: TcpStream, peer: SocketAddr, listener: &Listener) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _open = OpenConnection::count(&self.active);
        let started = Instant::now();
        let opened = crate::clock::wall();
        let _ = client.set_nodelay(true);
        let mut event = ConnectionEvent {
            connection: id,
            client: peer.to_string(),
            upstream: None,
            upstream_host: None,
            service: listener.service,
            bytes_up: 0,
            bytes_down: 0,
            duration_ms: 0,
            close_reason: String::new(),
            handshake: None,
        };
        let routed = if listener.transparent {
            let original = original_destination(&client);
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
        };
        let (service, upstreams) = match routed {
            Ok(r) => (r.service, r.upstreams),
            Err(reason) => {
                event.close_reason = reason;
                self.write_event(&event);
                return;
            }
        };
        event.service = service;
        match self.connect(&upstreams).await {
            Err(reason) => {
                event.close_reason = reason;
                drop(client);
            }
            Ok((server, host, addr)) => {
                event.upstream = Some(addr.to_string());
                event.upstream_host = Some(host.clone());
                if self.forger.is_some() {
                    let (outcome, logs) = self
                        .intercept(id, client, server, peer, addr, &host, service)
                        .await;
                    event.bytes_up = outcome.up;
                    event.bytes_down = outcome.down;
                    event.close_reason = outcome.reason;
                    event.handshake = outcome.report;
                    self.recorder
                        .keys(logs.iter().map(|l| l.keylog.as_str()).collect());
                    self.capture(id, &event, logs);
                    event.duration_ms = started.elapsed().as_millis() as u64;
                    self.write_event(&event);
                    return;
                }
                let flow = Arc::new(Mutex::new(FlowLog {
                    client: Some(peer),
                    server: Some(addr),
                    opened: Some(opened),
                    ..FlowLog::default()
                }));
                let outcome = self
                    .relay(id, client, server, peer, addr, &host, service, &flow)
                    .await;
                event.bytes_up = outcome.up;
                event.bytes_down = outcome.down;
                event.close_reason = outcome.reason;
                event.handshake = outcome.report;
                if let Ok(mut f) = flow.lock() {
                    f.closed = Some(crate::clock::wall());
                }
                if let Ok(mut flow) = flow.lock() {
                    self.capture(id, &event, vec![std::mem::take(&mut *flow)]);
                }
            }
        }
        event.duration_ms = started.elapsed().as_millis() as u64;
        if decide::tell_upstream_failed(&event) {
            (self.notify)(Notice::UpstreamFailed {
                id,
                client: &event.client,
                reason: &event.close_reason,
            });
        }
        self.write_event(&event);
    }

    async fn connect(
        &self,
        upstreams: &[Upstream],
    ) -> Result<(TcpStream, String, SocketAddr), String> {
        let mut reasons = Vec::new();
        for u in upstreams {
            let addrs = match self.dns.addresses(&u.host).await {
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

    #[allow(clippy::too_many_arguments)]
    async fn relay(
        self: &Arc<Self>,
        id: usize,
        client: TcpStream,
        server: TcpStream,
        peer: SocketAddr,
        upstream: SocketAddr,
        host: &str,
        service: Service,
        flow: &Arc<Mutex<FlowLog>>,
    ) -> RelayOutcome {
        let watch = Arc::new(Mutex::new(Watch::default()));
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        let analysis: Arc<Mutex<Option<tokio::task::JoinHandle<Option<HandshakeReport>>>>> =
            Arc::new(Mutex::new(None));
        let ctx = Pump {
            record: self.recorder.capturing(),
            watch: watch.clone(),
            flow: flow.clone(),
            idle: self.idle,
            activity: Arc::new(crate::net::probe::Activity::new()),
            stop: self.stop.clone(),
        };
        let start_analysis = {
            let me = self.clone();
            let watch = watch.clone();
            let analysis = analysis.clone();
            let host = host.to_owned();
            move || {
                let Ok(mut slot) = analysis.lock() else {
                    return;
                };
                if slot.is_some() {
                    return;
                }
                let me = me.clone();
                let watch = watch.clone();
                let host = host.clone();
                *slot = Some(tokio::spawn(async move {
                    me.analyse(id, &watch, peer, upstream, &host, service).await
                }));
            }
        };
        let up = ctx.pump(cr, sw, true, None::<fn()>);
        let down = ctx.pump(sr, cw, false, Some(start_analysis.clone()));
        let (up, down) = tokio::join!(up, down);
        // The handshake may have ended with the connection (alert, reset): judge what was seen.
        let saw_tls = watch.lock().map(|w| w.saw_tls()).unwrap_or(false);
        if saw_tls {
            start_analysis();
        }
        let handle = analysis.lock().ok().and_then(|mut s| s.take());
        let report = match handle {
            Some(h) => h.await.ok().flatten(),
            None => None,
        };
        let reason = match (&up.1, &down.1) {
            (Some(r), _) | (None, Some(r)) => r.clone(),
            (None, None) => "closed".into(),
        };
        RelayOutcome {
            up: up.0,
            down: down.0,
            reason,
            report,
        }
    }

    async fn analyse(
        &self,
        id: usize,
        watch: &Mutex<Watch>,
        client: SocketAddr,
        upstream: SocketAddr,
        host: &str,
        service: Service,
    ) -> Option<HandshakeReport> {
        let conn = watch.lock().ok()?.take_connection(id, client, upstream);
        let now = crate::clock::now();
        let relayed = decide::Relayed {
            id,
            client,
            upstream,
            host,
            service,
            domain: self.domain.as_deref(),
            at: now,
        };
        let mut obs = decide::relayed_observation(&conn, &relayed);
        // TLS 1.3: the chain is encrypted in this connection; fetch it on the side.
        if let Some(target) = decide::side_probe_for(&obs, host, upstream) {
            let (chain, reused) = self.side_probes.chain(&target, self.timeouts, now).await;
            obs.presented = chain;
            obs.origin.locator += &match reused {
                Some(age) => format!("; chain from a side connection {}s ago", age.as_secs()),
                None => "; chain from a side connection".to_owned(),
            };
        }
        let report = self.engine.evaluate(&[obs], self.judge_time.now());
        let h = report.handshakes.into_iter().next()?;
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        (self.notify)(Notice::Judged { id, report: &h });
        Some(h)
    }

    /// Write a connection's flows to the capture, the verdict as the comment.
    fn capture(&self, id: usize, event: &ConnectionEvent, flows: Vec<FlowLog>) {
        if !self.recorder.capturing() {
            return;
        }
        let comment = decide::capture_comment(id, event.handshake.as_ref());
        self.recorder.flows(flows, comment);
    }

    fn write_event(&self, event: &ConnectionEvent) {
        match serde_json::to_string(event) {
            Ok(line) => self.recorder.event(line),
            Err(e) => tracing::error!(error = %e, "an event could not be written as JSON"),
        }
    }

    /// Write what is queued and close the files (the capture complete).
    pub fn finish(&self) -> anyhow::Result<()> {
        self.recorder.finish()
    }
}

struct RelayOutcome {
    up: u64,
    down: u64,
    reason: String,
    report: Option<HandshakeReport>,
}

/// Where a REDIRECTed connection was going (SO_ORIGINAL_DST, IPv4 or IPv6).
fn original_destination(client: &TcpStream) -> Result<SocketAddr, String> {
    let sock = socket2::SockRef::from(client);
    // An IPv4 connection on a dual-stack [::] listener was redirected by the
    // IPv4 table: ask the IPv4 question.
    let local = unmapped(client.local_addr().map_err(|e| e.to_string())?);
    let dst = if local.is_ipv4() {
        sock.original_dst_v4()
    } else {
        sock.original_dst_v6()
    };
    let dst = dst
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| "no original destination: the connection did not come through an iptables/nftables REDIRECT rule".to_owned())?;
    if dst == local {
        return Err(format!(
            "the original destination is this listener ({dst}): the REDIRECT rule would loop"
        ));
    }
    Ok(dst)
}

/// `::ffff:a.b.c.d` (IPv4 on a dual-stack listener) as the IPv4 address it is.
fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), a.port()),
            None => addr,
        },
        v4 => v4,
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

/// Resolve the listeners' upstreams (SRV-derived ones through discovery).
pub async fn upstreams(
    domain: Option<&str>,
    l: &ListenerConfig,
    dns: &Dns,
) -> anyhow::Result<Vec<Upstream>> {
    if l.transparent {
        return Ok(Vec::new());
    }
    if let Some(u) = &l.upstream {
        let (host, port) = crate::core::hostport::split_host_port(u).ok_or_else(|| {
            anyhow::anyhow!(
                "listener {}: upstream {u:?} is not HOST:PORT (an IPv6 address goes in brackets: [2001:db8::1]:8443)",
                l.listen
            )
        })?;
        return Ok(vec![Upstream { host, port }]);
    }
    let domain = domain.unwrap_or_default();
    let discovery = dns.discover(domain).await;
    let service = l.service().map_err(|e| anyhow::anyhow!(e))?;
    let list: Vec<Upstream> = discovery
        .endpoints(service)
        .iter()
        .map(|e| Upstream {
            host: e.target.record.target.clone(),
            port: e.port,
        })
        .collect();
    if list.is_empty() {
        anyhow::bail!(
            "listener {}: no SRV targets for {domain} ({})",
            l.listen,
            discovery
                .lookups
                .iter()
                .map(|lk| format!("{} {}", lk.name, lk.describe()))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(list)
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
