//! The proxy's live view on a real terminal: `edgetap proxy` runs inside tmux
//! (a pseudo-terminal, so stdout is a terminal and the view starts), curl
//! makes real TLS connections through it, and the test reads the screen with
//! `tmux capture-pane` and types with `tmux send-keys`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{events, free_port, wait_listening};

/// A tmux server of this test's own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The visible screen, as text.
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "live"])
    }

    /// Wait until the screen shows every one of `wants`; the screen either way.
    fn wait_for(&self, wants: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if wants.iter().all(|w| screen.contains(w)) || Instant::now() > deadline {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "live"];
        args.extend_from_slice(keys);
        self.run(&args);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_shows_handshakes_filters_and_quits_under_tmux() {
    if !crate::tool_present("tmux", "the live view") {
        return;
    }
    let upstream = edgetap::lab::serve_https("Live Test Root", "expe.example.com")
        .await
        .unwrap();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let events_file = dir.path().join("events.jsonl");
    let pcap = dir.path().join("live.pcapng");
    let command = format!(
        "{bin} proxy --listen 127.0.0.1:{port} --upstream 127.0.0.1:{up} --service http --events {ev} --pcap {pcap}; echo EDGETAP-EXIT=$?; sleep 60",
        bin = env!("CARGO_BIN_EXE_edgetap"),
        up = upstream.port(),
        ev = events_file.display(),
        pcap = pcap.display(),
    );
    let tmux = Tmux {
        socket: format!("edgetap-live-{}", std::process::id()),
    };
    tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "160",
        "-y",
        "45",
        "-s",
        "live",
        "sh",
        "-c",
        &command,
    ]);
    tokio::task::spawn_blocking(move || wait_listening(port))
        .await
        .unwrap();
    // wait_listening's own connection (no bytes) is the first one counted.
    let screen = tmux.wait_for(&["/ total 1"], Duration::from_secs(10));
    assert!(
        screen.contains("edgetap proxy passthrough on 127.0.0.1:")
            && screen.contains("jabber")
            && screen.contains("expressway-c"),
        "the live view did not start:\n{screen}"
    );

    for _ in 0..3 {
        let got = tokio::task::spawn_blocking(move || {
            crate::curl_trusting(port, "expe.example.com", None, &[])
        })
        .await
        .unwrap();
        assert!(got.starts_with("200"), "curl through the proxy: {got}");
    }
    let screen = tmux.wait_for(
        &["total 4", "handshakes 3", "(3 shown)"],
        Duration::from_secs(10),
    );
    assert!(
        screen.contains("handshakes 3"),
        "three rows expected:\n{screen}"
    );
    // The lab root is in no store: every profile's verdict is bad, and the
    // selected (newest) row's findings and fixes are shown below the table.
    let written = events(&events_file);
    assert_eq!(written.len(), 4, "one event per connection");
    let first_rule = written[3]["handshake"]["findings"][0]["rule"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        screen.contains("expe.example.com")
            && screen.contains(&first_rule)
            && screen.contains("fix:"),
        "the selected row's findings ({first_rule}) are not shown:\n{screen}"
    );
    assert!(screen.contains("fail"), "{screen}");

    // f cycles the filter; everything here is fail, so all three stay.
    tmux.keys(&["f"]);
    let screen = tmux.wait_for(&["filter: warn or worse"], Duration::from_secs(5));
    assert!(
        screen.contains("filter: warn or worse") && screen.contains("(3 shown)"),
        "{screen}"
    );
    tmux.keys(&["Up"]);
    tmux.keys(&["f", "f", "f"]);
    let screen = tmux.wait_for(&["filter: all"], Duration::from_secs(5));
    assert!(screen.contains("filter: all"), "{screen}");

    // q stops the proxy as Ctrl-C does: the terminal comes back, the proxy
    // says what it did and exits 0, and its files are complete.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for(&["EDGETAP-EXIT="], Duration::from_secs(15));
    assert!(
        screen.contains("EDGETAP-EXIT=0"),
        "the proxy did not exit cleanly:\n{screen}"
    );
    assert!(
        screen.contains("stopped after 3 handshakes") && !screen.contains("handshakes (3 shown)"),
        "the terminal was not given back:\n{screen}"
    );
    let replay = edgetap_replay(&pcap);
    assert!(replay.contains("3 TLS handshakes"), "{replay}");
}

fn edgetap_replay(pcap: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .arg("replay")
        .arg(pcap)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
