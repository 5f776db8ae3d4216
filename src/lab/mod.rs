//! A small collaboration deployment on loopback, in process: a DNS authority
//! (hickory-server) and TLS servers presenting chosen chains, as HTTPS or as XMPP
//! with STARTTLS, plus servers that misbehave on purpose (reset the handshake,
//! never answer). `deployment` puts them together: `edgetap demo` runs one,
//! the integration tests and benches build theirs.
//! These are real servers on real sockets, not mocks; `pki` makes their
//! certificates (rcgen, relative to the time it is given).

pub mod deployment;
pub mod pki;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::core::xmpp::{self, ClientEvent};

/// A record for the lab zone.
#[derive(Debug, Clone)]
pub enum ZoneRecord {
    /// SRV owner, priority, weight, port, target.
    Srv(String, u16, u16, u16, String),
    /// A name and an address (A or AAAA by family).
    Addr(String, IpAddr),
}

/// A running authoritative DNS server for one zone.
pub struct DnsAuthority {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler<hickory_server::net::runtime::TokioRuntimeProvider>>,
    _server: Server<Catalog>,
}

/// Records carry a 1-second TTL: a test that changes the zone is seen at once.
const TTL: u32 = 1;

fn record(r: &ZoneRecord) -> std::io::Result<Record> {
    Ok(match r {
        ZoneRecord::Srv(owner, prio, weight, port, target) => Record::from_rdata(
            name(owner)?,
            TTL,
            RData::SRV(SRV::new(*prio, *weight, *port, name(target)?)),
        ),
        ZoneRecord::Addr(host, IpAddr::V4(v4)) => {
            Record::from_rdata(name(host)?, TTL, RData::A(A(*v4)))
        }
        ZoneRecord::Addr(host, IpAddr::V6(v6)) => {
            Record::from_rdata(name(host)?, TTL, RData::AAAA(AAAA(*v6)))
        }
    })
}

fn name(s: &str) -> std::io::Result<Name> {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.')))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

impl DnsAuthority {
    /// Serve `zone` with `records` on `bind` (port 0 picks one).
    pub async fn start(
        bind: SocketAddr,
        zone: &str,
        records: &[ZoneRecord],
    ) -> std::io::Result<DnsAuthority> {
        let origin = name(zone)?;
        let handler =
            InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::empty(
                origin.clone(),
                ZoneType::Primary,
                AxfrPolicy::Deny,
            );
        let soa = SOA::new(
            name(&format!("ns.{zone}"))?,
            name(&format!("hostmaster.{zone}"))?,
            1,
            3600,
            600,
            86400,
            60,
        );
        handler
            .upsert(Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)), 1)
            .await;
        for r in records {
            handler.upsert(record(r)?, 1).await;
        }
        let zone = Arc::new(handler);
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![zone.clone()]);
        // UDP and TCP on one port. With port 0 the kernel picks the UDP port,
        // and that TCP port may be taken (an outgoing connection's local
        // port): pick again rather than fail.
        let mut attempt = 0;
        let (udp, tcp, addr) = loop {
            let udp = UdpSocket::bind(bind).await?;
            let addr = udp.local_addr()?;
            match TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, tcp, addr),
                Err(e) if bind.port() == 0 && attempt < 20 => {
                    tracing::debug!(error = %e, %addr, "DNS authority: TCP port taken, trying another");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        Ok(DnsAuthority {
            addr,
            zone,
            _server: server,
        })
    }

    /// Add a record while serving (an SRV record joins its name's set).
    pub async fn add(&self, r: &ZoneRecord) -> std::io::Result<()> {
        self.zone.upsert(record(r)?, 2).await;
        Ok(())
    }
}

/// How a lab server behaves.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// TLS, then answer one HTTP request with 200.
    Https,
    /// XMPP stream; STARTTLS offered (and required, or not), then TLS.
    Xmpp {
        /// The server's domain.
        domain: String,
        /// Offer STARTTLS at all.
        offer: bool,
        /// Mark it required.
        required: bool,
    },
    /// Read the ClientHello, then reset the connection.
    ResetDuringHandshake,
    /// Accept and never send a byte.
    Silent,
}

/// A certificate chain (leaf first) and the leaf's PKCS#8 key.
#[derive(Clone)]
pub struct Identity {
    /// DER certificates, leaf first, as the server sends them.
    pub chain: Vec<Vec<u8>>,
    /// PKCS#8 DER private key of the leaf.
    pub key: Vec<u8>,
}

