//! `inspect` on chains made by the openssl CLI (tests/fixtures/gen-openssl.sh):
//! one firing and, where the chain allows, one quiet case per rule, with the
//! per-profile outcomes rules.md prescribes.

use crate::{AT, fixture, outcome, rules_of, run};

struct Case {
    files: &'static [&'static str],
    extra: &'static [&'static str],
    fires: &'static [&'static str],
    quiet: &'static [&'static str],
    outcomes: &'static [(&'static str, &'static str)],
}

const EDGE: &[&str] = &["--name", "expe.example.com", "--edge-domain", "example.com"];

fn check(case: &Case) {
    let root = fixture("root.pem");
    let mut args: Vec<String> = vec!["inspect".into()];
    args.extend(case.files.iter().map(|f| fixture(f)));
    args.extend(["--at", AT, "--format", "json", "--public-roots"].map(String::from));
    args.push(root);
    let extra = if case.extra.contains(&"--name") {
        case.extra.to_vec()
    } else {
        [EDGE, case.extra].concat()
    };
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&argv);
    assert_eq!(
        out.code, 0,
        "{:?}: exit {}\n{}",
        case.files, out.code, out.stderr
    );
    let doc = out.json();
    let fired = rules_of(&doc, 0);
    for rule in case.fires {
        assert!(
            fired.iter().any(|r| r == rule),
            "{:?}: {rule} did not fire; fired {fired:?}",
            case.files
        );
    }
    for rule in case.quiet {
        assert!(
            !fired.iter().any(|r| r == rule),
            "{:?}: {rule} fired unexpectedly",
            case.files
        );
    }
    for (profile, expected) in case.outcomes {
        assert_eq!(
            outcome(&doc, 0, profile),
            *expected,
            "{:?}: {profile}",
            case.files
        );
    }
}

