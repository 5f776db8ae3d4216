//! Copy both ways between two async streams (intercept mode's two TLS
//! sessions) holding no buffer while the connection is idle.
//!
//! `tokio::io::copy_bidirectional` keeps an 8 KiB buffer per direction for
//! the whole life of the connection: 16 KiB per intercepted connection that
//! sits idle for hours (a Jabber client's XMPP session). Here each direction
//! reads into one scratch buffer per thread, writes what it read at once, and
//! only when the writer cannot take it all keeps the rest in a buffer of its
//! own, dropped as soon as it is written. Otherwise the logic is tokio's:
//! flush when the reader has nothing more, shut the writer down at the
//! reader's end of stream, finish when both directions have.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read at most in one go (one TLS record's plaintext).
const SCRATCH: usize = 16 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// One direction's state.
#[derive(Default)]
struct Direction {
    /// Bytes read but not yet written (only while the writer is behind).
    pending: Option<(Box<[u8]>, usize)>,
    /// Written since the last flush.
    need_flush: bool,
    /// The reader reached its end.
    read_done: bool,
    /// The writer was shut down: this direction is over.
    done: bool,
    /// Bytes copied.
    copied: u64,
}

impl Direction {
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
    ) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            if self.done {
                return Poll::Ready(Ok(self.copied));
            }
            // First what the writer could not take before.
            if let Some((buf, at)) = &mut self.pending {
                while *at < buf.len() {
                    let n = ready!(writer.as_mut().poll_write(cx, &buf[*at..]))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    *at += n;
                    self.copied += n as u64;
                    self.need_flush = true;
                }
                self.pending = None;
            }
            if self.read_done {
                ready!(writer.as_mut().poll_shutdown(cx))?;
                self.done = true;
                continue;
            }
            // Read into the thread's scratch buffer; write it out at once.
            let step = SCRATCH_BUF.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let mut read = ReadBuf::new(&mut scratch[..]);
                match reader.as_mut().poll_read(cx, &mut read) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(())) => {}
                }
                let filled = read.filled().len();
                if filled == 0 {
                    self.read_done = true;
                    return Poll::Ready(Ok(()));
                }
                let mut at = 0;
                while at < filled {
                    match writer.as_mut().poll_write(cx, &scratch[at..filled]) {
                        Poll::Ready(Ok(0)) => {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                        }
                        Poll::Ready(Ok(n)) => {
                            at += n;
                            self.copied += n as u64;
                            self.need_flush = true;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {
                            // The writer is behind: keep the rest, as tokio would.
                            self.pending =
                                Some((scratch[at..filled].to_vec().into_boxed_slice(), 0));
                            break;
                        }
                    }
                }
                Poll::Ready(Ok(()))
            });
            match step {
                Poll::Ready(r) => r?,
                Poll::Pending => {
                    // Nothing to read now: make sure what was written goes out.
                    if self.need_flush {
                        ready!(writer.as_mut().poll_flush(cx))?;
                        self.need_flush = false;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// Copy `a` to `b` and `b` to `a` until both reach their end (each end shut
/// down on the other side as it comes); the bytes copied each way.
pub async fn copy_both_ways<A, B>(a: &mut A, b: &mut B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut a_to_b = Direction::default();
    let mut b_to_a = Direction::default();
    poll_fn(|cx| {
        let forward = a_to_b.poll_copy(cx, Pin::new(&mut *a), Pin::new(&mut *b))?;
        let back = b_to_a.poll_copy(cx, Pin::new(&mut *b), Pin::new(&mut *a))?;
        match (forward, back) {
            (Poll::Ready(up), Poll::Ready(down)) => Poll::Ready(Ok((up, down))),
            _ => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Four MiB each way through a relay whose far ends read slowly and in
    /// small pieces (the writer is often behind), then both ends close: every
    /// byte arrives in order, the counts are exact, and EOF is passed on.
    #[tokio::test]
    async fn copies_both_ways_with_slow_readers_and_passes_eof() {
        let (client, mut relay_a) = tokio::io::duplex(1024);
        let (mut relay_b, server) = tokio::io::duplex(1024);
        let relay = tokio::spawn(async move { copy_both_ways(&mut relay_a, &mut relay_b).await });
        let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let (to_send_up, to_send_down) = (data.clone(), data.clone());
        let (client_r, mut client_w) = tokio::io::split(client);
        let (server_r, mut server_w) = tokio::io::split(server);
        let up = tokio::spawn(async move {
            client_w.write_all(&to_send_up).await.unwrap();
            client_w.shutdown().await.unwrap();
        });
        let down = tokio::spawn(async move {
            server_w.write_all(&to_send_down).await.unwrap();
            server_w.shutdown().await.unwrap();
        });
        let slow_read = |mut r: tokio::io::ReadHalf<tokio::io::DuplexStream>| async move {
            let mut got = Vec::new();
            let mut piece = [0u8; 700];
            loop {
                let n = r.read(&mut piece).await.unwrap();
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&piece[..n]);
                if got.len() % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        };
        let at_server = tokio::spawn(slow_read(server_r));
        let at_client = tokio::spawn(slow_read(client_r));
        up.await.unwrap();
        down.await.unwrap();
        assert!(at_server.await.unwrap() == data, "client to server");
        assert!(at_client.await.unwrap() == data, "server to client");
        let (a, b) = relay.await.unwrap().unwrap();
        assert_eq!((a, b), (data.len() as u64, data.len() as u64));
    }
}
