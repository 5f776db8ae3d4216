//! `edgetap proxy`: sit inline between clients and servers, relay unchanged, and
//! judge every handshake that passes (passthrough mode).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;

use crate::core::analysis::Engine;
use crate::core::hostport::parse_nameserver;
use crate::net::probe::Timeouts;
use crate::net::resolve::{Dns, ResolverError};
use crate::proxy::{
    Listener, ListenerConfig, Notice, Outputs, PcapRotation, Proxy, ProxyConfig, Recorder,
    Settings, upstreams,
};
use crate::sink::open_append;

/// Arguments of `edgetap proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// A TOML configuration (see configs/proxy-*.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen here: IP:PORT, localhost:PORT or a PORT alone (loopback);
    /// repeatable, taken in order with --upstream and --service.
    #[arg(long, value_name = "ADDR", value_parser = crate::core::hostport::parse_listen)]
    pub listen: Vec<SocketAddr>,
    /// Relay to HOST:PORT, "srv" for the domain's SRV targets, or "original" for
    /// transparent mode (the destination before an iptables REDIRECT).
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Vec<String>,
    /// http, xmpp or sip (default from the listen port).
    #[arg(long, value_parser = ["http", "xmpp", "sip"])]
    pub service: Vec<String>,
    /// The XMPP / `_collab-edge` domain.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Nameserver for upstream and SRV look-ups (IP or IP:PORT; repeatable).
    #[arg(long = "nameserver", value_name = "IP[:PORT]")]
    pub nameservers: Vec<String>,
    /// Write one JSON line per connection here.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Write what passed to this capture (pcapng, or pcap for *.pcap).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Start a new capture file past this many megabytes (1 to 1048576).
    #[arg(long, value_name = "MB", value_parser = super::common::pcap_max_mb)]
    pub pcap_max_mb: Option<u64>,
    /// In intercept mode, append both legs' TLS keys here (SSLKEYLOGFILE format).
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<PathBuf>,
    /// Intercept TLS (never the default): present leaves forged by the diagnostic
    /// CA to clients, record the real upstream chain, log both legs' keys.
    #[arg(long, requires = "ca")]
    pub intercept: bool,
    /// The diagnostic CA directory (`edgetap ca init --dir DIR`), with --intercept.
    #[arg(long, value_name = "DIR", requires = "intercept")]
    pub ca: Option<PathBuf>,
    /// Which CAs each profile trusts.
    #[command(flatten)]
    pub stores: super::common::TrustArgs,
    /// When to judge, and how close an expiry warns.
    #[command(flatten)]
    pub time: super::common::TimeArgs,
    /// Online revocation checks.
    #[command(flatten)]
    pub revocation: super::common::OnlineArgs,
    /// One line per handshake on stdout instead of the live view (the live
    /// view is shown only when stdout is a terminal).
    #[arg(long)]
    pub plain: bool,
}

fn config(args: &ProxyArgs) -> anyhow::Result<ProxyConfig> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read the config", path.display()))?;
            ProxyConfig::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => ProxyConfig::default(),
    };
    if args.listen.len() != args.upstream.len()
        || (!args.service.is_empty() && args.service.len() != args.listen.len())
    {
        anyhow::bail!(
            "give --listen, --upstream (and --service) the same number of times: they are taken as triples in order"
        );
    }
    for (i, listen) in args.listen.iter().enumerate() {
        let upstream = &args.upstream[i];
        let srv = upstream == "srv";
        cfg.listeners.push(ListenerConfig {
            listen: *listen,
            upstream: (!srv && upstream != "original").then(|| upstream.clone()),
            service: args.service.get(i).cloned(),
            srv,
            transparent: upstream == "original",
        });
    }
    if args.domain.is_some() {
        cfg.domain = args.domain.clone();
    }
    if cfg.domain.is_none() && args.upstream.iter().any(|u| u == "srv") {
        anyhow::bail!(
            "--upstream srv follows a domain's _collab-edge SRV records: add --domain example.com (the domain users sign in with)"
        );
    }
    cfg.nameservers.extend(args.nameservers.iter().cloned());
    if args.events.is_some() {
        cfg.events = args.events.clone();
    }
    if args.pcap.is_some() {
        cfg.pcap = args.pcap.clone();
    }
    if args.keylog.is_some() {
        cfg.keylog = args.keylog.clone();
    }
    if args.pcap_max_mb.is_some() {
        cfg.pcap_max_mb = args.pcap_max_mb;
    }
    if cfg.keylog.is_some() && !args.intercept {
        anyhow::bail!(
            "a key log holds the keys of intercepted sessions: add --intercept (with --ca), or drop --keylog / keylog; passthrough captures carry no keys edgetap could know"
        );
    }
    cfg.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok(cfg)
}

