//! `--online`: fetch what revocation needs over HTTP and put the answers on the
//! observations, for the `revocation.*` detectors to judge like anything else.
//!
//! For every certificate the server sent: its CRLs (cRLDistributionPoints) and
//! its OCSP responders (authorityInfoAccess), checked against the issuer the
//! client's path building finds; when the path stops at a missing issuer that
//! names a caIssuers URL, the issuer is fetched (and shown) as Windows does.
//! Only `http:` URLs are fetched (RFC 5280 4.2.1.13, RFC 6960 A.1); every
//! response is capped in size and time, redirects are followed at most three
//! times, and each URL is fetched once per run. This module decides nothing:
//! `core::x509::revocation` reads the bytes.

use std::collections::HashMap;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::core::observation::{
    FetchedIssuer, Observation, RevocationCheck, RevocationMethod, RevocationStatus,
};
use crate::core::x509::revocation::{self, Issuer};
use crate::core::x509::{CertInfo, PathEnd, PathNode, TrustStore, path};

/// Largest CRL read (some public CAs publish CRLs of several megabytes).
const CRL_MAX_BYTES: usize = 32 << 20;
/// Largest OCSP response or issuer certificate read.
const SMALL_MAX_BYTES: usize = 256 << 10;

/// What a fetch gave: the body, or why there is none.
type Fetched = Result<Vec<u8>, String>;

/// One cached answer: filled once; concurrent askers wait for the one fetch.
type Slot = std::sync::Arc<tokio::sync::OnceCell<Fetched>>;

/// The HTTP client and this run's cache of answers, by (method, URL, body).
pub struct Online {
    client: reqwest::Client,
    timeout: Duration,
    cache: Mutex<HashMap<(String, Vec<u8>), Slot>>,
}

