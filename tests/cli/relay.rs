//! The relay itself, through the real binary, with socat and openssl as the
//! independent far ends: bytes arrive unchanged in bulk (the splice path) with
//! and without a capture, half-close reaches the server and its answer still
//! reaches the client, plain bytes on a TLS port are reported as such, the
//! idle timeout closes only connections silent both ways, an unresolvable
//! upstream and resets from either side end only their own connection,
//! intercept mode passes the client's ALPN upstream and back, and `--at` /
//! `--expiry-warn-days` judge a fixed-date chain at the time they name.

use crate::{events, free_port, key_pem, pem, wait_listening};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) struct Kill(pub(crate) Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cmd` quietly as a server on loopback `port`; returns once it listens.
fn server(mut cmd: Command, port: u16, installed: &str) -> Kill {
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(installed);
    wait_listening(port);
    Kill(child)
}

/// socat on `port` running `cmd` for each connection (stdin = what the client sent).
pub(crate) fn socat(port: u16, cmd: &str) -> Kill {
    let mut socat = Command::new("socat");
    socat.args([
        "-t",
        "30",
        &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
        &format!("SYSTEM:{cmd}"),
    ]);
    server(socat, port, "socat is installed (.ci/run installs it)")
}

/// `openssl s_server` on loopback `port` with `args`; returns once it listens.
fn s_server(port: u16, args: &[&std::ffi::OsStr]) -> Kill {
    let mut openssl = Command::new("openssl");
    openssl
        .args(["s_server", "-quiet", "-accept"])
        .arg(port.to_string())
        .args(args);
    server(openssl, port, "openssl is installed (.ci/run installs it)")
}

/// A proxy with two HTTP listeners: `a` to the dead port `dead`, `b` to the
/// echo server on `echo`; stdout piped (read it, or leave it unread).
fn dead_and_echo_proxy(a: u16, dead: u16, b: u16, echo: u16) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(["proxy", "--listen"])
        .arg(format!("127.0.0.1:{a}"))
        .args([
            "--upstream",
            &format!("127.0.0.1:{dead}"),
            "--service",
            "http",
        ])
        .arg("--listen")
        .arg(format!("127.0.0.1:{b}"))
        .args([
            "--upstream",
            &format!("127.0.0.1:{echo}"),
            "--service",
            "http",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn proxy(args: &[&str]) -> Kill {
    Kill(crate::spawn_proxy(args))
}

fn wait_events(path: &Path, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let e = events(path);
        if e.len() >= n {
            return e;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    events(path)
}

/// A proxy on `port` to `upstream` (listener service http, events to `ev`,
/// `extra` flags after), listening.
fn http_proxy(port: u16, upstream: &str, ev: &Path, extra: &[&str]) -> Kill {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "--listen",
        &listen,
        "--upstream",
        upstream,
        "--service",
        "http",
        "--events",
        ev.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let px = proxy(&args);
    wait_listening(port);
    px
}

/// The first handshake judged in the events file `ev` (the first
/// connection is wait_listening's, which sends nothing).
fn first_judged(ev: &Path) -> Value {
    let e = wait_events(ev, 2);
    e.iter()
        .map(|event| event["handshake"].clone())
        .find(|h| !h.is_null())
        .unwrap_or_else(|| panic!("no handshake judged: {e:?}"))
}

/// Deterministic, incompressible-looking bytes (xorshift).
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Send `data` through `port`, half-close, read the echo to the end.
pub(crate) fn echo_round_trip(port: u16, data: &[u8]) -> Vec<u8> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let out = data.to_vec();
    let writer = std::thread::spawn(move || {
        w.write_all(&out).unwrap();
        // Half-close: the server sees EOF, then still answers.
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    let mut r = s;
    r.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    back
}

#[test]
fn bulk_bytes_and_half_close_pass_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let up = free_port();
    // `cat` echoes as it reads; the trailer is written only after the client's
    // EOF arrived, so it proves half-close went through and the way back stayed open.
    let _echo = socat(up, "cat; printf END-OF-ECHO");
    let data = pattern(48 << 20);
    for capture in [false, true] {
        let port = free_port();
        let ev = dir.path().join(format!("events-{capture}.jsonl"));
        let cap = dir.path().join(format!("bulk-{capture}.pcapng"));
        let listen = format!("127.0.0.1:{port}");
        let upstream = format!("127.0.0.1:{up}");
        let mut args = vec![
            "--listen",
            &listen,
            "--upstream",
            &upstream,
            "--service",
            "http",
            "--events",
            ev.to_str().unwrap(),
        ];
        if capture {
            args.extend(["--pcap", cap.to_str().unwrap()]);
        }
        let _px = proxy(&args);
        wait_listening(port);
        let back = echo_round_trip(port, &data);
        assert_eq!(
            back.len(),
            data.len() + "END-OF-ECHO".len(),
            "capture {capture}: every byte and the trailer came back"
        );
        assert!(
            back[..data.len()] == data[..],
            "capture {capture}: bytes changed"
        );
        assert_eq!(&back[data.len()..], b"END-OF-ECHO");
        let e = wait_events(&ev, 2);
        let bulk = e
            .iter()
            .find(|e| e["bytes_up"].as_u64() == Some(data.len() as u64))
            .unwrap_or_else(|| {
                panic!("capture {capture}: no event for the bulk connection: {e:?}")
            });
        assert_eq!(bulk["bytes_down"], data.len() as u64 + 11);
        assert_eq!(bulk["close_reason"], "closed");
        // Plain bytes from the client on a TLS service's port: the client
        // never sent a ClientHello, which says nothing about the server.
        let h = &bulk["handshake"];
        assert!(h["findings"].as_array().unwrap().is_empty(), "{h}");
        assert_eq!(h["tls"]["failure_by"], "client", "{h}");
        assert!(
            h["tls"]["failure"]
                .as_str()
                .unwrap()
                .starts_with("the client sent no TLS ClientHello (its first bytes: "),
            "{h}"
        );
        assert_eq!(h["verdicts"]["jabber"]["outcome"], "unknown", "{h}");
    }
}

#[test]
fn idle_timeout_closes_only_connections_silent_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (silent_up, ticking_up) = (free_port(), free_port());
    let _silent = socat(silent_up, "cat");
    // The server talks every 300 ms for 2.4 s while the client says nothing.
    let _ticking = socat(
        ticking_up,
        "for i in 1 2 3 4 5 6 7 8; do echo tick$i; sleep 0.3; done",
    );
    let (a, b) = (free_port(), free_port());
    let ev = dir.path().join("events.jsonl");
    let config = dir.path().join("idle.toml");
    std::fs::write(
        &config,
        format!(
            "idle_timeout_secs = 1\nevents = {ev:?}\n\n[[listener]]\nlisten = \"127.0.0.1:{a}\"\nupstream = \"127.0.0.1:{silent_up}\"\nservice = \"http\"\n\n[[listener]]\nlisten = \"127.0.0.1:{b}\"\nupstream = \"127.0.0.1:{ticking_up}\"\nservice = \"http\"\n"
        ),
    )
    .unwrap();
    let _px = proxy(&["--config", config.to_str().unwrap()]);
    wait_listening(a);
    wait_listening(b);
    let t = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", a)).unwrap();
    let mut ticking = TcpStream::connect(("127.0.0.1", b)).unwrap();
    for s in [&silent, &ticking] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let ticker = std::thread::spawn(move || {
        let mut all = String::new();
        ticking.read_to_string(&mut all).unwrap();
        all
    });
    silent.write_all(b"ping\n").unwrap();
    let mut echo = [0u8; 5];
    silent.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"ping\n");
    // Then nothing either way: edgetap closes it about a second later.
    let mut rest = Vec::new();
    silent.read_to_end(&mut rest).unwrap();
    let closed_after = t.elapsed();
    assert!(rest.is_empty());
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(6),
        "idle close after {closed_after:?}"
    );
    let ticks = ticker.join().unwrap();
    assert_eq!(
        ticks.lines().count(),
        8,
        "a connection with traffic one way is not idle: {ticks:?}"
    );
    let e = wait_events(&ev, 2);
    let reason = |port: u16| {
        // The last one: the first is wait_listening's probe connection.
        e.iter()
            .rev()
            .find(|e| e["upstream"] == format!("127.0.0.1:{port}"))
            .map(|e| e["close_reason"].as_str().unwrap_or("").to_owned())
            .unwrap_or_else(|| panic!("no event for {port}: {e:?}"))
    };
    assert_eq!(reason(silent_up), "idle for 1s");
    assert_ne!(reason(ticking_up), "idle for 1s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intercept_passes_alpn_both_ways() {
    if !crate::tool_present("openssl", "intercept_passes_alpn_both_ways") {
        return;
    }
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    assert!(
        Command::new(env!("CARGO_BIN_EXE_edgetap"))
            .args(["ca", "init", "--dir"])
            .arg(&ca_dir)
            .output()
            .unwrap()
            .status
            .success()
    );
    let lab = edgetap::lab::deployment::Deployment::new("ALPN", "example.com", now).unwrap();
    let id = lab.edge_identity("expe.example.com").unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, pem(&id.chain[0])).unwrap();
    std::fs::write(&key, key_pem(&id.key)).unwrap();
    let up = free_port();
    let _server = s_server(
        up,
        &[
            "-alpn".as_ref(),
            "h2,http/1.1".as_ref(),
            "-cert".as_ref(),
            cert.as_os_str(),
            "-key".as_ref(),
            key.as_os_str(),
        ],
    );
    let port = free_port();
    let ev = dir.path().join("events.jsonl");
    let _px = proxy(&[
        "--intercept",
        "--ca",
        ca_dir.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &format!("127.0.0.1:{up}"),
        "--service",
        "http",
        "--events",
        ev.to_str().unwrap(),
    ]);
    wait_listening(port);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-servername", "expe.example.com", "-alpn", "h2"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ALPN protocol: h2"),
        "the client got upstream's choice through edgetap:\n{text}"
    );
    let e = wait_events(&ev, 2);
    let judged = e
        .iter()
        .find(|e| !e["handshake"].is_null())
        .unwrap_or_else(|| panic!("no handshake event: {e:?}"));
    assert_eq!(
        judged["handshake"]["tls"]["alpn"],
        serde_json::json!(["h2"]),
        "{e:?}"
    );
}

/// An upstream name that cannot be resolved (the nameserver is dead) ends only
/// that connection, with the reason in its event; a connection on another
/// listener is served meanwhile.
#[test]
fn dns_failure_ends_only_its_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let up = free_port();
    let _echo = socat(up, "cat");
    let dead_ns = free_port();
    let (a, b) = (free_port(), free_port());
    let ev = dir.path().join("events.jsonl");
    let _px = proxy(&[
        "--nameserver",
        &format!("127.0.0.1:{dead_ns}"),
        "--listen",
        &format!("127.0.0.1:{a}"),
        "--upstream",
        "expe.example.net:8443",
        "--service",
        "http",
        "--listen",
        &format!("127.0.0.1:{b}"),
        "--upstream",
        &format!("127.0.0.1:{up}"),
        "--service",
        "http",
        "--events",
        ev.to_str().unwrap(),
    ]);
    wait_listening(b);
    let t = Instant::now();
    let mut doomed = TcpStream::connect(("127.0.0.1", a)).unwrap();
    doomed
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let doomed = std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = doomed.read_to_end(&mut rest);
        rest
    });
    // While the look-up fails, the other listener answers at once.
    let mut fine = TcpStream::connect(("127.0.0.1", b)).unwrap();
    fine.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    fine.write_all(b"still here\n").unwrap();
    let mut back = [0u8; 11];
    fine.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still here\n");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(doomed.join().unwrap().is_empty(), "closed without a byte");
    let e = wait_events(&ev, 2);
    let failed = e
        .iter()
        .find(|e| e["upstream"].is_null() && e["client"].as_str().is_some())
        .unwrap_or_else(|| panic!("no failed connection event: {e:?}"));
    let reason = failed["close_reason"].as_str().unwrap();
    eprintln!("DNS failure reported as: {reason}");
    assert!(
        reason.contains("upstream unreachable") && reason.contains("expe.example.net"),
        "{reason}"
    );
}

/// Resets from either side: an upstream that resets during the handshake
/// (curl sees the connection end; the event and the judged handshake say
/// why), and a client that resets after half a ClientHello. Each ends only
/// its own connection: a later one on the same listener still relays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_end_only_their_own_connection() {
    if !crate::tool_present("curl", "resets_end_only_their_own_connection") {
        return;
    }
    use edgetap::lab::{Behaviour, serve};
    let dir = tempfile::tempdir().unwrap();
    let resetting = serve(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        None,
        Behaviour::ResetDuringHandshake,
    )
    .await
    .unwrap();
    let up = free_port();
    let _echo = socat(up, "cat");
    let (a, b) = (free_port(), free_port());
    let ev = dir.path().join("events.jsonl");
    let _px = proxy(&[
        "--listen",
        &format!("127.0.0.1:{a}"),
        "--upstream",
        &resetting.to_string(),
        "--service",
        "http",
        "--listen",
        &format!("127.0.0.1:{b}"),
        "--upstream",
        &format!("127.0.0.1:{up}"),
        "--service",
        "http",
        "--events",
        ev.to_str().unwrap(),
    ]);
    wait_listening(a);
    wait_listening(b);
    let curl = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--max-time", "5", "-k"])
            .arg(format!("https://127.0.0.1:{a}/"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!curl.status.success());

    // Half a ClientHello, then RST from the client side.
    let hello_start = [0x16u8, 3, 1, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 3, 3];
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], b)).into())
        .unwrap();
    let mut s: TcpStream = s.into();
    s.write_all(&hello_start).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);

    // The same listeners still work.
    let mut fine = TcpStream::connect(("127.0.0.1", b)).unwrap();
    fine.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    fine.write_all(b"after the resets\n").unwrap();
    let mut back = [0u8; 17];
    fine.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"after the resets\n");
    drop(fine);

    let e = wait_events(&ev, 5);
    let to_resetter = e
        .iter()
        .filter(|e| e["upstream"] == resetting.to_string())
        .find(|e| !e["handshake"].is_null())
        .unwrap_or_else(|| panic!("the reset handshake was judged: {e:?}"));
    let reason = to_resetter["close_reason"].as_str().unwrap();
    assert!(reason.contains("server error"), "{reason}");
    assert_eq!(
        to_resetter["handshake"]["findings"][0]["rule"],
        "tls.handshake-failed"
    );
    assert!(
        e.iter().any(|e| e["close_reason"]
            .as_str()
            .unwrap_or("")
            .contains("client error")),
        "the client's reset is an event: {e:?}"
    );
}

/// A fixed-date fixture (valid 2025-01-01..2027-01-01) through the proxy is
/// judged at `--at`, never at the day the test runs, and `--expiry-warn-days`
/// reaches the proxy's engine: 214 days before expiry is "soon" with 400.
#[test]
fn proxy_judges_at_the_time_at_names() {
    if !crate::tool_present("openssl", "proxy_judges_at_the_time_at_names") {
        return;
    }
    let fx = crate::openssl_fixtures();
    let up = free_port();
    let (cert, key, chain) = (
        fx.join("work/good.crt"),
        fx.join("work/good.key"),
        fx.join("intermediate.pem"),
    );
    let _server = s_server(
        up,
        &[
            "-no_tls1_3".as_ref(),
            "-cert".as_ref(),
            cert.as_os_str(),
            "-key".as_ref(),
            key.as_os_str(),
            "-cert_chain".as_ref(),
            chain.as_os_str(),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("events.jsonl");
    let port = free_port();
    let _px = proxy(&[
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &format!("127.0.0.1:{up}"),
        "--service",
        "http",
        "--public-roots",
        fx.join("root.pem").to_str().unwrap(),
        "--at",
        crate::AT,
        "--expiry-warn-days",
        "400",
        "--events",
        ev.to_str().unwrap(),
    ]);
    wait_listening(port);
    let out = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", "expe.example.com"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("expe.example.com"),
        "s_client saw the chain through edgetap"
    );
    // The first connection is wait_listening's, which sends nothing.
    let e = wait_events(&ev, 2);
    let h = &e
        .iter()
        .find(|e| {
            e["handshake"]["chain"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        })
        .unwrap_or_else(|| panic!("no handshake with a chain: {e:?}"))["handshake"];
    let rules = crate::finding_rules(h);
    assert!(!rules.contains(&"validity.expired".to_owned()), "{rules:?}");
    let soon: Vec<&str> = h["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "validity.expires-soon")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        !soon.is_empty() && soon.iter().all(|m| m.contains("in 214 days")),
        "judged at {}, warned 400 days ahead: {soon:?}",
        crate::AT
    );
}

/// stdout piped to a reader that never reads (a paused pager): once the pipe
/// is full, terminal lines are dropped and counted, and connections go on
/// being relayed.
#[test]
fn an_unread_stdout_never_stalls_the_relay() {
    let dead_guard = crate::refused_port();
    let dead = dead_guard.port;
    let echo_port = free_port();
    let _echo = socat(echo_port, "cat");
    let (a, b) = (free_port(), free_port());
    // stdout piped and never read.
    let mut child = dead_and_echo_proxy(a, dead, b, echo_port);
    wait_listening(a);
    wait_listening(b);
    // Each connection to the dead upstream prints a line: far more than a pipe holds.
    for _ in 0..1500 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", a)) {
            drop(s);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(echo_round_trip(b, b"still relayed\n"));
    });
    let back = rx.recv_timeout(Duration::from_secs(15));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        back.expect("the relay answered while stdout was full")
            .as_slice(),
        b"still relayed\n"
    );
}

/// The terminal says something about every connection worth a line: no
/// upstream, plain bytes where TLS was expected (a port check that sends
/// nothing stays quiet).
#[test]
fn the_terminal_names_connections_without_a_handshake() {
    let dead_guard = crate::refused_port();
    let dead = dead_guard.port;
    let echo_port = free_port();
    let _echo = socat(echo_port, "cat");
    let (a, b) = (free_port(), free_port());
    let child = dead_and_echo_proxy(a, dead, b, echo_port);
    let child = Kill(child);
    wait_listening(a);
    wait_listening(b);
    drop(TcpStream::connect(("127.0.0.1", a)).unwrap());
    assert_eq!(echo_round_trip(b, b"plain text\n"), b"plain text\n");
    std::thread::sleep(Duration::from_millis(300));
    let mut child = child;
    let pid = child.0.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("upstream failed"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(&format!("127.0.0.1:{echo_port}"))
                && l.contains("no TLS handshake seen")),
        "{out}"
    );
}

/// An events file on a full disk (/dev/full): relaying goes on, the failure
/// is said once, and what was lost is counted at shutdown.
#[test]
fn a_full_disk_is_said_once_and_relaying_goes_on() {
    if !Path::new("/dev/full").exists() {
        eprintln!("\n*** SKIPPING: /dev/full is not available here ***\n");
        return;
    }
    let echo_port = free_port();
    let _echo = socat(echo_port, "cat");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(["proxy", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--upstream",
            &format!("127.0.0.1:{echo_port}"),
            "--service",
            "http",
        ])
        .args(["--events", "/dev/full"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_listening(port);
    for i in 0..5 {
        let line = format!("round {i}\n");
        assert_eq!(echo_round_trip(port, line.as_bytes()), line.as_bytes());
    }
    std::thread::sleep(Duration::from_millis(300));
    // A full disk is not an error exit.
    let err = crate::stop_proxy(child);
    assert_eq!(
        err.matches("writing the events file failed").count(),
        1,
        "{err}"
    );
    assert!(err.contains("not written to the events file"), "{err}");
}

/// Plain HTTP sent through the proxy to a TLS upstream (`curl http://` to an
/// HTTPS server): the client never sent a ClientHello. That is the client's
/// doing: failure_by client, every profile unknown with why, and no
/// tls.handshake-failed against a server that is fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_tls_upstream_is_the_clients_doing() {
    if !crate::tool_present("curl", "plain_http_to_a_tls_upstream_is_the_clients_doing") {
        return;
    }
    let upstream = edgetap::lab::serve_https("Plain Root", "expe.example.com")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ev = dir.path().join("events.jsonl");
    let _px = http_proxy(port, &upstream.to_string(), &ev, &[]);
    tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-s", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}/"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let h = first_judged(&ev);
    assert_eq!(h["tls"]["failure_step"], "client-hello", "{h}");
    assert_eq!(h["tls"]["failure_by"], "client", "{h}");
    let failure = h["tls"]["failure"].as_str().unwrap();
    assert!(
        failure
            .starts_with("the client sent no TLS ClientHello (its first bytes: \"GET / HTTP/1.1"),
        "{failure}"
    );
    assert!(crate::finding_rules(&h).is_empty(), "{h}");
    for (profile, v) in h["verdicts"].as_object().unwrap() {
        assert_eq!(v["outcome"], "unknown", "{profile}: {v}");
    }
}

