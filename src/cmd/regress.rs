//! `edgetap regress`: run suites of expected handshake verdicts (after a
//! certificate renewal, an Expressway upgrade, a DNS change, or over the
//! captures of the last incident) and fail on the first difference: per case a
//! precise diff, JUnit for CI, a baseline that catches drift.
//!
//! Cases run through the same sources as the other commands (`probe`'s plan,
//! `replay`'s analysis, `inspect`'s chains) and the one engine; live cases run
//! concurrently, bounded, each step timed out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::common::Format;
use crate::core::analysis::engine::DnsReport;
use crate::core::analysis::rules::DetectorConfig;
use crate::core::analysis::{Engine, Report};
use crate::core::regress::baseline::{self, Baseline};
use crate::core::regress::check::{Kind, Mismatch, check};
use crate::core::regress::suite::{self, Case, Input, Suite};

/// Arguments of `edgetap regress`.
#[derive(Debug, Args)]
pub struct RegressArgs {
    /// Suite files (TOML; see configs/regress-samples.toml).
    #[arg(required = true, value_name = "SUITE")]
    pub suites: Vec<PathBuf>,
    /// Also write the results as JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Run only the cases whose name contains this text.
    #[arg(long, value_name = "NAME")]
    pub filter: Option<String>,
    /// Record what this run saw (chains, findings, outcomes) as a baseline.
    #[arg(long, value_name = "BASELINE", conflicts_with = "baseline")]
    pub record: Option<PathBuf>,
    /// Report drift from a baseline recorded earlier with --record.
    #[arg(long, value_name = "BASELINE")]
    pub baseline: Option<PathBuf>,
    /// Cases run at once (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = super::common::concurrency)]
    pub concurrency: usize,
}

/// One case's result.
#[derive(Debug, Serialize)]
struct CaseResult {
    name: String,
    line: usize,
    input: &'static str,
    passed: bool,
    handshakes: usize,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    failures: Vec<Mismatch>,
    #[serde(skip)]
    seen: Vec<baseline::Seen>,
}

#[derive(Debug, Serialize)]
struct SuiteResult {
    file: String,
    cases: Vec<CaseResult>,
}

#[derive(Debug, Serialize)]
struct RunResult {
    suites: Vec<SuiteResult>,
    passed: usize,
    failed: usize,
}

fn input_kind(i: &Input) -> &'static str {
    match i {
        Input::Domain(_) => "domain",
        Input::Probe { .. } => "probe",
        Input::Capture { .. } => "capture",
        Input::Chains { .. } => "chains",
    }
}

/// Read and check one suite file: parse errors and files that do not exist
/// name the suite file and line.
fn load(path: &Path) -> anyhow::Result<Suite> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{name}: cannot read the suite: {e}"))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let suite = suite::parse(&name, &text, base)?;
    for f in suite.public_roots.iter().chain(&suite.trust) {
        if !f.exists() {
            anyhow::bail!("{name}: trust file {} does not exist", f.display());
        }
    }
    for case in &suite.cases {
        for f in case.input.files() {
            if !f.exists() {
                anyhow::bail!(
                    "{name}:{}: case {:?}: {} does not exist (paths are relative to the suite file)",
                    case.line,
                    case.name,
                    f.display()
                );
            }
        }
    }
    Ok(suite)
}

