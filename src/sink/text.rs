//! The terminal report: per handshake, the chain as sent, the path, a verdict line
//! per profile, then every finding with its evidence and fix. Colour is added with
//! ANSI styles; `anstream` strips them when stdout is not a terminal.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use time::OffsetDateTime;

use crate::core::analysis::engine::{DnsReport, HandshakeReport, PathView};
use crate::core::analysis::finding::CertSource;
use crate::core::analysis::{Effect, Outcome, Profile, Report};
use crate::sink::printable as pr;
use crate::sink::{count, rfc3339};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

fn outcome_style(o: Outcome) -> Style {
    match o {
        Outcome::Ok => AnsiColor::Green.on_default().bold(),
        Outcome::Warn => AnsiColor::Yellow.on_default().bold(),
        Outcome::Unknown => AnsiColor::Cyan.on_default().bold(),
        Outcome::Prompt => AnsiColor::Magenta.on_default().bold(),
        Outcome::Fail => AnsiColor::Red.on_default().bold(),
    }
}

/// Render `report` as styled text (strip styles for non-terminals with anstream).
pub fn render(report: &Report, now: OffsetDateTime) -> String {
    let mut out = String::new();
    let n = report.handshakes.len();
    let handshakes = match n {
        0 => String::new(),
        n => format!("{}, ", count(n as u64, "handshake")),
    };
    let _ = writeln!(
        out,
        "{BOLD}edgetap{BOLD:#} {handshakes}analysed at {}",
        rfc3339(now)
    );
    if let Some(why) = &report.not_examined {
        let style = outcome_style(Outcome::Unknown);
        let _ = writeln!(
            out,
            "{style}UNKNOWN{style:#} for the whole run: {}; nothing below says the rest is ok",
            pr(why)
        );
    }
    if let Some(dns) = &report.dns {
        out.push('\n');
        dns_section(&mut out, dns);
    }
    for (i, h) in report.handshakes.iter().enumerate() {
        out.push('\n');
        handshake(&mut out, i + 1, h, now);
    }
    if report.handshakes.len() > 1 {
        out.push('\n');
        summary(&mut out, report);
    }
    if let Some(files) = &report.capture {
        out.push('\n');
        capture_section(&mut out, files);
    }
    out
}

fn capture_section(out: &mut String, files: &[crate::core::capture::CaptureFileReport]) {
    let _ = writeln!(out, "{BOLD}captures{BOLD:#}");
    for f in files {
        if let Some(e) = &f.error {
            let style = outcome_style(Outcome::Fail);
            // The error names the file itself.
            let _ = writeln!(out, "  {style}unreadable:{style:#} {}", pr(e));
            continue;
        }
        let _ = writeln!(
            out,
            "  {} ({}): {}, {}, {}, {}",
            pr(&f.file),
            f.format,
            count(f.stats.frames, "frame"),
            count(f.stats.connections, "TCP connection"),
            count(f.tls_handshakes as u64, "TLS handshake"),
            count(f.chains as u64, "server chain")
        );
        if !f.stats.unsupported_link_types.is_empty() {
            let style = outcome_style(Outcome::Warn);
            let types: Vec<String> = f
                .stats
                .unsupported_link_types
                .iter()
                .map(u32::to_string)
                .collect();
            let _ = writeln!(
                out,
                "    {style}not decoded:{style:#} frames of link type {} were skipped (edgetap reads Ethernet, VLAN, PPP/PPPoE, Linux cooked SLL/SLL2, loopback and raw IP); capture on an Ethernet interface or with `tcpdump -i any`",
                types.join(", ")
            );
        }
        if f.intercept_legs > 0 {
            let _ = writeln!(
                out,
                "    {} handshake(s) left out: the client leg of edgetap's intercept mode, whose chain edgetap forged (the server's own chain is on the upstream leg)",
                f.intercept_legs
            );
        }
        if !f.dns_domains.is_empty() {
            let _ = writeln!(
                out,
                "    DNS: {} responses; SRV answers for {} give the handshakes to their targets their context",
                f.dns_responses,
                pr(&f.dns_domains.join(", "))
            );
        }
        if f.tls13_handshakes > 0 {
            let _ = writeln!(
                out,
                "    TLS 1.3 handshakes: {} of {} decrypted{}",
                f.decrypted,
                f.tls13_handshakes,
                if f.decrypted < f.tls13_handshakes {
                    " (the others' certificates are encrypted; give their keys with --keylog)"
                } else {
                    ""
                }
            );
        }
        if let Some(t) = &f.truncated {
            let style = outcome_style(Outcome::Warn);
            let _ = writeln!(out, "    {style}truncated:{style:#} {}", pr(t));
        }
        for d in &f.damaged {
            let _ = writeln!(out, "    {DIM}damaged:{DIM:#} {}", pr(d));
        }
    }
}

