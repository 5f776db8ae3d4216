//! `edgetap demo`: a small deployment started in process on loopback (a DNS
//! authority with `_collab-edge` and `_xmpp-client` records, two Expressway-E
//! peers of which one lacks the edge-domain SAN and is still on TLS 1.2, an IM and Presence XMPP server
//! with STARTTLS), then discover + probe against it, exactly as `probe` does.
//! No network beyond loopback is touched.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::common::{FailOn, Format};
use crate::core::analysis::Engine;
use crate::core::analysis::engine::DnsReport;
use crate::core::analysis::rules::DetectorConfig;
use crate::core::x509::{StoreKind, TrustStore};
use crate::lab::deployment::Deployment;
use crate::lab::{Behaviour, DnsAuthority, Identity};
use crate::net::probe::Timeouts;
use crate::net::resolve::Dns;

/// Arguments of `edgetap demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit with status 1 when any profile's outcome is this bad or worse.
    #[arg(long, value_enum, value_name = "OUTCOME")]
    pub fail_on: Option<FailOn>,
    /// Write the demo's connections to this capture (pcapng, or pcap for *.pcap).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
    /// Append the TLS session keys in SSLKEYLOGFILE format.
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<std::path::PathBuf>,
    /// After the report, keep the deployment up until Ctrl-C (or SIGTERM), for
    /// other clients and for live `regress` cases.
    #[arg(long)]
    pub serve: bool,
    /// Serve the demo's DNS on this loopback port (UDP and TCP) instead of
    /// one the system picks, so that clients can be pointed at it.
    #[arg(long, value_name = "PORT")]
    pub dns_port: Option<u16>,
}

const DOMAIN: &str = "example.com";

/// Serve `fqdn` on `port` at loopback address `127.0.0.{last}`, or, when
/// that is taken (another `demo --serve`), at the next free one of
/// 127.0.0.{last + 10}, {last + 20}, ...: the port stays the one clients
/// expect, so the verdicts are the same wherever the demo runs;
/// `tls12_only` for a server not yet on TLS 1.3.
async fn serve_somewhere(
    lab: &mut Deployment,
    fqdn: &str,
    (last, port): (u8, u16),
    id: Identity,
    b: Behaviour,
    tls12_only: bool,
) -> anyhow::Result<SocketAddr> {
    let mut tried = Vec::new();
    for step in 0..20u8 {
        let wanted = SocketAddr::from((Ipv4Addr::new(127, 0, 0, last + 10 * step), port));
        match lab
            .serve_at(fqdn, wanted, Some(id.clone()), b.clone(), tls12_only)
            .await
        {
            Ok(addr) => return Ok(addr),
            Err(e) => tried.push(format!("{wanted}: {e}")),
        }
    }
    anyhow::bail!(
        "cannot serve {fqdn} on port {port} at any of 20 loopback addresses (is something else serving them? stop it first): {}",
        tried.join("; ")
    )
}

/// The demo deployment, up: two Expressway-E peers (expe2 lacks the edge
/// SAN and is still on TLS 1.2), IM and Presence with STARTTLS, and the DNS
/// authority for the zone.
struct Running {
    lab: Deployment,
    authority: DnsAuthority,
    servers: [SocketAddr; 3],
}

/// Start the demo deployment, with certificates valid around `now`.
async fn start(dns_port: Option<u16>, now: time::OffsetDateTime) -> anyhow::Result<Running> {
    let mut lab = Deployment::new("edgetap demo", DOMAIN, now)?;
    let cluster = "vcse.example.com";
    let (e1, e2, cup) = (lab.fqdn("expe1"), lab.fqdn("expe2"), lab.fqdn("cup"));
    let expe1 = lab.identity(
        cluster,
        &[cluster, &e1, "collab-edge.example.com", DOMAIN],
        None,
    )?;
    // The defect: expe2's certificate lacks collab-edge.example.com and example.com.
    let expe2 = lab.identity(cluster, &[cluster, &e2], None)?;
    let cup_id = lab.identity(&cup, &[&cup, DOMAIN], Some(DOMAIN))?;
    let https = Behaviour::Https;
    let a1 = serve_somewhere(&mut lab, &e1, (2, 8443), expe1, https.clone(), false).await?;
    // expe2 is an older peer still on TLS 1.2: its chain is in the clear.
    let a2 = serve_somewhere(&mut lab, &e2, (3, 8443), expe2, https, true).await?;
    let xmpp = lab.xmpp();
    let a3 = serve_somewhere(&mut lab, &cup, (4, 5222), cup_id, xmpp, false).await?;
    lab.srv("_collab-edge._tls", 10, &e1, a1.port());
    lab.srv("_collab-edge._tls", 10, &e2, a2.port());
    lab.srv("_xmpp-client._tcp", 0, &cup, a3.port());
    let dns_at = SocketAddr::from((IpAddr::V4(Ipv4Addr::LOCALHOST), dns_port.unwrap_or(0)));
    let authority = lab.start_dns(dns_at).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot serve the demo's DNS on {dns_at}: {e}; is another `edgetap demo --serve` using it? give another --dns-port"
        )
    })?;
    Ok(Running {
        lab,
        authority,
        servers: [a1, a2, a3],
    })
}

