//! DNS through hickory-resolver: the system configuration or given nameservers,
//! with bounded timeouts, turned into the core's [`Discovery`] values.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use thiserror::Error;

use crate::core::discovery::{
    Discovery, ResolvedTarget, SrvAnswer, SrvKind, SrvLookup, SrvRecord, order_srv,
};

/// Why a resolver could not be set up.
#[derive(Debug, Error)]
pub enum ResolverError {
    /// The system configuration (resolv.conf) could not be read.
    #[error("cannot read the system resolver configuration ({0}); give --nameserver IP[:PORT]")]
    SystemConfig(String),
    /// A `--nameserver` value (or a config's `nameservers` entry) is not an address.
    #[error("--nameserver {0}")]
    BadNameserver(String),
}

/// A resolver and a label saying which one it is.
pub struct Dns {
    resolver: TokioResolver,
    /// The first nameserver asked (for the DNS answers written to a capture).
    pub nameserver: Option<IpAddr>,
    /// "system" or the nameservers used.
    pub label: String,
    /// The most one look-up may take, whatever the resolver does inside
    /// (attempts, UDP then TCP, several nameservers): two timeouts.
    deadline: Duration,
}

impl Dns {
    /// A resolver using `nameservers`, or the system configuration when empty.
    /// Each query waits at most `timeout` per attempt, two attempts, and no
    /// look-up takes longer than two `timeout`s in all.
    pub fn new(nameservers: &[SocketAddr], timeout: Duration) -> Result<Dns, ResolverError> {
        let provider = TokioRuntimeProvider::default();
        let nameserver = match nameservers.first() {
            Some(ns) => Some(ns.ip()),
            None => hickory_resolver::system_conf::read_system_conf()
                .ok()
                .and_then(|(config, _)| config.name_servers().first().map(|ns| ns.ip)),
        };
        let (mut builder, label) = if nameservers.is_empty() {
            let builder = TokioResolver::builder(provider)
                .map_err(|e| ResolverError::SystemConfig(e.to_string()))?;
            (builder, "system".to_owned())
        } else {
            let servers = nameservers
                .iter()
                .map(|ns| {
                    let mut config = NameServerConfig::udp_and_tcp(ns.ip());
                    for c in config.connections.iter_mut() {
                        c.port = ns.port();
                    }
                    config
                })
                .collect();
            let label = nameservers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            (
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], servers),
                    provider,
                ),
                label,
            )
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.cache_size = 256;
        let resolver = builder
            .build()
            .map_err(|e| ResolverError::SystemConfig(e.to_string()))?;
        Ok(Dns {
            resolver,
            nameserver,
            label,
            deadline: timeout * 2,
        })
    }

    /// Look up every SRV kind for `domain` and resolve each target's addresses.
    pub async fn discover(&self, domain: &str) -> Discovery {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        // The four lookups run at once: a dead nameserver costs one timeout, not four.
        let (edge, uds, cup, xmpp) = tokio::join!(
            self.srv(SrvKind::CollabEdge, &domain),
            self.srv(SrvKind::CiscoUds, &domain),
            self.srv(SrvKind::CupLogin, &domain),
            self.srv(SrvKind::XmppClient, &domain),
        );
        let lookups = vec![edge, uds, cup, xmpp];
        Discovery {
            domain,
            resolver: self.label.clone(),
            lookups,
        }
    }

    async fn srv(&self, kind: SrvKind, domain: &str) -> SrvLookup {
        let name = kind.owner(domain);
        let lookup =
            tokio::time::timeout(self.deadline, self.resolver.srv_lookup(format!("{name}.")));
        let answer = match lookup.await.unwrap_or(Err(NetError::Timeout)) {
            Ok(lookup) => {
                let records: Vec<SrvRecord> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::SRV(s) => Some(crate::core::discovery::srv_record(s)),
                        _ => None,
                    })
                    .collect();
                if records.len() == 1 && records[0].target.is_empty() {
                    SrvAnswer::NotOffered
                } else if records.is_empty() {
                    SrvAnswer::NoData
                } else {
                    let mut targets = Vec::new();
                    for record in order_srv(records) {
                        let (addresses, error) = match self.addresses(&record.target).await {
                            Ok(a) => (a, None),
                            Err(e) => (Vec::new(), Some(e)),
                        };
                        targets.push(ResolvedTarget {
                            record,
                            addresses,
                            error,
                            not_seen: false,
                        });
                    }
                    SrvAnswer::Found { targets }
                }
            }
            Err(e) => classify(&e),
        };
        SrvLookup { kind, name, answer }
    }

    /// A and AAAA addresses of `host` (an IP literal is returned as is).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(vec![ip]);
        }
        let lookup = tokio::time::timeout(
            self.deadline,
            self.resolver
                .lookup_ip(format!("{}.", host.trim_end_matches('.'))),
        );
        match lookup.await.unwrap_or(Err(NetError::Timeout)) {
            Ok(lookup) => {
                let addrs: Vec<IpAddr> = lookup.iter().collect();
                if addrs.is_empty() {
                    Err("no A or AAAA record".into())
                } else {
                    Ok(addrs)
                }
            }
            Err(e) => Err(match classify(&e) {
                SrvAnswer::NxDomain => "no such name (NXDOMAIN)".into(),
                SrvAnswer::NoData => "no A or AAAA record".into(),
                SrvAnswer::Timeout => "timed out: no answer from the nameserver".into(),
                SrvAnswer::ServerFailure { detail } | SrvAnswer::Error { detail } => detail,
                other => format!("{other:?}"),
            }),
        }
    }
}

fn classify(e: &NetError) -> SrvAnswer {
    match e {
        NetError::Timeout => SrvAnswer::Timeout,
        NetError::Dns(DnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => SrvAnswer::NxDomain,
            ResponseCode::NoError => SrvAnswer::NoData,
            code => SrvAnswer::ServerFailure {
                detail: code.to_string(),
            },
        },
        NetError::Dns(DnsError::ResponseCode(code)) => SrvAnswer::ServerFailure {
            detail: code.to_string(),
        },
        other => {
            let text = other.to_string();
            if text.contains("timed out") {
                SrvAnswer::Timeout
            } else {
                SrvAnswer::Error { detail: text }
            }
        }
    }
}
