//! `edgetap probe`: walk the path a Jabber client outside the network walks
//! (DNS SRV, then HTTPS on the edge and XMPP with STARTTLS) and judge every
//! handshake. Endpoints run concurrently, bounded, each step with a timeout.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::Semaphore;

use super::common::AnalysisArgs;
use super::discover::DnsArgs;
use crate::core::analysis::engine::DnsReport;
use crate::core::discovery::{Discovery, SrvKind};
use crate::core::export::FlowLog;
use crate::core::observation::{Observation, Service};
use crate::net::probe::{Target, Timeouts, probe_recorded};

/// Arguments of `edgetap probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// A DOMAIN (discover it, then probe every SRV target) or one HOST:PORT.
    pub target: String,
    /// Service for HOST:PORT (default from the port: 5222/5223/5269 xmpp, 5061 sip, else http).
    #[arg(long, value_parser = super::common::service_parser())]
    pub service: Option<Service>,
    /// For HOST:PORT: the XMPP domain (xmpp) or the `_collab-edge` domain (http).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// For HOST:PORT: connect to this address instead of resolving HOST, still
    /// sending HOST as the SNI and judging against it (one node of a cluster).
    #[arg(long, value_name = "IP")]
    pub address: Option<std::net::IpAddr>,
    /// DNS flags.
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Endpoints probed at once (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = super::common::concurrency)]
    pub concurrency: usize,
    /// Seconds allowed for each step (connect, each STARTTLS read, TLS
    /// handshake; 0.1 to 600).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = super::common::timeout_secs)]
    pub timeout: f64,
    /// Write every probe connection to this capture (pcapng, or pcap for *.pcap):
    /// synthesised TCP, the verdict as a packet comment, TLS keys embedded (pcapng).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
    /// Append the TLS session keys in SSLKEYLOGFILE format.
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<std::path::PathBuf>,
    /// Trust, time and output flags.
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// Run `probe`.
pub async fn run(args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let engine = args.analysis.engine()?;
    let now = args.analysis.now();
    let step = Duration::from_secs_f64(args.timeout);
    let timeouts = Timeouts {
        connect: step,
        starttls: step,
        handshake: step * 2,
    };
    let dns = args.dns.resolver()?;

    let (discovery, targets) = targets(
        &dns,
        &args.target,
        args.service,
        args.domain.as_deref(),
        args.address,
    )
    .await?;

    let record = args.pcap.is_some() || args.keylog.is_some();
    // Create the capture before probing, so a bad path fails before any traffic.
    let sink = match &args.pcap {
        Some(p) => Some(crate::sink::pcap::PcapSink::create(
            p,
            args.keylog.as_deref(),
        )?),
        None => None,
    };
    let started = Instant::now();
    let (probed, interrupted) =
        probe_all_recorded(&targets, timeouts, now, args.concurrency, record).await;
    tracing::info!(
        endpoints = targets.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "probe finished"
    );
    let (mut observations, flows): (Vec<Observation>, Vec<Option<FlowLog>>) =
        probed.into_iter().unzip();
    args.analysis.check_online(&mut observations).await?;
    let mut report = engine.evaluate(&observations, now);
    report.dns = discovery.map(|d| DnsReport::judge(d, !args.dns.inside));
    if targets.is_empty() {
        report.fell_short("discovery gave no endpoint to probe");
    }
    if let Some(why) = &interrupted {
        report.fell_short(why);
    }
    write_flows(
        sink,
        args.keylog.as_deref(),
        &report,
        &flows,
        dns.nameserver,
    )?;
    let code = args.analysis.emit(&report, now)?;
    // Interrupted: what was written is whole, and the exit says the run was
    // stopped (128 + SIGINT), whatever --fail-on says.
    Ok(if interrupted.is_some() {
        ExitCode::from(130)
    } else {
        code
    })
}

