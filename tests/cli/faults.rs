//! Faults around a running proxy, through the real binary: a capture and
//! events file on a disk that fills up (a small tmpfs the test mounts), on a
//! disk that stalls (a pipe nobody reads), an upstream that accepts and never
//! answers (passthrough and intercept), and SIGTERM in the middle of heavy
//! load. Each time relaying goes on (or stops cleanly), what was lost is said
//! once, and the files left behind are valid up to the failure. (DNS failing
//! mid-run is in `proxy_srv::srv_listener_follows_changed_records`.)

use crate::relay::{Kill, echo_round_trip, pattern, socat};
use crate::{events, free_port, stop_proxy, wait_listening};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A tmpfs of `kib` KiB mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    /// None (with the reason) where this machine does not let the test mount.
    fn mount(kib: u32) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(SmallDisk { _dir: dir, path })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Every line of an events file is one whole JSON object.
fn whole_lines(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends mid-line",
        path.display()
    );
    for line in text.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("{}: not a whole JSON line ({e}): {line}", path.display()));
    }
    text.lines().count()
}

/// What edgetap's own reader and, where installed, tshark say of a capture:
/// the frames read; panics if either finds it damaged.
fn capture_frames(path: &Path) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .args(["replay", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("replay: {}", String::from_utf8_lossy(&out.stderr)));
    let file = &doc["capture"][0];
    assert!(file["error"].is_null(), "{file}");
    assert!(file["truncated"].is_null(), "the capture is cut: {file}");
    if crate::tool_present("tshark", "tshark reading the capture written under load") {
        let t = Command::new("tshark").arg("-r").arg(path).output().unwrap();
        let complaint = String::from_utf8_lossy(&t.stderr);
        assert!(
            t.status.success()
                && !["cut short", "damaged", "corrupt"]
                    .iter()
                    .any(|w| complaint.contains(w)),
            "tshark: {complaint}"
        );
    }
    file["stats"]["frames"].as_u64().unwrap_or(0)
}

/// The capture and events file on a 256 KiB disk: relaying goes on after it
/// fills, each file's failure is said once, and both files hold only whole
/// records (the capture ends at its last complete write).
#[test]
fn a_disk_that_fills_up_leaves_whole_files_and_relaying_goes_on() {
    let disk = match SmallDisk::mount(256) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("\n*** SKIPPING: cannot mount a small tmpfs here ({why}) ***\n");
            return;
        }
    };
    let echo_port = free_port();
    let _echo = socat(echo_port, "cat");
    let port = free_port();
    let pcap = disk.path.join("cap.pcapng");
    let ev = disk.path.join("events.jsonl");
    let child = crate::spawn_proxy(&[
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &format!("127.0.0.1:{echo_port}"),
        "--service",
        "http",
        "--pcap",
        pcap.to_str().unwrap(),
        "--events",
        ev.to_str().unwrap(),
    ]);
    wait_listening(port);
    // 40 connections of 16 KiB each way: far more than the disk holds.
    let data = pattern(16 * 1024);
    for _ in 0..40 {
        assert_eq!(echo_round_trip(port, &data), data, "relayed unchanged");
    }
    std::thread::sleep(Duration::from_millis(500));
    let err = stop_proxy(child);
    assert_eq!(
        err.matches("writing the capture failed").count(),
        1,
        "{err}"
    );
    assert!(err.contains("frame(s) not written to the capture"), "{err}");
    let frames = capture_frames(&pcap);
    assert!(
        frames > 0,
        "the connections before the disk filled are kept"
    );
    let lines = whole_lines(&ev);
    assert!(
        lines <= 41,
        "{lines} event lines (40 and the readiness check)"
    );
}

/// A disk that stalls (the events file and capture are pipes a process holds
/// open and never reads): relaying goes on, and stopping takes bounded time
/// and says what was lost.
#[test]
fn a_disk_that_stalls_never_holds_up_relaying_or_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("events.fifo");
    let pcap = dir.path().join("cap.fifo");
    for f in [&ev, &pcap] {
        assert!(Command::new("mkfifo").arg(f).status().unwrap().success());
    }
    // Opens both for reading (so the proxy's opens succeed), never reads.
    let _holder = Kill(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec 3<'{}' 4<'{}'; sleep 600",
                ev.display(),
                pcap.display()
            ))
            .spawn()
            .unwrap(),
    );
    let echo_port = free_port();
    let _echo = socat(echo_port, "cat");
    let port = free_port();
    let child = crate::spawn_proxy(&[
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &format!("127.0.0.1:{echo_port}"),
        "--service",
        "http",
        "--pcap",
        pcap.to_str().unwrap(),
        "--events",
        ev.to_str().unwrap(),
    ]);
    wait_listening(port);
    let data = pattern(64 * 1024);
    let t = Instant::now();
    for _ in 0..60 {
        assert_eq!(echo_round_trip(port, &data), data);
    }
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "relaying slowed to {:?} for 60 connections",
        t.elapsed()
    );
    // Stopping: the grace period (5 s, nothing open) and the writer's bound (10 s).
    let (status, err, took) = crate::signal_and_wait(child, "INT", Duration::from_secs(40));
    assert!(status.success(), "exit {status}: {err}");
    assert!(
        took < Duration::from_secs(20),
        "stopping took {took:?}: {err}"
    );
    assert!(err.contains("did not finish writing within"), "{err}");
}

