//! Watching both directions of one connection whose bytes pass through edgetap
//! (the proxy's passthrough mode): the same passive parsers replay uses, fed as
//! bytes are relayed, each direction stopping once it turned encrypted.

use std::net::SocketAddr;

use super::replay::TlsConnection;
use crate::core::tls::{DirectionParser, TlsEvent};

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
