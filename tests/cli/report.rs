//! The HTML report (`--format html`, `--report FILE`): it holds everything the
//! JSON document does (every rule ID, every fingerprint), it is one
//! self-contained file, wire text cannot inject markup, and a real browser
//! (Debian's chromium, headless) renders and prints it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{AT, run};

/// Every rule ID of a finding and every SHA-256 of a certificate in the JSON document.
fn rule_ids_and_fingerprints(doc: &Value) -> (Vec<String>, Vec<String>) {
    let mut rules = Vec::new();
    let mut fingerprints = Vec::new();
    let mut walk = vec![doc];
    while let Some(v) = walk.pop() {
        match v {
            Value::Object(map) => {
                if let (Some(Value::String(rule)), Some(_)) = (map.get("rule"), map.get("fix")) {
                    rules.push(rule.clone());
                }
                if let Some(Value::String(fp)) = map.get("sha256") {
                    fingerprints.push(fp.clone());
                }
                walk.extend(map.values());
            }
            Value::Array(list) => walk.extend(list),
            _ => {}
        }
    }
    rules.sort();
    rules.dedup();
    fingerprints.sort();
    fingerprints.dedup();
    (rules, fingerprints)
}

/// Nothing in the page is fetched or run: no script, stylesheet, font, image
/// or frame, no event handler, and links only within the page. Every tag is
/// looked at (text from the wire is escaped, so it holds no `<`).
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(lower.starts_with("<!doctype html>") && lower.trim_end().ends_with("</html>"));
    for banned in ["@import", "url(http", "@font-face"] {
        assert!(
            !lower.contains(banned),
            "the style fetches something: {banned}"
        );
    }
    let mut rest = lower.as_str();
    while let Some(i) = rest.find('<') {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
        let tag = &rest[i + 1..tag_end];
        rest = &rest[tag_end.min(rest.len())..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        assert!(
            ![
                "script",
                "link",
                "img",
                "iframe",
                "object",
                "embed",
                "image",
                "use",
                "foreignobject"
            ]
            .contains(&name.as_str()),
            "an element that fetches or runs something: <{tag}>"
        );
        for attr in tag.split_whitespace().skip(1) {
            let key = attr.split('=').next().unwrap_or_default();
            assert!(
                !key.starts_with("on") && key != "src" && key != "xlink:href",
                "an attribute that fetches or runs something: <{tag}>"
            );
            if key == "href" {
                assert!(
                    attr.starts_with("href=\"#"),
                    "a link out of the page: <{tag}>"
                );
            }
        }
    }
}

