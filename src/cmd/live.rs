//! The proxy's live view, run on a thread of its own: it owns the terminal
//! (raw mode, alternate screen) from start to [`Live::stop`], takes rows from
//! the connections through a bounded queue (a full queue drops the row and
//! counts it: the view never holds up a connection), reads keys, and redraws
//! five times a second. `q` asks the proxy to stop, as Ctrl-C does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::Duration;

use crate::proxy::Notice;
use crate::sink::live::{Action, Counters, LiveRow, LiveView, RowKind};

enum Message {
    Row(Box<LiveRow>),
    Closed(u64, u64),
}

/// The running view.
pub struct Live {
    tx: std::sync::Mutex<Option<SyncSender<Message>>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Rows the queue had no room for.
    dropped: AtomicU64,
}

impl Live {
    /// Take over the terminal and start drawing. `counters` is read at every
    /// redraw; `quit` is called once when the user presses q.
    pub fn start(
        title: String,
        counters: Box<dyn Fn() -> Counters + Send>,
        quit: Box<dyn Fn() + Send>,
    ) -> std::io::Result<Live> {
        let (tx, rx) = std::sync::mpsc::sync_channel(4096);
        let terminal = ratatui::try_init()?;
        let thread = crate::threads::spawn("live", move || {
            run(terminal, rx, title, counters, quit);
            ratatui::restore();
        });
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                ratatui::restore();
                return Err(e);
            }
        };
        Ok(Live {
            tx: std::sync::Mutex::new(Some(tx)),
            thread: std::sync::Mutex::new(Some(thread)),
            dropped: AtomicU64::new(0),
        })
    }

    /// Hand a proxy notice to the view, never waiting.
    pub fn notice(&self, notice: Notice<'_>) {
        let time = {
            let now = crate::clock::now();
            format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second())
        };
        let message = match notice {
            Notice::Judged { id, report } => {
                Message::Row(Box::new(LiveRow::judged(id, report, time)))
            }
            Notice::UpstreamFailed { id, client, reason } => {
                Message::Row(Box::new(LiveRow::failed(
                    id,
                    client,
                    "-",
                    RowKind::UpstreamFailed(reason.to_owned()),
                    time,
                )))
            }
            Notice::NoHandshake {
                id,
                client,
                upstream,
                reason,
            } => Message::Row(Box::new(LiveRow::failed(
                id,
                client,
                upstream,
                RowKind::NoHandshake(reason.to_owned()),
                time,
            ))),
            Notice::Closed {
                bytes_up,
                bytes_down,
                ..
            } => Message::Closed(bytes_up, bytes_down),
        };
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|tx| tx.as_ref().map(|tx| tx.try_send(message).is_ok()));
        if sent == Some(false) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Rows the queue had no room for (the events file has them).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Give the terminal back as it was (wait up to two seconds for the thread).
    pub fn stop(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                ratatui::restore();
            }
        }
    }
}

fn run(
    mut terminal: ratatui::DefaultTerminal,
    rx: Receiver<Message>,
    title: String,
    counters: Box<dyn Fn() -> Counters + Send>,
    quit: Box<dyn Fn() + Send>,
) {
    use ratatui::crossterm::event::{self, Event, KeyEventKind};
    let mut view = LiveView::new(title);
    let mut quitting = false;
    loop {
        // Everything queued since the last redraw.
        loop {
            match rx.try_recv() {
                Ok(Message::Row(row)) => view.push(*row),
                Ok(Message::Closed(up, down)) => view.closed(up, down),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        if terminal.draw(|f| view.draw(f, counters())).is_err() {
            return;
        }
        match event::poll(Duration::from_millis(200)) {
            Ok(true) => match event::read() {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => match view.key(key) {
                    Action::Quit if !quitting => {
                        quitting = true;
                        quit();
                    }
                    Action::Repaint => {
                        let _ = terminal.clear();
                    }
                    _ => {}
                },
                Ok(_) => {}
                Err(_) => return,
            },
            Ok(false) => {}
            Err(_) => return,
        }
    }
}

/// Counters from the proxy, for the status line.
pub fn counters_of(proxy: Arc<crate::proxy::Proxy>) -> Box<dyn Fn() -> Counters + Send> {
    Box::new(move || Counters {
        open: proxy.active(),
        total: proxy.accepted(),
        handshakes: proxy.handshakes.load(Ordering::Relaxed),
    })
}