/// Run `proxy` until Ctrl-C or SIGTERM.
pub async fn run(args: &ProxyArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(args)?;
    raise_open_file_limit();
    let dns = resolver(&cfg)?;
    let mut signals = catch_stop_signals()?;
    let listeners = bind_listeners(&cfg, &dns).await?;
    let settings = settings(args, &cfg, dns)?;
    let mode = if settings.forger.is_some() {
        "intercept"
    } else {
        "passthrough"
    };
    let (accept_tx, accept_rx) = tokio::sync::watch::channel(false);
    let (force_tx, force_rx) = tokio::sync::watch::channel(false);
    let mut proxy = Proxy::new(settings, force_rx);
    let screen = Screen::start(!args.plain)?;
    proxy.notify = screen.notify();
    if let Some(at) = args.time.at {
        eprintln!(
            "edgetap: judging every handshake as of {} (--at), not when it passes",
            crate::core::timestamp::rfc3339(at)
        );
    }
    let proxy = Arc::new(proxy);
    eprintln!("edgetap: mode {mode}");
    let quit = Arc::new(tokio::sync::Notify::new());
    screen.start_live_view(&proxy, &listeners, mode, &quit);
    let mut acceptors = tokio::task::JoinSet::new();
    for l in listeners {
        acceptors.spawn(proxy.clone().serve(l, accept_rx.clone()));
    }

    wait_for_stop(&mut signals, &quit).await;
    screen.stop_live_view();
    let grace = secs(cfg.grace_secs, 5.0);
    eprintln!(
        "edgetap: stopping: no new connections; {} open get {}s to finish (Ctrl-C again to stop at once)",
        proxy.active(),
        grace.as_secs_f32()
    );
    let _ = accept_tx.send(true);
    while acceptors.join_next().await.is_some() {}
    // A second Ctrl-C (or SIGTERM) cuts the grace period short.
    tokio::select! {
        () = drain(&proxy, grace, Duration::from_millis(50)) => {}
        () = wait_for_stop(&mut signals, &quit) => {
            eprintln!("edgetap: stopping now: closing {} open connection(s)", proxy.active());
        }
    }
    let _ = force_tx.send(true);
    drain(&proxy, Duration::from_secs(5), Duration::from_millis(20)).await;
    // Like a full disk, a stalled one loses output but is not an error exit.
    if let Err(e) = proxy.finish() {
        eprintln!("edgetap: warning: {e:#}");
    }
    screen.close();
    eprintln!(
        "edgetap: stopped after {}",
        crate::sink::count(
            proxy.handshakes.load(std::sync::atomic::Ordering::Relaxed),
            "handshake"
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// The resolver the configuration names (the system's when none).
fn resolver(cfg: &ProxyConfig) -> anyhow::Result<Dns> {
    let nameservers: Vec<SocketAddr> = cfg
        .nameservers
        .iter()
        .map(|n| parse_nameserver(n).map_err(ResolverError::BadNameserver))
        .collect::<Result<_, _>>()?;
    Ok(Dns::new(&nameservers, Duration::from_secs(2))?)
}

/// The proxy's parts as the flags and configuration decide them: engine,
/// timeouts, output files, diagnostic CA, online checks.
fn settings(args: &ProxyArgs, cfg: &ProxyConfig, dns: Dns) -> anyhow::Result<Settings> {
    let (public, enterprise) = args.stores.stores()?;
    let online = args
        .revocation
        .checker()?
        .map(|online| (Arc::new(online), public.union(&enterprise)));
    let engine = Engine::new(public, enterprise, args.time.detector_config());
    let connect = secs(cfg.connect_timeout_secs, 5.0);
    let timeouts = Timeouts {
        connect,
        starttls: connect,
        handshake: connect * 2,
    };
    Ok(Settings {
        domain: cfg.domain.clone(),
        idle: secs(cfg.idle_timeout_secs, 300.0),
        srv_refresh: secs(cfg.srv_refresh_secs, 300.0),
        forger: load_forger(args)?,
        judge_time: args.time.judge_time(),
        online,
        ..Settings::new(engine, dns, timeouts, start_recorder(cfg)?)
    })
}

/// Where the proxy's notices go: the live view on a terminal (unless
/// `--plain`), else one line each through their own thread, so that stdout
/// piped into a pager that stopped reading never holds up a connection.
struct Screen {
    terminal: Arc<crate::sink::out::LineQueue>,
    want_live: bool,
    live: Arc<std::sync::OnceLock<super::live::Live>>,
}

impl Screen {
    /// The line writer started; the live view is wanted when stdout is a
    /// terminal and `live` allows it.
    fn start(live: bool) -> anyhow::Result<Screen> {
        let terminal = Arc::new(
            crate::sink::out::LineQueue::start(std::io::stdout(), 4096)
                .context("cannot start the thread that writes terminal lines")?,
        );
        Ok(Screen {
            terminal,
            want_live: live && std::io::IsTerminal::is_terminal(&std::io::stdout()),
            live: Arc::default(),
        })
    }

    /// The receiver of the proxy's notices: the live view once it runs,
    /// terminal lines when none is wanted.
    fn notify(&self) -> crate::proxy::Notify {
        let (terminal, live, want_live) =
            (self.terminal.clone(), self.live.clone(), self.want_live);
        Box::new(move |notice| match live.get() {
            Some(view) => view.notice(notice),
            None if want_live => {}
            None => {
                if let Some(line) = notice_line(notice) {
                    terminal.push(line);
                }
            }
        })
    }

    /// Start the live view when wanted; its q key notifies `quit`. A view
    /// that cannot start leaves the lines.
    fn start_live_view(
        &self,
        proxy: &Arc<Proxy>,
        listeners: &[Listener],
        mode: &str,
        quit: &Arc<tokio::sync::Notify>,
    ) {
        if !self.want_live {
            return;
        }
        let title = format!(
            "{mode} on {}",
            listeners
                .iter()
                .filter_map(|l| l.socket.local_addr().ok())
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let asked = quit.clone();
        match super::live::Live::start(
            title,
            super::live::counters_of(proxy.clone()),
            Box::new(move || asked.notify_one()),
        ) {
            Ok(view) => {
                let _ = self.live.set(view);
            }
            Err(e) => {
                eprintln!("edgetap: the live view cannot start ({e}); printing lines instead");
            }
        }
    }

    /// The live view gives the terminal back before anything more is said.
    fn stop_live_view(&self) {
        if let Some(view) = self.live.get() {
            view.stop();
            if view.dropped() > 0 {
                eprintln!(
                    "edgetap: {} rows did not reach the live view (it fell behind; the events file has every connection)",
                    view.dropped()
                );
            }
        }
    }

    /// Write the lines still queued (2 s at most) and say how many were lost.
    fn close(&self) {
        self.terminal.close(Duration::from_secs(2));
        if self.terminal.dropped() > 0 {
            eprintln!(
                "edgetap: {} terminal lines were dropped: stdout was not being read (the events file has every connection)",
                self.terminal.dropped()
            );
        }
    }
}

/// A config duration in seconds (checked by `ProxyConfig::validate`),
/// `default` when unset.
fn secs(v: Option<f64>, default: f64) -> Duration {
    Duration::from_secs_f64(v.unwrap_or(default))
}

/// Wait until no connection is open, for at most `limit`.
async fn drain(proxy: &Proxy, limit: Duration, every: Duration) {
    let deadline = Instant::now() + limit;
    while proxy.active() > 0 && Instant::now() < deadline {
        tokio::time::sleep(every).await;
    }
}

/// Resolve each configured listener's upstreams and bind it, saying on stderr
/// where it sends what (and when it is reachable from the network).
async fn bind_listeners(cfg: &ProxyConfig, dns: &Dns) -> anyhow::Result<Vec<Listener>> {
    let mut listeners = Vec::new();
    for l in &cfg.listeners {
        let ups = upstreams(cfg.domain.as_deref(), l, dns).await?;
        let socket = tokio::net::TcpListener::bind(l.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (in use, or a privileged port?)",
                    l.listen
                )
            })?;
        if !l.listen.ip().is_loopback() && !l.transparent {
            eprintln!(
                "edgetap: warning: {} is reachable from the network, not only from this machine",
                l.listen
            );
        }
        let service = l.service().map_err(|e| anyhow::anyhow!(e))?;
        let to = if l.transparent {
            "original destination (transparent)".to_owned()
        } else {
            ups.iter()
                .map(|u| format!("{}:{}", u.host, u.port))
                .collect::<Vec<_>>()
                .join(", ")
        };
        eprintln!("edgetap: {} {service} -> {to}", socket.local_addr()?);
        listeners.push(Listener {
            socket,
            service,
            service_fixed: l.service.is_some(),
            upstreams: std::sync::RwLock::new(ups),
            transparent: l.transparent,
            srv: l.srv.then(|| l.clone()),
        });
    }
    Ok(listeners)
}

/// Open the configured output files and start the thread that writes them.
fn start_recorder(cfg: &ProxyConfig) -> anyhow::Result<Recorder> {
    let events = match &cfg.events {
        Some(p) => Some(open_append(p, "events file")?),
        None => None,
    };
    let pcap = match &cfg.pcap {
        Some(p) => Some(PcapRotation::new(p.clone(), cfg.pcap_max_mb)?),
        None => None,
    };
    let keylog = match &cfg.keylog {
        Some(path) => Some(open_append(path, "key log")?),
        None => None,
    };
    Recorder::start(Outputs {
        events,
        pcap,
        keylog,
    })
    .context("cannot start the thread that writes the output files")
}

/// Raise the open-file limit as far as allowed, and say how many connections
/// fit when it stays low.
fn raise_open_file_limit() {
    if let Some(n) = crate::net::limits::raise_open_file_limit()
        && n < 4096
    {
        eprintln!(
            "edgetap: note: at most {n} open files: about {} connections at once (raise `ulimit -Hn` for more)",
            n.saturating_sub(32) / 2
        );
    }
}

/// In intercept mode, the diagnostic CA (refused when expired; a warning in its
/// last 30 days).
fn load_forger(args: &ProxyArgs) -> anyhow::Result<Option<crate::proxy::ca::Forger>> {
    let (true, Some(dir)) = (args.intercept, &args.ca) else {
        return Ok(None);
    };
    let forger = crate::proxy::ca::Forger::load(dir, crate::clock::now())?;
    let left = forger.ca_not_after() - crate::clock::now();
    if left < time::Duration::days(30) {
        eprintln!(
            "edgetap: warning: the diagnostic CA expires on {} (in {} days); make a new one soon with `edgetap ca init --dir NEW_DIR`",
            forger.ca_not_after().date(),
            left.whole_days()
        );
    }
    Ok(Some(forger))
}

/// The terminal line for a proxy notice, stamped with the wall clock (none
/// for a connection's close: the plain output has one line per handshake).
fn notice_line(notice: Notice<'_>) -> Option<String> {
    let now = crate::clock::now();
    Some(match notice {
        Notice::Judged { id, report } => crate::sink::text::proxy_handshake(id, report, now),
        Notice::UpstreamFailed { id, client, reason } => {
            crate::sink::text::proxy_upstream_failed(id, client, reason, now)
        }
        Notice::NoHandshake {
            id,
            client,
            upstream,
            reason,
        } => crate::sink::text::proxy_no_handshake(id, client, upstream, reason, now),
        Notice::Closed { .. } => return None,
    })
}

/// Ctrl-C and SIGTERM, caught from the proxy's start, before it listens: a
/// stop that comes as soon as the port accepts is graceful, not the signal's
/// default (which would end the process without flushing anything).
#[cfg(unix)]
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
fn catch_stop_signals() -> std::io::Result<StopSignals> {
    use tokio::signal::unix::{SignalKind, signal};
    Ok(StopSignals {
        interrupt: signal(SignalKind::interrupt())?,
        terminate: signal(SignalKind::terminate())?,
    })
}

/// Elsewhere Ctrl-C is caught when the proxy starts waiting.
#[cfg(not(unix))]
struct StopSignals;

#[cfg(not(unix))]
fn catch_stop_signals() -> std::io::Result<StopSignals> {
    Ok(StopSignals)
}

/// Until Ctrl-C, SIGTERM, or `quit` (the live view's q key).
async fn wait_for_stop(signals: &mut StopSignals, quit: &tokio::sync::Notify) {
    #[cfg(unix)]
    tokio::select! {
        _ = signals.interrupt.recv() => {}
        _ = signals.terminate.recv() => {}
        _ = quit.notified() => {}
    }
    #[cfg(not(unix))]
    {
        let _ = signals;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = quit.notified() => {}
        }
    }
}