/// The report one case's input gives.
async fn run_case(suite: &Suite, engine: &Engine, case: &Case) -> anyhow::Result<Report> {
    let now = crate::clock::JudgeTime::from_flag(suite.at).now();
    match &case.input {
        Input::Chains {
            files,
            host,
            service,
            edge_domain,
        } => {
            let observations = files
                .iter()
                .map(|path| {
                    let presented = crate::input::certs::load_certificates(path)?;
                    Ok(super::inspect::observation(
                        presented,
                        host,
                        *service,
                        edge_domain.clone(),
                        path.display().to_string(),
                        now,
                    ))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(engine.evaluate(&observations, now))
        }
        Input::Capture {
            file,
            keylog,
            edge_domain,
            service_map,
        } => {
            let keys = super::replay::read_keylogs(keylog.as_slice())?;
            let services: HashMap<_, _> = service_map.iter().copied().collect();
            let (report, unreadable) = super::replay::analyse(
                engine,
                now,
                std::slice::from_ref(file),
                &services,
                &keys,
                edge_domain.as_deref(),
                |_| Ok(()),
            )?;
            if let Some(e) = unreadable.first() {
                anyhow::bail!("{e}");
            }
            Ok(report)
        }
        Input::Domain(_) | Input::Probe { .. } => {
            let dns = crate::net::resolve::Dns::new(suite.nameserver.as_slice(), suite.timeout)?;
            let (target, service, domain, address) = match &case.input {
                Input::Probe {
                    target,
                    service,
                    domain,
                    address,
                } => (target.as_str(), *service, domain.as_deref(), *address),
                Input::Domain(d) => (d.as_str(), None, None, None),
                _ => unreachable!("matched above"),
            };
            let (discovery, targets) =
                super::probe::targets(&dns, target, service, domain, address).await?;
            let timeouts = crate::net::probe::Timeouts {
                connect: suite.timeout,
                starttls: suite.timeout,
                handshake: suite.timeout * 2,
            };
            let (probed, interrupted) =
                super::probe::probe_all_recorded(&targets, timeouts, now, 8, false).await;
            let observations: Vec<_> = probed.into_iter().map(|(o, _)| o).collect();
            let mut report = engine.evaluate(&observations, now);
            report.dns = discovery.map(|d| DnsReport::judge(d, true));
            if let Some(why) = interrupted {
                report.fell_short(why);
            }
            Ok(report)
        }
    }
}

/// A finished case: suite and case index, its report or why it has none,
/// and how long it took.
type Finished = (usize, usize, Result<Report, String>, f64);

/// Run `regress`.
pub async fn run(args: &RegressArgs) -> anyhow::Result<ExitCode> {
    let suites: Vec<Suite> = args
        .suites
        .iter()
        .map(|p| load(p))
        .collect::<anyhow::Result<_>>()?;
    let mut names: Vec<String> = args.suites.iter().map(|p| file_name_of(p)).collect();
    names.sort();
    let version = env!("CARGO_PKG_VERSION");
    let base = match &args.baseline {
        None => None,
        Some(path) => Some(read_baseline(path, &names, version)?),
    };
    let done = run_cases(args, &suites).await?;
    let (run, kept) = results(args, &suites, done, base.as_ref());
    if let Some(path) = &args.record {
        let mut b = Baseline::new(names.clone(), version);
        for (s, path_s) in run.suites.iter().zip(&args.suites) {
            let cases = b.cases.entry(file_name_of(path_s)).or_default();
            for c in s.cases.iter().filter(|c| c.error.is_none()) {
                cases.insert(c.name.clone(), c.seen.clone());
            }
        }
        crate::sink::write_whole(path, serde_json::to_string_pretty(&b)?.as_bytes())?;
    }
    if let Some(path) = &args.junit {
        write_junit(path, &run)?;
    }
    match args.format {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&run)?),
        Format::Text => crate::outln!("{}", text(&run)),
        Format::Html => crate::outln!("{}", html(&run, &suites, &kept)),
    }
    let no_handshake = run
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .flat_map(|c| &c.failures)
        .any(|m| m.kind == Kind::NoHandshake);
    Ok(if no_handshake {
        // The suite selects what its input does not show: the suite is wrong.
        ExitCode::from(2)
    } else if run.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The baseline at `path`, refused when it was recorded for other suites or
/// another version.
fn read_baseline(path: &Path, names: &[String], version: &str) -> anyhow::Result<Baseline> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the baseline", path.display()))?;
    let b: Baseline = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not an edgetap baseline ({e}); record one with --record",
            path.display()
        )
    })?;
    if let Some(why) = b.refuse(names, version) {
        anyhow::bail!("{}: {why}", path.display());
    }
    Ok(b)
}

/// Every selected case run, `--concurrency` at a time, each bounded in
/// time; in suite and case order.
async fn run_cases(args: &RegressArgs, suites: &[Suite]) -> anyhow::Result<Vec<Finished>> {
    let gate = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (si, suite) in suites.iter().enumerate() {
        let (public, enterprise) =
            super::common::trust_stores(suite.public_roots.as_deref(), &suite.trust)?;
        let engine = Arc::new(Engine::new(public, enterprise, DetectorConfig::default()));
        let suite = Arc::new(suite.clone());
        for (ci, case) in suite.cases.iter().enumerate() {
            if args
                .filter
                .as_ref()
                .is_some_and(|f| !case.name.contains(f.as_str()))
            {
                continue;
            }
            let (gate, engine, suite) = (gate.clone(), engine.clone(), suite.clone());
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let case = &suite.cases[ci];
                let started = Instant::now();
                // Every step of a live case has its own timeout; this bounds the whole.
                let limit = suite.timeout * 12 + Duration::from_secs(5);
                let report =
                    match tokio::time::timeout(limit, run_case(&suite, &engine, case)).await {
                        Ok(r) => r.map_err(|e| format!("{e:#}")),
                        Err(_) => Err(format!(
                            "the case did not finish within {} s",
                            limit.as_secs()
                        )),
                    };
                (si, ci, report, started.elapsed().as_secs_f64())
            });
        }
    }
    let mut done: Vec<Finished> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        done.push(r.context("a case panicked")?);
    }
    done.sort_by_key(|(s, c, _, _)| (*s, *c));
    Ok(done)
}

