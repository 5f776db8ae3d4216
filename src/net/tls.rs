//! rustls pieces for observing servers: a verifier that records the presented
//! chain and lets the handshake finish (edgetap judges the chain itself, with the
//! client profiles' rules), and client configurations that offer TLS 1.3 and 1.2
//! as current clients do.

use crate::core::observation::{Failure, Step};
use crate::core::tls::iana::{CipherSuite, ProtocolVersion, Side, alert_description_name};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The crypto provider edgetap uses everywhere (ring; see crates.md).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Records the chain the server presents and accepts it, for observation only:
/// nothing secret is ever sent over a connection that uses it.
#[derive(Debug)]
pub struct RecordingVerifier {
    chain: Mutex<Option<Vec<Vec<u8>>>>,
    provider: Arc<CryptoProvider>,
}

impl RecordingVerifier {
    /// A fresh recorder.
    pub fn new(provider: Arc<CryptoProvider>) -> Arc<RecordingVerifier> {
        Arc::new(RecordingVerifier {
            chain: Mutex::new(None),
            provider,
        })
    }

    /// The chain the server presented, leaf first, if a Certificate message arrived.
    pub fn take(&self) -> Option<Vec<Vec<u8>>> {
        self.chain.lock().ok().and_then(|mut c| c.take())
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.as_ref().to_vec()];
        chain.extend(intermediates.iter().map(|c| c.as_ref().to_vec()));
        if let Ok(mut slot) = self.chain.lock() {
            *slot = Some(chain);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // A key rustls cannot verify (e.g. RSA-1024) would end the handshake here;
        // the chain rules already report the key, so observation carries on.
        Ok(verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
        .unwrap_or_else(|_| HandshakeSignatureValid::assertion()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
        .unwrap_or_else(|_| HandshakeSignatureValid::assertion()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration that records the chain through `verifier`.
pub fn observing_client_config(
    verifier: Arc<RecordingVerifier>,
    alpn: &[&str],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    // Every handshake must be a full one that shows the chain, and a ticket
    // kept would hold the server's whole chain for the connection's life
    // (each connection has its own config): no session resumption.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// Note what a finished client handshake negotiated: version, cipher suite
/// and, when the server chose one, the ALPN protocol.
pub fn note_negotiated(
    tls: &mut crate::core::observation::TlsParams,
    conn: &rustls::ClientConnection,
) {
    // Code points, so the names are the IANA ones replay shows, not rustls' spelling.
    tls.version = conn
        .protocol_version()
        .map(|v| ProtocolVersion::Code(u16::from(v)));
    tls.cipher = conn
        .negotiated_cipher_suite()
        .map(|s| CipherSuite(u16::from(s.suite())));
    if let Some(p) = conn.alpn_protocol() {
        tls.alpn = vec![String::from_utf8_lossy(p).into_owned()];
    }
}

/// Explain a failed handshake the way an engineer wants to read it.
pub fn explain(e: &std::io::Error) -> String {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::AlertReceived(alert) => {
                format!(
                    "the server sent a fatal TLS alert: {}",
                    alert_description_name(u8::from(*alert))
                )
            }
            rustls::Error::PeerIncompatible(why) => format!(
                "no common TLS version or cipher suite with the server ({why:?}); edgetap offers TLS 1.3 and 1.2"
            ),
            rustls::Error::InvalidMessage(why) => {
                format!("the server sent a malformed TLS message ({why:?}); is this port TLS?")
            }
            rustls::Error::PeerMisbehaved(why) => {
                format!("the server broke the TLS protocol ({why:?})")
            }
            other => format!("TLS error: {other}"),
        };
    }
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => {
            "the server reset the connection during the TLS handshake".into()
        }
        std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the TLS handshake".into()
        }
        std::io::ErrorKind::InvalidData => format!("the server's reply is not TLS ({e})"),
        _ => e.to_string(),
    }
}

/// A failed client handshake as an observation's failure: the step is the TLS
/// handshake; the server ended it when it sent an alert, reset, closed, or
/// sent something that is not TLS.
pub fn handshake_failure(e: &std::io::Error) -> Failure {
    let by_server = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => matches!(
            tls,
            rustls::Error::AlertReceived(_)
                | rustls::Error::PeerIncompatible(_)
                | rustls::Error::InvalidMessage(_)
                | rustls::Error::PeerMisbehaved(_)
        ),
        None => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::InvalidData
        ),
    };
    Failure::new(
        Step::TlsHandshake,
        by_server.then_some(Side::Server),
        explain(e),
    )
}