/// Run `demo`.
pub async fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    // The capture first: a bad path fails before any server starts.
    let sink = match &args.pcap {
        Some(p) => Some(crate::sink::pcap::PcapSink::create(
            p,
            args.keylog.as_deref(),
        )?),
        None => None,
    };
    let now = crate::clock::now();
    let demo = start(args.dns_port, now).await?;
    if args.format == Format::Text {
        let [a1, a2, a3] = demo.servers;
        crate::outln!(
            "edgetap demo: a deployment on loopback. DNS authority {} serves {DOMAIN}; Expressway-E peers expe1 ({a1}) and expe2 ({a2}, TLS 1.2 only), IM and Presence cup ({a3}). The demo root CA is trusted as a public root.\n",
            demo.authority.addr
        );
    }
    let dns = Dns::new(&[demo.authority.addr], Duration::from_secs(2))?;
    let discovery = dns.discover(DOMAIN).await;
    let targets = super::probe::plan(&discovery);
    let timeouts = Timeouts {
        connect: Duration::from_secs(3),
        starttls: Duration::from_secs(3),
        handshake: Duration::from_secs(5),
    };
    let record = args.pcap.is_some() || args.keylog.is_some();
    let (probed, interrupted) =
        super::probe::probe_all_recorded(&targets, timeouts, now, 8, record).await;
    let (observations, flows): (Vec<_>, Vec<_>) = probed.into_iter().unzip();
    let public = TrustStore::from_der_certs(vec![demo.lab.root.der()], StoreKind::Public)?;
    let engine = Engine::new(public, TrustStore::default(), DetectorConfig::default());
    let mut report = engine.evaluate(&observations, now);
    report.dns = Some(DnsReport::judge(discovery, true));
    if let Some(why) = interrupted {
        report.fell_short(why);
    }
    let written = super::probe::write_flows(
        sink,
        args.keylog.as_deref(),
        &report,
        &flows,
        dns.nameserver,
    )
    .and_then(|()| write_root_beside(args.pcap.as_deref(), &demo.lab));
    // The report is printed even when the capture could not be finished.
    let code = super::common::emit(&report, now, args.format, args.fail_on);
    if let (Ok(Some((pcap, roots))), Format::Text) = (&written, args.format) {
        crate::outln!(
            "\nreplay the capture with the same trust: edgetap replay {} --public-roots {}",
            pcap.display(),
            roots.display()
        );
    }
    if args.serve {
        eprintln!(
            "edgetap demo: serving {DOMAIN} (DNS on {}) until Ctrl-C",
            demo.authority.addr
        );
        wait_for_stop().await;
    }
    written.map(|_| code)
}

/// The demo root beside the capture, so that replay trusts it the way the
/// demo did and gives the same verdicts: the capture and root paths.
fn write_root_beside(
    pcap: Option<&std::path::Path>,
    lab: &Deployment,
) -> anyhow::Result<Option<(std::path::PathBuf, std::path::PathBuf)>> {
    let Some(p) = pcap else {
        return Ok(None);
    };
    let roots = p.with_extension("root.pem");
    std::fs::write(&roots, lab.root_pem())
        .map_err(|e| anyhow::anyhow!("{}: cannot write the demo root: {e}", roots.display()))?;
    Ok(Some((p.to_owned(), roots)))
}

/// Ctrl-C or SIGTERM.
async fn wait_for_stop() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
