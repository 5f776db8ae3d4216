//! Reading the encrypted part of a recorded TLS 1.3 handshake (RFC 8446) with
//! the handshake traffic secret from a key log: derive the record key and IV
//! (HKDF-Expand-Label, §7.1 and §7.3), open each record (§5.2, per-record nonce
//! §5.3), strip the inner content type and padding (§5.4), and return the
//! handshake messages and alerts inside, up to the sender's Finished (records
//! after it use the application keys).
//!
//! Written here because no maintained crate decrypts a handshake it only
//! watched: rustls and the others run as an endpoint and will not open another
//! connection's records. ring does the HKDF and the AEAD.

use ring::{aead, hkdf};
use thiserror::Error;

use super::messages::be24;

/// Why a flight could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecryptError {
    /// A suite ring has no AEAD for (the CCM suites).
    #[error(
        "cipher suite 0x{0:04x} is not one edgetap decrypts (it reads TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256)"
    )]
    UnsupportedSuite(u16),
    /// The secret does not have the hash's length.
    #[error("the key log's secret is {got} bytes, the suite's hash needs {want}")]
    SecretLength {
        /// Bytes given.
        got: usize,
        /// Bytes the suite's hash produces.
        want: usize,
    },
    /// The first record did not authenticate: the key is not this handshake's.
    #[error(
        "the key does not open the first encrypted record (authentication failed): the key log entry for this client random is wrong or belongs to another capture"
    )]
    WrongKey,
}

/// What an encrypted flight held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flight {
    /// Handshake messages in order, each whole (type, body without header).
    pub messages: Vec<(u8, Vec<u8>)>,
    /// Alerts inside (level, description).
    pub alerts: Vec<(u8, u8)>,
    /// The flight reached its Finished message.
    pub finished: bool,
    /// Why reading stopped before Finished, when it did.
    pub incomplete: Option<String>,
}

/// The AEAD and hash of a TLS 1.3 cipher suite.
fn suite(code: u16) -> Option<(&'static aead::Algorithm, hkdf::Algorithm)> {
    match code {
        0x1301 => Some((&aead::AES_128_GCM, hkdf::HKDF_SHA256)),
        0x1302 => Some((&aead::AES_256_GCM, hkdf::HKDF_SHA384)),
        0x1303 => Some((&aead::CHACHA20_POLY1305, hkdf::HKDF_SHA256)),
        _ => None,
    }
}

/// An output length for ring's HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, "", len) of RFC 8446 §7.1.
fn expand_label(prk: &hkdf::Prk, label: &str, out: &mut [u8]) {
    let full = [b"tls13 ", label.as_bytes()].concat();
    let length = (out.len() as u16).to_be_bytes();
    let label_len = [full.len() as u8];
    let context_len = [0u8];
    let info: [&[u8]; 4] = [&length, &label_len, &full, &context_len];
    // Lengths here are the suite's key and IV sizes, far below HKDF's limit.
    if let Ok(okm) = prk.expand(&info, Len(out.len())) {
        let _ = okm.fill(out);
    }
}

/// One direction's record protection: the AEAD key and the IV it derives
/// nonces from (RFC 8446 §7.3).
struct RecordKey {
    key: aead::LessSafeKey,
    iv: [u8; aead::NONCE_LEN],
}

impl RecordKey {
    /// The key and IV of `secret` (a traffic secret) under suite `cipher`.
    fn new(cipher: u16, secret: &[u8]) -> Result<RecordKey, DecryptError> {
        let (algorithm, hash) = suite(cipher).ok_or(DecryptError::UnsupportedSuite(cipher))?;
        let want = hash.hmac_algorithm().digest_algorithm().output_len();
        if secret.len() != want {
            return Err(DecryptError::SecretLength {
                got: secret.len(),
                want,
            });
        }
        let prk = hkdf::Prk::new_less_safe(hash, secret);
        let mut key_bytes = vec![0u8; algorithm.key_len()];
        expand_label(&prk, "key", &mut key_bytes);
        let mut iv = [0u8; aead::NONCE_LEN];
        expand_label(&prk, "iv", &mut iv);
        let key = aead::UnboundKey::new(algorithm, &key_bytes)
            .map(aead::LessSafeKey::new)
            .map_err(|_| DecryptError::UnsupportedSuite(cipher))?;
        Ok(RecordKey { key, iv })
    }

    /// The nonce of record number `seq` (§5.3): the IV XOR the sequence number.
    fn nonce(&self, seq: u64) -> aead::Nonce {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        aead::Nonce::assume_unique_for_key(nonce)
    }
}

