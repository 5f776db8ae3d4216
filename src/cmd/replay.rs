//! `edgetap replay`: judge the handshakes in recorded captures with the same
//! engine, as if edgetap had been inline when they were taken.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::common::AnalysisArgs;
use crate::core::analysis::engine::DnsReport;
use crate::core::capture::CaptureFileReport;
use crate::core::capture::dns::give_context;
use crate::core::capture::observe::{forged_by_edgetap, observation};
use crate::core::capture::replay::Replay;
use crate::core::discovery::SrvKind;
use crate::core::observation::{Observation, Service};
use crate::core::tls::keylog::KeyLog;
use crate::input::capture::{CaptureError, Item, ReadSummary, read_capture};

/// Arguments of `edgetap replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Capture files: pcap or pcapng, optionally gzipped.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Treat a server port as a service, e.g. 15222=xmpp (repeatable). Defaults:
    /// 5222/5223/5269 xmpp, 5061 sip, anything else http.
    #[arg(long = "service-map", value_name = "PORT=SERVICE", value_parser = parse_mapping)]
    pub service_map: Vec<(u16, Service)>,
    /// The `_collab-edge` domain the clients in the capture looked up: HTTPS
    /// handshakes are judged as edge connections for it (edge.domain-san-missing).
    #[arg(long, value_name = "DOMAIN")]
    pub edge_domain: Option<String>,
    /// TLS key log (SSLKEYLOGFILE format, as curl, browsers, `openssl
    /// s_client -keylogfile` and Wireshark write it) to decrypt TLS 1.3
    /// handshakes and read their certificates; repeatable. Keys a pcapng
    /// carries in a Decryption Secrets Block are used as well.
    #[arg(long, value_name = "FILE")]
    pub keylog: Vec<PathBuf>,
    /// Trust, time and output flags.
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// Read the key log files given with `--keylog`, once, into one key log; an
/// unreadable file, or one with no key log line at all, is an input error.
pub fn read_keylogs(files: &[PathBuf]) -> anyhow::Result<KeyLog> {
    let mut keys = KeyLog::new();
    for path in files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{name}: cannot read the key log: {e}"))?;
        let before = keys.lines;
        keys.add(&text, &format!("--keylog {name}"));
        if keys.lines == before {
            anyhow::bail!(
                "{name}: not a TLS key log (no line like `SERVER_HANDSHAKE_TRAFFIC_SECRET <client random> <secret>`); write one with SSLKEYLOGFILE=FILE or `openssl s_client -keylogfile FILE`"
            );
        }
    }
    Ok(keys)
}

fn parse_mapping(s: &str) -> Result<(u16, Service), String> {
    let (port, service) = s
        .split_once('=')
        .ok_or("use PORT=SERVICE, e.g. 15222=xmpp")?;
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    Ok((port, service.parse()?))
}

/// Read every file; one report entry per file, one observation per handshake,
/// in the order given. Files are read in parallel (rayon's pool).
pub fn read_all(
    files: &[PathBuf],
    services: &HashMap<u16, Service>,
    keys: &KeyLog,
) -> (Vec<CaptureFileReport>, Vec<Observation>) {
    use rayon::prelude::*;
    let bars = indicatif::MultiProgress::new();
    let done: Vec<FileRead> = files
        .par_iter()
        .map(|path| read_one(path, services, keys, &bars))
        .collect();
    let mut reports = Vec::new();
    let mut observations = Vec::new();
    for (report, obs) in done {
        reports.push(report);
        observations.extend(obs);
    }
    (reports, observations)
}

/// One file's report entry and handshakes.
pub type FileRead = (CaptureFileReport, Vec<Observation>);

/// One file: its report entry and its handshakes.
fn read_one(
    path: &std::path::Path,
    services: &HashMap<u16, Service>,
    keys: &KeyLog,
    bars: &indicatif::MultiProgress,
) -> FileRead {
    use std::io::IsTerminal as _;
    let name = path.display().to_string();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = (std::io::stderr().is_terminal() && size > 32 * 1024 * 1024).then(|| {
        let bar = bars.add(indicatif::ProgressBar::new(size));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(name.clone());
        bar
    });
    let tick = bar.clone();
    let progress: Box<dyn FnMut(u64) + Send> = Box::new(move |n| {
        if let Some(b) = &tick {
            b.inc(n);
        }
    });
    let read = capture_report(&name, services, keys, |on| read_capture(path, progress, on));
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    read
}