impl Online {
    /// A client whose every request ends within `timeout`.
    pub fn new(timeout: Duration) -> anyhow::Result<Online> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!(
                "edgetap/",
                env!("CARGO_PKG_VERSION"),
                " (revocation check)"
            ))
            .build()?;
        Ok(Online {
            client,
            timeout,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Check every observation: revocation of each certificate sent, and a
    /// missing issuer fetched from its caIssuers URL. `store` holds every
    /// anchor any profile trusts (issuers of the last certificate sent).
    pub async fn check_all(
        &self,
        observations: &mut [Observation],
        store: &TrustStore,
        now: OffsetDateTime,
    ) {
        for obs in observations.iter_mut() {
            self.check(obs, store, now).await;
        }
    }

    async fn check(&self, obs: &mut Observation, store: &TrustStore, now: OffsetDateTime) {
        let mut chain = Vec::new();
        let mut positions = Vec::new();
        for (position, der) in obs.presented.iter().enumerate() {
            if let Ok(cert) = CertInfo::parse(der) {
                chain.push(cert);
                positions.push(position);
            }
        }
        if positions.first() != Some(&0) {
            return; // no leaf, no path
        }
        let built = path::build(&chain, store, now);
        // The last certificate's issuer, fetched when nobody holds it.
        let mut fetched: Option<CertInfo> = None;
        if let PathEnd::MissingIssuer { .. } = built.end
            && let Some(last) = built
                .nodes
                .last()
                .and_then(|n| path::ChainPath::cert(*n, &chain, store))
        {
            for url in last.ca_issuer_urls.iter().filter(|u| is_http(u)) {
                match self.fetch(url, None, SMALL_MAX_BYTES).await {
                    Ok(body) => match issuer_from(&body) {
                        Some(cert) if cert.subject_der == last.issuer_der => {
                            obs.fetched_issuers.push(FetchedIssuer {
                                url: url.clone(),
                                subject: cert.subject.clone(),
                                sha256: cert.sha256.clone(),
                                der: cert.der.clone(),
                            });
                            fetched = Some(cert);
                            break;
                        }
                        Some(cert) => tracing::info!(
                            url,
                            subject = cert.subject,
                            "caIssuers URL served another certificate"
                        ),
                        None => tracing::info!(
                            url,
                            "caIssuers URL served no certificate edgetap reads (DER or PEM)"
                        ),
                    },
                    Err(why) => tracing::info!(url, why, "caIssuers URL could not be fetched"),
                }
            }
        }
        // Each certificate sent, with the issuer the path gives it.
        let mut pairs: Vec<(usize, &CertInfo, Issuer<'_>)> = Vec::new();
        for link in &built.links {
            let PathNode::Presented(i) = link.child else {
                continue;
            };
            if link.child == link.issuer {
                continue; // a self-signed root is not checked for revocation
            }
            let issuer = match link.issuer {
                PathNode::Presented(j) => Issuer {
                    subject_der: &chain[j].subject_der,
                    spki_der: &chain[j].spki_der,
                },
                PathNode::Anchor(a) => Issuer {
                    subject_der: &store.anchors[a].subject_der,
                    spki_der: &store.anchors[a].spki_der,
                },
            };
            pairs.push((i, &chain[i], issuer));
        }
        if let (Some(issuer), Some(PathNode::Presented(i))) = (&fetched, built.nodes.last()) {
            pairs.push((
                *i,
                &chain[*i],
                Issuer {
                    subject_der: &issuer.subject_der,
                    spki_der: &issuer.spki_der,
                },
            ));
        }
        let mut checks = Vec::new();
        for (i, cert, issuer) in pairs {
            for url in cert.ocsp_urls.iter().filter(|u| is_http(u)) {
                let status = self.ocsp(url, cert, issuer, now).await;
                checks.push(RevocationCheck {
                    position: positions[i],
                    subject: cert.subject.clone(),
                    method: RevocationMethod::Ocsp,
                    url: url.clone(),
                    status,
                });
            }
            for url in cert.crl_urls.iter().filter(|u| is_http(u)) {
                let status = match self.fetch(url, None, CRL_MAX_BYTES).await {
                    Ok(body) => revocation::read_crl(&body, cert, issuer, now),
                    Err(why) => RevocationStatus::Unreachable { why },
                };
                checks.push(RevocationCheck {
                    position: positions[i],
                    subject: cert.subject.clone(),
                    method: RevocationMethod::Crl,
                    url: url.clone(),
                    status,
                });
            }
        }
        obs.revocation = checks;
    }

    /// Ask one responder: GET when the request is small (RFC 6960 A.1; what
    /// responders cache), POST otherwise.
    async fn ocsp(
        &self,
        url: &str,
        cert: &CertInfo,
        issuer: Issuer<'_>,
        now: OffsetDateTime,
    ) -> RevocationStatus {
        let request = match revocation::ocsp_request(cert, issuer) {
            Ok(r) => r,
            Err(e) => return RevocationStatus::Unreachable { why: e.to_string() },
        };
        let fetched = match revocation::ocsp_get_url(url, &request) {
            Some(get) => self.fetch(&get, None, SMALL_MAX_BYTES).await,
            None => self.fetch(url, Some(request), SMALL_MAX_BYTES).await,
        };
        match fetched {
            Ok(body) => revocation::read_ocsp(&body, cert, issuer, now),
            Err(why) => RevocationStatus::Unreachable { why },
        }
    }

    /// GET `url` (or POST `body` as an OCSP request), at most `max` bytes, once
    /// per run: connections asking at the same time share the one fetch.
    async fn fetch(&self, url: &str, body: Option<Vec<u8>>, max: usize) -> Fetched {
        let key = (url.to_owned(), body.clone().unwrap_or_default());
        let slot = self.cache.lock().await.entry(key).or_default().clone();
        slot.get_or_init(|| self.fetch_uncached(url, body, max))
            .await
            .clone()
    }

    async fn fetch_uncached(&self, url: &str, body: Option<Vec<u8>>, max: usize) -> Fetched {
        let request = match body {
            Some(b) => self
                .client
                .post(url)
                .header("Content-Type", "application/ocsp-request")
                .body(b),
            None => self.client.get(url),
        };
        let mut response = request.send().await.map_err(|e| self.describe(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.describe(&e))? {
            if bytes.len() + chunk.len() > max {
                return Err(format!(
                    "the answer is larger than {} KiB; edgetap stops there",
                    max >> 10
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// The failed step in words: DNS, refused, timeout, redirects, ...
    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!(
                "no answer within {} s (timeout)",
                self.timeout.as_secs_f64()
            );
        }
        if e.is_redirect() {
            return "too many redirects (more than 3)".into();
        }
        // The innermost cause names DNS failures and refused connections.
        let mut source: &dyn std::error::Error = e;
        let mut chain = vec![e.to_string()];
        while let Some(inner) = source.source() {
            chain.push(inner.to_string());
            source = inner;
        }
        let text = chain.join(": ");
        if text.contains("dns error") || text.contains("failed to lookup") {
            format!(
                "the host name does not resolve (DNS): {}",
                chain.last().cloned().unwrap_or_default()
            )
        } else if text.contains("Connection refused") || text.contains("connection refused") {
            "connection refused".into()
        } else if e.is_builder() || text.contains("scheme") {
            format!("not an http: URL edgetap fetches ({text})")
        } else {
            text
        }
    }
}

fn is_http(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
}

/// A certificate from a caIssuers body: DER or PEM (PKCS#7 bundles are not read).
fn issuer_from(body: &[u8]) -> Option<CertInfo> {
    if let Ok(cert) = CertInfo::parse(body) {
        return Some(cert);
    }
    let pem = ::pem::parse(body).ok()?;
    (pem.tag() == "CERTIFICATE")
        .then(|| CertInfo::parse(pem.contents()).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A loopback HTTP server that answers every request with `body` after a
    /// pause, counting the requests.
    async fn slow_server(body: &'static [u8]) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/ca.crl", listener.local_addr().expect("addr"));
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(body).await;
                });
            }
        });
        (url, count)
    }

    #[tokio::test]
    async fn concurrent_askers_share_one_fetch_and_later_ones_the_cache() {
        let (url, count) = slow_server(b"crl bytes").await;
        let online = Arc::new(Online::new(Duration::from_secs(5)).expect("client"));
        let asks: Vec<_> = (0..5)
            .map(|_| {
                let (online, url) = (online.clone(), url.clone());
                tokio::spawn(async move { online.fetch(&url, None, 1024).await })
            })
            .collect();
        for ask in asks {
            assert_eq!(ask.await.expect("task"), Ok(b"crl bytes".to_vec()));
        }
        assert_eq!(
            online.fetch(&url, None, 1024).await,
            Ok(b"crl bytes".to_vec())
        );
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "one request for six askers"
        );
    }

    #[tokio::test]
    async fn an_answer_over_the_cap_is_refused() {
        let (url, _) = slow_server(&[0u8; 4096]).await;
        let online = Online::new(Duration::from_secs(5)).expect("client");
        let err = online.fetch(&url, None, 1024).await.expect_err("too large");
        assert!(err.contains("larger than 1 KiB"), "{err}");
    }
}
