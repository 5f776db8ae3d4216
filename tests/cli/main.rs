//! Integration tests: run the real `edgetap` binary on real inputs and assert on
//! its JSON and exit status. One binary, one module per area (hickory-dns style).

// A test binary: helpers may unwrap (a panic is a failing test with its location),
// and its items are not public API.
#![allow(clippy::unwrap_used, missing_docs)]

mod conventions;
mod decrypt;
mod errors;
mod export;
mod faults;
mod json_contract;
mod limbo;
mod live;
mod online;
mod openssl_chains;
mod probe;
mod proxy;
mod proxy_srv;
mod regress;
mod relay;
mod replay;
mod report;
mod sample;
mod tidy;
mod transparent;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// A loopback port nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback port that refuses connections for as long as this value lives.
///
/// A port from [`free_port`] is free only when chosen: a test running in
/// parallel may bind it a moment later, and a connection meant to be refused
/// then reaches someone else's server (seen in CI as a TLS "unexpected
/// message"). This socket is bound, so the port cannot be handed out again,
/// but never listens, so the kernel answers every connection with a reset. It
/// is bound without SO_REUSEADDR, so no other socket can share the port.
pub struct RefusedPort {
    _socket: tokio::net::TcpSocket,
    /// The port that refuses.
    pub port: u16,
}

/// Reserve a loopback port that refuses connections (see [`RefusedPort`]).
pub fn refused_port() -> RefusedPort {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    RefusedPort {
        _socket: socket,
        port,
    }
}

/// Whether something accepts connections on loopback `port`, tried every
/// 25 ms up to `tries` times while `running()` holds.
fn accepts_within(port: u16, tries: u32, mut running: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if !running() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    false
}

/// Wait until something accepts connections on loopback `port`.
pub fn wait_listening(port: u16) {
    assert!(
        accepts_within(port, 200, || true),
        "nothing listening on {port}"
    );
}

/// [`wait_listening`] for a `child` we started: if it exits first, or never
/// listens, the panic carries its exit status and what it wrote on stderr
/// (piped), so a failure says why (a full disk, a port taken) instead of only
/// "nothing listening".
pub fn wait_child_listening(child: &mut std::process::Child, port: u16) {
    use std::io::Read;
    if accepts_within(port, 400, || child.try_wait().ok().flatten().is_none()) {
        return;
    }
    let _ = child.kill();
    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    panic!("nothing listening on {port}; the process ended with {status}, stderr:\n{err}");
}

/// The proxy's events file, one JSON value per line (empty if not written yet).
pub fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// curl `https://HOST:PORT/` on loopback trusting `ca`: the HTTP status, then
/// curl's complaint if any ("000..." when no answer came).
pub fn curl(port: u16, host: &str, ca: &Path, extra: &[&str]) -> String {
    curl_trusting(port, host, Some(ca), extra)
}

/// [`curl`] trusting `ca`, or with `None` whatever the server sends (`-k`).
pub fn curl_trusting(port: u16, host: &str, ca: Option<&Path>, extra: &[&str]) -> String {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ])
    .args(extra);
    match ca {
        Some(ca) => cmd.arg("--cacert").arg(ca),
        None => cmd.arg("-k"),
    };
    let out = cmd
        .args([
            "--resolve",
            &format!("{host}:{port}:127.0.0.1"),
            &format!("https://{host}:{port}/"),
        ])
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// `edgetap proxy ARGS`, stdout discarded, stderr piped for [`stop_proxy`].
pub fn spawn_proxy<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_edgetap"))
        .arg("proxy")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Send `signal` (`INT`, `TERM`) to a process and wait for it to exit; killed
/// and a failed test if it takes longer than `within`. Returns its exit status,
/// what it wrote on stderr (stderr must be piped) and how long it took.
pub fn signal_and_wait(
    mut child: std::process::Child,
    signal: &str,
    within: std::time::Duration,
) -> (std::process::ExitStatus, String, std::time::Duration) {
    let started = std::time::Instant::now();
    let pid = child.id().to_string();
    Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not stop within {within:?} of SIG{signal}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err, started.elapsed())
}

/// Ctrl-C a proxy, as an engineer stops it: it must exit successfully within
/// 10 s; returns what it wrote on stderr (stderr must be piped).
pub fn stop_proxy(child: std::process::Child) -> String {
    let (status, err, _) = signal_and_wait(child, "INT", std::time::Duration::from_secs(10));
    assert!(status.success(), "proxy exit {status}: {err}");
    err
}

