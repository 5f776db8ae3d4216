//! `edgetap proxy` in passthrough mode with real, independent clients: curl over
//! HTTPS (TLS 1.2 and 1.3 upstreams) and `openssl s_client -starttls xmpp`
//! against prosody. The verdicts must match what `probe` says of the same
//! upstreams; faults end only their own connection; Ctrl-C leaves valid files.

use crate::{
    LabPki, chain_sha256s, curl, events, finding_rules, free_port, key_pem, lab_pki, pem, tshark,
    wait_child_listening,
};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};

use edgetap::lab::{Behaviour, serve_with};
use serde_json::Value;

const DOMAIN: &str = "example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_passthrough_proxy_matches_probe() {
    if !(crate::tool_present("curl", "curl_through_passthrough_proxy_matches_probe")
        && crate::tool_present("tshark", "curl_through_passthrough_proxy_matches_probe"))
    {
        return;
    }
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let LabPki {
        lab, edge: good, ..
    } = lab_pki("Proxy", DOMAIN, now);
    let host = lab.fqdn("expe");
    let mut leaf_only = lab.identity(&host, &[&host], None).unwrap();
    leaf_only.chain.truncate(1);
    let chain_pems =
        [&good, &leaf_only].map(|id| id.chain.iter().map(|c| pem(c)).collect::<String>());
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let up12 = serve_with(any, Some(good.clone()), Behaviour::Https, true)
        .await
        .unwrap();
    let up13 = serve_with(any, Some(good), Behaviour::Https, false)
        .await
        .unwrap();
    let up_bad = serve_with(any, Some(leaf_only), Behaviour::Https, true)
        .await
        .unwrap();
    let refused_guard = crate::refused_port();
    let refused = refused_guard.port;

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("root.pem");
    std::fs::write(&ca, lab.root_pem()).unwrap();
    let ev = dir.path().join("events.jsonl");
    let cap = dir.path().join("proxy.pcapng");
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let mut args: Vec<String> = vec!["proxy".into(), "--domain".into(), DOMAIN.into()];
    for (listen, upstream) in ports
        .iter()
        .zip([up12.port(), up13.port(), up_bad.port(), refused])
    {
        args.extend([
            "--listen".into(),
            format!("127.0.0.1:{listen}"),
            "--upstream".into(),
            format!("127.0.0.1:{upstream}"),
            "--service".into(),
            "http".into(),
        ]);
    }
    args.extend([
        "--public-roots".into(),
        ca.display().to_string(),
        "--events".into(),
        ev.display().to_string(),
        "--pcap".into(),
        cap.display().to_string(),
    ]);
    let mut proxy = std::process::Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for p in &ports {
        wait_child_listening(&mut proxy, *p);
    }

    let (c12, c13, cbad, cref) = tokio::task::spawn_blocking({
        let (ca, ports, host) = (ca.clone(), ports.clone(), host.clone());
        move || {
            (
                curl(ports[0], &host, &ca, &["--tls-max", "1.2"]),
                curl(ports[1], &host, &ca, &[]),
                curl(ports[2], &host, &ca, &[]),
                curl(ports[3], &host, &ca, &[]),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(c12, "200", "curl through the proxy to a TLS 1.2 server");
    assert_eq!(c13, "200", "curl through the proxy to a TLS 1.3 server");
    assert!(
        cbad.starts_with("000"),
        "curl itself rejects the leaf-only chain: {cbad}"
    );
    assert!(
        cref.starts_with("000"),
        "refused upstream: curl sees the connection end: {cref}"
    );
    // A later connection still works: faults ended only their own connections.
    let again = tokio::task::spawn_blocking({
        let (ca, port, host) = (ca.clone(), ports[0], host.clone());
        move || curl(port, &host, &ca, &[])
    })
    .await
    .unwrap();
    assert_eq!(again, "200");

    let stderr = tokio::task::spawn_blocking(move || crate::stop_proxy(proxy))
        .await
        .unwrap();
    assert!(stderr.contains("stopped after"), "{stderr}");

    let events = events(&ev);
    // One event per connection: 4 readiness checks (connect, close), 5 curls.
    assert_eq!(events.len(), 9, "one event per connection: {events:?}");
    assert_eq!(
        events.iter().filter(|e| !e["handshake"].is_null()).count(),
        4
    );
    let by_port = |p: u16| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["upstream"] == format!("127.0.0.1:{p}"))
            .collect()
    };
    let e12: Vec<&Value> = by_port(up12.port())
        .into_iter()
        .filter(|e| !e["handshake"].is_null())
        .collect();
    assert_eq!(e12.len(), 2);
    assert!(e12[0]["bytes_down"].as_u64().unwrap() > 1000);
    assert_eq!(e12[0]["handshake"]["tls"]["version"], "TLSv1.2");
    let e13 = by_port(up13.port())
        .into_iter()
        .find(|e| !e["handshake"].is_null())
        .unwrap();
    assert_eq!(
        e13["handshake"]["tls"]["chain_hidden"], true,
        "TLS 1.3: chain via a side probe"
    );
    assert!(
        e13["handshake"]["origin"]["locator"]
            .as_str()
            .unwrap()
            .contains("chain from a side connection"),
        "{}",
        e13["handshake"]["origin"]
    );
    assert!(
        e13["handshake"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "tls.certificate-not-visible")
    );
    let ebad = by_port(up_bad.port())
        .into_iter()
        .find(|e| !e["handshake"].is_null())
        .unwrap();
    let bad_rules = finding_rules(&ebad["handshake"]);
    assert!(
        bad_rules.iter().any(|r| r == "chain.missing-intermediate"),
        "{bad_rules:?}"
    );
    // curl refused the chain with an alert, and the proxy says so.
    let refusal = ebad["handshake"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "tls.handshake-failed")
        .unwrap_or_else(|| panic!("curl's refusal is a finding: {bad_rules:?}"));
    assert!(
        refusal["message"].as_str().unwrap_or("").contains("client"),
        "{refusal}"
    );
    let eref = &by_port(refused);
    assert!(eref.is_empty(), "never connected");
    let failed: Vec<&Value> = events.iter().filter(|e| e["upstream"].is_null()).collect();
    assert_eq!(
        failed.len(),
        2,
        "the readiness check and curl, both refused upstream"
    );
    assert!(
        failed[0]["close_reason"]
            .as_str()
            .unwrap()
            .contains("upstream unreachable"),
        "{}",
        failed[0]
    );

    // One chain, four sources, the same findings: the chain file (inspect),
    // a handshake of edgetap's own (probe), the relayed handshake (the event)
    // and the proxy's capture read back (replay). inspect sees no handshake
    // and probe's is another one, so they are compared without the tls.*
    // findings; the TLS 1.3 upstream's chain is not in the capture (no keys),
    // so replay is compared on the TLS 1.2 ones.
    // replay and inspect judge with the proxy's edge domain and roots.
    let judged = |args: &[&str]| -> Value {
        let flags = [
            "--edge-domain",
            DOMAIN,
            "--public-roots",
            ca.to_str().unwrap(),
        ];
        crate::run(&[args, &flags, &["--format", "json"]].concat()).json()
    };
    let replayed = judged(&["replay", cap.to_str().unwrap()]);
    let replayed_of = |leaf: &str| -> Option<Value> {
        replayed["handshakes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["chain"][0]["sha256"] == leaf)
            .cloned()
    };
    let sorted = |h: &Value, keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        let mut v: Vec<String> = finding_rules(h).into_iter().filter(|r| keep(r)).collect();
        v.sort();
        v
    };
    let all = |_: &str| true;
    let not_tls = |r: &str| !r.starts_with("tls.");
    for (event, port, file_pem) in [
        (e12[0], up12.port(), &chain_pems[0]),
        (e13, up13.port(), &chain_pems[0]),
        (ebad, up_bad.port(), &chain_pems[1]),
    ] {
        let proxied = &event["handshake"];
        let probed = crate::run(&[
            "probe",
            &format!("{host}:{port}"),
            "--address",
            "127.0.0.1",
            "--domain",
            DOMAIN,
            "--public-roots",
            ca.to_str().unwrap(),
            "--format",
            "json",
        ])
        .json();
        let ph = &probed["handshakes"][0];
        assert_eq!(chain_sha256s(proxied), chain_sha256s(ph), "port {port}");
        // probe's handshake is its own (its client accepts any chain, and a
        // TLS 1.3 chain is in plain sight to it): the chain's findings agree.
        assert_eq!(
            sorted(proxied, &not_tls),
            sorted(ph, &not_tls),
            "probe and proxy, port {port}"
        );
        if event != e13 {
            // The same bytes read back: everything agrees, curl's refusal of
            // the leaf-only chain (tls.handshake-failed) included.
            let leaf = chain_sha256s(proxied)[0].clone();
            let r = replayed_of(&leaf)
                .unwrap_or_else(|| panic!("replay has no handshake with {leaf}: {replayed}"));
            assert_eq!(
                sorted(&r, &all),
                sorted(proxied, &all),
                "replay and proxy, port {port}"
            );
            assert_eq!(r["verdicts"], proxied["verdicts"], "port {port}");
        }
        let file = dir.path().join(format!("chain-{port}.pem"));
        std::fs::write(&file, file_pem).unwrap();
        let inspected = judged(&["inspect", file.to_str().unwrap(), "--name", &host]);
        assert_eq!(
            sorted(&inspected["handshakes"][0], &not_tls),
            sorted(proxied, &not_tls),
            "inspect and proxy, port {port}"
        );
    }

    // The capture opens in tshark with one verdict comment per relayed handshake.
    let comments = tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "-Y",
        "frame.comment",
        "-T",
        "fields",
        "-e",
        "frame.comment",
    ]);
    assert_eq!(
        comments.lines().filter(|l| l.contains("jabber=")).count(),
        4,
        "{comments}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_starttls_xmpp_through_proxy_to_prosody() {
    if !crate::tool_present("openssl", "openssl_starttls_xmpp_through_proxy_to_prosody") {
        return;
    }
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let LabPki { lab, cup, .. } = lab_pki("XMPP Proxy", DOMAIN, now);
    let dir = tempfile::tempdir().unwrap();
    let chain_pem = format!("{}{}", pem(&cup.chain[0]), pem(&cup.chain[1]));
    let Some((_prosody, upstream)) =
        crate::start_prosody(dir.path(), DOMAIN, &chain_pem, &key_pem(&cup.key)).await
    else {
        return;
    };
    let ca = dir.path().join("root.pem");
    std::fs::write(&ca, lab.root_pem()).unwrap();
    let ev = dir.path().join("events.jsonl");
    let listen = free_port();
    let mut proxy = std::process::Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args([
            "proxy",
            "--listen",
            &format!("127.0.0.1:{listen}"),
            "--upstream",
            &format!("127.0.0.1:{upstream}"),
            "--service",
            "xmpp",
            "--domain",
            DOMAIN,
        ])
        .args([
            "--public-roots",
            &ca.display().to_string(),
            "--events",
            &ev.display().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_child_listening(&mut proxy, listen);
    let text = crate::s_client_xmpp(listen, DOMAIN, &ca).await;
    assert!(
        text.contains("Verify return code: 0 (ok)"),
        "openssl s_client through the proxy:\n{text}"
    );
    tokio::task::spawn_blocking(move || crate::stop_proxy(proxy))
        .await
        .unwrap();

    let events = events(&ev);
    let e = events
        .iter()
        .find(|e| !e["handshake"].is_null())
        .expect("a handshake event");
    let h = &e["handshake"];
    assert_eq!(h["service"], "xmpp");
    assert_eq!(
        h["reference_identity"], DOMAIN,
        "the XMPP domain from the client's stream header"
    );
    assert_eq!(h["verdicts"]["jabber"]["outcome"], "ok", "{h}");
    assert_eq!(h["verdicts"]["ip-phone"]["applicable"], false);
    // probe says the same of prosody.
    let out = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args([
            "probe",
            &format!("127.0.0.1:{upstream}"),
            "--service",
            "xmpp",
            "--domain",
            DOMAIN,
            "--format",
            "json",
            "--public-roots",
            &ca.display().to_string(),
        ])
        .output()
        .unwrap();
    let probed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(chain_sha256s(h), chain_sha256s(&probed["handshakes"][0]));
    assert_eq!(
        h["verdicts"]["jabber"]["outcome"],
        probed["handshakes"][0]["verdicts"]["jabber"]["outcome"]
    );
    // The STARTTLS offer, read passively from prosody's features, as probe saw it.
    assert_eq!(
        h["xmpp"],
        serde_json::json!({"offered": true, "required": true})
    );
    assert_eq!(h["xmpp"], probed["handshakes"][0]["xmpp"]);
}

/// Intercept mode with real clients: curl over HTTPS and openssl s_client with
/// XMPP STARTTLS accept the forged leaves once the diagnostic CA is trusted;
/// the verdict is on the real upstream chain; tshark decrypts both legs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intercept_mode_with_curl_and_openssl_starttls() {
    if !(crate::tool_present("curl", "intercept_mode_with_curl_and_openssl_starttls")
        && crate::tool_present("openssl", "intercept_mode_with_curl_and_openssl_starttls")
        && crate::tool_present("tshark", "intercept_mode_with_curl_and_openssl_starttls"))
    {
        return;
    }
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let LabPki { lab, edge, cup } = lab_pki("Intercept", DOMAIN, now);
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let init = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(["ca", "init", "--dir"])
        .arg(&ca_dir)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(String::from_utf8_lossy(&init.stdout).contains("do not trust it on a personal"));
    let again = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(["ca", "init", "--dir"])
        .arg(&ca_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "never overwrites a CA");
    let diag = ca_dir.join("edgetap-diagnostic-ca.pem");

    let host = format!("expe.{DOMAIN}");
    let https = serve_with(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        Some(edge),
        Behaviour::Https,
        false,
    )
    .await
    .unwrap();
    let prosody = crate::prosody_with(dir.path(), DOMAIN, &cup).await;

    let ca = dir.path().join("root.pem");
    std::fs::write(&ca, lab.root_pem()).unwrap();
    let ev = dir.path().join("events.jsonl");
    let cap = dir.path().join("intercept.pcapng");
    let (lh, lx) = (free_port(), free_port());
    let mut args = vec![
        "proxy".to_owned(),
        "--intercept".into(),
        "--ca".into(),
        ca_dir.display().to_string(),
        "--domain".into(),
        DOMAIN.into(),
        "--listen".into(),
        format!("127.0.0.1:{lh}"),
        "--upstream".into(),
        format!("127.0.0.1:{}", https.port()),
        "--service".into(),
        "http".into(),
    ];
    if let Some((_, port)) = &prosody {
        args.extend([
            "--listen".into(),
            format!("127.0.0.1:{lx}"),
            "--upstream".into(),
            format!("127.0.0.1:{port}"),
            "--service".into(),
            "xmpp".into(),
        ]);
    }
    args.extend([
        "--public-roots".into(),
        ca.display().to_string(),
        "--events".into(),
        ev.display().to_string(),
        "--pcap".into(),
        cap.display().to_string(),
    ]);
    let keys = dir.path().join("keys.log");
    args.extend(["--keylog".into(), keys.display().to_string()]);
    let mut proxy = std::process::Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_child_listening(&mut proxy, lh);

    let code = tokio::task::spawn_blocking({
        let (diag, host) = (diag.clone(), host.clone());
        move || curl(lh, &host, &diag, &[])
    })
    .await
    .unwrap();
    assert_eq!(
        code, "200",
        "curl trusts the diagnostic CA and gets through"
    );
    if prosody.is_some() {
        let text = tokio::task::spawn_blocking({
            let diag = diag.clone();
            move || {
                // Re-open the stream inside TLS as a client does; prosody answers.
                // -ign_eof keeps s_client reading; timeout ends it.
                let mut child = Command::new("timeout")
                    .args(["3", "openssl", "s_client", "-ign_eof", "-connect", &format!("127.0.0.1:{lx}"), "-starttls", "xmpp", "-xmpphost", DOMAIN, "-CAfile"])
                    .arg(&diag)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                let header = format!("<stream:stream to='{DOMAIN}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
                child.stdin.take().unwrap().write_all(header.as_bytes()).unwrap();
                let out = child.wait_with_output().unwrap();
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
        })
        .await
        .unwrap();
        assert!(
            text.contains("Verify return code: 0 (ok)"),
            "s_client through intercept:\n{text}"
        );
    }
    let stderr = tokio::task::spawn_blocking(move || crate::stop_proxy(proxy))
        .await
        .unwrap();
    assert!(stderr.contains("mode intercept"), "{stderr}");
    let keylog = std::fs::read_to_string(&keys).unwrap();
    assert!(
        keylog
            .lines()
            .filter(|l| l.starts_with("CLIENT_TRAFFIC_SECRET_0"))
            .count()
            >= 2,
        "keys of both legs: {keylog}"
    );

    let events = events(&ev);
    let handshakes: Vec<&Value> = events
        .iter()
        .filter_map(|e| (!e["handshake"].is_null()).then_some(&e["handshake"]))
        .collect();
    let http = handshakes
        .iter()
        .find(|h| h["service"] == "http")
        .expect("the HTTPS handshake");
    assert_eq!(
        http["chain"].as_array().unwrap().len(),
        2,
        "the real upstream chain, not the forged one"
    );
    assert!(
        http["chain"][0]["issuer"]
            .as_str()
            .unwrap()
            .contains("Intercept Issuing CA")
    );
    assert_eq!(http["verdicts"]["jabber"]["outcome"], "ok");
    assert_eq!(
        http["tls"]["chain_hidden"], false,
        "intercept sees the chain itself, even under TLS 1.3"
    );

    // Both legs are in the capture, decrypted with the embedded keys.
    let requests = tshark(&[
        "-r",
        cap.to_str().unwrap(),
        "-Y",
        "http.request",
        "-T",
        "fields",
        "-e",
        "tcp.stream",
    ]);
    let streams: std::collections::BTreeSet<String> = requests.lines().map(str::to_owned).collect();
    assert_eq!(
        streams.len(),
        2,
        "the decrypted GET on the client leg and on the upstream leg: {streams:?}"
    );
    // Replayed, the capture gives the upstream legs' chains (TLS 1.3 read
    // with the embedded keys) and leaves out the client legs, whose chain is
    // edgetap's forgery.
    let replayed = crate::run(&["replay", cap.to_str().unwrap(), "--format", "json"]).json();
    let leaves = |hs: Vec<&Value>| -> std::collections::BTreeSet<String> {
        hs.iter()
            .map(|h| {
                h["chain"][0]["sha256"]
                    .as_str()
                    .unwrap_or("none")
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        leaves(replayed["handshakes"].as_array().unwrap().iter().collect()),
        leaves(handshakes.clone()),
        "{}",
        replayed["capture"]
    );
    assert_eq!(replayed["capture"][0]["intercept_legs"], handshakes.len());
    if let Some((_child, port)) = prosody {
        let xmpp = handshakes
            .iter()
            .find(|h| h["service"] == "xmpp")
            .expect("the XMPP handshake");
        assert_eq!(xmpp["reference_identity"], DOMAIN);
        assert_eq!(xmpp["xmpp"]["required"], true);
        let decode = format!("tcp.port=={port},xmpp");
        let frames = tshark(&[
            "-r",
            cap.to_str().unwrap(),
            "-d",
            &decode,
            "-Y",
            "tls && xmpp",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ]);
        assert!(
            !frames.trim().is_empty(),
            "decrypted XMPP on the upstream leg"
        );
    }
}

/// Connections that overlap are captured as they pass, not each as a whole
/// when it closes: connection A's handshake, then all of B, then A's request
/// and close. The capture never goes back in time (tshark's frame deltas),
/// each verdict rides on its Certificate frame, and the file replays to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_connections_are_captured_in_time_order() {
    if !(crate::tool_present(
        "openssl",
        "overlapping_connections_are_captured_in_time_order",
    ) && crate::tool_present(
        "tshark",
        "overlapping_connections_are_captured_in_time_order",
    )) {
        return;
    }
    use std::io::{BufRead as _, Write as _};
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let LabPki { lab, edge, .. } = lab_pki("Overlap", DOMAIN, now);
    let host = format!("expe.{DOMAIN}");
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let up = serve_with(any, Some(edge), Behaviour::Https, true)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("root.pem");
    std::fs::write(&ca, lab.root_pem()).unwrap();
    let cap = dir.path().join("overlap.pcapng");
    let port = free_port();
    let mut proxy = crate::spawn_proxy(&[
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &format!("127.0.0.1:{}", up.port()),
        "--service",
        "http",
        "--public-roots",
        ca.to_str().unwrap(),
        "--pcap",
        cap.to_str().unwrap(),
    ]);
    wait_child_listening(&mut proxy, port);

    let (ca2, host2) = (ca.clone(), host.clone());
    tokio::task::spawn_blocking(move || {
        // A: a TLS 1.2 handshake, then the connection stays open.
        let mut a = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", &host2, "-tls1_2", "-CAfile"])
            .arg(&ca2)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl is installed");
        let mut out = std::io::BufReader::new(a.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 && !line.contains("Verify return code") {
            line.clear();
        }
        assert!(line.contains("Verify return code"), "A's handshake ended");
        // B: a whole connection while A is open.
        assert_eq!(curl(port, &host2, &ca2, &["--tls-max", "1.2"]), "200");
        // A goes on: a request, then end of input closes it.
        let mut stdin = a.stdin.take().unwrap();
        // One write (the lab server answers the first bytes it reads).
        let sent = stdin.write_all(format!("GET / HTTP/1.0\r\nHost: {host2}\r\n\r\n").as_bytes());
        drop(stdin);
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut rest);
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut a.stderr.take().unwrap(), &mut err);
        let status = a.wait().unwrap();
        assert!(
            sent.is_ok() && status.success(),
            "{sent:?} {status}: {rest} {err}"
        );
    })
    .await
    .unwrap();
    let stderr = tokio::task::spawn_blocking(move || crate::stop_proxy(proxy))
        .await
        .unwrap();
    assert!(stderr.contains("stopped after"), "{stderr}");

    let cap = cap.to_str().unwrap();
    assert!(crate::assert_time_order(cap) > 20);
    // The two connections interleave in the file: A, then B, then A again.
    let streams = tshark(&["-r", cap, "-T", "fields", "-e", "tcp.stream"]);
    let mut runs: Vec<&str> = streams.lines().collect();
    runs.dedup();
    assert!(runs.len() >= 3, "interleaved: {runs:?}");
    // Each verdict is on the frame holding its server's Certificate.
    let on_certificates = tshark(&[
        "-r",
        cap,
        "-Y",
        "frame.comment && tls.handshake.type == 11",
        "-T",
        "fields",
        "-e",
        "frame.comment",
    ]);
    assert_eq!(
        on_certificates
            .lines()
            .filter(|l| l.contains("jabber="))
            .count(),
        2,
        "{on_certificates}"
    );
    let replayed = crate::run(&["replay", cap, "--format", "json"]).json();
    assert_eq!(replayed["handshakes"].as_array().unwrap().len(), 2);
}
