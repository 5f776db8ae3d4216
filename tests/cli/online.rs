//! `--online`: real CRLs (rcgen) and real OCSP responses (made by the openssl
//! CLI's responder code from an index file) served over HTTP on loopback; the
//! binary fetches them and the `revocation.*` rules judge what came back.
//! Without `--online` nothing is fetched.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::{refused_port, run};

/// Path prefixes with the status and body they answer.
type Routes = Arc<Mutex<Vec<(String, u16, Vec<u8>)>>>;

/// A loopback HTTP/1.1 server: each path prefix answers with a status and a
/// body, whatever the method (GET for CRLs and small OCSP requests, POST else).
struct HttpServer {
    port: u16,
    routes: Routes,
    requests: Arc<AtomicUsize>,
}

impl HttpServer {
    fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Routes = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let (r, n) = (routes.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                n.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let (status, answer) = r
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(prefix, _, _)| path.starts_with(prefix.as_str()))
                    .map(|(_, s, b)| (*s, b.clone()))
                    .unwrap_or((404, b"not found".to_vec()));
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    answer.len()
                );
                let _ = stream.write_all(&answer);
            }
        });
        HttpServer {
            port,
            routes,
            requests,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn serve(&self, prefix: &str, status: u16, body: Vec<u8>) {
        self.routes
            .lock()
            .unwrap()
            .push((prefix.to_owned(), status, body));
    }
}

/// An authorityInfoAccess extension with OCSP and caIssuers URLs.
fn aia(ocsp: Option<&str>, ca_issuers: Option<&str>) -> CustomExtension {
    let mut items: Vec<(&[u64], &str)> = Vec::new();
    if let Some(u) = ocsp {
        items.push((&[1, 3, 6, 1, 5, 5, 7, 48, 1], u));
    }
    if let Some(u) = ca_issuers {
        items.push((&[1, 3, 6, 1, 5, 5, 7, 48, 2], u));
    }
    let der = yasna::construct_der(|w| {
        w.write_sequence_of(|w| {
            for (oid, url) in &items {
                w.next().write_sequence(|w| {
                    w.next()
                        .write_oid(&yasna::models::ObjectIdentifier::from_slice(oid));
                    w.next()
                        .write_tagged_implicit(yasna::Tag::context(6), |w| w.write_ia5_string(url));
                });
            }
        })
    });
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], der)
}

fn ca_params(cn: &str, now: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - Duration::days(10);
    p.not_after = now + Duration::days(365);
    p
}

/// A server certificate with a fixed serial, CRL URLs and an AIA.
fn leaf_params(
    name: &str,
    serial: u16,
    crls: &[String],
    aia_ext: Option<CustomExtension>,
    now: OffsetDateTime,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, name);
    p.subject_alt_names = vec![SanType::DnsName(name.try_into().unwrap())];
    p.serial_number = Some(SerialNumber::from(serial.to_be_bytes().to_vec()));
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.is_ca = IsCa::ExplicitNoCa;
    p.use_authority_key_identifier_extension = true;
    p.crl_distribution_points = crls
        .iter()
        .map(|u| rcgen::CrlDistributionPoint {
            uris: vec![u.clone()],
        })
        .collect();
    p.custom_extensions = aia_ext.into_iter().collect();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(90);
    p
}

