//! Regression suites: TOML files of cases (one input each: a domain to
//! discover and probe, one endpoint to probe, a capture to replay, or chain
//! files to inspect) and what must hold for the handshakes they produce.
//! Parsed from text here, without touching the files they name: every fault
//! (bad TOML, an unknown key, rule, profile or outcome, two inputs or none) is
//! an error naming the suite file and the line.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::hostport::parse_nameserver;
use crate::core::timestamp::parse_time;
use serde::Deserialize;
use time::OffsetDateTime;
use toml::Spanned;

use crate::core::analysis::catalog;
use crate::core::analysis::profile::{Outcome, Profile};
use crate::core::observation::Service;

/// A suite that cannot be used, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct SuiteError {
    /// The suite file.
    pub file: String,
    /// The line, when the fault has one.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    at: Option<Spanned<String>>,
    public_roots: Option<String>,
    trust: Option<Vec<String>>,
    nameserver: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<f64>>,
    online: Option<Spanned<bool>>,
    #[serde(default, rename = "case")]
    cases: Vec<Spanned<RawCase>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    domain: Option<Spanned<String>>,
    probe: Option<Spanned<String>>,
    address: Option<Spanned<String>>,
    capture: Option<String>,
    keylog: Option<String>,
    edge_domain: Option<String>,
    service_map: Option<BTreeMap<String, Spanned<String>>>,
    chains: Option<Vec<String>>,
    host: Option<String>,
    service: Option<Spanned<String>>,
    #[serde(default)]
    expect: Vec<Spanned<RawExpect>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    endpoint: Option<String>,
    service: Option<Spanned<String>>,
    index: Option<usize>,
    jabber: Option<Spanned<String>>,
    #[serde(rename = "ip-phone")]
    ip_phone: Option<Spanned<String>>,
    #[serde(rename = "tc-endpoint")]
    tc_endpoint: Option<Spanned<String>>,
    #[serde(rename = "expressway-c")]
    expressway_c: Option<Spanned<String>>,
    #[serde(default)]
    rules: Vec<Spanned<String>>,
    #[serde(default)]
    absent: Vec<Spanned<String>>,
    leaf_sha256: Option<Spanned<String>>,
}

/// A parsed suite; paths are resolved against the suite file's folder.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The suite file, as given.
    pub file: String,
    /// Judge as of this time instead of the clock.
    pub at: Option<OffsetDateTime>,
    /// Public roots instead of the bundled ones.
    pub public_roots: Option<PathBuf>,
    /// Enterprise CAs.
    pub trust: Vec<PathBuf>,
    /// Nameserver for domain and probe cases (else the system's).
    pub nameserver: Option<SocketAddr>,
    /// Per-step timeout of live cases.
    pub timeout: Duration,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One case: an input and what must hold.
#[derive(Debug, Clone)]
pub struct Case {
    /// Its name (unique in the suite).
    pub name: String,
    /// The line of its `[[case]]`.
    pub line: usize,
    /// Where its handshakes come from.
    pub input: Input,
    /// What must hold.
    pub expects: Vec<Expect>,
}

/// Where a case's handshakes come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// Discover a domain and probe every target, as `probe DOMAIN`.
    Domain(String),
    /// Probe one endpoint, as `probe HOST:PORT`.
    Probe {
        /// HOST:PORT.
        target: String,
        /// Connect here instead of resolving the host.
        address: Option<IpAddr>,
        /// The XMPP or `_collab-edge` domain.
        domain: Option<String>,
        /// The service, else from the port.
        service: Option<Service>,
    },
    /// Replay a capture.
    Capture {
        /// The capture file.
        file: PathBuf,
        /// A TLS key log for its TLS 1.3 handshakes.
        keylog: Option<PathBuf>,
        /// The edge domain, for captures without DNS.
        edge_domain: Option<String>,
        /// Ports to services.
        service_map: Vec<(u16, Service)>,
    },
    /// Inspect chain files, one handshake each.
    Chains {
        /// The files.
        files: Vec<PathBuf>,
        /// The name the client uses.
        host: String,
        /// The service.
        service: Service,
        /// The edge domain.
        edge_domain: Option<String>,
    },
}

