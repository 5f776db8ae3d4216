//! Round trip of the capture exporter: `probe --pcap` against real servers, then
//! the file is read by tshark (certificates decoded, verdict comments visible,
//! XMPP decrypted with the embedded secrets) and by `edgetap replay` (the same
//! chains come back).

use crate::tshark;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

use edgetap::lab::Behaviour;
use edgetap::lab::deployment::Deployment;
use serde_json::Value;

const DOMAIN: &str = "example.net";

/// A free loopback port, for the lab's DNS.
fn any() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn edgetap(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn chains(doc: &Value) -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = doc["handshakes"]
        .as_array()
        .unwrap()
        .iter()
        .map(crate::chain_sha256s)
        .filter(|c: &Vec<String>| !c.is_empty())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_capture_opens_in_tshark_and_replays_to_the_same_chains() {
    if !crate::tool_present(
        "tshark",
        "probe_capture_opens_in_tshark_and_replays_to_the_same_chains",
    ) {
        return;
    }
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let mut lab = Deployment::new("Export", DOMAIN, now).unwrap();
    let (expe, cup, cup13) = (lab.fqdn("expe"), lab.fqdn("cup"), lab.fqdn("cup13"));
    let edge = lab.edge_identity(&expe).unwrap();
    let cup_id = lab.cup_identity(&cup).unwrap();
    let xmpp = lab.xmpp();
    let https = lab.serve(&expe, Some(edge), Behaviour::Https, true);
    let https = https.await.unwrap();
    let xmpp12 = lab.serve(&cup, Some(cup_id.clone()), xmpp.clone(), true);
    let xmpp12 = xmpp12.await.unwrap();
    let xmpp13 = lab.serve(&cup13, Some(cup_id), xmpp, false).await.unwrap();
    lab.srv("_collab-edge._tls", 10, &expe, https.port());
    lab.srv("_xmpp-client._tcp", 10, &cup, xmpp12.port());
    lab.srv("_xmpp-client._tcp", 20, &cup13, xmpp13.port());
    let dns = lab.start_dns(any()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ng = dir.path().join("probe.pcapng").display().to_string();
    let classic = dir.path().join("probe.pcap").display().to_string();
    let keys = dir.path().join("keys.txt").display().to_string();
    let ns = dns.addr.to_string();

    let probe = tokio::task::spawn_blocking({
        let (ng, keys, ns) = (ng.clone(), keys.clone(), ns.clone());
        move || {
            edgetap(&[
                "probe",
                DOMAIN,
                "--nameserver",
                &ns,
                "--pcap",
                &ng,
                "--keylog",
                &keys,
                "--format",
                "json",
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(probe["handshakes"].as_array().unwrap().len(), 3);

    // tshark: one verdict comment per connection.
    let comments = tshark(&[
        "-r",
        &ng,
        "-Y",
        "tcp && frame.comment",
        "-T",
        "fields",
        "-e",
        "frame.comment",
    ]);
    assert_eq!(comments.lines().count(), 3, "{comments}");
    // And the DNS answers the handshakes were found through, as tshark reads them.
    let srv = tshark(&[
        "-r",
        &ng,
        "-Y",
        "dns.srv.target",
        "-T",
        "fields",
        "-e",
        "dns.srv.target",
    ]);
    assert!(srv.contains(&format!("expe.{DOMAIN}")), "{srv}");
    assert!(
        comments
            .lines()
            .all(|l| l.starts_with("edgetap: ") && l.contains("jabber=")),
        "{comments}"
    );

    // Three connections probed at once, written together: time never goes back
    // from one frame to the next, as tshark computes it.
    assert!(crate::assert_time_order(&ng) > 20);

    // tshark decodes the certificates; with the embedded secrets, the TLS 1.3 ones too.
    let seen = crate::tshark_certificates(&ng);
    for chain in chains(&probe) {
        for sha in chain {
            assert!(
                seen.contains(&sha),
                "tshark did not decode certificate {sha}; it saw {seen:?}"
            );
        }
    }

    // Decrypted XMPP: the stream re-opened inside TLS is visible as XMPP in TLS.
    let ports = format!("tcp.port=={},xmpp", xmpp13.port());
    let inside = tshark(&[
        "-r",
        &ng,
        "-d",
        &ports,
        "-Y",
        "tls && xmpp",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]);
    assert!(
        !inside.trim().is_empty(),
        "no decrypted XMPP in the TLS 1.3 session"
    );
    let keylog = std::fs::read_to_string(&keys).unwrap();
    assert!(
        keylog.contains("CLIENT_HANDSHAKE_TRAFFIC_SECRET") && keylog.contains("CLIENT_RANDOM"),
        "{keylog}"
    );

    // edgetap replay reads its own capture back: every chain (TLS 1.3 too,
    // with the keys the capture carries), the same verdicts and the same
    // context (the DNS answers are in the file).
    let replayed = edgetap(&[
        "replay",
        &ng,
        "--service-map",
        &format!("{}=xmpp", xmpp12.port()),
        "--service-map",
        &format!("{}=xmpp", xmpp13.port()),
        "--format",
        "json",
    ]);
    assert!(
        replayed["capture"][0]["damaged"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{}",
        replayed["capture"]
    );
    let judged = |doc: &Value| -> Vec<String> {
        let mut v: Vec<String> = doc["handshakes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| !h["chain"].as_array().unwrap().is_empty())
            .map(|h| {
                let verdicts: Vec<String> = h["verdicts"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(p, v)| format!("{p}={}", v["outcome"].as_str().unwrap()))
                    .collect();
                format!(
                    "{} {} {:?} edge={} {:?}",
                    h["endpoint"]["host"],
                    h["endpoint"]["port"],
                    crate::chain_sha256s(h),
                    h["edge_domain"],
                    verdicts
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(judged(&replayed), judged(&probe));
    assert_eq!(
        replayed["capture"][0]["decrypted"], 1,
        "{}",
        replayed["capture"]
    );
    let xmpp_back = replayed["handshakes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["service"] == "xmpp" && !h["chain"].as_array().unwrap().is_empty())
        .unwrap();
    assert_eq!(
        xmpp_back["reference_identity"], DOMAIN,
        "the XMPP domain comes from the stream header"
    );
    // Version and cipher read the same from the capture as from the live
    // handshake, TLS 1.3 included: IANA names, never a library's spelling.
    let tls_facts = |doc: &Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = doc["handshakes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["tls"]["version"].as_str().unwrap_or("").to_owned(),
                    h["tls"]["cipher"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(tls_facts(&probe), tls_facts(&replayed));
    assert!(
        tls_facts(&probe).contains(&("TLSv1.3".into(), "TLS_AES_256_GCM_SHA384".into())),
        "{:?}",
        tls_facts(&probe)
    );

    // Classic pcap: frames only, still read by tshark and replay.
    let probe2 = tokio::task::spawn_blocking({
        let (classic, ns) = (classic.clone(), ns.clone());
        move || {
            edgetap(&[
                "probe",
                DOMAIN,
                "--nameserver",
                &ns,
                "--pcap",
                &classic,
                "--format",
                "json",
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(probe2["handshakes"].as_array().unwrap().len(), 3);
    let frames = tshark(&["-r", &classic, "-T", "fields", "-e", "frame.number"]);
    assert!(frames.lines().count() > 20);
    let blind = edgetap(&["replay", &classic, "--format", "json"]);
    assert!(chains(&blind).len() >= 2);
    // A classic pcap carries no keys: the TLS 1.3 chain stays unseen, and
    // never "ok": every profile of that handshake is "unknown", with the reason.
    let tls13 = blind["handshakes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["tls"]["chain_hidden"] == true)
        .expect("the TLS 1.3 session shows no certificate in the clear");
    for (profile, v) in tls13["verdicts"].as_object().unwrap() {
        if v["applicable"] == true {
            assert_eq!(v["outcome"], "unknown", "{profile}: {v}");
            assert!(
                v["not_judged"].as_str().unwrap().contains("TLS 1.3"),
                "{profile}: {v}"
            );
        }
    }
}

/// Ctrl-C during a probe: the finished connections are reported and written,
/// and the capture is valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_probe_leaves_a_valid_capture() {
    if !crate::tool_present("tshark", "interrupted_probe_leaves_a_valid_capture") {
        return;
    }
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let mut lab = Deployment::new("Interrupt", DOMAIN, now).unwrap();
    let (expe, silent) = (lab.fqdn("expe"), lab.fqdn("silent"));
    let id = lab.edge_identity(&expe).unwrap();
    let good = lab.serve(&expe, Some(id), Behaviour::Https, true);
    let good = good.await.unwrap();
    let quiet = lab.serve(&silent, None, Behaviour::Silent, false);
    let quiet = quiet.await.unwrap();
    lab.srv("_collab-edge._tls", 10, &expe, good.port());
    lab.srv("_collab-edge._tls", 10, &silent, quiet.port());
    let dns = lab.start_dns(any()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("interrupted.pcapng").display().to_string();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args([
            "probe",
            DOMAIN,
            "--nameserver",
            &dns.addr.to_string(),
            "--timeout",
            "60",
            "--pcap",
            &pcap,
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("edgetap stops after Ctrl-C")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    // Stopped, not finished: exit 130 (128 + SIGINT), and the run says
    // what it did not examine (its worst is at least unknown: here the
    // refused XMPP ports already fail).
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["not_examined"], "interrupted: 1 of 4 endpoint(s) were not probed",
        "{doc}"
    );
    assert_eq!(doc["worst"], "fail");
    let hs = doc["handshakes"].as_array().unwrap();
    // Finished: expe on its SRV port, and both hosts on 5222 (refused at once);
    // the silent server's HTTPS probe was still waiting and was stopped.
    assert!(
        hs.iter()
            .any(|h| h["endpoint"]["host"] == format!("expe.{DOMAIN}") && h["service"] == "http")
    );
    assert!(
        !hs.iter()
            .any(|h| h["endpoint"]["host"] == format!("silent.{DOMAIN}") && h["service"] == "http"),
        "{hs:?}"
    );
    let comments = tshark(&[
        "-r",
        &pcap,
        "-Y",
        "tcp && frame.comment",
        "-T",
        "fields",
        "-e",
        "frame.comment",
    ]);
    assert_eq!(comments.lines().count(), 1, "{comments}");
}

/// Every capture shipped in captures/ (made by captures/refresh.sh with edgetap
/// demo and edgetap proxy) is read by tshark without complaint, its timestamps
/// never go back (intercept mode's two legs are merged in time order), and
/// tshark finds a certificate in each but the TLS 1.3 passthrough one, whose
/// chain is encrypted and whose keys a passthrough proxy never has.
#[test]
fn shipped_captures_open_in_tshark_in_time_order() {
    if !crate::tool_present("tshark", "shipped_captures_open_in_tshark_in_time_order") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut files: Vec<_> = ["demo", "proxy"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcapng"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}");
    for f in &files {
        let path = f.to_str().unwrap();
        crate::assert_time_order(path);
        let certs = crate::tshark_certificates(path);
        let encrypted = path.ends_with("tls13-passthrough-no-keys.pcapng");
        assert_eq!(
            certs.is_empty(),
            encrypted,
            "{path}: certificates {certs:?}"
        );
    }
}
