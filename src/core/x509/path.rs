//! Building the certification path a client would build.
//!
//! Clients start at the first certificate sent (the leaf) and walk issuer names
//! through the other presented certificates and their trust store, whatever order
//! the server sent them in. [`build`] does the same and, when several issuers
//! carry the right name, keeps the path that ends best: trusted with good
//! signatures, then a self-signed root nobody trusts, then a missing issuer.
//! Hostile input (loops, hundreds of look-alike issuers) is bounded by a search
//! budget, so building always ends quickly.

use serde::Serialize;
use time::OffsetDateTime;

use super::cert::CertInfo;
use super::signature::{self, SigCheck};
use super::trust::TrustStore;

/// Longest path considered (leaf included).
const MAX_DEPTH: usize = 10;
/// Most issuer candidates tried in one build, against quadratic hostile chains.
const MAX_STEPS: usize = 256;

/// A certificate on the path: one the server sent, or a store's anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "from", content = "index", rename_all = "lowercase")]
pub enum PathNode {
    /// Index into the presented chain.
    Presented(usize),
    /// Index into the trust store's anchors.
    Anchor(usize),
}

/// One issuing step: `issuer` signed `child`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// The signed certificate (always a presented one or a store certificate).
    pub child: PathNode,
    /// Its issuer.
    pub issuer: PathNode,
    /// Whether the signature checks out.
    pub signature: SigCheck,
}

/// How the path ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PathEnd {
    /// The last node is a trust anchor of the store.
    Anchored {
        /// Index into the store's anchors.
        anchor: usize,
    },
    /// The last node is self-signed and no store holds it.
    UntrustedRoot,
    /// Nothing presented or trusted is named as the last node's issuer.
    MissingIssuer {
        /// The issuer name the last node asks for.
        issuer: String,
    },
}

/// The best path found from the leaf.
#[derive(Debug, Clone, Serialize)]
pub struct ChainPath {
    /// Leaf first.
    pub nodes: Vec<PathNode>,
    /// One per issuing step, leaf's first; a self-signed end adds its self-link.
    pub links: Vec<Link>,
    /// How it ends.
    pub end: PathEnd,
}

impl ChainPath {
    /// The certificate behind a node, when there is one (public anchors may be
    /// a bare name and key).
    pub fn cert<'a>(
        node: PathNode,
        presented: &'a [CertInfo],
        store: &'a TrustStore,
    ) -> Option<&'a CertInfo> {
        match node {
            PathNode::Presented(i) => presented.get(i),
            PathNode::Anchor(i) => store.anchors.get(i).and_then(|a| a.cert.as_ref()),
        }
    }

    /// True when the path ends at an anchor and every signature on it verifies.
    pub fn is_trusted(&self) -> bool {
        matches!(self.end, PathEnd::Anchored { .. })
            && self.links.iter().all(|l| l.signature != SigCheck::Invalid)
    }

    /// Presented indices on the path, in path order.
    pub fn presented_on_path(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes.iter().filter_map(|n| match n {
            PathNode::Presented(i) => Some(*i),
            PathNode::Anchor(_) => None,
        })
    }

    fn rank(&self) -> u8 {
        let invalid = self.links.iter().any(|l| l.signature == SigCheck::Invalid);
        let unsupported = self
            .links
            .iter()
            .any(|l| matches!(l.signature, SigCheck::Unsupported(_)));
        match (&self.end, invalid, unsupported) {
            (PathEnd::Anchored { .. }, false, false) => 0,
            (PathEnd::Anchored { .. }, false, true) => 1,
            (PathEnd::UntrustedRoot, false, _) => 2,
            (PathEnd::Anchored { .. }, true, _) => 3,
            (PathEnd::UntrustedRoot, true, _) => 4,
            (PathEnd::MissingIssuer { .. }, false, _) => 5,
            (PathEnd::MissingIssuer { .. }, true, _) => 6,
        }
    }
}

/// Build the best path from `presented[0]`. `presented` must not be empty.
///
/// Among paths that end equally well, one without defects wins (certificates
/// all within their validity at `now`: a server may send an expired
/// cross-signed intermediate next to its valid replacement; issuers that are
/// CAs; no SHA-1; names within constraints), then the shorter one.
pub fn build(presented: &[CertInfo], store: &TrustStore, now: OffsetDateTime) -> ChainPath {
    let mut search = Search {
        presented,
        store,
        now,
        steps: 0,
        best: None,
    };
    let mut nodes = vec![PathNode::Presented(0)];
    let mut links = Vec::new();
    search.walk(&mut nodes, &mut links);
    search.best.unwrap_or(ChainPath {
        nodes: vec![PathNode::Presented(0)],
        links: Vec::new(),
        end: PathEnd::MissingIssuer {
            issuer: presented
                .first()
                .map(|c| c.issuer.clone())
                .unwrap_or_default(),
        },
    })
}

struct Search<'a> {
    presented: &'a [CertInfo],
    store: &'a TrustStore,
    now: OffsetDateTime,
    steps: usize,
    best: Option<ChainPath>,
}

