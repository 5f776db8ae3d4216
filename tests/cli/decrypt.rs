//! TLS 1.3 off the wire: real servers (`openssl s_server` with a full edge
//! chain and with a leaf alone, prosody doing XMPP STARTTLS on a port that is
//! not 5222), real clients (`openssl s_client -keylogfile`), captured by
//! tshark on loopback. The capture is replayed with `--keylog`, again after
//! `editcap --inject-secrets` put the keys in a Decryption Secrets Block, and
//! with no keys; tshark reading the same file is the independent oracle for
//! the decrypted certificates, and `edgetap probe` of the same servers the
//! oracle for chains and verdicts. A real DNS authority (hickory, in-process,
//! on port 53 of 127.0.0.153) answers the client's SRV look-ups in the same
//! capture, and replay learns the edge domain from them as probe does.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use edgetap::lab::ZoneRecord;

use crate::{ProsodyAt, free_port, key_pem, lab_pki, pem, run, start_prosody_at, wait_listening};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// tshark capturing `filter` on loopback into `file`; returns once it captures.
fn capture(file: &Path, filter: &str) -> Kill {
    let mut child = Command::new("tshark")
        .args(["-i", "lo", "-q", "-f", filter, "-w"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark is installed (.ci/run installs it)");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 {
        if line.contains("Capturing on") {
            break;
        }
        line.clear();
    }
    // Keep draining stderr so tshark never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    // "Capturing on" comes a moment before dumpcap's filter is in place.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    Kill(child)
}

/// Stop a capture the way Ctrl-C does, so tshark writes everything out.
fn stop(mut tshark: Kill) {
    std::thread::sleep(std::time::Duration::from_millis(800));
    let _ = Command::new("kill")
        .args(["-INT", &tshark.0.id().to_string()])
        .status();
    let _ = tshark.0.wait();
}

/// One `openssl s_client` handshake (TLS 1.3), its keys appended to `keylog`.
fn s_client(port: u16, extra: &[&str], keylog: &Path) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-tls1_3",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .args(extra)
        .arg("-keylogfile")
        .arg(keylog)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("TLSv1.3"),
        "s_client to {port}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Per server port: the chain's SHA-256s and each profile's outcome.
fn judged(doc: &Value) -> BTreeMap<u64, (Vec<String>, Vec<String>)> {
    doc["handshakes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let chain = h["chain"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["sha256"].as_str().unwrap().to_owned())
                .collect();
            let verdicts = ["jabber", "ip-phone", "tc-endpoint", "expressway-c"]
                .iter()
                .map(|p| {
                    let v = &h["verdicts"][p];
                    format!("{p}={}", v["outcome"].as_str().unwrap())
                })
                .collect();
            (h["endpoint"]["port"].as_u64().unwrap(), (chain, verdicts))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tls13_captures_replay_like_probe_with_keys_from_a_file_or_the_capture() {
    let untested = "TLS 1.3 decryption against tshark";
    if !(crate::tool_present("tshark", untested) && crate::tool_present("editcap", untested)) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f);
    // Certificates valid around the real clock: s_client, probe and replay all
    // judge at it.
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let pki = lab_pki("Decrypt", "example.com", now);
    std::fs::write(d("root.pem"), pem(&pki.lab.root.der())).unwrap();
    std::fs::write(d("edge.pem"), pem(&pki.edge.chain[0])).unwrap();
    std::fs::write(d("edge.key"), key_pem(&pki.edge.key)).unwrap();
    std::fs::write(d("issuing.pem"), pem(&pki.lab.issuing.der())).unwrap();
    let (full, leaf_only, xmpp) = (free_port(), free_port(), free_port());
    let mut servers = Vec::new();
    for (port, chain) in [(full, true), (leaf_only, false)] {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(d("edge.pem"))
            .arg("-key")
            .arg(d("edge.key"));
        if chain {
            cmd.arg("-cert_chain").arg(d("issuing.pem"));
        }
        servers.push(Kill(
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("openssl is installed"),
        ));
        wait_listening(port);
    }
    let cup_chain: String = pki.cup.chain.iter().map(|c| pem(c)).collect();
    let prosody = start_prosody_at(
        dir.path(),
        "example.com",
        &cup_chain,
        &key_pem(&pki.cup.key),
        &ProsodyAt {
            netns: None,
            interface: "127.0.0.1".into(),
            port: xmpp,
        },
    )
    .await;

    // DNS on port 53, where replay looks for it: needs root (CI runs as root).
    let dns_at: std::net::SocketAddr = "127.0.0.153:53".parse().unwrap();
    let mut lab = pki.lab;
    let expe = lab.fqdn("expe");
    lab.srv("_collab-edge._tls", 10, &expe, full);
    lab.record(ZoneRecord::Addr(expe, [127, 0, 0, 1].into()));
    let dns = lab
        .start_dns(dns_at)
        .await
        .map_err(|e| {
            eprintln!("\n*** SKIPPING the DNS part: cannot serve DNS on {dns_at}: {e} ***\n")
        })
        .ok();

    let cap = d("tls13.pcapng");
    let keylog = d("keys.log");
    let tshark = capture(
        &cap,
        &format!(
            "tcp port {full} or tcp port {leaf_only} or tcp port {xmpp} or (host 127.0.0.153 and port 53)"
        ),
    );
    // The client's start-up: SRV look-ups first (edgetap discover as the DNS
    // client; the answers come from the authority).
    if dns.is_some() {
        let found = run(&["discover", "example.com", "--nameserver", "127.0.0.153:53"]);
        assert!(
            found.stdout.contains("expe.example.com"),
            "{}",
            found.stdout
        );
    }
    s_client(full, &["-servername", "expe.example.com"], &keylog);
    s_client(leaf_only, &["-servername", "expe.example.com"], &keylog);
    if prosody.is_some() {
        s_client(
            xmpp,
            &["-starttls", "xmpp", "-xmpphost", "example.com"],
            &keylog,
        );
    }
    stop(tshark);
    let handshakes = if prosody.is_some() { 3 } else { 2 };

    // What probe says about the same servers.
    let roots = d("root.pem");
    let roots = roots.to_str().unwrap();
    let mut probed = BTreeMap::new();
    for port in [full, leaf_only] {
        let p = run(&[
            "probe",
            &format!("expe.example.com:{port}"),
            "--address",
            "127.0.0.1",
            "--public-roots",
            roots,
            "--format",
            "json",
        ]);
        probed.extend(judged(&p.json()));
    }
    if prosody.is_some() {
        let p = run(&[
            "probe",
            &format!("127.0.0.1:{xmpp}"),
            "--service",
            "xmpp",
            "--domain",
            "example.com",
            "--public-roots",
            roots,
            "--format",
            "json",
        ]);
        probed.extend(judged(&p.json()));
    }
    assert_eq!(probed.len(), handshakes);
    // Found through DNS, the edge is judged for its domain: probe the domain.
    let by_domain = dns.as_ref().map(|_| {
        let p = run(&[
            "probe",
            "example.com",
            "--nameserver",
            "127.0.0.153:53",
            "--public-roots",
            roots,
            "--format",
            "json",
        ]);
        let doc = p.json();
        assert_eq!(doc["handshakes"][0]["edge_domain"], "example.com");
        // Its HTTPS handshake (it also tries XMPP on the edge host's 5222).
        probed.insert(u64::from(full), judged(&doc)[&u64::from(full)].clone());
        doc
    });
    // The leaf alone fails for phones: the comparison is not between ok's only.
    assert!(
        probed[&u64::from(leaf_only)]
            .1
            .contains(&"ip-phone=fail".to_owned())
    );

    // Replayed with the key log: the same chains and verdicts as probe.
    let cap_s = cap.to_str().unwrap();
    let with_file = run(&[
        "replay",
        cap_s,
        "--keylog",
        keylog.to_str().unwrap(),
        "--public-roots",
        roots,
        "--format",
        "json",
    ]);
    assert_eq!(with_file.code, 0, "{}", with_file.stderr);
    let doc = with_file.json();
    assert_eq!(judged(&doc), probed);
    for h in doc["handshakes"].as_array().unwrap() {
        assert_eq!(h["tls"]["version"], "TLSv1.3");
        assert!(
            h["tls"]["decryption"]
                .as_str()
                .unwrap()
                .starts_with("decrypted with the key from --keylog"),
            "{}",
            h["tls"]
        );
    }
    assert_eq!(doc["capture"][0]["decrypted"], handshakes);
    if let Some(probe) = &by_domain {
        // The context a live client had, learned from the captured answers.
        let edge = doc["handshakes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["endpoint"]["port"] == full)
            .unwrap();
        assert_eq!(
            edge["edge_domain"], "example.com",
            "{}\n{}",
            doc["capture"], doc["dns"]
        );
        assert_eq!(edge["srv"]["name"], "_collab-edge._tls.example.com");
        assert_eq!(edge["endpoint"]["host"], "expe.example.com");
        assert!(
            edge["origin"]["locator"]
                .as_str()
                .unwrap()
                .contains("from the capture's DNS answer"),
            "{}",
            edge["origin"]
        );
        // dns.* rules decided from the answers fire as in discover (the SRV
        // port is not 8443 here, so dns.unexpected-port does).
        let rules = |d: &Value| -> Vec<String> {
            d["dns"]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["rule"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(rules(&doc), rules(probe));
        assert!(rules(&doc).contains(&"dns.unexpected-port".to_owned()));
    }
    if prosody.is_some() {
        // XMPP on a port that is not 5222, judged as XMPP for the stream's domain.
        let x = doc["handshakes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["endpoint"]["port"] == xmpp)
            .unwrap();
        assert_eq!(x["service"], "xmpp");
        assert_eq!(x["reference_identity"], "example.com");
    }

    // The keys inside the capture (a Decryption Secrets Block), no --keylog.
    let dsb = d("tls13-dsb.pcapng");
    let status = Command::new("editcap")
        .args(["--inject-secrets"])
        .arg(format!("tls,{}", keylog.display()))
        .arg(&cap)
        .arg(&dsb)
        .status()
        .unwrap();
    assert!(status.success());
    let embedded = run(&[
        "replay",
        dsb.to_str().unwrap(),
        "--public-roots",
        roots,
        "--format",
        "json",
    ]);
    let doc = embedded.json();
    assert_eq!(judged(&doc), probed);
    assert!(
        doc["handshakes"][0]["tls"]["decryption"]
            .as_str()
            .unwrap()
            .contains("Decryption Secrets Block")
    );

    // tshark, reading the same file, decrypts the same certificates.
    let mut tshark_certs = crate::tshark_certificates(dsb.to_str().unwrap());
    let mut ours: Vec<String> = judged(&doc).into_values().flat_map(|(c, _)| c).collect();
    tshark_certs.sort();
    ours.sort();
    assert_eq!(tshark_certs, ours, "tshark's decryption of the same file");

    // No keys: the chain is not known, so no profile is ok, and --fail-on warn is reached.
    let blind = run(&["replay", cap_s, "--public-roots", roots, "--format", "json"]);
    let doc = blind.json();
    for h in doc["handshakes"].as_array().unwrap() {
        assert!(h["chain"].as_array().unwrap().is_empty());
        for p in ["jabber", "expressway-c"] {
            assert_eq!(h["verdicts"][p]["outcome"], "unknown", "{p}: {h}");
        }
        assert!(
            h["tls"]["decryption"]
                .as_str()
                .unwrap()
                .contains("no TLS keys were given")
        );
    }
    assert_eq!(run(&["replay", cap_s, "--fail-on", "warn"]).code, 1);
    assert_eq!(run(&["replay", cap_s, "--fail-on", "prompt"]).code, 0);
    let text = run(&["replay", cap_s]).stdout;
    assert!(text.contains("not judged"), "{text}");
    assert!(text.contains(&format!("TLS 1.3 handshakes: 0 of {handshakes} decrypted")));

    // A key log that is not one is refused before any work.
    std::fs::write(d("junk.log"), "hello\n").unwrap();
    let junk = run(&["replay", cap_s, "--keylog", d("junk.log").to_str().unwrap()]);
    assert_eq!(junk.code, 2);
    assert!(junk.stderr.contains("not a TLS key log"), "{}", junk.stderr);
    drop(servers);
}

/// A resumed TLS 1.2 session (`openssl s_client -sess_out`, then `-sess_in`:
/// "Reused, TLSv1.2") sends no chain. Replayed, it says it was resumed and
/// from which full handshake, and is judged with that handshake's chain,
/// never "cut off before the Certificate".
#[test]
fn a_resumed_tls12_session_is_judged_with_the_chain_of_its_full_handshake() {
    let untested = "TLS 1.2 session resumption in a capture";
    if !(crate::tool_present("tshark", untested) && crate::tool_present("openssl", untested)) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f);
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let pki = lab_pki("Resume", "example.com", now);
    std::fs::write(d("root.pem"), pem(&pki.lab.root.der())).unwrap();
    std::fs::write(d("edge.pem"), pem(&pki.edge.chain[0])).unwrap();
    std::fs::write(d("edge.key"), key_pem(&pki.edge.key)).unwrap();
    std::fs::write(d("issuing.pem"), pem(&pki.lab.issuing.der())).unwrap();
    let port = free_port();
    let _server = Kill(
        Command::new("openssl")
            .args([
                "s_server",
                "-tls1_2",
                "-www",
                "-accept",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("-cert")
            .arg(d("edge.pem"))
            .arg("-key")
            .arg(d("edge.key"))
            .arg("-cert_chain")
            .arg(d("issuing.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port);
    let cap = d("resumed.pcap");
    let tshark = capture(&cap, &format!("tcp port {port}"));
    let client = |session: &[&str]| {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-tls1_2",
                "-connect",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["-servername", "expe.example.com"])
            .args(session)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let sess = d("session.pem").display().to_string();
    let first = client(&["-sess_out", &sess]);
    assert!(first.contains("New, TLSv1.2"), "{first}");
    let again = client(&["-sess_in", &sess]);
    assert!(again.contains("Reused, TLSv1.2"), "{again}");
    stop(tshark);
    let root = d("root.pem").display().to_string();
    let r = run(&[
        "replay",
        &cap.display().to_string(),
        "--trust",
        &root,
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.json();
    let hs = doc["handshakes"].as_array().unwrap();
    assert_eq!(hs.len(), 2, "{doc}");
    let (full, resumed) = (&hs[0], &hs[1]);
    assert!(full["tls"]["resumed"].is_null(), "{full}");
    let frame = full["capture"]["frame"].as_u64().unwrap();
    assert_eq!(
        resumed["tls"]["resumed"],
        format!("resumed: the chain was sent in the full handshake at frame {frame}"),
        "{resumed}"
    );
    assert_eq!(crate::chain_sha256s(resumed), crate::chain_sha256s(full));
    assert_eq!(resumed["verdicts"], full["verdicts"]);
    assert_eq!(resumed["verdicts"]["jabber"]["outcome"], "ok", "{resumed}");
}
