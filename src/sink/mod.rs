//! Where reports go: the terminal, JSON, captures and the files beside them.

pub mod json;
pub mod junit;
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

#[cfg(test)]
mod tests {
    use super::printable;

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
