//! Architecture invariants as tests (rust-analyzer's tidy): every source file
//! opens with a `//!` doc comment, the core does no I/O and imports no shell,
//! its modules form layers without cycles, and ARCHITECTURE.md cites only paths
//! that exist.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_source_file_has_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("tests"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not start with a //! doc comment",
            file.display()
        );
    }
}

#[test]
fn core_does_no_io() {
    let mut files = Vec::new();
    rust_files(&root().join("src/core"), &mut files);
    let forbidden = [
        "tokio",
        "std::fs",
        "std::net::TcpStream",
        "std::net::UdpSocket",
        "now_utc()",
        "SystemTime::now",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Tests may read fixtures; the invariant is about shipped code.
        let shipped: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for word in forbidden {
            assert!(
                !shipped.contains(word),
                "{} uses {word}: the core takes bytes and values only",
                file.display()
            );
        }
    }
}

#[test]
fn architecture_cites_existing_paths() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for cited in text.split('`').skip(1).step_by(2) {
        let looks_like_path = (cited.starts_with("src/")
            || cited.starts_with("tests/")
            || cited.starts_with("captures/"))
            && !cited.contains(' ');
        if looks_like_path {
            assert!(
                root().join(cited.trim_end_matches('/')).exists(),
                "ARCHITECTURE.md cites {cited}, which does not exist"
            );
        }
    }
}

/// Every source file and test binary is on ARCHITECTURE.md's map: cited by
/// its path, or inside a folder cited with a trailing `/` (a `mod.rs` or
/// `lib.rs` only gathers its folder's modules).
#[test]
fn architecture_maps_every_module() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let cited: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    for entry in std::fs::read_dir(root().join("tests")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.push(root().join("tests/cli/main.rs"));
    let mut unmapped = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel.ends_with("/mod.rs") || rel == "src/lib.rs" {
            continue;
        }
        let mapped = cited
            .iter()
            .any(|c| *c == rel || (c.ends_with('/') && rel.starts_with(c)));
        if !mapped {
            unmapped.push(rel);
        }
    }
    assert!(
        unmapped.is_empty(),
        "ARCHITECTURE.md does not map {unmapped:?}: cite each (or its folder, with a trailing /)"
    );
}

/// The core's modules in layers: a module may use only modules of a lower
/// layer (or itself), so no cycle can form. A new module gets a layer here.
const CORE_LAYERS: &[(&str, u8)] = &[
    ("tls", 0),
    ("hostport", 0),
    ("timestamp", 0),
    ("limits", 0),
    ("parallel", 0),
    ("observation", 1),
    ("xmpp", 2),
    ("x509", 2),
    ("discovery", 3),
    ("capture", 4),
    ("analysis", 5),
    ("export", 6),
    ("regress", 7),
];

/// The shells: the core, its tests included, never reaches for them.
const SHELLS: &[&str] = &[
    "net", "proxy", "cmd", "sink", "clock", "input", "threads", "testing", "lab", "logs",
];

#[test]
fn core_imports_no_shell_and_its_layers_have_no_cycles() {
    let core = root().join("src/core");
    let mut files = Vec::new();
    rust_files(&core, &mut files);
    let layer = |m: &str| CORE_LAYERS.iter().find(|(n, _)| *n == m).map(|(_, l)| *l);
    for file in files {
        let rel = file.strip_prefix(&core).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "mod" {
            continue;
        }
        let own = layer(&module)
            .unwrap_or_else(|| panic!("src/core/{module} has no layer in CORE_LAYERS"));
        let text = std::fs::read_to_string(&file).unwrap();
        for shell in SHELLS {
            assert!(
                !text.contains(&format!("crate::{shell}::"))
                    && !text.contains(&format!("crate::{shell};")),
                "{} uses crate::{shell}: the core (tests included) imports no shell",
                file.display()
            );
        }
        for (i, _) in text.match_indices("crate::core::") {
            let used: String = text[i + "crate::core::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let Some(theirs) = layer(&used) else { continue };
            assert!(
                used == module || theirs < own,
                "{} (layer {own}) uses core::{used} (layer {theirs}): only lower layers, or the layering has a cycle",
                file.display()
            );
        }
    }
}
