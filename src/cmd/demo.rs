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
use crate::lab::pki::Ca;
use crate::lab::{Behaviour, DnsAuthority, Identity, ZoneRecord, serve_with};
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

/// Serve on `ip:port`, or on an ephemeral loopback port when that is taken;
/// `tls12_only` for a server not yet on TLS 1.3.
async fn serve_somewhere(
    ip: Ipv4Addr,
    port: u16,
    id: Identity,
    b: Behaviour,
    tls12_only: bool,
) -> anyhow::Result<SocketAddr> {
    match serve_with(
        SocketAddr::from((ip, port)),
        Some(id.clone()),
        b.clone(),
        tls12_only,
    )
    .await
    {
        Ok(addr) => Ok(addr),
        Err(_) => Ok(serve_with(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            Some(id),
            b,
            tls12_only,
        )
        .await?),
    }
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
    let root = Ca::root("edgetap demo Root CA", now)?;
    let issuing = root.intermediate("edgetap demo Issuing CA", now)?;
    let inter = vec![issuing.der()];

    let cluster = "vcse.example.com";
    let expe1 = issuing.identity(
        cluster,
        &[
            cluster,
            "expe1.example.com",
            "collab-edge.example.com",
            DOMAIN,
        ],
        None,
        &inter,
        now,
    )?;
    // The defect: expe2's certificate lacks collab-edge.example.com and example.com.
    let expe2 = issuing.identity(cluster, &[cluster, "expe2.example.com"], None, &inter, now)?;
    let cup = issuing.identity(
        "cup.example.com",
        &["cup.example.com", DOMAIN],
        Some(DOMAIN),
        &inter,
        now,
    )?;

    let a1 = serve_somewhere(
        Ipv4Addr::new(127, 0, 0, 2),
        8443,
        expe1,
        Behaviour::Https,
        false,
    )
    .await?;
    // expe2 is an older peer still on TLS 1.2: its chain is in the clear.
    let a2 = serve_somewhere(
        Ipv4Addr::new(127, 0, 0, 3),
        8443,
        expe2,
        Behaviour::Https,
        true,
    )
    .await?;
    let xmpp = Behaviour::Xmpp {
        domain: DOMAIN.into(),
        offer: true,
        required: true,
    };
    let a3 = serve_somewhere(Ipv4Addr::new(127, 0, 0, 4), 5222, cup, xmpp, false).await?;

    let records = vec![
        ZoneRecord::Srv(
            format!("_collab-edge._tls.{DOMAIN}"),
            10,
            10,
            a1.port(),
            "expe1.example.com".into(),
        ),
        ZoneRecord::Srv(
            format!("_collab-edge._tls.{DOMAIN}"),
            10,
            10,
            a2.port(),
            "expe2.example.com".into(),
        ),
        ZoneRecord::Srv(
            format!("_xmpp-client._tcp.{DOMAIN}"),
            0,
            0,
            a3.port(),
            "cup.example.com".into(),
        ),
        ZoneRecord::Addr("expe1.example.com".into(), a1.ip()),
        ZoneRecord::Addr("expe2.example.com".into(), a2.ip()),
        ZoneRecord::Addr("cup.example.com".into(), a3.ip()),
    ];
    let authority = DnsAuthority::start(
        SocketAddr::from((IpAddr::V4(Ipv4Addr::LOCALHOST), args.dns_port.unwrap_or(0))),
        DOMAIN,
        &records,
    )
    .await?;

    if args.format == Format::Text {
        crate::outln!(
            "edgetap demo: a deployment on loopback. DNS authority {} serves {DOMAIN}; Expressway-E peers expe1 ({a1}) and expe2 ({a2}, TLS 1.2 only), IM and Presence cup ({a3}). The demo root CA is trusted as a public root.\n",
            authority.addr
        );
    }
    let dns = Dns::new(&[authority.addr], Duration::from_secs(2))?;
    let discovery = dns.discover(DOMAIN).await;
    let targets = super::probe::plan(&discovery);
    let timeouts = Timeouts {
        connect: Duration::from_secs(3),
        starttls: Duration::from_secs(3),
        handshake: Duration::from_secs(5),
    };
    let record = args.pcap.is_some() || args.keylog.is_some();
    let probed = super::probe::probe_all_recorded(&targets, timeouts, now, 8, record).await;
    let (observations, flows): (Vec<_>, Vec<_>) = probed.into_iter().unzip();
    let public = TrustStore::from_der_certs(vec![root.der()], StoreKind::Public)?;
    let engine = Engine::new(public, TrustStore::default(), DetectorConfig::default());
    let mut report = engine.evaluate(&observations, now);
    report.dns = Some(DnsReport::judge(discovery, true));
    let written = super::probe::write_flows(
        sink,
        args.keylog.as_deref(),
        &report,
        &flows,
        dns.nameserver,
    )
    .and_then(|()| match &args.pcap {
        // The demo root beside the capture: replay trusts it the way
        // the demo did, and gives the same verdicts.
        Some(p) => {
            let roots = p.with_extension("root.pem");
            std::fs::write(&roots, crate::lab::pki::pem(&root.der())).map_err(|e| {
                anyhow::anyhow!("{}: cannot write the demo root: {e}", roots.display())
            })?;
            Ok(Some((p.clone(), roots)))
        }
        None => Ok(None),
    });
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
            authority.addr
        );
        wait_for_stop().await;
    }
    written.map(|_| code)
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
