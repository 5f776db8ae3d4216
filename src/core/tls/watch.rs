//! Watching both directions of one connection whose bytes pass through edgetap
//! (the proxy's passthrough mode): the same passive parsers replay uses, fed as
//! bytes are relayed, stopping once both directions turned encrypted.

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
}

impl Watch {
    /// Bytes the client sent.
    pub fn client_bytes(&mut self, bytes: &[u8]) {
        self.client.feed(bytes, &mut self.client_events);
    }

    /// Bytes the server sent.
    pub fn server_bytes(&mut self, bytes: &[u8]) {
        self.server.feed(bytes, &mut self.server_events);
    }

    /// Both directions are past the handshake (or unreadable): stop feeding.
    pub fn done(&self) -> bool {
        self.client.done() && self.server.done()
    }

    /// One direction is past the handshake (or unreadable): stop feeding it.
    pub fn side_done(&self, client: bool) -> bool {
        if client {
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

    /// What was seen, in replay's terms (stream = connection id, frame 0).
    pub fn connection(
        &mut self,
        id: usize,
        client: SocketAddr,
        server: SocketAddr,
    ) -> TlsConnection {
        self.client.finish();
        self.server.finish();
        let mut t = TlsConnection::new(id, client, server);
        t.client_prefix = self.client.prefix().to_vec();
        t.server_prefix = self.server.prefix().to_vec();
        for e in &self.client_events {
            t.client_event(0, 0.0, e);
        }
        for e in &self.server_events {
            t.server_event(0, 0.0, e);
        }
        for (who, p) in [("server", &self.server), ("client", &self.client)] {
            if let Some(e) = &p.error {
                t.damage.push(format!("{who} side: {e}"));
            }
        }
        t
    }
}
