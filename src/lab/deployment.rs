//! A deployment in a few lines, for `demo`, the integration tests and the
//! benches alike: a two-level PKI valid around a given time, servers on
//! loopback presenting chains from it (each name given an address record as
//! it starts), SRV records pointing at them, and the DNS authority that
//! serves the zone.

use std::net::{Ipv4Addr, SocketAddr};

use time::OffsetDateTime;

use super::pki::{Ca, PkiResult};
use super::{Behaviour, DnsAuthority, Identity, ZoneRecord, serve_with};

/// A deployment being built: its PKI and the records of its zone so far.
pub struct Deployment {
    /// The zone (`example.com`).
    pub domain: String,
    /// The time the certificates are valid around.
    pub now: OffsetDateTime,
    /// The root CA.
    pub root: Ca,
    /// The issuing CA under the root, which signs the servers' leaves.
    pub issuing: Ca,
    records: Vec<ZoneRecord>,
}

impl Deployment {
    /// A deployment for `domain` whose CAs are named after `name`
    /// (`{name} Root`, `{name} Issuing CA`), valid around `now`.
    pub fn new(name: &str, domain: &str, now: OffsetDateTime) -> PkiResult<Deployment> {
        let root = Ca::root(&format!("{name} Root"), now)?;
        let issuing = root.intermediate(&format!("{name} Issuing CA"), now)?;
        Ok(Deployment {
            domain: domain.to_owned(),
            now,
            root,
            issuing,
            records: Vec::new(),
        })
    }

    /// `host` in the zone: `expe` -> `expe.example.com`.
    pub fn fqdn(&self, host: &str) -> String {
        format!("{host}.{}", self.domain)
    }

    /// A leaf issued by the issuing CA for `cn` with `sans` (and the XMPP
    /// domain as xmppAddr when given), sent with the intermediate.
    pub fn identity(&self, cn: &str, sans: &[&str], xmpp: Option<&str>) -> PkiResult<Identity> {
        self.issuing
            .identity(cn, sans, xmpp, &[self.issuing.der()], self.now)
    }

    /// An Expressway-E leaf for `fqdn`, with `collab-edge.DOMAIN` as a SAN too.
    pub fn edge_identity(&self, fqdn: &str) -> PkiResult<Identity> {
        let edge = format!("collab-edge.{}", self.domain);
        self.identity(fqdn, &[fqdn, &edge], None)
    }

    /// An IM and Presence leaf for `fqdn`, with the zone as its XMPP domain.
    pub fn cup_identity(&self, fqdn: &str) -> PkiResult<Identity> {
        self.identity(fqdn, &[fqdn], Some(&self.domain))
    }

    /// An XMPP server for the zone that offers and requires STARTTLS.
    pub fn xmpp(&self) -> Behaviour {
        Behaviour::Xmpp {
            domain: self.domain.clone(),
            offer: true,
            required: true,
        }
    }

    /// Start a server for `fqdn` on a free loopback port (`tls12_only` for
    /// one whose chain a passive observer can see) and give the name its
    /// address in the zone.
    pub async fn serve(
        &mut self,
        fqdn: &str,
        identity: Option<Identity>,
        behaviour: Behaviour,
        tls12_only: bool,
    ) -> std::io::Result<SocketAddr> {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        self.serve_at(fqdn, any, identity, behaviour, tls12_only)
            .await
    }

    /// [`Self::serve`] on `bind`.
    pub async fn serve_at(
        &mut self,
        fqdn: &str,
        bind: SocketAddr,
        identity: Option<Identity>,
        behaviour: Behaviour,
        tls12_only: bool,
    ) -> std::io::Result<SocketAddr> {
        let addr = serve_with(bind, identity, behaviour, tls12_only).await?;
        self.records
            .push(ZoneRecord::Addr(fqdn.to_owned(), addr.ip()));
        Ok(addr)
    }

    /// An SRV record `{service}.DOMAIN` (`_collab-edge._tls`) pointing at
    /// `target:port` with `priority` (weight 10).
    pub fn srv(&mut self, service: &str, priority: u16, target: &str, port: u16) {
        self.records.push(ZoneRecord::Srv(
            format!("{service}.{}", self.domain),
            priority,
            10,
            port,
            target.to_owned(),
        ));
    }

    /// Any other record.
    pub fn record(&mut self, record: ZoneRecord) {
        self.records.push(record);
    }

    /// The zone's records so far.
    pub fn records(&self) -> &[ZoneRecord] {
        &self.records
    }

    /// Serve the zone on `bind` (port 0 picks one).
    pub async fn start_dns(&self, bind: SocketAddr) -> std::io::Result<DnsAuthority> {
        DnsAuthority::start(bind, &self.domain, &self.records).await
    }

    /// The root as PEM, for `--public-roots` or `--trust`.
    pub fn root_pem(&self) -> String {
        super::pki::pem(&self.root.der())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deployment's records point at the servers it started, and its DNS
    /// authority answers for them.
    #[tokio::test]
    async fn servers_get_address_records_and_srv_points_at_them() {
        let now = time::macros::datetime!(2026-06-01 00:00 UTC);
        let mut lab = Deployment::new("Unit", "example.com", now).unwrap();
        let fqdn = lab.fqdn("expe");
        let id = lab.edge_identity(&fqdn).unwrap();
        assert_eq!(id.chain.len(), 2, "leaf and intermediate");
        let addr = lab
            .serve(&fqdn, Some(id), Behaviour::Https, true)
            .await
            .unwrap();
        lab.srv("_collab-edge._tls", 10, &fqdn, addr.port());
        let records = lab.records();
        assert!(matches!(&records[0], ZoneRecord::Addr(n, ip) if *n == fqdn && *ip == addr.ip()));
        assert!(matches!(&records[1], ZoneRecord::Srv(o, 10, 10, p, t)
            if o == "_collab-edge._tls.example.com" && *p == addr.port() && *t == fqdn));
        let dns = lab
            .start_dns(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let resolver =
            crate::net::resolve::Dns::new(&[dns.addr], std::time::Duration::from_secs(2)).unwrap();
        assert_eq!(resolver.addresses(&fqdn).await.unwrap(), vec![addr.ip()]);
        assert!(lab.root_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
