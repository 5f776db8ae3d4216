//! Writing to stdout without panicking when the reader goes away (`edgetap ... |
//! head`): a closed pipe ends output quietly, as ripgrep does.

use std::io::Write;

/// Write `text` and a newline to stdout; a broken pipe is not an error.
pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(text.as_bytes())
        .and_then(|_| out.write_all(b"\n"));
}

/// `println!`-like macro over [`line`].
#[macro_export]
macro_rules! outln {
    () => { $crate::sink::out::line("") };
    ($($arg:tt)*) => { $crate::sink::out::line(&format!($($arg)*)) };
}

/// Lines for a terminal that may stop reading (stdout piped into a paused
/// pager): a thread of their own writes them, fed through a bounded queue, so
/// the writer waiting on a full pipe never holds up whoever produced the line
/// (the proxy's connections). A line that does not fit is dropped and counted.
pub struct LineQueue {
    tx: std::sync::Mutex<Option<std::sync::mpsc::SyncSender<String>>>,
    dropped: std::sync::atomic::AtomicU64,
    done: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl LineQueue {
    /// Start the writer thread on `out`, holding at most `capacity` lines.
    pub fn start<W: Write + Send + 'static>(mut out: W, capacity: usize) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(capacity);
        let (done_tx, done) = std::sync::mpsc::channel();
        crate::threads::spawn("terminal", move || {
            let _done = DoneOnDrop(done_tx);
            for line in rx {
                // A closed reader ends output quietly, as `line` does.
                if out
                    .write_all(line.as_bytes())
                    .and_then(|_| out.write_all(b"\n"))
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    return;
                }
            }
        })?;
        Ok(LineQueue {
            tx: std::sync::Mutex::new(Some(tx)),
            dropped: std::sync::atomic::AtomicU64::new(0),
            done: std::sync::Mutex::new(done),
        })
    }

    /// Queue `line`; never waits.
    pub fn push(&self, line: String) {
        let Ok(tx) = self.tx.lock() else { return };
        if let Some(tx) = tx.as_ref()
            && tx.try_send(line).is_err()
        {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Lines dropped so far because the reader did not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stop taking lines and give the thread up to `wait` to write what is
    /// queued (a reader that never reads must not hold up the exit).
    pub fn close(&self, wait: std::time::Duration) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(done) = self.done.lock() {
            let _ = done.recv_timeout(wait);
        }
    }
}

/// Tells `close` the writer thread ended, however it ended.
struct DoneOnDrop(std::sync::mpsc::Sender<()>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::LineQueue;

    /// A reader that never reads (a full pipe) never blocks the producer.
    #[test]
    fn a_stalled_reader_never_blocks_the_producer() {
        let (read_end, write_end) = rustix::pipe::pipe().unwrap();
        let q = LineQueue::start(std::fs::File::from(write_end), 64).unwrap();
        let started = std::time::Instant::now();
        let sent = 20_000u64;
        for i in 0..sent {
            q.push(format!("{i:06} {}", "x".repeat(100)));
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "pushing never waits for the reader"
        );
        // 2 MB of lines cannot fit a 64 KiB pipe and 64 queued lines.
        assert!(q.dropped() > 0);
        assert!(q.dropped() < sent);
        let closing = std::time::Instant::now();
        q.close(std::time::Duration::from_millis(200));
        assert!(
            closing.elapsed() < std::time::Duration::from_secs(2),
            "close does not hang"
        );
        drop(read_end);
    }
}
