//! Soak: thousands of connections open at once through `edgetap proxy`, in
//! passthrough and then intercept mode, with a mix of peers that misbehave:
//! well-behaved TLS clients (a request once all are open), clients that reset
//! mid-handshake, clients that send garbage, clients that trickle a byte a
//! second, and upstreams that reset or stall. At the end the proxy must still
//! serve a new connection, hold no more descriptors than before, have written
//! one whole events line per connection, and its memory must come back to
//! within 10 % of its level before the load.
//!
//! Run: `cargo bench --bench soak` (`SOAK_CONNS=N` to choose the count; the
//! default is what this machine's open-file limit allows: each relayed
//! connection holds two descriptors in the proxy).

// A benchmark binary: a failed setup step should stop it with its location.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// What the load is made of, out of every 20 connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TLS handshake, hold, then one request and its answer (12 of 20).
    Good,
    /// Half a ClientHello, then a TCP reset (2 of 20).
    ResetMidHandshake,
    /// 512 bytes of noise, then hold (2 of 20).
    Garbage,
    /// A ClientHello one byte a second (2 of 20).
    Trickle,
    /// To an upstream that resets every connection (1 of 20).
    UpstreamResets,
    /// To an upstream that accepts and never answers (1 of 20).
    UpstreamStalls,
}

fn kind(i: usize) -> Kind {
    match i % 20 {
        0..=11 => Kind::Good,
        12 | 13 => Kind::ResetMidHandshake,
        14 | 15 => Kind::Garbage,
        16 | 17 => Kind::Trickle,
        18 => Kind::UpstreamResets,
        _ => Kind::UpstreamStalls,
    }
}

/// The start of a TLS 1.2 ClientHello record (enough for the proxy to wait for more).
const HELLO_START: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
];

fn proc_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn proc_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn lab_https() -> SocketAddr {
    edgetap::lab::serve_https("Soak Root", "expe.example.com")
        .await
        .unwrap()
}

/// An upstream that resets each connection as it arrives.
async fn resetting_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = s.set_zero_linger();
            drop(s);
        }
    });
    addr
}

/// An upstream that accepts and never answers (each connection held until its peer leaves).
async fn stalling_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

fn client_config() -> Arc<rustls::ClientConfig> {
    let verifier = edgetap::net::tls::RecordingVerifier::new(edgetap::net::tls::provider());
    Arc::new(edgetap::net::tls::observing_client_config(verifier, &[]).unwrap())
}

/// One full request through `port`; true on a 200.
async fn request(port: u16) -> bool {
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let name = rustls::pki_types::ServerName::try_from("expe.example.com").unwrap();
    let Ok(mut tls) = tokio_rustls::TlsConnector::from(client_config())
        .connect(name, tcp)
        .await
    else {
        return false;
    };
    let _ = tls
        .write_all(b"GET / HTTP/1.1\r\nhost: expe.example.com\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    answer.starts_with(b"HTTP/1.1 200")
}

#[derive(Default)]
struct Tally {
    connected: AtomicUsize,
    good_ok: AtomicUsize,
    good_failed: AtomicUsize,
    /// Why good clients failed, with counts.
    why_failed: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
    set_up: AtomicUsize,
}

impl Tally {
    /// A good client failed, and why.
    fn failed(&self, why: String) {
        self.good_failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut w) = self.why_failed.lock() {
            *w.entry(why).or_default() += 1;
        }
    }
}