macro_rules! cases {
    ($($name:ident: $case:expr;)*) => { $( #[test] fn $name() { check(&$case); } )* };
}

const ALL_OK: &[(&str, &str)] = &[
    ("jabber", "ok"),
    ("ip-phone", "ok"),
    ("tc-endpoint", "ok"),
    ("expressway-c", "ok"),
];

cases! {
    good_edge_is_ok_for_everyone: Case { files: &["good-edge.pem"], extra: &[], fires: &[], quiet: &["chain.missing-intermediate", "signature.sha1", "key.not-rsa", "revocation.no-info"], outcomes: ALL_OK };
    leaf_only_misses_intermediate: Case { files: &["leaf-only.pem"], extra: &[], fires: &["chain.missing-intermediate"], quiet: &[], outcomes: &[("jabber", "prompt"), ("ip-phone", "fail"), ("expressway-c", "fail")] };
    out_of_order_and_root_sent: Case { files: &["out-of-order.pem"], extra: &[], fires: &["chain.out-of-order", "chain.root-sent"], quiet: &["chain.unrelated-cert"], outcomes: &[("jabber", "warn")] };
    sha1_leaf: Case { files: &["sha1-leaf.pem"], extra: &[], fires: &["signature.sha1"], quiet: &["chain.bad-signature", "signature.unverifiable"], outcomes: &[("jabber", "prompt"), ("ip-phone", "fail")] };
    md5_leaf_counts_as_weak_and_unverifiable: Case { files: &["md5-leaf.pem"], extra: &[], fires: &["signature.sha1", "signature.unverifiable"], quiet: &["chain.bad-signature"], outcomes: &[("ip-phone", "fail")] };
    rsa_1024_leaf: Case { files: &["rsa1024-leaf.pem"], extra: &[], fires: &["key.rsa-too-small"], quiet: &["key.not-rsa"], outcomes: &[("jabber", "warn"), ("ip-phone", "fail")] };
    rsa_1023_leaf: Case { files: &["rsa1023-leaf.pem"], extra: &[], fires: &["key.rsa-too-small"], quiet: &[], outcomes: &[("tc-endpoint", "fail")] };
    rsa_8192_leaf: Case { files: &["rsa8192-leaf.pem"], extra: &[], fires: &["key.rsa-8192"], quiet: &["key.rsa-too-small"], outcomes: &[("jabber", "warn")] };
    rsa_2048_is_not_small: Case { files: &["good-edge.pem"], extra: &[], fires: &[], quiet: &["key.rsa-too-small", "key.rsa-8192"], outcomes: &[] };
    dsa_leaf: Case { files: &["dsa-leaf.pem"], extra: &[], fires: &["key.not-rsa", "x509.key-not-allowed"], quiet: &[], outcomes: &[("jabber", "warn"), ("ip-phone", "warn")] };
    dsa_issuer_signature_unverifiable: Case { files: &["dsa-issuer.pem"], extra: &[], fires: &["signature.unverifiable"], quiet: &["chain.bad-signature"], outcomes: &[("jabber", "warn")] };
    ec_leaf: Case { files: &["ec-leaf.pem"], extra: &[], fires: &["key.not-rsa"], quiet: &[], outcomes: &[("jabber", "ok"), ("expressway-c", "warn")] };
    xmpp_othernames_match_domain: Case { files: &["xmpp-othernames.pem"], extra: &["--name", "example.com", "--service", "xmpp"], fires: &[], quiet: &["identity.xmpp-domain-missing", "identity.mismatch", "identity.cn-only"], outcomes: ALL_OK };
    xmpp_srvname_alone_matches: Case { files: &["xmpp-srvname-only.pem"], extra: &["--name", "example.com", "--service", "xmpp"], fires: &[], quiet: &["identity.xmpp-domain-missing"], outcomes: &[("jabber", "ok")] };
    xmpp_host_only_misses_domain: Case { files: &["xmpp-host-only.pem"], extra: &["--name", "example.com", "--service", "xmpp"], fires: &["identity.xmpp-domain-missing"], quiet: &["identity.mismatch"], outcomes: &[("jabber", "prompt"), ("ip-phone", "ok"), ("expressway-c", "fail")] };
    xmpp_addr_is_not_an_http_name: Case { files: &["xmpp-othernames.pem"], extra: &["--name", "example.com", "--service", "http"], fires: &["identity.mismatch"], quiet: &[], outcomes: &[("jabber", "prompt")] };
    wildcard_leaf: Case { files: &["wildcard.pem"], extra: &[], fires: &["identity.wildcard"], quiet: &["identity.mismatch", "identity.cn-only"], outcomes: &[("jabber", "prompt"), ("expressway-c", "fail")] };
    server_only_eku: Case { files: &["eku-server-only.pem"], extra: &[], fires: &["usage.eku-client-auth-missing"], quiet: &["usage.eku-server-auth-missing"], outcomes: &[("jabber", "ok"), ("expressway-c", "fail")] };
    expired_leaf: Case { files: &["expired.pem"], extra: &[], fires: &["validity.expired"], quiet: &["validity.not-yet-valid"], outcomes: &[("jabber", "prompt"), ("ip-phone", "fail")] };
    beyond_2050_leaf: Case { files: &["beyond-2050.pem"], extra: &[], fires: &["validity.beyond-2050"], quiet: &["validity.expired"], outcomes: &[("jabber", "warn")] };
    unsupported_subject_oid: Case { files: &["unsupported-oid.pem"], extra: &[], fires: &["subject.unsupported-oid"], quiet: &[], outcomes: &[("expressway-c", "warn")] };
    no_revocation_info: Case { files: &["no-revocation.pem"], extra: &[], fires: &["revocation.no-info"], quiet: &[], outcomes: &[("jabber", "warn"), ("ip-phone", "ok")] };
    edge_domain_san_missing: Case { files: &["edge-domain-missing.pem"], extra: &[], fires: &["edge.domain-san-missing"], quiet: &["identity.mismatch"], outcomes: &[("jabber", "prompt"), ("tc-endpoint", "fail"), ("expressway-c", "ok")] };
    ip_literal_with_ip_san: Case { files: &["ip-san.pem"], extra: &["--name", "192.0.2.10"], fires: &[], quiet: &["identity.ip-address"], outcomes: ALL_OK };
    ip_literal_without_ip_san: Case { files: &["ip-san.pem"], extra: &["--name", "192.0.2.11"], fires: &["identity.ip-address"], quiet: &["identity.mismatch"], outcomes: &[("jabber", "prompt"), ("ip-phone", "fail")] };
}

#[test]
fn ca_without_basic_constraints() {
    let out = run(&[
        "inspect",
        &fixture("ca-no-basic-constraints.pem"),
        "--name",
        "expe.example.com",
        "--public-roots",
        &fixture("root-no-bc.pem"),
        "--at",
        AT,
        "--format",
        "json",
    ]);
    let doc = out.json();
    assert!(rules_of(&doc, 0).contains(&"usage.ca-basic-constraints-missing".to_string()));
    assert_eq!(outcome(&doc, 0, "expressway-c"), "fail");
    assert_eq!(outcome(&doc, 0, "jabber"), "warn");
}

#[test]
fn two_self_signed_certificates_with_one_cn() {
    let out = run(&[
        "inspect",
        &fixture("self-signed-tomcat.pem"),
        &fixture("self-signed-callmanager.pem"),
        "--name",
        "cucm.example.com",
        "--at",
        AT,
        "--format",
        "json",
    ]);
    let doc = out.json();
    for i in 0..2 {
        let fired = rules_of(&doc, i);
        assert!(
            fired.contains(&"chain.self-signed".to_string()),
            "{fired:?}"
        );
        assert!(
            fired.contains(&"trust.duplicate-self-signed-cn".to_string()),
            "{fired:?}"
        );
        assert_eq!(outcome(&doc, i, "jabber"), "prompt");
        assert_eq!(outcome(&doc, i, "expressway-c"), "fail");
    }
    // One of them alone is no conflict.
    let alone = run(&[
        "inspect",
        &fixture("self-signed-tomcat.pem"),
        "--name",
        "cucm.example.com",
        "--at",
        AT,
        "--format",
        "json",
    ])
    .json();
    assert!(!rules_of(&alone, 0).contains(&"trust.duplicate-self-signed-cn".to_string()));
}

/// The trust model: an enterprise root given with --trust counts for Jabber and
/// Expressway-C only; phones and TelePresence endpoints still fail.
#[test]
fn enterprise_trust_applies_to_jabber_and_expressway_only() {
    let out = run(&[
        "inspect",
        &fixture("good-edge.pem"),
        "--name",
        "expe.example.com",
        "--edge-domain",
        "example.com",
        "--trust",
        &fixture("root.pem"),
        "--at",
        AT,
        "--format",
        "json",
    ]);
    let doc = out.json();
    assert_eq!(outcome(&doc, 0, "jabber"), "ok");
    assert_eq!(outcome(&doc, 0, "expressway-c"), "ok");
    assert_eq!(outcome(&doc, 0, "ip-phone"), "fail");
    assert_eq!(outcome(&doc, 0, "tc-endpoint"), "fail");
    let f = doc["handshakes"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "chain.untrusted-root")
        .expect("untrusted-root");
    assert_eq!(
        f["profiles"],
        serde_json::json!(["ip-phone", "tc-endpoint"])
    );
}