fn dns_section(out: &mut String, dns: &DnsReport) {
    let d = &dns.discovery;
    let _ = writeln!(
        out,
        "{BOLD}DNS for {}{BOLD:#}  {DIM}resolver {}{DIM:#}",
        pr(&d.domain),
        pr(&d.resolver)
    );
    for l in &d.lookups {
        let _ = writeln!(out, "  {:<36} {}", pr(&l.name), pr(&l.describe()));
        for t in l.targets() {
            let addrs = t.addresses_text();
            let addrs = pr(&addrs);
            let _ = writeln!(
                out,
                "    {DIM}prio {} weight {}{DIM:#} {}:{} {DIM}->{DIM:#} {addrs}",
                t.record.priority,
                t.record.weight,
                pr(&t.record.target),
                t.record.port
            );
        }
    }
    verdict_lines(out, &dns.verdicts, None);
    findings(out, &dns.findings);
}

/// Endpoint x profile, one line per handshake.
fn summary(out: &mut String, report: &Report) {
    let _ = writeln!(out, "{BOLD}summary{BOLD:#}");
    let _ = writeln!(
        out,
        "  {:<44} {:<7} {:<8} {:<9} {:<12} {:<12}",
        "endpoint", "service", "jabber", "ip-phone", "tc-endpoint", "expressway-c"
    );
    for h in &report.handshakes {
        let o = &h.observation;
        let place = match (&o.endpoint.host, o.endpoint.port) {
            (Some(host), Some(port)) => format!("{}:{port}", pr(host)),
            _ => pr(&o.origin.locator).into_owned(),
        };
        let mut line = format!("  {:<44} {:<7}", truncate(&place, 44), o.service.as_str());
        for (profile, width) in Profile::ALL.into_iter().zip([8, 9, 12, 12]) {
            let cell = match h.verdicts.get(&profile) {
                Some(v) if !v.applicable => format!("{DIM}{:<width$}{DIM:#}", "n/a"),
                Some(v) => {
                    let style = outcome_style(v.outcome);
                    format!("{style}{:<width$}{style:#}", v.outcome.as_str())
                }
                None => String::new(),
            };
            line.push(' ');
            line.push_str(&cell);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}~", s.chars().take(n - 1).collect::<String>())
    }
}

fn verdict_lines(
    out: &mut String,
    verdicts: &std::collections::BTreeMap<Profile, crate::core::analysis::Verdict>,
    service: Option<crate::core::observation::Service>,
) {
    let _ = writeln!(out, "  verdicts:");
    // Profiles not judged for the same reason: said once, naming them all.
    let unjudged: Vec<(Profile, &str)> = Profile::ALL
        .into_iter()
        .filter_map(|p| verdicts.get(&p).filter(|v| v.applicable).map(|v| (p, v)))
        .filter_map(|(p, v)| v.not_judged.as_deref().map(|why| (p, why)))
        .collect();
    let shared = unjudged.len() > 1 && unjudged.iter().all(|(_, why)| *why == unjudged[0].1);
    if shared {
        let names: Vec<&str> = unjudged.iter().map(|(p, _)| p.as_str()).collect();
        let style = outcome_style(Outcome::Unknown);
        let _ = writeln!(
            out,
            "    {}: {style}not judged:{style:#} {}",
            names.join(", "),
            pr(unjudged[0].1)
        );
    }
    for profile in Profile::ALL {
        let Some(v) = verdicts.get(&profile) else {
            continue;
        };
        if shared && v.applicable && v.not_judged.is_some() {
            continue;
        }
        if !v.applicable {
            let what = service.map_or_else(|| "this".to_owned(), |s| s.to_string());
            let _ = writeln!(
                out,
                "    {:<13} {DIM}n/a    does not use {what}{DIM:#}",
                profile.as_str()
            );
            continue;
        }
        let style = outcome_style(v.outcome);
        if let Some(why) = &v.not_judged {
            let _ = writeln!(
                out,
                "    {:<13} {style}not judged:{style:#} {}",
                profile.as_str(),
                pr(why)
            );
            continue;
        }
        let label = v.outcome.as_str().to_uppercase();
        let _ = writeln!(
            out,
            "    {:<13} {style}{label:<6}{style:#} {}",
            profile.as_str(),
            v.rules.join(", ")
        );
    }
}