/// What to probe for `target` (a DOMAIN, discovered through `dns`, or one
/// HOST:PORT with its optional service, domain and address), and the
/// discovery when there was one: the same plan for `probe` and `regress`.
pub async fn targets(
    dns: &crate::net::resolve::Dns,
    target: &str,
    service: Option<Service>,
    domain: Option<&str>,
    address: Option<std::net::IpAddr>,
) -> anyhow::Result<(Option<Discovery>, Vec<Target>)> {
    Ok(match crate::core::hostport::split_host_port(target) {
        Some((host, port)) => {
            let addrs = match address {
                Some(ip) => vec![ip],
                None => dns.addresses(&host).await.map_err(|e| {
                    anyhow::anyhow!("cannot resolve {host}: {e} (or give --address IP)")
                })?,
            };
            let service = service.unwrap_or(Service::for_port(port));
            let (addr, alternates) = addresses_to_try(&addrs, port)
                .ok_or_else(|| anyhow::anyhow!("{host} has no address (or give --address IP)"))?;
            let target = Target {
                host: host.clone(),
                addr,
                alternates,
                service,
                xmpp_domain: (service == Service::Xmpp)
                    .then(|| domain.map_or_else(|| host.clone(), str::to_owned)),
                edge_domain: if service == Service::Http {
                    domain.map(str::to_owned)
                } else {
                    None
                },
                srv: None,
            };
            (None, vec![target])
        }
        None => {
            let domain = crate::core::hostport::domain_name(target)
                .map_err(|e| anyhow::anyhow!("probe {e}"))?;
            let discovery = dns.discover(&domain).await;
            let targets = plan(&discovery);
            (Some(discovery), targets)
        }
    })
}

/// Write probed connections to the capture (verdicts as comments) and/or key log.
pub fn write_flows(
    sink: Option<crate::sink::pcap::PcapSink>,
    keylog: Option<&std::path::Path>,
    report: &crate::core::analysis::Report,
    flows: &[Option<FlowLog>],
    nameserver: Option<std::net::IpAddr>,
) -> anyhow::Result<()> {
    match sink {
        Some(mut sink) => {
            // The DNS answers first, as a client sees them before connecting:
            // just before the earliest connection.
            let first = flows
                .iter()
                .flatten()
                .filter(|f| f.opened.is_some())
                .min_by_key(|f| f.opened);
            let dns = match (&report.dns, nameserver, first) {
                (Some(dns), Some(ns), Some(flow)) => Some(crate::sink::pcap::DnsAnswers {
                    discovery: &dns.discovery,
                    nameserver: ns,
                    client: flow
                        .client
                        .map(|c| c.ip())
                        .filter(|ip| ip.is_ipv4() == ns.is_ipv4())
                        .unwrap_or(if ns.is_ipv4() {
                            std::net::IpAddr::from([127, 0, 0, 1])
                        } else {
                            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
                        }),
                    at: flow.opened.unwrap_or(std::time::UNIX_EPOCH)
                        - std::time::Duration::from_millis(1),
                }),
                _ => None,
            };
            // Every connection at once, frames in time order (never going back).
            let commented: Vec<(&FlowLog, String)> = report
                .handshakes
                .iter()
                .zip(flows)
                .filter_map(|(h, flow)| {
                    flow.as_ref()
                        .map(|f| (f, crate::core::export::comment::verdict_comment(h)))
                })
                .collect();
            sink.write_flows(&commented, dns)?;
            sink.finish()
        }
        None => {
            let Some(path) = keylog else { return Ok(()) };
            let text: String = flows.iter().flatten().map(|f| f.keylog.as_str()).collect();
            use std::io::Write as _;
            crate::sink::open_append(path, "key log")?
                .write_all(text.as_bytes())
                .map_err(|e| anyhow::anyhow!("{}: cannot write the key log: {e}", path.display()))
        }
    }
}

/// Probe every target, at most `limit` at a time, results in target order.
pub async fn probe_all(
    targets: &[Target],
    timeouts: Timeouts,
    now: time::OffsetDateTime,
    limit: usize,
) -> Vec<Observation> {
    probe_all_recorded(targets, timeouts, now, limit, false)
        .await
        .0
        .into_iter()
        .map(|(o, _)| o)
        .collect()
}

/// Each finished endpoint's observation (and recording), in target order.
pub type ProbeResults = Vec<(Observation, Option<FlowLog>)>;

/// As [`probe_all`], with each connection's bytes and keys when `record`;
/// after Ctrl-C, what finished and how many were stopped (in words).
pub async fn probe_all_recorded(
    targets: &[Target],
    timeouts: Timeouts,
    now: time::OffsetDateTime,
    limit: usize,
    record: bool,
) -> (ProbeResults, Option<String>) {
    let gate = Arc::new(Semaphore::new(limit));
    let bar = progress(targets.len());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, target) in targets.iter().cloned().enumerate() {
        let gate = gate.clone();
        let bar = bar.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let obs = probe_recorded(&target, timeouts, now, record).await;
            if let Some(bar) = bar {
                bar.inc(1);
            }
            (i, obs)
        });
    }
    let mut results: Vec<Option<(Observation, Option<FlowLog>)>> =
        (0..targets.len()).map(|_| None).collect();
    // Ctrl-C stops the probes still running; what finished is still reported and
    // written, so an interrupted run leaves a complete capture.
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut interrupted = None;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok((i, obs))) => results[i] = Some(obs),
                Some(Err(_)) => {}
                None => break,
            },
            _ = &mut interrupt => {
                tasks.abort_all();
                let finished = results.iter().flatten().count();
                let why = format!(
                    "interrupted: {} of {} endpoint(s) were not probed",
                    targets.len() - finished,
                    targets.len()
                );
                eprintln!("edgetap: {why}; reporting the {finished} that finished");
                interrupted = Some(why);
                break;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    (results.into_iter().flatten().collect(), interrupted)
}