/// An upstream that accepts and never says a word. Passthrough: the client's
/// connection ends at the idle timeout with the reason in its event, while
/// another listener relays as usual. Intercept: the proxy's own handshake
/// with it times out and the client is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_answers_ends_only_its_own_connection() {
    if !crate::tool_present(
        "openssl",
        "an_upstream_that_never_answers_ends_only_its_own_connection",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    // Accepts and holds every connection without reading or writing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let echo_port = free_port();
    let _echo = socat(echo_port, "cat");
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
    for intercept in [false, true] {
        let (a, b) = (free_port(), free_port());
        let ev = dir.path().join(format!("events-{intercept}.jsonl"));
        let cfg = dir.path().join("silent.toml");
        std::fs::write(
            &cfg,
            format!(
                "events = {ev:?}\nidle_timeout_secs = 2\nconnect_timeout_secs = 1\n\n[[listener]]\nlisten = \"127.0.0.1:{a}\"\nupstream = \"127.0.0.1:{silent_port}\"\nservice = \"http\"\n\n[[listener]]\nlisten = \"127.0.0.1:{b}\"\nupstream = \"127.0.0.1:{echo_port}\"\nservice = \"http\"\n"
            ),
        )
        .unwrap();
        let mut args = vec!["--config", cfg.to_str().unwrap()];
        if intercept {
            args.extend(["--intercept", "--ca", ca_dir.to_str().unwrap()]);
        }
        let child = crate::spawn_proxy(&args);
        wait_listening(a);
        wait_listening(b);
        let t = Instant::now();
        let client = tokio::task::spawn_blocking(move || {
            Command::new("openssl")
                .args(["s_client", "-connect"])
                .arg(format!("127.0.0.1:{a}"))
                .args(["-servername", "expe.example.com"])
                .stdin(Stdio::piped()) // held open: the client waits on the proxy
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
                .wait_with_output()
        });
        // Meanwhile the other listener relays (plain bytes: passthrough only).
        if !intercept {
            let relayed = tokio::task::spawn_blocking(move || echo_round_trip(b, b"meanwhile\n"))
                .await
                .unwrap();
            assert_eq!(relayed, b"meanwhile\n");
        }
        tokio::time::timeout(Duration::from_secs(20), client)
            .await
            .unwrap_or_else(|_| panic!("intercept={intercept}: the client was never let go"))
            .unwrap()
            .unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "intercept={intercept}: let go after {:?}",
            t.elapsed()
        );
        let err = tokio::task::spawn_blocking(move || stop_proxy(child))
            .await
            .unwrap();
        let events = events(&ev);
        // The last one: wait_listening's own connect-and-close came first.
        let doomed = events
            .iter()
            .rfind(|e| e["upstream"] == format!("127.0.0.1:{silent_port}"))
            .unwrap_or_else(|| panic!("intercept={intercept}: no event for it: {events:?}\n{err}"));
        let reason = doomed["close_reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("idle") || reason.contains("timed out") || reason.contains("no answer"),
            "intercept={intercept}: {doomed}"
        );
    }
}

/// SIGTERM while 40 connections move bulk data and a capture is written: the
/// proxy stops within its grace period plus the writer's bound, exits 0, and
/// leaves a readable capture and whole event lines.
#[test]
fn sigterm_under_heavy_load_stops_cleanly_with_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let echo_port = free_port();
    let _echo = socat(echo_port, "cat");
    let port = free_port();
    let pcap = dir.path().join("cap.pcapng");
    let ev = dir.path().join("events.jsonl");
    let child = crate::spawn_proxy(&[
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &format!("127.0.0.1:{echo_port}"),
        "--service",
        "http",
        "--pcap",
        pcap.to_str().unwrap(),
        "--events",
        ev.to_str().unwrap(),
    ]);
    wait_listening(port);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..40 {
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || {
            let chunk = pattern(32 * 1024);
            let mut done = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                    break;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                let mut back = vec![0u8; chunk.len()];
                if s.write_all(&chunk).is_err() || s.read_exact(&mut back).is_err() {
                    break;
                }
                done += 1;
            }
            done
        }));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (status, err, _) = crate::signal_and_wait(child, "TERM", Duration::from_secs(30));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let done: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(status.success(), "exit {status}: {err}");
    assert!(err.contains("stopped after"), "{err}");
    assert!(done > 40, "load was running: {done} round trips");
    assert!(capture_frames(&pcap) > 0);
    let lines = whole_lines(&ev);
    assert!(
        lines >= done,
        "{lines} event lines for {done} finished connections"
    );
}

/// A second Ctrl-C stops at once: the grace period (30 s here) for open
/// connections is cut short, the open one is closed and its event written.
#[test]
fn a_second_ctrl_c_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = upstream.local_addr().unwrap();
    // Accepts and holds every connection, silent.
    std::thread::spawn(move || {
        let held: Vec<_> = upstream.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
    let port = free_port();
    let cfg = dir.path().join("p.toml");
    let ev = dir.path().join("events.jsonl");
    std::fs::write(
        &cfg,
        format!(
            "grace_secs = 30\nevents = {ev:?}\n[[listener]]\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{up}\"\nservice = \"http\"\n"
        ),
    )
    .unwrap();
    let mut proxy = crate::spawn_proxy(&["--config", cfg.to_str().unwrap()]);
    crate::wait_child_listening(&mut proxy, port);
    let mut held = TcpStream::connect(("127.0.0.1", port)).unwrap();
    held.write_all(b"hello").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = proxy.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        proxy.try_wait().unwrap().is_none(),
        "the grace period holds after one Ctrl-C"
    );
    let (status, err, took) = crate::signal_and_wait(proxy, "INT", Duration::from_secs(10));
    assert!(status.success(), "{err}");
    assert!(
        took < Duration::from_secs(8),
        "stopped {took:?} after the second Ctrl-C: {err}"
    );
    assert!(
        err.contains("Ctrl-C again to stop at once") && err.contains("stopping now"),
        "{err}"
    );
    let written = events(&ev);
    assert!(
        written.iter().any(|e| e["bytes_up"] == 5),
        "the open connection's event is written: {written:?}"
    );
    drop(held);
}
