//! TLS key logs (the NSS `SSLKEYLOGFILE` format that browsers, curl, OpenSSL's
//! `-keylogfile`, rustls' `KeyLog` and Wireshark share): the TLS 1.3 handshake
//! traffic secrets, by client random, so that a passive observer can read the
//! encrypted part of a handshake it recorded.
//!
//! Lines are `LABEL <client random, 64 hex> <secret, hex>`; `#` starts a
//! comment. Only the two handshake secrets matter here; other labels
//! (`CLIENT_RANDOM` for TLS 1.2, the traffic and exporter secrets) are counted
//! and otherwise ignored.

use std::collections::HashMap;

/// Which endpoint's handshake flight a secret opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flight {
    /// `SERVER_HANDSHAKE_TRAFFIC_SECRET`: EncryptedExtensions .. Finished.
    Server,
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET`: the client's Certificate, Finished or alert.
    Client,
}

/// The handshake secrets collected from one or more key logs.
#[derive(Debug, Clone, Default)]
pub struct KeyLog {
    secrets: HashMap<([u8; 32], Flight), (Vec<u8>, usize)>,
    sources: Vec<String>,
    /// Well-formed lines read (any label).
    pub lines: usize,
    /// Lines that were neither comments nor key log entries.
    pub malformed: usize,
}

/// A secret and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Secret<'a> {
    /// The secret's bytes.
    pub bytes: &'a [u8],
    /// Where the key log came from, as given to [`KeyLog::add`].
    pub source: &'a str,
}

impl KeyLog {
    /// An empty key log.
    pub fn new() -> KeyLog {
        KeyLog::default()
    }

    /// Take every line of `text`, saying `source` (e.g. "--keylog keys.log")
    /// when a secret from it is used. Returns the handshake secrets taken.
    pub fn add(&mut self, text: &str, source: &str) -> usize {
        let index = self.sources.len();
        self.sources.push(source.to_owned());
        let mut taken = 0;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_ascii_whitespace();
            let (Some(label), Some(random), Some(secret), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                self.malformed += 1;
                continue;
            };
            let (Some(random), Some(secret)) = (unhex(random), unhex(secret)) else {
                self.malformed += 1;
                continue;
            };
            let Ok(random) = <[u8; 32]>::try_from(random.as_slice()) else {
                self.malformed += 1;
                continue;
            };
            self.lines += 1;
            let flight = match label {
                "SERVER_HANDSHAKE_TRAFFIC_SECRET" => Flight::Server,
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Flight::Client,
                _ => continue,
            };
            self.secrets.insert((random, flight), (secret, index));
            taken += 1;
        }
        taken
    }

    /// No handshake secret at all.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Handshake secrets held.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// The secret for one connection's flight.
    pub fn get(&self, client_random: &[u8; 32], flight: Flight) -> Option<Secret<'_>> {
        self.secrets
            .get(&(*client_random, flight))
            .map(|(bytes, source)| Secret {
                bytes,
                source: &self.sources[*source],
            })
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_secrets_by_client_random() {
        let random = "ab".repeat(32);
        let text = format!(
            "# comment\n\
             CLIENT_RANDOM {random} {m}\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {random} 0102\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {random} 0304\n\
             SERVER_TRAFFIC_SECRET_0 {random} 0506\n\
             not a line\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET abcd 0102\n",
            m = "00".repeat(48)
        );
        let mut log = KeyLog::new();
        assert_eq!(log.add(&text, "--keylog k.log"), 2);
        assert_eq!((log.lines, log.malformed, log.len()), (4, 2, 2));
        let r = [0xab; 32];
        let s = log.get(&r, Flight::Server).unwrap();
        assert_eq!((s.bytes, s.source), (&[1u8, 2][..], "--keylog k.log"));
        assert_eq!(log.get(&r, Flight::Client).unwrap().bytes, [3, 4]);
        assert!(log.get(&[0; 32], Flight::Server).is_none());
    }

    #[test]
    fn nothing_usable() {
        let mut log = KeyLog::new();
        assert_eq!(log.add("hello\nworld 1 2\n", "x"), 0);
        assert!(log.is_empty());
        assert_eq!(log.malformed, 2);
    }
}