/// Open the records one side sent after ServerHello (`records`: whole records,
/// headers included, as they crossed the wire), with that side's handshake
/// traffic secret and the negotiated suite.
pub fn open_flight(cipher: u16, secret: &[u8], records: &[u8]) -> Result<Flight, DecryptError> {
    let key = RecordKey::new(cipher, secret)?;
    let mut flight = Flight::default();
    let mut handshake: Vec<u8> = Vec::new();
    let mut rest = records;
    let mut seq: u64 = 0;
    while rest.len() >= 5 && !flight.finished {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if rest.len() < 5 + len {
            flight.incomplete = Some(format!(
                "encrypted record {} cut short: {} of {len} bytes captured",
                seq + 1,
                rest.len() - 5
            ));
            break;
        }
        let (header, body) = (&rest[..5], &rest[5..5 + len]);
        rest = &rest[5 + len..];
        if header[0] != 23 {
            // A middlebox-compatibility ChangeCipherSpec, or stray plaintext.
            continue;
        }
        let mut buf = body.to_vec();
        let opened = key
            .key
            .open_in_place(key.nonce(seq), aead::Aad::from(header), &mut buf);
        seq += 1;
        let Ok(plain) = opened else {
            if seq == 1 {
                return Err(DecryptError::WrongKey);
            }
            flight.incomplete = Some(format!(
                "encrypted record {seq} did not open before the Finished message"
            ));
            break;
        };
        // TLSInnerPlaintext: content, the real type, then zero padding.
        let Some(end) = plain.iter().rposition(|&b| b != 0) else {
            flight.incomplete = Some(format!("encrypted record {seq} holds no content type"));
            break;
        };
        let (content, kind) = (&plain[..end], plain[end]);
        match kind {
            22 => {
                handshake.extend_from_slice(content);
                while handshake.len() >= 4 {
                    let need = be24(&handshake, 1) + 4;
                    if handshake.len() < need {
                        break;
                    }
                    let message: Vec<u8> = handshake.drain(..need).collect();
                    flight.finished |= message[0] == 20;
                    flight.messages.push((message[0], message[4..].to_vec()));
                    if flight.finished {
                        break;
                    }
                }
            }
            21 if content.len() == 2 => flight.alerts.push((content[0], content[1])),
            _ => {
                flight.incomplete = Some(format!(
                    "encrypted record {seq} carries content type {kind} inside the handshake"
                ));
                break;
            }
        }
    }
    if !flight.finished && flight.incomplete.is_none() && flight.alerts.is_empty() {
        flight.incomplete = Some(if handshake.is_empty() {
            "the capture ends before the Finished message".to_owned()
        } else {
            format!(
                "a handshake message is cut short: {} bytes of it captured",
                handshake.len()
            )
        });
    }
    Ok(flight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tls::build::handshake;

    /// RFC 8448 §3 (simple 1-RTT handshake): the server's handshake traffic
    /// secret, its derived key and IV, and its first encrypted record.
    #[test]
    fn rfc8448_server_handshake_key_schedule() {
        let secret = unhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38");
        let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
        let mut key = [0u8; 16];
        expand_label(&prk, "key", &mut key);
        let mut iv = [0u8; 12];
        expand_label(&prk, "iv", &mut iv);
        assert_eq!(key.to_vec(), unhex("3fce516009c21727d0f2e4e86ee403bc"));
        assert_eq!(iv.to_vec(), unhex("5d313eb2671276ee13000b30"));
    }

    /// Seal handshake messages into TLS 1.3 records as a sender would (one
    /// message per record), for the reader's tests.
    fn seal_flight(cipher: u16, secret: &[u8], messages: &[Vec<u8>]) -> Option<Vec<u8>> {
        let key = RecordKey::new(cipher, secret).ok()?;
        let tag_len = key.key.algorithm().tag_len();
        let mut out = Vec::new();
        for (seq, m) in messages.iter().enumerate() {
            let mut buf = [&m[..], &[22u8, 0, 0][..]].concat();
            let len = ((buf.len() + tag_len) as u16).to_be_bytes();
            let header = [23, 3, 3, len[0], len[1]];
            key.key
                .seal_in_place_append_tag(key.nonce(seq as u64), aead::Aad::from(header), &mut buf)
                .ok()?;
            out.extend_from_slice(&header);
            out.extend_from_slice(&buf);
        }
        Some(out)
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn messages() -> Vec<Vec<u8>> {
        vec![
            handshake(8, &[0, 0]),
            handshake(11, &[0, 0, 0, 0]),
            handshake(15, &[8, 4, 0, 0]),
            handshake(20, &[7; 32]),
        ]
    }

    #[test]
    fn every_suite_round_trips_and_stops_at_finished() {
        for (cipher, len) in [(0x1301, 32), (0x1302, 48), (0x1303, 32)] {
            let secret = vec![0x42; len];
            let mut records = seal_flight(cipher, &secret, &messages()).unwrap();
            // Records after Finished use other keys: never read.
            records.extend_from_slice(&[23, 3, 3, 0, 20]);
            records.extend_from_slice(&[0xee; 20]);
            let f = open_flight(cipher, &secret, &records).unwrap();
            let kinds: Vec<u8> = f.messages.iter().map(|(k, _)| *k).collect();
            assert_eq!(kinds, [8, 11, 15, 20], "suite {cipher:04x}");
            assert!(f.finished && f.incomplete.is_none());
        }
    }

    #[test]
    fn wrong_key_unsupported_suite_and_cut_flights_are_said() {
        let secret = vec![0x42; 32];
        let records = seal_flight(0x1301, &secret, &messages()).unwrap();
        assert_eq!(
            open_flight(0x1301, &[0x43; 32], &records),
            Err(DecryptError::WrongKey)
        );
        assert_eq!(
            open_flight(0x1304, &secret, &records),
            Err(DecryptError::UnsupportedSuite(0x1304))
        );
        assert!(matches!(
            open_flight(0x1302, &secret, &records),
            Err(DecryptError::SecretLength { got: 32, want: 48 })
        ));
        for cut in 0..records.len() {
            let f = open_flight(0x1301, &secret, &records[..cut]).unwrap();
            assert!(!f.finished && f.incomplete.is_some(), "cut at {cut}");
        }
    }
}
