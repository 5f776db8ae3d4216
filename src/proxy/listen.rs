//! Listening: the ready listeners (static, SRV-derived, transparent), the
//! accept loop that gives each connection its own task, the periodic SRV
//! refresh, resolving a listener's upstreams, and a transparent connection's
//! original destination (SO_ORIGINAL_DST).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::ListenerConfig;
use super::Proxy;
use crate::core::observation::Service;
use crate::net::resolve::Dns;
use tokio::net::TcpListener;

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

impl Proxy {
    /// Accept on `listener` until `accepting` turns true; each connection in its own task.
    pub async fn serve(self: Arc<Self>, listener: Listener, mut stop: watch::Receiver<bool>) {
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
            // Detached: a finished connection task is freed at once. (A JoinSet
            // never joined kept every finished task until shutdown.) The open
            // count, not a task list, is what shutdown waits on.
            tokio::spawn(async move { me.connection(client, peer, &l).await });
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
        // Said once when look-ups start failing, and once when they recover.
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.srv_refresh) => {}
                _ = stop.changed() => return,
            }
            match upstreams(self.domain.as_deref(), config, &self.dns).await {
                Ok(fresh) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!(listener = %config.listen, "SRV look-ups answer again");
                    }
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
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(listener = %config.listen, error = %e, "SRV look-up failed; keeping the upstreams found before (said again only after look-ups recover)");
                }
                Err(_) => {}
            }
        }
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

/// Where a REDIRECTed connection was going (SO_ORIGINAL_DST, IPv4 or IPv6).
pub(super) fn original_destination(client: &TcpStream) -> Result<SocketAddr, String> {
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
pub(super) fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), a.port()),
            None => addr,
        },
        v4 => v4,
    }
}