impl Input {
    /// True for inputs that go to the network.
    pub fn is_live(&self) -> bool {
        matches!(self, Input::Domain(_) | Input::Probe { .. })
    }

    /// Every file the input reads.
    pub fn files(&self) -> Vec<&Path> {
        match self {
            Input::Capture { file, keylog, .. } => std::iter::once(file.as_path())
                .chain(keylog.as_deref())
                .collect(),
            Input::Chains { files, .. } => files.iter().map(PathBuf::as_path).collect(),
            _ => Vec::new(),
        }
    }
}

/// One `[[case.expect]]`: selectors and what must hold for every handshake they select.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Its line in the suite.
    pub line: usize,
    /// `host:port` as reported.
    pub endpoint: Option<String>,
    /// The service.
    pub service: Option<Service>,
    /// Position among the case's handshakes (0-based).
    pub index: Option<usize>,
    /// Outcomes per profile; None expects the profile not to apply ("n/a").
    pub outcomes: Vec<(Profile, Option<Outcome>)>,
    /// Rules that must fire.
    pub rules: Vec<&'static str>,
    /// Rules that must not fire.
    pub absent: Vec<&'static str>,
    /// The leaf certificate's SHA-256, lowercase hex.
    pub leaf_sha256: Option<String>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, SuiteError> {
        Err(SuiteError {
            file: self.file.to_owned(),
            line: Some(self.line(offset)),
            message: message.into(),
        })
    }
}