/// One connection of `kind` to `port`, held until `release` turns true.
async fn one(
    i: usize,
    ports: [u16; 3],
    gate: Arc<Semaphore>,
    mut release: watch::Receiver<bool>,
    tally: Arc<Tally>,
) {
    let k = kind(i);
    let port = match k {
        Kind::UpstreamResets => ports[1],
        Kind::UpstreamStalls => ports[2],
        _ => ports[0],
    };
    let permit = gate.acquire().await.unwrap();
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
        tally.set_up.fetch_add(1, Ordering::Relaxed);
        return;
    };
    tally.connected.fetch_add(1, Ordering::Relaxed);
    match k {
        Kind::Good => {
            let name = rustls::pki_types::ServerName::try_from("expe.example.com").unwrap();
            let tls = tokio::time::timeout(
                Duration::from_secs(60),
                tokio_rustls::TlsConnector::from(client_config()).connect(name, tcp),
            )
            .await;
            drop(permit);
            tally.set_up.fetch_add(1, Ordering::Relaxed);
            let mut tls = match tls {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tally.failed(format!("handshake: {e}")),
                Err(_) => return tally.failed("handshake: no answer in 60 s".into()),
            };
            let _ = release.wait_for(|r| *r).await;
            let _ = tls
                .write_all(b"GET / HTTP/1.1\r\nhost: expe.example.com\r\n\r\n")
                .await;
            let mut answer = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut answer)).await;
            if answer.starts_with(b"HTTP/1.1 200") {
                tally.good_ok.fetch_add(1, Ordering::Relaxed);
            } else {
                tally.failed(match read {
                    Err(_) => format!("no answer in 30 s ({} bytes)", answer.len()),
                    Ok(Err(e)) => format!("reading the answer: {e} ({} bytes)", answer.len()),
                    Ok(Ok(n)) => format!("answer of {n} bytes, not a 200"),
                });
            }
        }
        Kind::ResetMidHandshake => {
            let mut tcp = tcp;
            let _ = tcp.write_all(&HELLO_START[..16]).await;
            let _ = tcp.set_zero_linger();
            drop(tcp);
            drop(permit);
            tally.set_up.fetch_add(1, Ordering::Relaxed);
        }
        Kind::Garbage | Kind::UpstreamResets | Kind::UpstreamStalls => {
            let mut tcp = tcp;
            let noise: Vec<u8> = (0..512u32)
                .map(|b| (b.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            let bytes = if k == Kind::Garbage {
                &noise[..]
            } else {
                HELLO_START
            };
            let _ = tcp.write_all(bytes).await;
            drop(permit);
            tally.set_up.fetch_add(1, Ordering::Relaxed);
            let mut buf = [0u8; 1024];
            tokio::select! {
                _ = release.wait_for(|r| *r) => {}
                _ = async { while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {} } => {}
            }
        }
        Kind::Trickle => {
            let mut tcp = tcp;
            drop(permit);
            tally.set_up.fetch_add(1, Ordering::Relaxed);
            let mut at = 0;
            loop {
                tokio::select! {
                    _ = release.wait_for(|r| *r) => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if tcp.write_all(&HELLO_START[at..at + 1]).await.is_err() {
                    break;
                }
                at = (at + 1) % HELLO_START.len();
            }
        }
    }
}

fn wait_listening(port: u16) {
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing on {port}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn event_lines(path: &std::path::Path) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    (text.lines().count(), whole)
}

/// What one burst did.
struct Burst {
    setup: Duration,
    good: usize,
    good_failed: usize,
    why_failed: std::collections::BTreeMap<String, usize>,
    peak_rss: u64,
    peak_fds: usize,
    after_rss: u64,
    after_fds: usize,
    returned_in: Duration,
}

/// `n` connections at once through the proxy `pid` listening on `ports`,
/// held, then released; waits for the proxy to close them all, write every
/// events line and give memory back.
async fn burst(
    n: usize,
    ports: [u16; 3],
    pid: u32,
    idle: (u64, usize),
    ev: &std::path::Path,
    made: &mut usize,
) -> Burst {
    let (idle_rss, idle_fds) = idle;
    let tally = Arc::new(Tally::default());
    let gate = Arc::new(Semaphore::new(256));
    let (release_tx, release) = watch::channel(false);
    let t = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| tokio::spawn(one(i, ports, gate.clone(), release.clone(), tally.clone())))
        .collect();
    while tally.set_up.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let setup = t.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (peak_rss, peak_fds) = (proc_rss_kib(pid), proc_fds(pid));
    let _ = release_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    *made += tally.connected.load(Ordering::Relaxed);
    // Wait for the proxy to close everything and write every line.
    let t_drain = Instant::now();
    while (proc_fds(pid) > idle_fds || event_lines(ev).0 < *made)
        && t_drain.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Memory goes back in the background (jemalloc's decay): wait up to 60 s.
    let t_mem = Instant::now();
    while proc_rss_kib(pid) as f64 > idle_rss as f64 * 1.10
        && t_mem.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Burst {
        setup,
        good: tally.good_ok.load(Ordering::Relaxed),
        good_failed: tally.good_failed.load(Ordering::Relaxed),
        why_failed: tally
            .why_failed
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default(),
        peak_rss,
        peak_fds,
        after_rss: proc_rss_kib(pid),
        after_fds: proc_fds(pid),
        returned_in: t_mem.elapsed(),
    }
}

async fn soak(mode: &str, n: usize, upstreams: [SocketAddr; 3], dir: &std::path::Path) -> bool {
    let ports = [free_port(), free_port(), free_port()];
    let ev = dir.join(format!("events-{mode}.jsonl"));
    // The default connect timeout (5 s): the lab upstream lives in this
    // process, and while it serves thousands of clients its accept queue can
    // overflow; a dropped SYN is sent again after 1 s and 3 s, which a 2 s
    // timeout cut short (good clients then failed for the bench's own sake).
    let mut config = format!("events = {ev:?}\nidle_timeout_secs = 120\ngrace_secs = 2\n");
    for (p, u) in ports.iter().zip(upstreams) {
        config += &format!(
            "\n[[listener]]\nlisten = \"127.0.0.1:{p}\"\nupstream = \"{u}\"\nservice = \"http\"\n"
        );
    }
    let cfg = dir.join(format!("{mode}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgetap"));
    cmd.arg("proxy").arg("--config").arg(&cfg);
    if mode == "intercept" {
        cmd.args(["--intercept", "--ca"]).arg(dir.join("ca"));
    }
    // SOAK_PROXY_STDERR=PREFIX keeps the proxy's stderr in PREFIX-MODE.log
    let stderr = match std::env::var("SOAK_PROXY_STDERR") {
        Ok(prefix) => Stdio::from(std::fs::File::create(format!("{prefix}-{mode}.log")).unwrap()),
        Err(_) => Stdio::null(),
    };
    let mut proxy = cmd.stdout(Stdio::null()).stderr(stderr).spawn().unwrap();
    let pid = proxy.id();
    for p in ports {
        wait_listening(p);
    }
    let mut made = 3; // the readiness checks
    for _ in 0..50 {
        assert!(request(ports[0]).await, "warm-up request");
        made += 1;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle_rss, idle_fds) = (proc_rss_kib(pid), proc_fds(pid));
    println!(
        "\n{mode}: bursts of {n} connections at once (12/20 good TLS, 2/20 reset mid-handshake, 2/20 garbage, 2/20 trickle 1 B/s, 1/20 upstream resets, 1/20 upstream stalls)"
    );
    // Two bursts through the same proxy: what stays after the first is a
    // high-water mark if the second leaves no more (a leak would add again).
    let mut rounds = Vec::new();
    for round in 1..=2 {
        let r = burst(n, ports, pid, (idle_rss, idle_fds), &ev, &mut made).await;
        println!(
            "  burst {round}: set up in {:.1}s; good requests answered {}, failed {}",
            r.setup.as_secs_f64(),
            r.good,
            r.good_failed
        );
        for (why, count) in &r.why_failed {
            println!("    good client failed x{count}: {why}");
        }
        println!(
            "    RSS: idle {idle_rss} KiB, all open {} KiB ({:.1} KiB per connection), after {} KiB = {:.2}x idle ({:.1}s after the last close)",
            r.peak_rss,
            (r.peak_rss.saturating_sub(idle_rss)) as f64 / n as f64,
            r.after_rss,
            r.after_rss as f64 / idle_rss.max(1) as f64,
            r.returned_in.as_secs_f64()
        );
        println!(
            "    descriptors: idle {idle_fds}, all open {}, after {}",
            r.peak_fds, r.after_fds
        );
        rounds.push(r);
    }
    let (after_rss, after_fds) = (rounds[1].after_rss, rounds[1].after_fds);
    let good_failed: usize = rounds.iter().map(|r| r.good_failed).sum();
    let new_ok = request(ports[0]).await;
    made += 1;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let status = proxy.wait().unwrap();
    let (lines, whole) = event_lines(&ev);
    let ratio = after_rss as f64 / idle_rss.max(1) as f64;
    let growth = rounds[1].after_rss as f64 / rounds[0].after_rss.max(1) as f64;
    println!(
        "  after both: {after_rss} KiB = {ratio:.2}x idle (bound 1.10); the second burst left {growth:.2}x what the first did"
    );
    println!(
        "  events: {lines} lines ({whole} whole JSON) for {made} connections; a new connection after: {}; exit {status}",
        if new_ok { "served" } else { "FAILED" }
    );
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for line in std::fs::read_to_string(&ev).unwrap_or_default().lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        // On the good listener, or on none (the upstream never answered).
        let good_or_none = e["upstream"] == upstreams[0].to_string() || e["upstream"].is_null();
        if good_or_none && e["handshake"].is_null() {
            let why: String = e["close_reason"]
                .as_str()
                .unwrap_or("-")
                .chars()
                .take(90)
                .collect();
            *reasons.entry(why).or_default() += 1;
        }
    }
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (why, count) in reasons.iter().take(8) {
        println!("  no handshake on the good listener x{count}: {why}");
    }
    let pass = new_ok
        && after_fds <= idle_fds
        && ratio <= 1.10
        && lines == made
        && whole == lines
        && good_failed == 0
        && status.success();
    println!("  {}", if pass { "PASS" } else { "FAIL" });
    pass
}