fn handshake(out: &mut String, number: usize, h: &HandshakeReport, now: OffsetDateTime) {
    let o = &h.observation;
    let mut head = format!("{} ({})", pr(&o.reference_identity.to_string()), o.service);
    if let Some(edge) = &o.edge_domain {
        let _ = write!(head, ", edge domain {}", pr(edge));
    }
    let _ = writeln!(
        out,
        "{BOLD}[{number}] {head}{BOLD:#}  {DIM}{}{DIM:#}",
        pr(&o.origin.locator)
    );

    let _ = writeln!(out, "  chain as sent:");
    if h.chain.is_empty() {
        let _ = writeln!(out, "    (no certificate could be read)");
    }
    for entry in h.chain.iter() {
        let c = &entry.cert;
        let _ = writeln!(
            out,
            "    #{} {BOLD}{}{BOLD:#}",
            entry.position,
            pr(&c.subject)
        );
        let _ = writeln!(
            out,
            "       {DIM}issuer{DIM:#} {}  {DIM}|{DIM:#} {} {DIM}|{DIM:#} {}",
            pr(&c.issuer),
            c.key.describe(),
            c.signature_algorithm,
        );
        let _ = writeln!(
            out,
            "       {DIM}valid{DIM:#} {} .. {} {DIM}({}){DIM:#}",
            rfc3339(c.not_before),
            rfc3339(c.not_after),
            crate::sink::validity_words(c.not_before, c.not_after, now)
        );
        if c.san.is_some() {
            let _ = writeln!(out, "       {DIM}SAN{DIM:#} {}", pr(&c.san_text()));
        }
    }
    // One line when every store gives the same path; one per store otherwise.
    let same = h.paths.windows(2).all(|w| w[0].same_path(&w[1]));
    if same {
        if let Some(p) = h.paths.first() {
            path(out, p, false);
        }
    } else {
        for p in h.paths.iter() {
            path(out, p, true);
        }
    }

    if let Some(reason) = &o.tls.failure {
        let style = outcome_style(Outcome::Fail);
        let _ = writeln!(
            out,
            "  {style}handshake failed:{style:#} {}",
            pr(&reason.reason)
        );
    }
    if let Some(v) = &o.tls.version {
        let _ = writeln!(
            out,
            "  {DIM}tls{DIM:#} {v}{}{}",
            o.tls
                .cipher
                .as_ref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default(),
            o.tls
                .sni
                .as_deref()
                .map(|s| format!(" {DIM}sni{DIM:#} {}", pr(s)))
                .unwrap_or_default()
        );
    }
    verdict_lines(out, &h.verdicts, Some(o.service));
    findings(out, &h.findings);
}

