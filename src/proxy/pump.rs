//! One direction of a passthrough connection: bytes in from one socket, out
//! to the other, unchanged.
//!
//! While the handshake is being watched, or a capture keeps the bytes, data
//! goes through a user-space buffer so the observer and the capture see it.
//! After that, bulk data moves socket to pipe to socket with splice(2), inside
//! the kernel: edgetap neither copies it nor touches it. Written here rather
//! than taken from a crate because `tokio::io::copy` always copies through
//! user space; rustix gives a safe `splice`, and this loop adds tokio's
//! readiness around it. Interactive traffic (small reads) stays on the buffer,
//! and a pipe exists only while bulk data flows, so an idle connection holds
//! neither a buffer nor a pipe (two descriptors each way would halve how many
//! connections fit in the open-file limit).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_setpipe_size, pipe_with, splice};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use super::FlowTap;
use super::decide;
use crate::core::capture::watch::Watch;
use crate::net::recording::{Activity, Tape as _};

/// User-space buffer for watched or recorded bytes and for interactive
/// traffic: one per thread, not per connection. A read goes into it and out
/// to the other socket at once; only what that socket cannot take yet is
/// copied into a buffer of the connection's own, freed once written. (A
/// buffer per read cost every short connection an allocation of 256 KiB,
/// zeroed, and the allocator's `madvise` to give it back.)
const READ_BUF: usize = 256 * 1024;

thread_local! {
    static READ_SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_BUF].into_boxed_slice());
}
/// Pipe capacity asked for (the kernel default is 64 KiB; 1 MiB is the
/// default ceiling for unprivileged processes).
const PIPE_SIZE: usize = 1024 * 1024;

/// What one direction's relay needs to know.
pub(super) struct Pump {
    /// Keep the bytes for the capture (only when one is being written).
    pub record: bool,
    /// The handshake observer both directions feed.
    pub watch: Arc<Mutex<Watch>>,
    /// The connection's line to the capture.
    pub flow: Arc<FlowTap>,
    /// Close after this long without data either way.
    pub idle: Duration,
    /// When either direction last moved data.
    pub activity: Arc<Activity>,
    /// Set when the proxy shuts down.
    pub stop: watch::Receiver<bool>,
}

/// Why a splice step stopped.
enum Fault {
    /// Nothing to read after all (spurious readiness).
    WouldBlock,
    /// The reading side failed.
    Read(io::Error),
    /// The writing side failed.
    Write(io::Error),
}

/// A kernel pipe that carries bulk data from one socket to the other.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        // A larger pipe moves more per system call; the default still works.
        let capacity = fcntl_setpipe_size(&write, PIPE_SIZE).unwrap_or(64 * 1024);
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }

    /// Move what `from` has into the pipe, then all of it out to `to`.
    /// Returns the bytes moved; 0 means `from` reached end of stream.
    async fn forward(&self, from: &TcpStream, to: &TcpStream) -> Result<usize, Fault> {
        let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
        let n = from
            .try_io(Interest::READABLE, || {
                splice(from, None, &self.write, None, self.capacity, flags).map_err(io::Error::from)
            })
            .map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock => Fault::WouldBlock,
                _ => Fault::Read(e),
            })?;
        let mut left = n;
        while left > 0 {
            to.writable().await.map_err(Fault::Write)?;
            match to.try_io(Interest::WRITABLE, || {
                splice(&self.read, None, to, None, left, flags).map_err(io::Error::from)
            }) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Fault::Write(e)),
            }
        }
        Ok(n)
    }
}

/// How one direction stops: why (none for a clean end of stream), and
/// whether the other socket's writing side is shut down for it.
struct End {
    reason: Option<String>,
    shutdown: bool,
}

impl End {
    /// A clean end of stream (half-close: the other side may still send).
    fn eof() -> End {
        End {
            reason: None,
            shutdown: true,
        }
    }

    /// `reason`, shutting the other socket's writing side.
    fn closing(reason: String) -> End {
        End {
            reason: Some(reason),
            shutdown: true,
        }
    }

    /// The other socket went away: nothing to shut down.
    fn gone(other: &str, e: io::Error) -> End {
        End {
            reason: Some(format!("{other} went away: {e}")),
            shutdown: false,
        }
    }
}

/// Where one direction's loop stands.
struct Direction {
    /// "client" or "server": the side read from, in close reasons.
    who: &'static str,
    /// The side written to.
    other: &'static str,
    client_side: bool,
    /// Set while bulk data moves by splice.
    pipe: Option<Pipe>,
    /// Bytes relayed.
    total: u64,
    /// Bytes handed to the capture.
    captured: usize,
    /// The observer is still fed (until this direction is encrypted or not TLS).
    watching: bool,
}