/// Each finished case checked against its expectations (and the baseline's
/// drift); the reports kept beside their results for the HTML page.
fn results(
    args: &RegressArgs,
    suites: &[Suite],
    done: Vec<Finished>,
    base: Option<&Baseline>,
) -> (RunResult, Vec<(usize, usize, Option<Report>)>) {
    let mut results: Vec<SuiteResult> = suites
        .iter()
        .map(|s| SuiteResult {
            file: s.file.clone(),
            cases: Vec::new(),
        })
        .collect();
    let mut kept: Vec<(usize, usize, Option<Report>)> = Vec::new();
    for (si, ci, report, seconds) in done {
        let case = &suites[si].cases[ci];
        let suite_name = &file_name_of(&args.suites[si]);
        let (error, mut failures, seen, handshakes) = match report {
            Err(e) => (Some(e), Vec::new(), Vec::new(), 0),
            Ok(report) => {
                let seen = baseline::seen(&report);
                let mut f = check(case, &report);
                if let Some(b) = base {
                    f.extend(b.drift(suite_name, &case.name, &seen));
                }
                let n = report.handshakes.len();
                if args.format == Format::Html {
                    kept.push((si, ci, Some(report)));
                }
                (None, f, seen, n)
            }
        };
        failures.sort_by_key(|m| (m.kind.is_drift(), m.line));
        results[si].cases.push(CaseResult {
            name: case.name.clone(),
            line: case.line,
            input: input_kind(&case.input),
            passed: error.is_none() && failures.is_empty(),
            handshakes,
            seconds,
            error,
            failures,
            seen,
        });
    }
    let passed = results
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| c.passed)
        .count();
    let failed = results.iter().flat_map(|s| &s.cases).count() - passed;
    let run = RunResult {
        suites: results,
        passed,
        failed,
    };
    (run, kept)
}

/// The run as JUnit XML at `path`, for CI dashboards.
fn write_junit(path: &Path, run: &RunResult) -> anyhow::Result<()> {
    let suites: Vec<crate::sink::junit::TestSuite<'_>> = run
        .suites
        .iter()
        .map(|s| crate::sink::junit::TestSuite {
            name: &s.file,
            cases: s
                .cases
                .iter()
                .map(|c| crate::sink::junit::TestCase {
                    name: &c.name,
                    seconds: c.seconds,
                    failures: c
                        .failures
                        .iter()
                        .map(|m| (m.kind.as_str(), describe(m)))
                        .collect(),
                    error: c.error.clone(),
                })
                .collect(),
        })
        .collect();
    crate::sink::write_whole(path, crate::sink::junit::render(&suites).as_bytes())?;
    Ok(())
}

/// A path's file name (the whole path when it has none). Baselines name
/// suites by it, so that a baseline holds wherever the suite is run from.
fn file_name_of(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One line for a difference: where, then what.
/// The run as one HTML page: every case with what did not hold, then its report.
fn html(run: &RunResult, suites: &[Suite], kept: &[(usize, usize, Option<Report>)]) -> String {
    let now = crate::clock::now();
    let mut cases = Vec::new();
    for (si, s) in run.suites.iter().enumerate() {
        let at = crate::clock::JudgeTime::from_flag(suites[si].at).now();
        for c in &s.cases {
            let report = kept
                .iter()
                .find(|(ks, kc, _)| *ks == si && suites[si].cases[*kc].name == c.name)
                .and_then(|(_, _, r)| r.as_ref())
                .map(|r| (r, at));
            let mut problems: Vec<String> = c.error.iter().map(|e| format!("error: {e}")).collect();
            problems.extend(
                c.failures
                    .iter()
                    .map(|m| format!("{}: {}", m.kind.as_str(), describe(m))),
            );
            cases.push(crate::sink::html::RegressCase {
                suite: &s.file,
                name: &c.name,
                passed: c.passed,
                problems,
                report,
            });
        }
    }
    crate::sink::html::render_regress(&cases, now)
}

fn describe(m: &Mismatch) -> String {
    let mut s = String::new();
    if let Some(l) = m.line {
        s += &format!("line {l}: ");
    }
    if let Some(h) = &m.handshake {
        s += &format!("{h}: ");
    }
    s += &m.message;
    match (&m.expected, &m.got) {
        (Some(e), Some(g)) if m.kind == Kind::NoHandshake || m.kind.is_drift() => {
            s += &format!(" (expected {e}; got {g})");
        }
        _ => {}
    }
    s
}

fn text(run: &RunResult) -> String {
    use crate::sink::printable as pr;
    let mut out = String::new();
    for s in &run.suites {
        out += &format!("{}\n", pr(&s.file));
        for c in &s.cases {
            let n = if c.handshakes == 1 {
                "handshake"
            } else {
                "handshakes"
            };
            if c.passed {
                out += &format!("  pass  {} ({} {n})\n", pr(&c.name), c.handshakes);
                continue;
            }
            out += &format!("  FAIL  {} ({} {n})\n", pr(&c.name), c.handshakes);
            if let Some(e) = &c.error {
                out += &format!("        error: {}\n", pr(e));
            }
            for m in &c.failures {
                out += &format!("        {:<20} {}\n", m.kind.as_str(), pr(&describe(m)));
            }
        }
    }
    out += &format!("{} passed, {} failed", run.passed, run.failed);
    out
}
