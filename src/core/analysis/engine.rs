//! The one analysis engine: observations in, a report out.
//!
//! For each handshake it decodes the chain, runs handshake detectors once, builds
//! the path against each distinct trust store (phones and TelePresence endpoints
//! see only public roots; Jabber and Expressway-C also the enterprise store), runs
//! path detectors per store and merges what they find, runs peer detectors over
//! all handshakes, and finally turns findings into per-profile verdicts with the
//! catalogue's effect table. No I/O and no clock: `now` is an argument.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::OffsetDateTime;

use super::finding::Finding;
use super::profile::{Effect, Outcome, Profile, ProfileSet};
use super::rules::{Check, DETECTORS, DetectorConfig, Handshake, Scope};
use crate::core::observation::Observation;
use crate::core::x509::{CertInfo, PathEnd, PathNode, TrustStore, path};

/// The engine: trust stores and settings, reusable across runs.
#[derive(Debug, Clone)]
pub struct Engine {
    public: TrustStore,
    enterprise: TrustStore,
    config: DetectorConfig,
    cache: Arc<Mutex<JudgementCache>>,
}

/// Distinct judgements kept at most; the cache starts over beyond this.
pub const CACHE_ENTRIES: usize = 4096;

/// What judging one handshake on its own gives: its decoded chain, the
/// handshake and path findings, the paths. The same (chain, observation
/// context, minute) gives the same judgement, so a chain seen 2,000 times in
/// a capture, or on every connection through the proxy, is judged once.
#[derive(Debug, Clone)]
struct Judgement {
    chain: Arc<Vec<CertInfo>>,
    positions: Vec<usize>,
    malformed: Vec<(usize, String)>,
    findings: Vec<Finding>,
    paths: Arc<Vec<PathView>>,
    entries: Arc<Vec<ChainEntry>>,
}

/// Judgements by key, bounded, with counters.
#[derive(Debug, Default)]
pub struct JudgementCache {
    entries: HashMap<String, Arc<Judgement>>,
    /// Handshakes judged from the cache.
    pub hits: u64,
    /// Handshakes judged afresh.
    pub misses: u64,
}

/// What a handshake's judgement depends on: everything observed but where and
/// when it was seen (origin locator and time, capture position), the chain's
/// bytes, and the analysis time to the minute (a hit may reuse a judgement
/// made up to a minute earlier; expiry is judged in days).
fn judgement_key(obs: &Observation, now: OffsetDateTime) -> Option<String> {
    use std::hash::{Hash as _, Hasher as _};
    // Every field named, so a field added to Observation cannot be left out
    // of the key by accident (it will not compile until it is placed).
    let Observation {
        endpoint,
        service,
        reference_identity,
        edge_domain,
        presented,
        tls,
        srv,
        xmpp,
        capture: _,
        origin,
        revocation,
        fetched_issuers,
    } = obs;
    #[derive(Serialize)]
    struct Key<'a> {
        endpoint: &'a crate::core::observation::Endpoint,
        service: &'a crate::core::observation::Service,
        reference_identity: &'a crate::core::observation::ReferenceIdentity,
        edge_domain: &'a Option<String>,
        tls: &'a crate::core::observation::TlsParams,
        srv: &'a Option<crate::core::observation::SrvContext>,
        xmpp: &'a Option<crate::core::observation::XmppStartTls>,
        kind: &'a crate::core::observation::SourceKind,
        revocation: &'a [crate::core::observation::RevocationCheck],
        fetched_issuers: &'a [crate::core::observation::FetchedIssuer],
    }
    let value = serde_json::to_string(&Key {
        endpoint,
        service,
        reference_identity,
        edge_domain,
        tls,
        srv,
        xmpp,
        kind: &origin.kind,
        revocation,
        fetched_issuers,
    })
    .ok()?;
    let mut der = std::collections::hash_map::DefaultHasher::new();
    presented.hash(&mut der);
    Some(format!(
        "{}|{:x}|{}|{}",
        value,
        der.finish(),
        presented.iter().map(Vec::len).sum::<usize>(),
        now.unix_timestamp().div_euclid(60)
    ))
}

