//! The JSON document: a contract for automation. Fields may be added; none renamed.

use std::io::Write;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::core::analysis::engine::{ChainEntry, PathView};
use crate::core::analysis::{Finding, HandshakeReport, Profile, Report, Verdict};

/// The top-level document.
#[derive(Serialize)]
struct Document<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    handshakes: &'a [HandshakeReport],
}

/// The document's fields before the handshakes, in order.
#[derive(Serialize)]
struct Head<'a> {
    edgetap: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    analysed_at: OffsetDateTime,
    worst: crate::core::analysis::Outcome,
    /// Why the run examined less than it set out to (then `worst` is at
    /// least unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    not_examined: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<&'a crate::core::analysis::engine::DnsReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capture: Option<&'a Vec<crate::core::capture::CaptureFileReport>>,
}

/// Write `report` as pretty JSON and a newline to stdout, streamed (a
/// capture of thousands of handshakes makes tens of megabytes of JSON: never
/// held in memory whole). A closed stdout ends the output quietly.
pub fn print(report: &Report, now: OffsetDateTime) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = write(&mut out, report, now).and_then(|()| out.flush());
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        tracing::debug!(error = %e, "the JSON document could not be written whole");
    }
}

/// `report` as pretty JSON and a newline, to `out`: [`write_document`] on
/// rayon's pool.
pub fn write(out: &mut impl Write, report: &Report, now: OffsetDateTime) -> std::io::Result<()> {
    write_document(out, report, now, rayon::current_num_threads())?;
    out.write_all(b"\n")
}

/// `report` as serde_json's pretty printer writes it in one go: the document
/// [`write`] must give byte for byte (its tests and `benches/json.rs`
/// compare the two; nothing a user runs prints through it).
pub(crate) fn render(report: &Report, now: OffsetDateTime) -> String {
    // Serialising plain owned data cannot fail; fall back to an error object anyway.
    serde_json::to_string_pretty(&Document {
        head: head(report, now),
        handshakes: &report.handshakes,
    })
    .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise report: {e}\"}}"))
}

fn head(report: &Report, now: OffsetDateTime) -> Head<'_> {
    Head {
        edgetap: env!("CARGO_PKG_VERSION"),
        analysed_at: now,
        worst: report.worst(),
        not_examined: report.not_examined.as_deref(),
        dns: report.dns.as_ref(),
        capture: report.capture.as_ref(),
    }
}

/// Handshakes serialised together in `workers` parts, then written in order.
const WINDOW: usize = 256;

/// The document [`render`] gives, byte for byte, written to `out` with the
/// handshakes serialised in `workers` parts on rayon's pool, each distinct
/// chain, paths, findings and verdicts printed once ([`elements`]). Written
/// here because serde_json has no parallel serialiser and prints every
/// repeated value again: on the 115 MB capture of `../shared/bench`
/// (2,000 handshakes of one server) replay took 121 ms with serde_json's
/// streamed writer and 70 ms with this one (hyperfine, 25 runs each, same
/// session; `cargo bench --bench json` shows the writer alone). So the
/// document's last field is written here: the head as serde_json prints it,
/// then each handshake printed apart at its depth.
fn write_document(
    out: &mut impl Write,
    report: &Report,
    now: OffsetDateTime,
    workers: usize,
) -> std::io::Result<()> {
    let mut head_text = serde_json::to_vec_pretty(&head(report, now))?;
    // `{ ... \n}`: reopen the object after its last field.
    if !head_text.ends_with(b"\n}") {
        return Err(std::io::Error::other("unexpected JSON head"));
    }
    head_text.truncate(head_text.len() - 2);
    out.write_all(&head_text)?;
    out.write_all(b",\n  \"handshakes\": [")?;
    let handshakes = &report.handshakes;
    if handshakes.is_empty() {
        return out.write_all(b"]\n}");
    }
    let mut first = true;
    for window in handshakes.chunks(WINDOW) {
        let per = window.len().div_ceil(workers.max(1));
        let parts: Vec<std::io::Result<Vec<u8>>> = if workers > 1 && window.len() > 1 {
            use rayon::prelude::*;
            window.par_chunks(per).map(elements).collect()
        } else {
            vec![elements(window)]
        };
        for part in parts {
            let part = part?;
            // Each part starts with its elements' separator, a comma, which
            // the document's first element goes without.
            out.write_all(if first { &part[1..] } else { &part })?;
            first = false;
        }
    }
    out.write_all(b"\n  ]\n}")
}

