//! TLS 1.3 encrypts the server's chain inside the relayed connection, so
//! passthrough fetches it with a side connection to the same upstream, with
//! the same name and service. A Jabber client opens many connections to the
//! same server; the chain a side probe found is reused for a minute per
//! upstream, name and service, and connections that arrive together share one
//! side probe, so edgetap does not double the client's load on the customer's
//! server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::core::observation::Service;
use crate::net::probe::{Target, Timeouts, probe};

/// How long a side probe's chain is reused.
const REUSE: Duration = Duration::from_secs(60);
/// At most this many upstreams remembered (old entries go first).
const MAX_ENTRIES: usize = 1024;

type Key = (SocketAddr, String, Service);
/// When a chain was found, and the chain (DER, leaf first).
type Found = (Instant, Vec<Vec<u8>>);

/// Chains found by side probes, by upstream, name and service.
#[derive(Default)]
pub(super) struct SideProbes {
    seen: Mutex<HashMap<Key, Found>>,
    /// One side probe per key at a time: the others wait for its result.
    gates: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl SideProbes {
    /// A chain found less than [`REUSE`] before `now`, and its age.
    fn cached(&self, key: &Key, now: Instant) -> Option<(Vec<Vec<u8>>, Duration)> {
        let seen = self.seen.lock().ok()?;
        let (at, chain) = seen.get(key)?;
        let age = now.saturating_duration_since(*at);
        (age < REUSE).then(|| (chain.clone(), age))
    }

    fn store(&self, key: Key, chain: Vec<Vec<u8>>, now: Instant) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        seen.retain(|_, (at, _)| now.saturating_duration_since(*at) < REUSE);
        if seen.len() >= MAX_ENTRIES
            && let Some(oldest) = seen
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            seen.remove(&oldest);
        }
        seen.insert(key, (now, chain));
    }

    /// The gate of `key`; gates nobody waits on are dropped beyond [`MAX_ENTRIES`].
    fn gate(&self, key: &Key) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut gates) = self.gates.lock() else {
            return Arc::default();
        };
        if gates.len() >= MAX_ENTRIES {
            gates.retain(|_, g| Arc::strong_count(g) > 1);
        }
        gates.entry(key.clone()).or_default().clone()
    }

    /// The chain `target` presents, from a recent side probe or a new one; with
    /// the age of the reused result. An empty chain (the probe failed) is not kept.
    pub(super) async fn chain(
        &self,
        target: &Target,
        timeouts: Timeouts,
        at: time::OffsetDateTime,
    ) -> (Vec<Vec<u8>>, Option<Duration>) {
        let key = (target.addr, target.host.clone(), target.service);
        if let Some((chain, age)) = self.cached(&key, Instant::now()) {
            return (chain, Some(age));
        }
        // Connections that arrive together wait for the first one's probe.
        let gate = self.gate(&key);
        let _turn = gate.lock().await;
        if let Some((chain, age)) = self.cached(&key, Instant::now()) {
            return (chain, Some(age));
        }
        let chain = probe(target, timeouts, at).await.presented;
        if !chain.is_empty() {
            self.store(key, chain.clone(), Instant::now());
        }
        (chain, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16, name: &str) -> Key {
        (
            SocketAddr::from(([192, 0, 2, 1], port)),
            name.to_owned(),
            Service::Http,
        )
    }

    #[test]
    fn reused_for_a_minute_per_upstream_name_and_service() {
        let side = SideProbes::default();
        let t0 = Instant::now();
        side.store(key(8443, "expe.example.com"), vec![vec![1, 2, 3]], t0);
        let (chain, age) = side
            .cached(&key(8443, "expe.example.com"), t0 + Duration::from_secs(59))
            .expect("fresh");
        assert_eq!(chain, vec![vec![1, 2, 3]]);
        assert_eq!(age, Duration::from_secs(59));
        assert!(
            side.cached(&key(8443, "expe.example.com"), t0 + REUSE)
                .is_none(),
            "stale after a minute"
        );
        assert!(side.cached(&key(8443, "other.example.com"), t0).is_none());
        assert!(side.cached(&key(5222, "expe.example.com"), t0).is_none());
        let mut xmpp = key(8443, "expe.example.com");
        xmpp.2 = Service::Xmpp;
        assert!(side.cached(&xmpp, t0).is_none());
    }

    #[test]
    fn bounded_oldest_first() {
        let side = SideProbes::default();
        let t0 = Instant::now();
        for i in 0..(MAX_ENTRIES as u16 + 5) {
            side.store(
                key(i, "h"),
                vec![],
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        let later = t0 + Duration::from_secs(1);
        assert_eq!(side.seen.lock().unwrap().len(), MAX_ENTRIES);
        assert!(side.cached(&key(0, "h"), later).is_none(), "oldest went");
        assert!(
            side.cached(&key(MAX_ENTRIES as u16 + 4, "h"), later)
                .is_some()
        );
    }

    /// Eight connections to the same server and name at once: one side
    /// probe reaches the server, and every connection gets its chain.
    #[cfg(feature = "demo")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_connections_share_one_side_probe() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use crate::lab::{Behaviour, serve};
        let now = crate::clock::now();
        let ca = crate::lab::pki::Ca::root("Side Root", now).unwrap();
        let id = ca
            .identity(
                "expe.example.com",
                &["expe.example.com"],
                None,
                &[ca.der()],
                now,
            )
            .unwrap();
        let chain = id.chain.clone();
        let server = serve("127.0.0.1:0".parse().unwrap(), Some(id), Behaviour::Https)
            .await
            .unwrap();
        // A counting relay in front of the server.
        let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = front.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = front.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut s) = tokio::net::TcpStream::connect(server).await {
                        let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                    }
                });
            }
        });
        let side = Arc::new(SideProbes::default());
        let target = Target {
            host: "expe.example.com".into(),
            addr,
            alternates: Vec::new(),
            service: Service::Http,
            xmpp_domain: None,
            edge_domain: None,
            srv: None,
        };
        let step = Duration::from_secs(5);
        let timeouts = Timeouts {
            connect: step,
            starttls: step,
            handshake: step,
        };
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (side, target) = (side.clone(), target.clone());
            tasks.push(tokio::spawn(async move {
                side.chain(&target, timeouts, crate::clock::now()).await
            }));
        }
        let mut fresh = 0;
        for t in tasks {
            let (got, age) = t.await.unwrap();
            assert_eq!(got, chain);
            fresh += usize::from(age.is_none());
        }
        assert_eq!(fresh, 1, "one probe, seven reuses");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection to the server"
        );
    }
}
