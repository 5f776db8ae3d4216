//! Where reports go: the terminal, JSON, captures and the files beside them.

pub mod html;
pub mod json;
pub mod junit;
pub mod live;
pub mod out;
pub mod pcap;
pub mod text;

/// Open `path` to append to it, creating it if needed (events files, key
/// logs: a second run adds to what the first wrote). `what` names the file in
/// the error.
pub fn open_append(path: &std::path::Path, what: &str) -> anyhow::Result<std::fs::File> {
    use anyhow::Context as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}: cannot open the {what}", path.display()))
}

/// Write `bytes` to `path` whole or not at all: into a temporary file beside
/// it, synced, then renamed over it; a failed write (a full disk) removes the
/// temporary file and leaves whatever `path` held before.
pub fn write_whole(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: writing failed (disk full?)", tmp.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot replace it", path.display()))
}

/// A file written in whole records (events lines, key log entries): each
/// record goes out in one write, and a write that fails part-way (a full disk)
/// is cut back, so the file only ever holds complete records, whatever the
/// disk did. Opened for appending, so the next record lands after the cut.
pub struct WholeRecords {
    file: std::fs::File,
    /// Length of the file up to its last complete record.
    committed: u64,
}

impl WholeRecords {
    /// Wrap a file opened for appending.
    pub fn new(file: std::fs::File) -> WholeRecords {
        let committed = file.metadata().map(|m| m.len()).unwrap_or(0);
        WholeRecords { file, committed }
    }

    /// Write `record` whole or not at all.
    pub fn write(&mut self, record: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        match self.file.write_all(record) {
            Ok(()) => {
                self.committed += record.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Best effort: a device such as /dev/full has no length to cut.
                let _ = self.file.set_len(self.committed);
                Err(e)
            }
        }
    }

    /// Write `line` and its newline whole or not at all.
    pub fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let mut record = Vec::with_capacity(line.len() + 1);
        record.extend_from_slice(line.as_bytes());
        record.push(b'\n');
        self.write(&record)
    }
}

pub use crate::core::timestamp::rfc3339;

/// `n` and `noun`, plural unless one: "1 handshake", "3 handshakes", "0
/// frames". The one way counts are written in reports and messages.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// How far `t` is from `now`, in words: "in 29 days", "3 hours ago".
pub fn relative(t: time::OffsetDateTime, now: time::OffsetDateTime) -> String {
    let secs = (t - now).whole_seconds();
    let (n, unit) = match secs.unsigned_abs() {
        s if s < 60 => return "within a minute".to_owned(),
        s if s < 2 * 3600 => (s / 60, "minute"),
        s if s < 2 * 86_400 => (s / 3600, "hour"),
        s if s < 730 * 86_400 => (s / 86_400, "day"),
        s => (s / (365 * 86_400), "year"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if secs > 0 {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

/// A validity period against `now` in words: "expires in 29 days",
/// "expired 3 days ago", "not valid yet: starts in 2 hours".
pub fn validity_words(
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
    now: time::OffsetDateTime,
) -> String {
    if now < from {
        format!("not valid yet: starts {}", relative(from, now))
    } else if now > to {
        format!("expired {}", relative(to, now))
    } else {
        format!("expires {}", relative(to, now))
    }
}

/// The longest field the text report prints whole; longer ones are cut, with
/// how much was left out.
pub const FIELD_MAX: usize = 2000;

/// `s` made safe to print on a terminal, for everything that came from the
/// wire or a file (names, SANs, SNI, XMPP domains, DNS names, messages quoting
/// them): control characters (a newline could forge a report line, an escape
/// sequence could recolour or hide one) and bidirectional overrides become
/// `\u{..}` escapes, and a field over [`FIELD_MAX`] characters is cut. JSON
/// needs none of this: serde escapes control characters itself.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    let long = s.chars().count() > FIELD_MAX;
    if !long && !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars().take(FIELD_MAX) {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    if long {
        out.push_str(&format!(
            "... ({} more characters)",
            s.chars().count() - FIELD_MAX
        ));
    }
    std::borrow::Cow::Owned(out)
}

/// "CN=Foo, O=Bar" -> "CN=Foo": a subject as compact paths and diagrams show it.
pub fn short(subject: &str) -> &str {
    subject
        .split(", ")
        .find(|part| part.starts_with("CN="))
        .unwrap_or(subject)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn times_in_rfc3339_and_in_words() {
        let now = time::macros::datetime!(2026-12-02 00:00 UTC);
        let from = time::macros::datetime!(2026-01-01 00:00 UTC);
        assert_eq!(
            super::rfc3339(time::macros::datetime!(2027-01-01 00:00 +01:00)),
            "2026-12-31T23:00:00Z"
        );
        assert_eq!(
            super::validity_words(from, now + time::Duration::days(29), now),
            "expires in 29 days"
        );
        assert_eq!(
            super::validity_words(from, now - time::Duration::days(3), now),
            "expired 3 days ago"
        );
        assert_eq!(
            super::validity_words(
                now + time::Duration::hours(5),
                now + time::Duration::days(900),
                now
            ),
            "not valid yet: starts in 5 hours"
        );
        assert_eq!(
            super::relative(now + time::Duration::days(800), now),
            "in 2 years"
        );
        assert_eq!(
            super::relative(now - time::Duration::minutes(1), now),
            "1 minute ago"
        );
    }

    #[test]
    fn wire_text_cannot_forge_lines_colours_or_direction() {
        assert_eq!(printable("expe.example.com"), "expe.example.com");
        assert_eq!(
            printable("evil\n    jabber        OK"),
            "evil\\u{a}    jabber        OK"
        );
        assert_eq!(printable("x\u{1b}[32mgreen"), "x\\u{1b}[32mgreen");
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
        let long = "a".repeat(super::FIELD_MAX + 5);
        assert!(printable(&long).ends_with("... (5 more characters)"));
    }
}
