//! `HOST:PORT` as users write it on command lines and in configs, parsed once
//! for every command: `name:port`, `v4:port` and `[v6]:port`. A bare name (no
//! port) or an unbracketed IPv6 address is not a `HOST:PORT`. And the domain a
//! look-up is for, checked before any DNS traffic.

use std::net::SocketAddr;

/// `host:port`, `[v6]:port` or `v4:port` -> (host, port), the IPv6 host without
/// brackets; `None` for anything else (a bare name is a domain to the caller).
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some((sa.ip().to_string(), sa.port()));
    }
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty() && !host.contains(':') && !host.contains(['[', ']']))
        .then(|| (host.to_owned(), port))
}

/// An address to listen on as users write one: `IP:PORT`, `[IPv6]:PORT`,
/// `localhost:PORT`, or a `PORT` alone; the last two on loopback (edgetap
/// listens on the network only when told an address there).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let loopback = |port: &str| {
        port.parse::<u16>()
            .ok()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
    };
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| loopback(s))
        .or_else(|| s.strip_prefix("localhost:").and_then(loopback))
        .ok_or_else(|| {
            format!(
                "{s:?} is not an address to listen on: give IP:PORT (127.0.0.1:8443, [::1]:8443, 0.0.0.0:8443 for the network), localhost:PORT or a PORT alone (loopback)"
            )
        })
}

/// A nameserver as users write one: `IP`, `IP:PORT`, `[IPv6]` or
/// `[IPv6]:PORT` (port 53 when none is given); otherwise what to write.
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, String> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|v6| v6.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!(
                "{s:?} is not a nameserver address: use IP, IP:PORT or [IPv6]:PORT (e.g. 192.0.2.53, 127.0.0.1:5353, [::1]:5353)"
            )
        })
}

/// `s` as a domain to look up (`example.com`, a trailing dot allowed), or
/// what is wrong with it in words: empty, an address or `HOST:PORT` where a
/// domain belongs, an empty or over-long label, a character DNS names do not
/// use.
pub fn domain_name(s: &str) -> Result<String, String> {
    let name = s.trim_end_matches('.');
    if name.is_empty() {
        return Err("the domain is empty: give one such as example.com".into());
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "{s:?} is an address, not a domain: give HOST:PORT to probe one endpoint"
        ));
    }
    if s.contains(':') {
        return Err(format!(
            "{s:?} is neither a domain nor HOST:PORT (a port is 1 to 65535; IPv6 goes in brackets)"
        ));
    }
    if name.len() > 253 {
        return Err(format!("{s:?} is longer than a domain name may be (253)"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("{s:?} has an empty label (two dots in a row?)"));
        }
        if label.len() > 63 {
            return Err(format!("{s:?} has a label longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "{s:?} contains {c:?}, which domain names do not use"
            ));
        }
    }
    Ok(name.to_ascii_lowercase())
}

/// Addresses in the order a client tries them (RFC 8305 §4): families
/// interleaved, starting with the family of the resolver's first answer.
pub fn connection_order(addrs: &[std::net::IpAddr]) -> Vec<std::net::IpAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut same, mut other): (Vec<_>, Vec<_>) = addrs
        .iter()
        .copied()
        .partition(|a| a.is_ipv6() == first.is_ipv6());
    same.reverse();
    other.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    while !same.is_empty() || !other.is_empty() {
        out.extend(same.pop());
        out.extend(other.pop());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_default_to_loopback() {
        let at = |s: &str| parse_listen(s).unwrap().to_string();
        assert_eq!(at("18451"), "127.0.0.1:18451");
        assert_eq!(at("localhost:18451"), "127.0.0.1:18451");
        assert_eq!(at("0.0.0.0:8443"), "0.0.0.0:8443");
        assert_eq!(at("[::1]:8443"), "[::1]:8443");
        for bad in [
            "",
            "host.example.com:8443",
            "localhost",
            "70000",
            "127.0.0.1",
        ] {
            assert!(
                parse_listen(bad).unwrap_err().contains("localhost:PORT"),
                "{bad}"
            );
        }
    }

    #[test]
    fn nameservers_with_or_without_a_port() {
        let at = |s: &str| parse_nameserver(s).unwrap().to_string();
        assert_eq!(at("192.0.2.53"), "192.0.2.53:53");
        assert_eq!(at("127.0.0.1:5353"), "127.0.0.1:5353");
        assert_eq!(at("[::1]:5353"), "[::1]:5353");
        assert_eq!(at("[2001:db8::53]"), "[2001:db8::53]:53");
        assert_eq!(at("2001:db8::53"), "[2001:db8::53]:53");
        for bad in ["dns.example.com", "", "[::1", "1.2.3.4:99999"] {
            assert!(
                parse_nameserver(bad).unwrap_err().contains("[IPv6]:PORT"),
                "{bad}"
            );
        }
    }

    #[test]
    fn host_port_forms() {
        let ok =
            |s: &str, h: &str, p: u16| assert_eq!(split_host_port(s), Some((h.into(), p)), "{s}");
        ok("expe.example.com:8443", "expe.example.com", 8443);
        ok("192.0.2.1:5222", "192.0.2.1", 5222);
        ok("[::1]:5222", "::1", 5222);
        ok("[fd77:2::2]:8443", "fd77:2::2", 8443);
        for bad in [
            "example.com",
            "::1:8443",
            ":8443",
            "host:",
            "host:99999",
            "[::1]",
            "[x]:1",
        ] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn domains_are_checked_before_any_lookup() {
        assert_eq!(domain_name("Example.COM.").unwrap(), "example.com");
        assert_eq!(
            domain_name("_collab-edge._tls.example.com").unwrap(),
            "_collab-edge._tls.example.com"
        );
        for (bad, says) in [
            ("", "empty"),
            ("127.0.0.1", "address"),
            ("127.0.0.1:99999", "HOST:PORT"),
            ("bad..domain", "empty label"),
            ("exa mple.com", "contains"),
        ] {
            let e = domain_name(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn addresses_interleave_families_from_the_first_answer() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let order = connection_order(&[ip("::1"), ip("2001:db8::2"), ip("127.0.0.1")]);
        assert_eq!(order, [ip("::1"), ip("127.0.0.1"), ip("2001:db8::2")]);
        assert_eq!(connection_order(&[ip("192.0.2.1")]), [ip("192.0.2.1")]);
        assert!(connection_order(&[]).is_empty());
    }
}
