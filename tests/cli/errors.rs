//! Bad input: exit status 2 and a message that names the file and the problem.

use crate::{fixture, run};

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[track_caller]
fn fails_with(args: &[&str], needles: &[&str]) {
    let out = run(args);
    assert_eq!(
        out.code, 2,
        "expected exit 2, got {}: {}",
        out.code, out.stderr
    );
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            out.stderr
        );
    }
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout on error: {}",
        out.stdout
    );
}

#[test]
fn unreadable_file() {
    fails_with(
        &[
            "inspect",
            "/nonexistent/chain.pem",
            "--name",
            "a.example.com",
        ],
        &["/nonexistent/chain.pem", "cannot read"],
    );
}

#[test]
fn private_key_instead_of_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let key = std::fs::read(crate::openssl_fixtures().join("work/good.key")).unwrap();
    let path = write(&dir, "server.key", &key);
    fails_with(
        &["inspect", &path, "--name", "a.example.com"],
        &["server.key", "PRIVATE KEY, not a certificate"],
    );
}

#[test]
fn truncated_pem() {
    let dir = tempfile::tempdir().unwrap();
    let pem = std::fs::read_to_string(fixture("good-edge.pem")).unwrap();
    let cut = &pem[..pem.len() / 3];
    let path = write(&dir, "cut.pem", cut.as_bytes());
    fails_with(
        &["inspect", &path, "--name", "a.example.com"],
        &["cut.pem", "truncated"],
    );
}

#[test]
fn garbage_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let junk = write(&dir, "junk.bin", b"\x00\x01 not a certificate at all");
    fails_with(
        &["inspect", &junk, "--name", "a.example.com"],
        &["junk.bin", "not a certificate"],
    );
    let empty = write(&dir, "empty.pem", b"");
    fails_with(
        &["inspect", &empty, "--name", "a.example.com"],
        &["empty.pem", "empty"],
    );
}

#[test]
fn bad_trust_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = write(
        &dir,
        "roots.pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    fails_with(
        &[
            "inspect",
            &fixture("good-edge.pem"),
            "--name",
            "a.example.com",
            "--trust",
            &junk,
        ],
        &["roots.pem", "not a valid X.509"],
    );
}

#[test]
fn usage_errors() {
    let chain = fixture("good-edge.pem");
    fails_with(&["inspect", &chain], &["--name"]);
    fails_with(
        &["inspect", &chain, "--name", "a", "--at", "yesterday"],
        &["RFC 3339"],
    );
    fails_with(
        &["inspect", &chain, "--name", "a", "--service", "ftp"],
        &["invalid value 'ftp'", "[possible values: http, xmpp, sip]"],
    );
}