/// The SHA-256 fingerprints of a handshake's chain, in the order presented.
pub fn chain_sha256s(h: &Value) -> Vec<String> {
    h["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha256"].as_str().unwrap().to_owned())
        .collect()
}

/// A DER certificate as PEM, for the external servers and clients.
pub fn pem(der: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new("CERTIFICATE", der))
}

/// A PKCS#8 DER key as PEM.
pub fn key_pem(pkcs8: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new("PRIVATE KEY", pkcs8))
}

/// The usual lab for `domain`: a deployment (root, issuing CA, its zone),
/// an Expressway-E identity (`expe.DOMAIN`, SAN `collab-edge.DOMAIN`) and an
/// IM&P one (`cup.DOMAIN`, xmppAddr `DOMAIN`), both sent with the intermediate.
pub struct LabPki {
    pub lab: edgetap::lab::deployment::Deployment,
    pub edge: edgetap::lab::Identity,
    pub cup: edgetap::lab::Identity,
}

pub fn lab_pki(name: &str, domain: &str, now: time::OffsetDateTime) -> LabPki {
    let lab = edgetap::lab::deployment::Deployment::new(name, domain, now).unwrap();
    let edge = lab.edge_identity(&lab.fqdn("expe")).unwrap();
    let cup = lab.cup_identity(&lab.fqdn("cup")).unwrap();
    LabPki { lab, edge, cup }
}

/// prosody serving `domain` with `identity` (its whole chain), on loopback.
pub async fn prosody_with(
    dir: &Path,
    domain: &str,
    identity: &edgetap::lab::Identity,
) -> Option<(tokio::process::Child, u16)> {
    let chain: String = identity.chain.iter().map(|c| pem(c)).collect();
    start_prosody(dir, domain, &chain, &key_pem(&identity.key)).await
}

/// The time every fixture is analysed at.
pub const AT: &str = "2026-06-01T00:00:00Z";

/// The edgetap binary under test.
pub fn edgetap() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgetap"))
}

/// Output of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Run edgetap with `args`.
pub fn run(args: &[&str]) -> Run {
    let out = edgetap().args(args).output().expect("edgetap runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The directory of chains made by tests/fixtures/gen-openssl.sh, generated once
/// per script version and reused across test runs (an 8192-bit key takes a while).
pub fn openssl_fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gen-openssl.sh");
        let text = std::fs::read(&script).expect("generator script");
        let stamp = format!("{:016x}", fnv1a(&text));
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openssl-fixtures");
        let stamp_file = dir.join("STAMP");
        if std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
            return dir;
        }
        let _ = std::fs::remove_dir_all(&dir);
        let status = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .status()
            .expect("bash and the openssl CLI are installed (see .ci/run)");
        assert!(status.success(), "gen-openssl.sh failed");
        std::fs::write(&stamp_file, stamp).expect("stamp");
        dir
    })
}

/// Path of a generated chain file, as a string for argv.
pub fn fixture(name: &str) -> String {
    openssl_fixtures().join(name).display().to_string()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Rule IDs of the findings of `h` (a handshake, or the `dns` section), in order.
pub fn finding_rules(h: &Value) -> Vec<String> {
    h["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| f["rule"].as_str().expect("rule id").to_owned())
        .collect()
}

/// Rule IDs of handshake `i`'s findings.
pub fn rules_of(doc: &Value, i: usize) -> Vec<String> {
    finding_rules(&doc["handshakes"][i])
}

/// Whether the external `tool` (as named on the PATH, or a path) can be run,
/// handled one way for every test that drives a real tool: present, true;
/// missing under `CI=true`, the test fails (`.ci/run` installs every tool, so
/// a missing one is a broken set-up, never a silent pass); missing locally,
/// false with a loud line naming what was not tested, and the caller skips.
pub fn tool_present(tool: &str, untested: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "{tool} is not installed, but CI must run {untested} (.ci/run installs it)"
        );
        eprintln!(
            "\n*** SKIPPED: {tool} is not installed (.ci/run installs it); {untested} was not tested ***\n"
        );
    }
    found
}

