//! Flags every analysing command shares (trust stores, time, output, gate) and
//! the code that turns them into an engine and an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use time::OffsetDateTime;

use crate::clock::JudgeTime;
use crate::core::analysis::rules::DetectorConfig;
use crate::core::analysis::{Engine, Outcome, Report};
use crate::core::limits;
use crate::core::observation::{Observation, Service};
use crate::core::x509::{StoreKind, TrustStore};
use crate::input::certs as input;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A report for people; colour only on a terminal.
    Text,
    /// The JSON document (a contract for automation).
    Json,
    /// A self-contained HTML report (chain diagrams, verdicts, findings).
    Html,
}

/// The outcome that makes edgetap exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Any warning or worse (a handshake not judged included).
    Warn,
    /// Any handshake not judged (its chain unseen), prompt or failure.
    Unknown,
    /// Any prompt or failure.
    Prompt,
    /// Any failure.
    Fail,
}

impl FailOn {
    fn threshold(self) -> Outcome {
        match self {
            FailOn::Warn => Outcome::Warn,
            FailOn::Unknown => Outcome::Unknown,
            FailOn::Prompt => Outcome::Prompt,
            FailOn::Fail => Outcome::Fail,
        }
    }
}

/// The trust-store flags of every command that judges (`proxy` included).
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// Enterprise CA certificates (PEM bundle or DER), trusted by jabber and
    /// expressway-c only: 7800/8800 phones and TelePresence endpoints cannot add CAs.
    #[arg(long, value_name = "FILE")]
    pub trust: Vec<PathBuf>,
    /// Public roots trusted by every profile, instead of the bundled Mozilla set.
    #[arg(long, value_name = "FILE")]
    pub public_roots: Option<PathBuf>,
}

impl TrustArgs {
    /// The public and enterprise stores these flags name.
    pub fn stores(&self) -> anyhow::Result<(TrustStore, TrustStore)> {
        trust_stores(self.public_roots.as_deref(), &self.trust)
    }
}

/// The online revocation flags of every command that judges (`proxy` included).
#[derive(Debug, Clone, Copy, Args)]
pub struct OnlineArgs {
    /// Check revocation online, as the clients do: fetch each certificate's
    /// CRLs and ask its OCSP responders over HTTP (signatures, freshness and
    /// serial checked), and fetch a missing issuer from its caIssuers URL,
    /// once per URL for the whole run. Off by default: without it edgetap
    /// contacts no third party.
    #[arg(long)]
    pub online: bool,
    /// Seconds each online fetch may take (with --online; 1 to 600).
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = online_timeout)]
    pub online_timeout: u64,
}

impl OnlineArgs {
    /// The online checker these flags ask for, or none without `--online`.
    pub fn checker(&self) -> anyhow::Result<Option<crate::net::revocation::Online>> {
        if !self.online {
            return Ok(None);
        }
        Ok(Some(crate::net::revocation::Online::new(
            std::time::Duration::from_secs(self.online_timeout),
        )?))
    }
}

/// Trust, time and output flags.
#[derive(Debug, Clone, Args)]
pub struct AnalysisArgs {
    /// Which CAs each profile trusts.
    #[command(flatten)]
    pub stores: TrustArgs,
    /// When to judge, and how close an expiry warns.
    #[command(flatten)]
    pub time: TimeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit with status 1 when any profile's outcome is this bad or worse.
    #[arg(long, value_enum, value_name = "OUTCOME")]
    pub fail_on: Option<FailOn>,
    /// Also write the HTML report to FILE (one self-contained file to attach
    /// to a support case), whatever --format prints.
    #[arg(long, value_name = "FILE", value_parser = parse_report_path)]
    pub report: Option<PathBuf>,
    /// Online revocation checks.
    #[command(flatten)]
    pub revocation: OnlineArgs,
}

/// The time flags of every command that judges (`proxy` included).
#[derive(Debug, Clone, Copy, Args)]
pub struct TimeArgs {
    /// Judge as of this time (RFC 3339, e.g. 2026-01-31T12:00:00Z) instead of
    /// now: for fixed-date fixtures, or to see what next month's expiry does.
    #[arg(long, value_name = "RFC3339", value_parser = crate::core::timestamp::parse_time)]
    pub at: Option<OffsetDateTime>,
    /// Warn about certificates expiring within this many days (0 to 3650).
    #[arg(long, value_name = "DAYS", default_value_t = 30, value_parser = expiry_warn_days)]
    pub expiry_warn_days: i64,
}

impl TimeArgs {
    /// When verdicts are judged: `--at`, else the clock.
    pub fn judge_time(&self) -> JudgeTime {
        JudgeTime::from_flag(self.at)
    }

    /// The rule settings these flags decide.
    pub fn detector_config(&self) -> DetectorConfig {
        DetectorConfig {
            expiry_warn_days: self.expiry_warn_days,
        }
    }
}

impl AnalysisArgs {
    /// The analysis time: `--at`, else the clock.
    pub fn now(&self) -> OffsetDateTime {
        self.time.judge_time().now()
    }

    /// Load the trust stores and build the engine.
    pub fn engine(&self) -> anyhow::Result<Engine> {
        self.engine_with_enterprise(TrustStore::default())
    }

    /// As [`Self::engine`], with `extra` added to the enterprise store.
    pub fn engine_with_enterprise(&self, extra: TrustStore) -> anyhow::Result<Engine> {
        let (public, enterprise) = self.stores.stores()?;
        Ok(Engine::new(
            public,
            extra.union(&enterprise),
            self.time.detector_config(),
        ))
    }