#[test]
fn der_input_is_accepted() {
    if !crate::tool_present("openssl", "der_input_is_accepted") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let der = std::process::Command::new("openssl")
        .args(["x509", "-outform", "der", "-in"])
        .arg(crate::openssl_fixtures().join("work/good.crt"))
        .output()
        .unwrap()
        .stdout;
    let path = write(&dir, "leaf.der", &der);
    let out = run(&[
        "inspect",
        &path,
        "--name",
        "expe.example.com",
        "--format",
        "json",
        "--at",
        crate::AT,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.json()["handshakes"][0]["chain"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A file that is not a capture beside a good one: the good one is reported,
/// the command still exits 2, and the error is said once, on stderr.
#[test]
fn replay_with_one_unreadable_file_exits_2_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("garbage.bin");
    std::fs::write(&junk, b"garbage").unwrap();
    let good = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/captures/ppp__tls.pcap"
    );
    let out = run(&[
        "replay",
        good,
        &junk.display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        !out.json()["handshakes"].as_array().unwrap().is_empty(),
        "the good file is reported"
    );
    assert_eq!(
        out.stderr.matches("not a pcap or pcapng file").count(),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("garbage.bin").count(),
        1,
        "{}",
        out.stderr
    );
}

/// Targets that are neither a domain nor HOST:PORT are usage errors, said
/// plainly, before any DNS traffic.
#[test]
fn bad_targets_are_usage_errors() {
    for args in [
        &["probe", "127.0.0.1:99999"][..],
        &["probe", "127.0.0.1"],
        &["discover", ""],
        &["discover", "bad..domain"],
    ] {
        let out = run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stdout);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert!(
            !out.stderr.contains("Err(") && !out.stderr.contains("protocol error"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// `--at` takes a bare date as 00:00 UTC.
#[test]
fn at_takes_a_bare_date() {
    let chain = crate::fixture("good-edge.pem");
    let out = run(&[
        "inspect",
        &chain,
        "--name",
        "expe.example.com",
        "--at",
        "2026-06-01",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["analysed_at"], "2026-06-01T00:00:00Z");
}

/// Options that would silently do nothing are refused before any work: a key
/// log or a CA without intercept mode, a zero capture size, `--service` with
/// the sample, a demo capture that cannot be written.
#[test]
fn options_that_would_do_nothing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("k.log").display().to_string();
    let ca = dir.path().join("ca").display().to_string();
    let listen = ["--listen", "127.0.0.1:1", "--upstream", "127.0.0.1:2"];
    for extra in [
        &["--keylog", keys.as_str()][..],
        &["--ca", ca.as_str()],
        &["--pcap-max-mb", "0"],
    ] {
        let mut args = vec!["proxy"];
        args.extend_from_slice(&listen);
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(out.code, 2, "{extra:?}: {}", out.stderr);
    }
    let keylog = run(&[&["proxy"][..], &listen, &["--keylog", keys.as_str()]].concat());
    assert!(keylog.stderr.contains("--intercept"), "{}", keylog.stderr);
    assert!(!std::path::Path::new(&keys).exists(), "nothing was written");

    let sample = run(&["inspect", "--sample", "--service", "xmpp"]);
    assert_eq!(sample.code, 2, "{}", sample.stderr);

    let started = std::time::Instant::now();
    let demo = run(&["demo", "--pcap", &dir.path().display().to_string()]);
    assert_eq!(demo.code, 2, "a directory is not a capture file");
    assert!(
        demo.stdout.is_empty(),
        "refused before the demo ran: {}",
        demo.stdout
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

/// `-v` logs carry no colour codes when stderr is not a terminal.
#[test]
fn logs_are_plain_when_not_on_a_terminal() {
    // A dead nameserver on loopback: the resolver logs its queries at debug level.
    let dead = crate::free_port().to_string();
    let out = run(&[
        "-vv",
        "discover",
        "example.com",
        "--nameserver",
        &format!("127.0.0.1:{dead}"),
        "--dns-timeout",
        "1",
    ]);
    assert!(
        out.stderr.contains("DEBUG"),
        "logs were written: {}",
        out.stderr
    );
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
}

/// What certificate teams hand out instead of a certificate file gets a plain
/// message saying what it is and what to do; an OS error is said once.
#[test]
fn keys_pkcs12_and_empty_files_are_named() {
    if !crate::tool_present("openssl", "keys_pkcs12_and_empty_files_are_named") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f).display().to_string();
    let openssl = |args: &[&str]| {
        let ok = std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is installed (.ci/run installs it)")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    openssl(&["genrsa", "-out", &d("k.pem"), "2048"]);
    openssl(&[
        "rsa",
        "-in",
        &d("k.pem"),
        "-outform",
        "DER",
        "-out",
        &d("k.der"),
    ]);
    openssl(&[
        "req",
        "-x509",
        "-key",
        &d("k.pem"),
        "-subj",
        "/CN=a",
        "-days",
        "30",
        "-out",
        &d("c.pem"),
    ]);
    openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        &d("c.pem"),
        "-outform",
        "DER",
        "-out",
        &d("c.p7b"),
    ]);
    openssl(&[
        "pkcs12",
        "-export",
        "-in",
        &d("c.pem"),
        "-inkey",
        &d("k.pem"),
        "-out",
        &d("c.p12"),
        "-passout",
        "pass:x",
    ]);
    for (file, says) in [("k.der", "a private key (DER)"), ("c.p12", "PKCS#12")] {
        let out = run(&["inspect", &d(file), "--name", "a"]);
        assert_eq!(out.code, 2);
        assert!(out.stderr.contains(says), "{file}: {}", out.stderr);
        assert!(
            !out.stderr.contains("UnexpectedTag"),
            "{file}: {}",
            out.stderr
        );
    }
    let missing = run(&["inspect", &d("nonexist.pem"), "--name", "a"]);
    assert_eq!(
        missing.stderr.matches("os error 2").count(),
        1,
        "{}",
        missing.stderr
    );
    std::fs::write(d("empty.pcap"), b"").unwrap();
    let empty = run(&["replay", &d("empty.pcap")]);
    assert_eq!(empty.code, 2);
    assert!(
        empty.stderr.contains("the file is empty"),
        "{}",
        empty.stderr
    );
}

/// Bundles certificate teams hand out: PKCS#7 (DER and PEM, its set stored
/// in sorted order, not chain order) and PKCS#12 (with its password) give the
/// chain leaf first; a PEM bundle
/// with the private key beside the certificates is read with a note, the key
/// skipped; a file holding only a key stays an error.
#[test]
fn pkcs7_pkcs12_and_keys_beside_certificates_are_read() {
    if !crate::tool_present(
        "openssl",
        "pkcs7_pkcs12_and_keys_beside_certificates_are_read",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f).display().to_string();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl is installed (.ci/run installs it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &d("ca.key"),
        "-out",
        &d("ca.pem"),
        "-subj",
        "/CN=Bundle Root",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &d("leaf.key"),
        "-out",
        &d("leaf.csr"),
        "-subj",
        "/CN=expe.example.com",
    ]);
    std::fs::write(
        d("ext"),
        "subjectAltName=DNS:expe.example.com\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &d("leaf.csr"),
        "-CA",
        &d("ca.pem"),
        "-CAkey",
        &d("ca.key"),
        "-CAcreateserial",
        "-days",
        "20",
        "-extfile",
        &d("ext"),
        "-out",
        &d("leaf.pem"),
    ]);
    // The root first in the input: the bundle must still come out leaf first.
    for (out, form) in [("chain.p7b", "DER"), ("chain.p7b.pem", "PEM")] {
        openssl(&[
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            &d("ca.pem"),
            "-certfile",
            &d("leaf.pem"),
            "-outform",
            form,
            "-out",
            &d(out),
        ]);
    }
    for file in ["chain.p7b", "chain.p7b.pem"] {
        let out = run(&[
            "inspect",
            &d(file),
            "--name",
            "expe.example.com",
            "--trust",
            &d("ca.pem"),
            "--format",
            "json",
        ]);
        assert_eq!(out.code, 0, "{file}: {}", out.stderr);
        let doc = out.json();
        let chain = doc["handshakes"][0]["chain"].as_array().unwrap();
        assert_eq!(chain.len(), 2, "{file}");
        assert_eq!(
            chain[0]["subject"], "CN=expe.example.com",
            "{file}: leaf first"
        );
        assert_eq!(chain[1]["subject"], "CN=Bundle Root", "{file}");
    }
    let bundle = std::fs::read_to_string(d("leaf.key")).unwrap()
        + &std::fs::read_to_string(d("leaf.pem")).unwrap();
    std::fs::write(d("with-key.pem"), &bundle).unwrap();
    let out = run(&[
        "inspect",
        &d("with-key.pem"),
        "--name",
        "expe.example.com",
        "--trust",
        &d("ca.pem"),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("PRIVATE KEY: skipped"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("PRIVATE KEY"),
        "the key is never printed"
    );
    assert_eq!(
        out.json()["handshakes"][0]["chain"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // PKCS#12 (a chain and its key, as handed out): opened with --password,
    // leaf first, nothing of the key in the output; a wrong password is said.
    openssl(&[
        "pkcs12",
        "-export",
        "-in",
        &d("leaf.pem"),
        "-inkey",
        &d("leaf.key"),
        "-certfile",
        &d("ca.pem"),
        "-out",
        &d("chain.p12"),
        "-passout",
        "pass:s3cret",
    ]);
    let out = run(&[
        "inspect",
        &d("chain.p12"),
        "--password",
        "s3cret",
        "--name",
        "expe.example.com",
        "--trust",
        &d("ca.pem"),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stdout.contains("PRIVATE") && !out.stderr.contains("PRIVATE"),
        "no key in the output"
    );
    let doc = out.json();
    let chain = doc["handshakes"][0]["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0]["subject"], "CN=expe.example.com", "leaf first");
    let wrong = run(&[
        "inspect",
        &d("chain.p12"),
        "--password",
        "nope",
        "--name",
        "expe.example.com",
    ]);
    assert_eq!(wrong.code, 2);
    assert!(
        wrong.stderr.contains("does not open with that password"),
        "{}",
        wrong.stderr
    );
    let none = run(&["inspect", &d("chain.p12"), "--name", "expe.example.com"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("--password"), "{}", none.stderr);

    // Without --password, on a terminal (a pty from script(1)): asked for,
    // not echoed.
    let mut typed = std::process::Command::new("script")
        .args([
            "-qec",
            &format!(
                "{} inspect {} --name expe.example.com --format json",
                env!("CARGO_BIN_EXE_edgetap"),
                d("chain.p12")
            ),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) is installed (bsdutils)");
    // Type only once the prompt is up.
    let mut out = typed.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        use std::io::Read as _;
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !String::from_utf8_lossy(&screen).contains("password for") {
        assert!(
            std::time::Instant::now() < deadline,
            "no prompt: {}",
            String::from_utf8_lossy(&screen)
        );
        if let Ok(chunk) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            screen.extend(chunk);
        }
    }
    // rpassword prints the prompt, then turns echo off: a person types after
    // that; so does this test.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    use std::io::Write as _;
    typed.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let status = typed.wait().unwrap();
    reader.join().unwrap();
    screen.extend(rx.try_iter().flatten());
    let screen = String::from_utf8_lossy(&screen);
    assert!(status.success(), "{screen}");
    assert!(screen.contains("\"handshakes\""), "{screen}");
    assert!(
        !screen.contains("s3cret"),
        "the password was echoed: {screen}"
    );

    let only_key = run(&["inspect", &d("leaf.key"), "--name", "expe.example.com"]);
    assert_eq!(only_key.code, 2);
    assert!(
        only_key.stderr.contains("PRIVATE KEY, not a certificate"),
        "{}",
        only_key.stderr
    );
}

/// The documented bound holds: with a nameserver that never answers, the four
/// SRV look-ups (run at once) give up after two `--dns-timeout`s, not three.
#[test]
fn a_dead_nameserver_costs_two_timeouts() {
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap(); // bound, never answers
    let ns = dead.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let out = run(&[
        "discover",
        "example.com",
        "--nameserver",
        &ns,
        "--dns-timeout",
        "2",
    ]);
    let took = started.elapsed();
    assert!(out.stdout.contains("timed out"), "{}", out.stdout);
    assert!(
        took < std::time::Duration::from_millis(5200),
        "took {took:?}: the bound is 2 x 2 s"
    );
}

/// Every numeric flag and setting is checked when it is read, with the
/// range in the message, the same range everywhere: no NaN panics, no
/// infinity or 1e30 waits forever, no 0 silently becomes something else.
#[test]
fn numeric_flags_are_checked_with_their_range() {
    for (args, range) in [
        (
            &["probe", "expe.example.com:8443", "--timeout", "NaN"][..],
            "between 0.1 and 600",
        ),
        (
            &["probe", "expe.example.com:8443", "--timeout", "1e30"],
            "between 0.1 and 600",
        ),
        (
            &["probe", "expe.example.com:8443", "--timeout", "inf"],
            "between 0.1 and 600",
        ),
        (
            &["probe", "expe.example.com:8443", "--timeout", "0"],
            "between 0.1 and 600",
        ),
        (
            &["probe", "expe.example.com:8443", "--dns-timeout", "NaN"],
            "between 0.1 and 60",
        ),
        (
            &["discover", "example.com", "--dns-timeout", "0"],
            "between 0.1 and 60",
        ),
        (
            &["probe", "expe.example.com:8443", "--concurrency", "0"],
            "between 1 and 1024",
        ),
        (
            &["inspect", "--sample", "--online-timeout", "0"],
            "between 1 and 600",
        ),
        (
            &["inspect", "--sample", "--expiry-warn-days=-3"],
            "between 0 and 3650",
        ),
        (
            &["regress", "x.toml", "--concurrency", "0"],
            "between 1 and 1024",
        ),
    ] {
        fails_with(args, &[range]);
        let r = run(args);
        assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
    }
    // The suite key and the proxy's configuration say the same.
    let dir = tempfile::tempdir().unwrap();
    let suite = write(
        &dir,
        "s.toml",
        b"timeout_secs = nan\n[[case]]\nname = \"x\"\nchains = [\"c.pem\"]\nhost = \"x\"\n",
    );
    fails_with(
        &["regress", &suite],
        &["timeout_secs = NaN is out of range", "between 0.1 and 600"],
    );
    let cfg = write(
        &dir,
        "p.toml",
        b"idle_timeout_secs = inf\n[[listener]]\nlisten = \"127.0.0.1:1\"\nupstream = \"127.0.0.1:2\"\n",
    );
    fails_with(
        &["proxy", "--config", &cfg],
        &[
            "idle_timeout_secs = inf is out of range",
            "between 0.1 and 86400",
        ],
    );
}

/// Messages say what the input is and what to run instead, once, in the
/// user's terms: a key alone is one error (no log line about the same
/// block before it), a capture given to inspect points at replay, a text
/// file is called text (no parser internals), listen addresses take the
/// forms people type, and --upstream srv without --domain says which flag.
#[test]
fn messages_say_what_the_input_is_and_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let name = ["--name", "expe.example.com"];
    let key = write(
        &dir,
        "k.pem",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let r = run(&["inspect", &key, name[0], name[1]]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().count(),
        1,
        "one line per fault: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("PRIVATE KEY, not a certificate"),
        "{}",
        r.stderr
    );
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/demo/demo.pcapng");
    fails_with(
        &["inspect", demo, name[0], name[1]],
        &["packet capture", "edgetap replay FILE"],
    );
    let text = write(&dir, "t.txt", b"hello world\n");
    fails_with(
        &["inspect", &text, name[0], name[1]],
        &["it is text without a BEGIN CERTIFICATE block"],
    );
    for out in [
        run(&["inspect", demo, name[0], name[1]]),
        run(&["inspect", &text, name[0], name[1]]),
    ] {
        assert!(
            !out.stderr.contains("NomError") && !out.stderr.contains("Der("),
            "{}",
            out.stderr
        );
    }
    fails_with(
        &[
            "proxy",
            "--listen",
            "host.example.com:1",
            "--upstream",
            "127.0.0.1:2",
        ],
        &["localhost:PORT or a PORT alone", "127.0.0.1:8443"],
    );
    fails_with(
        &["proxy", "--listen", "127.0.0.1:1", "--upstream", "srv"],
        &["--upstream srv", "add --domain example.com"],
    );
}