/// `openssl s_client -starttls xmpp` to `127.0.0.1:port` for `domain`,
/// trusting `ca`: what it printed on stdout.
pub async fn s_client_xmpp(port: u16, domain: &str, ca: &Path) -> String {
    let (domain, ca) = (domain.to_owned(), ca.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-starttls", "xmpp", "-xmpphost", &domain, "-CAfile"])
            .arg(&ca)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run tshark; it must succeed and not call the file damaged or corrupt.
/// Returns what it printed.
pub fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark is installed (see .ci/run)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark {args:?} failed: {stderr}");
    assert!(
        !stderr.contains("damaged") && !stderr.contains("corrupt"),
        "tshark complains: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Outcome of `profile` on handshake `i`.
pub fn outcome(doc: &Value, i: usize, profile: &str) -> String {
    doc["handshakes"][i]["verdicts"][profile]["outcome"]
        .as_str()
        .unwrap_or_else(|| panic!("no verdict for {profile}"))
        .to_owned()
}

/// Start prosody (Debian's XMPP server) for `domain` on a free loopback port with
/// `cert_pem` (leaf first, chain after) and `key_pem`. `None`, said loudly, when
/// prosody is not installed (.ci/run installs it).
pub async fn start_prosody(
    dir: &Path,
    domain: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Option<(tokio::process::Child, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let at = ProsodyAt {
        netns: None,
        interface: "127.0.0.1".into(),
        port,
    };
    start_prosody_at(dir, domain, cert_pem, key_pem, &at)
        .await
        .map(|c| (c, port))
}

/// Where prosody listens: a network namespace (or this one), an address, a port.
pub struct ProsodyAt {
    pub netns: Option<String>,
    pub interface: String,
    pub port: u16,
}

/// Start prosody listening as `at` says; returns once it accepts connections.
pub async fn start_prosody_at(
    dir: &Path,
    domain: &str,
    cert_pem: &str,
    key_pem: &str,
    at: &ProsodyAt,
) -> Option<tokio::process::Child> {
    if !tool_present("/usr/bin/prosody", "the case against a real XMPP server") {
        return None;
    }
    let (port, interface) = (at.port, &at.interface);
    let cert = dir.join(format!("prosody-{port}-cert.pem"));
    let key = dir.join(format!("prosody-{port}-key.pem"));
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let config = format!(
        "pidfile = {pid:?}\ndata_path = {data:?}\nrun_as_root = true\nlog = {{ info = {log:?} }}\nc2s_ports = {{ {port} }}\nc2s_interfaces = {{ {interface:?} }}\ns2s_ports = {{ }}\nmodules_enabled = {{ \"tls\", \"saslauth\", \"disco\" }}\nc2s_require_encryption = true\nVirtualHost \"{domain}\"\n  ssl = {{ certificate = {cert:?}, key = {key:?} }}\n",
        pid = dir.join(format!("prosody-{port}.pid")),
        data = dir,
        log = dir.join(format!("prosody-{port}.log")),
    );
    let cfg = dir.join(format!("prosody-{port}.cfg.lua"));
    std::fs::write(&cfg, config).unwrap();
    let in_ns = |program: &str| {
        let mut c = match &at.netns {
            Some(ns) => {
                let mut c = tokio::process::Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => tokio::process::Command::new(program),
        };
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let child = in_ns("prosody")
        .arg("--config")
        .arg(&cfg)
        .arg("-F")
        .kill_on_drop(true)
        .spawn()
        .expect("prosody starts");
    for _ in 0..300 {
        // bash's /dev/tcp connects from inside the namespace too.
        let up = in_ns("bash")
            .args(["-c", &format!("exec 3<>/dev/tcp/{interface}/{port}")])
            .status()
            .await
            .map(|s| s.success())
            .unwrap_or(false);
        if up {
            return Some(child);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("prosody did not start listening on {interface}:{port}");
}

/// tshark's reading of a capture: time never goes back from one frame to the
/// next (no negative `frame.time_delta`); returns the frame count.
pub fn assert_time_order(path: &str) -> usize {
    let deltas = tshark(&["-r", path, "-T", "fields", "-e", "frame.time_delta"]);
    assert!(
        deltas.lines().all(|d| !d.trim().starts_with('-')),
        "{path}: timestamps go backwards: {deltas}"
    );
    deltas.lines().count()
}

/// The SHA-256 of every certificate tshark decodes in a capture's Certificate
/// messages (with embedded secrets, TLS 1.3 ones too).
pub fn tshark_certificates(path: &str) -> Vec<String> {
    let der = tshark(&[
        "-r",
        path,
        "-Y",
        "tls.handshake.type == 11",
        "-T",
        "fields",
        "-e",
        "tls.handshake.certificate",
    ]);
    der.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|h| !h.is_empty())
        .map(|h| {
            let bytes: Vec<u8> = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            edgetap::core::x509::cert::sha256_hex(&bytes)
        })
        .collect()
}
