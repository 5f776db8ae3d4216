//! Probe benchmark: 20 HTTPS endpoints and 4 XMPP endpoints on loopback behind an
//! in-process DNS authority. Measures, in one process, the baseline (bare
//! tokio-rustls handshakes to the same endpoints, no DNS, no analysis) and
//! edgetap's whole probe (SRV discovery, STARTTLS, handshakes, analysis), and
//! prints the ratio. Run: `cargo bench --bench probe`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgetap::core::analysis::Engine;
use edgetap::core::analysis::rules::DetectorConfig;
use edgetap::core::x509::{StoreKind, TrustStore};
use edgetap::lab::pki::Ca;
use edgetap::lab::{Behaviour, DnsAuthority, ZoneRecord, serve};
use edgetap::net::probe::Timeouts;
use edgetap::net::resolve::Dns;
use edgetap::net::tls::{RecordingVerifier, observing_client_config, provider};

const DOMAIN: &str = "example.com";
const EDGES: usize = 20;
const ROUNDS: usize = 5;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let root = Ca::root("Bench Root", now).expect("root");
    let issuing = root.intermediate("Bench Issuing CA", now).expect("issuing");
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let mut records = Vec::new();
    let mut https = Vec::new();
    for i in 0..EDGES {
        let host = format!("expe{i}.{DOMAIN}");
        let id = issuing
            .identity(
                &host,
                &[&host, "collab-edge.example.com"],
                None,
                &[issuing.der()],
                now,
            )
            .expect("identity");
        let addr = serve(any, Some(id), Behaviour::Https).await.expect("serve");
        records.push(ZoneRecord::Srv(
            format!("_collab-edge._tls.{DOMAIN}"),
            10,
            10,
            addr.port(),
            host.clone(),
        ));
        records.push(ZoneRecord::Addr(host.clone(), addr.ip()));
        https.push((host, addr));
    }
    for i in 0..4 {
        let host = format!("cup{i}.{DOMAIN}");
        let id = issuing
            .identity(&host, &[&host], Some(DOMAIN), &[issuing.der()], now)
            .expect("identity");
        let addr = serve(
            any,
            Some(id),
            Behaviour::Xmpp {
                domain: DOMAIN.into(),
                offer: true,
                required: true,
            },
        )
        .await
        .expect("serve");
        records.push(ZoneRecord::Srv(
            format!("_xmpp-client._tcp.{DOMAIN}"),
            10,
            10,
            addr.port(),
            host.clone(),
        ));
        records.push(ZoneRecord::Addr(host, addr.ip()));
    }
    let authority = DnsAuthority::start(any, DOMAIN, &records)
        .await
        .expect("dns");
    let engine = Engine::new(
        TrustStore::from_der_certs(vec![root.der()], StoreKind::Public).expect("root"),
        TrustStore::default(),
        DetectorConfig::default(),
    );

    let mut baseline = Vec::new();
    let mut full = Vec::new();
    for _ in 0..ROUNDS {
        // Baseline: the same 20 HTTPS handshakes, bare, 8 at a time.
        let t = Instant::now();
        let gate = Arc::new(tokio::sync::Semaphore::new(8));
        let mut set = tokio::task::JoinSet::new();
        for (host, addr) in https.clone() {
            let gate = gate.clone();
            set.spawn(async move {
                let _p = gate.acquire_owned().await;
                let verifier = RecordingVerifier::new(provider());
                let config = observing_client_config(verifier, &[]).expect("config");
                let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let name = rustls::pki_types::ServerName::try_from(host).expect("name");
                let _ = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, tcp)
                    .await;
            });
        }
        while set.join_next().await.is_some() {}
        baseline.push(t.elapsed());

        // edgetap: discover + probe (20 HTTPS + 4 XMPP STARTTLS) + analysis.
        let t = Instant::now();
        let dns = Dns::new(&[authority.addr], Duration::from_secs(2)).expect("resolver");
        let discovery = dns.discover(DOMAIN).await;
        let targets = edgetap::cmd::probe::plan(&discovery);
        let obs = edgetap::cmd::probe::probe_all(&targets, Timeouts::default(), now, 8).await;
        let report = engine.evaluate(&obs, now);
        assert_eq!(report.handshakes.len(), EDGES + 4);
        full.push(t.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (b, f) = (median(&mut baseline), median(&mut full));
    println!("probe benchmark, median of {ROUNDS} rounds, concurrency 8, 2 cores");
    println!(
        "  baseline: 20 bare TLS handshakes           {:>8.1} ms",
        b.as_secs_f64() * 1e3
    );
    println!(
        "  edgetap: DNS + 20 HTTPS + 4 XMPP + analysis {:>8.1} ms",
        f.as_secs_f64() * 1e3
    );
    println!(
        "  ratio edgetap / baseline                    {:>8.2}x (24 endpoints vs 20)",
        f.as_secs_f64() / b.as_secs_f64()
    );
}
