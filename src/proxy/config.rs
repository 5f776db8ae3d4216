//! Proxy configuration: a TOML file (see configs/) or `--listen/--upstream/--service`
//! triples on the command line. Listeners bind loopback unless told otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::core::observation::Service;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The XMPP / `_collab-edge` domain; needed for `srv` listeners.
    pub domain: Option<String>,
    /// Nameservers for SRV and upstream look-ups (IP or IP:PORT); system when empty.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// The listeners.
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Seconds to connect upstream (default 5).
    pub connect_timeout_secs: Option<f64>,
    /// Seconds a connection may stay silent both ways before it is closed (default 300).
    pub idle_timeout_secs: Option<f64>,
    /// Seconds between look-ups of the SRV records of `srv` listeners (default 300).
    pub srv_refresh_secs: Option<f64>,
    /// Seconds open connections get to finish after Ctrl-C (default 5).
    pub grace_secs: Option<f64>,
    /// JSON-lines events file.
    pub events: Option<PathBuf>,
    /// Capture file (pcapng, or pcap for *.pcap).
    pub pcap: Option<PathBuf>,
    /// Start a new capture file past this many megabytes.
    pub pcap_max_mb: Option<u64>,
    /// Append intercepted sessions' keys here (SSLKEYLOGFILE format).
    pub keylog: Option<PathBuf>,
}

/// One listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address to listen on, e.g. "127.0.0.1:8443".
    pub listen: SocketAddr,
    /// Upstream "host:port"; omit with `srv = true`.
    pub upstream: Option<String>,
    /// "http", "xmpp" or "sip" (default from the port, [`Service::for_port`]).
    pub service: Option<String>,
    /// Take upstreams from the domain's SRV records, in SRV order, failing over.
    #[serde(default)]
    pub srv: bool,
    /// Transparent: connections arrive through an iptables/nftables REDIRECT and go
    /// to their original destination (SO_ORIGINAL_DST).
    #[serde(default)]
    pub transparent: bool,
}

impl ListenerConfig {
    /// The service this listener carries.
    pub fn service(&self) -> Result<Service, String> {
        match &self.service {
            Some(s) => s.parse(),
            None => Ok(Service::for_port(self.listen.port())),
        }
    }
}

impl ProxyConfig {
    /// Parse a TOML file's text.
    pub fn from_toml(text: &str) -> Result<ProxyConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Check the configuration says something runnable.
    pub fn validate(&self) -> Result<(), String> {
        use crate::core::limits::{PCAP_MAX_MB, PERIOD_SECS, TIMEOUT_SECS};
        let numbers = [
            (
                "connect_timeout_secs",
                self.connect_timeout_secs,
                TIMEOUT_SECS,
            ),
            ("idle_timeout_secs", self.idle_timeout_secs, PERIOD_SECS),
            ("srv_refresh_secs", self.srv_refresh_secs, PERIOD_SECS),
            ("grace_secs", self.grace_secs, PERIOD_SECS),
            (
                "pcap_max_mb",
                self.pcap_max_mb.map(|mb| mb as f64),
                PCAP_MAX_MB,
            ),
        ];
        for (key, value, range) in numbers {
            if let Some(v) = value {
                range.check(v).map_err(|why| format!("{key} = {why}"))?;
            }
        }
        if self.listeners.is_empty() {
            return Err(
                "no listener: give --listen/--upstream/--service or [[listener]] in the config"
                    .into(),
            );
        }
        for l in &self.listeners {
            l.service()?;
            if l.transparent {
                if l.upstream.is_some() || l.srv {
                    return Err(format!(
                        "listener {}: transparent takes no upstream or srv",
                        l.listen
                    ));
                }
                continue;
            }
            match (&l.upstream, l.srv) {
                (None, false) => {
                    return Err(format!(
                        "listener {}: give upstream = \"host:port\" or srv = true",
                        l.listen
                    ));
                }
                (Some(_), true) => {
                    return Err(format!(
                        "listener {}: upstream and srv exclude each other",
                        l.listen
                    ));
                }
                (None, true) if self.domain.is_none() => {
                    return Err(format!(
                        "listener {}: srv = true needs domain = \"example.com\"",
                        l.listen
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_configs_parse_and_validate() {
        for name in [
            "proxy-static.toml",
            "proxy-srv.toml",
            "proxy-transparent.toml",
        ] {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/");
            let text = std::fs::read_to_string(format!("{path}{name}")).unwrap();
            let cfg = ProxyConfig::from_toml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            cfg.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                cfg.listeners
                    .iter()
                    .all(|l| l.listen.ip().is_loopback() || l.transparent),
                "{name}: samples listen on loopback (a transparent one takes redirected traffic)"
            );
        }
    }

    #[test]
    fn bad_configs_are_explained() {
        assert!(
            ProxyConfig::from_toml("[[listener]]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n")
                .unwrap_err()
                .contains("bogus")
        );
        let cfg = ProxyConfig::from_toml("[[listener]]\nlisten = \"127.0.0.1:8443\"\nsrv = true\n")
            .unwrap();
        assert!(cfg.validate().unwrap_err().contains("needs domain"));
    }

    /// A listener's default service is the one port policy replay and probe use
    /// (5269 was HTTP here while replay called it XMPP).
    #[test]
    fn listener_service_follows_the_port_policy() {
        let cfg = ProxyConfig::from_toml(
            "[[listener]]\nlisten = \"127.0.0.1:5269\"\nupstream = \"x:5269\"\n\
             [[listener]]\nlisten = \"127.0.0.1:5223\"\nupstream = \"x:5223\"\n\
             [[listener]]\nlisten = \"127.0.0.1:15222\"\nupstream = \"x:5222\"\nservice = \"xmpp\"\n",
        )
        .unwrap();
        let services: Vec<Service> = cfg.listeners.iter().map(|l| l.service().unwrap()).collect();
        assert_eq!(services, [Service::Xmpp, Service::Xmpp, Service::Xmpp]);
    }
}
