//! A TCP stream that records what passes (bytes each way and TLS keys as key
//! log lines, onto a [`Tape`]) and when it last moved (for idle timeouts).
//! Used by `probe` for its own connections (kept in a [`FlowLog`], written
//! when the probe is done) and by the proxy's intercept mode for both legs
//! (streamed to the capture as they pass, `proxy::recorder::FlowTap`).

use crate::core::export::FlowLog;

/// Where a recorded connection's bytes and keys go.
pub(crate) trait Tape: Send + Sync {
    /// Bytes passed; `from_client` when the flow's client sent them.
    fn bytes(&self, from_client: bool, bytes: &[u8]);
    /// One NSS key log line (with its newline).
    fn key_line(&self, line: String);
}

/// Kept in memory, for a source that writes its capture when it is done.
impl Tape for std::sync::Mutex<FlowLog> {
    fn bytes(&self, from_client: bool, bytes: &[u8]) {
        if let Ok(mut log) = self.lock() {
            log.chunks
                .push((crate::clock::wall(), from_client, bytes.to_vec()));
        }
    }

    fn key_line(&self, line: String) {
        if let Ok(mut log) = self.lock() {
            log.keylog.push_str(&line);
        }
    }
}

/// When a connection last moved a byte either way: what an idle timeout
/// ("silent both ways for this long") is measured against.
#[derive(Debug)]
pub(crate) struct Activity {
    since: std::time::Instant,
    /// Milliseconds after `since` of the latest byte.
    last_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    /// A connection that moved nothing yet, as of now.
    pub(crate) fn new() -> Activity {
        Activity {
            since: std::time::Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Bytes moved now.
    pub(crate) fn touch(&self) {
        self.last_ms
            .fetch_max(self.elapsed_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// How long until the connection has been silent both ways for `idle`
    /// (zero once it has).
    pub(crate) fn quiet_left(&self, idle: std::time::Duration) -> std::time::Duration {
        let quiet = self
            .elapsed_ms()
            .saturating_sub(self.last_ms.load(std::sync::atomic::Ordering::Relaxed));
        idle.saturating_sub(std::time::Duration::from_millis(quiet))
    }
}

/// Records the bytes read and written on a connection onto a [`Tape`], up
/// to `keep` bytes, and notes every byte in `activity`. In the log "from us"
/// means from the flow's client; `we_are_client` says which side this end is
/// (false on the client leg of an intercepting proxy).
pub(crate) struct Recording<S> {
    pub(crate) inner: S,
    pub(crate) log: std::sync::Arc<dyn Tape>,
    pub(crate) we_are_client: bool,
    /// Bytes still to keep in the log (a long session keeps its start).
    pub(crate) keep: usize,
    /// When bytes last moved either way, kept or not (for the idle timeout).
    pub(crate) activity: std::sync::Arc<Activity>,
    /// Bytes read from the socket that the reader has not asked for yet.
    pub(crate) ahead: ReadAhead,
}

/// Bytes read from a socket ahead of a reader that asks for little at a time.
///
/// rustls reads its records 4 KiB at a time (`read_tls`), so a 16 KiB record
/// cost four system calls, and bulk data through intercept mode spent more
/// time in `read(2)` than in decryption. A read asked for less than
/// [`READ_AHEAD`] reads a whole block instead and serves the rest from it. The
/// block is the thread's spare, taken only while it holds bytes: an idle
/// connection keeps none (the point of `net::relay`), and a block drained is
/// given back for the next read on the thread. tokio's `BufReader` would keep
/// its buffer for the whole life of every connection.
#[derive(Default)]
pub(crate) struct ReadAhead {
    held: Option<(Box<[u8]>, usize, usize)>,
}

/// Bytes read from the socket in one go for a reader that asked for less.
pub(crate) const READ_AHEAD: usize = 64 * 1024;

thread_local! {
    static SPARE_BLOCK: std::cell::RefCell<Option<Box<[u8]>>> = const { std::cell::RefCell::new(None) };
}

fn take_block() -> Box<[u8]> {
    SPARE_BLOCK
        .with(|s| s.borrow_mut().take())
        .unwrap_or_else(|| vec![0; READ_AHEAD].into_boxed_slice())
}

fn give_back(block: Box<[u8]>) {
    SPARE_BLOCK.with(|s| {
        let mut spare = s.borrow_mut();
        if spare.is_none() {
            *spare = Some(block);
        }
    });
}

impl ReadAhead {
    /// Serve `buf` from the held block; false when nothing is held.
    fn serve(&mut self, buf: &mut tokio::io::ReadBuf<'_>) -> bool {
        let Some((block, at, end)) = &mut self.held else {
            return false;
        };
        let n = (*end - *at).min(buf.remaining());
        buf.put_slice(&block[*at..*at + n]);
        *at += n;
        if at == end
            && let Some((block, _, _)) = self.held.take()
        {
            give_back(block);
        }
        true
    }

    /// Bytes held, not yet read.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.as_ref().map_or(0, |(_, at, end)| end - at)
    }
}

impl<S> Recording<S> {
    /// Record everything on `inner` into `log`.
    pub(crate) fn all(
        inner: S,
        log: std::sync::Arc<dyn Tape>,
        we_are_client: bool,
    ) -> Recording<S> {
        Recording {
            inner,
            log,
            we_are_client,
            keep: usize::MAX,
            activity: std::sync::Arc::new(Activity::new()),
            ahead: ReadAhead::default(),
        }
    }

    fn note(&mut self, written_by_us: bool, bytes: &[u8]) {
        let from_us = written_by_us == self.we_are_client;
        if bytes.is_empty() {
            return;
        }
        self.activity.touch();
        let take = bytes.len().min(self.keep);
        if take == 0 {
            return;
        }
        self.keep -= take;
        self.log.bytes(from_us, &bytes[..take]);
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Recording<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.ahead.serve(buf) {
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= READ_AHEAD {
            let before = buf.filled().len();
            let poll = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
            if let Poll::Ready(Ok(())) = &poll {
                this.note(false, &buf.filled()[before..]);
            }
            return poll;
        }
        // Recorded as read from the socket, then served (see ReadAhead).
        let mut block = take_block();
        let mut into = tokio::io::ReadBuf::new(&mut block);
        let poll = std::pin::Pin::new(&mut this.inner).poll_read(cx, &mut into);
        let got = into.filled().len();
        if !matches!(poll, Poll::Ready(Ok(()))) || got == 0 {
            give_back(block);
            return poll;
        }
        this.note(false, &block[..got]);
        this.ahead.held = Some((block, 0, got));
        this.ahead.serve(buf);
        Poll::Ready(Ok(()))
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Recording<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &poll {
            self.note(true, &buf[..*n]);
        }
        poll
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Collects TLS secrets as NSS key log lines.
pub(crate) struct KeyLogLines(pub(crate) std::sync::Arc<dyn Tape>);

impl std::fmt::Debug for KeyLogLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyLogLines")
    }
}

impl rustls::KeyLog for KeyLogLines {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use crate::core::x509::cert::hex;
        self.0
            .key_line(format!("{label} {} {}\n", hex(client_random), hex(secret)));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{Activity, READ_AHEAD, Recording};
    use crate::core::export::FlowLog;

    /// Small reads (rustls asks for 4 KiB) are served from one block read
    /// ahead: every byte arrives once, in order, recorded once as it left
    /// the socket; a read of a block or more goes straight through; nothing
    /// is held once the reader has caught up.
    #[tokio::test]
    async fn small_reads_are_served_from_a_block_read_ahead() {
        let sent: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (mut far, near) = tokio::io::duplex(256 * 1024);
        let writer = tokio::spawn({
            let sent = sent.clone();
            async move {
                far.write_all(&sent).await.unwrap();
                far.shutdown().await.unwrap();
            }
        });
        let tape = std::sync::Arc::new(std::sync::Mutex::new(FlowLog::default()));
        let mut rec = Recording::all(near, tape.clone(), true);
        let mut got = Vec::new();
        let mut small = [0u8; 4096];
        let mut big = vec![0u8; READ_AHEAD];
        for round in 0.. {
            let n = if round % 5 == 4 && rec.ahead.len() == 0 {
                let n = rec.read(&mut big).await.unwrap();
                got.extend_from_slice(&big[..n]);
                n
            } else {
                let n = rec.read(&mut small).await.unwrap();
                assert!(n <= small.len());
                got.extend_from_slice(&small[..n]);
                n
            };
            if n == 0 {
                break;
            }
        }
        writer.await.unwrap();
        assert_eq!(got, sent, "every byte once, in order");
        assert_eq!(rec.ahead.len(), 0, "nothing held at the end");
        let log = tape.lock().unwrap();
        let recorded: Vec<u8> = log
            .chunks
            .iter()
            .flat_map(|(_, from_client, b)| {
                assert!(!from_client, "read by the client end: from the server");
                b.iter().copied()
            })
            .collect();
        assert_eq!(recorded, sent, "recorded once each, in order");
        assert!(
            log.chunks.len() < sent.len() / 4096,
            "fewer socket reads ({}) than 4 KiB reads",
            log.chunks.len()
        );
    }

    #[test]
    fn activity_counts_quiet_time_from_the_last_byte() {
        let idle = Duration::from_secs(60);
        let a = Activity::new();
        assert!(a.quiet_left(idle) <= idle);
        assert!(a.quiet_left(idle) > Duration::from_secs(59));
        std::thread::sleep(Duration::from_millis(30));
        let before = a.quiet_left(Duration::from_millis(20));
        assert_eq!(
            before,
            Duration::ZERO,
            "quiet for 30 ms: a 20 ms timeout is due"
        );
        a.touch();
        assert!(
            a.quiet_left(Duration::from_millis(20)) > Duration::ZERO,
            "a byte just moved"
        );
    }
}
