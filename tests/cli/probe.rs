//! `discover` and `probe` against real servers on loopback: an in-process
//! hickory-server authority, tokio-rustls servers presenting crafted chains,
//! `openssl s_server`, and prosody (Debian's XMPP server) for STARTTLS.

use crate::{finding_rules, free_port, key_pem, pem};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use edgetap::lab::deployment::Deployment;
use edgetap::lab::pki;
use edgetap::lab::{Behaviour, DnsAuthority, Identity, ZoneRecord};
use serde_json::Value;
use tokio::process::{Child, Command};

const DOMAIN: &str = "example.org";

struct Lab {
    dns: SocketAddr,
    _authority: DnsAuthority,
    root_pem: String,
    _children: Vec<Child>,
    _dir: tempfile::TempDir,
    prosody: bool,
}

async fn wait_for(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not start listening on port {port}");
}

async fn lab() -> Lab {
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Deployment::new("Lab", DOMAIN, now).unwrap();
    let edge_san = format!("collab-edge.{DOMAIN}");
    // An Expressway-E peer: served, and named in _collab-edge.
    async fn edge(lab: &mut Deployment, name: &str, id: Option<Identity>, b: Behaviour) {
        let fqdn = lab.fqdn(name);
        let addr = lab.serve(&fqdn, id, b, false).await.unwrap();
        lab.srv("_collab-edge._tls", 10, &fqdn, addr.port());
    }
    let good = lab.edge_identity(&lab.fqdn("good")).unwrap();
    edge(&mut lab, "good", Some(good), Behaviour::Https).await;
    let mut nointer = lab.edge_identity(&lab.fqdn("nointer")).unwrap();
    nointer.chain.truncate(1);
    edge(&mut lab, "nointer", Some(nointer), Behaviour::Https).await;
    let me = lab.fqdn("nosan");
    let nosan = lab.identity(&me, &[&me], None).unwrap();
    edge(&mut lab, "nosan", Some(nosan), Behaviour::Https).await;
    let me = lab.fqdn("selfsigned");
    let selfsigned = pki::self_signed(&me, &[&me, &edge_san], now).unwrap();
    edge(&mut lab, "selfsigned", Some(selfsigned), Behaviour::Https).await;
    let shared = pki::rsa_key().unwrap();
    for name in ["peer1", "peer2"] {
        let me = lab.fqdn(name);
        let (leaf, key) = lab
            .issuing
            .leaf(&me, &[&me, &edge_san], None, Some(&shared), now)
            .unwrap();
        let chain = vec![leaf, lab.issuing.der()];
        edge(
            &mut lab,
            name,
            Some(Identity { chain, key }),
            Behaviour::Https,
        )
        .await;
    }
    let gone = lab.fqdn("gone");
    lab.srv("_collab-edge._tls", 20, &gone, 8443);
    edge(&mut lab, "reset", None, Behaviour::ResetDuringHandshake).await;
    edge(&mut lab, "silent", None, Behaviour::Silent).await;

    // openssl s_server presenting an edge chain.
    let mut children = Vec::new();
    let ossl = lab.edge_identity(&lab.fqdn("openssl")).unwrap();
    std::fs::write(dir.path().join("ossl-cert.pem"), pem(&ossl.chain[0])).unwrap();
    std::fs::write(dir.path().join("ossl-chain.pem"), pem(&ossl.chain[1])).unwrap();
    std::fs::write(dir.path().join("ossl-key.pem"), key_pem(&ossl.key)).unwrap();
    let port = free_port();
    children.push(
        Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-www",
                "-accept",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("-cert")
            .arg(dir.path().join("ossl-cert.pem"))
            .arg("-key")
            .arg(dir.path().join("ossl-key.pem"))
            .arg("-cert_chain")
            .arg(dir.path().join("ossl-chain.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("openssl is installed (see .ci/run)"),
    );
    wait_for(port, "openssl s_server").await;
    let me = lab.fqdn("openssl");
    lab.record(ZoneRecord::Addr(me.clone(), Ipv4Addr::LOCALHOST.into()));
    lab.srv("_collab-edge._tls", 10, &me, port);

    // XMPP: lab servers with STARTTLS required, optional, absent.
    for (name, offer, required) in [
        ("xreq", true, true),
        ("xopt", true, false),
        ("xnone", false, false),
    ] {
        let me = lab.fqdn(name);
        let id = lab.cup_identity(&me).unwrap();
        let b = Behaviour::Xmpp {
            domain: DOMAIN.into(),
            offer,
            required,
        };
        let addr = lab.serve(&me, Some(id), b, false).await.unwrap();
        lab.srv("_xmpp-client._tcp", 10, &me, addr.port());
    }

    // prosody, the real XMPP server.
    let me = lab.fqdn("prosody");
    let id = lab.cup_identity(&me).unwrap();
    let prosody = match crate::prosody_with(dir.path(), DOMAIN, &id).await {
        Some((child, port)) => {
            children.push(child);
            lab.record(ZoneRecord::Addr(me.clone(), Ipv4Addr::LOCALHOST.into()));
            lab.srv("_xmpp-client._tcp", 10, &me, port);
            true
        }
        None => false,
    };

    let authority = lab
        .start_dns(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let root_pem = dir.path().join("root.pem");
    std::fs::write(&root_pem, lab.root_pem()).unwrap();
    Lab {
        dns: authority.addr,
        _authority: authority,
        root_pem: root_pem.display().to_string(),
        _children: children,
        _dir: dir,
        prosody,
    }
}

async fn edgetap(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), doc, stderr)
}

fn handshake<'a>(doc: &'a Value, host: &str) -> &'a Value {
    doc["handshakes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["endpoint"]["host"] == host)
        .unwrap_or_else(|| panic!("no handshake with {host}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_walks_dns_and_judges_every_endpoint() {
    let lab = lab().await;
    let ns = lab.dns.to_string();
    let started = Instant::now();
    let (code, doc, stderr) = edgetap(&[
        "probe",
        DOMAIN,
        "--nameserver",
        &ns,
        "--timeout",
        "1",
        "--public-roots",
        &lab.root_pem,
        "--format",
        "json",
    ])
    .await;
    let elapsed = started.elapsed();
    assert_eq!(code, 0, "{stderr}");
    eprintln!(
        "probe of {} endpoints took {elapsed:?}",
        doc["handshakes"].as_array().unwrap().len()
    );
    assert!(
        elapsed < Duration::from_secs(30),
        "a dead endpoint stalled the run: {elapsed:?}"
    );

    let host = |h: &str| format!("{h}.{DOMAIN}");
    let good = handshake(&doc, &host("good"));
    let fired = finding_rules(good);
    for bad in [
        "chain.missing-intermediate",
        "chain.self-signed",
        "identity.mismatch",
        "edge.domain-san-missing",
        "tls.handshake-failed",
    ] {
        assert!(
            !fired.contains(&bad.to_string()),
            "good edge: {bad} fired: {fired:?}"
        );
    }
    assert_eq!(good["paths"][0]["trusted"], true);
    assert_eq!(good["tls"]["sni"], host("good"));
    assert!(
        good["tls"]["version"]
            .as_str()
            .unwrap()
            .starts_with("TLSv1.")
    );

    assert!(
        finding_rules(handshake(&doc, &host("nointer")))
            .contains(&"chain.missing-intermediate".into())
    );
    assert!(
        finding_rules(handshake(&doc, &host("nosan"))).contains(&"edge.domain-san-missing".into())
    );
    assert!(
        !finding_rules(handshake(&doc, &host("nosan"))).contains(&"dns.target-not-in-cert".into())
    );
    assert!(
        finding_rules(handshake(&doc, &host("selfsigned"))).contains(&"chain.self-signed".into())
    );
    for p in ["peer1", "peer2"] {
        assert!(
            finding_rules(handshake(&doc, &host(p))).contains(&"edge.shared-key".into()),
            "{p}"
        );
    }
    assert!(!finding_rules(good).contains(&"edge.shared-key".into()));

    let reset = handshake(&doc, &host("reset"));
    assert!(finding_rules(reset).contains(&"tls.handshake-failed".into()));
    let why = reset["tls"]["failure"].as_str().unwrap();
    assert!(why.contains("reset") || why.contains("closed"), "{why}");
    // The step and the side: a reset mid-handshake is the server's doing.
    assert_eq!(reset["tls"]["failure_step"], "tls-handshake");
    assert_eq!(reset["tls"]["failure_by"], "server");
    let silent = handshake(&doc, &host("silent"));
    assert!(
        silent["tls"]["failure"]
            .as_str()
            .unwrap()
            .contains("did not finish within"),
        "{silent}"
    );
    assert_eq!(silent["tls"]["failure_step"], "tls-handshake");
    assert!(
        silent["tls"]["failure_by"].is_null(),
        "a timeout names no side"
    );

    let ossl = handshake(&doc, &host("openssl"));
    assert_eq!(
        ossl["paths"][0]["trusted"], true,
        "openssl s_server chain: {ossl}"
    );
    assert_eq!(ossl["chain"].as_array().unwrap().len(), 2);

    // XMPP: handshakes judged against the XMPP domain, STARTTLS features reported.
    let xreq = handshake(&doc, &host("xreq"));
    assert_eq!(xreq["service"], "xmpp");
    assert_eq!(xreq["reference_identity"], DOMAIN);
    assert_eq!(xreq["xmpp"]["required"], true);
    assert!(
        !finding_rules(xreq)
            .iter()
            .any(|r| r.starts_with("xmpp.") || r.starts_with("identity.")),
        "{:?}",
        finding_rules(xreq)
    );
    assert!(
        finding_rules(handshake(&doc, &host("xopt")))
            .contains(&"xmpp.starttls-not-required".into())
    );
    let xnone = handshake(&doc, &host("xnone"));
    assert!(finding_rules(xnone).contains(&"xmpp.starttls-not-offered".into()));
    assert!(xnone["chain"].as_array().unwrap().is_empty());
    if lab.prosody {
        let p = handshake(&doc, &host("prosody"));
        assert_eq!(p["xmpp"]["offered"], true, "{p}");
        assert_eq!(p["xmpp"]["required"], true);
        assert_eq!(
            p["paths"][0]["trusted"], true,
            "prosody sends leaf + intermediate: {p}"
        );
        assert!(p["tls"]["failure"].is_null(), "{p}");
    }

    // DNS: unresolvable target and non-8443 ports.
    let dns_rules = finding_rules(&doc["dns"]);
    assert!(
        dns_rules.iter().any(|r| r == "dns.target-unresolvable"),
        "{dns_rules:?}"
    );
    assert!(dns_rules.iter().any(|r| r == "dns.unexpected-port"));
    assert!(!dns_rules.iter().any(|r| r == "dns.collab-edge-missing"));
    let edge = &doc["dns"]["lookups"][0];
    assert_eq!(edge["status"], "found");
    assert_eq!(
        edge["targets"][0]["priority"], 10,
        "priority 10 before the priority-20 target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_reports_nxdomain_refused_and_timeouts_clearly() {
    let lab = lab().await;
    let ns = lab.dns.to_string();
    let (_, doc, _) = edgetap(&["discover", DOMAIN, "--nameserver", &ns, "--format", "json"]).await;
    let status = |i: usize| {
        doc["dns"]["lookups"][i]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status(0), "found");
    assert_eq!(status(1), "nx-domain", "_cisco-uds does not exist");
    assert!(
        doc["dns"]["lookups"][3]["targets"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
            >= 3
    );

    // A zone the authority does not serve: REFUSED, said as a server failure.
    let (code, doc, _) = edgetap(&[
        "discover",
        "elsewhere.test",
        "--nameserver",
        &ns,
        "--format",
        "json",
        "--fail-on",
        "fail",
    ])
    .await;
    assert_eq!(
        doc["dns"]["lookups"][0]["status"], "server-failure",
        "{doc}"
    );
    // REFUSED says nothing about the record: not judged, and the advice is
    // about the resolver, not the zone.
    assert_eq!(code, 0, "no answer is not a missing record: {doc}");
    assert_eq!(
        doc["dns"]["verdicts"]["jabber"]["outcome"], "unknown",
        "{doc}"
    );
    let rules: Vec<&str> = doc["dns"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert_eq!(rules, ["dns.lookup-failed"], "{doc}");

    // A nameserver that never answers: a timeout per lookup, bounded.
    let dead = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    let started = Instant::now();
    let (_, doc, _) = edgetap(&[
        "discover",
        DOMAIN,
        "--nameserver",
        &dead_addr,
        "--dns-timeout",
        "0.5",
        "--format",
        "json",
    ])
    .await;
    assert_eq!(doc["dns"]["lookups"][0]["status"], "timeout", "{doc}");
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_offline_and_finds_its_defect() {
    let (code, doc, stderr) = edgetap(&["demo", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let hs = doc["handshakes"].as_array().unwrap();
    assert_eq!(hs.len(), 3);
    let defect: Vec<&Value> = hs
        .iter()
        .filter(|h| finding_rules(h).contains(&"edge.domain-san-missing".to_string()))
        .collect();
    assert_eq!(defect.len(), 1, "exactly one edge lacks the domain SAN");
    assert_eq!(defect[0]["endpoint"]["host"], "expe2.example.com");
    assert_eq!(defect[0]["verdicts"]["tc-endpoint"]["outcome"], "fail");
}

/// A demo beside a running `demo --serve` keeps its ports (8443, 5222) on
/// other loopback addresses, so its verdicts are those of any demo (no
/// `dns.unexpected-port` of its own making); a second `demo --serve` on a
/// DNS port already taken names that port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_beside_a_serving_one_keeps_its_ports() {
    let port = free_port();
    let serving = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(["demo", "--serve", "--dns-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for(port, "demo --serve").await;
    let (code, doc, stderr) = edgetap(&["demo", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !doc.to_string().contains("dns.unexpected-port"),
        "verdicts of the demo's own making: {doc}"
    );
    for h in doc["handshakes"].as_array().unwrap() {
        let p = h["endpoint"]["port"].as_u64().unwrap();
        assert!(p == 8443 || p == 5222, "{h}");
    }
    let second = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(["demo", "--serve", "--dns-port", &port.to_string()])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("another --dns-port"),
        "{err}"
    );
    drop(serving);
}

/// A name with several addresses: the probe tries each in the order a client
/// does (families interleaved) until one answers, and says which one did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_tries_every_address_of_a_name() {
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let mut lab = Deployment::new("Dual", "example.com", now).unwrap();
    let dual = lab.fqdn("dual");
    let id = lab.identity(&dual, &[&dual], None).unwrap();
    // ::1 and 127.0.0.2 refuse on that port; 127.0.0.1 answers.
    lab.record(ZoneRecord::Addr(dual.clone(), "::1".parse().unwrap()));
    lab.record(ZoneRecord::Addr(dual.clone(), "127.0.0.2".parse().unwrap()));
    let live = lab.serve(&dual, Some(id), Behaviour::Https, false);
    let live = live.await.unwrap();
    let dns = lab.start_dns(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let dns = dns.await.unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(["probe", &format!("dual.example.com:{}", live.port())])
        .args([
            "--nameserver",
            &dns.addr.to_string(),
            "--timeout",
            "3",
            "--format",
            "json",
        ])
        .output()
        .await
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let h = &doc["handshakes"][0];
    assert!(h["tls"]["failure"].is_null(), "{h}");
    assert_eq!(
        h["endpoint"]["ip"], "127.0.0.1",
        "the address that answered"
    );
    assert_eq!(
        h["chain"].as_array().unwrap().len(),
        2,
        "leaf and intermediate"
    );
}