impl Search<'_> {
    fn offer(&mut self, nodes: &[PathNode], links: &[Link], end: PathEnd) {
        let candidate = ChainPath {
            nodes: nodes.to_vec(),
            links: links.to_vec(),
            end,
        };
        let better = match &self.best {
            None => true,
            Some(best) => self.score(&candidate) < self.score(best),
        };
        if better {
            self.best = Some(candidate);
        }
    }

    /// Lower is better: how the path ends, then the defects a validator refuses
    /// a path for (certificates out of their validity, an issuer that is no CA,
    /// a SHA-1/MD5 signature below the root, a dNSName outside a CA's name
    /// constraints), then length. Careful validators build another path when
    /// one has such a defect (RFC 4158), so the best one is what they end on.
    fn score(&self, path: &ChainPath) -> (u8, usize, usize) {
        let certs: Vec<&CertInfo> = path
            .nodes
            .iter()
            .filter_map(|n| ChainPath::cert(*n, self.presented, self.store))
            .collect();
        let out_of_date = certs
            .iter()
            .filter(|c| self.now < c.not_before || self.now > c.not_after)
            .count();
        let not_ca = certs
            .iter()
            .skip(1)
            .filter(|c| c.basic_constraints_ca == Some(false) || c.key_cert_sign == Some(false))
            .count();
        let weak = path
            .links
            .iter()
            .filter(|l| l.child != l.issuer)
            .filter_map(|l| ChainPath::cert(l.child, self.presented, self.store))
            .filter(|c| {
                matches!(
                    c.signature_hash,
                    super::SignatureHash::Sha1 | super::SignatureHash::Md5
                )
            })
            .count();
        let constrained = certs
            .iter()
            .enumerate()
            .skip(1)
            .map(|(k, ca)| {
                certs[..k]
                    .iter()
                    .flat_map(|below| below.san_dns())
                    .filter(|name| {
                        let permitted = ca.permitted_dns.is_empty()
                            || ca
                                .permitted_dns
                                .iter()
                                .any(|b| super::names::dns_within(name, b));
                        !permitted
                            || ca
                                .excluded_dns
                                .iter()
                                .any(|b| super::names::dns_within(name, b))
                    })
                    .count()
            })
            .sum::<usize>();
        (
            path.rank(),
            out_of_date + not_ca + weak + constrained,
            path.nodes.len(),
        )
    }

    fn done(&self) -> bool {
        self.steps >= MAX_STEPS
            || self
                .best
                .as_ref()
                .is_some_and(|b| self.score(b).0 == 0 && self.score(b).1 == 0)
    }

    /// Extend the path whose last node is a presented certificate.
    fn walk(&mut self, nodes: &mut Vec<PathNode>, links: &mut Vec<Link>) {
        let Some(&PathNode::Presented(current_index)) = nodes.last() else {
            return;
        };
        let current = &self.presented[current_index];

        // The certificate is itself trusted (a pinned leaf, or a root that was sent).
        if let Some(anchor) = self.store.anchors.iter().position(|a| a.is(current)) {
            self.offer(nodes, links, PathEnd::Anchored { anchor });
            return;
        }
        let mut extended = false;

        // Presented certificates named as issuer continue it. They go first so that a
        // root the server sent, and the store also holds, shows as the sent one.
        if nodes.len() < MAX_DEPTH {
            for (index, candidate) in self.presented.iter().enumerate() {
                if self.done() {
                    break;
                }
                let first_copy = self.presented[..index]
                    .iter()
                    .all(|c| c.sha256 != candidate.sha256);
                let on_path = nodes.iter().any(|n| match n {
                    PathNode::Presented(i) => self.presented[*i].sha256 == candidate.sha256,
                    PathNode::Anchor(_) => false,
                });
                if candidate.subject_der != current.issuer_der || !first_copy || on_path {
                    continue;
                }
                self.steps += 1;
                extended = true;
                links.push(Link {
                    child: PathNode::Presented(current_index),
                    issuer: PathNode::Presented(index),
                    signature: signature::check(&current.der, &candidate.spki_der),
                });
                nodes.push(PathNode::Presented(index));
                self.walk(nodes, links);
                nodes.pop();
                links.pop();
            }
        }

        // Anchors named as issuer end the path.
        for (index, anchor) in self.store.anchors.iter().enumerate() {
            if anchor.subject_der != current.issuer_der || self.done() {
                continue;
            }
            self.steps += 1;
            extended = true;
            links.push(Link {
                child: PathNode::Presented(current_index),
                issuer: PathNode::Anchor(index),
                signature: signature::check(&current.der, &anchor.spki_der),
            });
            nodes.push(PathNode::Anchor(index));
            self.offer(nodes, links, PathEnd::Anchored { anchor: index });
            nodes.pop();
            links.pop();
        }

        // A self-signed certificate ends the path as an untrusted root.
        if current.self_issued && !self.done() {
            self.steps += 1;
            let self_check = signature::check(&current.der, &current.spki_der);
            if self_check != SigCheck::Invalid {
                extended = true;
                links.push(Link {
                    child: PathNode::Presented(current_index),
                    issuer: PathNode::Presented(current_index),
                    signature: self_check,
                });
                self.offer(nodes, links, PathEnd::UntrustedRoot);
                links.pop();
            }
        }

        if !extended {
            self.offer(
                nodes,
                links,
                PathEnd::MissingIssuer {
                    issuer: current.issuer.clone(),
                },
            );
        }
    }
}

/// True when `cert` is self-signed: self-issued and its signature verifies with its own key.
pub fn is_self_signed(cert: &CertInfo) -> bool {
    cert.self_issued && signature::check(&cert.der, &cert.spki_der) == SigCheck::Valid
}
