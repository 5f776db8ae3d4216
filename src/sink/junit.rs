//! JUnit XML for `regress`: one `<testsuite>` per suite file, one `<testcase>`
//! per case, a `<failure>` carrying the diff (typed by its first kind) or an
//! `<error>` when the case could not run. The shape CI systems (GitLab, Jenkins,
//! GitHub test reporters) read. Text is escaped with quick-xml.

use std::fmt::Write as _;

use quick_xml::escape::escape;

/// One case's result, as JUnit needs it.
pub struct TestCase<'a> {
    /// The case name.
    pub name: &'a str,
    /// Seconds it took.
    pub seconds: f64,
    /// (kind, one line each) of its failures.
    pub failures: Vec<(&'static str, String)>,
    /// Why it could not run, if it could not.
    pub error: Option<String>,
}

/// One suite file's cases.
pub struct TestSuite<'a> {
    /// The suite file.
    pub name: &'a str,
    /// Its cases.
    pub cases: Vec<TestCase<'a>>,
}

/// The whole document.
pub fn render(suites: &[TestSuite<'_>]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"edgetap regress\">\n",
    );
    for s in suites {
        let failures = s
            .cases
            .iter()
            .filter(|c| !c.failures.is_empty() && c.error.is_none())
            .count();
        let errors = s.cases.iter().filter(|c| c.error.is_some()).count();
        let time: f64 = s.cases.iter().map(|c| c.seconds).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">",
            escape(s.name),
            s.cases.len()
        );
        for c in &s.cases {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                escape(c.name),
                escape(s.name),
                c.seconds
            );
            if let Some(e) = &c.error {
                let _ = writeln!(
                    out,
                    ">\n      <error message=\"{}\" type=\"error\"/>\n    </testcase>",
                    escape(e)
                );
            } else if let Some((kind, _)) = c.failures.first() {
                let text: Vec<String> = c
                    .failures
                    .iter()
                    .map(|(k, line)| format!("{k}: {line}"))
                    .collect();
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{} difference(s)\" type=\"{kind}\">{}</failure>\n    </testcase>",
                    c.failures.len(),
                    escape(text.join("\n"))
                );
            } else {
                out.push_str("/>\n");
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_and_errors_are_escaped_and_counted() {
        let xml = render(&[TestSuite {
            name: "s<1>.toml",
            cases: vec![
                TestCase {
                    name: "ok",
                    seconds: 0.5,
                    failures: vec![],
                    error: None,
                },
                TestCase {
                    name: "bad & worse",
                    seconds: 1.0,
                    failures: vec![("outcome", "jabber expected ok, got \"prompt\"".into())],
                    error: None,
                },
                TestCase {
                    name: "down",
                    seconds: 0.0,
                    failures: vec![],
                    error: Some("connection refused <x>".into()),
                },
            ],
        }]);
        assert!(xml.contains("<testsuite name=\"s&lt;1&gt;.toml\" tests=\"3\" failures=\"1\" errors=\"1\" time=\"1.500\">"), "{xml}");
        assert!(xml.contains("name=\"bad &amp; worse\""));
        assert!(
            xml.contains(
                "type=\"outcome\">outcome: jabber expected ok, got &quot;prompt&quot;</failure>"
            ),
            "{xml}"
        );
        assert!(xml.contains("<error message=\"connection refused &lt;x&gt;\" type=\"error\"/>"));
        // Well-formed: quick-xml reads it to the end.
        let mut reader = quick_xml::Reader::from_str(&xml);
        while reader.read_event().unwrap() != quick_xml::events::Event::Eof {}
    }
}