/// Intercept decides XMPP from the client's first bytes, as passthrough does,
/// on any port and whatever the listener's service: `openssl s_client
/// -starttls xmpp` through a listener on a non-standard port set up for http
/// gets the forged leaf, and the real chain is judged as XMPP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intercept_detects_xmpp_starttls_on_any_port() {
    if !crate::tool_present("openssl", "intercept_detects_xmpp_starttls_on_any_port") {
        return;
    }
    let now = edgetap::clock::now();
    let mut lab =
        edgetap::lab::deployment::Deployment::new("XMPP Any", "example.com", now).unwrap();
    let cup = lab.fqdn("cup");
    let id = lab.cup_identity(&cup).unwrap();
    let xmpp = lab.xmpp();
    let upstream = lab.serve(&cup, Some(id), xmpp, false).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let init = crate::run(&["ca", "init", "--dir", ca_dir.to_str().unwrap()]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let port = free_port();
    let ev = dir.path().join("events.jsonl");
    let ca = ca_dir.to_str().unwrap();
    let _px = http_proxy(
        port,
        &upstream.to_string(),
        &ev,
        &["--intercept", "--ca", ca],
    );
    let diag = ca_dir.join("edgetap-diagnostic-ca.pem");
    let text = crate::s_client_xmpp(port, "example.com", &diag).await;
    assert!(
        text.contains("edgetap diagnostic CA") && !text.contains("no peer certificate"),
        "openssl s_client through intercept:\n{text}"
    );
    let h = first_judged(&ev);
    assert_eq!(h["service"], "xmpp", "{h}");
    assert_eq!(h["reference_identity"], "example.com", "{h}");
    assert_eq!(h["chain"][0]["subject"], "CN=cup.example.com", "{h}");
    assert!(h["xmpp"]["offered"].as_bool().unwrap_or(false), "{h}");
}
