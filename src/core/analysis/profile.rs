//! Client profiles and what a rule does to each: the vocabulary of verdicts.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A kind of client whose behaviour edgetap models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Cisco Jabber (desktop and mobile): prompts the user on untrusted certificates.
    Jabber,
    /// 7800/8800 IP phones over MRA: fixed public CA list, never prompt.
    IpPhone,
    /// TelePresence (TC/CE) endpoints over MRA: public CAs only, never prompt.
    TcEndpoint,
    /// Expressway-C as traversal client with TLS verify.
    ExpresswayC,
}

impl Profile {
    /// All profiles, in report order.
    pub const ALL: [Profile; 4] = [
        Profile::Jabber,
        Profile::IpPhone,
        Profile::TcEndpoint,
        Profile::ExpresswayC,
    ];

    /// The profile's stable name, as in rules.md and the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Jabber => "jabber",
            Profile::IpPhone => "ip-phone",
            Profile::TcEndpoint => "tc-endpoint",
            Profile::ExpresswayC => "expressway-c",
        }
    }

    /// Index into per-profile tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether this client speaks `service` at all. Phones and TelePresence
    /// endpoints register over MRA with HTTPS and SIP; they have no XMPP client
    /// (rules.md marks the XMPP rules n/a for them).
    pub fn uses(self, service: crate::core::observation::Service) -> bool {
        use crate::core::observation::Service;
        !matches!(
            (self, service),
            (Profile::IpPhone | Profile::TcEndpoint, Service::Xmpp)
        )
    }

    /// Whether this client's trust store can hold enterprise CAs. Phones and
    /// TelePresence endpoints have a fixed public list (client-behaviour.md, "Trust").
    pub fn trusts_enterprise_cas(self) -> bool {
        matches!(self, Profile::Jabber | Profile::ExpresswayC)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown profile {s:?}: use jabber, ip-phone, tc-endpoint or expressway-c")
            })
    }
}

/// What one rule does to one profile (a cell of the rules.md table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// The profile does not use this service or check; the rule says nothing about it.
    NotApplicable,
    /// No effect.
    Ok,
    /// Works, but worth fixing.
    Warn,
    /// The user is asked to accept the certificate.
    Prompt,
    /// The client cannot connect.
    Fail,
}

impl Effect {
    /// The name used in rules.md and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::NotApplicable => "n/a",
            Effect::Ok => "ok",
            Effect::Warn => "warn",
            Effect::Prompt => "prompt",
            Effect::Fail => "fail",
        }
    }

    /// The outcome this effect leads to, if any.
    pub fn outcome(self) -> Outcome {
        match self {
            Effect::NotApplicable | Effect::Ok => Outcome::Ok,
            Effect::Warn => Outcome::Warn,
            Effect::Prompt => Outcome::Prompt,
            Effect::Fail => Outcome::Fail,
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile's overall result for one handshake, ordered ok < warn < unknown <
/// prompt < fail (`--fail-on` compares in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Connects silently.
    Ok,
    /// Connects; something is worth fixing.
    Warn,
    /// Not judged: the chain the client saw is not known (TLS 1.3 without
    /// keys, a capture cut before the Certificate). Never shown as ok.
    Unknown,
    /// The user is asked to accept the certificate.
    Prompt,
    /// Cannot connect.
    Fail,
}

impl Outcome {
    /// The name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Warn => "warn",
            Outcome::Unknown => "unknown",
            Outcome::Prompt => "prompt",
            Outcome::Fail => "fail",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "warn" => Ok(Outcome::Warn),
            "unknown" => Ok(Outcome::Unknown),
            "prompt" => Ok(Outcome::Prompt),
            "fail" => Ok(Outcome::Fail),
            _ => Err(format!(
                "unknown outcome {s:?}: use ok, warn, unknown, prompt or fail"
            )),
        }
    }
}

/// A set of profiles: those a finding applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProfileSet(u8);

impl ProfileSet {
    /// Every profile.
    pub const ALL: ProfileSet = ProfileSet(0b1111);

    /// The set of the given profiles.
    pub fn of(profiles: &[Profile]) -> ProfileSet {
        ProfileSet(profiles.iter().fold(0, |bits, p| bits | 1 << p.index()))
    }

    /// Membership.
    pub fn contains(self, p: Profile) -> bool {
        self.0 & (1 << p.index()) != 0
    }

    /// Union.
    pub fn union(self, other: ProfileSet) -> ProfileSet {
        ProfileSet(self.0 | other.0)
    }

    /// Intersection.
    pub fn intersect(self, other: ProfileSet) -> ProfileSet {
        ProfileSet(self.0 & other.0)
    }

    /// True when no profile is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in report order.
    pub fn iter(self) -> impl Iterator<Item = Profile> {
        Profile::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl Serialize for ProfileSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}
