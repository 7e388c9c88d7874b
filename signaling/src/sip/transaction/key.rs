//! Matching messages to transactions (RFC 3261 17.1.3, 17.2.3).

use crate::sip::{Message, Method};

/// The RFC 3261 branch prefix: a branch that starts with it was made
/// unique by an RFC 3261 element (8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A client transaction: the branch of the Via we put on top, and the
/// CSeq method (a CANCEL has the INVITE's branch, 17.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub branch: String,
    pub method: Method,
}

impl ClientKey {
    /// The key a response belongs to, when its top Via has a branch.
    pub fn of_response(response: &Message) -> Option<ClientKey> {
        let branch = response.top_via()?.branch()?.to_string();
        Some(ClientKey {
            branch,
            method: response.cseq().method.clone(),
        })
    }
}

/// A server transaction (RFC 3261 17.2.3). An ACK belongs to the INVITE
/// it acknowledges, so its method is stored as INVITE.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ServerKey {
    /// The branch carries the magic cookie: branch, sent-by and method.
    Branch {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// RFC 2543 fallback for a request without the cookie (17.2.3): the
    /// Request-URI, From tag, Call-ID, CSeq number and the top Via, and the
    /// method. The To tag is left out so that the ACK of a non-2xx final
    /// response (whose To has the tag we added) finds its INVITE.
    Legacy {
        request_uri: String,
        from_tag: String,
        call_id: String,
        cseq: u32,
        top_via: String,
        method: Method,
    },
}

impl ServerKey {
    /// The key of a request; `None` when it has no Via (such a request is
    /// dropped before it gets here, RFC 3261 8.2.6).
    pub fn of_request(request: &Message) -> Option<ServerKey> {
        let method = match request.method()? {
            Method::Ack => Method::Invite,
            other => other.clone(),
        };
        let via = request.top_via()?;
        match via.branch() {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => Some(ServerKey::Branch {
                branch: branch.to_string(),
                sent_by: sent_by(via),
                method,
            }),
            _ => Some(ServerKey::Legacy {
                request_uri: request.request_uri()?.to_string(),
                from_tag: request.from().tag().unwrap_or_default().to_string(),
                call_id: request.call_id().to_string(),
                cseq: request.cseq().seq,
                top_via: via.to_string(),
                method,
            }),
        }
    }

    /// The INVITE transaction a CANCEL names (RFC 3261 9.2: the same key
    /// but for the method).
    pub fn cancelled_invite(&self) -> ServerKey {
        let mut key = self.clone();
        match &mut key {
            ServerKey::Branch { method, .. } | ServerKey::Legacy { method, .. } => *method = Method::Invite,
        }
        key
    }
}

fn sent_by(via: &crate::sip::Via) -> String {
    match via.port {
        Some(port) => format!("{}:{}", via.host, port),
        None => via.host.to_string(),
    }
}
