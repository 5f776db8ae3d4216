//! The inline proxy: accept, connect upstream (failing over in SRV order),
//! relay, judge every handshake that passes. Each connection's failure ends
//! only that connection and becomes an event with its reason.
//!
//! - `decide.rs`: the decisions, without I/O (route, observation, side probe,
//!   what the end of a connection says), unit-tested;
//! - `listen.rs`: listeners, the accept loop, SRV refresh, original destination;
//! - `connection.rs`: one connection from accept to its event;
//! - `passthrough.rs` and `pump.rs`: bytes unchanged, a copy watched, then splice;
//! - `intercept.rs` and `ca.rs`: intercept mode with the diagnostic CA;
//! - `side.rs`: TLS 1.3 side probes, reused for a minute;
//! - `recorder.rs`: the thread that writes events, capture and key log;
//! - `config.rs`: the TOML configuration and flags.
//!
//! This file holds the shared state ([`Proxy`]) and what every mode uses.

pub mod ca;
pub mod config;
mod connection;
pub mod decide;
pub mod intercept;
mod listen;
mod passthrough;
mod pump;
pub mod recorder;
mod side;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::core::analysis::{Engine, HandshakeReport};
use crate::net::probe::Timeouts;
use crate::net::resolve::Dns;
pub use config::{ListenerConfig, ProxyConfig};
pub use connection::ConnectionEvent;
pub use listen::{Listener, Upstream, upstreams};
use passthrough::RelayOutcome;
pub use recorder::{FlowTap, Outputs, PcapRotation, Recorder};

/// Shared state of a running proxy.
pub struct Proxy {
    engine: Arc<Engine>,
    domain: Option<String>,
    dns: Arc<Dns>,
    timeouts: Timeouts,
    idle: Duration,
    /// How often SRV-derived upstreams are resolved again.
    srv_refresh: Duration,
    next_id: AtomicUsize,
    active: AtomicUsize,
    recorder: Recorder,
    side_probes: side::SideProbes,
    /// The last addresses each upstream host resolved to, used when DNS
    /// stops answering mid-run (the proxy keeps relaying where it did).
    last_addresses: std::sync::Mutex<std::collections::HashMap<String, LastAddresses>>,
    stop: watch::Receiver<bool>,
    /// Handshakes judged so far.
    pub handshakes: AtomicU64,
    /// Set in intercept mode: the diagnostic CA that forges leaves.
    forger: Option<ca::Forger>,
    /// When handshakes are judged: as they pass (the default) or at `--at`.
    judge_time: crate::clock::JudgeTime,
    /// Where notices for the person watching go (the command renders them).
    pub notify: Notify,
    /// With `--online`: the fetcher (its cache lasts the run) and every anchor
    /// any profile trusts, to find each certificate's issuer.
    online: Option<(
        Arc<crate::net::revocation::Online>,
        crate::core::x509::TrustStore,
    )>,
}

/// An upstream host's last good answer, and whether the proxy already said
/// it is relaying on it because DNS failed.
#[derive(Debug, Clone)]
struct LastAddresses {
    addresses: Vec<std::net::IpAddr>,
    stale_said: bool,
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
    /// Bytes passed but no TLS handshake was seen.
    NoHandshake {
        /// The connection.
        id: usize,
        /// The client, as in the event.
        client: &'a str,
        /// The upstream, as in the event.
        upstream: &'a str,
        /// How the connection ended.
        reason: &'a str,
    },
    /// A connection closed (after any of the above), with what it carried.
    Closed {
        /// The connection.
        id: usize,
        /// Bytes from the client to the server.
        bytes_up: u64,
        /// Bytes from the server to the client.
        bytes_down: u64,
    },
}

/// A receiver of [`Notice`]s.
pub type Notify = Box<dyn Fn(Notice<'_>) + Send + Sync>;

/// What a proxy is made of, decided by the command before it starts.
pub struct Settings {
    /// The engine every handshake is judged with.
    pub engine: Engine,
    /// The `_collab-edge` domain, if given.
    pub domain: Option<String>,
    /// The resolver for upstream names and SRV refreshes.
    pub dns: Dns,
    /// Connect, STARTTLS and handshake timeouts.
    pub timeouts: Timeouts,
    /// A connection idle both ways this long is closed.
    pub idle: Duration,
    /// How often SRV-derived upstreams are resolved again.
    pub srv_refresh: Duration,
    /// The thread that writes events, capture and key log.
    pub recorder: Recorder,
    /// Set in intercept mode: the diagnostic CA that forges leaves.
    pub forger: Option<ca::Forger>,
    /// When handshakes are judged: as they pass or at `--at`.
    pub judge_time: crate::clock::JudgeTime,
    /// With `--online`: the fetcher and every anchor any profile trusts.
    pub online: Option<(
        Arc<crate::net::revocation::Online>,
        crate::core::x509::TrustStore,
    )>,
}

impl Settings {
    /// Passthrough judged at the clock, no domain, no online checks, SRV
    /// refreshed every five minutes: what a proxy is without options.
    pub fn new(engine: Engine, dns: Dns, timeouts: Timeouts, recorder: Recorder) -> Settings {
        Settings {
            engine,
            domain: None,
            dns,
            timeouts,
            idle: Duration::from_secs(300),
            srv_refresh: Duration::from_secs(300),
            recorder,
            forger: None,
            judge_time: crate::clock::JudgeTime::Clock,
            online: None,
        }
    }
}

impl Proxy {
    /// A proxy made of `settings`; `stop` turning true closes every
    /// connection still open.
    pub fn new(settings: Settings, stop: watch::Receiver<bool>) -> Proxy {
        Proxy {
            engine: Arc::new(settings.engine),
            domain: settings.domain,
            dns: Arc::new(settings.dns),
            timeouts: settings.timeouts,
            idle: settings.idle,
            srv_refresh: settings.srv_refresh,
            next_id: AtomicUsize::new(1),
            active: AtomicUsize::new(0),
            recorder: settings.recorder,
            side_probes: side::SideProbes::default(),
            last_addresses: Default::default(),
            stop,
            handshakes: AtomicU64::new(0),
            forger: settings.forger,
            judge_time: settings.judge_time,
            notify: Box::new(|_| {}),
            online: settings.online,
        }
    }

    /// With `--online`, the CRL and OCSP answers (and a fetched issuer) put on
    /// the observation before it is judged; off the relay path in passthrough.
    async fn check_online(&self, obs: &mut crate::core::observation::Observation) {
        if let Some((online, store)) = &self.online {
            online
                .check_all(std::slice::from_mut(obs), store, crate::clock::now())
                .await;
        }
    }

    /// Connections currently open.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.next_id.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Put the verdict on a connection's flows in the capture (as the comment
    /// of the frame that carried the server's chain).
    fn capture_verdict(&self, taps: &[&FlowTap], id: usize, handshake: Option<&HandshakeReport>) {
        if !self.recorder.capturing() {
            return;
        }
        let comment = decide::capture_comment(id, handshake);
        for tap in taps {
            tap.verdict(comment.clone());
        }
    }

    fn write_event(&self, event: &ConnectionEvent) {
        (self.notify)(Notice::Closed {
            id: event.connection,
            bytes_up: event.bytes_up,
            bytes_down: event.bytes_down,
        });
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
