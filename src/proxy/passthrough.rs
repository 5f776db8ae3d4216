//! Passthrough: bytes relayed unchanged both ways by the pumps (`pump.rs`),
//! a copy of the handshake watched with the replay parsers, and the analysis
//! in its own task once the client has answered the server's side of the
//! handshake (so a client's refusal is in the verdict, as in replay).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::net::TcpStream;

use super::FlowTap;
use super::pump::Pump;
use super::{Notice, Proxy, decide};
use crate::core::analysis::HandshakeReport;
use crate::core::capture::watch::Watch;
use crate::core::observation::Service;

/// How long a client may sit on the server's flight before the handshake is
/// judged without its answer.
const JUDGE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Proxy {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn relay(
        self: &Arc<Self>,
        id: usize,
        client: TcpStream,
        server: TcpStream,
        peer: SocketAddr,
        upstream: SocketAddr,
        host: &str,
        service: Service,
        service_fixed: bool,
        flow: &Arc<FlowTap>,
    ) -> RelayOutcome {
        let watch = Arc::new(Mutex::new(Watch::default()));
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        // The analysis task's answer. A channel, not its JoinHandle: a task
        // kept by its handle stays allocated at its future's size (10 KiB,
        // side probe and engine included) until the handle is awaited, which is
        // when the connection ends; this way it is freed as soon as it answers.
        type Answer = tokio::sync::oneshot::Receiver<Option<HandshakeReport>>;
        let analysis: Arc<Mutex<Option<Answer>>> = Arc::new(Mutex::new(None));
        let ctx = Pump {
            record: self.recorder.capturing(),
            watch: watch.clone(),
            flow: flow.clone(),
            idle: self.idle,
            activity: Arc::new(crate::net::recording::Activity::new()),
            stop: self.stop.clone(),
        };
        // How the connection ended, once it has (for a handshake cut short).
        let ended: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let start_analysis = {
            let me = self.clone();
            let watch = watch.clone();
            let analysis = analysis.clone();
            let host = host.to_owned();
            let ended = ended.clone();
            let flow = flow.clone();
            move || {
                let Ok(mut slot) = analysis.lock() else {
                    return;
                };
                if slot.is_some() {
                    return;
                }
                let me = me.clone();
                let watch = watch.clone();
                let host = host.clone();
                let flow = flow.clone();
                let ended = ended.lock().ok().and_then(|e| e.clone());
                let (tx, rx) = tokio::sync::oneshot::channel();
                *slot = Some(rx);
                tokio::spawn(async move {
                    let report = me
                        .analyse(
                            id,
                            &watch,
                            peer,
                            upstream,
                            &host,
                            service,
                            service_fixed,
                            ended.as_deref(),
                        )
                        .await;
                    if let Some(h) = &report {
                        me.capture_verdict(&[&flow], id, Some(h));
                    }
                    let _ = tx.send(report);
                });
            }
        };
        // Judge once the client has answered the server's flight; a client
        // that sits on it (a person at a certificate prompt) is judged
        // JUDGE_WAIT after the server's side was in, with what was seen then.
        let fallback: Mutex<Option<tokio::task::AbortHandle>> = Mutex::new(None);
        let on_watched = |w: &Watch| {
            if w.ready_to_judge() {
                start_analysis();
            } else if w.server_ready()
                && let Ok(mut armed) = fallback.lock()
                && armed.is_none()
            {
                let start = start_analysis.clone();
                let task = tokio::spawn(async move {
                    tokio::time::sleep(JUDGE_WAIT).await;
                    start();
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
        // The handshake may have ended with the connection (alert, reset): judge what was seen.
        let saw_tls = watch.lock().map(|w| w.saw_tls()).unwrap_or(false);
        if saw_tls {
            if let Ok(mut e) = ended.lock() {
                *e = Some(reason.clone());
            }
            start_analysis();
        }
        let answer = analysis.lock().ok().and_then(|mut s| s.take());
        let report = match answer {
            Some(rx) => rx.await.ok().flatten(),
            None => None,
        };
        RelayOutcome {
            up: up.0,
            down: down.0,
            reason,
            report,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn analyse(
        &self,
        id: usize,
        watch: &Mutex<Watch>,
        client: SocketAddr,
        upstream: SocketAddr,
        host: &str,
        service: Service,
        service_fixed: bool,
        ended: Option<&str>,
    ) -> Option<HandshakeReport> {
        let conn = watch.lock().ok()?.take_connection(id, client, upstream);
        let now = crate::clock::now();
        let relayed = decide::Relayed {
            id,
            client,
            upstream,
            host,
            service,
            service_fixed,
            domain: self.domain.as_deref(),
            at: now,
            ended,
        };
        let mut obs = decide::relayed_observation(&conn, &relayed);
        // TLS 1.3: the chain is encrypted in this connection; fetch it on the side.
        if let Some(target) = decide::side_probe_for(&obs, host, upstream) {
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
        (self.notify)(Notice::Judged { id, report: &h });
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