/// One profile's verdict on one handshake.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// False when this client does not use the handshake's service (phones and
    /// XMPP); the outcome is then `ok` and no rule counts.
    pub applicable: bool,
    /// The worst effect of any finding.
    pub outcome: Outcome,
    /// IDs of the rules that made the outcome worse than ok, worst first.
    pub rules: Vec<&'static str>,
    /// Why the outcome is `unknown`: what edgetap did not see.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_judged: Option<String>,
    /// Each contributing rule with its effect on this profile.
    pub reasons: Vec<Reason>,
}

/// A rule's contribution to a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// Rule ID.
    pub rule: &'static str,
    /// Its effect on this profile.
    pub effect: Effect,
}

/// The path built against one trust store, for display.
#[derive(Debug, Clone, Serialize)]
pub struct PathView {
    /// Profiles whose store this is.
    pub profiles: ProfileSet,
    /// True when the path ends at a trusted anchor with good signatures.
    pub trusted: bool,
    /// How the path ends.
    pub end: PathEnd,
    /// Subjects along the path, leaf first, with where each came from.
    pub certificates: Vec<PathCert>,
}

impl PathView {
    /// The same path as `other` (one store's path drawn for both): the same
    /// trust, end, and certificates in the same places.
    pub fn same_path(&self, other: &PathView) -> bool {
        self.trusted == other.trusted
            && self.end == other.end
            && self.certificates.len() == other.certificates.len()
            && self
                .certificates
                .iter()
                .zip(&other.certificates)
                .all(|(a, b)| a.subject == b.subject && a.position == b.position)
    }
}

/// One certificate along a displayed path.
#[derive(Debug, Clone, Serialize)]
pub struct PathCert {
    /// Subject.
    pub subject: String,
    /// Position as sent, for presented certificates.
    pub position: Option<usize>,
    /// "presented", "public-store" or "enterprise-store".
    pub source: super::finding::CertSource,
    /// SHA-256 of the DER, when the certificate is known (a public anchor
    /// may be a bare name and key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// notBefore, when the certificate is known.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// notAfter, when the certificate is known.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub not_after: Option<OffsetDateTime>,
    /// The check of this certificate's signature by the next one on the path
    /// (absent for the last node unless it signs itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::core::x509::SigCheck>,
}

/// A presented certificate, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct ChainEntry {
    /// Position as sent (0 = leaf).
    pub position: usize,
    /// The summary.
    #[serde(flatten)]
    pub cert: CertInfo,
}

/// Everything edgetap concludes about one handshake.
#[derive(Debug, Clone, Serialize)]
pub struct HandshakeReport {
    /// The handshake as observed, without the presented chain's bytes
    /// (`presented` is empty: the chain, decoded, is in `chain`).
    #[serde(flatten)]
    pub observation: Observation,
    /// Presented certificates that decoded, in the order sent (shared by every
    /// report of the same judgement).
    pub chain: Arc<Vec<ChainEntry>>,
    /// The paths built, one per distinct trust store (shared as the chain is).
    pub paths: Arc<Vec<PathView>>,
    /// Every rule that fired.
    pub findings: Vec<Finding>,
    /// Per-profile verdicts.
    pub verdicts: BTreeMap<Profile, Verdict>,
}

/// The engine's answer for a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Discovery, when the run started from a domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsReport>,
    /// What replay read, when the run read captures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<Vec<crate::core::capture::CaptureFileReport>>,
    /// One entry per observation, in input order.
    pub handshakes: Vec<HandshakeReport>,
    /// Why the run examined less than it set out to (a capture without a
    /// handshake, a probe interrupted or with nothing to probe): the run's
    /// outcome is then unknown, never ok. Set by the command that ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_examined: Option<String>,
}

/// What DNS discovery found and what it means per profile.
#[derive(Debug, Clone, Serialize)]
pub struct DnsReport {
    /// The lookups.
    #[serde(flatten)]
    pub discovery: crate::core::discovery::Discovery,
    /// `dns.*` findings from the answers.
    pub findings: Vec<Finding>,
    /// Per-profile verdicts on discovery alone.
    pub verdicts: BTreeMap<Profile, Verdict>,
}

