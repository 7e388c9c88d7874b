//! One MSRP session (RFC 4975 5.4, 7, 8): its negotiated description, its
//! outgoing messages cut into chunks, its incoming messages in reassembly, and
//! the events those produce. Sessions live in a [`Connection`](crate::Connection),
//! which feeds them frames and schedules their chunks.

mod config;
mod event;
mod outgoing;
mod ranges;
mod reassembly;

use std::collections::{HashMap, VecDeque};

pub use config::{type_accepted, Direction, Role, SessionConfig, SessionSettings};
pub use event::{CommitTicket, Event, MessageRef, ReceivedBody, SessionKey};
pub(crate) use outgoing::{minted_message_id, Cut, CutChunk, OutMessage, Outgoing};
pub use outgoing::{ContentSource, OutgoingMessage, Payload, SourceChunk};
pub(crate) use reassembly::Incoming;

use crate::proto::{MessageId, MsrpUri};

/// Binding progress of a session on its connection (RFC 4975 5.4; digest 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BindState {
    /// Active: the binding SEND is out, its 200 not yet in.
    Binding,
    /// Passive: no request has named the session yet.
    Unbound,
    Bound,
}

/// A session as its connection holds it.
pub(crate) struct Session {
    pub key: SessionKey,
    pub config: SessionConfig,
    /// `local_uri` as written, our From-Path.
    pub from_path: String,
    /// `remote_path` joined, our To-Path.
    pub to_path: String,
    pub binding: BindState,
    pub outgoing: Outgoing,
    /// Incoming messages in reassembly, by the peer's Message-ID.
    pub incoming: HashMap<MessageId, Incoming>,
    /// Recently dropped incoming messages: their late chunks get 413.
    pub dropped_incoming: VecDeque<MessageId>,
    /// Types the peer refused with 415: not sent again in this session
    /// (RFC 4975 10: "stops using that type").
    pub refused_types: Vec<String>,
    /// In the scheduler's ring.
    pub scheduled: bool,
}

impl Session {
    pub fn new(key: SessionKey, mut config: SessionConfig) -> Session {
        config.settings = config.settings.floored();
        let from_path = config.local_uri.as_str().to_owned();
        let to_path = config
            .remote_path
            .iter()
            .map(MsrpUri::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let binding = match config.role {
            Role::Active => BindState::Binding,
            Role::Passive => BindState::Unbound,
        };
        Session {
            key,
            config,
            from_path,
            to_path,
            binding,
            outgoing: Outgoing::default(),
            incoming: HashMap::new(),
            dropped_incoming: VecDeque::new(),
            refused_types: Vec::new(),
            scheduled: false,
        }
    }

    /// The peer: the last URI of its path (RFC 4975 8.2).
    pub fn peer(&self) -> Option<&MsrpUri> {
        self.config.remote_path.last()
    }

    /// The largest incoming message: our max-size, within the engine's cap
    /// (a Byte-Range far beyond any real message is refused, RFC 4975 14.5).
    pub fn incoming_bytes_max(&self) -> u64 {
        let cap = self.config.settings.incoming_message_bytes_max;
        self.config.max_size.map_or(cap, |max| max.min(cap))
    }

    /// Whether the session has a chunk to cut and room to send it.
    pub fn is_ready(&self) -> bool {
        let out = &self.outgoing;
        out.has_work() && out.inflight_bytes < self.config.settings.inflight_bytes_max
    }
}
