//! `inspect --sample`: the README's first command, on the embedded sample deployment.

use crate::{outcome, rules_of, run};

#[test]
fn sample_deployment_verdicts() {
    let out = run(&["inspect", "--sample", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["handshakes"].as_array().unwrap().len(), 5);
    // Enterprise-signed edge: Jabber and Expressway-C fine, phones and endpoints fail.
    assert_eq!(outcome(&doc, 0, "jabber"), "ok");
    assert_eq!(outcome(&doc, 0, "ip-phone"), "fail");
    assert!(rules_of(&doc, 0).contains(&"chain.untrusted-root".into()));
    // Leaf only.
    assert!(rules_of(&doc, 1).contains(&"chain.missing-intermediate".into()));
    assert_eq!(outcome(&doc, 1, "jabber"), "prompt");
    // cup-xmpp without the XMPP domain; phones do not speak XMPP.
    assert!(rules_of(&doc, 2).contains(&"identity.xmpp-domain-missing".into()));
    assert_eq!(
        doc["handshakes"][2]["verdicts"]["ip-phone"]["applicable"],
        false
    );
    assert!(
        !rules_of(&doc, 2).contains(&"chain.untrusted-root".into()),
        "nothing reported for clients that do not use XMPP"
    );
    // CUCM self-signed pair.
    for i in [3, 4] {
        assert!(rules_of(&doc, i).contains(&"trust.duplicate-self-signed-cn".into()));
        assert_eq!(outcome(&doc, i, "expressway-c"), "fail");
    }
}

#[test]
fn sample_refuses_files() {
    let out = run(&["inspect", "--sample", "x.pem"]);
    assert_eq!(out.code, 2);
}

/// Without `--trust`, a chain sent whole up to a private root is a trust
/// question, never "send the intermediate": the missing issuer is the root.
/// A leaf sent alone still lacks its intermediate.
#[test]
fn a_private_root_is_not_a_missing_intermediate() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/samples/");
    let judge = |file: &str| {
        crate::run(&[
            "inspect",
            &format!("{samples}{file}"),
            "--name",
            "expe.example.com",
            "--at",
            crate::AT,
            "--format",
            "json",
        ])
        .json()
    };
    let whole = judge("expe-good.pem");
    let rules = crate::rules_of(&whole, 0);
    assert!(
        rules.contains(&"chain.untrusted-root".to_owned()),
        "{rules:?}"
    );
    assert!(
        !rules.contains(&"chain.missing-intermediate".to_owned()),
        "{rules:?}"
    );
    let fix = whole["handshakes"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "chain.untrusted-root")
        .unwrap()["fix"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(fix.contains("--trust"), "{fix}");

    let alone = judge("expe-leaf-only.pem");
    assert!(crate::rules_of(&alone, 0).contains(&"chain.missing-intermediate".to_owned()));
}