impl DnsReport {
    /// Judge a discovery; `outside` when the resolver stands for a client outside.
    pub fn judge(discovery: crate::core::discovery::Discovery, outside: bool) -> DnsReport {
        let findings = super::rules::dns::discovery_findings(&discovery, outside);
        // The edge record unanswered: discovery is not judged (unknown), unless
        // the other answers prove a prompt or failure on their own.
        let unanswered = discovery
            .lookup(crate::core::discovery::SrvKind::CollabEdge)
            .filter(|l| l.unanswered())
            .map(|l| format!("no answer for {}: {}", l.name, l.describe()));
        let verdicts = Profile::ALL
            .into_iter()
            .map(|p| {
                (
                    p,
                    verdict(
                        p,
                        crate::core::observation::Service::Http,
                        &findings,
                        // Only for profiles that discover the edge this way.
                        unanswered.as_deref().filter(|_| {
                            super::catalog::DNS_COLLAB_EDGE_MISSING.effect(p)
                                != super::profile::Effect::NotApplicable
                        }),
                    ),
                )
            })
            .collect();
        DnsReport {
            discovery,
            findings,
            verdicts,
        }
    }
}

impl Report {
    /// The worst outcome over discovery, all handshakes and all profiles;
    /// at least unknown when the run examined less than it set out to.
    pub fn worst(&self) -> Outcome {
        let short = self.not_examined.as_ref().map(|_| Outcome::Unknown);
        self.handshakes
            .iter()
            .flat_map(|h| h.verdicts.values().map(|v| v.outcome))
            .chain(
                self.dns
                    .iter()
                    .flat_map(|d| d.verdicts.values().map(|v| v.outcome)),
            )
            .chain(short)
            .max()
            .unwrap_or(Outcome::Ok)
    }

    /// Say the run examined less than it set out to (the first reason given
    /// stays).
    pub fn fell_short(&mut self, why: impl Into<String>) {
        self.not_examined.get_or_insert_with(|| why.into());
    }
}

impl Engine {
    /// An engine trusting `public` for every profile and `enterprise` for the
    /// profiles that can hold enterprise CAs.
    pub fn new(public: TrustStore, enterprise: TrustStore, config: DetectorConfig) -> Engine {
        Engine {
            public,
            enterprise,
            config,
            cache: Arc::default(),
        }
    }

    /// (hits, misses) of the judgement cache so far.
    pub fn cache_counts(&self) -> (u64, u64) {
        self.cache.lock().map_or((0, 0), |c| (c.hits, c.misses))
    }

    /// One handshake judged on its own (handshake and path detectors), from
    /// the cache when the same judgement was made before.
    fn judge(
        &self,
        obs: &Observation,
        now: OffsetDateTime,
        scopes: &[(ProfileSet, TrustStore)],
        known: &TrustStore,
    ) -> Arc<Judgement> {
        let key = judgement_key(obs, now);
        if let Some(key) = &key
            && let Ok(mut cache) = self.cache.lock()
            && let Some(hit) = cache.entries.get(key).cloned()
        {
            cache.hits += 1;
            return hit;
        }
        let hs = Handshake::new(obs, now, &self.config);
        let mut out = Vec::new();
        for detector in DETECTORS {
            if let Check::Handshake(check) = detector.check {
                check(&hs, &mut out);
            }
        }
        let mut views = Vec::new();
        if !hs.chain.is_empty() && hs.leaf().is_some() {
            let mut per_scope: Vec<Finding> = Vec::new();
            for (profiles, store) in scopes {
                let chain_path = path::build(&hs.chain, store, now);
                let scope = Scope {
                    hs: &hs,
                    store,
                    known,
                    path: &chain_path,
                };
                let mut scoped = Vec::new();
                for detector in DETECTORS {
                    if let Check::Path(check) = detector.check {
                        check(&scope, &mut scoped);
                    }
                }
                for mut f in scoped {
                    f.profiles = *profiles;
                    merge(&mut per_scope, f);
                }
                views.push(path_view(&scope, *profiles));
            }
            out.extend(per_scope);
        }
        let entries = Arc::new(
            hs.chain
                .iter()
                .zip(&hs.positions)
                .map(|(cert, position)| ChainEntry {
                    position: *position,
                    cert: cert.clone(),
                })
                .collect(),
        );
        let judged = Arc::new(Judgement {
            chain: hs.chain,
            positions: hs.positions,
            malformed: hs.malformed,
            findings: out,
            paths: Arc::new(views),
            entries,
        });
        if let Some(key) = key
            && let Ok(mut cache) = self.cache.lock()
        {
            cache.misses += 1;
            if cache.entries.len() >= CACHE_ENTRIES {
                cache.entries.clear();
            }
            cache.entries.insert(key, judged.clone());
        }
        judged
    }

