//! The CLI conventions engineers expect: shell completions that the shell
//! itself accepts, a man page that `man` renders, one rule explained by ID,
//! and the JSON rule list with its effects keyed by profile.

use std::process::{Command, Stdio};

use crate::run;

#[test]
fn completions_are_valid_bash_and_name_every_command() {
    let r = run(&["completions", "bash"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for sub in ["inspect", "probe", "replay", "proxy", "regress", "rules"] {
        assert!(r.stdout.contains(sub), "no {sub} in the bash completions");
    }
    // bash parses it (syntax only: -n).
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    bash.stdin
        .take()
        .unwrap()
        .write_all(r.stdout.as_bytes())
        .unwrap();
    let out = bash.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shell in ["zsh", "fish", "powershell"] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}");
        assert!(r.stdout.contains("regress"), "{shell}");
    }
    assert_eq!(run(&["completions", "tcsh"]).code, 2);
}

#[test]
fn the_man_page_renders() {
    let page = run(&["man"]);
    assert_eq!(page.code, 0, "{}", page.stderr);
    assert!(
        page.stdout.contains(".TH edgetap 1"),
        "{}",
        &page.stdout[..200.min(page.stdout.len())]
    );
    // groff (what man uses) renders it to text without complaint.
    let mut groff = Command::new("groff")
        .args(["-man", "-Tascii", "-P-cbou"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("groff is installed with man-db");
    use std::io::Write as _;
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(page.stdout.as_bytes())
        .unwrap();
    let out = groff.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("SUBCOMMANDS"),
        "{text}"
    );
}

#[test]
fn one_rule_is_explained_by_its_id() {
    let r = run(&["rules", "chain.missing-intermediate"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("fires when: no issuer for some certificate"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("    jabber        prompt\n    ip-phone      fail\n"),
        "{}",
        r.stdout
    );
    // The fix, and the seed document and section behind the effects.
    assert!(
        r.stdout.contains("  fix: upload the intermediate CA certificate")
            && r.stdout.contains(
                "    - 004_5e43c45a1d250561.txt (MRA certificates TechNote), \"Synergy Light Endpoints\": "
            ),
        "{}",
        r.stdout
    );
    let json = run(&["rules", "identity.xmpp-domain-missing", "--format", "json"]).json();
    assert_eq!(json["id"], "identity.xmpp-domain-missing");
    assert!(json["fix"].as_str().unwrap().contains("XMPP domain"));
    assert_eq!(json["sources"][0]["section"], "Identifier Fields");
    assert_eq!(json["effect_by_profile"]["ip-phone"], "not-applicable");
    let unknown = run(&["rules", "chain.nope"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .contains("\"chain.nope\" is not a rule ID (in that family: chain.self-signed"),
        "{}",
        unknown.stderr
    );
    // Every rule's effects, keyed by profile, agree with the positional list.
    let all = run(&["rules", "--format", "json"]).json();
    for r in all.as_array().unwrap() {
        let by = &r["effect_by_profile"];
        for (i, p) in ["jabber", "ip-phone", "tc-endpoint", "expressway-c"]
            .iter()
            .enumerate()
        {
            assert_eq!(by[p], r["effects"][i], "{}", r["id"]);
        }
    }
}
