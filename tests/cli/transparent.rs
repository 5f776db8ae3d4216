//! Transparent placement in network namespaces this test creates: client ns ->
//! edgetap ns (the gateway, with the README's iptables and ip6tables REDIRECT
//! of 8443, 5222 and 5061 to one dual-stack edgetap listener) -> server ns
//! running `openssl s_server` (IPv4 and IPv6) and prosody. curl over both
//! families and `openssl s_client -starttls xmpp` in the client ns reach the
//! servers through edgetap, which finds each original destination with
//! SO_ORIGINAL_DST and the service from its original port.

use crate::{key_pem, pem};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

struct Netns {
    names: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip`'s arguments to run `args` in namespace `ns`.
fn in_ns<'a>(ns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["netns", "exec", ns];
    v.extend_from_slice(args);
    v
}

/// Run `args` in namespace `ns`.
fn sh_ns(ns: &str, args: &[&str]) -> Result<(), String> {
    sh(&[&["ip"][..], &in_ns(ns, args)].concat())
}

fn setup(id: &str) -> Result<Netns, String> {
    let (c, e, s) = (format!("etc{id}"), format!("ete{id}"), format!("ets{id}"));
    let mut ns = Netns {
        names: Vec::new(),
        children: Vec::new(),
    };
    for n in [&c, &e, &s] {
        sh(&["ip", "netns", "add", n])?;
        ns.names.push(n.clone());
        sh(&["ip", "-n", n, "link", "set", "lo", "up"])?;
    }
    let (vc, vec_, vs, ves) = (
        format!("vc{id}"),
        format!("vec{id}"),
        format!("vs{id}"),
        format!("ves{id}"),
    );
    sh(&[
        "ip", "link", "add", &vc, "netns", &c, "type", "veth", "peer", "name", &vec_, "netns", &e,
    ])?;
    sh(&[
        "ip", "link", "add", &vs, "netns", &s, "type", "veth", "peer", "name", &ves, "netns", &e,
    ])?;
    for (n, dev, v4, v6) in [
        (&c, &vc, "10.77.1.2/24", "fd77:1::2/64"),
        (&e, &vec_, "10.77.1.1/24", "fd77:1::1/64"),
        (&e, &ves, "10.77.2.1/24", "fd77:2::1/64"),
        (&s, &vs, "10.77.2.2/24", "fd77:2::2/64"),
    ] {
        sh(&["ip", "-n", n, "addr", "add", v4, "dev", dev])?;
        sh(&["ip", "-n", n, "-6", "addr", "add", v6, "dev", dev, "nodad"])?;
        sh(&["ip", "-n", n, "link", "set", dev, "up"])?;
    }
    for (n, v4, v6) in [
        (&c, "10.77.1.1", "fd77:1::1"),
        (&s, "10.77.2.1", "fd77:2::1"),
    ] {
        sh(&["ip", "-n", n, "route", "add", "default", "via", v4])?;
        sh(&["ip", "-n", n, "-6", "route", "add", "default", "via", v6])?;
    }
    sh_ns(
        &e,
        &[
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ],
    )?;
    // The README's laptop-as-gateway lines, for both families.
    for tables in ["iptables", "ip6tables"] {
        sh_ns(
            &e,
            &[
                tables,
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-i",
                &vec_,
                "-p",
                "tcp",
                "-m",
                "multiport",
                "--dports",
                "8443,5222,5061",
                "-j",
                "REDIRECT",
                "--to-ports",
                "15443",
            ],
        )?;
    }
    Ok(ns)
}

/// Events with a handshake, once `n` of them are written (at connection close).
fn judged(ev: &std::path::Path, n: usize) -> Vec<Value> {
    let mut handshakes: Vec<Value> = Vec::new();
    for _ in 0..100 {
        handshakes = std::fs::read_to_string(ev)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| !e["handshake"].is_null())
            .collect();
        if handshakes.len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    handshakes
}

fn curl_in(ns: &str, root: &std::path::Path, server_ip: &str) -> String {
    let resolve = format!("expe.example.com:8443:{server_ip}");
    let mut code = String::new();
    for _ in 0..50 {
        let out = Command::new("ip")
            .args(in_ns(
                ns,
                &[
                    "curl",
                    "-sS",
                    "--max-time",
                    "5",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--cacert",
                ],
            ))
            .arg(root)
            .args(["--resolve", &resolve, "https://expe.example.com:8443/"])
            .output()
            .unwrap();
        code = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if code == "200" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_proxy_in_network_namespaces() {
    let id = format!("{}", std::process::id() % 100_000);
    let mut ns = match setup(&id) {
        Ok(ns) => ns,
        Err(why) => {
            // Namespaces need root and CAP_SYS_ADMIN; iptables needs the nat table.
            eprintln!(
                "\n*** SKIPPING the transparent-mode test: this machine forbids what it needs ({why}) ***\n"
            );
            assert!(
                std::env::var("CI").is_err(),
                "CI runs as root and must be able to create namespaces: {why}"
            );
            return;
        }
    };
    let (c, e, s) = (format!("etc{id}"), format!("ete{id}"), format!("ets{id}"));
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("events.jsonl");
    // Certificates valid around the real clock: edgetap judges at the time the
    // handshakes pass, and curl and s_client verify at it too.
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let pki = crate::lab_pki("Transparent", "example.com", now);
    let root = dir.path().join("root.pem");
    std::fs::write(&root, pem(&pki.lab.root.der())).unwrap();
    let (edge_cert, edge_key, edge_chain) = (
        dir.path().join("edge.pem"),
        dir.path().join("edge.key"),
        dir.path().join("edge-chain.pem"),
    );
    std::fs::write(&edge_cert, pem(&pki.edge.chain[0])).unwrap();
    std::fs::write(&edge_key, key_pem(&pki.edge.key)).unwrap();
    std::fs::write(&edge_chain, pem(&pki.lab.issuing.der())).unwrap();
    for accept in ["10.77.2.2:8443", "[fd77:2::2]:8443"] {
        ns.children.push(
            Command::new("ip")
                .args(in_ns(
                    &s,
                    &["openssl", "s_server", "-quiet", "-www", "-accept", accept],
                ))
                .arg("-cert")
                .arg(&edge_cert)
                .arg("-key")
                .arg(&edge_key)
                .arg("-cert_chain")
                .arg(&edge_chain)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    // prosody in the server namespace, for the XMPP client.
    let xmpp_root = root.clone();
    let cup_chain: String = pki.cup.chain.iter().map(|c| pem(c)).collect();
    let prosody = crate::start_prosody_at(
        dir.path(),
        "example.com",
        &cup_chain,
        &key_pem(&pki.cup.key),
        &crate::ProsodyAt {
            netns: Some(s.clone()),
            interface: "10.77.2.2".into(),
            port: 5222,
        },
    )
    .await;
    // The README's command: one dual-stack listener for every redirected port.
    ns.children.push(
        Command::new("ip")
            .args(in_ns(
                &e,
                &[
                    env!("CARGO_BIN_EXE_edgetap"),
                    "proxy",
                    "--listen",
                    "[::]:15443",
                    "--upstream",
                    "original",
                    "--domain",
                    "example.com",
                ],
            ))
            .arg("--public-roots")
            .arg(&root)
            .arg("--events")
            .arg(&ev)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let (v4, v6) = tokio::task::spawn_blocking({
        let (c, root) = (c.clone(), root.clone());
        move || {
            (
                curl_in(&c, &root, "10.77.2.2"),
                curl_in(&c, &root, "[fd77:2::2]"),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(v4, "200", "curl over IPv4 through the transparent proxy");
    assert_eq!(v6, "200", "curl over IPv6 through the transparent proxy");

    let mut expected = 2;
    if let Some(_prosody) = &prosody {
        let out = tokio::task::spawn_blocking({
            let (c, xmpp_root) = (c.clone(), xmpp_root.clone());
            move || {
                Command::new("ip")
                    .args(in_ns(
                        &c,
                        &[
                            "openssl",
                            "s_client",
                            "-connect",
                            "10.77.2.2:5222",
                            "-starttls",
                            "xmpp",
                            "-xmpphost",
                            "example.com",
                            "-CAfile",
                        ],
                    ))
                    .arg(&xmpp_root)
                    .stdin(Stdio::null())
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Verify return code: 0"),
            "s_client -starttls xmpp through the transparent proxy:\n{text}"
        );
        expected = 3;
    }

    let handshakes = tokio::task::spawn_blocking(move || judged(&ev, expected))
        .await
        .unwrap();
    let by_upstream = |u: &str| {
        handshakes
            .iter()
            .find(|e| e["upstream"] == u)
            .unwrap_or_else(|| panic!("no handshake to {u}: {handshakes:?}"))
    };
    let e4 = by_upstream("10.77.2.2:8443");
    assert!(
        e4["client"].as_str().unwrap().starts_with("10.77.1.2:"),
        "IPv4 client shown as IPv4 on the dual-stack listener: {}",
        e4["client"]
    );
    let e6 = by_upstream("[fd77:2::2]:8443");
    assert!(e6["client"].as_str().unwrap().starts_with("[fd77:1::2]:"));
    for e in [e4, e6] {
        assert_eq!(e["service"], "http");
        assert_eq!(e["handshake"]["reference_identity"], "expe.example.com");
        assert_eq!(e["handshake"]["chain"].as_array().unwrap().len(), 2);
        assert_eq!(e["handshake"]["verdicts"]["jabber"]["outcome"], "ok");
    }
    // probe, run on the gateway (its own traffic is not redirected), says the
    // same of the server: same chain, same findings, same outcome per profile.
    let probed = Command::new("ip")
        .args(in_ns(
            &e,
            &[
                env!("CARGO_BIN_EXE_edgetap"),
                "probe",
                "expe.example.com:8443",
                "--address",
                "10.77.2.2",
                "--domain",
                "example.com",
                "--format",
                "json",
                "--public-roots",
            ],
        ))
        .arg(&root)
        .output()
        .unwrap();
    let probed: Value = serde_json::from_slice(&probed.stdout).unwrap_or_else(|err| {
        panic!(
            "probe output ({err}): {}",
            String::from_utf8_lossy(&probed.stderr)
        )
    });
    let p = &probed["handshakes"][0];
    let not_tls = |h: &Value| -> Vec<String> {
        crate::finding_rules(h)
            .into_iter()
            .filter(|r| !r.starts_with("tls."))
            .collect()
    };
    assert_eq!(
        crate::chain_sha256s(&e4["handshake"]),
        crate::chain_sha256s(p)
    );
    assert_eq!(not_tls(&e4["handshake"]), not_tls(p));
    for profile in ["jabber", "ip-phone", "tc-endpoint", "expressway-c"] {
        assert_eq!(
            e4["handshake"]["verdicts"][profile]["outcome"], p["verdicts"][profile]["outcome"],
            "{profile}"
        );
    }
    if prosody.is_some() {
        let x = by_upstream("10.77.2.2:5222");
        assert_eq!(x["service"], "xmpp", "service from the original port");
        assert_eq!(x["handshake"]["reference_identity"], "example.com");
        assert_eq!(x["handshake"]["xmpp"]["offered"], true);
    }
}
