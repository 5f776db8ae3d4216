//! Watching both directions of one connection whose bytes pass through edgetap
//! (the proxy's passthrough mode): the same passive parsers replay uses, fed as
//! bytes are relayed, each direction stopping once it turned encrypted.

use std::net::SocketAddr;

use super::{DirectionParser, TlsEvent};
use crate::core::capture::replay::TlsConnection;

/// Both directions of one relayed connection.
#[derive(Debug, Default)]
pub struct Watch {
    client: DirectionParser,
    server: DirectionParser,
    client_events: Vec<TlsEvent>,
    server_events: Vec<TlsEvent>,
    /// What was seen has been taken: feeding stops, both sides count as done.
    taken: bool,
}

impl Watch {
    /// Bytes the client sent.
    pub fn client_bytes(&mut self, bytes: &[u8]) {
        if self.taken {
            return;
        }
        self.client.feed(bytes, &mut self.client_events);
    }

    /// Bytes the server sent.
    pub fn server_bytes(&mut self, bytes: &[u8]) {
        if self.taken {
            return;
        }
        self.server.feed(bytes, &mut self.server_events);
    }

    /// One direction is past the handshake (or unreadable): stop feeding it.
    pub fn side_done(&self, client: bool) -> bool {
        if self.taken {
            true
        } else if client {
            self.client.done()
        } else {
            self.server.done()
        }
    }

    /// The server's side shows what a verdict needs: its Certificate, or a
    /// TLS 1.3 ServerHello (the chain then needs a side probe), or it failed.
    pub fn server_ready(&self) -> bool {
        self.server.done()
            || self.server_events.iter().any(|e| match e {
                TlsEvent::Certificate(_) => true,
                TlsEvent::ServerHello(sh) => sh.version == 0x0304,
                TlsEvent::Alert(2, _) => true,
                _ => false,
            })
    }

    /// True when any TLS was seen.
    pub fn saw_tls(&self) -> bool {
        self.client.found_tls() || self.server.found_tls()
    }

    /// What was seen, in replay's terms (stream = connection id, frame 0),
    /// handed over once: the watch then forgets it and stops (a long-lived
    /// connection keeps no handshake bytes).
    pub fn take_connection(
        &mut self,
        id: usize,
        client: SocketAddr,
        server: SocketAddr,
    ) -> TlsConnection {
        let mut seen = std::mem::replace(
            self,
            Watch {
                taken: true,
                ..Watch::default()
            },
        );
        seen.client.finish();
        seen.server.finish();
        let mut t = TlsConnection::new(id, client, server);
        t.client_prefix = seen.client.prefix().to_vec();
        t.server_prefix = seen.server.prefix().to_vec();
        for e in &seen.client_events {
            t.client_event(0, 0.0, e);
        }
        for e in &seen.server_events {
            t.server_event(0, 0.0, e);
        }
        for (who, p) in [("server", &seen.server), ("client", &seen.client)] {
            if let Some(e) = &p.error {
                t.damage.push(format!("{who} side: {e}"));
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    use super::*;
    use crate::net::tls::{RecordingVerifier, observing_client_config, provider};

    /// A real TLS 1.2 handshake between rustls endpoints in memory, each
    /// flight fed to the watch as the proxy would relay it.
    #[test]
    fn watch_sees_a_real_handshake_and_forgets_it_once_taken() {
        #[allow(clippy::disallowed_methods)] // certificates valid around the real clock
        let now = time::OffsetDateTime::now_utc();
        let ca = crate::net::pki::Ca::root("Watch Root", now).unwrap();
        let id = ca
            .identity(
                "expe.example.com",
                &["expe.example.com"],
                None,
                &[ca.der()],
                now,
            )
            .unwrap();
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                id.chain.iter().cloned().map(CertificateDer::from).collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.clone())),
            )
            .unwrap();
        let client_config =
            observing_client_config(RecordingVerifier::new(provider()), &[]).unwrap();
        let name = ServerName::try_from("expe.example.com").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(client_config), name).unwrap();
        let mut server = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
        let mut watch = Watch::default();
        while client.is_handshaking() || server.is_handshaking() {
            let mut up = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut up).unwrap();
            }
            watch.client_bytes(&up);
            server.read_tls(&mut &up[..]).unwrap();
            server.process_new_packets().unwrap();
            let mut down = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut down).unwrap();
            }
            watch.server_bytes(&down);
            client.read_tls(&mut &down[..]).unwrap();
            client.process_new_packets().unwrap();
        }
        assert!(watch.saw_tls() && watch.server_ready());
        let (c, s) = (
            SocketAddr::from(([127, 0, 0, 1], 40000)),
            SocketAddr::from(([127, 0, 0, 1], 8443)),
        );
        let seen = watch.take_connection(1, c, s);
        let hello = seen.client_hello.as_ref().expect("ClientHello seen");
        assert_eq!(hello.sni.as_deref(), Some("expe.example.com"));
        assert_eq!(
            seen.certificates.as_ref().expect("Certificate seen").certs,
            id.chain
        );
        // Taken: later bytes are not parsed or kept, and neither side is watched.
        watch.server_bytes(&[0x16, 3, 3, 0, 4, 1, 0, 0, 0]);
        assert!(watch.side_done(true) && watch.side_done(false));
        assert!(!watch.saw_tls());
        assert!(watch.take_connection(1, c, s).certificates.is_none());
    }
}
