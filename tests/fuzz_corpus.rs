//! Every input the fuzzers kept (fuzz/corpus/<target>/, minimised) and every
//! input that once crashed a target (fuzz/regressions/<target>/) runs through
//! the same entry point on stable, so `cargo test` keeps them all passing
//! without nightly or cargo-fuzz. `fuzz/run.sh` refreshes the corpus.

use std::path::Path;
use std::time::{Duration, Instant};

/// An input this slow (in a debug build) is a hang the fuzzer would flag.
const SLOW: Duration = Duration::from_secs(10);

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_corpus_and_crash_input_runs_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut slow = Vec::new();
    for &(name, run) in edgetap::testing::fuzz::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name} is empty: run fuzz/run.sh {name} and commit its corpus"
        );
        let regressions = inputs(&root.join("regressions").join(name));
        for file in corpus.iter().chain(&regressions) {
            let bytes = std::fs::read(file).expect("a corpus file is readable");
            let start = Instant::now();
            run(&bytes);
            if start.elapsed() > SLOW {
                slow.push(format!("{} took {:?}", file.display(), start.elapsed()));
            }
        }
        eprintln!(
            "{name}: {} corpus inputs, {} regressions",
            corpus.len(),
            regressions.len()
        );
    }
    assert!(slow.is_empty(), "inputs too slow: {slow:#?}");
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for &(name, _) in edgetap::testing::fuzz::TARGETS {
        let source = root.join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|_| panic!("{} is missing", source.display()));
        assert!(
            text.contains(&format!("edgetap::testing::fuzz::{name}(")),
            "{} does not call edgetap::testing::fuzz::{name}",
            source.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
}
