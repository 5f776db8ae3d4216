//! `edgetap inspect`: judge certificate chains from files, as if each were
//! presented in a handshake.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::common::AnalysisArgs;
use crate::core::observation::{Observation, Origin, ReferenceIdentity, Service, SourceKind};
use crate::input::certs as input;

/// Arguments of `edgetap inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Chain files, one per handshake: a PEM bundle (leaf first), one DER
    /// certificate, a PKCS#7 bundle (.p7b) or a PKCS#12 file (.p12/.pfx),
    /// recognised by content. Several files are analysed together, so
    /// cross-handshake rules can fire.
    #[arg(required_unless_present = "sample", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Analyse the bundled sample deployment (captures/samples) instead of files.
    #[arg(long, conflicts_with_all = ["files", "name", "edge_domain", "service"])]
    pub sample: bool,
    /// The name the client connects to: host name or IP literal (http, sip), or the
    /// XMPP domain (xmpp).
    #[arg(long, value_name = "NAME", required_unless_present = "sample")]
    pub name: Option<String>,
    /// What runs over TLS; decides which certificate fields carry the identity.
    #[arg(long, default_value = "http", value_parser = super::common::service_parser())]
    pub service: Service,
    /// The domain of the `_collab-edge` lookup, when these chains come from the MRA edge.
    #[arg(long, value_name = "DOMAIN")]
    pub edge_domain: Option<String>,
    /// Password of a PKCS#12 FILE (else asked for on the terminal). Only its
    /// certificates are read: the private key inside is never printed or kept.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "EDGETAP_PKCS12_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Trust, time and output flags.
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// The password for a PKCS#12 file: `--password`, else asked for on the
/// terminal (never echoed); with no terminal, say how to give it.
fn pkcs12_password(given: Option<&str>, file: &std::path::Path) -> Result<String, String> {
    use std::io::IsTerminal as _;
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    if !std::io::stdin().is_terminal() {
        return Err("pass its password with --password (or EDGETAP_PKCS12_PASSWORD); there is no terminal to ask on".into());
    }
    rpassword::prompt_password(format!("password for {}: ", file.display()))
        .map_err(|e| format!("cannot read the password from the terminal: {e}"))
}

/// One embedded sample handshake: (file name, PEM, name, service, edge domain).
type Sample = (
    &'static str,
    &'static [u8],
    &'static str,
    Service,
    Option<&'static str>,
);

/// The sample deployment of captures/samples, embedded so `--sample` works anywhere.
const SAMPLES: &[Sample] = &[
    (
        "expe-good.pem",
        include_bytes!("../../captures/samples/expe-good.pem"),
        "expe.example.com",
        Service::Http,
        Some("example.com"),
    ),
    (
        "expe-leaf-only.pem",
        include_bytes!("../../captures/samples/expe-leaf-only.pem"),
        "expe.example.com",
        Service::Http,
        Some("example.com"),
    ),
    (
        "cup-xmpp-host-only.pem",
        include_bytes!("../../captures/samples/cup-xmpp-host-only.pem"),
        "example.com",
        Service::Xmpp,
        None,
    ),
    (
        "cucm-tomcat-self-signed.pem",
        include_bytes!("../../captures/samples/cucm-tomcat-self-signed.pem"),
        "cucm.example.com",
        Service::Http,
        None,
    ),
    (
        "cucm-callmanager-self-signed.pem",
        include_bytes!("../../captures/samples/cucm-callmanager-self-signed.pem"),
        "cucm.example.com",
        Service::Sip,
        None,
    ),
];
const SAMPLE_ROOT: &[u8] = include_bytes!("../../captures/samples/example-root-ca.pem");
const SAMPLE_AT: time::OffsetDateTime = time::macros::datetime!(2026-06-01 00:00 UTC);

/// The observation of one chain from a file, as presented for `name`.
pub(crate) fn observation(
    presented: Vec<Vec<u8>>,
    name: &str,
    service: Service,
    edge_domain: Option<String>,
    locator: String,
    now: time::OffsetDateTime,
) -> Observation {
    let mut obs = Observation::new(
        service,
        ReferenceIdentity::parse(name),
        presented,
        Origin {
            kind: SourceKind::Inspect,
            at: Some(now),
            locator,
        },
    );
    obs.endpoint.host = Some(name.to_owned());
    obs.edge_domain = edge_domain;
    obs
}

/// Run `inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    if args.sample {
        return run_sample(args);
    }
    let engine = args.analysis.engine()?;
    let now = args.analysis.now();
    let name = args.name.as_deref().unwrap_or_default();
    let observations = args
        .files
        .iter()
        .map(|path| {
            let presented = input::load_certificates_with(path, &mut |file| {
                pkcs12_password(args.password.as_deref(), file)
            })?;
            Ok(observation(
                presented,
                name,
                args.service,
                args.edge_domain.clone(),
                path.display().to_string(),
                now,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut observations = observations;
    args.analysis.check_online_blocking(&mut observations)?;
    let report = engine.evaluate(&observations, now);
    args.analysis.emit(&report, now)
}

fn run_sample(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let mut analysis = args.analysis.clone();
    analysis.time.at = Some(args.analysis.time.at.unwrap_or(SAMPLE_AT));
    let now = analysis.now();
    let engine = analysis.engine_with_enterprise(sample_root()?)?;
    let observations = sample_observations(now)?;
    let report = engine.evaluate(&observations, now);
    analysis.emit(&report, now)
}

/// The sample deployment's root, the store its chains end in.
pub(crate) fn sample_root() -> anyhow::Result<crate::core::x509::TrustStore> {
    let root = input::parse_certificates(SAMPLE_ROOT, std::path::Path::new("example-root-ca.pem"))?;
    Ok(crate::core::x509::TrustStore::from_der_certs(
        root,
        crate::core::x509::StoreKind::Enterprise,
    )?)
}

/// The sample deployment's handshakes, observed at `now`.
pub(crate) fn sample_observations(
    now: time::OffsetDateTime,
) -> anyhow::Result<Vec<crate::core::observation::Observation>> {
    SAMPLES
        .iter()
        .map(|(file, pem, name, service, edge)| {
            let path = std::path::Path::new(file);
            let presented = input::parse_certificates(pem, path)?;
            Ok(observation(
                presented,
                name,
                *service,
                edge.map(str::to_owned),
                format!("captures/samples/{file}"),
                now,
            ))
        })
        .collect()
}
