//! Replay throughput against tshark, in one run: the largest shared capture, and a
//! generated capture of EDGETAP_BENCH_MB megabytes (default 1024) made of TLS 1.2
//! connections, each a full handshake with a two-certificate chain followed by
//! 64 KiB of application data. tshark extracts certificates from the same files
//! (`-Y tls.handshake.type==11 -T fields -e tls.handshake.certificate`).
//! Run: `cargo bench --bench replay`.

// A benchmark binary: a failed setup step should stop it with its location.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use edgetap::core::export::{CaptureWriter, FlowSynth, Format};
use edgetap::testing::tls_records::{certificate, handshake, hello, record};

fn generate(path: &Path, megabytes: u64, chain: &[Vec<u8>]) -> u64 {
    let client_hello = record(22, &hello(false));
    let server_flight = record(
        22,
        &[hello(true), certificate(chain), handshake(14, &[])].concat(),
    );
    let app: Vec<u8> = (0..4).flat_map(|_| record(23, &[0xab; 16384])).collect();
    let mut w = CaptureWriter::new(
        BufWriter::with_capacity(1 << 20, File::create(path).unwrap()),
        Format::PcapNg,
    )
    .unwrap();
    let target = megabytes * 1024 * 1024;
    let mut written = 0u64;
    let mut flow = 0u32;
    let mut t = Duration::from_secs(1_700_000_000);
    while written < target {
        flow += 1;
        let client = format!(
            "10.{}.{}.{}:{}",
            (flow >> 16) & 0xff,
            (flow >> 8) & 0xff,
            flow & 0xff,
            40000 + flow % 20000
        )
        .parse()
        .unwrap();
        let (mut synth, mut frames) = FlowSynth::open(
            client,
            "192.0.2.10:8443".parse().unwrap(),
            flow.wrapping_mul(7919),
        );
        frames.extend(synth.data(true, &client_hello));
        frames.extend(synth.data(false, &server_flight));
        frames.extend(synth.data(true, &record(20, &[1])));
        frames.extend(synth.data(false, &record(20, &[1])));
        frames.extend(synth.data(false, &app));
        frames.extend(synth.close(true, false));
        for f in frames {
            t += Duration::from_micros(10);
            written += f.bytes.len() as u64 + 32;
            w.frame(t, &f.bytes, None).unwrap();
        }
    }
    w.into_inner().unwrap();
    u64::from(flow)
}

fn edgetap_replay(path: &Path) -> (Duration, usize) {
    let t = Instant::now();
    let (_, observations) =
        edgetap::cmd::replay::read_all(&[path.to_path_buf()], &HashMap::new(), &Default::default());
    let chains = observations
        .iter()
        .filter(|o| !o.presented.is_empty())
        .count();
    (t.elapsed(), chains)
}

fn tshark(path: &Path) -> Option<(Duration, usize)> {
    let t = Instant::now();
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-Y",
            "tls.handshake.type==11",
            "-T",
            "fields",
            "-e",
            "tls.handshake.certificate",
        ])
        .output()
        .ok()?;
    Some((
        t.elapsed(),
        String::from_utf8_lossy(&out.stdout).lines().count(),
    ))
}

fn report(name: &str, path: &Path) {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    let (ours, our_chains) = edgetap_replay(path);
    let mbps = size / ours.as_secs_f64();
    print!(
        "  {name}: {size:.1} MB, edgetap {:.2} s = {mbps:.0} MB/s ({our_chains} chains)",
        ours.as_secs_f64()
    );
    match tshark(path) {
        Some((theirs, their_chains)) => println!(
            ", tshark {:.2} s = {:.1} MB/s ({their_chains} certificate messages): edgetap is {:.1}x faster",
            theirs.as_secs_f64(),
            size / theirs.as_secs_f64(),
            theirs.as_secs_f64() / ours.as_secs_f64()
        ),
        None => println!(", tshark not installed"),
    }
}

fn main() {
    let shared =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/captures/ppp__tls2.pcap");
    println!("replay benchmark (release, 2 cores)");
    if shared.exists() {
        report("ppp__tls2.pcap (largest shared capture)", &shared);
    }
    let mb: u64 = std::env::var("EDGETAP_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("generated-{mb}mb.pcapng"));
    if !path.exists() {
        #[allow(clippy::disallowed_methods)]
        let now = time::OffsetDateTime::now_utc();
        let root = edgetap::lab::pki::Ca::root("Bench Root", now).unwrap();
        let inter = root.intermediate("Bench Issuing CA", now).unwrap();
        let id = inter
            .identity(
                "expe.example.com",
                &["expe.example.com"],
                None,
                &[inter.der()],
                now,
            )
            .unwrap();
        let t = Instant::now();
        let flows = generate(&path, mb, &id.chain);
        println!(
            "  generated {} ({flows} TLS connections) in {:.1} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
    }
    report(&format!("generated {mb} MB"), &path);
}
