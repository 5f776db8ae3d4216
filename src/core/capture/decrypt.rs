//! The encrypted part of a recorded TLS 1.3 handshake, read with a key log:
//! the server's flight gives the chain it presented (and any alert it sent),
//! the client's first encrypted record gives its Finished, its certificate, or
//! the alert with which it rejected the server (bad_certificate, unknown_ca).
//! Keys for other connections are ignored; a wrong or missing key is a note on
//! this handshake, never an error for the capture.

use super::replay::{Decryption, TlsConnection};
use crate::core::tls::keylog::{Flight, KeyLog};
use crate::core::tls::messages::certificates_tls13;
use crate::core::tls::tls13::open_flight;

/// Handshake message types read from a decrypted flight.
const CERTIFICATE: u8 = 11;

/// Read the connection's kept TLS 1.3 records with `keys`, filling in the
/// chain and alerts, and saying in [`TlsConnection::decryption`] what happened.
/// The kept records are released either way.
pub fn open_tls13(c: &mut TlsConnection, keys: &KeyLog) {
    let server = std::mem::take(&mut c.server_flight);
    let client = std::mem::take(&mut c.client_flight);
    let Some(cipher) = c.server_hello.map(|sh| sh.cipher) else {
        return;
    };
    if server.is_empty() && client.is_empty() {
        return;
    }
    if keys.is_empty() {
        c.decryption = Some(Decryption {
            decrypted: false,
            note: "no TLS keys were given: replay it with --keylog FILE (SSLKEYLOGFILE format), or from a pcapng whose Decryption Secrets Block holds them"
                .into(),
        });
        return;
    }
    let Some(random) = c.client_hello.as_ref().and_then(|h| h.random) else {
        c.decryption = Some(Decryption {
            decrypted: false,
            note:
                "the ClientHello is not in the capture, so no key can be matched to this handshake"
                    .into(),
        });
        return;
    };
    let short: String = random[..4].iter().map(|b| format!("{b:02x}")).collect();
    let mut decrypted = false;
    let note = match keys.get(&random, Flight::Server) {
        None => format!(
            "none of the {} TLS 1.3 handshake secrets given is for this handshake (client random {short}...)",
            keys.len()
        ),
        Some(secret) => match open_flight(cipher, secret.bytes, &server) {
            Err(e) => format!("not decrypted: {e}"),
            Ok(flight) => {
                decrypted = true;
                for (kind, body) in &flight.messages {
                    if *kind == CERTIFICATE && c.certificates.is_none() {
                        c.certificates = Some(certificates_tls13(body));
                    }
                }
                c.alerts.extend(
                    flight
                        .alerts
                        .iter()
                        .map(|(level, desc)| (true, *level, *desc)),
                );
                let sent_chain = flight.messages.iter().any(|(k, _)| *k == CERTIFICATE);
                match flight.incomplete {
                    None if !sent_chain => format!(
                        "decrypted with the key from {}: the server sent no certificate (a resumed session; the chain was presented on the connection that got the ticket)",
                        secret.source
                    ),
                    None => format!("decrypted with the key from {}", secret.source),
                    Some(why) => format!("decrypted with the key from {}; {why}", secret.source),
                }
            }
        },
    };
    c.decryption = Some(Decryption { decrypted, note });
    if let Some(secret) = keys.get(&random, Flight::Client)
        && !client.is_empty()
        && let Ok(flight) = open_flight(cipher, secret.bytes, &client)
    {
        c.alerts.extend(
            flight
                .alerts
                .iter()
                .map(|(level, desc)| (false, *level, *desc)),
        );
        c.client_certificate |= flight
            .messages
            .iter()
            .any(|(kind, body)| *kind == CERTIFICATE && !certificates_tls13(body).certs.is_empty());
    }
}
