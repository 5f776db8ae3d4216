//! `subject.*`: subject attributes Expressway cannot handle.

use super::Handshake;
use crate::core::analysis::catalog as c;
use crate::core::analysis::finding::Finding;

/// Subject attribute OIDs Expressway accepts: the X.520 attributes CSRs use, plus
/// the three EV jurisdiction OIDs the Expressway guide lists as the only supported
/// EV ones (003 "Points to be Aware"). Which plain X.520 attributes are accepted is
/// not listed in the sources; this set is an assumption.
const SUPPORTED: &[&str] = &[
    "2.5.4.3",                    // CN
    "2.5.4.5",                    // serialNumber
    "2.5.4.6",                    // C
    "2.5.4.7",                    // L
    "2.5.4.8",                    // ST
    "2.5.4.9",                    // street
    "2.5.4.10",                   // O
    "2.5.4.11",                   // OU
    "2.5.4.15",                   // businessCategory
    "2.5.4.17",                   // postalCode
    "1.2.840.113549.1.9.1",       // emailAddress
    "0.9.2342.19200300.100.1.25", // DC
    "1.3.6.1.4.1.311.60.2.1.1",   // jurisdictionOfIncorporationLocalityName
    "1.3.6.1.4.1.311.60.2.1.2",   // jurisdictionOfIncorporationStateOrProvinceName
    "1.3.6.1.4.1.311.60.2.1.3",   // jurisdictionOfIncorporationCountryName
];

/// Flag leaf subject attributes outside the supported set.
pub fn check(hs: &Handshake<'_>, out: &mut Vec<Finding>) {
    let Some(leaf) = hs.leaf() else { return };
    for attr in &leaf.subject_attributes {
        if SUPPORTED.contains(&attr.oid.as_str()) {
            continue;
        }
        out.push(
            Finding::new(
                &c::SUBJECT_UNSUPPORTED_OID,
                format!(
                    "the subject has attribute {} ({}) = {:?}, which Expressway does not support",
                    attr.name, attr.oid, attr.value
                ),
            )
            .cert(hs.cert_ref(0))
            .evidence(
                "subject",
                Some("standard attributes and the three EV jurisdiction OIDs".into()),
                Some(format!("{}={}", attr.oid, attr.value)),
            )
            .fix(format!(
                "generate the CSR without the {} attribute and have the certificate reissued",
                attr.name
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use rcgen::DnType;

    #[test]
    fn unsupported_oid_fires_and_ev_oids_do_not() {
        let root = root("Subject Root");
        let mut p = leaf_params("expe.example.com", &["expe.example.com"]);
        p.distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 12]), "Engineer"); // title
        let report = Case::new(vec![leaf(p, &root)], "expe.example.com")
            .public(vec![root.der()])
            .run();
        assert_fires(&report, "subject.unsupported-oid");

        let mut ev = leaf_params("expe.example.com", &["expe.example.com"]);
        ev.distinguished_name.push(
            DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3]),
            "US",
        );
        ev.distinguished_name
            .push(DnType::OrganizationName, "Example Inc");
        let report = Case::new(vec![leaf(ev, &root)], "expe.example.com")
            .public(vec![root.der()])
            .run();
        assert_quiet(&report, "subject.unsupported-oid");
    }
}