    /// Analyse observations together (cross-handshake rules see all of them) at `now`.
    pub fn evaluate(&self, observations: &[Observation], now: OffsetDateTime) -> Report {
        let scopes = self.scopes();
        let known = self.public.union(&self.enterprise);
        // Each handshake judged on its own, on every core (a capture holds
        // thousands); most are judged from the cache.
        let judged = crate::core::parallel::map_in_parallel(observations.iter().collect(), |obs| {
            self.judge(obs, now, &scopes, &known)
        });
        let mut handshakes: Vec<Handshake<'_>> = Vec::with_capacity(observations.len());
        let mut findings: Vec<Vec<Finding>> = Vec::with_capacity(observations.len());
        let mut paths: Vec<Arc<Vec<PathView>>> = Vec::with_capacity(observations.len());
        let mut entries: Vec<Arc<Vec<ChainEntry>>> = Vec::with_capacity(observations.len());
        for (obs, j) in observations.iter().zip(judged) {
            entries.push(j.entries.clone());
            handshakes.push(Handshake {
                obs,
                chain: j.chain.clone(),
                positions: j.positions.clone(),
                malformed: j.malformed.clone(),
                now,
                config: &self.config,
            });
            findings.push(j.findings.clone());
            paths.push(j.paths.clone());
        }
        for detector in DETECTORS {
            if let Check::Peers(check) = detector.check {
                check(&handshakes, &mut findings);
            }
        }

        let parts: Vec<_> = handshakes
            .into_iter()
            .zip(findings)
            .zip(paths)
            .zip(entries)
            .collect();
        let handshakes = crate::core::parallel::map_in_parallel(
            parts,
            |(((hs, mut findings), paths), chain)| {
                // A finding says nothing to a client that does not speak the service.
                let users = ProfileSet::of(
                    &Profile::ALL
                        .into_iter()
                        .filter(|p| p.uses(hs.obs.service))
                        .collect::<Vec<_>>(),
                );
                findings.retain_mut(|f| {
                    f.profiles = f.profiles.intersect(users);
                    !f.profiles.is_empty()
                });
                let unseen = chain_unseen(hs.obs);
                let verdicts = Profile::ALL
                    .into_iter()
                    .map(|p| (p, verdict(p, hs.obs.service, &findings, unseen.as_deref())))
                    .collect();
                HandshakeReport {
                    observation: hs.obs.without_chain(),
                    chain,
                    paths,
                    findings,
                    verdicts,
                }
            },
        );
        Report {
            dns: None,
            capture: None,
            handshakes,
            not_examined: None,
        }
    }

    /// The distinct trust stores and who uses each. Without enterprise CAs every
    /// profile sees the same store, and the path is built once.
    fn scopes(&self) -> Vec<(ProfileSet, TrustStore)> {
        if self.enterprise.is_empty() {
            return vec![(ProfileSet::ALL, self.public.clone())];
        }
        let (with, without): (Vec<Profile>, Vec<Profile>) = Profile::ALL
            .into_iter()
            .partition(|p| p.trusts_enterprise_cas());
        vec![
            (ProfileSet::of(&without), self.public.clone()),
            (ProfileSet::of(&with), self.public.union(&self.enterprise)),
        ]
    }
}

/// Add `f`, or widen the profiles of the same finding already found under another store.
fn merge(findings: &mut Vec<Finding>, f: Finding) {
    let key = f.merge_key();
    match findings.iter_mut().find(|g| g.merge_key() == key) {
        Some(existing) => existing.profiles = existing.profiles.union(f.profiles),
        None => findings.push(f),
    }
}

