//! The one place where negotiated SDP becomes an engine session descriptor
//! (MSRP-DIGEST 7.10: local URI, peer path, role, accept-types, max-size,
//! direction go from signalling to the engine).

use msrp_engine::control::{SessionDescriptor, SessionDirection, SessionRole};

use super::media::{Direction, MsrpTransport};
use super::offer_answer::NegotiatedMedia;

impl From<Direction> for SessionDirection {
    fn from(direction: Direction) -> SessionDirection {
        match direction {
            Direction::SendRecv => SessionDirection::Sendrecv,
            Direction::SendOnly => SessionDirection::Sendonly,
            Direction::RecvOnly => SessionDirection::Recvonly,
            Direction::Inactive => SessionDirection::Inactive,
        }
    }
}

impl NegotiatedMedia {
    /// The engine's view of this session. The side that connects is
    /// `Active` (RFC 4975 5.4, RFC 6135 4.2); the direction is ours.
    pub fn descriptor(&self) -> SessionDescriptor {
        SessionDescriptor {
            session_id: Some(self.local_session_id.clone()),
            local_uri: self.local.session_uri().map(str::to_owned),
            remote_path: self.remote.path.clone(),
            role: if self.we_connect {
                SessionRole::Active
            } else {
                SessionRole::Passive
            },
            direction: self.local.direction.into(),
            accept_types: self.local.accept_types.clone(),
            accept_wrapped_types: self.local.accept_wrapped_types.clone(),
            max_size: self.local.max_size,
            remote_accept_types: self.remote.accept_types.clone(),
            remote_max_size: self.remote.max_size,
            // RFC 4572 5 / RFC 8122: an msrps peer's certificate is the one
            // its SDP names (the engine checks it as the active side).
            fingerprint: match self.remote.transport {
                MsrpTransport::Tls => self.remote.fingerprint.clone(),
                MsrpTransport::Tcp => None,
            },
            ..SessionDescriptor::default()
        }
    }
}