    /// With `--online`: put the CRL and OCSP answers (and any issuer fetched
    /// from a caIssuers URL) on the observations before they are judged. The
    /// answers are fetched now, so their freshness is judged at the clock,
    /// whatever `--at` says.
    pub async fn check_online(&self, observations: &mut [Observation]) -> anyhow::Result<()> {
        let now = crate::clock::now();
        let Some(online) = self.revocation.checker()? else {
            return Ok(());
        };
        let (public, enterprise) = self.stores.stores()?;
        online
            .check_all(observations, &public.union(&enterprise), now)
            .await;
        Ok(())
    }

    /// [`Self::check_online`] for the commands that run without a runtime.
    pub fn check_online_blocking(&self, observations: &mut [Observation]) -> anyhow::Result<()> {
        if !self.revocation.online {
            return Ok(());
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(self.check_online(observations))
    }

    /// Print the report in the chosen format, write `--report`, and compute
    /// the exit code.
    pub fn emit(&self, report: &Report, now: OffsetDateTime) -> anyhow::Result<ExitCode> {
        if let Some(path) = &self.report {
            write_report(path, report, now)?;
        }
        Ok(emit(report, now, self.format, self.fail_on))
    }
}

/// Write the HTML report of `report` to `path` (whole or not at all: a
/// temporary file beside it, renamed).
pub fn write_report(
    path: &std::path::Path,
    report: &Report,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    crate::sink::write_whole(path, crate::sink::html::render(report, now).as_bytes())
        .with_context(|| format!("{}: cannot write the HTML report", path.display()))
}

/// `--report FILE`: refused at once when its folder does not exist, before
/// any work is done.
fn parse_report_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    if s.is_empty() || path.is_dir() {
        return Err(format!(
            "{s:?} is not a file name: give the HTML file to write, e.g. report.html"
        ));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent
        && !dir.is_dir()
    {
        return Err(format!(
            "{}: no such folder; create it first or write the report elsewhere",
            dir.display()
        ));
    }
    Ok(path)
}

/// `--timeout`: seconds for one step, in [`limits::TIMEOUT_SECS`].
pub fn timeout_secs(s: &str) -> Result<f64, String> {
    limits::TIMEOUT_SECS.parse(s)
}

/// `--dns-timeout`: seconds for one DNS answer, in [`limits::DNS_TIMEOUT_SECS`].
pub fn dns_timeout_secs(s: &str) -> Result<f64, String> {
    limits::DNS_TIMEOUT_SECS.parse(s)
}

/// `--concurrency`, in [`limits::CONCURRENCY`].
pub fn concurrency(s: &str) -> Result<usize, String> {
    limits::CONCURRENCY.parse_whole(s).map(|n| n as usize)
}

/// `--pcap-max-mb`, in [`limits::PCAP_MAX_MB`].
pub fn pcap_max_mb(s: &str) -> Result<u64, String> {
    limits::PCAP_MAX_MB.parse_whole(s)
}

fn online_timeout(s: &str) -> Result<u64, String> {
    limits::ONLINE_TIMEOUT_SECS.parse_whole(s)
}

fn expiry_warn_days(s: &str) -> Result<i64, String> {
    limits::EXPIRY_WARN_DAYS.parse_whole(s).map(|n| n as i64)
}

/// Print `report` as `format`; exit 1 when `fail_on` is reached.
pub fn emit(
    report: &Report,
    now: OffsetDateTime,
    format: Format,
    fail_on: Option<FailOn>,
) -> ExitCode {
    match format {
        Format::Json => crate::sink::json::print(report, now),
        Format::Html => crate::outln!("{}", crate::sink::html::render(report, now)),
        Format::Text => {
            use std::io::Write as _;
            let mut stdout = anstream::stdout();
            let _ = stdout.write_all(crate::sink::text::render(report, now).as_bytes());
        }
    }
    match fail_on {
        Some(gate) if report.worst() >= gate.threshold() => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

/// The two trust stores from `--public-roots` (else the bundled Mozilla set) and
/// `--trust` files, for every command that judges (`proxy` included).
pub fn trust_stores(
    public_roots: Option<&std::path::Path>,
    trust: &[PathBuf],
) -> anyhow::Result<(TrustStore, TrustStore)> {
    let public = match public_roots {
        None => TrustStore::bundled_public_roots(),
        Some(path) => load_store(path, StoreKind::Public)?,
    };
    let mut enterprise = TrustStore::default();
    for path in trust {
        enterprise = enterprise.union(&load_store(path, StoreKind::Enterprise)?);
    }
    Ok((public, enterprise))
}

fn load_store(path: &std::path::Path, kind: StoreKind) -> anyhow::Result<TrustStore> {
    let certs = input::load_certificates(path)?;
    TrustStore::from_der_certs(certs, kind)
        .with_context(|| format!("{}: cannot use as a trust store", path.display()))
}

/// `--service`: http, xmpp or sip, listed as such in `--help` and completions.
pub fn service_parser() -> impl clap::builder::TypedValueParser<Value = Service> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["http", "xmpp", "sip"])
        // The value was one of the three: it parses.
        .map(|s| s.parse::<Service>().unwrap_or(Service::Http))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ok < warn < unknown < prompt < fail: a handshake not judged reaches
    /// `--fail-on warn` and `--fail-on unknown`, not `--fail-on prompt`.
    #[test]
    fn fail_on_orders_unknown_between_warn_and_prompt() {
        let unknown = Outcome::Unknown;
        assert!(unknown >= FailOn::Warn.threshold());
        assert!(unknown >= FailOn::Unknown.threshold());
        assert!(unknown < FailOn::Prompt.threshold());
        assert!(Outcome::Warn < FailOn::Unknown.threshold());
    }
}
