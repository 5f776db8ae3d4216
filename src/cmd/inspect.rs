//! `edgetap inspect`: judge certificate chains from files, as if each were
//! presented in a handshake.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::common::AnalysisArgs;
use crate::core::observation::{
    Endpoint, Observation, Origin, ReferenceIdentity, Service, SourceKind, TlsParams,
};
use crate::input;

/// Arguments of `edgetap inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Chain files, one per handshake: a PEM bundle (leaf first) or one DER certificate.
    /// Several files are analysed together, so cross-handshake rules can fire.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The name the client connects to: host name or IP literal (http, sip), or the
    /// XMPP domain (xmpp).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// What runs over TLS; decides which certificate fields carry the identity.
    #[arg(long, default_value = "http", value_parser = parse_service)]
    pub service: Service,
    /// The domain of the `_collab-edge` lookup, when these chains come from the MRA edge.
    #[arg(long, value_name = "DOMAIN")]
    pub edge_domain: Option<String>,
    /// Trust, time and output flags.
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

fn parse_service(s: &str) -> Result<Service, String> {
    s.parse()
}

/// Run `inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let engine = args.analysis.engine()?;
    let now = args.analysis.now();
    let observations = args
        .files
        .iter()
        .map(|path| {
            let presented = input::load_certificates(path)?;
            Ok(Observation {
                endpoint: Endpoint {
                    host: Some(args.name.clone()),
                    ip: None,
                    port: None,
                },
                service: args.service,
                reference_identity: ReferenceIdentity::parse(&args.name),
                edge_domain: args.edge_domain.clone(),
                presented,
                tls: TlsParams::default(),
                origin: Origin {
                    kind: SourceKind::Inspect,
                    at: Some(now),
                    locator: path.display().to_string(),
                },
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = engine.evaluate(&observations, now);
    Ok(args.analysis.emit(&report, now))
}
