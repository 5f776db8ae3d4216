//! XMPP STARTTLS without I/O: the bytes a client sends, and recognising what the
//! other side said in a buffer that may still be incomplete.
//!
//! Only the pre-TLS negotiation is modelled (RFC 6120 section 5): stream header,
//! `<stream:features>` with `<starttls>` and `<required/>`, then `<proceed/>` or
//! `<failure/>`. Each scan returns the first decisive element and how many bytes
//! it used, or `None` until more bytes arrive.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use thiserror::Error;

use crate::core::observation::XmppStartTls;

/// The STARTTLS namespace.
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// The client's STARTTLS request.
pub const STARTTLS: &str = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
/// The server's go-ahead.
pub const PROCEED: &str = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
/// Give up on a peer that sends this much without a decisive element.
pub const MAX_PRELUDE: usize = 64 * 1024;

/// The client's opening stream header for `domain`.
pub fn client_stream_open(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        escape(domain)
    )
}

/// A server's opening stream header answering `to`, with the given id.
pub fn server_stream_open(from: &str, id: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream from='{}' id='{}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        escape(from),
        escape(id)
    )
}

/// Stream features offering STARTTLS (optionally required).
pub fn features(starttls: bool, required: bool) -> String {
    match (starttls, required) {
        (false, _) => "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>".into(),
        (true, false) => format!("<stream:features><starttls xmlns='{NS_TLS}'/></stream:features>"),
        (true, true) => format!("<stream:features><starttls xmlns='{NS_TLS}'><required/></starttls></stream:features>"),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('\'', "&apos;")
        .replace('<', "&lt;")
}

/// Why a peer's bytes are not usable XMPP.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum XmppError {
    /// Not well-formed XML, or not an XMPP stream.
    #[error("not an XMPP stream: {0}")]
    Malformed(String),
    /// Too many bytes without the element expected.
    #[error("no XMPP stream features within {MAX_PRELUDE} bytes")]
    TooLong,
}

/// What a server said that matters to STARTTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// `<stream:features>`, complete.
    Features(XmppStartTls),
    /// `<proceed/>`: start TLS now.
    Proceed,
    /// `<failure/>`: the server refused STARTTLS.
    Failure,
    /// `<stream:error>`, with the condition name.
    StreamError(String),
}

/// What a client said that matters to STARTTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The stream header, with its `to` (the XMPP domain).
    StreamOpen {
        /// The `to` attribute.
        to: Option<String>,
    },
    /// `<starttls/>`.
    StartTls,
}

/// Whether a client's first bytes open an XMPP stream in plaintext (an XML
/// stream header, to be upgraded with STARTTLS) rather than TLS at once (a
/// handshake record): the one decision passthrough and intercept both make
/// from what the client sends, whatever the port. `None` until a byte other
/// than white space has come.
pub fn opens_xmpp_stream(first: &[u8]) -> Option<bool> {
    first
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .map(|b| *b == b'<')
}

/// Find the first decisive server element in `buf`. Returns it and the bytes used.
pub fn scan_server(buf: &[u8]) -> Result<Option<(ServerEvent, usize)>, XmppError> {
    require_xml(buf)?;
    let text = valid_prefix(buf);
    let mut reader = Reader::from_str(text);
    let mut in_features = false;
    let mut starttls = XmppStartTls {
        offered: false,
        required: false,
    };
    let mut in_starttls = false;
    let mut in_error = false;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return incomplete_or(buf, e.to_string()),
        };
        let pos = reader.buffer_position() as usize;
        match event {
            Event::Start(e) => match local(&e).as_str() {
                "features" => in_features = true,
                "starttls" if in_features => {
                    starttls.offered = true;
                    in_starttls = true;
                }
                "required" if in_starttls => starttls.required = true,
                "error" if !in_features => in_error = true,
                "proceed" => return Ok(Some((ServerEvent::Proceed, pos))),
                "failure" if !in_features => return Ok(Some((ServerEvent::Failure, pos))),
                other if in_error => {
                    return Ok(Some((ServerEvent::StreamError(other.to_owned()), pos)));
                }
                _ => {}
            },
            Event::Empty(e) => match local(&e).as_str() {
                "features" => return Ok(Some((ServerEvent::Features(starttls), pos))),
                "starttls" if in_features => starttls.offered = true,
                "required" if in_starttls => starttls.required = true,
                "proceed" => return Ok(Some((ServerEvent::Proceed, pos))),
                "failure" if !in_features => return Ok(Some((ServerEvent::Failure, pos))),
                other if in_error => {
                    return Ok(Some((ServerEvent::StreamError(other.to_owned()), pos)));
                }
                _ => {}
            },
            Event::End(e) => {
                let name = e.local_name().as_ref().to_owned();
                if name == "features" && in_features {
                    return Ok(Some((ServerEvent::Features(starttls), pos)));
                }
                if name == "starttls" {
                    in_starttls = false;
                }
                if name == "stream" {
                    return Ok(Some((
                        ServerEvent::StreamError("stream closed".into()),
                        pos,
                    )));
                }
            }
            Event::Eof => return more_or_too_long(buf),
            _ => {}
        }
    }
}