fn main() {
    let limit = edgetap::net::limits::raise_open_file_limit().unwrap_or(u64::MAX);
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(limit);
    // The proxy holds two descriptors per relayed connection, plus its own.
    let fit = (hard.saturating_sub(100) / 2) as usize;
    let n = std::env::var("SOAK_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(fit.min(10_000));
    println!("soak: {n} connections (open-file hard limit {hard}: at most {fit} relayed at once)");
    let dir = tempfile::tempdir().unwrap();
    assert!(
        Command::new(env!("CARGO_BIN_EXE_edgetap"))
            .args(["ca", "init", "--dir"])
            .arg(dir.path().join("ca"))
            .output()
            .unwrap()
            .status
            .success()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ok = rt.block_on(async {
        let upstreams = [
            lab_https().await,
            resetting_upstream().await,
            stalling_upstream().await,
        ];
        // SOAK_MODES=passthrough (or intercept) runs one mode only.
        let modes = std::env::var("SOAK_MODES").unwrap_or("passthrough,intercept".into());
        let mut ok = true;
        for mode in ["passthrough", "intercept"] {
            if modes.split(',').any(|m| m.trim() == mode) {
                ok &= soak(mode, n, upstreams, dir.path()).await;
            }
        }
        ok
    });
    if !ok {
        std::process::exit(1);
    }
}
