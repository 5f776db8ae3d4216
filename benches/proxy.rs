//! Proxy benchmark, one run, ratios against baselines measured in the same run:
//! bulk throughput through `edgetap proxy` (passthrough) vs a direct loopback
//! connection and vs socat; new connections per second through the proxy vs
//! direct; resident memory per idle TLS connection at 1k and 10k connections;
//! and, between network namespaces, a routed gateway vs edgetap inline.
//! Run: `cargo bench --bench proxy` (needs socat for that baseline).

// A benchmark binary: a failed setup step should stop it with its location.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BULK: usize = 1 << 30; // 1 GiB per throughput run
const CONNS: usize = 2000;

fn sink() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = vec![0u8; 256 * 1024];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait(port: u16) {
    for _ in 0..400 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing on {port}");
}

fn bulk(to: SocketAddr) -> f64 {
    let mut s = TcpStream::connect(to).unwrap();
    let chunk = vec![0x5au8; 256 * 1024];
    let t = Instant::now();
    let mut sent = 0;
    while sent < BULK {
        s.write_all(&chunk).unwrap();
        sent += chunk.len();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = [0u8; 16];
    let _ = s.read(&mut rest); // wait for the far side to finish
    (sent as f64 / 1e6) / t.elapsed().as_secs_f64()
}

fn conn_rate(to: SocketAddr) -> f64 {
    let t = Instant::now();
    for _ in 0..CONNS {
        let mut s = TcpStream::connect(to).unwrap();
        s.write_all(b"hello").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut b = [0u8; 8];
        let _ = s.read(&mut b);
    }
    CONNS as f64 / t.elapsed().as_secs_f64()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are 14th and 15th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// The inline-gateway comparison (benches/gateway.sh): routed vs through
/// edgetap in transparent mode, between network namespaces, at veth speed
/// and on a 1 Gbit/s link. Needs root, iproute2, iptables and iperf3.
fn gateway() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/gateway.sh");
    match Command::new("bash")
        .args([script, env!("CARGO_BIN_EXE_edgetap")])
        .output()
    {
        Ok(out) if out.status.success() => {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if let [_, link, _, routed, _, through, _, ratio] = f[..] {
                    println!(
                        "  gateway ({link}): routed {routed} Mbit/s, through edgetap (transparent) {through} Mbit/s = {ratio}x"
                    );
                }
            }
        }
        Ok(out) => println!(
            "  gateway: skipped ({})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("failed")
        ),
        Err(e) => println!("  gateway: skipped ({e})"),
    }
}