/// Start a server on `bind`; it runs until the runtime stops. Returns its address.
pub async fn serve(
    bind: SocketAddr,
    identity: Option<Identity>,
    behaviour: Behaviour,
) -> std::io::Result<SocketAddr> {
    serve_with(bind, identity, behaviour, false).await
}

/// An HTTPS server on a free loopback port for `name`: a leaf from a fresh root
/// called `root_cn`, valid around now, behind the lab's HTTP responder (for the
/// benchmarks). Returns its address.
pub async fn serve_https(root_cn: &str, name: &str) -> std::io::Result<SocketAddr> {
    let now = crate::clock::now();
    let id = pki::Ca::root(root_cn, now)
        .and_then(|root| root.identity(name, &[name], None, &[], now))
        .map_err(std::io::Error::other)?;
    serve(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(id),
        Behaviour::Https,
    )
    .await
}

/// As [`serve`]; `tls12_only` makes the server refuse TLS 1.3, so the chain is
/// visible to a passive observer (as on many deployed servers).
pub async fn serve_with(
    bind: SocketAddr,
    identity: Option<Identity>,
    behaviour: Behaviour,
    tls12_only: bool,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let acceptor = match identity {
        Some(id) => Some(acceptor(&id, tls12_only)?),
        None => None,
    };
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(socket, acceptor, behaviour).await {
                    tracing::debug!(error = %e, "lab connection ended");
                }
            });
        }
    });
    Ok(addr)
}

/// The lab waits this long for a client's next XMPP element.
const CLIENT_PATIENCE: Duration = Duration::from_secs(30);

async fn read_client(socket: &mut TcpStream) -> Result<ClientEvent, String> {
    crate::net::xmpp::read_client_event(socket, CLIENT_PATIENCE).await
}

fn acceptor(id: &Identity, tls12_only: bool) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let chain: Vec<CertificateDer<'static>> = id
        .chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.clone()));
    let config = rustls::ServerConfig::builder_with_provider(crate::net::tls::provider())
        .with_protocol_versions(versions)
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(std::io::Error::other)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn handle(
    mut socket: TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    behaviour: Behaviour,
) -> std::io::Result<()> {
    match behaviour {
        Behaviour::Silent => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        Behaviour::ResetDuringHandshake => {
            let mut buf = [0u8; 512];
            let _ = socket.read(&mut buf).await?;
            socket.set_zero_linger()?; // close with RST
            drop(socket);
            Ok(())
        }
        Behaviour::Https => {
            let acceptor =
                acceptor.ok_or_else(|| std::io::Error::other("https needs an identity"))?;
            let mut tls = acceptor.accept(socket).await?;
            let mut buf = [0u8; 4096];
            let _ = tls.read(&mut buf).await?;
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
                .await?;
            tls.shutdown().await
        }
        Behaviour::Xmpp {
            domain,
            offer,
            required,
        } => {
            read_client(&mut socket)
                .await
                .map_err(std::io::Error::other)?;
            socket
                .write_all(xmpp::server_stream_open(&domain, "lab-1").as_bytes())
                .await?;
            socket
                .write_all(xmpp::features(offer, required).as_bytes())
                .await?;
            if !offer {
                // Hold the stream open briefly like a real server waiting for SASL.
                let mut buf = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await;
                return Ok(());
            }
            match read_client(&mut socket)
                .await
                .map_err(std::io::Error::other)?
            {
                ClientEvent::StartTls => socket.write_all(xmpp::PROCEED.as_bytes()).await?,
                ClientEvent::StreamOpen { .. } => {
                    return Err(std::io::Error::other("expected <starttls/>"));
                }
            }
            let acceptor =
                acceptor.ok_or_else(|| std::io::Error::other("xmpp needs an identity"))?;
            let mut tls = acceptor.accept(socket).await?;
            let mut buf = [0u8; 4096];
            if tls.read(&mut buf).await? > 0 {
                tls.write_all(xmpp::server_stream_open(&domain, "lab-2").as_bytes())
                    .await?;
                tls.write_all(xmpp::features(false, false).as_bytes())
                    .await?;
            }
            tls.shutdown().await
        }
    }
}
