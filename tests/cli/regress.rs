//! `edgetap regress` through the binary: the shipped suites pass (and their
//! JUnit is read by Python's XML parser, an independent reader), each kind of
//! failure is reported precisely, malformed suites are errors with file and
//! line, and a baseline recorded against a real `openssl s_server` catches the
//! certificate being swapped.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::{free_port, key_pem, lab_pki, pem, run, wait_listening};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn samples() -> String {
    root().join("captures/samples").display().to_string()
}

#[test]
fn shipped_suites_pass_and_write_junit_an_xml_parser_reads() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("regress.xml");
    let r = run(&[
        "regress",
        root().join("configs/regress-demo.toml").to_str().unwrap(),
        root()
            .join("configs/regress-samples.toml")
            .to_str()
            .unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.ends_with("9 passed, 0 failed\n"), "{}", r.stdout);
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as ET\n\
             t = ET.parse(sys.argv[1]).getroot()\n\
             for s in t.findall('testsuite'):\n\
             \x20   print(s.get('tests'), s.get('failures'), s.get('errors'), len(s.findall('testcase')))",
        ])
        .arg(&junit)
        .output()
        .expect("python3 runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "5 0 0 5\n4 0 0 4\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn suite(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn each_kind_of_failure_is_reported_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let s = samples();
    let wrong = suite(
        dir.path(),
        "wrong.toml",
        &format!(
            r#"at = "2026-06-01T00:00:00Z"
trust = ["{s}/example-root-ca.pem"]

[[case]]
name = "leaf only"
chains = ["{s}/expe-leaf-only.pem"]
host = "expe.example.com"

[[case.expect]]
jabber = "ok"
rules = ["chain.untrusted-root"]
absent = ["chain.missing-intermediate"]
leaf_sha256 = "{zeros}"

[[case]]
name = "right"
chains = ["{s}/expe-good.pem"]
host = "expe.example.com"

[[case.expect]]
jabber = "ok"
"#,
            zeros = "0".repeat(64)
        ),
    );
    let r = run(&["regress", &wrong, "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let case = &doc["suites"][0]["cases"][0];
    assert_eq!(case["passed"], false);
    let kinds: Vec<&str> = case["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["outcome", "missing-rule", "extra-rule", "fingerprint"]
    );
    let outcome = &case["failures"][0];
    assert_eq!(outcome["line"], 9);
    assert_eq!(outcome["handshake"], "expe.example.com");
    assert_eq!(outcome["expected"], "ok");
    assert_eq!(outcome["got"], "prompt");
    assert_eq!(
        (doc["passed"].as_u64(), doc["failed"].as_u64()),
        (Some(1), Some(1))
    );
    // The text report says the same, with a closing count.
    let text = run(&["regress", &wrong]).stdout;
    assert!(text.contains("FAIL  leaf only (1 handshake)"), "{text}");
    assert!(
        text.contains("outcome              line 9: expe.example.com: jabber expected ok, got prompt (chain.missing-intermediate)"),
        "{text}"
    );
    assert!(text.contains("pass  right"), "{text}");
    assert!(text.ends_with("1 passed, 1 failed\n"), "{text}");
    // --filter runs only the matching cases.
    assert_eq!(run(&["regress", &wrong, "--filter", "right"]).code, 0);

    // A selector that matches nothing: the suite is wrong (exit 2), said precisely.
    let none = suite(
        dir.path(),
        "none.toml",
        &format!(
            "[[case]]\nname = \"x\"\nchains = [\"{s}/expe-good.pem\"]\nhost = \"expe.example.com\"\n\n[[case.expect]]\nendpoint = \"other.example.com:8443\"\njabber = \"ok\"\n"
        ),
    );
    let r = run(&["regress", &none]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stdout.contains("no-handshake         line 6: no handshake matches this expectation's selectors (expected endpoint other.example.com:8443; got expe.example.com)"),
        "{}",
        r.stdout
    );
}

#[test]
fn malformed_suites_are_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = samples();
    let case = format!("[[case]]\nname = \"c\"\nchains = [\"{s}/expe-good.pem\"]\nhost = \"h\"\n");
    for (name, text, want) in [
        ("bad.toml", "[[case]\n".to_owned(), ":1: "),
        (
            "key.toml",
            format!("{case}colour = 1\n"),
            ":5: unknown field `colour`",
        ),
        (
            "rule.toml",
            format!("{case}[[case.expect]]\nrules = [\"chain.nope\"]\n"),
            ":6: \"chain.nope\" is not a rule ID",
        ),
        (
            "profile.toml",
            format!("{case}[[case.expect]]\nandroid = \"ok\"\n"),
            ":6: unknown field `android`",
        ),
        (
            "missing.toml",
            "[[case]]\nname = \"c\"\nchains = [\"nowhere.pem\"]\nhost = \"h\"\n".to_owned(),
            ":1: case \"c\": ",
        ),
    ] {
        let path = suite(dir.path(), name, &text);
        let r = run(&["regress", &path]);
        assert_eq!(r.code, 2, "{name}: {}", r.stdout);
        assert!(
            r.stderr.contains(&format!("{path}{want}")),
            "{name}: {}",
            r.stderr
        );
    }
    let r = run(&[
        "regress",
        &dir.path().join("absent.toml").display().to_string(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read the suite"), "{}", r.stderr);
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn s_server(port: u16, cert: &Path, key: &Path, chain: &Path) -> Kill {
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .arg("-cert_chain")
        .arg(chain)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is installed (.ci/run installs it)");
    wait_listening(port);
    Kill(child)
}

#[test]
fn a_baseline_catches_the_certificate_being_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f);
    // Certificates valid around the real clock: the live case judges at it.
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::now_utc();
    let pki = lab_pki("Regress", "example.com", now);
    std::fs::write(d("root.pem"), pem(&pki.lab.root.der())).unwrap();
    std::fs::write(d("issuing.pem"), pem(&pki.lab.issuing.der())).unwrap();
    std::fs::write(d("edge.pem"), pem(&pki.edge.chain[0])).unwrap();
    std::fs::write(d("edge.key"), key_pem(&pki.edge.key)).unwrap();
    let port = free_port();
    let server = s_server(port, &d("edge.pem"), &d("edge.key"), &d("issuing.pem"));
    let path = suite(
        dir.path(),
        "live.toml",
        &format!(
            r#"public_roots = "root.pem"
timeout_secs = 3

[[case]]
name = "edge node"
probe = "expe.example.com:{port}"
address = "127.0.0.1"
domain = "example.com"

[[case.expect]]
jabber = "ok"
ip-phone = "ok"
"#
        ),
    );
    let base = d("baseline.json");
    let r = run(&["regress", &path, "--record", base.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    assert_eq!(recorded["suites"][0], "live.toml");
    // Unchanged: no drift.
    let r = run(&["regress", &path, "--baseline", base.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stdout);

    // The certificate is renewed (same names, same CA): expectations still
    // hold, the baseline sees the swap.
    drop(server);
    let renewed = pki.lab.edge_identity("expe.example.com").unwrap();
    std::fs::write(d("edge2.pem"), pem(&renewed.chain[0])).unwrap();
    std::fs::write(d("edge2.key"), key_pem(&renewed.key)).unwrap();
    let _server = s_server(port, &d("edge2.pem"), &d("edge2.key"), &d("issuing.pem"));
    let r = run(&[
        "regress",
        &path,
        "--baseline",
        base.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let failures = doc["suites"][0]["cases"][0]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["kind"], "drift-fingerprint");
    assert_eq!(failures[0]["handshake"], format!("expe.example.com:{port}"));

    // A baseline of another suite is refused.
    let other = suite(
        dir.path(),
        "other.toml",
        &std::fs::read_to_string(&path).unwrap(),
    );
    let r = run(&["regress", &other, "--baseline", base.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("covers the suites live.toml"),
        "{}",
        r.stderr
    );
}