fn proxy(upstream: SocketAddr) -> (Child, SocketAddr) {
    let port = free_port();
    let child = Command::new("bash")
        .args(["-c", &format!(
            "ulimit -n $(ulimit -Hn); exec {} proxy --listen 127.0.0.1:{port} --upstream {upstream} --service http",
            env!("CARGO_BIN_EXE_edgetap")
        )])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait(port);
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The open-file limit a process of ours can raise itself to.
fn fd_limit() -> u64 {
    let out = Command::new("bash")
        .args(["-c", "ulimit -Hn"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(1024)
}

fn main() {
    if std::env::args().any(|a| a == "--idle-upstream") {
        return idle_upstream();
    }
    let up = sink();
    let (mut px, through) = proxy(up);
    // The proxy's own pid (bash exec'd into it).
    let pid = px.id();

    println!("proxy benchmark (release, loopback, 2 cores), median of 3");
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[1]
    };
    let direct = median((0..3).map(|_| bulk(up)).collect());
    let cpu_before = cpu_secs(pid);
    let proxied = median((0..3).map(|_| bulk(through)).collect());
    let cpu_per_gib = (cpu_secs(pid) - cpu_before) / 3.0;
    println!(
        "  bulk 1 GiB: direct {direct:.0} MB/s, edgetap passthrough {proxied:.0} MB/s = {:.2}x direct \
         (edgetap used {cpu_per_gib:.2} CPU-s per GiB; sender, edgetap and receiver share 2 cores)",
        proxied / direct
    );
    let socat_port = free_port();
    match Command::new("socat")
        .args([
            &format!("TCP-LISTEN:{socat_port},bind=127.0.0.1,fork,reuseaddr"),
            &format!("TCP:{up}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(mut socat) => {
            wait(socat_port);
            let s = median(
                (0..3)
                    .map(|_| bulk(SocketAddr::from(([127, 0, 0, 1], socat_port))))
                    .collect(),
            );
            println!(
                "  bulk 1 GiB: socat {s:.0} MB/s; edgetap / socat = {:.2}x",
                proxied / s
            );
            let _ = socat.kill();
            let _ = socat.wait();
        }
        Err(_) => println!("  socat not installed: no socat baseline"),
    }

    let d = conn_rate(up);
    let p = conn_rate(through);
    println!(
        "  new connections: direct {d:.0}/s, edgetap passthrough {p:.0}/s = {:.2}x direct",
        p / d
    );

    tls_rates();
    gateway();

    idle_memory();
    let _ = px.kill();
    let _ = px.wait();
}

/// A lab HTTPS server for expe.example.com (a leaf from a fresh root).
async fn lab_https() -> SocketAddr {
    edgetap::lab::serve_https("Bench Root", "expe.example.com")
        .await
        .unwrap()
}

/// A TLS handshake with `to` for expe.example.com. The client configuration is
/// new each time, so no session is resumed: every handshake is a full one.
async fn full_handshake(
    to: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let verifier = edgetap::net::tls::RecordingVerifier::new(edgetap::net::tls::provider());
    let config =
        std::sync::Arc::new(edgetap::net::tls::observing_client_config(verifier, &[]).unwrap());
    let tcp = tokio::net::TcpStream::connect(to).await?;
    let name = rustls::pki_types::ServerName::try_from("expe.example.com").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// The upstream for the idle-memory run, in its own process so that its
/// sockets do not count against the benchmark's open-file limit: a TLS server
/// that completes each handshake and then waits. Prints its address.
fn idle_upstream() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("{}", lab_https().await);
        std::future::pending::<()>().await;
    });
}

/// Resident memory per idle connection: TLS connections that completed their
/// handshake through passthrough (so the observer and analysis ran) and then
/// stay silent, at 1,000 and at as close to 10,000 as the open-file limit lets
/// one proxy hold (two descriptors per connection plus its own dozen).
fn idle_memory() {
    let limit = fd_limit();
    let mut upstream = Command::new(std::env::current_exe().unwrap())
        .arg("--idle-upstream")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(upstream.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let up: SocketAddr = line.trim().parse().unwrap();
    let (mut px, through) = proxy(up);
    let pid = px.id();
    let most = ((limit.saturating_sub(16)) / 2).min(10_000) as usize;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for n in [1000usize, most] {
        std::thread::sleep(Duration::from_millis(500));
        let before = rss_kib(pid);
        let held = rt.block_on(async {
            let mut held = Vec::with_capacity(n);
            for _ in 0..n {
                match full_handshake(through).await {
                    Ok(t) => held.push(t),
                    Err(e) => {
                        println!(
                            "  idle memory at {n}: stopped at {} connections ({e})",
                            held.len()
                        );
                        break;
                    }
                }
            }
            held
        });
        // Let the analysis tasks of the last handshakes finish.
        std::thread::sleep(Duration::from_millis(2000));
        let after = rss_kib(pid);
        println!(
            "  idle memory: {} TLS connections (handshake done, then silent) add {} KiB RSS = {:.1} KiB per connection",
            held.len(),
            after.saturating_sub(before),
            after.saturating_sub(before) as f64 / held.len().max(1) as f64
        );
        drop(held);
        std::thread::sleep(Duration::from_millis(2000));
    }
    let _ = px.kill();
    let _ = px.wait();
    let _ = upstream.kill();
    let _ = upstream.wait();
}

/// TLS handshakes per second: direct to a TLS server, through passthrough, and
/// through intercept mode (two handshakes and a forged leaf per connection).
fn tls_rates() {
    const N: usize = 300;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        #[allow(clippy::disallowed_methods)]
        let now = time::OffsetDateTime::now_utc();
        let server = lab_https().await;
        let dir = std::env::temp_dir().join(format!("edgetap-bench-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        edgetap::proxy::ca::init(&dir, now).unwrap();
        let (mut pass, pass_addr) = proxy(server);
        let port = free_port();
        let mut intercept = Command::new(env!("CARGO_BIN_EXE_edgetap"))
            .args(["proxy", "--intercept", "--ca"])
            .arg(&dir)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--upstream", &server.to_string(), "--service", "http"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait(port);
        let rate = |to: SocketAddr| async move {
            let t = Instant::now();
            for _ in 0..N {
                let mut tls = full_handshake(to).await.unwrap();
                use tokio::io::AsyncWriteExt;
                let _ = tls.shutdown().await;
            }
            N as f64 / t.elapsed().as_secs_f64()
        };
        let direct = rate(server).await;
        let passthrough = rate(pass_addr).await;
        let intercepted = rate(SocketAddr::from(([127, 0, 0, 1], port))).await;
        println!(
            "  TLS handshakes: direct {direct:.0}/s, passthrough {passthrough:.0}/s ({:.2}x), intercept {intercepted:.0}/s ({:.2}x)",
            passthrough / direct,
            intercepted / direct
        );
        let _ = pass.kill();
        let _ = pass.wait();
        let _ = intercept.kill();
        let _ = intercept.wait();
        let _ = std::fs::remove_dir_all(&dir);
    });
}
