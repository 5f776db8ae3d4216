//! `HOST:PORT` as users write it on command lines and in configs, parsed once
//! for every command: `name:port`, `v4:port` and `[v6]:port`. A bare name (no
//! port) or an unbracketed IPv6 address is not a `HOST:PORT`.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
