//! Transparent placement in network namespaces this test creates: client ns ->
//! edgetap ns (gateway, iptables REDIRECT of port 8443 to edgetap) -> server ns
//! running `openssl s_server`; curl in the client ns reaches the server through
//! edgetap, which finds the original destination with SO_ORIGINAL_DST.

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
    for (n, dev, addr) in [
        (&c, &vc, "10.77.1.2/24"),
        (&e, &vec_, "10.77.1.1/24"),
        (&e, &ves, "10.77.2.1/24"),
        (&s, &vs, "10.77.2.2/24"),
    ] {
        sh(&["ip", "-n", n, "addr", "add", addr, "dev", dev])?;
        sh(&["ip", "-n", n, "link", "set", dev, "up"])?;
    }
    sh(&[
        "ip",
        "-n",
        &c,
        "route",
        "add",
        "default",
        "via",
        "10.77.1.1",
    ])?;
    sh(&[
        "ip",
        "-n",
        &s,
        "route",
        "add",
        "default",
        "via",
        "10.77.2.1",
    ])?;
    sh(&[
        "ip",
        "netns",
        "exec",
        &e,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ])?;
    sh(&[
        "ip",
        "netns",
        "exec",
        &e,
        "iptables",
        "-t",
        "nat",
        "-A",
        "PREROUTING",
        "-i",
        &vec_,
        "-p",
        "tcp",
        "--dport",
        "8443",
        "-j",
        "REDIRECT",
        "--to-ports",
        "15443",
    ])?;
    Ok(ns)
}

#[test]
fn transparent_proxy_in_network_namespaces() {
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
    let fx = crate::openssl_fixtures();
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("events.jsonl");
    let root = fx.join("root.pem");
    ns.children.push(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &s,
                "openssl",
                "s_server",
                "-quiet",
                "-www",
                "-accept",
                "10.77.2.2:8443",
            ])
            .arg("-cert")
            .arg(fx.join("work/good.crt"))
            .arg("-key")
            .arg(fx.join("work/good.key"))
            .arg("-cert_chain")
            .arg(fx.join("intermediate.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    ns.children.push(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &e,
                env!("CARGO_BIN_EXE_edgetap"),
                "proxy",
                "--listen",
                "0.0.0.0:15443",
                "--upstream",
                "original",
                "--domain",
                "example.com",
            ])
            .arg("--public-roots")
            .arg(&root)
            .arg("--events")
            .arg(&ev)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut code = String::new();
    for _ in 0..50 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &c,
                "curl",
                "-sS",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
            ])
            .arg(&root)
            .args([
                "--resolve",
                "expe.example.com:8443:10.77.2.2",
                "https://expe.example.com:8443/",
            ])
            .output()
            .unwrap();
        code = String::from_utf8_lossy(&out.stdout).into_owned();
        if code == "200" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        code, "200",
        "curl from the client namespace through the transparent proxy"
    );
    // Events are written when a connection closes.
    let mut handshakes: Vec<Value> = Vec::new();
    for _ in 0..50 {
        handshakes = std::fs::read_to_string(&ev)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| !e["handshake"].is_null())
            .collect();
        if !handshakes.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let e0 = handshakes
        .first()
        .expect("the relayed handshake was reported");
    assert_eq!(
        e0["upstream"], "10.77.2.2:8443",
        "the original destination, from SO_ORIGINAL_DST"
    );
    assert!(e0["client"].as_str().unwrap().starts_with("10.77.1.2:"));
    assert_eq!(e0["handshake"]["reference_identity"], "expe.example.com");
    assert_eq!(e0["handshake"]["chain"].as_array().unwrap().len(), 2);
}
