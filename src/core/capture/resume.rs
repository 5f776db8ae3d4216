//! Resumed handshakes: a TLS 1.2 session resumed by its ID (the server
//! echoes the client's session ID and sends no Certificate) or a TLS 1.3
//! pre-shared key. No chain crosses the wire then; the one that counts was
//! sent in the full handshake that set the session up. A TLS 1.2 resumption
//! is tied to that handshake in the same capture (same server, same session
//! ID) and judged with its chain; what cannot be tied says so.

use super::replay::TlsConnection;

/// How a handshake that sent no chain resumed a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// Tied to the full handshake whose Certificate ended at this frame.
    From {
        /// That handshake's frame.
        frame: u64,
    },
    /// A TLS 1.2 session whose full handshake is not in the capture.
    NotInCapture,
    /// A TLS 1.3 pre-shared key: it names no earlier handshake.
    Tls13Psk,
}

impl Resumed {
    /// In words, for the observation and the reports.
    pub fn describe(&self) -> String {
        match self {
            Resumed::From { frame } => {
                format!("resumed: the chain was sent in the full handshake at frame {frame}")
            }
            Resumed::NotInCapture => "resumed: the session was set up in a full handshake that is not in the capture, so its chain was not seen".into(),
            Resumed::Tls13Psk => "resumed (TLS 1.3 pre-shared key): the chain was sent in an earlier full handshake, which the key does not name".into(),
        }
    }
}

/// How `c` resumed a session, if it did: TLS 1.3 with a pre-shared key, or
/// TLS 1.2 and before with the server echoing the client's session ID and
/// sending no Certificate.
fn resumption(c: &TlsConnection) -> Option<Resumed> {
    let (ch, sh) = (c.client_hello.as_ref()?, c.server_hello.as_ref()?);
    if c.certificates.is_some() {
        return None;
    }
    if sh.psk {
        return Some(Resumed::Tls13Psk);
    }
    let echoed = sh.version < 0x0304
        && !sh.session_id.as_slice().is_empty()
        && sh.session_id.as_slice() == ch.session_id.as_slice();
    echoed.then_some(Resumed::NotInCapture)
}

/// Mark every resumed handshake, and give each TLS 1.2 one the chain of
/// the latest earlier full handshake with the same server that issued the
/// ticket it presents, or else had its session ID.
pub fn link(conns: &mut [TlsConnection]) {
    for i in 0..conns.len() {
        let Some(how) = resumption(&conns[i]) else {
            continue;
        };
        let (server, frame) = (conns[i].server, conns[i].frame);
        let id = conns[i].server_hello.map(|sh| sh.session_id);
        let ticket = conns[i]
            .client_hello
            .as_ref()
            .map(|ch| ch.session_ticket.clone())
            .filter(|t| !t.is_empty());
        let set_up_here = |f: &TlsConnection| match &ticket {
            Some(t) => f.ticket.as_ref() == Some(t),
            None => f.server_hello.map(|sh| sh.session_id) == id,
        };
        let full = conns
            .iter()
            // A full handshake only: a resumption linked before has a chain too.
            .filter(|f| f.server == server && f.frame < frame && f.resumed.is_none())
            .filter(|f| f.certificates.is_some())
            .filter(|f| set_up_here(f))
            .max_by_key(|f| f.frame)
            .map(|f| (f.frame, f.certificates.clone()));
        let c = &mut conns[i];
        c.resumed = Some(match (how, full) {
            (Resumed::NotInCapture, Some((at, certificates))) => {
                c.certificates = certificates;
                Resumed::From { frame: at }
            }
            (how, _) => how,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tls::messages::{Certificates, SessionId};
    use crate::core::tls::{ClientHello, ServerHello};

    fn handshake(frame: u64, id: &[u8], chain: bool) -> TlsConnection {
        let mut c = TlsConnection::new(
            0,
            "192.0.2.7:40000".parse().unwrap(),
            "192.0.2.1:8443".parse().unwrap(),
        );
        c.frame = frame;
        c.client_hello = Some(ClientHello {
            session_id: id.to_vec(),
            ..ClientHello::default()
        });
        c.server_hello = Some(ServerHello {
            version: 0x0303,
            cipher: 0xc030,
            session_id: SessionId::new(id),
            ..ServerHello::default()
        });
        c.certificates = chain.then(|| Certificates {
            certs: vec![vec![1, 2, 3]],
            ..Certificates::default()
        });
        c
    }

    #[test]
    fn a_resumed_session_takes_the_chain_of_its_full_handshake() {
        let mut conns = vec![
            handshake(10, &[7; 32], true),
            handshake(40, &[7; 32], false),
            handshake(50, &[9; 32], false),
            handshake(60, &[], false),
            handshake(70, &[7; 32], false),
        ];
        link(&mut conns);
        assert_eq!(conns[0].resumed, None, "a full handshake");
        assert_eq!(conns[1].resumed, Some(Resumed::From { frame: 10 }));
        assert_eq!(
            conns[4].resumed,
            Some(Resumed::From { frame: 10 }),
            "resumed again: still the full handshake, not the earlier resumption"
        );
        assert_eq!(
            conns[1].certificates.as_ref().unwrap().certs,
            vec![vec![1, 2, 3]]
        );
        assert_eq!(
            conns[2].resumed,
            Some(Resumed::NotInCapture),
            "its full handshake is not here"
        );
        assert!(conns[2].certificates.is_none());
        assert_eq!(
            conns[3].resumed, None,
            "no session ID: cut off, not resumed"
        );
        // A ticket ties a resumption to the handshake that issued it, whatever
        // the session IDs say.
        let mut issued = handshake(10, &[], true);
        issued.ticket = Some(vec![5; 40]);
        let mut other = handshake(20, &[], true);
        other.ticket = Some(vec![6; 40]);
        let mut resumed = handshake(30, &[3; 32], false);
        if let Some(ch) = resumed.client_hello.as_mut() {
            ch.session_ticket = vec![5; 40];
        }
        let mut conns = vec![issued, other, resumed];
        link(&mut conns);
        assert_eq!(conns[2].resumed, Some(Resumed::From { frame: 10 }));
        let mut psk = handshake(70, &[1; 32], false);
        if let Some(sh) = psk.server_hello.as_mut() {
            sh.version = 0x0304;
            sh.psk = true;
        }
        let mut conns = vec![psk];
        link(&mut conns);
        assert_eq!(conns[0].resumed, Some(Resumed::Tls13Psk));
        assert!(
            Resumed::From { frame: 10 }
                .describe()
                .contains("full handshake at frame 10")
        );
    }
}