/// Parse `text`, the suite `file`, resolving paths against `base` (its folder).
pub fn parse(file: &str, text: &str, base: &Path) -> Result<Suite, SuiteError> {
    let cx = Ctx { file, text };
    let raw: RawSuite = toml::from_str(text).map_err(|e| SuiteError {
        file: file.to_owned(),
        line: e.span().map(|s| cx.line(s.start)),
        message: e.message().trim().to_owned(),
    })?;
    let path = |p: &str| base.join(p);
    let at = match &raw.at {
        None => None,
        Some(s) => Some(
            parse_time(s.get_ref()).or_else(|why| cx.err(s.span().start, format!("at = {why}")))?,
        ),
    };
    let nameserver = match &raw.nameserver {
        None => None,
        Some(s) => Some(
            parse_nameserver(s.get_ref())
                .or_else(|why| cx.err(s.span().start, format!("nameserver = {why}")))?,
        ),
    };
    if let Some(o) = &raw.online
        && *o.get_ref()
    {
        return cx.err(
            o.span().start,
            "online = true: online revocation checks are not in this edgetap yet; remove the key or set it to false",
        );
    }
    let timeout = match &raw.timeout_secs {
        None => Duration::from_secs(5),
        Some(t) => match crate::core::limits::TIMEOUT_SECS.check(*t.get_ref()) {
            Ok(v) => Duration::from_secs_f64(v),
            Err(why) => return cx.err(t.span().start, format!("timeout_secs = {why}")),
        },
    };
    let mut cases: Vec<Case> = Vec::new();
    for c in raw.cases {
        let start = c.span().start;
        let line = cx.line(start);
        let c = c.into_inner();
        if cases.iter().any(|o| o.name == c.name) {
            return cx.err(
                start,
                format!("a second case named {:?}: names must be unique", c.name),
            );
        }
        let service = match &c.service {
            None => None,
            Some(s) => Some(parse_service(s.get_ref()).or_else(|why| cx.err(s.span().start, why))?),
        };
        let mut inputs = Vec::new();
        if let Some(p) = &c.probe {
            let address = match &c.address {
                None => None,
                Some(a) => Some(a.get_ref().parse::<IpAddr>().or_else(|_| {
                    cx.err(
                        a.span().start,
                        format!("address {:?} is not an IP address", a.get_ref()),
                    )
                })?),
            };
            inputs.push(Input::Probe {
                target: p.get_ref().clone(),
                address,
                domain: c.domain.as_ref().map(|d| d.get_ref().clone()),
                service,
            });
        } else {
            if let Some(a) = &c.address {
                return cx.err(
                    a.span().start,
                    "address is for probe cases (probe = \"HOST:PORT\")",
                );
            }
            if let Some(d) = &c.domain {
                inputs.push(Input::Domain(d.get_ref().clone()));
            }
        }
        if let Some(f) = &c.capture {
            let mut service_map = Vec::new();
            for (port, s) in c.service_map.iter().flatten() {
                let port: u16 = port.parse().or_else(|_| {
                    cx.err(
                        s.span().start,
                        format!("service_map key {port:?} is not a port number"),
                    )
                })?;
                let service =
                    parse_service(s.get_ref()).or_else(|why| cx.err(s.span().start, why))?;
                service_map.push((port, service));
            }
            inputs.push(Input::Capture {
                file: path(f),
                keylog: c.keylog.as_deref().map(path),
                edge_domain: c.edge_domain.clone(),
                service_map,
            });
        }
        if let Some(files) = &c.chains {
            let Some(host) = &c.host else {
                return cx.err(
                    start,
                    format!(
                        "case {:?}: chains need host = \"NAME\", the name the client uses",
                        c.name
                    ),
                );
            };
            if files.is_empty() {
                return cx.err(start, format!("case {:?}: chains is empty", c.name));
            }
            inputs.push(Input::Chains {
                files: files.iter().map(|f| path(f)).collect(),
                host: host.clone(),
                service: service.unwrap_or(Service::Http),
                edge_domain: c.edge_domain.clone(),
            });
        }
        let input = match inputs.len() {
            1 => inputs.remove(0),
            0 => return cx.err(start, format!("case {:?} has no input: give one of domain, probe, capture, chains", c.name)),
            _ => return cx.err(start, format!("case {:?} has more than one input: give exactly one of domain, probe, capture, chains", c.name)),
        };
        let mut expects = Vec::new();
        for e in c.expect {
            let eline = cx.line(e.span().start);
            let e = e.into_inner();
            let mut outcomes = Vec::new();
            for (profile, value) in [
                (Profile::Jabber, &e.jabber),
                (Profile::IpPhone, &e.ip_phone),
                (Profile::TcEndpoint, &e.tc_endpoint),
                (Profile::ExpresswayC, &e.expressway_c),
            ] {
                if let Some(v) = value {
                    let outcome = match v.get_ref().as_str() {
                        "n/a" => None,
                        o => Some(o.parse::<Outcome>().or_else(|_| {
                            cx.err(v.span().start, format!("{o:?} is not an outcome: use ok, warn, unknown, prompt, fail or n/a"))
                        })?),
                    };
                    outcomes.push((profile, outcome));
                }
            }
            let rule = |r: &Spanned<String>| -> Result<&'static str, SuiteError> {
                catalog::by_id(r.get_ref())
                    .map(|r| r.id)
                    .ok_or(())
                    .or_else(|()| {
                        cx.err(
                            r.span().start,
                            format!(
                                "{:?} is not a rule ID (edgetap rules lists them)",
                                r.get_ref()
                            ),
                        )
                    })
            };
            let service = match &e.service {
                None => None,
                Some(s) => {
                    Some(parse_service(s.get_ref()).or_else(|why| cx.err(s.span().start, why))?)
                }
            };
            let leaf_sha256 = match &e.leaf_sha256 {
                None => None,
                Some(s) => {
                    let v = s.get_ref().to_ascii_lowercase().replace(':', "");
                    if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return cx.err(
                            s.span().start,
                            "leaf_sha256 must be 64 hex digits (the certificate's SHA-256)",
                        );
                    }
                    Some(v)
                }
            };
            expects.push(Expect {
                line: eline,
                endpoint: e.endpoint,
                service,
                index: e.index,
                outcomes,
                rules: e.rules.iter().map(rule).collect::<Result<_, _>>()?,
                absent: e.absent.iter().map(rule).collect::<Result<_, _>>()?,
                leaf_sha256,
            });
        }
        cases.push(Case {
            name: c.name,
            line,
            input,
            expects,
        });
    }
    Ok(Suite {
        file: file.to_owned(),
        at,
        public_roots: raw.public_roots.as_deref().map(path),
        trust: raw.trust.iter().flatten().map(|p| path(p)).collect(),
        nameserver,
        timeout,
        cases,
    })
}

