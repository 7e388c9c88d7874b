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

/// Binding progress of a session on its connection (RFC 4975 5.4).
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
    /// `remote_path` joined, our To-Path, when it has several URIs (a
    /// relay path); with one it is that URI's text. Sessions are many and
    /// mostly idle, so nothing is stored twice (ARCHITECTURE: a million
    /// sessions per engine).
    to_path_joined: Option<Box<str>>,
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
        let to_path_joined = (config.remote_path.len() > 1).then(|| {
            config
                .remote_path
                .iter()
                .map(MsrpUri::as_str)
                .collect::<Vec<_>>()
                .join(" ")
                .into_boxed_str()
        });
        let binding = match config.role {
            Role::Active => BindState::Binding,
            Role::Passive => BindState::Unbound,
        };
        Session {
            key,
            config,
            to_path_joined,
            binding,
            outgoing: Outgoing::default(),
            incoming: HashMap::new(),
            dropped_incoming: VecDeque::new(),
            refused_types: Vec::new(),
            scheduled: false,
        }
    }

    /// Our own path, the From-Path of what we send: `local_uri` as written.
    pub fn own_path(&self) -> &str {
        self.config.local_uri.as_str()
    }

    /// Our To-Path: `remote_path`, space-separated.
    pub fn to_path(&self) -> &str {
        match (&self.to_path_joined, self.config.remote_path.first()) {
            (Some(joined), _) => joined,
            (None, Some(uri)) => uri.as_str(),
            (None, None) => "",
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