/// `,\n    {element}` for each handshake, as serde_json prints array
/// elements at depth two. A capture's handshakes mostly repeat each other's
/// chain, paths, findings and verdicts (2,000 handshakes of one server show
/// one chain): each of those is printed once, as a [`Repeats`] fragment, and
/// copied into every handshake that has the same.
fn elements(chunk: &[HandshakeReport]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut repeats = Repeats::default();
    for (i, h) in chunk.iter().enumerate() {
        let chain = repeats.chains.find(&h.chain, Arc::ptr_eq)?;
        let paths = repeats.paths.find(&h.paths, Arc::ptr_eq)?;
        let findings = repeats.findings.find(&h.findings, PartialEq::eq)?;
        let verdicts = repeats.verdicts.find(&h.verdicts, PartialEq::eq)?;
        out.extend_from_slice(b",\n    ");
        let element = Element {
            observation: &h.observation,
            chain: repeats.chains.fragment(chain),
            paths: repeats.paths.fragment(paths),
            findings: repeats.findings.fragment(findings),
            verdicts: repeats.verdicts.fragment(verdicts),
        };
        let mut json = serde_json::Serializer::with_formatter(&mut out, Indented::at(2));
        element.serialize(&mut json)?;
        if i == 0 {
            // Room for the rest at the first one's size and an eighth, so the
            // part is not copied as it grows.
            out.reserve((out.len() + out.len() / 8) * chunk.len());
        }
    }
    Ok(out)
}

/// A [`HandshakeReport`] as it is printed, field for field and in the same
/// order (the test below holds the two to the same bytes), with the fields
/// that repeat from handshake to handshake already printed.
#[derive(Serialize)]
struct Element<'a> {
    #[serde(flatten)]
    observation: &'a crate::core::observation::Observation,
    chain: &'a RawValue,
    paths: &'a RawValue,
    findings: &'a RawValue,
    verdicts: &'a RawValue,
}

/// The fields of the handshakes printed so far, each value printed once.
#[derive(Default)]
struct Repeats<'a> {
    chains: Printed<'a, Arc<Vec<ChainEntry>>>,
    paths: Printed<'a, Arc<Vec<PathView>>>,
    findings: Printed<'a, Vec<Finding>>,
    verdicts: Printed<'a, BTreeMap<Profile, Verdict>>,
}

/// The last few distinct values of one field, each with its JSON as printed
/// at its depth in a handshake. A handful is enough: captures interleave a
/// few servers' handshakes, and a value not kept is printed again.
struct Printed<'a, T> {
    kept: Vec<(&'a T, Box<RawValue>)>,
}

impl<T> Default for Printed<'_, T> {
    fn default() -> Self {
        Printed { kept: Vec::new() }
    }
}

/// How many distinct values of a field are kept.
const KEPT: usize = 8;

impl<'a, T: Serialize> Printed<'a, T> {
    /// The index of `value`'s fragment, printed now if no kept value is the
    /// `same`.
    fn find(&mut self, value: &'a T, same: impl Fn(&T, &T) -> bool) -> std::io::Result<usize> {
        if let Some(i) = self.kept.iter().position(|(k, _)| same(k, value)) {
            return Ok(i);
        }
        // A field's value sits at depth three: inside the handshake, inside
        // the array, inside the document.
        let mut text = Vec::new();
        value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut text,
            Indented::at(3),
        ))?;
        let text = String::from_utf8(text).map_err(std::io::Error::other)?;
        let fragment = RawValue::from_string(text)?;
        if self.kept.len() == KEPT {
            self.kept.remove(0);
        }
        self.kept.push((value, fragment));
        Ok(self.kept.len() - 1)
    }

    /// The fragment [`Printed::find`] gave the index of.
    fn fragment(&self, i: usize) -> &RawValue {
        &self.kept[i].1
    }
}