fn parse_service(s: &str) -> Result<Service, String> {
    s.parse::<Service>()
        .map_err(|_| format!("{s:?} is not a service: use http, xmpp or sip"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Suite {
        parse("s.toml", text, Path::new("/suites")).unwrap()
    }

    fn error(text: &str) -> String {
        parse("s.toml", text, Path::new("/suites"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_input_kind_and_expectation() {
        let s = parse_ok(
            r#"
at = "2026-06-01T00:00:00Z"
trust = ["corp-root.pem"]
nameserver = "127.0.0.1:5353"

[[case]]
name = "edge"
domain = "example.com"

[[case.expect]]
endpoint = "expe1.example.com:8443"
jabber = "ok"
ip-phone = "fail"
tc-endpoint = "n/a"
rules = ["chain.missing-intermediate"]
absent = ["identity.mismatch"]

[[case]]
name = "one node"
probe = "expe1.example.com:8443"
address = "192.0.2.1"
domain = "example.com"

[[case]]
name = "incident"
capture = "incident.pcapng"
keylog = "keys.log"
service_map = { 15222 = "xmpp" }

[[case]]
name = "files"
chains = ["expe.pem"]
host = "expe.example.com"
service = "xmpp"
"#,
        );
        assert_eq!(s.cases.len(), 4);
        assert_eq!(s.trust, [PathBuf::from("/suites/corp-root.pem")]);
        assert_eq!(s.nameserver, Some("127.0.0.1:5353".parse().unwrap()));
        let e = &s.cases[0].expects[0];
        assert_eq!(e.line, 10);
        assert_eq!(
            e.outcomes,
            [
                (Profile::Jabber, Some(Outcome::Ok)),
                (Profile::IpPhone, Some(Outcome::Fail)),
                (Profile::TcEndpoint, None)
            ]
        );
        assert_eq!(e.rules, ["chain.missing-intermediate"]);
        assert!(
            matches!(&s.cases[1].input, Input::Probe { address: Some(_), domain: Some(d), .. } if d == "example.com")
        );
        assert!(
            matches!(&s.cases[2].input, Input::Capture { keylog: Some(k), service_map, .. } if k == Path::new("/suites/keys.log") && service_map == &[(15222, Service::Xmpp)])
        );
        assert!(matches!(
            &s.cases[3].input,
            Input::Chains {
                service: Service::Xmpp,
                ..
            }
        ));
    }

    #[test]
    fn every_fault_names_the_file_and_line() {
        let case = "[[case]]\nname = \"c\"\nchains = [\"a.pem\"]\nhost = \"h\"\n";
        assert!(error("at = [").starts_with("s.toml:1: "));
        assert_eq!(
            error(&format!("{case}colour = \"red\"\n")),
            "s.toml:5: unknown field `colour`, expected one of `name`, `domain`, `probe`, `address`, `capture`, `keylog`, `edge_domain`, `service_map`, `chains`, `host`, `service`, `expect`"
        );
        let bad_rule = error(&format!(
            "{case}[[case.expect]]\nrules = [\"chain.nope\"]\n"
        ));
        assert_eq!(
            bad_rule,
            "s.toml:6: \"chain.nope\" is not a rule ID (edgetap rules lists them)"
        );
        let bad_outcome = error(&format!("{case}[[case.expect]]\njabber = \"fine\"\n"));
        assert!(
            bad_outcome.starts_with("s.toml:6: \"fine\" is not an outcome"),
            "{bad_outcome}"
        );
        let bad_profile = error(&format!("{case}[[case.expect]]\nandroid = \"ok\"\n"));
        assert!(
            bad_profile.starts_with("s.toml:6: unknown field `android`"),
            "{bad_profile}"
        );
        let two = error("[[case]]\nname = \"x\"\ndomain = \"a\"\ncapture = \"b\"\n");
        assert!(
            two.starts_with("s.toml:1: case \"x\" has more than one input"),
            "{two}"
        );
        let none = error("\n[[case]]\nname = \"x\"\n");
        assert!(
            none.starts_with("s.toml:2: case \"x\" has no input"),
            "{none}"
        );
        assert!(error("online = true\n").contains("not in this edgetap yet"));
        assert!(error(&format!("{case}\n{case}")).contains("a second case named \"c\""));
    }
}
