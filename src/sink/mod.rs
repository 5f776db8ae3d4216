//! Where reports go: the terminal, JSON, captures and the files beside them.

pub mod json;
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
