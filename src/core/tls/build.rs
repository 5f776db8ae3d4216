//! TLS 1.2 wire framing, built rather than parsed: records, handshake
//! messages and a Certificate message. The parsers' tests, the exporter's
//! tests and the replay benchmark make their traffic with these, so the three
//! agree on one encoding.

/// A TLS record (version 3.3) of `content` type carrying `body`.
pub fn record(content: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![content, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A handshake message of type `kind` (1 ClientHello, 2 ServerHello, 11
/// Certificate, 14 ServerHelloDone...) with a 24-bit length.
pub fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

/// A minimal TLS 1.2 ClientHello (offering ECDHE-RSA-AES256-GCM-SHA384, no
/// extensions) or the ServerHello choosing it, as a handshake message.
pub fn hello(server: bool) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    if server {
        body.extend_from_slice(&[0xc0, 0x30, 0]); // suite, no compression
    } else {
        body.extend_from_slice(&[0, 2, 0xc0, 0x30, 1, 0]); // suites, compression
    }
    handshake(if server { 2 } else { 1 }, &body)
}

/// A TLS 1.2 Certificate handshake message carrying `certs` (DER, leaf first).
pub fn certificate(certs: &[Vec<u8>]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in certs {
        list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(c);
    }
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend(list);
    handshake(11, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellos_are_what_the_parsers_read() {
        let ch = crate::core::tls::messages::client_hello(&hello(false)).unwrap();
        assert_eq!(ch.ciphers, [0xc030]);
        let sh = crate::core::tls::messages::server_hello(&hello(true)).unwrap();
        assert_eq!((sh.version, sh.cipher), (0x0303, 0xc030));
    }

    #[test]
    fn lengths_are_big_endian_and_sized_to_the_body() {
        assert_eq!(record(22, &[9; 3]), [22, 3, 3, 0, 3, 9, 9, 9]);
        assert_eq!(handshake(14, &[]), [14, 0, 0, 0]);
        assert_eq!(
            certificate(&[vec![0xaa, 0xbb]]),
            [11, 0, 0, 8, 0, 0, 5, 0, 0, 2, 0xaa, 0xbb]
        );
    }
}
