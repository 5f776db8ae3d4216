//! Passthrough: bytes relayed unchanged both ways by the pumps (`pump.rs`),
//! a copy of the handshake watched with the replay parsers, and the analysis
//! in its own task once the client has answered the server's side of the
//! handshake (so a client's refusal is in the verdict, as in replay).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::net::TcpStream;

use super::FlowTap;
use super::pump::Pump;
use super::{Notice, Proxy, decide};
use crate::core::analysis::HandshakeReport;
use crate::core::capture::watch::Watch;

/// How long a client may sit on the server's flight before the handshake is
/// judged without its answer.
const JUDGE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The analysis task's answer. A channel, not its JoinHandle: a task kept
/// by its handle stays allocated at its future's size (10 KiB, side probe and
/// engine included) until the handle is awaited, which is when the
/// connection ends; this way it is freed as soon as it answers.
type Answer = tokio::sync::oneshot::Receiver<Option<HandshakeReport>>;

/// A relayed connection's analysis: started once, when the handshake can be
/// judged (or the connection ended), in a task of its own.
#[derive(Clone)]
struct Analysis {
    proxy: Arc<Proxy>,
    conn: Arc<decide::Conn>,
    watch: Arc<Mutex<Watch>>,
    flow: Arc<FlowTap>,
    /// How the connection ended, once it has (for a handshake cut short).
    ended: Arc<Mutex<Option<String>>>,
    answer: Arc<Mutex<Option<Answer>>>,
}

impl Analysis {
    /// Start judging what the watch saw, unless that was done already.
    fn start(&self) {
        let Ok(mut slot) = self.answer.lock() else {
            return;
        };
        if slot.is_some() {
            return;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        *slot = Some(rx);
        let me = self.clone();
        let ended = self.ended.lock().ok().and_then(|e| e.clone());
        tokio::spawn(async move {
            let report = me
                .proxy
                .analyse(&me.conn, &me.watch, ended.as_deref())
                .await;
            if let Some(h) = &report {
                me.proxy.capture_verdict(&[&me.flow], me.conn.id, Some(h));
            }
            let _ = tx.send(report);
        });
    }

    /// The connection ended with `reason`: judge what was seen (the handshake
    /// may have ended with it: alert, reset), then wait for the verdict.
    async fn finish(&self, reason: &str) -> Option<HandshakeReport> {
        let saw_tls = self.watch.lock().map(|w| w.saw_tls()).unwrap_or(false);
        if saw_tls {
            if let Ok(mut e) = self.ended.lock() {
                *e = Some(reason.to_owned());
            }
            self.start();
        }
        let answer = self.answer.lock().ok().and_then(|mut s| s.take());
        match answer {
            Some(rx) => rx.await.ok().flatten(),
            None => None,
        }
    }
}

impl Proxy {
    /// Relay `client` and `server` unchanged both ways, watching a copy of
    /// the handshake, and judge it once the client has answered the server's
    /// flight.
    pub(super) async fn relay(
        self: &Arc<Self>,
        conn: &decide::Conn,
        client: TcpStream,
        server: TcpStream,
        flow: &Arc<FlowTap>,
    ) -> RelayOutcome {
        let watch = Arc::new(Mutex::new(Watch::default()));
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        let analysis = Analysis {
            proxy: self.clone(),
            conn: Arc::new(conn.clone()),
            watch: watch.clone(),
            flow: flow.clone(),
            ended: Arc::new(Mutex::new(None)),
            answer: Arc::new(Mutex::new(None)),
        };
        let ctx = Pump {
            record: self.recorder.capturing(),
            watch,
            flow: flow.clone(),
            idle: self.idle,
            activity: Arc::new(crate::net::recording::Activity::new()),
            stop: self.stop.clone(),
        };
        // Judge once the client has answered the server's flight; a client
        // that sits on it (a person at a certificate prompt) is judged
        // JUDGE_WAIT after the server's side was in, with what was seen then.
        let fallback: Mutex<Option<tokio::task::AbortHandle>> = Mutex::new(None);
        let on_watched = |w: &Watch| {
            if w.ready_to_judge() {
                analysis.start();
            } else if w.server_ready()
                && let Ok(mut armed) = fallback.lock()
                && armed.is_none()
            {
                let later = analysis.clone();
                let task = tokio::spawn(async move {
                    tokio::time::sleep(JUDGE_WAIT).await;
                    later.start();
                });
                *armed = Some(task.abort_handle());
            }
        };
        let up = ctx.pump(cr, sw, true, &on_watched);
        let down = ctx.pump(sr, cw, false, &on_watched);
        let (up, down) = tokio::join!(up, down);
        if let Some(task) = fallback.lock().ok().and_then(|mut f| f.take()) {
            task.abort();
        }
        let reason = match (&up.1, &down.1) {
            (Some(r), _) | (None, Some(r)) => r.clone(),
            (None, None) => "closed".into(),
        };
        let report = analysis.finish(&reason).await;
        RelayOutcome {
            up: up.0,
            down: down.0,
            reason,
            report,
        }
    }

    /// Judge what the watch saw of connection `conn` (a TLS 1.3 chain fetched
    /// on the side), after the online checks with `--online`.
    async fn analyse(
        &self,
        conn: &decide::Conn,
        watch: &Mutex<Watch>,
        ended: Option<&str>,
    ) -> Option<HandshakeReport> {
        let seen = watch
            .lock()
            .ok()?
            .take_connection(conn.id, conn.client, conn.upstream);
        let now = crate::clock::now();
        let relayed = conn.relayed(self.domain.as_deref(), now, ended);
        let mut obs = decide::relayed_observation(&seen, &relayed);
        // TLS 1.3: the chain is encrypted in this connection; fetch it on the side.
        if let Some(target) = decide::side_probe_for(&obs, &conn.host, conn.upstream) {
            let (chain, reused) = self.side_probes.chain(&target, self.timeouts, now).await;
            obs.presented = chain;
            obs.origin.locator += &match reused {
                Some(age) => format!("; chain from a side connection {}s ago", age.as_secs()),
                None => "; chain from a side connection".to_owned(),
            };
        }
        self.check_online(&mut obs).await;
        let report = self.engine.evaluate(&[obs], self.judge_time.now());
        let h = report.handshakes.into_iter().next()?;
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        (self.notify)(Notice::Judged {
            id: conn.id,
            report: &h,
        });
        Some(h)
    }
}

/// How a relayed connection ended.
pub(super) struct RelayOutcome {
    pub(super) up: u64,
    pub(super) down: u64,
    pub(super) reason: String,
    pub(super) report: Option<HandshakeReport>,
}