/// OCSP responses for each serial, made by `openssl ocsp` from an index file
/// (the responder code of the openssl CLI, run offline): `revoked` lists the
/// serials revoked (keyCompromise).
/// `signer` is the CA itself, or a responder certificate and key (delegated by
/// the CA, or a forger's).
fn openssl_ocsp_responses(
    dir: &Path,
    ca_pem: &str,
    signer: (&str, &str),
    leaves: &[(u16, String)],
    revoked: &[u16],
    now: OffsetDateTime,
) -> HashMap<u16, Vec<u8>> {
    let ca = dir.join("ca.pem");
    let signer_cert = dir.join("signer.pem");
    let key = dir.join("signer.key");
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(&signer_cert, signer.0).unwrap();
    std::fs::write(&key, signer.1).unwrap();
    let stamp = |t: OffsetDateTime| {
        format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            t.year() % 100,
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    let index: String = leaves
        .iter()
        .map(|(serial, _)| {
            let expiry = stamp(now + Duration::days(90));
            if revoked.contains(serial) {
                format!(
                    "R\t{expiry}\t{},keyCompromise\t{serial:04X}\tunknown\t/CN=x\n",
                    stamp(now - Duration::hours(2))
                )
            } else {
                format!("V\t{expiry}\t\t{serial:04X}\tunknown\t/CN=x\n")
            }
        })
        .collect();
    let index_path = dir.join("index.txt");
    std::fs::write(&index_path, index).unwrap();
    let mut out = HashMap::new();
    for (serial, pem) in leaves {
        let leaf = dir.join(format!("{serial}.pem"));
        let req = dir.join(format!("{serial}.req"));
        let resp = dir.join(format!("{serial}.resp"));
        std::fs::write(&leaf, pem).unwrap();
        let made = Command::new("openssl")
            .args(["ocsp", "-no_nonce", "-issuer"])
            .arg(&ca)
            .arg("-cert")
            .arg(&leaf)
            .arg("-reqout")
            .arg(&req)
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let answered = Command::new("openssl")
            .args(["ocsp", "-ndays", "1", "-index"])
            .arg(&index_path)
            .arg("-CA")
            .arg(&ca)
            .arg("-rsigner")
            .arg(&signer_cert)
            .arg("-rkey")
            .arg(&key)
            .arg("-reqin")
            .arg(&req)
            .arg("-respout")
            .arg(&resp)
            .output()
            .unwrap();
        assert!(answered.status.success(), "{answered:?}");
        out.insert(*serial, std::fs::read(&resp).unwrap());
    }
    out
}

fn findings<'a>(doc: &'a Value, rule: &str) -> Vec<&'a Value> {
    doc["handshakes"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

fn inspect(dir: &Path, file: &str, name: &str, online: bool) -> Value {
    let path = dir.join(file);
    let trust = dir.join("root.pem");
    let (path, trust) = (path.to_str().unwrap(), trust.to_str().unwrap());
    let mut args = vec![
        "inspect", path, "--name", name, "--trust", trust, "--format", "json",
    ];
    if online {
        args.extend(["--online", "--online-timeout", "3"]);
    }
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

#[test]
fn revocation_is_checked_online_only_when_asked() {
    // Certificates, CRLs and responses valid around the real clock, which
    // inspect judges at (revocation freshness included).
    #[allow(clippy::disallowed_methods)]
    let now = OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let http = HttpServer::start();
    let refused = refused_port();
    let root_key = KeyPair::generate().unwrap();
    let root = CertifiedIssuer::self_signed(ca_params("Online Root", now), root_key).unwrap();
    std::fs::write(dir.path().join("root.pem"), root.pem()).unwrap();

    // Three servers: one good, one revoked, one whose sources all fail.
    let good_crl = http.url("/ca.crl");
    let stale_crl = http.url("/stale.crl");
    let refused_crl = format!("http://127.0.0.1:{}/ca.crl", refused.port);
    let make = |name: &str, serial: u16, crls: &[String], ocsp: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(name, serial, crls, Some(aia(Some(ocsp), None)), now)
            .signed_by(&key, &root)
            .unwrap();
        std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
        cert.pem()
    };
    let good = make(
        "good.example.com",
        0x1001,
        std::slice::from_ref(&good_crl),
        &http.url("/ocsp-good"),
    );
    let revoked = make(
        "revoked.example.com",
        0x1002,
        &[good_crl],
        &http.url("/ocsp-revoked"),
    );
    make(
        "down.example.com",
        0x1003,
        &[refused_crl, stale_crl],
        &http.url("/ocsp-missing"),
    );

    let crl = |next_update: OffsetDateTime| {
        CertificateRevocationListParams {
            this_update: now - Duration::days(2),
            next_update,
            crl_number: SerialNumber::from(vec![7]),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(0x1002u16.to_be_bytes().to_vec()),
                revocation_time: now - Duration::hours(2),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&root)
        .unwrap()
        .der()
        .to_vec()
    };
    http.serve("/ca.crl", 200, crl(now + Duration::days(7)));
    http.serve("/stale.crl", 200, crl(now - Duration::days(1)));
    let responses = openssl_ocsp_responses(
        dir.path(),
        &root.pem(),
        (&root.pem(), &root.key().serialize_pem()),
        &[(0x1001, good), (0x1002, revoked)],
        &[0x1002],
        now,
    );
    http.serve("/ocsp-good", 200, responses[&0x1001].clone());
    http.serve("/ocsp-revoked", 200, responses[&0x1002].clone());

    // OCSP only: a responder the root delegated (OCSPSigning), and a forger.
    let delegated_ok = make(
        "delegated.example.com",
        0x1004,
        &[],
        &http.url("/ocsp-delegated"),
    );
    let forged = make("forged.example.com", 0x1005, &[], &http.url("/ocsp-forged"));
    let responder_key = KeyPair::generate().unwrap();
    let mut responder = ca_params("Online OCSP Responder", now);
    responder.is_ca = IsCa::ExplicitNoCa;
    responder.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    responder.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    let responder = responder.signed_by(&responder_key, &root).unwrap();
    let delegated = openssl_ocsp_responses(
        dir.path(),
        &root.pem(),
        (&responder.pem(), &responder_key.serialize_pem()),
        &[(0x1004, delegated_ok)],
        &[],
        now,
    );
    http.serve("/ocsp-delegated", 200, delegated[&0x1004].clone());
    let forger =
        CertifiedIssuer::self_signed(ca_params("Online Root", now), KeyPair::generate().unwrap())
            .unwrap();
    let forged = openssl_ocsp_responses(
        dir.path(),
        &root.pem(),
        (&forger.pem(), &forger.key().serialize_pem()),
        &[(0x1005, forged)],
        &[],
        now,
    );
    http.serve("/ocsp-forged", 200, forged[&0x1005].clone());

    // Offline (the default): nothing is fetched, nothing is said about it.
    let doc = inspect(
        dir.path(),
        "revoked.example.com.pem",
        "revoked.example.com",
        false,
    );
    assert!(findings(&doc, "revocation.revoked").is_empty());
    assert_eq!(
        http.requests.load(Ordering::SeqCst),
        0,
        "offline fetched something"
    );

    // Good: the CRL and the responder both say so.
    let doc = inspect(dir.path(), "good.example.com.pem", "good.example.com", true);
    assert!(findings(&doc, "revocation.revoked").is_empty(), "{doc}");
    assert!(findings(&doc, "revocation.unreachable").is_empty(), "{doc}");
    let checks = doc["handshakes"][0]["revocation"]
        .as_array()
        .expect("checks in the JSON");
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert!(
        checks.iter().all(|c| c["status"]["status"] == "good"),
        "{checks:?}"
    );

    // Revoked: said with the reason, and every profile fails.
    let doc = inspect(
        dir.path(),
        "revoked.example.com.pem",
        "revoked.example.com",
        true,
    );
    let revoked = findings(&doc, "revocation.revoked");
    assert_eq!(revoked.len(), 1, "{doc}");
    let message = revoked[0]["message"].as_str().unwrap();
    assert!(
        message.to_ascii_lowercase().contains("keycompromise")
            || message.contains("Key Compromise"),
        "{message}"
    );
    for profile in ["jabber", "ip-phone", "tc-endpoint", "expressway-c"] {
        assert_eq!(crate::outcome(&doc, 0, profile), "fail", "{profile}");
    }

    // A delegated responder's answer counts; a forger's (same CA name, another key) does not.
    let doc = inspect(
        dir.path(),
        "delegated.example.com.pem",
        "delegated.example.com",
        true,
    );
    assert!(findings(&doc, "revocation.unreachable").is_empty(), "{doc}");
    assert_eq!(
        doc["handshakes"][0]["revocation"][0]["status"]["status"], "good",
        "{doc}"
    );
    let doc = inspect(
        dir.path(),
        "forged.example.com.pem",
        "forged.example.com",
        true,
    );
    let forged = findings(&doc, "revocation.unreachable");
    assert_eq!(forged.len(), 1, "{doc}");
    assert!(
        forged[0]["message"].as_str().unwrap().contains("signature"),
        "{doc}"
    );

    // Every source fails: each URL is named with why; Jabber fails, Expressway-C warns.
    let doc = inspect(dir.path(), "down.example.com.pem", "down.example.com", true);
    let down = findings(&doc, "revocation.unreachable");
    assert_eq!(down.len(), 1, "{doc}");
    let message = down[0]["message"].as_str().unwrap();
    assert!(message.contains("connection refused"), "{message}");
    assert!(message.contains("stale"), "{message}");
    assert!(message.contains("HTTP 404"), "{message}");
    assert_eq!(crate::outcome(&doc, 0, "jabber"), "fail");
    assert_eq!(crate::outcome(&doc, 0, "expressway-c"), "warn");
}

#[test]
fn a_missing_issuer_is_fetched_from_its_ca_issuers_url() {
    // Certificates, CRLs and responses valid around the real clock, which
    // inspect judges at (revocation freshness included).
    #[allow(clippy::disallowed_methods)]
    let now = OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let http = HttpServer::start();
    let root =
        CertifiedIssuer::self_signed(ca_params("AIA Root", now), KeyPair::generate().unwrap())
            .unwrap();
    let inter = CertifiedIssuer::signed_by(
        ca_params("AIA Issuing CA", now),
        KeyPair::generate().unwrap(),
        &root,
    )
    .unwrap();
    std::fs::write(dir.path().join("root.pem"), root.pem()).unwrap();
    http.serve("/issuing.cer", 200, inter.der().to_vec());
    let key = KeyPair::generate().unwrap();
    let leaf = leaf_params(
        "expe.example.com",
        0x2001,
        &[],
        Some(aia(None, Some(&http.url("/issuing.cer")))),
        now,
    )
    .signed_by(&key, &inter)
    .unwrap();
    std::fs::write(dir.path().join("leaf.pem"), leaf.pem()).unwrap();

    let offline = inspect(dir.path(), "leaf.pem", "expe.example.com", false);
    let online = inspect(dir.path(), "leaf.pem", "expe.example.com", true);
    let missing = findings(&online, "chain.missing-intermediate");
    assert_eq!(missing.len(), 1, "{online}");
    let message = missing[0]["message"].as_str().unwrap();
    assert!(message.contains(&http.url("/issuing.cer")), "{message}");
    assert!(message.contains("Windows Jabber"), "{message}");
    // The phones do not chase AIA: their failure stays, online or not.
    for doc in [&offline, &online] {
        assert_eq!(crate::outcome(doc, 0, "ip-phone"), "fail");
    }
    assert_eq!(
        online["handshakes"][0]["fetched_issuers"][0]["subject"],
        "CN=AIA Issuing CA"
    );
}

/// The proxy with `--online`: curl through passthrough to an `openssl s_server`
/// whose certificate is revoked in its CRL; the event says so, and the relay
/// itself is untouched (curl gets its page).
#[test]
fn the_proxy_checks_revocation_online_off_the_relay_path() {
    if !crate::tool_present(
        "openssl",
        "the_proxy_checks_revocation_online_off_the_relay_path",
    ) {
        return;
    }
    #[allow(clippy::disallowed_methods)]
    let now = OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f);
    let http = HttpServer::start();
    let root = CertifiedIssuer::self_signed(
        ca_params("Proxy Online Root", now),
        KeyPair::generate().unwrap(),
    )
    .unwrap();
    std::fs::write(d("root.pem"), root.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = leaf_params(
        "expe.example.com",
        0x3001,
        &[http.url("/proxy.crl")],
        None,
        now,
    )
    .signed_by(&key, &root)
    .unwrap();
    std::fs::write(d("leaf.pem"), leaf.pem()).unwrap();
    std::fs::write(d("leaf.key"), key.serialize_pem()).unwrap();
    let crl = CertificateRevocationListParams {
        this_update: now - Duration::days(1),
        next_update: now + Duration::days(7),
        crl_number: SerialNumber::from(vec![1]),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(0x3001u16.to_be_bytes().to_vec()),
            revocation_time: now - Duration::hours(1),
            reason_code: Some(RevocationReason::Superseded),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&root)
    .unwrap();
    http.serve("/proxy.crl", 200, crl.der().to_vec());

    let upstream = crate::free_port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{upstream}"))
        .arg("-cert")
        .arg(d("leaf.pem"))
        .arg("-key")
        .arg(d("leaf.key"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl is installed");
    crate::wait_listening(upstream);
    let listen = crate::free_port();
    let events_path = d("events.jsonl");
    let proxy = crate::spawn_proxy(&[
        "--listen".to_owned(),
        format!("127.0.0.1:{listen}"),
        "--upstream".to_owned(),
        format!("127.0.0.1:{upstream}"),
        "--service".to_owned(),
        "http".to_owned(),
        "--trust".to_owned(),
        d("root.pem").display().to_string(),
        "--events".to_owned(),
        events_path.display().to_string(),
        "--online".to_owned(),
    ]);
    crate::wait_listening(listen);
    let answer = crate::curl(listen, "expe.example.com", &d("root.pem"), &[]);
    let stderr = crate::stop_proxy(proxy);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(answer, "200", "curl through the proxy: {stderr}");
    let events = crate::events(&events_path);
    // The readiness check's connection is an event too; curl's is the one with SNI.
    let judged: Vec<&Value> = events
        .iter()
        .filter(|e| e["handshake"]["reference_identity"] == "expe.example.com")
        .collect();
    assert_eq!(judged.len(), 1, "{events:?}");
    let rules = crate::finding_rules(&judged[0]["handshake"]);
    assert!(rules.iter().any(|r| r == "revocation.revoked"), "{rules:?}");
    assert!(http.requests.load(Ordering::SeqCst) >= 1);
}