#[test]
fn html_report_holds_every_rule_and_fingerprint_of_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("sample.html");
    let json = run(&[
        "inspect",
        "--sample",
        "--at",
        AT,
        "--format",
        "json",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let doc = json.json();
    let html = std::fs::read_to_string(&report).unwrap();
    let (rules, fingerprints) = rule_ids_and_fingerprints(&doc);
    assert!(
        rules.len() >= 4 && fingerprints.len() >= 5,
        "{rules:?} {fingerprints:?}"
    );
    for rule in &rules {
        assert!(
            html.contains(rule.as_str()),
            "rule {rule} missing from the HTML"
        );
    }
    for fp in &fingerprints {
        assert!(
            html.contains(fp.as_str()),
            "fingerprint {fp} missing from the HTML"
        );
    }
    assert_self_contained(&html);
    // One chain diagram per handshake at least, and its anchor for the summary's link.
    let handshakes = doc["handshakes"].as_array().unwrap().len();
    assert!(html.matches("<svg ").count() >= handshakes);
    for n in 1..=handshakes {
        assert!(
            html.contains(&format!("id=\"hs-{n}\"")),
            "no section hs-{n}"
        );
    }
    // --format html prints the same document on stdout.
    let printed = run(&["inspect", "--sample", "--at", AT, "--format", "html"]);
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    assert_eq!(printed.stdout.trim_end(), html.trim_end());

    // replay's report says what the captures held, beside the handshakes.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/demo/demo.pcapng");
    let replay = run(&[
        "replay",
        demo.to_str().unwrap(),
        "--at",
        AT,
        "--format",
        "html",
    ]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert!(replay.stdout.contains("Captures read") && replay.stdout.contains("demo.pcapng"));
    assert_self_contained(&replay.stdout);
}

/// A certificate whose names carry markup: the page shows the text, never runs it.
#[test]
fn wire_text_cannot_inject_markup_into_the_html_report() {
    #[allow(clippy::disallowed_methods)] // certificate valid around the real clock
    let now = time::OffsetDateTime::now_utc();
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["expe.example.com".to_owned()]).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, hostile);
    p.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "</svg><svg onload=alert(3)>",
    );
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(90);
    let cert = p.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.pem");
    std::fs::write(&file, cert.pem()).unwrap();
    let out = run(&[
        "inspect",
        file.to_str().unwrap(),
        "--name",
        "<b>expe.example.com</b>",
        "--format",
        "html",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_self_contained(&out.stdout);
    assert!(!out.stdout.contains("<b>expe"), "the name was not escaped");
    assert!(!out.stdout.contains("onload=alert(3)>"));
    assert!(
        out.stdout
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;"),
        "the escaped CN is shown"
    );
}

#[test]
fn report_into_a_missing_folder_is_refused_before_any_work() {
    let out = run(&[
        "inspect",
        "--sample",
        "--report",
        "/nonexistent-folder-edgetap/report.html",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("no such folder") && out.stdout.is_empty(),
        "{}",
        out.stderr
    );
}

/// regress --format html: the cases with what did not hold, then each case's report.
#[test]
fn regress_writes_an_html_page() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/regress-samples.toml");
    let out = run(&["regress", suite.to_str().unwrap(), "--format", "html"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_self_contained(&out.stdout);
    assert!(out.stdout.contains("PASSED") && out.stdout.contains("<h2 id=\"case-0\">"));
    assert!(out.stdout.contains("<svg "), "each case's chain is drawn");
}

/// chromium from the PATH, or None (the caller says why it skips).
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// The sample report rendered by a real browser: the screenshot holds the
/// diagram's colours (red boxes for the failing chains, green for the trusted
/// path), and printing gives a PDF of several pages.
#[test]
fn the_sample_report_renders_in_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            crate::tool_present("chromium", "rendering the HTML report"),
            "chromium runs but is not on the PATH as chromium"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("sample.html");
    let out = run(&[
        "inspect",
        "--sample",
        "--at",
        AT,
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let url = format!("file://{}", report.display());
    let headless = |extra: &[String]| {
        let o = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-extensions",
                "--force-device-scale-factor=1",
                &format!("--user-data-dir={}", dir.path().join("profile").display()),
            ])
            .args(extra)
            .arg(&url)
            .env("HOME", dir.path())
            // The report is judged at a fixed --at, so the browser's clock
            // does not matter; under CI's libfaketime run it would only make
            // chromium's many processes 60x slower (156 s instead of 2.6 s).
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let png_path = dir.path().join("sample.png");
    headless(&[
        "--window-size=1280,2400".to_owned(),
        format!("--screenshot={}", png_path.display()),
    ]);
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!((frame.width, frame.height), (1280, 2400));
    let channels = frame.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..frame.buffer_size()].chunks(channels).collect();
    let count = |rgb: [u8; 3]| pixels.iter().filter(|p| p[..3] == rgb).count();
    let red = count([0xc6, 0x28, 0x28]);
    let green = count([0x2e, 0x7d, 0x32]);
    let white = count([0xff, 0xff, 0xff]);
    eprintln!(
        "screenshot {}: {red} red, {green} green, {white} white pixels",
        png_path.display()
    );
    assert!(
        red > 2000,
        "the failing chains' red boxes and badges: {red} pixels"
    );
    assert!(
        green > 1000,
        "the trusted path's green boxes: {green} pixels"
    );
    assert!(white < pixels.len() * 95 / 100, "the page is not blank");

    let pdf_path = dir.path().join("sample.pdf");
    headless(&[
        "--no-pdf-header-footer".to_owned(),
        format!("--print-to-pdf={}", pdf_path.display()),
    ]);
    let pdf = std::fs::read(&pdf_path).unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let pages = pdf.windows(11).filter(|w| w == b"/Type /Page").count()
        - pdf.windows(12).filter(|w| w == b"/Type /Pages").count();
    assert!(
        pages >= 5,
        "one page per handshake at least when printed: {pages} pages"
    );
}

/// The diagram draws each profile's path as it is: the enterprise root the
/// phones do not trust is drawn as that, with the store that holds it, never
/// as a certificate the server failed to send; one diagram per distinct path
/// names every profile that has it; summary rows say where each handshake
/// was seen, so two files for one host read apart.
#[test]
fn diagrams_name_every_profile_and_never_blame_the_server_for_a_trust_choice() {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/samples");
    let (good, leaf) = (
        format!("{samples}/expe-good.pem"),
        format!("{samples}/expe-leaf-only.pem"),
    );
    let root = format!("{samples}/example-root-ca.pem");
    let html = |files: &[&str]| {
        let mut args = vec!["inspect"];
        args.extend_from_slice(files);
        args.extend([
            "--name",
            "expe.example.com",
            "--trust",
            &root,
            "--at",
            "2026-06-01",
            "--format",
            "html",
        ]);
        let r = crate::run(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
    };
    let page = html(&[&good]);
    assert!(
        !page.contains("missing link") && !page.contains("was not sent by the server"),
        "{page}"
    );
    assert!(
        page.contains("✗ ip-phone, tc-endpoint do not trust it"),
        "{page}"
    );
    assert!(page.contains("an enterprise CA in the store of jabber, expressway-c, not in theirs"));
    assert!(page.contains("Path for jabber, expressway-c: <tspan fill=\"#2e7d32\">trusted"));
    // The leaf alone: one path for every profile (the intermediate is missing
    // for all), named as such.
    let page = html(&[&leaf]);
    assert_eq!(page.matches("<svg ").count(), 1, "one distinct path");
    assert!(
        page.contains("Path for jabber, ip-phone, tc-endpoint, expressway-c:"),
        "{page}"
    );
    assert!(page.contains("missing link"));
    // Two files, one host: the summary rows differ by source.
    let page = html(&[&good, &leaf]);
    assert!(
        page.contains("expe.example.com (")
            && page.contains("expe-good.pem)")
            && page.contains("expe-leaf-only.pem)")
    );
}
