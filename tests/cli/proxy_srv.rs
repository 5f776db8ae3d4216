//! SRV-derived placement with real clients: a hickory-server authority serves
//! `_collab-edge._tls` (a dead first target, then a live Expressway-E stand-in)
//! and `_xmpp-client._tcp` (prosody); edgetap, given only the domain and the
//! nameserver, relays curl and `openssl s_client -starttls xmpp` to the SRV
//! targets, failing over past the dead one, and judges each handshake as
//! `probe` judges the same domain; and a listener follows records that change
//! while it runs.

use crate::{
    LabPki, chain_sha256s as sha256s, curl, events, finding_rules, free_port, lab_pki,
    wait_child_listening,
};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};

use edgetap::lab::{Behaviour, ZoneRecord, serve_with};
use serde_json::Value;

const DOMAIN: &str = "example.com";

/// Rules of a handshake that do not depend on how it was reached.
fn chain_and_identity_rules(h: &Value) -> Vec<String> {
    let mut r: Vec<String> = finding_rules(h)
        .into_iter()
        .filter(|r| !r.starts_with("dns.") && !r.starts_with("tls.") && !r.starts_with("edge."))
        .collect();
    r.sort();
    r
}

/// `edgetap proxy --config CFG --public-roots ROOTS`, stderr kept.
fn start_proxy(cfg: &std::path::Path, roots: &std::path::Path) -> std::process::Child {
    let (cfg, roots) = (cfg.as_os_str(), roots.as_os_str());
    crate::spawn_proxy(&["--config".as_ref(), cfg, "--public-roots".as_ref(), roots])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_placement_with_curl_and_openssl_starttls() {
    if !(crate::tool_present("curl", "srv_placement_with_curl_and_openssl_starttls")
        && crate::tool_present("openssl", "srv_placement_with_curl_and_openssl_starttls"))
    {
        return;
    }
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let LabPki { mut lab, edge, cup } = lab_pki("SRV", DOMAIN, now);
    let (expe, dead_host, cup_host) = (lab.fqdn("expe"), lab.fqdn("dead"), lab.fqdn("cup"));
    let https = lab.serve(&expe, Some(edge), Behaviour::Https, true);
    let https = https.await.unwrap();
    let prosody = crate::prosody_with(dir.path(), DOMAIN, &cup).await;

    // Nothing listens: the first SRV target refuses.
    let dead_guard = crate::refused_port();
    let dead = dead_guard.port;
    let lo = std::net::IpAddr::from(Ipv4Addr::LOCALHOST);
    lab.srv("_collab-edge._tls", 10, &dead_host, dead);
    lab.record(ZoneRecord::Addr(dead_host.clone(), lo));
    lab.srv("_collab-edge._tls", 20, &expe, https.port());
    if let Some((_, port)) = &prosody {
        lab.srv("_xmpp-client._tcp", 10, &cup_host, *port);
        lab.record(ZoneRecord::Addr(cup_host.clone(), lo));
    }
    let authority = lab.start_dns(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let authority = authority.await.unwrap();

    let roots = dir.path().join("root.pem");
    std::fs::write(&roots, lab.root_pem()).unwrap();
    let ev = dir.path().join("events.jsonl");
    let (lh, lx) = (free_port(), free_port());
    let mut config = format!(
        "domain = {DOMAIN:?}\nnameservers = [\"{}\"]\nevents = {ev:?}\n\n[[listener]]\nlisten = \"127.0.0.1:{lh}\"\nsrv = true\nservice = \"http\"\n",
        authority.addr
    );
    if prosody.is_some() {
        config += &format!(
            "\n[[listener]]\nlisten = \"127.0.0.1:{lx}\"\nsrv = true\nservice = \"xmpp\"\n"
        );
    }
    let cfg = dir.path().join("srv.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut proxy = start_proxy(&cfg, &roots);
    wait_child_listening(&mut proxy, lh);

    let (curl, xmpp) = tokio::task::spawn_blocking({
        let (roots, expe, with_xmpp) = (roots.clone(), expe.clone(), prosody.is_some());
        move || {
            let curl = curl(lh, &expe, &roots, &[]);
            let xmpp = with_xmpp.then(|| {
                Command::new("openssl")
                    .args(["s_client", "-connect", &format!("127.0.0.1:{lx}")])
                    .args(["-starttls", "xmpp", "-xmpphost", DOMAIN, "-CAfile"])
                    .arg(&roots)
                    .stdin(Stdio::null())
                    .output()
                    .unwrap()
            });
            (curl, xmpp)
        }
    })
    .await
    .unwrap();
    assert_eq!(curl, "200", "curl through the SRV-placed listener");
    if let Some(x) = &xmpp {
        let text = String::from_utf8_lossy(&x.stdout);
        assert!(
            text.contains("Verify return code: 0"),
            "s_client -starttls xmpp through the SRV-placed listener:\n{text}"
        );
    }

    tokio::task::spawn_blocking(move || crate::stop_proxy(proxy))
        .await
        .unwrap();
    let events = events(&ev);
    let judged: Vec<&Value> = events
        .iter()
        .filter(|e| !e["handshake"].is_null())
        .collect();
    let http = judged
        .iter()
        .find(|e| e["service"] == "http")
        .unwrap_or_else(|| panic!("no http handshake: {events:?}"));
    assert_eq!(
        http["upstream"],
        format!("127.0.0.1:{}", https.port()),
        "failed over past the refused first target"
    );
    assert_eq!(http["upstream_host"], expe.as_str());

    // probe of the same domain, same nameserver, same roots.
    let probed = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(["probe", DOMAIN, "--nameserver", &authority.addr.to_string()])
        .args(["--format", "json", "--public-roots"])
        .arg(&roots)
        .output()
        .unwrap();
    let probed: Value = serde_json::from_slice(&probed.stdout).unwrap();
    let probe_of = |host: &str, service: &str| -> Value {
        probed["handshakes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["endpoint"]["host"] == host && h["service"] == service)
            .cloned()
            .unwrap_or_else(|| panic!("probe has no {service} handshake with {host}"))
    };
    let p = probe_of(&expe, "http");
    assert_eq!(sha256s(&http["handshake"]), sha256s(&p));
    assert_eq!(
        chain_and_identity_rules(&http["handshake"]),
        chain_and_identity_rules(&p)
    );
    assert_eq!(
        http["handshake"]["verdicts"], p["verdicts"],
        "same verdicts as probe for {expe}"
    );

    if prosody.is_some() {
        let x = judged
            .iter()
            .find(|e| e["service"] == "xmpp")
            .unwrap_or_else(|| panic!("no xmpp handshake: {events:?}"));
        assert_eq!(x["upstream_host"], format!("cup.{DOMAIN}"));
        assert_eq!(x["handshake"]["reference_identity"], DOMAIN);
        let p = probe_of(&format!("cup.{DOMAIN}"), "xmpp");
        assert_eq!(sha256s(&x["handshake"]), sha256s(&p));
        assert_eq!(
            chain_and_identity_rules(&x["handshake"]),
            chain_and_identity_rules(&p)
        );
    }
}

/// An SRV-derived listener follows the records while it runs: it starts with
/// only a dead target (connections fail, each an event), the zone gains a live
/// one, and within the refresh period curl gets through to it; then the
/// nameserver goes away and relaying goes on to the addresses last resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_listener_follows_changed_records() {
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let LabPki { mut lab, edge, .. } = lab_pki("Refresh", DOMAIN, now);
    let expe = lab.fqdn("expe");
    // Served, but in no record yet: the zone gains it below.
    let https = serve_with(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        Some(edge),
        Behaviour::Https,
        true,
    )
    .await
    .unwrap();
    let lo = std::net::IpAddr::from(Ipv4Addr::LOCALHOST);
    let dead = crate::refused_port();
    let dead_host = lab.fqdn("dead");
    lab.srv("_collab-edge._tls", 10, &dead_host, dead.port);
    lab.record(ZoneRecord::Addr(dead_host, lo));
    let authority = lab.start_dns(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let authority = authority.await.unwrap();
    let roots = dir.path().join("root.pem");
    std::fs::write(&roots, lab.root_pem()).unwrap();
    let ev = dir.path().join("events.jsonl");
    let port = free_port();
    let cfg = dir.path().join("srv.toml");
    std::fs::write(
        &cfg,
        format!(
            "domain = {DOMAIN:?}\nnameservers = [\"{}\"]\nsrv_refresh_secs = 1\nevents = {ev:?}\n\n[[listener]]\nlisten = \"127.0.0.1:{port}\"\nsrv = true\n",
            authority.addr
        ),
    )
    .unwrap();
    let mut proxy = start_proxy(&cfg, &roots);
    wait_child_listening(&mut proxy, port);
    let curl = {
        let (roots, expe) = (roots.clone(), expe.clone());
        move || curl(port, &expe, &roots, &[])
    };
    let before = tokio::task::spawn_blocking(curl.clone()).await.unwrap();
    assert!(
        before.starts_with("000"),
        "only a dead target yet: {before}"
    );

    authority
        .add(&ZoneRecord::Srv(
            format!("_collab-edge._tls.{DOMAIN}"),
            20,
            10,
            https.port(),
            expe.clone(),
        ))
        .await
        .unwrap();
    authority
        .add(&ZoneRecord::Addr(expe.clone(), lo))
        .await
        .unwrap();
    let mut after = String::new();
    for _ in 0..40 {
        after = tokio::task::spawn_blocking(curl.clone()).await.unwrap();
        if after == "200" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(after, "200", "the new SRV target is used without a restart");

    // DNS fails mid-run: the nameserver goes away (records have a 1 s TTL, the
    // refresh runs every second). The listener keeps its upstreams and the
    // addresses they last resolved to, and says so once.
    drop(authority);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let without_dns = tokio::task::spawn_blocking(curl.clone()).await.unwrap();
    assert_eq!(
        without_dns, "200",
        "relaying goes on when DNS stops answering"
    );
    let again = tokio::task::spawn_blocking(curl.clone()).await.unwrap();
    assert_eq!(again, "200");

    let err = tokio::task::spawn_blocking(move || crate::stop_proxy(proxy))
        .await
        .unwrap();
    let said = |needle: &str| err.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("relaying to the addresses it last gave")
                && l.contains(&format!("\"{expe}\"")))
            .count(),
        1,
        "said once per host: {err}"
    );
    assert_eq!(
        said("SRV look-up failed"),
        1,
        "a failing refresh is said once, not every period: {err}"
    );
    let events = events(&ev);
    assert!(
        events.iter().any(|e| e["close_reason"]
            .as_str()
            .unwrap_or("")
            .contains("upstream unreachable")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["upstream"] == format!("127.0.0.1:{}", https.port())
                && !e["handshake"].is_null()),
        "{events:?}"
    );
}