impl Pump {
    /// Copy `from` to `to` until EOF, error, idle timeout or stop; propagate
    /// half-close. Returns bytes copied and, when not a clean EOF, the reason.
    /// `on_watched` runs with the watch after each chunk fed to it (with the
    /// watch locked: it must not lock the watch again).
    pub async fn pump(
        &self,
        from: OwnedReadHalf,
        mut to: OwnedWriteHalf,
        client_side: bool,
        on_watched: impl Fn(&Watch),
    ) -> (u64, Option<String>) {
        let (who, other) = if client_side {
            ("client", "server")
        } else {
            ("server", "client")
        };
        let mut dir = Direction {
            who,
            other,
            client_side,
            pipe: None,
            total: 0,
            captured: 0,
            watching: true,
        };
        let mut stop = self.stop.clone();
        let end = loop {
            let ready = match self.readable(&from, &mut stop, who).await {
                Ok(ready) => ready,
                Err(reason) => break End::closing(reason),
            };
            if !ready {
                continue;
            }
            let step = if dir.pipe.is_some() {
                self.splice_step(&from, &to, &mut dir).await
            } else {
                self.copy_step(&from, &mut to, &mut dir, &on_watched).await
            };
            if let Err(end) = step {
                break end;
            }
        };
        if end.shutdown {
            let _ = to.shutdown().await;
        }
        (dir.total, end.reason)
    }

    /// Wait until `from` may be read: false when this side was silent for
    /// the idle timeout but the other one was not (keep going); an error is
    /// why the direction ends (idle both ways, a read error, shutdown).
    async fn readable(
        &self,
        from: &OwnedReadHalf,
        stop: &mut watch::Receiver<bool>,
        who: &str,
    ) -> Result<bool, String> {
        let ready = tokio::select! {
            r = tokio::time::timeout(self.activity.quiet_left(self.idle), from.readable()) => r,
            _ = stop.changed() => return Err("closed by edgetap on shutdown".into()),
        };
        match ready {
            Err(_) if self.activity.quiet_left(self.idle) > Duration::ZERO => Ok(false),
            Err(_) => Err(format!("idle for {}s", self.idle.as_secs())),
            Ok(Err(e)) => Err(format!("{who} error: {e}")),
            Ok(Ok(())) => Ok(true),
        }
    }

    /// Bulk data through the pipe, inside the kernel; the pipe is dropped
    /// when the data turns interactive again.
    async fn splice_step(
        &self,
        from: &OwnedReadHalf,
        to: &OwnedWriteHalf,
        dir: &mut Direction,
    ) -> Result<(), End> {
        let Some(pipe) = &dir.pipe else {
            return Ok(());
        };
        match pipe.forward(from.as_ref(), to.as_ref()).await {
            Ok(0) => Err(End::eof()),
            Ok(n) => {
                dir.total += n as u64;
                self.activity.touch();
                if !decide::after_splice(n) {
                    dir.pipe = None;
                }
                Ok(())
            }
            Err(Fault::WouldBlock) => Ok(()),
            Err(Fault::Read(e)) => Err(End::closing(format!("{} error: {e}", dir.who))),
            Err(Fault::Write(e)) => Err(End::gone(dir.other, e)),
        }
    }

    /// Read, watch, record and write as far as the other side takes it, all
    /// without waiting, in the thread's scratch buffer; what it cannot take
    /// yet is written from a copy. A pipe is made when bulk data starts.
    async fn copy_step(
        &self,
        from: &OwnedReadHalf,
        to: &mut OwnedWriteHalf,
        dir: &mut Direction,
        on_watched: &impl Fn(&Watch),
    ) -> Result<(), End> {
        let step = READ_SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let n = match from.try_read(&mut scratch) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
                Ok(n) => n,
            };
            let chunk = &scratch[..n];
            if n > 0 {
                self.observe(chunk, dir, on_watched);
            }
            // Not ready (WouldBlock) or failed: the rest is written below,
            // where a failure is said.
            let written = to.try_write(chunk).unwrap_or(0);
            Ok(Some((n, chunk[written.min(n)..].to_vec())))
        });
        let (n, rest) = match step {
            Ok(None) => return Ok(()),
            Err(e) => return Err(End::closing(format!("{} error: {e}", dir.who))),
            Ok(Some(read)) => read,
        };
        if n == 0 {
            return Err(End::eof());
        }
        if !rest.is_empty()
            && let Err(e) = to.write_all(&rest).await
        {
            return Err(End::gone(dir.other, e));
        }
        dir.total += n as u64;
        self.activity.touch();
        let recording = decide::keep_for_capture(self.record, dir.captured);
        if decide::splice_after_read(n, dir.watching, recording) {
            match Pipe::new() {
                Ok(p) => dir.pipe = Some(p),
                Err(e) => tracing::debug!(error = %e, "no pipe for splice; copying instead"),
            }
        }
        Ok(())
    }

    /// Feed `chunk` to the observer while it still watches, and to the
    /// capture while it keeps this connection's bytes.
    fn observe(&self, chunk: &[u8], dir: &mut Direction, on_watched: &impl Fn(&Watch)) {
        if dir.watching
            && let Ok(mut w) = self.watch.lock()
        {
            if dir.client_side {
                w.client_bytes(chunk)
            } else {
                w.server_bytes(chunk)
            }
            on_watched(&w);
            dir.watching = !w.side_done(dir.client_side);
        }
        if decide::keep_for_capture(self.record, dir.captured) {
            self.flow.bytes(dir.client_side, chunk);
            dir.captured += chunk.len();
        }
    }
}