/// serde_json's pretty printing (two spaces a level) of a value that sits
/// `depth` levels down in the document, so a part printed apart reads as if
/// the whole document had been printed in one go. serde_json's
/// `PrettyFormatter` always starts at the left margin; these are its rules
/// with a starting depth.
struct Indented {
    depth: usize,
    has_value: bool,
}

impl Indented {
    fn at(depth: usize) -> Indented {
        Indented {
            depth,
            has_value: false,
        }
    }

    fn newline(&self, w: &mut (impl ?Sized + Write), comma: bool) -> std::io::Result<()> {
        const SPACES: &[u8] = &[b' '; 64];
        w.write_all(if comma { b",\n" } else { b"\n" })?;
        let mut n = 2 * self.depth;
        while n > 0 {
            let k = n.min(SPACES.len());
            w.write_all(&SPACES[..k])?;
            n -= k;
        }
        Ok(())
    }

    fn open(&mut self, w: &mut (impl ?Sized + Write), bracket: &[u8]) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close(&mut self, w: &mut (impl ?Sized + Write), bracket: &[u8]) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for Indented {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(w, !first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(w, !first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(report: &Report, workers: usize) -> String {
        let mut out = Vec::new();
        write_document(&mut out, report, OffsetDateTime::UNIX_EPOCH, workers).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The sample's handshakes, repeated to `n`.
    fn report_of(n: usize) -> Report {
        crate::testing::sample_report(n, OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn written_in_parallel_is_byte_for_byte_the_pretty_document() {
        for n in [0, 1, 2, 5, WINDOW - 1, WINDOW, WINDOW + 3, 2 * WINDOW + 1] {
            let report = report_of(n);
            let expected = render(&report, OffsetDateTime::UNIX_EPOCH);
            for workers in [1, 2, 3, 8] {
                assert_eq!(
                    written(&report, workers),
                    expected,
                    "{n} handshakes, {workers} threads"
                );
            }
        }
    }

    /// A report whose handshakes each have a chain, findings and verdicts
    /// of their own (more distinct values than are kept), then the same
    /// again: every fragment is printed afresh or found, never mixed up.
    #[test]
    fn more_distinct_values_than_are_kept_print_the_same_document() {
        let mut report = report_of(3 * KEPT);
        for (i, h) in report.handshakes.iter_mut().enumerate() {
            let mut chain = (*h.chain).clone();
            if let Some(first) = chain.first_mut() {
                first.cert.subject = format!("CN=server {i}");
            }
            h.chain = Arc::new(chain);
            if let Some(f) = h.findings.first_mut() {
                f.message = format!("finding of handshake {i}");
            }
            if let Some(v) = h.verdicts.values_mut().next() {
                v.rules = vec![if i % 2 == 0 { "even" } else { "odd" }];
            }
        }
        let again = report.handshakes.clone();
        report.handshakes.extend(again);
        let expected = render(&report, OffsetDateTime::UNIX_EPOCH);
        assert!(expected.contains("CN=server 23") && expected.contains("finding of handshake 23"));
        for workers in [1, 2] {
            assert_eq!(written(&report, workers), expected, "{workers} threads");
        }
    }

    /// The indenting formatter at depth 0 is serde_json's pretty printer.
    #[test]
    fn indented_at_the_margin_is_pretty_printing() {
        let value = serde_json::json!({
            "a": [1, [], {}, {"b": [true, null, "x"]}],
            "c": {"d": {"e": []}},
            "f": "g"
        });
        let mut ours = Vec::new();
        value
            .serialize(&mut serde_json::Serializer::with_formatter(
                &mut ours,
                Indented::at(0),
            ))
            .unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string_pretty(&value).unwrap()
        );
    }
}