fn progress(n: usize) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal as _;
    if n < 4 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "probing {pos}/{len} endpoints {wide_bar} {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// The first address to connect to and the others to fall back on, in the
/// order a client tries them; `None` without any address.
fn addresses_to_try(
    addrs: &[std::net::IpAddr],
    port: u16,
) -> Option<(SocketAddr, Vec<SocketAddr>)> {
    let mut order = crate::core::hostport::connection_order(addrs)
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port));
    let first = order.next()?;
    Some((first, order.collect()))
}

/// The endpoints a client outside would reach, from discovery: HTTPS and XMPP
/// where [`Discovery::endpoints`] (the one SRV policy) sends them; internal
/// records that answer are probed as http too, so their certificates are judged.
/// Targets without an address are left out (discovery already reported them).
pub fn plan(d: &Discovery) -> Vec<Target> {
    let planned = [
        (Service::Http, d.endpoints(Service::Http)),
        (Service::Xmpp, d.endpoints(Service::Xmpp)),
        (Service::Http, d.targets_of(SrvKind::CiscoUds, None)),
        (Service::Http, d.targets_of(SrvKind::CupLogin, None)),
    ];
    let mut targets = Vec::new();
    for (service, endpoints) in planned {
        for e in endpoints {
            let Some((addr, alternates)) = addresses_to_try(&e.target.addresses, e.port) else {
                continue;
            };
            let host = e.target.record.target.clone();
            targets.push(Target {
                host: host.clone(),
                addr,
                alternates,
                service,
                xmpp_domain: (service == Service::Xmpp).then(|| d.domain.clone()),
                edge_domain: (e.lookup.kind == SrvKind::CollabEdge).then(|| d.domain.clone()),
                srv: Some(e.context()),
            });
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::discovery::{ResolvedTarget, SrvAnswer, SrvLookup, SrvRecord};

    fn found(kind: SrvKind, targets: &[(&str, u16, &str)]) -> SrvLookup {
        SrvLookup {
            kind,
            name: kind.owner("example.com"),
            answer: SrvAnswer::Found {
                targets: targets
                    .iter()
                    .map(|(t, port, ip)| ResolvedTarget {
                        record: SrvRecord {
                            priority: 10,
                            weight: 10,
                            port: *port,
                            target: (*t).into(),
                        },
                        addresses: vec![ip.parse().unwrap()],
                        error: None,
                        not_seen: false,
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn edge_gives_http_and_xmpp_on_5222_without_xmpp_srv() {
        let d = Discovery {
            domain: "example.com".into(),
            resolver: "t".into(),
            lookups: vec![found(
                SrvKind::CollabEdge,
                &[
                    ("expe1.example.com", 8443, "192.0.2.1"),
                    ("expe2.example.com", 8443, "192.0.2.2"),
                ],
            )],
        };
        let t = plan(&d);
        assert_eq!(t.len(), 4);
        assert_eq!((t[0].service, t[0].addr.port()), (Service::Http, 8443));
        assert_eq!(t[0].edge_domain.as_deref(), Some("example.com"));
        assert_eq!(t[0].srv.as_ref().unwrap().peers.len(), 2);
        assert_eq!((t[2].service, t[2].addr.port()), (Service::Xmpp, 5222));
        assert_eq!(t[2].xmpp_domain.as_deref(), Some("example.com"));
    }

    #[test]
    fn xmpp_srv_targets_win_over_the_edge() {
        let d = Discovery {
            domain: "example.com".into(),
            resolver: "t".into(),
            lookups: vec![
                found(
                    SrvKind::CollabEdge,
                    &[("expe.example.com", 8443, "192.0.2.1")],
                ),
                found(
                    SrvKind::XmppClient,
                    &[("cup.example.com", 5222, "192.0.2.9")],
                ),
            ],
        };
        let t = plan(&d);
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].host, "cup.example.com");
        assert_eq!(t[1].service, Service::Xmpp);
    }
}
