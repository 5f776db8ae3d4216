//! The JSON writer (`sink::json::write`: each distinct chain, paths, findings
//! and verdicts printed once, handshakes serialised on rayon's pool) against
//! serde_json's pretty printer in one go, on the same report, same run: the
//! figure that keeps the hand-written writer. Both documents must be the same
//! bytes. Run: `cargo bench --bench json`.

// A benchmark binary: a failed setup step should stop it with its location.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use edgetap::testing::{json_reference, sample_report};

/// The best of `runs` timings of `f`.
fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    println!("JSON writer benchmark (release; best of 7 runs each)");
    for n in [2_000, 20_000] {
        let report = sample_report(n, now);
        let mut ours = Vec::new();
        edgetap::sink::json::write(&mut ours, &report, now).unwrap();
        let mut reference = json_reference(&report, now).into_bytes();
        reference.push(b'\n');
        assert!(
            ours == reference,
            "the writer's document differs from serde_json's"
        );
        let fast = best(7, || {
            let mut out = Vec::with_capacity(ours.len());
            edgetap::sink::json::write(&mut out, &report, now).unwrap();
        });
        let plain = best(7, || {
            std::hint::black_box(json_reference(&report, now));
        });
        println!(
            "  {n} handshakes, {:.1} MB: serde_json {:.1} ms, edgetap's writer {:.1} ms: {:.2}x",
            ours.len() as f64 / 1e6,
            plain.as_secs_f64() * 1e3,
            fast.as_secs_f64() * 1e3,
            plain.as_secs_f64() / fast.as_secs_f64()
        );
    }
}
