//! The JSON document is a contract: these fields exist with these meanings.

use std::process::Command;

use crate::{AT, fixture, run};

#[test]
fn document_has_the_contract_fields() {
    let out = run(&[
        "inspect",
        &fixture("good-edge.pem"),
        "--name",
        "expe.example.com",
        "--edge-domain",
        "example.com",
        "--public-roots",
        &fixture("root.pem"),
        "--at",
        AT,
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    let h = &doc["handshakes"][0];
    assert_eq!(h["service"], "http");
    assert_eq!(h["reference_identity"], "expe.example.com");
    for entry in h["chain"].as_array().unwrap() {
        for key in ["subject", "issuer", "sha256", "not_before", "not_after"] {
            assert!(entry[key].is_string(), "chain entry lacks {key}: {entry}");
        }
    }
    for profile in ["jabber", "ip-phone", "tc-endpoint", "expressway-c"] {
        assert!(h["verdicts"][profile]["outcome"].is_string());
        assert!(h["verdicts"][profile]["rules"].is_array());
    }
    assert!(h["findings"].as_array().unwrap().is_empty());
}

#[test]
fn findings_carry_rule_severity_message_certificate_fix() {
    let doc = run(&[
        "inspect",
        &fixture("leaf-only.pem"),
        "--name",
        "expe.example.com",
        "--public-roots",
        &fixture("root.pem"),
        "--at",
        AT,
        "--format",
        "json",
    ])
    .json();
    let f = &doc["handshakes"][0]["findings"][0];
    assert_eq!(f["rule"], "chain.missing-intermediate");
    assert_eq!(f["severity"], "fail");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("Example Issuing CA")
    );
    assert_eq!(f["certificate"]["position"], 0);
    assert!(f["fix"].as_str().unwrap().contains("intermediate"));
    assert_eq!(
        doc["handshakes"][0]["verdicts"]["jabber"]["rules"],
        serde_json::json!(["chain.missing-intermediate"])
    );
}

/// sha256 is the lowercase hex SHA-256 of the DER, as openssl computes it.
#[test]
fn sha256_matches_openssl_fingerprint() {
    if !crate::tool_present("openssl", "sha256_matches_openssl_fingerprint") {
        return;
    }
    let doc = run(&[
        "inspect",
        &fixture("good-edge.pem"),
        "--name",
        "expe.example.com",
        "--at",
        AT,
        "--format",
        "json",
    ])
    .json();
    let ours = doc["handshakes"][0]["chain"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(crate::openssl_fixtures().join("work/good.crt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let theirs = text
        .trim()
        .split('=')
        .nth(1)
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(ours, theirs);
}

#[test]
fn fail_on_sets_exit_status() {
    let leaf_only = fixture("leaf-only.pem");
    let base = [
        "inspect",
        leaf_only.as_str(),
        "--name",
        "expe.example.com",
        "--at",
        AT,
        "--format",
        "json",
    ];
    assert_eq!(run(&base).code, 0, "without --fail-on an analysis exits 0");
    assert_eq!(run(&[&base[..], &["--fail-on", "prompt"]].concat()).code, 1);
    let good = fixture("good-edge.pem");
    let roots = fixture("root.pem");
    let ok = [
        "inspect",
        good.as_str(),
        "--name",
        "expe.example.com",
        "--edge-domain",
        "example.com",
        "--public-roots",
        roots.as_str(),
        "--at",
        AT,
        "--fail-on",
        "warn",
    ];
    assert_eq!(run(&ok).code, 0);
}

#[test]
fn text_report_names_profiles_rules_and_fixes_without_colour_when_piped() {
    let out = run(&[
        "inspect",
        &fixture("leaf-only.pem"),
        "--name",
        "expe.example.com",
        "--at",
        AT,
    ]);
    assert_eq!(out.code, 0);
    for needle in [
        "jabber",
        "PROMPT",
        "ip-phone",
        "FAIL",
        "chain.missing-intermediate",
        "fix:",
        "chain as sent",
    ] {
        assert!(
            out.stdout.contains(needle),
            "text lacks {needle}:\n{}",
            out.stdout
        );
    }
    assert!(
        !out.stdout.contains('\x1b'),
        "no ANSI escapes when stdout is not a terminal"
    );
}

/// A certificate whose CN carries a newline and a fake verdict line, an
/// escape sequence and a right-to-left override cannot forge or hide report
/// lines: the text report shows them escaped; JSON keeps the exact bytes.
#[test]
fn wire_text_is_escaped_in_the_text_report() {
    #[allow(clippy::disallowed_methods)] // certificate valid around the real clock
    let now = time::OffsetDateTime::now_utc();
    let forged = "expe.example.com\n    jabber        OK\u{1b}[8m\u{202e}";
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["expe.example.com".to_owned()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, forged);
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(90);
    let cert = p.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("forged.pem");
    std::fs::write(&file, cert.pem()).unwrap();
    let path = file.display().to_string();

    let text = run(&["inspect", &path, "--name", "expe.example.com"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        !text
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("jabber        OK")),
        "a forged verdict line:\n{}",
        text.stdout
    );
    assert!(!text.stdout.contains('\x1b') && !text.stdout.contains('\u{202e}'));
    assert!(
        text.stdout
            .contains("expe.example.com\\u{a}    jabber        OK\\u{1b}[8m\\u{202e}"),
        "{}",
        text.stdout
    );

    let json = run(&[
        "inspect",
        &path,
        "--name",
        "expe.example.com",
        "--format",
        "json",
    ])
    .json();
    let cn = json["handshakes"][0]["chain"][0]["subject"]
        .as_str()
        .unwrap();
    assert!(cn.contains(forged), "JSON keeps the bytes: {cn}");
}

#[test]
fn rules_listing_matches_catalogue() {
    let out = run(&["rules", "--format", "json"]);
    let rules: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let ids: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"identity.xmpp-domain-missing"));
    assert!(ids.len() >= 43);
}

/// docs/rules.md is the published rule table: the same rows, in the same order,
/// as `edgetap rules --format markdown` prints from the catalogue.
#[test]
fn docs_rules_md_is_the_rules_listing() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md"))
        .expect("docs/rules.md");
    let table = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with('|'))
            .map(str::to_owned)
            .collect()
    };
    let listed = run(&["rules", "--format", "markdown"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(
        table(&doc),
        table(&listed.stdout),
        "docs/rules.md drifted from the catalogue: run docs/refresh-rules.sh"
    );
}
