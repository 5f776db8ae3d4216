//! `replay` against public captures with two independent oracles each (the
//! tshark TLS dissector, and tshark's TCP follow plus a separate TLS reader):
//! the 48 vendored in `tests/data/captures`, and the full shared set of 65 when
//! `../shared/captures` sits beside the repository. Every server chain both
//! oracles agree on must be found with the same SHA-256 fingerprints; damaged
//! captures must yield clear lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use edgetap::cmd::replay::read_all;
use edgetap::core::x509::cert::sha256_hex;
use serde_json::Value;

/// The captures that ship with the repository.
fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/captures")
}

/// The full shared set, when it sits beside the repository (said when not).
fn shared_captures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
    if dir.join("MANIFEST.tsv").exists() {
        Some(dir)
    } else {
        eprintln!(
            "\n*** {} is absent: the shared capture set is skipped; the vendored one in tests/data/captures still ran ***\n",
            dir.display()
        );
        None
    }
}

fn oracle(dir: &Path, file: &str, kind: &str) -> Vec<Value> {
    let path = dir.join("oracle").join(format!("{file}.{kind}.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

type Key = (String, String, Vec<String>);

fn key(v: &Value) -> Key {
    (
        v["sender"].as_str().unwrap_or("").to_owned(),
        v["receiver"].as_str().unwrap_or("").to_owned(),
        v["cert_sha256"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect(),
    )
}

#[test]
fn every_chain_the_oracles_agree_on_is_found() {
    // The vendored set: 48 captures, of which the oracles agree on 65 server chains.
    every_agreed_chain_found(&captures(), 48, 60);
    if let Some(shared) = shared_captures() {
        every_agreed_chain_found(&shared, 65, 100);
    }
}

/// Replay every capture `dir/MANIFEST.tsv` lists (`files` of them) and find each
/// server chain both oracles agree on (more than `min_agreed` in all).
fn every_agreed_chain_found(dir: &Path, files: usize, min_agreed: usize) {
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let files_listed: Vec<String> = manifest
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    assert_eq!(files_listed.len(), files, "{}", dir.display());
    let files = files_listed;
    let (mut agreed_total, mut found_total, mut ours_total) = (0, 0, 0);
    let mut misses = Vec::new();
    for file in &files {
        let tshark: Vec<Key> = oracle(dir, file, "tshark")
            .iter()
            .filter(|r| r["role"] == "server")
            .map(key)
            .collect();
        let stream: Vec<Key> = oracle(dir, file, "stream")
            .iter()
            .filter(|r| {
                r["role"] == "server"
                    && r["handshake_msg_complete"] == true
                    && r["cert_list_malformed"] == false
                    && r["capture_gap_before_msg_end"] == false
            })
            .map(key)
            .collect();
        // The agreed multiset: records both oracles report. Where tshark is known to
        // fail (oracle/README.md: IRC STARTTLS, the 339 KB certificate over 21
        // records), the stream oracle alone is the reference.
        let tshark = if file.contains("irc-starttls") || file.contains("fragmented-handshake") {
            stream.clone()
        } else {
            tshark
        };
        let mut pool = stream.clone();
        let mut agreed = Vec::new();
        for k in tshark {
            if let Some(i) = pool.iter().position(|s| *s == k) {
                agreed.push(pool.swap_remove(i));
            }
        }
        let (_, observations) = read_all(&[dir.join(file)], &HashMap::new(), &Default::default());
        let mut ours: Vec<Key> = observations
            .iter()
            .filter(|o| !o.presented.is_empty())
            .map(|o| {
                let cap = o.capture.as_ref().unwrap();
                (
                    cap.server.clone(),
                    cap.client.clone(),
                    o.presented.iter().map(|d| sha256_hex(d)).collect(),
                )
            })
            .collect();
        ours_total += ours.len();
        agreed_total += agreed.len();
        for k in agreed {
            match ours.iter().position(|o| *o == k) {
                Some(i) => {
                    ours.swap_remove(i);
                    found_total += 1;
                }
                None => misses.push(format!("{file}: {} -> {} chain of {}", k.0, k.1, k.2.len())),
            }
        }
    }
    println!(
        "replay vs oracles in {}: {found_total}/{agreed_total} agreed server chains found ({ours_total} chains in total)",
        dir.display()
    );
    assert!(
        misses.is_empty(),
        "missed {} agreed chains:\n{}",
        misses.len(),
        misses.join("\n")
    );
    assert!(
        agreed_total > min_agreed,
        "the oracles should agree on >{min_agreed} chains, got {agreed_total}"
    );
}

#[test]
fn damaged_captures_give_lines_not_panics() {
    let mut cases = vec![
        (captures(), "ppp__SSL-PartialCertificate1.pcap", "cut short"),
        (captures(), "ppp__SSL-PartialCertificate2.pcap", "cut short"),
        (captures(), "ppp__ssl-malformed1.pcap", ""),
    ];
    if let Some(shared) = shared_captures() {
        cases.push((
            shared.clone(),
            "sv__tls_DER-incomplete-content.pcap",
            "declares",
        ));
        cases.push((shared, "sv__tls_DER-incomplete-header.pcap", ""));
    }
    for (dir, file, needle) in cases {
        let (reports, observations) =
            read_all(&[dir.join(file)], &HashMap::new(), &Default::default());
        let r = &reports[0];
        assert!(r.error.is_none(), "{file}: {:?}", r.error);
        if !needle.is_empty() {
            let all: String = r.damaged.join("\n")
                + &observations
                    .iter()
                    .filter_map(|o| o.tls.failure.as_ref().map(|f| f.reason.clone()))
                    .collect::<Vec<_>>()
                    .join("\n");
            assert!(
                all.contains(needle),
                "{file}: no line mentions {needle:?}: {all}"
            );
        }
    }
}

#[test]
fn truncated_capture_keeps_its_good_handshakes() {
    let full = std::fs::read(captures().join("ppp__tls2.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() * 2 / 3]).unwrap();
    let (reports, observations) = read_all(&[cut], &HashMap::new(), &Default::default());
    assert!(
        reports[0]
            .truncated
            .as_deref()
            .unwrap_or("")
            .contains("breaks after frame"),
        "{:?}",
        reports[0]
    );
    let whole = observations
        .iter()
        .filter(|o| !o.presented.is_empty())
        .count();
    assert!(whole >= 1, "handshakes before the cut survive");

    // Through the binary: exit 0, the truncation said in the capture section.
    let out = crate::run(&[
        "replay",
        &dir.path().join("cut.pcap").display().to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.json()["capture"][0]["truncated"].is_string());
}

#[test]
fn not_a_capture_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("notes.txt");
    std::fs::write(&junk, b"this is not a capture").unwrap();
    let out = crate::run(&["replay", &junk.display().to_string()]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("not a pcap or pcapng file"),
        "{}",
        out.stderr
    );
    let missing = crate::run(&["replay", "/nonexistent/x.pcap"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("/nonexistent/x.pcap"));
}

/// A capture of a link type edgetap does not decode says so in the text
/// report, not only in the JSON statistics; a decodable one says nothing.
#[test]
fn an_unsupported_link_type_is_said_in_text() {
    let dir = tempfile::tempdir().unwrap();
    // A classic pcap, link type 147 (USER0), three 60-byte frames.
    let pcap = |linktype: u32| -> Vec<u8> {
        let mut b = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, linktype] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for i in 0..3u32 {
            for v in [1_700_000_000 + i, 0, 60, 60] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.extend_from_slice(&[0u8; 60]);
        }
        b
    };
    let user0 = dir.path().join("user0.pcap");
    std::fs::write(&user0, pcap(147)).unwrap();
    let out = crate::run(&["replay", user0.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("not decoded") && out.stdout.contains("link type 147"),
        "{}",
        out.stdout
    );
    let ether = dir.path().join("ether.pcap");
    std::fs::write(&ether, pcap(1)).unwrap();
    let out = crate::run(&["replay", ether.to_str().unwrap()]);
    assert!(!out.stdout.contains("not decoded"), "{}", out.stdout);
}

#[test]
fn xmpp_capture_is_judged_against_the_stream_domain() {
    let out = crate::run(&[
        "replay",
        &captures()
            .join("zeek__xmpp-starttls.pcap")
            .display()
            .to_string(),
        "--format",
        "json",
        "--at",
        "2015-01-01T00:00:00Z",
    ]);
    let doc = out.json();
    let h = &doc["handshakes"][0];
    assert_eq!(h["service"], "xmpp");
    assert_eq!(h["reference_identity"], "jabber.ccc.de");
    assert_eq!(
        h["xmpp"]["offered"], true,
        "the server's STARTTLS offer: {h}"
    );
    assert_eq!(h["capture"]["server"], "146.255.57.229:5222");
    assert!(h["capture"]["frame"].as_u64().unwrap() > 0);
    assert_eq!(doc["capture"][0]["tls_handshakes"], 1);
}

/// `--edge-domain` gives a capture the context a live client had: HTTPS
/// handshakes become edge connections for it, so a certificate without the
/// domain fires edge.domain-san-missing, and the report says where the
/// context came from.
#[test]
fn edge_domain_from_the_command_line() {
    let capture = captures().join("ppp__tls.pcap").display().to_string();
    let judge = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            capture.as_str(),
            "--format",
            "json",
            "--at",
            "2015-01-01T00:00:00Z",
        ];
        args.extend_from_slice(extra);
        crate::run(&args).json()
    };
    let without = judge(&[]);
    let with = judge(&["--edge-domain", "example.com"]);
    let fired = |doc: &Value| {
        doc["handshakes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| crate::finding_rules(h).contains(&"edge.domain-san-missing".to_owned()))
            .count()
    };
    assert_eq!(fired(&without), 0);
    assert!(fired(&with) > 0, "{with}");
    let h = with["handshakes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["service"] == "http")
        .unwrap();
    assert_eq!(h["edge_domain"], "example.com");
    assert!(
        h["origin"]["locator"]
            .as_str()
            .unwrap()
            .contains("--edge-domain")
    );
}

/// A capture that holds no handshake (a pcap header and nothing else, or a
/// pcapng cut before the first handshake) judged nothing: the run is
/// unknown, never ok, says why at the top, and `--fail-on warn` is reached.
#[test]
fn a_capture_without_a_handshake_is_unknown_not_ok() {
    let dir = tempfile::tempdir().unwrap();
    // pcap header: little-endian, v2.4, snaplen 262144, Ethernet; no record.
    let empty = dir.path().join("header-only.pcap");
    let mut header = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&empty, &header).unwrap();
    let mut captures = vec![(
        empty,
        "no TLS handshake was seen in the capture (0 frames read)",
    )];
    // The demo capture cut after its third frame (DNS only, no handshake yet).
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/demo/demo.pcapng");
    let cut = dir.path().join("cut.pcapng");
    if crate::tool_present("editcap", "a capture cut by editcap") {
        let cut_status = std::process::Command::new("editcap")
            .args(["-r"])
            .arg(&demo)
            .arg(&cut)
            .arg("1-3")
            .status()
            .unwrap();
        assert!(
            cut_status.success(),
            "editcap could not cut the demo capture"
        );
        captures.push((
            cut,
            "no TLS handshake was seen in the capture (3 frames read)",
        ));
    }
    for (file, why) in captures {
        let file = file.display().to_string();
        let r = crate::run(&["replay", &file, "--format", "json", "--fail-on", "warn"]);
        assert_eq!(r.code, 1, "--fail-on warn is reached: {}", r.stderr);
        let doc = r.json();
        assert_eq!(doc["worst"], "unknown", "{doc}");
        assert_eq!(doc["not_examined"], why, "{doc}");
        let text = crate::run(&["replay", &file]);
        assert_eq!(text.code, 0, "{}", text.stderr);
        let second = text.stdout.lines().nth(1).unwrap_or_default();
        assert!(
            second.starts_with("UNKNOWN for the whole run: no TLS handshake"),
            "{}",
            text.stdout
        );
        let html = crate::run(&["replay", &file, "--format", "html"]);
        assert!(
            html.stdout
                .contains("unknown</span> for the whole run: no TLS handshake"),
            "{}",
            html.stdout
        );
    }
    // A capture with handshakes says nothing of the kind.
    let r = crate::run(&["replay", &demo.display().to_string(), "--format", "json"]);
    assert!(r.json()["not_examined"].is_null());
}
