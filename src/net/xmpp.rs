//! XMPP STARTTLS over a socket, client side: open the stream, read the features,
//! ask for TLS, wait for `<proceed/>`. The recognising is in `core::xmpp`.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::core::observation::XmppStartTls;
use crate::core::xmpp::{self, ServerEvent};

/// How STARTTLS went.
#[derive(Debug)]
pub enum StartTls {
    /// `<proceed/>` arrived: start TLS on the same socket.
    Proceed(XmppStartTls),
    /// The server offered no STARTTLS; no TLS follows.
    NotOffered,
}

/// Negotiate STARTTLS for `domain` on `stream`, each read bounded by `timeout`.
pub async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    domain: &str,
    timeout: Duration,
) -> Result<StartTls, String> {
    stream
        .write_all(xmpp::client_stream_open(domain).as_bytes())
        .await
        .map_err(|e| format!("cannot send the XMPP stream header: {e}"))?;
    let features = match read_event(stream, timeout, "stream features").await? {
        ServerEvent::Features(f) => f,
        ServerEvent::StreamError(cond) => {
            return Err(format!("the XMPP server closed the stream: {cond}"));
        }
        other => {
            return Err(format!(
                "the XMPP server sent {other:?} before its stream features"
            ));
        }
    };
    if !features.offered {
        return Ok(StartTls::NotOffered);
    }
    stream
        .write_all(xmpp::STARTTLS.as_bytes())
        .await
        .map_err(|e| format!("cannot send <starttls/>: {e}"))?;
    match read_event(stream, timeout, "<proceed/>").await? {
        ServerEvent::Proceed => Ok(StartTls::Proceed(features)),
        ServerEvent::Failure => Err("the XMPP server answered <starttls/> with <failure/>".into()),
        other => Err(format!(
            "the XMPP server answered <starttls/> with {other:?}"
        )),
    }
}

/// Read until one decisive element; never reads past it (TLS may follow at once).
async fn read_event<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
    waiting_for: &str,
) -> Result<ServerEvent, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    loop {
        // One byte at a time: the server's next bytes after <proceed/> are TLS and
        // must stay in the socket. The prelude is a few hundred bytes.
        let n = tokio::time::timeout(timeout, stream.read(&mut byte))
            .await
            .map_err(|_| {
                format!(
                    "timed out after {}s waiting for {waiting_for}",
                    timeout.as_secs_f32()
                )
            })?
            .map_err(|e| format!("reading {waiting_for}: {e}"))?;
        if n == 0 {
            return Err(format!(
                "the server closed the connection before {waiting_for}"
            ));
        }
        buf.push(byte[0]);
        if byte[0] != b'>' {
            continue;
        }
        match xmpp::scan_server(&buf) {
            Ok(Some((event, _))) => return Ok(event),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Server side: read one decisive client element (stream header or `<starttls/>`),
/// byte by byte so that TLS bytes after `<starttls/>` stay in the socket.
pub async fn read_client_event<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<xmpp::ClientEvent, String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = tokio::time::timeout(timeout, stream.read(&mut byte))
            .await
            .map_err(|_| format!("the client sent nothing for {}s", timeout.as_secs_f32()))?
            .map_err(|e| format!("reading from the client: {e}"))?;
        if n == 0 {
            return Err("the client closed the connection before STARTTLS".into());
        }
        buf.push(byte[0]);
        if byte[0] == b'>' {
            match xmpp::scan_client(&buf) {
                Ok(Some((event, _))) => return Ok(event),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}