fn verdict(
    profile: Profile,
    service: crate::core::observation::Service,
    findings: &[Finding],
    unseen: Option<&str>,
) -> Verdict {
    if !profile.uses(service) {
        return Verdict {
            applicable: false,
            outcome: Outcome::Ok,
            rules: Vec::new(),
            not_judged: None,
            reasons: Vec::new(),
        };
    }
    let mut reasons: Vec<Reason> = Vec::new();
    for f in findings.iter().filter(|f| f.profiles.contains(profile)) {
        let effect = f.rule.effect(profile);
        if effect >= Effect::Warn && !reasons.iter().any(|r| r.rule == f.rule.id) {
            reasons.push(Reason {
                rule: f.rule.id,
                effect,
            });
        }
    }
    reasons.sort_by_key(|r| std::cmp::Reverse(r.effect));
    let seen = reasons.first().map_or(Outcome::Ok, |r| r.effect.outcome());
    // Without the chain, only evidence of a prompt or failure stands (a refused
    // connection, a server's alert); anything milder would claim what was not seen.
    let (outcome, not_judged) = match unseen {
        Some(why) if seen < Outcome::Prompt => (Outcome::Unknown, Some(why.to_owned())),
        _ => (seen, None),
    };
    Verdict {
        applicable: true,
        outcome,
        rules: reasons.iter().map(|r| r.rule).collect(),
        not_judged,
        reasons,
    }
}

/// Why the chain the client saw is not known, if it is not: what a verdict on
/// this handshake could not look at.
pub fn chain_unseen(obs: &crate::core::observation::Observation) -> Option<String> {
    use crate::core::observation::Step;
    if !obs.presented.is_empty() {
        return None;
    }
    if let Some(f) = &obs.tls.failure {
        return Some(match f.step {
            Step::Capture => format!("the capture does not show the handshake: {}", f.reason),
            Step::ClientHello => format!("nothing of the server was judged: {}", f.reason),
            _ => format!(
                "the handshake ended before the server's certificate: {}",
                f.reason
            ),
        });
    }
    if obs.xmpp.is_some_and(|x| !x.offered) {
        return Some("the server offered no STARTTLS, so no TLS handshake took place".into());
    }
    if let Some(resumed) = &obs.tls.resumed {
        return Some(resumed.clone());
    }
    Some(if obs.tls.chain_hidden {
        match &obs.tls.decryption {
            Some(why) => format!("TLS 1.3 encrypts the certificate and it could not be read: {why}"),
            None => "TLS 1.3 encrypts the certificate; edgetap did not decrypt this handshake and had no side-probe chain".into(),
        }
    } else {
        "no Certificate message was seen (the handshake was cut off before it)".into()
    })
}

fn path_view(scope: &Scope<'_, '_>, profiles: ProfileSet) -> PathView {
    PathView {
        profiles,
        trusted: scope.path.is_trusted(),
        end: scope.path.end.clone(),
        certificates: scope
            .path
            .nodes
            .iter()
            .map(|n: &PathNode| {
                let r = scope.cert_ref(*n);
                let cert = scope.cert(*n);
                PathCert {
                    subject: r.subject,
                    position: r.position,
                    source: r.source,
                    sha256: r.sha256,
                    not_before: cert.map(|c| c.not_before),
                    not_after: cert.map(|c| c.not_after),
                    signature: scope
                        .path
                        .links
                        .iter()
                        .find(|l| l.child == *n)
                        .map(|l| l.signature.clone()),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rules::testkit::good_edge;
    use crate::core::observation::ReferenceIdentity;

    /// The same handshake seen again (another connection, another frame) is
    /// judged from the cache, with the same result; another name is judged afresh.
    #[test]
    fn the_same_judgement_is_made_once() {
        let (case, _, _) = good_edge();
        let engine = case.engine();
        let first = case.observation();
        let mut again = case.observation();
        again.origin.locator = "capture.pcapng frame 900 (stream 40)".into();
        let mut other = case.observation();
        other.reference_identity = ReferenceIdentity::parse("other.example.com");
        let report = engine.evaluate(&[first.clone(), again, other], case.now);
        assert_eq!(engine.cache_counts(), (1, 2));
        let json = |i: usize| serde_json::to_value(&report.handshakes[i].findings).unwrap();
        assert_eq!(json(0), json(1));
        assert_ne!(json(0), json(2), "a mismatched name has its own findings");
        // A later report at the same minute reuses it too.
        let later = engine.evaluate(&[first], case.now + time::Duration::seconds(1));
        assert_eq!(engine.cache_counts(), (2, 2));
        assert_eq!(
            serde_json::to_value(&later.handshakes[0].findings).unwrap(),
            json(0)
        );
    }
}