/// Find the first decisive client element in `buf`. Returns it and the bytes used.
pub fn scan_client(buf: &[u8]) -> Result<Option<(ClientEvent, usize)>, XmppError> {
    require_xml(buf)?;
    let text = valid_prefix(buf);
    let mut reader = Reader::from_str(text);
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return incomplete_or(buf, e.to_string()),
        };
        let pos = reader.buffer_position() as usize;
        match event {
            Event::Start(e) if local(&e) == "stream" => {
                let to = e.try_get_attribute("to").ok().flatten().and_then(|a| {
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .ok()
                        .map(|v| v.into_owned())
                });
                return Ok(Some((ClientEvent::StreamOpen { to }, pos)));
            }
            Event::Start(e) | Event::Empty(e) if local(&e) == "starttls" => {
                return Ok(Some((ClientEvent::StartTls, pos)));
            }
            Event::Eof => return more_or_too_long(buf),
            _ => {}
        }
    }
}

fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_owned()
}

/// The longest UTF-8 prefix: a multi-byte character may be cut at the end.
fn valid_prefix(buf: &[u8]) -> &str {
    match std::str::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or(""),
    }
}

fn more_or_too_long<T>(buf: &[u8]) -> Result<Option<T>, XmppError> {
    if buf.len() > MAX_PRELUDE {
        Err(XmppError::TooLong)
    } else {
        Ok(None)
    }
}

/// XMPP starts with `<` (after optional white space); anything else (a TLS record,
/// an HTTP response) is the wrong protocol, said at once rather than waited on.
fn require_xml(buf: &[u8]) -> Result<(), XmppError> {
    match opens_xmpp_stream(buf) {
        None | Some(true) => Ok(()),
        Some(false) => Err(XmppError::Malformed(format!(
            "the peer sent {:?}..., not XML",
            String::from_utf8_lossy(&buf[..buf.len().min(24)])
        ))),
    }
}

/// A parse error at the very end of the buffer is usually a cut-off tag: wait for
/// more. One with plenty of bytes after the stream start is real.
fn incomplete_or<T>(buf: &[u8], detail: String) -> Result<Option<T>, XmppError> {
    if buf.len() > MAX_PRELUDE {
        return Err(XmppError::Malformed(detail));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='example.com' version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";

    #[test]
    fn features_only_when_complete() {
        let full = SERVER.as_bytes();
        let (event, used) = scan_server(full).unwrap().unwrap();
        assert_eq!(
            event,
            ServerEvent::Features(XmppStartTls {
                offered: true,
                required: true
            })
        );
        assert_eq!(used, full.len());
        // Every prefix is either undecided or the same answer: never a wrong early verdict.
        for cut in 0..full.len() {
            match scan_server(&full[..cut]) {
                Ok(None) => {}
                other => panic!("prefix of {cut} bytes gave {other:?}"),
            }
        }
    }

    #[test]
    fn optional_and_absent_starttls() {
        let optional = format!(
            "{}{}",
            server_stream_open("example.com", "1"),
            features(true, false)
        );
        assert_eq!(
            scan_server(optional.as_bytes()).unwrap().unwrap().0,
            ServerEvent::Features(XmppStartTls {
                offered: true,
                required: false
            })
        );
        let none = format!(
            "{}{}",
            server_stream_open("example.com", "1"),
            features(false, false)
        );
        assert_eq!(
            scan_server(none.as_bytes()).unwrap().unwrap().0,
            ServerEvent::Features(XmppStartTls {
                offered: false,
                required: false
            })
        );
    }

    #[test]
    fn proceed_failure_and_stream_errors() {
        assert_eq!(
            scan_server(PROCEED.as_bytes()).unwrap().unwrap().0,
            ServerEvent::Proceed
        );
        assert_eq!(
            scan_server(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                .unwrap()
                .unwrap()
                .0,
            ServerEvent::Failure
        );
        let err = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
        assert_eq!(
            scan_server(err.as_bytes()).unwrap().unwrap().0,
            ServerEvent::StreamError("host-unknown".into())
        );
    }

    #[test]
    fn client_header_and_starttls() {
        let open = client_stream_open("example.com");
        let (event, used) = scan_client(open.as_bytes()).unwrap().unwrap();
        assert_eq!(
            event,
            ClientEvent::StreamOpen {
                to: Some("example.com".into())
            }
        );
        assert_eq!(used, open.len());
        assert_eq!(
            scan_client(STARTTLS.as_bytes()).unwrap().unwrap().0,
            ClientEvent::StartTls
        );
        for cut in 0..open.len() {
            assert_eq!(
                scan_client(&open.as_bytes()[..cut]),
                Ok(None),
                "prefix {cut}"
            );
        }
    }

    #[test]
    fn non_xml_is_an_error_not_a_hang() {
        assert!(matches!(
            scan_server(b"HTTP/1.1 400 Bad Request\r\n"),
            Err(XmppError::Malformed(_))
        ));
        assert!(matches!(
            scan_server(b"\x16\x03\x01\x00\xa5"),
            Err(XmppError::Malformed(_))
        ));
        let endless = format!(
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>{}",
            "<x/>".repeat(20_000)
        );
        assert_eq!(scan_server(endless.as_bytes()), Err(XmppError::TooLong));
    }
}
