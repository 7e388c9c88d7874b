//! The sessions beyond one connection: the passive sessions a request may
//! claim onto it (RFC 4975 5.4, 7.3).

use crate::proto::MsrpUri;
use crate::session::SessionConfig;

/// What a [`SessionDirectory`] knows of a session a request names.
#[derive(Debug)]
pub enum Lookup {
    /// No such session: 481.
    Unknown,
    /// The session is bound to another connection: 506 (RFC 4975 5.4).
    BoundElsewhere,
    /// A passive session waiting for its connection, and the request comes
    /// from its negotiated peer: it joins this one.
    Claim(Box<SessionConfig>),
    /// A passive session waiting for its connection, named by a request
    /// from someone else: 403, and the session stays pending, untouched
    /// (RFC 4975 7.3: the From-Path must be the negotiated peer's). Also
    /// 403 when the directory refuses this connection the session for
    /// reasons of its own (RFC 8122 5: not the certificate the peer's SDP
    /// named), having failed the session.
    Forbidden,
}

/// Sessions beyond this connection, asked when a request names a session the
/// connection does not carry (the shard's directory of pending passive
/// sessions, ARCHITECTURE "Who owns a session").
pub trait SessionDirectory {
    /// `from_peer` says whether the request comes from a session's
    /// negotiated peer; a session is claimed only when it does.
    fn lookup(&mut self, uri: &MsrpUri, from_peer: &dyn Fn(&SessionConfig) -> bool) -> Lookup;
}

/// No sessions anywhere else.
pub(super) struct NoDirectory;

impl SessionDirectory for NoDirectory {
    fn lookup(&mut self, _: &MsrpUri, _: &dyn Fn(&SessionConfig) -> bool) -> Lookup {
        Lookup::Unknown
    }
}