/// True when the failure means the server speaks only TLS below 1.2.
pub fn is_old_protocol(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                rustls::Error::PeerIncompatible(
                    rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13
                )
            ) || matches!(
                tls,
                rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)
            )
        })
}

/// For the tests below: `expe.example.com` signed by a fresh root named
/// `root`, valid around the real clock, sent with that root.
#[cfg(test)]
#[cfg(feature = "demo")]
fn expe_identity(root: &str) -> crate::lab::Identity {
    let now = crate::clock::now();
    let ca = crate::lab::pki::Ca::root(root, now).unwrap_or_else(|e| panic!("{e}"));
    ca.identity(
        "expe.example.com",
        &["expe.example.com"],
        None,
        &[ca.der()],
        now,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
#[cfg(feature = "demo")]
mod watch_tests {
    //! The passthrough watch (`core::capture::watch`) fed a real rustls handshake:
    //! here in the shell, since the core's own tests stay free of networking code.
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    use std::net::SocketAddr;

    use crate::core::capture::watch::Watch;
    use crate::net::tls::{RecordingVerifier, observing_client_config, provider};

    /// A real TLS 1.2 handshake between rustls endpoints in memory, each
    /// flight fed to the watch as the proxy would relay it.
    #[test]
    fn watch_sees_a_real_handshake_and_forgets_it_once_taken() {
        let id = super::expe_identity("Watch Root");
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

#[cfg(test)]
#[cfg(feature = "demo")]
mod tls13_replay_tests {
    //! Real TLS 1.3 handshakes between rustls endpoints in memory, written as
    //! frames and replayed with the key log rustls wrote: the chain is read from
    //! the encrypted flight, and a client that rejects the server is heard.
    use std::sync::{Arc, Mutex};

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    use crate::core::capture::replay::{Replay, TlsConnection};
    use crate::core::export::flow::FlowSynth;
    use crate::net::tls::{RecordingVerifier, observing_client_config, provider};

    #[derive(Debug, Default)]
    struct Keys(Mutex<String>);

    impl rustls::KeyLog for Keys {
        fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
            use crate::core::x509::cert::hex;
            let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
            self.0.lock().unwrap().push_str(&line);
        }
    }

    /// One TLS 1.3 handshake with `suite`; `strict` makes the client check the
    /// chain against an empty root store (it rejects it). Returns the frames,
    /// the key log and the served chain.
    fn handshake(
        suite: rustls::SupportedCipherSuite,
        strict: bool,
    ) -> (Vec<Vec<u8>>, String, Vec<Vec<u8>>) {
        let id = super::expe_identity("Replay Root");
        let mut p = rustls::crypto::ring::default_provider();
        p.cipher_suites = vec![suite];
        let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(p))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                id.chain.iter().cloned().map(CertificateDer::from).collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.clone())),
            )
            .unwrap();
        let keys = Arc::new(Keys::default());
        let mut client_config = if strict {
            rustls::ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        } else {
            observing_client_config(RecordingVerifier::new(provider()), &[]).unwrap()
        };
        client_config.key_log = keys.clone();
        let name = ServerName::try_from("expe.example.com").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(client_config), name).unwrap();
        let mut server = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
        let (mut flow, frames) = FlowSynth::open(
            "10.0.0.1:50000".parse().unwrap(),
            "10.0.0.2:8443".parse().unwrap(),
            9,
        );
        let mut frames: Vec<Vec<u8>> = frames.into_iter().map(|f| f.bytes).collect();
        for _ in 0..4 {
            let mut up = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut up).unwrap();
            }
            frames.extend(flow.data(true, &up).into_iter().map(|f| f.bytes));
            if server.read_tls(&mut &up[..]).is_ok() && server.process_new_packets().is_err() {
                break;
            }
            let mut down = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut down).unwrap();
            }
            frames.extend(flow.data(false, &down).into_iter().map(|f| f.bytes));
            client.read_tls(&mut &down[..]).unwrap();
            let _ = client.process_new_packets();
        }
        frames.extend(flow.close(true, false).into_iter().map(|f| f.bytes));
        let log = keys.0.lock().unwrap().clone();
        (frames, log, id.chain)
    }

    fn replay(frames: &[Vec<u8>], keys: Option<&str>) -> TlsConnection {
        let mut r = Replay::new();
        if let Some(k) = keys {
            r.add_keys(k, "--keylog test.log");
        }
        for (i, f) in frames.iter().enumerate() {
            r.frame(i as u64 + 1, 0.0, 1, f);
        }
        let (mut conns, _) = r.finish();
        assert_eq!(conns.len(), 1);
        conns.remove(0)
    }

    #[test]
    fn every_suite_decrypts_to_the_served_chain() {
        use rustls::crypto::ring::cipher_suite as cs;
        for suite in [
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
        ] {
            let (frames, keys, chain) = handshake(suite, false);
            let c = replay(&frames, Some(&keys));
            let d = c.decryption.as_ref().unwrap();
            assert!(d.decrypted, "{suite:?}: {}", d.note);
            assert_eq!(d.note, "decrypted with the key from --keylog test.log");
            assert_eq!(c.certificates.as_ref().unwrap().certs, chain, "{suite:?}");
            assert!(c.alerts.is_empty());
        }
    }

    #[test]
    fn no_keys_other_keys_and_wrong_keys_are_said_per_handshake() {
        use rustls::crypto::ring::cipher_suite as cs;
        let (frames, keys, _) = handshake(cs::TLS13_AES_256_GCM_SHA384, false);
        let none = replay(&frames, None);
        assert!(none.certificates.is_none());
        assert!(
            none.decryption
                .unwrap()
                .note
                .contains("no TLS keys were given")
        );
        // Keys of another connection only.
        let (_, other, _) = handshake(cs::TLS13_AES_256_GCM_SHA384, false);
        let c = replay(&frames, Some(&other));
        assert!(c.certificates.is_none());
        assert!(c.decryption.unwrap().note.contains("is for this handshake"));
        // The right client random with a wrong secret.
        let wrong: String = keys
            .lines()
            .map(|l| {
                let mut p: Vec<String> = l.split(' ').map(str::to_owned).collect();
                p[2] = p[2].replace('0', "1").replace('a', "b");
                p.join(" ") + "\n"
            })
            .collect();
        let c = replay(&frames, Some(&wrong));
        assert!(c.certificates.is_none());
        let note = c.decryption.unwrap().note;
        assert!(note.contains("authentication failed"), "{note}");
    }

    #[test]
    fn a_client_rejecting_the_chain_is_heard_through_its_encrypted_alert() {
        use rustls::crypto::ring::cipher_suite as cs;
        let (frames, keys, chain) = handshake(cs::TLS13_AES_128_GCM_SHA256, true);
        let c = replay(&frames, Some(&keys));
        assert_eq!(c.certificates.as_ref().unwrap().certs, chain);
        // rustls says unknown_ca (48) for an issuer it does not know.
        assert_eq!(c.alerts, vec![(false, 2, 48)], "{:?}", c.decryption);
    }
}