/// One capture's report entry and handshakes, from whatever `read` reads (a
/// file for `replay`, bytes for the capture fuzz target, so the fuzzer runs
/// exactly what `replay` runs): frames into the replay, embedded key logs
/// counted, then the captured DNS, the statistics and one observation per
/// handshake with the DNS context the capture shows.
pub fn capture_report(
    name: &str,
    services: &HashMap<u16, Service>,
    keys: &KeyLog,
    read: impl FnOnce(&mut dyn FnMut(Item<'_>)) -> Result<ReadSummary, CaptureError>,
) -> FileRead {
    let mut observations = Vec::new();
    let mut replay = Replay::with_keys(keys.clone());
    let mut embedded = 0;
    let result = read(&mut |item| match item {
        Item::Frame {
            number,
            time,
            linktype,
            data,
        } => replay.frame(number, time, linktype, data),
        Item::TlsKeys(text) => {
            embedded += replay.add_keys(text, "the capture's Decryption Secrets Block");
        }
    });
    let mut report = CaptureFileReport {
        file: name.to_owned(),
        ..CaptureFileReport::default()
    };
    match result {
        Err(e) => {
            report.error = Some(e.to_string());
            return (report, observations);
        }
        Ok(summary) => {
            report.format = summary.format;
            report.truncated = summary.truncated;
        }
    }
    let dns = replay.take_dns();
    let (connections, stats) = replay.finish();
    report.dns_responses = dns.responses;
    report.discoveries = dns.discoveries(name);
    report.dns_domains = report
        .discoveries
        .iter()
        .map(|c| c.discovery.domain.clone())
        .collect();
    report.stats = stats;
    report.tls_handshakes = connections.len();
    report.embedded_secrets = embedded;
    report.tls13_handshakes = connections
        .iter()
        .filter(|c| c.server_hello.is_some_and(|sh| sh.version == 0x0304))
        .count();
    report.decrypted = connections
        .iter()
        .filter(|c| c.decryption.as_ref().is_some_and(|d| d.decrypted))
        .count();
    // Chains sent in the capture: a resumed handshake's is its full one's.
    report.chains = connections
        .iter()
        .filter(|c| c.resumed.is_none())
        .filter(|c| c.certificates.as_ref().is_some_and(|m| !m.certs.is_empty()))
        .count();
    // One observation per handshake, on every core (a capture holds
    // thousands), but for edgetap's own intercept legs.
    let discoveries = &report.discoveries;
    let built = crate::core::parallel::map_in_parallel(connections.iter().collect(), |c| {
        (!forged_by_edgetap(c)).then(|| {
            let mut obs = observation(c, name, services);
            give_context(&mut obs, discoveries);
            obs
        })
    });
    for (c, obs) in connections.iter().zip(built) {
        let Some(obs) = obs else {
            report.intercept_legs += 1;
            continue;
        };
        if !c.damage.is_empty() {
            report.damaged.push(format!(
                "stream {} {} -> {}: {}",
                c.stream,
                c.client,
                c.server,
                c.damage.join("; ")
            ));
        }
        observations.push(obs);
    }
    (report, observations)
}

/// Read and judge captures as `replay` does: the handshakes with the DNS
/// context the files show (or `edge_domain`), the captured DNS judged, and the
/// errors of files that could not be read (an error when none could).
/// `prepare` sees the observations before they are judged (`--online` there).
pub fn analyse(
    engine: &crate::core::analysis::Engine,
    now: time::OffsetDateTime,
    files: &[PathBuf],
    services: &HashMap<u16, Service>,
    keys: &KeyLog,
    edge_domain: Option<&str>,
    prepare: impl FnOnce(&mut [Observation]) -> anyhow::Result<()>,
) -> anyhow::Result<(crate::core::analysis::Report, Vec<String>)> {
    let (files, mut observations) = read_all(files, services, keys);
    if let Some(domain) = edge_domain {
        for obs in observations
            .iter_mut()
            .filter(|o| o.service == Service::Http && o.edge_domain.is_none())
        {
            obs.edge_domain = Some(domain.to_owned());
            obs.origin.locator += "; edge domain from --edge-domain";
        }
    }
    let unreadable: Vec<String> = files.iter().filter_map(|f| f.error.clone()).collect();
    if unreadable.len() == files.len() {
        anyhow::bail!("{}", unreadable.join("\n"));
    }
    prepare(&mut observations)?;
    let mut report = engine.evaluate(&observations, now);
    // The DNS a client in the capture saw, judged as discover judges it (only
    // what the answers decide: whether the client stood outside is unknown).
    report.dns = files
        .iter()
        .flat_map(|f| &f.discoveries)
        .find(|c| c.discovery.lookup(SrvKind::CollabEdge).is_some())
        .or_else(|| files.iter().flat_map(|f| &f.discoveries).next())
        .map(|c| DnsReport::judge(c.discovery.clone(), false));
    if report.handshakes.is_empty() {
        report.fell_short(no_handshake_reason(&files));
    }
    report.capture = Some(files);
    Ok((report, unreadable))
}

/// Why a replay judged nothing: how much was read, and where a capture broke.
fn no_handshake_reason(files: &[CaptureFileReport]) -> String {
    let frames: u64 = files.iter().map(|f| f.stats.frames).sum();
    let read = format!("{} read", crate::sink::count(frames, "frame"));
    match files.iter().find_map(|f| f.truncated.as_deref()) {
        Some(cut) => format!("no TLS handshake was seen ({read}; {cut})"),
        None => format!("no TLS handshake was seen in the capture ({read})"),
    }
}

/// Run `replay`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let engine = args.analysis.engine()?;
    let now = args.analysis.now();
    let services: HashMap<u16, Service> = args.service_map.iter().copied().collect();
    let keys = read_keylogs(&args.keylog)?;
    let (report, unreadable) = analyse(
        &engine,
        now,
        &args.files,
        &services,
        &keys,
        args.edge_domain.as_deref(),
        |observations| args.analysis.check_online_blocking(observations),
    )?;
    let code = args.analysis.emit(&report, now)?;
    // The files that could be read are reported; one that could not is still
    // an input error (exit 2), said on stderr.
    if !unreadable.is_empty() {
        for e in &unreadable {
            eprintln!("edgetap: error: {e}");
        }
        return Ok(ExitCode::from(2));
    }
    Ok(code)
}
