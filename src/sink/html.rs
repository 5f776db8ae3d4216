//! The HTML report: one self-contained file (inline CSS and SVG, no script,
//! font, image or link to fetch) that opens from disk with no network and
//! prints readably. A summary of endpoints × profiles, worst first; then per
//! handshake a chain diagram (each certificate a box coloured by its worst
//! finding, "signed by" arrows, the trust anchor and its store, the missing
//! link drawn as a gap), the verdict of each profile, and every finding with
//! its evidence and fix. Everything that came from the wire or a file is
//! HTML-escaped after [`printable`](super::printable) has neutralised control
//! and bidirectional characters.
//!
//! Written by hand: the page is a few fixed templates, and a template engine
//! would add a dependency (and its own escaping rules to audit) for no gain.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use time::OffsetDateTime;

use crate::core::analysis::engine::{DnsReport, HandshakeReport, PathCert, PathView};
use crate::core::analysis::finding::CertSource;
use crate::core::analysis::profile::ProfileSet;
use crate::core::analysis::{Effect, Finding, Outcome, Profile, Report, Verdict};
use crate::core::x509::{PathEnd, SigCheck};
use crate::sink::{count, printable, rfc3339, validity_words};

/// `s` from the wire or a file, safe inside HTML text and attribute values.
fn esc(s: &str) -> String {
    let s = printable(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` cut to `n` characters (with "…"), then escaped: SVG text does not wrap.
fn esc_cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        esc(s)
    } else {
        esc(&format!("{}…", s.chars().take(n - 1).collect::<String>()))
    }
}

/// The CSS class of an outcome.
fn outcome_class(o: Outcome) -> &'static str {
    o.as_str()
}

/// The CSS class of a finding's effect ("info" below warn).
fn effect_class(e: Effect) -> &'static str {
    match e {
        Effect::NotApplicable | Effect::Ok => "info",
        Effect::Warn => "warn",
        Effect::Prompt => "prompt",
        Effect::Fail => "fail",
    }
}

/// Stroke and fill of a certificate box with this worst effect.
fn box_colours(e: Option<Effect>) -> (&'static str, &'static str) {
    match e {
        Some(Effect::Fail) => ("#c62828", "#ffebee"),
        Some(Effect::Prompt) => ("#8e24aa", "#f3e5f5"),
        Some(Effect::Warn) => ("#b26a00", "#fff4e0"),
        _ => ("#2e7d32", "#eef7ee"),
    }
}

const STYLE: &str = r#"
:root { --ok:#2e7d32; --warn:#b26a00; --unknown:#00838f; --prompt:#8e24aa; --fail:#c62828; --info:#616161; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; font-size: 14px; color: #1b1b1b; margin: 24px auto; max-width: 1100px; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 2px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.meta { color: #555; }
code, .mono { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12.5px; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid #d0d0d0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.badge { display: inline-block; min-width: 64px; text-align: center; font-weight: bold; border-radius: 3px; padding: 1px 6px; color: #fff; }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); } .badge.unknown { background: var(--unknown); }
.badge.prompt { background: var(--prompt); } .badge.fail { background: var(--fail); } .badge.info, .badge.na { background: #9e9e9e; }
td.ok { background: #e8f5e9; } td.warn { background: #fff4e0; } td.unknown { background: #e0f7fa; } td.prompt { background: #f3e5f5; } td.fail { background: #ffebee; } td.na { color: #777; }
section.handshake { border-top: 3px solid #888; margin-top: 28px; padding-top: 4px; }
section.handshake.ok { border-top-color: var(--ok); } section.handshake.warn { border-top-color: var(--warn); }
section.handshake.unknown { border-top-color: var(--unknown); } section.handshake.prompt { border-top-color: var(--prompt); } section.handshake.fail { border-top-color: var(--fail); }
.finding { border-left: 5px solid var(--info); background: #fafafa; padding: 6px 10px; margin: 8px 0; break-inside: avoid; }
.finding.warn { border-left-color: var(--warn); } .finding.prompt { border-left-color: var(--prompt); } .finding.fail { border-left-color: var(--fail); }
.finding .rule { font-weight: bold; font-family: "DejaVu Sans Mono", Consolas, monospace; }
.finding .fix { margin-top: 4px; } .finding .fix b { color: #2e7d32; }
.evidence td, .evidence th { font-size: 12.5px; }
.diagram { margin: 8px 0; } .diagram svg { max-width: 100%; height: auto; }
.note { color: #555; font-style: italic; }
.failed { color: var(--fail); font-weight: bold; }
details summary { cursor: pointer; color: #333; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  section.handshake { break-before: page; }
  .diagram, table { break-inside: avoid; }
  details::details-content { content-visibility: visible; display: block; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// The document's start: doctype, title, inline style, the page header.
fn open_page(out: &mut String, title: &str, badge: Outcome, badge_text: &str, meta: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>edgetap report <span class=\"badge {c}\">{badge_text}</span></h1>\n\
         <div class=\"meta\">{meta}</div></header>\n",
        c = outcome_class(badge),
    );
}

/// The legend and the document's end.
fn close_page(out: &mut String) {
    out.push_str(
        "<footer class=\"meta\"><p>Verdicts per client profile: ok (connects silently), warn (connects; worth fixing), \
         unknown (the chain this client saw was not seen by edgetap), prompt (the user is asked to accept the \
         certificate), fail (cannot connect). <code>edgetap rules ID</code> explains a rule.</p></footer>\n</body>\n</html>\n",
    );
}

/// Render `report` analysed at `now` as a self-contained HTML document.
pub fn render(report: &Report, now: OffsetDateTime) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let worst = report.worst();
    let title = format!(
        "edgetap report: {worst}, {}, {}",
        count(report.handshakes.len() as u64, "handshake"),
        rfc3339(now)
    );
    let meta = format!(
        "analysed at {at} · edgetap {v} · {n}{dns}",
        at = rfc3339(now),
        v = env!("CARGO_PKG_VERSION"),
        n = count(report.handshakes.len() as u64, "handshake"),
        dns = report
            .dns
            .as_ref()
            .map(|d| format!(" · DNS for {}", esc(&d.discovery.domain)))
            .unwrap_or_default(),
    );
    open_page(
        &mut out,
        &title,
        worst,
        &worst.as_str().to_uppercase(),
        &meta,
    );
    report_body(&mut out, report, now, "");
    close_page(&mut out);
    out
}

/// One report's sections; `prefix` keeps anchors unique when a page holds several.
fn report_body(out: &mut String, report: &Report, now: OffsetDateTime, prefix: &str) {
    summary(out, report, prefix);
    if let Some(dns) = &report.dns {
        dns_section(out, dns, prefix);
    }
    if let Some(files) = &report.capture {
        capture_section(out, files);
    }
    for (i, h) in report.handshakes.iter().enumerate() {
        handshake(out, &format!("{prefix}hs-{}", i + 1), i + 1, h, now);
    }
}

/// One case of a `regress` run, for [`render_regress`].
#[derive(Debug)]
pub struct RegressCase<'a> {
    /// The suite file it belongs to.
    pub suite: &'a str,
    /// The case's name.
    pub name: &'a str,
    /// Whether every expectation held.
    pub passed: bool,
    /// What failed (an error, mismatches, drift), one line each.
    pub problems: Vec<String>,
    /// The report the case's input gave, when it ran, and when it was judged.
    pub report: Option<(&'a Report, OffsetDateTime)>,
}

/// A `regress` run as one HTML document: the cases, pass or fail with what
/// did not hold, then each case's report.
pub fn render_regress(cases: &[RegressCase<'_>], now: OffsetDateTime) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let failed = cases.iter().filter(|c| !c.passed).count();
    let badge = if failed > 0 {
        Outcome::Fail
    } else {
        Outcome::Ok
    };
    let meta = format!(
        "regress run at {} · edgetap {} · {} passed, {failed} failed",
        rfc3339(now),
        env!("CARGO_PKG_VERSION"),
        cases.len() - failed
    );
    let title = format!(
        "edgetap regress: {} passed, {failed} failed",
        cases.len() - failed
    );
    let label = if failed > 0 { "FAILED" } else { "PASSED" };
    open_page(&mut out, &title, badge, label, &meta);
    out.push_str("<h2>Cases</h2>\n<table><tr><th>suite</th><th>case</th><th>result</th><th>what did not hold</th></tr>\n");
    for (k, c) in cases.iter().enumerate() {
        let (class, word) = if c.passed {
            ("ok", "pass")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"mono\">{}</td><td><a href=\"#case-{k}\">{}</a></td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
            esc(c.suite),
            esc(c.name),
            c.problems
                .iter()
                .map(|p| esc(p))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    out.push_str("</table>\n");
    for (k, c) in cases.iter().enumerate() {
        let _ = writeln!(
            out,
            "<h2 id=\"case-{k}\">Case {} <span class=\"meta\">{}</span></h2>",
            esc(c.name),
            esc(c.suite)
        );
        match &c.report {
            Some((report, at)) => report_body(&mut out, report, *at, &format!("c{k}-")),
            None => out.push_str("<p class=\"note\">The case did not run to a report.</p>\n"),
        }
    }
    close_page(&mut out);
    out
}

/// The worst outcome of one handshake over the profiles it applies to.
fn handshake_worst(h: &HandshakeReport) -> Outcome {
    h.verdicts
        .values()
        .filter(|v| v.applicable)
        .map(|v| v.outcome)
        .max()
        .unwrap_or(Outcome::Ok)
}

/// The endpoint and where the handshake was seen (the file or capture
/// frame), so that two rows for one host read apart.
fn endpoint_label(h: &HandshakeReport) -> String {
    let o = &h.observation;
    let endpoint = match (&o.endpoint.host, o.endpoint.port) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        _ => o.reference_identity.to_string(),
    };
    match o.origin.kind {
        // A probe's locator is the endpoint again.
        crate::core::observation::SourceKind::Probe => endpoint,
        _ => format!("{endpoint} ({})", o.origin.locator),
    }
}

fn verdict_cell(v: Option<&Verdict>) -> String {
    match v {
        None => "<td></td>".to_owned(),
        Some(v) if !v.applicable => "<td class=\"na\">n/a</td>".to_owned(),
        Some(v) => {
            let title = if let Some(why) = &v.not_judged {
                esc(why)
            } else {
                v.rules.join(", ")
            };
            format!(
                "<td class=\"{c}\" title=\"{title}\">{o}</td>",
                c = outcome_class(v.outcome),
                o = v.outcome.as_str()
            )
        }
    }
}

/// Endpoints × profiles, worst first.
fn summary(out: &mut String, report: &Report, prefix: &str) {
    out.push_str("<h2>Summary</h2>\n");
    if let Some(why) = &report.not_examined {
        let _ = writeln!(
            out,
            "<p class=\"note\"><span class=\"badge {}\">unknown</span> for the whole run: {}; nothing below says the rest is ok.</p>",
            outcome_class(Outcome::Unknown),
            esc(why)
        );
    }
    if report.handshakes.is_empty() {
        out.push_str("<p class=\"note\">No handshake was observed.</p>\n");
        return;
    }
    let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
    for h in &report.handshakes {
        *counts.entry(handshake_worst(h)).or_default() += 1;
    }
    let line: Vec<String> = counts
        .iter()
        .rev()
        .map(|(o, n)| {
            format!(
                "<span class=\"badge {}\">{n} {}</span>",
                outcome_class(*o),
                o
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "<p>Handshakes by worst verdict: {}</p>",
        line.join(" ")
    );
    let mut order: Vec<usize> = (0..report.handshakes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(handshake_worst(&report.handshakes[i])));
    out.push_str("<table class=\"summary\"><tr><th>#</th><th>endpoint</th><th>service</th><th>name checked</th>");
    for p in Profile::ALL {
        let _ = write!(out, "<th>{}</th>", p.as_str());
    }
    out.push_str("</tr>\n");
    for i in order {
        let h = &report.handshakes[i];
        let _ = write!(
            out,
            "<tr><td><a href=\"#{prefix}hs-{n}\">{n}</a></td><td class=\"mono\">{ep}</td><td>{svc}</td><td class=\"mono\">{name}</td>",
            n = i + 1,
            ep = esc(&endpoint_label(h)),
            svc = h.observation.service.as_str(),
            name = esc(&h.observation.reference_identity.to_string()),
        );
        for p in Profile::ALL {
            out.push_str(&verdict_cell(h.verdicts.get(&p)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn dns_section(out: &mut String, dns: &DnsReport, prefix: &str) {
    let d = &dns.discovery;
    let _ = writeln!(
        out,
        "<h2>DNS for {} <span class=\"meta\">resolver {}</span></h2>",
        esc(&d.domain),
        esc(&d.resolver)
    );
    out.push_str("<table><tr><th>record</th><th>answer</th><th>targets</th></tr>\n");
    for l in &d.lookups {
        let targets: Vec<String> = l
            .targets()
            .iter()
            .map(|t| {
                let addrs = esc(&t.addresses_text());
                format!(
                    "prio {} weight {} <code>{}:{}</code> → {addrs}",
                    t.record.priority,
                    t.record.weight,
                    esc(&t.record.target),
                    t.record.port
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&l.name),
            esc(&l.describe()),
            targets.join("<br>")
        );
    }
    out.push_str("</table>\n");
    verdict_table(out, &dns.verdicts, &format!("{prefix}dns"));
    findings(out, &dns.findings, &format!("{prefix}dns"));
}

fn capture_section(out: &mut String, files: &[crate::core::capture::CaptureFileReport]) {
    out.push_str("<h2>Captures read</h2>\n<ul>\n");
    for f in files {
        if let Some(e) = &f.error {
            let _ = writeln!(
                out,
                "<li><span class=\"failed\">unreadable:</span> {}</li>",
                esc(e)
            );
            continue;
        }
        let mut notes = Vec::new();
        if !f.stats.unsupported_link_types.is_empty() {
            notes.push(format!(
                "frames of link type {} were not decoded",
                f.stats
                    .unsupported_link_types
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if f.tls13_handshakes > 0 {
            notes.push(format!(
                "TLS 1.3: {} of {} decrypted",
                f.decrypted, f.tls13_handshakes
            ));
        }
        if f.intercept_legs > 0 {
            notes.push(format!(
                "{} intercept client leg(s) left out (chains forged by edgetap)",
                f.intercept_legs
            ));
        }
        if let Some(t) = &f.truncated {
            notes.push(format!("truncated: {}", esc(t)));
        }
        for d in &f.damaged {
            notes.push(format!("damaged: {}", esc(d)));
        }
        let _ = writeln!(
            out,
            "<li><code>{}</code> ({}): {}, {}, {}, {}{}</li>",
            esc(&f.file),
            esc(&f.format),
            count(f.stats.frames, "frame"),
            count(f.stats.connections, "TCP connection"),
            count(f.tls_handshakes as u64, "TLS handshake"),
            count(f.chains as u64, "server chain"),
            if notes.is_empty() {
                String::new()
            } else {
                format!("<br><span class=\"note\">{}</span>", notes.join("; "))
            }
        );
    }
    out.push_str("</ul>\n");
}

fn handshake(
    out: &mut String,
    anchor: &str,
    number: usize,
    h: &HandshakeReport,
    now: OffsetDateTime,
) {
    let o = &h.observation;
    let worst = handshake_worst(h);
    let _ = writeln!(
        out,
        "<section class=\"handshake {c}\" id=\"{anchor}\">\n<h2>[{number}] {name} <span class=\"meta\">({svc})</span> <span class=\"badge {c}\">{w}</span></h2>",
        c = outcome_class(worst),
        w = worst.as_str(),
        name = esc(&o.reference_identity.to_string()),
        svc = o.service,
    );
    let mut facts = vec![format!("seen at <code>{}</code>", esc(&o.origin.locator))];
    if let Some(edge) = &o.edge_domain {
        facts.push(format!("edge domain <code>{}</code>", esc(edge)));
    }
    if let Some(v) = &o.tls.version {
        facts.push(esc(&v.to_string()));
    }
    if let Some(c) = &o.tls.cipher {
        facts.push(esc(&c.to_string()));
    }
    if let Some(sni) = &o.tls.sni {
        facts.push(format!("SNI <code>{}</code>", esc(sni)));
    }
    let _ = writeln!(out, "<p class=\"meta\">{}</p>", facts.join(" · "));
    if let Some(f) = &o.tls.failure {
        let _ = writeln!(
            out,
            "<p><span class=\"failed\">Handshake failed:</span> {}</p>",
            esc(&f.reason)
        );
    }

    out.push_str("<h3>Chain</h3>\n");
    let worst_by_cert = cert_effects(&h.findings);
    if h.paths.is_empty() {
        let why = crate::core::analysis::engine::chain_unseen(o)
            .unwrap_or_else(|| "no certificate could be read".to_owned());
        let _ = writeln!(out, "<p class=\"note\">No path to draw: {}.</p>", esc(&why));
    } else {
        for (i, p) in distinct_paths(&h.paths).iter().enumerate() {
            let _ = writeln!(
                out,
                "<div class=\"diagram\">{}</div>",
                chain_svg(h, p, now, &worst_by_cert, anchor, i)
            );
        }
    }
    chain_table(out, h, now);
    out.push_str("<h3>Verdicts</h3>\n");
    verdict_table(out, &h.verdicts, anchor);
    findings(out, &h.findings, anchor);
    out.push_str("</section>\n");
}

/// The paths to draw: one per distinct path, naming every profile whose
/// store gives it (not only the first store's).
fn distinct_paths(paths: &[PathView]) -> Vec<PathView> {
    let mut out: Vec<PathView> = Vec::new();
    for p in paths {
        match out.iter_mut().find(|q| q.same_path(p)) {
            Some(q) => q.profiles = q.profiles.union(p.profiles),
            None => out.push(p.clone()),
        }
    }
    out
}

/// The profiles whose store holds `issuer` as an anchor, when a path of
/// this handshake ends at it: a root the profile drawn does not trust,
/// never a certificate the server failed to send.
fn held_elsewhere(h: &HandshakeReport, issuer: &str) -> Option<(ProfileSet, CertSource)> {
    h.paths.iter().find_map(|q| {
        q.certificates
            .iter()
            .find(|c| c.subject == issuer && c.source != CertSource::Presented)
            .map(|c| (q.profiles, c.source))
    })
}

/// Which certificate a finding is about, as a key shared with path nodes:
/// the position for presented certificates, else the fingerprint or subject.
fn cert_key(position: Option<usize>, sha256: Option<&str>, subject: &str) -> String {
    match (position, sha256) {
        (Some(p), _) => format!("#{p}"),
        (None, Some(s)) => s.to_owned(),
        (None, None) => subject.to_owned(),
    }
}

/// The worst effect of the findings about each certificate, per profile set.
fn cert_effects(findings: &[Finding]) -> Vec<(String, ProfileSet, Effect)> {
    findings
        .iter()
        .filter_map(|f| {
            let c = f.certificate.as_ref()?;
            Some((
                cert_key(c.position, c.sha256.as_deref(), &c.subject),
                f.profiles,
                f.severity(),
            ))
        })
        .collect()
}

fn node_effect(
    node: &PathCert,
    profiles: ProfileSet,
    effects: &[(String, ProfileSet, Effect)],
) -> Option<Effect> {
    let key = cert_key(node.position, node.sha256.as_deref(), &node.subject);
    effects
        .iter()
        .filter(|(k, set, _)| *k == key && set.iter().any(|p| profiles.contains(p)))
        .map(|(_, _, e)| *e)
        .max()
}

fn profile_list(set: ProfileSet) -> String {
    set.iter()
        .map(Profile::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

const BOX_W: u32 = 640;
const BOX_H: u32 = 92;
const GAP: u32 = 46;
const LEFT: u32 = 10;

/// One path as an SVG diagram, leaf at the top, each issuer below.
fn chain_svg(
    h: &HandshakeReport,
    p: &PathView,
    now: OffsetDateTime,
    effects: &[(String, ProfileSet, Effect)],
    number: &str,
    index: usize,
) -> String {
    let nodes = &p.certificates;
    let tail = !p.trusted;
    let rows = nodes.len() as u32 + u32::from(tail);
    let height = 34 + rows * BOX_H + rows.saturating_sub(1) * GAP + 10;
    let width = BOX_W + 2 * LEFT + 200;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"t-{number}-{index}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\
         <title id=\"t-{number}-{index}\">Certificate path for {who}: {end}</title>\
         <defs><marker id=\"arrow-{number}-{index}\" viewBox=\"0 0 10 10\" refX=\"5\" refY=\"9\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L10,0 L5,10 z\" fill=\"#555\"/></marker></defs>",
        who = esc(&profile_list(p.profiles)),
        end = esc(&path_end_text(h, p)),
    );
    let _ = write!(
        s,
        "<text x=\"{LEFT}\" y=\"18\" font-weight=\"bold\">Path for {who}: <tspan fill=\"{c}\">{end}</tspan></text>",
        who = esc(&profile_list(p.profiles)),
        c = if p.trusted { "#2e7d32" } else { "#c62828" },
        end = esc(&path_end_text(h, p)),
    );
    let top = 30u32;
    for (i, node) in nodes.iter().enumerate() {
        let y = top + i as u32 * (BOX_H + GAP);
        let effect = node_effect(node, p.profiles, effects);
        let info = node
            .position
            .and_then(|pos| h.chain.iter().find(|e| e.position == pos))
            .map(|e| &e.cert);
        let last = i + 1 == nodes.len();
        let role = match (node.source, node.position) {
            (CertSource::Presented, Some(0)) => "leaf".to_owned(),
            (CertSource::Presented, Some(pos)) => {
                let root = info.is_some_and(|c| c.self_issued);
                format!(
                    "#{pos} {}",
                    if root {
                        "root (sent by the server)"
                    } else {
                        "intermediate"
                    }
                )
            }
            (CertSource::PublicStore, _) => "trust anchor · public store".to_owned(),
            (CertSource::EnterpriseStore, _) => "trust anchor · enterprise store".to_owned(),
            (CertSource::Presented, None) => "presented".to_owned(),
        };
        let role = if last && p.trusted && node.source == CertSource::Presented {
            format!("{role} · trusted anchor")
        } else {
            role
        };
        cert_box(&mut s, y, node, info, &role, effect, now);
        if !last {
            let label = match &node.signature {
                Some(SigCheck::Invalid) => ("signature does not verify", "#c62828"),
                Some(SigCheck::Unsupported(_)) => ("signature not checked", "#b26a00"),
                _ => ("signed by", "#555"),
            };
            arrow(&mut s, y + BOX_H, label, number, index);
        }
    }
    if tail {
        let y = top + nodes.len() as u32 * (BOX_H + GAP);
        let x = LEFT;
        match &p.end {
            PathEnd::MissingIssuer { issuer } => {
                // A root another profile's store holds is one these profiles
                // do not trust, never a certificate the server failed to send.
                let (label, dashed, lines) = match held_elsewhere(h, issuer) {
                    Some((holders, source)) => {
                        let store = match source {
                            CertSource::PublicStore => "a public root",
                            _ => "an enterprise CA",
                        };
                        (
                            "issued by (not trusted here)",
                            false,
                            [
                                format!("✗ {} do not trust it", profile_list(p.profiles)),
                                issuer.clone(),
                                format!(
                                    "{store} in the store of {}, not in theirs",
                                    profile_list(holders)
                                ),
                            ],
                        )
                    }
                    None => (
                        "issued by (missing)",
                        true,
                        [
                            "missing link".to_owned(),
                            format!("issuer {issuer}"),
                            format!(
                                "was not sent by the server and no store of {} holds it",
                                profile_list(p.profiles)
                            ),
                        ],
                    ),
                };
                arrow(&mut s, y - GAP, (label, "#c62828"), number, index);
                end_box(&mut s, (x, y), dashed, &lines);
            }
            PathEnd::UntrustedRoot => {
                let _ = write!(
                    s,
                    "<text x=\"{tx}\" y=\"{ty}\" font-weight=\"bold\" fill=\"#c62828\">✗ not trusted by {who}</text>",
                    tx = x + 12,
                    ty = y - GAP + 28,
                    who = esc(&profile_list(p.profiles)),
                );
            }
            PathEnd::Anchored { .. } => {
                let _ = write!(
                    s,
                    "<text x=\"{tx}\" y=\"{ty}\" font-weight=\"bold\" fill=\"#c62828\">✗ anchored, but a signature on the path does not verify</text>",
                    tx = x + 12,
                    ty = y - GAP + 28,
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// The box a path that is not trusted ends in: a bold red first line, the
/// certificate's name, a grey explanation; dashed for what is missing.
fn end_box(s: &mut String, (x, y): (u32, u32), dashed: bool, [first, name, why]: &[String; 3]) {
    let dash = if dashed {
        " stroke-dasharray=\"8 6\""
    } else {
        ""
    };
    let _ = write!(
        s,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\" fill=\"#fff\" stroke=\"#c62828\" stroke-width=\"2\"{dash}/>\
         <text x=\"{tx}\" y=\"{y1}\" font-weight=\"bold\" fill=\"#c62828\">{first}</text>\
         <text x=\"{tx}\" y=\"{y2}\">{name}</text>\
         <text x=\"{tx}\" y=\"{y3}\" fill=\"#555\">{why}</text>",
        tx = x + 12,
        y1 = y + 22,
        y2 = y + 42,
        y3 = y + 62,
        first = esc(first),
        name = esc_cut(name, 93),
        why = esc(why),
    );
}

fn arrow(s: &mut String, from_y: u32, (label, colour): (&str, &str), number: &str, index: usize) {
    let x = LEFT + 60;
    let _ = write!(
        s,
        "<line x1=\"{x}\" y1=\"{y1}\" x2=\"{x}\" y2=\"{y2}\" stroke=\"{colour}\" stroke-width=\"2\" marker-end=\"url(#arrow-{number}-{index})\"/>\
         <text x=\"{tx}\" y=\"{ty}\" fill=\"{colour}\" font-style=\"italic\">{label}</text>",
        y1 = from_y + 2,
        y2 = from_y + GAP - 4,
        tx = x + 12,
        ty = from_y + GAP / 2 + 4,
    );
}

fn cert_box(
    s: &mut String,
    y: u32,
    node: &PathCert,
    info: Option<&crate::core::x509::CertInfo>,
    role: &str,
    effect: Option<Effect>,
    now: OffsetDateTime,
) {
    let (stroke, fill) = box_colours(effect);
    let x = LEFT;
    let tooltip = match info {
        Some(c) => format!(
            "{}\nissuer: {}\nSHA-256: {}\nSAN: {}",
            c.subject,
            c.issuer,
            c.sha256,
            if c.san.is_some() {
                c.san_text()
            } else {
                "(none)".to_owned()
            }
        ),
        None => format!(
            "{}{}",
            node.subject,
            node.sha256
                .as_deref()
                .map(|f| format!("\nSHA-256: {f}"))
                .unwrap_or_default()
        ),
    };
    let _ = write!(
        s,
        "<g><title>{tip}</title><rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2\"/>\
         <text x=\"{tx}\" y=\"{y1}\"><tspan font-weight=\"bold\">{name}</tspan><tspan fill=\"#555\">  {role}</tspan></text>",
        tip = esc(&tooltip),
        tx = x + 12,
        y1 = y + 20,
        name = esc_cut(crate::sink::short(&node.subject), 56),
        role = esc(role),
    );
    let finding_label = match effect {
        Some(e) if e >= Effect::Warn => format!("worst finding: {}", e.as_str()),
        _ => "no finding".to_owned(),
    };
    let _ = write!(
        s,
        "<text x=\"{tx}\" y=\"{y1}\" text-anchor=\"end\" fill=\"{stroke}\" font-weight=\"bold\">{finding_label}</text>",
        tx = x + BOX_W - 10,
        y1 = y + 20,
    );
    let issuer = info.map(|c| c.issuer.as_str());
    if let Some(issuer) = issuer {
        let _ = write!(
            s,
            "<text x=\"{tx}\" y=\"{ty}\" fill=\"#333\">issuer: {iss}</text>",
            tx = x + 12,
            ty = y + 38,
            iss = esc_cut(issuer, 90)
        );
    } else {
        let _ = write!(
            s,
            "<text x=\"{tx}\" y=\"{ty}\" fill=\"#333\">{sub}</text>",
            tx = x + 12,
            ty = y + 38,
            sub = esc_cut(&node.subject, 96)
        );
    }
    let validity = info
        .map(|c| (c.not_before, c.not_after))
        .or(node.not_before.zip(node.not_after));
    if let Some((from, to)) = validity {
        validity_bar(s, x + 12, y + 50, from, to, now);
    }
    if let Some(c) = info {
        let _ = write!(
            s,
            "<text x=\"{tx}\" y=\"{ty}\" fill=\"#555\">{key} · {sig}{san}</text>",
            tx = x + 12,
            ty = y + 84,
            key = esc(&c.key.describe()),
            sig = esc(&c.signature_algorithm),
            san = c
                .san
                .as_ref()
                .map(|san| format!(
                    " · {} SAN entr{}",
                    san.len(),
                    if san.len() == 1 { "y" } else { "ies" }
                ))
                .unwrap_or_else(|| " · no SAN".to_owned()),
        );
    }
    s.push_str("</g>");
}

/// A bar from notBefore to notAfter with a mark at `now`; red when `now` is outside.
fn validity_bar(
    s: &mut String,
    x: u32,
    y: u32,
    from: OffsetDateTime,
    to: OffsetDateTime,
    now: OffsetDateTime,
) {
    const W: f64 = 240.0;
    let span = (to - from).as_seconds_f64().max(1.0);
    let done = ((now - from).as_seconds_f64() / span).clamp(0.0, 1.0);
    let valid = now >= from && now <= to;
    let colour = if valid { "#2e7d32" } else { "#c62828" };
    let mark = f64::from(x) + W * done;
    let _ = write!(
        s,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"10\" fill=\"#fff\" stroke=\"#999\"/>\
         <rect x=\"{x}\" y=\"{y}\" width=\"{filled:.1}\" height=\"10\" fill=\"{colour}\" fill-opacity=\"0.45\"/>\
         <line x1=\"{mark:.1}\" y1=\"{y0}\" x2=\"{mark:.1}\" y2=\"{y1}\" stroke=\"#000\" stroke-width=\"2\"/>\
         <text x=\"{tx}\" y=\"{ty}\" fill=\"{colour}\">{a} → {b} ({rel})</text>",
        filled = W * done,
        y0 = y - 3,
        y1 = y + 13,
        tx = f64::from(x) + W + 10.0,
        ty = y + 10,
        a = from.date(),
        b = to.date(),
        rel = validity_words(from, to, now),
    );
}

/// What a path's end means, in words.
fn path_end_text(h: &HandshakeReport, p: &PathView) -> String {
    match &p.end {
        _ if p.trusted => "trusted".to_owned(),
        PathEnd::Anchored { .. } => "anchored, but a signature fails".to_owned(),
        PathEnd::UntrustedRoot => "ends at an untrusted root".to_owned(),
        PathEnd::MissingIssuer { issuer } if held_elsewhere(h, issuer).is_some() => {
            format!(
                "issuer {} not in their trust store",
                crate::sink::short(issuer)
            )
        }
        PathEnd::MissingIssuer { issuer } => {
            format!("issuer {} not found", crate::sink::short(issuer))
        }
    }
}

/// The certificates as sent, with everything the diagram leaves out.
fn chain_table(out: &mut String, h: &HandshakeReport, now: OffsetDateTime) {
    if h.chain.is_empty() {
        return;
    }
    let on_path: Vec<usize> = h
        .paths
        .iter()
        .flat_map(|p| p.certificates.iter().filter_map(|c| c.position))
        .collect();
    out.push_str(
        "<table class=\"chain\"><tr><th>#</th><th>certificate as sent</th><th>validity</th><th>key · signature</th></tr>\n",
    );
    for e in h.chain.iter() {
        let c = &e.cert;
        let san = match &c.san {
            Some(list) if !list.is_empty() => format!(
                "<details><summary>SAN ({} entr{})</summary><div class=\"mono\">{}</div></details>",
                list.len(),
                if list.len() == 1 { "y" } else { "ies" },
                esc(&c.san_text())
            ),
            Some(_) => "<div class=\"note\">SAN extension empty</div>".to_owned(),
            None => "<div class=\"note\">no SAN extension</div>".to_owned(),
        };
        let off_path = if on_path.contains(&e.position) {
            ""
        } else {
            " <span class=\"note\">(not on any path: sent but unused)</span>"
        };
        let _ = writeln!(
            out,
            "<tr><td>{pos}</td><td><b>{subject}</b>{off_path}<br><span class=\"meta\">issuer</span> {issuer}<br>\
             <span class=\"meta\">SHA-256</span> <code>{fp}</code><br><span class=\"meta\">serial</span> <code>{serial}</code>{san}</td>\
             <td>{from}<br>{to}<br><span class=\"meta\">{rel}</span></td><td>{key}<br>{sig}</td></tr>",
            pos = e.position,
            subject = esc(&c.subject),
            issuer = esc(&c.issuer),
            fp = esc(&c.sha256),
            serial = esc(&c.serial),
            from = rfc3339(c.not_before),
            to = rfc3339(c.not_after),
            rel = validity_words(c.not_before, c.not_after, now),
            key = esc(&c.key.describe()),
            sig = esc(&c.signature_algorithm),
        );
    }
    out.push_str("</table>\n");
}

fn verdict_table(out: &mut String, verdicts: &BTreeMap<Profile, Verdict>, anchor: &str) {
    out.push_str(
        "<table class=\"verdicts\"><tr><th>profile</th><th>verdict</th><th>because of</th></tr>\n",
    );
    for p in Profile::ALL {
        let Some(v) = verdicts.get(&p) else { continue };
        if !v.applicable {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"na\">n/a</td><td class=\"note\">this client does not use this service</td></tr>",
                p.as_str()
            );
            continue;
        }
        let why = if let Some(why) = &v.not_judged {
            format!("not judged: {}", esc(why))
        } else if v.reasons.is_empty() {
            "no rule made it worse than ok".to_owned()
        } else {
            v.reasons
                .iter()
                .map(|r| {
                    format!(
                        "<a href=\"#{anchor}-{id}\"><code>{id}</code></a> ({e})",
                        id = r.rule,
                        e = r.effect.as_str()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"{c}\"><span class=\"badge {c}\">{o}</span></td><td>{why}</td></tr>",
            p.as_str(),
            c = outcome_class(v.outcome),
            o = v.outcome.as_str()
        );
    }
    out.push_str("</table>\n");
}

fn findings(out: &mut String, list: &[Finding], anchor: &str) {
    if list.is_empty() {
        out.push_str("<p class=\"note\">No findings.</p>\n");
        return;
    }
    let _ = writeln!(out, "<h3>Findings ({})</h3>", list.len());
    let mut sorted: Vec<&Finding> = list.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity()));
    let mut seen_ids: Vec<&str> = Vec::new();
    for f in sorted {
        let sev = f.severity();
        // The first finding of a rule carries the anchor the verdicts link to.
        let id_attr = if seen_ids.contains(&f.rule.id) {
            String::new()
        } else {
            seen_ids.push(f.rule.id);
            format!(" id=\"{anchor}-{}\"", f.rule.id)
        };
        let scope = if f.profiles == ProfileSet::ALL {
            String::new()
        } else {
            format!(
                " <span class=\"meta\">(for {})</span>",
                profile_list(f.profiles)
            )
        };
        let _ = write!(
            out,
            "<div class=\"finding {c}\"{id_attr}><span class=\"badge {c}\">{sev}</span> <span class=\"rule\">{id}</span>{scope}<div>{msg}</div>",
            c = effect_class(sev),
            sev = effect_class(sev),
            id = f.rule.id,
            msg = esc(&f.message),
        );
        if let Some(c) = &f.certificate {
            let which = match (c.position, c.source) {
                (Some(p), _) => format!("#{p}"),
                (None, CertSource::PublicStore) => "public store".to_owned(),
                (None, _) => "enterprise store".to_owned(),
            };
            let _ = write!(
                out,
                "<div class=\"meta\">certificate {which}: {}</div>",
                esc(&c.subject)
            );
        }
        let e = &f.evidence;
        if !e.field.is_empty() {
            let _ = write!(
                out,
                "<table class=\"evidence\"><tr><th>field</th><th>expected</th><th>presented</th></tr>\
                 <tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr></table>",
                esc(&e.field),
                esc(e.expected.as_deref().unwrap_or("-")),
                esc(e.presented.as_deref().unwrap_or("-"))
            );
        }
        let _ = writeln!(
            out,
            "<div class=\"fix\"><b>Fix:</b> {}</div></div>",
            esc(&f.fix)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{202e}b\nc"), "a\\u{202e}b\\u{a}c");
        assert_eq!(esc_cut("abcdef", 4), "abc…");
    }
}