fn findings(out: &mut String, list: &[crate::core::analysis::Finding]) {
    if list.is_empty() {
        let _ = writeln!(out, "  no findings");
        return;
    }
    let _ = writeln!(out, "  findings:");
    let mut sorted: Vec<_> = list.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity()));
    for f in sorted {
        let sev = f.severity();
        let style = match sev {
            Effect::Fail => outcome_style(Outcome::Fail),
            Effect::Prompt => outcome_style(Outcome::Prompt),
            Effect::Warn => outcome_style(Outcome::Warn),
            _ => DIM,
        };
        let sev_text = match sev {
            Effect::NotApplicable | Effect::Ok => "info",
            other => other.as_str(),
        };
        let scope = if f.profiles == crate::core::analysis::profile::ProfileSet::ALL {
            String::new()
        } else {
            format!(
                " {DIM}(for {}){DIM:#}",
                f.profiles
                    .iter()
                    .map(Profile::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = writeln!(
            out,
            "    {style}{sev_text:>6}{style:#} {BOLD}{}{BOLD:#}{scope}: {}",
            f.rule.id,
            pr(&f.message)
        );
        let e = &f.evidence;
        if !e.field.is_empty() {
            let _ = writeln!(
                out,
                "           {DIM}{}: expected{DIM:#} {} {DIM}| presented{DIM:#} {}",
                e.field,
                pr(e.expected.as_deref().unwrap_or("-")),
                pr(e.presented.as_deref().unwrap_or("-"))
            );
        }
        let _ = writeln!(out, "           {DIM}fix:{DIM:#} {}", pr(&f.fix));
    }
}

fn path(out: &mut String, p: &PathView, per_store: bool) {
    let steps: Vec<String> = p
        .certificates
        .iter()
        .map(|c| match (c.position, c.source) {
            (Some(pos), _) => format!("#{pos}"),
            (None, CertSource::PublicStore) => {
                format!("{} (public store)", pr(crate::sink::short(&c.subject)))
            }
            (None, _) => format!("{} (enterprise store)", pr(crate::sink::short(&c.subject))),
        })
        .collect();
    let end = match &p.end {
        _ if p.trusted => "trusted".to_owned(),
        crate::core::x509::PathEnd::Anchored { .. } => "anchored, but a signature fails".to_owned(),
        crate::core::x509::PathEnd::UntrustedRoot => "ends at an untrusted root".to_owned(),
        crate::core::x509::PathEnd::MissingIssuer { issuer } => {
            format!("issuer {} not found", pr(crate::sink::short(issuer)))
        }
    };
    let who = if per_store {
        format!(
            " {DIM}[{}]{DIM:#}",
            p.profiles
                .iter()
                .map(Profile::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    let style = if p.trusted {
        outcome_style(Outcome::Ok)
    } else {
        outcome_style(Outcome::Fail)
    };
    let _ = writeln!(
        out,
        "  path{who}: {} -> {style}{end}{style:#}",
        steps.join(" -> ")
    );
}

fn clock(now: time::OffsetDateTime) -> String {
    format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second())
}

/// The proxy's terminal line for a connection no upstream answered.
pub fn proxy_upstream_failed(
    id: usize,
    client: &str,
    reason: &str,
    now: time::OffsetDateTime,
) -> String {
    format!(
        "{} #{id} {} -> upstream failed: {}",
        clock(now),
        pr(client),
        pr(reason)
    )
}

/// The proxy's terminal line for a connection that carried bytes but no TLS
/// handshake (plain text on a TLS port).
pub fn proxy_no_handshake(
    id: usize,
    client: &str,
    upstream: &str,
    reason: &str,
    now: time::OffsetDateTime,
) -> String {
    format!(
        "{} #{id} {} -> {}: no TLS handshake seen ({})",
        clock(now),
        pr(client),
        pr(upstream),
        pr(reason)
    )
}

/// The proxy's terminal line for a judged handshake, stamped with the wall-clock `now`.
pub fn proxy_handshake(id: usize, h: &HandshakeReport, now: time::OffsetDateTime) -> String {
    let clock = clock(now);
    let o = &h.observation;
    let leaf = h
        .chain
        .first()
        .map(|c| c.cert.short_name())
        .unwrap_or_else(|| "no certificate".into());
    let issuer = h
        .chain
        .first()
        .map(|c| c.cert.issuer.clone())
        .unwrap_or_default();
    let verdicts: Vec<String> = crate::core::analysis::Profile::ALL
        .iter()
        .filter_map(|p| h.verdicts.get(p).map(|v| (p, v)))
        .map(|(p, v)| {
            if !v.applicable {
                format!("{p}=n/a")
            } else if v.rules.is_empty() {
                format!("{p}={}", v.outcome)
            } else {
                format!("{p}={}({})", v.outcome, v.rules.join(","))
            }
        })
        .collect();
    let failed = o
        .tls
        .failure
        .as_ref()
        .map(|f| format!(" failed: {}", pr(&f.reason)))
        .unwrap_or_default();
    format!(
        "{clock} #{id} {} sni={} {} leaf={} issuer={} {}{failed}",
        pr(&o.origin.locator),
        pr(o.tls.sni.as_deref().unwrap_or("-")),
        o.service,
        pr(&leaf),
        pr(&issuer),
        verdicts.join(" ")
    )
}
