//! `edgetap discover`: the SRV records a Jabber client would find for a domain.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::common::{FailOn, Format};
use crate::core::analysis::Report;
use crate::core::analysis::engine::DnsReport;
use crate::core::hostport::parse_nameserver;
use crate::net::resolve::Dns;

/// DNS flags shared by discover and probe.
#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// Ask this nameserver (IP or IP:PORT; repeatable) instead of the system resolver.
    #[arg(long = "nameserver", value_name = "IP[:PORT]", value_parser = parse_nameserver)]
    pub nameservers: Vec<SocketAddr>,
    /// Seconds to wait for each DNS answer (0.1 to 60); a look-up gives up
    /// after two (two attempts).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = super::common::dns_timeout_secs)]
    pub dns_timeout: f64,
    /// The resolver is inside the enterprise: internal SRV records answering is expected.
    #[arg(long)]
    pub inside: bool,
}

impl DnsArgs {
    /// The resolver these flags describe.
    pub fn resolver(&self) -> anyhow::Result<Dns> {
        let timeout = Duration::from_secs_f64(self.dns_timeout);
        Ok(Dns::new(&self.nameservers, timeout)?)
    }
}

/// Arguments of `edgetap discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// The domain users sign in with (the part after @ in user@example.com).
    pub domain: String,
    /// DNS flags.
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit with status 1 when any profile's outcome is this bad or worse.
    #[arg(long, value_enum, value_name = "OUTCOME")]
    pub fail_on: Option<FailOn>,
}

/// Run `discover`.
pub async fn run(args: &DiscoverArgs) -> anyhow::Result<ExitCode> {
    let domain = crate::core::hostport::domain_name(&args.domain)
        .map_err(|e| anyhow::anyhow!("discover {e}"))?;
    let dns = args.dns.resolver()?;
    let discovery = dns.discover(&domain).await;
    let report = Report {
        dns: Some(DnsReport::judge(discovery, !args.dns.inside)),
        capture: None,
        handshakes: Vec::new(),
        not_examined: None,
    };
    let now = crate::clock::now();
    Ok(super::common::emit(&report, now, args.format, args.fail_on))
}
