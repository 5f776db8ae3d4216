//! Memory per connection served: a proxy in this process relays thousands of
//! short connections, and the heap it holds afterwards must not grow with
//! their number. A counting allocator (stats_alloc) measures the heap exactly
//! (RSS would hide small leaks in allocator noise). This is the regression test for
//! connection tasks that were kept after they finished: the heap is flat to
//! the byte after warm-up, so even a finished task's JoinHandle kept per
//! connection (about 140 bytes) fails it.
//! Its own test binary, because the allocator is global.

#![allow(clippy::unwrap_used, missing_docs)]

use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use edgetap::core::analysis::Engine;
use edgetap::core::analysis::rules::DetectorConfig;
use edgetap::core::observation::Service;
use edgetap::core::x509::TrustStore;
use edgetap::net::probe::Timeouts;
use edgetap::proxy::{Listener, Outputs, Proxy, Recorder, Settings, Upstream};

#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The heap counters are global: the tests here take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Bytes on the heap now (stats_alloc already counts a realloc's growth or
/// shrink in its allocated and deallocated totals).
fn live() -> isize {
    let s = ALLOC.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

/// A proxy in this process relaying plain TCP from a loopback listener to
/// `upstream_port`, idle timeout `idle`; its stop sender (keep it: dropping it
/// stops the proxy), the proxy and the port it listens on.
async fn start_proxy(
    upstream_port: u16,
    idle: Duration,
) -> (tokio::sync::watch::Sender<bool>, Arc<Proxy>, u16) {
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let engine = Engine::new(
        TrustStore::default(),
        TrustStore::default(),
        DetectorConfig::default(),
    );
    let dns =
        edgetap::net::resolve::Dns::new(&["127.0.0.1:9".parse().unwrap()], Duration::from_secs(1))
            .unwrap();
    let step = Duration::from_secs(2);
    let timeouts = Timeouts {
        connect: step,
        starttls: step,
        handshake: step,
    };
    let recorder = Recorder::start(Outputs::default()).unwrap();
    let settings = Settings {
        idle,
        ..Settings::new(engine, dns, timeouts, recorder)
    };
    let proxy = Arc::new(Proxy::new(settings, stop.clone()));
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let listener = Listener {
        socket,
        service: Service::Http,
        service_fixed: true,
        upstreams: std::sync::RwLock::new(vec![Upstream {
            host: "127.0.0.1".into(),
            port: upstream_port,
        }]),
        transparent: false,
        srv: None,
    };
    tokio::spawn(proxy.clone().serve(listener, stop));
    (stop_tx, proxy, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_connections_leave_nothing_behind() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // An upstream that answers each connection with what it read, then closes.
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf).await {
                    let _ = s.write_all(&buf[..n]).await;
                }
            });
        }
    });
    let (_stop_tx, proxy, port) = start_proxy(echo_port, Duration::from_secs(5)).await;

    let round = |n: usize| async move {
        for _ in 0..n {
            let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            c.write_all(b"ping").await.unwrap();
            let mut back = Vec::new();
            let _ = c.read_to_end(&mut back).await;
            assert_eq!(back, b"ping");
        }
    };
    let settle = || async {
        for _ in 0..300 {
            if proxy.active() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Warm up: the runtime, the recorder and the allocator reach their sizes.
    round(200).await;
    settle().await;
    let before = live();
    let n: usize = 2_000;
    round(n).await;
    settle().await;
    let after = live();
    assert_eq!(proxy.active(), 0);
    let per_connection = (after - before) as f64 / n as f64;
    eprintln!(
        "heap: {before} bytes after 200 connections, {after} after {}; {per_connection:.1} bytes per connection",
        200 + n
    );
    assert!(
        per_connection < 16.0,
        "the heap grew by {per_connection:.0} bytes per connection served ({before} -> {after}): finished connections are retained"
    );
}

/// What an open, idle connection costs: 500 plain connections through the
/// proxy, each having carried one request and its answer, then held open.
/// The heap they hold, counted exactly, stays under 6 KiB each (the task, the
/// two sockets' halves, the event being built). Before, every connection's
/// task was sized for intercept mode's state (10.4 KiB) whatever its mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_holds_little() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // An upstream that answers each request and keeps the connection open.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_port = upstream.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = upstream.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let (_stop_tx, proxy, port) = start_proxy(up_port, Duration::from_secs(60)).await;
    let open = |n: usize| async move {
        let mut held = Vec::new();
        for _ in 0..n {
            let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            c.write_all(b"ping").await.unwrap();
            let mut back = [0u8; 4];
            c.read_exact(&mut back).await.unwrap();
            held.push(c);
        }
        held
    };
    // Warm up, then measure the heap before and with 500 idle connections.
    let warm = open(50).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = live();
    let n = 500;
    let held = open(n).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let with = live();
    assert_eq!(proxy.active(), n + warm.len());
    let per_connection = (with - before) as f64 / n as f64;
    eprintln!("heap: {per_connection:.0} bytes per idle plain connection");
    assert!(
        per_connection < 6.0 * 1024.0,
        "an idle connection holds {per_connection:.0} bytes of heap"
    );
    drop((held, warm));
}
