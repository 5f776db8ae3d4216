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

/// The wording of the sample outputs: counts agree with their number ("1
/// handshake", never "1 handshakes"), nothing says a thing twice ("TLS
/// TLSv1.3", "presented not presented"), and the rules table lines up.
#[test]
fn sample_outputs_read_as_english() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.pcap");
    // A capture with one TLS connection: ppp__tls.pcap's first handshake
    // is enough, and a header-only pcap gives the zero counts.
    let mut header = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&one, &header).unwrap();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/captures");
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/demo/demo.pcapng");
    let single = format!("{data}/zeek__ecdsa-cert.pcap");
    let one = one.display().to_string();
    let mut outputs = Vec::new();
    for args in [
        vec!["inspect", "--sample"],
        vec!["inspect", "--sample", "--format", "html"],
        vec!["replay", demo],
        vec!["replay", demo, "--format", "html"],
        vec!["replay", &single],
        vec!["replay", &single, "--format", "html"],
        vec!["replay", &one],
        vec!["rules"],
    ] {
        let r = run(&args);
        outputs.push((args.join(" "), r.stdout + &r.stderr));
    }
    let nouns = [
        "handshake",
        "frame",
        "TCP connection",
        "TLS handshake",
        "server chain",
        "endpoint",
        "connection",
        "finding",
        "certificate",
    ];
    for (cmd, text) in &outputs {
        for noun in nouns {
            let wrong = format!(" 1 {noun}s");
            assert!(!text.contains(&wrong), "{cmd}: says {wrong:?}");
        }
        for twice in ["TLS TLSv", "presented not presented", "is in no store"] {
            assert!(!text.contains(twice), "{cmd}: says {twice:?}");
        }
    }
    // The same not-judged reason for every profile is said once.
    let hidden = run(&["replay", &format!("{data}/ppp__tls1_3.pcap")]).stdout;
    let said = hidden.matches("not judged:").count();
    let once = hidden
        .matches("jabber, ip-phone, tc-endpoint, expressway-c: not judged: TLS 1.3 encrypts")
        .count();
    assert!(once > 0 && said == once, "{hidden}");
    // One TCP connection is said in the singular.
    let single_text = &outputs[4].1;
    assert!(single_text.contains("1 TCP connection,"), "{single_text}");
    // The rules table: every row's jabber column starts where its header's does.
    let rules = &outputs[7].1;
    let at = rules.lines().next().unwrap().find("jabber").unwrap();
    for line in rules.lines().skip(1).filter(|l| !l.is_empty()) {
        let effect = &line[at..];
        assert!(
            ["ok ", "warn ", "prompt ", "fail ", "n/a "]
                .iter()
                .any(|e| effect.starts_with(e)),
            "misaligned: {line}"
        );
    }
}

/// Path-like words in `text` (configs/..., captures/..., docs/...), trimmed
/// of the punctuation around them.
fn cited_paths(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "`'\"()[]<>,;".contains(c))
        .map(|t| t.trim_end_matches(['.', ':']))
        .filter(|t| {
            [
                "configs/",
                "captures/",
                "docs/",
                "tests/",
                "benches/",
                "src/",
                "fuzz/",
            ]
            .iter()
            .any(|p| t.starts_with(p))
        })
        .map(str::to_owned)
        .collect()
}

/// Whether `path` (relative to the repository; one `*` allowed in its file
/// name) names something that exists.
fn exists(path: &str) -> bool {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some((before, after)) = path.split_once('*') else {
        return root.join(path.trim_end_matches('/')).exists();
    };
    let (dir, prefix) = before.rsplit_once('/').unwrap_or(("", before));
    std::fs::read_dir(root.join(dir)).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(after)
        })
    })
}

/// README.md, configs/README.md and every subcommand's --help name only
/// paths that exist, and every `edgetap SUB ... --flag` in the READMEs is
/// a flag SUB takes.
#[test]
fn docs_and_help_agree_with_the_binary() {
    let root = env!("CARGO_MANIFEST_DIR");
    let subs = [
        "inspect",
        "discover",
        "probe",
        "replay",
        "proxy",
        "ca",
        "demo",
        "rules",
        "regress",
        "completions",
        "man",
    ];
    let mut help: std::collections::HashMap<String, String> = subs
        .iter()
        .map(|s| (s.to_string(), run(&[s, "--help"]).stdout))
        .collect();
    help.insert("ca init".into(), run(&["ca", "init", "--help"]).stdout);
    let mut texts: Vec<(String, String)> = ["README.md", "configs/README.md"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read_to_string(format!("{root}/{f}")).unwrap(),
            )
        })
        .collect();
    texts.extend(
        help.iter()
            .map(|(s, h)| (format!("edgetap {s} --help"), h.clone())),
    );
    texts.sort_by_key(|(source, _)| !source.ends_with(".md"));
    for (source, text) in &texts {
        for path in cited_paths(text) {
            assert!(exists(&path), "{source} names {path}, which does not exist");
        }
    }
    for (source, text) in &texts[..2] {
        for line in text.lines() {
            let Some((_, rest)) = line.split_once("edgetap ") else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let Some(mut sub) = words.next().filter(|w| subs.contains(w)).map(str::to_owned) else {
                continue;
            };
            if sub == "ca" {
                sub = format!("ca {}", words.next().unwrap_or_default());
            }
            let command = rest.split(['#', '|', '`']).next().unwrap_or("");
            for flag in command.split_whitespace().filter(|w| w.starts_with("--")) {
                let flag = flag
                    .split('=')
                    .next()
                    .unwrap()
                    .trim_end_matches([',', '.', ')']);
                assert!(
                    help[&sub].contains(&format!("{flag} "))
                        || help[&sub].contains(&format!("{flag}\n"))
                        || help[&sub].contains(&format!("{flag}=")),
                    "{source}: `edgetap {sub} ... {flag}`, which `edgetap {sub}` does not take:\n{line}"
                );
            }
        }
    }
}

/// Every page the main man page names exists: `edgetap man --dir` writes
/// one per subcommand, each with its options and the exit status, and
/// groff renders each.
#[test]
fn every_subcommand_has_a_man_page_with_options_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let r = run(&["man", "--dir", &out]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let main = std::fs::read_to_string(dir.path().join("edgetap.1")).unwrap();
    for sub in ["inspect", "probe", "replay", "proxy", "regress", "demo"] {
        assert!(
            main.contains(&format!("edgetap\\-{sub}(1)")),
            "{sub} not listed"
        );
        let page = std::fs::read_to_string(dir.path().join(format!("edgetap-{sub}.1")))
            .unwrap_or_else(|e| panic!("no page for {sub}: {e}"));
        assert!(
            page.contains(".SH OPTIONS") && page.contains(".SH \"EXIT STATUS\""),
            "{sub}: {page}"
        );
        assert_eq!(
            run(&["man", sub]).stdout,
            page,
            "`edgetap man {sub}` prints the same page"
        );
    }
    let probe = run(&["man", "probe"]).stdout;
    assert!(
        probe.contains("\\-\\-timeout") && probe.contains("130"),
        "{probe}"
    );
}
