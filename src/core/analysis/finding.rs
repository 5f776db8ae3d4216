//! A finding: one rule that fired on one handshake, with its evidence and fix.

use serde::Serialize;

use super::catalog::Rule;
use super::profile::{Effect, ProfileSet};

/// Where a certificate named in a finding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertSource {
    /// Sent by the server.
    Presented,
    /// A public root from the trust store.
    PublicStore,
    /// An enterprise CA from the trust store.
    EnterpriseStore,
}

/// The certificate a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CertRef {
    /// Position in the chain as sent (0 = leaf), for presented certificates.
    pub position: Option<usize>,
    /// Subject text.
    pub subject: String,
    /// SHA-256 of the DER, when the certificate itself is known.
    pub sha256: Option<String>,
    /// Where it came from.
    pub source: CertSource,
}

/// What was expected and what was presented, naming the field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Evidence {
    /// The certificate field or handshake property looked at.
    pub field: String,
    /// What a client needs there.
    pub expected: Option<String>,
    /// What the server presented.
    pub presented: Option<String>,
}

/// One rule firing on one handshake.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The rule, from the catalogue.
    pub rule: &'static Rule,
    /// What is wrong, in a sentence.
    pub message: String,
    /// The certificate concerned, if one is.
    pub certificate: Option<CertRef>,
    /// Structured evidence.
    pub evidence: Evidence,
    /// What to change, in the deployment guides' terms.
    pub fix: String,
    /// Profiles this finding applies to (trust-dependent findings differ per store).
    pub profiles: ProfileSet,
}

/// The same rule with the same words, certificate, evidence, fix and
/// profiles: a finding that reads the same.
impl PartialEq for Finding {
    fn eq(&self, other: &Finding) -> bool {
        self.rule.id == other.rule.id
            && self.message == other.message
            && self.certificate == other.certificate
            && self.evidence == other.evidence
            && self.fix == other.fix
            && self.profiles == other.profiles
    }
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let severity = match self.severity() {
            Effect::NotApplicable | Effect::Ok => "info",
            other => other.as_str(),
        };
        let mut st = s.serialize_struct("Finding", 7)?;
        st.serialize_field("rule", self.rule.id)?;
        st.serialize_field("severity", severity)?;
        st.serialize_field("message", &self.message)?;
        st.serialize_field("certificate", &self.certificate)?;
        st.serialize_field("evidence", &self.evidence)?;
        st.serialize_field("fix", &self.fix)?;
        st.serialize_field("profiles", &self.profiles)?;
        st.end()
    }
}

impl Finding {
    /// A finding of `rule` with a message; add evidence, certificate and fix with the builders.
    pub fn new(rule: &'static Rule, message: impl Into<String>) -> Finding {
        Finding {
            rule,
            message: message.into(),
            certificate: None,
            evidence: Evidence::default(),
            fix: String::new(),
            profiles: ProfileSet::ALL,
        }
    }

    /// Name the certificate concerned.
    pub fn cert(mut self, cert: CertRef) -> Finding {
        self.certificate = Some(cert);
        self
    }

    /// Record the field looked at, what was expected and what was presented.
    pub fn evidence(
        mut self,
        field: impl Into<String>,
        expected: Option<String>,
        presented: Option<String>,
    ) -> Finding {
        self.evidence = Evidence {
            field: field.into(),
            expected,
            presented,
        };
        self
    }

    /// The fix.
    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = fix.into();
        self
    }

    /// The worst effect over the profiles this finding applies to.
    pub fn severity(&self) -> Effect {
        self.profiles
            .iter()
            .map(|p| self.rule.effect(p))
            .max()
            .unwrap_or(Effect::NotApplicable)
    }

    /// Identity used to merge the same finding found under several trust stores.
    pub(crate) fn merge_key(&self) -> (&'static str, Option<CertRef>, String) {
        (self.rule.id, self.certificate.clone(), self.message.clone())
    }
}
