//! The verdict as one line, for a pcapng packet comment.

use crate::core::analysis::{HandshakeReport, Profile};

/// "edgetap: jabber=prompt (chain.missing-intermediate) ip-phone=fail (...) ...".
pub fn verdict_comment(h: &HandshakeReport) -> String {
    let mut parts = vec![format!(
        "edgetap: {} {}",
        h.observation.reference_identity, h.observation.service
    )];
    for p in Profile::ALL {
        let Some(v) = h.verdicts.get(&p) else {
            continue;
        };
        if !v.applicable {
            parts.push(format!("{p}=n/a"));
        } else if v.rules.is_empty() {
            parts.push(format!("{p}={}", v.outcome));
        } else {
            parts.push(format!("{p}={} ({})", v.outcome, v.rules.join(", ")));
        }
    }
    parts.join(" ")
}
