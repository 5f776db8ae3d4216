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
    /// How many records the client had sent when the server's side became
    /// ready: any more, and the client has answered the server's flight.
    client_records_at_ready: Option<usize>,
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
        if self.client_records_at_ready.is_none() && self.server_ready() {
            self.client_records_at_ready = Some(self.client.records);
        }
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

    /// Both sides of the handshake are in, as far as a verdict goes: the
    /// server's side is ready and the client has answered it (its next
    /// handshake message, an alert, or it turned encrypted), or the server
    /// ended the handshake with a fatal alert. Judging then, not as soon as the
    /// server's chain is in, puts a client's refusal (an `unknown_ca` alert)
    /// in the verdict, as replay of the same bytes does.
    pub fn ready_to_judge(&self) -> bool {
        let server_failed = self
            .server_events
            .iter()
            .any(|e| matches!(e, TlsEvent::Alert(2, _)));
        let client_answered = self
            .client_records_at_ready
            .is_some_and(|at| self.client.records > at || self.client.done());
        self.taken || server_failed || client_answered
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
        t.client_prefix = seen.client.plaintext();
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
    use super::*;
    use crate::core::tls::build::{certificate, handshake, hello, record};

    /// A watch that has seen a TLS 1.2 ClientHello and the server's flight.
    fn after_server_flight() -> Watch {
        let mut w = Watch::default();
        w.client_bytes(&record(22, &hello(false)));
        let flight = [
            hello(true),
            certificate(&[vec![0x30, 0]]),
            handshake(14, &[]),
        ]
        .concat();
        w.server_bytes(&record(22, &flight));
        assert!(w.server_ready());
        w
    }

    #[test]
    fn judged_once_the_client_answers_the_server_flight() {
        let mut w = after_server_flight();
        assert!(!w.ready_to_judge(), "the client has not answered yet");
        // ClientKeyExchange: the client went on.
        w.client_bytes(&record(22, &handshake(16, &[0, 1, 9])));
        assert!(w.ready_to_judge());
    }

    #[test]
    fn a_client_refusal_is_in_what_is_judged() {
        let mut w = after_server_flight();
        w.client_bytes(&record(21, &[2, 48])); // fatal unknown_ca
        assert!(w.ready_to_judge());
        let conn = w.take_connection(
            1,
            "10.0.0.1:50000".parse().unwrap(),
            "10.0.0.2:8443".parse().unwrap(),
        );
        assert_eq!(
            conn.alerts,
            vec![(false, 2, 48)],
            "the client's fatal alert"
        );
    }

    #[test]
    fn a_server_alert_is_judged_at_once() {
        let mut w = Watch::default();
        w.client_bytes(&record(22, &hello(false)));
        assert!(!w.ready_to_judge());
        w.server_bytes(&record(21, &[2, 40])); // fatal handshake_failure
        assert!(w.ready_to_judge());
    }
}
